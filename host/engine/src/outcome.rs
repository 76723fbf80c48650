//! What a step invocation returns, and the seam the runtime implements.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use syncplane_core::Object;

/// The result of running a step on one object.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum Outcome {
    /// The backend matches the object.
    Done,
    /// Not an error: retry later at the normal interval, without backoff.
    Deferred(String),
    /// The step failed (a typed failure or a trap); retried with backoff.
    Failed(String),
}

impl Outcome {
    /// `done`, `deferred` or `failed`, for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::Done => "done",
            Outcome::Deferred(_) => "deferred",
            Outcome::Failed(_) => "failed",
        }
    }
}

/// A boxed future returned by [`StepInvoker`].
pub type InvokeFuture<'a> = Pin<Box<dyn Future<Output = Outcome> + Send + 'a>>;

/// Runs a step's code. The engine decides what to run and when; an invoker
/// only runs it. `syncplane-runtime` implements this for wasm components;
/// engine tests implement it with plain closures.
pub trait StepInvoker: Send + Sync {
    /// Brings the backend in line with `object`.
    fn sync_record<'a>(&'a self, object: &'a Object) -> InvokeFuture<'a>;
    /// Tears down what the backend holds for the deleted `object`.
    fn delete_record<'a>(&'a self, object: &'a Object) -> InvokeFuture<'a>;
}

/// A sync step as the engine knows it.
#[derive(Clone)]
pub struct SyncStep {
    /// The service the step belongs to.
    pub service: String,
    /// The step's name, unique within the service.
    pub name: String,
    /// The models whose objects the step synchronizes. A model stands for
    /// itself and every concrete model that inherits from it.
    pub observes: Vec<String>,
    /// Runs the step.
    pub invoker: Arc<dyn StepInvoker>,
}

impl std::fmt::Debug for SyncStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncStep")
            .field("service", &self.service)
            .field("name", &self.name)
            .field("observes", &self.observes)
            .finish_non_exhaustive()
    }
}
