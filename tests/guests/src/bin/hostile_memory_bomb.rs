//! Allocates until the host's memory limit stops it.
use syncplane_sdk::prelude::*;
use syncplane_test_guests::Target;

struct Step;
impl SyncStep for Step {
    type Model = Target;
    fn sync_record(_: &Object<Target>) -> StepResult {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            hoard.push(std::hint::black_box(vec![1u8; 1 << 20]));
        }
    }
}
export_sync_step!(Step);
