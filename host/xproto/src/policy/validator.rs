//! `option validators = "policy:message, ..."`: policies bound as validators.

use serde::{Deserialize, Serialize};

/// A policy that every saved object of a model must satisfy, and the
/// message an API client gets when it does not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Validator {
    /// The policy's name.
    pub policy: String,
    /// The error message; `{obj.name}`-style placeholders are kept as written.
    pub message: String,
}

/// Reads the value of a `validators` option: comma-separated
/// `policy:message` pairs, each part trimmed, as the original split them.
///
/// # Errors
///
/// The first entry without a `:` or with an empty policy name, as text.
pub fn parse_validators(value: &str) -> Result<Vec<Validator>, String> {
    let mut out = Vec::new();
    for entry in value.split(',') {
        if entry.trim().is_empty() {
            continue;
        }
        match entry.split_once(':') {
            Some((policy, message)) if !policy.trim().is_empty() => out.push(Validator {
                policy: policy.trim().to_owned(),
                message: message.trim().to_owned(),
            }),
            _ => {
                return Err(format!(
                    "validator `{}` is not of the form `policy:message`",
                    entry.trim()
                ));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validators_split_on_commas_then_on_the_first_colon() {
        let v = parse_validators(
            "slice_name_no_spaces:Slice name contains spaces, isolation: Container {obj.name}: bad",
        )
        .expect("valid");
        assert_eq!(
            v,
            [
                Validator {
                    policy: "slice_name_no_spaces".into(),
                    message: "Slice name contains spaces".into()
                },
                Validator {
                    policy: "isolation".into(),
                    message: "Container {obj.name}: bad".into()
                },
            ]
        );
        assert!(parse_validators("no colon here").is_err());
        assert_eq!(parse_validators("").expect("empty is fine"), []);
    }
}
