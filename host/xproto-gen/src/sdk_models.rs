//! Typed models for the Python and JavaScript guest SDKs, as the Rust
//! target writes them for `syncplane-sdk`:
//!
//! - [`python`]: frozen dataclasses subclassing `syncplane.Model`;
//! - [`typescript`]: a `.d.ts` declaring an interface per model and the
//!   `ModelDef` constant [`javascript`] defines;
//! - [`javascript`]: the `model(NAME, { fields })` helpers the JS SDK reads
//!   objects through (checking types, required fields and choices).
//!
//! Field types: strings, booleans, integers (link ids, enum numbers) and
//! floats (dates too). A field is optional unless it is `required` and
//! users write it, as in the Rust target; `repeated` fields are lists.
//! `choices` become `Literal[...]` / union types; feedback fields
//! (`feedback_state`) are listed in `FEEDBACK` and marked read-only (only a
//! sync step's `set_feedback` writes them). `manytomany` links have no
//! value in the object and are left out, as are names the language cannot
//! use as a field (and, in Python, `id`, `model` and `fields`, which
//! every object has already).

use serde::Serialize;
use syncplane_xproto::{FieldType, Modifier, ResolvedField, ResolvedSchema, ScalarType};

use crate::error::Result;
use crate::render::{quoted, render};

#[derive(Serialize)]
struct SdkModel {
    name: String,
    doc: Vec<String>,
    fields: Vec<SdkField>,
    feedback: Vec<String>,
}

#[derive(Serialize)]
struct SdkField {
    /// The key in the object (`owner_id` for a link).
    key: String,
    /// `string`, `boolean`, `integer`, `float` or `link`.
    kind: &'static str,
    /// The Python type, e.g. `Optional[str]`.
    py: String,
    /// The TypeScript type, without `| null`.
    ts: String,
    required: bool,
    repeated: bool,
    feedback: bool,
    /// `choices` as literals, JSON-quoted (valid in Python, JS and TS).
    choices: Vec<String>,
    doc: Vec<String>,
}

/// Python keywords, and names every object has already.
const PY_RESERVED: &[&str] = &[
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue",
    "def", "del", "elif", "else", "except", "finally", "for", "from", "global", "if", "import",
    "in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try", "while",
    "with", "yield", "id", "model", "fields", "NAME", "FEEDBACK",
];

/// Names the JS object already has, beside its fields.
const JS_RESERVED: &[&str] = &[
    "id",
    "model",
    "fields",
    "follow",
    "setFeedback",
    "toString",
    "__proto__",
    "constructor",
];

fn identifier(name: &str) -> bool {
    name.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn kind(field: &ResolvedField) -> &'static str {
    match &field.ty {
        FieldType::Link { .. } => "link",
        FieldType::Scalar { .. } if field.option_str("content_type") == Some("date") => "float",
        FieldType::Scalar { scalar } => match scalar {
            ScalarType::String => "string",
            ScalarType::Bool => "boolean",
            ScalarType::Int => "integer",
            ScalarType::Float => "float",
        },
    }
}

fn doc_lines(text: &str) -> Vec<String> {
    text.lines().map(|l| l.trim().to_owned()).collect()
}

fn models(ir: &ResolvedSchema, reserved: &[&str]) -> Vec<SdkModel> {
    ir.models
        .iter()
        .map(|m| {
            let mut doc = vec![format!("`{}` from `{}`.", m.name, m.file)];
            if let Some(description) = m.options.get("description").and_then(|d| d.as_str()) {
                doc.push(String::new());
                doc.extend(doc_lines(description));
            }
            let fields: Vec<SdkField> = m
                .fields
                .iter()
                .filter_map(|f| {
                    let key = f.column.clone()?;
                    if !identifier(&key) || reserved.contains(&key.as_str()) {
                        return None;
                    }
                    let kind = kind(f);
                    let choices: Vec<String> = f
                        .option_str("choices")
                        .and_then(syncplane_xproto::choice_pairs)
                        .map(|pairs| {
                            pairs
                                .into_iter()
                                .filter_map(|(v, _)| v)
                                .map(|v| quoted(&v))
                                .collect()
                        })
                        .unwrap_or_default();
                    let feedback = f.flag("feedback_state");
                    let required = f.modifier == Modifier::Required && f.writable && !f.repeated;
                    let (py_base, ts_base) = match kind {
                        _ if !choices.is_empty() => (
                            format!("Literal[{}]", choices.join(", ")),
                            choices.join(" | "),
                        ),
                        "string" => ("str".to_owned(), "string".to_owned()),
                        "boolean" => ("bool".to_owned(), "boolean".to_owned()),
                        "float" => ("float".to_owned(), "number".to_owned()),
                        _ => ("int".to_owned(), "number".to_owned()),
                    };
                    let (py, ts) = if f.repeated {
                        (format!("list[{py_base}]"), format!("{ts_base}[]"))
                    } else if required {
                        (py_base, ts_base)
                    } else {
                        (format!("Optional[{py_base}]"), ts_base)
                    };
                    let mut doc = match f.option_str("help_text") {
                        Some(help) => doc_lines(help),
                        None => vec![format!("`{}`", f.name)],
                    };
                    if let Some(target) = f.link_target() {
                        doc.push(format!("The id of the linked `{target}`."));
                    }
                    if let Some(e) = &f.enum_type {
                        doc.push(format!("A value of the enum `{e}`."));
                    }
                    if feedback {
                        doc.push(
                            "Feedback: read-only here; a sync step writes it with set_feedback."
                                .into(),
                        );
                    }
                    Some(SdkField {
                        key,
                        kind,
                        py,
                        ts,
                        required,
                        repeated: f.repeated,
                        feedback,
                        choices,
                        doc,
                    })
                })
                .collect();
            // Python dataclasses: fields without a default first.
            let mut fields = fields;
            fields.sort_by_key(|f| !f.required);
            let feedback = fields
                .iter()
                .filter(|f| f.feedback)
                .map(|f| quoted(&f.key))
                .collect();
            SdkModel {
                name: m.name.clone(),
                doc,
                fields,
                feedback,
            }
        })
        .collect()
}

