//! The operator's trust policy: which signed packages this host installs.
//!
//! ```toml
//! require_signature = true   # else unsigned packages need --allow-unsigned, per install
//!
//! [[publisher]]
//! name = "acme"
//! keys = ["ed25519:…"]
//! packages = ["acme/*"]      # what these keys may vouch for
//! grants_ceiling = { outbound_http = ["https://*.acme.example:443"] }
//!
//! [[require]]                # min of any_of must also have signed
//! packages = ["*"]
//! any_of = ["ed25519:…"]
//! min = 1
//!
//! [revoked]
//! keys = ["ed25519:…"]
//! ```
//!
//! [`TrustPolicy::evaluate`] checks a package in this order, stopping at
//! the first rule that fails: its digests (done when the file is read), a
//! signature by a key a `[[publisher]]` lists for the package's full name,
//! every `[[require]]` whose `packages` match, revocation, and the grants
//! it asks for within the publisher's `grants_ceiling` (the operator's
//! capability policy is checked after, as for every install). The host
//! runs it before anything of the package is compiled.
//!
//! # Defaults
//!
//! - `require_signature = false`: an unsigned package is still refused
//!   unless its install says `--allow-unsigned`; with `true`, it is always
//!   refused.
//! - A publisher without `grants_ceiling` may vouch for packages that ask
//!   for nothing beyond their own models, config and secrets.
//! - `min = 1`.
//!
//! # Caveats
//!
//! A key listed under `[revoked]` refuses every package it signed, even
//! one that other keys signed too: a revoked key is presumed stolen.
//! Package patterns match full names (`publisher/name`, see
//! `[service] publisher`); `*` matches any run of characters.

use std::fmt;
use std::num::NonZeroUsize;

use serde::{Deserialize, Serialize};
use syncplane_runtime::capability::{Grants, ModelGrants, ModelPattern, Origin};

use crate::error::{Error, Result};
use crate::signing::{PublicKey, Signature};

/// The operator's trust policy (`serve --trust FILE`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustPolicy {
    /// Refuse every unsigned package, `--allow-unsigned` or not.
    #[serde(default)]
    pub require_signature: bool,
    /// Who may vouch for what.
    #[serde(default, rename = "publisher", skip_serializing_if = "Vec::is_empty")]
    pub publishers: Vec<Publisher>,
    /// Signatures packages need besides their publisher's.
    #[serde(default, rename = "require", skip_serializing_if = "Vec::is_empty")]
    pub requirements: Vec<Requirement>,
    /// Keys no longer trusted.
    #[serde(default)]
    pub revoked: Revoked,
}

/// One `[[publisher]]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Publisher {
    /// The publisher's name, shown in verdicts.
    pub name: String,
    /// Its keys.
    pub keys: Vec<PublicKey>,
    /// The full names its keys may vouch for: `acme/*`.
    pub packages: Vec<NamePattern>,
    /// The most its packages may ask for; by default nothing beyond their
    /// own models, config and secrets.
    #[serde(default)]
    pub grants_ceiling: GrantsCeiling,
}

/// A publisher's `grants_ceiling`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantsCeiling {
    /// Origin patterns its packages' `outbound_http` grants must fall under.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outbound_http: Vec<Origin>,
    /// Models of other services its packages may read or write.
    #[serde(default, skip_serializing_if = "ModelGrants::is_empty")]
    pub models: ModelGrants,
}

/// One `[[require]]`: at least `min` of `any_of` must have signed every
/// package `packages` matches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Requirement {
    /// The full names the rule applies to.
    pub packages: Vec<NamePattern>,
    /// The keys that count.
    pub any_of: Vec<PublicKey>,
    /// How many of them must have signed (default 1).
    #[serde(default = "one")]
    pub min: NonZeroUsize,
}

fn one() -> NonZeroUsize {
    NonZeroUsize::MIN
}

/// `[revoked]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Revoked {
    /// Keys whose signatures refuse a package.
    #[serde(default)]
    pub keys: Vec<PublicKey>,
}

/// A pattern of full package names: `acme/*`, `acme/dns`, `*`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NamePattern(String);

impl TryFrom<String> for NamePattern {
    type Error = String;

    fn try_from(text: String) -> std::result::Result<Self, String> {
        let ok = !text.is_empty()
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '/' | '*'));
        if ok {
            Ok(NamePattern(text))
        } else {
            Err(format!(
                "`{text}` is not a package pattern; write e.g. \"acme/*\", \"acme/dns\" or \"*\""
            ))
        }
    }
}

