//! Model policies: code that reacts to a model's objects being created,
//! changed or deleted by changing declarative state (XOS's
//! `handle_create`/`handle_update`/`handle_delete`). They run before the
//! object's sync steps see the version they handled.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use syncplane_core::{Object, field};

use crate::calls::CallOutcome;
use crate::steps::StepTable;

/// Which handler a policy runs for an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyEvent {
    /// The object was never policed.
    Create,
    /// The object changed since it was last policed.
    Update,
    /// The object was deleted.
    Delete,
}

impl PolicyEvent {
    /// The event for `object`'s current state.
    pub fn of(object: &Object) -> PolicyEvent {
        if object.is_deleted() {
            PolicyEvent::Delete
        } else if object
            .fields
            .get(field::POLICED)
            .is_none_or(serde_json::Value::is_null)
        {
            PolicyEvent::Create
        } else {
            PolicyEvent::Update
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            PolicyEvent::Create => "create",
            PolicyEvent::Update => "update",
            PolicyEvent::Delete => "delete",
        }
    }
}

/// A boxed future returned by [`PolicyInvoker`].
pub type PolicyFuture<'a> = Pin<Box<dyn Future<Output = CallOutcome> + Send + 'a>>;

/// Runs a model policy's code; `syncplane-runtime` implements it for
/// components.
pub trait PolicyInvoker: Send + Sync {
    /// Runs the handler for `event` on `object`.
    fn handle<'a>(&'a self, object: &'a Object, event: PolicyEvent) -> PolicyFuture<'a>;
}

/// A model policy as the engine knows it.
#[derive(Clone)]
pub struct ModelPolicy {
    /// The service it belongs to.
    pub service: String,
    /// Its name, unique within the service.
    pub name: String,
    /// The model it polices; it stands for its concrete descendants too.
    pub model: String,
    /// Runs it.
    pub invoker: Arc<dyn PolicyInvoker>,
}

impl std::fmt::Debug for ModelPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelPolicy")
            .field("service", &self.service)
            .field("name", &self.name)
            .field("model", &self.model)
            .finish_non_exhaustive()
    }
}

/// Whether `object` still waits for its model policies.
pub(crate) fn awaits_policies(table: &StepTable, object: &Object) -> bool {
    !table.policies(&object.model).is_empty()
        && !object.sync.is_policed()
        && !object.flag(field::NO_POLICY)
}
