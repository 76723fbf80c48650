//! The database handle and its transactions.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
    SqliteTransactionManager,
};
use sqlx::{Row as _, Sqlite, SqlitePool, TransactionManager as _};

use crate::error::{Error, Result, classify, query_error};
use crate::schema::{ColumnType, PartialIndex, TableSpec, quote};
use crate::value::{Condition, Row, SqlValue};

const INTERNAL_SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS sp_objects (id INTEGER PRIMARY KEY AUTOINCREMENT, model TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS sp_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
    "INSERT OR IGNORE INTO sp_meta (key, value) VALUES ('change_seq', 0)",
    "CREATE TABLE IF NOT EXISTS sp_kv (namespace TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (namespace, key))",
    crate::changes::CHANGES_TABLE,
];

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

/// An embedded SQLite database.
///
/// Cloning is cheap and shares the connection. Writes are serialised through
/// one connection, which keeps SQLite free of `database is locked` errors
/// among our own writers.
///
/// # Guarantees
///
/// - The file is in WAL mode with `synchronous = FULL`: a commit returns
///   only after the WAL is synced, so an acknowledged transaction survives
///   a killed process and a power loss.
/// - A commit that fails (`SQLITE_FULL` on a full disk, an I/O error) is
///   rolled back and its connection closed, so the next transaction starts
///   on a fresh connection and nothing of the failed one is acknowledged
///   later ([`StoreTx::commit`]).
/// - Object ids come from an `AUTOINCREMENT` table: never reused, across
///   deletions and restarts ([`StoreTx::allocate_id`]).
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) pool: SqlitePool,
}

impl Store {
    /// Opens (creating when missing) the database file at `path`.
    ///
    /// # Errors
    ///
    /// [`Error::Open`] when the file cannot be opened, [`Error::Migrate`] when
    /// the internal tables cannot be created.
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
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(|source| Error::Open {
                path: display,
                source,
            })?;
        for statement in INTERNAL_SCHEMA {
            sqlx::query(statement)
                .execute(&pool)
                .await
                .map_err(Error::Migrate)?;
        }
        Ok(Store { pool })
    }

    /// Starts a transaction. Dropping it without [`StoreTx::commit`] rolls back.
    ///
    /// # Errors
    ///
    /// [`Error::Busy`] when the connection stays taken past
    /// [`ACQUIRE_TIMEOUT`]; [`Error::Query`] when the database is
    /// unavailable.
    pub async fn begin(&self) -> Result<StoreTx> {
        // A connection whose last transaction SQLite ended by itself (it
        // rolls back on some `SQLITE_FULL` and I/O errors) makes sqlx's
        // queued rollback fail, and sqlx then counts a transaction still
        // open: its next BEGIN would be a SAVEPOINT inside nothing, whose
        // RELEASE commits nothing. Such a connection is closed and the
        // transaction begun again on a fresh one.
        for _ in 0..2 {
            let mut conn = self.pool.acquire().await.map_err(query_error("BEGIN"))?;
            SqliteTransactionManager::begin(&mut conn, None)
                .await
                .map_err(query_error("BEGIN"))?;
            if SqliteTransactionManager::get_transaction_depth(&conn) == 1 {
                return Ok(StoreTx { conn, open: true });
            }
            tracing::warn!("database connection lost track of its transaction; reopening it");
            let _ = SqliteTransactionManager::rollback(&mut conn).await;
            conn.close_on_drop();
        }
        Err(Error::Conflict(
            "the database connection could not start a transaction".into(),
        ))
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
            .map(|(id, values)| {
                let names = spec.columns.iter().map(|c| c.name.clone());
                (id, names.zip(values).collect())
            })
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
        let (sql, binds) = select_sql(spec, conditions, limit);
        let rows = bind_all(sqlx::query(&sql), &binds)
            .fetch_all(&self.pool)
            .await
            .map_err(query_error(&sql))?;
        rows.iter().map(|r| decode_values(spec, r)).collect()
    }

    /// Closes the connection, waiting for it to finish.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// A transaction on the [`Store`].
///
/// Dropping it without [`StoreTx::commit`] rolls back (the rollback runs
/// on the connection before its next statement).
pub struct StoreTx {
    pub(crate) conn: PoolConnection<Sqlite>,
    /// Whether the transaction still needs a COMMIT or a ROLLBACK.
    open: bool,
}

impl Drop for StoreTx {
    fn drop(&mut self) {
        if self.open {
            SqliteTransactionManager::start_rollback(&mut self.conn);
        }
    }
}

