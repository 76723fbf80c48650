//! `GET /ui/services`: the installed services. Everyone sees name,
//! version, state and when each was installed; administrators also see
//! each service's health with its reason, its grants (hosts, models,
//! config and secret names), its steps (what they observe;
//! invocations, failed, trapped, deferred, running; the last error and
//! when) and the pending, failed and deferred objects per model: last
//! errors may quote any tenant's objects, so REST's status is admins' only
//! too.

use axum::extract::State;
use axum::response::Html;
use serde_json::{Value, json};
use syncplane_api::AppState;
use syncplane_platform::{InstalledService, ServiceStatus};

use crate::error::GuiError;
use crate::session::Viewer;
use crate::values::{self, LIST_CUT};
use crate::{nav, templates};

/// `ok`, `degraded` or `failing`, with the reason.
pub(crate) fn health(service: &ServiceStatus) -> (&'static str, String) {
    let failed: i64 = service.models.iter().map(|m| m.failed).sum();
    let deferred: i64 = service.models.iter().map(|m| m.deferred).sum();
    if failed > 0 {
        let models: Vec<&str> = service
            .models
            .iter()
            .filter(|m| m.failed > 0)
            .map(|m| m.model.as_str())
            .collect();
        return (
            "failing",
            format!("{failed} object(s) failed to sync ({})", models.join(", ")),
        );
    }
    let trapped: u64 = service.steps.iter().map(|s| s.activity.trapped).sum();
    if deferred > 0 || trapped > 0 {
        return (
            "degraded",
            format!("{deferred} object(s) deferred; {trapped} invocation(s) trapped since start"),
        );
    }
    ("ok", "every object is synced or on its way".to_owned())
}

fn details(service: &ServiceStatus) -> Value {
    let (health, reason) = health(service);
    let steps: Vec<Value> = service
        .steps
        .iter()
        .map(|step| {
            let a = &step.activity;
            json!({
                "name": step.name,
                "observes": step.observes.join(", "),
                "invocations": a.invocations,
                "done": a.done,
                "failed": a.failed,
                "trapped": a.trapped,
                "deferred": a.deferred,
                "running": a.running,
                "last_error": a.last_error.as_deref().map(|e| values::cut(e, LIST_CUT * 3)),
                "last_error_at": a
                    .last_error_at_ms
                    .and_then(|ms| values::time_secs(ms as f64 / 1000.0)),
            })
        })
        .collect();
    let models: Vec<Value> = service
        .models
        .iter()
        .map(|m| {
            json!({
                "model": m.model,
                "pending": m.pending,
                "failed": m.failed,
                "deferred": m.deferred,
                "deleted": m.deleted,
                "next_retry": m.next_retry_ms.and_then(|ms| values::time_secs(ms as f64 / 1000.0)),
            })
        })
        .collect();
    json!({
        "health": health,
        "reason": reason,
        "state": service.state,
        "steps": steps,
        "models": models,
    })
}

/// What a service was granted beyond its own models, as `(what, values)`:
/// `outbound_http`, `config`, `secrets` (names, never values),
/// `models.read`, `models.write`.
fn grants(service: &InstalledService) -> Vec<(String, String)> {
    grant_rows(&service.capabilities)
}

/// `capabilities` (a manifest's grants) as `(what, values)` rows.
pub(crate) fn grant_rows(capabilities: &impl serde::Serialize) -> Vec<(String, String)> {
    fn text(value: &Value) -> String {
        match value {
            Value::Array(items) => items.iter().map(text).collect::<Vec<_>>().join(", "),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }
    let mut out = Vec::new();
    // Serialising plain data cannot fail; nothing is shown if it did.
    if let Ok(Value::Object(kinds)) = serde_json::to_value(capabilities) {
        for (kind, value) in kinds {
            match value {
                Value::Object(parts) => {
                    out.extend(
                        parts
                            .iter()
                            .map(|(part, v)| (format!("{kind}.{part}"), text(v))),
                    );
                }
                value => out.push((kind, text(&value))),
            }
        }
    }
    out
}

/// `GET /ui/services`.
pub(crate) async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
) -> Result<Html<String>, GuiError> {
    let status = if viewer.user.is_admin() {
        Some(state.host.status().await?)
    } else {
        None
    };
    let mut installed = state.host.services();
    installed.sort_by(|a, b| a.name.cmp(&b.name));
    let services: Vec<Value> = installed
        .iter()
        .map(|service| {
            let details = status
                .as_ref()
                .and_then(|s| s.services.iter().find(|s| s.name == service.name))
                .map(details);
            let grants = viewer.user.is_admin().then(|| grants(service));
            json!({
                "name": service.name,
                "version": service.version,
                "state": service.state,
                "installed_at": values::time_secs(service.installed_at),
                "previous_version": service.previous_version,
                "models": service.models,
                "details": details,
                "grants": grants,
                "views": nav::views(service),
            })
        })
        .collect();
    let context = json!({
        "layout": nav::layout(&state, &viewer, "services", None, None),
        "services": services,
        "admin": viewer.user.is_admin(),
    });
    templates::render("services.html", &context)
}
