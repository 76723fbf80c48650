//! The running host: core, engine and runtime wired together.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use syncplane_core::{Core, ModelSyncCounts, RecordWrite, StoreLocation as Location};
use syncplane_engine::{
    CallOutcome, Clock, Engine, EngineConfig, Event, StepActivity, SystemClock,
};
use syncplane_runtime::cache::ComponentCache;
use syncplane_runtime::capability::{Allow, Grants, OperatorPolicy, ServiceContext};
use syncplane_runtime::lazy::{ComponentState, ComponentStatus};
use syncplane_runtime::{Limits, Runtime};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::info;

use crate::error::{Error, Result};
use crate::events::{EventBus, EventStepStatus};
use crate::package::ServicePackage;
use crate::pulls::{PullStepStatus, Pullers};
use crate::quota::{QuotaUsage, Quotas, ServiceQuota};
use crate::registry::{InstalledService, Registry};
use crate::secrets::SecretBox;

/// Where each service's config values are kept (one JSON object per service).
pub(crate) const CONFIG_NAMESPACE: &str = "service-config";
/// Where each service's sealed secrets are kept, apart from models and
/// config (one JSON object of sealed values per service).
pub(crate) const SECRETS_NAMESPACE: &str = "service-secrets";
/// The file that keeps a generated admin password, readable by its owner only.
pub const ADMIN_PASSWORD_FILE: &str = "admin-password";

/// How to run a host.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// The data directory; created when missing. It holds the embedded
    /// database unless [`HostConfig::store`] names another store, and the
    /// compiled-component cache and secret key either way.
    pub data_dir: PathBuf,
    /// Where models and bookkeeping are kept: by default (`None`) the
    /// SQLite file `<data_dir>/syncplane.db`; or a PostgreSQL database.
    pub store: Option<Location>,
    /// The admin password for a new data directory; when `None`, a random
    /// one is generated, shown once and kept in [`ADMIN_PASSWORD_FILE`].
    pub admin_password: Option<String>,
    /// How the engine schedules and retries.
    pub engine: EngineConfig,
    /// Limits of guest invocations.
    pub limits: Limits,
    /// What packages may be granted (`policy.toml`); by default, nothing
    /// beyond their own models, config and secrets.
    pub policy: OperatorPolicy,
    /// Which signed packages may be installed (`serve --trust`); by
    /// default none is set: signatures in packed files are verified but
    /// not required. Changed while running with [`Host::set_trust_policy`].
    pub trust: Option<crate::trust::TrustPolicy>,
    /// The key secrets are sealed with; by default
    /// `<data_dir>/secret.key`, generated on first use.
    pub secret_key_file: Option<PathBuf>,
    /// The most objects one service's models may hold, unless the operator
    /// set its own ([`Host::set_service_quota`]). Default: `None`, no
    /// limit. The other per-service defaults are
    /// [`EngineConfig::service_limits`] and [`Limits`].
    pub service_max_objects: Option<u64>,
    /// The most bytes of compiled components kept in
    /// `<data_dir>/cache/components` for services no longer installed
    /// (those installed are always kept). Default: 4 GiB.
    pub component_cache_max_bytes: u64,
    /// Where compiled components are cached; default
    /// `<data_dir>/`[`COMPONENT_CACHE_DIR`]. Tools on throwaway data
    /// directories (`syncplane service test`) share one elsewhere, so that
    /// a component is compiled once, not at every run.
    pub component_cache_dir: Option<PathBuf>,
    /// How long a component stays loaded without calls. Default:
    /// [`DEFAULT_IDLE_UNLOAD`](syncplane_runtime::lazy::DEFAULT_IDLE_UNLOAD).
    pub guest_idle_unload: std::time::Duration,
    /// Whether pull steps run on their interval and event steps listen for
    /// events. Default: `true`. Tools that call them one at a time
    /// ([`Host::run_pull_step`], [`Host::deliver_event`]), such as the
    /// offline step tests of `syncplane service test`, turn it off.
    pub background_steps: bool,
    /// The most linear memory all running guest instances may hold
    /// together, in bytes; more calls wait for one to end
    /// ([`syncplane_runtime::memory`]). Default: `None`, no cap.
    pub guest_memory_max: Option<usize>,
    /// The most instances kept warm between calls across the host, for
    /// services that reuse instances ([`syncplane_runtime::warm`]).
    /// Default: [`DEFAULT_MAX_WARM`](syncplane_runtime::warm::DEFAULT_MAX_WARM).
    pub warm_instances_max: usize,
}

