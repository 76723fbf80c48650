//! `GET /ui/m/<Model>`: one page of a model's objects, paged, filtered and
//! ordered by the server (the core's [`Query`], as REST's lists), with the
//! whole view in the URL so it can be shared.
//!
//! The GUI's own parameters: `f`, `op` and `q` (a filter picked in the
//! form: field, lookup, value) and `failed` (only objects whose sync
//! failed). Every other parameter is the core's: filters such as
//! `site=3` or `name__icontains=x`, `ordering`, `page`, `page_size`
//! (50 here unless given), `cursor`.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};
use syncplane_api::AppState;
use syncplane_core::{Object, Query, query_parameters};

use crate::error::GuiError;
use crate::modelview::{FieldView, ModelView, model_view};
use crate::session::Viewer;
use crate::status::{self, Status};
use crate::values::{self, LIST_CUT, Shown};
use crate::{nav, templates};

/// Rows per page unless the URL says otherwise.
pub(crate) const PAGE_SIZE: u32 = 50;

/// The lookups the filter form offers.
const LOOKUPS: &[(&str, &str)] = &[
    ("icontains", "contains"),
    ("exact", "is"),
    ("gt", ">"),
    ("lt", "<"),
];

/// Parameters that are the GUI's, not the core's.
const OWN: &[&str] = &["f", "op", "q", "failed", "deleted"];

/// One cell of a row.
#[derive(Debug, Serialize)]
struct Cell {
    value: Shown,
    /// For a link, the object's page.
    href: Option<String>,
}

/// One row: an object.
#[derive(Debug, Serialize)]
struct Row {
    id: i64,
    href: String,
    cells: Vec<Cell>,
    status: Status,
}

/// A column header, with the ordering its link asks for.
#[derive(Debug, Serialize)]
struct Column {
    label: String,
    href: String,
    /// `asc`, `desc` or `null`: how the list is ordered by it now.
    sorted: Option<&'static str>,
}

/// The URL of the list with `pairs` as its query.
fn url(model: &str, pairs: &[(String, String)]) -> String {
    if pairs.is_empty() {
        return format!("/ui/m/{model}");
    }
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        query.append_pair(k, v);
    }
    format!("/ui/m/{model}?{}", query.finish())
}

/// `pairs` less `remove`, plus `add`.
fn with(
    pairs: &[(String, String)],
    remove: &[&str],
    add: &[(&str, String)],
) -> Vec<(String, String)> {
    pairs
        .iter()
        .filter(|(k, _)| !remove.contains(&k.as_str()))
        .cloned()
        .chain(add.iter().map(|(k, v)| ((*k).to_owned(), v.clone())))
        .collect()
}

/// The core query parameters of the page's URL parameters.
fn core_pairs(pairs: &[(String, String)]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = pairs
        .iter()
        .filter(|(k, _)| !OWN.contains(&k.as_str()))
        .cloned()
        .collect();
    let value = |name: &str| crate::session::value(pairs, name).unwrap_or_default();
    let (field, op, q) = (value("f"), value("op"), value("q"));
    if !field.is_empty() && !q.is_empty() {
        let key = match op {
            "" | "exact" => field.to_owned(),
            op => format!("{field}__{op}"),
        };
        out.push((key, q.to_owned()));
    }
    if !value("failed").is_empty() {
        out.push(("backend_code".into(), "2".into()));
    }
    if !out.iter().any(|(k, _)| k == query_parameters::PAGE_SIZE) {
        out.push((query_parameters::PAGE_SIZE.into(), PAGE_SIZE.to_string()));
    }
    out
}

fn row(view: &ModelView, columns: &[&FieldView], object: &Object) -> Row {
    let model = &view.def.name;
    let cells = columns
        .iter()
        .map(|field| {
            let value = if field.name == "id" {
                Some(Value::from(object.id))
            } else {
                object.fields.get(&field.name).cloned()
            };
            let href = match (&field.link_model, value.as_ref().and_then(Value::as_i64)) {
                (Some(target), Some(id)) => Some(format!("/ui/m/{target}/{id}")),
                _ => None,
            };
            Cell {
                value: values::show(value.as_ref(), LIST_CUT),
                href,
            }
        })
        .collect();
    Row {
        id: object.id,
        href: format!("/ui/m/{model}/{}", object.id),
        cells,
        status: status::of(object, LIST_CUT),
    }
}

