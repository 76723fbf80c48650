//! Errors of parsing and validation.

use std::fmt;

use crate::ir::Location;

/// A syntax error at a position in a source file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{location}: {message}")]
pub struct ParseError {
    /// Where the error is.
    pub location: Location,
    /// What is wrong.
    pub message: String,
}

impl ParseError {
    pub(crate) fn new(location: Location, message: String) -> Self {
        ParseError { location, message }
    }
}

/// Semantic errors found when a set of files is put together; all of them,
/// not only the first.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ValidationErrors(pub Vec<ParseError>);

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// Any error of this crate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A file did not parse.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// The files parsed but do not fit together.
    #[error(transparent)]
    Invalid(#[from] ValidationErrors),
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
