//! The database handle and its transactions.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use tokio::sync::Semaphore;

use crate::backend::{Columns, Conn, Dialect, Pool};
use crate::error::{Error, Result, classify};
use crate::schema::{PartialIndex, TableSpec, quote};
use crate::value::{Condition, Row, SqlValue};

/// How long a statement waits for a lock another connection holds (another
/// process: a backup, an operator's `sqlite3`, a second server started on
/// the same data directory) before it fails with [`Error::Busy`]. Short,
/// because the store has one connection: while a statement waits, every
/// other request waits behind it, and the API answers `503` with
/// `Retry-After` rather than hang. A lock held for a moment (a backup step,
/// a checkpoint) is waited out.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(1);

/// How long a transaction waits for the store's connection before it fails
/// with [`Error::Busy`]: transactions are short, so a wait this long means
/// the connection is stuck behind locked statements.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// Most rows one statement of [`StoreTx::insert_many`] inserts.
const INSERT_CHUNK: usize = 500;

/// Where a store keeps its data.
#[derive(Clone, PartialEq, Eq)]
pub enum Location {
    /// An embedded SQLite file.
    File(PathBuf),
    /// A PostgreSQL database, as a `postgres://USER[:PASSWORD]@HOST[:PORT]/DB`
    /// URL.
    Postgres(String),
}

impl Location {
    /// Reads `--store`'s value: a `postgres://` (or `postgresql://`) URL,
    /// or a `sqlite://PATH` or plain path for an embedded file.
    ///
    /// # Errors
    ///
    /// [`Error::Location`] for another URL scheme.
    pub fn parse(text: &str) -> Result<Location> {
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            return Ok(Location::Postgres(text.to_owned()));
        }
        if let Some(path) = text.strip_prefix("sqlite://") {
            return Ok(Location::File(PathBuf::from(path)));
        }
        if let Some((scheme, _)) = text.split_once("://") {
            return Err(Error::Location(format!(
                "unknown store {scheme}://…: use postgres://USER@HOST:PORT/DB, or a file path for SQLite"
            )));
        }
        Ok(Location::File(PathBuf::from(text)))
    }

    /// The location as it may be shown: a PostgreSQL URL without its
    /// password.
    pub fn redacted(&self) -> String {
        match self {
            Location::File(path) => path.display().to_string(),
            Location::Postgres(url) => redact_url(url),
        }
    }
}

impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password, even in a debug dump.
        write!(f, "Location({})", self.redacted())
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// `url` with the password of its user part replaced by `***`, and any
/// `password=` query parameter dropped.
fn redact_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let (authority, tail) = match rest.find('/') {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    };
    let authority = match authority.rsplit_once('@') {
        Some((user, host)) => match user.split_once(':') {
            Some((name, _)) => format!("{name}:***@{host}"),
            None => format!("{user}@{host}"),
        },
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let kept: Vec<&str> = query
                .split('&')
                .filter(|p| !p.to_ascii_lowercase().starts_with("password="))
                .collect();
            if kept.is_empty() {
                path.to_owned()
            } else {
                format!("{path}?{}", kept.join("&"))
            }
        }
        None => tail.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
}

/// The database: an embedded SQLite file or a PostgreSQL server.
///
/// Cloning is cheap and shares the connections. Writes are serialised
/// through one connection, which keeps SQLite free of `database is locked`
/// errors among our own writers, and gives PostgreSQL the same one-writer
/// semantics (change numbers in commit order, no lost update).
///
/// On SQLite, read-only transactions ([`Store::begin_read`]) run on a pool
/// of [`READERS`] more connections that refuse writes (`query_only`): in
/// WAL mode a reader sees the last commit when it starts and never waits
/// for the writer, so API reads go on in parallel with each other and with
/// a write in progress, instead of queueing for the one connection.
///
/// # Guarantees
///
/// - SQLite: the file is in WAL mode with `synchronous = FULL`: a commit
///   returns only after the WAL is synced, so an acknowledged transaction
///   survives a killed process and a power loss. PostgreSQL gives the same
///   with its default `synchronous_commit = on`.
/// - A commit that fails (`SQLITE_FULL` on a full disk, an I/O error, a
///   lost server) is rolled back and its connection closed, so the next
///   transaction starts on a fresh connection and nothing of the failed
///   one is acknowledged later ([`StoreTx::commit`]).
/// - Object ids come from a numbering that never reuses one, across
///   deletions and restarts ([`StoreTx::allocate_id`]).
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) pool: Pool,
    /// Read-only connections, where the engine has them (SQLite).
    readers: Option<Pool>,
    /// What this store's connections call themselves: unique to it, so
    /// that its own change notifications can be told apart.
    pub(crate) instance: Arc<str>,
}

/// A name for a store's connections that no other process's store has:
/// `syncplane <pid>.<start time in ns>`.
fn instance_name() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("syncplane {}.{nanos}", std::process::id())
}

/// Connections of the read-only pool of a SQLite store.
pub const READERS: u32 = 4;

/// Connections to a PostgreSQL store. Transactions that write run one at a
/// time on every host (they hold one advisory lock); the others serve
/// reads, lease claims and the change listener.
pub const PG_CONNECTIONS: u32 = 6;

impl Store {
    /// Opens (creating when missing) the SQLite database file at `path`.
    ///
    /// # Errors
    ///
    /// [`Error::Open`] when the file cannot be opened, [`Error::Migrate`] when
    /// the internal tables cannot be created, [`Error::TooNew`] when a newer
    /// syncplane wrote the file.
    pub async fn open(path: &Path) -> Result<Store> {
        let display = path.display().to_string();
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{display}"))
            .map_err(|source| Error::Open {
                path: display.clone(),
                source,
            })?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(false)
            // A pass reads up to a few thousand rows at once; a deep row
            // buffer lets the worker thread produce them without waiting for
            // the reader every 50 rows (a context switch each time).
            .row_buffer_size(4096)
            // Reads through a memory map instead of a read() call per page;
            // writes still go through the WAL as before.
            .pragma("mmap_size", "268435456");
        // No ping before each use: a connection to a local file does not
        // go stale (one that failed a commit is closed instead), and the
        // ping is a round trip to the connection's thread per transaction.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options.clone())
            .await
            .map_err(|source| Error::Open {
                path: display.clone(),
                source,
            })?;
        let mut store = Store::migrated(Pool::Sqlite(pool), instance_name()).await?;
        // Opened once the tables exist; connections open when first needed.
        let readers = SqlitePoolOptions::new()
            .max_connections(READERS)
            .min_connections(0)
            .test_before_acquire(false)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_lazy_with(options.create_if_missing(false).pragma("query_only", "ON"));
        store.readers = Some(Pool::Sqlite(readers));
        Ok(store)
    }

