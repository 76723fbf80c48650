//! The running host: core, engine and runtime wired together.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use syncplane_core::Core;
use syncplane_engine::{Engine, RetryPolicy, SyncStep};
use syncplane_runtime::{Limits, Runtime};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::info;

use crate::error::{Error, Result};
use crate::package::ServicePackage;

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
    /// Retry timing of the engine.
    pub retry: RetryPolicy,
    /// Limits of guest invocations.
    pub limits: Limits,
}

impl HostConfig {
    /// A configuration with defaults for `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        HostConfig {
            data_dir: data_dir.into(),
            admin_password: None,
            retry: RetryPolicy::default(),
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
    /// Its sync steps as `name -> observed model`.
    pub sync_steps: BTreeMap<String, String>,
}

/// A host: owns the core, the engine and the component runtime.
#[derive(Clone)]
pub struct Host {
    core: Core,
    engine: Engine,
    runtime: Arc<Runtime>,
    services: Arc<Mutex<BTreeMap<String, InstalledService>>>,
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
        let engine = Engine::new(core.clone(), config.retry);
        let host = Host {
            core,
            engine,
            runtime,
            services: Arc::default(),
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
            if schema.model(&step.observes).is_none_or(|m| m.is_abstract()) {
                return Err(Error::Package(format!(
                    "step `{}` observes `{}`, which is not a concrete model",
                    step.name, step.observes
                )));
            }
            let wasm = package.components.get(&step.name).ok_or_else(|| {
                Error::Package(format!(
                    "the component of step `{}` is not in the package",
                    step.name
                ))
            })?;
            let invoker = self.runtime.load_sync_step(&service, &step.name, wasm)?;
            steps.push(SyncStep {
                service: service.clone(),
                name: step.name.clone(),
                observes: step.observes.clone(),
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
        self.engine.set_service_steps(&service, steps);
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
