//! Limits on a recipe's YAML, checked before the recipe is parsed.
//!
//! libyaml (behind `serde_yaml_ng`) reads a whole document into events
//! before any depth check runs, and its scanner does work proportional to
//! the open flow collections on every token: 1 MB of `[[[[...` costs it
//! hours of CPU before `serde_yaml_ng` stops at its recursion limit.
//! Aliases are expanded by the deserializer, so a few kilobytes of nested
//! anchors (a "billion laughs") become millions of values.
//!
//! [`check`] walks the recipe once with `saphyr-parser`, a streaming YAML
//! 1.2 parser, and stops at the first event past a limit: nesting beyond
//! [`Limits::max_depth`] is refused after reading `max_depth` levels, so
//! the cost stays linear in the input. Only text that passes goes on to
//! `serde_yaml_ng`.

use std::fmt;

use saphyr_parser::{Event, Parser, ScanError, Span};

use crate::error::{Error, Result};

/// The largest recipe accepted by default, in bytes (2 MiB).
pub const MAX_RECIPE_BYTES: usize = 2 << 20;

/// The bounds a recipe must stay within. [`Limits::default`] holds the
/// values the API applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest recipe text in bytes. Default 2 MiB, the API's body limit.
    pub max_bytes: usize,
    /// Deepest nesting of sequences and mappings. Default 64; a recipe
    /// needs about 6 (`topology_template`, `node_templates`, the template,
    /// `properties`, a value).
    pub max_depth: usize,
    /// Most aliases (`*name`) in a recipe. Default 1,000.
    pub max_aliases: usize,
    /// Most nodes (scalars, sequences, mappings) with every alias counted
    /// as the size of the node it names. Default 200,000: a 2 MiB recipe of
    /// short templates has about 100,000.
    pub max_nodes: usize,
    /// Most node templates in a recipe. Default 10,000, as many as one
    /// REST batch create. A recipe is applied in one transaction on the
    /// store's only connection while other requests wait (at most 5 s,
    /// then `503`); templates of one model that do not require each other
    /// are created as one batch, so 10,000 take well under a second in a
    /// release build (they took 14 s, debug, one by one).
    pub max_templates: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: MAX_RECIPE_BYTES,
            max_depth: 64,
            max_aliases: 1_000,
            max_nodes: 200_000,
            max_templates: 10_000,
        }
    }
}

/// Which limit a recipe went past.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitExceeded {
    /// The text is longer than [`Limits::max_bytes`].
    Size {
        /// The text's length.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// Sequences and mappings nest deeper than [`Limits::max_depth`].
    Depth {
        /// The limit.
        max: usize,
    },
    /// More aliases than [`Limits::max_aliases`].
    Aliases {
        /// The limit.
        max: usize,
    },
    /// More nodes, aliases expanded, than [`Limits::max_nodes`].
    Nodes {
        /// The limit.
        max: usize,
    },
    /// More node templates than [`Limits::max_templates`].
    Templates {
        /// How many the recipe has.
        count: usize,
        /// The limit.
        max: usize,
    },
}

impl fmt::Display for LimitExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LimitExceeded::Size { bytes, max } => {
                write!(f, "recipe of {bytes} bytes is larger than {max} bytes")
            }
            LimitExceeded::Depth { max } => write!(f, "nesting deeper than {max}"),
            LimitExceeded::Aliases { max } => write!(f, "more than {max} aliases"),
            LimitExceeded::Nodes { max } => {
                write!(f, "more than {max} nodes once aliases are expanded")
            }
            LimitExceeded::Templates { count, max } => {
                write!(
                    f,
                    "{count} node templates, more than {max}; split the recipe"
                )
            }
        }
    }
}

/// Checks `text` against `limits` without building any value.
///
/// # Errors
///
/// [`Error::Limit`] naming the limit and where it was passed;
/// [`Error::Syntax`] when the text is not YAML (the walk cannot go on
/// then, so the rest is not looked at either).
pub fn check(text: &str, limits: &Limits) -> Result<()> {
    if text.len() > limits.max_bytes {
        return Err(Error::Limit {
            limit: LimitExceeded::Size {
                bytes: text.len(),
                max: limits.max_bytes,
            },
            location: None,
        });
    }
    let mut walk = Walk::new(limits);
    for event in Parser::new_from_str(text) {
        let (event, span) = event.map_err(|e| scan_error(e, limits))?;
        walk.event(&event).map_err(|limit| Error::Limit {
            limit,
            location: Some(location(&span)),
        })?;
    }
    Ok(())
}

/// Line (1-based) and column (1-based) where `span` starts.
fn location(span: &Span) -> (usize, usize) {
    (span.start.line(), span.start.col() + 1)
}

/// saphyr's scanner keeps flow nesting in a `u8` and stops past 255 with
/// this message, before it hands out the events [`Walk`] counts.
const SCANNER_DEPTH_ERROR: &str = "recursion limit exceeded";

fn scan_error(e: ScanError, limits: &Limits) -> Error {
    let location = Some((e.marker().line(), e.marker().col() + 1));
    if e.info() == SCANNER_DEPTH_ERROR {
        return Error::Limit {
            limit: LimitExceeded::Depth {
                max: limits.max_depth,
            },
            location,
        };
    }
    Error::Syntax {
        location,
        message: e.info().to_owned(),
    }
}