    /// Connects to the PostgreSQL database at `url` (which must exist) and
    /// brings its schema up to date.
    ///
    /// # Errors
    ///
    /// [`Error::Open`] when the server cannot be reached or refuses the
    /// login (the error shows the URL without its password),
    /// [`Error::Migrate`] and [`Error::TooNew`] as for [`Store::open`].
    pub async fn connect_postgres(url: &str) -> Result<Store> {
        let shown = redact_url(url);
        let instance = instance_name();
        let options = PgConnectOptions::from_str(url)
            .map_err(|source| Error::Open {
                path: shown.clone(),
                source,
            })?
            .application_name(&instance)
            // A row lock held by another session (another host, an
            // operator's psql) fails the statement as SQLite's busy
            // timeout does, instead of waiting forever.
            .options([
                (
                    "lock_timeout",
                    format!("{}ms", BUSY_TIMEOUT.as_millis()).as_str(),
                ),
                // `CREATE … IF NOT EXISTS` on every start would otherwise
                // log a notice per table and index.
                ("client_min_messages", "warning"),
            ]);
        let pool = PgPoolOptions::new()
            .max_connections(PG_CONNECTIONS)
            .min_connections(1)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(|source| Error::Open {
                path: shown,
                source,
            })?;
        Store::migrated(Pool::Postgres(pool, Arc::new(Semaphore::new(1))), instance).await
    }

    /// The store on `pool`, its tables brought up to date.
    async fn migrated(pool: Pool, instance: String) -> Result<Store> {
        let store = Store {
            pool,
            readers: None,
            instance: instance.into(),
        };
        crate::migrate::run(&store).await?;
        Ok(store)
    }

    /// Opens the store at `location`.
    ///
    /// # Errors
    ///
    /// As [`Store::open`] and [`Store::connect_postgres`].
    pub async fn connect(location: &Location) -> Result<Store> {
        match location {
            Location::File(path) => Store::open(path).await,
            Location::Postgres(url) => Store::connect_postgres(url).await,
        }
    }

    /// The engine the store runs on.
    pub fn dialect(&self) -> Dialect {
        self.pool.dialect()
    }

    /// Starts a transaction. Dropping it without [`StoreTx::commit`] rolls back.
    ///
    /// # Errors
    ///
    /// [`Error::Busy`] when the connection stays taken past
    /// [`ACQUIRE_TIMEOUT`]; [`Error::Query`] when the database is
    /// unavailable.
    pub async fn begin(&self) -> Result<StoreTx> {
        let conn = self.pool.begin().await?;
        Ok(StoreTx { conn, open: true })
    }

    /// Starts a transaction that only reads: on SQLite, on one of the
    /// read-only connections, so it neither waits for nor delays the
    /// writer; its statements see one snapshot, taken at its first read.
    /// A write in it fails (`attempt to write a readonly database`). On
    /// PostgreSQL it is a `REPEATABLE READ READ ONLY` transaction that does
    /// not wait for the writers' lock.
    ///
    /// # Errors
    ///
    /// As [`Store::begin`].
    pub async fn begin_read(&self) -> Result<StoreTx> {
        let conn = self.read_pool().begin_read().await?;
        Ok(StoreTx { conn, open: true })
    }

    /// The read-only connections, or the writer's without them.
    pub(crate) fn read_pool(&self) -> &Pool {
        self.readers.as_ref().unwrap_or(&self.pool)
    }

    /// Creates the table of `spec`, or adds the columns it lacks.
    ///
    /// # Errors
    ///
    /// [`Error::Query`] when a statement fails.
    pub async fn ensure_table(&self, spec: &TableSpec) -> Result<()> {
        let mut tx = self.begin().await?;
        tx.ensure_table(spec).await?;
        tx.commit().await
    }

    /// Reads the rows matching all `conditions`, ordered by id, outside a
    /// transaction: one statement, one consistent snapshot, and no
    /// `BEGIN`/`ROLLBACK` round trips to the connection's worker thread.
    ///
    /// # Errors
    ///
    /// [`Error::Query`] when the statement fails.
    pub async fn select(
        &self,
        spec: &TableSpec,
        conditions: &[Condition],
        limit: Option<u32>,
    ) -> Result<Vec<(i64, Row)>> {
        Ok(self
            .select_values(spec, conditions, limit)
            .await?
            .into_iter()
            .map(|(id, values)| (id, named(spec, values)))
            .collect())
    }

    /// [`Store::select`] with each row's values in the order of
    /// `spec.columns`: no column name is copied, which matters when a
    /// pass reads thousands of rows.
    ///
    /// # Errors
    ///
    /// [`Error::Query`] when the statement fails.
    pub async fn select_values(
        &self,
        spec: &TableSpec,
        conditions: &[Condition],
        limit: Option<u32>,
    ) -> Result<Vec<(i64, Vec<SqlValue>)>> {
        let (sql, binds) = select_sql(self.dialect(), spec, conditions, limit);
        self.pool
            .fetch(&sql, &binds, |r| decode_values(spec, r))
            .await
    }

    /// Closes the connection, waiting for it to finish.
    pub async fn close(&self) {
        if let Some(readers) = &self.readers {
            readers.close().await;
        }
        self.pool.close().await;
    }
}

/// A transaction on the [`Store`].
///
/// Dropping it without [`StoreTx::commit`] rolls back (the rollback runs
/// on the connection before its next statement).
pub struct StoreTx {
    pub(crate) conn: Conn,
    /// Whether the transaction still needs a COMMIT or a ROLLBACK.
    open: bool,
}

impl Drop for StoreTx {
    fn drop(&mut self) {
        if self.open {
            self.conn.start_rollback();
        }
    }
}

impl std::fmt::Debug for StoreTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreTx")
    }
}

/// `values` named by `spec`'s columns.
fn named(spec: &TableSpec, values: Vec<SqlValue>) -> Row {
    let names = spec.columns.iter().map(|c| c.name.clone());
    names.zip(values).collect()
}

/// Renders `conditions` as a `WHERE` clause (nothing when there are none).
pub(crate) fn push_where(
    dialect: Dialect,
    sql: &mut String,
    binds: &mut Vec<SqlValue>,
    conditions: &[Condition],
) {
    for (i, condition) in conditions.iter().enumerate() {
        sql.push_str(if i == 0 { " WHERE " } else { " AND " });
        condition.render(dialect, sql, binds);
    }
}

