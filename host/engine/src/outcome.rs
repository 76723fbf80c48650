//! What a step invocation returns, and the seam the runtime implements.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use syncplane_core::Object;

/// The result of running a step on one object.
///
/// Three ways not to succeed are kept apart, in the manner of wasmtime's
/// split between a typed error and a trap: the step may ask to be retried
/// later ([`Outcome::Deferred`]), report a failure it understood
/// ([`Outcome::Failed`]), or be stopped by the host ([`Outcome::Trapped`]).
/// The last two are both retried with backoff; they differ in how they are
/// shown (`backend_status`, status, metrics).
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum Outcome {
    /// The backend matches the object.
    Done,
    /// Not an error: retry later at the normal interval, without backoff.
    Deferred(String),
    /// The step reported a failure; retried with backoff.
    Failed(String),
    /// The host stopped the step; retried with backoff.
    Trapped(Trap),
}

impl Outcome {
    /// `done`, `deferred`, `failed` or `trapped`, for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::Done => "done",
            Outcome::Deferred(_) => "deferred",
            Outcome::Failed(_) => "failed",
            Outcome::Trapped(_) => "trapped",
        }
    }
}

/// Why the host stopped a guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TrapCause {
    /// The guest crashed: a panic, an `unreachable`, a bad memory access.
    Crash,
    /// The guest ran past its deadline (computing, or waiting in a host
    /// call such as an HTTP request or a WASI sleep).
    Deadline,
    /// The guest tried to grow its memory beyond the limit.
    Memory,
    /// The guest produced more output (logs, host calls) than allowed.
    OutputLimit,
    /// The guest trapped after the host denied it an access it had not
    /// been granted.
    Denied,
    /// The host failed while serving the guest (for example a database
    /// error); not the guest's fault.
    HostError,
    /// The database was busy (locked by another process) or could not be
    /// written while serving the guest; nothing the call wrote was kept.
    /// Not the guest's fault and not lasting: a sync step stopped this way
    /// is deferred, not failed.
    StorageUnavailable,
}

impl TrapCause {
    /// `crash`, `deadline`, `memory`, `output-limit`, `denied`,
    /// `host-error` or `storage-unavailable`: how the cause appears in
    /// statuses and metrics.
    pub fn name(self) -> &'static str {
        match self {
            TrapCause::Crash => "crash",
            TrapCause::Deadline => "deadline",
            TrapCause::Memory => "memory",
            TrapCause::OutputLimit => "output-limit",
            TrapCause::Denied => "denied",
            TrapCause::HostError => "host-error",
            TrapCause::StorageUnavailable => "storage-unavailable",
        }
    }
}

impl std::str::FromStr for TrapCause {
    type Err = ();

    /// The cause [`TrapCause::name`] names.
    fn from_str(name: &str) -> Result<Self, ()> {
        [
            TrapCause::Crash,
            TrapCause::Deadline,
            TrapCause::Memory,
            TrapCause::OutputLimit,
            TrapCause::Denied,
            TrapCause::HostError,
            TrapCause::StorageUnavailable,
        ]
        .into_iter()
        .find(|cause| cause.name() == name)
        .ok_or(())
    }
}

impl std::fmt::Display for TrapCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A guest stopped by the host, with what happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trap {
    /// Why it was stopped.
    pub cause: TrapCause,
    /// What happened, naming the step and service.
    pub message: String,
}

impl Trap {
    /// The trap a status written by [`Trap`]'s `Display` describes
    /// (`trap (<cause>): <message>`), `None` for any other text.
    pub fn parse_status(status: &str) -> Option<Trap> {
        let rest = status.strip_prefix("trap (")?;
        let (cause, message) = rest.split_once("): ")?;
        Some(Trap {
            cause: cause.parse().ok()?,
            message: message.to_owned(),
        })
    }
}

impl std::fmt::Display for Trap {
    /// `trap (<cause>): <message>`, as `backend_status` shows it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "trap ({}): {}", self.cause, self.message)
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
