//! The engine loop: wake on changes or retry times, run what is due.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use serde_json::Value;
use syncplane_core::{Core, Object, Registry, SyncBatch, now_ms};
use tokio::sync::{Notify, broadcast, watch};
use tokio::task::JoinSet;
use tracing::{debug, error, info, warn};

use crate::backoff::RetryPolicy;
use crate::cohort::{Node, cohorts};
use crate::error::Result;
use crate::limits::ServiceLimits;
use crate::outcome::SyncStep;
use crate::policy::{ModelPolicy, awaits_policies, run_policies};
use crate::runner::{Phase, Runner, Verdict, Work};
use crate::stats::Stats;
use crate::steps::StepTable;

/// How long a pass keeps retrying to record its outcomes while the
/// database is busy or cannot be written.
const APPLY_RETRY_FOR: Duration = Duration::from_secs(10);

/// The delay before the next pass after `failed` passes failed in a row
/// (the database busy, full or failing): 1 s, doubling, at most 30 s.
fn pass_retry_delay(failed: u32) -> Duration {
    let shift = failed.saturating_sub(1).min(5);
    Duration::from_secs(1u64 << shift).min(Duration::from_secs(30))
}

/// `(model, depends_on)` from a model-deps file.
type ModelDep = (String, String);

/// How the engine schedules work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineConfig {
    /// Retry timing for deferred and failed objects.
    pub retry: RetryPolicy,
    /// How many cohorts run at the same time. Default: 4.
    pub concurrency: usize,
    /// The most objects one pass takes on; the rest waits for the next pass,
    /// which follows at once. Bounds memory and makes progress durable in
    /// steps. Default: 2000.
    pub batch_size: u32,
    /// What a service may use unless the operator set its own limits.
    pub service_limits: ServiceLimits,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            retry: RetryPolicy::default(),
            concurrency: 4,
            batch_size: 2000,
            service_limits: ServiceLimits::default(),
        }
    }
}

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PassReport {
    /// Objects run through steps (synced or torn down), deferred or purged.
    pub handled: usize,
    /// Whether more work was due than the pass took on.
    pub more: bool,
    /// The earliest retry time (ms since the epoch) of what remains; not
    /// looked up (`None`) when `more` is set.
    pub next_retry_ms: Option<i64>,
}

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
/// - No database transaction is open while a step runs; a pass's outcomes
///   are written together afterwards, so a crash loses at most the pass in
///   flight, whose objects are then simply pending again.
/// - Deletion runs `delete-record` and purges only after it succeeded;
///   objects of models without a step are purged directly.
#[derive(Clone)]
pub struct Engine {
    core: Core,
    config: EngineConfig,
    steps: Arc<RwLock<BTreeMap<String, Vec<SyncStep>>>>,
    policies: Arc<RwLock<BTreeMap<String, Vec<ModelPolicy>>>>,
    model_deps: Arc<RwLock<BTreeMap<String, Vec<ModelDep>>>>,
    limits: Arc<RwLock<BTreeMap<String, ServiceLimits>>>,
    table: Arc<Mutex<Option<CachedTable>>>,
    wake: Arc<Notify>,
    stats: Arc<Stats>,
}

/// The step table for the installed steps and one registry; dropped when
/// steps change.
struct CachedTable {
    registry: Arc<Registry>,
    table: Arc<StepTable>,
}

impl Engine {
    /// A new engine over `core`, with no steps yet.
    pub fn new(core: Core, config: EngineConfig) -> Self {
        Engine {
            core,
            config,
            steps: Arc::default(),
            policies: Arc::default(),
            model_deps: Arc::default(),
            limits: Arc::default(),
            table: Arc::default(),
            wake: Arc::default(),
            stats: Arc::default(),
        }
    }

    /// The engine's counters and metrics.
    pub fn stats(&self) -> Arc<Stats> {
        Arc::clone(&self.stats)
    }

