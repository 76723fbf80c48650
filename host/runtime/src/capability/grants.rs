//! What a service package asks for (`[capabilities]` in its manifest) and
//! what the operator allows (`policy.toml`, `--allow`).

use std::fmt;
use std::str::FromStr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::origin::Origin;

/// The capabilities a package declares, as written in `[capabilities]`.
///
/// ```toml
/// [capabilities]
/// outbound_http = ["http://127.0.0.1:8081", "https://*.example.com:443"]
/// config = ["api_url"]
/// secrets = ["api_key"]
///
/// [capabilities.models]
/// read = ["core.Site"]
/// write = ["fabric.FabricServiceInstance"]
/// ```
///
/// Everything not declared is denied. A service's own models, its own
/// config and its own secrets need no operator approval; outbound HTTP and
/// other services' models do.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grants {
    /// Origins the service's components may send HTTP requests to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outbound_http: Vec<Origin>,
    /// Names of configuration values the operator sets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub config: Vec<String>,
    /// Names of secrets the operator sets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
    /// Models of other services (or of core) the service may read or write.
    #[serde(default, skip_serializing_if = "ModelGrants::is_empty")]
    pub models: ModelGrants,
}

/// `read` and `write` lists of model patterns.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelGrants {
    /// Models whose objects may be read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub read: Vec<ModelPattern>,
    /// Models whose objects may be created, changed and deleted (and read).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub write: Vec<ModelPattern>,
}

impl ModelGrants {
    /// Whether neither list names anything.
    pub fn is_empty(&self) -> bool {
        self.read.is_empty() && self.write.is_empty()
    }
}

/// A model named by app label and name: `core.Site`, `fabric.*`, or a bare
/// `Site` (any app label).
///
/// A wildcard never stands for core's `User`: reading users needs the
/// explicit grant `core.User`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ModelPattern {
    app_label: Option<String>,
    model: Option<String>,
}

/// The model whose objects need an explicit grant.
const USER_MODEL: &str = "User";

impl ModelPattern {
    /// Whether the model `name` of app `app_label` falls under the pattern.
    pub fn matches(&self, app_label: &str, name: &str) -> bool {
        self.app_label.as_deref().is_none_or(|a| a == app_label)
            && match &self.model {
                Some(m) => m == name,
                None => name != USER_MODEL,
            }
    }

    /// Whether the pattern names one model exactly (no wildcard).
    pub fn is_exact(&self) -> bool {
        self.model.is_some()
    }

    /// Whether every model `other` names, this pattern names too.
    pub fn covers(&self, other: &ModelPattern) -> bool {
        let app = match (&self.app_label, &other.app_label) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(a), Some(b)) => a == b,
        };
        let model = match (&self.model, &other.model) {
            (None, Some(m)) => m != USER_MODEL,
            (None, None) => true,
            (Some(_), None) => false,
            (Some(a), Some(b)) => a == b,
        };
        app && model
    }
}

/// Why a model pattern does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a model pattern; write \"app_label.Model\", \"app_label.*\" or \"Model\"")]
pub struct ModelPatternError(String);

impl FromStr for ModelPattern {
    type Err = ModelPatternError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let part = |s: &str| -> Result<Option<String>, ModelPatternError> {
            if s == "*" {
                Ok(None)
            } else if !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                Ok(Some(s.to_owned()))
            } else {
                Err(ModelPatternError(text.to_owned()))
            }
        };
        match text.split_once('.') {
            Some((app, model)) => Ok(ModelPattern {
                app_label: part(app)?,
                model: part(model)?,
            }),
            None => Ok(ModelPattern {
                app_label: None,
                model: part(text)?,
            }),
        }
    }
}

impl fmt::Display for ModelPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.app_label, &self.model) {
            (None, Some(m)) => f.write_str(m),
            (a, m) => write!(
                f,
                "{}.{}",
                a.as_deref().unwrap_or("*"),
                m.as_deref().unwrap_or("*")
            ),
        }
    }
}

impl Serialize for ModelPattern {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ModelPattern {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// What the operator allows packages to be granted: the ceiling every
/// install is checked against, before any of the package's code runs.
///
/// Read from a `policy.toml` (`syncplane serve --policy`), widened per
/// install by `--allow` flags:
///
/// ```toml
/// [outbound_http]
/// origins = ["https://*.example.com:443", "http://127.0.0.1:*"]
/// networks = ["10.0.0.0/8", "127.0.0.0/8"]
///
/// [models]
/// read = ["core.*"]
/// write = ["core.ServiceInstance"]
/// ```
///
/// With no policy, packages may use their own models, config and secrets,
/// and nothing else.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorPolicy {
    /// Outbound HTTP.
    #[serde(default)]
    pub outbound_http: OutboundPolicy,
    /// Models of other services and of core.
    #[serde(default)]
    pub models: ModelGrants,
}

/// `[outbound_http]` of an operator policy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboundPolicy {
    /// Origin patterns grants may name.
    #[serde(default)]
    pub origins: Vec<Origin>,
    /// When not empty: every request's destination address, as its host
    /// name resolves when the request is made, must lie in one of these.
    #[serde(default)]
    pub networks: Vec<IpNet>,
}

/// One `--allow KIND=VALUE` flag of `service install`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allow {
    /// `outbound_http=ORIGIN`.
    OutboundHttp(Origin),
    /// `network=CIDR`.
    Network(IpNet),
    /// `read=MODEL`.
    Read(ModelPattern),
    /// `write=MODEL`.
    Write(ModelPattern),
}

