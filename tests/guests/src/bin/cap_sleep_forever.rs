//! Sleeps for an hour in WASI (`monotonic-clock` subscribe + `poll`): only
//! a deadline that covers time spent in host calls stops it.
use std::time::Duration;

use syncplane_sdk::prelude::*;
use syncplane_test_guests::Target;

struct Step;
impl SyncStep for Step {
    type Model = Target;
    fn sync_record(_: &Object<Target>) -> StepResult {
        std::thread::sleep(Duration::from_secs(3600));
        Err(Failed("LEAKED: slept for an hour".into()))
    }
}
export_sync_step!(Step);