    /// Installs (or replaces) the sync steps of `service` and wakes the loop.
    pub fn set_service_steps(&self, service: &str, steps: Vec<SyncStep>) {
        self.replace(&self.steps, service, steps);
    }

    /// Installs (or replaces) the extra model dependencies `(model,
    /// depends_on)` a service's model-deps file declares.
    pub fn set_service_model_deps(&self, service: &str, deps: Vec<ModelDep>) {
        self.replace(&self.model_deps, service, deps);
    }

    /// Sets what `service` may use of the engine; `None` returns it to the
    /// defaults of [`EngineConfig::service_limits`].
    pub fn set_service_limits(&self, service: &str, limits: Option<ServiceLimits>) {
        let mut all = match self.limits.write() {
            Ok(all) => all,
            Err(poisoned) => poisoned.into_inner(),
        };
        match limits {
            Some(limits) => all.insert(service.to_owned(), limits),
            None => all.remove(service),
        };
    }

    /// What `service` may use of the engine now.
    pub fn service_limits(&self, service: &str) -> ServiceLimits {
        let all = match self.limits.read() {
            Ok(all) => all,
            Err(poisoned) => poisoned.into_inner(),
        };
        all.get(service)
            .copied()
            .unwrap_or(self.config.service_limits)
    }

    /// Installs (or replaces) the model policies of `service` and wakes the loop.
    pub fn set_service_policies(&self, service: &str, policies: Vec<ModelPolicy>) {
        self.replace(&self.policies, service, policies);
    }

    /// Replaces one service's entry, drops the step table and wakes the loop.
    fn replace<T>(&self, map: &RwLock<BTreeMap<String, T>>, service: &str, value: T) {
        match map.write() {
            Ok(mut all) => {
                all.insert(service.to_owned(), value);
            }
            Err(poisoned) => {
                poisoned.into_inner().insert(service.to_owned(), value);
            }
        }
        if let Ok(mut cached) = self.table.lock() {
            *cached = None;
        }
        self.wake.notify_one();
    }

    /// The steps resolved against the current models, rebuilt only when
    /// steps or models changed.
    fn step_table(&self) -> Arc<StepTable> {
        let registry = self.core.registry();
        let mut cached = match self.table.lock() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(c) = cached.as_ref()
            && Arc::ptr_eq(&c.registry, &registry)
        {
            return Arc::clone(&c.table);
        }
        let steps: Vec<SyncStep> = match self.steps.read() {
            Ok(s) => s.values().flatten().cloned().collect(),
            Err(poisoned) => poisoned.into_inner().values().flatten().cloned().collect(),
        };
        let policies: Vec<ModelPolicy> = match self.policies.read() {
            Ok(p) => p.values().flatten().cloned().collect(),
            Err(poisoned) => poisoned.into_inner().values().flatten().cloned().collect(),
        };
        let deps: Vec<(String, String)> = match self.model_deps.read() {
            Ok(d) => d.values().flatten().cloned().collect(),
            Err(poisoned) => poisoned.into_inner().values().flatten().cloned().collect(),
        };
        let table = Arc::new(StepTable::build(registry.schema(), steps, policies, &deps));
        *cached = Some(CachedTable {
            registry,
            table: Arc::clone(&table),
        });
        table
    }

