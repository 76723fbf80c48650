//! The engine loop: wake on changes or retry times, run what is pending.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde_json::Value;
use syncplane_core::{Core, Object, SyncRecord, now_ms};
use tokio::sync::{Notify, broadcast, watch};
use tracing::{Instrument, debug, info, info_span, warn};

use crate::backoff::RetryPolicy;
use crate::error::Result;
use crate::order::sync_order;
use crate::outcome::{Outcome, SyncStep};

/// The synchronizer engine.
///
/// Cloning is cheap; clones share steps and state.
///
/// # Guarantees
///
/// - An object is synced only while its latest change is not enacted; a
///   success records the change sequence the step saw, so a change made
///   during the sync makes the object pending again.
/// - Bookkeeping written here never makes an object pending.
/// - Deletion runs `delete-record` and purges only after it succeeded;
///   objects of models without a step are purged directly.
#[derive(Clone)]
pub struct Engine {
    core: Core,
    policy: RetryPolicy,
    steps: Arc<RwLock<BTreeMap<String, Vec<SyncStep>>>>,
    wake: Arc<Notify>,
}

impl Engine {
    /// A new engine over `core`, with no steps yet.
    pub fn new(core: Core, policy: RetryPolicy) -> Self {
        Engine {
            core,
            policy,
            steps: Arc::default(),
            wake: Arc::default(),
        }
    }

    /// Installs (or replaces) the sync steps of `service` and wakes the loop.
    pub fn set_service_steps(&self, service: &str, steps: Vec<SyncStep>) {
        match self.steps.write() {
            Ok(mut all) => {
                all.insert(service.to_owned(), steps);
            }
            Err(poisoned) => {
                poisoned.into_inner().insert(service.to_owned(), steps);
            }
        }
        self.wake.notify_one();
    }

    fn all_steps(&self) -> Vec<SyncStep> {
        match self.steps.read() {
            Ok(s) => s.values().flatten().cloned().collect(),
            Err(poisoned) => poisoned.into_inner().values().flatten().cloned().collect(),
        }
    }

