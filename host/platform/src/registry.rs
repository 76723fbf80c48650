//! The registry of installed services: one place that says what is
//! installed. Its rows in the store (namespace `services`, one per service)
//! are the source of truth; the in-memory map mirrors them and holds what
//! each service runs with.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use syncplane_runtime::capability::{Grants, ServiceContext};
use syncplane_xproto::File;

use crate::error::{Error, Result};
use crate::package::ServicePackage;

/// Where installed services are kept in the store.
pub(crate) const SERVICES_NAMESPACE: &str = "services";
/// Where their components are kept, by SHA-256 (hex), as base64: apart from
/// the service rows, so that reading what is installed (at every start)
/// does not read every component, and versions sharing a component store
/// it once.
pub(crate) const COMPONENTS_NAMESPACE: &str = "service-components";

/// One service as the store keeps it: the package, what the operator
/// allowed for it, when it was installed, and the version before (kept so
/// `service rollback` can return to it).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ServiceRecord {
    pub(crate) package: ServicePackage,
    #[serde(default)]
    pub(crate) allowed: Vec<String>,
    /// Seconds since the epoch.
    #[serde(default)]
    pub(crate) installed_at: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) previous: Option<Box<ServiceRecord>>,
    /// The SHA-256 of each step's component, by step name, when the row
    /// keeps components in [`COMPONENTS_NAMESPACE`] (rows written before
    /// keep them inline, in the package).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) component_digests: BTreeMap<String, String>,
    /// Where the package came from: the digest and verified signers of
    /// its packed file; `None` for a directory or JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) origin: Option<Origin>,
    /// The trust policy's rule that let this version in, when a policy
    /// was set (kept for its history, and for a rollback to it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) trust_rule: Option<String>,
}

/// The digest and signers of an installed package's file.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Origin {
    /// The package's digest.
    pub digest: String,
    /// The keys whose signatures it carried, verified.
    pub signers: Vec<String>,
}

impl ServiceRecord {
    /// Reads a stored row; rows written before the registry held a bare
    /// package.
    pub(crate) fn parse(name: &str, text: &str) -> Result<ServiceRecord> {
        serde_json::from_str::<ServiceRecord>(text)
            .or_else(|_| {
                serde_json::from_str::<ServicePackage>(text).map(|package| ServiceRecord {
                    package,
                    allowed: Vec::new(),
                    installed_at: 0.0,
                    previous: None,
                    component_digests: BTreeMap::new(),
                    origin: None,
                    trust_rule: None,
                })
            })
            .map_err(|e| Error::Package(format!("stored service `{name}` is unreadable: {e}")))
    }

    /// This record without component bytes (its previous version's
    /// neither): what the host keeps in memory once a service is loaded.
    /// The bytes stay in the stored row; [`crate::Host`] reads them back
    /// when an upgrade or a rollback needs them.
    pub(crate) fn without_components(mut self) -> ServiceRecord {
        self.package.components.clear();
        if let Some(previous) = &mut self.previous {
            previous.package.components.clear();
        }
        self
    }

    /// The row to store and the component rows it refers to: the record
    /// (and its previous version) with components replaced by their
    /// digests, and `(digest, base64)` for each component.
    pub(crate) fn stored_form(&self) -> Result<(String, Vec<(String, String)>)> {
        use base64::Engine as _;
        fn take(record: &mut ServiceRecord, components: &mut Vec<(String, String)>) {
            for (step, bytes) in std::mem::take(&mut record.package.components) {
                let digest = syncplane_runtime::cache::digest(&bytes);
                components.push((
                    digest.clone(),
                    base64::engine::general_purpose::STANDARD.encode(&bytes),
                ));
                record.component_digests.insert(step, digest);
            }
        }
        let mut components = Vec::new();
        let mut stored = self.clone();
        take(&mut stored, &mut components);
        if let Some(previous) = stored.previous.as_deref_mut() {
            take(previous, &mut components);
        }
        components.sort();
        components.dedup_by(|a, b| a.0 == b.0);
        Ok((stored.to_json()?, components))
    }

    /// Every component digest this record refers to (its previous
    /// version's included).
    pub(crate) fn digests(&self) -> impl Iterator<Item = &String> {
        self.component_digests.values().chain(
            self.previous
                .iter()
                .flat_map(|p| p.component_digests.values()),
        )
    }

    pub(crate) fn to_json(&self) -> Result<String> {
        serde_json::to_string(self)
            .map_err(|e| Error::Package(format!("cannot serialise the service record: {e}")))
    }

    pub(crate) fn version(&self) -> &str {
        &self.package.manifest.service.version
    }
}

