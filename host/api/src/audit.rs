//! `GET /syncplane/v1/audit`: the audit log, for admins.

use axum::Json;
use axum::extract::{Query, State};
use serde::Deserialize;
use serde_json::{Value, json};
use syncplane_core::AuditQuery;

use crate::AppState;
use crate::auth::User;
use crate::error::ApiError;

/// The query string: `model`, `user` (an e-mail, or a principal as the log
/// writes it: `service NAME step STEP`), `since` (seconds since the epoch),
/// `limit`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditParams {
    model: Option<String>,
    user: Option<String>,
    since: Option<f64>,
    limit: Option<u32>,
}

/// Audit entries, oldest first: `{"items": [...]}`.
pub async fn read(
    State(state): State<AppState>,
    user: User,
    Query(params): Query<AuditParams>,
) -> Result<Json<Value>, ApiError> {
    user.require_admin("read the audit log")?;
    let query = AuditQuery {
        model: params.model,
        principal: params.user,
        since: params.since,
        limit: params.limit,
    };
    let items = state.host.core().audit_log(&query).await?;
    Ok(Json(json!({ "items": items })))
}
