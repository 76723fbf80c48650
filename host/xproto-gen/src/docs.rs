//! A Markdown reference of the models: each model's description, bases,
//! fields (own and inherited, with type, options and help text), links and
//! reverse links.

use serde::Serialize;
use syncplane_xproto::{FieldType, LinkKind, Modifier, OptionValue, ResolvedSchema, ScalarType};

use crate::error::Result;
use crate::render::render;

#[derive(Serialize)]
struct DocModel {
    name: String,
    app_label: String,
    file: String,
    description: Option<String>,
    bases: String,
    collection: Option<String>,
    fields: Vec<DocField>,
    links: Vec<String>,
    reverse: Vec<String>,
}

#[derive(Serialize)]
struct DocField {
    name: String,
    ty: String,
    modifier: &'static str,
    options: String,
    help: String,
    origin: String,
}

/// Text safe inside a Markdown table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

fn value(v: &OptionValue) -> String {
    match v {
        OptionValue::Bool(b) => b.to_string(),
        OptionValue::Int(i) => i.to_string(),
        OptionValue::Float(f) => f.to_string(),
        OptionValue::Str(s) => format!("\"{s}\""),
        OptionValue::Ident(None) => "None".into(),
        OptionValue::Ident(Some(s)) => s.clone(),
    }
}

fn type_name(ty: &FieldType) -> String {
    match ty {
        FieldType::Scalar { scalar } => match scalar {
            ScalarType::String => "string",
            ScalarType::Bool => "bool",
            ScalarType::Int => "int",
            ScalarType::Float => "float",
        }
        .to_owned(),
        FieldType::Link { link, target, .. } => {
            let kind = match link {
                LinkKind::ManyToOne => "manytoone",
                LinkKind::OneToOne => "onetoone",
                LinkKind::ManyToMany => "manytomany",
            };
            format!("{kind} → `{target}`")
        }
    }
}

pub(crate) fn generate(ir: &ResolvedSchema) -> Result<String> {
    let models: Vec<DocModel> = ir
        .models
        .iter()
        .map(|m| DocModel {
            name: m.name.clone(),
            app_label: m.app_label.clone(),
            file: m.file.clone(),
            description: m
                .options
                .get("description")
                .and_then(|d| d.as_str())
                .map(str::to_owned),
            bases: m
                .bases
                .iter()
                .map(|b| format!("`{b}`"))
                .collect::<Vec<_>>()
                .join(", "),
            collection: (!m.is_abstract)
                .then(|| format!("/xosapi/v1/{}/{}", m.app_label, m.plural)),
            fields: m
                .fields
                .iter()
                .map(|f| DocField {
                    name: f.name.clone(),
                    ty: cell(&match &f.enum_type {
                        Some(e) => format!("enum `{e}`"),
                        None => type_name(&f.ty),
                    }),
                    modifier: match f.modifier {
                        _ if f.repeated => "repeated",
                        Modifier::Required => "required",
                        Modifier::Optional => "optional",
                    },
                    options: cell(
                        &f.options
                            .iter()
                            .filter(|(k, _)| k.as_str() != "help_text")
                            .map(|(k, v)| format!("{k}={}", value(v)))
                            .collect::<Vec<_>>()
                            .join(", "),
                    ),
                    help: cell(f.option_str("help_text").unwrap_or_default()),
                    origin: if f.origin == m.name {
                        String::new()
                    } else {
                        f.origin.clone()
                    },
                })
                .collect(),
            links: m
                .links
                .iter()
                .map(|l| match l.dst_port.as_deref() {
                    Some(rev) if rev != "+" => {
                        format!("`{}` → `{}` (reverse `{rev}`)", l.name, l.peer)
                    }
                    _ => format!("`{}` → `{}`", l.name, l.peer),
                })
                .collect(),
            reverse: m
                .reverse_fields
                .iter()
                .map(|r| format!("`{}` ← `{}.{}`", r.name, r.peer, r.peer_field))
                .collect(),
        })
        .collect();
    render("docs", minijinja::context! { models })
}

#[cfg(test)]
mod tests {
    use crate::testing::hello;
    use crate::{Target, generate};

    #[test]
    fn docs_list_fields_options_help_and_links() {
        let (schema, files) = hello();
        let md = generate(Target::Docs, &schema, &files).expect("docs");
        assert!(md.contains("## HelloWorldServiceInstance\n"), "{md}");
        assert!(
            md.contains(
                "| `hello_to` | string | required |  | The name of who is being greeted |  |"
            ),
            "{md}"
        );
        assert!(
            md.contains("| `hello_from` | string | required | max_length=64 |"),
            "{md}"
        );
        assert!(
            md.contains("- `greeter` → `HelloWorldService` (reverse `greetings`)"),
            "{md}"
        );
        assert!(
            md.contains("- `greetings` ← `HelloWorldServiceInstance.greeter`"),
            "{md}"
        );
        assert!(
            md.contains("/xosapi/v1/hello-world/helloworldservices"),
            "{md}"
        );
    }
}
