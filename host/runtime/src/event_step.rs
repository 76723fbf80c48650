//! Event steps, pull steps and model policies: components that change
//! declarative state, each call in a fresh instance or, for services that
//! reuse them, a parked one ([`crate::warm`]).

use syncplane_core::Object;
use syncplane_engine::{
    CallFuture, CallOutcome, EventInvoker, PolicyEvent, PolicyFuture, PolicyInvoker, PullInvoker,
    Trap, TrapCause,
};
use wasmtime::Store;

use std::sync::Arc;

use crate::bindings::v2::event::Event as WitEvent;
use crate::bindings::v2::event::EventStepPre;
use crate::bindings::v2::policy::ModelPolicyPre;
use crate::bindings::v2::pull::PullStepPre;
use crate::host::adapters::v2::object as to_model_object;
use crate::lazy::Slot;
use crate::runtime::{Common, Ran};
use crate::state::{Role, StepState};
use crate::warm::Pre;

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
        let phase = match event {
            PolicyEvent::Create => "handle-create",
            PolicyEvent::Update => "handle-update",
            PolicyEvent::Delete => "handle-delete",
        };
        let arg = to_model_object(object);
        declarative_call(
            &self.slot,
            &self.common,
            phase,
            async |policy, store| match event {
                PolicyEvent::Create => policy.call_handle_create(store, &arg).await,
                PolicyEvent::Update => policy.call_handle_update(store, &arg).await,
                PolicyEvent::Delete => policy.call_handle_delete(store, &arg).await,
            },
        )
        .await
    }
}

/// Runs one call of a declarative component (policy, pull or event step)
/// through [`Common::run`].
async fn declarative_call<P: Pre>(
    slot: &Slot<P>,
    common: &Common,
    phase: &str,
    call: impl AsyncFnOnce(&P::Instance, &mut Store<StepState>) -> wasmtime::Result<Result<(), String>>,
) -> CallOutcome {
    match common.run(slot, Role::Declarative, 0, phase, call).await {
        Ran::Returned(Ok(())) => CallOutcome::Done,
        Ran::Returned(Err(message)) => CallOutcome::Failed(common.status(message)),
        Ran::Trapped(trap) => failed(trap),
        Ran::Failed(m) | Ran::Replaced(m) => CallOutcome::Failed(m),
        Ran::Waited(m) => CallOutcome::Deferred(m),
    }
}

/// A declarative component's trap as the engine and bus take it:
/// `trap (<cause>): ...`; a trap because the database was busy or could
/// not be written is the host's passing trouble, not a failure: deferred.
fn failed(trap: Trap) -> CallOutcome {
    if trap.cause == TrapCause::StorageUnavailable {
        CallOutcome::Deferred(trap.to_string())
    } else {
        CallOutcome::Failed(trap.to_string())
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

    /// Runs `pull-records` under the usual limits, in a fresh instance or
    /// a parked one ([`crate::warm`]).
    ///
    /// Deferred when the database was busy or could not be written; else
    /// failed with the guest's own error message, or what trapped.
    pub async fn pull_records(&self) -> CallOutcome {
        declarative_call(
            &self.slot,
            &self.common,
            "pull-records",
            async |step, store| step.call_pull_records(store).await,
        )
        .await
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

    /// Runs `process-event` under the usual limits, in a fresh instance
    /// or a parked one ([`crate::warm`]).
    ///
    /// Deferred when the database was busy or could not be written; else
    /// failed with the guest's own error message, or what trapped.
    pub async fn process_event(&self, event: &Event) -> CallOutcome {
        let arg = WitEvent {
            topic: event.topic.clone(),
            key: event.key.clone(),
            value: event.value.clone(),
            timestamp: event.timestamp,
        };
        declarative_call(
            &self.slot,
            &self.common,
            "process-event",
            async |step, store| step.call_process_event(store, &arg).await,
        )
        .await
    }
}
