//! The component host: runs guest sync steps under limits, with
//! capability-checked access to models.
//!
//! # Brief overview
//!
//! - [`Runtime`] owns the wasmtime engine (async, epoch deadlines) and the
//!   linker with the host interfaces; [`Runtime::load_sync_step`] compiles a
//!   component once and pre-instantiates it.
//! - [`WasmSyncStep`] implements the engine's `StepInvoker`: each call runs
//!   in a fresh store with a memory limit and a deadline. A trap, a timeout
//!   or running out of memory fails only that object.
//! - Host interfaces (`host/`): `models` lets a step read the object it
//!   observes and objects reached through its links, and write only
//!   feedback fields; `declarative` lets an event step ([`WasmEventStep`])
//!   create, change and delete objects of its own service's models; `log`
//!   forwards records into `tracing`.
#![deny(missing_docs)]

mod bindings;
mod error;
mod event_step;
mod host;
mod runtime;
mod state;

pub use error::{Error, Result};
pub use event_step::{Event, WasmEventStep, WasmModelPolicy, WasmPullStep};
pub use runtime::{Limits, Runtime, WasmSyncStep};
