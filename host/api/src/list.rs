//! `GET /xosapi/v1/<app_label>/<plural>`: a page of a collection, in XOS's
//! query conventions (`syncplane_core::Query`): filters such as
//! `?name=x&site_id__in=1,2`, `ordering=-name`, `page`/`page_size`, and
//! the `cursor` of the `next` link.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use serde_json::{Map, Value};
use syncplane_core::{Object, Query, query_parameters};

use crate::AppState;
use crate::auth::User;
use crate::error::ApiError;
use crate::rest::model_for;

/// `GET` a collection: `{"items": [...], "next": ...}`, the objects of the
/// model and of models that inherit from it that the caller may read,
/// filtered, ordered (by id unless `ordering` says otherwise) and a page
/// at a time (100 unless `page_size` says otherwise). `next` is the path
/// and query of the next page (the same parameters with a `cursor`), or
/// `null` after the last page. No total count is given: counting the
/// objects a caller may read means deciding the policy of each.
pub async fn list(
    State(state): State<AppState>,
    user: User,
    Path((app, collection)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let model = model_for(&state, &app, &collection)?;
    let pairs: Vec<(String, String)> =
        form_urlencoded::parse(raw.as_deref().unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let core = state.host.core();
    let query = Query::parse(&core.registry(), &model, &pairs)?;
    let listing = core.query_as(&user.principal(), &model, &query).await?;
    let next = listing
        .next
        .map(|cursor| next_link(&format!("/xosapi/v1/{app}/{collection}"), &pairs, &cursor));
    let items: Vec<Value> = listing.objects.into_iter().map(Object::into_json).collect();
    // Built by moving the items in: `json!` would serialise them again into
    // a copy, which cost as much as encoding the answer.
    let mut body = Map::with_capacity(2);
    body.insert("items".into(), Value::Array(items));
    body.insert("next".into(), next.map_or(Value::Null, Value::String));
    Ok(Json(Value::Object(body)))
}

/// `path` with the request's parameters, less `page` and `cursor`, and the
/// next page's `cursor`.
fn next_link(path: &str, pairs: &[(String, String)], cursor: &str) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (key, value) in pairs {
        if key != query_parameters::PAGE && key != query_parameters::CURSOR {
            query.append_pair(key, value);
        }
    }
    query.append_pair(query_parameters::CURSOR, cursor);
    format!("{path}?{}", query.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_link_keeps_the_query_and_replaces_the_page_by_the_cursor() {
        let pairs = [
            ("name__in".to_owned(), "a b,c&d".to_owned()),
            ("page".to_owned(), "3".to_owned()),
            ("page_size".to_owned(), "10".to_owned()),
            ("cursor".to_owned(), "old".to_owned()),
        ];
        assert_eq!(
            next_link("/xosapi/v1/core/sites", &pairs, "eyJv"),
            "/xosapi/v1/core/sites?name__in=a+b%2Cc%26d&page_size=10&cursor=eyJv"
        );
    }
}
