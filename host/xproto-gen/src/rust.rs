//! Typed model structs for the Rust guest SDK (`syncplane-sdk`), so a sync
//! step reads `o.hello_to` instead of a string-keyed map.
//!
//! Each struct implements `syncplane_sdk::Model` directly (not through the
//! `model!` macro) so fields named like Rust keywords (`type`) become raw
//! identifiers while still reading the xproto name. Field types: strings
//! `String`, booleans `bool`, integers and link ids `i64`, floats and dates
//! `f64`. A field is `Option<_>` unless it is `required` and users write it
//! (the core checks those on create); bookkeeping the host may leave unset
//! is optional. `repeated` fields are `Vec<_>` (empty when unset).
//! `manytomany` links have no value in the object and are left out.

use serde::Serialize;
use syncplane_xproto::{FieldType, Modifier, ResolvedField, ResolvedSchema, ScalarType};

use crate::error::Result;
use crate::render::{quoted, render};

#[derive(Serialize)]
struct RustModel {
    name: String,
    doc: Vec<String>,
    /// Whether a field name is not snake case (`dataPlaneIp` in the corpus).
    camel: bool,
    fields: Vec<RustField>,
}

#[derive(Serialize)]
struct RustField {
    ident: String,
    key: String,
    ty: String,
    doc: Vec<String>,
}

/// Strict and reserved keywords of Rust 2024 that can be raw identifiers.
const KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "do", "dyn",
    "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl", "in", "let",
    "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref", "return",
    "static", "struct", "trait", "true", "try", "type", "typeof", "unsafe", "unsized", "use",
    "virtual", "where", "while", "yield",
];

/// Names that cannot be raw identifiers at all.
const NOT_RAW: &[&str] = &["crate", "self", "super", "Self", "_"];

fn ident(name: &str) -> Option<String> {
    let valid = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid || NOT_RAW.contains(&name) {
        return None;
    }
    Some(if KEYWORDS.contains(&name) {
        format!("r#{name}")
    } else {
        name.to_owned()
    })
}

fn rust_type(field: &ResolvedField) -> String {
    let base = match &field.ty {
        FieldType::Link { .. } => "i64",
        FieldType::Scalar { .. } if field.option_str("content_type") == Some("date") => "f64",
        FieldType::Scalar { scalar } => match scalar {
            ScalarType::String => "String",
            ScalarType::Bool => "bool",
            ScalarType::Int => "i64",
            ScalarType::Float => "f64",
        },
    };
    if field.repeated {
        format!("Vec<{base}>")
    } else if field.modifier == Modifier::Required && field.writable {
        base.to_owned()
    } else {
        format!("Option<{base}>")
    }
}

/// Doc lines, each safe inside a `///` comment.
fn doc_lines(text: &str) -> Vec<String> {
    text.lines().map(|l| l.trim().to_owned()).collect()
}

pub(crate) fn generate(ir: &ResolvedSchema) -> Result<String> {
    let models: Vec<RustModel> = ir
        .models
        .iter()
        .map(|m| {
            let mut doc = vec![format!("`{}` from `{}`.", m.name, m.file)];
            if let Some(description) = m.options.get("description").and_then(|d| d.as_str()) {
                doc.push(String::new());
                doc.extend(doc_lines(description));
            }
            let fields: Vec<RustField> = m
                .fields
                .iter()
                .filter_map(|f| {
                    let key = f.column.clone()?;
                    let ident = ident(&key)?;
                    let mut doc = match f.option_str("help_text") {
                        Some(help) => doc_lines(help),
                        None => vec![format!("`{}`", f.name)],
                    };
                    if let Some(target) = f.link_target() {
                        doc.push(format!("The id of the linked `{target}`."));
                    }
                    Some(RustField {
                        ident,
                        key: quoted(&key),
                        ty: rust_type(f),
                        doc,
                    })
                })
                .collect();
            RustModel {
                name: m.name.clone(),
                doc,
                camel: fields
                    .iter()
                    .any(|f| f.ident.chars().any(|c| c.is_ascii_uppercase())),
                fields,
            }
        })
        .collect();
    render("rust", minijinja::context! { models })
}

#[cfg(test)]
mod tests {
    use crate::testing::hello;
    use crate::{Target, generate};

    #[test]
    fn structs_parse_as_rust_and_read_fields_by_name() {
        let (schema, files) = hello();
        let code = generate(Target::Rust, &schema, &files).expect("rust");
        let parsed = syn::parse_file(&code).unwrap_or_else(|e| panic!("{e}\n{code}"));
        let structs: Vec<String> = parsed
            .items
            .iter()
            .filter_map(|i| match i {
                syn::Item::Struct(s) => Some(s.ident.to_string()),
                _ => None,
            })
            .collect();
        assert_eq!(structs, ["HelloWorldService", "HelloWorldServiceInstance"]);
        assert!(code.contains("    pub hello_to: String,"), "{code}");
        assert!(code.contains("    pub greeter_id: Option<i64>,"), "{code}");
        assert!(code.contains("    pub name: Option<String>,"), "{code}");
        assert!(
            code.contains("hello_to: fields.get(\"hello_to\")?,"),
            "{code}"
        );
    }

    #[test]
    fn keyword_fields_become_raw_identifiers() {
        let file = syncplane_xproto::parse(
            "k.xproto",
            "message K (XOSBase) { required string type = 1; optional int32 self = 2; }",
        )
        .expect("parses");
        let files = [file];
        let schema = syncplane_xproto::Schema::resolve(&files).expect("valid");
        let code = generate(Target::Rust, &schema, &files).expect("rust");
        syn::parse_file(&code).unwrap_or_else(|e| panic!("{e}\n{code}"));
        assert!(code.contains("pub r#type: String,"), "{code}");
        assert!(!code.contains("pub self"), "{code}");
    }

    #[test]
    fn repeated_fields_become_vectors() {
        let file = syncplane_xproto::parse(
            "r.xproto",
            "message R (XOSBase) { repeated string tags = 1; repeated uint32 ports = 2; }",
        )
        .expect("parses");
        let files = [file];
        let schema = syncplane_xproto::Schema::resolve(&files).expect("valid");
        let code = generate(Target::Rust, &schema, &files).expect("rust");
        syn::parse_file(&code).unwrap_or_else(|e| panic!("{e}\n{code}"));
        assert!(code.contains("    pub tags: Vec<String>,"), "{code}");
        assert!(code.contains("    pub ports: Vec<i64>,"), "{code}");
        assert!(code.contains("tags: fields.get(\"tags\")?,"), "{code}");
    }
}
