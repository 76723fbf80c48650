//! The change log, and watching it from a sequence number.
//!
//! Every transaction that creates, updates or deletes objects appends one
//! row per change to the store's log as part of its commit (see
//! [`crate::CoreTx::commit`]); bookkeeping written by the synchronizer
//! (backend status, enacted, policed, purges) is not logged. The log keeps
//! the latest [`CHANGE_LOG_RETENTION`] changes.

use syncplane_store::{LoggedRow, StoreTx};
use tokio::sync::broadcast;

use crate::core::Core;
use crate::error::{Error, Result};
use crate::object::{Change, ChangeKind};

/// How many changes the log keeps: a watcher that fell further behind
/// than this (or resumes after a sequence older than the oldest kept
/// change) gets [`Error::ChangesExpired`] and must list again. At about
/// 60 bytes a row, 100,000 changes take a few MiB.
pub const CHANGE_LOG_RETENTION: u64 = 100_000;

/// Changes read from the log at once.
const PAGE: u32 = 1000;

/// One change in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedChange {
    /// Its position in commit order, from 1: the value to resume after.
    pub seq: i64,
    /// The object.
    pub id: i64,
    /// The object's leaf model.
    pub model: String,
    /// [`ChangeKind::Created`], [`ChangeKind::Updated`] or
    /// [`ChangeKind::Deleted`].
    pub kind: ChangeKind,
}

fn kind_name(kind: ChangeKind) -> Option<&'static str> {
    match kind {
        ChangeKind::Created => Some("created"),
        ChangeKind::Updated => Some("updated"),
        ChangeKind::Deleted => Some("deleted"),
        ChangeKind::Bookkeeping | ChangeKind::Purged | ChangeKind::Policed => None,
    }
}

pub(crate) fn kind_of(name: &str) -> Option<ChangeKind> {
    Some(match name {
        "created" => ChangeKind::Created,
        "updated" => ChangeKind::Updated,
        "deleted" => ChangeKind::Deleted,
        _ => return None,
    })
}

/// Appends a transaction's user-visible changes to the log, inside the
/// transaction.
pub(crate) async fn log(tx: &mut StoreTx, changes: &[Change]) -> Result<()> {
    let rows: Vec<(i64, &str, &str)> = changes
        .iter()
        .filter_map(|c| Some((c.id, c.model.as_str(), kind_name(c.kind)?)))
        .collect();
    if !rows.is_empty() {
        tx.append_changes(&rows, CHANGE_LOG_RETENTION).await?;
    }
    Ok(())
}

fn decode(row: LoggedRow) -> Option<LoggedChange> {
    Some(LoggedChange {
        seq: row.seq,
        id: row.id,
        kind: kind_of(&row.kind)?,
        model: row.model,
    })
}

impl Core {
    /// The sequence number of the latest logged change (0 before any).
    ///
    /// # Errors
    ///
    /// A database failure.
    pub async fn latest_change(&self) -> Result<i64> {
        Ok(self.store.change_log_bounds().await?.1)
    }

    /// Starts watching the log after change `since`, or after the latest
    /// change when `None`.
    ///
    /// # Errors
    ///
    /// [`Error::ChangesExpired`] when the log no longer holds the change
    /// right after `since`; [`Error::ChangeAhead`] when `since` is beyond
    /// the latest change; a database failure.
    pub async fn watch(&self, since: Option<i64>) -> Result<ChangeWatch> {
        // Subscribed before the log is read: a commit after the read still
        // wakes the watcher.
        let feed = self.subscribe();
        let (oldest, latest) = self.store.change_log_bounds().await?;
        let after = match since {
            None => latest,
            Some(since) if since > latest => {
                return Err(Error::ChangeAhead { since, latest });
            }
            Some(since) => {
                // Sequence numbers have no gaps: the next change a watcher
                // needs is `since + 1`, and it must still be there.
                if let Some(oldest) = oldest
                    && since + 1 < oldest
                {
                    return Err(Error::ChangesExpired { since, oldest });
                }
                if oldest.is_none() && since < latest {
                    return Err(Error::ChangesExpired {
                        since,
                        oldest: latest + 1,
                    });
                }
                since
            }
        };
        Ok(ChangeWatch {
            core: self.clone(),
            after,
            feed,
        })
    }
}

