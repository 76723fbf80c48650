//! Install, upgrade, roll back and uninstall, live: each is a resolve
//! (pure, `resolve.rs`) and then one activation — one database transaction
//! (tables and the registry row) and an in-memory swap that cannot fail.
//! A failure before the commit leaves the old state whole; a crash after
//! it comes back with the new one.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};
use syncplane_core::field;

use serde::Serialize;
use syncplane_core::{Core, RecordWrite, now_secs};
use syncplane_runtime::capability::{Allow, ServiceContext};
use syncplane_runtime::gate::Drained;

use crate::diff::Compared;
use crate::error::{Error, Result};
use crate::events::EventSource;
use crate::history::{self, HistoryEntry};
use crate::host::{CONFIG_NAMESPACE, Host, SECRETS_NAMESPACE, ServiceSettings};
use crate::package::ServicePackage;
use crate::plan::{Action, ModelCount, Plan};
use crate::quota::QUOTAS_NAMESPACE;
use crate::registry::{
    COMPONENTS_NAMESPACE, Installed, InstalledService, SERVICES_NAMESPACE, ServiceRecord,
};
use crate::resolve::{LockedService, Mode, parse_files};

/// How to install or upgrade.
#[derive(Debug, Clone, Default)]
pub struct InstallOptions {
    /// Capabilities allowed for this package beyond the operator's policy.
    pub allow: Vec<Allow>,
    /// Whether an older version may replace the installed one.
    pub allow_downgrade: bool,
    /// Whether an unsigned package may pass a trust policy that does not
    /// set `require_signature` (`--allow-unsigned`).
    pub allow_unsigned: bool,
    /// What the packed file the package came in proved (digest,
    /// signatures); `None` for a package sent as JSON or read from a
    /// directory, which carries no signatures.
    pub provenance: Option<crate::provenance::Provenance>,
    /// Whether an upgrade may ask for grants the installed version did
    /// not have (`--accept-grants`). Without it such an upgrade is
    /// refused and the installed version keeps running.
    pub accept_grants: bool,
    /// Who asks for the change (`user admin@opencord.org`), for the
    /// service's history; `None` for the host itself.
    pub by: Option<String>,
}

/// An installed service with its models' object counts and its settings,
/// as `service show` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceDetails {
    /// The service.
    pub service: InstalledService,
    /// Objects per model (concrete models only).
    pub objects: Vec<ModelCount>,
    /// Config values and which secrets are set.
    pub settings: ServiceSettings,
    /// The limits it runs under ([`Host::service_quota`]).
    pub limits: crate::quota::ServiceQuota,
}

/// How long `uninstall --purge` waits for the service's objects to be
/// torn down.
pub const PURGE_TIMEOUT: Duration = Duration::from_secs(600);

/// How long past the step deadline a change waits for running
/// invocations (which end at their deadline) before it gives up.
const DRAIN_MARGIN: Duration = Duration::from_secs(5);

impl Host {
    /// Loads every installed service at start: their models are resolved
    /// together, so the order they were installed in does not matter.
    pub(crate) async fn restore(&self) -> Result<()> {
        // Rows hold no components (those load when their step first has
        // work), so they are small and read once; rows written before
        // components were kept apart still hold theirs, and load now.
        let mut records = Vec::new();
        let mut files = Vec::new();
        for name in self.core.record_keys(SERVICES_NAMESPACE).await? {
            if let Some(record) = self.stored_row(&name).await? {
                files.extend(parse_files(&record.package)?);
                records.push(record);
            }
        }
        let schema = self.core.core_schema().with_files(&files).map_err(|e| {
            Error::Package(format!(
                "the installed services no longer load together:\n{e}"
            ))
        })?;
        self.core.activate(schema.clone(), &[], &[]).await?;
        for record in records {
            self.load_stored(record, &schema).await?;
        }
        Ok(())
    }

    /// Resolves a stored service row against `schema` (the models of every
    /// stored row) and swaps it in, retiring the version it replaces.
    /// Returns its name and version.
    pub(crate) async fn load_stored(
        &self,
        record: ServiceRecord,
        schema: &syncplane_xproto::Schema,
    ) -> Result<(String, String)> {
        let replaced = self.registry.get(&record.package.manifest.service.name);
        let locked = self
            .resolve(
                record,
                Mode::Restore {
                    schema: schema.clone(),
                },
            )
            .await?;
        let loaded = (locked.info.name.clone(), locked.info.version.clone());
        self.swap_in(locked);
        if let Some(replaced) = replaced {
            replaced.ctx.retire();
        }
        Ok(loaded)
    }

