//! The template environment: every template, embedded at compile time.

use minijinja::Environment;
use serde::Serialize;

use crate::error::{Error, Result};

const TEMPLATES: &[(&str, &str)] = &[
    ("proto", include_str!("../templates/proto.jinja")),
    ("tosca", include_str!("../templates/tosca.jinja")),
    ("sql", include_str!("../templates/sql.jinja")),
    ("rust", include_str!("../templates/rust.jinja")),
    ("python", include_str!("../templates/python.jinja")),
    ("typescript", include_str!("../templates/typescript.jinja")),
    ("javascript", include_str!("../templates/javascript.jinja")),
    ("dot", include_str!("../templates/dot.jinja")),
    ("docs", include_str!("../templates/docs.jinja")),
];

/// Renders the embedded template `name` with `context`.
///
/// Templates are trimmed (`trim_blocks`, `lstrip_blocks`) so block tags take
/// no lines of their own; values are not auto-escaped (no target is HTML).
pub(crate) fn render(name: &'static str, context: impl Serialize) -> Result<String> {
    let mut env = Environment::new();
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_keep_trailing_newline(true);
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    let source = TEMPLATES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, s)| *s)
        .unwrap_or_default();
    let fail = |source| Error::Render {
        template: name,
        source,
    };
    env.add_template(name, source).map_err(fail)?;
    let template = env.get_template(name).map_err(fail)?;
    template.render(context).map_err(fail)
}

/// A string as a double-quoted literal, escaped as JSON (valid in YAML,
/// protobuf options and Rust alike for the characters xproto uses).
pub(crate) fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}