/// Where compiled components are cached, under the data directory.
pub const COMPONENT_CACHE_DIR: &str = "cache/components";

impl HostConfig {
    /// A configuration with defaults for `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        HostConfig {
            data_dir: data_dir.into(),
            store: None,
            admin_password: None,
            engine: EngineConfig::default(),
            limits: Limits::default(),
            policy: OperatorPolicy::default(),
            trust: None,
            secret_key_file: None,
            service_max_objects: None,
            component_cache_max_bytes: syncplane_runtime::cache::DEFAULT_MAX_BYTES,
            component_cache_dir: None,
            guest_idle_unload: syncplane_runtime::lazy::DEFAULT_IDLE_UNLOAD,
            background_steps: true,
            guest_memory_max: None,
            warm_instances_max: syncplane_runtime::warm::DEFAULT_MAX_WARM,
        }
    }
}

/// One service's config values and which secrets are set (never their
/// values), as `service show` prints them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceSettings {
    /// The service.
    pub service: String,
    /// Config values by declared name; unset ones are absent.
    pub config: BTreeMap<String, String>,
    /// Declared config names.
    pub config_declared: Vec<String>,
    /// Declared secret names and whether each is set.
    pub secrets: BTreeMap<String, bool>,
}

/// What a package asks for, as `service inspect` shows it before install.
#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    /// The service name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// The models its xproto files define.
    pub models: Vec<String>,
    /// Its components by kind: `sync_steps`, `model_policies`,
    /// `pull_steps`, `event_steps`.
    pub steps: BTreeMap<String, Vec<String>>,
    /// What it asks for.
    pub capabilities: Grants,
    /// The limits every invocation runs under.
    pub limits: InspectedLimits,
    /// Every interface each component imports, and whether this host
    /// serves it.
    pub imports: Vec<crate::package::InspectedImport>,
    /// Grants the host's policy (with the given `--allow` flags) refuses,
    /// imports it does not serve or the manifest does not declare, and a
    /// `requires` this host does not meet; empty when it may be installed.
    pub refused: Vec<String>,
    /// The syncplane versions it requires, if it says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requires: Option<String>,
    /// The services it depends on, each with what is installed now.
    pub dependencies: Vec<crate::dependencies::DependencyStatus>,
}

/// [`Limits`] in units people read.
#[derive(Debug, Clone, Serialize)]
pub struct InspectedLimits {
    /// Deadline of one invocation, in milliseconds.
    pub deadline_ms: u64,
    /// Memory of one instance, in MiB.
    pub memory_mib: usize,
    /// Timeout of one outbound request, in milliseconds.
    pub http_timeout_ms: u64,
    /// Response body bytes one request may read.
    pub http_body_bytes: u64,
    /// Log bytes one invocation may write.
    pub log_bytes: usize,
}

/// What the synchronizer of a host is doing, per service.
#[derive(Debug, Clone, Serialize)]
pub struct HostStatus {
    /// Where the host keeps its models and bookkeeping.
    pub store: StoreStatus,
    /// Installed services, by name.
    pub services: Vec<ServiceStatus>,
    /// The cap on guest memory and its use, when the operator set one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guest_memory: Option<GuestMemoryStatus>,
    /// The hosts sharing the store (PostgreSQL), by start time.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<SharedHostStatus>,
}

/// A host sharing the store, as it last renewed its leases.
#[derive(Debug, Clone, Serialize)]
pub struct SharedHostStatus {
    /// Its id for this run.
    pub host: String,
    /// The machine's name and the process id.
    pub name: String,
    /// Whether it is the host answering.
    pub this: bool,
    /// When it started, in ms since the epoch.
    pub started_ms: i64,
    /// When it last renewed its leases.
    pub seen_ms: i64,
    /// The objects it held leases on then.
    pub leases: i64,
    /// The step invocations it finished since it started, as of then.
    pub steps: i64,
    /// The step invocations running on it then.
    pub running: i64,
    /// Its step invocations per second between its last two heartbeats.
    pub steps_per_s: f64,
}

/// The store a host runs on.
#[derive(Debug, Clone, Serialize)]
pub struct StoreStatus {
    /// `sqlite` or `postgres`.
    pub engine: &'static str,
    /// The file, or the PostgreSQL URL without its password.
    pub location: String,
}

