//! Store errors.

/// What went wrong in the store.
///
/// [`Error::Busy`], [`Error::Full`] and [`Error::Io`] are faults of the
/// database, not of the statement: nothing was written, and the same
/// request may succeed later ([`Error::is_unavailable`]).
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
    /// Another connection (another process) held a lock on the database
    /// past the busy timeout, or every connection stayed taken past the
    /// acquire timeout; nothing was written.
    #[error("the database is busy (locked by another connection): {statement}")]
    Busy {
        /// The statement, without values.
        statement: String,
        /// The cause (`SQLITE_BUSY`, `SQLITE_LOCKED` or a pool timeout).
        #[source]
        source: sqlx::Error,
    },
    /// The disk holding the database is full (`SQLITE_FULL`); the
    /// transaction was rolled back and nothing was written.
    #[error("the disk holding the database is full: {statement}")]
    Full {
        /// The statement, without values.
        statement: String,
        /// The cause.
        #[source]
        source: sqlx::Error,
    },
    /// Reading or writing the database file failed (`SQLITE_IOERR`); the
    /// transaction was rolled back and nothing was written.
    #[error("database file I/O failed: {statement}")]
    Io {
        /// The statement, without values.
        statement: String,
        /// The cause.
        #[source]
        source: sqlx::Error,
    },
    /// A write would give two live rows the same values of a unique index
    /// (`SQLITE_CONSTRAINT_UNIQUE`); nothing of the statement was written.
    #[error("{table}: the values of {} must be unique", columns.join(", "))]
    Unique {
        /// The table.
        table: String,
        /// The index's columns.
        columns: Vec<String>,
    },
    /// A table keeps a column whose type does not fit the one asked for.
    #[error("{0}")]
    Conflict(String),
    /// The store's location cannot be used (an unknown URL scheme).
    #[error("{0}")]
    Location(String),
    /// A newer syncplane wrote the store: this binary does not know its
    /// schema and leaves it alone.
    #[error(
        "the store has schema version {found}, newer than this syncplane knows ({supported}); \
         run the syncplane that wrote it, or a newer one"
    )]
    TooNew {
        /// The version the store records.
        found: i64,
        /// The newest version this binary writes.
        supported: i64,
    },
}

impl Error {
    /// Whether the database was busy (locked by another connection).
    pub fn is_busy(&self) -> bool {
        matches!(self, Error::Busy { .. })
    }

    /// Whether the disk holding the database is full.
    pub fn is_full(&self) -> bool {
        matches!(self, Error::Full { .. })
    }

    /// Whether the database, not the statement, failed: busy, full or an
    /// I/O error. Nothing was written; the same work may succeed later.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            Error::Busy { .. } | Error::Full { .. } | Error::Io { .. }
        )
    }
}

/// Result with the store's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// SQLite's primary result codes this module tells apart (the low byte of
/// an extended code: `SQLITE_BUSY_SNAPSHOT` is `SQLITE_BUSY`).
mod code {
    pub const BUSY: i32 = 5;
    pub const LOCKED: i32 = 6;
    pub const IOERR: i32 = 10;
    pub const FULL: i32 = 13;
    /// `SQLITE_CONSTRAINT_UNIQUE`, an extended code.
    pub const CONSTRAINT_UNIQUE: i32 = 2067;
}

/// PostgreSQL's SQLSTATE codes this module tells apart.
mod sqlstate {
    pub const UNIQUE_VIOLATION: &str = "23505";
    pub const DISK_FULL: &str = "53100";
    pub const LOCK_NOT_AVAILABLE: &str = "55P03";
    pub const SERIALIZATION_FAILURE: &str = "40001";
    pub const DEADLOCK_DETECTED: &str = "40P01";
    pub const QUERY_CANCELED: &str = "57014";
    /// Class 08: the connection failed; class 57P: the server shuts down.
    pub fn connection_lost(code: &str) -> bool {
        code.starts_with("08") || code.starts_with("57P")
    }
}

/// Turns a failure of `statement` into the matching [`Error`].
pub(crate) fn classify(statement: &str, source: sqlx::Error) -> Error {
    let statement = statement.to_owned();
    if let sqlx::Error::Database(db) = &source
        && let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
    {
        let code = pg.code().to_owned();
        let unique = (code == sqlstate::UNIQUE_VIOLATION)
            .then(|| Some((pg.table()?.to_owned(), key_columns(pg.detail()?)?)))
            .flatten();
        return classify_postgres(statement, &code, unique, source);
    }
    if let sqlx::Error::Database(db) = &source
        && db.code().and_then(|c| c.parse::<i32>().ok()) == Some(code::CONSTRAINT_UNIQUE)
        && let Some(unique) = unique_violation(db.message())
    {
        return unique;
    }
    let primary = match &source {
        sqlx::Error::PoolTimedOut => Some(code::BUSY),
        sqlx::Error::Io(_) => Some(code::IOERR),
        sqlx::Error::Database(db) => db
            .code()
            .and_then(|c| c.parse::<i32>().ok())
            .map(|c| c & 0xff),
        _ => None,
    };
    match primary {
        Some(code::BUSY | code::LOCKED) => Error::Busy { statement, source },
        Some(code::FULL) => Error::Full { statement, source },
        Some(code::IOERR) => Error::Io { statement, source },
        _ => Error::Query { statement, source },
    }
}

/// [`classify`] for a PostgreSQL error with SQLSTATE `code`; `unique` is
/// the table and columns of a unique violation.
fn classify_postgres(
    statement: String,
    code: &str,
    unique: Option<(String, Vec<String>)>,
    source: sqlx::Error,
) -> Error {
    if let Some((table, columns)) = unique {
        return Error::Unique { table, columns };
    }
    match code {
        sqlstate::LOCK_NOT_AVAILABLE
        | sqlstate::SERIALIZATION_FAILURE
        | sqlstate::DEADLOCK_DETECTED
        | sqlstate::QUERY_CANCELED => Error::Busy { statement, source },
        sqlstate::DISK_FULL => Error::Full { statement, source },
        code if sqlstate::connection_lost(code) => Error::Io { statement, source },
        _ => Error::Query { statement, source },
    }
}

/// Reads the columns of PostgreSQL's `Key (a, b)=(1, 2) already exists.`
fn key_columns(detail: &str) -> Option<Vec<String>> {
    let list = detail.strip_prefix("Key (")?;
    let (list, _) = list.split_once(")=(")?;
    Some(
        list.split(", ")
            .map(|c| c.trim_matches('"').to_owned())
            .collect(),
    )
}

/// Reads SQLite's `UNIQUE constraint failed: t.a, t.b`.
fn unique_violation(message: &str) -> Option<Error> {
    let list = message.strip_prefix("UNIQUE constraint failed: ")?;
    let mut table = None;
    let mut columns = Vec::new();
    for item in list.split(", ") {
        let (t, c) = item.split_once('.')?;
        table.get_or_insert_with(|| t.to_owned());
        columns.push(c.to_owned());
    }
    Some(Error::Unique {
        table: table?,
        columns,
    })
}

pub(crate) fn query_error(statement: &str) -> impl FnOnce(sqlx::Error) -> Error + '_ {
    move |source| classify(statement, source)
}
