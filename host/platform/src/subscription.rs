//! What an event step listens to: a list of topics, or a pattern over
//! topic names.

use regex::{Regex, RegexBuilder};
use serde::Serialize;

/// The most compiled size of a pattern: patterns come from packages, which
/// may be hostile.
const PATTERN_SIZE_LIMIT: usize = 1 << 16;

/// The longest pattern text.
const PATTERN_MAX_LEN: usize = 1024;

/// The topics an event step receives events from.
#[derive(Debug, Clone)]
pub enum Subscription {
    /// Exactly these topics.
    Topics(Vec<String>),
    /// Every topic whose whole name matches the regular expression, as
    /// XOS's `pattern` subscriptions did (Kafka's pattern subscription).
    Pattern(Regex),
}

/// Why a pattern was refused.
#[derive(Debug, thiserror::Error)]
#[error("event step pattern `{pattern}`: {reason}")]
pub struct PatternError {
    pattern: String,
    reason: String,
}

impl Subscription {
    /// Compiles `pattern`, which must match a whole topic name.
    ///
    /// # Errors
    ///
    /// A pattern that is too long, does not parse, or compiles too large.
    pub fn pattern(pattern: &str) -> Result<Self, PatternError> {
        let refuse = |reason: String| PatternError {
            pattern: pattern.chars().take(80).collect(),
            reason,
        };
        if pattern.len() > PATTERN_MAX_LEN {
            return Err(refuse(format!(
                "longer than {PATTERN_MAX_LEN} bytes ({})",
                pattern.len()
            )));
        }
        RegexBuilder::new(&format!("^(?:{pattern})$"))
            .size_limit(PATTERN_SIZE_LIMIT)
            .dfa_size_limit(PATTERN_SIZE_LIMIT)
            .build()
            .map(Subscription::Pattern)
            .map_err(|e| refuse(e.to_string()))
    }

    /// Whether events on `topic` reach the step.
    pub fn matches(&self, topic: &str) -> bool {
        match self {
            Subscription::Topics(topics) => topics.iter().any(|t| t == topic),
            Subscription::Pattern(regex) => regex.is_match(topic),
        }
    }

    /// The topics, when listed.
    pub fn topics(&self) -> &[String] {
        match self {
            Subscription::Topics(topics) => topics,
            Subscription::Pattern(_) => &[],
        }
    }

    /// The pattern as written, when there is one.
    pub fn pattern_text(&self) -> Option<String> {
        match self {
            Subscription::Topics(_) => None,
            Subscription::Pattern(regex) => {
                let full = regex.as_str();
                Some(full[4..full.len() - 2].to_owned())
            }
        }
    }
}

impl Serialize for Subscription {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Subscription::Topics(topics) => topics.serialize(serializer),
            Subscription::Pattern(_) => self.pattern_text().serialize(serializer),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pattern_matches_whole_topic_names_only() {
        let s = Subscription::pattern("regions\\.[a-z]+").expect("compiles");
        assert!(s.matches("regions.eu"));
        assert!(!s.matches("regions.eu.x"), "matched a longer name");
        assert!(!s.matches("old-regions.eu"), "matched inside a name");
        assert_eq!(s.pattern_text().as_deref(), Some("regions\\.[a-z]+"));
        let t = Subscription::Topics(vec!["a/b".into()]);
        assert!(t.matches("a/b") && !t.matches("a"));
    }

    #[test]
    fn hostile_patterns_are_refused_with_the_reason() {
        let long = "a".repeat(PATTERN_MAX_LEN + 1);
        let error = Subscription::pattern(&long).expect_err("too long");
        assert!(error.to_string().contains("longer than"), "{error}");
        let error = Subscription::pattern("(").expect_err("does not parse");
        assert!(error.to_string().contains("pattern `(`"), "{error}");
        let error = Subscription::pattern("\\w{1000}\\w{1000}").expect_err("too large");
        assert!(error.to_string().contains("size limit"), "{error}");
    }
}
