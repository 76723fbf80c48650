//! The installed models and how they map onto tables.

use std::collections::BTreeMap;

use serde_json::Value;
use syncplane_store::{Column, ColumnType, PartialIndex, SqlValue, TableSpec};
use syncplane_xproto::{Field, FieldType, Model, OptionValue, ProtoScalar, ScalarType, Schema};

use crate::core::ValueColumns;
use crate::error::{Error, Result};
use crate::many::{Join, joins_of};

/// Internal columns every model table has, besides its fields.
pub(crate) const CHANGE_SEQ: &str = "_change_seq";
pub(crate) const ENACTED_SEQ: &str = "_enacted_seq";
pub(crate) const NEXT_RETRY: &str = "_next_retry";
pub(crate) const FAILURES: &str = "_failures";
/// The change sequence model policies last handled.
pub(crate) const POLICED_SEQ: &str = "_policed_seq";
/// When (ms since the epoch) a failed model policy is retried.
pub(crate) const POLICY_RETRY: &str = "_policy_retry";

/// The rows whose latest change model policies have not handled yet.
pub(crate) const POLICY_PENDING: &str =
    "no_policy = 0 AND (_policed_seq IS NULL OR _policed_seq < _change_seq)";

/// The rows that need a sync (retry time aside). The text must stay equal to
/// the pending partial index's predicate for SQLite to use that index, which
/// keeps finding work proportional to the work, not to the table.
pub(crate) const PENDING: &str = "deleted = 0 AND no_sync = 0 AND lazy_blocked = 0 \
     AND (_enacted_seq IS NULL OR _enacted_seq < _change_seq)";

/// The rows waiting for a sync or teardown retry. With the partial index
/// of that predicate on `_next_retry`, the earliest retry is found among
/// the rows that have one, not among every pending row: PostgreSQL plans
/// from statistics that lag behind a burst of syncs, and would scan the
/// table.
pub(crate) const RETRYING: &str = "_next_retry IS NOT NULL";

/// The rows waiting for a model policy retry (as [`RETRYING`]).
pub(crate) const POLICY_RETRYING: &str = "_policy_retry IS NOT NULL";

/// The rows not marked deleted: what unique indexes hold.
pub(crate) const LIVE: &str = "deleted = 0";

/// The rows marked deleted and waiting for teardown or purge.
pub(crate) const DELETED: &str = "deleted = 1";

/// A snapshot of the installed models.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    schema: Schema,
    tables: BTreeMap<String, TableSpec>,
    /// The join tables of each concrete model's `manytomany` fields.
    joins: BTreeMap<String, Vec<Join>>,
    /// How each concrete model's rows decode into objects.
    columns: BTreeMap<String, ValueColumns>,
    /// The concrete model behind each REST collection, by app label and
    /// plural: found on every request.
    collections: BTreeMap<(String, String), String>,
}

impl Registry {
    /// The registry of the models of `schema`, with their tables.
    pub fn new(schema: Schema) -> Self {
        let tables: BTreeMap<String, TableSpec> = schema
            .models()
            .filter(|m| !m.is_abstract())
            .map(|m| (m.name.clone(), table_spec(&schema, m)))
            .collect();
        let joins = schema
            .models()
            .filter(|m| !m.is_abstract())
            .map(|m| (m.name.clone(), joins_of(&schema, &m.name)))
            .filter(|(_, joins)| !joins.is_empty())
            .collect();
        let columns = tables
            .iter()
            .map(|(model, table)| (model.clone(), ValueColumns::new(&schema, table, model)))
            .collect();
        let mut collections = BTreeMap::new();
        for model in schema.models().filter(|m| !m.is_abstract()) {
            // The first model of a clashing name keeps it.
            collections
                .entry((model.app_label.clone(), plural_of(model)))
                .or_insert_with(|| model.name.clone());
        }
        Registry {
            schema,
            tables,
            joins,
            columns,
            collections,
        }
    }

    /// The join tables of the concrete model `model`'s `manytomany`
    /// fields; empty for most models.
    pub(crate) fn joins(&self, model: &str) -> &[Join] {
        self.joins.get(model).map(Vec::as_slice).unwrap_or_default()
    }

