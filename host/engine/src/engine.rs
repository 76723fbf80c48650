//! The engine: continuous, fair scheduling of every service's work.
//!
//! Three kinds of task run side by side:
//! - the planner (this file's [`Engine::run`]) wakes on the change feed,
//!   on commits and on retry times, takes ready work under leases and
//!   queues it in the lane of the service that runs it;
//! - each service's lane runs its jobs on up to its concurrency of
//!   workers, sharing the engine's slots fairly ([`crate::lane`]);
//! - the committer writes outcomes as jobs finish, grouping those that
//!   finish close together ([`crate::commit`]).
//!
//! No job waits for an unrelated one: a cohort starts as soon as it is
//! planned and a slot is free, and its outcome is committed as soon as it
//! finishes.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use syncplane_core::{Change, Core, HistoryRetention, Registry};
use tokio::sync::{Notify, Semaphore, broadcast, mpsc, watch};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::backoff::RetryPolicy;
use crate::clock::{Clock, SystemClock};
use crate::commit::Committer;
use crate::error::Result;
use crate::job::{Finished, Job};
use crate::lane::{Done, Lane, WorkerContext};
use crate::lease::{LocalLeases, WorkSource};
use crate::limits::ServiceLimits;
use crate::outcome::SyncStep;
use crate::plan::{Budget, Planner, Round, Scope, Stages};
use crate::policy::ModelPolicy;
use crate::retries::{Retries, RetryOf};
use crate::runner::{Runner, Verdict};
use crate::shared_leases::SharedLeases;
use crate::stats::Stats;
use crate::steps::StepTable;

/// The delay before the next round after `failed` rounds failed in a row
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
    /// The engine's slots: how many jobs (cohorts, policies) of all
    /// services run at the same time. Default: 64. Each service also has
    /// its own limit ([`ServiceLimits::concurrency`]).
    pub concurrency: usize,
    /// The most objects one service holds at once (queued, running or
    /// being committed), and the most one read takes. Bounds memory.
    /// Default: 2000.
    pub batch_size: u32,
    /// What a service may use unless the operator set its own limits.
    pub service_limits: ServiceLimits,
    /// On shutdown, how long running invocations may go on before they are
    /// interrupted. Default: 10 s.
    pub shutdown_grace: Duration,
    /// On a store several hosts share (PostgreSQL), how long a lease on
    /// an object lasts unless its host renews it: how soon the others
    /// take over a dead host's work. Default: 10 s.
    pub lease_ttl: Duration,
    /// How much invocation history is kept. Default: 100,000 rows, 7 days;
    /// `keep: 0` records none.
    pub history: HistoryRetention,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            retry: RetryPolicy::default(),
            concurrency: 64,
            batch_size: 2000,
            service_limits: ServiceLimits::default(),
            shutdown_grace: Duration::from_secs(10),
            lease_ttl: crate::shared_leases::DEFAULT_LEASE_TTL,
            history: HistoryRetention::default(),
        }
    }
}

/// What one [`Engine::run_pass`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PassReport {
    /// Objects run through steps or policies (synced, torn down, policed),
    /// deferred or purged.
    pub handled: usize,
    /// Whether more work was due than the pass took on.
    pub more: bool,
    /// The earliest retry time (ms since the epoch) of what remains; not
    /// looked up (`None`) when `more` is set.
    pub next_retry_ms: Option<i64>,
}

/// Which work one [`Engine::run_pass_of`] takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassScope {
    /// Model policies, then teardowns, purges and syncs: a whole pass.
    All,
    /// Only model policies (`handle-create`, `-update`, `-delete`).
    Policies,
    /// Only teardowns, purges and syncs.
    Steps,
}

/// What one service has in the engine now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ServiceUsage {
    /// Jobs (cohorts, policies) running now.
    pub running: usize,
    /// Jobs waiting for a slot.
    pub queued: usize,
    /// Objects taken on: queued, running or being committed.
    pub objects: usize,
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
/// - No database transaction is open while a step runs; outcomes are
///   written after their job, so a crash loses at most the jobs in flight,
///   whose objects are then simply pending again.
/// - An object is in at most one job at a time (it is leased), and an
///   object whose linked object's work is running waits for that commit.
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
    signals: Arc<Signals>,
    stats: Arc<Stats>,
    leases: Arc<dyn WorkSource>,
    lanes: Arc<Mutex<BTreeMap<String, Arc<Lane>>>>,
    /// The engine's slots, shared by every lane.
    slots: Arc<Semaphore>,
    clock: Arc<dyn Clock>,
}

/// The step table for the installed steps and one registry; dropped when
/// steps change.
struct CachedTable {
    registry: Arc<Registry>,
    table: Arc<StepTable>,
}

