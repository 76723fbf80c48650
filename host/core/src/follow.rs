//! Following the changes other hosts commit to a shared store.
//!
//! On PostgreSQL several hosts share one store. Each publishes its own
//! commits on its change feed ([`Core::subscribe`]); what the others
//! commit reaches it through the store's notifications
//! ([`syncplane_store::ChangeNotices`]): on each, the follower reads the
//! change log on from the last sequence it saw and publishes those
//! changes on the feed, so the engine and watchers wake as for a local
//! commit. After a lost connection it catches up from the log the same
//! way, so a missed notification delays nothing past the reconnection.
//! Changes to the installed services on another host are passed on to
//! [`Core::subscribe_activations`], and its commits of outcomes to
//! [`Core::subscribe_outcomes_elsewhere`].

use std::time::Duration;

use syncplane_store::{ChangeNotices, Notice};
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use crate::core::Core;
use crate::object::Change;

/// Log rows read at once while catching up.
const PAGE: u32 = 1000;

impl Core {
    /// On a store other hosts share, starts following their changes (see
    /// the [module documentation](self)); `None` on a store of one host.
    ///
    /// # Errors
    ///
    /// When the listening connection cannot be made.
    pub async fn follow_other_hosts(&self) -> crate::Result<Option<JoinHandle<()>>> {
        let Some(notices) = self.store.change_notices().await? else {
            return Ok(None);
        };
        // Read after listening starts: nothing committed in between is
        // missed.
        let last = self.latest_change().await?;
        let core = self.clone();
        Ok(Some(tokio::spawn(follow(core, notices, last))))
    }

    /// Publishes the logged changes after `last` on the feed; returns the
    /// last sequence published.
    async fn publish_logged_after(&self, mut last: i64) -> crate::Result<i64> {
        loop {
            let rows = self.store.changes_after(last, PAGE).await?;
            let Some(row) = rows.last() else {
                return Ok(last);
            };
            last = row.seq;
            let full = rows.len() as u32 >= PAGE;
            for row in rows {
                let Some(kind) = crate::watch::kind_of(&row.kind) else {
                    continue;
                };
                // No receivers is fine.
                let _ = self.feed.send(Change {
                    id: row.id,
                    model: row.model,
                    kind,
                });
            }
            if !full {
                return Ok(last);
            }
        }
    }
}

async fn follow(core: Core, mut notices: ChangeNotices, mut last: i64) {
    let mut delay = Duration::from_millis(100);
    loop {
        match notices.next().await {
            Ok(None) => return,
            Ok(Some(notice)) => {
                delay = Duration::from_millis(100);
                // No receivers is fine.
                if matches!(notice, Notice::Outcomes | Notice::Reconnected) {
                    let _ = core.outcomes_elsewhere.send(());
                }
                if matches!(notice, Notice::Activated | Notice::Reconnected) {
                    let _ = core.activations.send(());
                }
                if notice == Notice::Outcomes {
                    // Nothing was logged.
                    continue;
                }
                match core.publish_logged_after(last).await {
                    Ok(seen) => {
                        if seen > last {
                            debug!(?notice, after = last, to = seen, "changes of other hosts");
                        }
                        last = seen;
                    }
                    Err(error) => {
                        warn!(error = %error, "cannot read the changes of other hosts; reading them at the next notice")
                    }
                }
            }
            Err(error) => {
                warn!(error = %error, retry_in = ?delay, "lost the notifications of other hosts' changes; reconnecting");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}
