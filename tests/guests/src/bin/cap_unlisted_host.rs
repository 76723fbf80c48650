//! Requests `http://127.0.0.1:<target_port>/`, a port the service's grants
//! do not cover (config `target_port`). The host must refuse before
//! connecting; the step reports what it got as its failure.
use syncplane_sdk::http::Request;
use syncplane_sdk::prelude::*;
use syncplane_test_guests::Target;

struct Step;
impl SyncStep for Step {
    type Model = Target;
    fn sync_record(_: &Object<Target>) -> StepResult {
        let port = syncplane_sdk::require_config("target_port")?;
        match Request::get(format!("http://127.0.0.1:{port}/")).send() {
            Ok(response) => Err(Failed(format!(
                "LEAKED: the host let the request through (HTTP {})",
                response.status
            ))),
            Err(e) => Err(Failed(format!("unlisted host: {e}"))),
        }
    }
}
export_sync_step!(Step);
