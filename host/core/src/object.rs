//! Model objects and change notifications.

use serde_json::{Map, Value};

/// Where an object stands with the synchronizer. Maintained by the core and
/// the engine, never by users or guests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncState {
    /// The change sequence of the object's latest user-visible change.
    pub change_seq: i64,
    /// The change sequence of the version last enacted, if any.
    pub enacted_seq: Option<i64>,
    /// When (milliseconds since the epoch) the object may be retried.
    pub next_retry_ms: Option<i64>,
    /// Failures since the last success; drives the backoff.
    pub failures: i64,
    /// The change sequence model policies last handled, if any.
    pub policed_seq: Option<i64>,
}

impl SyncState {
    /// Whether model policies have handled the latest version.
    pub fn is_policed(&self) -> bool {
        self.policed_seq.is_some_and(|p| p >= self.change_seq)
    }

    /// Whether the latest version is not enacted yet.
    pub fn is_dirty(&self) -> bool {
        self.enacted_seq.is_none_or(|e| e < self.change_seq)
    }
}

/// A model object as stored: its leaf model, id, and every field.
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    /// The object id, unique across models.
    pub id: i64,
    /// The most specialised model of the object.
    pub model: String,
    /// Every field of the leaf model; links as `<name>_id`.
    pub fields: Map<String, Value>,
    /// Synchronizer state.
    pub sync: SyncState,
}

impl Object {
    /// A string field, if present and a string.
    pub fn str_field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).and_then(Value::as_str)
    }

    /// An integer field, if present and an integer.
    pub fn int_field(&self, name: &str) -> Option<i64> {
        self.fields.get(name).and_then(Value::as_i64)
    }

    /// The object as the API shows it: `id` plus the fields, without secrets.
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        out.insert("id".into(), Value::from(self.id));
        for (k, v) in &self.fields {
            if k != "password" {
                out.insert(k.clone(), v.clone());
            }
        }
        Value::Object(out)
    }

    /// [`Object::to_json`], consuming the object: its values are moved,
    /// not copied (for answers of many objects).
    pub fn into_json(mut self) -> Value {
        self.fields.remove("password");
        self.fields.insert("id".into(), Value::from(self.id));
        Value::Object(self.fields)
    }
}

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// Created by a user, TOSCA or a policy.
    Created,
    /// Changed by a user, TOSCA or a policy.
    Updated,
    /// Marked deleted; teardown is pending.
    Deleted,
    /// Bookkeeping or feedback written by the synchronizer; never makes the
    /// object pending.
    Bookkeeping,
    /// Removed from the database.
    Purged,
    /// Model policies handled the latest version: its sync may go ahead.
    Policed,
}

impl ChangeKind {
    /// Whether the change may give the synchronizer work.
    pub fn needs_sync(self) -> bool {
        matches!(
            self,
            ChangeKind::Created | ChangeKind::Updated | ChangeKind::Deleted | ChangeKind::Policed
        )
    }
}

/// A notification on the change feed, sent after the change is committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The object.
    pub id: i64,
    /// Its leaf model.
    pub model: String,
    /// What happened.
    pub kind: ChangeKind,
}
