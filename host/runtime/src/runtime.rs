//! The wasmtime engine, component loading and invocation under limits.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use syncplane_core::{Core, Object};
use syncplane_engine::{InvokeFuture, Outcome, Stats, StepInvoker, Trap, TrapCause};
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store,
    StoreLimitsBuilder,
};
use wasmtime_wasi::WasiCtx;
use wasmtime_wasi_http::WasiHttpCtx;

use crate::bindings::v2::event::EventStepPre;
use crate::bindings::v2::policy::ModelPolicyPre;
use crate::bindings::v2::pull::PullStepPre;
use crate::bindings::v2::{StepError, SyncStepPre};
use crate::bindings::{v1, v2};
use crate::cache::{CacheUse, ComponentCache};
use crate::capability::outbound::{LastDenial, OutboundGate};
use crate::capability::{HttpLimits, ServiceContext, truncate, without_nul};
use crate::error::{Error, Result};
use crate::event_step::{WasmEventStep, WasmModelPolicy, WasmPullStep};
use crate::gate::Entered;
use crate::host::HostTrap;
use crate::host::adapters::v2::object as to_model_object;
use crate::lazy::{ComponentSource, ComponentStatus, InUse, Load, Make, Slot, Unload};
use crate::memory::{GuestMemory, MemoryRefusal, Reservation};
use crate::state::{Access, Output, Role, StepState};
use crate::warm::{Instance, MAX_CALLS, MAX_RESOURCES, Pre, WarmInstances};

/// How often the epoch advances; deadlines are counted in these ticks.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Limits applied to every guest invocation. None of them can be raised
/// by the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock time one call may take before it is interrupted,
    /// including time spent waiting in host calls (HTTP, WASI sleep).
    /// Default: 10 s.
    pub deadline: Duration,
    /// Linear memory one instance may grow to. Default: 64 MiB.
    pub memory_bytes: usize,
    /// Outbound HTTP timeouts and body size.
    pub http: HttpLimits,
    /// Log bytes one invocation may write; more traps (`output-limit`).
    /// Default: 1 MiB.
    pub log_bytes: usize,
    /// Bytes of one log record; longer ones are truncated. Default: 4 KiB.
    pub log_line_bytes: usize,
    /// Bytes of a failure message or status; longer ones are truncated.
    /// Default: 4 KiB.
    pub status_bytes: usize,
    /// Host calls one invocation may make; more traps (`output-limit`).
    /// Default: 100,000.
    pub host_calls: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            deadline: Duration::from_secs(10),
            memory_bytes: 64 << 20,
            http: HttpLimits::default(),
            log_bytes: 1 << 20,
            log_line_bytes: 4 << 10,
            status_bytes: 4 << 10,
            host_calls: 100_000,
        }
    }
}

/// One service's own deadline, memory limit and idle period, in place of the host's
/// [`Limits`] (set by the operator per service). `None` keeps the host's.
///
/// The host's memory limit stays the cap: the pooling allocator reserves
/// slots of that size, so a larger value is cut to it
/// ([`Limits::for_service`]); the platform refuses one when it is set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InstanceLimits {
    /// Wall-clock time one call of the service may take. Default: the
    /// host's [`Limits::deadline`].
    pub deadline: Option<Duration>,
    /// Linear memory one instance of the service may grow to. Default:
    /// the host's [`Limits::memory_bytes`].
    pub memory_bytes: Option<usize>,
    /// How long the service's components stay loaded, and its instances
    /// warm, without calls. Default: the runtime's
    /// ([`Runtime::with_idle_unload`]).
    pub idle_unload: Option<Duration>,
}

impl Limits {
    /// The limits one service's invocations run under: these, with the
    /// service's deadline and memory limit where it has its own. Memory
    /// never exceeds the host's limit.
    #[must_use]
    pub fn for_service(&self, own: InstanceLimits) -> Limits {
        Limits {
            deadline: own.deadline.unwrap_or(self.deadline),
            memory_bytes: own
                .memory_bytes
                .map_or(self.memory_bytes, |m| m.min(self.memory_bytes)),
            ..*self
        }
    }
}

/// Compiles `wasm`, or maps it from `cache` when it was compiled before,
/// logging a compile (it takes seconds for Python and JS components).
fn compile_component(
    engine: &Engine,
    cache: Option<&ComponentCache>,
    wasm: &[u8],
) -> wasmtime::Result<Component> {
    let Some(cache) = cache else {
        return Component::new(engine, wasm);
    };
    let started = std::time::Instant::now();
    let (component, used) = cache.load(engine, wasm)?;
    if used != CacheUse::Hit {
        tracing::info!(
            bytes = wasm.len(),
            took_ms = started.elapsed().as_millis() as u64,
            "compiled a component (kept in the cache for the next start)"
        );
    }
    Ok(component)
}

/// How often (in epoch ticks) idle components are unloaded: every second.
const UNLOAD_EVERY_TICKS: u32 = 100;

/// Unloads the idle components among `slots` and forgets dropped ones.
fn unload_idle(slots: &Mutex<Vec<Weak<dyn Unload>>>, idle: Duration) -> usize {
    let mut slots = slots.lock().unwrap_or_else(|p| p.into_inner());
    slots.retain(|slot| slot.strong_count() > 0);
    let live: Vec<Arc<dyn Unload>> = slots.iter().filter_map(Weak::upgrade).collect();
    drop(slots);
    live.iter().filter(|slot| slot.unload_if_idle(idle)).count()
}

/// Guest instances that may be alive at once; more invocations wait for a
/// free slot in wasmtime rather than failing only when far beyond the
/// engine's concurrency.
const POOL_INSTANCES: u32 = 256;

