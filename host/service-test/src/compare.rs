//! Comparing what a test expects with what is there.

use serde_json::{Map, Value};

/// Whether `actual` is what `expected` says: numbers compare by value
/// (`1` is `1.0`), and a mapping expected where the actual value is text
/// holding a JSON object (`backend_register`) compares with that object,
/// key by key (other keys of the object are not checked).
pub(crate) fn values_match(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::Number(e), Value::Number(a)) => e.as_f64() == a.as_f64(),
        (Value::Array(e), Value::Array(a)) => {
            e.len() == a.len() && e.iter().zip(a).all(|(e, a)| values_match(e, a))
        }
        (Value::Object(e), Value::Object(a)) => {
            e.len() == a.len()
                && e.iter()
                    .all(|(k, e)| a.get(k).is_some_and(|a| values_match(e, a)))
        }
        (Value::Object(e), Value::String(text)) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(a)) => fields_match(e, &a).is_empty(),
            _ => false,
        },
        (e, a) => e == a,
    }
}

/// The fields of `expected` that `actual` does not have, or has with
/// another value: `(name, expected, actual)`, `actual` `None` when absent.
pub(crate) fn fields_match<'a>(
    expected: &'a Map<String, Value>,
    actual: &Map<String, Value>,
) -> Vec<(&'a str, &'a Value, Option<Value>)> {
    expected
        .iter()
        .filter_map(|(name, e)| match actual.get(name) {
            Some(a) if values_match(e, a) => None,
            other => Some((name.as_str(), e, other.cloned())),
        })
        .collect()
}

/// A value on one line, as JSON.
pub(crate) fn show(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| format!("{value:?}"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn numbers_compare_by_value_and_json_text_by_its_keys() {
        assert!(values_match(&json!(1), &json!(1.0)));
        assert!(!values_match(&json!(1), &json!("1")));
        assert!(values_match(
            &json!({"failures": 2}),
            &json!(r#"{"failures": 2, "next_run": 17}"#)
        ));
        assert!(!values_match(
            &json!({"failures": 1}),
            &json!(r#"{"failures": 2}"#)
        ));
        assert!(!values_match(&json!({"a": 1}), &json!({"a": 1, "b": 2})));
    }

    #[test]
    fn field_differences_name_the_field_and_both_values() {
        let expected = json!({"backend_code": 1, "backend_status": "OK", "gone": 3});
        let actual = json!({"backend_code": 1, "backend_status": "Maybe later"});
        let diff = fields_match(
            expected.as_object().expect("object"),
            actual.as_object().expect("object"),
        );
        assert_eq!(
            diff,
            vec![
                ("backend_status", &json!("OK"), Some(json!("Maybe later"))),
                ("gone", &json!(3), None),
            ]
        );
    }
}
