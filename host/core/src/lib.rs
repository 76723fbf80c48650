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
//! - Many-to-many links are kept in join tables and shown and written as
//!   `<field>_ids` lists, as XOS did.
//! - Deleting ([`CoreTx::delete`]) is XOS's: objects linking to the deleted
//!   one through a required link are deleted with it, optional links to it
//!   are cleared, all in one transaction; the [`Deletion`] says what
//!   cascaded. Nothing may link to a deleted object, and a deleted object
//!   is purged only once nothing links to it.
//! - Authorization ([`Principal`], `CoreTx::*_as`): every read and write
//!   made for a user is decided by the model's security policy, in one
//!   place; validators and the user rules hold for every write.
//! - Lists are queried in XOS's REST conventions: a [`Query`] (filters,
//!   ordering, page) parsed from request parameters and checked against the
//!   model's fields, run by [`Core::query_as`] a page at a time, every
//!   object through the same authorization check ([`Listing`]).
//! - [`modeldefs`] describes every model and field as XOS's GUI reads them.
//! - The change feed ([`Core::subscribe`]) tells listeners, after commit,
//!   what changed ([`Change`]); the engine wakes on it instead of polling.
//! - The change log ([`Core::watch`], [`ChangeWatch`]) keeps users'
//!   creates, updates and deletes durably, numbered in commit order, so a
//!   watcher resumes after a disconnect with no gaps and no duplicates.
//! - The synchronizer's side ([`Core::pending`], [`Core::record_sync`],
//!   [`Core::set_feedback`], [`Core::purge`]) writes bookkeeping that never
//!   makes an object pending again.
//! - Object quotas ([`Core::set_object_quota`], [`ObjectQuota`]) cap the
//!   objects a service's models hold; a create beyond one fails with
//!   [`Error::QuotaExceeded`], whoever makes it.
//! - Users sign in with [`Core::authenticate`] (argon2, hashed on a bounded
//!   blocking pool, never inside a transaction) or a bearer token from
//!   [`Core::issue_token`] ([`Core::authenticate_token`]); see
//!   [`AuthOptions`] for the cache of successful checks.
#![deny(missing_docs)]

mod audit;
mod auth;
mod authz;
mod bookkeeping;
mod choices;
mod constraints;
mod core;
mod create;
mod deletion;
mod error;
pub mod failpoint;
mod follow;
mod history;
mod hosts;
mod input;
mod keys;
mod many;
mod modeldefs;
mod object;
mod password;
mod policy;
mod query;
mod quota;
mod registry;
mod sync;
mod time;
mod tokens;
mod unique;
mod users;
mod watch;

pub use crate::audit::{AuditEntry, AuditQuery, MAX_ENTRIES as MAX_AUDIT_ENTRIES};
pub use crate::auth::AuthOptions;
pub use crate::authz::Principal;
pub use crate::core::{CORE_XPROTO, Core, CoreTx, IMPORT_FLAGS, RecordWrite};
pub use crate::create::MAX_BATCH;
pub use crate::deletion::{CascadeAction, Cascaded, DeleteOptions, Deletion, MAX_CASCADE};
pub use bookkeeping::{BackendCode, PolicyCode, field};
pub use error::{Error, Result, error_chain};
pub use history::{MAX_HISTORY_ROWS, ObjectHistory};
pub use input::decode_create;
pub use many::{MAX_MANY, ids_name};
pub use modeldefs::{Choice, FieldDef, ModelDef, Relation, Validator, modeldefs};
pub use object::{Change, ChangeKind, Object, SyncState};
pub use policy::PolicyRecord;
/// Where a [`Core`] keeps its data (see [`Core::connect`]).
pub use syncplane_store::Location as StoreLocation;
pub use syncplane_store::{Claim, HostRecord};
pub use syncplane_store::{HistoryEntry, HistoryQuery, HistoryRetention, HistoryRow};
/// The names of the query parameters that are not filters.
pub mod query_parameters {
    pub use crate::query::{CURSOR, ORDERING, PAGE, PAGE_SIZE};
}
pub use query::{
    DEFAULT_PAGE_SIZE, Listing, MAX_IN_VALUES, MAX_OFFSET, MAX_ORDER_FIELDS, MAX_PAGE_SIZE, Query,
    QueryError,
};
pub use quota::ObjectQuota;
pub use registry::Registry;
pub use sync::{ModelSyncCounts, SyncBatch, SyncRecord, Work};
pub use time::{now_ms, now_secs};
pub use tokens::{IssuedToken, TOKENS_NAMESPACE, TokenInfo, TokenKind};
pub use users::ADMIN_EMAIL;
pub use watch::{CHANGE_LOG_RETENTION, ChangeWatch, LoggedChange};
