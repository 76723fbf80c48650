//! What the engine has done: counters for `syncplane status` and Prometheus.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use serde::Serialize;
use syncplane_core::now_ms;

use crate::outcome::{Outcome, SyncStep};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StepLabels {
    service: String,
    step: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TrapLabels {
    service: String,
    step: String,
    cause: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeniedLabels {
    service: String,
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    service: String,
    step: String,
    outcome: &'static str,
}

type HistogramFamily = Family<StepLabels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 50 µs .. ~27 s.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 20))
}

/// What one step has done since the host started.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StepActivity {
    /// The service the step belongs to.
    pub service: String,
    /// The step name.
    pub step: String,
    /// Invocations finished.
    pub invocations: u64,
    /// Invocations that succeeded.
    pub done: u64,
    /// Invocations whose step reported a failure.
    pub failed: u64,
    /// Invocations the host stopped (crash, deadline, memory, output
    /// limit, unhandled denial, host error).
    pub trapped: u64,
    /// Traps by cause (`deadline`, `crash`, ...).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub traps: BTreeMap<String, u64>,
    /// Invocations that asked to be retried later.
    pub deferred: u64,
    /// Invocations running now.
    pub running: u64,
    /// The message of the latest failure or trap.
    pub last_error: Option<String>,
    /// When the latest failure happened, milliseconds since the epoch.
    pub last_error_at_ms: Option<i64>,
}

/// The engine's counters and metrics. Shared by the engine's workers and
/// read by the API.
pub struct Stats {
    registry: Registry,
    invocations: Family<OutcomeLabels, Counter>,
    traps: Family<TrapLabels, Counter>,
    denied: Family<DeniedLabels, Counter>,
    latency: HistogramFamily,
    running: Family<StepLabels, Gauge>,
    queue_depth: Gauge,
    passes: Counter,
    steps: Mutex<BTreeMap<(String, String), StepActivity>>,
    load: Load,
}

/// Invocations finished and running, across all steps.
#[derive(Default)]
struct Load {
    finished: AtomicU64,
    running: AtomicI64,
}

impl std::fmt::Debug for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stats").finish_non_exhaustive()
    }
}

impl Default for Stats {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("syncplane");
        let invocations = Family::<OutcomeLabels, Counter>::default();
        let traps = Family::<TrapLabels, Counter>::default();
        let denied = Family::<DeniedLabels, Counter>::default();
        let latency = HistogramFamily::new_with_constructor(latency_histogram as fn() -> Histogram);
        let running = Family::<StepLabels, Gauge>::default();
        let queue_depth = Gauge::default();
        let passes = Counter::default();
        registry.register(
            "step_invocations",
            "Step invocations finished, by outcome (done, deferred, failed, trapped)",
            invocations.clone(),
        );
        registry.register(
            "step_traps",
            "Step invocations the host stopped, by cause (crash, deadline, memory, output-limit, denied, host-error, storage-unavailable)",
            traps.clone(),
        );
        registry.register(
            "capability_denied",
            "Guest accesses the host refused, by service and kind (outbound_http, model_read, model_write, config, secret)",
            denied.clone(),
        );
        registry.register(
            "step_duration_seconds",
            "Time one step invocation took, including instantiation",
            latency.clone(),
        );
        registry.register(
            "step_running",
            "Step invocations running now",
            running.clone(),
        );
        registry.register(
            "queue_depth",
            "Objects found pending or deleted by the latest engine pass",
            queue_depth.clone(),
        );
        registry.register("engine_passes", "Engine passes run", passes.clone());
        Stats {
            registry,
            invocations,
            traps,
            denied,
            latency,
            running,
            queue_depth,
            passes,
            steps: Mutex::default(),
            load: Load::default(),
        }
    }
}

impl Stats {
    /// Notes that `step` starts running; call [`Running::finish`] after.
    pub(crate) fn start<'a>(&'a self, step: &SyncStep) -> Running<'a> {
        let labels = StepLabels {
            service: step.service.clone(),
            step: step.name.clone(),
        };
        self.running.get_or_create(&labels).inc();
        self.load.running.fetch_add(1, Ordering::Relaxed);
        self.with_activity(&labels, |a| a.running += 1);
        Running {
            stats: self,
            labels,
        }
    }

    /// Counts a guest access the host refused; `kind` names the capability
    /// (`outbound_http`, `model_read`, `model_write`, `config`, `secret`).
    pub fn capability_denied(&self, service: &str, kind: &'static str) {
        self.denied
            .get_or_create(&DeniedLabels {
                service: service.to_owned(),
                kind,
            })
            .inc();
    }

    /// The step invocations finished since the engine started, and those
    /// running now.
    pub fn load(&self) -> (u64, i64) {
        (
            self.load.finished.load(Ordering::Relaxed),
            self.load.running.load(Ordering::Relaxed),
        )
    }

    pub(crate) fn pass(&self, queue_depth: usize) {
        self.passes.inc();
        self.queue_depth.set(queue_depth as i64);
    }

    fn with_activity(&self, labels: &StepLabels, f: impl FnOnce(&mut StepActivity)) {
        let mut steps = match self.steps.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        let activity = steps
            .entry((labels.service.clone(), labels.step.clone()))
            .or_insert_with(|| StepActivity {
                service: labels.service.clone(),
                step: labels.step.clone(),
                ..StepActivity::default()
            });
        f(activity);
    }

    /// Every step's activity, by service then step.
    pub fn activity(&self) -> Vec<StepActivity> {
        match self.steps.lock() {
            Ok(s) => s.values().cloned().collect(),
            Err(poisoned) => poisoned.into_inner().values().cloned().collect(),
        }
    }

    /// The metrics in the Prometheus text exposition format.
    pub fn prometheus_text(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// A step invocation in progress.
pub(crate) struct Running<'a> {
    stats: &'a Stats,
    labels: StepLabels,
}

impl Running<'_> {
    pub(crate) fn finish(self, outcome: &Outcome, elapsed: Duration) {
        let stats = self.stats;
        stats.running.get_or_create(&self.labels).dec();
        stats.load.running.fetch_sub(1, Ordering::Relaxed);
        stats.load.finished.fetch_add(1, Ordering::Relaxed);
        stats
            .latency
            .get_or_create(&self.labels)
            .observe(elapsed.as_secs_f64());
        stats
            .invocations
            .get_or_create(&OutcomeLabels {
                service: self.labels.service.clone(),
                step: self.labels.step.clone(),
                outcome: outcome.name(),
            })
            .inc();
        stats.with_activity(&self.labels, |a| {
            a.running = a.running.saturating_sub(1);
            a.invocations += 1;
            match outcome {
                Outcome::Done => a.done += 1,
                Outcome::Deferred(_) => a.deferred += 1,
                Outcome::Failed(message) => {
                    a.failed += 1;
                    a.last_error = Some(message.clone());
                    a.last_error_at_ms = Some(now_ms());
                }
                Outcome::Trapped(trap) => {
                    a.trapped += 1;
                    *a.traps.entry(trap.cause.name().to_owned()).or_default() += 1;
                    a.last_error = Some(trap.to_string());
                    a.last_error_at_ms = Some(now_ms());
                }
            }
        });
        if let Outcome::Trapped(trap) = outcome {
            stats
                .traps
                .get_or_create(&TrapLabels {
                    service: self.labels.service.clone(),
                    step: self.labels.step.clone(),
                    cause: trap.cause.name(),
                })
                .inc();
        }
    }
}
