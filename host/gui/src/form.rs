//! Forms generated from a model: one input per field users write (a
//! widget per type, with its bounds, `max_length`, required mark and help
//! text), feedback fields shown read-only with the reason, and the
//! submitted pairs turned back into the JSON object REST would have sent.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Number, Value};

use crate::modelview::{FieldView, ModelView, Role};
use crate::values;

/// One row of a form.
#[derive(Debug, Serialize)]
pub(crate) struct Input {
    /// The field.
    pub(crate) field: FieldView,
    /// What the input holds.
    pub(crate) value: String,
    /// For a checkbox: whether it is ticked.
    pub(crate) checked: bool,
    /// The error the save reported for this field, as REST words it.
    pub(crate) error: Option<String>,
    /// Whether the input gets the focus (the first with an error).
    pub(crate) autofocus: bool,
    /// Why the field cannot be changed here, if it cannot.
    pub(crate) readonly_reason: Option<&'static str>,
}

/// Where a form's values come from.
pub(crate) enum Source<'a> {
    /// A new object: the defaults.
    Defaults,
    /// An existing object's fields.
    Object(&'a Map<String, Value>),
    /// What the user sent.
    Submitted(&'a [(String, String)]),
}

/// The rows of a form for `view`; `existing` shows feedback fields too.
pub(crate) fn inputs(
    view: &ModelView,
    source: &Source<'_>,
    existing: Option<&Map<String, Value>>,
    errors: &BTreeMap<String, String>,
) -> Vec<Input> {
    let mut rows = Vec::new();
    let mut focused = false;
    for field in &view.fields {
        let readonly_reason = match field.role {
            Role::Writable => None,
            Role::Feedback if existing.is_some() => {
                Some("written by the service's synchronizer (feedback state)")
            }
            _ => continue,
        };
        let (value, checked) = match (readonly_reason, source) {
            (Some(_), _) if field.widget == "many" => {
                (ids_text(existing.and_then(|o| o.get(&field.name))), false)
            }
            (Some(_), _) => (
                values::input_text(existing.and_then(|o| o.get(&field.name))),
                false,
            ),
            (None, Source::Defaults) => {
                let default = field.default.clone().unwrap_or_default();
                let checked = default == "true";
                (default, checked)
            }
            (None, Source::Object(object)) if field.widget == "many" => {
                (ids_text(object.get(&field.name)), false)
            }
            (None, Source::Object(object)) => {
                let value = object.get(&field.name);
                (values::input_text(value), value == Some(&Value::Bool(true)))
            }
            (None, Source::Submitted(pairs)) => {
                let value = crate::session::value(pairs, &field.name);
                (value.unwrap_or_default().to_owned(), value.is_some())
            }
        };
        let error = errors.get(&field.name).cloned();
        let autofocus = error.is_some() && !focused;
        focused |= autofocus;
        rows.push(Input {
            // A secret is never sent to the page: its input starts empty.
            value: if field.secret { String::new() } else { value },
            field: field.clone(),
            checked,
            error,
            autofocus,
            readonly_reason,
        });
    }
    rows
}

/// A list of ids as a form shows it: `3, 7`.
fn ids_text(value: Option<&Value>) -> String {
    match value {
        Some(Value::Array(ids)) => ids
            .iter()
            .map(|id| values::input_text(Some(id)))
            .collect::<Vec<_>>()
            .join(", "),
        other => values::input_text(other),
    }
}

/// The ids a `many` input holds (separated by commas or spaces), or the
/// text as typed when one is not a number (for the core to refuse).
fn ids(raw: &str) -> Value {
    let parsed: Option<Vec<Value>> = raw
        .split([',', ' '])
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| t.parse::<i64>().ok().map(Value::from))
        .collect();
    parsed.map_or_else(|| Value::String(raw.to_owned()), Value::Array)
}

