//! The running host: core, engine and runtime wired together.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use syncplane_core::{Core, ModelSyncCounts};
use syncplane_engine::{Engine, EngineConfig, ModelPolicy, StepActivity, SyncStep};
use syncplane_runtime::{Limits, Runtime};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::info;

use crate::error::{Error, Result};
use crate::events::{EventBus, EventSource, EventStepStatus};
use crate::manifest::{EventBusKind, EventBusSection};
use crate::package::ServicePackage;
use crate::pulls::{PullStepStatus, Pullers};

/// Where installed packages are kept in the store.
const SERVICES_NAMESPACE: &str = "services";
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
}

impl HostConfig {
    /// A configuration with defaults for `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        HostConfig {
            data_dir: data_dir.into(),
            admin_password: None,
            engine: EngineConfig::default(),
            limits: Limits::default(),
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
        let runtime = Arc::new(Runtime::new(core.clone(), config.limits)?);
        let engine = Engine::new(core.clone(), config.engine);
        let host = Host {
            core,
            engine,
            runtime,
            services: Arc::default(),
            events: EventBus::default(),
            pullers: Pullers::default(),
            generated_admin_password,
        };
        for (name, record) in host.core.records(SERVICES_NAMESPACE).await? {
            let package: ServicePackage = serde_json::from_str(&record).map_err(|e| {
                Error::Package(format!("stored package of `{name}` is unreadable: {e}"))
            })?;
            host.load(&package).await?;
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
    /// Nothing is changed when any part fails.
    ///
    /// # Errors
    ///
    /// [`Error::Models`] with file:line:column for bad xproto,
    /// [`Error::Component`] for a component that does not load,
    /// [`Error::Package`] for inconsistencies.
    pub async fn install(&self, package: ServicePackage) -> Result<InstalledService> {
        package.manifest.check("manifest")?;
        let installed = self.load(&package).await?;
        let record = serde_json::to_string(&package)
            .map_err(|e| Error::Package(format!("cannot serialise the package: {e}")))?;
        self.core
            .put_record(SERVICES_NAMESPACE, &installed.name, &record)
            .await?;
        info!(service = %installed.name, version = %installed.version, "service installed");
        Ok(installed)
    }

    async fn load(&self, package: &ServicePackage) -> Result<InstalledService> {
        let service = package.manifest.service.name.clone();
        let models_err = |source| Error::Models {
            service: service.clone(),
            source,
        };
        let mut files = Vec::new();
        for path in &package.manifest.service.xproto {
            let text = package.xproto.get(path).ok_or_else(|| {
                Error::Package(format!("xproto file `{path}` is not in the package"))
            })?;
            let file = syncplane_xproto::parse(&format!("{service}/{path}"), text)
                .map_err(|e| models_err(e.into()))?;
            files.push(file);
        }
        // Check the models before anything is installed.
        let schema = self
            .core
            .registry()
            .schema()
            .with_files(&files)
            .map_err(|e| models_err(e.into()))?;
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
            let invoker = self.runtime.load_sync_step(&service, &step.name, wasm)?;
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
        };
        let own_models: Arc<std::collections::BTreeSet<String>> = Arc::new(
            files
                .iter()
                .flat_map(|f| f.models.iter())
                .flat_map(|m| {
                    schema
                        .concrete_descendants(&m.name)
                        .into_iter()
                        .map(|d| d.name.clone())
                        .chain(std::iter::once(m.name.clone()))
                })
                .collect(),
        );
        let mut event_steps = Vec::new();
        for step in &package.manifest.event_steps {
            let wasm = package.component(&step.name)?;
            let loaded = self.runtime.load_event_step(
                &service,
                &step.name,
                wasm,
                Arc::clone(&own_models),
            )?;
            event_steps.push((loaded, step.topics.clone()));
        }
        let mut pull_steps = Vec::new();
        for step in &package.manifest.pull_steps {
            let wasm = package.component(&step.name)?;
            let loaded =
                self.runtime
                    .load_pull_step(&service, &step.name, wasm, Arc::clone(&own_models))?;
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
            let invoker = self.runtime.load_model_policy(
                &service,
                &policy.name,
                wasm,
                Arc::clone(&own_models),
            )?;
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
        match self.services.lock() {
            Ok(mut s) => s.insert(service, installed.clone()),
            Err(poisoned) => poisoned.into_inner().insert(service, installed.clone()),
        };
        Ok(installed)
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

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
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