fn select_sql(
    dialect: Dialect,
    spec: &TableSpec,
    conditions: &[Condition],
    limit: Option<u32>,
) -> (String, Vec<SqlValue>) {
    // Columns named in spec order, so that rows decode by position.
    let mut sql = String::from("SELECT id");
    for column in &spec.columns {
        sql.push_str(", ");
        sql.push_str(&quote(&column.name));
    }
    sql.push_str(" FROM ");
    sql.push_str(&quote(&spec.name));
    let mut binds = Vec::new();
    push_where(dialect, &mut sql, &mut binds, conditions);
    sql.push_str(" ORDER BY id");
    if let Some(limit) = limit {
        sql.push_str(&format!(" LIMIT {limit}"));
    }
    (sql, binds)
}

/// Decodes a row selected by [`select_sql`] into its id and its values in
/// `spec.columns` order.
pub(crate) fn decode_values(
    spec: &TableSpec,
    row: &dyn Columns,
) -> Result<(i64, Vec<SqlValue>), sqlx::Error> {
    let id = row.int(0)?.unwrap_or_default();
    let mut out = Vec::with_capacity(spec.columns.len());
    for (i, column) in spec.columns.iter().enumerate() {
        out.push(row.value(i + 1, column.ty)?);
    }
    Ok((id, out))
}

/// The one integer a statement such as `SELECT COUNT(*)` returns.
fn single(rows: Vec<Option<i64>>, sql: &str) -> Result<Option<i64>> {
    match rows.as_slice() {
        [value] => Ok(*value),
        _ => Err(Error::Conflict(format!(
            "{sql}: expected one row, got {}",
            rows.len()
        ))),
    }
}

impl StoreTx {
    /// The engine the transaction runs on.
    pub fn dialect(&self) -> Dialect {
        self.conn.dialect()
    }

    /// Creates the table of `spec`, or adds the columns it lacks, as part
    /// of this transaction (both engines' DDL is transactional: a rollback
    /// leaves no table behind).
    ///
    /// # Errors
    ///
    /// [`Error::Query`] when a statement fails.
    pub async fn ensure_table(&mut self, spec: &TableSpec) -> Result<()> {
        let dialect = self.dialect();
        self.conn.execute(&spec.create_sql(dialect), &[]).await?;
        let existing = self.columns(&spec.name).await?;
        for column in &spec.columns {
            if !existing.iter().any(|(name, _)| name == &column.name) {
                let add = spec.add_column_sql(dialect, column);
                self.conn.execute(&add, &[]).await?;
                // Rows that exist get the field's default, as new ones do.
                if let Some(default) = &column.default {
                    let fill = format!(
                        "UPDATE {} SET {} = ?",
                        quote(&spec.name),
                        quote(&column.name)
                    );
                    self.conn
                        .execute(&fill, std::slice::from_ref(default))
                        .await?;
                }
            } else if let Some((_, declared)) =
                existing.iter().find(|(name, _)| name == &column.name)
                && !declared.eq_ignore_ascii_case(column.ty.sql())
            {
                return Err(Error::Conflict(format!(
                    "table {} keeps column {} as {declared} from an earlier version; it cannot hold {}",
                    spec.name,
                    column.name,
                    column.ty.sql()
                )));
            }
            if column.indexed {
                self.conn
                    .execute(&spec.index_sql(dialect, column), &[])
                    .await?;
            }
        }
        for index in &spec.partial_indexes {
            self.conn
                .execute(&index.create_sql(dialect, &spec.name), &[])
                .await?;
        }
        Ok(())
    }

    /// The columns a table has now, with their declared types as
    /// [`ColumnType::sql`] names them (`INTEGER`, `REAL`, `TEXT`) whichever
    /// the engine; none when the table does not exist.
    ///
    /// # Errors
    ///
    /// [`Error::Query`] when the statement fails.
    pub async fn columns(&mut self, table: &str) -> Result<Vec<(String, String)>> {
        let (sql, binds) = match self.dialect() {
            Dialect::Sqlite => (
                format!(
                    "SELECT name, type FROM pragma_table_info({})",
                    sql_text(table)
                ),
                Vec::new(),
            ),
            Dialect::Postgres => (
                "SELECT column_name::text, data_type::text FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name = ? ORDER BY ordinal_position"
                    .to_owned(),
                vec![SqlValue::Text(table.to_owned())],
            ),
        };
        let dialect = self.dialect();
        self.conn
            .fetch(&sql, &binds, |r| {
                let declared = r.text(1)?.unwrap_or_default();
                Ok((
                    r.text(0)?.unwrap_or_default(),
                    dialect.portable_type(declared),
                ))
            })
            .await
    }

    /// Drops the table of `spec` (the caller checked that it is empty).
    ///
    /// # Errors
    ///
    /// [`Error::Query`] when a statement fails.
    pub async fn drop_table(&mut self, spec: &TableSpec) -> Result<()> {
        let drop = format!("DROP TABLE IF EXISTS {}", quote(&spec.name));
        self.conn.execute(&drop, &[]).await?;
        Ok(())
    }

    /// Removes the host record `key` of `namespace`, if there is one.
    ///
    /// # Errors
    ///
    /// [`Error::Query`] when the statement fails.
    pub async fn delete_record(&mut self, namespace: &str, key: &str) -> Result<()> {
        let sql = "DELETE FROM sp_kv WHERE namespace = ? AND key = ?";
        self.conn
            .execute(sql, &[text(namespace), text(key)])
            .await?;
        Ok(())
    }

    /// Commits the transaction: when this returns `Ok`, the writes are
    /// durable (in SQLite's synced WAL, or committed by PostgreSQL).
    ///
    /// # Errors
    ///
    /// [`Error::Full`] when the disk is full, [`Error::Io`] when the file
    /// cannot be written or the server is lost, [`Error::Busy`] when
    /// another connection holds the lock; [`Error::Query`] otherwise.
    /// Nothing was written then: the transaction is rolled back and its
    /// connection closed, so no later transaction can commit what this one
    /// left behind.
    pub async fn commit(mut self) -> Result<()> {
        self.open = false;
        match self.conn.commit().await {
            Ok(()) => Ok(()),
            Err(source) => {
                let error = classify("COMMIT", source);
                tracing::debug!(error = %error, "commit failed; rolled back, reopening the connection");
                // The engine may have rolled back already; then this fails too.
                let _ = self.conn.rollback().await;
                self.conn.close_on_drop();
                Err(error)
            }
        }
    }

    /// Allocates a new object id, unique across all tables, for an object
    /// whose most specialised model is `model`.
    ///
    /// # Errors
    ///
    /// [`Error::Query`] when the statement fails.
    pub async fn allocate_id(&mut self, model: &str) -> Result<i64> {
        let sql = "INSERT INTO sp_objects (model) VALUES (?) RETURNING id";
        let id = single(self.conn.fetch_ints(sql, &[text(model)]).await?, sql)?;
        id.ok_or_else(|| Error::Conflict(format!("{sql}: no id")))
    }

