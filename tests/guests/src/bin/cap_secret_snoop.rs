//! Reads secrets it may not: `other` (declared by no one), `api_key`
//! (declared and set for another service, not for this one) and
//! `chainb/api_key` (a guess at a namespaced name). Then reads its own
//! secret `own_secret` and puts it in a log record and in its failure, which
//! the host must redact.
use syncplane_sdk::prelude::*;
use syncplane_test_guests::Target;

struct Step;
impl SyncStep for Step {
    type Model = Target;
    fn sync_record(_: &Object<Target>) -> StepResult {
        let mut report = Vec::new();
        for name in ["other", "api_key", "chainb/api_key"] {
            match syncplane_sdk::secret(name) {
                Ok(value) => report.push(format!("LEAKED {name} ({} bytes)", value.len())),
                Err(e) => report.push(e.to_string()),
            }
        }
        let own = syncplane_sdk::secret("own_secret")?;
        log::info!("snooped; own secret is {}", own);
        report.push(format!("own secret: {own}"));
        Err(Failed(report.join("; ")))
    }
}
export_sync_step!(Step);
