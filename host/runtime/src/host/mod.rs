//! Host interfaces. The checks and effects are written once, on plain
//! types (`models.rs`, `declarative.rs`, `log.rs`, `values.rs`);
//! `adapters.rs` binds them to each version of the WIT package.

pub(crate) mod adapters;
mod declarative;
mod log;
pub(crate) mod models;
mod values;

use syncplane_engine::TrapCause;

use crate::state::{Access, StepState};

/// How a host call ends when it does not succeed: one of the typed
/// `access-error`s the guest sees, or a trap.
#[derive(Debug)]
pub(crate) enum Fault {
    Denied(String),
    NotFound(String),
    Invalid(String),
    Trap(HostTrap),
}

/// A trap raised on purpose by a host call; the runtime reads its cause
/// back from the error wasmtime returns.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub(crate) struct HostTrap {
    pub(crate) cause: TrapCause,
    pub(crate) message: String,
}

impl HostTrap {
    pub(crate) fn new(cause: TrapCause, message: impl Into<String>) -> Self {
        HostTrap {
            cause,
            message: message.into(),
        }
    }
}

impl From<HostTrap> for Fault {
    fn from(trap: HostTrap) -> Self {
        Fault::Trap(trap)
    }
}

/// The kinds of capability a denial is counted under in metrics.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    ModelRead,
    ModelWrite,
    Config,
    Secret,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::ModelRead => "model_read",
            Kind::ModelWrite => "model_write",
            Kind::Config => "config",
            Kind::Secret => "secret",
        }
    }
}

impl Access {
    /// Refuses an access: logs it once, counts it, remembers it (a trap
    /// right after is then shown as caused by it), and answers `denied`.
    pub(crate) fn denied(&self, kind: Kind, what: String) -> Fault {
        let service = self.service();
        let message = format!("step `{}` of service `{service}` may not {what}", self.step);
        tracing::warn!(service, step = %self.step, object = self.observed, "denied guest access: {what}");
        self.stats.capability_denied(service, kind.name());
        *self.last_denial.lock().unwrap_or_else(|p| p.into_inner()) = Some(message.clone());
        Fault::Denied(message)
    }
}

/// A core error inside a host call: the caller's mistake is `invalid` or
/// `not-found`, a create beyond the service's object quota `denied` (the
/// message names the service, the limit and the count); a failing
/// database is the host's problem and traps.
pub(crate) fn core_fault(e: syncplane_core::Error) -> Fault {
    match e {
        syncplane_core::Error::NotFound { .. } => Fault::NotFound(e.to_string()),
        syncplane_core::Error::QuotaExceeded { .. } => Fault::Denied(e.to_string()),
        e if e.is_client_error() => Fault::Invalid(e.to_string()),
        e if e.is_storage_unavailable() => {
            tracing::warn!(error = %e, "host call refused: the database is unavailable");
            Fault::Trap(HostTrap::new(
                TrapCause::StorageUnavailable,
                format!("the database is unavailable; the call is retried later: {e}"),
            ))
        }
        e => {
            tracing::error!(error = %e, "host call failed");
            Fault::Trap(HostTrap::new(
                TrapCause::HostError,
                format!("the host could not serve the call: {e}"),
            ))
        }
    }
}

impl StepState {
    /// Counts a host call against the per-invocation cap.
    pub(crate) fn enter(&mut self) -> Result<(), HostTrap> {
        self.output.host_calls += 1;
        let max = self.access.limits.host_calls;
        if self.output.host_calls > max {
            return Err(HostTrap::new(
                TrapCause::OutputLimit,
                format!("made more than {max} host calls in one invocation"),
            ));
        }
        Ok(())
    }
}
