//! Origins: `scheme://host:port` patterns that outbound HTTP grants and
//! operator policies are written in.

use std::fmt;
use std::str::FromStr;

/// A pattern over request origins.
///
/// Written `http://127.0.0.1:8081`, `https://*.example.com:443`,
/// `http://127.0.0.1:*` (any port), or `*` (any origin). A host starting
/// with `*.` matches every name below that domain (not the domain itself);
/// a missing port means the scheme's default (80 or 443).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    scheme: Option<Scheme>,
    host: HostPattern,
    port: Option<u16>,
}

/// `http` or `https`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Plain HTTP.
    Http,
    /// HTTP over TLS.
    Https,
}

impl Scheme {
    /// The port a URL of this scheme uses when it names none.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Any,
    Exact(String),
    /// `*.example.com`, kept as `.example.com`.
    Below(String),
}

impl HostPattern {
    fn matches(&self, host: &str) -> bool {
        match self {
            HostPattern::Any => true,
            HostPattern::Exact(h) => h.eq_ignore_ascii_case(host),
            HostPattern::Below(suffix) => {
                host.len() > suffix.len()
                    && host
                        .get(host.len() - suffix.len()..)
                        .is_some_and(|tail| tail.eq_ignore_ascii_case(suffix))
            }
        }
    }

    fn covers(&self, other: &HostPattern) -> bool {
        match (self, other) {
            (HostPattern::Any, _) => true,
            (_, HostPattern::Any) => false,
            (_, HostPattern::Exact(h)) => self.matches(h),
            (HostPattern::Below(mine), HostPattern::Below(theirs)) => {
                mine.eq_ignore_ascii_case(theirs) || self.matches(theirs.trim_start_matches('.'))
            }
            (HostPattern::Exact(_), HostPattern::Below(_)) => false,
        }
    }
}

/// Why an origin pattern does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{text}` is not an origin ({reason}); write e.g. \"https://api.example.com:443\", \"http://127.0.0.1:*\" or \"https://*.example.com\""
)]
pub struct OriginError {
    text: String,
    reason: &'static str,
}

impl FromStr for Origin {
    type Err = OriginError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = |reason| OriginError {
            text: text.to_owned(),
            reason,
        };
        if text == "*" {
            return Ok(Origin {
                scheme: None,
                host: HostPattern::Any,
                port: None,
            });
        }
        let (scheme, rest) = if let Some(rest) = text.strip_prefix("http://") {
            (Scheme::Http, rest)
        } else if let Some(rest) = text.strip_prefix("https://") {
            (Scheme::Https, rest)
        } else {
            return Err(err("it must start with http:// or https://"));
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#', '@']) {
            return Err(err("an origin has no path, query or user"));
        }
        let (host, port) = split_host_port(rest).ok_or_else(|| err("bad host or port"))?;
        let port = match port {
            None => Some(scheme.default_port()),
            Some("*") => None,
            Some(p) => Some(
                p.parse::<u16>()
                    .map_err(|_| err("the port is not a number"))?,
            ),
        };
        let host = if host == "*" {
            HostPattern::Any
        } else if let Some(below) = host.strip_prefix("*.") {
            if !valid_host(below) {
                return Err(err("bad host name"));
            }
            HostPattern::Below(format!(".{}", below.to_ascii_lowercase()))
        } else if valid_host(host) {
            HostPattern::Exact(host.to_ascii_lowercase())
        } else {
            return Err(err("bad host name"));
        };
        Ok(Origin {
            scheme: Some(scheme),
            host,
            port,
        })
    }
}

/// Splits `host:port`, `[v6]:port`, `host` or `[v6]`; the host keeps no brackets.
fn split_host_port(text: &str) -> Option<(&str, Option<&str>)> {
    if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        return match after {
            "" => Some((host, None)),
            _ => Some((host, Some(after.strip_prefix(':')?))),
        };
    }
    match text.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => Some((host, Some(port))),
        Some(_) => None,
        None => Some((text, None)),
    }
}

fn valid_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | ':'))
}