/// Pre-reserved slots for instances, so that an invocation's instantiation
/// reuses memory instead of mapping it anew.
fn pooling(limits: &Limits) -> InstanceAllocationStrategy {
    let mut pool = PoolingAllocationConfig::new();
    // With Linux's PAGEMAP_SCAN, resetting an instance's memory touches only
    // the pages the call dirtied, so "keep resident" can cover a guest's
    // whole working set (its stack sits below 1 MiB, its heap above):
    // nothing is returned to the kernel and the next call takes no page
    // faults. Without it, keeping memory resident means a memset from the
    // bottom up, worth it only for a small prefix.
    let (memory_resident, table_resident) = if PoolingAllocationConfig::is_pagemap_scan_available()
    {
        pool.pagemap_scan(Enabled::Yes);
        (4 << 20, 1 << 20)
    } else {
        (128 << 10, 64 << 10)
    };
    pool.total_component_instances(POOL_INSTANCES)
        .total_core_instances(POOL_INSTANCES * 4)
        .total_memories(POOL_INSTANCES * 2)
        .total_tables(POOL_INSTANCES * 4)
        .total_stacks(POOL_INSTANCES)
        .max_memory_size(limits.memory_bytes)
        // Resetting memory in place is cheaper than returning it to the
        // kernel and faulting it back on the next call.
        .linear_memory_keep_resident(memory_resident)
        .table_keep_resident(table_resident)
        .async_stack_keep_resident(64 << 10);
    InstanceAllocationStrategy::Pooling(pool)
}

/// The component host.
///
/// One wasmtime [`Engine`] compiles every component once; each invocation
/// gets a fresh, pre-instantiated instance in its own store, so a guest
/// keeps no state between calls and one object's failure cannot leak into
/// another's — unless its service asks to reuse instances, see
/// [`crate::warm`].
///
/// # Limitations with malicious guests
///
/// Deadlines use epoch interruption for guest code (a guest is interrupted
/// at the next loop header or function entry after its deadline) and a
/// timer around the whole call for time spent in host calls, which are
/// cancelled. Memory is limited per instance; the host's own allocations
/// for a guest's requests are bounded by the output caps of [`Limits`].
pub struct Runtime {
    engine: Engine,
    linker: Arc<Linker<StepState>>,
    core: Core,
    limits: Limits,
    stats: Arc<Stats>,
    stop_ticker: Arc<AtomicBool>,
    cache: Option<Arc<ComponentCache>>,
    /// Every component slot, for unloading idle ones and for `status`.
    slots: Arc<Mutex<Vec<Weak<dyn Unload>>>>,
    /// How long a component stays loaded without calls, in ms.
    idle_unload_ms: Arc<AtomicU64>,
    /// Components unloaded since the runtime started.
    unloads: Arc<AtomicU64>,
    /// The operator's cap on guest memory, if set.
    memory: Option<Arc<GuestMemory>>,
    /// Instances parked between calls ([`crate::warm`]).
    warm: Arc<WarmInstances>,
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.stop_ticker.store(true, Ordering::Relaxed);
    }
}