    /// Allocates `n` new object ids at once, as [`StoreTx::allocate_id`]
    /// does one by one, in increasing order: one statement whatever `n`.
    ///
    /// # Errors
    ///
    /// [`Error::Query`] when the statement fails.
    pub async fn allocate_ids(&mut self, model: &str, n: usize) -> Result<Vec<i64>> {
        if n == 0 {
            return Ok(Vec::new());
        }
        // One statement text for every `n`, so that it is prepared once.
        let sql = match self.dialect() {
            Dialect::Sqlite => {
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) \
                 INSERT INTO sp_objects (model) SELECT ? FROM n RETURNING id"
            }
            Dialect::Postgres => {
                "INSERT INTO sp_objects (model) SELECT ? FROM generate_series(1, ?) RETURNING id"
            }
        };
        let count = i64::try_from(n).map_err(|_| Error::Conflict(format!("{n} ids at once")))?;
        let binds = match self.dialect() {
            Dialect::Sqlite => [SqlValue::Integer(count), text(model)],
            Dialect::Postgres => [text(model), SqlValue::Integer(count)],
        };
        let mut ids: Vec<i64> = self
            .conn
            .fetch_ints(sql, &binds)
            .await?
            .into_iter()
            .flatten()
            .collect();
        ids.sort_unstable();
        Ok(ids)
    }

    /// The model an object id was allocated for, if it still exists.
    ///
    /// # Errors
    ///
    /// [`Error::Query`] when the statement fails.
    pub async fn model_of(&mut self, id: i64) -> Result<Option<String>> {
        let sql = "SELECT model FROM sp_objects WHERE id = ?";
        let rows = self.conn.fetch_texts(sql, &[SqlValue::Integer(id)]).await?;
        Ok(rows.into_iter().next().flatten())
    }

    /// Advances the change sequence and returns the new value. The sequence
    /// is strictly increasing across the life of the database.
    ///
    /// # Errors
    ///
    /// [`Error::Query`] when the statement fails.
    pub async fn next_change_seq(&mut self) -> Result<i64> {
        self.next_change_seqs(1).await
    }

    /// Advances the change sequence by `n` and returns the first of the
    /// `n` new values (the others follow it): [`StoreTx::next_change_seq`]
    /// for a batch, in one statement.
    ///
    /// # Errors
    ///
    /// [`Error::Query`] when the statement fails.
    pub async fn next_change_seqs(&mut self, n: usize) -> Result<i64> {
        let count = i64::try_from(n.max(1))
            .map_err(|_| Error::Conflict(format!("{n} sequence values at once")))?;
        let last = self.advance_counter("change_seq", count).await?;
        Ok(last - count + 1)
    }

    /// Adds `by` to the counter `key` of `sp_meta` and returns its new
    /// value. The row stays locked until the transaction ends, so counters
    /// advance in commit order even with several writers.
    pub(crate) async fn advance_counter(&mut self, key: &str, by: i64) -> Result<i64> {
        let sql = "UPDATE sp_meta SET value = value + ? WHERE key = ? RETURNING value";
        let value = single(
            self.conn
                .fetch_ints(sql, &[SqlValue::Integer(by), text(key)])
                .await?,
            sql,
        )?;
        value.ok_or_else(|| Error::Conflict(format!("sp_meta has no counter {key}")))
    }

    /// Inserts rows of values, each in the order of `columns` (which may
    /// name `id`), several per statement: [`StoreTx::insert_many`] without
    /// a map per row, the values moved rather than copied.
    ///
    /// # Errors
    ///
    /// [`Error::Query`] when a statement fails, or when a row has not as
    /// many values as `columns`.
    pub async fn insert_values(
        &mut self,
        spec: &TableSpec,
        columns: &[String],
        rows: Vec<Vec<SqlValue>>,
    ) -> Result<()> {
        if let Some(bad) = rows.iter().find(|r| r.len() != columns.len()) {
            return Err(Error::Conflict(format!(
                "a row of {} values for {} columns of {}",
                bad.len(),
                columns.len(),
                spec.name
            )));
        }
        let per_chunk = (32_000 / columns.len().max(1)).clamp(1, INSERT_CHUNK);
        let head = format!(
            "INSERT INTO {} ({}) VALUES ",
            quote(&spec.name),
            columns
                .iter()
                .map(|c| quote(c))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let tuple = format!("({})", vec!["?"; columns.len()].join(", "));
        let mut full_chunk_sql: Option<String> = None;
        let mut rows = rows.into_iter().peekable();
        while rows.peek().is_some() {
            let chunk: Vec<Vec<SqlValue>> = rows.by_ref().take(per_chunk).collect();
            let sql = match &full_chunk_sql {
                Some(sql) if chunk.len() == per_chunk => sql.clone(),
                _ => {
                    let sql = format!("{head}{}", vec![tuple.as_str(); chunk.len()].join(", "));
                    if chunk.len() == per_chunk {
                        full_chunk_sql = Some(sql.clone());
                    }
                    sql
                }
            };
            let values: Vec<SqlValue> = chunk.into_iter().flatten().collect();
            self.conn.execute(&sql, &values).await?;
        }
        Ok(())
    }

    /// Inserts `rows`, several per statement: rows name their columns
    /// (`id` included, else the database chooses it), and consecutive rows
    /// with the same columns share statements. A batch of similar rows
    /// costs a few statements instead of one each.
    ///
    /// # Errors
    ///
    /// [`Error::Query`] when a statement fails.
    pub async fn insert_many(&mut self, spec: &TableSpec, rows: &[Row]) -> Result<()> {
        let mut start = 0;
        while start < rows.len() {
            let columns: Vec<&String> = rows[start].keys().collect();
            let same = rows[start..]
                .iter()
                .take_while(|r| r.len() == columns.len() && r.keys().eq(columns.iter().copied()))
                .count();
            let group = &rows[start..start + same];
            start += same;
            let columns: Vec<String> = columns.into_iter().cloned().collect();
            let values = group
                .iter()
                .map(|r| r.values().cloned().collect())
                .collect();
            self.insert_values(spec, &columns, values).await?;
        }
        Ok(())
    }

    /// Inserts a row with the given id.
    ///
    /// # Errors
    ///
    /// [`Error::Query`] when the statement fails.
    pub async fn insert(&mut self, spec: &TableSpec, id: i64, row: &Row) -> Result<()> {
        let mut columns = vec!["id".to_owned()];
        let mut values = vec![SqlValue::Integer(id)];
        for (name, value) in row {
            columns.push(quote(name));
            values.push(value.clone());
        }
        let sql = format!(
            "INSERT INTO {} ({}) VALUES ({})",
            quote(&spec.name),
            columns.join(", "),
            vec!["?"; values.len()].join(", ")
        );
        self.conn.execute(&sql, &values).await?;
        Ok(())
    }

    /// Appends a row, letting the database choose its id (a number above
    /// every id it chose before); returns the id.
    ///
    /// # Errors
    ///
    /// [`Error::Query`] when the statement fails.
    pub async fn append(&mut self, spec: &TableSpec, row: &Row) -> Result<i64> {
        let columns: Vec<String> = row.keys().map(|c| quote(c)).collect();
        let values: Vec<SqlValue> = row.values().cloned().collect();
        let sql = if row.is_empty() {
            format!(
                "INSERT INTO {} DEFAULT VALUES RETURNING id",
                quote(&spec.name)
            )
        } else {
            format!(
                "INSERT INTO {} ({}) VALUES ({}) RETURNING id",
                quote(&spec.name),
                columns.join(", "),
                vec!["?"; values.len()].join(", ")
            )
        };
        let id = single(self.conn.fetch_ints(&sql, &values).await?, &sql)?;
        id.ok_or_else(|| Error::Conflict(format!("{sql}: no id")))
    }

    /// Updates the given columns of a row; returns whether the row exists.
    ///
    /// # Errors
    ///
    /// [`Error::Query`] when the statement fails.
    pub async fn update(&mut self, spec: &TableSpec, id: i64, row: &Row) -> Result<bool> {
        if row.is_empty() {
            return Ok(self.get(spec, id).await?.is_some());
        }
        let sets: Vec<String> = row.keys().map(|c| format!("{} = ?", quote(c))).collect();
        let mut values: Vec<SqlValue> = row.values().cloned().collect();
        values.push(SqlValue::Integer(id));
        let sql = format!(
            "UPDATE {} SET {} WHERE id = ?",
            quote(&spec.name),
            sets.join(", ")
        );
        Ok(self.conn.execute(&sql, &values).await? > 0)
    }

    /// Sets `common` on every row in `per_row`, and `column` to that row's
    /// own value: `per_row` pairs an id with its value. One statement per
    /// chunk of rows instead of one per row; ids that do not exist are
    /// skipped.
    ///
    /// # Errors
    ///
    /// [`Error::Query`] when a statement fails.
    pub async fn update_many(
        &mut self,
        spec: &TableSpec,
        common: &Row,
        column: &str,
        per_row: &[(i64, SqlValue)],
    ) -> Result<()> {
        // SQLite allows 32766 bound values per statement.
        const CHUNK: usize = 8000;
        let sets: Vec<String> = common
            .keys()
            .map(|c| format!("{} = ?", quote(c)))
            .chain(std::iter::once(format!("{} = v.column2", quote(column))))
            .collect();
        // PostgreSQL types a VALUES list by its first row: the values are
        // cast to the column's type so that NULLs and numbers fit it.
        let tuple = match (self.dialect(), spec.column(column)) {
            (Dialect::Postgres, Some(c)) => {
                format!(
                    "(?::BIGINT, CAST(? AS {}))",
                    Dialect::Postgres.cast_type(c.ty)
                )
            }
            (Dialect::Postgres, None) => "(?::BIGINT, ?)".to_owned(),
            (Dialect::Sqlite, _) => "(?, ?)".to_owned(),
        };
        for chunk in per_row.chunks(CHUNK) {
            let sql = format!(
                "UPDATE {table} SET {sets} FROM (VALUES {values}) AS v WHERE {table}.id = v.column1",
                table = quote(&spec.name),
                sets = sets.join(", "),
                values = vec![tuple.as_str(); chunk.len()].join(", "),
            );
            let mut values: Vec<SqlValue> = common.values().cloned().collect();
            for (id, value) in chunk {
                values.push(SqlValue::Integer(*id));
                values.push(value.clone());
            }
            self.conn.execute(&sql, &values).await?;
        }
        Ok(())
    }

    /// Reads one row.
    ///
    /// # Errors
    ///
    /// [`Error::Query`] when the statement fails.
    pub async fn get(&mut self, spec: &TableSpec, id: i64) -> Result<Option<Row>> {
        let rows = self
            .select(
                spec,
                &[Condition::Eq("id".into(), SqlValue::Integer(id))],
                None,
            )
            .await?;
        Ok(rows.into_iter().next().map(|(_, row)| row))
    }

    /// [`StoreTx::select`] as values in `spec.columns` order, without a
    /// map per row: for reading many rows.
    ///
    /// # Errors
    ///
    /// [`Error::Query`] when the statement fails.
    pub async fn select_values(
        &mut self,
        spec: &TableSpec,
        conditions: &[Condition],
        limit: Option<u32>,
    ) -> Result<Vec<(i64, Vec<SqlValue>)>> {
        let (sql, binds) = select_sql(self.dialect(), spec, conditions, limit);
        self.conn
            .fetch(&sql, &binds, |r| decode_values(spec, r))
            .await
    }

    /// Reads the rows matching all `conditions`, ordered by id.
    ///
    /// # Errors
    ///
    /// [`Error::Query`] when the statement fails.
    pub async fn select(
        &mut self,
        spec: &TableSpec,
        conditions: &[Condition],
        limit: Option<u32>,
    ) -> Result<Vec<(i64, Row)>> {
        Ok(self
            .select_values(spec, conditions, limit)
            .await?
            .into_iter()
            .map(|(id, values)| (id, named(spec, values)))
            .collect())
    }

    /// The engine's plan for [`StoreTx::select`] with these conditions, one
    /// line per step: lets tests and diagnostics check that an index is
    /// used.
    ///
    /// # Errors
    ///
    /// [`Error::Query`] when the statement fails.
    pub async fn select_plan(
        &mut self,
        spec: &TableSpec,
        conditions: &[Condition],
    ) -> Result<Vec<String>> {
        let (sql, binds) = select_sql(self.dialect(), spec, conditions, None);
        self.plan(&sql, &binds).await
    }

    /// The engine's plan for `sql`, one line per step.
    pub(crate) async fn plan(&mut self, sql: &str, binds: &[SqlValue]) -> Result<Vec<String>> {
        match self.dialect() {
            Dialect::Sqlite => {
                let sql = format!("EXPLAIN QUERY PLAN {sql}");
                self.conn
                    .fetch(&sql, binds, |r| Ok(r.text(3)?.unwrap_or_default()))
                    .await
            }
            Dialect::Postgres => {
                let sql = format!("EXPLAIN {sql}");
                self.conn
                    .fetch(&sql, binds, |r| Ok(r.text(0)?.unwrap_or_default()))
                    .await
            }
        }
    }

    /// How many rows match all `conditions`.
    ///
    /// # Errors
    ///
    /// [`Error::Query`] when the statement fails.
    pub async fn count(&mut self, spec: &TableSpec, conditions: &[Condition]) -> Result<i64> {
        let mut sql = format!("SELECT COUNT(*) FROM {}", quote(&spec.name));
        let mut binds = Vec::new();
        push_where(self.dialect(), &mut sql, &mut binds, conditions);
        let rows = self.conn.fetch_ints(&sql, &binds).await?;
        Ok(single(rows, &sql)?.unwrap_or_default())
    }

    /// How many rows meeting `index`'s predicate share their values of its
    /// columns with another such row (NULLs aside): the rows a unique
    /// version of the index would refuse. Zero when the table or one of
    /// the columns does not exist yet.
    ///
    /// # Errors
    ///
    /// [`Error::Query`] when the statement fails.
    pub async fn duplicates(&mut self, spec: &TableSpec, index: &PartialIndex) -> Result<i64> {
        let existing = self.columns(&spec.name).await?;
        if index
            .columns
            .iter()
            .any(|c| !existing.iter().any(|(name, _)| name == c))
        {
            return Ok(0);
        }
        let columns: Vec<String> = index.columns.iter().map(|c| quote(c)).collect();
        let not_null: Vec<String> = columns.iter().map(|c| format!("{c} IS NOT NULL")).collect();
        let sql = format!(
            "SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) FROM (SELECT COUNT(*) AS n FROM {} WHERE ({}) AND {} GROUP BY {} HAVING COUNT(*) > 1) AS d",
            quote(&spec.name),
            index.predicate,
            not_null.join(" AND "),
            columns.join(", ")
        );
        let rows = self.conn.fetch_ints(&sql, &[]).await?;
        Ok(single(rows, &sql)?.unwrap_or_default())
    }

    /// The smallest value of `column` among rows matching `conditions`.
    ///
    /// # Errors
    ///
    /// [`Error::Query`] when the statement fails.
    pub async fn min(
        &mut self,
        spec: &TableSpec,
        column: &str,
        conditions: &[Condition],
    ) -> Result<Option<i64>> {
        let mut sql = format!("SELECT MIN({}) FROM {}", quote(column), quote(&spec.name));
        let mut binds = Vec::new();
        push_where(self.dialect(), &mut sql, &mut binds, conditions);
        let rows = self.conn.fetch_ints(&sql, &binds).await?;
        single(rows, &sql)
    }

    /// Deletes the rows that meet every condition (rows of a table that are
    /// not objects, such as a join table's); returns how many went.
    ///
    /// # Errors
    ///
    /// [`Error::Query`] when the statement fails.
    pub async fn delete_where(
        &mut self,
        spec: &TableSpec,
        conditions: &[Condition],
    ) -> Result<u64> {
        let mut sql = format!("DELETE FROM {}", quote(&spec.name));
        let mut binds = Vec::new();
        push_where(self.dialect(), &mut sql, &mut binds, conditions);
        self.conn.execute(&sql, &binds).await
    }

    /// Deletes a row and releases its object id; returns whether it existed.
    ///
    /// # Errors
    ///
    /// [`Error::Query`] when the statement fails.
    pub async fn delete(&mut self, spec: &TableSpec, id: i64) -> Result<bool> {
        let sql = format!("DELETE FROM {} WHERE id = ?", quote(&spec.name));
        let done = self.conn.execute(&sql, &[SqlValue::Integer(id)]).await?;
        let objects = "DELETE FROM sp_objects WHERE id = ?";
        self.conn.execute(objects, &[SqlValue::Integer(id)]).await?;
        Ok(done > 0)
    }

    /// Stores a host record under `namespace`/`key`, replacing an older one.
    ///
    /// # Errors
    ///
    /// [`Error::Query`] when the statement fails.
    pub async fn put_record(&mut self, namespace: &str, key: &str, value: &str) -> Result<()> {
        let sql = "INSERT INTO sp_kv (namespace, key, value) VALUES (?, ?, ?) \
                   ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value";
        self.conn
            .execute(sql, &[text(namespace), text(key), text(value)])
            .await?;
        Ok(())
    }

    /// The host record `key` of `namespace`, if there is one.
    ///
    /// # Errors
    ///
    /// [`Error::Query`] when the statement fails.
    pub async fn record(&mut self, namespace: &str, key: &str) -> Result<Option<String>> {
        let sql = "SELECT value FROM sp_kv WHERE namespace = ? AND key = ?";
        let rows = self
            .conn
            .fetch_texts(sql, &[text(namespace), text(key)])
            .await?;
        Ok(rows.into_iter().next().flatten())
    }

    /// The keys of the host records under `namespace`, sorted: for a caller
    /// that reads large records one at a time.
    ///
    /// # Errors
    ///
    /// [`Error::Query`] when the statement fails.
    pub async fn record_keys(&mut self, namespace: &str) -> Result<Vec<String>> {
        let sql = "SELECT key FROM sp_kv WHERE namespace = ? ORDER BY key";
        let rows = self.conn.fetch_texts(sql, &[text(namespace)]).await?;
        Ok(rows.into_iter().flatten().collect())
    }

    /// All host records under `namespace`, by key.
    ///
    /// # Errors
    ///
    /// [`Error::Query`] when the statement fails.
    pub async fn records(&mut self, namespace: &str) -> Result<Vec<(String, String)>> {
        let sql = "SELECT key, value FROM sp_kv WHERE namespace = ? ORDER BY key";
        self.conn
            .fetch(sql, &[text(namespace)], |r| {
                Ok((
                    r.text(0)?.unwrap_or_default(),
                    r.text(1)?.unwrap_or_default(),
                ))
            })
            .await
    }
}