impl std::fmt::Debug for StoreTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreTx")
    }
}

pub(crate) fn bind_all<'q>(
    mut query: sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
    values: &'q [SqlValue],
) -> sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments<'q>> {
    for value in values {
        query = match value {
            SqlValue::Null => query.bind(None::<i64>),
            SqlValue::Integer(i) => query.bind(*i),
            SqlValue::Real(f) => query.bind(*f),
            SqlValue::Text(s) => query.bind(s.as_str()),
        };
    }
    query
}

fn select_sql(
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
    for (i, condition) in conditions.iter().enumerate() {
        sql.push_str(if i == 0 { " WHERE " } else { " AND " });
        condition.render(&mut sql, &mut binds);
    }
    sql.push_str(" ORDER BY id");
    if let Some(limit) = limit {
        sql.push_str(&format!(" LIMIT {limit}"));
    }
    (sql, binds)
}

/// Decodes a row selected by [`select_sql`]: `id`, then `spec`'s columns.
fn decode(spec: &TableSpec, row: &SqliteRow) -> Result<(i64, Row)> {
    let (id, values) = decode_values(spec, row)?;
    let names = spec.columns.iter().map(|c| c.name.clone());
    Ok((id, names.zip(values).collect()))
}

/// [`decode`] into values in `spec.columns` order.
pub(crate) fn decode_values(spec: &TableSpec, row: &SqliteRow) -> Result<(i64, Vec<SqlValue>)> {
    let id: i64 = row.try_get(0).map_err(query_error("decode id"))?;
    let mut out = Vec::with_capacity(spec.columns.len());
    for (i, column) in spec.columns.iter().enumerate() {
        let at = i + 1;
        let value = match column.ty {
            ColumnType::Integer => row
                .try_get::<Option<i64>, _>(at)
                .map(|v| v.map_or(SqlValue::Null, SqlValue::Integer)),
            ColumnType::Real => row
                .try_get::<Option<f64>, _>(at)
                .map(|v| v.map_or(SqlValue::Null, SqlValue::Real)),
            ColumnType::Text => row
                .try_get::<Option<String>, _>(at)
                .map(|v| v.map_or(SqlValue::Null, SqlValue::Text)),
        }
        .map_err(query_error(&column.name))?;
        out.push(value);
    }
    Ok((id, out))
}

impl StoreTx {
    /// The transaction's connection, for statements written elsewhere in
    /// the crate.
    pub(crate) fn connection(&mut self) -> &mut sqlx::SqliteConnection {
        &mut self.conn
    }