impl Runtime {
    /// Creates the engine and its epoch ticker; denials are counted in
    /// `stats`.
    ///
    /// # Errors
    ///
    /// [`Error::Engine`] when wasmtime cannot be configured on this machine.
    pub fn new(core: Core, limits: Limits, stats: Arc<Stats>) -> Result<Self> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        config.wasm_component_model(true);
        let engine = match Engine::new(config.clone().allocation_strategy(pooling(&limits))) {
            Ok(engine) => engine,
            // Some machines cap virtual memory; instances are then made one
            // by one, a little slower.
            Err(e) => {
                tracing::warn!(error = %e, "pooling instance allocator unavailable; allocating on demand");
                Engine::new(&config).map_err(|e| Error::Engine(e.to_string()))?
            }
        };
        let mut linker = Linker::<StepState>::new(&engine);
        let engine_err = |e: wasmtime::Error| Error::Engine(e.to_string());
        // WASI with an empty context: no files, no environment, and sockets
        // that refuse every address. Outbound HTTP goes through the gate.
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(engine_err)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).map_err(engine_err)?;
        // Both contract versions: a component imports one or the other.
        v2::SyncStep::add_to_linker::<_, HasSelf<StepState>>(&mut linker, |s| s)
            .map_err(engine_err)?;
        v2::event::syncplane::plugin::declarative::add_to_linker::<_, HasSelf<StepState>>(
            &mut linker,
            |s| s,
        )
        .map_err(engine_err)?;
        v1::SyncStep::add_to_linker::<_, HasSelf<StepState>>(&mut linker, |s| s)
            .map_err(engine_err)?;
        v1::event::syncplane::plugin::declarative::add_to_linker::<_, HasSelf<StepState>>(
            &mut linker,
            |s| s,
        )
        .map_err(engine_err)?;
        let stop_ticker = Arc::new(AtomicBool::new(false));
        let ticker_engine = engine.clone();
        let stop = Arc::clone(&stop_ticker);
        let slots: Arc<Mutex<Vec<Weak<dyn Unload>>>> = Arc::default();
        let idle_unload_ms = Arc::new(AtomicU64::new(
            crate::lazy::DEFAULT_IDLE_UNLOAD.as_millis() as u64
        ));
        let unloads = Arc::new(AtomicU64::new(0));
        let (unloader_slots, unloader_idle, unloader_count) = (
            Arc::clone(&slots),
            Arc::clone(&idle_unload_ms),
            Arc::clone(&unloads),
        );
        std::thread::Builder::new()
            .name("syncplane-epoch".into())
            .spawn(move || {
                let mut ticks = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    ticker_engine.increment_epoch();
                    ticks = ticks.wrapping_add(1);
                    if ticks.is_multiple_of(UNLOAD_EVERY_TICKS) {
                        let idle = Duration::from_millis(unloader_idle.load(Ordering::Relaxed));
                        let unloaded = unload_idle(&unloader_slots, idle);
                        unloader_count.fetch_add(unloaded as u64, Ordering::Relaxed);
                    }
                }
            })
            .map_err(|e| Error::Engine(e.to_string()))?;
        Ok(Runtime {
            engine,
            linker: Arc::new(linker),
            core,
            limits,
            stats,
            stop_ticker,
            cache: None,
            warm: WarmInstances::new(Arc::clone(&slots)),
            slots,
            idle_unload_ms,
            unloads,
            memory: None,
        })
    }

    /// Caps the memory of all running guest instances together at
    /// `bytes` ([`crate::memory`]); no cap by default.
    #[must_use]
    pub fn with_guest_memory_max(mut self, bytes: usize) -> Self {
        self.memory = Some(GuestMemory::new(bytes));
        self
    }

    /// Parks at most `max` instances between calls, across the host
    /// (default [`DEFAULT_MAX_WARM`](crate::warm::DEFAULT_MAX_WARM); 0
    /// parks none). Only services that reuse instances park any.
    #[must_use]
    pub fn with_warm_instances_max(self, max: usize) -> Self {
        self.warm.set_max(max);
        self
    }

    /// The cap on guest memory, when one is set.
    pub fn guest_memory(&self) -> Option<&Arc<GuestMemory>> {
        self.memory.as_ref()
    }

    /// Components unloaded for being idle since the runtime started.
    pub fn unloads(&self) -> u64 {
        self.unloads.load(Ordering::Relaxed)
    }

    /// Guest metrics in the Prometheus text format (without `# EOF`):
    /// components per service by state, the compiled code loaded
    /// components map, and unloads.
    pub fn prometheus_text(&self) -> String {
        use std::collections::BTreeMap;
        use std::fmt::Write as _;
        let mut states: BTreeMap<(String, &str), usize> = BTreeMap::new();
        let mut bytes: BTreeMap<String, usize> = BTreeMap::new();
        let mut warm: BTreeMap<String, usize> = BTreeMap::new();
        for status in self.component_status(None) {
            let state = match status.state {
                crate::lazy::ComponentState::Cold => "cold",
                crate::lazy::ComponentState::Warm => "warm",
                crate::lazy::ComponentState::Running => "running",
            };
            *states.entry((status.service.clone(), state)).or_default() += 1;
            if status.warm_instances > 0 {
                *warm.entry(status.service.clone()).or_default() += status.warm_instances;
            }
            *bytes.entry(status.service).or_default() += status.code_bytes;
        }
        let label = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
        let mut out = String::new();
        out.push_str("# HELP syncplane_guest_instances Components of installed services, by state (cold: not loaded; warm: loaded, idle; running).\n");
        out.push_str("# TYPE syncplane_guest_instances gauge\n");
        for ((service, state), n) in &states {
            let _ = writeln!(
                out,
                "syncplane_guest_instances{{service=\"{}\",state=\"{state}\"}} {n}",
                label(service)
            );
        }
        out.push_str("# HELP syncplane_guest_memory_bytes Compiled code mapped by a service's loaded components (clean, shared pages of the cache file).\n");
        out.push_str("# TYPE syncplane_guest_memory_bytes gauge\n");
        for (service, n) in &bytes {
            let _ = writeln!(
                out,
                "syncplane_guest_memory_bytes{{service=\"{}\"}} {n}",
                label(service)
            );
        }
        if let Some(memory) = &self.memory {
            out.push_str("# HELP syncplane_guest_memory_reserved_bytes Linear memory reserved by a service's running calls (each its instance limit), against the host's cap.\n");
            out.push_str("# TYPE syncplane_guest_memory_reserved_bytes gauge\n");
            for (service, (bytes, _)) in memory.held() {
                let _ = writeln!(
                    out,
                    "syncplane_guest_memory_reserved_bytes{{service=\"{}\"}} {bytes}",
                    label(&service)
                );
            }
            out.push_str("# HELP syncplane_guest_memory_cap_bytes The host's cap on guest memory (serve --guest-memory-max).\n");
            out.push_str("# TYPE syncplane_guest_memory_cap_bytes gauge\n");
            let _ = writeln!(
                out,
                "syncplane_guest_memory_cap_bytes {}",
                memory.cap_bytes()
            );
            out.push_str(
                "# HELP syncplane_guest_memory_waits Calls that waited for guest memory.\n",
            );
            out.push_str("# TYPE syncplane_guest_memory_waits counter\n");
            let _ = writeln!(out, "syncplane_guest_memory_waits_total {}", memory.waits());
            out.push_str("# HELP syncplane_guest_memory_refused Calls refused guest memory (over the cap, or not free within their deadline).\n");
            out.push_str("# TYPE syncplane_guest_memory_refused counter\n");
            let _ = writeln!(
                out,
                "syncplane_guest_memory_refused_total {}",
                memory.refused()
            );
        }
        out.push_str("# HELP syncplane_guest_warm_instances Instances parked between calls, per service (services with reuse_instances).\n");
        out.push_str("# TYPE syncplane_guest_warm_instances gauge\n");
        for (service, n) in &warm {
            let _ = writeln!(
                out,
                "syncplane_guest_warm_instances{{service=\"{}\"}} {n}",
                label(service)
            );
        }
        out.push_str("# HELP syncplane_guest_warm_instance_evictions Parked instances released early: past serve --warm-instances-max, or to free guest memory or pool slots.\n");
        out.push_str("# TYPE syncplane_guest_warm_instance_evictions counter\n");
        let _ = writeln!(
            out,
            "syncplane_guest_warm_instance_evictions_total {}",
            self.warm.evictions()
        );
        out.push_str(
            "# HELP syncplane_guest_warm_instance_reuses Calls that ran in a parked instance.\n",
        );
        out.push_str("# TYPE syncplane_guest_warm_instance_reuses counter\n");
        let _ = writeln!(
            out,
            "syncplane_guest_warm_instance_reuses_total {}",
            self.warm.reuses()
        );
        out.push_str("# HELP syncplane_guest_unloads Components unloaded after being idle.\n");
        out.push_str("# TYPE syncplane_guest_unloads counter\n");
        let _ = writeln!(out, "syncplane_guest_unloads_total {}", self.unloads());
        out
    }

    /// Unloads a component after it had no calls for `idle` (default
    /// [`DEFAULT_IDLE_UNLOAD`](crate::lazy::DEFAULT_IDLE_UNLOAD)); its next
    /// call loads it again.
    #[must_use]
    pub fn with_idle_unload(self, idle: Duration) -> Self {
        self.idle_unload_ms
            .store(idle.as_millis() as u64, Ordering::Relaxed);
        self
    }

    /// The state of every component of `service` (all services when
    /// `None`): cold, warm or running, and its mapped code.
    pub fn component_status(&self, service: Option<&str>) -> Vec<ComponentStatus> {
        let slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots
            .iter()
            .filter_map(Weak::upgrade)
            .map(|slot| slot.status())
            .filter(|status| service.is_none_or(|s| s == status.service))
            .collect()
    }

    /// Unloads every component idle for the idle period now, rather than
    /// at the next check (about every second); returns how many.
    pub fn unload_idle_now(&self) -> usize {
        let idle = Duration::from_millis(self.idle_unload_ms.load(Ordering::Relaxed));
        let unloaded = unload_idle(&self.slots, idle);
        self.unloads.fetch_add(unloaded as u64, Ordering::Relaxed);
        unloaded
    }

    /// Keeps compiled components in `cache` and maps them from there when
    /// they were compiled before (by this or an earlier process).
    #[must_use]
    pub fn with_component_cache(mut self, cache: ComponentCache) -> Self {
        self.cache = Some(Arc::new(cache));
        self
    }

    /// The compiled-component cache, if the runtime has one.
    pub fn component_cache(&self) -> Option<&ComponentCache> {
        self.cache.as_deref()
    }

    /// Compiles a sync step component of the service `ctx` describes and
    /// checks that it fits the `sync-step` world (of either contract
    /// version). The bytes are kept to load it again after it was unloaded;
    /// [`Runtime::sync_step`] fetches them from elsewhere instead.
    ///
    /// # Errors
    ///
    /// [`Error::Compile`] for bytes that are not a valid component,
    /// [`Error::Link`] for a component that imports what the host does not
    /// offer or does not export `sync-record`/`delete-record`.
    pub fn load_sync_step(
        &self,
        ctx: &Arc<ServiceContext>,
        step: &str,
        wasm: &[u8],
    ) -> Result<Arc<WasmSyncStep>> {
        self.sync_step(ctx, step, ComponentSource::in_memory(wasm), Some(wasm))
    }

    /// A sync step component of the service `ctx` describes, from `source`:
    /// compiled and checked now when `wasm` is given (an install), else
    /// loaded on its first call (a restart; see [`crate::lazy`]).
    ///
    /// # Errors
    ///
    /// As [`Runtime::load_sync_step`], when `wasm` is given.
    pub fn sync_step(
        &self,
        ctx: &Arc<ServiceContext>,
        step: &str,
        source: ComponentSource,
        wasm: Option<&[u8]>,
    ) -> Result<Arc<WasmSyncStep>> {
        let linker = Arc::clone(&self.linker);
        // Exports are typed structurally: the 0.2 bindings call 0.1
        // components too.
        let make: Make<SyncStepPre<StepState>> = Box::new(move |component| {
            let pre = linker
                .instantiate_pre(component)
                .map_err(|e| format!("{e:#}"))?;
            SyncStepPre::new(pre).map_err(|e| format!("{e:#}"))
        });
        let slot = self.slot(ctx, step, source, wasm, make)?;
        Ok(Arc::new(WasmSyncStep {
            slot,
            common: self.common(ctx, step),
        }))
    }

    /// A slot for a component: loaded now from `wasm` when given, else
    /// cold; registered for unloading and status.
    fn slot<P: Pre>(
        &self,
        ctx: &Arc<ServiceContext>,
        step: &str,
        source: ComponentSource,
        wasm: Option<&[u8]>,
        make: Make<P>,
    ) -> Result<Arc<Slot<P>>> {
        let slot = Arc::new(Slot::new(
            Arc::clone(ctx),
            step,
            source,
            self.loader(),
            make,
        ));
        if let Some(wasm) = wasm {
            let component = self.compile(ctx.service(), step, wasm)?;
            slot.preload(&component).map_err(|message| Error::Link {
                service: ctx.service().to_owned(),
                step: step.to_owned(),
                message,
            })?;
        }
        let weak: Weak<dyn Unload> = Arc::downgrade(&slot) as Weak<dyn Unload>;
        self.slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(weak);
        Ok(slot)
    }

    /// How a cold component is loaded: from the cache by digest, else from
    /// its fetched bytes (checked against the digest), compiled off the
    /// async threads.
    fn loader(&self) -> Load {
        let engine = self.engine.clone();
        let cache = self.cache.clone();
        Arc::new(move |source: ComponentSource| {
            let engine = engine.clone();
            let cache = cache.clone();
            Box::pin(async move {
                let blocking = |e: tokio::task::JoinError| format!("loading was interrupted: {e}");
                if let Some(cache) = &cache {
                    let (engine, cache, digest) =
                        (engine.clone(), Arc::clone(cache), source.digest.clone());
                    let cached =
                        tokio::task::spawn_blocking(move || cache.load_cached(&engine, &digest))
                            .await
                            .map_err(blocking)?;
                    if let Some(component) = cached {
                        return Ok(component);
                    }
                }
                let wasm = (source.fetch)().await?;
                if crate::cache::digest(&wasm) != source.digest {
                    return Err(format!(
                        "the stored component does not match its digest {}",
                        source.digest
                    ));
                }
                tokio::task::spawn_blocking(move || {
                    compile_component(&engine, cache.as_deref(), &wasm)
                        .map_err(|e| format!("cannot compile it: {e:#}"))
                })
                .await
                .map_err(blocking)?
            })
        })
    }

    fn common(&self, ctx: &Arc<ServiceContext>, step: &str) -> Common {
        Common {
            warm: Arc::clone(&self.warm),
            memory: self.memory.clone(),
            engine: self.engine.clone(),
            core: self.core.clone(),
            stats: Arc::clone(&self.stats),
            limits: self.limits,
            ctx: Arc::clone(ctx),
            step: step.to_owned(),
        }
    }
}

