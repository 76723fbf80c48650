//! Where a package came from, and the host's trust gate: every install and
//! upgrade passes [`Host::check_trust`] before anything of the package is
//! compiled.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use crate::archive::PackedService;
use crate::error::Result;
use crate::host::Host;
use crate::lifecycle::InstallOptions;
use crate::package::ServicePackage;
use crate::signing::Signature;
use crate::trust::{Candidate, TrustPolicy, Verdict};

/// What a packed file proved about its package: its digest and the
/// signatures it carries, each verified. Only [`PackedService::split`]
/// makes one, so it always belongs to the package it came with.
#[derive(Debug, Clone)]
pub struct Provenance {
    digest: String,
    signatures: Vec<Signature>,
}

impl Provenance {
    /// The package's digest.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// Its verified signatures.
    pub fn signatures(&self) -> &[Signature] {
        &self.signatures
    }

    /// What an installed service records of it.
    pub(crate) fn origin(&self) -> crate::registry::Origin {
        crate::registry::Origin {
            digest: self.digest.clone(),
            signers: self.signatures.iter().map(|s| s.key.to_string()).collect(),
        }
    }
}

impl PackedService {
    /// The package and what its file proved about it, for
    /// [`InstallOptions::provenance`].
    pub fn split(self) -> (ServicePackage, Provenance) {
        (
            self.package,
            Provenance {
                digest: self.digest,
                signatures: self.signatures,
            },
        )
    }
}

/// The trust policy in force and how many packages it let through or
/// refused.
#[derive(Debug, Default)]
pub(crate) struct TrustGate {
    policy: RwLock<Option<Arc<TrustPolicy>>>,
    allowed: AtomicU64,
    refused: AtomicU64,
}

impl TrustGate {
    pub(crate) fn new(policy: Option<TrustPolicy>) -> TrustGate {
        TrustGate {
            policy: RwLock::new(policy.map(Arc::new)),
            ..TrustGate::default()
        }
    }

    fn policy(&self) -> Option<Arc<TrustPolicy>> {
        match self.policy.read() {
            Ok(guard) => guard.clone(),
            // A writer never panics while holding the lock; if one did,
            // the value it left is still a whole policy.
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

impl Host {
    /// The keys that signed `provenance`'s package but none of the
    /// installed version of the service: a new signer for this name, which
    /// `inspect` and `upgrade` flag. Empty when the service is not
    /// installed (every signer is new then, and none is worth flagging).
    pub fn new_signers(&self, package: &ServicePackage, provenance: &Provenance) -> Vec<String> {
        let Some(installed) = self.registry.get(&package.manifest.service.name) else {
            return Vec::new();
        };
        let known = installed
            .info
            .origin
            .as_ref()
            .map(|o| o.signers.clone())
            .unwrap_or_default();
        provenance
            .signatures
            .iter()
            .map(|s| s.key.to_string())
            .filter(|key| !known.contains(key))
            .collect()
    }

    /// The trust policy in force, if any.
    pub fn trust_policy(&self) -> Option<Arc<TrustPolicy>> {
        self.trust.policy()
    }

    /// Replaces the trust policy (`None`: signatures are verified but not
    /// required). Installs after this call are checked against it.
    pub fn set_trust_policy(&self, policy: Option<TrustPolicy>) {
        let mut guard = match self.trust.policy.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        *guard = policy.map(Arc::new);
        tracing::info!(enabled = guard.is_some(), "trust policy replaced");
    }

    /// Checks `package` against the trust policy, with what its file proved
    /// (`options.provenance`) and `options.allow_unsigned`. `None` when no
    /// policy is set.
    ///
    /// # Errors
    ///
    /// [`crate::Error::Untrusted`] naming the rule that failed.
    pub fn check_trust(
        &self,
        package: &ServicePackage,
        options: &InstallOptions,
    ) -> Result<Option<Verdict>> {
        let Some(policy) = self.trust.policy() else {
            return Ok(None);
        };
        let manifest = &package.manifest;
        let name = manifest.full_name();
        let candidate = Candidate {
            name: &name,
            version: &manifest.service.version,
            digest: options.provenance.as_ref().map(|p| p.digest.as_str()),
            signatures: options
                .provenance
                .as_ref()
                .map_or(&[], |p| p.signatures.as_slice()),
            grants: &manifest.capabilities,
        };
        match policy.evaluate(&candidate, options.allow_unsigned) {
            Ok(verdict) => {
                self.trust.allowed.fetch_add(1, Ordering::Relaxed);
                tracing::info!(
                    package = %name,
                    version = %manifest.service.version,
                    digest = candidate.digest.unwrap_or("-"),
                    rule = %verdict.rule,
                    "trust policy allows the package"
                );
                Ok(Some(verdict))
            }
            Err(e) => {
                self.trust.refused.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    package = %name,
                    version = %manifest.service.version,
                    digest = candidate.digest.unwrap_or("-"),
                    reason = %e,
                    "trust policy refuses the package"
                );
                Err(e)
            }
        }
    }

    /// The trust gate's counters in the Prometheus text format (no `# EOF`).
    pub fn trust_metrics(&self) -> String {
        format!(
            "# HELP syncplane_trust_decisions Packages the trust policy checked, by decision.\n\
             # TYPE syncplane_trust_decisions counter\n\
             syncplane_trust_decisions_total{{decision=\"allowed\"}} {}\n\
             syncplane_trust_decisions_total{{decision=\"refused\"}} {}\n",
            self.trust.allowed.load(Ordering::Relaxed),
            self.trust.refused.load(Ordering::Relaxed),
        )
    }
}
