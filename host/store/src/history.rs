//! The invocation history: one row per step or policy invocation, with
//! its outcome, duration, message and a few log lines.
//!
//! The history is bounded by count and by age ([`HistoryRetention`]),
//! trimmed as rows are added. Trimming spares each object's first and
//! latest failure (`sp_history_failures` points at them), so an object that
//! failed long ago and then ran thousands of times still shows why it
//! first failed; they go once the object is purged.

use crate::backend::{Columns, Dialect};
use crate::error::Result;
use crate::store::{Store, StoreTx};
use crate::value::SqlValue;

/// The history's tables and index, created by migration 5. A step's
/// history is read newest first along the primary key (no index of its
/// own: each index costs every invocation a write, and the recent rows of a
/// step are found near the top).
pub(crate) fn history_tables(dialect: Dialect) -> Vec<String> {
    let int = dialect.column_type(crate::ColumnType::Integer);
    let text = dialect.column_type(crate::ColumnType::Text);
    vec![
        format!(
            "CREATE TABLE IF NOT EXISTS sp_history (id {}, at_ms {int} NOT NULL, \
             object {int} NOT NULL, model {text} NOT NULL, service {text} NOT NULL, \
             step {text} NOT NULL, kind {text} NOT NULL, outcome {text} NOT NULL, \
             cause {text}, duration_us {int} NOT NULL, message {text} NOT NULL, \
             logs {text} NOT NULL)",
            dialect.serial_key()
        ),
        "CREATE INDEX IF NOT EXISTS sp_history_object ON sp_history (object, id)".to_owned(),
        format!(
            "CREATE TABLE IF NOT EXISTS sp_history_failures (object {int} PRIMARY KEY, \
             first_id {int} NOT NULL, latest_id {int} NOT NULL)"
        ),
    ]
}

/// Columns of `sp_history` after `id`, in the order rows are written.
const COLUMNS: &str =
    "at_ms, object, model, service, step, kind, outcome, cause, duration_us, message, logs";

/// Rows per `INSERT` statement (eleven values each).
const APPEND_CHUNK: usize = 200;

/// One invocation, as written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryRow {
    /// When it started, milliseconds since the epoch.
    pub at_ms: i64,
    /// The object it ran on.
    pub object: i64,
    /// The object's model.
    pub model: String,
    /// The service of the step or policy.
    pub service: String,
    /// The step's or policy's name.
    pub step: String,
    /// `sync`, `delete` or `policy`.
    pub kind: String,
    /// `done`, `deferred`, `failed` or `trap`.
    pub outcome: String,
    /// For a trap, its cause (`deadline`, `memory`, ...).
    pub cause: Option<String>,
    /// How long it ran, in microseconds.
    pub duration_us: i64,
    /// The step's message (empty when done).
    pub message: String,
    /// Log lines the guest wrote while it ran, already bounded by the
    /// caller.
    pub logs: Vec<String>,
}

impl HistoryRow {
    /// Whether the invocation failed (reported a failure or trapped).
    pub fn is_failure(&self) -> bool {
        self.outcome == "failed" || self.outcome == "trap"
    }
}

/// A row of the history as read, with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// Its position: later invocations have higher ids.
    pub id: i64,
    /// What was written.
    pub row: HistoryRow,
}

/// How much history is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryRetention {
    /// The most rows kept (besides each object's first and latest failure).
    pub keep: u64,
    /// Rows older than this, in milliseconds, are removed.
    pub max_age_ms: i64,
}

impl Default for HistoryRetention {
    /// 100,000 rows, 7 days.
    fn default() -> Self {
        HistoryRetention {
            keep: 100_000,
            max_age_ms: 7 * 24 * 3600 * 1000,
        }
    }
}

/// Which rows to read, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryQuery {
    /// Only this object's invocations.
    pub object: Option<i64>,
    /// Only this service's (and, with `step`, this step's).
    pub service: Option<String>,
    /// Only this step or policy (with `service`).
    pub step: Option<String>,
    /// Only these outcomes (`done`, `deferred`, `failed`, `trap`); empty
    /// for all.
    pub outcomes: Vec<String>,
    /// Only rows older than this id (the next page).
    pub before: Option<i64>,
    /// The most rows to read.
    pub limit: u32,
}

