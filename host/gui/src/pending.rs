//! Uploaded packages waiting for an administrator's confirmation: the
//! review page keeps the file here under a random token, the confirm form
//! sends the token back, and only the session that uploaded it may take
//! it. At most [`MAX_PENDING`] are kept (the oldest goes first), each for
//! [`KEEP`] at most, so uploads cannot pile up in memory.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use crate::csrf;

/// The most uploads kept at once.
const MAX_PENDING: usize = 4;
/// How long an upload waits for its confirmation.
pub(crate) const KEEP: Duration = Duration::from_secs(15 * 60);

struct Upload {
    owner: String,
    kept: Kept,
    at: Instant,
}

/// An upload as the review saw it: the file and how it is to be
/// installed, so the confirmation installs exactly what was reviewed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Kept {
    pub(crate) bytes: Vec<u8>,
    pub(crate) choices: crate::install::Choices,
}

static PENDING: LazyLock<Mutex<HashMap<String, Upload>>> = LazyLock::new(Default::default);

fn lock() -> std::sync::MutexGuard<'static, HashMap<String, Upload>> {
    PENDING.lock().unwrap_or_else(|p| p.into_inner())
}

/// Keeps `kept` for `owner` (a value only its session knows); returns
/// the token that takes it back.
pub(crate) fn keep(owner: &str, kept: Kept) -> String {
    let token = csrf::random();
    let mut pending = lock();
    pending.retain(|_, u| u.at.elapsed() < KEEP);
    while pending.len() >= MAX_PENDING {
        let oldest = pending
            .iter()
            .min_by_key(|(_, u)| u.at)
            .map(|(t, _)| t.clone());
        match oldest {
            Some(t) => pending.remove(&t),
            None => break,
        };
    }
    pending.insert(
        token.clone(),
        Upload {
            owner: owner.to_owned(),
            kept,
            at: Instant::now(),
        },
    );
    token
}

/// Takes the upload `token` of `owner` away, if it is still kept.
pub(crate) fn take(owner: &str, token: &str) -> Option<Kept> {
    let mut pending = lock();
    let fresh = pending
        .get(token)
        .is_some_and(|u| csrf::matches(&u.owner, owner) && u.at.elapsed() < KEEP);
    if !fresh {
        return None;
    }
    pending.remove(token).map(|u| u.kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_owner_takes_an_upload_and_only_once() {
        let kept = Kept {
            bytes: vec![1, 2, 3],
            choices: crate::install::Choices::default(),
        };
        let token = keep("owner-a", kept.clone());
        assert_eq!(take("owner-b", &token), None);
        assert_eq!(take("owner-a", "nope"), None);
        assert_eq!(take("owner-a", &token), Some(kept));
        assert_eq!(take("owner-a", &token), None);
    }
}