    /// Creates the table of `spec`, or adds the columns it lacks, as part
    /// of this transaction (SQLite's DDL is transactional: a rollback
    /// leaves no table behind).
    ///
    /// # Errors
    ///
    /// [`Error::Query`] when a statement fails.
    pub async fn ensure_table(&mut self, spec: &TableSpec) -> Result<()> {
        let create = spec.create_sql();
        sqlx::query(&create)
            .execute(&mut *self.conn)
            .await
            .map_err(query_error(&create))?;
        let existing = self.columns(&spec.name).await?;
        for column in &spec.columns {
            if !existing.iter().any(|(name, _)| name == &column.name) {
                let add = spec.add_column_sql(column);
                sqlx::query(&add)
                    .execute(&mut *self.conn)
                    .await
                    .map_err(query_error(&add))?;
                // Rows that exist get the field's default, as new ones do.
                if let Some(default) = &column.default {
                    let fill = format!(
                        "UPDATE {} SET {} = ?",
                        quote(&spec.name),
                        quote(&column.name)
                    );
                    bind_all(sqlx::query(&fill), std::slice::from_ref(default))
                        .execute(&mut *self.conn)
                        .await
                        .map_err(query_error(&fill))?;
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
                let index = spec.index_sql(column);
                sqlx::query(&index)
                    .execute(&mut *self.conn)
                    .await
                    .map_err(query_error(&index))?;
            }
        }
        for index in &spec.partial_indexes {
            let create = index.create_sql(&spec.name);
            sqlx::query(&create)
                .execute(&mut *self.conn)
                .await
                .map_err(query_error(&create))?;
        }
        Ok(())
    }

    /// The columns a table has now, with their declared types; none when
    /// the table does not exist.
    ///
    /// # Errors
    ///
    /// [`Error::Query`] when the statement fails.
    pub async fn columns(&mut self, table: &str) -> Result<Vec<(String, String)>> {
        let info = format!("PRAGMA table_info({})", quote(table));
        Ok(sqlx::query(&info)
            .fetch_all(&mut *self.conn)
            .await
            .map_err(query_error(&info))?
            .iter()
            .map(|r| (r.get::<String, _>("name"), r.get::<String, _>("type")))
            .collect())
    }

    /// Drops the table of `spec` (the caller checked that it is empty).
    ///
    /// # Errors
    ///
    /// [`Error::Query`] when a statement fails.
    pub async fn drop_table(&mut self, spec: &TableSpec) -> Result<()> {
        let drop = format!("DROP TABLE IF EXISTS {}", quote(&spec.name));
        sqlx::query(&drop)
            .execute(&mut *self.conn)
            .await
            .map_err(query_error(&drop))?;
        Ok(())
    }

    /// Removes the host record `key` of `namespace`, if there is one.
    ///
    /// # Errors
    ///
    /// [`Error::Query`] when the statement fails.
    pub async fn delete_record(&mut self, namespace: &str, key: &str) -> Result<()> {
        let sql = "DELETE FROM sp_kv WHERE namespace = ? AND key = ?";
        sqlx::query(sql)
            .bind(namespace)
            .bind(key)
            .execute(&mut *self.conn)
            .await
            .map_err(query_error(sql))?;
        Ok(())
    }

    /// Commits the transaction: when this returns `Ok`, the writes are in
    /// the synced WAL.
    ///
    /// # Errors
    ///
    /// [`Error::Full`] when the disk is full, [`Error::Io`] when the file
    /// cannot be written, [`Error::Busy`] when another connection holds the
    /// lock; [`Error::Query`] otherwise. Nothing was written then: the
    /// transaction is rolled back and its connection closed, so no later
    /// transaction can commit what this one left behind.
    pub async fn commit(mut self) -> Result<()> {
        self.open = false;
        match SqliteTransactionManager::commit(&mut self.conn).await {
            Ok(()) => Ok(()),
            Err(source) => {
                let error = classify("COMMIT", source);
                tracing::debug!(error = %error, "commit failed; rolled back, reopening the connection");
                // SQLite may have rolled back already; then this fails too.
                let _ = SqliteTransactionManager::rollback(&mut self.conn).await;
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
        let row = sqlx::query(sql)
            .bind(model)
            .fetch_one(&mut *self.conn)
            .await
            .map_err(query_error(sql))?;
        Ok(row.get::<i64, _>(0))
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
        let sql = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) \
                   INSERT INTO sp_objects (model) SELECT ? FROM n RETURNING id";
        let count = i64::try_from(n).map_err(|_| Error::Conflict(format!("{n} ids at once")))?;
        let rows = sqlx::query(sql)
            .bind(count)
            .bind(model)
            .fetch_all(&mut *self.conn)
            .await
            .map_err(query_error(sql))?;
        let mut ids: Vec<i64> = rows.iter().map(|r| r.get::<i64, _>(0)).collect();
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
        let row = sqlx::query(sql)
            .bind(id)
            .fetch_optional(&mut *self.conn)
            .await
            .map_err(query_error(sql))?;
        Ok(row.map(|r| r.get::<String, _>(0)))
    }

    /// Advances the change sequence and returns the new value. The sequence
    /// is strictly increasing across the life of the database.
    ///
    /// # Errors
    ///
    /// [`Error::Query`] when the statement fails.
    pub async fn next_change_seq(&mut self) -> Result<i64> {
        let sql = "UPDATE sp_meta SET value = value + 1 WHERE key = 'change_seq' RETURNING value";
        let row = sqlx::query(sql)
            .fetch_one(&mut *self.conn)
            .await
            .map_err(query_error(sql))?;
        Ok(row.get::<i64, _>(0))
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
        let sql = "UPDATE sp_meta SET value = value + ? WHERE key = 'change_seq' RETURNING value";
        let row = sqlx::query(sql)
            .bind(count)
            .fetch_one(&mut *self.conn)
            .await
            .map_err(query_error(sql))?;
        Ok(row.get::<i64, _>(0) - count + 1)
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
            bind_all(sqlx::query(&sql), &values)
                .execute(&mut *self.conn)
                .await
                .map_err(query_error(&sql))?;
        }
        Ok(())
    }

    /// Inserts `rows`, several per statement: rows name their columns
    /// (`id` included, else SQLite chooses it), and consecutive rows with
    /// the same columns share statements. A batch of similar rows costs a
    /// few statements instead of one each.
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
        bind_all(sqlx::query(&sql), &values)
            .execute(&mut *self.conn)
            .await
            .map_err(query_error(&sql))?;
        Ok(())
    }