impl StoreTx {
    /// Appends `rows` to the history, records each object's first and
    /// latest failure, and trims the history to `retention` each time the
    /// row count crosses a hundredth of `retention.keep` (as the change
    /// log does), `now_ms` deciding what is too old.
    ///
    /// # Errors
    ///
    /// [`crate::Error::Query`] when a statement fails.
    pub async fn append_history(
        &mut self,
        rows: &[HistoryRow],
        retention: HistoryRetention,
        now_ms: i64,
    ) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        // Rows keep their order; failures are rare and written one at a
        // time, to know each one's id; runs of others share statements.
        let mut run: Vec<&HistoryRow> = Vec::new();
        for row in rows {
            if !row.is_failure() {
                run.push(row);
                if run.len() == APPEND_CHUNK {
                    self.insert_history(&run, false).await?;
                    run.clear();
                }
                continue;
            }
            self.insert_history(&run, false).await?;
            run.clear();
            let id = self.insert_history(&[row], true).await?;
            self.conn
                .execute(
                    "INSERT INTO sp_history_failures (object, first_id, latest_id) VALUES (?, ?, ?) \
                     ON CONFLICT (object) DO UPDATE SET latest_id = excluded.latest_id",
                    &[
                        SqlValue::Integer(row.object),
                        SqlValue::Integer(id),
                        SqlValue::Integer(id),
                    ],
                )
                .await?;
        }
        self.insert_history(&run, false).await?;
        let last = self
            .conn
            .fetch_ints("SELECT MAX(id) FROM sp_history", &[])
            .await?
            .into_iter()
            .flatten()
            .max()
            .unwrap_or(0);
        let count = i64::try_from(rows.len()).unwrap_or(i64::MAX);
        let keep = i64::try_from(retention.keep).unwrap_or(i64::MAX);
        let every = (keep / 100).max(1);
        if (last - count) / every != last / every {
            self.trim_history(last - keep, now_ms - retention.max_age_ms)
                .await?;
        }
        Ok(())
    }

    /// Inserts `rows` in one statement; with `returning`, returns the
    /// highest id given (else 0: reading ids back costs a tenth of the
    /// insert).
    async fn insert_history(&mut self, rows: &[&HistoryRow], returning: bool) -> Result<i64> {
        if rows.is_empty() {
            return Ok(0);
        }
        let mut sql = format!("INSERT INTO sp_history ({COLUMNS}) VALUES ");
        let mut binds = Vec::with_capacity(rows.len() * 11);
        for (i, row) in rows.iter().enumerate() {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
            binds.extend(values(row));
        }
        if !returning {
            self.conn.execute(&sql, &binds).await?;
            return Ok(0);
        }
        sql.push_str(" RETURNING id");
        let ids = self.conn.fetch_ints(&sql, &binds).await?;
        Ok(ids.into_iter().flatten().max().unwrap_or(0))
    }

    /// Removes rows up to `up_to`, and up to [`AGE_TRIM_ROWS`] of the
    /// oldest rows older than `before_ms`, except each object's first and
    /// latest failure; forgets the failures of objects that no longer
    /// exist. Each statement walks the primary key from its low end, so a
    /// trim costs what it removes, not the size of the history.
    async fn trim_history(&mut self, up_to: i64, before_ms: i64) -> Result<()> {
        const SPARE: &str = "id NOT IN (SELECT first_id FROM sp_history_failures) \
                             AND id NOT IN (SELECT latest_id FROM sp_history_failures)";
        self.conn
            .execute(
                "DELETE FROM sp_history_failures WHERE object NOT IN (SELECT id FROM sp_objects)",
                &[],
            )
            .await?;
        let mut removed = self
            .conn
            .execute(
                &format!("DELETE FROM sp_history WHERE id <= ? AND {SPARE}"),
                &[SqlValue::Integer(up_to)],
            )
            .await?;
        let oldest = self
            .conn
            .fetch_ints("SELECT at_ms FROM sp_history ORDER BY id LIMIT 1", &[])
            .await?;
        if oldest
            .into_iter()
            .flatten()
            .next()
            .is_some_and(|at| at < before_ms)
        {
            removed += self
                .conn
                .execute(
                    &format!(
                        "DELETE FROM sp_history WHERE id IN \
                         (SELECT id FROM sp_history ORDER BY id LIMIT {AGE_TRIM_ROWS}) \
                         AND at_ms < ? AND {SPARE}"
                    ),
                    &[SqlValue::Integer(before_ms)],
                )
                .await?;
        }
        tracing::debug!(removed, "invocation history trimmed");
        Ok(())
    }
}

/// The most rows one trim removes for their age.
const AGE_TRIM_ROWS: u32 = 10_000;

