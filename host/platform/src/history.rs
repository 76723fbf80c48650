//! Each service's lifecycle history: what was installed, upgraded, rolled
//! back or uninstalled, when, by whom, from which package (digest and
//! signers) and under which trust rule. Kept in the store beside the
//! service, written in the same transaction as the change it records, and
//! kept after an uninstall.

use serde::{Deserialize, Serialize};
use syncplane_core::{Core, RecordWrite, now_secs};

use crate::error::{Error, Result};

/// Where histories are kept, one row per service name.
pub(crate) const HISTORY_NAMESPACE: &str = "service-history";

/// Entries kept per service; older ones go first.
pub const MAX_HISTORY: usize = 100;

/// One lifecycle change of a service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// Seconds since the epoch.
    pub time: f64,
    /// `install`, `upgrade`, `reinstall`, `downgrade`, `rollback` or
    /// `uninstall`.
    pub action: String,
    /// The version the service has after the change (before it, for an
    /// uninstall).
    pub version: String,
    /// The digest of the packed file it came from; `None` for a directory
    /// or JSON package.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// The keys whose verified signatures it carried.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signers: Vec<String>,
    /// The trust policy's rule that let it in, when a policy was set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// Who made the change (`user admin@opencord.org`); `None` when the
    /// host did it itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

impl HistoryEntry {
    /// An entry for a change made now.
    pub(crate) fn now(action: &str, version: &str, by: Option<String>) -> HistoryEntry {
        HistoryEntry {
            time: now_secs(),
            action: action.to_owned(),
            version: version.to_owned(),
            digest: None,
            signers: Vec::new(),
            rule: None,
            by,
        }
    }
}

/// The history of `service`, oldest first (empty when it has none).
///
/// # Errors
///
/// When the store fails or the row is unreadable.
pub(crate) async fn read(core: &Core, service: &str) -> Result<Vec<HistoryEntry>> {
    let Some(text) = core.record(HISTORY_NAMESPACE, service).await? else {
        return Ok(Vec::new());
    };
    serde_json::from_str(&text)
        .map_err(|e| Error::Package(format!("the history of `{service}` is unreadable: {e}")))
}

/// The write that appends `entry` to `service`'s history, keeping the
/// latest [`MAX_HISTORY`] entries. The caller holds the lifecycle lock, so
/// no other change of the history lands between the read and the write.
///
/// # Errors
///
/// As [`read`].
pub(crate) async fn append(core: &Core, service: &str, entry: HistoryEntry) -> Result<RecordWrite> {
    let mut entries = read(core, service).await?;
    entries.push(entry);
    if entries.len() > MAX_HISTORY {
        let extra = entries.len() - MAX_HISTORY;
        entries.drain(..extra);
    }
    let value = serde_json::to_string(&entries)
        .map_err(|e| Error::Package(format!("cannot serialise the history: {e}")))?;
    Ok(RecordWrite::Put {
        namespace: HISTORY_NAMESPACE.to_owned(),
        key: service.to_owned(),
        value,
    })
}
