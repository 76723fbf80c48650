//! An object's sync status as a page shows it: an icon *and* a word, so
//! status never depends on colour, and the message a step or policy left.

use serde::Serialize;
use serde_json::Value;
use syncplane_core::{BackendCode, Object, field};

use crate::values::{self, Shown};

/// The status of one object.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Status {
    /// `enacted`, `pending`, `failed`, `deleting`, `no-sync`: the CSS class.
    pub(crate) key: &'static str,
    /// A symbol (hidden from screen readers: `label` says it).
    pub(crate) icon: &'static str,
    /// The word shown beside it.
    pub(crate) label: &'static str,
    /// `backend_status`, cut to `max` characters.
    pub(crate) message: Shown,
    /// Whether model policies failed on the latest version.
    pub(crate) policy_failed: bool,
    /// `policy_status`, cut, when policies failed.
    pub(crate) policy_message: Shown,
}

/// The status of `object`; messages cut to `max` characters.
pub(crate) fn of(object: &Object, max: usize) -> Status {
    let (key, icon, label) = if object.is_deleted() {
        ("deleting", "\u{2716}", "Deleting")
    } else if object.flag(field::NO_SYNC) {
        ("no-sync", "\u{2013}", "Not synced")
    } else {
        match object.backend_code() {
            BackendCode::Enacted if !object.sync.is_dirty() => ("enacted", "\u{2714}", "Enacted"),
            BackendCode::Failed => ("failed", "\u{26a0}", "Failed"),
            _ => ("pending", "\u{23f3}", "Pending"),
        }
    };
    let policy_failed = object
        .fields
        .get(field::POLICY_CODE)
        .and_then(Value::as_i64)
        == Some(2);
    Status {
        key,
        icon,
        label,
        message: values::show(object.fields.get(field::BACKEND_STATUS), max),
        policy_failed,
        policy_message: if policy_failed {
            values::show(object.fields.get(field::POLICY_STATUS), max)
        } else {
            values::show(None, max)
        },
    }
}