/// The state of one walk over a recipe's events.
struct Walk<'l> {
    limits: &'l Limits,
    /// Open collections: the anchor id (0 for none) and the node count
    /// when the collection started.
    open: Vec<(usize, usize)>,
    /// Nodes so far, aliases expanded.
    nodes: usize,
    aliases: usize,
    /// Expanded size of each anchored node, by anchor id.
    anchored: std::collections::HashMap<usize, usize>,
}

impl<'l> Walk<'l> {
    fn new(limits: &'l Limits) -> Self {
        Walk {
            limits,
            open: Vec::new(),
            nodes: 0,
            aliases: 0,
            anchored: std::collections::HashMap::new(),
        }
    }

    fn event(&mut self, event: &Event<'_>) -> std::result::Result<(), LimitExceeded> {
        match event {
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                if self.open.len() >= self.limits.max_depth {
                    return Err(LimitExceeded::Depth {
                        max: self.limits.max_depth,
                    });
                }
                self.open.push((*anchor, self.nodes));
                self.add_nodes(1)?;
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some((anchor, start)) = self.open.pop()
                    && anchor != 0
                {
                    self.anchored.insert(anchor, self.nodes - start);
                }
            }
            Event::Scalar(_, _, anchor, _) => {
                self.add_nodes(1)?;
                if *anchor != 0 {
                    self.anchored.insert(*anchor, 1);
                }
            }
            Event::Alias(anchor) => {
                self.aliases += 1;
                if self.aliases > self.limits.max_aliases {
                    return Err(LimitExceeded::Aliases {
                        max: self.limits.max_aliases,
                    });
                }
                // An alias to a node still open (a recursive alias) counts
                // as one node; the deserializer refuses it anyway.
                let size = self.anchored.get(anchor).copied().unwrap_or(1);
                self.add_nodes(size)?;
            }
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart(_)
            | Event::DocumentEnd => {}
        }
        Ok(())
    }

    fn add_nodes(&mut self, n: usize) -> std::result::Result<(), LimitExceeded> {
        self.nodes = self.nodes.saturating_add(n);
        if self.nodes > self.limits.max_nodes {
            return Err(LimitExceeded::Nodes {
                max: self.limits.max_nodes,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(text: &str) -> (LimitExceeded, Option<(usize, usize)>) {
        match check(text, &Limits::default()) {
            Err(Error::Limit { limit, location }) => (limit, location),
            other => panic!("expected a limit error, got {other:?}"),
        }
    }

    #[test]
    fn a_megabyte_of_flow_nesting_is_refused_at_the_depth_limit_quickly() {
        let text = format!("a: {}{}\n", "[".repeat(500_000), "]".repeat(500_000));
        let started = std::time::Instant::now();
        let (limit, location) = refused(&text);
        assert_eq!(limit, LimitExceeded::Depth { max: 64 });
        // saphyr's scanner stops at 255 open flow collections, before it
        // hands out events: the refusal is located there.
        assert_eq!(location, Some((1, 259)));
        assert!(
            started.elapsed() < std::time::Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        let error = check(&text, &Limits::default()).expect_err("deep");
        assert_eq!(
            error.to_string(),
            "recipe refused: nesting deeper than 64 at line 1, column 259"
        );
    }

    #[test]
    fn flow_nesting_past_the_limit_but_within_the_scanner_is_located_where_it_passes() {
        let text = format!("a: {}{}\n", "{b: ".repeat(100), "}".repeat(100));
        assert_eq!(
            refused(&text),
            (LimitExceeded::Depth { max: 64 }, Some((1, 256)))
        );
    }

    #[test]
    fn block_nesting_counts_too() {
        let mut text = String::new();
        for depth in 0..100 {
            text.push_str(&"  ".repeat(depth));
            text.push_str("k:\n");
        }
        assert_eq!(refused(&text).0, LimitExceeded::Depth { max: 64 });
    }

    #[test]
    fn an_alias_bomb_is_refused_before_it_expands() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for level in 1..10 {
            let prev = format!("*a{}", level - 1);
            text.push_str(&format!(
                "a{level}: &a{level} [{}]\n",
                [prev.as_str(); 10].join(", ")
            ));
        }
        assert_eq!(refused(&text).0, LimitExceeded::Nodes { max: 200_000 });
    }

    #[test]
    fn too_many_aliases_are_refused() {
        let text = format!("a: &a x\nb: [{}]\n", ["*a"; 1001].join(", "));
        assert_eq!(refused(&text).0, LimitExceeded::Aliases { max: 1000 });
    }

    #[test]
    fn oversized_text_is_refused_before_it_is_read() {
        let limits = Limits {
            max_bytes: 10,
            ..Limits::default()
        };
        let error = check("a: 0123456789", &limits).expect_err("large");
        assert_eq!(
            error.to_string(),
            "recipe refused: recipe of 13 bytes is larger than 10 bytes"
        );
    }

    #[test]
    fn ordinary_recipes_with_anchors_pass() {
        let text = "defaults: &d {kind: generic}\na: *d\nb: [*d, *d]\n";
        check(text, &Limits::default()).expect("within limits");
    }
}
