//! Field options that must fit the field's type: `default`, `max_length`,
//! `min_value`, `max_value`.
//!
//! Two mistakes the corpus of real services makes are warnings rather than
//! errors, so those files still load: a quoted number as a numeric default
//! (`default = "0"` on an `int32`, as `progran.xproto` has) and `max_length`
//! on a link (ignored, as Django ignored it; `vnaas.xproto`).

use crate::diagnostic::Warning;
use crate::error::ParseError;
use crate::ir::{Field, FieldType, Model, OptionValue, ScalarType};

/// Checks the typed options of every field `model` declares.
pub(crate) fn check_field_options(
    model: &Model,
    errors: &mut Vec<ParseError>,
    warnings: &mut Vec<Warning>,
) {
    for field in &model.fields {
        let mut report = |warning: bool, message: String| {
            let message = format!("field `{}.{}`: {message}", model.name, field.name);
            if warning {
                warnings.push(Warning::new(field.location.clone(), message));
            } else {
                errors.push(ParseError::new(field.location.clone(), message));
            }
        };
        if let Some(value) = field.options.get("default") {
            check_default(field, value, &mut report);
        }
        check_bounds(field, &mut report);
    }
}

/// What a field holds, in words, for messages.
fn describe(scalar: ScalarType) -> &'static str {
    match scalar {
        ScalarType::String => "a string",
        ScalarType::Bool => "a bool",
        ScalarType::Int => "an integer",
        ScalarType::Float => "a number",
    }
}

fn show(value: &OptionValue) -> String {
    match value {
        OptionValue::Bool(true) => "True".into(),
        OptionValue::Bool(false) => "False".into(),
        OptionValue::Int(i) => i.to_string(),
        OptionValue::Float(f) => f.to_string(),
        OptionValue::Str(s) => format!("{s:?}"),
        OptionValue::Ident(None) => "None".into(),
        OptionValue::Ident(Some(i)) => i.clone(),
    }
}

fn check_default(field: &Field, value: &OptionValue, report: &mut impl FnMut(bool, String)) {
    let shown = show(value);
    match &field.ty {
        // A link's default names a function that finds the object
        // (`get_first_site`) or gives its id.
        FieldType::Link { .. } => match value {
            OptionValue::Ident(_) | OptionValue::Int(_) => {}
            _ => report(
                false,
                format!(
                    "`default = {shown}` is not valid for a link (expected a function name, an id or None)"
                ),
            ),
        },
        FieldType::Scalar { scalar } => {
            let ok = match (scalar, value) {
                (_, OptionValue::Ident(None)) => *scalar != ScalarType::Bool,
                (ScalarType::String, OptionValue::Str(_)) => true,
                (ScalarType::Bool, OptionValue::Bool(_)) => true,
                (ScalarType::Int, OptionValue::Int(_)) => true,
                // An enum field's default is one of its constants.
                (ScalarType::Int, OptionValue::Ident(Some(_))) => field.enum_type.is_some(),
                (ScalarType::Float, OptionValue::Int(_) | OptionValue::Float(_)) => true,
                (ScalarType::Int | ScalarType::Float, OptionValue::Str(s))
                    if quoted_number(*scalar, s) =>
                {
                    report(
                        true,
                        format!(
                            "`default = {shown}` is a quoted number; write `default = {}`",
                            s.trim()
                        ),
                    );
                    true
                }
                _ => false,
            };
            if !ok {
                let expected = match scalar {
                    ScalarType::Bool => "True or False",
                    ScalarType::String => "a quoted string or None",
                    ScalarType::Int => "an integer or None",
                    ScalarType::Float => "a number or None",
                };
                report(
                    false,
                    format!(
                        "`default = {shown}` does not fit {} field (expected {expected})",
                        describe(*scalar)
                    ),
                );
            }
        }
    }
}

/// Whether `text` is a number that fits a field of type `scalar`.
fn quoted_number(scalar: ScalarType, text: &str) -> bool {
    match scalar {
        ScalarType::Int => text.trim().parse::<i64>().is_ok(),
        ScalarType::Float => text.trim().parse::<f64>().is_ok(),
        ScalarType::String | ScalarType::Bool => false,
    }
}

