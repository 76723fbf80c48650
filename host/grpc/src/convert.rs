//! Objects to messages and back.
//!
//! A model's message has each stored field by its API name (`site_id` for
//! the link `site`), scalars inside `oneof <field>_present` so that unset,
//! `0`, `false` and `""` stay apart; `class_names` and
//! `self_content_type_id` say what the object is. `manytomany` links are
//! `repeated int32 <field>_ids` from the object's stored list; reverse
//! links (`<name>_ids`) are filled by the caller ([`set_reverse_ids`]),
//! which queries them for a whole answer at once.

use prost_reflect::{
    DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, ReflectMessage as _, Value,
};
use serde_json::{Map, Value as Json};
use syncplane_core::{Object, Registry};

/// Fields a client never writes: the server sets them.
const SERVER_FIELDS: &[&str] = &["id", "class_names", "self_content_type_id"];

/// A JSON value as a protobuf value of `field`'s kind; `None` for null or
/// a value that does not fit (logged).
fn to_value(field: &FieldDescriptor, json: &Json) -> Option<Value> {
    let kind = field.kind();
    let value = match (kind, json) {
        (_, Json::Null) => return None,
        (Kind::Int32 | Kind::Sint32 | Kind::Sfixed32, j) => {
            Value::I32(i32::try_from(j.as_i64()?).ok()?)
        }
        (Kind::Uint32 | Kind::Fixed32, j) => Value::U32(u32::try_from(j.as_i64()?).ok()?),
        (Kind::Int64 | Kind::Sint64 | Kind::Sfixed64, j) => Value::I64(j.as_i64()?),
        (Kind::Uint64 | Kind::Fixed64, j) => Value::U64(j.as_u64()?),
        // Precision a float field cannot hold is lost, as in XOS.
        #[allow(clippy::cast_possible_truncation, reason = "a float field holds f32")]
        (Kind::Float, j) => Value::F32(j.as_f64()? as f32),
        (Kind::Double, j) => Value::F64(j.as_f64()?),
        (Kind::Bool, j) => Value::Bool(j.as_bool()?),
        (Kind::String, Json::String(s)) => Value::String(s.clone()),
        (Kind::String, other) => Value::String(other.to_string()),
        (Kind::Bytes, Json::String(s)) => Value::Bytes(s.clone().into_bytes().into()),
        _ => return None,
    };
    Some(value)
}

/// A protobuf scalar as JSON.
fn to_json(value: &Value) -> Option<Json> {
    Some(match value {
        Value::Bool(b) => Json::Bool(*b),
        Value::I32(i) => Json::from(*i),
        Value::I64(i) => Json::from(*i),
        Value::U32(u) => Json::from(*u),
        Value::U64(u) => Json::from(*u),
        Value::F32(f) => Json::from(f64::from(*f)),
        Value::F64(f) => Json::from(*f),
        Value::String(s) => Json::String(s.clone()),
        Value::Bytes(b) => Json::String(String::from_utf8_lossy(b).into_owned()),
        Value::EnumNumber(n) => Json::from(*n),
        Value::Message(_) | Value::List(_) | Value::Map(_) => return None,
    })
}

/// `"Site,XOSBase"`: the object's model, then its ancestors, nearest first.
fn class_names(registry: &Registry, model: &str) -> String {
    let mut names = vec![model];
    names.extend(registry.schema().ancestors(model));
    names.join(",")
}

/// The object as a message of `descriptor` (its model's, or an ancestor's).
pub(crate) fn to_message(
    registry: &Registry,
    descriptor: &MessageDescriptor,
    object: &Object,
) -> DynamicMessage {
    let mut message = DynamicMessage::new(descriptor.clone());
    for field in descriptor.fields() {
        let value = match field.name() {
            "id" => Some(Value::I32(i32::try_from(object.id).unwrap_or(i32::MAX))),
            "class_names" => Some(Value::String(class_names(registry, &object.model))),
            "self_content_type_id" => registry
                .schema()
                .model(&object.model)
                .map(|m| Value::String(format!("{}.{}", m.app_label, m.name.to_ascii_lowercase()))),
            // Never sent, as REST never shows it.
            "password" => None,
            // Lists are set below, element by element.
            _ if field.is_list() => None,
            name => object.fields.get(name).and_then(|json| {
                let value = to_value(&field, json);
                if value.is_none() && !json.is_null() {
                    tracing::warn!(
                        model = %object.model,
                        id = object.id,
                        field = name,
                        %json,
                        "a stored value does not fit its protobuf type; left unset"
                    );
                }
                value
            }),
        };
        match (value, object.fields.get(field.name())) {
            (_, Some(Json::Array(stored))) if field.is_list() => {
                let list = stored.iter().filter_map(|v| to_value(&field, v)).collect();
                message.set_field(&field, Value::List(list));
            }
            (Some(value), _) if field.is_list() => {
                message.set_field(&field, Value::List(vec![value]));
            }
            (Some(value), _) => message.set_field(&field, value),
            (None, _) => {}
        }
    }
    message
}

/// Sets the reverse-link list `name` (`nodes_ids`) of `message` to `ids`.
pub(crate) fn set_reverse_ids(message: &mut DynamicMessage, name: &str, ids: &[i64]) {
    let Some(field) = message.descriptor().get_field_by_name(name) else {
        return;
    };
    let list = ids
        .iter()
        .filter_map(|id| i32::try_from(*id).ok().map(Value::I32))
        .collect();
    message.set_field(&field, Value::List(list));
}

/// The fields a client set in `message`, as the core's input: server-set
/// fields and reverse-link lists are left out; with `only` (XOS's
/// `update_fields`), only those fields.
///
/// A `manytomany` list (one of `many`, `<field>_ids`) replaces the
/// object's set when it is named in `only`, or, without `only`, when it
/// is not empty: protobuf cannot tell an empty list from an unset one,
/// and XOS's ORM sends a whole object on `save()`.
pub(crate) fn to_input(
    message: &DynamicMessage,
    only: Option<&[String]>,
    many: &[String],
) -> Map<String, Json> {
    let mut input = Map::new();
    let named = |name: &str| only.is_some_and(|only| only.iter().any(|f| f == name));
    for field in message.descriptor().fields() {
        let name = field.name();
        if SERVER_FIELDS.contains(&name) || (only.is_some() && !named(name)) {
            continue;
        }
        if field.is_list() {
            if !many.iter().any(|m| m == name) {
                continue;
            }
            let ids: Vec<Json> = match message.get_field(&field).as_ref() {
                Value::List(list) => list.iter().filter_map(to_json).collect(),
                _ => Vec::new(),
            };
            if !ids.is_empty() || named(name) {
                input.insert(name.to_owned(), Json::Array(ids));
            }
            continue;
        }
        if !message.has_field(&field) {
            continue;
        }
        if let Some(json) = to_json(&message.get_field(&field)) {
            input.insert(name.to_owned(), json);
        }
    }
    input
}

/// The `id` a message carries, if set.
pub(crate) fn id_of(message: &DynamicMessage) -> Option<i64> {
    let field = message.descriptor().get_field_by_name("id")?;
    if !message.has_field(&field) {
        return None;
    }
    match message.get_field(&field).as_ref() {
        Value::I32(i) => Some(i64::from(*i)),
        Value::I64(i) => Some(*i),
        _ => None,
    }
}
