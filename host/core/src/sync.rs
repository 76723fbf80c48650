//! Bookkeeping for the synchronizer: what is pending, and recording outcomes.
//!
//! These writes never advance an object's change sequence, so they never make
//! the object pending again.

use crate::bookkeeping::{BackendCode, field};
use std::collections::{BTreeMap, HashSet};

use serde::Serialize;
use serde_json::{Map, Value};
use syncplane_store::{Condition, HistoryRetention, HistoryRow, Row, SqlValue};

use crate::authz::Principal;
use crate::core::Core;
use crate::error::{Error, Result};
use crate::object::{Change, ChangeKind, Object};
use crate::registry::{DELETED, ENACTED_SEQ, FAILURES, NEXT_RETRY, PENDING, RETRYING, to_sql};
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

/// The kinds of work the engine takes from the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Work {
    /// A model policy has not handled the object's latest version.
    Policy,
    /// The object changed since it was last enacted.
    Sync,
    /// The object is deleted and waits for its teardown or purge.
    Teardown,
}

fn due(now: i64) -> Condition {
    Condition::Any(vec![
        Condition::IsNull(NEXT_RETRY.into()),
        Condition::AtMost(NEXT_RETRY.into(), SqlValue::Integer(now)),
    ])
}

/// Outcomes of one engine pass, written together in one transaction.
///
/// Successes are grouped per model so that thousands of them cost one
/// statement; failures, deferrals and purges are rare and written one by one.
#[derive(Debug, Default)]
pub struct SyncBatch {
    enacted: BTreeMap<String, Vec<(i64, SqlValue)>>,
    others: Vec<(i64, String, SyncRecord)>,
    purges: Vec<(i64, String)>,
    /// The host whose store leases the outcomes are written under.
    fence: Option<String>,
    /// The invocations that produced the outcomes (and policies'), for the
    /// history, and how much history to keep.
    history: Vec<HistoryRow>,
    retention: HistoryRetention,
}

impl SyncBatch {
    /// Records `record` for `object`.
    pub fn record(&mut self, object: &Object, record: SyncRecord) {
        match record {
            SyncRecord::Enacted { synced_seq } => self
                .enacted
                .entry(object.model.clone())
                .or_default()
                .push((object.id, SqlValue::Integer(synced_seq))),
            other => self.others.push((object.id, object.model.clone(), other)),
        }
    }

    /// Removes `object` for good (its teardown succeeded, or it needs none).
    pub fn purge(&mut self, object: &Object) {
        self.purges.push((object.id, object.model.clone()));
    }

    /// Adds invocations to the history, written with the outcomes and
    /// kept as `retention` says. Each is written even when its outcome is
    /// not (another host took the object over): it ran all the same.
    pub fn invoked(&mut self, rows: Vec<HistoryRow>, retention: HistoryRetention) {
        self.history.extend(rows);
        self.retention = retention;
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.enacted.is_empty()
            && self.others.is_empty()
            && self.purges.is_empty()
            && self.history.is_empty()
    }

    /// How many outcomes were recorded.
    pub fn len(&self) -> usize {
        self.enacted.values().map(Vec::len).sum::<usize>() + self.others.len() + self.purges.len()
    }

    /// Writes the outcomes only of objects whose store lease `host` still
    /// holds, and ends those leases, in the same transaction (several
    /// hosts sharing a store; see `syncplane_store::Claim`). An object
    /// another host took over is left to it: its outcome here is dropped.
    pub fn fence(&mut self, host: impl Into<String>) {
        self.fence = Some(host.into());
    }

    /// The objects of the outcomes.
    fn ids(&self) -> Vec<i64> {
        let enacted = self.enacted.values().flatten().map(|(id, _)| *id);
        let others = self.others.iter().map(|(id, ..)| *id);
        let purges = self.purges.iter().map(|(id, _)| *id);
        enacted.chain(others).chain(purges).collect()
    }

    /// The batch with only the outcomes of `keep`.
    fn only(&self, keep: &HashSet<i64>) -> SyncBatch {
        let mut enacted = self.enacted.clone();
        for rows in enacted.values_mut() {
            rows.retain(|(id, _)| keep.contains(id));
        }
        enacted.retain(|_, rows| !rows.is_empty());
        SyncBatch {
            enacted,
            others: self
                .others
                .iter()
                .filter(|(id, ..)| keep.contains(id))
                .cloned()
                .collect(),
            purges: self
                .purges
                .iter()
                .filter(|(id, _)| keep.contains(id))
                .cloned()
                .collect(),
            fence: None,
            history: self.history.clone(),
            retention: self.retention,
        }
    }
}

