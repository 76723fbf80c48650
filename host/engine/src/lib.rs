//! The synchronizer engine: what runs, in which order, and what happens on
//! failure.
//!
//! # Brief overview
//!
//! - [`Engine`] wakes on the core's change feed (or when the earliest retry
//!   is due), finds pending objects, runs their [`SyncStep`] in dependency
//!   order ([`sync_order`]) and records the [`Outcome`].
//! - [`StepInvoker`] is the seam to the code that does the work; the engine
//!   never knows it is WebAssembly.
//! - [`RetryPolicy`] sets the retry interval for deferred objects and the
//!   exponential backoff for failed ones.
#![deny(missing_docs)]

mod backoff;
mod calls;
mod clock;
mod cohort;
mod commit;
mod engine;
mod error;
mod history;
mod job;
mod lane;
mod lease;
mod limits;
mod order;
mod outcome;
mod plan;
mod policy;
mod retries;
mod runner;
mod shared_leases;
mod stats;
mod steps;

pub use backoff::RetryPolicy;
pub use calls::{CallFuture, CallOutcome, Event, EventInvoker, EventStep, PullInvoker, PullStep};
pub use clock::{Clock, ManualClock, Sleep, SystemClock};
pub use engine::{Engine, EngineConfig, PassReport, PassScope, ServiceUsage};
pub use error::{Error, Result};
pub use history::{MAX_LOG_LINES, capture_guest_log};
pub use lease::{HoldFuture, LocalLeases, StopFuture, TakeFuture, Taken, WorkSource};
pub use limits::ServiceLimits;
pub use order::{sync_order, sync_order_with};
pub use outcome::{InvokeFuture, Outcome, StepInvoker, SyncStep, Trap, TrapCause};
pub use policy::{ModelPolicy, PolicyEvent, PolicyFuture, PolicyInvoker};
pub use shared_leases::{DEFAULT_LEASE_TTL, SharedLeases};
pub use stats::{Stats, StepActivity};