/// The operator's cap on guest memory and its use, as `status` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct GuestMemoryStatus {
    /// The cap, in bytes.
    pub cap_bytes: usize,
    /// Bytes reserved by the calls running now.
    pub reserved_bytes: usize,
    /// Calls that waited for memory since the host started.
    pub waits: u64,
    /// Calls refused memory (over the cap, or none free within their
    /// deadline).
    pub refused: u64,
}

/// One service's steps and the objects of the models they serve.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceStatus {
    /// The service name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// Its steps: what they observe and what they did since the host started.
    pub steps: Vec<StepStatus>,
    /// Objects of the models its steps observe.
    pub models: Vec<ModelSyncCounts>,
    /// Its event steps: topics and what they handled.
    pub event_steps: Vec<EventStepStatus>,
    /// Its pull steps: interval and what they did.
    pub pull_steps: Vec<PullStepStatus>,
    /// Its usage against its limits.
    pub quota: QuotaUsage,
    /// Its most active component's state: `running` when a call runs,
    /// `warm` when a component is loaded, `cold` when none is.
    pub state: ComponentState,
    /// Each component: cold, warm or running, and the compiled code it maps.
    pub components: Vec<ComponentStatus>,
    /// Stored components that failed the check made at start (their bytes
    /// no longer match their digest, or are missing): those steps do not
    /// run until the service is installed again.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub damaged: Vec<String>,
}

/// One step's status.
#[derive(Debug, Clone, Serialize)]
pub struct StepStatus {
    /// The step name.
    pub name: String,
    /// The models it observes.
    pub observes: Vec<String>,
    /// What it did since the host started.
    #[serde(flatten)]
    pub activity: StepActivity,
}

/// A host: owns the core, the engine and the component runtime.
#[derive(Clone)]
pub struct Host {
    pub(crate) core: Core,
    pub(crate) engine: Engine,
    pub(crate) runtime: Arc<Runtime>,
    /// What is installed: the one place the host keeps it.
    pub(crate) registry: Registry,
    pub(crate) events: EventBus,
    pub(crate) pullers: Pullers,
    generated_admin_password: Option<String>,
    policy: Arc<OperatorPolicy>,
    /// The trust policy and its decisions.
    pub(crate) trust: Arc<crate::provenance::TrustGate>,
    pub(crate) limits: Limits,
    secret_box: SecretBox,
    /// Serialises changes of config, secrets and limits (read, change,
    /// write).
    pub(crate) settings_lock: Arc<tokio::sync::Mutex<()>>,
    /// The operator's per-service limits.
    pub(crate) quotas: Quotas,
    /// The limits of a service the operator set none for.
    pub(crate) quota_defaults: ServiceQuota,
    /// Serialises installs, upgrades, rollbacks and uninstalls, so each
    /// resolves against the host as the previous one left it.
    pub(crate) lifecycle_lock: Arc<tokio::sync::Mutex<()>>,
    /// The store, as `status` shows it.
    store: StoreStatus,
}

impl Host {
    /// Opens the data directory, creates the admin on first use and loads
    /// every installed service.
    ///
    /// # Errors
    ///
    /// When the data directory or database cannot be prepared, or an
    /// installed service no longer loads.
    pub async fn open(config: HostConfig) -> Result<Host> {
        Host::open_with_clock(config, Arc::new(SystemClock)).await
    }