/// A position in the change log that waits for the changes after it.
///
/// # Guarantees
///
/// [`ChangeWatch::next_batch`] returns every logged change after the
/// starting sequence exactly once, in commit order, as long as the watcher
/// keeps up with the retention; a new watch started after the last `seq`
/// seen continues with no gap and nothing twice.
#[derive(Debug)]
pub struct ChangeWatch {
    core: Core,
    after: i64,
    feed: broadcast::Receiver<Change>,
}

impl ChangeWatch {
    /// The sequence of the last change returned (or the starting point).
    pub fn position(&self) -> i64 {
        self.after
    }

    /// The next changes (at most a page), waiting until there is one.
    ///
    /// # Errors
    ///
    /// [`Error::ChangesExpired`] when the watcher fell behind the log's
    /// retention; a database failure.
    ///
    /// # Caveats
    ///
    /// Cancel-safe: dropping the future loses nothing, since the position
    /// only moves when changes are returned.
    pub async fn next_batch(&mut self) -> Result<Vec<LoggedChange>> {
        loop {
            let rows = self.core.store.changes_after(self.after, PAGE).await?;
            if let Some(first) = rows.first()
                && first.seq > self.after + 1
            {
                return Err(Error::ChangesExpired {
                    since: self.after,
                    oldest: first.seq,
                });
            }
            if let Some(last) = rows.last() {
                self.after = last.seq;
                return Ok(rows.into_iter().filter_map(decode).collect());
            }
            // Nothing new: wait for any commit, then take every signal
            // already queued, so a burst costs one read.
            match self.feed.recv().await {
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => {
                    // The core is gone; nothing more will be committed.
                    std::future::pending::<()>().await;
                }
            }
            while let Ok(_) | Err(broadcast::error::TryRecvError::Lagged(_)) = self.feed.try_recv()
            {
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Map, Value, json};

    use super::*;

    fn site(name: &str) -> Map<String, Value> {
        match json!({ "name": name, "login_base": name }) {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    async fn core() -> (tempfile::TempDir, Core) {
        let dir = tempfile::tempdir().expect("tempdir");
        let core = Core::open(&dir.path().join("db.sqlite"))
            .await
            .expect("open");
        (dir, core)
    }

    #[tokio::test]
    async fn a_watch_sees_creates_updates_and_deletes_in_order_and_resumes_after_a_seq() {
        let (_dir, core) = core().await;
        let mut from_start = core.watch(Some(0)).await.expect("watch");
        let a = core.create("Site", site("a")).await.expect("create");
        let mut input = Map::new();
        input.insert("name".into(), json!("a2"));
        core.update(a.id, input).await.expect("update");
        core.delete(a.id).await.expect("delete");
        let batch = from_start.next_batch().await.expect("batch");
        let kinds: Vec<ChangeKind> = batch.iter().map(|c| c.kind).collect();
        assert_eq!(
            kinds,
            [
                ChangeKind::Created,
                ChangeKind::Updated,
                ChangeKind::Deleted
            ]
        );
        assert!(batch.iter().all(|c| c.id == a.id && c.model == "Site"));
        let mut resumed = core.watch(Some(batch[0].seq)).await.expect("resume");
        let again = resumed.next_batch().await.expect("batch");
        assert_eq!(again, batch[1..]);
        let latest = core.latest_change().await.expect("latest");
        assert_eq!(latest, batch[2].seq);
        assert!(matches!(
            core.watch(Some(latest + 5)).await,
            Err(Error::ChangeAhead { .. })
        ));
    }

    #[tokio::test]
    async fn a_watch_from_now_waits_for_the_next_commit() {
        let (_dir, core) = core().await;
        core.create("Site", site("before")).await.expect("create");
        let mut watch = core.watch(None).await.expect("watch");
        let writer = core.clone();
        let write = tokio::spawn(async move { writer.create("Site", site("after")).await });
        let batch = tokio::time::timeout(std::time::Duration::from_secs(10), watch.next_batch())
            .await
            .expect("in time")
            .expect("batch");
        let created = write.await.expect("join").expect("create");
        assert_eq!(batch.len(), 1);
        assert_eq!(batch[0].id, created.id);
    }
}
