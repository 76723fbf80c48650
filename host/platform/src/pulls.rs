//! Pull steps: each service's importers, called on their interval.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use syncplane_core::now_ms;
use syncplane_engine::{Engine, PullStep};
use tokio::task::JoinHandle;
use tracing::{Instrument, debug, info_span, warn};

use crate::events::lock;

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
    /// The latest failure.
    pub last_error: Option<String>,
    /// When the latest call finished, milliseconds since the epoch.
    pub last_run_ms: Option<i64>,
}

struct Puller {
    status: Arc<Mutex<PullStepStatus>>,
    task: JoinHandle<()>,
}

/// The running pull steps of every service.
#[derive(Clone)]
pub(crate) struct Pullers {
    engine: Engine,
    services: Arc<Mutex<BTreeMap<String, Vec<Puller>>>>,
}

impl Pullers {
    /// No pull steps yet; their calls run through `engine`.
    pub(crate) fn new(engine: Engine) -> Self {
        Pullers {
            engine,
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
            let task = tokio::spawn(pull_loop(
                self.engine.clone(),
                step,
                interval,
                Arc::clone(&status),
            ));
            pullers.push(Puller { status, task });
        }
        if let Some(old) = lock(&self.services).insert(service.to_owned(), pullers) {
            for puller in old {
                puller.task.abort();
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

/// Calls the step every `interval`, in its service's lane (so under the
/// service's concurrency and rate), until the engine stops.
async fn pull_loop(
    engine: Engine,
    step: PullStep,
    interval: Duration,
    status: Arc<Mutex<PullStepStatus>>,
) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let span = info_span!("pull", service = %step.service, step = %step.name);
        let call = step.invoker.pull_records().instrument(span);
        let Some(result) = engine.call(&step.service, call).await else {
            return;
        };
        let mut status = lock(&status);
        status.runs += 1;
        status.last_run_ms = Some(now_ms());
        match result {
            Ok(()) => debug!(service = %step.service, step = %step.name, "pulled"),
            Err(message) => {
                warn!(service = %step.service, step = %step.name, %message, "pull step failed");
                status.failed += 1;
                status.last_error = Some(message);
            }
        }
    }
}
