//! The syncplane core: installed models, objects and their bookkeeping.
//!
//! # Brief overview
//!
//! - [`Core`] opens the database in a data directory, installs the built-in
//!   core models ([`CORE_XPROTO`]) and, later, services' models without a
//!   restart ([`Core::register_models`]).
//! - [`CoreTx`] creates, updates, deletes and lists [`Object`]s with XOS's
//!   bookkeeping: `created`, `updated`, `enacted`, `backend_code`,
//!   `backend_status`, `deleted`, ... Each user change advances a
//!   store-assigned change sequence; an object is pending while its
//!   enacted sequence is older.
//! - The change feed ([`Core::subscribe`]) tells listeners, after commit,
//!   what changed ([`Change`]); the engine wakes on it instead of polling.
//! - The synchronizer's side ([`Core::pending`], [`Core::record_sync`],
//!   [`Core::set_feedback`], [`Core::purge`]) writes bookkeeping that never
//!   makes an object pending again.
#![deny(missing_docs)]

mod core;
mod error;
pub mod failpoint;
mod input;
mod object;
mod policy;
mod registry;
mod sync;
mod time;
mod users;

pub use crate::core::{CORE_XPROTO, Core, CoreTx, IMPORT_FLAGS, RecordWrite};
pub use error::{Error, Result};
pub use input::decode_create;
pub use object::{Change, ChangeKind, Object, SyncState};
pub use registry::Registry;
pub use sync::{ModelSyncCounts, SyncBatch, SyncRecord};
pub use time::{now_ms, now_secs};
pub use users::ADMIN_EMAIL;
