//! The wasmtime engine, component loading and invocation under limits.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use syncplane_core::{Core, Object};
use syncplane_engine::{InvokeFuture, Outcome, StepInvoker};
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store,
    StoreLimitsBuilder, Trap,
};
use wasmtime_wasi::WasiCtx;

use crate::bindings::event::EventStepPre;
use crate::bindings::policy::ModelPolicyPre;
use crate::bindings::pull::PullStepPre;
use crate::bindings::{StepError, SyncStep, SyncStepPre};
use crate::error::{Error, Result};
use crate::event_step::{Declarative, WasmEventStep, WasmModelPolicy, WasmPullStep};
use crate::host::to_model_object;
use crate::state::{Access, StepState};

/// How often the epoch advances; deadlines are counted in these ticks.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Limits applied to every guest invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock time one call may take before it is interrupted.
    /// Default: 10 s.
    pub deadline: Duration,
    /// Linear memory one instance may grow to. Default: 64 MiB.
    pub memory_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            deadline: Duration::from_secs(10),
            memory_bytes: 64 << 20,
        }
    }
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
/// another's.
///
/// # Limitations with malicious guests
///
/// Deadlines use epoch interruption: a guest is interrupted at the next
/// loop header or function entry after its deadline, not mid-instruction,
/// and a host call in progress finishes first. Memory is limited per
/// instance; the host's own allocations for a guest's requests are not.
pub struct Runtime {
    engine: Engine,
    linker: Linker<StepState>,
    core: Core,
    limits: Limits,
    stop_ticker: Arc<AtomicBool>,
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.stop_ticker.store(true, Ordering::Relaxed);
    }
}

impl Runtime {
    /// Creates the engine and its epoch ticker.
    ///
    /// # Errors
    ///
    /// [`Error::Engine`] when wasmtime cannot be configured on this machine.
    pub fn new(core: Core, limits: Limits) -> Result<Self> {
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
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| Error::Engine(e.to_string()))?;
        SyncStep::add_to_linker::<_, HasSelf<StepState>>(&mut linker, |s| s)
            .map_err(|e| Error::Engine(e.to_string()))?;
        crate::bindings::event::syncplane::plugin::declarative::add_to_linker::<
            _,
            HasSelf<StepState>,
        >(&mut linker, |s| s)
        .map_err(|e| Error::Engine(e.to_string()))?;
        let stop_ticker = Arc::new(AtomicBool::new(false));
        let ticker_engine = engine.clone();
        let stop = Arc::clone(&stop_ticker);
        std::thread::Builder::new()
            .name("syncplane-epoch".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    ticker_engine.increment_epoch();
                }
            })
            .map_err(|e| Error::Engine(e.to_string()))?;
        Ok(Runtime {
            engine,
            linker,
            core,
            limits,
            stop_ticker,
        })
    }

    /// Compiles a sync step component and checks that it fits the
    /// `sync-step` world.
    ///
    /// # Errors
    ///
    /// [`Error::Compile`] for bytes that are not a valid component,
    /// [`Error::Link`] for a component that imports what the host does not
    /// offer or does not export `sync-record`/`delete-record`.
    pub fn load_sync_step(
        &self,
        service: &str,
        step: &str,
        wasm: &[u8],
    ) -> Result<Arc<WasmSyncStep>> {
        let pre = self.instantiate_pre(service, step, wasm)?;
        let pre = SyncStepPre::new(pre).map_err(|e| Error::Link {
            service: service.to_owned(),
            step: step.to_owned(),
            message: format!("{e:#}"),
        })?;
        Ok(Arc::new(WasmSyncStep {
            pre,
            engine: self.engine.clone(),
            core: self.core.clone(),
            limits: self.limits,
            service: service.to_owned(),
            step: step.to_owned(),
        }))
    }
}

/// A store for one invocation: empty WASI, the memory limit, the deadline.
pub(crate) fn new_store(engine: &Engine, limits: Limits, access: Access) -> Store<StepState> {
    let state = StepState {
        wasi: WasiCtx::builder().build(),
        table: ResourceTable::new(),
        limits: StoreLimitsBuilder::new()
            .memory_size(limits.memory_bytes)
            .trap_on_grow_failure(true)
            .build(),
        access,
        log_records: 0,
    };
    let mut store = Store::new(engine, state);
    store.limiter(|s| &mut s.limits);
    let ticks = (limits.deadline.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64;
    store.set_epoch_deadline(ticks);
    store.epoch_deadline_trap();
    store
}

/// Says what went wrong with a guest call, and logs it.
pub(crate) fn describe_trap(
    service: &str,
    step: &str,
    limits: Limits,
    error: &wasmtime::Error,
    phase: &str,
) -> String {
    let text = if error.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
        format!(
            "exceeded its deadline of {:?} and was interrupted",
            limits.deadline
        )
    } else {
        format!("trapped: {error:#}")
    };
    let message = format!("step `{step}` of service `{service}` {text} ({phase})");
    tracing::warn!(service, step, "{message}");
    message
}