/// What every loaded component keeps: where it runs, under which limits,
/// and what its service may touch.
pub(crate) struct Common {
    warm: Arc<WarmInstances>,
    memory: Option<Arc<GuestMemory>>,
    engine: Engine,
    core: Core,
    stats: Arc<Stats>,
    pub(crate) limits: Limits,
    pub(crate) ctx: Arc<ServiceContext>,
    pub(crate) step: String,
}

impl Common {
    /// The limits one call of the service runs under: the service's own
    /// where the operator set them (memory: else as its manifest asks),
    /// read afresh for each call so a change applies to the next one.
    pub(crate) fn call_limits(&self) -> Limits {
        let mut own = self.ctx.instance_limits();
        own.memory_bytes = own.memory_bytes.or(self.ctx.requested_memory());
        self.limits.for_service(own)
    }

    /// The store of one invocation under `limits`: empty WASI, outbound
    /// HTTP behind the grants, the memory limit and the deadline.
    /// [`Common::trap`] and [`Common::within_deadline`] read them back
    /// from the store.
    fn store(&self, role: Role, observed: i64, limits: Limits) -> Store<StepState> {
        let (gate, access) = self.per_call(role, observed, limits);
        let mut table = ResourceTable::new();
        if self.ctx.reuses_instances() {
            table.set_max_capacity(MAX_RESOURCES);
        }
        let state = StepState {
            wasi: WasiCtx::builder().build(),
            table,
            http: WasiHttpCtx::new(),
            gate,
            store_limits: StoreLimitsBuilder::new()
                .memory_size(limits.memory_bytes)
                .trap_on_grow_failure(true)
                .build(),
            access,
            output: Output::default(),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.store_limits);
        store.epoch_deadline_trap();
        set_deadline(&mut store, limits.deadline);
        store
    }

