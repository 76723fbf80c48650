//! Engine errors.

use syncplane_core::error_chain as chain;

/// What stopped a synchronizer pass.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading pending work or recording an outcome failed.
    #[error("bookkeeping failed: {}", chain(.0))]
    Core(#[from] syncplane_core::Error),
}

/// Result with the engine's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