/// The object a form's `pairs` describe, as REST would receive it: each
/// field users write, typed by its widget. A value that does not parse
/// as its type is sent as the text it is, so that the core refuses it
/// with the message REST gives. On `create`, empty inputs are left out
/// (the defaults apply); on an update they clear the field. A secret left
/// empty is left unchanged.
pub(crate) fn object(
    view: &ModelView,
    pairs: &[(String, String)],
    create: bool,
) -> Map<String, Value> {
    let mut out = Map::new();
    for field in view.writable() {
        let raw = crate::session::value(pairs, &field.name);
        if field.widget == "boolean" {
            out.insert(field.name.clone(), Value::Bool(raw.is_some()));
            continue;
        }
        let raw = raw.unwrap_or_default();
        if raw.trim().is_empty() && (raw.is_empty() || field.widget == "many") {
            if create || field.secret {
                continue;
            }
            let cleared = match field.widget {
                "string" | "text" if field.required => Value::String(String::new()),
                "many" => Value::Array(Vec::new()),
                _ => Value::Null,
            };
            out.insert(field.name.clone(), cleared);
            continue;
        }
        let value = match field.widget {
            "many" => ids(raw),
            "number" | "link" => raw
                .trim()
                .parse::<i64>()
                .map_or_else(|_| Value::String(raw.to_owned()), Value::from),
            "float" => raw
                .trim()
                .parse::<f64>()
                .ok()
                .and_then(Number::from_f64)
                .map_or_else(|| Value::String(raw.to_owned()), Value::Number),
            _ => Value::String(raw.to_owned()),
        };
        out.insert(field.name.clone(), value);
    }
    out
}

/// The form field a core error is about, with the message REST answers
/// (`Gadget.vlan: 5000 is above max_value 4095`); `None` when the error
/// is about no field of the form.
pub(crate) fn field_error(
    view: &ModelView,
    error: &syncplane_core::Error,
) -> Option<(String, String)> {
    let syncplane_core::Error::InvalidField { field, .. } = error else {
        return None;
    };
    let target = view.field(field)?;
    (target.role == Role::Writable).then(|| (target.name.clone(), error.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(name: &str, widget: &'static str, required: bool) -> FieldView {
        FieldView {
            name: name.into(),
            label: name.into(),
            widget,
            role: Role::Writable,
            required,
            max_length: None,
            min: None,
            max: None,
            choices: Vec::new(),
            help_text: String::new(),
            link_model: None,
            secret: false,
            default: None,
        }
    }

    fn view() -> ModelView {
        ModelView {
            def: syncplane_core::ModelDef {
                name: "Gadget".into(),
                app: "gadgets".into(),
                verbose_name: "Gadget".into(),
                description: String::new(),
                fields: Vec::new(),
                relations: Vec::new(),
            },
            fields: vec![
                field("name", "string", true),
                field("vlan", "number", false),
                field("ratio", "float", false),
                field("enabled", "boolean", true),
                field("node_ids", "many", false),
            ],
        }
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn inputs_are_typed_and_what_does_not_parse_goes_as_text() {
        let sent = object(
            &view(),
            &pairs(&[
                ("name", "a"),
                ("vlan", "12"),
                ("ratio", "x"),
                ("node_ids", "3, 7 9"),
                ("csrf", "t"),
            ]),
            true,
        );
        assert_eq!(
            Value::Object(sent),
            serde_json::json!({"name": "a", "vlan": 12, "ratio": "x", "enabled": false, "node_ids": [3, 7, 9]})
        );
        let sent = object(&view(), &pairs(&[("name", ""), ("enabled", "on")]), false);
        assert_eq!(
            Value::Object(sent),
            serde_json::json!({"name": "", "vlan": null, "ratio": null, "enabled": true, "node_ids": []})
        );
        let sent = object(&view(), &pairs(&[("node_ids", "3, x")]), true);
        assert_eq!(sent.get("node_ids"), Some(&Value::from("3, x")));
        assert_eq!(ids_text(Some(&serde_json::json!([3, 7]))), "3, 7");
    }
}
