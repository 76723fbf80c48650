//! The in-process event bus and the event steps listening on it.
//!
//! Delivery is at most once: an event published while no step subscribes to
//! its topic, or while a step lags more than [`BUS_CAPACITY`] events behind,
//! is dropped (with a warning for the lagging step).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use syncplane_core::now_secs;
use syncplane_engine::{Engine, Event, EventStep};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tracing::{Instrument, debug, info_span, warn};

use crate::subscription::Subscription;

/// Events buffered for a slow step before it starts losing them.
pub const BUS_CAPACITY: usize = 4096;

/// What one event step has done since the host started.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct EventStepStatus {
    /// The step name.
    pub name: String,
    /// The topics it subscribes to (empty with a pattern).
    pub topics: Vec<String>,
    /// The pattern over topic names it subscribes with, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// Events handled.
    pub events: u64,
    /// Events whose handling failed.
    pub failed: u64,
    /// Events lost because the step lagged behind.
    pub dropped: u64,
    /// The latest failure.
    pub last_error: Option<String>,
}

struct Listener {
    status: Arc<Mutex<EventStepStatus>>,
    subscription: Subscription,
    task: JoinHandle<()>,
    /// Whether it listens on the in-process bus (not a broker).
    in_process: bool,
}

/// Where a service's event steps get their events.
pub(crate) enum EventSource {
    /// The host's in-process bus.
    InProcess,
    /// A Kafka-compatible broker.
    Kafka {
        /// Keeps consumed offsets.
        core: syncplane_core::Core,
        /// `host:port` of a bootstrap broker.
        endpoint: String,
    },
}

/// The bus plus the listening steps of every service.
#[derive(Clone)]
pub(crate) struct EventBus {
    engine: Engine,
    tx: broadcast::Sender<Arc<Event>>,
    listeners: Arc<Mutex<BTreeMap<String, Vec<Listener>>>>,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

impl EventBus {
    /// A bus with no steps listening; their calls run through `engine`.
    pub(crate) fn new(engine: Engine) -> Self {
        EventBus {
            engine,
            tx: broadcast::channel(BUS_CAPACITY).0,
            listeners: Arc::default(),
        }
    }

    /// Publishes an event; returns how many event steps subscribe to its topic.
    pub(crate) fn publish(&self, topic: &str, key: Option<String>, value: String) -> usize {
        let event = Arc::new(Event {
            topic: topic.to_owned(),
            key,
            value,
            timestamp: now_secs(),
        });
        let subscribed = lock(&self.listeners)
            .values()
            .flatten()
            .filter(|l| l.in_process && l.subscription.matches(topic))
            .count();
        // No receiver at all is not an error: the event is simply not wanted.
        let _ = self.tx.send(event);
        subscribed
    }

    /// Replaces the listening steps of `service`.
    pub(crate) fn set_service_steps(
        &self,
        service: &str,
        steps: Vec<(EventStep, Subscription)>,
        source: &EventSource,
    ) {
        let mut listeners = Vec::new();
        for (step, subscription) in steps {
            let status = Arc::new(Mutex::new(EventStepStatus {
                name: step.name.clone(),
                topics: subscription.topics().to_vec(),
                pattern: subscription.pattern_text(),
                ..EventStepStatus::default()
            }));
            let task = match source {
                EventSource::InProcess => {
                    let rx = self.tx.subscribe();
                    let engine = self.engine.clone();
                    tokio::spawn(listen(
                        engine,
                        step,
                        subscription.clone(),
                        rx,
                        Arc::clone(&status),
                    ))
                }
                EventSource::Kafka { core, endpoint } => tokio::spawn(crate::kafka::consume(
                    self.engine.clone(),
                    core.clone(),
                    endpoint.clone(),
                    step,
                    subscription.clone(),
                    Arc::clone(&status),
                )),
            };
            listeners.push(Listener {
                status,
                subscription,
                task,
                in_process: matches!(source, EventSource::InProcess),
            });
        }
        if let Some(old) = lock(&self.listeners).insert(service.to_owned(), listeners) {
            for listener in old {
                listener.task.abort();
            }
        }
    }

    /// The event steps of `service`.
    pub(crate) fn status(&self, service: &str) -> Vec<EventStepStatus> {
        lock(&self.listeners)
            .get(service)
            .map(|ls| ls.iter().map(|l| lock(&l.status).clone()).collect())
            .unwrap_or_default()
    }
}

async fn listen(
    engine: Engine,
    step: EventStep,
    subscription: Subscription,
    mut rx: broadcast::Receiver<Arc<Event>>,
    status: Arc<Mutex<EventStepStatus>>,
) {
    loop {
        let event = match rx.recv().await {
            Ok(event) => event,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                warn!(
                    service = %step.service,
                    step = %step.name,
                    dropped = n,
                    "event step lagged behind; events dropped"
                );
                lock(&status).dropped += n;
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        if !subscription.matches(&event.topic) {
            continue;
        }
        if !handle(&engine, &step, &event, &status).await {
            return;
        }
    }
}

/// Runs the step on one event, in its service's lane (so under the
/// service's concurrency and rate), and counts the outcome. `false` when
/// the engine stopped and the event was not handled.
pub(crate) async fn handle(
    engine: &Engine,
    step: &EventStep,
    event: &Event,
    status: &Mutex<EventStepStatus>,
) -> bool {
    let span = info_span!("event", service = %step.service, step = %step.name, topic = %event.topic, key = ?event.key);
    let call = step.invoker.process_event(event).instrument(span);
    let Some(result) = engine.call(&step.service, call).await else {
        return false;
    };
    let mut status = lock(status);
    status.events += 1;
    match result {
        Ok(()) => {
            debug!(service = %step.service, step = %step.name, topic = %event.topic, "event handled")
        }
        Err(message) => {
            warn!(service = %step.service, step = %step.name, topic = %event.topic, %message, "event step failed");
            status.failed += 1;
            status.last_error = Some(message);
        }
    }
    true
}
