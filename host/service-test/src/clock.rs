//! The virtual clock the engine of a test host reads.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use syncplane_engine::Clock;

/// A clock that moves only when a test says so (`advance`), and goes back
/// to its start for each test.
#[derive(Debug)]
pub(crate) struct VirtualClock {
    start_ms: i64,
    now_ms: AtomicI64,
}

impl VirtualClock {
    /// A clock showing `start_ms` (milliseconds since the epoch).
    pub(crate) fn at(start_ms: i64) -> Self {
        VirtualClock {
            start_ms,
            now_ms: AtomicI64::new(start_ms),
        }
    }

    /// Back to the start.
    pub(crate) fn reset(&self) {
        self.now_ms.store(self.start_ms, Ordering::SeqCst);
    }

    /// Forward by `by`.
    pub(crate) fn advance(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.now_ms
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |now| {
                Some(now.saturating_add(ms))
            })
            .ok();
    }
}

impl Clock for VirtualClock {
    fn now_ms(&self) -> i64 {
        self.now_ms.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_moves_only_when_advanced_and_resets_to_its_start() {
        let clock = VirtualClock::at(1_000);
        clock.advance(Duration::from_millis(1_500));
        assert_eq!(clock.now_ms(), 2_500);
        clock.reset();
        assert_eq!(clock.now_ms(), 1_000);
    }
}