    /// What one call starts afresh, in a new store or a reused one: the
    /// observed object and what it may read, the outbound gate's last
    /// denial, the output counters.
    fn per_call(&self, role: Role, observed: i64, limits: Limits) -> (OutboundGate, Access) {
        let last_denial = LastDenial::default();
        let gate = OutboundGate {
            ctx: Arc::clone(&self.ctx),
            stats: Arc::clone(&self.stats),
            limits: limits.http,
            last_denial: Arc::clone(&last_denial),
        };
        let access = Access {
            core: self.core.clone(),
            ctx: Arc::clone(&self.ctx),
            stats: Arc::clone(&self.stats),
            limits,
            step: self.step.clone(),
            role,
            observed,
            readable: HashSet::from([observed]),
            last_denial,
        };
        (gate, access)
    }

    /// The instance for one call of `loaded`: a parked one when the
    /// service reuses instances and one made under the same limits
    /// waits, else a fresh one, its guest memory reserved first and its
    /// instantiation counted against the call's deadline
    /// ([`Instance::started`]). `phase` names the call in a trap's status.
    async fn instance<P: Pre>(
        &self,
        loaded: &InUse<'_, P>,
        role: Role,
        observed: i64,
        phase: &str,
    ) -> Result<Instance<P::Instance>, NoInstance> {
        let limits = self.call_limits();
        if self.ctx.reuses_instances()
            && let Some(mut warm) = loaded.parking().take(&limits)
        {
            let (gate, access) = self.per_call(role, observed, limits);
            let state = warm.store.data_mut();
            state.gate = gate;
            state.access = access;
            state.output = Output::default();
            set_deadline(&mut warm.store, limits.deadline);
            warm.started = Instant::now();
            self.warm.count_reuse();
            return Ok(warm);
        }
        let memory = self
            .reserve_memory(&limits)
            .await
            .map_err(NoInstance::Refused)?;
        let started = Instant::now();
        loop {
            let mut store = self.store(role, observed, limits);
            let made = self
                .within_deadline(limits.deadline, started, loaded.pre.instantiate(&mut store))
                .await;
            match made {
                Ok(instance) => {
                    return Ok(Instance {
                        store,
                        instance,
                        _memory: memory,
                        limits,
                        calls: 0,
                        started,
                    });
                }
                // Parked instances hold pool slots: free one and try again.
                Err(e)
                    if e.downcast_ref::<wasmtime::PoolConcurrencyLimitError>()
                        .is_some()
                        && self.warm.release_lru() => {}
                Err(e) => return Err(NoInstance::Trapped(self.trap(&e, &store, phase))),
            }
        }
    }

