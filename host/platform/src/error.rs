//! Platform errors.

/// What went wrong opening the host or installing a service.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The manifest is invalid; the message says where.
    #[error("invalid service manifest: {0}")]
    Manifest(String),
    /// A file of a service directory could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The data directory could not be prepared.
    #[error("cannot prepare the data directory {path}")]
    DataDir {
        /// The directory.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A package names a file or step that is not in it, or a model no file defines.
    #[error("invalid service package: {0}")]
    Package(String),
    /// The service's models do not parse or fit.
    #[error("service `{service}` has invalid models:\n{source}")]
    Models {
        /// The service.
        service: String,
        /// The xproto errors, with file:line:column.
        source: syncplane_xproto::Error,
    },
    /// A component could not be loaded.
    #[error(transparent)]
    Component(#[from] syncplane_runtime::Error),
    /// The operator's policy does not allow what the package asks for;
    /// nothing was installed.
    #[error("service `{service}` asks for capabilities the operator's policy does not allow:\n  - {}", .refused.join("\n  - "))]
    Refused {
        /// The service.
        service: String,
        /// Each grant not allowed, with how to allow it.
        refused: Vec<String>,
    },
    /// No such service is installed.
    #[error("no service `{0}` is installed")]
    UnknownService(String),
    /// A config or secret name the service's manifest does not declare.
    #[error("service `{service}` declares no {kind} `{name}` (its manifest lists: {declared})")]
    Undeclared {
        /// The service.
        service: String,
        /// `config` or `secret`.
        kind: &'static str,
        /// The name asked for.
        name: String,
        /// What the manifest declares.
        declared: String,
    },
    /// The secret key file is missing or unusable.
    #[error("secret key {path}: {message}")]
    SecretKey {
        /// The key file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A stored secret does not open with the host's key.
    #[error(
        "secret `{name}` of service `{service}` cannot be opened with this host's secret key (was the key replaced?)"
    )]
    Secret {
        /// The service.
        service: String,
        /// The secret's name.
        name: String,
    },
    /// The core failed.
    #[error(transparent)]
    Core(#[from] syncplane_core::Error),
}

impl Error {
    /// Whether the caller sent something wrong (a 4xx), not the host failing.
    pub fn is_client_error(&self) -> bool {
        match self {
            Error::Core(e) => e.is_client_error(),
            Error::DataDir { .. } | Error::SecretKey { .. } | Error::Secret { .. } => false,
            _ => true,
        }
    }
}

/// Result with the platform's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