/// What wakes the planner, and which models it should look at.
#[derive(Default)]
struct Signals {
    wake: Notify,
    dirty: Mutex<Dirty>,
}

impl Dirty {
    /// Something is due at `at`: the earliest such time is kept.
    fn due_at(&mut self, at: i64) {
        self.retry_at = Some(self.retry_at.map_or(at, |e| e.min(at)));
    }

    /// Puts the models whose work waited back into the scope.
    fn look_again(&mut self) {
        let waiting = std::mem::take(&mut self.waiting);
        self.scope.models.extend(waiting);
    }
}

#[derive(Default)]
struct Dirty {
    scope: Scope,
    /// Models with work left waiting for a commit (a lane full, or a
    /// linked object's work running).
    waiting: HashSet<String>,
    /// The earliest retry time committed since the planner last looked.
    retry_at: Option<i64>,
}

impl Signals {
    fn dirty(&self) -> std::sync::MutexGuard<'_, Dirty> {
        lock(&self.dirty)
    }

    /// Everything may have work.
    fn everything(&self) {
        self.dirty().scope = Scope::everything();
        self.wake.notify_one();
    }

    /// Changes committed by someone else.
    fn changed(&self, changes: &[Change]) {
        {
            let mut dirty = self.dirty();
            for change in changes {
                if !dirty.scope.models.contains(&change.model) {
                    dirty.scope.models.insert(change.model.clone());
                }
                dirty.scope.purge_scan |= change.kind == syncplane_core::ChangeKind::Deleted;
            }
        }
        self.wake.notify_one();
    }

    /// Outcomes were committed: work that waited may go on, and the
    /// earliest of their retries is `retry_at`.
    fn committed(&self, retry_at: Option<i64>) {
        {
            let mut dirty = self.dirty();
            if let Some(at) = retry_at {
                dirty.due_at(at);
            }
            dirty.look_again();
        }
        self.wake.notify_one();
    }

    /// Something is due at `at`, on the engine's clock.
    fn retry_at(&self, at: i64) {
        self.dirty().due_at(at);
        self.wake.notify_one();
    }

    /// Work a round left for after the next commit.
    fn wait_for_commit(&self, models: HashSet<String>) {
        self.dirty().waiting.extend(models);
    }

    /// What to look at now, and the earliest retry committed since the
    /// last call; clears both.
    fn take(&self) -> (Scope, Option<i64>) {
        let mut dirty = self.dirty();
        (std::mem::take(&mut dirty.scope), dirty.retry_at.take())
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

fn read<T>(m: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    match m.read() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

fn write<T>(m: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    match m.write() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

impl Engine {
    /// A new engine over `core`, with no steps yet, keeping its leases in
    /// memory (one host on its own store), on the system clock.
    pub fn new(core: Core, config: EngineConfig) -> Self {
        Engine::with_clock(core, config, Arc::new(SystemClock))
    }

    /// [`Engine::new`] reading time from `clock` (tests use a
    /// [`crate::ManualClock`]). On a store several hosts may share, the
    /// leases are kept there ([`SharedLeases`], whose heartbeat starts on
    /// the current Tokio runtime).
    pub fn with_clock(core: Core, config: EngineConfig, clock: Arc<dyn Clock>) -> Self {
        let stats: Arc<Stats> = Arc::default();
        let leases: Arc<dyn WorkSource> = if core.store_is_shared() {
            SharedLeases::start(
                core.clone(),
                Arc::clone(&clock),
                config.lease_ttl,
                Arc::clone(&stats),
            )
        } else {
            Arc::new(LocalLeases::with_clock(core.clone(), Arc::clone(&clock)))
        };
        Engine {
            stats,
            ..Engine::with_work_source(core, config, leases, clock)
        }
    }

    /// A new engine that takes its work from `leases` and reads time from
    /// `clock`.
    pub fn with_work_source(
        core: Core,
        config: EngineConfig,
        leases: Arc<dyn WorkSource>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Engine {
            core,
            config,
            steps: Arc::default(),
            policies: Arc::default(),
            model_deps: Arc::default(),
            limits: Arc::default(),
            table: Arc::default(),
            signals: Arc::default(),
            stats: Arc::default(),
            leases,
            lanes: Arc::default(),
            slots: Arc::new(Semaphore::new(config.concurrency.max(1))),
            clock,
        }
    }

    /// Whether this host does the work only one host at a time may do,
    /// named `key` (a pull step, an event consumer): on a store several
    /// hosts share, whether it holds that work's lease (taking it when
    /// free); always on a store of one host.
    pub async fn holds(&self, key: &str) -> bool {
        self.leases.hold(key).await
    }

    /// Gives up the work named `key` that [`Engine::holds`] took, so that
    /// another host may take it at once.
    pub async fn let_go(&self, key: &str) {
        self.leases.let_go(key).await;
    }

    /// How often [`Engine::holds`] should be asked again while working:
    /// a third of the lease time.
    pub fn hold_period(&self) -> Duration {
        self.config.lease_ttl / 3
    }

    /// This host's id in a store several hosts share, when it is one.
    pub fn host_id(&self) -> Option<String> {
        self.leases.fence().map(str::to_owned)
    }

    /// The clock the engine reads time from; pull steps keep their
    /// intervals on it too.
    pub fn clock(&self) -> Arc<dyn Clock> {
        Arc::clone(&self.clock)
    }

    /// The engine's counters and metrics.
    pub fn stats(&self) -> Arc<Stats> {
        Arc::clone(&self.stats)
    }

    /// How the engine schedules work.
    pub fn config(&self) -> EngineConfig {
        self.config
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
    /// defaults of [`EngineConfig::service_limits`]. Running jobs finish
    /// under the old limits.
    pub fn set_service_limits(&self, service: &str, limits: Option<ServiceLimits>) {
        {
            let mut all = write(&self.limits);
            match limits {
                Some(limits) => all.insert(service.to_owned(), limits),
                None => all.remove(service),
            };
        }
        if let Some(lane) = lock(&self.lanes).get(service) {
            lane.set_limits(self.service_limits(service));
        }
        self.signals.everything();
    }

    /// What `service` may use of the engine now.
    pub fn service_limits(&self, service: &str) -> ServiceLimits {
        read(&self.limits)
            .get(service)
            .copied()
            .unwrap_or(self.config.service_limits)
    }

    /// What `service` has in the engine now.
    pub fn usage(&self, service: &str) -> ServiceUsage {
        lock(&self.lanes)
            .get(service)
            .map(|lane| ServiceUsage {
                running: lane.running(),
                queued: lane.queued(),
                objects: lane.held(),
            })
            .unwrap_or_default()
    }

    /// Runs `call` — a pull step's or an event step's invocation — for
    /// `service` once the service's concurrency, the engine's slots and the
    /// service's invocation rate allow, like the service's sync steps.
    /// `None` when the engine no longer runs calls (it stopped).
    pub async fn call<F: std::future::Future>(&self, service: &str, call: F) -> Option<F::Output> {
        let admitted = self.lane(service).admit(&self.slots).await?;
        if let Some(rate) = &admitted.rate {
            rate.until_ready().await;
        }
        let output = call.await;
        drop(admitted);
        Some(output)
    }

    /// Installs (or replaces) the model policies of `service` and wakes the loop.
    pub fn set_service_policies(&self, service: &str, policies: Vec<ModelPolicy>) {
        self.replace(&self.policies, service, policies);
    }

    /// Replaces one service's entry, drops the step table and wakes the loop.
    fn replace<T>(&self, map: &RwLock<BTreeMap<String, T>>, service: &str, value: T) {
        write(map).insert(service.to_owned(), value);
        *lock(&self.table) = None;
        self.signals.everything();
    }

    /// The steps resolved against the current models, rebuilt only when
    /// steps or models changed.
    fn step_table(&self) -> Arc<StepTable> {
        let registry = self.core.registry();
        let mut cached = lock(&self.table);
        if let Some(c) = cached.as_ref()
            && Arc::ptr_eq(&c.registry, &registry)
        {
            return Arc::clone(&c.table);
        }
        let steps: Vec<SyncStep> = read(&self.steps).values().flatten().cloned().collect();
        let policies: Vec<ModelPolicy> = read(&self.policies).values().flatten().cloned().collect();
        let deps: Vec<(String, String)> =
            read(&self.model_deps).values().flatten().cloned().collect();
        let table = Arc::new(StepTable::build(registry.schema(), steps, policies, &deps));
        *cached = Some(CachedTable {
            registry,
            table: Arc::clone(&table),
        });
        table
    }

    fn committer(&self) -> Committer {
        Committer {
            core: self.core.clone(),
            leases: Arc::clone(&self.leases),
            retry: self.config.retry,
            clock: Arc::clone(&self.clock),
            history: self.config.history,
        }
    }

    fn runner(&self, table: &Arc<StepTable>) -> Runner {
        Runner {
            steps: Arc::clone(table),
            policy: self.config.retry,
            stats: Arc::clone(&self.stats),
            rate: None,
            clock: Arc::clone(&self.clock),
        }
    }

    /// Plans one round over the current steps.
    async fn round(&self, scope: &Scope, budget: &mut Budget, stages: Stages) -> Result<Round> {
        let table = self.step_table();
        let registry = self.core.registry();
        let runner = self.runner(&table);
        let planner = Planner {
            core: &self.core,
            leases: self.leases.as_ref(),
            table: &table,
            registry: &registry,
            runner: &runner,
            chunk: self.config.batch_size.max(1) as usize,
        };
        planner.round(scope, budget, stages).await
    }

    /// The lane of `service`, created on first use.
    fn lane(&self, service: &str) -> Arc<Lane> {
        let mut lanes = lock(&self.lanes);
        if let Some(lane) = lanes.get(service) {
            return Arc::clone(lane);
        }
        let lane = Arc::new(Lane::new(service, self.service_limits(service)));
        lanes.insert(service.to_owned(), Arc::clone(&lane));
        lane
    }

    /// The earliest retry time of anything waiting: the models `looked`
    /// covers are read again into `retries` (all of them, and nothing
    /// else kept, when it covers everything), the others as `retries`
    /// last knew them.
    async fn next_retry_ms(&self, looked: &Scope, retries: &mut Retries) -> Result<Option<i64>> {
        let table = self.step_table();
        let pick = |models: &[String]| -> Vec<String> {
            models
                .iter()
                .filter(|model| looked.contains(model))
                .cloned()
                .collect()
        };
        let (sync, policed) = (pick(table.order()), pick(table.policed_models()));
        let sync_times = self.core.retry_times_ms(&sync).await?;
        let policy_times = self.core.policy_retry_times_ms(&policed).await?;
        if looked.all {
            retries.clear();
        }
        retries.set(RetryOf::Sync, &sync, sync_times);
        retries.set(RetryOf::Policy, &policed, policy_times);
        Ok(retries.earliest())
    }

    /// Runs until `shutdown` turns true, then stops taking work, lets
    /// running jobs finish for up to [`EngineConfig::shutdown_grace`],
    /// interrupts the rest (their objects stay pending) and commits what
    /// finished.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let (done_tx, done_rx) = mpsc::unbounded_channel::<Done>();
        let (stop_tx, stop_rx) = watch::channel(false);
        let ctx = WorkerContext {
            slots: Arc::clone(&self.slots),
            done: done_tx,
            stopping: stop_rx,
        };
        let signals = Arc::clone(&self.signals);
        let committer = tokio::spawn(
            self.committer()
                .run(done_rx, move |retry_at| signals.committed(retry_at)),
        );
        let mut workers = JoinSet::new();
        let mut feed = self.core.subscribe();
        let mut outcomes_elsewhere = self.core.subscribe_outcomes_elsewhere();
        let mut failed_rounds = 0u32;
        let mut next_retry: Option<i64> = None;
        // The models looked at since the retry times were last read.
        let mut looked = Scope::default();
        let mut retries = Retries::default();
        self.signals.everything();
        loop {
            if *shutdown.borrow() {
                break;
            }
            let (scope, retry_at) = self.signals.take();
            if let Some(at) = retry_at {
                next_retry = Some(next_retry.map_or(at, |n| n.min(at)));
            }
            if !scope.is_empty() {
                looked.merge(scope.clone());
                match self.queue_round(&scope, &ctx, &mut workers).await {
                    Ok(more) => {
                        failed_rounds = 0;
                        if more {
                            // Let workers and the committer run between rounds.
                            tokio::task::yield_now().await;
                            continue;
                        }
                        let read = std::mem::take(&mut looked);
                        next_retry = match self.next_retry_ms(&read, &mut retries).await {
                            // Read in full: what the store says replaces
                            // what commits signalled.
                            Ok(at) if read.all => at,
                            // Commits signal retries of models this read
                            // may not have covered: keep the earlier.
                            Ok(at) => next_retry.into_iter().chain(at).min(),
                            Err(error) => {
                                warn!(error = %error, "cannot look up the next retry time");
                                Some(self.clock.now_ms() + 1000)
                            }
                        };
                    }
                    Err(error) => {
                        failed_rounds = failed_rounds.saturating_add(1);
                        let delay = pass_retry_delay(failed_rounds);
                        warn!(error = %error, retry_in = ?delay, failed_rounds, "cannot take work from the store; retrying");
                        // Look at everything again once the delay is over.
                        self.signals.dirty().scope.merge(scope);
                        let at = self.clock.now_ms() + delay.as_millis() as i64;
                        next_retry = Some(at);
                        tokio::select! {
                            _ = shutdown.changed() => break,
                            _ = self.clock.sleep_until(at) => continue,
                        }
                    }
                }
            }
            let wake_at = next_retry.unwrap_or_else(|| self.clock.now_ms() + IDLE_LOOK_MS);
            tokio::select! {
                _ = shutdown.changed() => break,
                _ = self.signals.wake.notified() => {}
                _ = self.clock.sleep_until(wake_at) => {
                    next_retry = None;
                    self.signals.everything();
                }
                feed = next_changes(&mut feed) => match feed {
                    Feed::Changes(changes) => self.signals.changed(&changes),
                    Feed::Lagged => self.signals.everything(),
                    Feed::Closed => break,
                },
                // Work waiting for another host's may go on, as after a
                // commit here (lagging: several came at once).
                Ok(()) | Err(broadcast::error::RecvError::Lagged(_)) = outcomes_elsewhere.recv() => {
                    self.signals.committed(None);
                }
                Some(joined) = workers.join_next(), if !workers.is_empty() => {
                    if let Err(error) = joined
                        && error.is_panic()
                    {
                        warn!(error = %error, "an engine worker crashed; its objects run again");
                    }
                }
            }
        }
        let _ = stop_tx.send(true);
        self.drain(&mut workers).await;
        // Pull and event steps get no more calls either.
        self.slots.close();
        drop(ctx);
        let _ = committer.await;
        self.leases.stop().await;
        debug!("synchronizer stopped");
    }

    /// Lets running jobs finish within the shutdown grace, then interrupts
    /// them.
    async fn drain(&self, workers: &mut JoinSet<()>) {
        let running: usize = lock(&self.lanes).values().map(|l| l.running()).sum();
        if running > 0 {
            info!(
                running,
                grace = ?self.config.shutdown_grace,
                "waiting for running invocations to finish"
            );
        }
        let finished = tokio::time::timeout(self.config.shutdown_grace, async {
            while workers.join_next().await.is_some() {}
        })
        .await;
        if finished.is_err() {
            let running: usize = lock(&self.lanes).values().map(|l| l.running()).sum();
            warn!(
                running,
                "interrupting invocations still running after the shutdown grace; their objects stay pending"
            );
            workers.abort_all();
            while workers.join_next().await.is_some() {}
        }
    }

    /// Plans a round over `scope` and queues its jobs in their lanes.
    /// Returns whether more work is ready right now.
    async fn queue_round(
        &self,
        scope: &Scope,
        ctx: &WorkerContext,
        workers: &mut JoinSet<()>,
    ) -> Result<bool> {
        let held = lock(&self.lanes)
            .iter()
            .map(|(service, lane)| (service.clone(), lane.held()))
            .collect::<HashMap<_, _>>();
        let mut budget = Budget::PerService {
            window: self.config.batch_size.max(1) as usize,
            held,
        };
        let round = self.round(scope, &mut budget, Stages::ALL).await?;
        let taken = round.objects();
        if taken > 0 {
            debug!(objects = taken, services = ?crate::plan::per_service(&round), "queued work");
        }
        let more = round.more;
        self.signals.wait_for_commit(round.waiting);
        if let Some(until) = round.busy_until_ms {
            // Another host holds some of the work: look again when its
            // lease ends (it renews it while it lives).
            self.signals.retry_at(until + 1);
        }
        if !round.purges.is_empty() {
            let finished = purges(round.purges);
            let _ = ctx.done.send(Done {
                lane: None,
                finished,
            });
        }
        for (service, job) in round.jobs {
            self.lane(&service).push(job, ctx, workers);
        }
        self.stats.pass(self.leases.leased());
        if more {
            // A full read: what remains is read in the next round.
            self.signals.dirty().look_again();
        }
        Ok(more)
    }

    /// Runs what is due once, to the end: policies, then teardowns in
    /// reverse dependency order and syncs by cohort, at most
    /// [`EngineConfig::batch_size`] objects in all; writes the outcomes.
    /// For tests and tools; a server runs [`Engine::run`].
    ///
    /// # Errors
    ///
    /// When the store fails.
    pub async fn run_pass(&self) -> Result<PassReport> {
        self.run_pass_of(PassScope::All).await
    }

    /// [`Engine::run_pass`] limited to one kind of work: a tool that runs
    /// one service's model policies, or its steps, on their own (the
    /// offline step tests of `syncplane service test`). Objects whose
    /// policies have not run are not synced by a [`PassScope::Steps`]
    /// pass, as in every pass.
    ///
    /// # Errors
    ///
    /// When the store fails.
    pub async fn run_pass_of(&self, scope: PassScope) -> Result<PassReport> {
        let mut budget = Budget::Shared(self.config.batch_size.max(1) as usize);
        let mut handled = 0;
        let mut more = false;
        let all = [
            Stages {
                policies: true,
                steps: false,
            },
            Stages {
                policies: false,
                steps: true,
            },
        ];
        let stages = match scope {
            PassScope::All => &all[..],
            PassScope::Policies => &all[..1],
            PassScope::Steps => &all[1..],
        };
        for &stages in stages {
            let round = self
                .round(&Scope::everything(), &mut budget, stages)
                .await?;
            more |= round.more;
            handled += round.objects();
            let mut finished = vec![purges(round.purges)];
            finished.extend(self.run_jobs(round.jobs).await);
            let committer = self.committer();
            let written = committer.write(&finished.iter().collect::<Vec<_>>()).await;
            let ids: Vec<i64> = finished.iter().flat_map(|f| f.ids.clone()).collect();
            self.leases.release(&ids);
            written?;
        }
        self.stats.pass(handled);
        let next_retry_ms = if more {
            None
        } else {
            self.next_retry_ms(&Scope::everything(), &mut Retries::default())
                .await?
        };
        Ok(PassReport {
            handled,
            more,
            next_retry_ms,
        })
    }

    /// Runs jobs to the end, each service's at most its concurrency at once.
    async fn run_jobs(&self, jobs: Vec<(String, Job)>) -> Vec<Finished> {
        let mut limits: HashMap<String, Arc<Semaphore>> = HashMap::new();
        let mut set = JoinSet::new();
        for (service, job) in jobs {
            let limit = Arc::clone(limits.entry(service.clone()).or_insert_with(|| {
                let n = self.service_limits(&service).concurrency.max(1) as usize;
                Arc::new(Semaphore::new(n))
            }));
            set.spawn(async move {
                let _permit = limit.acquire_owned().await;
                job.run(None).await
            });
        }
        let mut out = Vec::new();
        while let Some(joined) = set.join_next().await {
            match joined {
                Ok(finished) => out.push(finished),
                // The objects of a crashed job stay pending and run again.
                Err(error) => warn!(error = %error, "an engine job crashed"),
            }
        }
        out
    }
}

/// Deleted objects no step serves, to purge.
fn purges(objects: Vec<syncplane_core::Object>) -> Finished {
    Finished {
        ids: objects.iter().map(|o| o.id).collect(),
        verdicts: objects.into_iter().map(|o| (o, Verdict::Purge)).collect(),
        policed: Vec::new(),
        history: Vec::new(),
    }
}

/// What arrived on the change feed.
enum Feed {
    /// Changes that may give the engine work: the first one waited for,
    /// with every one already queued behind it.
    Changes(Vec<Change>),
    /// Changes were missed (the feed lagged): look at everything.
    Lagged,
    /// The feed closed.
    Closed,
}

/// The most changes taken from the feed at once.
const FEED_BATCH: usize = 65_536;

/// With no retry due, the loop still looks at everything this often (on
/// its clock), in case a signal was lost.
const IDLE_LOOK_MS: i64 = 3_600_000;

/// Waits for a change that may give the engine work, then takes every
/// change already queued, so that a burst (a batch of thousands of
/// creates) costs one planning round, not one per change.
async fn next_changes(feed: &mut broadcast::Receiver<Change>) -> Feed {
    let first = loop {
        match feed.recv().await {
            Ok(change) if change.kind.needs_sync() => break change,
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(_)) => return Feed::Lagged,
            Err(broadcast::error::RecvError::Closed) => return Feed::Closed,
        }
    };
    let mut changes = vec![first];
    while changes.len() < FEED_BATCH {
        match feed.try_recv() {
            Ok(change) if change.kind.needs_sync() => changes.push(change),
            Ok(_) => {}
            Err(broadcast::error::TryRecvError::Lagged(_)) => return Feed::Lagged,
            Err(_) => break,
        }
    }
    Feed::Changes(changes)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use serde_json::{Map, Value, json};
    use syncplane_core::{Object, now_ms};

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

    type Setup = (
        tempfile::TempDir,
        Core,
        Engine,
        Arc<Mutex<Vec<String>>>,
        i64,
        i64,
    );

    async fn setup(svc_outcome: Outcome) -> Setup {
        setup_on(svc_outcome, Arc::new(SystemClock)).await
    }

    /// [`setup`], the engine reading time from `clock`.
    async fn setup_on(svc_outcome: Outcome, clock: Arc<dyn Clock>) -> Setup {
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
        let engine = Engine::with_clock(core.clone(), EngineConfig::default(), clock);
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

    /// Local leases whose reads of one model's syncs fail, as a read of a table
    /// dropped under the engine (a service uninstalled mid-round) does.
    struct FailingOn {
        inner: LocalLeases,
        model: &'static str,
    }

    impl WorkSource for FailingOn {
        fn take<'a>(
            &'a self,
            model: &'a str,
            work: syncplane_core::Work,
            limit: u32,
        ) -> crate::lease::TakeFuture<'a> {
            if model == self.model && work == syncplane_core::Work::Sync {
                return Box::pin(async {
                    Err(syncplane_core::Error::Conflict("no such table".into()).into())
                });
            }
            self.inner.take(model, work, limit)
        }
        fn is_leased(&self, id: i64) -> bool {
            self.inner.is_leased(id)
        }
        fn release(&self, ids: &[i64]) {
            self.inner.release(ids);
        }
        fn leased(&self) -> usize {
            self.inner.leased()
        }
    }

    #[tokio::test]
    async fn a_round_that_fails_part_way_leaves_nothing_leased() {
        let (_dir, core, _engine, calls, _svc, _inst) = setup(Outcome::Done).await;
        // Svc's syncs are read before Inst's; the read of Inst's fails.
        let leases = Arc::new(FailingOn {
            inner: LocalLeases::new(core.clone()),
            model: "Inst",
        });
        let failing = Engine::with_work_source(
            core.clone(),
            EngineConfig::default(),
            leases.clone(),
            Arc::new(SystemClock),
        );
        let step = |model: &str| SyncStep {
            service: "t".into(),
            name: format!("sync_{model}"),
            observes: vec![model.into()],
            invoker: Arc::new(Recorder {
                calls: Arc::clone(&calls),
                outcome: Outcome::Done,
            }),
        };
        failing.set_service_steps("t", vec![step("Inst"), step("Svc")]);
        assert!(failing.run_pass().await.is_err());
        assert_eq!(leases.leased(), 0, "the Svc object read first stays leased");
        assert!(calls.lock().expect("lock").is_empty());
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
        // Virtual time: the backoff elapses when the test says so.
        let clock = Arc::new(crate::ManualClock::at(now_ms()));
        let (_dir, core, engine, calls, svc, inst) =
            setup_on(Outcome::Failed("no backend".into()), clock.clone()).await;
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
        assert!(next > clock.now_ms(), "retry not in the future");
        calls.lock().expect("lock").clear();
        engine.run_pass().await.expect("pass");
        assert!(
            calls.lock().expect("lock").is_empty(),
            "retried before the backoff elapsed"
        );
        // Once the first backoff (1 s + up to 10 %) is over, the failed
        // object runs again; its dependent still waits for it.
        clock.advance(Duration::from_millis(1200));
        engine.run_pass().await.expect("pass");
        assert_eq!(*calls.lock().expect("lock"), [format!("sync Svc {svc}")]);
        let failed = core.get(svc).await.expect("get").expect("exists");
        assert_eq!(failed.sync.failures, 2, "{failed:?}");
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
                    crate::CallOutcome::Failed(format!("cannot police {name}"))
                } else {
                    crate::CallOutcome::Done
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

    /// Holds the write lock of the database at `path` from another
    /// connection, as an operator's `sqlite3` in a transaction would.
    async fn lock_database(path: &std::path::Path) -> sqlx::SqliteConnection {
        use sqlx::Connection as _;
        let mut other = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
            .await
            .expect("second connection");
        sqlx::query("BEGIN EXCLUSIVE")
            .execute(&mut other)
            .await
            .expect("lock");
        other
    }

    /// A policy that writes through the core, as a guest's declarative
    /// call does; its first run meets a database locked by another
    /// connection, and answers as the runtime does for a host call that
    /// met a busy store.
    struct BusyOnce {
        core: Core,
        db: std::path::PathBuf,
        runs: Arc<std::sync::atomic::AtomicUsize>,
    }

    impl crate::policy::PolicyInvoker for BusyOnce {
        fn handle<'a>(
            &'a self,
            object: &'a Object,
            _event: crate::policy::PolicyEvent,
        ) -> crate::policy::PolicyFuture<'a> {
            Box::pin(async move {
                let run = self.runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let lock = if run == 0 {
                    Some(lock_database(&self.db).await)
                } else {
                    None
                };
                let written = self
                    .core
                    .set_feedback(
                        &syncplane_core::Principal::Host,
                        object.id,
                        map(json!({ "backend_handle": format!("run {run}") })),
                    )
                    .await;
                drop(lock);
                match written {
                    Ok(()) => crate::CallOutcome::Done,
                    Err(e) if e.is_storage_unavailable() => crate::CallOutcome::Deferred(format!(
                        "trap (storage-unavailable): the database is unavailable: {e}"
                    )),
                    Err(e) => crate::CallOutcome::Failed(e.to_string()),
                }
            })
        }
    }

    #[tokio::test]
    async fn a_policy_stopped_by_a_busy_database_is_deferred_not_failed_and_runs_again() {
        let config = EngineConfig {
            retry: RetryPolicy {
                retry_interval: Duration::ZERO,
                ..RetryPolicy::default()
            },
            ..EngineConfig::default()
        };
        let c = chain(&["s"], config).await;
        let runs = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        c.engine.set_service_policies(
            "c",
            vec![crate::policy::ModelPolicy {
                service: "c".into(),
                name: "p".into(),
                model: "Region".into(),
                invoker: Arc::new(BusyOnce {
                    core: c.core.clone(),
                    db: c._dir.path().join("db.sqlite"),
                    runs: Arc::clone(&runs),
                }),
            }],
        );
        let region = create(&c.core, "Region", json!({ "name": "eu" })).await;
        c.engine.run_pass().await.expect("pass");
        let deferred = c.core.get(region).await.expect("get").expect("region");
        assert_eq!(deferred.fields["policy_code"], json!(0), "not failed");
        let status = deferred.fields["policy_status"]
            .as_str()
            .unwrap_or_default();
        assert!(status.contains("storage-unavailable"), "{status}");
        assert!(
            c.calls.lock().expect("lock").is_empty(),
            "synced before its policy ran"
        );
        assert_eq!(deferred.fields["backend_handle"], Value::Null);

        // The lock is gone: the next pass polices it, then syncs it.
        c.engine.run_pass().await.expect("pass");
        c.engine.run_pass().await.expect("pass");
        let policed = c.core.get(region).await.expect("get").expect("region");
        assert_eq!(policed.fields["policy_code"], json!(1), "{policed:?}");
        assert_eq!(policed.fields["backend_handle"], json!("run 1"));
        assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 2);
        assert_eq!(*c.calls.lock().expect("lock"), ["s sync eu"]);
    }

    #[tokio::test]
    async fn a_teardown_waits_for_the_objects_that_still_link_to_it() {
        // Deferred objects come back at once; failed ones much later.
        let config = EngineConfig {
            retry: RetryPolicy {
                retry_interval: Duration::ZERO,
                backoff_base: Duration::from_secs(3600),
                backoff_max: Duration::from_secs(3600),
                backoff_disabled: false,
            },
            ..EngineConfig::default()
        };
        let c = chain(&["s"], config).await;
        let region = create(&c.core, "Region", json!({ "name": "eu" })).await;
        let zone = create(
            &c.core,
            "Zone",
            json!({ "name": "bad-z", "region_id": region }),
        )
        .await;
        c.engine.run_pass().await.expect("pass");
        c.calls.lock().expect("lock").clear();
        // The zone's required link cascades the delete; its teardown fails.
        c.core.delete(region).await.expect("delete");
        c.engine.run_pass().await.expect("pass");
        assert_eq!(*c.calls.lock().expect("lock"), ["s delete bad-z"]);
        let waiting = c.core.get(region).await.expect("get").expect("still there");
        assert_eq!(
            waiting.fields["backend_status"],
            json!(format!("waiting on Zone {zone}: bad-z is broken"))
        );
        // On its own, the region still waits for the zone that links to it.
        c.calls.lock().expect("lock").clear();
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

    #[tokio::test]
    async fn calls_of_pull_and_event_steps_share_their_services_concurrency() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let c = chain(&["s"], EngineConfig::default()).await;
        c.engine.set_service_limits(
            "c",
            Some(ServiceLimits {
                concurrency: 1,
                invocations_per_sec: None,
            }),
        );
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let call = |service: &'static str| {
            let engine = c.engine.clone();
            let running = Arc::clone(&running);
            let most = Arc::clone(&most);
            tokio::spawn(async move {
                engine
                    .call(service, async {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(30)).await;
                        running.fetch_sub(1, Ordering::SeqCst);
                    })
                    .await
            })
        };
        let calls: Vec<_> = (0..3).map(|_| call("c")).collect();
        for joined in calls {
            assert!(joined.await.expect("join").is_some());
        }
        assert_eq!(most.load(Ordering::SeqCst), 1, "calls overlapped");
        // Another service has its own share.
        most.store(0, Ordering::SeqCst);
        let calls: Vec<_> = ["c", "other", "other"].into_iter().map(call).collect();
        for joined in calls {
            assert!(joined.await.expect("join").is_some());
        }
        assert!(
            most.load(Ordering::SeqCst) >= 2,
            "services waited for each other"
        );
    }
}