/// Frozen dataclasses for the Python SDK.
pub(crate) fn python(ir: &ResolvedSchema) -> Result<String> {
    let models = models(ir, PY_RESERVED);
    let literal = models
        .iter()
        .any(|m| m.fields.iter().any(|f| !f.choices.is_empty()));
    render("python", minijinja::context! { models, literal })
}

/// TypeScript declarations of the models for the JavaScript SDK.
pub(crate) fn typescript(ir: &ResolvedSchema) -> Result<String> {
    render(
        "typescript",
        minijinja::context! { models => models(ir, JS_RESERVED) },
    )
}

/// The JavaScript `model()` definitions for the JavaScript SDK.
pub(crate) fn javascript(ir: &ResolvedSchema) -> Result<String> {
    render(
        "javascript",
        minijinja::context! { models => models(ir, JS_RESERVED) },
    )
}

#[cfg(test)]
mod tests {
    use crate::testing::hello;
    use crate::{Target, generate};

    const CHOICES: &str = r#"
option app_label = "c";
message Port (XOSBase) {
    required string mode = 1 [choices = "(('access', 'Access'), ('trunk', 'Trunk'))"];
    optional string state = 2 [feedback_state = True];
    repeated string tags = 3;
    required string class = 4;
}
"#;

    fn choices() -> String {
        let file = syncplane_xproto::parse("c.xproto", CHOICES).expect("parses");
        let files = [file];
        let schema = syncplane_xproto::Schema::resolve(&files).expect("valid");
        let mut out = String::new();
        for target in [Target::Python, Target::Typescript, Target::Javascript] {
            out.push_str(&generate(target, &schema, &files).expect("generates"));
        }
        out
    }

    #[test]
    fn python_dataclasses_type_fields_links_and_leave_defaults_last() {
        let (schema, files) = hello();
        let code = generate(Target::Python, &schema, &files).expect("python");
        assert!(
            code.contains("@dataclass(frozen=True)\nclass HelloWorldServiceInstance(Model):"),
            "{code}"
        );
        assert!(
            code.contains("    NAME: ClassVar[str] = \"HelloWorldServiceInstance\""),
            "{code}"
        );
        assert!(code.contains("    hello_to: str\n"), "{code}");
        assert!(
            code.contains("    greeter_id: Optional[int] = None\n"),
            "{code}"
        );
        assert!(
            code.contains("The id of the linked `HelloWorldService`."),
            "{code}"
        );
        // `id` comes with every object; not a dataclass field.
        assert!(!code.contains("    id:"), "{code}");
        // A field without a default never follows one with a default.
        for class in code.split("\n\n\n@dataclass").skip(1) {
            let fields: Vec<&str> = class
                .lines()
                .filter(|l| {
                    l.starts_with("    ")
                        && !l.starts_with("    \"")
                        && l.contains(": ")
                        && !l.contains("ClassVar")
                })
                .collect();
            let first_default = fields.iter().position(|l| l.contains(" = "));
            if let Some(first_default) = first_default {
                assert!(
                    fields[first_default..].iter().all(|l| l.contains(" = ")),
                    "{class}"
                );
            }
        }
    }

    #[test]
    fn choices_become_literal_types_and_feedback_is_marked_read_only() {
        let code = choices();
        assert!(
            code.contains("    mode: Literal[\"access\", \"trunk\"]\n"),
            "{code}"
        );
        assert!(
            code.contains("  readonly mode: \"access\" | \"trunk\";"),
            "{code}"
        );
        assert!(
            code.contains(
                "mode: { type: \"string\", required: true, choices: [\"access\", \"trunk\"] },"
            ),
            "{code}"
        );
        assert!(
            code.contains("\"policy_code\", \"backend_handle\", \"state\"})"),
            "{code}"
        );
        assert!(
            code.contains(
                "state: Optional[str] = field(default=None, metadata={\"feedback\": True})"
            ),
            "{code}"
        );
        assert!(code.contains("\"backend_handle\", \"state\"],"), "{code}");
        assert!(
            code.contains("tags: list[str] = field(default_factory=list)"),
            "{code}"
        );
        assert!(code.contains("  readonly tags: string[];"), "{code}");
        assert!(
            code.contains("tags: { type: \"string\", repeated: true },"),
            "{code}"
        );
        // A Python keyword cannot be a dataclass field; JS keeps it.
        assert!(!code.contains("    class: str"), "{code}");
        assert!(code.contains("  readonly class: string;"), "{code}");
    }

    #[test]
    fn typescript_declares_an_interface_and_a_definition_per_model() {
        let (schema, files) = hello();
        let code = generate(Target::Typescript, &schema, &files).expect("typescript");
        assert!(
            code.contains("export interface HelloWorldService {"),
            "{code}"
        );
        assert!(code.contains("  readonly hello_from: string;"), "{code}");
        assert!(
            code.contains("  readonly greeter_id: number | null;"),
            "{code}"
        );
        assert!(
            code.contains("export declare const HelloWorldService: ModelDef<HelloWorldService>;"),
            "{code}"
        );
        let js = generate(Target::Javascript, &schema, &files).expect("javascript");
        assert!(
            js.contains("export const HelloWorldService = model(\"HelloWorldService\", {"),
            "{js}"
        );
        assert!(js.contains("    greeter_id: { type: \"link\" },"), "{js}");
    }
}