fn check_bounds(field: &Field, report: &mut impl FnMut(bool, String)) {
    let scalar = match &field.ty {
        FieldType::Scalar { scalar } => Some(*scalar),
        FieldType::Link { .. } => None,
    };
    if let Some(value) = field.options.get("max_length") {
        match (scalar, value) {
            (Some(ScalarType::String), OptionValue::Int(n)) if *n > 0 => {}
            (Some(ScalarType::String), _) => report(
                false,
                format!("`max_length = {}` must be a positive integer", show(value)),
            ),
            (None, _) => report(true, "`max_length` on a link is ignored".into()),
            (Some(other), _) => report(
                false,
                format!(
                    "`max_length` only applies to strings, not to {}",
                    describe(other)
                ),
            ),
        }
    }
    let mut bounds = [None, None];
    for (slot, option) in ["min_value", "max_value"].into_iter().enumerate() {
        let Some(value) = field.options.get(option) else {
            continue;
        };
        let numeric = matches!(scalar, Some(ScalarType::Int | ScalarType::Float));
        match value {
            OptionValue::Int(n) if numeric => bounds[slot] = Some(*n as f64),
            OptionValue::Float(f) if numeric => bounds[slot] = Some(*f),
            _ if numeric => report(
                false,
                format!("`{option} = {}` must be a number", show(value)),
            ),
            _ => report(
                false,
                format!(
                    "`{option}` only applies to numbers, not to {}",
                    scalar.map_or("a link", describe)
                ),
            ),
        }
    }
    if let [Some(min), Some(max)] = bounds
        && min > max
    {
        report(
            false,
            format!("`min_value = {min}` is above `max_value = {max}`"),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::{Schema, parse};

    fn check(src: &str) -> (Vec<String>, Vec<String>) {
        let file = parse("f.xproto", src).expect("parses");
        match Schema::new().with_files(&[file]) {
            Ok(schema) => (
                Vec::new(),
                schema.warnings().iter().map(ToString::to_string).collect(),
            ),
            Err(e) => (e.0.iter().map(ToString::to_string).collect(), Vec::new()),
        }
    }

    #[test]
    fn defaults_must_fit_the_field_type() {
        let (errors, _) = check(
            "message A {\n  optional int32 n = 1 [default = \"abc\"];\n  required bool b = 2 [default = \"yes\"];\n  optional string s = 3 [default = 3];\n  optional float f = 4 [default = True];\n}",
        );
        assert_eq!(
            errors,
            [
                "f.xproto:2:3: field `A.n`: `default = \"abc\"` does not fit an integer field (expected an integer or None)",
                "f.xproto:3:3: field `A.b`: `default = \"yes\"` does not fit a bool field (expected True or False)",
                "f.xproto:4:3: field `A.s`: `default = 3` does not fit a string field (expected a quoted string or None)",
                "f.xproto:5:3: field `A.f`: `default = True` does not fit a number field (expected a number or None)",
            ]
        );
    }

    #[test]
    fn length_and_value_bounds_must_fit_the_field_type() {
        let (errors, _) = check(
            "message A {\n  optional int32 n = 1 [max_length = 3];\n  optional string s = 2 [min_value = 1, max_length = 0];\n  optional int32 m = 3 [min_value = 5, max_value = 2];\n  optional int32 ok = 4 [min_value = 1, max_value = 2, default = 1];\n}",
        );
        assert_eq!(
            errors,
            [
                "f.xproto:2:3: field `A.n`: `max_length` only applies to strings, not to an integer",
                "f.xproto:3:3: field `A.s`: `max_length = 0` must be a positive integer",
                "f.xproto:3:3: field `A.s`: `min_value` only applies to numbers, not to a string",
                "f.xproto:4:3: field `A.m`: `min_value = 5` is above `max_value = 2`",
            ]
        );
    }

    #[test]
    fn what_real_services_write_is_only_a_warning() {
        let (errors, warnings) = check(
            "message S {}\nmessage A {\n  optional int32 n = 1 [default = \"0\"];\n  required manytoone s->S:as = 2:1001 [max_length = 30, default = get_first_s];\n}",
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            warnings,
            [
                "f.xproto:3:3: field `A.n`: `default = \"0\"` is a quoted number; write `default = 0`",
                "f.xproto:4:3: field `A.s`: `max_length` on a link is ignored",
            ]
        );
    }
}
