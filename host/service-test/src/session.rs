//! A throwaway host for one test file: the service installed as the
//! platform installs it, on a temporary store, a virtual clock and the
//! recorded HTTP backend; each test starts from the objects the install
//! left.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value};
use syncplane_core::{Object, PolicyRecord, SyncBatch, SyncRecord};
use syncplane_platform::{Host, HostConfig, InstallOptions, ServicePackage};
use syncplane_runtime::capability::{Allow, Grants};

use crate::backend::FakeBackend;
use crate::clock::VirtualClock;
use crate::error::{Error, Result};
use crate::logs::Captured;

/// The host of one test file.
pub(crate) struct Session {
    pub(crate) host: Host,
    pub(crate) service: String,
    pub(crate) backend: Arc<FakeBackend>,
    pub(crate) clock: Arc<VirtualClock>,
    pub(crate) logs: Captured,
    /// Objects there before any test (the admin, what the install made).
    baseline: BTreeSet<i64>,
    config_names: Vec<String>,
    secret_names: Vec<String>,
    /// Dropped last: the store lives here.
    _data: tempfile::TempDir,
}

/// The admin password of every test host; nothing signs in.
const ADMIN_PASSWORD: &str = "syncplane-test-admin";

impl Session {
    /// Opens a host on a temporary directory, installs the service's
    /// models of `others` (directories, relative to `dir`) and then
    /// `package`, with every capability it asks for allowed.
    pub(crate) async fn open(
        dir: &Path,
        package: &ServicePackage,
        others: &[PathBuf],
        logs: Captured,
    ) -> Result<Session> {
        let data = tempfile::tempdir().map_err(Error::Setup)?;
        let mut config = HostConfig::new(data.path());
        config.admin_password = Some(ADMIN_PASSWORD.to_owned());
        config.background_steps = false;
        // Shared between runs: each component compiles once, not per run
        // (seconds for a Python or JavaScript one).
        config.component_cache_dir = shared_cache_dir();
        let clock = Arc::new(VirtualClock::at(syncplane_core::now_ms()));
        let host = Host::open_with_clock(config, Arc::clone(&clock) as _)
            .await
            .map_err(|e| Error::Host(Box::new(e)))?;
        for other in others {
            let other_dir = dir.join(other);
            let stub = models_only(&other_dir)?;
            host.install(stub, &InstallOptions::default())
                .await
                .map_err(|source| Error::Load {
                    dir: other_dir.clone(),
                    source: Box::new(source),
                })?;
        }
        let grants = &package.manifest.capabilities;
        let options = InstallOptions {
            allow: allows(grants),
            allow_downgrade: false,
            ..InstallOptions::default()
        };
        host.install(package.clone(), &options)
            .await
            .map_err(|source| Error::Load {
                dir: dir.to_owned(),
                source: Box::new(source),
            })?;
        let service = package.manifest.service.name.clone();
        let backend = Arc::new(FakeBackend::default());
        host.context(&service)
            .map_err(|e| Error::Host(Box::new(e)))?
            .set_http_responder(Some(Arc::clone(&backend) as _));
        let mut session = Session {
            host,
            service,
            backend,
            clock,
            logs,
            baseline: BTreeSet::new(),
            config_names: grants.config.clone(),
            secret_names: grants.secrets.clone(),
            _data: data,
        };
        session.baseline = session
            .objects()
            .await
            .map_err(|e| Error::Host(Box::new(e)))?
            .into_keys()
            .collect();
        Ok(session)
    }

    /// The virtual clock's time in seconds since the epoch.
    pub(crate) fn clock_secs(&self) -> f64 {
        use syncplane_engine::Clock as _;
        self.clock.now_ms() as f64 / 1000.0
    }

    /// How many times the service's sync steps have run on this host.
    pub(crate) fn invocations(&self) -> u64 {
        self.host
            .engine()
            .stats()
            .activity()
            .iter()
            .filter(|a| a.service == self.service)
            .map(|a| a.invocations)
            .sum()
    }

    /// Every object, by id.
    pub(crate) async fn objects(&self) -> syncplane_platform::Result<BTreeMap<i64, Object>> {
        let core = self.host.core();
        let registry = core.registry();
        let mut all = BTreeMap::new();
        for model in registry.schema().models().filter(|m| !m.is_abstract()) {
            for object in core.list(&model.name).await? {
                all.insert(object.id, object);
            }
        }
        Ok(all)
    }

    /// Back to the state after the install: objects made since are purged,
    /// the clock is back at its start, config and secrets are set to
    /// `config` and `secrets` (the others unset).
    ///
    /// # Errors
    ///
    /// A message naming what could not be set.
    pub(crate) async fn reset(
        &self,
        config: &BTreeMap<String, String>,
        secrets: &BTreeMap<String, String>,
    ) -> std::result::Result<(), Reset> {
        self.purge_all()
            .await
            .map_err(|e| Reset::Store(e.to_string()))?;
        self.clock.reset();
        let mut values: BTreeMap<String, String> = self
            .config_names
            .iter()
            .map(|name| (name.clone(), String::new()))
            .collect();
        values.extend(config.iter().map(|(k, v)| (k.clone(), v.clone())));
        self.host
            .set_config(&self.service, &values)
            .await
            .map_err(|e| Reset::Config(format!("{e:#}")))?;
        for name in &self.secret_names {
            if !secrets.contains_key(name) {
                self.host
                    .set_secret(&self.service, name, "")
                    .await
                    .map_err(|e| Reset::Secrets(format!("{e:#}")))?;
            }
        }
        for (name, value) in secrets {
            self.host
                .set_secret(&self.service, name, value)
                .await
                .map_err(|e| Reset::Secrets(format!("{e:#}")))?;
        }
        Ok(())
    }

