//! One step for a whole dependency chain (`observes` lists three models):
//! fails objects named `bad...`, takes 40 ms for objects named `slow...`,
//! fails the teardown of objects named `stuck...`, and logs every sync and
//! teardown so tests can see the order.
use std::time::Duration;

use syncplane_sdk::prelude::*;
use syncplane_test_guests::Target;

struct Step;
impl SyncStep for Step {
    type Model = Target;

    fn sync_record(o: &Object<Target>) -> StepResult {
        if o.name.starts_with("slow") {
            std::thread::sleep(Duration::from_millis(40));
        }
        if o.name.starts_with("bad") {
            return Err(Failed(format!("{} is broken", o.name)));
        }
        log::info!("chain synced {}", o.name);
        Ok(())
    }

    fn delete_record(o: &Object<Target>) -> StepResult {
        if o.name.starts_with("stuck") {
            return Err(Failed(format!("{} cannot be torn down", o.name)));
        }
        log::info!("chain deleted {}", o.name);
        Ok(())
    }
}
export_sync_step!(Step);
