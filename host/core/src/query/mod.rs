//! Queries on a model's objects, in XOS's REST conventions: filters
//! (`name=x`, `site_id__in=1,2`, `created__gt=...`, `name__contains=a`,
//! `site__isnull=true`), an ordering (`ordering=name,-created`) and pages
//! (`page`, `page_size`, or the opaque `cursor` of the previous page).
//!
//! A [`Query`] is parsed from the request's `(name, value)` pairs and
//! checked against the model's fields before anything is read: a wrong
//! parameter is a [`QueryError`] naming it. [`Core::query_as`] runs it
//! (see `run.rs`): the filters and the order become SQL, and each
//! candidate object passes the one authorization check before it counts
//! towards a page.
//!
//! [`Core::query_as`]: crate::Core::query_as

mod cursor;
mod run;

use std::collections::HashSet;

use syncplane_store::{Condition, OrderKey, SqlValue};
use syncplane_xproto::{Field, FieldType, Modifier, ScalarType};

use crate::registry::{Registry, is_date, stored_fields};

pub use run::Listing;

/// Objects per page when the request does not say (`page_size`).
pub const DEFAULT_PAGE_SIZE: u32 = 100;
/// The largest `page_size` accepted.
pub const MAX_PAGE_SIZE: u32 = 1000;
/// The most objects `page` may skip (`(page - 1) * page_size`): each
/// skipped object is read and its policy decided, so deep pages go by the
/// `cursor` of the previous page (`next`), which costs what the first page
/// does.
pub const MAX_OFFSET: u32 = 10_000;
/// The most values one `__in` filter may list.
pub const MAX_IN_VALUES: usize = 1000;
/// The most fields one `ordering` may name.
pub const MAX_ORDER_FIELDS: usize = 4;

/// The query parameters that are not filters.
pub const PAGE: &str = "page";
/// See [`PAGE`].
pub const PAGE_SIZE: &str = "page_size";
/// See [`PAGE`].
pub const CURSOR: &str = "cursor";
/// See [`PAGE`].
pub const ORDERING: &str = "ordering";

/// A query parameter the query cannot take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("query parameter `{parameter}`: {message}")]
pub struct QueryError {
    /// The parameter as the request named it (`name__gt`, `page_size`).
    pub parameter: String,
    /// What is wrong with it.
    pub message: String,
}

impl QueryError {
    fn new(parameter: &str, message: impl Into<String>) -> Self {
        QueryError {
            parameter: parameter.to_owned(),
            message: message.into(),
        }
    }
}

/// Which objects of a model, in which order, which page of them.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    filters: Vec<Filter>,
    /// The order as asked, ending with `id` (the tie-breaker).
    order: Vec<OrderKey>,
    /// The order as the request spelled it, normalised (`name,-created,id`):
    /// a cursor is valid only for the order it was made for.
    order_text: String,
    page_size: u32,
    start: Start,
}

/// Where a page starts.
#[derive(Debug, Clone, PartialEq)]
enum Start {
    /// The first page.
    First,
    /// After `(n - 1) * page_size` objects.
    Page(u32),
    /// After the object with these key values (one per order key).
    After(Vec<SqlValue>),
}

/// One filter: a column, how it is compared and with what.
#[derive(Debug, Clone, PartialEq)]
struct Filter {
    column: String,
    lookup: Lookup,
}

#[derive(Debug, Clone, PartialEq)]
enum Lookup {
    Exact(SqlValue),
    In(Vec<SqlValue>),
    Gt(SqlValue),
    Gte(SqlValue),
    Lt(SqlValue),
    Lte(SqlValue),
    Contains(String),
    IContains(String),
    IsNull(bool),
}

/// What a filter value is parsed as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Id,
    Link,
    Bool,
    Int,
    Float,
    /// Seconds since the epoch (`content_type = "date"` strings).
    Date,
    Text,
}

impl Kind {
    fn of(field: &Field) -> Kind {
        match &field.ty {
            FieldType::Link { .. } => Kind::Link,
            FieldType::Scalar { scalar } => match scalar {
                ScalarType::String if is_date(field) => Kind::Date,
                ScalarType::String => Kind::Text,
                ScalarType::Bool => Kind::Bool,
                ScalarType::Int => Kind::Int,
                ScalarType::Float => Kind::Float,
            },
        }
    }

