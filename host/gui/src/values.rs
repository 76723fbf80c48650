//! How values are shown: text cut with a visible marker, times in UTC,
//! secrets never.

use serde::Serialize;
use serde_json::Value;

/// Characters of a value a list cell shows.
pub(crate) const LIST_CUT: usize = 80;
/// Characters of a value a detail page shows.
pub(crate) const DETAIL_CUT: usize = 2000;

/// A value as a page shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct Shown {
    /// The text (escaped by the template).
    pub(crate) text: String,
    /// Characters cut off the end (0: nothing); the page says so.
    pub(crate) cut: usize,
    /// Whether there is no value (shown as a dash).
    pub(crate) empty: bool,
}

/// `text`, at most `max` characters of it.
pub(crate) fn cut(text: &str, max: usize) -> Shown {
    let total = text.chars().count();
    if total <= max {
        return Shown {
            text: text.to_owned(),
            cut: 0,
            empty: text.is_empty(),
        };
    }
    Shown {
        text: text.chars().take(max).collect(),
        cut: total - max,
        empty: false,
    }
}

/// A field's value as a page shows it.
pub(crate) fn show(value: Option<&Value>, max: usize) -> Shown {
    match value {
        None | Some(Value::Null) => Shown {
            text: String::new(),
            cut: 0,
            empty: true,
        },
        Some(Value::Bool(b)) => cut(if *b { "yes" } else { "no" }, max),
        Some(Value::String(s)) => cut(s, max),
        Some(other) => cut(&other.to_string(), max),
    }
}

/// The text a form input holds for a value (no cut: the form must send
/// back what it was given).
pub(crate) fn input_text(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// A time in seconds since the epoch (a number, or a string holding one,
/// as date fields are stored), in UTC; `None` for no time.
pub(crate) fn time(value: Option<&Value>) -> Option<String> {
    let secs = match value? {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    time_secs(secs)
}

/// Seconds since the epoch in UTC (`2026-12-06 21:27:09 UTC`).
pub(crate) fn time_secs(secs: f64) -> Option<String> {
    if !secs.is_finite() || secs <= 0.0 {
        return None;
    }
    // Whole seconds: what a page needs. The cast saturates.
    #[allow(
        clippy::cast_possible_truncation,
        reason = "a time in seconds fits i64; `as` saturates out of range"
    )]
    let whole = secs as i64;
    chrono::DateTime::from_timestamp(whole, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
}

/// Whether a field holds a secret, whose value no page shows (as the audit
/// log redacts: names with `password`, `secret` or `token`).
pub(crate) fn is_secret(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["password", "secret", "token"]
        .iter()
        .any(|word| name.contains(word))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn long_values_are_cut_by_characters_with_the_count_cut() {
        let shown = cut(&"é".repeat(10), 4);
        assert_eq!(shown.text, "éééé");
        assert_eq!(shown.cut, 6);
        assert_eq!(cut("abc", 4).cut, 0);
        assert!(show(Some(&Value::Null), 4).empty);
        assert_eq!(show(Some(&json!(true)), 4).text, "yes");
        assert_eq!(show(Some(&json!(42)), 4).text, "42");
    }

    #[test]
    fn times_read_numbers_and_numeric_strings() {
        assert_eq!(
            time(Some(&json!(0.5e9))).as_deref(),
            Some("1985-11-05 00:53:20 UTC")
        );
        assert_eq!(
            time(Some(&json!("500000000.25"))).as_deref(),
            Some("1985-11-05 00:53:20 UTC")
        );
        assert_eq!(time(Some(&json!("soon"))), None);
        assert!(is_secret("api_token") && is_secret("Password") && !is_secret("name"));
    }
}