/// The values of `row` in [`COLUMNS`] order.
fn values(row: &HistoryRow) -> [SqlValue; 11] {
    [
        SqlValue::Integer(row.at_ms),
        SqlValue::Integer(row.object),
        SqlValue::Text(row.model.clone()),
        SqlValue::Text(row.service.clone()),
        SqlValue::Text(row.step.clone()),
        SqlValue::Text(row.kind.clone()),
        SqlValue::Text(row.outcome.clone()),
        row.cause.clone().map_or(SqlValue::Null, SqlValue::Text),
        SqlValue::Integer(row.duration_us),
        SqlValue::Text(row.message.clone()),
        SqlValue::Text(serde_json::to_string(&row.logs).unwrap_or_else(|_| "[]".to_owned())),
    ]
}

/// Reads a row selected as `id, ` then [`COLUMNS`].
fn read(r: &dyn Columns) -> Result<HistoryEntry, sqlx::Error> {
    let logs = r.text(11)?.unwrap_or_default();
    Ok(HistoryEntry {
        id: r.int(0)?.unwrap_or_default(),
        row: HistoryRow {
            at_ms: r.int(1)?.unwrap_or_default(),
            object: r.int(2)?.unwrap_or_default(),
            model: r.text(3)?.unwrap_or_default(),
            service: r.text(4)?.unwrap_or_default(),
            step: r.text(5)?.unwrap_or_default(),
            kind: r.text(6)?.unwrap_or_default(),
            outcome: r.text(7)?.unwrap_or_default(),
            cause: r.text(8)?,
            duration_us: r.int(9)?.unwrap_or_default(),
            message: r.text(10)?.unwrap_or_default(),
            logs: serde_json::from_str(&logs).unwrap_or_default(),
        },
    })
}

impl Store {
    /// The invocations `query` selects, newest first.
    ///
    /// # Errors
    ///
    /// [`crate::Error::Query`] when the statement fails.
    pub async fn history(&self, query: &HistoryQuery) -> Result<Vec<HistoryEntry>> {
        let mut sql = format!("SELECT id, {COLUMNS} FROM sp_history WHERE 1 = 1");
        let mut binds = Vec::new();
        if let Some(object) = query.object {
            sql.push_str(" AND object = ?");
            binds.push(SqlValue::Integer(object));
        }
        if let Some(service) = &query.service {
            sql.push_str(" AND service = ?");
            binds.push(SqlValue::Text(service.clone()));
        }
        if let Some(step) = &query.step {
            sql.push_str(" AND step = ?");
            binds.push(SqlValue::Text(step.clone()));
        }
        if !query.outcomes.is_empty() {
            let marks = vec!["?"; query.outcomes.len()].join(", ");
            sql.push_str(&format!(" AND outcome IN ({marks})"));
            binds.extend(query.outcomes.iter().cloned().map(SqlValue::Text));
        }
        if let Some(before) = query.before {
            sql.push_str(" AND id < ?");
            binds.push(SqlValue::Integer(before));
        }
        sql.push_str(" ORDER BY id DESC LIMIT ?");
        binds.push(SqlValue::Integer(i64::from(query.limit)));
        self.pool.fetch(&sql, &binds, read).await
    }

