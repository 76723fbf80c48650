//! Event steps turn events from a bus into model changes; pull steps import
//! what a backend has, periodically. Both change models through
//! [`declarative`].
//!
//! ```no_run
//! use syncplane_sdk::event::{Event, EventStep, declarative};
//!
//! struct Track;
//! impl EventStep for Track {
//!     fn process_event(event: &Event) -> Result<(), String> {
//!         let name = event.key.clone().unwrap_or_default();
//!         declarative::create("Region", &[("name", name.into())])?;
//!         Ok(())
//!     }
//! }
//! syncplane_sdk::export_event_step!(Track);
//! ```

use crate::__private::syncplane::plugin::types::AccessError;
pub use crate::__private_event::Event;
use crate::fields::{Fields, Value};

/// An event step.
pub trait EventStep {
    /// Handles one event of a subscribed topic. An error is logged and
    /// counted by the host; the event is not redelivered.
    fn process_event(event: &Event) -> Result<(), String>;
}

/// A model policy over one model: reacts to its objects by changing
/// declarative state through [`declarative`]. Runs before the object's sync
/// steps see the version it handled.
pub trait ModelPolicy {
    /// The model it polices.
    type Model: crate::Model;

    /// The object is new.
    fn handle_create(o: &crate::Object<Self::Model>) -> Result<(), String> {
        Self::handle_update(o)
    }

    /// The object changed since it was last policed.
    fn handle_update(o: &crate::Object<Self::Model>) -> Result<(), String> {
        let _ = o;
        Ok(())
    }

    /// The object was deleted; its teardown waits for this.
    fn handle_delete(o: &crate::Object<Self::Model>) -> Result<(), String> {
        let _ = o;
        Ok(())
    }
}

/// A pull step.
pub trait PullStep {
    /// Imports what the backend has into models. Objects created with
    /// `("no_sync", true.into())` are left alone by sync steps. An error is
    /// logged and counted by the host; the next call comes at the next
    /// interval.
    fn pull_records() -> Result<(), String>;
}

fn message(e: AccessError) -> String {
    match e {
        AccessError::Denied(m) => format!("access denied: {m}"),
        AccessError::NotFound(m) => format!("not found: {m}"),
        AccessError::Invalid(m) => format!("invalid access: {m}"),
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Text(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Text(s)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Integer(i)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Boolean(b)
    }
}

/// Changes to models, as a user would make them: every write makes the
/// object pending for its sync steps.
///
/// A step may read and write its own service's models, read the models its
/// manifest grants for reading and write those it grants for writing:
///
/// ```toml
/// [capabilities.models]
/// read = ["core.Site"]
/// write = ["chainb.ChainBInstance"]
/// ```
///
/// Models are named as in xproto (`ChainBInstance`). Anything else is
/// refused with an error naming the step and the access; bookkeeping and
/// feedback fields are never writable here.
pub mod declarative {
    use super::{Fields, Value, message};
    use crate::__private_event::syncplane::plugin::declarative as host;

    /// An object found or read: id, leaf model and fields.
    #[derive(Debug, Clone)]
    pub struct Found {
        /// The object id.
        pub id: u64,
        /// Its most specialised model.
        pub model: String,
        /// Its fields.
        pub fields: Fields,
    }

    fn owned(fields: &[(&str, Value)]) -> Vec<(String, Value)> {
        fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    }

    /// The objects of `model` whose `field` equals `value`.
    ///
    /// # Errors
    ///
    /// What the host refused, as text.
    pub fn find(model: &str, field: &str, value: Value) -> Result<Vec<Found>, String> {
        let found = host::find(model, field, &value).map_err(message)?;
        Ok(found
            .into_iter()
            .map(|o| Found {
                id: o.id,
                model: o.model,
                fields: Fields(o.fields),
            })
            .collect())
    }

    /// Creates an object; returns its id.
    ///
    /// # Errors
    ///
    /// What the host refused, as text.
    pub fn create(model: &str, fields: &[(&str, Value)]) -> Result<u64, String> {
        host::create(model, &owned(fields)).map_err(message)
    }

    /// Changes fields of an object. With `always_update_timestamp` the object
    /// is synced again even when no value differs.
    ///
    /// # Errors
    ///
    /// What the host refused, as text.
    pub fn update(
        id: u64,
        fields: &[(&str, Value)],
        always_update_timestamp: bool,
    ) -> Result<(), String> {
        host::update(id, &owned(fields), always_update_timestamp).map_err(message)
    }

    /// Marks an object deleted.
    ///
    /// # Errors
    ///
    /// What the host refused, as text.
    pub fn delete(id: u64) -> Result<(), String> {
        host::delete(id).map_err(message)
    }
}
