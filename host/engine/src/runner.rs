//! Running one cohort: its objects in order, dependents of a failure deferred.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use syncplane_core::{HistoryRow, Object, SyncRecord};
use tracing::{Instrument, debug, info_span, warn};

use crate::backoff::RetryPolicy;
use crate::clock::Clock;
use crate::history::{Ended, Invocation};
use crate::lane::RateLimiter;
use crate::outcome::{Outcome, SyncStep};
use crate::stats::Stats;
use crate::steps::StepTable;

/// Whether a pass brings objects up (sync) or tears them down (delete).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// `sync-record`, dependencies first.
    Sync,
    /// `delete-record`, dependents first.
    Delete,
}

impl Phase {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Phase::Sync => "sync",
            Phase::Delete => "delete",
        }
    }
}

/// One object to run, with what the engine found out about its links.
#[derive(Debug)]
pub(crate) struct Item {
    pub object: Object,
    /// Ids the object links to.
    pub links: Vec<i64>,
    /// A linked object outside this pass that is not in sync: the object
    /// must wait for it ("Site 3: <its status>").
    pub waiting_on: Option<String>,
}

/// What to write for an object after its cohort ran.
#[derive(Debug, PartialEq)]
pub(crate) enum Verdict {
    Record(SyncRecord),
    Purge,
}

/// Runs cohorts; cheap to clone into worker tasks.
#[derive(Clone)]
pub(crate) struct Runner {
    pub steps: Arc<StepTable>,
    pub policy: RetryPolicy,
    pub stats: Arc<Stats>,
    /// Paces the invocations of the service the cohort runs for.
    pub rate: Option<Arc<RateLimiter>>,
    /// When retries are due.
    pub clock: Arc<dyn Clock>,
}

impl Runner {
    /// The runner, paced by `rate`.
    pub(crate) fn with_rate(mut self, rate: Option<Arc<RateLimiter>>) -> Self {
        self.rate = rate;
        self
    }

    /// Runs `cohort` (already in dependency order) one object at a time.
    ///
    /// For a sync, an object whose linked object failed or was deferred in
    /// this cohort is deferred with a status naming that object; for a
    /// delete, the same holds for an object whose dependents could not be
    /// torn down.
    ///
    /// Returns the verdicts and what each invocation did, for the history.
    pub(crate) async fn run_cohort(
        &self,
        cohort: Vec<Item>,
        phase: Phase,
    ) -> (Vec<(Object, Verdict)>, Vec<HistoryRow>) {
        let ids: HashMap<i64, usize> = cohort
            .iter()
            .enumerate()
            .map(|(i, w)| (w.object.id, i))
            .collect();
        // Who must succeed before each object may run.
        let mut before: Vec<Vec<usize>> = vec![Vec::new(); cohort.len()];
        for (i, work) in cohort.iter().enumerate() {
            for target in &work.links {
                if let Some(&j) = ids.get(target)
                    && j != i
                {
                    match phase {
                        Phase::Sync => before[i].push(j),
                        Phase::Delete => before[j].push(i),
                    }
                }
            }
        }
        let mut blocked: Vec<Option<String>> = vec![None; cohort.len()];
        let mut out = Vec::with_capacity(cohort.len());
        let mut history = Vec::with_capacity(cohort.len());
        for (i, work) in cohort.into_iter().enumerate() {
            let waiting = work
                .waiting_on
                .clone()
                .or_else(|| before[i].iter().find_map(|&j| blocked[j].clone()));
            let verdict = match waiting {
                Some(reason) => {
                    debug!(object.id = work.object.id, %reason, "deferring: waiting on another object");
                    blocked[i] = Some(reason.clone());
                    Verdict::Record(SyncRecord::Deferred {
                        message: format!("waiting on {reason}"),
                        retry_at_ms: self.clock.now_ms()
                            + self.policy.retry_interval.as_millis() as i64,
                    })
                }
                None => {
                    let verdict = self.run_steps(&work.object, phase, &mut history).await;
                    if let Verdict::Record(
                        SyncRecord::Failed { message, .. } | SyncRecord::Deferred { message, .. },
                    ) = &verdict
                    {
                        blocked[i] = Some(format!(
                            "{} {}: {message}",
                            work.object.model, work.object.id
                        ));
                    }
                    verdict
                }
            };
            out.push((work.object, verdict));
        }
        (out, history)
    }

    /// Runs every step of the object's model; the first that does not
    /// succeed decides.
    async fn run_steps(
        &self,
        object: &Object,
        phase: Phase,
        history: &mut Vec<HistoryRow>,
    ) -> Verdict {
        let steps = self.steps.steps(&object.model);
        let ordered: Vec<&SyncStep> = match phase {
            Phase::Sync => steps.iter().collect(),
            Phase::Delete => steps.iter().rev().collect(),
        };
        for step in ordered {
            let (outcome, row) = self.invoke(step, object, phase).await;
            history.push(row);
            match outcome {
                Outcome::Done => {}
                Outcome::Deferred(message) => {
                    return Verdict::Record(SyncRecord::Deferred {
                        message,
                        retry_at_ms: self.clock.now_ms()
                            + self.policy.retry_interval.as_millis() as i64,
                    });
                }
                Outcome::Failed(message) => return self.failure(step, object, message),
                Outcome::Trapped(trap) => return self.failure(step, object, trap.to_string()),
            }
        }
        match phase {
            Phase::Sync => Verdict::Record(SyncRecord::Enacted {
                synced_seq: object.sync.change_seq,
            }),
            Phase::Delete => Verdict::Purge,
        }
    }

    /// A failed or trapped step: `backend_code = 2` and a retry after the
    /// backoff for the object's failure count.
    fn failure(&self, step: &SyncStep, object: &Object, message: String) -> Verdict {
        let failures = object.sync.failures + 1;
        let delay = self.policy.delay_after_failure(failures);
        warn!(
            service = %step.service, step = %step.name, model = %object.model,
            object.id = object.id, %message, failures,
            retry_in_ms = delay.as_millis() as u64, "step failed"
        );
        Verdict::Record(SyncRecord::Failed {
            message,
            failures,
            retry_at_ms: self.clock.now_ms() + delay.as_millis() as i64,
        })
    }

    async fn invoke(
        &self,
        step: &SyncStep,
        object: &Object,
        phase: Phase,
    ) -> (Outcome, HistoryRow) {
        let span = info_span!(
            "invoke",
            service = %step.service,
            step = %step.name,
            phase = phase.name(),
            model = %object.model,
            object.id = object.id,
            attempt = object.sync.failures + 1,
        );
        async {
            if let Some(rate) = &self.rate {
                rate.until_ready().await;
            }
            let running = self.stats.start(step);
            let started = Instant::now();
            let invocation = Invocation {
                object,
                service: &step.service,
                step: &step.name,
                kind: phase.name(),
            };
            let call = async {
                match phase {
                    Phase::Sync => step.invoker.sync_record(object).await,
                    Phase::Delete => step.invoker.delete_record(object).await,
                }
            };
            let (outcome, row) = invocation
                .run(self.clock.as_ref(), call, Ended::of_step)
                .await;
            let elapsed = started.elapsed();
            running.finish(&outcome, elapsed);
            debug!(
                elapsed_us = elapsed.as_micros() as u64,
                outcome = outcome.name(),
                "invoked"
            );
            (outcome, row)
        }
        .instrument(span)
        .await
    }
}
