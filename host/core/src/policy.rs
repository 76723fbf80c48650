//! Bookkeeping for model policies: what they have not handled yet, and
//! recording what they did. Like the synchronizer's, these writes never make
//! an object pending.

use crate::bookkeeping::{PolicyCode, field};
use syncplane_store::{Condition, Row, SqlValue};

use crate::core::{Core, decode};
use crate::error::Result;
use crate::object::{Change, ChangeKind, Object};
use crate::registry::{POLICED_SEQ, POLICY_PENDING, POLICY_RETRY, POLICY_RETRYING};
use crate::time::{now_ms, now_secs};

impl Core {
    /// Objects of leaf model `model` whose latest version model policies
    /// have not handled (deleted ones included), not `no_policy`, and not
    /// waiting for a retry. At most `limit`, lowest ids first.
    ///
    /// # Errors
    ///
    /// [`crate::Error::UnknownModel`] or a database failure.
    pub async fn policy_pending(&self, model: &str, limit: Option<u32>) -> Result<Vec<Object>> {
        self.policy_ready(model, None, limit, now_ms()).await
    }

    /// [`Core::policy_pending`] for the ids `extra` selects, due at `now_ms`.
    pub(crate) async fn policy_ready(
        &self,
        model: &str,
        extra: Option<Condition>,
        limit: Option<u32>,
        now_ms: i64,
    ) -> Result<Vec<Object>> {
        let mut tx = self.begin_read().await?;
        let table = tx.table(model)?;
        let due = Condition::Any(vec![
            Condition::IsNull(POLICY_RETRY.into()),
            Condition::AtMost(POLICY_RETRY.into(), SqlValue::Integer(now_ms)),
        ]);
        let mut conditions = vec![Condition::Sql(POLICY_PENDING), due];
        conditions.extend(extra);
        let rows = tx.store_tx().select(&table, &conditions, limit).await?;
        let registry = self.registry();
        Ok(rows
            .into_iter()
            .map(|(id, row)| decode(&registry, model, id, row))
            .collect())
    }

    /// The earliest retry time of failed policies of each of `models`
    /// that has one, read in one transaction.
    ///
    /// # Errors
    ///
    /// A database failure.
    pub async fn policy_retry_times_ms(&self, models: &[String]) -> Result<Vec<(String, i64)>> {
        self.earliest_by_model(models, POLICY_RETRY, POLICY_RETRYING, &[POLICY_PENDING])
            .await
    }

    /// Records what model policies did with `object` (see
    /// [`PolicyRecord`]).
    ///
    /// # Errors
    ///
    /// A database failure.
    pub async fn record_policy(&self, object: &Object, record: PolicyRecord) -> Result<()> {
        let mut tx = self.begin().await?;
        let table = tx.table(&object.model)?;
        let unfinished = |code: PolicyCode, message: String, retry_at_ms: i64| {
            Row::from([
                (
                    field::POLICY_CODE.to_owned(),
                    SqlValue::Integer(code.as_i64()),
                ),
                (field::POLICY_STATUS.to_owned(), SqlValue::Text(message)),
                (POLICY_RETRY.to_owned(), SqlValue::Integer(retry_at_ms)),
            ])
        };
        let (row, kind) = match record {
            PolicyRecord::Done => (
                Row::from([
                    (field::POLICED.to_owned(), SqlValue::Real(now_secs())),
                    (
                        field::POLICY_CODE.to_owned(),
                        SqlValue::Integer(PolicyCode::Done.as_i64()),
                    ),
                    (
                        field::POLICY_STATUS.to_owned(),
                        SqlValue::Text("done".into()),
                    ),
                    (
                        POLICED_SEQ.to_owned(),
                        SqlValue::Integer(object.sync.change_seq),
                    ),
                    (POLICY_RETRY.to_owned(), SqlValue::Null),
                ]),
                ChangeKind::Policed,
            ),
            PolicyRecord::Deferred {
                message,
                retry_at_ms,
            } => (
                unfinished(PolicyCode::Pending, message, retry_at_ms),
                ChangeKind::Bookkeeping,
            ),
            PolicyRecord::Failed {
                message,
                retry_at_ms,
            } => (
                unfinished(PolicyCode::Failed, message, retry_at_ms),
                ChangeKind::Bookkeeping,
            ),
        };
        tx.store_tx().update(&table, object.id, &row).await?;
        tx.note(Change {
            id: object.id,
            model: object.model.clone(),
            kind,
        });
        tx.commit().await
    }
}

/// What model policies did with an object, for [`Core::record_policy`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyRecord {
    /// They all handled the version read: the object is policed
    /// (`policy_code` 1, `policy_status` `done`).
    Done,
    /// One could not run for a passing reason (the database busy): not a
    /// failure. `policy_code` stays 0 (pending), `policy_status` says why,
    /// and the object is policed again at `retry_at_ms`.
    Deferred {
        /// What happened.
        message: String,
        /// When to run the policies again, milliseconds since the epoch.
        retry_at_ms: i64,
    },
    /// One failed: `policy_code` 2 and its message; run again at
    /// `retry_at_ms`.
    Failed {
        /// The failure.
        message: String,
        /// When to run the policies again, milliseconds since the epoch.
        retry_at_ms: i64,
    },
}
