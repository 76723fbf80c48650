//! Creating, editing and deleting objects through forms: every save goes
//! through the core's write path as the signed-in user, exactly as REST's
//! (`create_as`, `update_as`, `delete_as`), so the same validation runs;
//! a refused save shows each error at its field with REST's message and
//! writes nothing.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::{Map, Value, json};
use syncplane_api::AppState;
use syncplane_core::DeleteOptions;

use crate::detail::{readable, write_protected};
use crate::error::GuiError;
use crate::form::{self, Source};
use crate::modelview::{ModelView, model_view};
use crate::paths::ObjectPath;
use crate::session::{Viewer, form_pairs, value};
use crate::{nav, templates};

/// The hidden field holding the change sequence an edit form was made
/// from, so a stale save is refused instead of overwriting.
const VERSION: &str = "_version";

/// Refuses read-only users before a form is offered.
fn require_writer(viewer: &Viewer) -> Result<(), GuiError> {
    if viewer.may_write() {
        Ok(())
    } else {
        Err(GuiError::Forbidden(
            "read-only users may not change objects".into(),
        ))
    }
}

/// What a refused save shows.
struct Refusal {
    /// Errors by field name.
    fields: BTreeMap<String, String>,
    /// An error about no one field.
    form: Option<String>,
}

impl Refusal {
    fn of(view: &ModelView, error: syncplane_core::Error) -> Result<Refusal, GuiError> {
        if let Some((field, message)) = form::field_error(view, &error) {
            return Ok(Refusal {
                fields: BTreeMap::from([(field, message)]),
                form: None,
            });
        }
        match GuiError::from(error) {
            GuiError::Internal(detail) => Err(GuiError::Internal(detail)),
            other => Ok(Refusal {
                fields: BTreeMap::new(),
                form: Some(other.to_string()),
            }),
        }
    }

    fn message(message: String) -> Refusal {
        Refusal {
            fields: BTreeMap::new(),
            form: Some(message),
        }
    }
}

/// Renders the form of `view`: new when `object` is `None`.
fn render_form(
    state: &AppState,
    viewer: &Viewer,
    view: &ModelView,
    object: Option<(i64, &Map<String, Value>, i64)>,
    source: &Source<'_>,
    refusal: Option<&Refusal>,
    status: StatusCode,
) -> Result<Response, GuiError> {
    let empty = BTreeMap::new();
    let inputs = form::inputs(
        view,
        source,
        object.map(|(_, fields, _)| fields),
        refusal.map_or(&empty, |r| &r.fields),
    );
    let model = &view.def.name;
    let action = match object {
        Some((id, _, _)) => format!("/ui/m/{model}/{id}/edit"),
        None => format!("/ui/m/{model}/new"),
    };
    let context = json!({
        "layout": nav::layout(state, viewer, model, Some(model), object.map(|(id, _, _)| id)),
        "model": view.def,
        "id": object.map(|(id, _, _)| id),
        "version": object.map(|(_, _, version)| version),
        "action": action,
        "inputs": inputs,
        "form_error": refusal.and_then(|r| r.form.clone()),
        "error_count": refusal.map_or(0, |r| r.fields.len() + usize::from(r.form.is_some())),
    });
    let html = templates::render("form.html", &context)?;
    Ok((status, html).into_response())
}

/// `GET /ui/m/<Model>/new`.
pub(crate) async fn new_form(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(model): Path<String>,
) -> Result<Response, GuiError> {
    require_writer(&viewer)?;
    let view = model_view(&state, &model)?;
    render_form(
        &state,
        &viewer,
        &view,
        None,
        &Source::Defaults,
        None,
        StatusCode::OK,
    )
}

/// `POST /ui/m/<Model>/new`: creates the object, then shows it.
pub(crate) async fn create(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(model): Path<String>,
    body: Bytes,
) -> Result<Response, GuiError> {
    let pairs = form_pairs(&body);
    viewer.check_csrf(&pairs)?;
    require_writer(&viewer)?;
    let view = model_view(&state, &model)?;
    let input = form::object(&view, &pairs, true);
    match state
        .host
        .core()
        .create_as(&viewer.user.principal(), &model, input)
        .await
    {
        Ok(object) => {
            Ok(Redirect::to(&format!("/ui/m/{model}/{}?saved=1", object.id)).into_response())
        }
        Err(error) => {
            let refusal = Refusal::of(&view, error)?;
            render_form(
                &state,
                &viewer,
                &view,
                None,
                &Source::Submitted(&pairs),
                Some(&refusal),
                StatusCode::BAD_REQUEST,
            )
        }
    }
}