    fn parse(self, parameter: &str, text: &str) -> Result<SqlValue, QueryError> {
        match self {
            Kind::Id | Kind::Link | Kind::Int => text
                .trim()
                .parse::<i64>()
                .map(SqlValue::Integer)
                .map_err(|_| QueryError::new(parameter, format!("`{text}` is not an integer"))),
            Kind::Bool => parse_bool(parameter, text).map(|b| SqlValue::Integer(i64::from(b))),
            Kind::Float | Kind::Date => match text.trim().parse::<f64>() {
                Ok(f) if f.is_finite() => Ok(SqlValue::Real(f)),
                _ => Err(QueryError::new(
                    parameter,
                    if self == Kind::Date {
                        format!("`{text}` is not a time in seconds since the epoch")
                    } else {
                        format!("`{text}` is not a number")
                    },
                )),
            },
            Kind::Text => Ok(SqlValue::Text(text.to_owned())),
        }
    }
}

fn parse_bool(parameter: &str, text: &str) -> Result<bool, QueryError> {
    match text.trim() {
        "true" | "True" | "1" => Ok(true),
        "false" | "False" | "0" => Ok(false),
        _ => Err(QueryError::new(
            parameter,
            format!("`{text}` is not true or false"),
        )),
    }
}

/// A field a query may name: `id` or a stored field of the model.
struct Target<'a> {
    column: String,
    kind: Kind,
    field: Option<&'a Field>,
}

/// Whether a field holds a secret that no query may filter or order on:
/// the fields the audit log redacts (names with `password`, `secret` or
/// `token`). A filter on a secret would answer questions about its value.
fn is_secret(field: &Field) -> bool {
    crate::audit::is_secret(&field.name)
}

fn target<'a>(
    registry: &'a Registry,
    model: &str,
    parameter: &str,
    name: &str,
) -> Result<Target<'a>, QueryError> {
    if name == "id" {
        return Ok(Target {
            column: "id".into(),
            kind: Kind::Id,
            field: None,
        });
    }
    let field = stored_fields(registry.schema(), model)
        .into_iter()
        .find(|f| f.name == name || f.column_name() == name)
        .ok_or_else(|| QueryError::new(parameter, format!("{model} has no field `{name}`")))?;
    if is_secret(field) {
        return Err(QueryError::new(
            parameter,
            format!("`{name}` is secret: it cannot be filtered or ordered on"),
        ));
    }
    Ok(Target {
        column: field.column_name(),
        kind: Kind::of(field),
        field: Some(field),
    })
}

/// The lookups after `__`.
const LOOKUPS: &[&str] = &[
    "exact",
    "in",
    "gt",
    "gte",
    "lt",
    "lte",
    "contains",
    "icontains",
    "isnull",
];

