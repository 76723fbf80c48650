//! The component host: runs guest components under limits, with
//! capability-checked access to models, config, secrets and the network.
//!
//! # Brief overview
//!
//! - [`Runtime`] owns the wasmtime engine (async, epoch deadlines) and the
//!   linker with the host interfaces of both contract versions
//!   (`syncplane:plugin@0.2.0` and `@0.1.0`) and `wasi:http`;
//!   [`Runtime::load_sync_step`] compiles a component once and
//!   pre-instantiates it; with a [`cache::ComponentCache`] the compiled
//!   code is kept on disk and mapped from there on the next start.
//! - [`WasmSyncStep`] implements the engine's `StepInvoker`: each call runs
//!   in a fresh store with a memory limit, a deadline that also covers
//!   time in host calls, and output caps (or, for a service that asks for
//!   it, in an instance [`warm`] from the step's last call). Success, a
//!   typed failure and a trap (with its cause) are kept apart.
//! - [`capability`]: what a package declares ([`capability::Grants`]), what
//!   the operator allows ([`capability::OperatorPolicy`]) and what one
//!   service may touch ([`capability::ServiceContext`]), checked on every
//!   host call and every outbound HTTP request.
//! - Host interfaces (`host/`): `models` lets a sync step read the object
//!   it observes, objects reached through its links and granted models,
//!   and write only feedback fields; `declarative` lets event steps
//!   ([`WasmEventStep`]), pull steps and model policies change their own
//!   and granted models; `config` and `secrets` give the operator's
//!   values; `log` forwards records into `tracing`.
#![deny(missing_docs)]

mod bindings;
#[allow(unsafe_code)] // Deserializing compiled code: see the module.
pub mod cache;
pub mod capability;
mod error;
mod event_step;
pub mod gate;
mod host;
pub mod lazy;
pub mod memory;
mod runtime;
pub mod served;
mod state;
pub mod warm;

pub use error::{Error, Result};
pub use event_step::{Event, WasmEventStep, WasmModelPolicy, WasmPullStep};
pub use runtime::{InstanceLimits, Limits, Runtime, WasmSyncStep};