    /// Writes a pass's outcomes. The steps already ran: while the database
    /// is busy (another process holds its lock) or cannot be written, the
    /// write is retried with backoff for up to [`APPLY_RETRY_FOR`] rather
    /// than dropped, which would run the steps again.
    ///
    /// # Errors
    ///
    /// The last failure, once retrying is over or for any other error.
    async fn apply_outcomes(&self, batch: &SyncBatch) -> Result<()> {
        let started = Instant::now();
        let mut delay = Duration::from_millis(100);
        loop {
            match self.core.apply(batch).await {
                Err(error)
                    if error.is_storage_unavailable()
                        && started.elapsed() + delay < APPLY_RETRY_FOR =>
                {
                    warn!(error = %error, retry_in = ?delay, "cannot record the pass's outcomes yet; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(2));
                }
                other => return Ok(other?),
            }
        }
    }

    /// Runs until `shutdown` turns true. Sleeps until a change arrives on the
    /// change feed, steps are installed, or the earliest retry is due.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut feed = self.core.subscribe();
        // Deleted objects of models without steps are looked for at start
        // and after a deletion, not on every pass.
        let mut purge_scan = true;
        // Passes that failed in a row: a busy or full database is retried
        // with backoff, not every second.
        let mut failed_passes = 0u32;
        loop {
            let report = match self.pass(std::mem::take(&mut purge_scan)).await {
                Ok(report) => {
                    failed_passes = 0;
                    report
                }
                Err(error) => {
                    failed_passes = failed_passes.saturating_add(1);
                    let delay = pass_retry_delay(failed_passes);
                    warn!(
                        error = %error,
                        retry_in = ?delay,
                        failed_passes,
                        "synchronizer pass failed; retrying"
                    );
                    purge_scan = true;
                    PassReport {
                        next_retry_ms: Some(now_ms() + delay.as_millis() as i64),
                        ..PassReport::default()
                    }
                }
            };
            if *shutdown.borrow() {
                break;
            }
            if report.more {
                purge_scan = true;
                continue;
            }
            let sleep = report
                .next_retry_ms
                .map(|at| Duration::from_millis((at - now_ms()).max(0) as u64))
                .unwrap_or(Duration::from_secs(3600));
            tokio::select! {
                _ = shutdown.changed() => break,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(sleep) => {}
                change = wait_for_work(&mut feed) => match change {
                    Some(deleted) => purge_scan |= deleted,
                    None => break,
                },
            }
            if *shutdown.borrow() {
                break;
            }
        }
        debug!("synchronizer loop stopped");
    }

    /// Runs what is due once: purges, teardowns in reverse dependency
    /// order, then syncs by cohort; writes the outcomes in one transaction.
    ///
    /// # Errors
    ///
    /// When the store fails; nothing of the pass is written then.
    pub async fn run_pass(&self) -> Result<PassReport> {
        self.pass(true).await
    }

