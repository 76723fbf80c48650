//! What a create takes from its input, checked without the database.

use serde_json::{Map, Value};
use syncplane_store::Row;
use syncplane_xproto::{Field, Modifier};

use crate::error::{Error, Result};
use crate::registry::{Registry, default_value, is_date, stored_fields, to_sql};

/// The field values a create of `model` stores from `input`: each stored
/// field given (by field or column name), else its default, else null;
/// refuses a read-only field given, a required field missing and a field
/// the model does not have. `input` is consumed.
///
/// # Errors
///
/// [`Error::InvalidField`] naming the field; [`Error::UnknownModel`].
pub(crate) fn create_values<'r>(
    registry: &'r Registry,
    model: &str,
    input: Map<String, Value>,
    now: f64,
) -> Result<Vec<(&'r Field, Value)>> {
    create_values_with(&create_fields(registry, model)?, model, input, now)
}

/// The stored fields of `model` with their column names, for
/// [`create_values_with`]: worked out once for a batch.
///
/// # Errors
///
/// [`Error::UnknownModel`].
pub(crate) fn create_fields<'r>(
    registry: &'r Registry,
    model: &str,
) -> Result<Vec<(&'r Field, String)>> {
    registry.model(model)?;
    Ok(stored_fields(registry.schema(), model)
        .into_iter()
        .map(|f| (f, f.column_name()))
        .collect())
}

/// [`create_values`] with the model's [`create_fields`] at hand.
pub(crate) fn create_values_with<'r>(
    fields: &[(&'r Field, String)],
    model: &str,
    mut input: Map<String, Value>,
    now: f64,
) -> Result<Vec<(&'r Field, Value)>> {
    input.remove("id");
    let mut values = Vec::with_capacity(fields.len());
    for &(field, ref column) in fields {
        let given = input.remove(column).or_else(|| input.remove(&field.name));
        let value = match given {
            Some(v) if !field.is_user_writable() => {
                return Err(Error::invalid(
                    model,
                    &field.name,
                    format!("is maintained by syncplane and cannot be written (got {v})"),
                ));
            }
            Some(v) => v,
            None => match default_value(field, now) {
                Some(v) => v,
                None if field.modifier == Modifier::Required
                    && !is_date(field)
                    && !field.flag("bookkeeping_state") =>
                {
                    return Err(Error::invalid(model, &field.name, "is required"));
                }
                None => Value::Null,
            },
        };
        values.push((field, value));
    }
    reject_unknown(model, &input)?;
    Ok(values)
}

pub(crate) fn reject_unknown(model: &str, input: &Map<String, Value>) -> Result<()> {
    match input.keys().next() {
        Some(name) => Err(Error::invalid(model, name, "unknown field")),
        None => Ok(()),
    }
}

/// Decodes a create's input (a REST body or a TOSCA template's
/// properties) into the row it would store, without the database: every
/// check [`crate::CoreTx::create`] makes on the values themselves (names,
/// read-only and required fields, types, `max_length`), but not whether
/// linked objects exist, and passwords stay as given.
///
/// # Errors
///
/// [`Error::InvalidField`] naming the field; [`Error::UnknownModel`].
pub fn decode_create(
    registry: &Registry,
    model: &str,
    mut input: Map<String, Value>,
) -> Result<Row> {
    // Many-to-many lists are checked for their shape; they have no column.
    crate::many::take_many(registry, model, &mut input)?;
    let mut row = Row::new();
    for (field, value) in create_values(registry, model, input, 0.0)? {
        if field.modifier == Modifier::Required && value.is_null() && field.link_target().is_some()
        {
            return Err(Error::invalid(model, &field.name, "is required"));
        }
        row.insert(field.column_name(), to_sql(model, field, &value)?);
    }
    Ok(row)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn registry() -> Registry {
        let file = syncplane_xproto::parse("core.xproto", crate::CORE_XPROTO).expect("parses");
        Registry::new(
            syncplane_xproto::Schema::default()
                .with_files(&[file])
                .expect("valid"),
        )
    }

    fn decode(model: &str, input: Value) -> Result<Row> {
        let Value::Object(map) = input else {
            panic!("not an object")
        };
        decode_create(&registry(), model, map)
    }

    #[test]
    fn decoding_checks_names_types_lengths_and_read_only_fields() {
        let row = decode("Site", json!({"name": "s", "login_base": "x"})).expect("valid");
        assert_eq!(row["name"], syncplane_store::SqlValue::Text("s".into()));
        for (input, message) in [
            (json!({"name": 5}), "Site.name: expected a string, got 5"),
            (
                json!({"name": "s", "colour": 1}),
                "Site.colour: unknown field",
            ),
            (json!({}), "Site.name: is required"),
            (
                json!({"name": "x".repeat(201)}),
                "Site.name: longer than max_length 200",
            ),
            (
                json!({"name": "a\0b"}),
                "Site.name: contains a NUL character (U+0000), which text fields cannot hold",
            ),
            (
                json!({"name": "s", "backend_code": 1}),
                "Site.backend_code: is maintained by syncplane and cannot be written (got 1)",
            ),
        ] {
            let error = decode("Site", input).expect_err(message);
            assert_eq!(error.to_string(), message);
        }
        assert!(matches!(
            decode("NoSuchModel", json!({})),
            Err(Error::UnknownModel(_))
        ));
    }
}
