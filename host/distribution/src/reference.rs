//! `HOST[:PORT]/REPOSITORY[:TAG|@DIGEST]`: where a package is in a
//! registry.

use std::fmt;
use std::net::IpAddr;

use crate::error::{Error, Result};

/// A package's place in a registry, as the user wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// `HOST[:PORT]`, e.g. `127.0.0.1:5000` or `registry.example`.
    pub registry: String,
    /// The repository, e.g. `acme/hello-world`.
    pub repository: String,
    /// The tag (a version), when one is given.
    pub tag: Option<String>,
    /// The digest (`sha256:<hex>`), when one is given.
    pub digest: Option<String>,
}

impl Reference {
    /// Parses `HOST[:PORT]/REPOSITORY[:TAG][@sha256:HEX]`. The first part
    /// must look like a host (a `.` or `:` in it, or `localhost`): there is
    /// no default registry.
    ///
    /// # Errors
    ///
    /// [`Error::BadReference`] saying which part is wrong.
    pub fn parse(text: &str) -> Result<Reference> {
        let bad = |reason: &str| Error::BadReference {
            reference: text.to_owned(),
            reason: reason.to_owned(),
        };
        let (rest, digest) = match text.split_once('@') {
            Some((rest, digest)) => {
                let hex = digest
                    .strip_prefix("sha256:")
                    .ok_or_else(|| bad("a digest is sha256:<hex>"))?;
                if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(bad("a digest is sha256: and 64 hex digits"));
                }
                (rest, Some(digest.to_ascii_lowercase()))
            }
            None => (text, None),
        };
        let (registry, path) = rest
            .split_once('/')
            .ok_or_else(|| bad("no repository after the registry"))?;
        if !(registry.contains('.') || registry.contains(':') || registry == "localhost")
            || registry.is_empty()
        {
            return Err(bad("it does not start with a registry's HOST:PORT"));
        }
        if !registry
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
        {
            return Err(bad("the registry is not HOST[:PORT]"));
        }
        let (repository, tag) = match path.rsplit_once(':') {
            Some((repository, tag)) if !tag.contains('/') => (repository, Some(tag.to_owned())),
            _ => (path, None),
        };
        check_repository(repository).map_err(|reason| bad(&reason))?;
        if let Some(tag) = &tag {
            check_tag(tag).map_err(|reason| bad(&reason))?;
        }
        Ok(Reference {
            registry: registry.to_owned(),
            repository: repository.to_owned(),
            tag,
            digest,
        })
    }

    /// The same repository with `tag` and no digest.
    #[must_use]
    pub fn with_tag(&self, tag: &str) -> Reference {
        Reference {
            tag: Some(tag.to_owned()),
            digest: None,
            ..self.clone()
        }
    }

    /// Whether the registry's host is a loopback address (`localhost`,
    /// `127.0.0.0/8`, `::1`): the only hosts reached over plain http
    /// without `--insecure`.
    #[must_use]
    pub fn is_loopback(&self) -> bool {
        is_loopback_host(host_of(&self.registry))
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// The host of `HOST[:PORT]` (`[::1]:5000` gives `::1`).
pub(crate) fn host_of(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    registry.split(':').next().unwrap_or(registry)
}

/// Whether `host` is `localhost` or a loopback IP address.
pub(crate) fn is_loopback_host(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// An OCI repository name: lowercase path components of letters, digits
/// and single separators.
fn check_repository(repository: &str) -> std::result::Result<(), String> {
    if repository.is_empty() || repository.len() > 255 {
        return Err("the repository is empty or too long".into());
    }
    for part in repository.split('/') {
        let ok = !part.is_empty()
            && part.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')
            })
            && part.starts_with(|c: char| c.is_ascii_alphanumeric())
            && part.ends_with(|c: char| c.is_ascii_alphanumeric());
        if !ok {
            return Err(format!(
                "the repository part `{part}` is not lowercase letters, digits, `.`, `_` and `-`"
            ));
        }
    }
    Ok(())
}

/// An OCI tag: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
pub(crate) fn check_tag(tag: &str) -> std::result::Result<(), String> {
    let ok = !tag.is_empty()
        && tag.len() <= 128
        && tag.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "the tag `{tag}` is not letters, digits, `.`, `_` and `-`"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_with_tags_digests_and_ports() {
        let r = Reference::parse("127.0.0.1:5000/acme/hello-world:1.0.0").expect("parse");
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "acme/hello-world");
        assert_eq!(r.tag.as_deref(), Some("1.0.0"));
        assert!(r.is_loopback());
        assert_eq!(r.to_string(), "127.0.0.1:5000/acme/hello-world:1.0.0");
        let digest = format!("sha256:{}", "a".repeat(64));
        let r = Reference::parse(&format!("registry.example/acme/dns@{digest}")).expect("parse");
        assert_eq!(r.digest.as_deref(), Some(digest.as_str()));
        assert_eq!(r.tag, None);
        assert!(!r.is_loopback());
        let r = Reference::parse("localhost:5000/x").expect("parse");
        assert!(r.is_loopback() && r.tag.is_none());
        assert!(
            Reference::parse("[::1]:5000/x")
                .expect("parse")
                .is_loopback()
        );
    }

    #[test]
    fn what_is_not_a_reference_says_why() {
        for (text, reason) in [
            ("acme/hello-world", "HOST:PORT"),
            ("127.0.0.1:5000", "no repository"),
            ("127.0.0.1:5000/Acme/x", "lowercase"),
            ("127.0.0.1:5000/acme/x:1.0.0+build", "tag"),
            ("127.0.0.1:5000/acme/x@sha256:12", "64 hex"),
            ("127.0.0.1:5000/acme//x", "repository part"),
        ] {
            let message = Reference::parse(text).expect_err(text).to_string();
            assert!(message.contains(reason), "{text}: {message}");
        }
    }
}