impl Runtime {
    /// Compiles a component and resolves its imports against the linker.
    fn instantiate_pre(
        &self,
        service: &str,
        step: &str,
        wasm: &[u8],
    ) -> Result<wasmtime::component::InstancePre<StepState>> {
        let component = Component::new(&self.engine, wasm).map_err(|e| Error::Compile {
            service: service.to_owned(),
            step: step.to_owned(),
            message: format!("{e:#}"),
        })?;
        self.linker
            .instantiate_pre(&component)
            .map_err(|e| Error::Link {
                service: service.to_owned(),
                step: step.to_owned(),
                message: format!("{e:#}"),
            })
    }

    /// Compiles an event step component for `service`, which may change the
    /// models in `own_models`.
    ///
    /// # Errors
    ///
    /// As [`Runtime::load_sync_step`], for the `event-step` world.
    pub fn load_event_step(
        &self,
        service: &str,
        step: &str,
        wasm: &[u8],
        own_models: Arc<BTreeSet<String>>,
    ) -> Result<Arc<WasmEventStep>> {
        let pre = self.instantiate_pre(service, step, wasm)?;
        let pre = EventStepPre::new(pre).map_err(|e| Error::Link {
            service: service.to_owned(),
            step: step.to_owned(),
            message: format!("{e:#}"),
        })?;
        Ok(Arc::new(WasmEventStep {
            pre,
            common: self.declarative(service, step, own_models),
        }))
    }

    /// Compiles a pull step component for `service`, which may change the
    /// models in `own_models`.
    ///
    /// # Errors
    ///
    /// As [`Runtime::load_sync_step`], for the `pull-step` world.
    pub fn load_pull_step(
        &self,
        service: &str,
        step: &str,
        wasm: &[u8],
        own_models: Arc<BTreeSet<String>>,
    ) -> Result<Arc<WasmPullStep>> {
        let pre = self.instantiate_pre(service, step, wasm)?;
        let pre = PullStepPre::new(pre).map_err(|e| Error::Link {
            service: service.to_owned(),
            step: step.to_owned(),
            message: format!("{e:#}"),
        })?;
        Ok(Arc::new(WasmPullStep {
            pre,
            common: self.declarative(service, step, own_models),
        }))
    }

    /// Compiles a model policy component for `service`, which may change
    /// the models in `own_models`.
    ///
    /// # Errors
    ///
    /// As [`Runtime::load_sync_step`], for the `model-policy` world.
    pub fn load_model_policy(
        &self,
        service: &str,
        policy: &str,
        wasm: &[u8],
        own_models: Arc<BTreeSet<String>>,
    ) -> Result<Arc<WasmModelPolicy>> {
        let pre = self.instantiate_pre(service, policy, wasm)?;
        let pre = ModelPolicyPre::new(pre).map_err(|e| Error::Link {
            service: service.to_owned(),
            step: policy.to_owned(),
            message: format!("{e:#}"),
        })?;
        Ok(Arc::new(WasmModelPolicy {
            pre,
            common: self.declarative(service, policy, own_models),
        }))
    }

    fn declarative(
        &self,
        service: &str,
        step: &str,
        own_models: Arc<BTreeSet<String>>,
    ) -> Declarative {
        Declarative {
            engine: self.engine.clone(),
            core: self.core.clone(),
            limits: self.limits,
            service: service.to_owned(),
            step: step.to_owned(),
            own_models,
        }
    }
}

/// A compiled, pre-instantiated sync step component.
pub struct WasmSyncStep {
    pre: SyncStepPre<StepState>,
    engine: Engine,
    core: Core,
    limits: Limits,
    service: String,
    step: String,
}

#[derive(Clone, Copy)]
enum Phase {
    Sync,
    Delete,
}

impl WasmSyncStep {
    async fn invoke(&self, object: &Object, phase: Phase) -> Outcome {
        let access = Access {
            core: self.core.clone(),
            service: self.service.clone(),
            step: self.step.clone(),
            observed: object.id,
            readable: HashSet::from([object.id]),
            own_models: Arc::default(),
        };
        let mut store = new_store(&self.engine, self.limits, access);
        let instance = match self.pre.instantiate_async(&mut store).await {
            Ok(instance) => instance,
            Err(e) => return Outcome::Failed(self.describe_trap(&e, "instantiate")),
        };
        let arg = to_model_object(object);
        let result = match phase {
            Phase::Sync => instance.call_sync_record(&mut store, &arg).await,
            Phase::Delete => instance.call_delete_record(&mut store, &arg).await,
        };
        match result {
            Ok(Ok(())) => Outcome::Done,
            Ok(Err(StepError::Deferred(m))) => Outcome::Deferred(m),
            Ok(Err(StepError::Failed(m))) => Outcome::Failed(m),
            Err(e) => Outcome::Failed(self.describe_trap(&e, "invoke")),
        }
    }

    fn describe_trap(&self, error: &wasmtime::Error, phase: &str) -> String {
        describe_trap(&self.service, &self.step, self.limits, error, phase)
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
