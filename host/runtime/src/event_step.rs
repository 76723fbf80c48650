//! Event steps, pull steps and model policies: components that change
//! declarative state, one fresh instance per call.

use syncplane_core::Object;
use syncplane_engine::{
    CallFuture, CallOutcome, EventInvoker, PolicyEvent, PolicyFuture, PolicyInvoker, PullInvoker,
    TrapCause,
};

use std::sync::Arc;

use crate::bindings::v2::event::Event as WitEvent;
use crate::bindings::v2::event::EventStepPre;
use crate::bindings::v2::policy::ModelPolicyPre;
use crate::bindings::v2::pull::PullStepPre;
use crate::host::adapters::v2::object as to_model_object;
use crate::lazy::Slot;
use crate::memory::MemoryRefusal;
use crate::runtime::{Common, deadline_of};
use crate::state::{Role, StepState};

pub use syncplane_engine::Event;

/// An event step component, loaded when it has work ([`crate::lazy`]).
pub struct WasmEventStep {
    pub(crate) slot: Arc<Slot<EventStepPre<StepState>>>,
    pub(crate) common: Common,
}

/// A pull step component, loaded when it has work ([`crate::lazy`]).
pub struct WasmPullStep {
    pub(crate) slot: Arc<Slot<PullStepPre<StepState>>>,
    pub(crate) common: Common,
}

/// A model policy component, loaded when it has work ([`crate::lazy`]).
pub struct WasmModelPolicy {
    pub(crate) slot: Arc<Slot<ModelPolicyPre<StepState>>>,
    pub(crate) common: Common,
}

impl WasmModelPolicy {
    async fn run(&self, object: &Object, event: PolicyEvent) -> CallOutcome {
        let common = &self.common;
        let _admitted = match common.admit().await {
            Ok(admitted) => admitted,
            Err(outcome) => return outcome,
        };
        let loaded = match self.slot.acquire().await {
            Ok(loaded) => loaded,
            Err(why) => return CallOutcome::Failed(common.unloadable(&why)),
        };
        let mut store = common.store(Role::Declarative, 0);
        let deadline = deadline_of(&store);
        let arg = to_model_object(object);
        let phase = match event {
            PolicyEvent::Create => "handle-create",
            PolicyEvent::Update => "handle-update",
            PolicyEvent::Delete => "handle-delete",
        };
        let result = {
            let store = &mut store;
            common
                .within_deadline(deadline, async {
                    let instance = loaded.pre.instantiate_async(&mut *store).await?;
                    match event {
                        PolicyEvent::Create => instance.call_handle_create(&mut *store, &arg).await,
                        PolicyEvent::Update => instance.call_handle_update(&mut *store, &arg).await,
                        PolicyEvent::Delete => instance.call_handle_delete(&mut *store, &arg).await,
                    }
                })
                .await
        };
        finish(common, result, &store, phase)
    }
}

/// A declarative component's result as the engine and bus take it: the
/// guest's own message (redacted, capped), or the trap as
/// `trap (<cause>): ...`; a trap because the database was busy or could
/// not be written is the host's passing trouble, not a failure: deferred.
fn finish(
    common: &Common,
    result: wasmtime::Result<Result<(), String>>,
    store: &wasmtime::Store<StepState>,
    phase: &str,
) -> CallOutcome {
    match result {
        Ok(Ok(())) => CallOutcome::Done,
        Ok(Err(message)) => CallOutcome::Failed(common.status(message)),
        Err(e) => match common.trap(&e, store, phase) {
            trap if trap.cause == TrapCause::StorageUnavailable => {
                CallOutcome::Deferred(trap.to_string())
            }
            trap => CallOutcome::Failed(trap.to_string()),
        },
    }
}

impl PolicyInvoker for WasmModelPolicy {
    fn handle<'a>(&'a self, object: &'a Object, event: PolicyEvent) -> PolicyFuture<'a> {
        Box::pin(self.run(object, event))
    }
}