impl Query {
    /// The query of a request's parameters on `model` (and the models
    /// inheriting from it): filters on its fields (by name, or a link's
    /// column `<link>_id`), `ordering`, `page`, `page_size`, `cursor`.
    /// Filters are combined with AND.
    ///
    /// # Errors
    ///
    /// A [`QueryError`] naming the first parameter that is wrong: an
    /// unknown field or lookup, a value that does not fit the field
    /// (`id=abc`, `enabled=maybe`), a lookup the field has no use for
    /// (`__gt` on a boolean, `__contains` on a number, `__isnull` on a
    /// required field), a secret field, a parameter given twice, a
    /// `page_size` outside 1..=[`MAX_PAGE_SIZE`], a `page` past
    /// [`MAX_OFFSET`], a cursor made for another order or not made here.
    pub fn parse(
        registry: &Registry,
        model: &str,
        pairs: &[(String, String)],
    ) -> Result<Query, QueryError> {
        let mut seen = HashSet::new();
        let mut filters = Vec::new();
        let mut ordering = None;
        let mut page = None;
        let mut page_size = DEFAULT_PAGE_SIZE;
        let mut cursor = None;
        for (key, value) in pairs {
            if !seen.insert(key.as_str()) {
                return Err(QueryError::new(key, "is given more than once"));
            }
            match key.as_str() {
                PAGE_SIZE => page_size = parse_count(key, value, 1, MAX_PAGE_SIZE)?,
                PAGE => page = Some(parse_count(key, value, 1, u32::MAX)?),
                CURSOR => cursor = Some(value.as_str()),
                ORDERING => ordering = Some(parse_ordering(registry, model, value)?),
                _ => filters.push(parse_filter(registry, model, key, value)?),
            }
        }
        let order = ordering.unwrap_or_else(|| vec![OrderKey::asc("id")]);
        let order_text = order_text(&order);
        let start = match (page, cursor) {
            (Some(_), Some(_)) => {
                return Err(QueryError::new(
                    CURSOR,
                    "cannot be combined with `page`: a cursor says where its page starts",
                ));
            }
            (Some(n), None) => {
                let skipped = u64::from(n - 1) * u64::from(page_size);
                if skipped > u64::from(MAX_OFFSET) {
                    return Err(QueryError::new(
                        PAGE,
                        format!(
                            "page {n} of {page_size} would skip {skipped} objects, more than {MAX_OFFSET}; follow the `next` link (a cursor) of the previous page instead"
                        ),
                    ));
                }
                if n == 1 { Start::First } else { Start::Page(n) }
            }
            (None, Some(token)) => Start::After(
                cursor::decode(token, &order_text, order.len())
                    .map_err(|message| QueryError::new(CURSOR, message))?,
            ),
            (None, None) => Start::First,
        };
        Ok(Query {
            filters,
            order,
            order_text,
            page_size,
            start,
        })
    }

    /// Objects per page.
    pub fn page_size(&self) -> u32 {
        self.page_size
    }

    /// The store conditions of the filters.
    pub(crate) fn conditions(&self) -> Vec<Condition> {
        self.filters.iter().map(Filter::condition).collect()
    }

    pub(crate) fn order(&self) -> &[OrderKey] {
        &self.order
    }

    /// Where the page starts: the key values to read after, if any, and
    /// how many readable objects to skip from there.
    pub(crate) fn start(&self) -> (Option<&[SqlValue]>, u32) {
        match &self.start {
            Start::First => (None, 0),
            Start::Page(n) => (None, (n - 1).saturating_mul(self.page_size)),
            Start::After(values) => (Some(values), 0),
        }
    }

    /// The cursor of the page after the object with these key values.
    pub(crate) fn cursor_after(&self, values: &[SqlValue]) -> String {
        cursor::encode(&self.order_text, values)
    }
}

fn parse_count(parameter: &str, text: &str, min: u32, max: u32) -> Result<u32, QueryError> {
    match text.trim().parse::<u32>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ if max == u32::MAX => Err(QueryError::new(
            parameter,
            format!("`{text}` is not a whole number from {min}"),
        )),
        _ => Err(QueryError::new(
            parameter,
            format!("`{text}` is not a whole number from {min} to {max}"),
        )),
    }
}

/// `name,-created`: fields, each `-` for largest first; `id` ends the order
/// when it is not named (later fields would never matter after it).
fn parse_ordering(
    registry: &Registry,
    model: &str,
    text: &str,
) -> Result<Vec<OrderKey>, QueryError> {
    let mut order: Vec<OrderKey> = Vec::new();
    for item in text.split(',') {
        let item = item.trim();
        let (descending, name) = match item.strip_prefix('-') {
            Some(name) => (true, name),
            None => (false, item),
        };
        if name.is_empty() {
            return Err(QueryError::new(
                ORDERING,
                format!("`{text}` has an empty field name"),
            ));
        }
        let target = target(registry, model, ORDERING, name)?;
        if order.iter().any(|k| k.column == target.column) {
            return Err(QueryError::new(
                ORDERING,
                format!("`{name}` is named twice"),
            ));
        }
        if order.len() == MAX_ORDER_FIELDS {
            return Err(QueryError::new(
                ORDERING,
                format!("names more than {MAX_ORDER_FIELDS} fields"),
            ));
        }
        let is_id = target.column == "id";
        order.push(OrderKey {
            column: target.column,
            descending,
        });
        if is_id {
            return Ok(order);
        }
    }
    order.push(OrderKey::asc("id"));
    Ok(order)
}

