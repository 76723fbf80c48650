//! Copying a whole store into another (`syncplane store copy`): every
//! table with every row, ids, counters and numbering kept, then the row
//! counts of both compared.
//!
//! The copy reads the source in one transaction (one snapshot) and writes
//! the target in one transaction: a failed copy leaves the target as it
//! was. The target must hold nothing yet.

use crate::backend::Dialect;
use crate::changes::CHANGE_LOG_COUNTER;
use crate::error::{Error, Result};
use crate::schema::{Column, ColumnType, TableSpec, quote};
use crate::store::{Store, StoreTx, sql_text};
use crate::value::SqlValue;

/// Rows read and written per statement for tables keyed by `id`.
const ROWS_PER_BATCH: u32 = 1000;

/// Host records per batch: a record may hold a whole package.
const RECORDS_PER_BATCH: u32 = 16;

/// The store's own tables, which every store has from its migrations.
const INTERNAL: &[&str] = &["sp_meta", "sp_objects", "sp_kv", "sp_changes"];

/// Tables not copied: those of the hosts running on a store (their
/// leases; a copy is made with no host running) and the invocation
/// history, which describes what ran against the source.
const HOST_STATE: &[&str] = &["sp_leases", "sp_hosts", "sp_history", "sp_history_failures"];

/// One copied table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopiedTable {
    /// The table.
    pub name: String,
    /// Rows in the source, and in the target after the copy (they are
    /// checked to be equal).
    pub rows: u64,
}

/// How one table is read: its columns with their types, and how its rows
/// are ordered and paged.
struct Shape {
    name: String,
    columns: Vec<(String, ColumnType)>,
    /// A unique integer column to page on (`WHERE key > ?`); `None` pages
    /// by offset in `order`.
    key: Option<&'static str>,
    order: &'static str,
    batch: u32,
}

/// Copies everything in `from` into `to`, calling `progress` after each
/// table. Returns the tables and their row counts.
///
/// # Errors
///
/// [`Error::Conflict`] when `to` already holds objects, records or tables
/// other than the store's own, or when the counts differ after the copy;
/// the store's errors when a statement fails. Nothing is written to `to`
/// then.
pub async fn copy(
    from: &Store,
    to: &Store,
    mut progress: impl FnMut(&CopiedTable),
) -> Result<Vec<CopiedTable>> {
    let mut source = from.begin().await?;
    let mut target = to.begin().await?;
    refuse_unless_empty(&mut target).await?;
    let mut copied = Vec::new();
    for shape in shapes(&mut source).await? {
        if !INTERNAL.contains(&shape.name.as_str()) {
            let spec = TableSpec {
                name: shape.name.clone(),
                columns: shape
                    .columns
                    .iter()
                    .filter(|(name, _)| name != "id")
                    .map(|(name, ty)| Column {
                        name: name.clone(),
                        ty: *ty,
                        indexed: false,
                        default: None,
                    })
                    .collect(),
                partial_indexes: Vec::new(),
            };
            // Indexes come back when a host opens the store and ensures
            // its models' tables.
            target.ensure_table(&spec).await?;
        }
        if shape.name == "sp_meta" {
            copy_meta(&mut source, &mut target).await?;
        } else {
            copy_rows(&mut source, &mut target, &shape).await?;
        }
        let rows = count(&mut source, &shape.name).await?;
        let written = count(&mut target, &shape.name).await?;
        // sp_meta's counters are copied over the target's, which may have
        // its own besides (PostgreSQL numbers the change log there).
        if rows != written && shape.name != "sp_meta" {
            return Err(Error::Conflict(format!(
                "table {}: {rows} rows in the source, {written} written",
                shape.name
            )));
        }
        let table = CopiedTable {
            name: shape.name.clone(),
            rows,
        };
        progress(&table);
        copied.push(table);
    }
    renumber(&mut source, &mut target, &copied).await?;
    target.commit().await?;
    Ok(copied)
}

