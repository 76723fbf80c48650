//! Resolve: from a package and the host as it is, everything a service
//! would run with, checked, with no side effect. Activation
//! (`lifecycle.rs`) then only switches.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use syncplane_engine::{EventStep, ModelPolicy, PullStep, SyncStep};
use syncplane_runtime::capability::{Allow, ModelPattern, ServiceContext};
use syncplane_runtime::lazy::{ComponentSource, Fetch};
use syncplane_xproto::{File, Schema};

use crate::collision;
use crate::dependencies;
use crate::error::{Error, Result};
use crate::events::EventSource;
use crate::host::Host;
use crate::lifecycle::stored_component;
use crate::manifest::{EventBusKind, EventBusSection};
use crate::package::ServicePackage;
use crate::plan::{Action, Before, Plan, plan};
use crate::registry::{Installed, InstalledService, ServiceRecord};
use crate::subscription::Subscription;

/// A service resolved against the host: its models fit, its components
/// compiled and linked, its grants allowed, its plan made. Activating it
/// cannot fail halfway.
pub(crate) struct LockedService {
    pub(crate) record: ServiceRecord,
    pub(crate) files: Vec<File>,
    /// The host's models after the change: core and every service's.
    pub(crate) schema: Schema,
    /// Models whose (empty) tables go with the change.
    pub(crate) drop: Vec<String>,
    pub(crate) plan: Option<Plan>,
    pub(crate) ctx: Arc<ServiceContext>,
    pub(crate) info: InstalledService,
    pub(crate) loaded: Loaded,
}

/// The compiled components of a service and what the engine needs of it.
pub(crate) struct Loaded {
    pub(crate) steps: Vec<SyncStep>,
    pub(crate) policies: Vec<ModelPolicy>,
    pub(crate) deps: Vec<(String, String)>,
    pub(crate) event_steps: Vec<(EventStep, Subscription)>,
    pub(crate) source: EventSource,
    pub(crate) pull_steps: Vec<(PullStep, Duration)>,
}

/// How a package is resolved.
pub(crate) enum Mode {
    /// A change asked for by an operator: collisions, versions,
    /// compatibility and grants are checked, and a plan made.
    Change {
        action_hint: Option<Action>,
        allow_downgrade: bool,
    },
    /// A service coming back at start: it was checked when installed; the
    /// host's schema is given, built from every service at once.
    Restore { schema: Schema },
}

