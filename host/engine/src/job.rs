//! A unit of scheduled work and what running it produced.

use std::sync::Arc;

use syncplane_core::{HistoryRow, Object};
use tracing::{Instrument, debug, info_span, warn};

use crate::calls::CallOutcome;
use crate::clock::Clock;
use crate::history::{Ended, Invocation};
use crate::policy::{ModelPolicy, PolicyEvent};
use crate::runner::{Item, Phase, Runner, Verdict};

/// What the scheduler runs in one slot.
pub(crate) enum Job {
    /// A cohort: objects linked to each other, run one after another.
    Cohort {
        /// Sync or teardown.
        phase: Phase,
        /// The objects, in the order they run.
        items: Vec<Item>,
        /// The steps as they were when the cohort was planned.
        runner: Runner,
    },
    /// The model policies of one object.
    Policy {
        /// The object.
        object: Object,
        /// Its model's policies, in installation order.
        policies: Vec<ModelPolicy>,
        /// When invocations start, for the history.
        clock: Arc<dyn Clock>,
    },
}

impl Job {
    /// The ids of the objects the job holds leases on.
    pub(crate) fn ids(&self) -> Vec<i64> {
        match self {
            Job::Cohort { items, .. } => items.iter().map(|w| w.object.id).collect(),
            Job::Policy { object, .. } => vec![object.id],
        }
    }

    /// Runs the job. `rate` paces the invocations of the job's service.
    pub(crate) async fn run(self, rate: Option<Arc<crate::lane::RateLimiter>>) -> Finished {
        let ids = self.ids();
        match self {
            Job::Cohort {
                phase,
                items,
                runner,
            } => {
                let (verdicts, history) = runner.with_rate(rate).run_cohort(items, phase).await;
                Finished {
                    ids,
                    verdicts,
                    policed: Vec::new(),
                    history,
                }
            }
            Job::Policy {
                object,
                policies,
                clock,
            } => {
                let mut history = Vec::new();
                let outcome =
                    police(&object, &policies, rate.as_deref(), &*clock, &mut history).await;
                Finished {
                    ids,
                    verdicts: Vec::new(),
                    policed: vec![(object, outcome)],
                    history,
                }
            }
        }
    }
}

/// Runs `policies` on `object` in order; the first that does not finish
/// (deferred or failed) decides, and the later ones do not run.
async fn police(
    object: &Object,
    policies: &[ModelPolicy],
    rate: Option<&crate::lane::RateLimiter>,
    clock: &dyn Clock,
    history: &mut Vec<HistoryRow>,
) -> CallOutcome {
    let event = PolicyEvent::of(object);
    for policy in policies {
        if let Some(rate) = rate {
            rate.until_ready().await;
        }
        let span = info_span!(
            "policy",
            service = %policy.service,
            policy = %policy.name,
            event = event.name(),
            model = %object.model,
            object.id = object.id,
        );
        let invocation = Invocation {
            object,
            service: &policy.service,
            step: &policy.name,
            kind: "policy",
        };
        let call = policy.invoker.handle(object, event).instrument(span);
        let (outcome, row) = invocation.run(clock, call, Ended::of_call).await;
        history.push(row);
        match outcome {
            CallOutcome::Done => {}
            CallOutcome::Deferred(message) => {
                debug!(service = %policy.service, policy = %policy.name, object.id = object.id, %message, "model policy deferred");
                return CallOutcome::Deferred(message);
            }
            CallOutcome::Failed(message) => {
                warn!(service = %policy.service, policy = %policy.name, object.id = object.id, %message, "model policy failed");
                return CallOutcome::Failed(message);
            }
        }
    }
    debug!(object.id = object.id, event = event.name(), "policed");
    CallOutcome::Done
}

/// What a job produced, waiting to be committed.
#[derive(Debug, Default)]
pub(crate) struct Finished {
    /// The leases to release once committed.
    pub ids: Vec<i64>,
    /// Sync and teardown outcomes.
    pub verdicts: Vec<(Object, Verdict)>,
    /// Policy outcomes.
    pub policed: Vec<(Object, CallOutcome)>,
    /// What each invocation did, for the history.
    pub history: Vec<HistoryRow>,
}

impl Finished {
    /// Objects whose outcome this holds.
    pub(crate) fn len(&self) -> usize {
        self.verdicts.len() + self.policed.len()
    }
}
