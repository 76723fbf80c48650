//! The invocation history: what each step and policy invocation did
//! (time, outcome, trap cause, duration, message, the guest's first log
//! lines), newest first, filtered by outcome and paged by position.
//!
//! - `GET /ui/m/<Model>/<id>/history`: one object's invocations, with its
//!   first and latest failure above them (kept however old), for whoever
//!   may read the object.
//! - `GET /ui/history?service=S&step=T`: a step's (or a service's, or the
//!   host's) invocations across objects, for administrators.
//!
//! Both take `outcome` (`done`, `deferred`, `failed`, `trap`, or
//! `problems` for the last three) and `before` (the position to page
//! from); both update live, as other pages do.

use axum::extract::{Query, State};
use axum::response::Html;
use serde::{Deserialize, Serialize};
use serde_json::json;
use syncplane_api::AppState;
use syncplane_core::{HistoryEntry, HistoryQuery};

use crate::error::GuiError;
use crate::modelview::model_view;
use crate::paths::ObjectPath;
use crate::session::Viewer;
use crate::values::{self, DETAIL_CUT, Shown};
use crate::{detail, nav, templates};

/// Rows per page.
const PAGE: u32 = 50;

/// The outcomes the filter offers, with how each is shown: a symbol and a
/// word, so the outcome never depends on colour.
const OUTCOMES: &[(&str, &str, &str)] = &[
    ("done", "\u{2714}", "Done"),
    ("deferred", "\u{23f8}", "Deferred"),
    ("failed", "\u{26a0}", "Failed"),
    ("trap", "\u{2716}", "Trap"),
];

/// The URL's parameters.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Params {
    #[serde(default)]
    outcome: Option<String>,
    #[serde(default)]
    before: Option<String>,
    #[serde(default)]
    service: Option<String>,
    #[serde(default)]
    step: Option<String>,
}

/// A parameter's value, unless absent or empty (as a form sends an unset
/// one).
fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.is_empty())
}

impl Params {
    /// The store query these parameters ask for (one row more than a page,
    /// to know whether there is a next one).
    fn query(&self) -> Result<HistoryQuery, GuiError> {
        let outcomes = match self.outcome.as_deref().unwrap_or("") {
            "" => Vec::new(),
            "problems" => vec!["deferred".into(), "failed".into(), "trap".into()],
            one if OUTCOMES.iter().any(|(name, ..)| *name == one) => vec![one.to_owned()],
            other => {
                return Err(GuiError::BadRequest(format!(
                    "outcome `{other}` is none of done, deferred, failed, trap, problems"
                )));
            }
        };
        let before = match self.before.as_deref().unwrap_or("") {
            "" => None,
            text => Some(text.parse::<i64>().map_err(|_| {
                GuiError::BadRequest(format!("before `{text}` is not a position (a number)"))
            })?),
        };
        Ok(HistoryQuery {
            object: None,
            service: given(&self.service).map(str::to_owned),
            step: given(&self.step).map(str::to_owned),
            outcomes,
            before,
            limit: PAGE + 1,
        })
    }
}

/// One invocation as a page shows it.
#[derive(Debug, Serialize)]
struct Run {
    id: i64,
    at: String,
    object: i64,
    object_href: String,
    model: String,
    service: String,
    step: String,
    step_href: String,
    kind: String,
    outcome: String,
    icon: &'static str,
    label: &'static str,
    cause: Option<String>,
    duration: String,
    message: Shown,
    logs: Vec<Shown>,
}

fn run(entry: &HistoryEntry) -> Run {
    let row = &entry.row;
    let (icon, label) = OUTCOMES
        .iter()
        .find(|(name, ..)| *name == row.outcome)
        .map_or(("?", "Unknown"), |(_, icon, label)| (*icon, *label));
    let mut step = form_urlencoded::Serializer::new(String::new());
    step.append_pair("service", &row.service)
        .append_pair("step", &row.step);
    #[allow(
        clippy::cast_precision_loss,
        reason = "a time in milliseconds and a duration are far below 2^52"
    )]
    let (secs, ms) = (row.at_ms as f64 / 1000.0, row.duration_us as f64 / 1000.0);
    Run {
        id: entry.id,
        at: values::time_secs(secs).unwrap_or_default(),
        object: row.object,
        object_href: format!("/ui/m/{}/{}", row.model, row.object),
        model: row.model.clone(),
        service: row.service.clone(),
        step: row.step.clone(),
        step_href: format!("/ui/history?{}", step.finish()),
        kind: row.kind.clone(),
        outcome: row.outcome.clone(),
        icon,
        label,
        cause: row.cause.clone(),
        duration: format!("{ms:.1} ms"),
        message: values::cut(&row.message, DETAIL_CUT),
        logs: row
            .logs
            .iter()
            .map(|l| values::cut(l, DETAIL_CUT))
            .collect(),
    }
}

