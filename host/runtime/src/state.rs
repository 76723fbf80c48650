//! What one invocation's store holds.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use syncplane_core::Core;
use wasmtime::StoreLimits;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// Per-invocation state: limits, the WASI context (empty: no files, no
/// sockets, no environment), and the step's capabilities.
pub(crate) struct StepState {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) limits: StoreLimits,
    pub(crate) access: Access,
    pub(crate) log_records: u32,
}

/// What the running step may touch.
pub(crate) struct Access {
    pub(crate) core: Core,
    pub(crate) service: String,
    pub(crate) step: String,
    /// The object the step was invoked for; the only one it may write.
    pub(crate) observed: i64,
    /// Objects the step may read: the observed one and those reached by links.
    pub(crate) readable: HashSet<i64>,
    /// For event steps: the models whose objects the step may create, read,
    /// change and delete (its own service's). Empty for sync steps.
    pub(crate) own_models: Arc<BTreeSet<String>>,
}

impl WasiView for StepState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}