    /// Every join table of every model.
    pub(crate) fn all_joins(&self) -> impl Iterator<Item = &Join> {
        self.joins.values().flatten()
    }

    /// The models as xproto sees them.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// A concrete model by name.
    pub fn model(&self, name: &str) -> Result<&Model> {
        self.schema
            .model(name)
            .ok_or_else(|| Error::UnknownModel(name.to_owned()))
    }

    pub(crate) fn table(&self, model: &str) -> Result<&TableSpec> {
        match self.tables.get(model) {
            Some(table) => Ok(table),
            None if self.schema.model(model).is_some() => {
                Err(Error::AbstractModel(model.to_owned()))
            }
            None => Err(Error::UnknownModel(model.to_owned())),
        }
    }

    /// How rows of the concrete model `model`'s table decode into objects.
    pub(crate) fn value_columns(&self, model: &str) -> Result<&ValueColumns> {
        self.table(model)?;
        self.columns
            .get(model)
            .ok_or_else(|| Error::UnknownModel(model.to_owned()))
    }

    pub(crate) fn tables(&self) -> impl Iterator<Item = &TableSpec> {
        self.tables.values()
    }

    pub(crate) fn tables_by_model(&self) -> impl Iterator<Item = (&String, &TableSpec)> {
        self.tables.iter()
    }

    /// A store error of a write to `model`, with a unique index's
    /// violation told as the field it guards: `Site.name: must be unique`,
    /// `Image.name: must be unique together with tag`.
    pub(crate) fn write_error(&self, model: &str, error: syncplane_store::Error) -> Error {
        let syncplane_store::Error::Unique { columns, .. } = &error else {
            return Error::Store(error);
        };
        let name = |column: &str| {
            stored_fields(&self.schema, model)
                .into_iter()
                .find(|f| f.column_name() == column)
                .map_or_else(|| column.to_owned(), |f| f.name.clone())
        };
        let Some((first, others)) = columns.split_first() else {
            return Error::Store(error);
        };
        let message = if others.is_empty() {
            "must be unique".to_owned()
        } else {
            let others: Vec<String> = others.iter().map(|c| name(c)).collect();
            format!("must be unique together with {}", others.join(", "))
        };
        Error::invalid(model, &name(first), message)
    }

    /// The URL collection name of a model: its `plural` option or its
    /// lower-case name plus `s`, as XOS does.
    pub fn plural(&self, model: &Model) -> String {
        plural_of(model)
    }

    /// The concrete model whose REST collection is `plural` in the app
    /// `app_label` (`core`, `sites` → `Site`).
    pub fn collection(&self, app_label: &str, plural: &str) -> Option<&str> {
        self.collections
            .get(&(app_label.to_owned(), plural.to_owned()))
            .map(String::as_str)
    }
}

/// See [`Registry::plural`].
fn plural_of(model: &Model) -> String {
    model
        .option_str("plural")
        .map(str::to_ascii_lowercase)
        .unwrap_or_else(|| format!("{}s", model.name.to_ascii_lowercase()))
}

/// The fields of `model` that are stored in its table: all but `manytomany`
/// links, whose join tables are not built yet.
pub(crate) fn stored_fields<'a>(schema: &'a Schema, model: &str) -> Vec<&'a Field> {
    schema
        .all_fields(model)
        .into_iter()
        .filter(|f| !f.is_many())
        .collect()
}

fn table_name(model: &str) -> String {
    format!("m_{}", model.to_ascii_lowercase())
}

fn column_type(field: &Field) -> ColumnType {
    match &field.ty {
        FieldType::Link { .. } => ColumnType::Integer,
        FieldType::Scalar { scalar } => match scalar {
            ScalarType::String if is_date(field) => ColumnType::Real,
            ScalarType::String => ColumnType::Text,
            ScalarType::Bool | ScalarType::Int => ColumnType::Integer,
            ScalarType::Float => ColumnType::Real,
        },
    }
}

