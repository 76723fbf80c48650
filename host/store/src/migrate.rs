//! The store's own tables, versioned: each version is a list of statements
//! per engine, applied in order at start in one transaction, and recorded
//! in `sp_meta` as `schema_version`. A store written by a newer syncplane
//! (a version this binary does not know) is refused, not guessed at.
//!
//! Model tables are not here: they follow the installed models
//! ([`crate::StoreTx::ensure_table`]).

use crate::backend::Dialect;
use crate::changes::{CHANGE_LOG_COUNTER, changes_table};
use crate::error::{Error, Result};
use crate::store::Store;
use crate::value::SqlValue;

/// The schema version this binary writes.
pub const SCHEMA_VERSION: i64 = 5;

/// The statements that bring a store from version `version - 1` to
/// `version`.
fn migration(dialect: Dialect, version: i64) -> Vec<String> {
    let text = dialect.column_type(crate::ColumnType::Text);
    match version {
        // Version 1 is what stores were before versions were recorded, so
        // its statements tolerate tables that exist.
        1 => {
            let mut statements = vec![
                format!(
                    "CREATE TABLE IF NOT EXISTS sp_objects (id {}, model {text} NOT NULL)",
                    dialect.serial_key()
                ),
                "INSERT INTO sp_meta (key, value) VALUES ('change_seq', 0) ON CONFLICT (key) DO NOTHING"
                    .to_owned(),
                format!(
                    "CREATE TABLE IF NOT EXISTS sp_kv (namespace {text} NOT NULL, key {text} NOT NULL, \
                     value {text} NOT NULL, PRIMARY KEY (namespace, key))"
                ),
                changes_table(dialect).to_owned(),
            ];
            if dialect == Dialect::Postgres {
                statements.push(format!(
                    "INSERT INTO sp_meta (key, value) VALUES ('{CHANGE_LOG_COUNTER}', 0) ON CONFLICT (key) DO NOTHING"
                ));
            }
            statements
        }
        // Leases of objects to hosts, and the hosts sharing the store
        // (`crate::leases`).
        2 => {
            let int = dialect.column_type(crate::ColumnType::Integer);
            vec![
                format!(
                    "CREATE TABLE IF NOT EXISTS sp_leases (id {int} PRIMARY KEY, host {text} NOT NULL, \
                     until {int} NOT NULL)"
                ),
                "CREATE INDEX IF NOT EXISTS sp_leases_host ON sp_leases (host)".to_owned(),
                format!(
                    "CREATE TABLE IF NOT EXISTS sp_hosts (host {text} PRIMARY KEY, name {text} NOT NULL, \
                     started {int} NOT NULL, seen {int} NOT NULL, leases {int} NOT NULL)"
                ),
            ]
        }
        // A lease holds while its host renews `sp_hosts.until`.
        3 => vec![format!(
            "ALTER TABLE sp_hosts ADD COLUMN until {} NOT NULL DEFAULT 0",
            dialect.column_type(crate::ColumnType::Integer)
        )],
        // Each host's load, as its heartbeat last saw it.
        4 => {
            let int = dialect.column_type(crate::ColumnType::Integer);
            let real = dialect.column_type(crate::ColumnType::Real);
            vec![
                format!("ALTER TABLE sp_hosts ADD COLUMN steps {int} NOT NULL DEFAULT 0"),
                format!("ALTER TABLE sp_hosts ADD COLUMN running {int} NOT NULL DEFAULT 0"),
                format!("ALTER TABLE sp_hosts ADD COLUMN steps_per_s {real} NOT NULL DEFAULT 0"),
            ]
        }
        // The invocation history (`crate::history`).
        5 => crate::history::history_tables(dialect),
        _ => Vec::new(),
    }
}

/// Brings `store`'s tables to [`SCHEMA_VERSION`].
///
/// # Errors
///
/// [`Error::TooNew`] when a newer syncplane wrote the store,
/// [`Error::Migrate`] when a statement fails.
pub(crate) async fn run(store: &Store) -> Result<()> {
    let dialect = store.dialect();
    let meta = format!(
        "CREATE TABLE IF NOT EXISTS sp_meta (key {} PRIMARY KEY, value {} NOT NULL)",
        dialect.column_type(crate::ColumnType::Text),
        dialect.column_type(crate::ColumnType::Integer)
    );
    let mut tx = store.begin().await.map_err(migrate_error)?;
    if dialect == Dialect::Postgres {
        // Hosts starting together on one database migrate one at a time.
        tx.conn
            .execute("SELECT pg_advisory_xact_lock(7394817)", &[])
            .await
            .map_err(migrate_error)?;
    }
    tx.conn.execute(&meta, &[]).await.map_err(migrate_error)?;
    let found = tx
        .conn
        .fetch_ints(
            "SELECT value FROM sp_meta WHERE key = 'schema_version'",
            &[],
        )
        .await
        .map_err(migrate_error)?
        .into_iter()
        .flatten()
        .next()
        .unwrap_or(0);
    if found > SCHEMA_VERSION {
        return Err(Error::TooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for version in found + 1..=SCHEMA_VERSION {
        for statement in migration(dialect, version) {
            tx.conn
                .execute(&statement, &[])
                .await
                .map_err(migrate_error)?;
        }
        tracing::debug!(version, "store schema migrated");
    }
    if found < SCHEMA_VERSION {
        tx.conn
            .execute(
                "INSERT INTO sp_meta (key, value) VALUES ('schema_version', ?) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                &[SqlValue::Integer(SCHEMA_VERSION)],
            )
            .await
            .map_err(migrate_error)?;
    }
    tx.commit().await.map_err(migrate_error)
}

/// A failed statement as a migration failure; faults of the database
/// (busy, unavailable) keep their kind.
fn migrate_error(error: Error) -> Error {
    match error {
        Error::Query { source, .. } => Error::Migrate(source),
        other => other,
    }
}
