//! The change log: one row per committed change, numbered in commit order.
//!
//! Rows are appended inside the writing transaction, so a change is in the
//! log exactly when it is committed. The store has one writer at a time
//! (SQLite's write lock; on PostgreSQL, an advisory lock every writing
//! transaction of every host takes first), so sequence numbers are
//! assigned in commit order, and `AUTOINCREMENT` never reuses one, even
//! after trimming: a reader that has seen everything up to `n` finds every
//! later change above `n`, with no gaps and nothing twice.

use crate::backend::Dialect;
use crate::error::Result;
use crate::store::{Store, StoreTx};
use crate::value::SqlValue;

/// The log's table. `seq` is the change's position in commit order:
/// SQLite numbers rows itself (`AUTOINCREMENT`, which a rollback does not
/// advance); on PostgreSQL, whose sequences skip the numbers of rolled-back
/// transactions and hand them out in start order rather than commit
/// order, the number comes from the `change_log` counter in `sp_meta`,
/// whose row stays locked until the writer commits.
pub(crate) fn changes_table(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => {
            "CREATE TABLE IF NOT EXISTS sp_changes \
             (seq INTEGER PRIMARY KEY AUTOINCREMENT, id INTEGER NOT NULL, model TEXT NOT NULL, kind TEXT NOT NULL)"
        }
        Dialect::Postgres => {
            "CREATE TABLE IF NOT EXISTS sp_changes \
             (seq BIGINT PRIMARY KEY, id BIGINT NOT NULL, model TEXT NOT NULL, kind TEXT NOT NULL)"
        }
    }
}

/// The `sp_meta` counter numbering the log on PostgreSQL.
pub(crate) const CHANGE_LOG_COUNTER: &str = "change_log";

/// Rows per `INSERT` statement (three or four values each).
const APPEND_CHUNK: usize = 500;

/// A row of the change log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedRow {
    /// The change's position in commit order, from 1.
    pub seq: i64,
    /// The object's id.
    pub id: i64,
    /// The object's model.
    pub model: String,
    /// What happened, as the caller wrote it.
    pub kind: String,
}

impl StoreTx {
    /// Appends `(id, model, kind)` rows to the change log, numbered after
    /// every row committed before, and keeps only the latest `retain` rows:
    /// older rows are deleted each time the sequence crosses a multiple of
    /// `retain / 100` (so the log holds between `retain` and `1.01 ×
    /// retain` rows, and trimming costs one statement per hundredth).
    /// Returns the last sequence number written, `None` for no rows.
    ///
    /// # Errors
    ///
    /// [`crate::Error::Query`] when a statement fails.
    pub async fn append_changes(
        &mut self,
        rows: &[(i64, &str, &str)],
        retain: u64,
    ) -> Result<Option<i64>> {
        if rows.is_empty() {
            return Ok(None);
        }
        let count = i64::try_from(rows.len()).unwrap_or(i64::MAX);
        let last = match self.dialect() {
            Dialect::Sqlite => self.append_numbered_by_sqlite(rows).await?,
            Dialect::Postgres => {
                let last = self.advance_counter(CHANGE_LOG_COUNTER, count).await?;
                self.append_numbered(rows, last - count + 1).await?;
                last
            }
        };
        let retain = i64::try_from(retain).unwrap_or(i64::MAX);
        let every = (retain / 100).max(1);
        let first = last - count + 1;
        if (first - 1) / every != last / every && last > retain {
            let sql = "DELETE FROM sp_changes WHERE seq <= ?";
            self.conn
                .execute(sql, &[SqlValue::Integer(last - retain)])
                .await?;
        }
        self.announce_changes().await?;
        Ok(Some(last))
    }

    /// Inserts `rows` letting SQLite number them; returns the last number.
    async fn append_numbered_by_sqlite(&mut self, rows: &[(i64, &str, &str)]) -> Result<i64> {
        let mut last = 0;
        for chunk in rows.chunks(APPEND_CHUNK) {
            let mut sql = String::from("INSERT INTO sp_changes (id, model, kind) VALUES ");
            let mut binds = Vec::with_capacity(chunk.len() * 3);
            for (i, (id, model, kind)) in chunk.iter().enumerate() {
                sql.push_str(if i == 0 { "(?, ?, ?)" } else { ", (?, ?, ?)" });
                binds.push(SqlValue::Integer(*id));
                binds.push(SqlValue::Text((*model).to_owned()));
                binds.push(SqlValue::Text((*kind).to_owned()));
            }
            sql.push_str(" RETURNING seq");
            let written = self.conn.fetch_ints(&sql, &binds).await?;
            last = last.max(written.into_iter().flatten().max().unwrap_or(0));
        }
        Ok(last)
    }