/// The rows of a page and the link to the next one, if any.
fn page_of(entries: &[HistoryEntry], params: &Params, base: &str) -> (Vec<Run>, Option<String>) {
    let shown = &entries[..entries.len().min(PAGE as usize)];
    let next = (entries.len() > PAGE as usize)
        .then(|| shown.last().map(|e| e.id))
        .flatten()
        .map(|last| {
            let mut query = form_urlencoded::Serializer::new(String::new());
            for (name, value) in [
                ("service", &params.service),
                ("step", &params.step),
                ("outcome", &params.outcome),
            ] {
                if let Some(value) = given(value) {
                    query.append_pair(name, value);
                }
            }
            query.append_pair("before", &last.to_string());
            format!("{base}?{}", query.finish())
        });
    (shown.iter().map(run).collect(), next)
}

/// The outcome filter's choices, the current one marked.
fn filters(params: &Params) -> serde_json::Value {
    let current = params.outcome.as_deref().unwrap_or("");
    let mut choices = vec![("", "All"), ("problems", "Not done")];
    choices.extend(OUTCOMES.iter().map(|(name, _, label)| (*name, *label)));
    choices
        .into_iter()
        .map(
            |(value, label)| json!({ "value": value, "label": label, "current": value == current }),
        )
        .collect()
}

/// `GET /ui/m/<Model>/<id>/history`.
pub(crate) async fn object(
    State(state): State<AppState>,
    viewer: Viewer,
    ObjectPath { model, id }: ObjectPath,
    Query(params): Query<Params>,
) -> Result<Html<String>, GuiError> {
    let view = model_view(&state, &model)?;
    let object = detail::readable(&state, &viewer, &view, id).await?;
    let history = state
        .host
        .core()
        .object_history_as(&viewer.user.principal(), id, &params.query()?)
        .await?;
    let base = format!("/ui/m/{model}/{id}/history");
    let (runs, next) = page_of(&history.entries, &params, &base);
    let failures = history
        .failures
        .map(|(first, latest)| json!({ "first": run(&first), "latest": run(&latest), "same": first.id == latest.id }));
    let context = json!({
        "layout": nav::layout(&state, &viewer, &model, Some(&model), Some(id)),
        "title": format!("History of {} {}", object.model, object.id),
        "model": view.def,
        "object": { "id": object.id, "model": object.model },
        "base": base,
        "runs": runs,
        "next": next,
        "failures": failures,
        "filters": filters(&params),
        "filtered": given(&params.outcome).is_some(),
        "per_object": true,
        "hidden": [],
    });
    templates::render("runs.html", &context)
}

/// `GET /ui/history`.
pub(crate) async fn steps(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(params): Query<Params>,
) -> Result<Html<String>, GuiError> {
    viewer.user.require_admin("read the history of steps")?;
    let entries = state
        .host
        .core()
        .history_as(&viewer.user.principal(), &params.query()?)
        .await?;
    let base = "/ui/history";
    let (runs, next) = page_of(&entries, &params, base);
    let title = match (given(&params.service), given(&params.step)) {
        (Some(service), Some(step)) => format!("History of step {step} of {service}"),
        (Some(service), None) => format!("History of service {service}"),
        _ => "History of every step".to_owned(),
    };
    let hidden: Vec<(&str, &str)> = [("service", &params.service), ("step", &params.step)]
        .into_iter()
        .filter_map(|(name, value)| given(value).map(|v| (name, v)))
        .collect();
    let context = json!({
        "layout": nav::layout(&state, &viewer, "history", None, None),
        "title": title,
        "base": base,
        "runs": runs,
        "next": next,
        "failures": null,
        "filters": filters(&params),
        "filtered": given(&params.outcome).is_some(),
        "per_object": false,
        "hidden": hidden,
    });
    templates::render("runs.html", &context)
}
