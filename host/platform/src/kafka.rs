//! Event steps fed from a Kafka-compatible broker.
//!
//! Each step reads every partition of each of its topics (those it lists,
//! or every topic matching its pattern, looked for again every second) from the offset
//! after the last event it handled, which the host keeps in its database:
//! delivery is at least once across restarts (an event handled just before
//! a crash may be handled again), and events published while the host was
//! down are not lost.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt as _;
use rskafka::client::ClientBuilder;
use rskafka::client::consumer::{StartOffset, StreamConsumerBuilder};
use rskafka::client::partition::UnknownTopicHandling;
use syncplane_core::Core;
use syncplane_engine::{Engine, Event, EventStep};
use tokio::task::JoinSet;
use tracing::{info, warn};

use crate::events::{EventStepStatus, handle, lock};
use crate::subscription::Subscription;

/// Where consumed offsets are kept (`Core::put_record`).
const OFFSETS: &str = "kafka-offsets";
/// Pause before reconnecting or looking for a topic again.
const RETRY: Duration = Duration::from_secs(1);

/// Consumes the topics `subscription` names or matches from the broker at
/// `endpoint` for `step`, forever.
pub(crate) async fn consume(
    engine: Engine,
    core: Core,
    endpoint: String,
    step: EventStep,
    subscription: Subscription,
    status: Arc<Mutex<EventStepStatus>>,
) {
    // Hosts sharing a store consume each step's topics one at a time, so
    // each event is handled once across them (offsets are in the store).
    let key = format!("event {} {}", step.service, step.name);
    crate::singleton::while_holding(&engine, &key, || async {
        loop {
            match consume_once(&engine, &core, &endpoint, &step, &subscription, &status).await {
                Ok(()) => return,
                Err(message) => {
                    warn!(service = %step.service, step = %step.name, %endpoint, %message, "kafka consumer failed; reconnecting");
                    lock(&status).last_error = Some(format!("kafka: {message}"));
                    tokio::time::sleep(RETRY).await;
                }
            }
        }
    })
    .await;
}

async fn consume_once(
    engine: &Engine,
    core: &Core,
    endpoint: &str,
    step: &EventStep,
    subscription: &Subscription,
    status: &Arc<Mutex<EventStepStatus>>,
) -> Result<(), String> {
    let client = ClientBuilder::new(vec![endpoint.to_owned()])
        .build()
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    let mut partitions = JoinSet::new();
    let mut reading: HashSet<String> = HashSet::new();
    loop {
        // Topics may be created after the service is installed: listed
        // ones until all are found, matching ones for as long as it runs.
        let all_listed = matches!(subscription, Subscription::Topics(topics) if topics.iter().all(|t| reading.contains(t)));
        if !all_listed {
            let listed = client
                .list_topics()
                .await
                .map_err(|e| format!("cannot list topics: {e}"))?;
            for topic in listed {
                if reading.contains(&topic.name) || !subscription.matches(&topic.name) {
                    continue;
                }
                for partition in topic.partitions {
                    let client = client
                        .partition_client(
                            topic.name.clone(),
                            partition,
                            UnknownTopicHandling::Retry,
                        )
                        .await
                        .map_err(|e| format!("topic {} partition {partition}: {e}", topic.name))?;
                    partitions.spawn(read_partition(
                        engine.clone(),
                        core.clone(),
                        step.clone(),
                        topic.name.clone(),
                        partition,
                        Arc::new(client),
                        Arc::clone(status),
                    ));
                }
                info!(
                    service = %step.service,
                    step = %step.name,
                    endpoint,
                    topic = %topic.name,
                    "consuming from kafka"
                );
                reading.insert(topic.name);
            }
        }
        let next_look = if all_listed {
            Duration::from_secs(3600)
        } else {
            RETRY
        };
        tokio::select! {
            _ = tokio::time::sleep(next_look) => {}
            done = partitions.join_next(), if !partitions.is_empty() => match done {
                Some(Ok(Ok(()))) | None => {}
                Some(Ok(Err(e))) => return Err(e),
                Some(Err(e)) => return Err(format!("partition reader crashed: {e}")),
            },
        }
    }
}

async fn read_partition(
    engine: Engine,
    core: Core,
    step: EventStep,
    topic: String,
    partition: i32,
    client: Arc<rskafka::client::partition::PartitionClient>,
    status: Arc<Mutex<EventStepStatus>>,
) -> Result<(), String> {
    let key = format!("{}/{}/{topic}/{partition}", step.service, step.name);
    let stored = core
        .records(OFFSETS)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .find(|(k, _)| *k == key)
        .and_then(|(_, v)| v.parse::<i64>().ok());
    let start = stored.map_or(StartOffset::Earliest, StartOffset::At);
    let mut stream = StreamConsumerBuilder::new(client, start)
        .with_max_wait_ms(200)
        .build();
    while let Some(next) = stream.next().await {
        let (record, _high_watermark) = next.map_err(|e| format!("{topic}/{partition}: {e}"))?;
        let text = |bytes: Option<Vec<u8>>| bytes.map(|b| String::from_utf8_lossy(&b).into_owned());
        let event = Event {
            topic: topic.clone(),
            key: text(record.record.key),
            value: text(record.record.value).unwrap_or_default(),
            timestamp: record.record.timestamp.timestamp_millis() as f64 / 1000.0,
        };
        if !handle(&engine, &step, &event, &status).await {
            // The engine stopped: the offset stays, the event comes again.
            return Ok(());
        }
        core.put_record(OFFSETS, &key, &(record.offset + 1).to_string())
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}
