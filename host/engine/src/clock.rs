//! Where the engine reads time and waits for it: a seam, so that retries,
//! backoff, due work and pull intervals can be tested on virtual time.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

/// A wait for a time on a [`Clock`].
pub type Sleep<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// The engine's time source: when work is due, when a deferred or failed
/// object is retried, when a pull step runs next.
pub trait Clock: Send + Sync {
    /// Now, in milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;

    /// Resolves once this clock shows `at_ms` or later.
    fn sleep_until(&self, at_ms: i64) -> Sleep<'_>;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        syncplane_core::now_ms()
    }

    fn sleep_until(&self, at_ms: i64) -> Sleep<'_> {
        let wait = u64::try_from(at_ms.saturating_sub(self.now_ms())).unwrap_or(0);
        Box::pin(tokio::time::sleep(Duration::from_millis(wait)))
    }
}

/// A clock that moves only when told to: tests run retries, backoff and
/// pull intervals without sleeping, deterministically. A
/// [`sleep_until`](Clock::sleep_until) resolves when a move reaches it.
#[derive(Debug)]
pub struct ManualClock {
    now_ms: AtomicI64,
    moved: Notify,
}

impl ManualClock {
    /// A clock showing `now_ms`.
    pub fn at(now_ms: i64) -> Self {
        ManualClock {
            now_ms: AtomicI64::new(now_ms),
            moved: Notify::new(),
        }
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.now_ms
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |now| {
                Some(now.saturating_add(ms))
            })
            .ok();
        self.moved.notify_waiters();
    }

    /// Sets the clock to `now_ms`, backwards too (a test going back to its
    /// start); waits already due stay resolved.
    pub fn set(&self, now_ms: i64) {
        self.now_ms.store(now_ms, Ordering::SeqCst);
        self.moved.notify_waiters();
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.now_ms.load(Ordering::SeqCst)
    }

    fn sleep_until(&self, at_ms: i64) -> Sleep<'_> {
        Box::pin(async move {
            loop {
                // Registered before the time is read, so that a move in
                // between is not missed.
                let moved = self.moved.notified();
                tokio::pin!(moved);
                moved.as_mut().enable();
                if self.now_ms() >= at_ms {
                    return;
                }
                moved.await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_manual_sleep_ends_when_the_clock_reaches_it_and_not_before() {
        let clock = std::sync::Arc::new(ManualClock::at(1_000));
        let sleeper = {
            let clock = std::sync::Arc::clone(&clock);
            tokio::spawn(async move { clock.sleep_until(5_000).await })
        };
        clock.advance(Duration::from_millis(3_000));
        tokio::task::yield_now().await;
        let early = tokio::time::timeout(Duration::from_millis(50), async {
            while !sleeper.is_finished() {
                tokio::task::yield_now().await;
            }
        })
        .await;
        assert!(early.is_err(), "woke at 4,000 for 5,000");
        clock.advance(Duration::from_millis(1_000));
        tokio::time::timeout(Duration::from_secs(5), sleeper)
            .await
            .expect("woke at 5,000")
            .expect("sleeper");
        // A time already past does not wait.
        clock.sleep_until(2_000).await;
    }
}