    /// [`Host::open`] with the engine reading time from `clock`: when work
    /// is due, when a deferred or failed object is retried. Offline step
    /// tests run on a virtual clock.
    ///
    /// # Errors
    ///
    /// As [`Host::open`].
    pub async fn open_with_clock(config: HostConfig, clock: Arc<dyn Clock>) -> Result<Host> {
        let data_err = |source| Error::DataDir {
            path: config.data_dir.display().to_string(),
            source,
        };
        std::fs::create_dir_all(&config.data_dir).map_err(data_err)?;
        let location = config
            .store
            .clone()
            .unwrap_or_else(|| Location::File(config.data_dir.join("syncplane.db")));
        let core = Core::connect(&location).await?;
        // Other hosts sharing the store wake this one with their commits;
        // the follower ends when the store is closed.
        let _follower = core.follow_other_hosts().await?;
        let store = StoreStatus {
            engine: match location {
                Location::File(_) => "sqlite",
                Location::Postgres(_) => "postgres",
            },
            location: location.redacted(),
        };
        let generated_admin_password = ensure_admin(&core, &config).await?;
        let secret_box = match &config.secret_key_file {
            Some(path) => SecretBox::open(path, false)?,
            None => SecretBox::open(&SecretBox::default_path(&config.data_dir), true)?,
        };
        let quota_defaults = ServiceQuota::defaults(
            config.service_max_objects,
            config.engine.service_limits,
            &config.limits,
        )
        .with_idle_unload(config.guest_idle_unload);
        let engine = Engine::with_clock(core.clone(), config.engine, clock);
        let cache_dir = config
            .component_cache_dir
            .clone()
            .unwrap_or_else(|| config.data_dir.join(COMPONENT_CACHE_DIR));
        let cache = ComponentCache::open(&cache_dir, config.component_cache_max_bytes).map_err(
            |source| Error::DataDir {
                path: cache_dir.display().to_string(),
                source,
            },
        )?;
        let mut runtime = Runtime::new(core.clone(), config.limits, engine.stats())?
            .with_component_cache(cache)
            .with_idle_unload(config.guest_idle_unload)
            .with_warm_instances_max(config.warm_instances_max);
        if let Some(cap) = config.guest_memory_max {
            if cap < config.limits.memory_bytes {
                tracing::warn!(
                    cap_mib = cap >> 20,
                    instance_mib = config.limits.memory_bytes >> 20,
                    "the guest memory cap is below the memory one instance may use: calls of services at that limit fail until their limit is lowered"
                );
            }
            runtime = runtime.with_guest_memory_max(cap);
        }
        let runtime = Arc::new(runtime);
        let host = Host {
            store,
            core,
            events: EventBus::new(engine.clone(), config.background_steps),
            pullers: Pullers::new(engine.clone(), config.background_steps),
            engine,
            runtime,
            registry: Registry::default(),
            generated_admin_password,
            policy: Arc::new(config.policy),
            trust: Arc::new(crate::provenance::TrustGate::new(config.trust)),
            limits: config.limits,
            secret_box,
            settings_lock: Arc::default(),
            quotas: Quotas::default(),
            quota_defaults,
            lifecycle_lock: Arc::default(),
        };
        host.restore_quotas().await?;
        host.restore().await?;
        if let Some(cache) = host.runtime.component_cache() {
            cache.prune();
        }
        host.spawn_integrity_check();
        host.spawn_service_follower();
        Ok(host)
    }

    /// The core.
    pub fn core(&self) -> &Core {
        &self.core
    }

    /// The admin password generated for a new data directory, if one was.
    pub fn generated_admin_password(&self) -> Option<&str> {
        self.generated_admin_password.as_deref()
    }

    /// Starts the synchronizer loop; it stops when `shutdown` turns true.
    pub fn spawn_engine(&self, shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
        tokio::spawn(self.engine.clone().run(shutdown))
    }

    /// Per service and step: invocations, failures, last error; per
    /// observed model: pending, failed, deferred and deleted objects and
    /// the next retry time; the service's objects and running invocations
    /// against its limits.
    ///
    /// # Errors
    ///
    /// When the store fails.
    pub async fn status(&self) -> Result<HostStatus> {
        let activity = self.engine.stats().activity();
        let registry = self.core.registry();
        let mut services = Vec::new();
        for service in self.services() {
            let mut steps = Vec::new();
            let mut models = std::collections::BTreeSet::new();
            for (name, observes) in &service.sync_steps {
                for observed in observes {
                    models.extend(
                        registry
                            .schema()
                            .concrete_descendants(observed)
                            .into_iter()
                            .map(|m| m.name.clone()),
                    );
                }
                let activity = activity
                    .iter()
                    .find(|a| a.service == service.name && &a.step == name)
                    .cloned()
                    .unwrap_or_else(|| StepActivity {
                        service: service.name.clone(),
                        step: name.clone(),
                        ..StepActivity::default()
                    });
                steps.push(StepStatus {
                    name: name.clone(),
                    observes: observes.clone(),
                    activity,
                });
            }
            let mut counts = Vec::new();
            for model in models {
                counts.push(self.core.sync_counts(&model).await?);
            }
            let quota = self.quota_usage(&service.name, &activity).await?;
            let components = self.runtime.component_status(Some(&service.name));
            services.push(ServiceStatus {
                quota,
                state: components
                    .iter()
                    .map(|c| c.state)
                    .max()
                    .unwrap_or(ComponentState::Cold),
                components,
                damaged: self.registry.damage(&service.name),
                event_steps: self.events.status(&service.name),
                pull_steps: self.pullers.status(&service.name),
                name: service.name,
                version: service.version,
                steps,
                models: counts,
            });
        }
        let this = self.engine.host_id();
        let hosts = self
            .core
            .hosts()
            .await?
            .into_iter()
            .map(|h| SharedHostStatus {
                this: this.as_deref() == Some(h.host.as_str()),
                host: h.host,
                name: h.name,
                started_ms: h.started_ms,
                seen_ms: h.seen_ms,
                leases: h.leases,
                steps: h.steps,
                running: h.running,
                steps_per_s: h.steps_per_s,
            })
            .collect();
        Ok(HostStatus {
            store: self.store.clone(),
            hosts,
            services,
            guest_memory: self.runtime.guest_memory().map(|m| GuestMemoryStatus {
                cap_bytes: m.cap_bytes(),
                reserved_bytes: m.held().values().map(|(bytes, _)| bytes).sum(),
                waits: m.waits(),
                refused: m.refused(),
            }),
        })
    }