fn enacted_row() -> Row {
    Row::from([
        (field::ENACTED.to_owned(), SqlValue::Real(now_secs())),
        (
            field::BACKEND_CODE.to_owned(),
            SqlValue::Integer(BackendCode::Enacted.as_i64()),
        ),
        (
            field::BACKEND_STATUS.to_owned(),
            SqlValue::Text("OK".into()),
        ),
        (
            field::BACKEND_REGISTER.to_owned(),
            SqlValue::Text("{}".into()),
        ),
        (FAILURES.to_owned(), SqlValue::Integer(0)),
        (NEXT_RETRY.to_owned(), SqlValue::Null),
    ])
}

fn outcome_row(record: SyncRecord) -> Row {
    match record {
        SyncRecord::Enacted { synced_seq } => {
            let mut row = enacted_row();
            row.insert(ENACTED_SEQ.to_owned(), SqlValue::Integer(synced_seq));
            row
        }
        SyncRecord::Failed {
            message,
            failures,
            retry_at_ms,
        } => Row::from([
            (
                field::BACKEND_CODE.to_owned(),
                SqlValue::Integer(BackendCode::Failed.as_i64()),
            ),
            (field::BACKEND_STATUS.to_owned(), SqlValue::Text(message)),
            (
                field::BACKEND_REGISTER.to_owned(),
                SqlValue::Text(
                    serde_json::json!({ "failures": failures, "next_run": retry_at_ms as f64 / 1000.0 })
                        .to_string(),
                ),
            ),
            (FAILURES.to_owned(), SqlValue::Integer(failures)),
            (NEXT_RETRY.to_owned(), SqlValue::Integer(retry_at_ms)),
        ]),
        SyncRecord::Deferred {
            message,
            retry_at_ms,
        } => Row::from([
            (
                field::BACKEND_CODE.to_owned(),
                SqlValue::Integer(BackendCode::Pending.as_i64()),
            ),
            (field::BACKEND_STATUS.to_owned(), SqlValue::Text(message)),
            (FAILURES.to_owned(), SqlValue::Integer(0)),
            (NEXT_RETRY.to_owned(), SqlValue::Integer(retry_at_ms)),
        ]),
    }
}

/// Where the objects of one model stand with the synchronizer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ModelSyncCounts {
    /// The model.
    pub model: String,
    /// Objects whose latest version is not enacted (including those below).
    pub pending: i64,
    /// Pending objects whose last attempt failed (`backend_code = 2`).
    pub failed: i64,
    /// Pending objects waiting to be retried without an error (deferred, or
    /// waiting on another object).
    pub deferred: i64,
    /// Objects marked deleted and not purged yet.
    pub deleted: i64,
    /// The earliest retry time, milliseconds since the epoch.
    pub next_retry_ms: Option<i64>,
}

impl Core {
    /// Counts of pending, failed, deferred and deleted objects of `model`.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownModel`] or a database failure.
    pub async fn sync_counts(&self, model: &str) -> Result<ModelSyncCounts> {
        let mut tx = self.begin_read().await?;
        let table = tx.table(model)?;
        let store = tx.store_tx();
        let pending = Condition::Sql(PENDING);
        Ok(ModelSyncCounts {
            model: model.to_owned(),
            pending: store.count(&table, std::slice::from_ref(&pending)).await?,
            failed: store
                .count(
                    &table,
                    &[
                        pending.clone(),
                        Condition::Eq(
                            field::BACKEND_CODE.into(),
                            SqlValue::Integer(BackendCode::Failed.as_i64()),
                        ),
                    ],
                )
                .await?,
            deferred: store
                .count(
                    &table,
                    &[
                        pending.clone(),
                        Condition::Eq(
                            field::BACKEND_CODE.into(),
                            SqlValue::Integer(BackendCode::Pending.as_i64()),
                        ),
                        Condition::Sql("_next_retry IS NOT NULL"),
                    ],
                )
                .await?,
            deleted: store.count(&table, &[Condition::Sql(DELETED)]).await?,
            next_retry_ms: store.min(&table, NEXT_RETRY, &[pending]).await?,
        })
    }

