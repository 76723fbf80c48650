//! Engine errors.

/// What stopped a synchronizer pass.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading pending work or recording an outcome failed.
    #[error("bookkeeping failed: {}", chain(.0))]
    Core(#[from] syncplane_core::Error),
}

/// Result with the engine's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// `error` and each error under it, joined by `: `, so a log line says
/// what failed down to the database's own words.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}
