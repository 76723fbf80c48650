//! TOSCA custom types, as XOS serves them at `/custom_type/<model>`.
//!
//! Properties are the fields users may write (plus `must-exist`);
//! requirements are the model's links: `manytoone`/`onetoone` ones once,
//! `manytomany` ones once per target (`[ 0, UNBOUNDED ]`). A template
//! finds an existing object by its key: the `tosca_key` fields (links as
//! `<name>_id`), else `name`; `tosca_key_one_of` names alternative keys, as
//! in the original.

use std::collections::BTreeSet;

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
    one_of: Vec<String>,
}

#[derive(Serialize)]
struct Property {
    name: String,
    ty: &'static str,
    required: bool,
    description: Option<String>,
    key: bool,
}

#[derive(Serialize)]
struct Requirement {
    name: String,
    target: String,
    occurrences: &'static str,
    key: bool,
}

/// How a TOSCA template finds an existing object of a model, as the
/// original's `xproto_fields_to_tosca_keys` computes it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct ToscaKeys {
    /// Fields that are all part of the key: the `tosca_key` fields (links as
    /// `<name>_id`), else `name` when the model has one.
    pub fields: Vec<String>,
    /// Groups of which one field completes the key: the connected fields of
    /// `tosca_key_one_of` options, each group sorted (links as `<name>_id`).
    pub one_of: Vec<Vec<String>>,
}

/// The TOSCA keys of `model` (see [`ToscaKeys`]).
pub fn tosca_keys(model: &ResolvedModel) -> ToscaKeys {
    let column = |name: &str| {
        model
            .fields
            .iter()
            .find(|f| f.name == name)
            .and_then(|f| f.column.clone())
            .unwrap_or_else(|| name.to_owned())
    };
    let mut fields: Vec<String> = model
        .fields
        .iter()
        .filter(|f| f.flag("tosca_key"))
        .filter_map(|f| f.column.clone())
        .collect();
    if fields.is_empty() && model.fields.iter().any(|f| f.name == "name") {
        fields.push("name".to_owned());
    }
    // Connected components of the graph whose edges are the
    // `tosca_key_one_of` options (a field and each field it names).
    let mut groups: Vec<BTreeSet<String>> = Vec::new();
    for f in &model.fields {
        let Some(others) = f.option_str("tosca_key_one_of") else {
            continue;
        };
        let mut group: BTreeSet<String> = others
            .split(',')
            .map(|o| o.trim().to_owned())
            .filter(|o| !o.is_empty())
            .collect();
        group.insert(f.name.clone());
        let (joined, rest): (Vec<_>, Vec<_>) =
            groups.into_iter().partition(|g| !g.is_disjoint(&group));
        for g in joined {
            group.extend(g);
        }
        groups = rest;
        groups.push(group);
    }
    let mut one_of: Vec<Vec<String>> = groups
        .into_iter()
        .map(|g| g.into_iter().collect::<Vec<_>>())
        .collect();
    one_of.sort();
    let one_of = one_of
        .into_iter()
        .map(|g| g.iter().map(|n| column(n)).collect())
        .collect();
    ToscaKeys { fields, one_of }
}

fn tosca_type(model: &ResolvedModel) -> ToscaType {
    let ToscaKeys {
        fields: keys,
        one_of,
    } = tosca_keys(model);
    let mut properties = Vec::new();
    let mut requirements = Vec::new();
    for field in &model.fields {
        let key = field.column.as_ref().is_some_and(|c| keys.contains(c));
        match &field.ty {
            // A many-to-many link: the requirement may be named once per
            // target.
            FieldType::Link { target, .. } if field.column.is_none() => {
                requirements.push(Requirement {
                    name: field.name.clone(),
                    target: target.clone(),
                    occurrences: "[ 0, UNBOUNDED ]",
                    key: false,
                });
            }
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
                    // The original's `xproto_tosca_required`.
                    required: field.modifier == Modifier::Required
                        && !field.flag("blank")
                        && !field.options.contains_key("default"),
                    description: field.option_str("help_text").map(quoted),
                    key,
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
        one_of: one_of.iter().map(|g| g.join(", ")).collect(),
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
    fn tosca_key_one_of_groups_connected_fields_as_the_original() {
        // The documented example: ServiceInstanceLink's key is
        // provider_service_instance plus one of the subscriber links.
        let file = syncplane_xproto::parse(
            "k.xproto",
            "message K (XOSBase) {\n\
             required manytoone provider_service_instance->ServiceInstance:k_provided = 1:1001 [tosca_key = True];\n\
             optional manytoone subscriber_service_instance->ServiceInstance:k_subscribed = 3:1002;\n\
             optional manytoone subscriber_service->Service:k_subscribed = 4:1003 [tosca_key_one_of = subscriber_service_instance];\n\
             optional manytoone subscriber_network->Site:k_subscribed = 5:1004 [tosca_key_one_of = subscriber_service_instance];\n\
             optional string label = 6 [blank = True];\n\
             required string other = 7 [blank = True];\n}",
        )
        .expect("parses");
        let schema = Schema::resolve(std::slice::from_ref(&file)).expect("valid");
        let model = ResolvedModel::resolve(&schema, "K").expect("known");
        assert_eq!(
            tosca_keys(&model),
            ToscaKeys {
                fields: vec!["provider_service_instance_id".into()],
                one_of: vec![vec![
                    "subscriber_network_id".into(),
                    "subscriber_service_id".into(),
                    "subscriber_service_instance_id".into(),
                ]],
            }
        );
        let text = custom_type(&schema, "K").expect("renders").expect("known");
        assert!(
            text.contains("# key: provider_service_instance_id"),
            "{text}"
        );
        assert!(
            text.contains("# key, one of: subscriber_network_id, subscriber_service_id, subscriber_service_instance_id"),
            "{text}"
        );
        assert!(
            text.contains(
                "            other:\n                type: string\n                required: false"
            ),
            "blank = True makes a field optional in TOSCA: {text}"
        );
    }
}
