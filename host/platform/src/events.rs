//! The in-process event bus and the event steps listening on it.
//!
//! Delivery is at most once: an event published while no step subscribes to
//! its topic, or while a step lags more than [`BUS_CAPACITY`] events behind,
//! is dropped (with a warning for the lagging step). An event whose step
//! was stopped by a busy or unwritable database is handed to the step again
//! (see [`handle`]).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use syncplane_core::now_secs;
use syncplane_engine::{CallOutcome, Engine, Event, EventStep};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::subscription::Subscription;

/// The first wait before an event is handed again to a step that a busy
/// or unwritable database stopped; it doubles up to
/// [`DEFERRED_EVENT_RETRY_MAX`].
pub const DEFERRED_EVENT_RETRY: Duration = Duration::from_millis(250);

/// The longest wait between two deliveries of a deferred event.
pub const DEFERRED_EVENT_RETRY_MAX: Duration = Duration::from_secs(4);

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
    /// Deliveries stopped because the database was busy or could not be
    /// written: not failures; the event was handed to the step again.
    pub deferred: u64,
    /// Events lost because the step lagged behind.
    pub dropped: u64,
    /// The latest failure.
    pub last_error: Option<String>,
}

struct Listener {
    status: Arc<Mutex<EventStepStatus>>,
    subscription: Subscription,
    step: EventStep,
    /// Listens for its events; `None` when the host hands events to its
    /// steps only when asked ([`HostConfig::background_steps`](crate::HostConfig)).
    task: Option<JoinHandle<()>>,
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
    background: bool,
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
    /// Unless `background`, steps do not listen (on the bus or a broker)
    /// and get events only from [`EventBus::deliver`].
    pub(crate) fn new(engine: Engine, background: bool) -> Self {
        EventBus {
            engine,
            background,
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
                _ if !self.background => None,
                EventSource::InProcess => {
                    let rx = self.tx.subscribe();
                    let engine = self.engine.clone();
                    Some(tokio::spawn(listen(
                        engine,
                        step.clone(),
                        subscription.clone(),
                        rx,
                        Arc::clone(&status),
                    )))
                }
                EventSource::Kafka { core, endpoint } => Some(tokio::spawn(crate::kafka::consume(
                    self.engine.clone(),
                    core.clone(),
                    endpoint.clone(),
                    step.clone(),
                    subscription.clone(),
                    Arc::clone(&status),
                ))),
            };
            listeners.push(Listener {
                status,
                subscription,
                step,
                task,
                in_process: matches!(source, EventSource::InProcess),
            });
        }
        if let Some(old) = lock(&self.listeners).insert(service.to_owned(), listeners) {
            for task in old.into_iter().filter_map(|l| l.task) {
                task.abort();
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

impl EventBus {
    /// Hands `event` to the event step `name` of `service` once, now, in
    /// its service's lane, and counts the outcome in its status; a call
    /// stopped by a busy database is not handed again. `None` when there
    /// is no such step or the engine stopped.
    pub(crate) async fn deliver(
        &self,
        service: &str,
        name: &str,
        event: &Event,
    ) -> Option<CallOutcome> {
        let (step, status) = lock(&self.listeners)
            .get(service)?
            .iter()
            .find(|l| l.step.name == name)
            .map(|l| (l.step.clone(), Arc::clone(&l.status)))?;
        let span = info_span!("event", service = %step.service, step = %step.name, topic = %event.topic, key = ?event.key);
        let call = step.invoker.process_event(event).instrument(span);
        let result = self.engine.call(&step.service, call).await?;
        let mut status = lock(&status);
        match &result {
            CallOutcome::Done => status.events += 1,
            CallOutcome::Failed(message) => {
                status.events += 1;
                status.failed += 1;
                status.last_error = Some(message.clone());
            }
            CallOutcome::Deferred(_) => status.deferred += 1,
        }
        Some(result)
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
///
/// # Caveats
///
/// A call stopped because the database was busy or could not be written
/// is not a failure: the same event is handed to the step again after
/// [`DEFERRED_EVENT_RETRY`], doubling up to [`DEFERRED_EVENT_RETRY_MAX`],
/// until it runs to the end or fails. Writes the stopped call made before
/// the database became busy may have been kept, so an event step should
/// be idempotent (find, then create), as sync steps are. Later events wait
/// meanwhile (and the oldest are dropped once [`BUS_CAPACITY`] are
/// waiting).
pub(crate) async fn handle(
    engine: &Engine,
    step: &EventStep,
    event: &Event,
    status: &Mutex<EventStepStatus>,
) -> bool {
    let mut delay = DEFERRED_EVENT_RETRY;
    loop {
        let span = info_span!("event", service = %step.service, step = %step.name, topic = %event.topic, key = ?event.key);
        let call = step.invoker.process_event(event).instrument(span);
        let Some(result) = engine.call(&step.service, call).await else {
            return false;
        };
        let message = match result {
            CallOutcome::Done => {
                lock(status).events += 1;
                debug!(service = %step.service, step = %step.name, topic = %event.topic, "event handled");
                return true;
            }
            CallOutcome::Failed(message) => {
                warn!(service = %step.service, step = %step.name, topic = %event.topic, %message, "event step failed");
                let mut status = lock(status);
                status.events += 1;
                status.failed += 1;
                status.last_error = Some(message);
                return true;
            }
            CallOutcome::Deferred(message) => message,
        };
        lock(status).deferred += 1;
        info!(service = %step.service, step = %step.name, topic = %event.topic, %message, retry_in = ?delay, "event step deferred; the event is handed to it again");
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(DEFERRED_EVENT_RETRY_MAX);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use serde_json::json;
    use syncplane_core::Core;
    use syncplane_engine::{CallFuture, EngineConfig, EventInvoker, PullInvoker};
    use tokio::sync::mpsc;

    use super::*;

    /// A step that creates a `Site` through the core, as a guest's
    /// declarative call does. Its first call meets the database locked by
    /// another connection (as an operator's `sqlite3` in a transaction
    /// would) and answers as the runtime does for a host call that met a
    /// busy store. Each call sends its number when it ends.
    pub(crate) struct BusyOnce {
        pub(crate) core: Core,
        pub(crate) db: std::path::PathBuf,
        pub(crate) calls: AtomicUsize,
        pub(crate) ended: mpsc::UnboundedSender<usize>,
    }

    impl BusyOnce {
        async fn call(&self) -> CallOutcome {
            use sqlx::Connection as _;
            let call = self.calls.fetch_add(1, Ordering::SeqCst);
            let mut lock = None;
            if call == 0 {
                let url = format!("sqlite://{}", self.db.display());
                let mut other = sqlx::SqliteConnection::connect(&url)
                    .await
                    .expect("second connection");
                sqlx::query("BEGIN EXCLUSIVE")
                    .execute(&mut other)
                    .await
                    .expect("lock");
                lock = Some(other);
            }
            let fields =
                json!({ "name": format!("site {call}"), "login_base": format!("s{call}") });
            let serde_json::Value::Object(fields) = fields else {
                unreachable!("an object")
            };
            let written = self.core.create("Site", fields).await;
            drop(lock);
            let _ = self.ended.send(call);
            match written {
                Ok(_) => CallOutcome::Done,
                Err(e) if e.is_storage_unavailable() => CallOutcome::Deferred(format!(
                    "trap (storage-unavailable): the database is unavailable: {e}"
                )),
                Err(e) => CallOutcome::Failed(e.to_string()),
            }
        }
    }

    impl EventInvoker for BusyOnce {
        fn process_event<'a>(&'a self, _event: &'a Event) -> CallFuture<'a> {
            Box::pin(self.call())
        }
    }

    impl PullInvoker for BusyOnce {
        fn pull_records(&self) -> CallFuture<'_> {
            Box::pin(self.call())
        }
    }

    /// A store with the core models, an engine on it, and a [`BusyOnce`].
    pub(crate) async fn busy_once() -> (
        tempfile::TempDir,
        Engine,
        Arc<BusyOnce>,
        mpsc::UnboundedReceiver<usize>,
    ) {
        busy_once_on(Arc::new(syncplane_engine::SystemClock)).await
    }

    /// [`busy_once`] with an engine on `clock`.
    pub(crate) async fn busy_once_on(
        clock: Arc<dyn syncplane_engine::Clock>,
    ) -> (
        tempfile::TempDir,
        Engine,
        Arc<BusyOnce>,
        mpsc::UnboundedReceiver<usize>,
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("db.sqlite");
        let core = Core::open(&db).await.expect("open");
        let engine = Engine::with_clock(core.clone(), EngineConfig::default(), clock);
        let (ended, calls) = mpsc::unbounded_channel();
        let step = Arc::new(BusyOnce {
            core,
            db,
            calls: AtomicUsize::new(0),
            ended,
        });
        (dir, engine, step, calls)
    }

    #[tokio::test]
    async fn an_event_whose_step_met_a_busy_database_is_handed_to_it_again_not_failed() {
        let (_dir, engine, invoker, _calls) = busy_once().await;
        let step = EventStep {
            service: "s".into(),
            name: "e".into(),
            invoker: Arc::clone(&invoker) as Arc<dyn EventInvoker>,
        };
        let event = Event {
            topic: "t".into(),
            key: None,
            value: "v".into(),
            timestamp: now_secs(),
        };
        let status = Mutex::new(EventStepStatus::default());
        assert!(handle(&engine, &step, &event, &status).await);
        let status = lock(&status).clone();
        assert_eq!(
            (status.events, status.deferred, status.failed),
            (1, 1, 0),
            "{status:?}"
        );
        assert_eq!(status.last_error, None);
        assert_eq!(invoker.calls.load(Ordering::SeqCst), 2);
        let sites = invoker.core.list("Site").await.expect("sites");
        let names: Vec<_> = sites.iter().filter_map(|s| s.str_field("name")).collect();
        assert_eq!(names, ["site 1"], "only the second call wrote");
    }
}
