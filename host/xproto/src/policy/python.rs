//! The `{{ python }}` escapes syncplane evaluates: the corpus only uses
//! membership of a string literal in a field (`{{ ' ' not in obj.name }}`),
//! so that form is understood; any other escape is refused when the
//! models are loaded, never silently allowed or denied.

use super::ast::PolicyPath;

/// A supported escape: `'needle' in path` or `'needle' not in path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Membership {
    /// The string literal looked for.
    pub needle: String,
    /// Whether the escape is `not in`.
    pub negated: bool,
    /// The path searched, rooted at `obj`.
    pub haystack: PolicyPath,
}

/// Reads an escape's text (without the braces) as a [`Membership`]; `None`
/// for every other form.
pub(crate) fn parse(text: &str) -> Option<Membership> {
    let text = text.trim();
    let quote = text.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    let rest = &text[1..];
    let end = rest.find(quote)?;
    let needle = &rest[..end];
    if needle.contains('\\') {
        return None;
    }
    let rest = rest[end + 1..].trim_start();
    let (negated, rest) = if let Some(r) = rest
        .strip_prefix("not")
        .filter(|r| r.starts_with(char::is_whitespace))
    {
        (true, r.trim_start())
    } else {
        (false, rest)
    };
    let rest = rest.strip_prefix("in")?;
    if !rest.starts_with(char::is_whitespace) {
        return None;
    }
    let path = rest.trim();
    let segments: Vec<String> = path.split('.').map(str::to_owned).collect();
    let valid = segments.len() >= 2
        && segments[0] == "obj"
        && segments.iter().all(|s| {
            !s.is_empty()
                && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !s.starts_with(|c: char| c.is_ascii_digit())
        });
    valid.then(|| Membership {
        needle: needle.to_owned(),
        negated,
        haystack: PolicyPath {
            segments,
            call: false,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_corpus_form_is_read() {
        let m = parse(" ' ' not in obj.name ").expect("supported");
        assert_eq!(m.needle, " ");
        assert!(m.negated);
        assert_eq!(m.haystack.segments, ["obj", "name"]);
        let m = parse("\"x\" in obj.site.name").expect("supported");
        assert!(!m.negated);
        assert_eq!(m.haystack.segments, ["obj", "site", "name"]);
    }

    #[test]
    fn other_forms_are_not() {
        for text in [
            "len(obj.name) > 3",
            "' ' not in ctx.user.name",
            "' ' notin obj.name",
            "' ' in obj.name or True",
            "' ' in obj.",
            "'\\'' in obj.name",
            "__import__('os')",
        ] {
            assert_eq!(parse(text), None, "{text}");
        }
    }
}
