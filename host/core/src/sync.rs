//! Bookkeeping for the synchronizer: what is pending, and recording outcomes.
//!
//! These writes never advance an object's change sequence, so they never make
//! the object pending again.

use serde_json::{Map, Value};
use syncplane_store::{Condition, Row, SqlValue};

use crate::core::{Core, decode};
use crate::error::{Error, Result};
use crate::object::{Change, ChangeKind, Object};
use crate::registry::{CHANGE_SEQ, ENACTED_SEQ, FAILURES, NEXT_RETRY, to_sql};
use crate::time::{now_ms, now_secs};

/// The result of one sync or delete attempt, as the core records it.
#[derive(Debug, Clone, PartialEq)]
pub enum SyncRecord {
    /// The version with change sequence `synced_seq` is now in the backend.
    Enacted {
        /// The change sequence of the version the step saw.
        synced_seq: i64,
    },
    /// The step failed: `backend_code = 2`, retried at `retry_at_ms`.
    Failed {
        /// Becomes `backend_status`.
        message: String,
        /// Failures in a row, including this one.
        failures: i64,
        /// When to retry, in milliseconds since the epoch.
        retry_at_ms: i64,
    },
    /// The step asked to be retried later; not an error.
    Deferred {
        /// Becomes `backend_status`.
        message: String,
        /// When to retry, in milliseconds since the epoch.
        retry_at_ms: i64,
    },
}

fn due(now: i64) -> Condition {
    Condition::Any(vec![
        Condition::IsNull(NEXT_RETRY.into()),
        Condition::AtMost(NEXT_RETRY.into(), SqlValue::Integer(now)),
    ])
}

fn dirty() -> Condition {
    Condition::Any(vec![
        Condition::IsNull(ENACTED_SEQ.into()),
        Condition::ColumnLess(ENACTED_SEQ.into(), CHANGE_SEQ.into()),
    ])
}

fn flag(name: &str, on: bool) -> Condition {
    Condition::Eq(name.into(), SqlValue::Integer(i64::from(on)))
}

impl Core {
    async fn select_leaf(&self, model: &str, conditions: &[Condition]) -> Result<Vec<Object>> {
        let mut tx = self.begin().await?;
        let table = tx.table(model)?;
        let rows = tx.store_tx().select(&table, conditions, None).await?;
        let registry = self.registry();
        Ok(rows
            .into_iter()
            .map(|(id, row)| decode(&registry, model, id, row))
            .collect())
    }

    /// Objects whose leaf model is `model` and that need a sync now: changed
    /// since last enacted, not deleted, not `no_sync` or `lazy_blocked`, and
    /// not waiting for a retry.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownModel`] or a database failure.
    pub async fn pending(&self, model: &str) -> Result<Vec<Object>> {
        self.select_leaf(
            model,
            &[
                flag("deleted", false),
                flag("no_sync", false),
                flag("lazy_blocked", false),
                dirty(),
                due(now_ms()),
            ],
        )
        .await
    }

    /// Objects whose leaf model is `model`, marked deleted and due for teardown.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownModel`] or a database failure.
    pub async fn deleted(&self, model: &str) -> Result<Vec<Object>> {
        self.select_leaf(model, &[flag("deleted", true), due(now_ms())])
            .await
    }

