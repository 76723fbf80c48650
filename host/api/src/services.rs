//! Service onboarding (`POST /syncplane/v1/services` installs a package),
//! synchronizer status and metrics.

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

/// What the synchronizer is doing, per service and step.
pub async fn status(State(state): State<AppState>, _user: User) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!(state.host.status().await?)))
}

/// Engine metrics in the Prometheus text format. Unauthenticated, as
/// scrapers expect; it names services and steps, never object data.
pub async fn metrics(State(state): State<AppState>) -> impl axum::response::IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.host.engine().stats().prometheus_text(),
    )
}

/// What `POST /syncplane/v1/events/{topic}` takes.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishBody {
    /// The event's key.
    #[serde(default)]
    pub key: Option<String>,
    /// The payload, as text.
    pub value: String,
}

/// Publishes an event on the in-process bus.
pub async fn publish(
    State(state): State<AppState>,
    _user: User,
    axum::extract::Path(topic): axum::extract::Path<String>,
    Json(body): Json<PublishBody>,
) -> Json<Value> {
    let subscribers = state.host.publish(&topic, body.key, body.value);
    Json(json!({ "topic": topic, "subscribers": subscribers }))
}
