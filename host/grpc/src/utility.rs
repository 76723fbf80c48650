//! XOS's `service utility` (`Login`, `Logout`, `NoOp`,
//! `AuthenticatedNoOp`) and `service dynamicload`
//! (`GetConvenienceMethods`): what XOS's client calls besides the models.

use prost_reflect::{DynamicMessage, Value};
use syncplane_api::Credential;
use tonic::{Request, Status};

use crate::error::status;
use crate::service::Call;

fn text(message: &DynamicMessage, name: &str) -> String {
    match message.get_field_by_name(name).as_deref() {
        Some(Value::String(s)) => s.clone(),
        _ => String::new(),
    }
}

/// Answers one call of `service utility`.
pub(crate) async fn call(
    call: &Call,
    request: Request<DynamicMessage>,
) -> Result<DynamicMessage, Status> {
    let output = call.method.output();
    match call.method.name() {
        "NoOp" => Ok(DynamicMessage::new(output)),
        "AuthenticatedNoOp" => {
            call.user(&request).await?;
            Ok(DynamicMessage::new(output))
        }
        "Login" => {
            let address = request.remote_addr().map(|a| a.ip());
            let login = request.into_inner();
            let token = syncplane_api::sign_in(
                &call.service.state,
                &text(&login, "username"),
                &text(&login, "password"),
                address,
            )
            .await
            .map_err(status)?;
            let mut answer = DynamicMessage::new(output);
            answer.set_field_by_name("sessionid", Value::String(token.token));
            Ok(answer)
        }
        "Logout" => {
            let user = call.user(&request).await?;
            let Credential::Session(info) = &user.1 else {
                return Err(Status::invalid_argument(
                    "Logout ends a session: call it with the session (x-xossession) from Login",
                ));
            };
            call.service
                .state
                .host
                .core()
                .revoke_token(&user.principal(), user.0.id, &info.id)
                .await
                .map_err(crate::error::core_status)?;
            Ok(DynamicMessage::new(output))
        }
        other => Err(Status::unimplemented(format!(
            "no method `utility/{other}`"
        ))),
    }
}

/// `dynamicload.GetConvenienceMethods`: XOS's client loads the Python
/// files it answers into its ORM. syncplane services bring no Python, so
/// the list is empty; it needs no credentials (XOS's client asks before it
/// has used them).
pub(crate) fn dynamicload(call: &Call) -> Result<DynamicMessage, Status> {
    match call.method.name() {
        "GetConvenienceMethods" => Ok(DynamicMessage::new(call.method.output())),
        other => Err(Status::unimplemented(format!(
            "no method `dynamicload/{other}`"
        ))),
    }
}
