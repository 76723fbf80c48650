//! The page templates, compiled into the binary and loaded once, with
//! HTML auto-escaping on for every one of them: a value reaches a page
//! only escaped, whatever a guest wrote into it.

use std::sync::LazyLock;

use axum::response::Html;
use minijinja::{AutoEscape, Environment};
use serde::Serialize;

use crate::error::GuiError;

/// Every template, by name.
const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../templates/base.html")),
    ("status.html", include_str!("../templates/status.html")),
    ("value.html", include_str!("../templates/value.html")),
    ("login.html", include_str!("../templates/login.html")),
    ("error.html", include_str!("../templates/error.html")),
    ("services.html", include_str!("../templates/services.html")),
    ("graph.html", include_str!("../templates/graph.html")),
    ("install.html", include_str!("../templates/install.html")),
    ("list.html", include_str!("../templates/list.html")),
    ("detail.html", include_str!("../templates/detail.html")),
    ("form.html", include_str!("../templates/form.html")),
    ("delete.html", include_str!("../templates/delete.html")),
    ("plan.html", include_str!("../templates/plan.html")),
    ("manage.html", include_str!("../templates/manage.html")),
    ("runs.html", include_str!("../templates/runs.html")),
];

static ENVIRONMENT: LazyLock<Environment<'static>> = LazyLock::new(environment);

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    // Escape everything, whatever a template's name says.
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    for (name, source) in TEMPLATES {
        if let Err(e) = env.add_template(name, source) {
            // Cannot happen with the templates shipped (a test parses them
            // all); the page using it then answers "something went wrong".
            tracing::error!(template = name, error = %e, "a GUI template does not parse");
        }
    }
    env
}

/// Renders the template `name` with `context`.
///
/// # Errors
///
/// [`GuiError::Internal`] when the template fails.
pub(crate) fn render(name: &str, context: &impl Serialize) -> Result<Html<String>, GuiError> {
    let template = ENVIRONMENT.get_template(name)?;
    Ok(Html(template.render(context)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_parses() {
        let mut env = Environment::new();
        for (name, source) in TEMPLATES {
            if let Err(e) = env.add_template(name, source) {
                panic!("{name}: {e:#}");
            }
        }
    }

    #[test]
    fn values_are_escaped() {
        let html = render(
            "error.html",
            &serde_json::json!({ "status": 400, "message": "<img src=x onerror=alert(1)>" }),
        )
        .map(|h| h.0)
        .unwrap_or_else(|e| panic!("render: {e}"));
        assert!(
            html.contains("&lt;img src=x onerror=alert(1)&gt;"),
            "{html}"
        );
        assert!(!html.contains("<img"), "{html}");
    }
}
