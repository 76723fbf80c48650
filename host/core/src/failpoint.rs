//! A test hook: with `SYNCPLANE_FAILPOINT=<name>` in its environment, the
//! process aborts when it reaches the point of that name, as a `SIGKILL`
//! would stop it there, so end-to-end tests can check what a crash at an
//! exact moment leaves behind. Unset, it costs one comparison.

use std::sync::OnceLock;

/// Aborts the process if `SYNCPLANE_FAILPOINT` names `point`.
pub fn hit(point: &str) {
    static ARMED: OnceLock<Option<String>> = OnceLock::new();
    let armed = ARMED.get_or_init(|| std::env::var("SYNCPLANE_FAILPOINT").ok());
    if armed.as_deref() == Some(point) {
        tracing::error!(
            point,
            "failpoint reached; aborting as asked by SYNCPLANE_FAILPOINT"
        );
        std::process::abort();
    }
}