/// A service as installed, as `service list` and `service show` report it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InstalledService {
    /// The service name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// `active`, or `purging` while `uninstall --purge` tears its objects
    /// down.
    pub state: String,
    /// When this version was installed, seconds since the epoch.
    pub installed_at: f64,
    /// The version `service rollback` returns to, if any.
    pub previous_version: Option<String>,
    /// The models its files define.
    pub models: Vec<String>,
    /// Its sync steps as `name -> observed models`.
    pub sync_steps: BTreeMap<String, Vec<String>>,
    /// What its manifest asks for beyond its own models.
    pub capabilities: Grants,
    /// The `--allow` flags it was installed with.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed: Vec<String>,
    /// The digest and signers of the file it was installed from, if it
    /// came in one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
    /// The services it depends on, with the versions it accepts.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub dependencies: BTreeMap<String, String>,
    /// The views its manifest adds to the GUI.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gui_views: Vec<crate::manifest::GuiViewSection>,
}

/// One installed service as the host runs it.
#[derive(Clone)]
pub(crate) struct Installed {
    /// The record without component bytes ([`ServiceRecord::without_components`]).
    pub(crate) record: ServiceRecord,
    pub(crate) files: Vec<File>,
    pub(crate) ctx: Arc<ServiceContext>,
    pub(crate) info: InstalledService,
    /// What the check of stored components made at start found wrong
    /// with this version (`crate::integrity`); a new version starts clean.
    pub(crate) damaged: Vec<String>,
}

impl Installed {
    /// How this service depends on models in `models`, each as `(what,
    /// used model)`: its models extending or linking to them, exact grants
    /// naming them, and steps or policies observing them.
    pub(crate) fn uses(&self, models: &std::collections::BTreeSet<&str>) -> Vec<(String, String)> {
        let mut uses = Vec::new();
        for model in self.files.iter().flat_map(|f| f.models.iter()) {
            let used = model
                .bases
                .iter()
                .map(String::as_str)
                .chain(model.fields.iter().filter_map(|f| f.link_target()))
                .find(|used| models.contains(used));
            if let Some(used) = used {
                uses.push((format!("its model `{}`", model.name), used.to_owned()));
            }
        }
        let manifest = &self.record.package.manifest;
        let grants = &manifest.capabilities.models;
        for pattern in grants.read.iter().chain(&grants.write) {
            let named = pattern.to_string();
            let model = named.rsplit('.').next().unwrap_or(&named);
            if pattern.is_exact() && models.contains(model) {
                uses.push((format!("its grant `{named}`"), model.to_owned()));
            }
        }
        for (step, model) in manifest.observed() {
            if models.contains(model.as_str()) {
                uses.push((format!("its step `{step}`"), model.clone()));
            }
        }
        uses
    }
}

/// The in-memory side of the registry, shared by the host's clones.
#[derive(Clone, Default)]
pub(crate) struct Registry {
    services: Arc<Mutex<BTreeMap<String, Installed>>>,
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Installed>> {
        self.services.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn get(&self, name: &str) -> Option<Installed> {
        self.lock().get(name).cloned()
    }

    pub(crate) fn all(&self) -> Vec<Installed> {
        self.lock().values().cloned().collect()
    }

    /// Every installed service but `name`.
    pub(crate) fn others(&self, name: &str) -> Vec<Installed> {
        self.lock()
            .values()
            .filter(|s| s.info.name != name)
            .cloned()
            .collect()
    }

    pub(crate) fn insert(&self, installed: Installed) {
        self.lock().insert(installed.info.name.clone(), installed);
    }

    pub(crate) fn remove(&self, name: &str) {
        self.lock().remove(name);
    }

    /// Records that step `step` of `service` has a stored component that
    /// failed its check, if the service still runs that component.
    pub(crate) fn mark_damaged(&self, service: &str, step: &str, digest: &str, problem: String) {
        let mut services = self.lock();
        if let Some(installed) = services.get_mut(service)
            && installed
                .record
                .component_digests
                .get(step)
                .map(String::as_str)
                == Some(digest)
        {
            installed.damaged.push(problem);
        }
    }

    /// What the check of stored components found wrong with `service`.
    pub(crate) fn damage(&self, service: &str) -> Vec<String> {
        self.lock()
            .get(service)
            .map(|s| s.damaged.clone())
            .unwrap_or_default()
    }

    pub(crate) fn set_state(&self, name: &str, state: &str) {
        if let Some(s) = self.lock().get_mut(name) {
            s.info.state = state.to_owned();
        }
    }

    pub(crate) fn context(&self, name: &str) -> Result<Arc<ServiceContext>> {
        self.lock()
            .get(name)
            .map(|s| Arc::clone(&s.ctx))
            .ok_or_else(|| Error::UnknownService(name.to_owned()))
    }
}
