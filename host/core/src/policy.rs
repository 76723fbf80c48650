//! Bookkeeping for model policies: what they have not handled yet, and
//! recording what they did. Like the synchronizer's, these writes never make
//! an object pending.

use crate::bookkeeping::{PolicyCode, field};
use syncplane_store::{Condition, Row, SqlValue};

use crate::core::{Core, decode};
use crate::error::Result;
use crate::object::{Change, ChangeKind, Object};
use crate::registry::{POLICED_SEQ, POLICY_PENDING, POLICY_RETRY};
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
        self.policy_ready(model, 0, limit, now_ms()).await
    }

    /// [`Core::policy_pending`] for ids above `after`, due at `now_ms`.
    pub(crate) async fn policy_ready(
        &self,
        model: &str,
        after: i64,
        limit: Option<u32>,
        now_ms: i64,
    ) -> Result<Vec<Object>> {
        let mut tx = self.begin().await?;
        let table = tx.table(model)?;
        let due = Condition::Any(vec![
            Condition::IsNull(POLICY_RETRY.into()),
            Condition::AtMost(POLICY_RETRY.into(), SqlValue::Integer(now_ms)),
        ]);
        let mut conditions = vec![Condition::Sql(POLICY_PENDING), due];
        if after > 0 {
            conditions.push(Condition::AtLeast(
                "id".into(),
                SqlValue::Integer(after + 1),
            ));
        }
        let rows = tx.store_tx().select(&table, &conditions, limit).await?;
        let registry = self.registry();
        Ok(rows
            .into_iter()
            .map(|(id, row)| decode(&registry, model, id, row))
            .collect())
    }

    /// The earliest retry time of failed policies among objects of `models`.
    ///
    /// # Errors
    ///
    /// A database failure.
    pub async fn next_policy_retry_ms(&self, models: &[String]) -> Result<Option<i64>> {
        let mut tx = self.begin().await?;
        let mut earliest: Option<i64> = None;
        for model in models {
            let Ok(table) = tx.table(model) else { continue };
            let min = tx
                .store_tx()
                .min(&table, POLICY_RETRY, &[Condition::Sql(POLICY_PENDING)])
                .await?;
            earliest = match (earliest, min) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        Ok(earliest)
    }

    /// Records that model policies handled `object` as read (`Ok`), or
    /// failed and are retried at `retry_at_ms` (`Err`).
    ///
    /// # Errors
    ///
    /// A database failure.
    pub async fn record_policy(
        &self,
        object: &Object,
        outcome: std::result::Result<(), String>,
        retry_at_ms: i64,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        let table = tx.table(&object.model)?;
        let (row, kind) = match outcome {
            Ok(()) => (
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
            Err(message) => (
                Row::from([
                    (
                        field::POLICY_CODE.to_owned(),
                        SqlValue::Integer(PolicyCode::Failed.as_i64()),
                    ),
                    (field::POLICY_STATUS.to_owned(), SqlValue::Text(message)),
                    (POLICY_RETRY.to_owned(), SqlValue::Integer(retry_at_ms)),
                ]),
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