    /// Runs until `shutdown` turns true. Sleeps until a change arrives on the
    /// change feed, steps are installed, or the earliest retry is due.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut feed = self.core.subscribe();
        loop {
            let next_retry = match self.run_pass().await {
                Ok(next) => next,
                Err(error) => {
                    warn!(error = %error, "synchronizer pass failed; retrying");
                    Some(now_ms() + 1000)
                }
            };
            let sleep = next_retry
                .map(|at| Duration::from_millis((at - now_ms()).max(0) as u64))
                .unwrap_or(Duration::from_secs(3600));
            tokio::select! {
                _ = shutdown.changed() => break,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(sleep) => {}
                change = wait_for_work(&mut feed) => if !change { break },
            }
            if *shutdown.borrow() {
                break;
            }
        }
        debug!("synchronizer loop stopped");
    }

    /// Runs everything that is due once; returns the earliest retry time of
    /// what remains.
    ///
    /// # Errors
    ///
    /// When the store fails.
    pub async fn run_pass(&self) -> Result<Option<i64>> {
        let steps = self.all_steps();
        let registry = self.core.registry();
        let mut by_model: BTreeMap<String, SyncStep> = BTreeMap::new();
        for step in steps {
            by_model.entry(step.observes.clone()).or_insert(step);
        }
        let observed: Vec<String> = by_model.keys().cloned().collect();
        let order = sync_order(registry.schema(), &observed);

        // Objects of models no step observes need no teardown.
        for model in registry.schema().models().filter(|m| !m.is_abstract()) {
            if !by_model.contains_key(&model.name) {
                for object in self.core.deleted(&model.name).await? {
                    self.core.purge(object.id).await?;
                }
            }
        }
        // Teardown runs in reverse dependency order.
        for model in order.iter().rev() {
            let step = &by_model[model];
            for object in self.core.deleted(model).await? {
                self.run_step(step, object, true).await?;
            }
        }
        for model in &order {
            let step = &by_model[model];
            for object in self.core.pending(model).await? {
                if let Some(waiting) = self.unsynced_dependency(&object, &by_model).await? {
                    let message = format!("waiting on {waiting}");
                    debug!(object.id = object.id, %message, "deferring object");
                    self.core
                        .record_sync(
                            object.id,
                            SyncRecord::Deferred {
                                message,
                                retry_at_ms: now_ms()
                                    + self.policy.retry_interval.as_millis() as i64,
                            },
                        )
                        .await?;
                    continue;
                }
                self.run_step(step, object, false).await?;
            }
        }
        Ok(self.core.next_retry_ms(&observed).await?)
    }

    /// A linked object that a step synchronizes and that is not in sync yet.
    async fn unsynced_dependency(
        &self,
        object: &Object,
        by_model: &BTreeMap<String, SyncStep>,
    ) -> Result<Option<String>> {
        let registry = self.core.registry();
        for field in registry.schema().all_fields(&object.model) {
            if field.link_target().is_none() {
                continue;
            }
            let Some(target_id) = object.int_field(&field.column_name()) else {
                continue;
            };
            let Some(target) = self.core.get(target_id).await? else {
                continue;
            };
            if by_model.contains_key(&target.model)
                && (target.sync.is_dirty()
                    || target.fields.get("backend_code") == Some(&Value::from(2)))
            {
                return Ok(Some(format!("{} {}", target.model, target.id)));
            }
        }
        Ok(None)
    }

    async fn run_step(&self, step: &SyncStep, object: Object, delete: bool) -> Result<()> {
        let span = info_span!(
            "step",
            service = %step.service,
            step = %step.name,
            model = %object.model,
            object.id = object.id,
            attempt = object.sync.failures + 1,
        );
        async {
            let started = std::time::Instant::now();
            debug!(phase = if delete { "delete" } else { "sync" }, "invoking step");
            let outcome = if delete {
                step.invoker.delete_record(&object).await
            } else {
                step.invoker.sync_record(&object).await
            };
            let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
            match outcome {
                Outcome::Done if delete => {
                    info!(elapsed_ms, "deleted object");
                    self.core.purge(object.id).await?;
                }
                Outcome::Done => {
                    info!(elapsed_ms, "synced object");
                    self.core
                        .record_sync(object.id, SyncRecord::Enacted { synced_seq: object.sync.change_seq })
                        .await?;
                }
                Outcome::Deferred(message) => {
                    info!(elapsed_ms, %message, "step deferred");
                    let retry_at_ms = now_ms() + self.policy.retry_interval.as_millis() as i64;
                    self.core.record_sync(object.id, SyncRecord::Deferred { message, retry_at_ms }).await?;
                }
                Outcome::Failed(message) => {
                    let failures = object.sync.failures + 1;
                    let delay = self.policy.backoff(failures);
                    warn!(elapsed_ms, %message, failures, retry_in_ms = delay.as_millis() as u64, "step failed");
                    let retry_at_ms = now_ms() + delay.as_millis() as i64;
                    self.core
                        .record_sync(object.id, SyncRecord::Failed { message, failures, retry_at_ms })
                        .await?;
                }
            }
            Ok(())
        }
        .instrument(span)
        .await
    }
}

