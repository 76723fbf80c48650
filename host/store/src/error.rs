//! Store errors.

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database could not be opened or created.
    #[error("cannot open the database at {path}")]
    Open {
        /// The database file.
        path: String,
        /// The cause.
        #[source]
        source: sqlx::Error,
    },
    /// The internal tables could not be created.
    #[error("cannot prepare the database schema")]
    Migrate(#[source] sqlx::Error),
    /// A statement failed.
    #[error("database statement failed: {statement}")]
    Query {
        /// The statement, without values.
        statement: String,
        /// The cause.
        #[source]
        source: sqlx::Error,
    },
    /// A table keeps a column whose type does not fit the one asked for.
    #[error("{0}")]
    Conflict(String),
}

/// Result with the store's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn query_error(statement: &str) -> impl FnOnce(sqlx::Error) -> Error + '_ {
    move |source| Error::Query {
        statement: statement.to_owned(),
        source,
    }
}
