//! Password hashing (argon2) off the async workers, bounded, and never
//! while a database transaction is open.
//!
//! Every hash and verification runs on tokio's blocking pool, behind a
//! semaphore with one permit per core less one (at least one), so a flood
//! of logins can occupy neither the async workers nor the whole blocking
//! pool nor every core. Waiting for a permit is an async wait: it costs a
//! task, not a thread.

use std::sync::Arc;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use tokio::sync::{OnceCell, Semaphore};

use crate::error::{Error, Result};

/// Hashes and verifies passwords with bounded concurrency.
#[derive(Debug)]
pub(crate) struct Hasher {
    permits: Arc<Semaphore>,
    /// A hash of a random password with the same parameters as real ones:
    /// an unknown user is verified against it, so that it costs as much as
    /// a wrong password.
    dummy: OnceCell<String>,
}

impl Hasher {
    /// A hasher allowing `concurrency` hashes at a time.
    pub(crate) fn new(concurrency: usize) -> Self {
        Hasher {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            dummy: OnceCell::new(),
        }
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
    /// [`Error::Hash`] when the pool is gone or the dummy cannot be made.
    pub(crate) async fn verify(&self, plain: &str, hash: Option<&str>) -> Result<bool> {
        let (hash, real) = match hash {
            Some(h) => (h.to_owned(), true),
            None => (self.dummy_hash().await?.to_owned(), false),
        };
        let plain = plain.to_owned();
        let matched = self.run(move || verify_password(&plain, &hash)).await?;
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
}