    /// Runs one call of the component in `slot`: passes the service's
    /// gate, loads the component, takes an instance ([`Common::instance`]),
    /// runs `call` in it within the deadline and ends the call
    /// ([`Common::end_call`]). `role` and `observed` are what the call may
    /// touch; `phase` names it in a trap's status.
    pub(crate) async fn run<P: Pre, T>(
        &self,
        slot: &Slot<P>,
        role: Role,
        observed: i64,
        phase: &str,
        call: impl AsyncFnOnce(&P::Instance, &mut Store<StepState>) -> wasmtime::Result<T>,
    ) -> Ran<T> {
        let _entered = match self.pass_gate().await {
            Ok(entered) => entered,
            Err(replaced) => return Ran::Replaced(replaced),
        };
        let loaded = match slot.acquire().await {
            Ok(loaded) => loaded,
            Err(why) => return Ran::Failed(self.unloadable(&why)),
        };
        let mut instance = match self.instance(&loaded, role, observed, phase).await {
            Ok(instance) => instance,
            Err(NoInstance::Refused(MemoryRefusal::TooLarge(m))) => return Ran::Failed(m),
            Err(NoInstance::Refused(MemoryRefusal::Waited(m))) => return Ran::Waited(m),
            Err(NoInstance::Trapped(trap)) => return Ran::Trapped(trap),
        };
        let deadline = deadline_of(&instance.store);
        let result = {
            let Instance {
                store,
                instance,
                started,
                ..
            } = &mut instance;
            self.within_deadline(deadline, *started, call(instance, store))
                .await
        };
        let ran = match result {
            Ok(returned) => Ran::Returned(returned),
            Err(ref e) => Ran::Trapped(self.trap(e, &instance.store, phase)),
        };
        self.end_call(&loaded, instance, matches!(ran, Ran::Returned(_)));
        ran
    }

    /// Ends a call in `instance`: parks it for the step's next call when
    /// the service reuses instances and the guest returned (`returned`:
    /// no trap, no deadline), else drops it.
    fn end_call<P: Pre>(
        &self,
        loaded: &InUse<'_, P>,
        mut instance: Instance<P::Instance>,
        returned: bool,
    ) {
        instance.calls += 1;
        if returned
            && self.ctx.reuses_instances()
            && !self.ctx.is_retired()
            && instance.calls < MAX_CALLS
        {
            loaded.parking().put(instance, &self.warm);
        }
    }

    /// Passes the service's invocation gate ([`crate::gate`]), waiting
    /// while a lifecycle change drains it. `Err` with a status when this
    /// version was replaced meanwhile: its component must not run.
    async fn pass_gate(&self) -> Result<Entered, String> {
        let entered = self.ctx.gate().enter().await;
        if self.ctx.is_retired() {
            return Err(format!(
                "service `{}` changed while this call waited; the installed version runs it next",
                self.service()
            ));
        }
        Ok(entered)
    }

    /// Reserves the memory one call's instance may grow to under the
    /// operator's cap ([`crate::memory`]), releasing parked instances
    /// (least recently used first) and then waiting up to the call's
    /// deadline while it is full; `Ok(None)` without a cap. The refusal's
    /// text is a status.
    async fn reserve_memory(&self, limits: &Limits) -> Result<Option<Reservation>, MemoryRefusal> {
        let Some(memory) = &self.memory else {
            return Ok(None);
        };
        let status = |m: String| {
            self.status(format!(
                "step `{}` of service `{}`: {m}",
                self.step,
                self.ctx.service()
            ))
        };
        let release = || self.warm.release_lru();
        match memory
            .reserve(
                self.ctx.service(),
                limits.memory_bytes,
                limits.deadline,
                release,
            )
            .await
        {
            Ok(reservation) => Ok(Some(reservation)),
            Err(MemoryRefusal::TooLarge(m)) => Err(MemoryRefusal::TooLarge(status(m))),
            Err(MemoryRefusal::Waited(m)) => Err(MemoryRefusal::Waited(status(m))),
        }
    }

    /// Awaits a guest call (or an instantiation), ending it at `deadline`
    /// after `started` (the store's deadline, see [`deadline_of`]) even
    /// while it waits in a host call (the epoch only interrupts guest
    /// code).
    pub(crate) async fn within_deadline<T>(
        &self,
        deadline: Duration,
        started: Instant,
        call: impl Future<Output = wasmtime::Result<T>>,
    ) -> wasmtime::Result<T> {
        let left = (deadline + 2 * EPOCH_TICK).saturating_sub(started.elapsed());
        match tokio::time::timeout(left, call).await {
            Ok(result) => result,
            Err(_) => Err(wasmtime::Error::new(HostTrap::new(
                TrapCause::Deadline,
                format!("exceeded its deadline of {deadline:?} while waiting in a host call"),
            ))),
        }
    }