    /// The earliest retry time among objects of `models` that have work.
    ///
    /// # Errors
    ///
    /// A database failure.
    pub async fn next_retry_ms(&self, models: &[String]) -> Result<Option<i64>> {
        let mut tx = self.begin().await?;
        let mut earliest: Option<i64> = None;
        let has_work = Condition::Any(vec![
            flag("deleted", true),
            Condition::IsNull(ENACTED_SEQ.into()),
            Condition::ColumnLess(ENACTED_SEQ.into(), CHANGE_SEQ.into()),
        ]);
        for model in models {
            let Ok(table) = tx.table(model) else { continue };
            let min = tx
                .store_tx()
                .min(
                    &table,
                    NEXT_RETRY,
                    &[has_work.clone(), flag("no_sync", false)],
                )
                .await?;
            earliest = match (earliest, min) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        Ok(earliest)
    }

    /// Records the outcome of a sync or delete attempt.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the object is gone, or a database failure.
    pub async fn record_sync(&self, id: i64, record: SyncRecord) -> Result<()> {
        let mut tx = self.begin().await?;
        let object = tx.get(id).await?.ok_or_else(|| Error::NotFound {
            model: "object".into(),
            id,
        })?;
        let table = tx.table(&object.model)?;
        let row = match record {
            SyncRecord::Enacted { synced_seq } => Row::from([
                ("enacted".to_owned(), SqlValue::Real(now_secs())),
                (ENACTED_SEQ.to_owned(), SqlValue::Integer(synced_seq)),
                ("backend_code".to_owned(), SqlValue::Integer(1)),
                ("backend_status".to_owned(), SqlValue::Text("OK".into())),
                ("backend_register".to_owned(), SqlValue::Text("{}".into())),
                (FAILURES.to_owned(), SqlValue::Integer(0)),
                (NEXT_RETRY.to_owned(), SqlValue::Null),
            ]),
            SyncRecord::Failed { message, failures, retry_at_ms } => Row::from([
                ("backend_code".to_owned(), SqlValue::Integer(2)),
                ("backend_status".to_owned(), SqlValue::Text(message)),
                (
                    "backend_register".to_owned(),
                    SqlValue::Text(
                        serde_json::json!({ "failures": failures, "next_run": retry_at_ms as f64 / 1000.0 })
                            .to_string(),
                    ),
                ),
                (FAILURES.to_owned(), SqlValue::Integer(failures)),
                (NEXT_RETRY.to_owned(), SqlValue::Integer(retry_at_ms)),
            ]),
            SyncRecord::Deferred { message, retry_at_ms } => Row::from([
                ("backend_code".to_owned(), SqlValue::Integer(0)),
                ("backend_status".to_owned(), SqlValue::Text(message)),
                (FAILURES.to_owned(), SqlValue::Integer(0)),
                (NEXT_RETRY.to_owned(), SqlValue::Integer(retry_at_ms)),
            ]),
        };
        tx.store_tx().update(&table, id, &row).await?;
        tx.note(Change {
            id,
            model: object.model,
            kind: ChangeKind::Bookkeeping,
        });
        tx.commit().await
    }

    /// Removes an object for good, after its teardown succeeded.
    ///
    /// # Errors
    ///
    /// A database failure.
    pub async fn purge(&self, id: i64) -> Result<()> {
        let mut tx = self.begin().await?;
        let Some(object) = tx.get(id).await? else {
            return Ok(());
        };
        let table = tx.table(&object.model)?;
        tx.store_tx().delete(&table, id).await?;
        tx.note(Change {
            id,
            model: object.model,
            kind: ChangeKind::Purged,
        });
        tx.commit().await
    }

    /// Writes feedback fields (`feedback_state` in xproto) of an object, as a
    /// sync step reports what it found in the backend.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidField`] for a field that is not feedback state or a
    /// mistyped value; [`Error::NotFound`].
    pub async fn set_feedback(&self, id: i64, input: Map<String, Value>) -> Result<()> {
        let mut tx = self.begin().await?;
        let object = tx.get(id).await?.ok_or_else(|| Error::NotFound {
            model: "object".into(),
            id,
        })?;
        let registry = self.registry();
        let table = tx.table(&object.model)?;
        let mut row = Row::new();
        for (name, value) in &input {
            let field = registry
                .schema()
                .field(&object.model, name)
                .ok_or_else(|| Error::invalid(&object.model, name, "unknown field"))?;
            if !field.flag("feedback_state") {
                return Err(Error::invalid(
                    &object.model,
                    name,
                    "is not a feedback field",
                ));
            }
            row.insert(field.column_name(), to_sql(&object.model, field, value)?);
        }
        row.insert("changed_by_step".into(), SqlValue::Real(now_secs()));
        tx.store_tx().update(&table, id, &row).await?;
        tx.note(Change {
            id,
            model: object.model,
            kind: ChangeKind::Bookkeeping,
        });
        tx.commit().await
    }
}