/// `GET /ui/m/<Model>`.
pub(crate) async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(model): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, GuiError> {
    let view = model_view(&state, &model)?;
    let mut pairs: Vec<(String, String)> =
        form_urlencoded::parse(raw.as_deref().unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    // A notice for this answer only: links from the page do not repeat it.
    let deleted = crate::session::value(&pairs, "deleted").map(str::to_owned);
    pairs.retain(|(k, _)| k != "deleted");
    let core = state.host.core();
    let asked = core_pairs(&pairs);
    let listing = match Query::parse(&core.registry(), &model, &asked) {
        // A fault of the host is a page of its own (logged, not shown);
        // a wrong parameter is named above an empty list.
        Ok(query) => match core
            .query_as(&viewer.user.principal(), &model, &query)
            .await
        {
            Ok(listing) => Ok(listing),
            Err(e) if e.is_client_error() => Err(e.to_string()),
            Err(e) => return Err(e.into()),
        },
        Err(e) => Err(e.to_string()),
    };
    let (objects, next, problem) = match listing {
        Ok(listing) => (listing.objects, listing.next, None),
        Err(message) => (Vec::new(), None, Some(message)),
    };
    let columns = view.columns();
    let rows: Vec<Row> = objects.iter().map(|o| row(&view, &columns, o)).collect();
    let value = |name: &str| crate::session::value(&pairs, name).unwrap_or_default();
    let ordering = value(query_parameters::ORDERING);
    let headers: Vec<Column> = columns
        .iter()
        .map(|field| {
            let sorted = if ordering == field.name {
                Some("asc")
            } else if ordering.strip_prefix('-') == Some(field.name.as_str()) {
                Some("desc")
            } else {
                None
            };
            let next_order = if sorted == Some("asc") {
                format!("-{}", field.name)
            } else {
                field.name.clone()
            };
            Column {
                label: field.label.clone(),
                href: url(
                    &model,
                    &with(
                        &pairs,
                        &[
                            query_parameters::ORDERING,
                            query_parameters::PAGE,
                            query_parameters::CURSOR,
                        ],
                        &[(query_parameters::ORDERING, next_order)],
                    ),
                ),
                sorted,
            }
        })
        .collect();
    let paging = [query_parameters::PAGE, query_parameters::CURSOR];
    let page: u32 = value(query_parameters::PAGE).parse().unwrap_or(1).max(1);
    let by_cursor = !value(query_parameters::CURSOR).is_empty();
    let next_href = next.map(|cursor| {
        url(
            &model,
            &with(&pairs, &paging, &[(query_parameters::CURSOR, cursor)]),
        )
    });
    let previous_href = (!by_cursor && page > 1).then(|| {
        url(
            &model,
            &with(
                &pairs,
                &paging,
                &[(query_parameters::PAGE, (page - 1).to_string())],
            ),
        )
    });
    let first_href = (by_cursor || page > 1).then(|| url(&model, &with(&pairs, &paging, &[])));
    let filter_fields: Vec<&FieldView> = view
        .fields
        .iter()
        .filter(|f| !f.secret && f.widget != "many")
        .collect();
    let status = if problem.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let context = json!({
        "layout": nav::layout(&state, &viewer, &model, Some(&model), None),
        "model": view.def,
        "columns": headers,
        "rows": rows,
        "problem": problem,
        "next_href": next_href,
        "previous_href": previous_href,
        "first_href": first_href,
        "page": if by_cursor { None } else { Some(page) },
        "filter": {
            "fields": filter_fields,
            "lookups": LOOKUPS,
            "f": value("f"),
            "op": value("op"),
            "q": value("q"),
            "failed": !value("failed").is_empty(),
            "ordering": ordering,
            "page_size": value(query_parameters::PAGE_SIZE),
            "clear_href": url(&model, &[]),
        },
        "deleted": deleted,
        "self_href": url(&model, &pairs),
    });
    let html: Html<String> = templates::render("list.html", &context)?;
    Ok((status, html).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_filter_form_becomes_core_parameters_and_the_page_size_defaults_to_fifty() {
        let asked = core_pairs(&pairs(&[
            ("f", "name"),
            ("op", "icontains"),
            ("q", "ab"),
            ("failed", "1"),
            ("ordering", "-name"),
        ]));
        assert_eq!(
            asked,
            pairs(&[
                ("ordering", "-name"),
                ("name__icontains", "ab"),
                ("backend_code", "2"),
                ("page_size", "50"),
            ])
        );
        let exact = core_pairs(&pairs(&[
            ("f", "vlan"),
            ("op", "exact"),
            ("q", "7"),
            ("page_size", "5"),
        ]));
        assert_eq!(exact, pairs(&[("page_size", "5"), ("vlan", "7")]));
        assert_eq!(url("Site", &pairs(&[("q", "a&b")])), "/ui/m/Site?q=a%26b");
    }
}
