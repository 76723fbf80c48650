//! GETs `<url>/ok` (config `url`, an origin the grants cover) and succeeds
//! on HTTP 200, logging `http ok NAME: BODY`.
use syncplane_sdk::http::Request;
use syncplane_sdk::prelude::*;
use syncplane_test_guests::Target;

struct Step;
impl SyncStep for Step {
    type Model = Target;
    fn sync_record(o: &Object<Target>) -> StepResult {
        let url = syncplane_sdk::require_config("url")?;
        let response = Request::get(format!("{url}/ok"))
            .send()?
            .error_for_status()?;
        log::info!("http ok {}: {}", o.name, response.text()?.trim());
        Ok(())
    }
}
export_sync_step!(Step);
