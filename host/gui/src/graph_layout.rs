//! A small layered layout for the service graph: the columns an
//! operator's `ServiceGraphConstraint` sets come first; then a service
//! with no dependencies is in the next column, any other one column right
//! of the furthest service it depends on; nodes are stacked in each column
//! by name. Enough for tens of services, and deterministic. (The CLI's
//! `layout-rs` drawing of the model graph writes a whole SVG document
//! without links, so it does not fit a page whose nodes are links.)

use std::collections::BTreeMap;

use serde::Serialize;

/// Space inside a node, left and right of its text, in pixels.
pub(crate) const PAD: i64 = 10;
/// A node's height.
const HEIGHT: i64 = 36;
/// About how wide a character of the label is.
const CHAR: i64 = 8;
/// Space between columns.
const GAP_X: i64 = 80;
/// Space between nodes of a column.
const GAP_Y: i64 = 24;
/// The margin around the picture.
const MARGIN: i64 = 12;
/// Room for the symbol and word after the name (`✔ ok`, `⚠ failing`).
const CUE: usize = 20;

/// A placed node.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Node {
    /// The service.
    pub(crate) name: String,
    /// Top left corner and size.
    pub(crate) x: i64,
    pub(crate) y: i64,
    pub(crate) width: i64,
    pub(crate) height: i64,
}

/// A placed arrow, from the dependent service to the one it uses.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Edge {
    pub(crate) from: String,
    pub(crate) to: String,
    pub(crate) x1: i64,
    pub(crate) y1: i64,
    pub(crate) x2: i64,
    pub(crate) y2: i64,
}

/// The whole picture.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Layout {
    pub(crate) nodes: Vec<Node>,
    pub(crate) edges: Vec<Edge>,
    pub(crate) width: i64,
    pub(crate) height: i64,
}

/// Each service's column: 0 without dependencies, else one more than the
/// furthest one it depends on (a cycle stops growing after `names.len()`
/// rounds).
fn columns(names: &[String], edges: &[(String, String)]) -> BTreeMap<String, usize> {
    let mut column: BTreeMap<String, usize> = names.iter().map(|n| (n.clone(), 0)).collect();
    for _ in 0..names.len() {
        let mut changed = false;
        for (from, to) in edges {
            let want = column.get(to).map_or(0, |c| c + 1);
            if let Some(c) = column.get_mut(from)
                && *c < want
                && want < names.len()
            {
                *c = want;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    column
}

/// The services of each column: first those `fixed` places (an
/// operator's `ServiceGraphConstraint`; names not installed are left
/// out), then the others by [`columns`].
fn arrange<'a>(
    names: &'a [String],
    edges: &[(String, String)],
    fixed: &[Vec<String>],
) -> Vec<Vec<&'a String>> {
    let mut placed = std::collections::BTreeSet::new();
    let mut by_column: Vec<Vec<&String>> = fixed
        .iter()
        .map(|column| {
            column
                .iter()
                .filter_map(|n| names.iter().find(|m| *m == n))
                .filter(|n| placed.insert(n.as_str()))
                .collect()
        })
        .collect();
    let offset = by_column.len();
    let column = columns(names, edges);
    for name in names.iter().filter(|n| !placed.contains(n.as_str())) {
        let at = offset + column.get(name).copied().unwrap_or(0);
        if by_column.len() <= at {
            by_column.resize_with(at + 1, Vec::new);
        }
        if let Some(list) = by_column.get_mut(at) {
            list.push(name);
        }
    }
    by_column.retain(|c| !c.is_empty());
    by_column
}

/// Places `names` and the `(dependent, used)` pairs of `edges`, with the
/// columns `fixed` sets first (see [`arrange`]).
pub(crate) fn layout(
    names: &[String],
    edges: &[(String, String)],
    fixed: &[Vec<String>],
) -> Layout {
    let by_column = arrange(names, edges, fixed);
    let mut nodes: BTreeMap<String, Node> = BTreeMap::new();
    let mut x = MARGIN;
    let mut height = 0;
    for list in &by_column {
        let chars = list.iter().map(|n| n.chars().count()).max().unwrap_or(0) + CUE;
        let width = i64::try_from(chars).unwrap_or(i64::MAX / 4) * CHAR + 2 * PAD;
        let mut y = MARGIN;
        for name in list {
            nodes.insert(
                (*name).clone(),
                Node {
                    name: (*name).clone(),
                    x,
                    y,
                    width,
                    height: HEIGHT,
                },
            );
            y += HEIGHT + GAP_Y;
        }
        height = height.max(y - GAP_Y + MARGIN);
        x += width + GAP_X;
    }
    let placed: Vec<Edge> = edges
        .iter()
        .filter_map(|(from, to)| {
            let (a, b) = (nodes.get(from)?, nodes.get(to)?);
            Some(Edge {
                from: from.clone(),
                to: to.clone(),
                x1: a.x,
                y1: a.y + a.height / 2,
                x2: b.x + b.width,
                y2: b.y + b.height / 2,
            })
        })
        .collect();
    Layout {
        nodes: names.iter().filter_map(|n| nodes.remove(n)).collect(),
        edges: placed,
        width: (x - GAP_X + MARGIN).max(2 * MARGIN),
        height: height.max(2 * MARGIN),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> String {
        v.to_owned()
    }

    #[test]
    fn a_dependent_is_right_of_what_it_uses() {
        let names = [s("a"), s("b"), s("c")];
        let edges = [(s("b"), s("a")), (s("c"), s("b"))];
        let l = layout(&names, &edges, &[]);
        let x = |n: &str| {
            l.nodes
                .iter()
                .find(|node| node.name == n)
                .map(|node| node.x)
        };
        assert!(x("a") < x("b") && x("b") < x("c"), "{l:?}");
        assert_eq!(l.edges.len(), 2);
        assert!(l.edges.iter().all(|e| e.x1 > e.x2), "{l:?}");
    }

    #[test]
    fn a_cycle_ends_and_everything_is_placed() {
        let names = [s("a"), s("b")];
        let edges = [(s("a"), s("b")), (s("b"), s("a"))];
        let l = layout(&names, &edges, &[]);
        assert_eq!(l.nodes.len(), 2);
        assert!(l.width > 0 && l.height > 0);
    }

    #[test]
    fn a_constraint_places_the_services_it_names_first() {
        let names = [s("a"), s("b"), s("c"), s("d")];
        let edges = [(s("b"), s("a"))];
        let fixed = [vec![s("c")], vec![s("b"), s("gone"), s("a")]];
        let by_column = arrange(&names, &edges, &fixed);
        let texts: Vec<Vec<&str>> = by_column
            .iter()
            .map(|c| c.iter().map(|n| n.as_str()).collect())
            .collect();
        assert_eq!(texts, [vec!["c"], vec!["b", "a"], vec!["d"]]);
    }

    #[test]
    fn no_services_is_an_empty_picture() {
        let l = layout(&[], &[], &[]);
        assert!(l.nodes.is_empty() && l.edges.is_empty());
    }
}
