//! Errors and warnings rendered for people: a `file:line:column` headline
//! and a snippet of the source with a caret under the place, via `ariadne`.
//!
//! ```
//! use std::collections::BTreeMap;
//! use syncplane_xproto::{Diagnostic, render};
//!
//! let src = "message A {\n  required strin name = 1;\n}\n";
//! let err = syncplane_xproto::parse("a.xproto", src).unwrap_err();
//! let sources = BTreeMap::from([("a.xproto".to_owned(), src.to_owned())]);
//! let text = render(&[Diagnostic::from(&err)], &sources, false);
//! assert!(text.starts_with("error: a.xproto:2:12: unknown field type `strin`"));
//! assert!(text.contains("  required strin name = 1;"));
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;

use ariadne::{Color, Config, IndexType, Label, Report, ReportKind, Source};

use crate::error::{Error, ParseError};
use crate::ir::Location;

/// Something worth telling an author that does not stop the files from
/// being used: an unknown option (kept in the IR), an option given twice.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{location}: {message}")]
pub struct Warning {
    /// Where it is.
    pub location: Location,
    /// What is odd.
    pub message: String,
}

impl Warning {
    pub(crate) fn new(location: Location, message: String) -> Self {
        Warning { location, message }
    }
}

/// How bad a [`Diagnostic`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The files cannot be used.
    Error,
    /// The files can be used; the author may want to look.
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// One error or warning with its place, ready to [`render`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// Where.
    pub location: Location,
    /// What.
    pub message: String,
}

impl From<&ParseError> for Diagnostic {
    fn from(e: &ParseError) -> Self {
        Diagnostic {
            severity: Severity::Error,
            location: e.location.clone(),
            message: e.message.clone(),
        }
    }
}

impl From<&Warning> for Diagnostic {
    fn from(w: &Warning) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            location: w.location.clone(),
            message: w.message.clone(),
        }
    }
}

impl Diagnostic {
    /// Every error in `error` (one for a syntax error, all of them for
    /// validation errors).
    pub fn from_error(error: &Error) -> Vec<Diagnostic> {
        match error {
            Error::Parse(e) => vec![e.into()],
            Error::Invalid(all) => all.0.iter().map(Diagnostic::from).collect(),
        }
    }
}

/// Renders diagnostics one after another. Each starts with
/// `error: file:line:column: message` (or `warning: ...`), so the output
/// stays greppable, followed by the source line with the place underlined
/// when `sources` (file name → text) has the file. `color` adds ANSI
/// colours; pass `false` when the output is not a terminal.
pub fn render(
    diagnostics: &[Diagnostic],
    sources: &BTreeMap<String, String>,
    color: bool,
) -> String {
    let mut out = String::new();
    for d in diagnostics {
        // ariadne pads some lines with spaces; they only get in the way.
        for line in render_one(d, sources, color).lines() {
            out.push_str(line.trim_end_matches(' '));
            out.push('\n');
        }
    }
    out
}

fn render_one(d: &Diagnostic, sources: &BTreeMap<String, String>, color: bool) -> String {
    let headline = format!("{}: {}: {}", d.severity, d.location, d.message);
    let Some(text) = sources.get(&d.location.file) else {
        return format!("{headline}\n");
    };
    let span = span_at(text, &d.location);
    let file = d.location.file.clone();
    let (kind, paint) = match d.severity {
        Severity::Error => (ReportKind::Custom("error", Color::Red), Color::Red),
        Severity::Warning => (ReportKind::Custom("warning", Color::Yellow), Color::Yellow),
    };
    let report = Report::build(kind, (file.clone(), span.clone()))
        .with_config(
            Config::default()
                .with_color(color)
                .with_index_type(IndexType::Byte),
        )
        .with_message(format!("{}: {}", d.location, d.message))
        .with_label(
            Label::new((file.clone(), span))
                .with_message("here")
                .with_color(paint),
        )
        .finish();
    let mut buf = Vec::new();
    match report.write((file, Source::from(text.as_str())), &mut buf) {
        Ok(()) if color => String::from_utf8_lossy(&buf).into_owned(),
        // ariadne colours a custom report kind even when told not to.
        Ok(()) => strip_ansi(&String::from_utf8_lossy(&buf)),
        // Writing to a Vec cannot fail; should ariadne refuse the span,
        // the headline alone still says everything.
        Err(_) => format!("{headline}\n"),
    }
}

