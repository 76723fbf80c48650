//! Counts its own calls: writes how many calls this instance has served,
//! this one included, as the feedback field `calls` and succeeds. A
//! fresh instance per call always writes 1; a reused one counts up. An
//! object named `trap` traps instead, so the instance must not serve
//! again.
use std::sync::atomic::{AtomicI64, Ordering};

use syncplane_sdk::prelude::*;
use syncplane_test_guests::Target;

static CALLS: AtomicI64 = AtomicI64::new(0);

struct Step;
impl SyncStep for Step {
    type Model = Target;
    fn sync_record(o: &Object<Target>) -> StepResult {
        let calls = CALLS.fetch_add(1, Ordering::Relaxed) + 1;
        if o.name == "trap" {
            panic!("asked to trap after {calls} calls");
        }
        o.set_feedback(&[("calls", calls.into())])?;
        Ok(())
    }
    fn delete_record(_: &Object<Target>) -> StepResult {
        Ok(())
    }
}
export_sync_step!(Step);
