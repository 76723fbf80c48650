//! Pull steps: each service's importers, called on their interval.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use syncplane_core::now_ms;
use syncplane_engine::{CallOutcome, Engine, PullStep};
use tokio::task::JoinHandle;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::events::lock;

/// How soon a pull step stopped by a busy or unwritable database runs
/// again (its interval, when that is shorter).
pub const DEFERRED_PULL_RETRY: Duration = Duration::from_secs(1);

/// What one pull step has done since the host started.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PullStepStatus {
    /// The step name.
    pub name: String,
    /// How often it runs, in milliseconds.
    pub interval_ms: u64,
    /// Calls finished.
    pub runs: u64,
    /// Calls that failed.
    pub failed: u64,
    /// Calls stopped because the database was busy or could not be
    /// written: not failures; the step runs again after
    /// [`DEFERRED_PULL_RETRY`] (or its interval, if shorter).
    pub deferred: u64,
    /// The latest failure.
    pub last_error: Option<String>,
    /// When the latest call finished, milliseconds since the epoch.
    pub last_run_ms: Option<i64>,
}

struct Puller {
    status: Arc<Mutex<PullStepStatus>>,
    step: PullStep,
    /// Calls it on its interval; `None` when the host calls pull steps
    /// only when asked ([`HostConfig::background_steps`](crate::HostConfig)).
    task: Option<JoinHandle<()>>,
}

/// The running pull steps of every service.
#[derive(Clone)]
pub(crate) struct Pullers {
    engine: Engine,
    background: bool,
    services: Arc<Mutex<BTreeMap<String, Vec<Puller>>>>,
}

impl Pullers {
    /// No pull steps yet; their calls run through `engine`, on their
    /// interval when `background`, else only when asked ([`Pullers::run`]).
    pub(crate) fn new(engine: Engine, background: bool) -> Self {
        Pullers {
            engine,
            background,
            services: Arc::default(),
        }
    }

    /// Replaces the pull steps of `service`; each first runs at once, then
    /// every interval (a slow call delays the next, never overlaps it).
    pub(crate) fn set_service_steps(&self, service: &str, steps: Vec<(PullStep, Duration)>) {
        let mut pullers = Vec::new();
        for (step, interval) in steps {
            let status = Arc::new(Mutex::new(PullStepStatus {
                name: step.name.clone(),
                interval_ms: interval.as_millis() as u64,
                ..PullStepStatus::default()
            }));
            let task = self.background.then(|| {
                tokio::spawn(pull_loop(
                    self.engine.clone(),
                    step.clone(),
                    interval,
                    Arc::clone(&status),
                ))
            });
            pullers.push(Puller { status, step, task });
        }
        if let Some(old) = lock(&self.services).insert(service.to_owned(), pullers) {
            for task in old.into_iter().filter_map(|p| p.task) {
                task.abort();
            }
        }
    }

    /// The pull steps of `service`.
    pub(crate) fn status(&self, service: &str) -> Vec<PullStepStatus> {
        lock(&self.services)
            .get(service)
            .map(|ps| ps.iter().map(|p| lock(&p.status).clone()).collect())
            .unwrap_or_default()
    }
}

impl Pullers {
    /// Calls the pull step `name` of `service` once, now, as its interval
    /// would, and counts the outcome in its status. `None` when there is
    /// no such step or the engine stopped.
    pub(crate) async fn run(&self, service: &str, name: &str) -> Option<CallOutcome> {
        let (step, status) = lock(&self.services)
            .get(service)?
            .iter()
            .find(|p| p.step.name == name)
            .map(|p| (p.step.clone(), Arc::clone(&p.status)))?;
        let span = info_span!("pull", service = %step.service, step = %step.name);
        let call = step.invoker.pull_records().instrument(span);
        let result = self.engine.call(&step.service, call).await?;
        record(&step, &status, &result);
        Some(result)
    }
}

/// Counts one finished call of `step` in its status.
fn record(step: &PullStep, status: &Mutex<PullStepStatus>, result: &CallOutcome) {
    let mut status = lock(status);
    status.runs += 1;
    status.last_run_ms = Some(now_ms());
    match result {
        CallOutcome::Done => debug!(service = %step.service, step = %step.name, "pulled"),
        CallOutcome::Deferred(message) => {
            info!(service = %step.service, step = %step.name, %message, "pull step deferred");
            status.deferred += 1;
        }
        CallOutcome::Failed(message) => {
            warn!(service = %step.service, step = %step.name, %message, "pull step failed");
            status.failed += 1;
            status.last_error = Some(message.clone());
        }
    }
}