    async fn select_leaf(
        &self,
        model: &str,
        conditions: &[Condition],
        limit: Option<u32>,
    ) -> Result<Vec<Object>> {
        let registry = self.registry();
        let table = registry.table(model)?;
        let rows = self.store.select_values(table, conditions, limit).await?;
        let columns = registry.value_columns(model)?;
        let mut objects: Vec<Object> = rows
            .into_iter()
            .map(|(id, values)| columns.decode(model, id, values))
            .collect();
        // Steps see many-to-many links as the API shows them.
        if !registry.joins(model).is_empty() && !objects.is_empty() {
            let mut tx = self.store.begin().await?;
            crate::many::attach(&mut tx, &registry, &mut objects).await?;
        }
        Ok(objects)
    }

    /// Objects whose leaf model is `model` and that need a sync now: changed
    /// since last enacted, not deleted, not `no_sync` or `lazy_blocked`, and
    /// not waiting for a retry. At most `limit`, lowest ids first.
    ///
    /// The cost is proportional to the pending objects, not to the table.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownModel`] or a database failure.
    pub async fn pending(&self, model: &str, limit: Option<u32>) -> Result<Vec<Object>> {
        self.ready(model, Work::Sync, 0, limit).await
    }

    /// Objects whose leaf model is `model`, marked deleted and due for
    /// teardown. At most `limit`, lowest ids first.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownModel`] or a database failure.
    pub async fn deleted(&self, model: &str, limit: Option<u32>) -> Result<Vec<Object>> {
        self.ready(model, Work::Teardown, 0, limit).await
    }

    /// Objects of leaf model `model` with `work` due now and an id above
    /// `after`; at most `limit`, lowest ids first. Reading on from the last
    /// id seen lets a scheduler walk a long queue without reading the
    /// objects it already holds again.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownModel`] or a database failure.
    pub async fn ready(
        &self,
        model: &str,
        work: Work,
        after: i64,
        limit: Option<u32>,
    ) -> Result<Vec<Object>> {
        self.ready_at(model, work, after, limit, now_ms()).await
    }

    /// [`Core::ready`], with work due at `now_ms` (a scheduler's clock).
    ///
    /// # Errors
    ///
    /// [`Error::UnknownModel`] or a database failure.
    pub async fn ready_at(
        &self,
        model: &str,
        work: Work,
        after: i64,
        limit: Option<u32>,
        now_ms: i64,
    ) -> Result<Vec<Object>> {
        let after =
            (after > 0).then(|| Condition::AtLeast("id".into(), SqlValue::Integer(after + 1)));
        self.ready_where(model, work, after, limit, now_ms).await
    }