    async fn pass(&self, purge_scan: bool) -> Result<PassReport> {
        let table = self.step_table();
        let registry = self.core.registry();
        let mut budget = self.config.batch_size.max(1) as usize;
        let mut more = false;
        let mut batch = SyncBatch::default();
        let started = Instant::now();

        // Policies first: their writes may create work for this pass.
        let policed = run_policies(&self.core, &table, self.config.retry, budget).await?;
        more |= policed == budget;
        budget -= policed;

        // Objects of models no step serves need no teardown.
        for model in registry.schema().models().filter(|m| !m.is_abstract()) {
            if !purge_scan || table.serves(&model.name) {
                continue;
            }
            let found = self.core.deleted(&model.name, Some(budget as u32)).await?;
            more |= found.len() == budget;
            budget -= found.len();
            for object in found {
                if !awaits_policies(&table, &object) {
                    batch.purge(&object);
                }
            }
        }

        let mut deleted = Vec::new();
        for model in table.order().iter().rev() {
            if budget == 0 {
                more = true;
                break;
            }
            let found = self.core.deleted(model, Some(budget as u32)).await?;
            more |= found.len() == budget;
            budget -= found.len();
            deleted.extend(found);
        }
        let mut pending = Vec::new();
        for model in table.order() {
            if budget == 0 {
                more = true;
                break;
            }
            let found = self.core.pending(model, Some(budget as u32)).await?;
            more |= found.len() == budget;
            budget -= found.len();
            pending.extend(found);
        }
        // An object's policies see each version before its steps do.
        deleted.retain(|o| !awaits_policies(&table, o));
        pending.retain(|o| !awaits_policies(&table, o));
        let queue_depth = deleted.len() + pending.len();
        self.stats.pass(queue_depth);
        let handled = policed + batch.len() + queue_depth;
        if queue_depth > 0 {
            debug!(
                deleted = deleted.len(),
                pending = pending.len(),
                "engine pass"
            );
        }

        let fetched = started.elapsed();
        let runner = Runner {
            steps: Arc::clone(&table),
            policy: self.config.retry,
            stats: Arc::clone(&self.stats),
        };
        let teardown = self.plan(&registry, &table, deleted, Phase::Delete).await?;
        for (object, verdict) in self.run_cohorts(&runner, teardown, Phase::Delete).await {
            record(&mut batch, &object, verdict);
        }
        let sync = self.plan(&registry, &table, pending, Phase::Sync).await?;
        for (object, verdict) in self.run_cohorts(&runner, sync, Phase::Sync).await {
            record(&mut batch, &object, verdict);
        }
        let ran = started.elapsed();
        self.apply_outcomes(&batch).await?;
        let applied = started.elapsed();

        // With more due, the loop runs the next pass at once: no need to
        // look for the earliest retry.
        let next_retry_ms = if more {
            None
        } else {
            match (
                self.core.next_retry_ms(table.order()).await?,
                self.core
                    .next_policy_retry_ms(table.policed_models())
                    .await?,
            ) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        };
        if handled > 0 {
            debug!(
                handled,
                fetch_us = fetched.as_micros() as u64,
                run_us = (ran - fetched).as_micros() as u64,
                apply_us = (applied - ran).as_micros() as u64,
                next_retry_us = (started.elapsed() - applied).as_micros() as u64,
                "pass timings"
            );
        }
        Ok(PassReport {
            handled,
            more,
            next_retry_ms,
        })
    }

    /// Splits objects into cohorts of [`Work`], in the order they must run.
    async fn plan(
        &self,
        registry: &Registry,
        table: &StepTable,
        objects: Vec<Object>,
        phase: Phase,
    ) -> Result<Vec<Vec<Work>>> {
        if objects.is_empty() {
            return Ok(Vec::new());
        }
        let mut link_columns: HashMap<String, Vec<String>> = HashMap::new();
        let mut nodes = Vec::with_capacity(objects.len());
        for object in &objects {
            let columns = link_columns.entry(object.model.clone()).or_insert_with(|| {
                registry
                    .schema()
                    .all_fields(&object.model)
                    .into_iter()
                    .filter(|f| f.link_target().is_some() && !f.is_many())
                    .map(|f| f.column_name())
                    .collect()
            });
            nodes.push(Node {
                id: object.id,
                rank: table.rank(&object.model),
                links: columns.iter().filter_map(|c| object.int_field(c)).collect(),
            });
        }
        // A sync must wait for linked objects outside the pass that are not
        // in sync (failed, deferred, or beyond this pass's batch).
        let in_pass: HashSet<i64> = nodes.iter().map(|n| n.id).collect();
        let mut outside: HashMap<i64, Option<String>> = HashMap::new();
        if phase == Phase::Sync {
            for node in &nodes {
                for target in &node.links {
                    if !in_pass.contains(target) && !outside.contains_key(target) {
                        let blocking = self.blocking(table, *target).await?;
                        outside.insert(*target, blocking);
                    }
                }
            }
        }
        // A teardown waits for objects that still link to the object: they
        // may still need what it provides, or must be torn down first.
        let mut referenced: HashMap<i64, String> = HashMap::new();
        if phase == Phase::Delete {
            // Those in this pass are ordered by the cohorts instead.
            let in_teardown: HashSet<i64> = objects.iter().map(|o| o.id).collect();
            for object in &objects {
                if let Some((model, id)) = self.core.referrer(object, &in_teardown).await? {
                    referenced.insert(object.id, format!("{model} {id}: it still links here"));
                }
            }
        }
        let groups = cohorts(&nodes);
        let mut slots: Vec<Option<(Object, Node)>> =
            objects.into_iter().zip(nodes).map(Some).collect();
        let mut out = Vec::with_capacity(groups.len());
        for group in groups {
            let mut cohort = Vec::with_capacity(group.len());
            for i in group {
                let Some((object, node)) = slots[i].take() else {
                    continue;
                };
                let waiting_on = referenced.remove(&object.id).or_else(|| {
                    node.links
                        .iter()
                        .find_map(|t| outside.get(t).cloned().flatten())
                });
                cohort.push(Work {
                    object,
                    links: node.links,
                    waiting_on,
                });
            }
            if phase == Phase::Delete {
                cohort.reverse();
            }
            out.push(cohort);
        }
        Ok(out)
    }