impl From<NamePattern> for String {
    fn from(pattern: NamePattern) -> String {
        pattern.0
    }
}

impl fmt::Display for NamePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl NamePattern {
    /// Whether `name` matches; `*` stands for any run of characters.
    pub fn matches(&self, name: &str) -> bool {
        glob(self.0.as_bytes(), name.as_bytes())
    }
}

fn glob(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'*', rest)) => (0..=text.len()).any(|i| glob(rest, &text[i..])),
        Some((c, rest)) => text
            .split_first()
            .is_some_and(|(t, tail)| t == c && glob(rest, tail)),
    }
}

/// A package as the trust policy sees it.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    /// Its full name (`publisher/name`).
    pub name: &'a str,
    /// Its version.
    pub version: &'a str,
    /// Its digest; `None` for a package not sent as a packed file, which
    /// carries no signatures.
    pub digest: Option<&'a str>,
    /// Its signatures, each verified already.
    pub signatures: &'a [Signature],
    /// What it asks for.
    pub grants: &'a Grants,
}

/// Why the policy let a package through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// The rule that matched, in words.
    pub rule: String,
    /// The publisher that vouched for it, if signed.
    pub publisher: Option<String>,
    /// Every key that signed it.
    pub signers: Vec<PublicKey>,
}

impl TrustPolicy {
    /// Parses and checks a trust policy; `origin` names it in errors.
    ///
    /// # Errors
    ///
    /// [`Error::Trust`] with the file, line and
    /// column of a syntax error or unknown key, or a rule that can never
    /// hold (`min` above the number of `any_of` keys, no keys, no
    /// packages).
    pub fn parse(origin: &str, text: &str) -> Result<TrustPolicy> {
        let policy: TrustPolicy = toml::from_str(text).map_err(|e| Error::Trust {
            problem: crate::manifest::toml_error(origin, text, &e),
        })?;
        let bad = |problem: String| {
            Err(Error::Trust {
                problem: format!("{origin}: {problem}"),
            })
        };
        for (i, publisher) in policy.publishers.iter().enumerate() {
            if publisher.keys.is_empty() || publisher.packages.is_empty() {
                return bad(format!(
                    "[[publisher]] #{} ({}) needs keys and packages",
                    i + 1,
                    publisher.name
                ));
            }
        }
        for (i, rule) in policy.requirements.iter().enumerate() {
            if rule.packages.is_empty() || rule.any_of.len() < rule.min.get() {
                return bad(format!(
                    "[[require]] #{} needs packages, and at least min ({}) keys in any_of",
                    i + 1,
                    rule.min
                ));
            }
        }
        Ok(policy)
    }

