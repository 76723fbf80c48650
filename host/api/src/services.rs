//! Service onboarding: `POST /syncplane/v1/services` installs a package.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};
use syncplane_platform::ServicePackage;

use crate::AppState;
use crate::auth::User;
use crate::error::ApiError;

/// Installs or upgrades a service package (admins only).
pub async fn install(
    State(state): State<AppState>,
    user: User,
    Json(package): Json<ServicePackage>,
) -> Result<Json<Value>, ApiError> {
    if !user.is_admin() {
        return Err(ApiError::Forbidden(
            "only administrators may install services".into(),
        ));
    }
    let installed = state.host.install(package).await?;
    Ok(Json(json!(installed)))
}

/// Lists installed services.
pub async fn list(State(state): State<AppState>, _user: User) -> Json<Value> {
    Json(json!({ "items": state.host.services() }))
}
