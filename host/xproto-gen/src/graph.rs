//! The model graph: models of the files as boxes, links as solid arrows
//! labelled with the field (and the reverse name), inheritance as hollow
//! arrows to the bases. Models the files only reference are drawn dashed.

use std::collections::BTreeSet;

use serde::Serialize;
use syncplane_xproto::ResolvedSchema;

use crate::error::{Error, Result};
use crate::render::{quoted, render};

#[derive(Serialize)]
struct Node {
    id: String,
    label: String,
    external: bool,
}

#[derive(Serialize)]
struct Edge {
    from: String,
    to: String,
    label: String,
    inherits: bool,
}

pub(crate) fn dot(ir: &ResolvedSchema) -> Result<String> {
    let own: BTreeSet<&str> = ir.models.iter().map(|m| m.name.as_str()).collect();
    let mut external = BTreeSet::new();
    let mut edges = Vec::new();
    for m in &ir.models {
        for base in &m.bases {
            if !m.ancestors.contains(base) {
                continue; // a mixin, not a model
            }
            external.insert(base.as_str());
            edges.push(Edge {
                from: quoted(&m.name),
                to: quoted(base),
                label: String::new(),
                inherits: true,
            });
        }
        for link in &m.links {
            external.insert(link.peer.as_str());
            let label = match link.dst_port.as_deref() {
                Some(reverse) if reverse != "+" => format!("{} / {reverse}", link.name),
                _ => link.name.clone(),
            };
            edges.push(Edge {
                from: quoted(&m.name),
                to: quoted(&link.peer),
                label: quoted(&label),
                inherits: false,
            });
        }
    }
    let nodes: Vec<Node> = own
        .iter()
        .map(|n| (*n, false))
        .chain(external.difference(&own).map(|n| (*n, true)))
        .map(|(name, external)| Node {
            id: quoted(name),
            label: quoted(name),
            external,
        })
        .collect();
    render("dot", minijinja::context! { nodes, edges })
}

/// The graph laid out and drawn by `layout-rs`, without Graphviz; the
/// text starts with `<svg`.
pub(crate) fn svg(ir: &ResolvedSchema) -> Result<String> {
    let text = dot(ir)?;
    let mut parser = layout::gv::DotParser::new(&text);
    let graph = parser.process().map_err(Error::Layout)?;
    let mut builder = layout::gv::GraphBuilder::new();
    builder.visit_graph(&graph);
    let mut visual = builder.get();
    let mut writer = layout::backends::svg::SVGWriter::new();
    visual.do_it(false, false, false, &mut writer);
    let svg = writer.finalize();
    // Without the XML declaration the picture can be inlined in HTML or
    // Markdown as it is.
    Ok(match svg.find("<svg") {
        Some(start) => svg[start..].to_owned(),
        None => svg,
    })
}

#[cfg(test)]
mod tests {
    use crate::testing::hello;
    use crate::{Target, generate};

    #[test]
    fn dot_has_models_links_and_bases() {
        let (schema, files) = hello();
        let dot = generate(Target::Dot, &schema, &files).expect("dot");
        assert!(dot.starts_with("digraph models {"), "{dot}");
        assert!(
            dot.contains("\"HelloWorldServiceInstance\" -> \"HelloWorldService\" [label=\"greeter / greetings\"];"),
            "{dot}"
        );
        assert!(
            dot.contains("\"HelloWorldService\" -> \"Service\" [arrowhead=empty, style=dashed];"),
            "{dot}"
        );
        assert!(
            dot.contains("\"Service\" [label=\"Service\", style=dashed];"),
            "{dot}"
        );
    }

    #[test]
    fn svg_is_drawn_without_graphviz() {
        let (schema, files) = hello();
        let svg = generate(Target::Svg, &schema, &files).expect("svg");
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.contains("HelloWorldServiceInstance"), "{svg}");
        assert!(svg.trim_end().ends_with("</svg>"), "{svg}");
    }
}
