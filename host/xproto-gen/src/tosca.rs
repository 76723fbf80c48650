//! TOSCA custom types, as XOS serves them at `/custom_type/<model>`.
//!
//! Properties are the fields users may write (plus `must-exist`);
//! requirements are the model's `manytoone`/`onetoone` links. A template
//! finds an existing object by its key: the `tosca_key` fields (links as
//! `<name>_id`), else `name`; `tosca_key_one_of` names alternative keys, as
//! in the original.

use serde::Serialize;
use syncplane_xproto::{FieldType, Modifier, ResolvedModel, ResolvedSchema, ScalarType, Schema};

use crate::error::Result;
use crate::render::{quoted, render};

#[derive(Serialize)]
struct ToscaType {
    name: String,
    lower: String,
    file: String,
    description: String,
    properties: Vec<Property>,
    requirements: Vec<Requirement>,
    keys: Vec<String>,
}

#[derive(Serialize)]
struct Property {
    name: String,
    ty: &'static str,
    required: bool,
    description: Option<String>,
    key: bool,
    one_of: Option<String>,
}

#[derive(Serialize)]
struct Requirement {
    name: String,
    target: String,
    occurrences: &'static str,
    key: bool,
}

/// The key fields of a model as the original's `xproto_fields_to_tosca_keys`
/// computes them: `tosca_key` fields (links as `<name>_id`), else `name`.
pub fn tosca_keys(model: &ResolvedModel) -> Vec<String> {
    let keys: Vec<String> = model
        .fields
        .iter()
        .filter(|f| f.flag("tosca_key"))
        .filter_map(|f| f.column.clone())
        .collect();
    if !keys.is_empty() {
        return keys;
    }
    model
        .fields
        .iter()
        .filter(|f| f.name == "name")
        .map(|f| f.name.clone())
        .collect()
}

fn tosca_type(model: &ResolvedModel) -> ToscaType {
    let keys = tosca_keys(model);
    let mut properties = Vec::new();
    let mut requirements = Vec::new();
    for field in &model.fields {
        let key = field.column.as_ref().is_some_and(|c| keys.contains(c));
        match &field.ty {
            FieldType::Link { .. } if field.column.is_none() => {}
            FieldType::Link { target, .. } => requirements.push(Requirement {
                name: field.name.clone(),
                target: target.clone(),
                occurrences: if field.modifier == Modifier::Required || key {
                    "[ 1, 1 ]"
                } else {
                    "[ 0, 1 ]"
                },
                key,
            }),
            FieldType::Scalar { scalar } if field.writable => {
                let ty = match scalar {
                    ScalarType::String if field.option_str("content_type") == Some("date") => {
                        "float"
                    }
                    ScalarType::String => "string",
                    ScalarType::Bool => "boolean",
                    ScalarType::Int => "integer",
                    ScalarType::Float => "float",
                };
                properties.push(Property {
                    name: field.name.clone(),
                    ty,
                    required: field.modifier == Modifier::Required
                        && !field.options.contains_key("default"),
                    description: field.option_str("help_text").map(quoted),
                    key,
                    one_of: field.option_str("tosca_key_one_of").map(str::to_owned),
                });
            }
            FieldType::Scalar { .. } => {}
        }
    }
    ToscaType {
        name: model.name.clone(),
        lower: model.name.to_ascii_lowercase(),
        file: model.file.clone(),
        description: quoted(
            model
                .options
                .get("description")
                .and_then(|d| d.as_str())
                .unwrap_or(&model.name),
        ),
        properties,
        requirements,
        keys,
    }
}

/// The TOSCA definition of one model of `schema`; `None` for an unknown
/// model. This is what `/custom_type/<model>` serves.
///
/// # Errors
///
/// [`Error::Render`](crate::Error::Render) if the template fails.
pub fn custom_type(schema: &Schema, model: &str) -> Result<Option<String>> {
    let Some(resolved) = ResolvedModel::resolve(schema, model) else {
        return Ok(None);
    };
    render(
        "tosca",
        minijinja::context! { types => [tosca_type(&resolved)] },
    )
    .map(Some)
}

/// The TOSCA types of the concrete models of `ir`, one YAML document each.
pub(crate) fn generate(_schema: &Schema, ir: &ResolvedSchema) -> Result<String> {
    let types: Vec<ToscaType> = ir
        .models
        .iter()
        .filter(|m| !m.is_abstract)
        .map(tosca_type)
        .collect();
    render("tosca", minijinja::context! { types })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::hello;
    use crate::{Target, generate};

    #[test]
    fn types_list_writable_properties_links_and_keys() {
        let (schema, files) = hello();
        let text = generate(Target::Tosca, &schema, &files).expect("tosca");
        assert!(
            text.contains("    tosca.nodes.HelloWorldServiceInstance:"),
            "{text}"
        );
        assert!(text.contains("            hello_to:\n                type: string\n                required: true"), "{text}");
        assert!(text.contains("            - greeter:\n                capability: tosca.capabilities.xos.HelloWorldService"), "{text}");
        assert!(text.contains("            - owner:\n"), "{text}");
        assert!(
            !text.contains("backend_code"),
            "feedback state is not writable: {text}"
        );
        assert_eq!(
            text.matches("tosca_definitions_version").count(),
            2,
            "{text}"
        );
        let single = custom_type(&schema, "HelloWorldService")
            .expect("renders")
            .expect("known");
        assert!(
            single.contains("description: \"HelloWorldService\""),
            "{single}"
        );
        assert!(single.contains("# key: name"), "{single}");
        assert!(custom_type(&schema, "Nope").expect("renders").is_none());
    }

    #[test]
    fn tosca_key_one_of_is_shown() {
        let file = syncplane_xproto::parse(
            "k.xproto",
            "message K (XOSBase) { optional string a = 1 [tosca_key_one_of = \"b\"]; optional string b = 2 [tosca_key = True]; }",
        )
        .expect("parses");
        let schema = Schema::resolve(std::slice::from_ref(&file)).expect("valid");
        let text = custom_type(&schema, "K").expect("renders").expect("known");
        assert!(text.contains("# key: b"), "{text}");
        assert!(text.contains("# key, or one of: b"), "{text}");
    }
}
