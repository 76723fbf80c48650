//! Fails with a 40 MiB message: the host must truncate it (4 KiB and a
//! marker) before it reaches `backend_status`, the status API and the log.
use syncplane_sdk::prelude::*;
use syncplane_test_guests::Target;

const PREFIX: &[u8] = b"huge error: ";

struct Step;
impl SyncStep for Step {
    type Model = Target;
    fn sync_record(_: &Object<Target>) -> StepResult {
        // Built in place: one 40 MiB buffer, not two.
        let mut bytes = vec![b'E'; 40 << 20];
        bytes[..PREFIX.len()].copy_from_slice(PREFIX);
        match String::from_utf8(bytes) {
            Ok(message) => Err(Failed(message)),
            Err(_) => Err(Failed("not UTF-8".into())),
        }
    }
}
export_sync_step!(Step);