impl FromStr for Allow {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (kind, value) = text.split_once('=').ok_or_else(|| {
            format!(
                "`{text}`: write KIND=VALUE with KIND one of outbound_http, network, read, write"
            )
        })?;
        match kind {
            "outbound_http" => value
                .parse()
                .map(Allow::OutboundHttp)
                .map_err(|e| e.to_string()),
            "network" => value
                .parse()
                .map(Allow::Network)
                .map_err(|_| format!("`{value}` is not a network; write e.g. 10.0.0.0/8")),
            "read" => value.parse().map(Allow::Read).map_err(|e| e.to_string()),
            "write" => value.parse().map(Allow::Write).map_err(|e| e.to_string()),
            other => Err(format!(
                "`{other}` is not a kind of grant; use outbound_http, network, read or write"
            )),
        }
    }
}

impl fmt::Display for Allow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Allow::OutboundHttp(o) => write!(f, "outbound_http={o}"),
            Allow::Network(n) => write!(f, "network={n}"),
            Allow::Read(m) => write!(f, "read={m}"),
            Allow::Write(m) => write!(f, "write={m}"),
        }
    }
}

impl OperatorPolicy {
    /// Adds what an `--allow` flag allows.
    pub fn allow(&mut self, allow: Allow) {
        match allow {
            Allow::OutboundHttp(o) => self.outbound_http.origins.push(o),
            Allow::Network(n) => self.outbound_http.networks.push(n),
            Allow::Read(m) => self.models.read.push(m),
            Allow::Write(m) => self.models.write.push(m),
        }
    }

    /// Every grant of `grants` this policy does not allow, each with how
    /// to allow it; empty when the package may be installed.
    pub fn refusals(&self, grants: &Grants) -> Vec<String> {
        let mut refused = Vec::new();
        for origin in &grants.outbound_http {
            if !self.outbound_http.origins.iter().any(|p| p.covers(origin)) {
                refused.push(format!(
                    "outbound_http \"{origin}\" is not allowed by the operator's policy (allow it with --allow outbound_http={origin})"
                ));
            } else if let Some(ip) = origin.literal_ip()
                && !self.outbound_http.networks.is_empty()
                && !self.outbound_http.networks.iter().any(|n| n.contains(&ip))
            {
                refused.push(format!(
                    "outbound_http \"{origin}\" lies outside the networks the operator's policy allows (allow it with --allow network={ip}/{})",
                    if ip.is_ipv4() { 32 } else { 128 }
                ));
            }
        }
        let covered = |list: &[ModelPattern], m: &ModelPattern| list.iter().any(|p| p.covers(m));
        for model in &grants.models.read {
            if !covered(&self.models.read, model) && !covered(&self.models.write, model) {
                refused.push(format!(
                    "read \"{model}\" is not allowed by the operator's policy (allow it with --allow read={model})"
                ));
            }
        }
        for model in &grants.models.write {
            if !covered(&self.models.write, model) {
                refused.push(format!(
                    "write \"{model}\" is not allowed by the operator's policy (allow it with --allow write={model})"
                ));
            }
        }
        refused
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(text: &str) -> ModelPattern {
        text.parse().expect("pattern")
    }

    #[test]
    fn model_patterns_match_by_app_label_and_name_but_never_users_by_wildcard() {
        assert!(pattern("core.Site").matches("core", "Site"));
        assert!(!pattern("core.Site").matches("other", "Site"));
        assert!(pattern("Site").matches("anything", "Site"));
        assert!(pattern("core.*").matches("core", "Slice"));
        assert!(!pattern("core.*").matches("core", "User"));
        assert!(!pattern("*").matches("core", "User"));
        assert!(pattern("core.User").matches("core", "User"));
        assert!(!pattern("*").covers(&pattern("core.User")));
        assert!(pattern("core.*").covers(&pattern("core.Site")));
        assert!(!pattern("core.Site").covers(&pattern("core.*")));
        assert!("core.Si te".parse::<ModelPattern>().is_err());
        assert!("".parse::<ModelPattern>().is_err());
    }

    #[test]
    fn a_policy_refuses_each_grant_it_does_not_cover_and_says_how_to_allow_it() {
        let grants: Grants = toml::from_str(
            "outbound_http = [\"http://127.0.0.1:8081\", \"https://api.example.com\"]\n\
             [models]\nread = [\"core.User\", \"core.Site\"]\nwrite = [\"other.Thing\"]\n",
        )
        .expect("grants");
        let none = OperatorPolicy::default().refusals(&grants);
        assert_eq!(none.len(), 5, "{none:#?}");
        assert!(none[0].contains("--allow outbound_http=http://127.0.0.1:8081"));

        let mut policy: OperatorPolicy = toml::from_str(
            "[outbound_http]\norigins = [\"http://127.0.0.1:*\", \"https://*.example.com:*\"]\nnetworks = [\"10.0.0.0/8\"]\n\
             [models]\nread = [\"core.*\"]\nwrite = [\"other.*\"]\n",
        )
        .expect("policy");
        let left = policy.refusals(&grants);
        assert_eq!(left.len(), 2, "{left:#?}");
        assert!(left[0].contains("outside the networks"), "{}", left[0]);
        assert!(left[1].contains("read \"core.User\""), "{}", left[1]);

        policy.allow("network=127.0.0.0/8".parse().expect("allow"));
        policy.allow("read=core.User".parse().expect("allow"));
        assert!(policy.refusals(&grants).is_empty());
    }

    #[test]
    fn allow_flags_name_their_kind() {
        assert!(matches!("write=core.*".parse(), Ok(Allow::Write(_))));
        let err = "net=1.2.3.4/8".parse::<Allow>().expect_err("kind");
        assert!(err.contains("not a kind of grant"), "{err}");
        let err = "network=banana".parse::<Allow>().expect_err("net");
        assert!(err.contains("not a network"), "{err}");
        assert!("outbound_http".parse::<Allow>().is_err());
    }
}
