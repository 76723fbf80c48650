//! `GET /xosapi/v1/modeldefs`: every model with its fields, as XOS's GUI
//! reads them (see `syncplane_core::modeldefs`).

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::User;
use crate::error::ApiError;

/// `{"items": [model definition, ...]}` for any signed-in user: model
/// definitions hold no objects.
pub async fn list(State(state): State<AppState>, _user: User) -> Result<Json<Value>, ApiError> {
    let defs = syncplane_core::modeldefs(&state.host.core().registry());
    Ok(Json(json!({ "items": defs })))
}
