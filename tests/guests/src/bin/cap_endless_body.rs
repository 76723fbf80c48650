//! GETs `<url>/endless` (config `url`), whose body never ends, and reads
//! it all, discarding it as it goes so memory stays flat: only the host's
//! deadline or a body cap of the host stops it.
use syncplane_sdk::http::Request;
use syncplane_sdk::prelude::*;
use syncplane_test_guests::Target;

struct Step;
impl SyncStep for Step {
    type Model = Target;
    fn sync_record(_: &Object<Target>) -> StepResult {
        let url = syncplane_sdk::require_config("url")?;
        let mut response = Request::get(format!("{url}/endless")).send_streaming()?;
        let mut total: u64 = 0;
        loop {
            match response.read_chunk() {
                Ok(Some(chunk)) => total += chunk.len() as u64,
                Ok(None) => {
                    return Err(Failed(format!(
                        "LEAKED: the endless body ended after {total} bytes"
                    )));
                }
                Err(e) => {
                    return Err(Failed(format!(
                        "endless body stopped after {total} bytes: {e}"
                    )));
                }
            }
        }
    }
}
export_sync_step!(Step);
