//! The running host: core, engine and runtime wired together.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use syncplane_core::{Core, ModelSyncCounts};
use syncplane_engine::{Engine, EngineConfig, ModelPolicy, StepActivity, SyncStep};
use syncplane_runtime::capability::{Allow, Grants, OperatorPolicy, ServiceContext};
use syncplane_runtime::{Limits, Runtime};
use syncplane_xproto::Schema;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::info;

use crate::error::{Error, Result};
use crate::events::{EventBus, EventSource, EventStepStatus};
use crate::manifest::{EventBusKind, EventBusSection};
use crate::package::ServicePackage;
use crate::pulls::{PullStepStatus, Pullers};
use crate::secrets::SecretBox;

/// Where installed packages are kept in the store.
const SERVICES_NAMESPACE: &str = "services";
/// Where each service's config values are kept (one JSON object per service).
const CONFIG_NAMESPACE: &str = "service-config";
/// Where each service's sealed secrets are kept, apart from models and
/// config (one JSON object of sealed values per service).
const SECRETS_NAMESPACE: &str = "service-secrets";
/// The file that keeps a generated admin password, readable by its owner only.
pub const ADMIN_PASSWORD_FILE: &str = "admin-password";

/// How to run a host.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// The data directory; created when missing.
    pub data_dir: PathBuf,
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
    /// The key secrets are sealed with; by default
    /// `<data_dir>/secret.key`, generated on first use.
    pub secret_key_file: Option<PathBuf>,
}

impl HostConfig {
    /// A configuration with defaults for `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        HostConfig {
            data_dir: data_dir.into(),
            admin_password: None,
            engine: EngineConfig::default(),
            limits: Limits::default(),
            policy: OperatorPolicy::default(),
            secret_key_file: None,
        }
    }
}

/// A service as installed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InstalledService {
    /// The service name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// The models its files define.
    pub models: Vec<String>,
    /// Its sync steps as `name -> observed models`.
    pub sync_steps: BTreeMap<String, Vec<String>>,
    /// What its manifest asks for beyond its own models.
    pub capabilities: Grants,
    /// The `--allow` flags it was installed with.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed: Vec<String>,
}