/// Fails unless `tx`'s store holds no object, record or table of its own.
async fn refuse_unless_empty(tx: &mut StoreTx) -> Result<()> {
    for table in ["sp_objects", "sp_kv", "sp_changes"] {
        let rows = count(tx, table).await?;
        if rows > 0 {
            return Err(Error::Conflict(format!(
                "the target store is not empty ({table} has {rows} rows); copy into a new, empty database"
            )));
        }
    }
    let extra: Vec<String> = tables(tx)
        .await?
        .into_iter()
        .filter(|t| !INTERNAL.contains(&t.as_str()))
        .collect();
    if !extra.is_empty() {
        return Err(Error::Conflict(format!(
            "the target store already has tables ({}); copy into a new, empty database",
            extra.join(", ")
        )));
    }
    Ok(())
}

/// The tables of `tx`'s store, sorted.
async fn tables(tx: &mut StoreTx) -> Result<Vec<String>> {
    let sql = match tx.dialect() {
        Dialect::Sqlite => {
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name"
        }
        Dialect::Postgres => {
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name"
        }
    };
    Ok(tx
        .conn
        .fetch_texts(sql, &[])
        .await?
        .into_iter()
        .flatten()
        .filter(|t| !HOST_STATE.contains(&t.as_str()))
        .collect())
}

/// How each table of the source is read.
async fn shapes(source: &mut StoreTx) -> Result<Vec<Shape>> {
    let mut shapes = Vec::new();
    for name in tables(source).await? {
        let columns = source
            .columns(&name)
            .await?
            .into_iter()
            .map(|(column, declared)| {
                let ty = match declared.to_ascii_uppercase().as_str() {
                    "INTEGER" => ColumnType::Integer,
                    "REAL" => ColumnType::Real,
                    "TEXT" => ColumnType::Text,
                    other => {
                        return Err(Error::Conflict(format!(
                            "table {name}: column {column} has type {other}, which the store does not make"
                        )));
                    }
                };
                Ok((column, ty))
            })
            .collect::<Result<Vec<_>>>()?;
        let (key, order, batch) = match name.as_str() {
            "sp_kv" => (None, "namespace, key", RECORDS_PER_BATCH),
            "sp_meta" => (None, "key", ROWS_PER_BATCH),
            "sp_changes" => (Some("seq"), "seq", ROWS_PER_BATCH),
            _ if columns.iter().any(|(c, _)| c == "id") => (Some("id"), "id", ROWS_PER_BATCH),
            _ => {
                return Err(Error::Conflict(format!(
                    "table {name} has no id column; it was not made by syncplane's store"
                )));
            }
        };
        shapes.push(Shape {
            name,
            columns,
            key,
            order,
            batch,
        });
    }
    Ok(shapes)
}

/// Copies the rows of one table, a batch at a time.
async fn copy_rows(source: &mut StoreTx, target: &mut StoreTx, shape: &Shape) -> Result<()> {
    let names: Vec<String> = shape.columns.iter().map(|(n, _)| n.clone()).collect();
    let types: Vec<ColumnType> = shape.columns.iter().map(|(_, t)| *t).collect();
    let key_at = shape
        .key
        .and_then(|key| shape.columns.iter().position(|(n, _)| n == key));
    let spec = TableSpec {
        name: shape.name.clone(),
        columns: Vec::new(),
        partial_indexes: Vec::new(),
    };
    let select = format!(
        "SELECT {} FROM {}",
        names
            .iter()
            .map(|n| quote(n))
            .collect::<Vec<_>>()
            .join(", "),
        quote(&shape.name)
    );
    let mut after: Option<i64> = None;
    let mut offset: u64 = 0;
    loop {
        let (sql, binds) = match (shape.key, after) {
            (Some(key), Some(last)) => (
                format!(
                    "{select} WHERE {} > ? ORDER BY {} LIMIT {}",
                    quote(key),
                    shape.order,
                    shape.batch
                ),
                vec![SqlValue::Integer(last)],
            ),
            (Some(_), None) => (
                format!("{select} ORDER BY {} LIMIT {}", shape.order, shape.batch),
                Vec::new(),
            ),
            (None, _) => (
                format!(
                    "{select} ORDER BY {} LIMIT {} OFFSET {offset}",
                    shape.order, shape.batch
                ),
                Vec::new(),
            ),
        };
        let rows: Vec<Vec<SqlValue>> = source
            .conn
            .fetch(&sql, &binds, |r| {
                types
                    .iter()
                    .enumerate()
                    .map(|(at, ty)| r.value(at, *ty))
                    .collect()
            })
            .await?;
        let Some(last) = rows.last() else {
            return Ok(());
        };
        if let Some(at) = key_at
            && let SqlValue::Integer(last) = last[at]
        {
            after = Some(last);
        }
        let read = rows.len() as u64;
        offset += read;
        target.insert_values(&spec, &names, rows).await?;
        if read < u64::from(shape.batch) {
            return Ok(());
        }
    }
}

