//! XOS's `service modeldefs`: `ListModelDefs`, what REST's
//! `GET /xosapi/v1/modeldefs` answers, as messages.

use prost_reflect::{DeserializeOptions, DynamicMessage};
use tonic::{Request, Status};

use crate::service::Call;

/// `ListModelDefs(Empty) returns (ModelDefs)` for any signed-in user.
pub(crate) async fn call(
    call: &Call,
    request: Request<DynamicMessage>,
) -> Result<DynamicMessage, Status> {
    call.user(&request).await?;
    let registry = call.service.state.host.core().registry();
    let items = syncplane_core::modeldefs(&registry);
    let json = serde_json::json!({ "items": items });
    // The core's definitions carry a little more than XOS's messages
    // (`help_text`): the rest is left out.
    let options = DeserializeOptions::new().deny_unknown_fields(false);
    DynamicMessage::deserialize_with_options(call.method.output(), json, &options)
        .map_err(|e| Status::internal(format!("model definitions as messages: {e}")))
}
