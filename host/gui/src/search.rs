//! `GET /ui/m/<Model>/search?q=...`: up to 20 objects of a model the user
//! may read, for the form script to offer when a link is picked (a link is
//! never a drop-down of every object). `q` is an id, or part of the
//! model's label field (the first of `name`, `email`, `username` it has;
//! `__icontains`). Answers
//! `{"items": [{"id", "label"}]}`; the script shows labels as text.

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::{Value, json};
use syncplane_api::AppState;

use crate::error::GuiError;
use crate::modelview::model_view;
use crate::session::Viewer;
use crate::values::{LIST_CUT, cut};

/// The fields that name an object, in order of preference.
const LABEL_FIELDS: &[&str] = &["name", "email", "username"];

/// The most objects one search answers.
const MAX_RESULTS: u32 = 20;

/// The query of a search.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct SearchQuery {
    #[serde(default)]
    q: String,
}

/// `GET /ui/m/<Model>/search`.
pub(crate) async fn search(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(model): Path<String>,
    Query(query): Query<SearchQuery>,
) -> Result<Json<Value>, GuiError> {
    let view = model_view(&state, &model)?;
    let label_field = LABEL_FIELDS
        .iter()
        .find(|name| view.fields.iter().any(|f| f.name == **name && !f.secret))
        .copied();
    let text = query.q.trim();
    let mut pairs = vec![("page_size".to_owned(), MAX_RESULTS.to_string())];
    if text.parse::<i64>().is_ok() {
        pairs.push(("id".to_owned(), text.to_owned()));
    } else if let Some(field) = label_field
        && !text.is_empty()
    {
        pairs.push((format!("{field}__icontains"), text.to_owned()));
        pairs.push(("ordering".to_owned(), field.to_owned()));
    }
    let core = state.host.core();
    let parsed = syncplane_core::Query::parse(&core.registry(), &model, &pairs)
        .map_err(|e| GuiError::BadRequest(e.to_string()))?;
    let listing = core
        .query_as(&viewer.user.principal(), &model, &parsed)
        .await?;
    let items: Vec<Value> = listing
        .objects
        .iter()
        .map(|o| {
            let label = label_field
                .and_then(|field| o.str_field(field))
                .map_or_else(
                    || format!("{} {}", o.model, o.id),
                    |n| cut(n, LIST_CUT).text,
                );
            json!({ "id": o.id, "label": label })
        })
        .collect();
    Ok(Json(json!({ "items": items })))
}