/// Date fields are strings in xproto and float seconds since the epoch in the
/// API, as in XOS.
pub(crate) fn is_date(field: &Field) -> bool {
    field.option_str("content_type") == Some("date")
}

fn table_spec(schema: &Schema, model: &Model) -> TableSpec {
    let mut columns: Vec<Column> = stored_fields(schema, &model.name)
        .into_iter()
        .map(|f| Column {
            name: f.column_name(),
            ty: column_type(f),
            // Filters (`?name=...`) and `unique` checks find rows by these.
            indexed: f.flag("db_index")
                || f.flag("unique")
                || matches!(f.ty, FieldType::Link { .. }),
            // `now()` defaults stay unset for rows that predate the field.
            default: default_value(f, 0.0)
                .filter(|_| f.option_str("default") != Some("now()"))
                .and_then(|v| to_sql(&model.name, f, &v).ok()),
        })
        .collect();
    for internal in [
        CHANGE_SEQ,
        ENACTED_SEQ,
        NEXT_RETRY,
        FAILURES,
        POLICED_SEQ,
        POLICY_RETRY,
    ] {
        columns.push(Column {
            name: internal.to_owned(),
            ty: ColumnType::Integer,
            indexed: false,
            default: None,
        });
    }
    let mut partial_indexes = vec![
        PartialIndex {
            name: "pending".into(),
            columns: vec!["id".into()],
            predicate: PENDING,
            unique: false,
        },
        PartialIndex {
            name: "deleted".into(),
            columns: vec!["id".into()],
            predicate: DELETED,
            unique: false,
        },
        PartialIndex {
            name: "unpoliced".into(),
            columns: vec!["id".into()],
            predicate: POLICY_PENDING,
            unique: false,
        },
        PartialIndex {
            name: "retrying".into(),
            columns: vec![NEXT_RETRY.into()],
            predicate: RETRYING,
            unique: false,
        },
        PartialIndex {
            name: "policy_retrying".into(),
            columns: vec![POLICY_RETRY.into()],
            predicate: POLICY_RETRYING,
            unique: false,
        },
    ];
    partial_indexes.extend(unique_indexes(schema, model));
    TableSpec {
        name: table_name(&model.name),
        columns,
        partial_indexes,
    }
}

/// The live rows (not deleted) that no two objects may share: one unique
/// index per `unique` field, and per `unique_with` field together with the
/// fields it names (`unique_with = "service"`: the pair is unique). As in
/// Django, NULLs never clash; unlike it, a deleted object waiting for its
/// purge does not hold its name.
pub(crate) fn unique_indexes(schema: &Schema, model: &Model) -> Vec<PartialIndex> {
    let fields = stored_fields(schema, &model.name);
    let column_of = |name: &str| {
        fields
            .iter()
            .find(|f| f.name == name || f.column_name() == name)
            .map(|f| f.column_name())
    };
    let mut out = Vec::new();
    for field in &fields {
        let mut columns = vec![field.column_name()];
        if let Some(with) = field.option_str("unique_with") {
            columns.extend(with.split(',').filter_map(|w| column_of(w.trim())));
        } else if !field.flag("unique") {
            continue;
        }
        out.push(PartialIndex {
            name: format!("uq_{}", columns.join("__")),
            columns,
            predicate: LIVE,
            unique: true,
        });
    }
    out
}

