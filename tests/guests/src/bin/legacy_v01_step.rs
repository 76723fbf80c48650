//! A sync step built against `syncplane:plugin@0.1.0` with wit-bindgen
//! directly, not through the SDK (which follows the newest WIT): the host
//! must keep loading and running components of the previous contract.
//!
//! It reads its object back through `models.get`, logs
//! `legacy step synced NAME` and succeeds; `delete-record` logs
//! `legacy step deleted NAME`.

wit_bindgen::generate!({
    path: "../../wit/previous/0.1.0",
    world: "sync-step",
});

use syncplane::plugin::log::{Level, log};
use syncplane::plugin::models;
use syncplane::plugin::types::{AccessError, Value};

struct LegacyStep;

fn name(object: &ModelObject) -> String {
    object
        .fields
        .iter()
        .find_map(|(k, v)| match (k.as_str(), v) {
            ("name", Value::Text(name)) => Some(name.clone()),
            _ => None,
        })
        .unwrap_or_default()
}

fn describe(e: AccessError) -> String {
    match e {
        AccessError::Denied(m) => format!("denied: {m}"),
        AccessError::NotFound(m) => format!("not found: {m}"),
        AccessError::Invalid(m) => format!("invalid: {m}"),
    }
}

impl Guest for LegacyStep {
    fn sync_record(obj: ModelObject) -> Result<(), StepError> {
        let again = models::get(obj.id).map_err(|e| StepError::Failed(describe(e)))?;
        if name(&again) != name(&obj) {
            return Err(StepError::Failed(format!(
                "models.get returned {again:?} for {obj:?}"
            )));
        }
        log(
            Level::Info,
            &format!("legacy step synced {}", name(&obj)),
            &[("contract".into(), "0.1.0".into())],
        );
        Ok(())
    }

    fn delete_record(obj: ModelObject) -> Result<(), StepError> {
        log(
            Level::Info,
            &format!("legacy step deleted {}", name(&obj)),
            &[],
        );
        Ok(())
    }
}

export!(LegacyStep);

fn main() {}