/// Waits for a change that may give the engine work; false when the feed closed.
async fn wait_for_work(feed: &mut broadcast::Receiver<syncplane_core::Change>) -> bool {
    loop {
        match feed.recv().await {
            Ok(change) if change.kind.needs_sync() => return true,
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(_)) => return true,
            Err(broadcast::error::RecvError::Closed) => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use serde_json::{Map, json};

    use super::*;
    use crate::outcome::{InvokeFuture, StepInvoker};

    const MODELS: &str = r#"
option app_label = "t";
message Svc (Service) { required string from = 1; }
message Inst (ServiceInstance) { required string to = 1; }"#;

    /// Records calls and answers with a fixed outcome.
    struct Recorder {
        calls: Arc<Mutex<Vec<String>>>,
        outcome: Outcome,
    }

    impl StepInvoker for Recorder {
        fn sync_record<'a>(&'a self, object: &'a Object) -> InvokeFuture<'a> {
            self.calls
                .lock()
                .expect("lock")
                .push(format!("sync {} {}", object.model, object.id));
            let outcome = self.outcome.clone();
            Box::pin(async move { outcome })
        }
        fn delete_record<'a>(&'a self, object: &'a Object) -> InvokeFuture<'a> {
            self.calls
                .lock()
                .expect("lock")
                .push(format!("delete {} {}", object.model, object.id));
            let outcome = self.outcome.clone();
            Box::pin(async move { outcome })
        }
    }

    fn map(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    async fn setup(
        svc_outcome: Outcome,
    ) -> (
        tempfile::TempDir,
        Core,
        Engine,
        Arc<Mutex<Vec<String>>>,
        i64,
        i64,
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let core = Core::open(&dir.path().join("db.sqlite"))
            .await
            .expect("open");
        let file = syncplane_xproto::parse("t.xproto", MODELS).expect("parses");
        core.register_models(&[file]).await.expect("models");
        let svc = core
            .create("Svc", map(json!({ "name": "s", "from": "a" })))
            .await
            .expect("svc");
        let inst = core
            .create(
                "Inst",
                map(json!({ "name": "i", "to": "b", "owner_id": svc.id })),
            )
            .await
            .expect("inst");
        let calls = Arc::new(Mutex::new(Vec::new()));
        let engine = Engine::new(core.clone(), RetryPolicy::default());
        let step = |model: &str, outcome: Outcome| SyncStep {
            service: "t".into(),
            name: format!("sync_{model}"),
            observes: model.into(),
            invoker: Arc::new(Recorder {
                calls: Arc::clone(&calls),
                outcome,
            }),
        };
        // Given in the "wrong" order on purpose: the engine orders by links.
        engine.set_service_steps(
            "t",
            vec![step("Inst", Outcome::Done), step("Svc", svc_outcome)],
        );
        (dir, core, engine, calls, svc.id, inst.id)
    }

    #[tokio::test]
    async fn services_sync_before_their_instances_and_are_torn_down_after_them() {
        let (_dir, core, engine, calls, svc, inst) = setup(Outcome::Done).await;
        engine.run_pass().await.expect("pass");
        assert_eq!(
            *calls.lock().expect("lock"),
            [format!("sync Svc {svc}"), format!("sync Inst {inst}")]
        );
        let synced = core.get(inst).await.expect("get").expect("exists");
        assert_eq!(synced.fields["backend_code"], json!(1));

        calls.lock().expect("lock").clear();
        core.delete(svc).await.expect("delete svc");
        core.delete(inst).await.expect("delete inst");
        engine.run_pass().await.expect("pass");
        assert_eq!(
            *calls.lock().expect("lock"),
            [format!("delete Inst {inst}"), format!("delete Svc {svc}")]
        );
        assert!(core.get(svc).await.expect("get").is_none());
        assert!(core.get(inst).await.expect("get").is_none());
    }

    #[tokio::test]
    async fn a_failure_backs_off_and_defers_the_objects_that_link_to_it() {
        let (_dir, core, engine, calls, svc, inst) =
            setup(Outcome::Failed("no backend".into())).await;
        let next = engine.run_pass().await.expect("pass");
        assert_eq!(*calls.lock().expect("lock"), [format!("sync Svc {svc}")]);
        let failed = core.get(svc).await.expect("get").expect("exists");
        assert_eq!(failed.fields["backend_code"], json!(2));
        assert_eq!(failed.fields["backend_status"], json!("no backend"));
        let waiting = core.get(inst).await.expect("get").expect("exists");
        assert_eq!(waiting.fields["backend_code"], json!(0));
        assert_eq!(
            waiting.fields["backend_status"],
            json!(format!("waiting on Svc {svc}"))
        );
        // Nothing is due now: the next wake-up is the earliest retry.
        let next = next.expect("a retry is scheduled");
        assert!(next > now_ms(), "retry not in the future");
        calls.lock().expect("lock").clear();
        engine.run_pass().await.expect("pass");
        assert!(
            calls.lock().expect("lock").is_empty(),
            "retried before the backoff elapsed"
        );
    }

    #[tokio::test]
    async fn deleted_objects_without_a_step_are_purged() {
        let (_dir, core, engine, _calls, _svc, _inst) = setup(Outcome::Done).await;
        let site = core
            .create("Site", map(json!({ "name": "here" })))
            .await
            .expect("site");
        core.delete(site.id).await.expect("delete");
        engine.run_pass().await.expect("pass");
        assert!(core.get(site.id).await.expect("get").is_none());
    }
}