    /// One service's objects and running invocations, with its limits.
    async fn quota_usage(&self, service: &str, activity: &[StepActivity]) -> Result<QuotaUsage> {
        let installed = self
            .registry
            .get(service)
            .ok_or_else(|| Error::UnknownService(service.to_owned()))?;
        let objects = self
            .object_counts(&installed)
            .await?
            .iter()
            .map(|c| u64::try_from(c.objects).unwrap_or_default())
            .sum();
        let running = activity
            .iter()
            .filter(|a| a.service == service)
            .map(|a| a.running)
            .sum();
        Ok(QuotaUsage {
            objects,
            running,
            limits: self.service_quota(service)?.limits,
        })
    }

    /// Publishes an event on the in-process bus; returns how many event
    /// steps subscribe to `topic`.
    pub fn publish(&self, topic: &str, key: Option<String>, value: String) -> usize {
        self.events.publish(topic, key, value)
    }

    /// The component runtime (for loading components outside a service).
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// The engine (for one-off passes, counters and metrics).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The installed services, by name.
    pub fn services(&self) -> Vec<InstalledService> {
        self.registry.all().into_iter().map(|s| s.info).collect()
    }

    /// How the installed services depend on each other, sorted: each
    /// [`ServiceDependency`] says that `service` uses a model `on` defines,
    /// and how (its models extending or linking to it, exact grants naming
    /// it, steps or policies observing it): the same uses that make
    /// `service uninstall` refuse to remove `on`.
    pub fn dependencies(&self) -> Vec<ServiceDependency> {
        let all = self.registry.all();
        let mut out = Vec::new();
        for on in &all {
            let own: std::collections::BTreeSet<&str> = on
                .files
                .iter()
                .flat_map(|f| f.models.iter().map(|m| m.name.as_str()))
                .collect();
            for service in all.iter().filter(|s| s.info.name != on.info.name) {
                for (what, model) in service.uses(&own) {
                    out.push(ServiceDependency {
                        service: service.info.name.clone(),
                        on: on.info.name.clone(),
                        what,
                        model,
                    });
                }
            }
        }
        out.sort();
        out
    }

    /// The host's policy widened by `allowed`.
    pub(crate) fn policy_with(&self, allowed: &[Allow]) -> OperatorPolicy {
        let mut policy = (*self.policy).clone();
        for allow in allowed {
            policy.allow(allow.clone());
        }
        policy
    }

    fn refusals(&self, package: &ServicePackage, allowed: &[Allow]) -> Vec<String> {
        self.policy_with(allowed)
            .refusals(&package.manifest.capabilities)
    }

