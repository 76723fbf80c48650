//! OpenAPI 3 for the REST API as `host/api` serves it:
//! `/xosapi/v1/<app_label>/<plural>` (list, create) and `.../<id>` (read,
//! change, delete) for every concrete model, objects keyed by column names
//! (links as `<name>_id`), dates as seconds since the epoch, bookkeeping
//! and feedback fields read-only.

use serde_json::{Map, Value, json};
use syncplane_xproto::{
    FieldType, Modifier, OptionValue, ResolvedField, ResolvedModel, ResolvedSchema, ScalarType,
};

use crate::error::Result;

fn property(field: &ResolvedField) -> Value {
    let mut p = Map::new();
    let ty = match &field.ty {
        FieldType::Link { .. } => "integer",
        FieldType::Scalar { .. } if field.option_str("content_type") == Some("date") => "number",
        FieldType::Scalar { scalar } => match scalar {
            ScalarType::String => "string",
            ScalarType::Bool => "boolean",
            ScalarType::Int => "integer",
            ScalarType::Float => "number",
        },
    };
    p.insert("type".into(), json!(ty));
    let mut description = field.option_str("help_text").unwrap_or_default().to_owned();
    if let Some(target) = field.link_target() {
        if !description.is_empty() {
            description.push(' ');
        }
        description.push_str(&format!("(the id of a {target})"));
    }
    if !description.is_empty() {
        p.insert("description".into(), json!(description));
    }
    if let (Some(OptionValue::Int(max)), "string") = (field.options.get("max_length"), ty) {
        p.insert("maxLength".into(), json!(max));
    }
    if !field.writable {
        p.insert("readOnly".into(), json!(true));
    }
    if field.repeated {
        let item = Value::Object(std::mem::take(&mut p));
        p.insert("type".into(), json!("array"));
        p.insert("items".into(), item);
    }
    if field.modifier == Modifier::Optional {
        p.insert("nullable".into(), json!(true));
    }
    Value::Object(p)
}

fn schema(model: &ResolvedModel) -> Value {
    let mut properties = Map::new();
    properties.insert("id".into(), json!({"type": "integer", "readOnly": true}));
    let mut required = Vec::new();
    for field in &model.fields {
        let Some(column) = &field.column else {
            continue;
        };
        properties.insert(column.clone(), property(field));
        if field.modifier == Modifier::Required
            && field.writable
            && !field.options.contains_key("default")
        {
            required.push(json!(column));
        }
    }
    let mut out = json!({
        "type": "object",
        "description": model
            .options
            .get("description")
            .and_then(|d| d.as_str())
            .unwrap_or(&model.name),
        "properties": properties,
    });
    if !required.is_empty() {
        out["required"] = Value::Array(required);
    }
    out
}

fn reference(model: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{model}")})
}

fn ok(description: &str, schema: Value) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": schema}}})
}

fn paths(model: &ResolvedModel) -> (String, Value, String, Value) {
    let name = &model.name;
    let collection = format!("/xosapi/v1/{}/{}", model.app_label, model.plural);
    let list = json!({
        "get": {
            "operationId": format!("list{name}"),
            "summary": format!("List {name} objects, including those of models that inherit from it"),
            "responses": {"200": ok("the objects", json!({
                "type": "object",
                "properties": {"items": {"type": "array", "items": reference(name)}},
            }))},
        },
        "post": {
            "operationId": format!("create{name}"),
            "requestBody": {"required": true, "content": {"application/json": {"schema": reference(name)}}},
            "responses": {
                "201": ok("the created object", reference(name)),
                "400": {"description": "invalid fields"},
            },
        },
    });
    let not_found = json!({"description": "no such object"});
    let one = json!({
        "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "integer"}}],
        "get": {
            "operationId": format!("get{name}"),
            "responses": {"200": ok("the object", reference(name)), "404": not_found},
        },
        "put": {
            "operationId": format!("update{name}"),
            "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object"}}}},
            "responses": {"200": ok("the changed object", reference(name)), "404": not_found},
        },
        "delete": {
            "operationId": format!("delete{name}"),
            "responses": {"200": {"description": "deleted (the synchronizer tears it down, then it is purged)"}, "404": not_found},
        },
    });
    (
        collection.clone(),
        list,
        format!("{collection}/{{id}}"),
        one,
    )
}

pub(crate) fn generate(ir: &ResolvedSchema) -> Result<String> {
    let mut all_paths = Map::new();
    let mut schemas = Map::new();
    for model in &ir.models {
        schemas.insert(model.name.clone(), schema(model));
        if model.is_abstract {
            continue;
        }
        let (list_path, list, one_path, one) = paths(model);
        all_paths.insert(list_path, list);
        all_paths.insert(one_path, one);
    }
    let doc = json!({
        "openapi": "3.0.3",
        "info": {"title": "syncplane REST API", "version": "1"},
        "security": [{"basic": []}, {"xosUsername": [], "xosPassword": []}],
        "paths": all_paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "basic": {"type": "http", "scheme": "basic"},
                "xosUsername": {"type": "apiKey", "in": "header", "name": "xos-username"},
                "xosPassword": {"type": "apiKey", "in": "header", "name": "xos-password"},
            },
        },
    });
    Ok(serde_json::to_string_pretty(&doc)?)
}

#[cfg(test)]
mod tests {
    use crate::testing::hello;
    use crate::{Target, generate};

    #[test]
    fn openapi_has_the_rest_collections_and_typed_schemas() {
        let (schema, files) = hello();
        let text = generate(Target::Openapi, &schema, &files).expect("openapi");
        let doc: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        assert_eq!(doc["openapi"], "3.0.3");
        let paths = doc["paths"].as_object().expect("paths");
        let names: Vec<_> = paths.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "/xosapi/v1/hello-world/helloworldserviceinstances",
                "/xosapi/v1/hello-world/helloworldserviceinstances/{id}",
                "/xosapi/v1/hello-world/helloworldservices",
                "/xosapi/v1/hello-world/helloworldservices/{id}",
            ]
        );
        let si = &doc["components"]["schemas"]["HelloWorldServiceInstance"];
        assert_eq!(si["properties"]["hello_to"]["type"], "string");
        assert_eq!(si["properties"]["owner_id"]["type"], "integer");
        assert_eq!(si["properties"]["created"]["type"], "number");
        assert_eq!(si["properties"]["backend_code"]["readOnly"], true);
        let required = si["required"].as_array().expect("required");
        assert!(required.contains(&serde_json::json!("hello_to")), "{si}");
        assert_eq!(
            doc["components"]["securitySchemes"]["xosUsername"]["name"],
            "xos-username"
        );
    }
}
