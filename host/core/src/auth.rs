//! The core's authentication state: the password [`Hasher`], the caches of
//! recent successful checks, and the epoch that invalidates them.
//!
//! # Guarantees
//!
//! Every committed write to a `User` object (create, update, delete) and
//! every revocation of a token advances the epoch *after* it commits; a
//! cache entry is only used while the epoch it was read under is current.
//! A reader takes the epoch before it reads the database, so an entry can
//! never outlive a change that committed after its read: a password
//! change, a deactivation, a revoked token or a changed `is_admin` is seen
//! by the very next request.
//!
//! # Caveats
//!
//! The caches hold successes only (failures always cost a hash), are
//! bounded ([`MAX_ENTRIES`], cleared whole when full) and live in this
//! process: another process writing the same database would not invalidate
//! them, which syncplane never does (one server per data directory).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

use crate::object::Object;
use crate::password::Hasher;
use crate::tokens::TokenInfo;

/// The most entries one cache holds before it is cleared.
pub const MAX_ENTRIES: usize = 10_000;

/// How the core authenticates; see [`crate::Core::set_auth_options`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthOptions {
    /// How long a successful password check is remembered for the same
    /// e-mail and password, so that repeated HTTP Basic requests do not
    /// each cost an argon2 verification. Any change of a user (its
    /// password above all) or revocation forgets every entry at once.
    /// `Duration::ZERO` disables the cache. Default: 60 s.
    pub credential_cache_ttl: Duration,
    /// How many password checks may wait for the hashing pool (which runs
    /// one check per core, less one). Beyond it a check is refused at once
    /// with [`crate::Error::PasswordChecksBusy`] (the API answers `503`
    /// with `Retry-After`). Token and cached checks never wait. `0`: no
    /// check waits. Default: 4 per permit of the pool.
    pub max_waiting_password_checks: usize,
}

impl Default for AuthOptions {
    fn default() -> Self {
        AuthOptions {
            credential_cache_ttl: Duration::from_secs(60),
            max_waiting_password_checks: Hasher::default_max_waiting(),
        }
    }
}

#[derive(Debug)]
struct CachedUser {
    user: Object,
    epoch: u64,
    at: Instant,
}

#[derive(Debug)]
struct CachedToken {
    user: Object,
    info: TokenInfo,
    epoch: u64,
}

/// Hashing, caches and their epoch; one per [`crate::Core`].
pub(crate) struct Auth {
    pub(crate) hasher: Hasher,
    epoch: AtomicU64,
    /// Keys the credential cache, so that its keys are no plain SHA-256 of
    /// a password that could be looked up in a table.
    key: [u8; 32],
    options: Mutex<AuthOptions>,
    credentials: Mutex<HashMap<[u8; 32], CachedUser>>,
    tokens: Mutex<HashMap<String, CachedToken>>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the cache key nor cached users' fields (password hashes).
        f.debug_struct("Auth")
            .field("hasher", &self.hasher)
            .field("epoch", &self.epoch)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Auth {
    pub(crate) fn new() -> Self {
        Auth {
            hasher: Hasher::new(Hasher::default_concurrency()),
            epoch: AtomicU64::new(0),
            key: rand::random(),
            options: Mutex::new(AuthOptions::default()),
            credentials: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn set_options(&self, options: AuthOptions) {
        self.hasher
            .set_max_waiting(options.max_waiting_password_checks);
        *lock(&self.options) = options;
        lock(&self.credentials).clear();
    }

    /// The current epoch; take it *before* reading what will be cached.
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    /// Forgets every cached check; call after a committed change of a user
    /// or a token.
    pub(crate) fn invalidate(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
    }

    /// The cache key of a pair of credentials.
    pub(crate) fn credential_key(&self, email: &str, password: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.key);
        h.update((email.len() as u64).to_le_bytes());
        h.update(email.as_bytes());
        h.update(password.as_bytes());
        h.finalize().into()
    }

    pub(crate) fn cached_credential(&self, key: &[u8; 32]) -> Option<Object> {
        let ttl = lock(&self.options).credential_cache_ttl;
        if ttl.is_zero() {
            return None;
        }
        let epoch = self.epoch();
        let mut cache = lock(&self.credentials);
        match cache.get(key) {
            Some(c) if c.epoch == epoch && c.at.elapsed() < ttl => Some(c.user.clone()),
            Some(_) => {
                cache.remove(key);
                None
            }
            None => None,
        }
    }

    pub(crate) fn cache_credential(&self, key: [u8; 32], user: &Object, epoch: u64) {
        if lock(&self.options).credential_cache_ttl.is_zero() {
            return;
        }
        let mut cache = lock(&self.credentials);
        if cache.len() >= MAX_ENTRIES {
            cache.clear();
        }
        cache.insert(
            key,
            CachedUser {
                user: user.clone(),
                epoch,
                at: Instant::now(),
            },
        );
    }

    /// The cached user and token of the token whose digest is `key`, while
    /// the epoch is the one it was read under and it has not expired.
    pub(crate) fn cached_token(&self, key: &str, now: f64) -> Option<(Object, TokenInfo)> {
        let epoch = self.epoch();
        let mut cache = lock(&self.tokens);
        match cache.get(key) {
            Some(c) if c.epoch == epoch && !c.info.is_expired(now) => {
                Some((c.user.clone(), c.info.clone()))
            }
            Some(_) => {
                cache.remove(key);
                None
            }
            None => None,
        }
    }

    pub(crate) fn cache_token(&self, key: String, user: &Object, info: &TokenInfo, epoch: u64) {
        let mut cache = lock(&self.tokens);
        if cache.len() >= MAX_ENTRIES {
            cache.clear();
        }
        cache.insert(
            key,
            CachedToken {
                user: user.clone(),
                info: info.clone(),
                epoch,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> Object {
        Object {
            id: 7,
            model: "User".into(),
            fields: Default::default(),
            sync: Default::default(),
        }
    }

    #[test]
    fn a_cached_credential_is_forgotten_when_the_epoch_moves() {
        let auth = Auth::new();
        let key = auth.credential_key("a@b", "pw");
        auth.cache_credential(key, &user(), auth.epoch());
        assert_eq!(auth.cached_credential(&key).map(|u| u.id), Some(7));
        auth.invalidate();
        assert!(auth.cached_credential(&key).is_none());
    }

    #[test]
    fn an_entry_read_before_a_change_is_never_served_after_it() {
        let auth = Auth::new();
        let key = auth.credential_key("a@b", "pw");
        let read_under = auth.epoch();
        auth.invalidate(); // a change commits while the check runs
        auth.cache_credential(key, &user(), read_under);
        assert!(auth.cached_credential(&key).is_none());
    }

    #[test]
    fn credential_keys_differ_by_password_and_split_point() {
        let auth = Auth::new();
        assert_ne!(
            auth.credential_key("a@b", "pw"),
            auth.credential_key("a@b", "pW")
        );
        assert_ne!(
            auth.credential_key("ab", "c"),
            auth.credential_key("a", "bc")
        );
    }

    #[test]
    fn a_zero_ttl_disables_the_credential_cache() {
        let auth = Auth::new();
        auth.set_options(AuthOptions {
            credential_cache_ttl: Duration::ZERO,
            ..AuthOptions::default()
        });
        let key = auth.credential_key("a@b", "pw");
        auth.cache_credential(key, &user(), auth.epoch());
        assert!(auth.cached_credential(&key).is_none());
    }
}