    /// What a package asks for and whether this host's policy (with
    /// `allowed`) lets it be installed; nothing is loaded or changed.
    ///
    /// # Errors
    ///
    /// [`Error::Manifest`] for a bad manifest, [`Error::Models`] for models
    /// that do not parse.
    pub fn inspect(&self, package: &ServicePackage, allowed: &[Allow]) -> Result<Inspection> {
        package.check_paths_and_sizes()?;
        package.manifest.check("manifest")?;
        let manifest = &package.manifest;
        let files = crate::resolve::parse_files(package)?;
        let names = |steps: Vec<&String>| steps.into_iter().cloned().collect::<Vec<_>>();
        let steps = BTreeMap::from([
            (
                "sync_steps".to_owned(),
                names(manifest.sync_steps.iter().map(|s| &s.name).collect()),
            ),
            (
                "model_policies".to_owned(),
                names(manifest.model_policies.iter().map(|s| &s.name).collect()),
            ),
            (
                "pull_steps".to_owned(),
                names(manifest.pull_steps.iter().map(|s| &s.name).collect()),
            ),
            (
                "event_steps".to_owned(),
                names(manifest.event_steps.iter().map(|s| &s.name).collect()),
            ),
        ]);
        Ok(Inspection {
            name: manifest.service.name.clone(),
            version: manifest.service.version.clone(),
            models: files
                .iter()
                .flat_map(|f| {
                    f.models
                        .iter()
                        .map(|m| format!("{}.{}", m.app_label, m.name))
                })
                .collect(),
            steps,
            capabilities: manifest.capabilities.clone(),
            limits: InspectedLimits {
                deadline_ms: self.limits.deadline.as_millis() as u64,
                memory_mib: self.limits.memory_bytes >> 20,
                http_timeout_ms: self.limits.http.timeout.as_millis() as u64,
                http_body_bytes: self.limits.http.body_bytes,
                log_bytes: self.limits.log_bytes,
            },
            imports: package.inspect_imports(),
            refused: {
                let mut refused = self.refusals(package, allowed);
                if let Err(e) = package.check_imports() {
                    refused.push(e.to_string());
                }
                if let Err(e) = crate::dependencies::check_requires(manifest) {
                    refused.push(e.to_string());
                }
                refused
            },
            requires: manifest.service.requires.clone(),
            dependencies: crate::dependencies::statuses(
                manifest,
                &crate::dependencies::versions_of(&self.registry.others(&manifest.service.name)),
            ),
        })
    }

    /// What an installed service may touch: its grants, config and secret
    /// values; tools testing it offline give it an HTTP responder here
    /// ([`ServiceContext::set_http_responder`]).
    ///
    /// # Errors
    ///
    /// [`Error::UnknownService`].
    pub fn context(&self, service: &str) -> Result<Arc<ServiceContext>> {
        self.registry.context(service)
    }

    /// Calls the pull step `step` of `service` once, now, in the service's
    /// lane, as its interval would; its status counts the call.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownStep`] when the service has no such pull step (or
    /// the engine stopped).
    pub async fn run_pull_step(&self, service: &str, step: &str) -> Result<CallOutcome> {
        self.pullers
            .run(service, step)
            .await
            .ok_or_else(|| Error::UnknownStep {
                service: service.to_owned(),
                kind: "pull step",
                name: step.to_owned(),
            })
    }

    /// Hands `event` to the event step `step` of `service` once, now, in
    /// the service's lane, whatever its subscription; its status counts the
    /// call. A call stopped by a busy database is returned as deferred, not
    /// handed again.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownStep`] when the service has no such event step (or
    /// the engine stopped).
    pub async fn deliver_event(
        &self,
        service: &str,
        step: &str,
        event: &Event,
    ) -> Result<CallOutcome> {
        self.events
            .deliver(service, step, event)
            .await
            .ok_or_else(|| Error::UnknownStep {
                service: service.to_owned(),
                kind: "event step",
                name: step.to_owned(),
            })
    }

    /// Sets config values of `service` (an empty value unsets it); the
    /// service's next invocations see them.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownService`], [`Error::Undeclared`] for a name the
    /// manifest does not declare, or a store failure.
    pub async fn set_config(&self, service: &str, values: &BTreeMap<String, String>) -> Result<()> {
        let ctx = self.context(service)?;
        let declared = &ctx.grants().config;
        for name in values.keys() {
            if !declared.contains(name) {
                return Err(undeclared(service, "config", name, declared));
            }
        }
        let _guard = self.settings_lock.lock().await;
        let mut config = self.stored_map(CONFIG_NAMESPACE, service).await?;
        for (name, value) in values {
            if value.is_empty() {
                config.remove(name);
            } else {
                config.insert(name.clone(), value.clone());
            }
        }
        self.store_map(CONFIG_NAMESPACE, service, &config).await?;
        self.refresh_values(&ctx).await?;
        info!(service, names = ?values.keys().collect::<Vec<_>>(), "config changed");
        Ok(())
    }

