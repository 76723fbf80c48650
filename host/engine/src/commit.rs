//! Writing what jobs produced: group commit.
//!
//! Outcomes that finish close together share one transaction: while one
//! group is being written, the next accumulates. A lone change is written
//! at once; a burst of thousands costs a handful of transactions.

use std::sync::Arc;
use std::time::{Duration, Instant};

use syncplane_core::{Core, HistoryRetention, PolicyRecord, SyncBatch, SyncRecord};
use tokio::sync::mpsc;
use tracing::{debug, warn};

use crate::backoff::RetryPolicy;
use crate::calls::CallOutcome;
use crate::clock::Clock;
use crate::error::Result;
use crate::job::Finished;
use crate::lane::Done;
use crate::lease::WorkSource;
use crate::runner::Verdict;

/// How long a group keeps retrying to record its outcomes while the
/// database is busy or cannot be written.
const APPLY_RETRY_FOR: Duration = Duration::from_secs(10);

/// The most objects one group commits.
const GROUP_MAX: usize = 4096;

/// The delay before outcomes are run again after `failed` groups in a row
/// could not be written (the database busy, full or failing): 1 s,
/// doubling, at most 30 s.
fn failed_commit_delay(failed: u32) -> Duration {
    let shift = failed.saturating_sub(1).min(5);
    Duration::from_secs(1u64 << shift).min(Duration::from_secs(30))
}

/// Writes outcomes and ends their leases.
#[derive(Clone)]
pub(crate) struct Committer {
    pub core: Core,
    pub leases: Arc<dyn WorkSource>,
    pub retry: RetryPolicy,
    pub clock: Arc<dyn Clock>,
    /// How much invocation history is kept.
    pub history: HistoryRetention,
}

impl Committer {
    /// Writes the outcomes of `group`: syncs, teardowns and purges in one
    /// transaction, then policy outcomes. Returns the earliest retry time
    /// among them.
    ///
    /// # Errors
    ///
    /// When the store fails; what was not written runs again later.
    pub(crate) async fn write(&self, group: &[&Finished]) -> Result<Option<i64>> {
        let mut batch = SyncBatch::default();
        let mut earliest: Option<i64> = None;
        let mut retry_at = |at: i64| earliest = Some(earliest.map_or(at, |e| e.min(at)));
        for finished in group {
            for (object, verdict) in &finished.verdicts {
                match verdict {
                    Verdict::Record(record) => {
                        if let SyncRecord::Failed { retry_at_ms, .. }
                        | SyncRecord::Deferred { retry_at_ms, .. } = record
                        {
                            retry_at(*retry_at_ms);
                        }
                        batch.record(object, record.clone());
                    }
                    Verdict::Purge => batch.purge(object),
                }
            }
        }
        if self.history.keep > 0 {
            batch.invoked(
                group
                    .iter()
                    .flat_map(|f| f.history.iter().cloned())
                    .collect(),
                self.history,
            );
        }
        if let Some(host) = self.leases.fence() {
            batch.fence(host);
        }
        self.apply(&batch).await?;
        // Policies are not backed off: a failed one, and one deferred for
        // a busy database, run again after the retry interval.
        let policy_retry = self.clock.now_ms() + self.retry.retry_interval.as_millis() as i64;
        for finished in group {
            for (object, outcome) in &finished.policed {
                let record = match outcome {
                    CallOutcome::Done => PolicyRecord::Done,
                    CallOutcome::Deferred(message) => PolicyRecord::Deferred {
                        message: message.clone(),
                        retry_at_ms: policy_retry,
                    },
                    CallOutcome::Failed(message) => PolicyRecord::Failed {
                        message: message.clone(),
                        retry_at_ms: policy_retry,
                    },
                };
                if record != PolicyRecord::Done {
                    retry_at(policy_retry);
                }
                self.core.record_policy(object, record).await?;
            }
        }
        Ok(earliest)
    }

    /// Applies a batch. The steps already ran: while the database is busy
    /// (another process holds its lock) or cannot be written, the write is
    /// retried with backoff for up to [`APPLY_RETRY_FOR`] rather than
    /// dropped, which would run the steps again.
    async fn apply(&self, batch: &SyncBatch) -> Result<()> {
        let started = Instant::now();
        let mut delay = Duration::from_millis(100);
        loop {
            match self.core.apply(batch).await {
                Err(error)
                    if error.is_storage_unavailable()
                        && started.elapsed() + delay < APPLY_RETRY_FOR =>
                {
                    warn!(error = %error, retry_in = ?delay, "cannot record outcomes yet; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(2));
                }
                other => return Ok(other?),
            }
        }
    }

    /// Ends the leases a group held; `written` when its outcomes were
    /// committed (ending the leases of those in the batch with them).
    pub(crate) fn release(&self, group: &[Done], written: bool) {
        for done in group {
            let finished = &done.finished;
            if written {
                let recorded: std::collections::HashSet<i64> =
                    finished.verdicts.iter().map(|(o, _)| o.id).collect();
                let (ended, rest): (Vec<i64>, Vec<i64>) =
                    finished.ids.iter().partition(|id| recorded.contains(id));
                self.leases.committed(&ended);
                self.leases.release(&rest);
            } else {
                self.leases.release(&finished.ids);
            }
            if let Some(lane) = &done.lane {
                lane.release(finished.ids.len());
            }
        }
    }

    /// Commits finished jobs as they arrive, grouping those that arrive
    /// while a group is being written; calls `committed` after each group
    /// with the earliest retry time it wrote. Returns when every sender is
    /// gone and all was written.
    pub(crate) async fn run(
        self,
        mut done: mpsc::UnboundedReceiver<Done>,
        committed: impl Fn(Option<i64>),
    ) {
        let mut failed = 0u32;
        while let Some(first) = done.recv().await {
            let mut objects = first.finished.len();
            let mut group = vec![first];
            while objects < GROUP_MAX {
                match done.try_recv() {
                    Ok(next) => {
                        objects += next.finished.len();
                        group.push(next);
                    }
                    Err(_) => break,
                }
            }
            let finished: Vec<&Finished> = group.iter().map(|d| &d.finished).collect();
            let mut retry_at = None;
            let written = self.write(&finished).await;
            match &written {
                Ok(earliest) => {
                    failed = 0;
                    retry_at = *earliest;
                    debug!(objects, jobs = group.len(), "committed");
                }
                Err(error) => {
                    // The objects stay pending; keep their leases a while so
                    // that they are not run again straight away.
                    failed = failed.saturating_add(1);
                    let delay = failed_commit_delay(failed);
                    warn!(error = %error, objects, retry_in = ?delay, "cannot record outcomes; the objects will run again");
                    tokio::time::sleep(delay).await;
                }
            }
            self.release(&group, written.is_ok());
            committed(retry_at);
        }
    }
}
