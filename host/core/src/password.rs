//! Password hashing (argon2) off the async workers, bounded, and never
//! while a database transaction is open.
//!
//! Every hash and verification runs on tokio's blocking pool, behind a
//! semaphore with one permit per core less one (at least one), so a flood
//! of logins can occupy neither the async workers nor the whole blocking
//! pool nor every core. Waiting for a permit is an async wait: it costs a
//! task, not a thread.
//!
//! The password *checks* waiting for a permit are bounded too
//! ([`Hasher::set_max_waiting`]): beyond the bound a check is refused at
//! once with [`Error::PasswordChecksBusy`], so a flood of sign-ins cannot
//! pile up requests (each holding a connection and memory) behind a
//! queue that takes seconds to drain. Hashing a new password is not
//! bounded: it comes from a write an admin or the user makes, not from
//! anonymous sign-ins.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use tokio::sync::{OnceCell, OwnedSemaphorePermit, Semaphore, TryAcquireError};

use crate::error::{Error, Result};

/// Hashes and verifies passwords with bounded concurrency.
#[derive(Debug)]
pub(crate) struct Hasher {
    permits: Arc<Semaphore>,
    /// Checks waiting for a permit now.
    waiting: AtomicUsize,
    /// The most checks that may wait for a permit.
    max_waiting: AtomicUsize,
    /// A hash of a random password with the same parameters as real ones:
    /// an unknown user is verified against it, so that it costs as much as
    /// a wrong password.
    dummy: OnceCell<String>,
}

impl Hasher {
    /// A hasher allowing `concurrency` hashes at a time, and
    /// [`Hasher::default_max_waiting`] checks waiting.
    pub(crate) fn new(concurrency: usize) -> Self {
        Hasher {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            waiting: AtomicUsize::new(0),
            max_waiting: AtomicUsize::new(Self::default_max_waiting()),
            dummy: OnceCell::new(),
        }
    }

    /// Four checks waiting per permit of the default pool: at ~50 ms a
    /// check, a waiting sign-in is answered within about a quarter of a
    /// second.
    pub(crate) fn default_max_waiting() -> usize {
        4 * Self::default_concurrency()
    }

    /// At most `max` password checks wait for a permit; `0`: a check runs
    /// only when a permit is free at once.
    pub(crate) fn set_max_waiting(&self, max: usize) {
        self.max_waiting.store(max, Ordering::SeqCst);
    }

    /// Takes a permit for a password check: at once when one is free, else
    /// waiting in a queue of bounded length.
    async fn check_permit(&self) -> Result<OwnedSemaphorePermit> {
        match Arc::clone(&self.permits).try_acquire_owned() {
            Ok(permit) => return Ok(permit),
            Err(TryAcquireError::Closed) => {
                return Err(Error::Hash("the hashing pool is closed".into()));
            }
            Err(TryAcquireError::NoPermits) => {}
        }
        let max = self.max_waiting.load(Ordering::SeqCst);
        self.waiting
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < max).then_some(n + 1)
            })
            .map_err(|_| Error::PasswordChecksBusy)?;
        // Leaves the queue however the wait ends, cancellation included.
        let _waiting = Waiting(&self.waiting);
        Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| Error::Hash("the hashing pool is closed".into()))
    }

    /// One permit per core, less one left to the async workers; at least one.
    pub(crate) fn default_concurrency() -> usize {
        std::thread::available_parallelism()
            .map(|n| n.get().saturating_sub(1))
            .unwrap_or(1)
            .max(1)
    }

    async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T> {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| Error::Hash("the hashing pool is closed".into()))?;
        Self::run_with(permit, work).await
    }

    async fn run_with<T: Send + 'static>(
        permit: OwnedSemaphorePermit,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T> {
        tokio::task::spawn_blocking(move || {
            let out = work();
            drop(permit);
            out
        })
        .await
        .map_err(|_| Error::Hash("a hashing task panicked".into()))
    }

    /// The argon2 hash (PHC string) of `plain`, with a random salt.
    ///
    /// # Errors
    ///
    /// [`Error::Hash`] when hashing fails.
    pub(crate) async fn hash(&self, plain: &str) -> Result<String> {
        let plain = plain.to_owned();
        self.run(move || hash_password(&plain)).await?
    }

    /// Whether `plain` matches `hash`; with no hash (an unknown user), the
    /// dummy hash is checked instead and the answer is `false`.
    ///
    /// # Errors
    ///
    /// [`Error::PasswordChecksBusy`] when no permit is free and the queue
    /// of waiting checks is full; [`Error::Hash`] when the pool is gone or
    /// the dummy cannot be made.
    pub(crate) async fn verify(&self, plain: &str, hash: Option<&str>) -> Result<bool> {
        let (hash, real) = match hash {
            Some(h) => (h.to_owned(), true),
            None => (self.dummy_hash().await?.to_owned(), false),
        };
        let plain = plain.to_owned();
        let permit = self.check_permit().await?;
        let matched = Self::run_with(permit, move || verify_password(&plain, &hash)).await?;
        Ok(matched && real)
    }

    async fn dummy_hash(&self) -> Result<&str> {
        self.dummy
            .get_or_try_init(|| async {
                let random: [u8; 24] = rand::random();
                let plain = random
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>();
                self.hash(&plain).await
            })
            .await
            .map(String::as_str)
    }
}

