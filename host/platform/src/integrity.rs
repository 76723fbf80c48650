//! At start, every component the installed services keep in the store is
//! read back and hashed again, in the background, one distinct component
//! at a time (hashing on the blocking pool, so requests are not held up):
//! one whose
//! bytes no longer match its digest (the database was changed or damaged)
//! or that is missing shows in the service's status at once, instead of
//! when its step first has work. Loading checks the digest again anyway,
//! so such a component never runs.

use std::collections::BTreeMap;

use crate::host::Host;
use crate::lifecycle::stored_component;

impl Host {
    /// Starts the check of stored components; it ends by itself.
    pub(crate) fn spawn_integrity_check(&self) {
        let host = self.clone();
        tokio::spawn(async move { host.check_stored_components().await });
    }

    async fn check_stored_components(&self) {
        // Each distinct component once, however many services share it.
        let mut users: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
        for installed in self.registry.all() {
            for (step, digest) in &installed.record.component_digests {
                users
                    .entry(digest.clone())
                    .or_default()
                    .push((installed.info.name.clone(), step.clone()));
            }
        }
        let (checked, mut damaged) = (users.len(), 0_usize);
        for (digest, users) in users {
            let Err(e) = stored_component(&self.core, &digest).await else {
                continue;
            };
            damaged += 1;
            for (service, step) in users {
                tracing::error!(service = %service, step = %step, error = %e, "a stored component failed its check; the step will not run");
                self.registry.mark_damaged(
                    &service,
                    &step,
                    &digest,
                    format!("step `{step}`: {e}; install the service again"),
                );
            }
        }
        if damaged == 0 {
            tracing::debug!(checked, "stored components match their digests");
        } else {
            tracing::warn!(
                checked,
                damaged,
                "stored components that fail their check will not run"
            );
        }
    }
}
