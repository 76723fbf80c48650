//! `GET /ui/graph`: the installed services and how they depend on each
//! other, drawn on the server as an SVG picture (no script, nothing from
//! another origin) with a table saying the same under it. A service's
//! dependencies are [`syncplane_platform::Host::dependencies`]: the uses
//! that make `service uninstall` refuse to remove the other one.
//!
//! Nodes are placed as the highest-priority `ServiceGraphConstraint`
//! says when there is one ([`crate::graph_constraint`]).
//!
//! Each node is a link to its service on `/ui/services`; administrators
//! see it coloured by health *and* drawn with a symbol, a word and a
//! border of its own (`ok` solid, `degraded` dashed, `failing` thick), so
//! health never depends on colour alone.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::response::Html;
use serde_json::{Value, json};
use syncplane_api::AppState;
use syncplane_platform::ServiceDependency;

use crate::error::GuiError;
use crate::graph_constraint;
use crate::graph_layout::{self, Layout};
use crate::session::Viewer;
use crate::{nav, services, templates};

/// What a node shows of its service's health: the CSS class key, a
/// symbol and the word.
fn cue(health: Option<&str>) -> (&'static str, &'static str, &'static str) {
    match health {
        Some("ok") => ("ok", "\u{2714}", "ok"),
        Some("degraded") => ("degraded", "\u{25d0}", "degraded"),
        Some("failing") => ("failing", "\u{26a0}", "failing"),
        _ => ("unknown", "\u{25cb}", "health not shown"),
    }
}

/// The dependencies grouped by `(service, on)`, each with how.
fn edges(dependencies: &[ServiceDependency]) -> BTreeMap<(String, String), Vec<String>> {
    let mut edges: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for d in dependencies {
        edges
            .entry((d.service.clone(), d.on.clone()))
            .or_default()
            .push(format!("{} uses `{}`", d.what, d.model));
    }
    edges
}

/// `GET /ui/graph`.
pub(crate) async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
) -> Result<Html<String>, GuiError> {
    let mut health: BTreeMap<String, (&'static str, String)> = BTreeMap::new();
    if viewer.user.is_admin() {
        for service in state.host.status().await?.services {
            health.insert(service.name.clone(), services::health(&service));
        }
    }
    let mut names: Vec<String> = state.host.services().into_iter().map(|s| s.name).collect();
    names.sort();
    let edges = edges(&state.host.dependencies());
    let pairs: Vec<(String, String)> = edges.keys().cloned().collect();
    let (fixed, bad_constraint) = match graph_constraint::columns(&state, &viewer).await? {
        Ok(fixed) => (fixed.unwrap_or_default(), None),
        Err(text) => (Vec::new(), Some(text)),
    };
    let layout: Layout = graph_layout::layout(&names, &pairs, &fixed);
    let nodes: Vec<Value> = layout
        .nodes
        .iter()
        .map(|node| {
            let (key, icon, word) = cue(health.get(&node.name).map(|h| h.0));
            json!({
                "name": node.name,
                "x": node.x, "y": node.y, "width": node.width, "height": node.height,
                "text_x": node.x + graph_layout::PAD,
                "text_y": node.y + node.height / 2 + 5,
                "key": key, "icon": icon, "word": word,
            })
        })
        .collect();
    let rows: Vec<Value> = names
        .iter()
        .map(|name| {
            let on: Vec<Value> = edges
                .iter()
                .filter(|((service, _), _)| service == name)
                .map(|((_, on), how)| json!({ "name": on, "how": how.join("; ") }))
                .collect();
            let (key, icon, word) = cue(health.get(name).map(|h| h.0));
            json!({
                "name": name,
                "on": on,
                "key": key, "icon": icon, "word": word,
                "reason": health.get(name).map(|h| h.1.clone()),
            })
        })
        .collect();
    let context = json!({
        "layout": nav::layout(&state, &viewer, "graph", None, None),
        "admin": viewer.user.is_admin(),
        "svg": { "width": layout.width, "height": layout.height, "edges": layout.edges },
        "nodes": nodes,
        "rows": rows,
        "constrained": !fixed.is_empty(),
        "bad_constraint": bad_constraint,
    });
    templates::render("graph.html", &context)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edges_group_the_uses_of_a_pair() {
        let d = |what: &str| ServiceDependency {
            service: "b".into(),
            on: "a".into(),
            what: what.into(),
            model: "A".into(),
        };
        let edges = edges(&[d("its model `B`"), d("its step `s`")]);
        assert_eq!(edges.len(), 1);
        assert_eq!(
            edges[&("b".to_owned(), "a".to_owned())],
            ["its model `B` uses `A`", "its step `s` uses `A`"]
        );
    }

    #[test]
    fn every_health_has_a_symbol_and_a_word() {
        for h in [Some("ok"), Some("degraded"), Some("failing"), None] {
            let (key, icon, word) = cue(h);
            assert!(!key.is_empty() && !icon.is_empty() && !word.is_empty());
        }
    }
}
