//! Reads an unrelated object and writes declarative state; both must be denied.
use syncplane_sdk::Value;
use syncplane_sdk::prelude::*;
use syncplane_test_guests::Target;

struct Step;
impl SyncStep for Step {
    type Model = Target;
    fn sync_record(o: &Object<Target>) -> StepResult {
        // Object 1 is the admin user: nothing links the target to it.
        let read = match syncplane_sdk::get::<Target>(1) {
            Ok(_) => return Ok(()),
            Err(StepError::Failed(m) | StepError::Deferred(m)) => m,
        };
        let write = match o.set_feedback(&[("note", Value::Text("pwned".into()))]) {
            Ok(()) => return Ok(()),
            Err(StepError::Failed(m) | StepError::Deferred(m)) => m,
        };
        Err(Failed(format!("read: {read}; write: {write}")))
    }
}
export_sync_step!(Step);
