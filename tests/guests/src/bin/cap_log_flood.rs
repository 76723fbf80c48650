//! Logs 100 MiB in records of 1 MiB each: the host's log budget per
//! invocation must stop it (cause `output-limit`).
use syncplane_sdk::prelude::*;
use syncplane_test_guests::Target;

struct Step;
impl SyncStep for Step {
    type Model = Target;
    fn sync_record(_: &Object<Target>) -> StepResult {
        let chunk = "flood ".repeat((1 << 20) / 6);
        for i in 0..100 {
            log::info!("{} {}", i, chunk);
        }
        Err(Failed(
            "LEAKED: the host took 100 MiB of log records".into(),
        ))
    }
}
export_sync_step!(Step);