/// Parses the xproto files of a package.
pub(crate) fn parse_files(package: &ServicePackage) -> Result<Vec<File>> {
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

/// Parses stored or sent `--allow` flags.
pub(crate) fn parse_allows(texts: &[String]) -> Result<Vec<Allow>> {
    texts
        .iter()
        .map(|t| {
            t.parse()
                .map_err(|e| Error::Package(format!("--allow `{t}`: {e}")))
        })
        .collect()
}

fn version(text: &str, service: &str) -> Result<semver::Version> {
    semver::Version::parse(text).map_err(|e| {
        Error::Package(format!(
            "service `{service}`: version {text:?} is not a semantic version ({e}); write e.g. \"1.2.0\""
        ))
    })
}

impl Host {
    /// Resolves `record` against the host as it is now.
    pub(crate) async fn resolve(&self, record: ServiceRecord, mode: Mode) -> Result<LockedService> {
        let package = &record.package;
        let manifest = &package.manifest;
        manifest.check("manifest")?;
        let service = manifest.service.name.clone();
        let allowed = parse_allows(&record.allowed)?;
        let policy = self.policy_with(&allowed);
        let files = parse_files(package)?;
        let installed = self.registry.get(&service);
        // A reinstall of the same version keeps what to roll back to.
        let mut kept_previous = None;
        let (schema, plan, drop) = match mode {
            Mode::Restore { schema } => (schema, None, Vec::new()),
            Mode::Change {
                action_hint,
                allow_downgrade,
            } => {
                let refused = policy.refusals(&manifest.capabilities);
                if !refused.is_empty() {
                    return Err(Error::Refused { service, refused });
                }
                let others = self.registry.others(&service);
                dependencies::check_requires(manifest)?;
                dependencies::check_met(manifest, &dependencies::versions_of(&others))?;
                let registry = self.core.registry();
                let missing = registry.schema().missing_models(&files);
                if !missing.is_empty() {
                    return Err(Error::Models {
                        service,
                        source: syncplane_xproto::ValidationErrors(missing).into(),
                    });
                }
                let core_models: Vec<&syncplane_xproto::Model> =
                    self.core.core_schema().models().collect();
                collision::check(&service, &files, &others, &core_models, &registry)?;
                let new_version = version(&manifest.service.version, &service)?;
                let action = match (&installed, action_hint) {
                    (_, Some(hint)) => hint,
                    (None, None) => Action::Install,
                    (Some(old), None) => {
                        let old_version = version(old.record.version(), &service)?;
                        match new_version.cmp(&old_version) {
                            std::cmp::Ordering::Greater => Action::Upgrade,
                            std::cmp::Ordering::Equal => Action::Reinstall,
                            std::cmp::Ordering::Less if allow_downgrade => Action::Downgrade,
                            std::cmp::Ordering::Less => {
                                return Err(Error::Downgrade {
                                    service,
                                    installed: old_version.to_string(),
                                    requested: new_version.to_string(),
                                });
                            }
                        }
                    }
                };
                let before = installed.as_ref().map(|old| Before {
                    manifest: &old.record.package.manifest,
                    files: &old.files,
                });
                let mut plan = plan(&self.core, action, before, manifest, &files).await?;
                plan.blockers.extend(dependents_of_removed(&plan, &others));
                plan.blockers.extend(dependencies::broken_dependents(
                    &service,
                    Some(&manifest.service.version),
                    &others,
                ));
                if !plan.blockers.is_empty() {
                    return Err(Error::Incompatible {
                        service,
                        blockers: plan.blockers.clone(),
                        plan: Box::new(plan),
                    });
                }
                let schema = self
                    .schema_with(&others, &files)
                    .map_err(|source| Error::Models {
                        service: service.clone(),
                        source,
                    })?;
                let mut conflicts = self.core.column_conflicts(&schema).await?;
                conflicts.extend(self.core.constraint_conflicts(&schema).await?);
                if !conflicts.is_empty() {
                    plan.blockers.extend(conflicts);
                    return Err(Error::Incompatible {
                        service,
                        blockers: plan.blockers.clone(),
                        plan: Box::new(plan),
                    });
                }
                if action == Action::Reinstall {
                    // From the stored row: the registry's record has no
                    // component bytes.
                    kept_previous = Some(
                        self.stored_record(&service)
                            .await?
                            .and_then(|old| old.previous),
                    );
                }
                let drop = plan
                    .models_removed
                    .iter()
                    .map(|m| m.model.clone())
                    .collect();
                (schema, Some(plan), drop)
            }
        };
        let own_models: BTreeSet<String> = files
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
        let grants = &manifest.capabilities;
        let readable = resolve_models(&schema, &grants.models.read, "read")?;
        let writable = resolve_models(&schema, &grants.models.write, "write")?;
        let mut ctx = ServiceContext::new(
            service.clone(),
            own_models,
            readable,
            writable,
            grants.clone(),
            policy.outbound_http.networks,
        )
        .reusing_instances(manifest.service.reuse_instances)
        .requesting_memory(manifest.service.memory_mib.map(|m| {
            usize::try_from(m)
                .unwrap_or(usize::MAX)
                .saturating_mul(1 << 20)
        }));
        if let Some(installed) = self.registry.get(&service) {
            // One gate for both versions, so that activating drains the old.
            ctx = ctx.sharing_gate_of(&installed.ctx);
        }
        let ctx = Arc::new(ctx);
        self.refresh_values(&ctx).await?;
        check_observed(package, &schema, &ctx)?;
        check_gui_views(package, &ctx)?;
        let loaded = self.load_components(package, &record.component_digests, &schema, &ctx)?;
        let info = InstalledService {
            name: service.clone(),
            version: manifest.service.version.clone(),
            state: "active".to_owned(),
            installed_at: record.installed_at,
            previous_version: kept_previous
                .as_ref()
                .unwrap_or(&record.previous)
                .as_ref()
                .map(|p| p.version().to_owned()),
            models: files
                .iter()
                .flat_map(|f| f.models.iter().map(|m| m.name.clone()))
                .collect(),
            sync_steps: loaded
                .steps
                .iter()
                .map(|s| (s.name.clone(), s.observes.clone()))
                .collect(),
            capabilities: grants.clone(),
            allowed: record.allowed.clone(),
            origin: record.origin.clone(),
            dependencies: manifest.dependencies.clone(),
            gui_views: manifest.gui_views.clone(),
        };
        let mut record = record;
        if let Some(previous) = kept_previous {
            record.previous = previous;
        }
        Ok(LockedService {
            record,
            files,
            schema,
            drop,
            plan,
            ctx,
            info,
            loaded,
        })
    }

    /// Core's models with those of `others` and `files`, resolved at once
    /// (so the order services were installed in does not matter).
    pub(crate) fn schema_with(
        &self,
        others: &[Installed],
        files: &[File],
    ) -> std::result::Result<Schema, syncplane_xproto::Error> {
        let all: Vec<File> = others
            .iter()
            .flat_map(|s| s.files.iter().cloned())
            .chain(files.iter().cloned())
            .collect();
        Ok(self.core.core_schema().with_files(&all)?)
    }

    /// Where a step's component comes from: its bytes when the package
    /// carries them (an install: compiled and checked now), else its digest
    /// in the store (a restart: loaded when the step first has work).
    fn component_of<'p>(
        &self,
        package: &'p ServicePackage,
        digests: &BTreeMap<String, String>,
        step: &str,
    ) -> Result<(ComponentSource, Option<&'p [u8]>)> {
        let (digest, wasm) = match package.components.get(step) {
            Some(bytes) => (
                syncplane_runtime::cache::digest(bytes),
                Some(bytes.as_slice()),
            ),
            None => match digests.get(step) {
                Some(digest) => (digest.clone(), None),
                None => {
                    return Err(Error::Package(format!(
                        "the component of step `{step}` is not in the package"
                    )));
                }
            },
        };
        let core = self.core.clone();
        let fetched = digest.clone();
        let fetch: Fetch = Arc::new(move || {
            let (core, digest) = (core.clone(), fetched.clone());
            Box::pin(async move {
                stored_component(&core, &digest)
                    .await
                    .map_err(|e| e.to_string())
            })
        });
        Ok((ComponentSource { digest, fetch }, wasm))
    }

    /// The package's components against the service's context: compiled
    /// now when the package carries them, else loaded on first use.
    fn load_components(
        &self,
        package: &ServicePackage,
        digests: &BTreeMap<String, String>,
        schema: &Schema,
        ctx: &Arc<ServiceContext>,
    ) -> Result<Loaded> {
        let manifest = &package.manifest;
        let service = ctx.service().to_owned();
        let mut steps = Vec::new();
        for step in &manifest.sync_steps {
            for observed in &step.observes.0 {
                if schema.concrete_descendants(observed).is_empty() {
                    return Err(Error::Package(format!(
                        "step `{}` observes `{observed}`, which is not a model with objects \
                         (unknown, or abstract with no concrete model inheriting it)",
                        step.name
                    )));
                }
            }
            let (source, wasm) = self.component_of(package, digests, &step.name)?;
            let invoker = self.runtime.sync_step(ctx, &step.name, source, wasm)?;
            steps.push(SyncStep {
                service: service.clone(),
                name: step.name.clone(),
                observes: step.observes.0.clone(),
                invoker,
            });
        }
        let mut event_steps = Vec::new();
        for step in &manifest.event_steps {
            let (source, wasm) = self.component_of(package, digests, &step.name)?;
            let loaded = self.runtime.event_step(ctx, &step.name, source, wasm)?;
            let subscription = step.subscription().map_err(Error::Manifest)?;
            let step = EventStep {
                service: service.clone(),
                name: step.name.clone(),
                invoker: loaded,
            };
            event_steps.push((step, subscription));
        }
        let mut pull_steps = Vec::new();
        for step in &manifest.pull_steps {
            let (source, wasm) = self.component_of(package, digests, &step.name)?;
            let loaded = self.runtime.pull_step(ctx, &step.name, source, wasm)?;
            let interval = step.interval()?;
            let step = PullStep {
                service: service.clone(),
                name: step.name.clone(),
                invoker: loaded,
            };
            pull_steps.push((step, interval));
        }
        let mut policies = Vec::new();
        for policy in &manifest.model_policies {
            if schema.concrete_descendants(&policy.model).is_empty() {
                return Err(Error::Package(format!(
                    "model policy `{}` polices `{}`, which is not a model with objects",
                    policy.name, policy.model
                )));
            }
            let (source, wasm) = self.component_of(package, digests, &policy.name)?;
            let invoker = self.runtime.model_policy(ctx, &policy.name, source, wasm)?;
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
        let source = match &manifest.event_bus {
            Some(EventBusSection {
                kind: EventBusKind::Kafka,
                endpoint: Some(endpoint),
            }) => EventSource::Kafka {
                core: self.core.clone(),
                endpoint: endpoint.clone(),
            },
            _ => EventSource::InProcess,
        };
        Ok(Loaded {
            steps,
            policies,
            deps,
            event_steps,
            source,
            pull_steps,
        })
    }
}

/// Observing a model means reading its objects: another service's models
/// (or core's, `User` above all) need a read grant.
fn check_observed(package: &ServicePackage, schema: &Schema, ctx: &ServiceContext) -> Result<()> {
    for (step, model) in package.manifest.observed() {
        if let Some(m) = schema.model(model)
            && !ctx.owns(model)
            && !ctx.may_read_granted(model)
        {
            return Err(Error::Package(format!(
                "`{step}` observes `{model}`, which is not one of the service's models; \
                 reading another service's or core's objects needs a grant \
                 ([capabilities.models] read = [\"{}.{model}\"])",
                m.app_label
            )));
        }
    }
    Ok(())
}

/// A GUI view must show one of the service's own models.
fn check_gui_views(package: &ServicePackage, ctx: &ServiceContext) -> Result<()> {
    match package
        .manifest
        .gui_views
        .iter()
        .find(|view| !ctx.owns(&view.model))
    {
        Some(view) => Err(Error::Package(format!(
            "[[gui_views]] `{}` shows `{}`, which is not one of the service's models",
            view.title, view.model
        ))),
        None => Ok(()),
    }
}

/// Other services whose models extend or link to a model the change removes.
fn dependents_of_removed(plan: &Plan, others: &[Installed]) -> Vec<String> {
    let removed: BTreeSet<&str> = plan
        .models_removed
        .iter()
        .map(|m| m.model.as_str())
        .collect();
    others
        .iter()
        .flat_map(|other| {
            other.uses(&removed).into_iter().map(move |(what, used)| {
                format!(
                    "model `{used}` would be removed, but service `{}` depends on it ({what})",
                    other.info.name
                )
            })
        })
        .collect()
}

/// The models a grant's patterns stand for, with their concrete
/// descendants. A pattern naming one model that does not exist is an
/// error; a wildcard may match nothing.
pub(crate) fn resolve_models(
    schema: &Schema,
    patterns: &[ModelPattern],
    kind: &str,
) -> Result<BTreeSet<String>> {
    let mut models = BTreeSet::new();
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
