//! Administrators' actions on an installed service, from the services
//! page: its lifecycle history, a rollback to the version before, and an
//! uninstall (keeping or deleting its objects). An upgrade is an install
//! of the newer package (`/ui/services/install`), whose review shows what
//! changes from the installed version.
//!
//! Each action first shows what it would do: the rollback's plan (the one
//! `service rollback --dry-run` prints), or the objects an uninstall would
//! delete. It runs only on a confirmation carrying the CSRF token, through
//! the same platform code as the CLI and REST, which checks everything
//! again; a refusal (objects left, a dependent service, an incompatible
//! rollback) comes back on the same page, saying why, and nothing changes.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::{Value, json};
use syncplane_api::AppState;
use syncplane_platform::RollbackOutcome;

use crate::error::GuiError;
use crate::session::Viewer;
use crate::{nav, templates, values};

/// What the page shows: one of `history`, `rollback` and `uninstall`.
fn page(
    state: &AppState,
    viewer: &Viewer,
    status: StatusCode,
    name: &str,
    view: Value,
) -> Result<Response, GuiError> {
    let context = json!({
        "layout": nav::layout(state, viewer, "services", None, None),
        "name": name,
        "view": view,
    });
    Ok((status, templates::render("manage.html", &context)?).into_response())
}

fn require_manager(viewer: &Viewer, what: &str) -> Result<(), GuiError> {
    Ok(viewer.user.require_writing_admin(what)?)
}

/// The fields of a confirmation form, once its CSRF token and the
/// viewer's right to `what` are checked.
fn confirmed(viewer: &Viewer, body: &[u8], what: &str) -> Result<Vec<(String, String)>, GuiError> {
    let form: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
    viewer.check_csrf(&form)?;
    require_manager(viewer, what)?;
    Ok(form)
}

/// `GET /ui/services/{name}/history`: every install, upgrade, rollback and
/// uninstall of the service, newest first (administrators).
pub(crate) async fn history(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(name): Path<String>,
) -> Result<Response, GuiError> {
    viewer.user.require_admin("read service history")?;
    let entries: Vec<Value> = state
        .host
        .history(&name)
        .await?
        .into_iter()
        .rev()
        .map(|e| {
            json!({
                "at": values::time_secs(e.time),
                "action": e.action,
                "version": e.version,
                "by": e.by,
                "digest": e.digest,
                "signers": e.signers,
                "rule": e.rule,
            })
        })
        .collect();
    let view = json!({ "kind": "history", "entries": entries });
    page(&state, &viewer, StatusCode::OK, &name, view)
}

/// The rollback review: its plan, or why it cannot be done.
async fn rollback_view(state: &AppState, name: &str, error: Option<String>) -> Value {
    match state.host.rollback(name, true, None).await {
        Ok(RollbackOutcome::Planned(plan)) => {
            let allowed = plan.blockers.is_empty() && error.is_none();
            json!({ "kind": "rollback", "plan": plan, "allowed": allowed, "error": error })
        }
        Ok(RollbackOutcome::Done(_)) => {
            json!({ "kind": "rollback", "allowed": false, "error": "unexpected: a dry run changed the service" })
        }
        Err(e) => {
            json!({ "kind": "rollback", "allowed": false, "error": error.unwrap_or_else(|| e.to_string()) })
        }
    }
}

/// `GET /ui/services/{name}/rollback`: what returning to the version
/// before would change.
pub(crate) async fn rollback_review(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(name): Path<String>,
) -> Result<Response, GuiError> {
    require_manager(&viewer, "roll back services")?;
    let view = rollback_view(&state, &name, None).await;
    page(&state, &viewer, StatusCode::OK, &name, view)
}

/// `POST /ui/services/{name}/rollback`: rolls back, then shows the
/// services page.
pub(crate) async fn rollback(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, GuiError> {
    confirmed(&viewer, &body, "roll back services")?;
    match state
        .host
        .rollback(&name, false, Some(viewer.user.describe()))
        .await
    {
        Ok(_) => Ok(back_to_services(&name)),
        Err(e) => {
            let view = rollback_view(&state, &name, Some(e.to_string())).await;
            page(&state, &viewer, StatusCode::CONFLICT, &name, view)
        }
    }
}

/// The uninstall review: the objects that would go with it.
async fn uninstall_view(
    state: &AppState,
    name: &str,
    error: Option<String>,
) -> Result<Value, GuiError> {
    let details = state.host.service_details(name).await?;
    let held: Vec<Value> = details
        .objects
        .iter()
        .filter(|c| c.objects > 0)
        .map(|c| json!({ "model": c.model, "objects": c.objects }))
        .collect();
    Ok(json!({
        "kind": "uninstall",
        "version": details.service.version,
        "held": held,
        "error": error,
    }))
}

/// `GET /ui/services/{name}/uninstall`: what uninstalling would remove.
pub(crate) async fn uninstall_review(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(name): Path<String>,
) -> Result<Response, GuiError> {
    require_manager(&viewer, "uninstall services")?;
    let view = uninstall_view(&state, &name, None).await?;
    page(&state, &viewer, StatusCode::OK, &name, view)
}

/// `POST /ui/services/{name}/uninstall` (`purge=1` deletes its objects
/// first, running their delete steps): uninstalls, then shows the
/// services page.
pub(crate) async fn uninstall(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, GuiError> {
    let form = confirmed(&viewer, &body, "uninstall services")?;
    let purge = form.iter().any(|(k, v)| k == "purge" && v == "1");
    match state
        .host
        .uninstall(&name, purge, Some(viewer.user.describe()))
        .await
    {
        Ok(_) => Ok(Redirect::to("/ui/services").into_response()),
        Err(syncplane_platform::Error::UnknownService(_)) => Err(GuiError::NotFound(format!(
            "no service `{name}` is installed"
        ))),
        Err(e) => {
            let view = uninstall_view(&state, &name, Some(e.to_string())).await?;
            page(&state, &viewer, StatusCode::CONFLICT, &name, view)
        }
    }
}

/// A redirect to the services page, at `name`'s section.
pub(crate) fn back_to_services(name: &str) -> Response {
    let anchor: String = form_urlencoded::byte_serialize(name.as_bytes()).collect();
    Redirect::to(&format!("/ui/services#service-{anchor}")).into_response()
}