    /// What installing (or upgrading to) `package` would change, checked
    /// as for a real install but activating nothing. A plan whose
    /// `blockers` are not empty could not be activated.
    ///
    /// # Errors
    ///
    /// As [`Host::install`], except that incompatibilities are returned in
    /// the plan.
    pub async fn plan(&self, package: ServicePackage, options: &InstallOptions) -> Result<Plan> {
        package.check_paths_and_sizes()?;
        self.check_trust(&package, options)?;
        package.check_imports()?;
        let _guard = self.lifecycle_lock.lock().await;
        let diff = self
            .diff_with_installed(&package, options.provenance.as_ref())
            .await?;
        let record = self.next_record(package, options).await?;
        let plan = match self
            .resolve(
                record,
                Mode::Change {
                    action_hint: None,
                    allow_downgrade: options.allow_downgrade,
                },
            )
            .await
        {
            Ok(locked) => locked
                .plan
                .ok_or_else(|| Error::Package("a change without a plan".into())),
            Err(Error::Incompatible { plan, .. }) => Ok(*plan),
            Err(e) => Err(e),
        };
        plan.map(|plan| Plan {
            diff: diff.map(Box::new),
            ..plan
        })
    }

    /// What differs between the installed version of `package`'s service
    /// and `package` (which came with `provenance`), as `service diff`
    /// says it; `None` when the service is not installed.
    ///
    /// # Errors
    ///
    /// When the stored version cannot be read, or an xproto file of either
    /// does not parse.
    pub async fn diff_with_installed(
        &self,
        package: &ServicePackage,
        provenance: Option<&crate::provenance::Provenance>,
    ) -> Result<Option<crate::diff::PackageDiff>> {
        let Some(installed) = self.stored_record(&package.manifest.service.name).await? else {
            return Ok(None);
        };
        let origin = installed.origin.as_ref();
        let from = Compared::package(
            &installed.package,
            origin.map(|o| o.digest.as_str()),
            origin.map(|o| o.signers.clone()).unwrap_or_default(),
        );
        let to = Compared::package(
            package,
            provenance.map(crate::provenance::Provenance::digest),
            provenance
                .map(|p| {
                    p.signatures()
                        .iter()
                        .map(|s| s.key.to_string())
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default(),
        );
        crate::diff::PackageDiff::compare(from, to).map(Some)
    }

    /// Installs or upgrades a service while the host runs: resolves the
    /// package against the installed services (models, collisions,
    /// version, compatibility, grants, components), then activates it in
    /// one step. The version it replaces is kept for `rollback`.
    ///
    /// # Errors
    ///
    /// [`Error::Untrusted`] when the trust policy refuses it,
    /// [`Error::Refused`] for capabilities the policy does not allow,
    /// [`Error::Collision`] for names another service or core owns,
    /// [`Error::Downgrade`], [`Error::Incompatible`] with what blocks an
    /// upgrade, [`Error::Models`] with file:line:column for bad xproto,
    /// [`Error::Component`] for a component that does not load. Nothing is
    /// changed then.
    pub async fn install(
        &self,
        package: ServicePackage,
        options: &InstallOptions,
    ) -> Result<InstalledService> {
        self.install_with_dependencies(package, options, Vec::new())
            .await?
            .pop()
            .ok_or_else(|| Error::Package("an install that installed nothing".into()))
    }

    /// Installs `package` together with the services it depends on that
    /// are not installed yet, from `dependencies` (each with its own
    /// options; packages no install needs are left out): every package is
    /// checked (trust, imports, `requires`, each dependency met by what is
    /// installed or comes along) before any is activated, then each is
    /// activated after the ones it depends on. When one fails, those this
    /// call activated are uninstalled again, so that the host is left as
    /// it was. Installed services are never upgraded: a dependency in
    /// `dependencies` that is already installed is ignored, and the
    /// installed version must meet the requirement. Answers what was
    /// installed, `package` last.
    ///
    /// # Errors
    ///
    /// As [`Host::install`], and [`Error::Dependencies`] naming each
    /// dependency not met, [`Error::HostVersion`].
    pub async fn install_with_dependencies(
        &self,
        package: ServicePackage,
        options: &InstallOptions,
        dependencies: Vec<(ServicePackage, InstallOptions)>,
    ) -> Result<Vec<InstalledService>> {
        let _guard = self.lifecycle_lock.lock().await;
        let others = self.registry.others(&package.manifest.service.name);
        let mut versions = crate::dependencies::versions_of(&others);
        let mut set: Vec<(ServicePackage, InstallOptions)> =
            needed(&package, dependencies, &versions);
        set.push((package, options.clone()));
        // Everything that can be checked before anything is compiled or
        // activated.
        let mut verdicts = Vec::with_capacity(set.len());
        for (package, options) in &set {
            package.check_paths_and_sizes()?;
            verdicts.push(self.check_trust(package, options)?);
            package.check_imports()?;
            crate::dependencies::check_requires(&package.manifest)?;
            let service = &package.manifest.service;
            versions.insert(service.name.clone(), service.version.clone());
        }
        for (package, _) in &set {
            crate::dependencies::check_met(&package.manifest, &versions)?;
        }
        let manifests: Vec<&crate::manifest::Manifest> =
            set.iter().map(|(p, _)| &p.manifest).collect();
        let order = crate::dependencies::install_order(&manifests)?;
        let mut slots: Vec<Option<(ServicePackage, InstallOptions)>> =
            set.into_iter().map(Some).collect();
        let mut installed = Vec::with_capacity(order.len());
        for i in order {
            let Some((package, options)) = slots[i].take() else {
                continue;
            };
            let verdict = verdicts[i].take();
            match self.install_locked(package, &options, verdict).await {
                Ok(info) => installed.push(info),
                Err(e) => {
                    self.undo_installs(&installed, options.by.clone()).await;
                    return Err(e);
                }
            }
        }
        Ok(installed)
    }

    /// Uninstalls again the services an install with dependencies
    /// activated before one of them failed, newest first.
    async fn undo_installs(&self, installed: &[InstalledService], by: Option<String>) {
        for service in installed.iter().rev() {
            match self
                .uninstall_locked(&service.name, false, by.clone())
                .await
            {
                Ok(_) => tracing::info!(
                    service = %service.name,
                    "uninstalled again: a service installed with it failed"
                ),
                Err(e) => tracing::warn!(
                    service = %service.name,
                    error = %e,
                    "cannot uninstall a dependency installed for a failed install; it stays installed"
                ),
            }
        }
    }

    /// [`Host::install`] of one package, under the lifecycle lock, its
    /// trust already judged.
    async fn install_locked(
        &self,
        package: ServicePackage,
        options: &InstallOptions,
        verdict: Option<crate::trust::Verdict>,
    ) -> Result<InstalledService> {
        self.check_widened_grants(&package, options)?;
        let mut record = self.next_record(package, options).await?;
        record.trust_rule = verdict.map(|v| v.rule);
        let locked = self
            .resolve(
                record,
                Mode::Change {
                    action_hint: None,
                    allow_downgrade: options.allow_downgrade,
                },
            )
            .await?;
        self.activate(locked, options.by.clone()).await
    }

    /// Refuses an upgrade asking for grants the installed version did not
    /// have, unless `options.accept_grants`.
    fn check_widened_grants(
        &self,
        package: &ServicePackage,
        options: &InstallOptions,
    ) -> Result<()> {
        let name = &package.manifest.service.name;
        let Some(installed) = self.registry.get(name) else {
            return Ok(());
        };
        let before = crate::diff::grant_items(&installed.info.capabilities);
        let added: Vec<String> = crate::diff::grant_items(&package.manifest.capabilities)
            .difference(&before)
            .cloned()
            .collect();
        if added.is_empty() || options.accept_grants {
            return Ok(());
        }
        Err(Error::GrantsWidened {
            service: name.clone(),
            installed: installed.info.version.clone(),
            version: package.manifest.service.version.clone(),
            added,
        })
    }

    /// Returns `name` to the version before the installed one, through the
    /// same checks as an upgrade; the installed version becomes the one to
    /// return to. With `dry_run`, only the plan.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownService`], [`Error::NoPrevious`], and as
    /// [`Host::install`].
    pub async fn rollback(
        &self,
        name: &str,
        dry_run: bool,
        by: Option<String>,
    ) -> Result<RollbackOutcome> {
        let _guard = self.lifecycle_lock.lock().await;
        if self.registry.get(name).is_none() {
            return Err(Error::UnknownService(name.to_owned()));
        }
        // The stored row: the in-memory record has no component bytes.
        let Some(mut current_record) = self.stored_record(name).await? else {
            return Err(Error::UnknownService(name.to_owned()));
        };
        let Some(previous) = current_record.previous.take() else {
            return Err(Error::NoPrevious(name.to_owned()));
        };
        let record = ServiceRecord {
            package: previous.package,
            allowed: previous.allowed,
            installed_at: now_secs(),
            previous: Some(Box::new(current_record)),
            component_digests: BTreeMap::new(),
            origin: previous.origin,
            trust_rule: previous.trust_rule,
        };
        let mode = Mode::Change {
            action_hint: Some(Action::Rollback),
            allow_downgrade: true,
        };
        let locked = match self.resolve(record, mode).await {
            Err(Error::Incompatible { plan, .. }) if dry_run => {
                return Ok(RollbackOutcome::Planned(*plan));
            }
            other => other?,
        };
        if dry_run {
            let plan = locked
                .plan
                .ok_or_else(|| Error::Package("a change without a plan".into()))?;
            return Ok(RollbackOutcome::Planned(plan));
        }
        Ok(RollbackOutcome::Done(self.activate(locked, by).await?))
    }

    /// The record an install of `package` writes: the installed version
    /// becomes the one to roll back to.
    async fn next_record(
        &self,
        package: ServicePackage,
        options: &InstallOptions,
    ) -> Result<ServiceRecord> {
        let previous = self
            .stored_record(&package.manifest.service.name)
            .await?
            .map(|mut record| {
                record.previous = None;
                Box::new(record)
            });
        Ok(ServiceRecord {
            package,
            allowed: options.allow.iter().map(ToString::to_string).collect(),
            installed_at: now_secs(),
            previous,
            component_digests: BTreeMap::new(),
            origin: options
                .provenance
                .as_ref()
                .map(crate::provenance::Provenance::origin),
            trust_rule: None,
        })
    }

    /// The stored record of an installed service, with its components and
    /// its previous version's (the registry keeps records without them).
    pub(crate) async fn stored_record(&self, name: &str) -> Result<Option<ServiceRecord>> {
        let Some(mut record) = self.stored_row(name).await? else {
            return Ok(None);
        };
        self.fill_components(&mut record).await?;
        if let Some(previous) = record.previous.as_deref_mut() {
            self.fill_components(previous).await?;
        }
        Ok(Some(record))
    }

    /// The stored row of an installed service as it is: components by
    /// digest (or inline, for rows written before they were kept apart).
    pub(crate) async fn stored_row(&self, name: &str) -> Result<Option<ServiceRecord>> {
        match self.core.record(SERVICES_NAMESPACE, name).await? {
            Some(text) => Ok(Some(ServiceRecord::parse(name, &text)?)),
            None => Ok(None),
        }
    }

    async fn fill_components(&self, record: &mut ServiceRecord) -> Result<()> {
        for (step, digest) in &record.component_digests {
            if !record.package.components.contains_key(step) {
                let bytes = stored_component(&self.core, digest).await?;
                record.package.components.insert(step.clone(), bytes);
            }
        }
        Ok(())
    }

    /// Removes stored components no service row refers to any more.
    async fn collect_components(&self) -> Result<()> {
        let mut used = BTreeSet::new();
        for name in self.core.record_keys(SERVICES_NAMESPACE).await? {
            if let Some(record) = self.stored_row(&name).await? {
                used.extend(record.digests().cloned());
            }
        }
        let unused: Vec<RecordWrite> = self
            .core
            .record_keys(COMPONENTS_NAMESPACE)
            .await?
            .into_iter()
            .filter(|digest| !used.contains(digest))
            .map(|key| RecordWrite::Delete {
                namespace: COMPONENTS_NAMESPACE.to_owned(),
                key,
            })
            .collect();
        if !unused.is_empty() {
            tracing::debug!(removed = unused.len(), "removed components no service uses");
            self.core.write_records(&unused).await?;
        }
        Ok(())
    }

    /// Switches the host to a resolved service: the registry row and the
    /// tables in one transaction, then the in-memory swap.
    async fn activate(
        &self,
        locked: LockedService,
        by: Option<String>,
    ) -> Result<InstalledService> {
        if let Some(plan) = &locked.plan
            && !plan.blockers.is_empty()
        {
            return Err(Error::Incompatible {
                service: locked.info.name.clone(),
                blockers: plan.blockers.clone(),
                plan: Box::new(plan.clone()),
            });
        }
        let (row, components) = locked.record.stored_form()?;
        let mut writes = vec![RecordWrite::Put {
            namespace: SERVICES_NAMESPACE.to_owned(),
            key: locked.info.name.clone(),
            value: row,
        }];
        writes.extend(
            components
                .into_iter()
                .map(|(digest, base64)| RecordWrite::Put {
                    namespace: COMPONENTS_NAMESPACE.to_owned(),
                    key: digest,
                    value: base64,
                }),
        );
        let action = locked.plan.as_ref().map_or(Action::Install, |p| p.action);
        let mut entry = HistoryEntry::now(action.name(), &locked.info.version, by);
        if let Some(origin) = &locked.record.origin {
            entry.digest = Some(origin.digest.clone());
            entry.signers.clone_from(&origin.signers);
        }
        entry.rule.clone_from(&locked.record.trust_rule);
        writes.push(history::append(&self.core, &locked.info.name, entry).await?);
        let replaced = self.registry.get(&locked.info.name);
        let _drained = self.drain(&locked.ctx).await?;
        self.core
            .activate(locked.schema.clone(), &locked.drop, &writes)
            .await?;
        let info = locked.info.clone();
        let action = locked.plan.as_ref().map(|p| p.action);
        self.swap_in(locked);
        if let Some(replaced) = replaced {
            replaced.ctx.retire();
        }
        tracing::info!(service = %info.name, version = %info.version, ?action, "service activated");
        if let Err(e) = self.collect_components().await {
            tracing::warn!(error = %e, "cannot remove unused components; they stay until the next change");
        }
        Ok(info)
    }

    /// Waits until none of the service's invocations runs, and holds new
    /// ones back until the returned guard is dropped: the version being
    /// replaced finishes what it runs (or reaches its deadline) before its
    /// components go.
    async fn drain(&self, ctx: &ServiceContext) -> Result<Drained> {
        let started = Instant::now();
        // A call may have started under the host's deadline or the
        // service's own, whichever is longer.
        let overrides = self
            .quotas
            .lock()
            .get(ctx.service())
            .copied()
            .unwrap_or_default();
        let own = self.quota_defaults.with(&overrides).deadline;
        let within = self.limits.deadline.max(own) + DRAIN_MARGIN;
        let drained = ctx
            .gate()
            .drain(within)
            .await
            .map_err(|waited| Error::StillRunning {
                service: ctx.service().to_owned(),
                waited,
            })?;
        let waited = started.elapsed();
        if waited >= Duration::from_millis(100) {
            tracing::info!(
                service = ctx.service(),
                waited_ms = waited.as_millis() as u64,
                "running invocations finished before the change"
            );
        }
        Ok(drained)
    }

    /// The in-memory half of an activation; nothing here can fail.
    pub(crate) fn swap_in(&self, locked: LockedService) {
        let name = locked.info.name.clone();
        // The operator's limits go with the version that comes in, under
        // the lock a change of them takes.
        let quotas = self.quotas.lock();
        let overrides = quotas.get(&name).copied().unwrap_or_default();
        self.apply_quota(&name, &locked.ctx, &locked.files, &overrides);
        let loaded = locked.loaded;
        self.engine.set_service_model_deps(&name, loaded.deps);
        self.engine.set_service_policies(&name, loaded.policies);
        self.engine.set_service_steps(&name, loaded.steps);
        self.events
            .set_service_steps(&name, loaded.event_steps, &loaded.source);
        self.pullers.set_service_steps(&name, loaded.pull_steps);
        self.registry.insert(Installed {
            record: locked.record.without_components(),
            files: locked.files,
            ctx: locked.ctx,
            info: locked.info,
            damaged: Vec::new(),
        });
        drop(quotas);
    }

    /// Stops serving an uninstalled service: its steps, policies, event
    /// and pull steps, registry entry and limits go.
    pub(crate) fn forget(&self, installed: &Installed) {
        let name = installed.info.name.as_str();
        installed.ctx.retire();
        self.engine.set_service_model_deps(name, Vec::new());
        self.engine.set_service_policies(name, Vec::new());
        self.engine.set_service_steps(name, Vec::new());
        self.events
            .set_service_steps(name, Vec::new(), &EventSource::InProcess);
        self.pullers.set_service_steps(name, Vec::new());
        self.registry.remove(name);
        self.clear_quota(name);
    }

    /// Objects per concrete model of an installed service.
    pub(crate) async fn object_counts(&self, installed: &Installed) -> Result<Vec<ModelCount>> {
        let registry = self.core.registry();
        let mut counts = Vec::new();
        for model in installed.files.iter().flat_map(|f| f.models.iter()) {
            if model.is_abstract() || registry.schema().model(&model.name).is_none() {
                continue;
            }
            counts.push(ModelCount {
                model: model.name.clone(),
                objects: self.core.object_count(&model.name).await?,
            });
        }
        Ok(counts)
    }

    /// The lifecycle history of service `name`, oldest first: installs,
    /// upgrades, rollbacks and uninstalls, with who made each and the
    /// package it came from. A service uninstalled keeps its history.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownService`] when `name` was never installed; when the
    /// store fails.
    pub async fn history(&self, name: &str) -> Result<Vec<HistoryEntry>> {
        let entries = history::read(&self.core, name).await?;
        if entries.is_empty() && self.registry.get(name).is_none() {
            return Err(Error::UnknownService(name.to_owned()));
        }
        Ok(entries)
    }

    /// An installed service with its object counts and settings.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownService`] or a store failure.
    pub async fn service_details(&self, name: &str) -> Result<ServiceDetails> {
        let installed = self
            .registry
            .get(name)
            .ok_or_else(|| Error::UnknownService(name.to_owned()))?;
        Ok(ServiceDetails {
            objects: self.object_counts(&installed).await?,
            settings: self.settings(name).await?,
            limits: self.service_quota(name)?.limits,
            service: installed.info,
        })
    }

    /// Removes a service: refused while another service depends on its
    /// models, or while its models hold objects unless `purge`, which first
    /// deletes them through the normal deletion path (delete steps run,
    /// dependents first) and waits for their teardown. Then its tables,
    /// routes, steps, config and secrets go, in one step.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownService`], [`Error::Dependents`],
    /// [`Error::HasObjects`], [`Error::PurgeIncomplete`] when the teardown
    /// does not finish within [`PURGE_TIMEOUT`] (the service stays, its
    /// objects marked deleted; uninstall again to go on).
    pub async fn uninstall(
        &self,
        name: &str,
        purge: bool,
        by: Option<String>,
    ) -> Result<Vec<ModelCount>> {
        let _guard = self.lifecycle_lock.lock().await;
        self.uninstall_locked(name, purge, by).await
    }

    /// [`Host::uninstall`] under the lifecycle lock.
    async fn uninstall_locked(
        &self,
        name: &str,
        purge: bool,
        by: Option<String>,
    ) -> Result<Vec<ModelCount>> {
        let installed = self
            .registry
            .get(name)
            .ok_or_else(|| Error::UnknownService(name.to_owned()))?;
        let own: BTreeSet<&str> = installed
            .files
            .iter()
            .flat_map(|f| f.models.iter().map(|m| m.name.as_str()))
            .collect();
        let others = self.registry.others(name);
        let mut dependents: Vec<String> = others
            .iter()
            .flat_map(|other| {
                other.uses(&own).into_iter().map(move |(what, used)| {
                    format!(
                        "service `{}` depends on it: {what} uses `{used}`",
                        other.info.name
                    )
                })
            })
            .collect();
        dependents.extend(crate::dependencies::broken_dependents(name, None, &others));
        if !dependents.is_empty() {
            return Err(Error::Dependents {
                service: name.to_owned(),
                dependents,
            });
        }
        let counts = self.object_counts(&installed).await?;
        let held: Vec<ModelCount> = counts.iter().filter(|c| c.objects > 0).cloned().collect();
        if !held.is_empty() {
            if !purge {
                return Err(Error::HasObjects {
                    service: name.to_owned(),
                    counts: held,
                });
            }
            self.purge(name, &held).await?;
        }
        let schema = self
            .schema_with(&others, &[])
            .map_err(|source| Error::Models {
                service: name.to_owned(),
                source,
            })?;
        let drop: Vec<String> = counts.iter().map(|c| c.model.clone()).collect();
        let mut writes: Vec<RecordWrite> = [
            SERVICES_NAMESPACE,
            CONFIG_NAMESPACE,
            SECRETS_NAMESPACE,
            QUOTAS_NAMESPACE,
        ]
        .into_iter()
        .map(|namespace| RecordWrite::Delete {
            namespace: namespace.to_owned(),
            key: name.to_owned(),
        })
        .collect();
        let entry = HistoryEntry::now("uninstall", &installed.info.version, by);
        writes.push(history::append(&self.core, name, entry).await?);
        let _drained = self.drain(&installed.ctx).await?;
        // No config, secret or limit change lands between the removal of
        // their rows and the service's.
        let _settings = self.settings_lock.lock().await;
        self.core.activate(schema, &drop, &writes).await?;
        self.forget(&installed);
        tracing::info!(service = name, purged = ?held, "service uninstalled");
        if let Err(e) = self.collect_components().await {
            tracing::warn!(error = %e, "cannot remove unused components; they stay until the next change");
        }
        Ok(held)
    }

    /// Deletes every object of `held` models through the normal path and
    /// waits until the engine has torn them all down.
    async fn purge(&self, name: &str, held: &[ModelCount]) -> Result<()> {
        self.registry.set_state(name, "purging");
        for count in held {
            for object in self.core.list(&count.model).await? {
                if object.fields.get(field::DELETED) != Some(&serde_json::Value::Bool(true)) {
                    match self.core.delete(object.id).await {
                        Ok(_) | Err(syncplane_core::Error::NotFound { .. }) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
        let started = Instant::now();
        loop {
            let mut remaining = Vec::new();
            for count in held {
                let objects = self.core.object_count(&count.model).await?;
                if objects > 0 {
                    remaining.push(ModelCount {
                        model: count.model.clone(),
                        objects,
                    });
                }
            }
            if remaining.is_empty() {
                return Ok(());
            }
            if started.elapsed() > PURGE_TIMEOUT {
                return Err(Error::PurgeIncomplete {
                    service: name.to_owned(),
                    remaining,
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The packages of `dependencies` an install of `package` needs: those
/// it depends on, directly or through another of them, that `installed`
/// (name to version) does not have.
fn needed(
    package: &ServicePackage,
    dependencies: Vec<(ServicePackage, InstallOptions)>,
    installed: &BTreeMap<String, String>,
) -> Vec<(ServicePackage, InstallOptions)> {
    let mut by_name: BTreeMap<String, (ServicePackage, InstallOptions)> = dependencies
        .into_iter()
        .map(|(p, o)| (p.manifest.service.name.clone(), (p, o)))
        .collect();
    let mut wanted: Vec<String> = package.manifest.dependencies.keys().cloned().collect();
    let mut needed = Vec::new();
    while let Some(name) = wanted.pop() {
        if installed.contains_key(&name) {
            continue;
        }
        if let Some((p, o)) = by_name.remove(&name) {
            wanted.extend(p.manifest.dependencies.keys().cloned());
            needed.push((p, o));
        }
    }
    needed
}

/// What `rollback` did.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum RollbackOutcome {
    /// The plan of a dry run.
    Planned(Plan),
    /// The service as it is now.
    Done(InstalledService),
}

/// A component's bytes from [`COMPONENTS_NAMESPACE`], checked against its
/// digest. Decoding and hashing (tens of MiB for a Python component) run
/// on the blocking pool, not on the async workers that serve requests.
pub(crate) async fn stored_component(core: &Core, digest: &str) -> Result<Vec<u8>> {
    let text = core
        .record(COMPONENTS_NAMESPACE, digest)
        .await?
        .ok_or_else(|| Error::Package(format!("stored component {digest} is missing")))?;
    let owned = digest.to_owned();
    tokio::task::spawn_blocking(move || decode_component(&owned, &text))
        .await
        .map_err(|e| Error::Package(format!("checking stored component {digest} failed: {e}")))?
}

/// A stored component's base64 `text` as bytes, checked against `digest`.
fn decode_component(digest: &str, text: &str) -> Result<Vec<u8>> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.as_bytes())
        .map_err(|e| Error::Package(format!("stored component {digest} is unreadable: {e}")))?;
    if syncplane_runtime::cache::digest(&bytes) != digest {
        return Err(Error::Package(format!(
            "stored component {digest} does not match its digest: the database was changed or damaged"
        )));
    }
    Ok(bytes)
}
