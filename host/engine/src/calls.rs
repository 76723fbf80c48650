//! Pull steps and event steps as the engine knows them: the seams the
//! runtime implements, like [`crate::StepInvoker`] for sync steps.
//!
//! They are not driven by model changes, so the host calls them (on an
//! interval, or when an event arrives) through [`crate::Engine::call`]: in
//! their service's lane, under its concurrency, the engine's slots and the
//! service's invocation rate, like its sync steps and policies.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// An event from the in-process bus or a broker.
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

/// What a call of a declarative component — a model policy, a pull step
/// or an event step — produced.
///
/// As for sync steps ([`crate::Outcome`]), a call the host could not serve
/// for a passing reason (the database busy, locked by another process, or
/// unwritable) is kept apart from a failure: it is run again soon and
/// counts as no failure.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum CallOutcome {
    /// It ran to the end.
    Done,
    /// The host could not serve it now (the trap cause
    /// `storage-unavailable`): run it again soon, not a failure. The text
    /// says what happened.
    Deferred(String),
    /// The guest's own error message, or what trapped.
    Failed(String),
}

impl CallOutcome {
    /// `done`, `deferred` or `failed`, for logs.
    pub fn name(&self) -> &'static str {
        match self {
            CallOutcome::Done => "done",
            CallOutcome::Deferred(_) => "deferred",
            CallOutcome::Failed(_) => "failed",
        }
    }
}

/// A boxed future returned by [`PullInvoker`] and [`EventInvoker`] (and
/// [`crate::PolicyInvoker`]).
pub type CallFuture<'a> = Pin<Box<dyn Future<Output = CallOutcome> + Send + 'a>>;

/// Runs a pull step's code.
pub trait PullInvoker: Send + Sync {
    /// Imports what the backend has into the models.
    fn pull_records(&self) -> CallFuture<'_>;
}

/// Runs an event step's code.
pub trait EventInvoker: Send + Sync {
    /// Turns one event into model changes.
    fn process_event<'a>(&'a self, event: &'a Event) -> CallFuture<'a>;
}

/// A pull step as the engine knows it.
#[derive(Clone)]
pub struct PullStep {
    /// The service it belongs to.
    pub service: String,
    /// Its name, unique within the service.
    pub name: String,
    /// Runs it.
    pub invoker: Arc<dyn PullInvoker>,
}

/// An event step as the engine knows it.
#[derive(Clone)]
pub struct EventStep {
    /// The service it belongs to.
    pub service: String,
    /// Its name, unique within the service.
    pub name: String,
    /// Runs it.
    pub invoker: Arc<dyn EventInvoker>,
}

impl std::fmt::Debug for PullStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PullStep")
            .field("service", &self.service)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for EventStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStep")
            .field("service", &self.service)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}
