//! A sync step for `ValidatedThing` (`models/validated.xproto`): writes the
//! object's name as its feedback field `observed`, logs `validated thing
//! synced NAME` and succeeds; when the host refuses the write (the model's
//! validator refuses an `observed` of `out of sync`), fails with what the
//! host answered.
use syncplane_sdk::prelude::*;
use syncplane_test_guests::Target;

struct Step;
impl SyncStep for Step {
    type Model = Target;
    fn sync_record(o: &Object<Target>) -> StepResult {
        o.set_feedback(&[("observed", o.name.as_str().into())])?;
        log::info!("validated thing synced {}", o.name);
        Ok(())
    }
    fn delete_record(_: &Object<Target>) -> StepResult {
        Ok(())
    }
}
export_sync_step!(Step);