    /// Why the object `id` (outside the pass) holds up objects linking to
    /// it, if it does: a step serves it and it is not in sync.
    async fn blocking(&self, table: &StepTable, id: i64) -> Result<Option<String>> {
        let Some(target) = self.core.get(id).await? else {
            return Ok(None);
        };
        let flag = |name: &str| target.fields.get(name) == Some(&Value::Bool(true));
        if !table.serves(&target.model) || flag("no_sync") || flag("deleted") {
            return Ok(None);
        }
        let failed = target.fields.get("backend_code") == Some(&Value::from(2));
        if !failed && !target.sync.is_dirty() {
            return Ok(None);
        }
        let status = target.str_field("backend_status").unwrap_or_default();
        Ok(Some(if status.is_empty() {
            format!("{} {}", target.model, target.id)
        } else {
            format!("{} {}: {status}", target.model, target.id)
        }))
    }

    /// Runs cohorts on up to `concurrency` worker tasks; one cohort's
    /// objects run one after another.
    async fn run_cohorts(
        &self,
        runner: &Runner,
        cohorts: Vec<Vec<Work>>,
        phase: Phase,
    ) -> Vec<(Object, Verdict)> {
        if cohorts.is_empty() {
            return Vec::new();
        }
        let workers = self.config.concurrency.clamp(1, cohorts.len());
        let queue = Arc::new(Mutex::new(VecDeque::from(cohorts)));
        let mut set = JoinSet::new();
        for _ in 0..workers {
            let queue = Arc::clone(&queue);
            let runner = runner.clone();
            set.spawn(async move {
                let mut out = Vec::new();
                loop {
                    let next = match queue.lock() {
                        Ok(mut q) => q.pop_front(),
                        Err(poisoned) => poisoned.into_inner().pop_front(),
                    };
                    let Some(cohort) = next else { break };
                    out.extend(runner.run_cohort(cohort, phase).await);
                }
                out
            });
        }
        let mut out = Vec::new();
        while let Some(joined) = set.join_next().await {
            match joined {
                Ok(results) => out.extend(results),
                // The objects of a crashed worker stay pending and run again.
                Err(e) => error!(error = %e, "engine worker crashed"),
            }
        }
        let done = out
            .iter()
            .filter(|(_, v)| {
                matches!(
                    v,
                    Verdict::Purge | Verdict::Record(syncplane_core::SyncRecord::Enacted { .. })
                )
            })
            .count();
        if !out.is_empty() {
            info!(phase = ?phase, objects = out.len(), done, "ran cohorts");
        }
        out
    }
}

fn record(batch: &mut SyncBatch, object: &Object, verdict: Verdict) {
    match verdict {
        Verdict::Record(record) => batch.record(object, record),
        Verdict::Purge => batch.purge(object),
    }
}

