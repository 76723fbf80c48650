//! The opaque `cursor` of a page: the order it was made for and the key
//! values of the last object of the previous page, as URL-safe base64 of
//! JSON. It is not secret — it holds values of an object its holder could
//! read — and not signed: a forged cursor only moves where its holder's
//! own page starts, and every object is still checked before it is shown.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use syncplane_store::SqlValue;

/// The longest cursor accepted, in characters.
const MAX_LEN: usize = 4096;

/// The cursor after the object with key values `values` in `order`.
pub(super) fn encode(order: &str, values: &[SqlValue]) -> String {
    let values: Vec<Value> = values
        .iter()
        .map(|v| match v {
            SqlValue::Null => Value::Null,
            SqlValue::Integer(i) => Value::from(*i),
            SqlValue::Real(f) => Value::from(*f),
            SqlValue::Text(s) => Value::from(s.as_str()),
        })
        .collect();
    URL_SAFE_NO_PAD.encode(json!({ "o": order, "k": values }).to_string())
}

/// The key values of `token`, which must have been made for `order` (of
/// `keys` keys, the last `id`).
pub(super) fn decode(token: &str, order: &str, keys: usize) -> Result<Vec<SqlValue>, String> {
    let not_ours =
        || "is not a cursor this server made (follow the `next` link as it is)".to_owned();
    if token.len() > MAX_LEN {
        return Err(not_ours());
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .map_err(|_| not_ours())?;
    let decoded: Value = serde_json::from_slice(&bytes).map_err(|_| not_ours())?;
    let (Some(made_for), Some(values)) = (decoded["o"].as_str(), decoded["k"].as_array()) else {
        return Err(not_ours());
    };
    if made_for != order {
        return Err(format!(
            "was made for `ordering={made_for}`, not `{order}`; keep the ordering of the first page"
        ));
    }
    if values.len() != keys {
        return Err(not_ours());
    }
    let values: Vec<SqlValue> = values
        .iter()
        .map(|v| match v {
            Value::Null => Some(SqlValue::Null),
            Value::Number(n) => n
                .as_i64()
                .map(SqlValue::Integer)
                .or_else(|| n.as_f64().map(SqlValue::Real)),
            Value::String(s) => Some(SqlValue::Text(s.clone())),
            _ => None,
        })
        .collect::<Option<_>>()
        .ok_or_else(not_ours)?;
    match values.last() {
        Some(SqlValue::Integer(_)) => Ok(values),
        _ => Err(not_ours()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_gives_back_its_values_for_its_order_only() {
        let values = [
            SqlValue::Text("a b/é".into()),
            SqlValue::Null,
            SqlValue::Real(1712345678.125),
            SqlValue::Integer(42),
        ];
        let token = encode("name,-x,created,id", &values);
        assert!(
            token
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "{token}"
        );
        assert_eq!(decode(&token, "name,-x,created,id", 4), Ok(values.to_vec()));
        let other = decode(&token, "id", 1).expect_err("another order");
        assert!(other.contains("ordering=name,-x,created,id"), "{other}");
        for bad in ["", "!!", "e30", &"A".repeat(5000)] {
            assert!(decode(bad, "id", 1).is_err(), "{bad}");
        }
        // The last value must be an id.
        let no_id = encode("id", &[SqlValue::Text("7".into())]);
        assert!(decode(&no_id, "id", 1).is_err());
    }
}
