//! Makes 200,000 tiny host calls (log records of one byte): the host's
//! cap on host calls per invocation must stop it (cause `output-limit`).
use syncplane_sdk::prelude::*;
use syncplane_test_guests::Target;

struct Step;
impl SyncStep for Step {
    type Model = Target;
    fn sync_record(_: &Object<Target>) -> StepResult {
        for _ in 0..200_000 {
            log::debug!(".");
        }
        Err(Failed("LEAKED: the host took 200,000 host calls".into()))
    }
}
export_sync_step!(Step);