    /// Checks `candidate` in the order the [module](self) gives.
    ///
    /// # Errors
    ///
    /// [`Error::Untrusted`] naming the rule that failed, with the keys and
    /// patterns involved.
    pub fn evaluate(&self, candidate: &Candidate<'_>, allow_unsigned: bool) -> Result<Verdict> {
        let refuse = |reason: String| Error::Untrusted {
            name: candidate.name.to_owned(),
            version: candidate.version.to_owned(),
            digest: candidate.digest.unwrap_or("(not a packed file)").to_owned(),
            reason,
        };
        let signers: Vec<PublicKey> = candidate.signatures.iter().map(|s| s.key).collect();
        if signers.is_empty() {
            let sent = if candidate.digest.is_some() {
                "it carries no signature"
            } else {
                "it was not sent as a packed file, so it carries no signature"
            };
            if self.require_signature {
                return Err(refuse(format!(
                    "require_signature = true and {sent} (sign it with `syncplane service sign`)"
                )));
            }
            if !allow_unsigned {
                return Err(refuse(format!(
                    "{sent}; this host installs unsigned packages only with --allow-unsigned"
                )));
            }
            return Ok(Verdict {
                rule: "unsigned, allowed for this install by --allow-unsigned".into(),
                publisher: None,
                signers,
            });
        }
        let publisher = self
            .publisher_for(candidate.name, &signers)
            .map_err(refuse)?;
        let (publisher, key) = publisher;
        let mut rule = format!(
            "publisher `{}` may vouch for {} (signed by {key})",
            publisher.name,
            publisher
                .packages
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
        for (i, requirement) in self.requirements.iter().enumerate() {
            if !requirement
                .packages
                .iter()
                .any(|p| p.matches(candidate.name))
            {
                continue;
            }
            let found = requirement
                .any_of
                .iter()
                .filter(|k| signers.contains(k))
                .count();
            if found < requirement.min.get() {
                return Err(refuse(format!(
                    "[[require]] #{} (packages {}) needs {} of [{}] to have signed; {found} did",
                    i + 1,
                    list(&requirement.packages),
                    requirement.min,
                    list(&requirement.any_of)
                )));
            }
            rule.push_str(&format!(
                "; [[require]] #{} met ({found} of {})",
                i + 1,
                requirement.min
            ));
        }
        if let Some(revoked) = signers.iter().find(|k| self.revoked.keys.contains(k)) {
            return Err(refuse(format!(
                "it is signed by {revoked}, which [revoked] lists"
            )));
        }
        let beyond = publisher.grants_ceiling.refusals(candidate.grants);
        if !beyond.is_empty() {
            return Err(refuse(format!(
                "it asks for {} beyond the grants_ceiling of publisher `{}`",
                beyond.join(", "),
                publisher.name
            )));
        }
        Ok(Verdict {
            rule,
            publisher: Some(publisher.name.clone()),
            signers,
        })
    }

    /// The first publisher (in the policy's order) one of `signers` belongs
    /// to that may vouch for `name`, with that key.
    fn publisher_for(
        &self,
        name: &str,
        signers: &[PublicKey],
    ) -> std::result::Result<(&Publisher, PublicKey), String> {
        for publisher in &self.publishers {
            if !publisher.packages.iter().any(|p| p.matches(name)) {
                continue;
            }
            if let Some(key) = publisher.keys.iter().find(|k| signers.contains(k)) {
                return Ok((publisher, *key));
            }
        }
        // Say why: a known key out of its scope, or only unknown keys.
        let scoped: Vec<String> = self
            .publishers
            .iter()
            .flat_map(|p| {
                p.keys.iter().filter(|k| signers.contains(k)).map(move |k| {
                    format!(
                        "{k} of publisher `{}` may vouch for {} only",
                        p.name,
                        list(&p.packages)
                    )
                })
            })
            .collect();
        if scoped.is_empty() {
            Err(format!(
                "it is signed only by keys no [[publisher]] lists: {}",
                list(signers)
            ))
        } else {
            Err(format!(
                "no key that signed it may vouch for `{name}`: {}",
                scoped.join("; ")
            ))
        }
    }
}

impl GrantsCeiling {
    /// Every grant of `grants` this ceiling does not cover.
    pub fn refusals(&self, grants: &Grants) -> Vec<String> {
        let mut beyond = Vec::new();
        for origin in &grants.outbound_http {
            if !self.outbound_http.iter().any(|p| p.covers(origin)) {
                beyond.push(format!("outbound_http \"{origin}\""));
            }
        }
        let covered = |list: &[ModelPattern], m: &ModelPattern| list.iter().any(|p| p.covers(m));
        for model in &grants.models.read {
            if !covered(&self.models.read, model) && !covered(&self.models.write, model) {
                beyond.push(format!("read \"{model}\""));
            }
        }
        for model in &grants.models.write {
            if !covered(&self.models.write, model) {
                beyond.push(format!("write \"{model}\""));
            }
        }
        beyond
    }
}

fn list<T: fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::SigningKey;

    const DIGEST: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

    struct Keys {
        acme: SigningKey,
        ops: SigningKey,
        stranger: SigningKey,
    }

    fn keys() -> Keys {
        Keys {
            acme: SigningKey::generate(),
            ops: SigningKey::generate(),
            stranger: SigningKey::generate(),
        }
    }

    fn policy(keys: &Keys, extra: &str) -> TrustPolicy {
        let text = format!(
            r#"
require_signature = true
[[publisher]]
name = "acme"
keys = ["{acme}"]
packages = ["acme/*"]
grants_ceiling = {{ outbound_http = ["https://*.acme.example:443"] }}
{extra}
"#,
            acme = keys.acme.public_key()
        );
        TrustPolicy::parse("trust.toml", &text).expect("policy")
    }

