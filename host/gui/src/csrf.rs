//! CSRF tokens: a session's token is derived from the session's secret
//! (which only the `HttpOnly` cookie holds), so a page can put it in its
//! forms and no other site can compute it; the login form, which has no
//! session yet, uses a random token in a cookie of its own (double
//! submit). Both are compared in constant time.

use sha2::{Digest, Sha256};

/// The name of the hidden field every form carries.
pub(crate) const FIELD: &str = "csrf";

/// The CSRF token of the session whose secret is `session`.
pub(crate) fn for_session(session: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"syncplane-gui-csrf\0");
    hasher.update(session.as_bytes());
    hex(&hasher.finalize())
}

/// A fresh random token (128 bits), for the login form.
pub(crate) fn random() -> String {
    hex(&rand::random::<[u8; 16]>())
}

/// Whether `given` is `expected`, compared in constant time (for tokens
/// of equal length, which ours are).
pub(crate) fn matches(expected: &str, given: &str) -> bool {
    let (a, b) = (expected.as_bytes(), given.as_bytes());
    if a.len() != b.len() || a.is_empty() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_token_is_stable_per_session_and_differs_between_sessions() {
        let a = for_session("secret-a");
        assert_eq!(a, for_session("secret-a"));
        assert_ne!(a, for_session("secret-b"));
        assert!(!a.contains("secret"));
        assert!(matches(&a, &for_session("secret-a")));
        assert!(!matches(&a, &for_session("secret-b")));
        assert!(!matches(&a, ""));
        assert!(!matches("", ""));
        assert_ne!(random(), random());
    }
}