/// The object `id` of `model` and its model's view, when `viewer` may
/// change it: a writer, who may read it, and it is not write-protected.
async fn changeable(
    state: &AppState,
    viewer: &Viewer,
    model: &str,
    id: i64,
) -> Result<(ModelView, syncplane_core::Object), GuiError> {
    require_writer(viewer)?;
    let view = model_view(state, model)?;
    let object = readable(state, viewer, &view, id).await?;
    if let Some(reason) = write_protected(&object) {
        return Err(GuiError::Forbidden(reason));
    }
    Ok((view, object))
}

/// `GET /ui/m/<Model>/<id>/edit`.
pub(crate) async fn edit_form(
    State(state): State<AppState>,
    viewer: Viewer,
    ObjectPath { model, id }: ObjectPath,
) -> Result<Response, GuiError> {
    let (view, object) = changeable(&state, &viewer, &model, id).await?;
    render_form(
        &state,
        &viewer,
        &view,
        Some((id, &object.fields, object.sync.change_seq)),
        &Source::Object(&object.fields),
        None,
        StatusCode::OK,
    )
}

/// `POST /ui/m/<Model>/<id>/edit`: saves the object, then shows it. A
/// form made from an older version than the object's is refused, naming
/// the conflict, and nothing is written.
///
/// # Caveats
///
/// The version is checked, then the save runs in a transaction of its
/// own: two saves of the same version at the same instant may both pass
/// the check, the later winning (the core's update takes no
/// precondition yet).
pub(crate) async fn update(
    State(state): State<AppState>,
    viewer: Viewer,
    ObjectPath { model, id }: ObjectPath,
    body: Bytes,
) -> Result<Response, GuiError> {
    let pairs = form_pairs(&body);
    viewer.check_csrf(&pairs)?;
    let (view, object) = changeable(&state, &viewer, &model, id).await?;
    let current = (id, &object.fields, object.sync.change_seq);
    let sent_version = value(&pairs, VERSION).and_then(|v| v.parse::<i64>().ok());
    if sent_version != Some(object.sync.change_seq) {
        let refusal = Refusal::message(format!(
            "{model} {id} was changed by someone else since this form was opened: nothing was saved. \
             Review its current values below and save again."
        ));
        return render_form(
            &state,
            &viewer,
            &view,
            Some(current),
            &Source::Object(&object.fields),
            Some(&refusal),
            StatusCode::CONFLICT,
        );
    }
    let input = form::object(&view, &pairs, false);
    match state
        .host
        .core()
        .update_as(&viewer.user.principal(), id, input)
        .await
    {
        Ok(_) => Ok(Redirect::to(&format!("/ui/m/{model}/{id}?saved=1")).into_response()),
        Err(error) => {
            let refusal = Refusal::of(&view, error)?;
            render_form(
                &state,
                &viewer,
                &view,
                Some(current),
                &Source::Submitted(&pairs),
                Some(&refusal),
                StatusCode::BAD_REQUEST,
            )
        }
    }
}

/// `GET /ui/m/<Model>/<id>/delete`: what deleting would cascade to (a dry
/// run of the same deletion), and a button to confirm.
pub(crate) async fn delete_form(
    State(state): State<AppState>,
    viewer: Viewer,
    ObjectPath { model, id }: ObjectPath,
) -> Result<Response, GuiError> {
    let (view, object) = changeable(&state, &viewer, &model, id).await?;
    let (cascaded, refused) = match state
        .host
        .core()
        .delete_as(
            &viewer.user.principal(),
            id,
            DeleteOptions { dry_run: true },
        )
        .await
    {
        Ok(deletion) => (json!(deletion.cascaded), None),
        Err(error) => match GuiError::from(error) {
            GuiError::Internal(detail) => return Err(GuiError::Internal(detail)),
            other => (json!([]), Some(other.to_string())),
        },
    };
    let context = json!({
        "layout": nav::layout(&state, &viewer, &model, Some(&model), Some(id)),
        "model": view.def,
        "id": id,
        "name": object.str_field("name"),
        "cascaded": cascaded,
        "refused": refused,
    });
    Ok(templates::render("delete.html", &context)?.into_response())
}

/// `POST /ui/m/<Model>/<id>/delete`: marks the object deleted (its
/// synchronizer tears it down), then shows the list.
pub(crate) async fn delete(
    State(state): State<AppState>,
    viewer: Viewer,
    ObjectPath { model, id }: ObjectPath,
    body: Bytes,
) -> Result<Response, GuiError> {
    let pairs = form_pairs(&body);
    viewer.check_csrf(&pairs)?;
    changeable(&state, &viewer, &model, id).await?;
    state
        .host
        .core()
        .delete_as(&viewer.user.principal(), id, DeleteOptions::default())
        .await?;
    Ok(Redirect::to(&format!("/ui/m/{model}?deleted={id}")).into_response())
}