    fn check(
        policy: &TrustPolicy,
        name: &str,
        signers: &[&SigningKey],
        grants: &str,
    ) -> Result<Verdict> {
        let signatures: Vec<Signature> = signers
            .iter()
            .map(|k| k.sign(DIGEST, name, "1.0.0"))
            .collect();
        let grants: Grants = toml::from_str(grants).expect("grants");
        policy.evaluate(
            &Candidate {
                name,
                version: "1.0.0",
                digest: Some(DIGEST),
                signatures: &signatures,
                grants: &grants,
            },
            false,
        )
    }

    fn refusal(result: Result<Verdict>) -> String {
        result.expect_err("refused").to_string()
    }

    #[test]
    fn a_publishers_key_vouches_only_for_its_packages_within_its_ceiling() {
        let keys = keys();
        let policy = policy(&keys, "");
        let verdict = check(
            &policy,
            "acme/dns",
            &[&keys.acme],
            r#"outbound_http = ["https://api.acme.example:443"]"#,
        )
        .expect("trusted");
        assert_eq!(verdict.publisher.as_deref(), Some("acme"));
        assert!(verdict.rule.contains("acme/*"), "{}", verdict.rule);

        let message = refusal(check(&policy, "evil/x", &[&keys.acme], ""));
        assert!(
            message.contains("may vouch for acme/* only") && message.contains("evil/x"),
            "{message}"
        );
        let message = refusal(check(&policy, "acme/dns", &[&keys.stranger], ""));
        assert!(
            message.contains("no [[publisher]] lists")
                && message.contains(&keys.stranger.public_key().to_string()),
            "{message}"
        );
        let message = refusal(check(
            &policy,
            "acme/dns",
            &[&keys.acme],
            r#"outbound_http = ["https://evil.example:443"]"#,
        ));
        assert!(
            message.contains("outbound_http \"https://evil.example:443\"")
                && message.contains("grants_ceiling of publisher `acme`"),
            "{message}"
        );
    }

    #[test]
    fn unsigned_packages_need_allow_unsigned_unless_signatures_are_required() {
        let keys = keys();
        let grants = Grants::default();
        let candidate = Candidate {
            name: "acme/dns",
            version: "1.0.0",
            digest: None,
            signatures: &[],
            grants: &grants,
        };
        let strict = policy(&keys, "");
        let message = refusal(strict.evaluate(&candidate, true));
        assert!(message.contains("require_signature = true"), "{message}");
        let lax = TrustPolicy::default();
        let message = refusal(lax.evaluate(&candidate, false));
        assert!(message.contains("--allow-unsigned"), "{message}");
        let verdict = lax.evaluate(&candidate, true).expect("allowed");
        assert!(
            verdict.rule.contains("--allow-unsigned"),
            "{}",
            verdict.rule
        );
    }

    #[test]
    fn requirements_and_revocations_are_checked_after_the_publisher() {
        let keys = keys();
        let policy = policy(
            &keys,
            &format!(
                "[[require]]\npackages = [\"*\"]\nany_of = [\"{}\"]\n[revoked]\nkeys = [\"{}\"]\n",
                keys.ops.public_key(),
                keys.stranger.public_key()
            ),
        );
        let message = refusal(check(&policy, "acme/dns", &[&keys.acme], ""));
        assert!(
            message.contains("[[require]] #1") && message.contains("0 did"),
            "{message}"
        );
        check(&policy, "acme/dns", &[&keys.acme, &keys.ops], "").expect("approved");
        let message = refusal(check(
            &policy,
            "acme/dns",
            &[&keys.acme, &keys.ops, &keys.stranger],
            "",
        ));
        assert!(
            message.contains(&format!(
                "signed by {}, which [revoked] lists",
                keys.stranger.public_key()
            )),
            "{message}"
        );
    }

    #[test]
    fn a_policy_with_an_unknown_key_or_an_impossible_rule_is_refused_with_its_place() {
        let message = TrustPolicy::parse("trust.toml", "require_signatures = true\n")
            .expect_err("typo")
            .to_string();
        assert!(message.contains("trust.toml:1"), "{message}");
        let message = TrustPolicy::parse(
            "trust.toml",
            "[[require]]\npackages = [\"*\"]\nany_of = []\n",
        )
        .expect_err("impossible")
        .to_string();
        assert!(message.contains("[[require]] #1"), "{message}");
        assert!(NamePattern("acme/*".into()).matches("acme/dns"));
        assert!(!NamePattern("acme/*".into()).matches("evil/acme"));
        assert!(NamePattern("*".into()).matches("hello-world"));
    }
}