/// Calls the step every `interval` on the engine's clock (at once, then at
/// a fixed rate; a call longer than the interval is followed at once, not
/// by a burst), in its service's lane (so under the service's concurrency
/// and rate), until the engine stops.
async fn pull_loop(
    engine: Engine,
    step: PullStep,
    interval: Duration,
    status: Arc<Mutex<PullStepStatus>>,
) {
    let clock = engine.clock();
    let every = i64::try_from(interval.as_millis()).unwrap_or(i64::MAX);
    let mut next = clock.now_ms();
    // Hosts sharing a store call each pull step one at a time.
    let key = format!("pull {} {}", step.service, step.name);
    loop {
        clock.sleep_until(next).await;
        if !engine.holds(&key).await {
            // Asked again soon, to take over from a host that died.
            let soon = i64::try_from(engine.hold_period().as_millis()).unwrap_or(i64::MAX);
            next = clock.now_ms().saturating_add(soon.min(every));
            continue;
        }
        let span = info_span!("pull", service = %step.service, step = %step.name);
        let call = step.invoker.pull_records().instrument(span);
        let Some(result) = engine.call(&step.service, call).await else {
            return;
        };
        let now = clock.now_ms();
        record(&step, &status, &result);
        next = if matches!(result, CallOutcome::Deferred(_)) {
            // The host's passing trouble, not the step's: soon again.
            let soon = i64::try_from(DEFERRED_PULL_RETRY.as_millis()).unwrap_or(i64::MAX);
            now.saturating_add(soon.min(every))
        } else {
            next.saturating_add(every).max(now)
        };
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use syncplane_engine::PullInvoker;

    use super::*;
    use crate::events::tests::{busy_once, busy_once_on};

    /// The pull step `p` of service `s`, calling `invoker`.
    fn pull_step(invoker: &Arc<crate::events::tests::BusyOnce>) -> PullStep {
        PullStep {
            service: "s".into(),
            name: "p".into(),
            invoker: Arc::clone(invoker) as Arc<dyn PullInvoker>,
        }
    }

    /// Waits until `status` counts `runs` runs.
    async fn runs(status: &Mutex<PullStepStatus>, runs: u64) -> PullStepStatus {
        tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                let now = lock(status).clone();
                if now.runs >= runs {
                    return now;
                }
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the run counted")
    }

    #[tokio::test]
    async fn pulls_keep_their_interval_and_retry_on_the_engines_clock() {
        let clock = Arc::new(syncplane_engine::ManualClock::at(1_000_000));
        let (_dir, engine, invoker, mut calls) =
            busy_once_on(Arc::clone(&clock) as Arc<dyn syncplane_engine::Clock>).await;
        let step = pull_step(&invoker);
        let status = Arc::new(Mutex::new(PullStepStatus::default()));
        let interval = Duration::from_secs(3600);
        let task = tokio::spawn(pull_loop(engine, step, interval, Arc::clone(&status)));
        let quiet = Duration::from_millis(300);
        let limit = Duration::from_secs(10);
        // At once; busy, so deferred: again a second later on the clock.
        let first = tokio::time::timeout(limit, calls.recv()).await;
        assert_eq!(first.expect("first call at once"), Some(0));
        runs(&status, 1).await;
        assert!(
            tokio::time::timeout(quiet, calls.recv()).await.is_err(),
            "ran again before the clock moved"
        );
        clock.advance(DEFERRED_PULL_RETRY);
        let second = tokio::time::timeout(limit, calls.recv()).await;
        assert_eq!(second.expect("again once the retry is due"), Some(1));
        runs(&status, 2).await;
        // Then every interval: not a minute early, at once when due.
        clock.advance(interval - Duration::from_secs(60));
        assert!(
            tokio::time::timeout(quiet, calls.recv()).await.is_err(),
            "ran before its interval"
        );
        clock.advance(Duration::from_secs(60));
        let third = tokio::time::timeout(limit, calls.recv()).await;
        assert_eq!(third.expect("again after the interval"), Some(2));
        let counted = runs(&status, 3).await;
        task.abort();
        assert_eq!((counted.deferred, counted.failed), (1, 0), "{counted:?}");
    }

    #[tokio::test]
    async fn a_pull_that_met_a_busy_database_runs_again_soon_and_is_not_a_failure() {
        let (_dir, engine, invoker, mut calls) = busy_once().await;
        let step = pull_step(&invoker);
        let status = Arc::new(Mutex::new(PullStepStatus::default()));
        // An interval far longer than the test: only a deferral retries.
        let interval = Duration::from_secs(3600);
        let task = tokio::spawn(pull_loop(engine, step, interval, Arc::clone(&status)));
        let limit = Duration::from_secs(10);
        let first = tokio::time::timeout(limit, calls.recv()).await;
        assert_eq!(first.expect("first call"), Some(0));
        let deferred_at = Instant::now();
        let second = tokio::time::timeout(limit, calls.recv()).await;
        assert_eq!(second.expect("run again soon"), Some(1));
        let again = deferred_at.elapsed();
        assert!(
            again >= DEFERRED_PULL_RETRY / 2 && again < DEFERRED_PULL_RETRY * 5,
            "ran again after {again:?}"
        );
        // The status is written right after the call returns.
        let counted = runs(&status, 2).await;
        task.abort();
        assert_eq!((counted.deferred, counted.failed), (1, 0), "{counted:?}");
        assert_eq!(counted.last_error, None);
    }
}