    /// Sets (or, with an empty value, unsets) the secret `name` of
    /// `service`. The value is sealed before it is stored and never
    /// logged.
    ///
    /// # Errors
    ///
    /// As [`Host::set_config`].
    pub async fn set_secret(&self, service: &str, name: &str, value: &str) -> Result<()> {
        let ctx = self.context(service)?;
        let declared = &ctx.grants().secrets;
        if !declared.iter().any(|d| d == name) {
            return Err(undeclared(service, "secret", name, declared));
        }
        let _guard = self.settings_lock.lock().await;
        let mut sealed = self.stored_map(SECRETS_NAMESPACE, service).await?;
        if value.is_empty() {
            sealed.remove(name);
        } else {
            sealed.insert(name.to_owned(), self.secret_box.seal(service, name, value));
        }
        self.store_map(SECRETS_NAMESPACE, service, &sealed).await?;
        self.refresh_values(&ctx).await?;
        info!(service, name, "secret changed");
        Ok(())
    }

    /// The config values of `service` and which of its secrets are set.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownService`] or a store failure.
    pub async fn settings(&self, service: &str) -> Result<ServiceSettings> {
        let ctx = self.context(service)?;
        let config = self.stored_map(CONFIG_NAMESPACE, service).await?;
        let sealed = self.stored_map(SECRETS_NAMESPACE, service).await?;
        Ok(ServiceSettings {
            service: service.to_owned(),
            config,
            config_declared: ctx.grants().config.clone(),
            secrets: ctx
                .grants()
                .secrets
                .iter()
                .map(|name| (name.clone(), sealed.contains_key(name)))
                .collect(),
        })
    }

    async fn stored_map(&self, namespace: &str, service: &str) -> Result<BTreeMap<String, String>> {
        match self.core.record(namespace, service).await? {
            None => Ok(BTreeMap::new()),
            Some(text) => serde_json::from_str(&text).map_err(|e| {
                Error::Package(format!(
                    "stored {namespace} of `{service}` is unreadable: {e}"
                ))
            }),
        }
    }

    async fn store_map(
        &self,
        namespace: &str,
        service: &str,
        map: &BTreeMap<String, String>,
    ) -> Result<()> {
        let text = serde_json::to_string(map)
            .map_err(|e| Error::Package(format!("cannot serialise {namespace}: {e}")))?;
        // Written as a host record change other hosts hear of.
        let write = RecordWrite::Put {
            namespace: namespace.to_owned(),
            key: service.to_owned(),
            value: text,
        };
        Ok(self.core.write_records(&[write]).await?)
    }

    /// Loads the stored config and secrets of a service into its context.
    pub(crate) async fn refresh_values(&self, ctx: &ServiceContext) -> Result<()> {
        let service = ctx.service();
        let config = self.stored_map(CONFIG_NAMESPACE, service).await?;
        let mut secrets = BTreeMap::new();
        for (name, sealed) in self.stored_map(SECRETS_NAMESPACE, service).await? {
            let value = self.secret_box.unseal(service, &name, &sealed)?;
            secrets.insert(name, value);
        }
        ctx.set_values(config, secrets);
        Ok(())
    }
}

fn undeclared(service: &str, kind: &'static str, name: &str, declared: &[String]) -> Error {
    Error::Undeclared {
        service: service.to_owned(),
        kind,
        name: name.to_owned(),
        declared: if declared.is_empty() {
            "nothing".to_owned()
        } else {
            declared.join(", ")
        },
    }
}

async fn ensure_admin(core: &Core, config: &HostConfig) -> Result<Option<String>> {
    let (password, generated) = match &config.admin_password {
        Some(p) => (p.clone(), false),
        None => (random_password(), true),
    };
    if !core.ensure_admin(&password).await? || !generated {
        return Ok(None);
    }
    write_private(&config.data_dir.join(ADMIN_PASSWORD_FILE), &password).map_err(|source| {
        Error::DataDir {
            path: config.data_dir.display().to_string(),
            source,
        }
    })?;
    Ok(Some(password))
}

fn random_password() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..20)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

pub(crate) fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    writeln!(file, "{contents}")
}

/// One way an installed service depends on another: see
/// [`Host::dependencies`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct ServiceDependency {
    /// The service that depends.
    pub service: String,
    /// The service it depends on.
    pub on: String,
    /// How: "its model `X`", "its grant `a.B`", "its step `s`".
    pub what: String,
    /// The model of `on` it uses.
    pub model: String,
}