    /// `object`'s first and latest failure, kept however old they are
    /// while the object exists (`None` when it never failed).
    ///
    /// # Errors
    ///
    /// [`crate::Error::Query`] when the statement fails.
    pub async fn failures_of(&self, object: i64) -> Result<Option<(HistoryEntry, HistoryEntry)>> {
        let sql = format!(
            "SELECT h.id, {} FROM sp_history_failures f JOIN sp_history h \
             ON h.id = f.first_id OR h.id = f.latest_id WHERE f.object = ? ORDER BY h.id",
            COLUMNS
                .split(", ")
                .map(|c| format!("h.{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let rows = self
            .pool
            .fetch(&sql, &[SqlValue::Integer(object)], read)
            .await?;
        Ok(match rows.as_slice() {
            [] => None,
            [only] => Some((only.clone(), only.clone())),
            [first, .., latest] => Some((first.clone(), latest.clone())),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::temp_store as store;

    fn row(object: i64, outcome: &str, at_ms: i64) -> HistoryRow {
        HistoryRow {
            at_ms,
            object,
            model: "Site".into(),
            service: "demo".into(),
            step: "sync_site".into(),
            kind: "sync".into(),
            outcome: outcome.into(),
            cause: (outcome == "trap").then(|| "deadline".to_owned()),
            duration_us: 42,
            message: if outcome == "done" {
                String::new()
            } else {
                format!("{outcome} at {at_ms}")
            },
            logs: vec!["line one".into(), "<b>two</b>".into()],
        }
    }

    async fn object(store: &Store) -> i64 {
        let mut tx = store.begin().await.expect("begin");
        let id = tx.allocate_id("Site").await.expect("id");
        tx.commit().await.expect("commit");
        id
    }

    #[tokio::test]
    async fn rows_read_back_newest_first_filtered_by_object_step_and_outcome() {
        let (_dir, store) = store().await;
        let (a, b) = (object(&store).await, object(&store).await);
        let mut tx = store.begin().await.expect("begin");
        let rows = [
            row(a, "done", 1),
            row(a, "failed", 2),
            row(b, "trap", 3),
            row(a, "deferred", 4),
        ];
        tx.append_history(&rows, HistoryRetention::default(), 10)
            .await
            .expect("append");
        tx.commit().await.expect("commit");

        let of_a = store
            .history(&HistoryQuery {
                object: Some(a),
                limit: 10,
                ..HistoryQuery::default()
            })
            .await
            .expect("read");
        let outcomes: Vec<&str> = of_a.iter().map(|e| e.row.outcome.as_str()).collect();
        assert_eq!(outcomes, ["deferred", "failed", "done"]);
        assert_eq!(of_a[1].row, rows[1], "a row reads back as written");

        let failed = store
            .history(&HistoryQuery {
                service: Some("demo".into()),
                step: Some("sync_site".into()),
                outcomes: vec!["failed".into(), "trap".into()],
                limit: 10,
                ..HistoryQuery::default()
            })
            .await
            .expect("read");
        let objects: Vec<i64> = failed.iter().map(|e| e.row.object).collect();
        assert_eq!(objects, [b, a]);
        let page = store
            .history(&HistoryQuery {
                before: Some(failed[0].id),
                outcomes: vec!["trap".into()],
                limit: 10,
                ..HistoryQuery::default()
            })
            .await
            .expect("read");
        assert!(page.is_empty(), "nothing older is a trap: {page:?}");
    }

    #[tokio::test]
    async fn trimming_keeps_the_latest_rows_and_each_objects_first_and_latest_failure() {
        let (_dir, store) = store().await;
        let (a, b) = (object(&store).await, object(&store).await);
        let retention = HistoryRetention {
            keep: 10,
            max_age_ms: 1_000_000,
        };
        let mut tx = store.begin().await.expect("begin");
        tx.append_history(&[row(a, "failed", 1)], retention, 1)
            .await
            .expect("append");
        tx.append_history(&[row(a, "failed", 2)], retention, 2)
            .await
            .expect("append");
        tx.append_history(&[row(a, "trap", 3)], retention, 3)
            .await
            .expect("append");
        for at in 4..40 {
            tx.append_history(&[row(b, "done", at)], retention, at)
                .await
                .expect("append");
        }
        tx.commit().await.expect("commit");

        let all = store
            .history(&HistoryQuery {
                limit: 100,
                ..HistoryQuery::default()
            })
            .await
            .expect("read");
        let of_a: Vec<i64> = all
            .iter()
            .filter(|e| e.row.object == a)
            .map(|e| e.row.at_ms)
            .collect();
        assert_eq!(
            of_a,
            [3, 1],
            "the first and latest failure of a stay; the middle one goes"
        );
        let of_b = all.iter().filter(|e| e.row.object == b).count();
        assert!((10..=11).contains(&of_b), "about `keep` rows stay: {of_b}");
        let (first, latest) = store.failures_of(a).await.expect("read").expect("failed");
        assert_eq!((first.row.at_ms, latest.row.at_ms), (1, 3));
        assert_eq!(latest.row.cause.as_deref(), Some("deadline"));
        assert_eq!(store.failures_of(b).await.expect("read"), None);
    }

    #[tokio::test]
    async fn rows_older_than_the_age_limit_go_when_the_history_is_trimmed() {
        let (_dir, store) = store().await;
        let a = object(&store).await;
        let retention = HistoryRetention {
            keep: 100,
            max_age_ms: 50,
        };
        let mut tx = store.begin().await.expect("begin");
        for at in 0..100 {
            tx.append_history(&[row(a, "done", at)], retention, at)
                .await
                .expect("append");
        }
        tx.commit().await.expect("commit");
        let all = store
            .history(&HistoryQuery {
                limit: 200,
                ..HistoryQuery::default()
            })
            .await
            .expect("read");
        let oldest = all.iter().map(|e| e.row.at_ms).min().expect("rows");
        assert!(
            oldest >= 49 - 1,
            "rows older than 50 ms before the last trim went: {oldest}"
        );
    }
}
