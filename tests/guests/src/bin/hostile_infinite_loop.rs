//! Never returns: only the host's deadline stops it.
use syncplane_sdk::prelude::*;
use syncplane_test_guests::Target;

struct Step;
impl SyncStep for Step {
    type Model = Target;
    fn sync_record(_: &Object<Target>) -> StepResult {
        let mut n: u64 = 0;
        loop {
            n = std::hint::black_box(n.wrapping_add(1));
        }
    }
}
export_sync_step!(Step);