    /// Those of the objects `ids` (of leaf model `model`) that have `work`
    /// due at `now_ms`, read afresh: a host that has just leased them in a
    /// shared store reads them again, since another host may have
    /// finished their work between the first read and the lease.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownModel`] or a database failure.
    pub async fn ready_among(
        &self,
        model: &str,
        work: Work,
        ids: &[i64],
        now_ms: i64,
    ) -> Result<Vec<Object>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids = Condition::In(
            "id".into(),
            ids.iter().map(|&id| SqlValue::Integer(id)).collect(),
        );
        self.ready_where(model, work, Some(ids), None, now_ms).await
    }

    async fn ready_where(
        &self,
        model: &str,
        work: Work,
        extra: Option<Condition>,
        limit: Option<u32>,
        now_ms: i64,
    ) -> Result<Vec<Object>> {
        let mut conditions = match work {
            Work::Sync => vec![Condition::Sql(PENDING), due(now_ms)],
            Work::Teardown => vec![Condition::Sql(DELETED), due(now_ms)],
            Work::Policy => return self.policy_ready(model, extra, limit, now_ms).await,
        };
        conditions.extend(extra);
        self.select_leaf(model, &conditions, limit).await
    }

    /// The earliest retry time among objects of `models` that have work.
    ///
    /// # Errors
    ///
    /// A database failure.
    pub async fn next_retry_ms(&self, models: &[String]) -> Result<Option<i64>> {
        Ok(self
            .retry_times_ms(models)
            .await?
            .into_iter()
            .map(|(_, at)| at)
            .min())
    }

    /// The earliest retry time of each of `models` whose objects have
    /// work waiting for one, read in one transaction.
    ///
    /// # Errors
    ///
    /// A database failure.
    pub async fn retry_times_ms(&self, models: &[String]) -> Result<Vec<(String, i64)>> {
        self.earliest_by_model(models, NEXT_RETRY, RETRYING, &[PENDING, DELETED])
            .await
    }

    /// The least `column` of each of `models` among its objects matching
    /// one of `predicates`, for the models that have one; read in one
    /// transaction. `set` is the predicate of `column`'s partial index
    /// (the rows where it is set), which the reads use.
    pub(crate) async fn earliest_by_model(
        &self,
        models: &[String],
        column: &str,
        set: &'static str,
        predicates: &[&'static str],
    ) -> Result<Vec<(String, i64)>> {
        let mut tx = self.begin_read().await?;
        let mut times = Vec::new();
        for model in models {
            let Ok(table) = tx.table(model) else { continue };
            let mut earliest: Option<i64> = None;
            for predicate in predicates {
                let min = tx
                    .store_tx()
                    .min(
                        &table,
                        column,
                        &[Condition::Sql(set), Condition::Sql(predicate)],
                    )
                    .await?;
                earliest = earliest.into_iter().chain(min).min();
            }
            times.extend(earliest.map(|at| (model.clone(), at)));
        }
        Ok(times)
    }

    /// An object that still exists and links to `object`, other than those
    /// in `except`, as `(model, id)`: tearing `object` down must wait for it
    /// (deleted or not: a deleted one is torn down first).
    ///
    /// # Errors
    ///
    /// A database failure.
    pub async fn referrer(
        &self,
        object: &Object,
        except: &std::collections::HashSet<i64>,
    ) -> Result<Option<(String, i64)>> {
        let registry = self.registry();
        let schema = registry.schema();
        let mut tx = self.begin_read().await?;
        for model in schema.models().filter(|m| !m.is_abstract()) {
            for field in schema.all_fields(&model.name) {
                let Some(target) = field.link_target() else {
                    continue;
                };
                if field.is_many() || !schema.is_a(&object.model, target) {
                    continue;
                }
                let table = tx.table(&model.name)?;
                let found = tx
                    .store_tx()
                    .select(
                        &table,
                        &[Condition::Eq(
                            field.column_name(),
                            SqlValue::Integer(object.id),
                        )],
                        Some(except.len() as u32 + 1),
                    )
                    .await?;
                if let Some((id, _)) = found.iter().find(|(id, _)| !except.contains(id)) {
                    return Ok(Some((model.name.clone(), *id)));
                }
            }
        }
        Ok(None)
    }

    /// Writes a pass's outcomes in one transaction. Objects that vanished
    /// meanwhile are skipped.
    ///
    /// # Guarantees
    ///
    /// A purge never leaves a dangling link: an object that another object
    /// (live, or deleted and not purged yet) still links to is not purged
    /// unless that object is purged in the same batch. It stays deleted,
    /// with `backend_status` saying what still links to it, and is purged
    /// by a later batch once nothing does. Purging an object whose links
    /// point at deleted objects announces those on the change feed as
    /// [`ChangeKind::Deleted`], so that the synchronizer looks at them again.
    ///
    /// # Errors
    ///
    /// A database failure; nothing is written then.
    pub async fn apply(&self, batch: &SyncBatch) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin().await?;
        let fenced;
        let batch = match &batch.fence {
            None => batch,
            Some(host) => {
                let ids = batch.ids();
                let held: HashSet<i64> = tx
                    .store_tx()
                    .end_leases(host, &ids)
                    .await?
                    .into_iter()
                    .collect();
                if held.len() == ids.len() {
                    batch
                } else {
                    tracing::warn!(
                        lost = ids.len() - held.len(),
                        "another host took over objects whose work ran here too long; their outcomes here are dropped"
                    );
                    fenced = batch.only(&held);
                    &fenced
                }
            }
        };
        if !batch.enacted.is_empty() {
            let common = enacted_row();
            for (model, rows) in &batch.enacted {
                let table = tx.table(model)?;
                tx.store_tx()
                    .update_many(&table, &common, ENACTED_SEQ, rows)
                    .await?;
                for (id, _) in rows {
                    tx.note(Change {
                        id: *id,
                        model: model.clone(),
                        kind: ChangeKind::Bookkeeping,
                    });
                }
            }
        }
        for (id, model, record) in &batch.others {
            let table = tx.table(model)?;
            tx.store_tx()
                .update(&table, *id, &outcome_row(record.clone()))
                .await?;
            tx.note(Change {
                id: *id,
                model: model.clone(),
                kind: ChangeKind::Bookkeeping,
            });
        }
        tx.purge_unlinked(&batch.purges).await?;
        if !batch.history.is_empty() {
            tx.store_tx()
                .append_history(&batch.history, batch.retention, now_ms())
                .await?;
        }
        tx.commit().await
    }

    /// Records the outcome of a sync or delete attempt.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the object is gone, or a database failure.
    pub async fn record_sync(&self, id: i64, record: SyncRecord) -> Result<()> {
        let mut tx = self.begin().await?;
        let object = tx.get_existing(id).await?;
        let table = tx.table(&object.model)?;
        let row = outcome_row(record);
        tx.store_tx().update(&table, id, &row).await?;
        tx.note(Change {
            id,
            model: object.model,
            kind: ChangeKind::Bookkeeping,
        });
        tx.commit().await
    }

    /// Removes an object for good, after its teardown succeeded, unless
    /// something still links to it (see [`Core::apply`]). Returns whether
    /// it was purged.
    ///
    /// # Errors
    ///
    /// A database failure.
    pub async fn purge(&self, id: i64) -> Result<bool> {
        let mut tx = self.begin().await?;
        let Some(object) = tx.get(id).await? else {
            return Ok(false);
        };
        let purged = tx.purge_unlinked(&[(id, object.model)]).await?;
        tx.commit().await?;
        Ok(purged == 1)
    }

    /// Writes feedback fields (`feedback_state` in xproto) of an object, as a
    /// sync step reports what it found in the backend.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidField`] for a field that is not feedback state or a
    /// mistyped value; [`Error::Rejected`] when a validator of the model
    /// refuses the object with the new values (nothing is written);
    /// [`Error::NotFound`].
    pub async fn set_feedback(
        &self,
        who: &Principal,
        id: i64,
        input: Map<String, Value>,
    ) -> Result<()> {
        let mut tx = self.begin_as(who.clone()).await?;
        let object = tx.get_existing(id).await?;
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
        // Validators hold for every write, what a step reports included;
        // a refusal drops the transaction, so nothing of it is written.
        let after = tx.get_existing(id).await?;
        tx.check_written(Some(&object), &after).await?;
        tx.audit("feedback", &object.model, id, input).await?;
        tx.note(Change {
            id,
            model: object.model,
            kind: ChangeKind::Bookkeeping,
        });
        tx.commit().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const HELLO: &str = r#"
option app_label = "hello-world";
message HelloWorldService (Service) { required string hello_from = 1; }
message HelloWorldServiceInstance (ServiceInstance) {
    option owner_class_name = "HelloWorldService";
    required string hello_to = 1;
}"#;

    async fn core() -> (tempfile::TempDir, Core) {
        let dir = tempfile::tempdir().expect("tempdir");
        let core = Core::open(&dir.path().join("db.sqlite"))
            .await
            .expect("open");
        let file = syncplane_xproto::parse("hello.xproto", HELLO).expect("parses");
        core.register_models(&[file]).await.expect("models");
        (dir, core)
    }

    fn map(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    async fn service(core: &Core) -> Object {
        // `Service.name` is unique.
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        core.create(
            "HelloWorldService",
            map(json!({ "name": format!("hw{n}"), "hello_from": "Jon" })),
        )
        .await
        .expect("create")
    }

    #[tokio::test]
    async fn finding_work_uses_the_partial_indexes() {
        let (_dir, core) = core().await;
        let mut tx = core.begin().await.expect("begin");
        let table = tx.table("HelloWorldService").expect("table");
        for (predicate, index) in [(PENDING, "pending"), (DELETED, "deleted")] {
            let plan = tx
                .store_tx()
                .select_plan(&table, &[Condition::Sql(predicate), due(now_ms())])
                .await
                .expect("plan");
            assert!(
                plan.iter()
                    .any(|p| p.contains(&format!("m_helloworldservice__{index}"))),
                "{index}: {plan:?}"
            );
        }
    }

    #[tokio::test]
    async fn pending_objects_read_by_position_equal_those_read_one_by_one() {
        let (_dir, core) = core().await;
        let svc = service(&core).await;
        let got = core.get(svc.id).await.expect("get").expect("exists");
        let pending = core
            .pending("HelloWorldService", None)
            .await
            .expect("pending");
        assert_eq!(pending, [got]);
        assert_eq!(pending[0].fields["hello_from"], json!("Jon"));
    }

    #[tokio::test]
    async fn a_batch_writes_successes_failures_and_purges_together() {
        let (_dir, core) = core().await;
        let a = service(&core).await;
        let b = service(&core).await;
        let c = service(&core).await;
        core.delete(c.id).await.expect("delete");
        let mut batch = SyncBatch::default();
        batch.record(
            &a,
            SyncRecord::Enacted {
                synced_seq: a.sync.change_seq,
            },
        );
        batch.record(
            &b,
            SyncRecord::Failed {
                message: "down".into(),
                failures: 1,
                retry_at_ms: now_ms() + 60_000,
            },
        );
        batch.purge(&c);
        assert_eq!(batch.len(), 3);
        core.apply(&batch).await.expect("apply");
        let a = core.get(a.id).await.expect("get").expect("a");
        assert_eq!(a.fields["backend_code"], json!(1));
        assert!(!a.sync.is_dirty());
        let b = core.get(b.id).await.expect("get").expect("b");
        assert_eq!(b.fields["backend_code"], json!(2));
        assert_eq!(b.fields["backend_status"], json!("down"));
        assert!(core.get(c.id).await.expect("get").is_none());
        assert!(
            core.pending("HelloWorldService", None)
                .await
                .expect("pending")
                .is_empty()
        );
    }

    #[tokio::test]
    async fn user_changes_make_objects_pending_and_bookkeeping_does_not() {
        let (_dir, core) = core().await;
        let svc = service(&core).await;
        assert_eq!(
            core.pending("HelloWorldService", None)
                .await
                .expect("pending")
                .len(),
            1
        );
        core.record_sync(
            svc.id,
            SyncRecord::Enacted {
                synced_seq: svc.sync.change_seq,
            },
        )
        .await
        .expect("record");
        assert!(
            core.pending("HelloWorldService", None)
                .await
                .expect("pending")
                .is_empty()
        );
        let synced = core.get(svc.id).await.expect("get").expect("exists");
        assert_eq!(synced.fields["backend_code"], json!(1));
        assert_eq!(synced.fields["backend_status"], json!("OK"));

        core.set_feedback(
            &Principal::Host,
            svc.id,
            map(json!({ "backend_handle": "h-1" })),
        )
        .await
        .expect("feedback");
        assert!(
            core.pending("HelloWorldService", None)
                .await
                .expect("pending")
                .is_empty()
        );

        // Writing the current value again is no change either.
        core.update(svc.id, map(json!({ "hello_from": "Jon" })))
            .await
            .expect("same");
        assert!(
            core.pending("HelloWorldService", None)
                .await
                .expect("pending")
                .is_empty()
        );

        core.update(svc.id, map(json!({ "hello_from": "Arya" })))
            .await
            .expect("update");
        assert_eq!(
            core.pending("HelloWorldService", None)
                .await
                .expect("pending")
                .len(),
            1
        );
    }

    #[tokio::test]
    async fn a_change_made_during_a_sync_is_synced_again() {
        let (_dir, core) = core().await;
        let svc = service(&core).await;
        let seen = core
            .pending("HelloWorldService", None)
            .await
            .expect("pending")
            .remove(0);
        core.update(svc.id, map(json!({ "hello_from": "Arya" })))
            .await
            .expect("update");
        core.record_sync(
            seen.id,
            SyncRecord::Enacted {
                synced_seq: seen.sync.change_seq,
            },
        )
        .await
        .expect("record");
        let again = core
            .pending("HelloWorldService", None)
            .await
            .expect("pending");
        assert_eq!(again.len(), 1, "the newer version was marked enacted");
        assert_eq!(again[0].fields["hello_from"], json!("Arya"));
    }

    #[tokio::test]
    async fn failed_objects_wait_for_their_retry_time() {
        let (_dir, core) = core().await;
        let svc = service(&core).await;
        let retry_at_ms = now_ms() + 60_000;
        core.record_sync(
            svc.id,
            SyncRecord::Failed {
                message: "boom".into(),
                failures: 1,
                retry_at_ms,
            },
        )
        .await
        .expect("record");
        assert!(
            core.pending("HelloWorldService", None)
                .await
                .expect("pending")
                .is_empty()
        );
        let next = core
            .next_retry_ms(&["HelloWorldService".into()])
            .await
            .expect("next");
        assert_eq!(next, Some(retry_at_ms));
        let failed = core.get(svc.id).await.expect("get").expect("exists");
        assert_eq!(failed.fields["backend_code"], json!(2));
        assert_eq!(failed.fields["backend_status"], json!("boom"));
        assert_eq!(failed.sync.failures, 1);
        // A user change is retried at once.
        core.update(svc.id, map(json!({ "hello_from": "Arya" })))
            .await
            .expect("update");
        assert_eq!(
            core.pending("HelloWorldService", None)
                .await
                .expect("pending")
                .len(),
            1
        );
    }

    #[tokio::test]
    async fn declarative_fields_are_not_feedback() {
        let (_dir, core) = core().await;
        let svc = service(&core).await;
        let err = core
            .set_feedback(&Principal::Host, svc.id, map(json!({ "hello_from": "x" })))
            .await
            .expect_err("declarative");
        assert_eq!(
            err.to_string(),
            "HelloWorldService.hello_from: is not a feedback field"
        );
    }

    #[tokio::test]
    async fn a_validator_refuses_feedback_and_nothing_of_it_is_written() {
        const VALIDATED: &str = r#"
option app_label = "validated";
policy observed_in_sync < not (obj.observed = "out of sync") >
message ValidatedThing (XOSBase) {
    option validators = "observed_in_sync:the backend reports the thing out of sync";
    required string name = 1;
    optional string observed = 2 [feedback_state = True];
}"#;
        let dir = tempfile::tempdir().expect("tempdir");
        let core = Core::open(&dir.path().join("db.sqlite"))
            .await
            .expect("open");
        let file = syncplane_xproto::parse("validated.xproto", VALIDATED).expect("parses");
        core.register_models(&[file]).await.expect("models");
        let thing = core
            .create("ValidatedThing", map(json!({ "name": "t" })))
            .await
            .expect("create");
        let err = core
            .set_feedback(
                &Principal::Host,
                thing.id,
                map(json!({ "observed": "out of sync" })),
            )
            .await
            .expect_err("the validator refuses it");
        assert!(matches!(err, Error::Rejected { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "ValidatedThing: the backend reports the thing out of sync"
        );
        let got = core.get(thing.id).await.expect("get").expect("exists");
        assert_eq!(got.fields["observed"], Value::Null);
        core.set_feedback(&Principal::Host, thing.id, map(json!({ "observed": "ok" })))
            .await
            .expect("a valid report is written");
        let got = core.get(thing.id).await.expect("get").expect("exists");
        assert_eq!(got.fields["observed"], json!("ok"));
    }

    #[tokio::test]
    async fn instances_get_the_single_owner_named_by_owner_class_name() {
        let (_dir, core) = core().await;
        let svc = service(&core).await;
        let si = core
            .create(
                "HelloWorldServiceInstance",
                map(json!({ "name": "i", "hello_to": "Sansa" })),
            )
            .await
            .expect("create");
        assert_eq!(si.fields["owner_id"], json!(svc.id));
        // A second service makes the owner ambiguous: it must be given.
        core.create(
            "HelloWorldService",
            map(json!({ "name": "two", "hello_from": "Bran" })),
        )
        .await
        .expect("second");
        let err = core
            .create(
                "HelloWorldServiceInstance",
                map(json!({ "name": "j", "hello_to": "Sansa" })),
            )
            .await
            .expect_err("ambiguous owner");
        assert_eq!(
            err.to_string(),
            "HelloWorldServiceInstance.owner: is required"
        );
    }

    #[tokio::test]
    async fn deletion_marks_and_purge_removes() {
        let (_dir, core) = core().await;
        let svc = service(&core).await;
        core.delete(svc.id).await.expect("delete");
        let marked = core.get(svc.id).await.expect("get").expect("still there");
        assert_eq!(marked.fields["deleted"], json!(true));
        assert_eq!(marked.fields["backend_need_delete"], json!(true));
        assert!(
            core.pending("HelloWorldService", None)
                .await
                .expect("pending")
                .is_empty()
        );
        assert_eq!(
            core.deleted("HelloWorldService", None)
                .await
                .expect("deleted")
                .len(),
            1
        );
        core.purge(svc.id).await.expect("purge");
        assert!(core.get(svc.id).await.expect("get").is_none());
    }
}