/// Waits for a change that may give the engine work: `Some(true)` when it
/// was (or may have been) a deletion, `None` when the feed closed.
async fn wait_for_work(feed: &mut broadcast::Receiver<syncplane_core::Change>) -> Option<bool> {
    loop {
        match feed.recv().await {
            Ok(change) if change.kind.needs_sync() => {
                return Some(change.kind == syncplane_core::ChangeKind::Deleted);
            }
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(_)) => return Some(true),
            Err(broadcast::error::RecvError::Closed) => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use serde_json::{Map, json};

    use super::*;
    use crate::outcome::{InvokeFuture, Outcome, StepInvoker};

    #[test]
    fn failed_passes_are_retried_with_backoff_up_to_thirty_seconds() {
        let delays: Vec<u64> = (1..=8).map(|n| pass_retry_delay(n).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(pass_retry_delay(u32::MAX), Duration::from_secs(30));
    }

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
        let engine = Engine::new(core.clone(), EngineConfig::default());
        let step = |model: &str, outcome: Outcome| SyncStep {
            service: "t".into(),
            name: format!("sync_{model}"),
            observes: vec![model.into()],
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
            json!(format!("waiting on Svc {svc}: no backend"))
        );
        // Nothing is due now: the next wake-up is the earliest retry.
        let next = next.next_retry_ms.expect("a retry is scheduled");
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

    const CHAIN: &str = r#"
option app_label = "c";
message Region (XOSBase) { required string name = 1; }
message Zone (XOSBase) { required string name = 1; required manytoone region->Region:zones = 2:1001; }
message Rack (XOSBase) { required string name = 1; required manytoone zone->Zone:racks = 2:1001; }"#;

    /// Fails objects whose name starts with "bad", sleeps a little, and
    /// records calls and the most calls seen running at once.
    struct Scripted {
        label: &'static str,
        calls: Arc<Mutex<Vec<String>>>,
        running: Arc<std::sync::atomic::AtomicUsize>,
        max_running: Arc<std::sync::atomic::AtomicUsize>,
    }

    impl Scripted {
        async fn call(&self, what: &str, object: &Object) -> Outcome {
            use std::sync::atomic::Ordering;
            let name = object.str_field("name").unwrap_or_default().to_owned();
            self.calls
                .lock()
                .expect("lock")
                .push(format!("{} {what} {name}", self.label));
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_running.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
            self.running.fetch_sub(1, Ordering::SeqCst);
            if name.starts_with("bad") {
                Outcome::Failed(format!("{name} is broken"))
            } else {
                Outcome::Done
            }
        }
    }

    impl StepInvoker for Scripted {
        fn sync_record<'a>(&'a self, object: &'a Object) -> InvokeFuture<'a> {
            Box::pin(self.call("sync", object))
        }
        fn delete_record<'a>(&'a self, object: &'a Object) -> InvokeFuture<'a> {
            Box::pin(self.call("delete", object))
        }
    }

    struct Chain {
        _dir: tempfile::TempDir,
        core: Core,
        engine: Engine,
        calls: Arc<Mutex<Vec<String>>>,
        max_running: Arc<std::sync::atomic::AtomicUsize>,
    }

    async fn chain(steps_per_model: &[&'static str], config: EngineConfig) -> Chain {
        let dir = tempfile::tempdir().expect("tempdir");
        let core = Core::open(&dir.path().join("db.sqlite"))
            .await
            .expect("open");
        let file = syncplane_xproto::parse("c.xproto", CHAIN).expect("parses");
        core.register_models(&[file]).await.expect("models");
        let calls = Arc::new(Mutex::new(Vec::new()));
        let running = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let max_running = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let engine = Engine::new(core.clone(), config);
        let mut steps = Vec::new();
        for model in ["Rack", "Zone", "Region"] {
            for label in steps_per_model {
                steps.push(SyncStep {
                    service: "c".into(),
                    name: format!("{label}_{model}"),
                    observes: vec![model.into()],
                    invoker: Arc::new(Scripted {
                        label,
                        calls: Arc::clone(&calls),
                        running: Arc::clone(&running),
                        max_running: Arc::clone(&max_running),
                    }),
                });
            }
        }
        engine.set_service_steps("c", steps);
        Chain {
            _dir: dir,
            core,
            engine,
            calls,
            max_running,
        }
    }

    async fn create(core: &Core, model: &str, fields: Value) -> i64 {
        core.create(model, map(fields)).await.expect("create").id
    }

    #[tokio::test]
    async fn a_failing_middle_object_defers_its_dependents_and_spares_other_cohorts() {
        let c = chain(&["s"], EngineConfig::default()).await;
        let region = create(&c.core, "Region", json!({ "name": "eu" })).await;
        let zone = create(
            &c.core,
            "Zone",
            json!({ "name": "bad-zone", "region_id": region }),
        )
        .await;
        let rack = create(&c.core, "Rack", json!({ "name": "r1", "zone_id": zone })).await;
        let other = create(&c.core, "Region", json!({ "name": "us" })).await;
        let report = c.engine.run_pass().await.expect("pass");
        assert_eq!(report.handled, 4);

        let calls = c.calls.lock().expect("lock").clone();
        assert!(calls.contains(&"s sync us".to_owned()), "{calls:?}");
        let pos = |what: &str| calls.iter().position(|c| c == what).expect(what);
        assert!(pos("s sync eu") < pos("s sync bad-zone"), "{calls:?}");
        assert!(
            !calls.iter().any(|c| c.ends_with(" r1")),
            "the rack ran: {calls:?}"
        );

        let get = |id| {
            let core = c.core.clone();
            async move { core.get(id).await.expect("get").expect("exists") }
        };
        assert_eq!(get(region).await.fields["backend_code"], json!(1));
        assert_eq!(get(other).await.fields["backend_code"], json!(1));
        let z = get(zone).await;
        assert_eq!(z.fields["backend_code"], json!(2));
        assert_eq!(z.fields["backend_status"], json!("bad-zone is broken"));
        let r = get(rack).await;
        assert_eq!(r.fields["backend_code"], json!(0));
        assert_eq!(
            r.fields["backend_status"],
            json!(format!("waiting on Zone {zone}: bad-zone is broken"))
        );
        assert!(r.sync.is_dirty());
    }

    #[tokio::test]
    async fn several_steps_serve_one_model_in_order_and_independent_cohorts_run_concurrently() {
        let c = chain(&["first", "second"], EngineConfig::default()).await;
        for name in ["a", "b", "c", "d"] {
            create(&c.core, "Region", json!({ "name": name })).await;
        }
        c.engine.run_pass().await.expect("pass");
        let calls = c.calls.lock().expect("lock").clone();
        assert_eq!(calls.len(), 8, "{calls:?}");
        for name in ["a", "b", "c", "d"] {
            let first = calls
                .iter()
                .position(|x| *x == format!("first sync {name}"));
            let second = calls
                .iter()
                .position(|x| *x == format!("second sync {name}"));
            assert!(first < second, "{name}: {calls:?}");
        }
        let max = c.max_running.load(std::sync::atomic::Ordering::SeqCst);
        assert!(max >= 2, "cohorts ran one at a time (max {max})");
    }

    #[tokio::test]
    async fn a_chain_is_torn_down_dependents_first() {
        let c = chain(&["s"], EngineConfig::default()).await;
        let region = create(&c.core, "Region", json!({ "name": "eu" })).await;
        let zone = create(&c.core, "Zone", json!({ "name": "z", "region_id": region })).await;
        let rack = create(&c.core, "Rack", json!({ "name": "r", "zone_id": zone })).await;
        c.engine.run_pass().await.expect("pass");
        c.calls.lock().expect("lock").clear();
        for id in [region, zone, rack] {
            c.core.delete(id).await.expect("delete");
        }
        c.engine.run_pass().await.expect("pass");
        assert_eq!(
            *c.calls.lock().expect("lock"),
            ["s delete r", "s delete z", "s delete eu"]
        );
        for id in [region, zone, rack] {
            assert!(c.core.get(id).await.expect("get").is_none());
        }
    }

    #[tokio::test]
    async fn a_pass_takes_at_most_a_batch_and_says_when_more_is_due() {
        let config = EngineConfig {
            batch_size: 3,
            ..EngineConfig::default()
        };
        let c = chain(&["s"], config).await;
        for i in 0..7 {
            create(&c.core, "Region", json!({ "name": format!("r{i}") })).await;
        }
        let mut handled = Vec::new();
        loop {
            let report = c.engine.run_pass().await.expect("pass");
            handled.push(report.handled);
            if !report.more {
                break;
            }
            assert!(handled.len() < 10, "never finished: {handled:?}");
        }
        assert_eq!(handled, [3, 3, 1]);
        assert!(
            c.core
                .pending("Region", None)
                .await
                .expect("pending")
                .is_empty()
        );
    }

    /// A policy that fails for names starting with "bad" and records events.
    struct Policing {
        events: Arc<Mutex<Vec<String>>>,
    }

    impl crate::policy::PolicyInvoker for Policing {
        fn handle<'a>(
            &'a self,
            object: &'a Object,
            event: crate::policy::PolicyEvent,
        ) -> crate::policy::PolicyFuture<'a> {
            let name = object.str_field("name").unwrap_or_default().to_owned();
            self.events
                .lock()
                .expect("lock")
                .push(format!("{event:?} {name}"));
            Box::pin(async move {
                if name.starts_with("bad") {
                    Err(format!("cannot police {name}"))
                } else {
                    Ok(())
                }
            })
        }
    }

    #[tokio::test]
    async fn policies_run_before_syncs_and_a_failing_policy_holds_the_sync_back() {
        let c = chain(&["s"], EngineConfig::default()).await;
        let events = Arc::new(Mutex::new(Vec::new()));
        c.engine.set_service_policies(
            "c",
            vec![crate::policy::ModelPolicy {
                service: "c".into(),
                name: "p".into(),
                model: "Region".into(),
                invoker: Arc::new(Policing {
                    events: Arc::clone(&events),
                }),
            }],
        );
        let good = create(&c.core, "Region", json!({ "name": "good" })).await;
        let bad = create(&c.core, "Region", json!({ "name": "bad" })).await;
        c.engine.run_pass().await.expect("pass");
        assert_eq!(*events.lock().expect("lock"), ["Create good", "Create bad"]);
        assert_eq!(*c.calls.lock().expect("lock"), ["s sync good"]);
        let bad = c.core.get(bad).await.expect("get").expect("bad");
        assert_eq!(bad.fields["policy_code"], json!(2));
        assert_eq!(bad.fields["policy_status"], json!("cannot police bad"));
        assert!(bad.sync.is_dirty());

        // A change is an update for the policy, and the sync follows it.
        c.core
            .update(good, map(json!({ "name": "good2" })))
            .await
            .expect("update");
        c.engine.run_pass().await.expect("pass");
        assert_eq!(
            events.lock().expect("lock").last().map(String::as_str),
            Some("Update good2")
        );
        assert_eq!(
            c.calls.lock().expect("lock").last().map(String::as_str),
            Some("s sync good2")
        );
    }

    #[tokio::test]
    async fn a_teardown_waits_for_live_objects_that_still_link_to_it() {
        let c = chain(&["s"], EngineConfig::default()).await;
        let region = create(&c.core, "Region", json!({ "name": "eu" })).await;
        let zone = create(&c.core, "Zone", json!({ "name": "z", "region_id": region })).await;
        c.engine.run_pass().await.expect("pass");
        c.calls.lock().expect("lock").clear();
        c.core.delete(region).await.expect("delete");
        c.engine.run_pass().await.expect("pass");
        assert!(
            c.calls.lock().expect("lock").is_empty(),
            "torn down while linked"
        );
        let waiting = c.core.get(region).await.expect("get").expect("still there");
        assert_eq!(
            waiting.fields["backend_status"],
            json!(format!("waiting on Zone {zone}: it still links here"))
        );
    }
}
