//! Runtime errors.

/// Why a component could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// wasmtime could not be set up.
    #[error("cannot start the component engine: {0}")]
    Engine(String),
    /// The bytes are not a valid component.
    #[error("cannot compile step `{step}` of service `{service}`: {message}")]
    Compile {
        /// The service.
        service: String,
        /// The step.
        step: String,
        /// wasmtime's explanation.
        message: String,
    },
    /// The component does not fit the `sync-step` world.
    #[error("step `{step}` of service `{service}` does not fit the sync-step world: {message}")]
    Link {
        /// The service.
        service: String,
        /// The step.
        step: String,
        /// wasmtime's explanation.
        message: String,
    },
}

/// Result with the runtime's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
