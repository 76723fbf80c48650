//! `WWW-Authenticate` challenges: `Basic` (an htpasswd registry) or
//! `Bearer` (a token service, as Docker Hub, GHCR and most hosted
//! registries use).

use std::collections::BTreeMap;

/// What a registry asked for with a `401`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Challenge {
    /// HTTP Basic authentication with the user's credentials.
    Basic,
    /// A token from `realm`, for `service` and `scope`.
    Bearer {
        /// The token service's URL.
        realm: String,
        /// The `service` parameter, if any.
        service: Option<String>,
        /// The `scope` parameter, if any.
        scope: Option<String>,
    },
    /// Something else, or nothing.
    Unknown,
}

/// Parses a `WWW-Authenticate` header value.
pub(crate) fn parse_challenge(header: &str) -> Challenge {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Challenge::Basic;
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Challenge::Unknown;
    }
    let params = parse_params(rest);
    match params.get("realm") {
        Some(realm) => Challenge::Bearer {
            realm: realm.clone(),
            service: params.get("service").cloned(),
            scope: params.get("scope").cloned(),
        },
        None => Challenge::Unknown,
    }
}

/// `key="value", key=value` pairs; values may hold commas inside quotes.
fn parse_params(text: &str) -> BTreeMap<String, String> {
    let mut params = BTreeMap::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let after = after.trim_start();
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            match quoted.find('"') {
                Some(end) => (&quoted[..end], &quoted[end + 1..]),
                None => (quoted, ""),
            }
        } else {
            match after.find(',') {
                Some(end) => (&after[..end], &after[end..]),
                None => (after, ""),
            }
        };
        params.insert(key, value.to_owned());
        rest = next.trim_start().trim_start_matches(',').trim_start();
    }
    params
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse() {
        assert_eq!(
            parse_challenge(r#"Basic realm="basic-realm""#),
            Challenge::Basic
        );
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:acme/x:pull,push""#
            ),
            Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into()),
                scope: Some("repository:acme/x:pull,push".into()),
            }
        );
        assert_eq!(parse_challenge("Negotiate"), Challenge::Unknown);
    }
}