/// Removes ANSI colour sequences (`ESC [ ... m`).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The byte range to underline: the identifier, number or string starting
/// at the location, else one character.
fn span_at(text: &str, at: &Location) -> Range<usize> {
    let line_start = if at.line <= 1 {
        0
    } else {
        text.match_indices('\n')
            .nth(at.line as usize - 2)
            .map_or(text.len(), |(i, _)| i + 1)
    };
    let line = &text[line_start..];
    let line = &line[..line.find('\n').unwrap_or(line.len())];
    let start = line
        .char_indices()
        .nth(at.column.saturating_sub(1) as usize)
        .map_or(line.len(), |(i, _)| i);
    let rest = &line[start..];
    let len = match rest.chars().next() {
        None => 0,
        Some(q @ ('"' | '\'')) => rest[1..].find(q).map_or(rest.len(), |end| end + 2),
        Some(c) if c.is_alphanumeric() || c == '_' || c == '-' => {
            let word = rest
                .char_indices()
                .skip(1)
                .find(|(_, c)| !(c.is_alphanumeric() || *c == '_'))
                .map_or(rest.len(), |(i, _)| i);
            // `->` is one symbol, not a word.
            if rest.starts_with("->") { 2 } else { word }
        }
        Some(c) => c.len_utf8(),
    };
    let start = line_start + start;
    start..start + len
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources(name: &str, text: &str) -> BTreeMap<String, String> {
        BTreeMap::from([(name.to_owned(), text.to_owned())])
    }

    #[test]
    fn an_error_is_rendered_with_a_caret_snippet_and_no_colour() {
        let src = "message A {\n    required string name = 1\n}\n";
        let err = crate::parse("bad.xproto", src).expect_err("fails");
        let text = render(
            &[Diagnostic::from(&err)],
            &sources("bad.xproto", src),
            false,
        );
        assert!(
            text.starts_with("error: bad.xproto:3:1: expected `;` after the field, found `}`\n"),
            "{text}"
        );
        assert!(text.contains("bad.xproto:3:1"), "{text}");
        assert!(text.contains(" 3 │ }"), "{text}");
        assert!(!text.contains('\u{1b}'), "no colour codes: {text:?}");
    }

    #[test]
    fn the_whole_word_is_underlined() {
        let src = "message A {\n  required strin name = 1;\n}\n";
        let at = Location {
            file: "a".into(),
            line: 2,
            column: 12,
        };
        assert_eq!(&src[span_at(src, &at)], "strin");
        let at = Location { column: 1, ..at };
        assert_eq!(&src[span_at(src, &at)], " ");
    }

    #[test]
    fn a_warning_without_its_source_is_one_line() {
        let w = Warning::new(
            Location {
                file: "x.xproto".into(),
                line: 4,
                column: 2,
            },
            "unknown field option `colour`".into(),
        );
        let text = render(&[Diagnostic::from(&w)], &BTreeMap::new(), false);
        assert_eq!(
            text,
            "warning: x.xproto:4:2: unknown field option `colour`\n"
        );
    }

    #[test]
    fn colour_is_added_only_when_asked() {
        let src = "message A {\n  required strin name = 1;\n}\n";
        let err = crate::parse("a", src).expect_err("fails");
        let text = render(&[Diagnostic::from(&err)], &sources("a", src), true);
        assert!(text.contains('\u{1b}'), "{text:?}");
    }

    #[test]
    fn a_place_at_the_end_of_the_file_renders() {
        let src = "message A {\n  required string a = 1;\n";
        let err = crate::parse("a", src).expect_err("fails");
        let text = render(&[Diagnostic::from(&err)], &sources("a", src), false);
        assert!(
            text.starts_with("error: a:3:1: expected `}` to close message `A`"),
            "{text}"
        );
    }
}