impl Origin {
    /// Whether a request to `scheme://host:port` falls under this pattern.
    pub fn matches(&self, scheme: Scheme, host: &str, port: u16) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        self.scheme.is_none_or(|s| s == scheme)
            && self.host.matches(host)
            && self.port.is_none_or(|p| p == port)
    }

    /// Whether every request this pattern allows, `other` allows too, so an
    /// operator policy of `self` may grant `other`.
    pub fn covers(&self, other: &Origin) -> bool {
        let scheme = match (self.scheme, other.scheme) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(a), Some(b)) => a == b,
        };
        let port = match (self.port, other.port) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(a), Some(b)) => a == b,
        };
        scheme && port && self.host.covers(&other.host)
    }

    /// The host when it is one literal IP address.
    pub fn literal_ip(&self) -> Option<std::net::IpAddr> {
        match &self.host {
            HostPattern::Exact(h) => h.parse().ok(),
            _ => None,
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(scheme) = self.scheme else {
            return f.write_str("*");
        };
        write!(f, "{}://", scheme.name())?;
        match &self.host {
            HostPattern::Any => f.write_str("*")?,
            HostPattern::Exact(h) if h.contains(':') => write!(f, "[{h}]")?,
            HostPattern::Exact(h) => f.write_str(h)?,
            HostPattern::Below(suffix) => write!(f, "*{suffix}")?,
        }
        match self.port {
            Some(p) => write!(f, ":{p}"),
            None => f.write_str(":*"),
        }
    }
}

impl serde::Serialize for Origin {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Origin {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(text: &str) -> Origin {
        text.parse().expect("origin")
    }

    #[test]
    fn origins_match_scheme_host_and_port() {
        let o = origin("http://127.0.0.1:8081");
        assert!(o.matches(Scheme::Http, "127.0.0.1", 8081));
        assert!(!o.matches(Scheme::Https, "127.0.0.1", 8081));
        assert!(!o.matches(Scheme::Http, "127.0.0.1", 8082));
        assert!(!o.matches(Scheme::Http, "127.0.0.2", 8081));

        let wild = origin("https://*.example.com");
        assert!(wild.matches(Scheme::Https, "api.example.com", 443));
        assert!(wild.matches(Scheme::Https, "a.b.EXAMPLE.com", 443));
        assert!(!wild.matches(Scheme::Https, "example.com", 443));
        assert!(!wild.matches(Scheme::Https, "evilexample.com", 443));
        assert!(!wild.matches(Scheme::Https, "api.example.com", 8443));

        let any_port = origin("http://localhost:*");
        assert!(any_port.matches(Scheme::Http, "localhost", 1));
        assert!(origin("*").matches(Scheme::Https, "anything", 9));
        assert!(origin("http://[::1]:80").matches(Scheme::Http, "[::1]", 80));
    }

    #[test]
    fn bad_origins_say_what_to_write() {
        for bad in [
            "127.0.0.1:80",
            "ftp://x",
            "http://x:port",
            "http://x/path",
            "http://",
            "http://u@x",
        ] {
            let err = bad.parse::<Origin>().expect_err(bad).to_string();
            assert!(err.contains("is not an origin"), "{err}");
        }
    }

    #[test]
    fn a_policy_covers_narrower_grants_only() {
        let policy = origin("https://*.example.com:*");
        assert!(policy.covers(&origin("https://api.example.com:443")));
        assert!(policy.covers(&origin("https://*.eu.example.com:8443")));
        assert!(!policy.covers(&origin("https://example.com")));
        assert!(!policy.covers(&origin("http://api.example.com")));
        assert!(!origin("http://127.0.0.1:80").covers(&origin("http://127.0.0.1:*")));
        assert!(origin("*").covers(&origin("http://anything:*")));
        assert!(!origin("http://*:*").covers(&origin("*")));
    }

    #[test]
    fn origins_print_as_written() {
        for text in [
            "*",
            "http://127.0.0.1:8081",
            "https://*.example.com:443",
            "http://localhost:*",
            "http://[::1]:80",
        ] {
            assert_eq!(origin(text).to_string(), text);
        }
        assert_eq!(
            origin("https://Example.com").to_string(),
            "https://example.com:443"
        );
    }
}