    /// Inserts `rows` numbered from `first` on.
    async fn append_numbered(&mut self, rows: &[(i64, &str, &str)], first: i64) -> Result<()> {
        let mut seq = first;
        for chunk in rows.chunks(APPEND_CHUNK) {
            let mut sql = String::from("INSERT INTO sp_changes (seq, id, model, kind) VALUES ");
            let mut binds = Vec::with_capacity(chunk.len() * 4);
            for (i, (id, model, kind)) in chunk.iter().enumerate() {
                sql.push_str(if i == 0 {
                    "(?, ?, ?, ?)"
                } else {
                    ", (?, ?, ?, ?)"
                });
                binds.push(SqlValue::Integer(seq));
                binds.push(SqlValue::Integer(*id));
                binds.push(SqlValue::Text((*model).to_owned()));
                binds.push(SqlValue::Text((*kind).to_owned()));
                seq += 1;
            }
            self.conn.execute(&sql, &binds).await?;
        }
        Ok(())
    }
}

impl Store {
    /// The logged changes after `seq`, oldest first, at most `limit`.
    ///
    /// # Errors
    ///
    /// [`crate::Error::Query`] when the statement fails, [`crate::Error::Busy`]
    /// when the connection stays taken.
    pub async fn changes_after(&self, seq: i64, limit: u32) -> Result<Vec<LoggedRow>> {
        let sql = "SELECT seq, id, model, kind FROM sp_changes WHERE seq > ? ORDER BY seq LIMIT ?";
        self.pool
            .fetch(
                sql,
                &[SqlValue::Integer(seq), SqlValue::Integer(i64::from(limit))],
                |r| {
                    Ok(LoggedRow {
                        seq: r.int(0)?.unwrap_or_default(),
                        id: r.int(1)?.unwrap_or_default(),
                        model: r.text(2)?.unwrap_or_default(),
                        kind: r.text(3)?.unwrap_or_default(),
                    })
                },
            )
            .await
    }

    /// The oldest sequence number still in the log (`None` while it is
    /// empty) and the latest ever written (0 before the first).
    ///
    /// # Errors
    ///
    /// As [`Store::changes_after`].
    pub async fn change_log_bounds(&self) -> Result<(Option<i64>, i64)> {
        let sql = match self.dialect() {
            Dialect::Sqlite => {
                "SELECT (SELECT MIN(seq) FROM sp_changes), \
                 COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'sp_changes'), 0)"
            }
            Dialect::Postgres => {
                "SELECT (SELECT MIN(seq) FROM sp_changes), \
                 (SELECT value FROM sp_meta WHERE key = 'change_log')"
            }
        };
        let rows = self
            .pool
            .fetch(sql, &[], |r| Ok((r.int(0)?, r.int(1)?.unwrap_or_default())))
            .await?;
        Ok(rows.into_iter().next().unwrap_or((None, 0)))
    }
}

#[cfg(test)]
mod tests {
    use crate::store::temp_store as store;

    #[tokio::test]
    async fn changes_are_numbered_in_commit_order_and_a_rollback_leaves_no_gap() {
        let (_dir, store) = store().await;
        let mut tx = store.begin().await.expect("begin");
        let last = tx
            .append_changes(&[(1, "Site", "created"), (2, "Site", "created")], 100)
            .await
            .expect("append");
        assert_eq!(last, Some(2));
        tx.commit().await.expect("commit");
        let mut dropped = store.begin().await.expect("begin");
        dropped
            .append_changes(&[(3, "Site", "created")], 100)
            .await
            .expect("append");
        drop(dropped);
        let mut tx = store.begin().await.expect("begin");
        tx.append_changes(&[(1, "Site", "updated")], 100)
            .await
            .expect("append");
        tx.commit().await.expect("commit");
        let rows = store.changes_after(0, 10).await.expect("read");
        let seqs: Vec<i64> = rows.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, [1, 2, 3]);
        assert_eq!(rows[2].kind, "updated");
        assert_eq!(store.changes_after(2, 10).await.expect("read").len(), 1);
        assert_eq!(
            store.change_log_bounds().await.expect("bounds"),
            (Some(1), 3)
        );
    }

    #[tokio::test]
    async fn the_log_keeps_the_latest_rows_and_never_reuses_a_number() {
        let (_dir, store) = store().await;
        for i in 0..25 {
            let mut tx = store.begin().await.expect("begin");
            tx.append_changes(&[(i, "Site", "created")], 10)
                .await
                .expect("append");
            tx.commit().await.expect("commit");
        }
        let (oldest, latest) = store.change_log_bounds().await.expect("bounds");
        assert_eq!(latest, 25);
        let oldest = oldest.expect("rows left");
        assert!((11..=16).contains(&oldest), "oldest {oldest}");
        assert_eq!(
            store.changes_after(0, 100).await.expect("read").len() as i64,
            latest - oldest + 1
        );
    }
}