    /// Appends a row, letting SQLite choose its id (one above the highest);
    /// returns the id.
    ///
    /// # Errors
    ///
    /// [`Error::Query`] when the statement fails.
    pub async fn append(&mut self, spec: &TableSpec, row: &Row) -> Result<i64> {
        let columns: Vec<String> = row.keys().map(|c| quote(c)).collect();
        let values: Vec<SqlValue> = row.values().cloned().collect();
        let sql = format!(
            "INSERT INTO {} ({}) VALUES ({})",
            quote(&spec.name),
            columns.join(", "),
            vec!["?"; values.len()].join(", ")
        );
        let done = bind_all(sqlx::query(&sql), &values)
            .execute(&mut *self.conn)
            .await
            .map_err(query_error(&sql))?;
        Ok(done.last_insert_rowid())
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
        let done = bind_all(sqlx::query(&sql), &values)
            .execute(&mut *self.conn)
            .await
            .map_err(query_error(&sql))?;
        Ok(done.rows_affected() > 0)
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
        for chunk in per_row.chunks(CHUNK) {
            let sql = format!(
                "UPDATE {table} SET {sets} FROM (VALUES {values}) AS v WHERE {table}.id = v.column1",
                table = quote(&spec.name),
                sets = sets.join(", "),
                values = vec!["(?, ?)"; chunk.len()].join(", "),
            );
            let mut values: Vec<SqlValue> = common.values().cloned().collect();
            for (id, value) in chunk {
                values.push(SqlValue::Integer(*id));
                values.push(value.clone());
            }
            bind_all(sqlx::query(&sql), &values)
                .execute(&mut *self.conn)
                .await
                .map_err(query_error(&sql))?;
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
        let (sql, binds) = select_sql(spec, conditions, limit);
        let rows = bind_all(sqlx::query(&sql), &binds)
            .fetch_all(&mut *self.conn)
            .await
            .map_err(query_error(&sql))?;
        rows.iter().map(|r| decode_values(spec, r)).collect()
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
        let (sql, binds) = select_sql(spec, conditions, limit);
        let rows = bind_all(sqlx::query(&sql), &binds)
            .fetch_all(&mut *self.conn)
            .await
            .map_err(query_error(&sql))?;
        rows.iter().map(|r| decode(spec, r)).collect()
    }

    /// SQLite's plan for [`StoreTx::select`] with these conditions, one line
    /// per step: lets tests and diagnostics check that an index is used.
    ///
    /// # Errors
    ///
    /// [`Error::Query`] when the statement fails.
    pub async fn select_plan(
        &mut self,
        spec: &TableSpec,
        conditions: &[Condition],
    ) -> Result<Vec<String>> {
        let (sql, binds) = select_sql(spec, conditions, None);
        let sql = format!("EXPLAIN QUERY PLAN {sql}");
        let rows = bind_all(sqlx::query(&sql), &binds)
            .fetch_all(&mut *self.conn)
            .await
            .map_err(query_error(&sql))?;
        Ok(rows.iter().map(|r| r.get::<String, _>(3)).collect())
    }

    /// How many rows match all `conditions`.
    ///
    /// # Errors
    ///
    /// [`Error::Query`] when the statement fails.
    pub async fn count(&mut self, spec: &TableSpec, conditions: &[Condition]) -> Result<i64> {
        let mut sql = format!("SELECT COUNT(*) FROM {}", quote(&spec.name));
        let mut binds = Vec::new();
        for (i, condition) in conditions.iter().enumerate() {
            sql.push_str(if i == 0 { " WHERE " } else { " AND " });
            condition.render(&mut sql, &mut binds);
        }
        let row = bind_all(sqlx::query(&sql), &binds)
            .fetch_one(&mut *self.conn)
            .await
            .map_err(query_error(&sql))?;
        row.try_get::<i64, _>(0).map_err(query_error(&sql))
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
            "SELECT COALESCE(SUM(n), 0) FROM (SELECT COUNT(*) AS n FROM {} WHERE ({}) AND {} GROUP BY {} HAVING COUNT(*) > 1)",
            quote(&spec.name),
            index.predicate,
            not_null.join(" AND "),
            columns.join(", ")
        );
        let row = sqlx::query(&sql)
            .fetch_one(&mut *self.conn)
            .await
            .map_err(query_error(&sql))?;
        row.try_get::<i64, _>(0).map_err(query_error(&sql))
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
        for (i, condition) in conditions.iter().enumerate() {
            sql.push_str(if i == 0 { " WHERE " } else { " AND " });
            condition.render(&mut sql, &mut binds);
        }
        let row = bind_all(sqlx::query(&sql), &binds)
            .fetch_one(&mut *self.conn)
            .await
            .map_err(query_error(&sql))?;
        row.try_get::<Option<i64>, _>(0).map_err(query_error(&sql))
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
        for (i, condition) in conditions.iter().enumerate() {
            sql.push_str(if i == 0 { " WHERE " } else { " AND " });
            condition.render(&mut sql, &mut binds);
        }
        let done = bind_all(sqlx::query(&sql), &binds)
            .execute(&mut *self.conn)
            .await
            .map_err(query_error(&sql))?;
        Ok(done.rows_affected())
    }

