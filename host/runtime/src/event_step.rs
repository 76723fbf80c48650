//! Event steps, pull steps and model policies: components that change
//! declarative state, one fresh instance per call.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use syncplane_core::{Core, Object};
use syncplane_engine::{PolicyEvent, PolicyFuture, PolicyInvoker};
use wasmtime::Engine;

use crate::bindings::event::Event as WitEvent;
use crate::bindings::event::EventStepPre;
use crate::bindings::policy::ModelPolicyPre;
use crate::bindings::pull::PullStepPre;
use crate::host::to_model_object;
use crate::runtime::{Limits, describe_trap, new_store};
use crate::state::{Access, StepState};

/// One event from a bus.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The topic it was published on.
    pub topic: String,
    /// Its key, if any.
    pub key: Option<String>,
    /// The payload as text.
    pub value: String,
    /// When it was published, seconds since the epoch.
    pub timestamp: f64,
}

/// What event and pull steps share: where they run and what they may touch.
pub(crate) struct Declarative {
    pub(crate) engine: Engine,
    pub(crate) core: Core,
    pub(crate) limits: Limits,
    pub(crate) service: String,
    pub(crate) step: String,
    pub(crate) own_models: Arc<BTreeSet<String>>,
}

impl Declarative {
    fn store(&self) -> wasmtime::Store<StepState> {
        let access = Access {
            core: self.core.clone(),
            service: self.service.clone(),
            step: self.step.clone(),
            observed: 0,
            readable: HashSet::new(),
            own_models: Arc::clone(&self.own_models),
        };
        new_store(&self.engine, self.limits, access)
    }

    fn trap(&self, error: &wasmtime::Error, phase: &str) -> String {
        describe_trap(&self.service, &self.step, self.limits, error, phase)
    }
}

/// A compiled, pre-instantiated event step component.
pub struct WasmEventStep {
    pub(crate) pre: EventStepPre<StepState>,
    pub(crate) common: Declarative,
}

/// A compiled, pre-instantiated pull step component.
pub struct WasmPullStep {
    pub(crate) pre: PullStepPre<StepState>,
    pub(crate) common: Declarative,
}

/// A compiled, pre-instantiated model policy component.
pub struct WasmModelPolicy {
    pub(crate) pre: ModelPolicyPre<StepState>,
    pub(crate) common: Declarative,
}

impl WasmModelPolicy {
    async fn run(&self, object: &Object, event: PolicyEvent) -> Result<(), String> {
        let mut store = self.common.store();
        let instance = self
            .pre
            .instantiate_async(&mut store)
            .await
            .map_err(|e| self.common.trap(&e, "instantiate"))?;
        let arg = to_model_object(object);
        let (result, phase) = match event {
            PolicyEvent::Create => (
                instance.call_handle_create(&mut store, &arg).await,
                "handle-create",
            ),
            PolicyEvent::Update => (
                instance.call_handle_update(&mut store, &arg).await,
                "handle-update",
            ),
            PolicyEvent::Delete => (
                instance.call_handle_delete(&mut store, &arg).await,
                "handle-delete",
            ),
        };
        match result {
            Ok(result) => result,
            Err(e) => Err(self.common.trap(&e, phase)),
        }
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
        &self.common.service
    }

    /// The step's name.
    pub fn name(&self) -> &str {
        &self.common.step
    }

    /// Runs `pull-records` in a fresh instance under the usual limits.
    ///
    /// # Errors
    ///
    /// The guest's own error message, or what trapped.
    pub async fn pull_records(&self) -> Result<(), String> {
        let mut store = self.common.store();
        let instance = self
            .pre
            .instantiate_async(&mut store)
            .await
            .map_err(|e| self.common.trap(&e, "instantiate"))?;
        match instance.call_pull_records(&mut store).await {
            Ok(result) => result,
            Err(e) => Err(self.common.trap(&e, "pull-records")),
        }
    }
}

impl WasmEventStep {
    /// The service the step belongs to.
    pub fn service(&self) -> &str {
        &self.common.service
    }

    /// The step's name.
    pub fn name(&self) -> &str {
        &self.common.step
    }

    /// Runs `process-event` in a fresh instance under the usual limits.
    ///
    /// # Errors
    ///
    /// The guest's own error message, or what trapped.
    pub async fn process_event(&self, event: &Event) -> Result<(), String> {
        let mut store = self.common.store();
        let instance = self
            .pre
            .instantiate_async(&mut store)
            .await
            .map_err(|e| self.common.trap(&e, "instantiate"))?;
        let arg = WitEvent {
            topic: event.topic.clone(),
            key: event.key.clone(),
            value: event.value.clone(),
            timestamp: event.timestamp,
        };
        match instance.call_process_event(&mut store, &arg).await {
            Ok(result) => result,
            Err(e) => Err(self.common.trap(&e, "process-event")),
        }
    }
}
