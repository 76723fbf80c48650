//! Why tests could not be run at all (as opposed to a test failing, which
//! is a [`crate::TestResult`]).

use std::path::PathBuf;

/// A problem that stops a test file, or the whole run, before its tests
/// can pass or fail.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A test file is not valid: YAML syntax, an unknown key, a value of
    /// the wrong type, an action that is not exactly one.
    #[error("{}:{line}:{column}: {message}", path.display())]
    Parse {
        /// The test file.
        path: PathBuf,
        /// 1-based; 0 when unknown.
        line: usize,
        /// 1-based; 0 when unknown.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// The service directory has no `tests/*.yaml`.
    #[error("no test files in {} (tests/*.yaml)", dir.display())]
    NoTests {
        /// The service directory.
        dir: PathBuf,
    },
    /// Building the service's components failed.
    #[error("building the service failed")]
    Build(#[from] syncplane_guest_build::Error),
    /// The service (or a service named in `services`) did not load or
    /// install as the platform would install it.
    #[error("the service at {} does not load", dir.display())]
    Load {
        /// The service directory.
        dir: PathBuf,
        /// The platform's refusal (boxed: the platform's errors are large).
        #[source]
        source: Box<syncplane_platform::Error>,
    },
    /// The throwaway host could not be set up.
    #[error("cannot start the test host")]
    Host(#[source] Box<syncplane_platform::Error>),
    /// A temporary directory or the async runtime could not be created.
    #[error("cannot set up the test run")]
    Setup(#[source] std::io::Error),
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