    /// What stopped the guest, from the error wasmtime returned and what
    /// the invocation did before.
    pub(crate) fn trap(
        &self,
        error: &wasmtime::Error,
        store: &Store<StepState>,
        phase: &str,
    ) -> Trap {
        let limits = &store.data().access.limits;
        let (cause, what) = if let Some(trap) = error.downcast_ref::<HostTrap>() {
            (trap.cause, trap.message.clone())
        } else if error.downcast_ref::<wasmtime::Trap>() == Some(&wasmtime::Trap::Interrupt) {
            (
                TrapCause::Deadline,
                format!(
                    "exceeded its deadline of {:?} and was interrupted",
                    limits.deadline
                ),
            )
        } else if format!("{error:#}").contains("forcing trap when growing memory") {
            (
                TrapCause::Memory,
                format!(
                    "tried to grow its memory beyond the limit of {} MiB",
                    limits.memory_bytes >> 20
                ),
            )
        } else if let Some(denial) = store
            .data()
            .access
            .last_denial
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        {
            (
                TrapCause::Denied,
                format!("trapped after an access was denied ({denial}): {error:#}"),
            )
        } else {
            (TrapCause::Crash, format!("trapped: {error:#}"))
        };
        Trap {
            cause,
            message: self.status(format!(
                "step `{}` of service `{}` {what} ({phase})",
                self.step,
                self.ctx.service()
            )),
        }
    }

    /// A message fit for `backend_status`: secrets redacted, NUL
    /// characters (which PostgreSQL's text cannot hold) replaced, size
    /// capped.
    pub(crate) fn status(&self, message: String) -> String {
        truncate(
            self.ctx.redact(&without_nul(message)),
            self.limits.status_bytes,
        )
    }

    /// The service the component belongs to.
    pub(crate) fn service(&self) -> &str {
        self.ctx.service()
    }

    /// The status of a call whose component could not be loaded.
    pub(crate) fn unloadable(&self, why: &str) -> String {
        self.status(format!(
            "step `{}` of service `{}` could not be loaded: {why}",
            self.step,
            self.ctx.service()
        ))
    }
}

/// The deadline an invocation's store was made with ([`Common::store`]).
pub(crate) fn deadline_of(store: &Store<StepState>) -> Duration {
    store.data().access.limits.deadline
}

