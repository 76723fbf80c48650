//! Value constraints of xproto field options, checked on every write:
//! `choices` and `min_value`/`max_value`. (`max_length` and types are
//! checked where values are converted, in `registry::to_sql`.)

use serde_json::Value;
use syncplane_xproto::{Field, OptionValue};

use crate::error::{Error, Result};

/// Checks a non-null API value of `field` against its `choices` and
/// `min_value`/`max_value` options.
///
/// # Errors
///
/// [`Error::InvalidField`] naming the field and the rule.
pub(crate) fn check(model: &str, field: &Field, value: &Value) -> Result<()> {
    if let Some(choices) = field.option_str("choices") {
        let allowed = choice_values(choices);
        // An option list syncplane cannot read is not enforced (the
        // xproto check warns of it), rather than refusing every value.
        if !allowed.is_empty() {
            let given = value.as_str();
            if !allowed.iter().any(|c| c.as_deref() == given) {
                let names: Vec<&str> = allowed.iter().flatten().map(String::as_str).collect();
                return Err(Error::invalid(
                    model,
                    &field.name,
                    format!("{value} is not one of the choices {}", names.join(", ")),
                ));
            }
        }
    }
    let Some(number) = value.as_f64() else {
        return Ok(());
    };
    let bound = |name: &str| match field.options.get(name) {
        Some(OptionValue::Int(n)) => Some(*n as f64),
        Some(OptionValue::Float(f)) => Some(*f),
        _ => None,
    };
    if let Some(min) = bound("min_value")
        && number < min
    {
        return Err(Error::invalid(
            model,
            &field.name,
            format!("{value} is below min_value {min}"),
        ));
    }
    if let Some(max) = bound("max_value")
        && number > max
    {
        return Err(Error::invalid(
            model,
            &field.name,
            format!("{value} is above max_value {max}"),
        ));
    }
    Ok(())
}

/// The stored values of a Django `choices` option,
/// `"(('vm', 'Virtual Machine'), (None, 'Default'))"`: the first element
/// of each pair; `None` for Python's `None`. Empty when the text is not
/// such a list.
fn choice_values(text: &str) -> Vec<Option<String>> {
    let mut out = Vec::new();
    let mut rest = text.trim();
    rest = rest.strip_prefix('(').unwrap_or(rest);
    while let Some(start) = rest.find('(') {
        let pair = rest[start + 1..].trim_start();
        let (value, after) = if let Some(r) = pair.strip_prefix("None") {
            (None, r)
        } else {
            let Some(quote) = pair.chars().next().filter(|c| *c == '\'' || *c == '"') else {
                return Vec::new();
            };
            let body = &pair[1..];
            let Some(end) = body.find(quote) else {
                return Vec::new();
            };
            (Some(body[..end].to_owned()), &body[end + 1..])
        };
        out.push(value);
        let Some(close) = after.find(')') else {
            return Vec::new();
        };
        rest = &after[close + 1..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_are_read_from_the_django_pairs() {
        assert_eq!(
            choice_values("(('vm', 'Virtual Machine'), ('container', 'Container'))"),
            [Some("vm".to_owned()), Some("container".to_owned())]
        );
        assert_eq!(
            choice_values("((None, 'Default'), ('host', 'Host'))"),
            [None, Some("host".to_owned())]
        );
        assert_eq!(
            choice_values("(('xos', 'XOS'), )"),
            [Some("xos".to_owned())]
        );
        assert!(choice_values("not a list").is_empty());
    }

    #[test]
    fn values_outside_choices_or_bounds_are_refused_naming_the_rule() {
        let file = syncplane_xproto::parse(
            "t.xproto",
            "message T {\n\
               optional string kind = 1 [choices = \"(('vm', 'VM'), ('container', 'C'))\"];\n\
               optional int32 vlan = 2 [min_value = 1, max_value = 4095];\n\
             }",
        )
        .expect("parses");
        let kind = &file.models[0].fields[0];
        let vlan = &file.models[0].fields[1];
        check("T", kind, &Value::from("vm")).expect("a choice");
        assert_eq!(
            check("T", kind, &Value::from("lxc"))
                .expect_err("not a choice")
                .to_string(),
            "T.kind: \"lxc\" is not one of the choices vm, container"
        );
        check("T", vlan, &Value::from(4095)).expect("in range");
        assert_eq!(
            check("T", vlan, &Value::from(5000))
                .expect_err("above")
                .to_string(),
            "T.vlan: 5000 is above max_value 4095"
        );
        assert_eq!(
            check("T", vlan, &Value::from(0))
                .expect_err("below")
                .to_string(),
            "T.vlan: 0 is below min_value 1"
        );
    }
}