    /// Purges every object made after the install, referrers first.
    async fn purge_all(&self) -> syncplane_platform::Result<()> {
        loop {
            let left: Vec<Object> = self
                .objects()
                .await?
                .into_values()
                .filter(|o| !self.baseline.contains(&o.id))
                .collect();
            if left.is_empty() {
                return Ok(());
            }
            let mut batch = SyncBatch::default();
            for object in &left {
                batch.purge(object);
            }
            self.host.core().apply(&batch).await?;
            let after = self.objects().await?;
            if left.iter().all(|o| after.contains_key(&o.id)) {
                return Err(syncplane_platform::Error::Package(format!(
                    "objects left by the previous test cannot be purged: {:?}",
                    left.iter().map(|o| o.id).collect::<Vec<_>>()
                )));
            }
        }
    }

    /// Creates a fixture as a synced object: enacted, and policed unless
    /// `police` is false (its `handle-create` is what a test runs).
    pub(crate) async fn create_fixture(
        &self,
        model: &str,
        fields: Map<String, Value>,
        police: bool,
    ) -> syncplane_core::Result<Object> {
        let core = self.host.core();
        let object = core.create(model, fields).await?;
        if police {
            core.record_policy(&object, PolicyRecord::Done).await?;
        }
        core.record_sync(
            object.id,
            SyncRecord::Enacted {
                synced_seq: object.sync.change_seq,
            },
        )
        .await?;
        Ok(object)
    }

    /// Marks every object whose policies have not run as policed, so a
    /// pass of steps alone sees it (policies are a `policy` action's).
    pub(crate) async fn police_all(&self) -> syncplane_platform::Result<()> {
        for object in self.objects().await?.into_values() {
            if !object.sync.is_policed() && !object.flag(syncplane_core::field::NO_POLICY) {
                self.host
                    .core()
                    .record_policy(&object, PolicyRecord::Done)
                    .await?;
            }
        }
        Ok(())
    }
}

/// Why a test's start could not be set up.
#[derive(Debug)]
pub(crate) enum Reset {
    /// The store failed purging the previous test's objects.
    Store(String),
    /// A config value the service does not declare, or a store failure.
    Config(String),
    /// A secret the service does not declare, or a store failure.
    Secrets(String),
}

/// `--allow` flags for everything `grants` asks for: a test host allows
/// what the package declares (and only that).
fn allows(grants: &Grants) -> Vec<Allow> {
    let mut allow: Vec<Allow> = grants
        .outbound_http
        .iter()
        .cloned()
        .map(Allow::OutboundHttp)
        .collect();
    allow.extend(grants.models.read.iter().cloned().map(Allow::Read));
    allow.extend(grants.models.write.iter().cloned().map(Allow::Write));
    allow
}

/// The package at `dir` with its models only: no components, no grants.
fn models_only(dir: &Path) -> Result<ServicePackage> {
    let load = |source| Error::Load {
        dir: dir.to_owned(),
        source: Box::new(source),
    };
    let mut manifest = ServicePackage::read_manifest(dir).map_err(load)?;
    manifest.build = None;
    manifest.sync_steps.clear();
    manifest.event_steps.clear();
    manifest.pull_steps.clear();
    manifest.model_policies.clear();
    manifest.event_bus = None;
    manifest.capabilities = Grants::default();
    let mut xproto = BTreeMap::new();
    for path in &manifest.service.xproto {
        let full = dir.join(path);
        let text = std::fs::read_to_string(&full).map_err(|source| Error::Read {
            path: full.clone(),
            source,
        })?;
        xproto.insert(path.clone(), text);
    }
    let model_deps = match &manifest.service.model_deps {
        Some(path) => {
            let full = dir.join(path);
            Some(
                std::fs::read_to_string(&full).map_err(|source| Error::Read {
                    path: full.clone(),
                    source,
                })?,
            )
        }
        None => None,
    };
    Ok(ServicePackage {
        manifest,
        xproto,
        model_deps,
        components: BTreeMap::new(),
    })
}

/// The compiled-component cache `service test` shares between runs:
/// `$SYNCPLANE_CACHE_DIR/components`, else `$XDG_CACHE_HOME/syncplane/components`,
/// else `~/.cache/syncplane/components`; none (a cache per run) when none
/// of these is set.
fn shared_cache_dir() -> Option<std::path::PathBuf> {
    let base = std::env::var_os("SYNCPLANE_CACHE_DIR")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            std::env::var_os("XDG_CACHE_HOME")
                .map(|d| std::path::PathBuf::from(d).join("syncplane"))
        })
        .or_else(|| {
            std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cache/syncplane"))
        })?;
    Some(base.join("components"))
}
