//! `GET /ui/m/<Model>/<id>`: one object, its fields, a status panel
//! (codes and messages, enacted/updated/policed, next retry, failures) and
//! its links out and in.

use axum::extract::{Query, State};
use axum::response::Html;
use serde::Serialize;
use serde_json::{Value, json};
use syncplane_api::AppState;
use syncplane_core::{Object, field};

use crate::error::GuiError;
use crate::modelview::{ModelView, Role, model_view};
use crate::paths::ObjectPath;
use crate::session::Viewer;
use crate::values::{self, DETAIL_CUT, Shown};
use crate::{nav, status, templates};

/// How many links of a many-to-many field a detail page shows before
/// folding the rest away.
const LINKS_SHOWN: usize = 50;

/// One field of the detail page.
#[derive(Debug, Serialize)]
struct Row {
    label: String,
    value: Shown,
    href: Option<String>,
    help_text: String,
    feedback: bool,
    secret: bool,
    /// For a many-to-many link: each object, with its page; the first
    /// [`LINKS_SHOWN`] of them.
    links: Vec<(i64, String)>,
    /// The links beyond the first [`LINKS_SHOWN`], folded away
    /// (`<details>`) so a page with thousands stays readable.
    more_links: Vec<(i64, String)>,
}

/// A link to related objects.
#[derive(Debug, Serialize)]
struct Related {
    label: String,
    href: String,
}

/// The object `id` of `model`, as `viewer` may read it.
///
/// # Errors
///
/// [`GuiError::NotFound`] for an object that does not exist, is of
/// another model, or that the user may not read (the same answer, as REST).
pub(crate) async fn readable(
    state: &AppState,
    viewer: &Viewer,
    view: &ModelView,
    id: i64,
) -> Result<Object, GuiError> {
    let core = state.host.core();
    match core.get_as(&viewer.user.principal(), id).await? {
        Some(object) if core.registry().schema().is_a(&object.model, &view.def.name) => Ok(object),
        _ => Err(GuiError::NotFound(format!(
            "{} {id} does not exist",
            view.def.name
        ))),
    }
}

/// Why `object` cannot be changed through the GUI, if it cannot.
pub(crate) fn write_protected(object: &Object) -> Option<String> {
    object.flag(field::WRITE_PROTECT).then(|| {
        format!(
            "{} {} is write-protected: it cannot be changed or deleted through the API or this page; its synchronizer still may",
            object.model, object.id
        )
    })
}

/// The status panel's values.
fn panel(object: &Object) -> Value {
    let time = |name: &str| values::time(object.fields.get(name));
    let next_retry = object
        .sync
        .next_retry_ms
        .and_then(|ms| values::time_secs(ms as f64 / 1000.0));
    json!({
        "status": status::of(object, DETAIL_CUT),
        "backend_code": object.fields.get(field::BACKEND_CODE),
        "policy_code": object.fields.get(field::POLICY_CODE),
        "policy_status": values::show(object.fields.get(field::POLICY_STATUS), DETAIL_CUT),
        "created": time(field::CREATED),
        "updated": time(field::UPDATED),
        "enacted": time(field::ENACTED),
        "policed": time(field::POLICED),
        "next_retry": next_retry,
        "failures": object.sync.failures,
        "pending": object.sync.is_dirty(),
        "deleted": object.is_deleted(),
        "no_sync": object.flag(field::NO_SYNC),
        "lazy_blocked": object.flag(field::LAZY_BLOCKED),
    })
}

/// `?saved=1` after a save.
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct Notice {
    #[serde(default)]
    saved: Option<String>,
}

/// `GET /ui/m/<Model>/<id>`.
pub(crate) async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    ObjectPath { model, id }: ObjectPath,
    Query(notice): Query<Notice>,
) -> Result<Html<String>, GuiError> {
    let view = model_view(&state, &model)?;
    let object = readable(&state, &viewer, &view, id).await?;
    let rows: Vec<Row> = view
        .fields
        .iter()
        .filter(|f| f.role != Role::Bookkeeping)
        .map(|f| {
            let value = object.fields.get(&f.name);
            Row {
                label: f.label.clone(),
                value: if f.secret {
                    values::show(None, DETAIL_CUT)
                } else {
                    values::show(value, DETAIL_CUT)
                },
                href: match (&f.link_model, value.and_then(Value::as_i64)) {
                    (Some(target), Some(id)) => Some(format!("/ui/m/{target}/{id}")),
                    _ => None,
                },
                help_text: f.help_text.clone(),
                feedback: f.role == Role::Feedback,
                secret: f.secret,
                links: Vec::new(),
                more_links: match (f.widget, &f.link_model, value) {
                    ("many", Some(target), Some(Value::Array(ids))) => ids
                        .iter()
                        .filter_map(Value::as_i64)
                        .map(|id| (id, format!("/ui/m/{target}/{id}")))
                        .collect(),
                    _ => Vec::new(),
                },
            }
        })
        .map(|mut row| {
            let rest = row
                .more_links
                .split_off(row.more_links.len().min(LINKS_SHOWN));
            row.links = std::mem::replace(&mut row.more_links, rest);
            row
        })
        .collect();
    let related: Vec<Related> = view
        .def
        .relations
        .iter()
        .filter(|r| r.kind == "onetomany")
        .map(|r| {
            let mut query = form_urlencoded::Serializer::new(String::new());
            query.append_pair(&r.on_field, &id.to_string());
            Related {
                label: format!("{} (by {})", r.model, r.on_field),
                href: format!("/ui/m/{}?{}", r.model, query.finish()),
            }
        })
        .collect();
    let context = json!({
        "layout": nav::layout(&state, &viewer, &model, Some(&model), Some(id)),
        "model": view.def,
        "object": { "id": object.id, "model": object.model },
        "rows": rows,
        "panel": panel(&object),
        "related": related,
        "write_protected": write_protected(&object),
        "saved": notice.saved.is_some(),
    });
    templates::render("detail.html", &context)
}