/// A place in the queue of waiting checks, left on drop.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The argon2id hash of `plain` with default parameters and a random salt.
/// Blocking: call it through [`Hasher`] on async paths.
pub(crate) fn hash_password(plain: &str) -> Result<String> {
    let bytes: [u8; 16] = rand::random();
    let salt = SaltString::encode_b64(&bytes).map_err(|e| Error::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(plain.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Hash(e.to_string()))
}

/// Whether `plain` matches the PHC string `hash`; a malformed hash matches
/// nothing. Blocking.
pub(crate) fn verify_password(plain: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(plain.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_and_no_other() {
        let hasher = Hasher::new(1);
        let hash = hasher.hash("s3cret").await.expect("hash");
        assert!(hasher.verify("s3cret", Some(&hash)).await.expect("verify"));
        assert!(!hasher.verify("other", Some(&hash)).await.expect("verify"));
    }

    #[tokio::test]
    async fn an_unknown_user_is_checked_against_a_dummy_with_the_same_parameters() {
        let hasher = Hasher::new(1);
        assert!(!hasher.verify("anything", None).await.expect("verify"));
        let dummy = PasswordHash::new(hasher.dummy_hash().await.expect("dummy"))
            .expect("a PHC string")
            .params
            .to_string();
        let real_hash = hash_password("x").expect("hash");
        let real = PasswordHash::new(&real_hash)
            .expect("PHC")
            .params
            .to_string();
        assert_eq!(dummy, real);
    }

    #[tokio::test]
    async fn checks_beyond_the_waiting_bound_are_refused_at_once_and_the_queue_drains() {
        let hasher = Arc::new(Hasher::new(1));
        hasher.set_max_waiting(2);
        let hash = hash_password("right").expect("hash");
        // Hold the only permit, as a running check would.
        let held = Arc::clone(&hasher.permits)
            .try_acquire_owned()
            .expect("the permit");
        let mut queued = Vec::new();
        for _ in 0..2 {
            let hasher = Arc::clone(&hasher);
            let hash = hash.clone();
            queued.push(tokio::spawn(async move {
                hasher.verify("right", Some(&hash)).await
            }));
        }
        while hasher.waiting.load(Ordering::SeqCst) < 2 {
            tokio::task::yield_now().await;
        }
        let started = std::time::Instant::now();
        let refused = hasher.verify("right", Some(&hash)).await;
        assert!(
            matches!(refused, Err(Error::PasswordChecksBusy)),
            "{refused:?}"
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        drop(held);
        for check in queued {
            assert!(check.await.expect("task").expect("verified"));
        }
        assert_eq!(hasher.waiting.load(Ordering::SeqCst), 0);
        assert!(hasher.verify("right", Some(&hash)).await.expect("verify"));
    }

    #[tokio::test]
    async fn a_cancelled_wait_leaves_the_queue() {
        let hasher = Hasher::new(1);
        hasher.set_max_waiting(1);
        let held = Arc::clone(&hasher.permits)
            .try_acquire_owned()
            .expect("the permit");
        let waited = tokio::time::timeout(
            std::time::Duration::from_millis(20),
            hasher.verify("x", Some("not a hash")),
        )
        .await;
        assert!(waited.is_err(), "it waited for the permit");
        assert_eq!(hasher.waiting.load(Ordering::SeqCst), 0);
        drop(held);
        assert!(
            !hasher
                .verify("x", Some("not a hash"))
                .await
                .expect("verify")
        );
    }
}
