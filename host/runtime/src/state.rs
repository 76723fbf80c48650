//! What one invocation's store holds.

use std::collections::HashSet;
use std::sync::Arc;

use syncplane_core::Core;
use syncplane_engine::Stats;
use wasmtime::StoreLimits;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::capability::ServiceContext;
use crate::capability::outbound::{LastDenial, OutboundGate};
use crate::runtime::Limits;

/// Per-invocation state: limits, the WASI context (empty: no files, no
/// sockets, no environment), outbound HTTP behind the service's grants,
/// and the step's capabilities.
pub(crate) struct StepState {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) http: WasiHttpCtx,
    pub(crate) gate: OutboundGate,
    pub(crate) store_limits: StoreLimits,
    pub(crate) access: Access,
    pub(crate) output: Output,
}

/// What the guest produced so far in this invocation, against its caps.
#[derive(Debug, Default)]
pub(crate) struct Output {
    pub(crate) log_records: u32,
    pub(crate) log_bytes: usize,
    pub(crate) host_calls: u32,
}

/// Which contract the running component has: a sync step reaches its
/// observed object and what that links to; the others (event and pull
/// steps, model policies) change declarative state of their own models.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Sync,
    Declarative,
}

/// What the running step may touch.
pub(crate) struct Access {
    pub(crate) core: Core,
    pub(crate) ctx: Arc<ServiceContext>,
    pub(crate) stats: Arc<Stats>,
    pub(crate) limits: Limits,
    pub(crate) step: String,
    pub(crate) role: Role,
    /// The object the step was invoked for; the only one a sync step may
    /// write. 0 for event and pull steps.
    pub(crate) observed: i64,
    /// Objects a sync step may read: the observed one and those reached
    /// by links.
    pub(crate) readable: HashSet<i64>,
    pub(crate) last_denial: LastDenial,
}

impl Access {
    /// The service the step belongs to.
    pub(crate) fn service(&self) -> &str {
        self.ctx.service()
    }

    /// A transaction whose writes the audit log puts on this invocation.
    pub(crate) async fn begin(&self) -> Result<syncplane_core::CoreTx, crate::host::Fault> {
        self.core
            .begin_as(self.principal())
            .await
            .map_err(crate::host::core_fault)
    }

    /// Who the audit log names for this invocation's writes.
    pub(crate) fn principal(&self) -> syncplane_core::Principal {
        syncplane_core::Principal::Service {
            service: self.service().to_owned(),
            step: self.step.clone(),
        }
    }
}

impl WasiView for StepState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for StepState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.gate,
        }
    }
}
