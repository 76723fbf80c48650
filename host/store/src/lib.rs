//! Storage for syncplane: an embedded SQLite file by default, or a
//! PostgreSQL server, behind one API.
//!
//! # Brief overview
//!
//! - [`Store`] owns the database file in a data directory and hands out
//!   transactions.
//! - [`StoreTx`] is the only way to read or write: rows of model tables
//!   described by a [`TableSpec`], global object ids, the change sequence,
//!   and a small key/value area for host records.
//! - The change log (`sp_changes`, [`StoreTx::append_changes`],
//!   [`Store::changes_after`]): rows numbered in commit order, kept for a
//!   bounded number of changes, for watchers that resume where they left.
//! - [`SqlValue`] and [`Row`] carry values; [`Condition`] selects rows.
//! - Leases of objects to hosts ([`Store::claim_leases`]), for several
//!   hosts sharing one PostgreSQL store.
//! - The invocation history (`sp_history`, [`StoreTx::append_history`],
//!   [`Store::history`]): what each step and policy invocation did,
//!   bounded by count and age.
//! - [`copy`] copies a whole store into an empty one (SQLite to
//!   PostgreSQL, or back).
//! - [`PageQuery`] reads rows a page at a time in an [`OrderKey`] order,
//!   after the last row of the previous page (a keyset, not an offset).
//!
//! The store knows tables and columns, not models: `syncplane-core` maps the
//! model IR onto [`TableSpec`]s and gives the columns their meaning.
#![deny(missing_docs)]

mod backend;
mod changes;
mod copy;
mod error;
mod history;
mod leases;
mod migrate;
mod notices;
mod page;
mod schema;
mod store;
mod value;

pub use backend::Dialect;
pub use changes::LoggedRow;
pub use copy::{CopiedTable, copy};
pub use error::{Error, Result};
pub use history::{HistoryEntry, HistoryQuery, HistoryRetention, HistoryRow};
pub use leases::{Claim, HostRecord};
pub use migrate::SCHEMA_VERSION;
pub use notices::{ChangeNotices, Notice};
pub use page::{OrderKey, PageQuery};
pub use schema::{Column, ColumnType, PartialIndex, TableSpec};
pub use store::{Location, READERS, Store, StoreTx};
pub use value::{Condition, Row, SqlValue};
