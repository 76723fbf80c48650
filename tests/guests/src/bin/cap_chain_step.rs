//! A sync step for both ends of the service chain (`ChainAInstance`,
//! `ChainBInstance`) and for `chainb`'s objects that keep syncing while
//! hostile guests run: logs `chain instance synced NAME` /
//! `chain instance deleted NAME` and succeeds.
use syncplane_sdk::prelude::*;
use syncplane_test_guests::Target;

struct Step;
impl SyncStep for Step {
    type Model = Target;
    fn sync_record(o: &Object<Target>) -> StepResult {
        log::info!("chain instance synced {}", o.name);
        Ok(())
    }
    fn delete_record(o: &Object<Target>) -> StepResult {
        log::info!("chain instance deleted {}", o.name);
        Ok(())
    }
}
export_sync_step!(Step);