impl WasmPullStep {
    /// The service the step belongs to.
    pub fn service(&self) -> &str {
        self.common.service()
    }

    /// The step's name.
    pub fn name(&self) -> &str {
        &self.common.step
    }

    /// Runs `pull-records` in a fresh instance under the usual limits.
    ///
    /// Deferred when the database was busy or could not be written; else
    /// failed with the guest's own error message, or what trapped.
    pub async fn pull_records(&self) -> CallOutcome {
        let common = &self.common;
        let _admitted = match common.admit().await {
            Ok(admitted) => admitted,
            Err(outcome) => return outcome,
        };
        let loaded = match self.slot.acquire().await {
            Ok(loaded) => loaded,
            Err(why) => return CallOutcome::Failed(common.unloadable(&why)),
        };
        let mut store = common.store(Role::Declarative, 0);
        let deadline = deadline_of(&store);
        let result = {
            let store = &mut store;
            common
                .within_deadline(deadline, async {
                    let instance = loaded.pre.instantiate_async(&mut *store).await?;
                    instance.call_pull_records(&mut *store).await
                })
                .await
        };
        finish(common, result, &store, "pull-records")
    }
}

impl PullInvoker for WasmPullStep {
    fn pull_records(&self) -> CallFuture<'_> {
        Box::pin(WasmPullStep::pull_records(self))
    }
}

impl EventInvoker for WasmEventStep {
    fn process_event<'a>(&'a self, event: &'a Event) -> CallFuture<'a> {
        Box::pin(WasmEventStep::process_event(self, event))
    }
}

impl WasmEventStep {
    /// The service the step belongs to.
    pub fn service(&self) -> &str {
        self.common.service()
    }

    /// The step's name.
    pub fn name(&self) -> &str {
        &self.common.step
    }

    /// Runs `process-event` in a fresh instance under the usual limits.
    ///
    /// Deferred when the database was busy or could not be written; else
    /// failed with the guest's own error message, or what trapped.
    pub async fn process_event(&self, event: &Event) -> CallOutcome {
        let common = &self.common;
        let _admitted = match common.admit().await {
            Ok(admitted) => admitted,
            Err(outcome) => return outcome,
        };
        let loaded = match self.slot.acquire().await {
            Ok(loaded) => loaded,
            Err(why) => return CallOutcome::Failed(common.unloadable(&why)),
        };
        let mut store = common.store(Role::Declarative, 0);
        let deadline = deadline_of(&store);
        let arg = WitEvent {
            topic: event.topic.clone(),
            key: event.key.clone(),
            value: event.value.clone(),
            timestamp: event.timestamp,
        };
        let result = {
            let store = &mut store;
            common
                .within_deadline(deadline, async {
                    let instance = loaded.pre.instantiate_async(&mut *store).await?;
                    instance.call_process_event(&mut *store, &arg).await
                })
                .await
        };
        finish(common, result, &store, "process-event")
    }
}

/// What a policy, pull or event call holds while it runs: its pass through
/// the service's gate and its guest memory.
struct Admitted {
    _entered: crate::gate::Entered,
    _memory: Option<crate::memory::Reservation>,
}

impl Common {
    /// Passes the gate and reserves the call's memory: a replaced service
    /// or a call over the memory cap fails; memory not free within the
    /// deadline defers the call.
    async fn admit(&self) -> Result<Admitted, CallOutcome> {
        let entered = self.pass_gate().await.map_err(CallOutcome::Failed)?;
        let memory = self
            .reserve_memory()
            .await
            .map_err(|refusal| match refusal {
                MemoryRefusal::TooLarge(m) => CallOutcome::Failed(m),
                MemoryRefusal::Waited(m) => CallOutcome::Deferred(m),
            })?;
        Ok(Admitted {
            _entered: entered,
            _memory: memory,
        })
    }
}