/// Copies the counters of `sp_meta` over the target's own (its schema
/// version was written by its migrations).
async fn copy_meta(source: &mut StoreTx, target: &mut StoreTx) -> Result<()> {
    let rows = source
        .conn
        .fetch("SELECT key, value FROM sp_meta ORDER BY key", &[], |r| {
            Ok((
                r.text(0)?.unwrap_or_default(),
                r.int(1)?.unwrap_or_default(),
            ))
        })
        .await?;
    for (key, value) in rows {
        if key == "schema_version" {
            continue;
        }
        target
            .conn
            .execute(
                "INSERT INTO sp_meta (key, value) VALUES (?, ?) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                &[SqlValue::Text(key), SqlValue::Integer(value)],
            )
            .await?;
    }
    Ok(())
}

/// Carries the numbering of ids and changes over, so that the target
/// never hands out a number the source already used (deleted objects'
/// ids and trimmed changes' numbers included).
async fn renumber(
    source: &mut StoreTx,
    target: &mut StoreTx,
    tables: &[CopiedTable],
) -> Result<()> {
    let objects = last_number(source, "sp_objects", "id").await?;
    let changes = last_number(source, "sp_changes", "seq").await?;
    match target.dialect() {
        Dialect::Sqlite => {
            for (table, value) in [("sp_objects", objects), ("sp_changes", changes)] {
                let binds = [SqlValue::Integer(value), SqlValue::Text(table.into())];
                let updated = target
                    .conn
                    .execute(
                        "UPDATE sqlite_sequence SET seq = MAX(seq, ?) WHERE name = ?",
                        &binds,
                    )
                    .await?;
                if updated == 0 {
                    target
                        .conn
                        .execute(
                            "INSERT INTO sqlite_sequence (seq, name) VALUES (?, ?)",
                            &binds,
                        )
                        .await?;
                }
            }
        }
        Dialect::Postgres => {
            target
                .conn
                .execute(
                    "UPDATE sp_meta SET value = ? WHERE key = ?",
                    &[
                        SqlValue::Integer(changes),
                        SqlValue::Text(CHANGE_LOG_COUNTER.into()),
                    ],
                )
                .await?;
            for table in tables {
                if table.name == "sp_meta" || table.name == "sp_kv" || table.name == "sp_changes" {
                    continue;
                }
                let floor = if table.name == "sp_objects" {
                    objects
                } else {
                    0
                };
                let sql = format!(
                    "SELECT setval(pg_get_serial_sequence({}, 'id'), \
                     GREATEST((SELECT COALESCE(MAX(id), 0) FROM {}), ?, 1))",
                    sql_text(&quote(&table.name)),
                    quote(&table.name)
                );
                target
                    .conn
                    .fetch_ints(&sql, &[SqlValue::Integer(floor)])
                    .await?;
            }
        }
    }
    Ok(())
}

/// The last number a table's key has had: SQLite's `AUTOINCREMENT`
/// counter, or on PostgreSQL the largest present (its sequences are
/// carried by [`renumber`] the other way).
async fn last_number(tx: &mut StoreTx, table: &str, key: &str) -> Result<i64> {
    let sql = match tx.dialect() {
        Dialect::Sqlite => format!(
            "SELECT MAX(n) FROM (SELECT seq AS n FROM sqlite_sequence WHERE name = '{table}' \
             UNION ALL SELECT MAX({key}) FROM {table})"
        ),
        Dialect::Postgres => format!("SELECT MAX({key}) FROM {table}"),
    };
    first_int(tx, &sql).await
}

/// The rows of `table`.
async fn count(tx: &mut StoreTx, table: &str) -> Result<u64> {
    let n = first_int(tx, &format!("SELECT COUNT(*) FROM {}", quote(table))).await?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// The integer `sql` answers first (0 for none or NULL).
async fn first_int(tx: &mut StoreTx, sql: &str) -> Result<i64> {
    let rows = tx.conn.fetch_ints(sql, &[]).await?;
    Ok(rows.into_iter().flatten().next().unwrap_or(0))
}
