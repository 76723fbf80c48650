//! At start, every component the installed services keep in the store is
//! read back and hashed again, in the background, one at a time: one whose
//! bytes no longer match its digest (the database was changed or damaged)
//! or that is missing shows in the service's status at once, instead of
//! when its step first has work. Loading checks the digest again anyway,
//! so such a component never runs.

use crate::host::Host;
use crate::lifecycle::stored_component;

impl Host {
    /// Starts the check of stored components; it ends by itself.
    pub(crate) fn spawn_integrity_check(&self) {
        let host = self.clone();
        tokio::spawn(async move { host.check_stored_components().await });
    }

    async fn check_stored_components(&self) {
        let (mut checked, mut damaged) = (0_usize, 0_usize);
        for installed in self.registry.all() {
            let service = &installed.info.name;
            for (step, digest) in &installed.record.component_digests {
                checked += 1;
                if let Err(e) = stored_component(&self.core, digest).await {
                    damaged += 1;
                    tracing::error!(service = %service, step = %step, error = %e, "a stored component failed its check; the step will not run");
                    self.registry.mark_damaged(
                        service,
                        step,
                        digest,
                        format!("step `{step}`: {e}; install the service again"),
                    );
                }
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