    /// Deletes a row and releases its object id; returns whether it existed.
    ///
    /// # Errors
    ///
    /// [`Error::Query`] when the statement fails.
    pub async fn delete(&mut self, spec: &TableSpec, id: i64) -> Result<bool> {
        let sql = format!("DELETE FROM {} WHERE id = ?", quote(&spec.name));
        let done = sqlx::query(&sql)
            .bind(id)
            .execute(&mut *self.conn)
            .await
            .map_err(query_error(&sql))?;
        let objects = "DELETE FROM sp_objects WHERE id = ?";
        sqlx::query(objects)
            .bind(id)
            .execute(&mut *self.conn)
            .await
            .map_err(query_error(objects))?;
        Ok(done.rows_affected() > 0)
    }

    /// Stores a host record under `namespace`/`key`, replacing an older one.
    ///
    /// # Errors
    ///
    /// [`Error::Query`] when the statement fails.
    pub async fn put_record(&mut self, namespace: &str, key: &str, value: &str) -> Result<()> {
        let sql = "INSERT INTO sp_kv (namespace, key, value) VALUES (?, ?, ?) \
                   ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value";
        sqlx::query(sql)
            .bind(namespace)
            .bind(key)
            .bind(value)
            .execute(&mut *self.conn)
            .await
            .map_err(query_error(sql))?;
        Ok(())
    }

    /// The host record `key` of `namespace`, if there is one.
    ///
    /// # Errors
    ///
    /// [`Error::Query`] when the statement fails.
    pub async fn record(&mut self, namespace: &str, key: &str) -> Result<Option<String>> {
        let sql = "SELECT value FROM sp_kv WHERE namespace = ? AND key = ?";
        let row = sqlx::query(sql)
            .bind(namespace)
            .bind(key)
            .fetch_optional(&mut *self.conn)
            .await
            .map_err(query_error(sql))?;
        Ok(row.map(|r| r.get::<String, _>(0)))
    }

    /// The keys of the host records under `namespace`, sorted: for a caller
    /// that reads large records one at a time.
    ///
    /// # Errors
    ///
    /// [`Error::Query`] when the statement fails.
    pub async fn record_keys(&mut self, namespace: &str) -> Result<Vec<String>> {
        let sql = "SELECT key FROM sp_kv WHERE namespace = ? ORDER BY key";
        let rows = sqlx::query(sql)
            .bind(namespace)
            .fetch_all(&mut *self.conn)
            .await
            .map_err(query_error(sql))?;
        Ok(rows.iter().map(|r| r.get::<String, _>(0)).collect())
    }

    /// All host records under `namespace`, by key.
    ///
    /// # Errors
    ///
    /// [`Error::Query`] when the statement fails.
    pub async fn records(&mut self, namespace: &str) -> Result<Vec<(String, String)>> {
        let sql = "SELECT key, value FROM sp_kv WHERE namespace = ? ORDER BY key";
        let rows = sqlx::query(sql)
            .bind(namespace)
            .fetch_all(&mut *self.conn)
            .await
            .map_err(query_error(sql))?;
        Ok(rows
            .iter()
            .map(|r| (r.get::<String, _>(0), r.get::<String, _>(1)))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::Column;

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
        let pages: i64 = sqlx::query_scalar("PRAGMA page_count")
            .fetch_one(&store.pool)
            .await
            .expect("page count");
        sqlx::query(&format!("PRAGMA max_page_count = {}", pages + 4))
            .execute(&store.pool)
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