/// Sets the epoch deadline of `store` to `deadline` from now.
fn set_deadline(store: &mut Store<StepState>, deadline: Duration) {
    let ticks = (deadline.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64;
    store.set_epoch_deadline(ticks);
}

/// Why a call got no instance: its memory was refused, or instantiating
/// trapped.
pub(crate) enum NoInstance {
    Refused(MemoryRefusal),
    Trapped(Trap),
}

/// How one call ([`Common::run`]) ended.
pub(crate) enum Ran<T> {
    /// The guest returned this.
    Returned(T),
    /// The guest trapped, or instantiating it did.
    Trapped(Trap),
    /// It never ran, and cannot until something changes (its component
    /// cannot be loaded; its memory limit is over the host's cap): the
    /// status says what.
    Failed(String),
    /// It did not run: the guest memory it needs was not free in time.
    Waited(String),
    /// It did not run: its service changed while it waited at the gate.
    Replaced(String),
}

impl Runtime {
    /// Compiles a component (or maps it from the cache).
    fn compile(&self, service: &str, step: &str, wasm: &[u8]) -> Result<Component> {
        let _span = tracing::info_span!("component", service, step).entered();
        compile_component(&self.engine, self.cache.as_deref(), wasm).map_err(|e| Error::Compile {
            service: service.to_owned(),
            step: step.to_owned(),
            message: format!("{e:#}"),
        })
    }

    /// An event step component of the service `ctx` describes, as
    /// [`Runtime::sync_step`] for the `event-step` world.
    ///
    /// # Errors
    ///
    /// As [`Runtime::load_sync_step`], when `wasm` is given.
    pub fn event_step(
        &self,
        ctx: &Arc<ServiceContext>,
        step: &str,
        source: ComponentSource,
        wasm: Option<&[u8]>,
    ) -> Result<Arc<WasmEventStep>> {
        let linker = Arc::clone(&self.linker);
        let make: Make<EventStepPre<StepState>> = Box::new(move |component| {
            let pre = linker
                .instantiate_pre(component)
                .map_err(|e| format!("{e:#}"))?;
            EventStepPre::new(pre).map_err(|e| format!("{e:#}"))
        });
        Ok(Arc::new(WasmEventStep {
            slot: self.slot(ctx, step, source, wasm, make)?,
            common: self.common(ctx, step),
        }))
    }

    /// Compiles an event step component from its bytes (kept to load it
    /// again).
    ///
    /// # Errors
    ///
    /// As [`Runtime::load_sync_step`], for the `event-step` world.
    pub fn load_event_step(
        &self,
        ctx: &Arc<ServiceContext>,
        step: &str,
        wasm: &[u8],
    ) -> Result<Arc<WasmEventStep>> {
        self.event_step(ctx, step, ComponentSource::in_memory(wasm), Some(wasm))
    }

    /// A pull step component, as [`Runtime::sync_step`] for the
    /// `pull-step` world.
    ///
    /// # Errors
    ///
    /// As [`Runtime::load_sync_step`], when `wasm` is given.
    pub fn pull_step(
        &self,
        ctx: &Arc<ServiceContext>,
        step: &str,
        source: ComponentSource,
        wasm: Option<&[u8]>,
    ) -> Result<Arc<WasmPullStep>> {
        let linker = Arc::clone(&self.linker);
        let make: Make<PullStepPre<StepState>> = Box::new(move |component| {
            let pre = linker
                .instantiate_pre(component)
                .map_err(|e| format!("{e:#}"))?;
            PullStepPre::new(pre).map_err(|e| format!("{e:#}"))
        });
        Ok(Arc::new(WasmPullStep {
            slot: self.slot(ctx, step, source, wasm, make)?,
            common: self.common(ctx, step),
        }))
    }

    /// Compiles a pull step component from its bytes (kept to load it
    /// again).
    ///
    /// # Errors
    ///
    /// As [`Runtime::load_sync_step`], for the `pull-step` world.
    pub fn load_pull_step(
        &self,
        ctx: &Arc<ServiceContext>,
        step: &str,
        wasm: &[u8],
    ) -> Result<Arc<WasmPullStep>> {
        self.pull_step(ctx, step, ComponentSource::in_memory(wasm), Some(wasm))
    }

    /// A model policy component, as [`Runtime::sync_step`] for the
    /// `model-policy` world.
    ///
    /// # Errors
    ///
    /// As [`Runtime::load_sync_step`], when `wasm` is given.
    pub fn model_policy(
        &self,
        ctx: &Arc<ServiceContext>,
        policy: &str,
        source: ComponentSource,
        wasm: Option<&[u8]>,
    ) -> Result<Arc<WasmModelPolicy>> {
        let linker = Arc::clone(&self.linker);
        let make: Make<ModelPolicyPre<StepState>> = Box::new(move |component| {
            let pre = linker
                .instantiate_pre(component)
                .map_err(|e| format!("{e:#}"))?;
            ModelPolicyPre::new(pre).map_err(|e| format!("{e:#}"))
        });
        Ok(Arc::new(WasmModelPolicy {
            slot: self.slot(ctx, policy, source, wasm, make)?,
            common: self.common(ctx, policy),
        }))
    }

    /// Compiles a model policy component from its bytes (kept to load it
    /// again).
    ///
    /// # Errors
    ///
    /// As [`Runtime::load_sync_step`], for the `model-policy` world.
    pub fn load_model_policy(
        &self,
        ctx: &Arc<ServiceContext>,
        policy: &str,
        wasm: &[u8],
    ) -> Result<Arc<WasmModelPolicy>> {
        self.model_policy(ctx, policy, ComponentSource::in_memory(wasm), Some(wasm))
    }
}

/// A sync step component, loaded when it has work ([`crate::lazy`]).
pub struct WasmSyncStep {
    slot: Arc<Slot<SyncStepPre<StepState>>>,
    common: Common,
}

#[derive(Clone, Copy)]
enum Phase {
    Sync,
    Delete,
}

impl WasmSyncStep {
    async fn invoke(&self, object: &Object, phase: Phase) -> Outcome {
        let common = &self.common;
        let name = match phase {
            Phase::Sync => "sync-record",
            Phase::Delete => "delete-record",
        };
        let arg = to_model_object(object);
        let ran = common
            .run(
                &self.slot,
                Role::Sync,
                object.id,
                name,
                async |step, store| match phase {
                    Phase::Sync => step.call_sync_record(store, &arg).await,
                    Phase::Delete => step.call_delete_record(store, &arg).await,
                },
            )
            .await;
        match ran {
            Ran::Returned(Ok(())) => Outcome::Done,
            Ran::Returned(Err(StepError::Deferred(m))) => Outcome::Deferred(common.status(m)),
            Ran::Returned(Err(StepError::Failed(m))) => Outcome::Failed(common.status(m)),
            Ran::Failed(m) => Outcome::Failed(m),
            Ran::Trapped(trap) => trapped(trap),
            Ran::Waited(m) | Ran::Replaced(m) => Outcome::Deferred(m),
        }
    }
}

/// A trap as a sync step's outcome: a busy or full database is the host's
/// passing trouble, so the object waits for the next retry without a
/// failure.
fn trapped(trap: Trap) -> Outcome {
    if trap.cause == TrapCause::StorageUnavailable {
        Outcome::Deferred(trap.to_string())
    } else {
        Outcome::Trapped(trap)
    }
}

impl StepInvoker for WasmSyncStep {
    fn sync_record<'a>(&'a self, object: &'a Object) -> InvokeFuture<'a> {
        Box::pin(self.invoke(object, Phase::Sync))
    }

    fn delete_record<'a>(&'a self, object: &'a Object) -> InvokeFuture<'a> {
        Box::pin(self.invoke(object, Phase::Delete))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_limit_replaces_the_hosts_and_memory_never_exceeds_the_host_cap() {
        let host = Limits::default();
        assert_eq!(host.for_service(InstanceLimits::default()), host);
        let own = host.for_service(InstanceLimits {
            deadline: Some(Duration::from_secs(30)),
            memory_bytes: Some(16 << 20),
            idle_unload: None,
        });
        assert_eq!(own.deadline, Duration::from_secs(30));
        assert_eq!(own.memory_bytes, 16 << 20);
        assert_eq!(own.log_bytes, host.log_bytes);
        let greedy = host.for_service(InstanceLimits {
            deadline: None,
            memory_bytes: Some(host.memory_bytes * 4),
            idle_unload: None,
        });
        assert_eq!(greedy.memory_bytes, host.memory_bytes);
        assert_eq!(greedy.deadline, host.deadline);
    }

    #[test]
    fn a_contexts_instance_limits_change_live() {
        let ctx = ServiceContext::own_only("s", Default::default());
        assert_eq!(ctx.instance_limits(), InstanceLimits::default());
        let own = InstanceLimits {
            deadline: Some(Duration::from_millis(300)),
            memory_bytes: None,
            idle_unload: Some(Duration::from_secs(5)),
        };
        ctx.set_instance_limits(own);
        assert_eq!(ctx.instance_limits(), own);
    }
}
