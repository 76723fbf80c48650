//! Services changed by another host sharing the store.
//!
//! An install, upgrade, rollback or uninstall commits the service rows and
//! the models' tables in one transaction, which tells the other hosts
//! (`syncplane_core::Core::subscribe_activations`). Each loads the rows
//! again and brings what it runs in line: a new or changed row is resolved
//! and swapped in as at start, a service whose row is gone is forgotten.
//! Settings (config, secrets, limits) are written the same way, and loaded
//! again with them.

use std::collections::BTreeMap;

use tokio::sync::broadcast::error::RecvError;

use crate::error::{Error, Result};
use crate::host::Host;
use crate::registry::{SERVICES_NAMESPACE, ServiceRecord};
use crate::resolve::parse_files;

impl Host {
    /// On a store other hosts share, follows their service changes for as
    /// long as the host lives.
    pub(crate) fn spawn_service_follower(&self) {
        if !self.core.store_is_shared() {
            return;
        }
        let mut activations = self.core.subscribe_activations();
        let host = self.clone();
        tokio::spawn(async move {
            loop {
                match activations.recv().await {
                    Ok(()) | Err(RecvError::Lagged(_)) => {
                        if let Err(error) = host.load_changed_services().await {
                            tracing::warn!(error = %error, "cannot load the services another host changed; trying again at its next change");
                        }
                        if let Err(error) = host.load_settings().await {
                            tracing::warn!(error = %error, "cannot load the service settings another host changed; trying again at its next change");
                        }
                    }
                    Err(RecvError::Closed) => return,
                }
            }
        });
    }

    /// Brings the services this host runs in line with the store's rows.
    pub(crate) async fn load_changed_services(&self) -> Result<()> {
        let _guard = self.lifecycle_lock.lock().await;
        let mut stored: BTreeMap<String, ServiceRecord> = BTreeMap::new();
        let mut files = Vec::new();
        for name in self.core.record_keys(SERVICES_NAMESPACE).await? {
            if let Some(record) = self.stored_row(&name).await? {
                files.extend(parse_files(&record.package)?);
                stored.insert(name, record);
            }
        }
        let changed: Vec<ServiceRecord> = stored
            .iter()
            .filter(|(name, record)| {
                self.registry
                    .get(name)
                    .is_none_or(|installed| !same_row(&installed.record, record))
            })
            .map(|(_, record)| record.clone())
            .collect();
        let gone: Vec<_> = self
            .registry
            .all()
            .into_iter()
            .filter(|installed| !stored.contains_key(&installed.info.name))
            .collect();
        if changed.is_empty() && gone.is_empty() {
            return Ok(());
        }
        let schema = self.core.core_schema().with_files(&files).map_err(|e| {
            Error::Package(format!(
                "the services another host installed do not load together here:\n{e}"
            ))
        })?;
        // The other host made the tables; this only takes the models in.
        self.core.activate(schema.clone(), &[], &[]).await?;
        for installed in gone {
            self.forget(&installed);
            tracing::info!(service = %installed.info.name, "service uninstalled by another host");
        }
        for record in changed {
            let (name, version) = self.load_stored(record, &schema).await?;
            tracing::info!(service = %name, %version, "service loaded: another host changed it");
        }
        Ok(())
    }

    /// Loads every service's limits, config and secrets again from the
    /// store: another host may have changed them.
    pub(crate) async fn load_settings(&self) -> Result<()> {
        let _settings = self.settings_lock.lock().await;
        self.restore_quotas().await?;
        for installed in self.registry.all() {
            let name = &installed.info.name;
            let overrides = self.quotas.lock().get(name).copied().unwrap_or_default();
            self.apply_quota(name, &installed.ctx, &installed.files, &overrides);
            self.refresh_values(&installed.ctx).await?;
        }
        Ok(())
    }
}

/// Whether two rows of one service are the same version, installed at
/// the same time with the same components.
fn same_row(running: &ServiceRecord, stored: &ServiceRecord) -> bool {
    running.installed_at == stored.installed_at
        && running.package.manifest.service.version == stored.package.manifest.service.version
        && running.component_digests == stored.component_digests
}