/// A package as the host keeps it, with what the operator allowed for it.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredService {
    package: ServicePackage,
    #[serde(default)]
    allowed: Vec<String>,
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
    /// Grants the host's policy (with the given `--allow` flags) refuses;
    /// empty when it may be installed.
    pub refused: Vec<String>,
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
    /// Installed services, by name.
    pub services: Vec<ServiceStatus>,
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
    core: Core,
    engine: Engine,
    runtime: Arc<Runtime>,
    services: Arc<Mutex<BTreeMap<String, InstalledService>>>,
    events: EventBus,
    pullers: Pullers,
    generated_admin_password: Option<String>,
    policy: Arc<OperatorPolicy>,
    limits: Limits,
    secret_box: SecretBox,
    contexts: Arc<Mutex<BTreeMap<String, Arc<ServiceContext>>>>,
    /// Serialises changes of config and secrets (read, change, write).
    settings_lock: Arc<tokio::sync::Mutex<()>>,
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
        let data_err = |source| Error::DataDir {
            path: config.data_dir.display().to_string(),
            source,
        };
        std::fs::create_dir_all(&config.data_dir).map_err(data_err)?;
        let core = Core::open(&config.data_dir.join("syncplane.db")).await?;
        let generated_admin_password = ensure_admin(&core, &config).await?;
        let secret_box = match &config.secret_key_file {
            Some(path) => SecretBox::open(path, false)?,
            None => SecretBox::open(&SecretBox::default_path(&config.data_dir), true)?,
        };
        let engine = Engine::new(core.clone(), config.engine);
        let runtime = Arc::new(Runtime::new(core.clone(), config.limits, engine.stats())?);
        let host = Host {
            core,
            engine,
            runtime,
            services: Arc::default(),
            events: EventBus::default(),
            pullers: Pullers::default(),
            generated_admin_password,
            policy: Arc::new(config.policy),
            limits: config.limits,
            secret_box,
            contexts: Arc::default(),
            settings_lock: Arc::default(),
        };
        for (name, record) in host.core.records(SERVICES_NAMESPACE).await? {
            // Data directories from before capabilities keep the bare package.
            let stored = serde_json::from_str::<StoredService>(&record)
                .or_else(|_| {
                    serde_json::from_str::<ServicePackage>(&record).map(|package| StoredService {
                        package,
                        allowed: Vec::new(),
                    })
                })
                .map_err(|e| {
                    Error::Package(format!("stored package of `{name}` is unreadable: {e}"))
                })?;
            let allowed = parse_allows(&stored.allowed)?;
            host.load(&stored.package, &allowed).await?;
        }
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
    /// the next retry time.
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
            services.push(ServiceStatus {
                event_steps: self.events.status(&service.name),
                pull_steps: self.pullers.status(&service.name),
                name: service.name,
                version: service.version,
                steps,
                models: counts,
            });
        }
        Ok(HostStatus { services })
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
        match self.services.lock() {
            Ok(s) => s.values().cloned().collect(),
            Err(poisoned) => poisoned.into_inner().values().cloned().collect(),
        }
    }

    /// Installs or upgrades a service while the host runs: checks the
    /// package, compiles its components, onboards its models, stores it so
    /// it survives restarts, and starts its steps.
    ///
    /// Nothing is changed when any part fails. `allowed` widens the host's
    /// operator policy for this package (`--allow` flags); every
    /// capability the package asks for must be allowed before any of its
    /// code is compiled.
    ///
    /// # Errors
    ///
    /// [`Error::Refused`] listing each capability the policy does not allow,
    /// [`Error::Models`] with file:line:column for bad xproto,
    /// [`Error::Component`] for a component that does not load,
    /// [`Error::Package`] for inconsistencies.
    pub async fn install(
        &self,
        package: ServicePackage,
        allowed: &[Allow],
    ) -> Result<InstalledService> {
        package.manifest.check("manifest")?;
        let refused = self.refusals(&package, allowed);
        if !refused.is_empty() {
            return Err(Error::Refused {
                service: package.manifest.service.name.clone(),
                refused,
            });
        }
        let installed = self.load(&package, allowed).await?;
        let record = serde_json::to_string(&StoredService {
            package,
            allowed: allowed.iter().map(ToString::to_string).collect(),
        })
        .map_err(|e| Error::Package(format!("cannot serialise the package: {e}")))?;
        self.core
            .put_record(SERVICES_NAMESPACE, &installed.name, &record)
            .await?;
        info!(service = %installed.name, version = %installed.version, "service installed");
        Ok(installed)
    }

    /// The host's policy widened by `allowed`.
    fn policy_with(&self, allowed: &[Allow]) -> OperatorPolicy {
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
        package.manifest.check("manifest")?;
        let manifest = &package.manifest;
        let files = parse_files(package)?;
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
            refused: self.refusals(package, allowed),
        })
    }

    fn context(&self, service: &str) -> Result<Arc<ServiceContext>> {
        let contexts = self.contexts.lock().unwrap_or_else(|p| p.into_inner());
        contexts
            .get(service)
            .cloned()
            .ok_or_else(|| Error::UnknownService(service.to_owned()))
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
        let records = self.core.records(namespace).await?;
        match records.into_iter().find(|(k, _)| k == service) {
            None => Ok(BTreeMap::new()),
            Some((_, text)) => serde_json::from_str(&text).map_err(|e| {
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
        Ok(self.core.put_record(namespace, service, &text).await?)
    }

    /// Loads the stored config and secrets of a service into its context.
    async fn refresh_values(&self, ctx: &ServiceContext) -> Result<()> {
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

    async fn load(&self, package: &ServicePackage, allowed: &[Allow]) -> Result<InstalledService> {
        let service = package.manifest.service.name.clone();
        let models_err = |source| Error::Models {
            service: service.clone(),
            source,
        };
        let files = parse_files(package)?;
        // Check the models before anything is installed.
        let schema = self
            .core
            .registry()
            .schema()
            .with_files(&files)
            .map_err(|e| models_err(e.into()))?;
        let own_models: std::collections::BTreeSet<String> = files
            .iter()
            .flat_map(|f| f.models.iter())
            .flat_map(|m| {
                schema
                    .concrete_descendants(&m.name)
                    .into_iter()
                    .map(|d| d.name.clone())
                    .chain(std::iter::once(m.name.clone()))
            })
            .collect();
        let grants = &package.manifest.capabilities;
        let readable = resolve_models(&schema, &grants.models.read, "read")?;
        let writable = resolve_models(&schema, &grants.models.write, "write")?;
        let ctx = Arc::new(ServiceContext::new(
            service.clone(),
            own_models,
            readable,
            writable,
            grants.clone(),
            self.policy_with(allowed).outbound_http.networks,
        ));
        self.refresh_values(&ctx).await?;
        // Observing a model means reading its objects: another service's
        // models (or core's, `User` above all) need a read grant.
        let observed = package
            .manifest
            .sync_steps
            .iter()
            .flat_map(|s| s.observes.0.iter().map(move |m| (&s.name, m)))
            .chain(
                package
                    .manifest
                    .model_policies
                    .iter()
                    .map(|p| (&p.name, &p.model)),
            );
        for (step, model) in observed {
            if schema.model(model).is_some() && !ctx.owns(model) && !ctx.may_read_granted(model) {
                return Err(Error::Package(format!(
                    "`{step}` observes `{model}`, which is not one of the service's models; \
                     reading another service's or core's objects needs a grant \
                     ([capabilities.models] read = [\"{}.{model}\"])",
                    schema.model(model).map_or("app", |m| m.app_label.as_str())
                )));
            }
        }
        let mut steps = Vec::new();
        for step in &package.manifest.sync_steps {
            for observed in &step.observes.0 {
                if schema.concrete_descendants(observed).is_empty() {
                    return Err(Error::Package(format!(
                        "step `{}` observes `{observed}`, which is not a model with objects \
                         (unknown, or abstract with no concrete model inheriting it)",
                        step.name
                    )));
                }
            }
            let wasm = package.component(&step.name)?;
            let invoker = self.runtime.load_sync_step(&ctx, &step.name, wasm)?;
            steps.push(SyncStep {
                service: service.clone(),
                name: step.name.clone(),
                observes: step.observes.0.clone(),
                invoker,
            });
        }
        let models = self.core.register_models(&files).await?;
        let installed = InstalledService {
            name: service.clone(),
            version: package.manifest.service.version.clone(),
            models,
            sync_steps: steps
                .iter()
                .map(|s| (s.name.clone(), s.observes.clone()))
                .collect(),
            capabilities: grants.clone(),
            allowed: allowed.iter().map(ToString::to_string).collect(),
        };
        let mut event_steps = Vec::new();
        for step in &package.manifest.event_steps {
            let wasm = package.component(&step.name)?;
            let loaded = self.runtime.load_event_step(&ctx, &step.name, wasm)?;
            event_steps.push((loaded, step.topics.clone()));
        }
        let mut pull_steps = Vec::new();
        for step in &package.manifest.pull_steps {
            let wasm = package.component(&step.name)?;
            let loaded = self.runtime.load_pull_step(&ctx, &step.name, wasm)?;
            pull_steps.push((loaded, step.interval()?));
        }
        let mut policies = Vec::new();
        for policy in &package.manifest.model_policies {
            if schema.concrete_descendants(&policy.model).is_empty() {
                return Err(Error::Package(format!(
                    "model policy `{}` polices `{}`, which is not a model with objects",
                    policy.name, policy.model
                )));
            }
            let wasm = package.component(&policy.name)?;
            let invoker = self.runtime.load_model_policy(&ctx, &policy.name, wasm)?;
            policies.push(ModelPolicy {
                service: service.clone(),
                name: policy.name.clone(),
                model: policy.model.clone(),
                invoker,
            });
        }
        let deps = package.model_dependencies()?;
        if let Some((model, dep)) = deps
            .iter()
            .find(|(m, d)| schema.model(m).is_none() || schema.model(d).is_none())
        {
            return Err(Error::Package(format!(
                "the model-deps file names an unknown model (`{model}` depends on `{dep}`)"
            )));
        }
        self.engine.set_service_model_deps(&service, deps);
        self.engine.set_service_policies(&service, policies);
        self.engine.set_service_steps(&service, steps);
        let source = match &package.manifest.event_bus {
            Some(EventBusSection {
                kind: EventBusKind::Kafka,
                endpoint: Some(endpoint),
            }) => EventSource::Kafka {
                core: self.core.clone(),
                endpoint: endpoint.clone(),
            },
            _ => EventSource::InProcess,
        };
        self.events
            .set_service_steps(&service, event_steps, &source);
        self.pullers.set_service_steps(&service, pull_steps);
        self.contexts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(service.clone(), ctx);
        match self.services.lock() {
            Ok(mut s) => s.insert(service, installed.clone()),
            Err(poisoned) => poisoned.into_inner().insert(service, installed.clone()),
        };
        Ok(installed)
    }
}

/// Parses the xproto files of a package.
fn parse_files(package: &ServicePackage) -> Result<Vec<syncplane_xproto::File>> {
    let service = &package.manifest.service.name;
    let mut files = Vec::new();
    for path in &package.manifest.service.xproto {
        let text = package
            .xproto
            .get(path)
            .ok_or_else(|| Error::Package(format!("xproto file `{path}` is not in the package")))?;
        let file = syncplane_xproto::parse(&format!("{service}/{path}"), text).map_err(|e| {
            Error::Models {
                service: service.clone(),
                source: e.into(),
            }
        })?;
        files.push(file);
    }
    Ok(files)
}

/// The concrete models (and the named abstract ones) model patterns of a
/// grant stand for. A pattern naming one model that does not exist is an
/// error; a wildcard may match nothing.
fn resolve_models(
    schema: &Schema,
    patterns: &[syncplane_runtime::capability::ModelPattern],
    kind: &str,
) -> Result<std::collections::BTreeSet<String>> {
    let mut models = std::collections::BTreeSet::new();
    for pattern in patterns {
        let matched: Vec<&syncplane_xproto::Model> = schema
            .models()
            .filter(|m| pattern.matches(&m.app_label, &m.name))
            .collect();
        if matched.is_empty() && pattern.is_exact() {
            return Err(Error::Package(format!(
                "[capabilities.models] {kind} names `{pattern}`, which is not an installed model"
            )));
        }
        for model in matched {
            models.insert(model.name.clone());
            models.extend(
                schema
                    .concrete_descendants(&model.name)
                    .into_iter()
                    .map(|d| d.name.clone()),
            );
        }
    }
    Ok(models)
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

/// Parses stored `--allow` flags.
fn parse_allows(texts: &[String]) -> Result<Vec<Allow>> {
    texts
        .iter()
        .map(|t| {
            t.parse()
                .map_err(|e| Error::Package(format!("stored --allow `{t}` is unreadable: {e}")))
        })
        .collect()
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