/// Converts an API value of `field` to its stored form.
pub(crate) fn to_sql(model: &str, field: &Field, value: &Value) -> Result<SqlValue> {
    let wrong = |expected: &str| {
        Error::invalid(
            model,
            &field.name,
            format!("expected {expected}, got {value}"),
        )
    };
    if value.is_null() {
        return Ok(SqlValue::Null);
    }
    if matches!(field.ty, FieldType::Scalar { .. }) {
        crate::constraints::check(model, field, value)?;
    }
    Ok(match &field.ty {
        FieldType::Link { .. } => {
            SqlValue::Integer(value.as_i64().ok_or_else(|| wrong("an object id"))?)
        }
        FieldType::Scalar { scalar } => match scalar {
            ScalarType::String if is_date(field) => SqlValue::Real(
                value
                    .as_f64()
                    .ok_or_else(|| wrong("seconds since the epoch"))?,
            ),
            ScalarType::String => match value {
                Value::String(s) => {
                    // XOS strips `stripped` strings before it stores them.
                    let s = if field.option_str("content_type") == Some("stripped") {
                        s.trim()
                    } else {
                        s.as_str()
                    };
                    // PostgreSQL cannot store U+0000 in text; refused on
                    // both stores, so they hold the same.
                    if s.contains('\0') {
                        return Err(Error::invalid(
                            model,
                            &field.name,
                            "contains a NUL character (U+0000), which text fields cannot hold",
                        ));
                    }
                    if let Some(max) = field.options.get("max_length").and_then(|v| match v {
                        OptionValue::Int(n) => Some(*n),
                        _ => None,
                    }) && s.chars().count() as i64 > max
                    {
                        return Err(Error::invalid(
                            model,
                            &field.name,
                            format!("longer than max_length {max}"),
                        ));
                    }
                    SqlValue::Text(s.to_owned())
                }
                _ => return Err(wrong("a string")),
            },
            ScalarType::Bool => SqlValue::Integer(i64::from(
                value.as_bool().ok_or_else(|| wrong("true or false"))?,
            )),
            ScalarType::Int => {
                let n = value.as_i64().ok_or_else(|| wrong("an integer"))?;
                if let Some((low, high)) = field.proto_scalar().and_then(int_range)
                    && !(low..=high).contains(&n)
                {
                    return Err(Error::invalid(
                        model,
                        &field.name,
                        format!(
                            "{n} is outside the range of {} ({low} to {high})",
                            field.proto_scalar().map_or("an integer", |p| p.name())
                        ),
                    ));
                }
                SqlValue::Integer(n)
            }
            ScalarType::Float => SqlValue::Real(value.as_f64().ok_or_else(|| wrong("a number"))?),
        },
    })
}

/// The values a protobuf integer type holds, where narrower than the
/// store's 64 bits (`uint64` beyond `i64::MAX` cannot be stored at all).
fn int_range(scalar: ProtoScalar) -> Option<(i64, i64)> {
    match scalar {
        ProtoScalar::Int32 | ProtoScalar::Sint32 => Some((i32::MIN.into(), i32::MAX.into())),
        ProtoScalar::Uint32 | ProtoScalar::Fixed32 => Some((0, u32::MAX.into())),
        ProtoScalar::Uint64 | ProtoScalar::Fixed64 => Some((0, i64::MAX)),
        _ => None,
    }
}

/// Converts a stored value of `field` to its API form.
pub(crate) fn from_sql(field: &Field, value: &SqlValue) -> Value {
    from_sql_as(is_bool(field), value)
}

/// [`from_sql`] of a field known to hold a bool, or not.
pub(crate) fn from_sql_as(bool: bool, value: &SqlValue) -> Value {
    match value {
        SqlValue::Null => Value::Null,
        SqlValue::Integer(i) if bool => Value::Bool(*i != 0),
        SqlValue::Integer(i) => Value::from(*i),
        SqlValue::Real(f) => Value::from(*f),
        SqlValue::Text(s) => Value::String(s.clone()),
    }
}

/// Whether `field` holds a bool, which the store keeps as an integer.
pub(crate) fn is_bool(field: &Field) -> bool {
    matches!(
        field.ty,
        FieldType::Scalar {
            scalar: ScalarType::Bool
        }
    )
}

/// The default of a field as an API value, if it has one. `now()` is the
/// current time for date fields.
pub(crate) fn default_value(field: &Field, now: f64) -> Option<Value> {
    let value = field.options.get("default")?;
    Some(match value {
        OptionValue::Bool(b) => Value::Bool(*b),
        OptionValue::Int(i) => Value::from(*i),
        OptionValue::Float(f) => Value::from(*f),
        OptionValue::Str(s) if s == "now()" => Value::from(now),
        OptionValue::Str(s) => Value::String(s.clone()),
        OptionValue::Ident(None) => Value::Null,
        OptionValue::Ident(Some(s)) => Value::String(s.clone()),
    })
}