fn order_text(order: &[OrderKey]) -> String {
    order
        .iter()
        .map(|k| {
            if k.descending {
                format!("-{}", k.column)
            } else {
                k.column.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn parse_filter(
    registry: &Registry,
    model: &str,
    key: &str,
    value: &str,
) -> Result<Filter, QueryError> {
    let (name, lookup) = match key.rsplit_once("__") {
        Some((name, lookup)) if LOOKUPS.contains(&lookup) => (name, lookup),
        Some((name, lookup)) if target(registry, model, key, name).is_ok() => {
            return Err(QueryError::new(
                key,
                format!(
                    "unknown lookup `__{lookup}` (known: {})",
                    LOOKUPS.join(", ")
                ),
            ));
        }
        _ => (key, "exact"),
    };
    let target = target(registry, model, key, name)?;
    let kind = target.kind;
    let lookup = match lookup {
        "exact" => Lookup::Exact(kind.parse(key, value)?),
        "in" => {
            let items: Vec<&str> = value.split(',').collect();
            if items.len() > MAX_IN_VALUES {
                return Err(QueryError::new(
                    key,
                    format!("lists {} values, more than {MAX_IN_VALUES}", items.len()),
                ));
            }
            Lookup::In(
                items
                    .into_iter()
                    .map(|item| kind.parse(key, item))
                    .collect::<Result<_, _>>()?,
            )
        }
        "gt" | "gte" | "lt" | "lte" => {
            if kind == Kind::Bool {
                return Err(QueryError::new(
                    key,
                    format!("`__{lookup}` does not apply to `{name}`, a boolean"),
                ));
            }
            let bound = kind.parse(key, value)?;
            match lookup {
                "gt" => Lookup::Gt(bound),
                "gte" => Lookup::Gte(bound),
                "lt" => Lookup::Lt(bound),
                _ => Lookup::Lte(bound),
            }
        }
        "contains" | "icontains" => {
            if kind != Kind::Text {
                return Err(QueryError::new(
                    key,
                    format!("`__{lookup}` applies to text fields only; `{name}` is not one"),
                ));
            }
            if lookup == "contains" {
                Lookup::Contains(value.to_owned())
            } else {
                Lookup::IContains(value.to_owned())
            }
        }
        _ => {
            let nullable = match target.field {
                Some(field) => {
                    field.link_target().is_some() || field.modifier == Modifier::Optional
                }
                None => false,
            };
            if !nullable {
                return Err(QueryError::new(
                    key,
                    format!(
                        "`{name}` is required, never null: `__isnull` applies to links and optional fields"
                    ),
                ));
            }
            Lookup::IsNull(parse_bool(key, value)?)
        }
    };
    Ok(Filter {
        column: target.column,
        lookup,
    })
}

impl Filter {
    fn condition(&self) -> Condition {
        let column = self.column.clone();
        match &self.lookup {
            Lookup::Exact(v) => Condition::Eq(column, v.clone()),
            Lookup::In(values) => Condition::In(column, values.clone()),
            Lookup::Gt(v) => Condition::Greater(column, v.clone()),
            Lookup::Gte(v) => Condition::AtLeast(column, v.clone()),
            Lookup::Lt(v) => Condition::Less(column, v.clone()),
            Lookup::Lte(v) => Condition::AtMost(column, v.clone()),
            Lookup::Contains(text) => Condition::Contains {
                column,
                text: text.clone(),
                ignore_case: false,
            },
            Lookup::IContains(text) => Condition::Contains {
                column,
                text: text.clone(),
                ignore_case: true,
            },
            Lookup::IsNull(true) => Condition::IsNull(column),
            Lookup::IsNull(false) => Condition::NotNull(column),
        }
    }
}

#[cfg(test)]
mod tests;