/// A text bind.
pub(crate) fn text(value: &str) -> SqlValue {
    SqlValue::Text(value.to_owned())
}

/// `value` as an SQL string literal.
pub(crate) fn sql_text(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// A store in a new temporary directory, for unit tests.
#[cfg(test)]
pub(crate) async fn temp_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("db.sqlite"))
        .await
        .expect("open");
    (dir, store)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{Column, ColumnType};

    fn spec() -> TableSpec {
        TableSpec {
            name: "m_thing".into(),
            columns: vec![
                Column {
                    name: "name".into(),
                    ty: ColumnType::Text,
                    indexed: true,
                    default: None,
                },
                Column {
                    name: "n".into(),
                    ty: ColumnType::Integer,
                    indexed: false,
                    default: None,
                },
            ],
            partial_indexes: vec![crate::PartialIndex {
                name: "big".into(),
                columns: vec!["id".into()],
                predicate: "n > 10",
                unique: false,
            }],
        }
    }

    #[tokio::test]
    async fn update_many_sets_common_and_per_row_values_and_the_partial_index_is_used() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("db.sqlite"))
            .await
            .expect("open");
        store.ensure_table(&spec()).await.expect("table");
        let mut tx = store.begin().await.expect("begin");
        for id in 1..=3 {
            let row = Row::from([("n".to_owned(), SqlValue::Integer(id))]);
            tx.insert(&spec(), id, &row).await.expect("insert");
        }
        let common = Row::from([("name".to_owned(), SqlValue::Text("same".into()))]);
        let per_row = [
            (1, SqlValue::Integer(11)),
            (3, SqlValue::Integer(33)),
            (9, SqlValue::Integer(99)),
        ];
        tx.update_many(&spec(), &common, "n", &per_row)
            .await
            .expect("update");
        let big = tx
            .select(&spec(), &[Condition::Sql("n > 10")], None)
            .await
            .expect("select");
        assert_eq!(
            big,
            [
                (
                    1,
                    Row::from([
                        ("name".to_owned(), SqlValue::Text("same".into())),
                        ("n".to_owned(), SqlValue::Integer(11))
                    ])
                ),
                (
                    3,
                    Row::from([
                        ("name".to_owned(), SqlValue::Text("same".into())),
                        ("n".to_owned(), SqlValue::Integer(33))
                    ])
                ),
            ]
        );
        let plan = tx
            .select_plan(&spec(), &[Condition::Sql("n > 10")])
            .await
            .expect("plan");
        assert!(
            plan.iter().any(|p| p.contains("m_thing__big")),
            "plan: {plan:?}"
        );
        tx.commit().await.expect("commit");
        let outside = store
            .select(&spec(), &[Condition::Sql("n > 10")], Some(1))
            .await
            .expect("select outside a transaction");
        assert_eq!(outside, big[..1]);
    }

    #[tokio::test]
    async fn rows_survive_reopening_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("db.sqlite");
        {
            let store = Store::open(&path).await.expect("open");
            store.ensure_table(&spec()).await.expect("table");
            let mut tx = store.begin().await.expect("begin");
            let id = tx.allocate_id("Thing").await.expect("id");
            let row = Row::from([
                ("name".to_owned(), SqlValue::Text("a".into())),
                ("n".to_owned(), SqlValue::Integer(7)),
            ]);
            tx.insert(&spec(), id, &row).await.expect("insert");
            assert_eq!(tx.next_change_seq().await.expect("seq"), 1);
            tx.commit().await.expect("commit");
            store.close().await;
        }
        let store = Store::open(&path).await.expect("reopen");
        let mut tx = store.begin().await.expect("begin");
        let rows = tx
            .select(
                &spec(),
                &[Condition::Eq("name".into(), SqlValue::Text("a".into()))],
                None,
            )
            .await
            .expect("select");
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].1["n"], SqlValue::Integer(7));
        assert_eq!(
            tx.model_of(rows[0].0).await.expect("model").as_deref(),
            Some("Thing")
        );
        assert_eq!(tx.next_change_seq().await.expect("seq"), 2);
    }

    #[tokio::test]
    async fn a_read_transaction_sees_the_last_commit_refuses_writes_and_never_waits_for_the_writer()
    {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("db.sqlite"))
            .await
            .expect("open");
        store.ensure_table(&spec()).await.expect("table");
        let row = |n: i64| Row::from([("n".to_owned(), SqlValue::Integer(n))]);
        let mut tx = store.begin().await.expect("begin");
        tx.insert(&spec(), 1, &row(1)).await.expect("insert");
        tx.commit().await.expect("commit");

        // A write in progress holds the writer; readers go on, on the
        // last commit.
        let mut writing = store.begin().await.expect("begin");
        writing.insert(&spec(), 2, &row(2)).await.expect("insert");
        let mut reading = tokio::time::timeout(BUSY_TIMEOUT / 2, store.begin_read())
            .await
            .expect("a reader does not wait for the writer")
            .expect("begin_read");
        let seen = reading
            .select_values(&spec(), &[], None)
            .await
            .expect("read");
        assert_eq!(seen.iter().map(|(id, _)| *id).collect::<Vec<_>>(), [1]);
        let error = reading
            .insert(&spec(), 3, &row(3))
            .await
            .expect_err("a read transaction refuses writes");
        assert!(format!("{error:?}").contains("readonly"), "{error:?}");
        drop(reading);
        writing.commit().await.expect("commit");

        // Every read-only connection, new transaction after new
        // transaction, sees the commit.
        let mut readers = Vec::new();
        for _ in 0..READERS {
            let mut tx = store.begin_read().await.expect("begin_read");
            let ids: Vec<i64> = tx
                .select_values(&spec(), &[], None)
                .await
                .expect("read")
                .into_iter()
                .map(|(id, _)| id)
                .collect();
            assert_eq!(ids, [1, 2]);
            readers.push(tx);
        }
        drop(readers);
        let order = [crate::OrderKey {
            column: "id".into(),
            descending: true,
        }];
        let page = store
            .select_page(
                &spec(),
                &crate::PageQuery {
                    conditions: &[],
                    order: &order,
                    after: None,
                    limit: 10,
                },
            )
            .await
            .expect("page outside a transaction");
        assert_eq!(page.iter().map(|(id, _)| *id).collect::<Vec<_>>(), [2, 1]);
    }

    #[tokio::test]
    async fn a_lock_held_by_another_connection_is_a_busy_error_after_the_busy_timeout() {
        use sqlx::Connection as _;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("db.sqlite");
        let store = Store::open(&path).await.expect("open");
        store.ensure_table(&spec()).await.expect("table");
        let mut other = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
            .await
            .expect("second connection");
        sqlx::query("BEGIN EXCLUSIVE")
            .execute(&mut other)
            .await
            .expect("lock");
        let started = std::time::Instant::now();
        let mut tx = store.begin().await.expect("begin");
        let error = tx
            .insert(&spec(), 1, &Row::new())
            .await
            .expect_err("locked");
        assert!(error.is_busy() && error.is_unavailable(), "{error:?}");
        let waited = started.elapsed();
        assert!(
            waited >= BUSY_TIMEOUT && waited < BUSY_TIMEOUT * 3,
            "{waited:?}"
        );
        drop(tx);
        sqlx::query("ROLLBACK")
            .execute(&mut other)
            .await
            .expect("unlock");
        let mut tx = store.begin().await.expect("begin");
        tx.insert(&spec(), 1, &Row::new()).await.expect("insert");
        tx.commit().await.expect("commit");
        assert_eq!(
            store.select(&spec(), &[], None).await.expect("rows").len(),
            1
        );
    }

    #[tokio::test]
    async fn a_full_database_refuses_the_write_whole_and_later_transactions_commit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("db.sqlite");
        let store = Store::open(&path).await.expect("open");
        store.ensure_table(&spec()).await.expect("table");
        let name = |n: &str| Row::from([("name".to_owned(), SqlValue::Text(n.into()))]);
        let mut tx = store.begin().await.expect("begin");
        let kept = tx.allocate_id("Thing").await.expect("id");
        tx.insert(&spec(), kept, &name("kept"))
            .await
            .expect("insert");
        tx.commit().await.expect("commit");
        // The file may not grow past a few pages: SQLite answers SQLITE_FULL
        // as it does on a full disk.
        let pool = &store.pool;
        let pages = pool
            .fetch_ints("PRAGMA page_count", &[])
            .await
            .expect("page count")[0]
            .expect("pages");
        pool.fetch_ints(&format!("PRAGMA max_page_count = {}", pages + 4), &[])
            .await
            .expect("cap the file");
        let mut tx = store.begin().await.expect("begin");
        let big = "x".repeat(4096);
        let mut lost = Vec::new();
        let error = loop {
            let id = tx.allocate_id("Thing").await;
            let written = match id {
                Ok(id) => {
                    lost.push(id);
                    tx.insert(&spec(), id, &name(&big)).await
                }
                Err(e) => Err(e),
            };
            if let Err(e) = written {
                break e;
            }
            assert!(lost.len() < 1000, "the cap never held");
        };
        assert!(error.is_full() && error.is_unavailable(), "{error:?}");
        drop(tx);
        // Nothing of the refused transaction is there; a small write that
        // fits is committed and durable.
        let mut tx = store.begin().await.expect("begin after the failure");
        assert_eq!(tx.count(&spec(), &[]).await.expect("count"), 1);
        let next = tx.allocate_id("Thing").await.expect("id");
        tx.insert(&spec(), next, &name("after"))
            .await
            .expect("insert");
        tx.commit().await.expect("commit");
        store.close().await;
        let store = Store::open(&path).await.expect("reopen");
        let rows = store.select(&spec(), &[], None).await.expect("rows");
        let names: Vec<_> = rows.iter().map(|(_, r)| r["name"].clone()).collect();
        assert_eq!(
            names,
            [
                SqlValue::Text("kept".into()),
                SqlValue::Text("after".into())
            ]
        );
        assert!(rows[1].0 > kept);
    }

    #[tokio::test]
    async fn a_batch_gets_consecutive_ids_and_sequences_and_its_rows_in_few_statements() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("db.sqlite"))
            .await
            .expect("open");
        store.ensure_table(&spec()).await.expect("table");
        let mut tx = store.begin().await.expect("begin");
        let before = tx.allocate_id("Thing").await.expect("id");
        let ids = tx.allocate_ids("Thing", 1234).await.expect("ids");
        assert_eq!(ids.len(), 1234);
        assert_eq!(ids[0], before + 1);
        assert!(ids.windows(2).all(|w| w[1] == w[0] + 1), "increasing");
        assert_eq!(
            tx.model_of(ids[1233]).await.expect("model").as_deref(),
            Some("Thing")
        );
        let seq = tx.next_change_seq().await.expect("seq");
        let first = tx.next_change_seqs(1234).await.expect("seqs");
        assert_eq!(first, seq + 1);
        assert_eq!(tx.next_change_seq().await.expect("seq"), seq + 1235);
        // More rows than one statement takes, and a row with other columns.
        let mut rows: Vec<Row> = ids
            .iter()
            .map(|id| {
                Row::from([
                    ("id".to_owned(), SqlValue::Integer(*id)),
                    ("name".to_owned(), SqlValue::Text(format!("t{id}"))),
                    ("n".to_owned(), SqlValue::Integer(*id % 7)),
                ])
            })
            .collect();
        rows[600].remove("n");
        tx.insert_many(&spec(), &rows).await.expect("insert");
        let all = tx.select(&spec(), &[], None).await.expect("select");
        assert_eq!(all.len(), 1234);
        assert_eq!(all[600].1["n"], SqlValue::Null);
        assert_eq!(all[601].1["name"], SqlValue::Text(format!("t{}", ids[601])));
        let some = tx
            .select(
                &spec(),
                &[Condition::In(
                    "name".into(),
                    vec![
                        SqlValue::Text(format!("t{}", ids[3])),
                        SqlValue::Text("none".into()),
                        SqlValue::Text(format!("t{}", ids[9])),
                    ],
                )],
                None,
            )
            .await
            .expect("select in");
        let found: Vec<i64> = some.iter().map(|(id, _)| *id).collect();
        assert_eq!(found, [ids[3], ids[9]]);
        let none = tx
            .select(&spec(), &[Condition::In("name".into(), Vec::new())], None)
            .await
            .expect("select in nothing");
        assert!(none.is_empty());
    }

    #[tokio::test]
    async fn a_dropped_transaction_writes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("db.sqlite"))
            .await
            .expect("open");
        store.ensure_table(&spec()).await.expect("table");
        {
            let mut tx = store.begin().await.expect("begin");
            let id = tx.allocate_id("Thing").await.expect("id");
            tx.insert(&spec(), id, &Row::new()).await.expect("insert");
        }
        let mut tx = store.begin().await.expect("begin");
        assert!(
            tx.select(&spec(), &[], None)
                .await
                .expect("select")
                .is_empty()
        );
    }

    #[tokio::test]
    async fn new_columns_are_added_to_an_existing_table() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("db.sqlite"))
            .await
            .expect("open");
        store.ensure_table(&spec()).await.expect("table");
        let mut wider = spec();
        wider.columns.push(Column {
            name: "extra".into(),
            ty: ColumnType::Real,
            indexed: false,
            default: Some(SqlValue::Real(1.5)),
        });
        store.ensure_table(&wider).await.expect("widen");
        let mut tx = store.begin().await.expect("begin");
        tx.insert(
            &wider,
            5,
            &Row::from([("extra".to_owned(), SqlValue::Real(1.5))]),
        )
        .await
        .expect("insert");
        assert_eq!(
            tx.get(&wider, 5).await.expect("get").expect("row")["extra"],
            SqlValue::Real(1.5)
        );
    }
}
