//! Panics: the instance traps.
use syncplane_sdk::prelude::*;
use syncplane_test_guests::Target;

struct Step;
impl SyncStep for Step {
    type Model = Target;
    fn sync_record(o: &Object<Target>) -> StepResult {
        panic!("hostile guest panics while syncing {}", o.name);
    }
}
export_sync_step!(Step);
