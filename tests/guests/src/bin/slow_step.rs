//! Takes its time: an object named `sleep-<ms>-<tag>` sleeps `<ms>`
//! milliseconds in WASI before it succeeds, logging `slow started NAME`
//! and `slow finished NAME` around the sleep, so tests can see whether a
//! call ran to its end and which step (version) ran it.
use std::time::Duration;

use syncplane_sdk::prelude::*;
use syncplane_test_guests::Target;

struct Step;
impl SyncStep for Step {
    type Model = Target;

    fn sync_record(o: &Object<Target>) -> StepResult {
        let millis = o
            .name
            .strip_prefix("sleep-")
            .and_then(|rest| rest.split('-').next())
            .and_then(|ms| ms.parse::<u64>().ok())
            .unwrap_or(0);
        log::info!("slow started {}", o.name);
        std::thread::sleep(Duration::from_millis(millis));
        log::info!("slow finished {}", o.name);
        Ok(())
    }
}
export_sync_step!(Step);
