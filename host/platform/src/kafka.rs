//! Event steps fed from a Kafka-compatible broker.
//!
//! Each step reads every partition of each of its topics (those it lists,
//! or every topic matching its pattern, looked for again every second) from the offset
//! after the last event it handled, which the host keeps in its database:
//! delivery is at least once across restarts (an event handled just before
//! a crash may be handled again), and events published while the host was
//! down are not lost.
//!
//! Hosts sharing a store split a step's partitions as the members of a
//! Kafka consumer group do: each partition is read by one host at a time,
//! under a lease in the store ([`Engine::holds`]), and each host reads at
//! most its share (the partitions divided by the live hosts, rounded up).
//! A host holding more than its share (one joined) gives the rest up; a
//! host that dies stops renewing, and the others take its partitions when
//! its leases end, from the offsets it stored.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt as _;
use rskafka::client::consumer::{StartOffset, StreamConsumerBuilder};
use rskafka::client::partition::UnknownTopicHandling;
use rskafka::client::{Client, ClientBuilder};
use syncplane_core::Core;
use syncplane_engine::{Engine, Event, EventStep};
use tokio::task::AbortHandle;
use tokio::task::JoinSet;
use tracing::{info, warn};

use crate::events::{EventStepStatus, handle, lock};
use crate::subscription::Subscription;

/// Where consumed offsets are kept (`Core::put_record`).
const OFFSETS: &str = "kafka-offsets";
/// Pause before reconnecting or looking for a topic again.
const RETRY: Duration = Duration::from_secs(1);

/// A partition of a topic.
type Partition = (String, i32);

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
    let mut consumer = Consumer {
        engine,
        core,
        step,
        status,
        reading: HashMap::new(),
        tasks: JoinSet::new(),
    };
    loop {
        let result = consumer.run(&endpoint, &subscription).await;
        consumer.stop_all().await;
        match result {
            Ok(()) => return,
            Err(message) => {
                warn!(service = %consumer.step.service, step = %consumer.step.name, %endpoint, %message, "kafka consumer failed; reconnecting");
                lock(&consumer.status).last_error = Some(format!("kafka: {message}"));
                tokio::time::sleep(RETRY).await;
            }
        }
    }
}

/// One step's readers of the partitions this host holds.
struct Consumer {
    engine: Engine,
    core: Core,
    step: EventStep,
    status: Arc<Mutex<EventStepStatus>>,
    /// The partitions read here, and how to stop each reader.
    reading: HashMap<Partition, AbortHandle>,
    tasks: JoinSet<Result<(), String>>,
}

impl Consumer {
    /// Reads the partitions this host holds until the engine stops (`Ok`)
    /// or the broker fails (`Err`).
    async fn run(&mut self, endpoint: &str, subscription: &Subscription) -> Result<(), String> {
        let client = ClientBuilder::new(vec![endpoint.to_owned()])
            .build()
            .await
            .map_err(|e| format!("cannot connect: {e}"))?;
        let mut known: BTreeSet<Partition> = BTreeSet::new();
        let mut found: BTreeSet<String> = BTreeSet::new();
        loop {
            // Topics may be created after the service is installed: listed
            // ones until all are found, matching ones for as long as it runs.
            let all_listed = matches!(subscription, Subscription::Topics(topics) if topics.iter().all(|t| found.contains(t)));
            if !all_listed {
                let listed = client
                    .list_topics()
                    .await
                    .map_err(|e| format!("cannot list topics: {e}"))?;
                for topic in listed {
                    if subscription.matches(&topic.name) && found.insert(topic.name.clone()) {
                        known.extend(topic.partitions.iter().map(|p| (topic.name.clone(), *p)));
                    }
                }
            }
            self.balance(&client, &known).await?;
            // Look again a few times per lease: a share that changed, a
            // lease lost or a host gone is noticed within one period.
            let next_look = self.engine.hold_period().min(RETRY);
            tokio::select! {
                _ = tokio::time::sleep(next_look) => {}
                Some(done) = self.tasks.join_next(), if !self.tasks.is_empty() => match done {
                    // The engine stopped: nothing more to read.
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => return Err(e),
                    Err(e) if e.is_cancelled() => {}
                    Err(e) => return Err(format!("partition reader crashed: {e}")),
                },
            }
        }
    }

    /// Keeps reading the partitions this host still holds, gives up those
    /// beyond its share, and takes free ones up to it.
    async fn balance(
        &mut self,
        client: &Client,
        known: &BTreeSet<Partition>,
    ) -> Result<(), String> {
        let share = self.share(known.len()).await;
        let held: Vec<Partition> = self.reading.keys().cloned().collect();
        for partition in held {
            let keep = self.reading.len() <= share;
            if !keep || !self.engine.holds(&self.lease(&partition)).await {
                self.stop(&partition);
                if !keep {
                    self.engine.let_go(&self.lease(&partition)).await;
                }
                info!(service = %self.step.service, step = %self.step.name, topic = %partition.0, partition = partition.1, "another host reads this partition now");
            }
        }
        for partition in known {
            if self.reading.len() >= share {
                break;
            }
            if self.reading.contains_key(partition)
                || !self.engine.holds(&self.lease(partition)).await
            {
                continue;
            }
            let (topic, number) = partition.clone();
            let partition_client = client
                .partition_client(topic.clone(), number, UnknownTopicHandling::Retry)
                .await
                .map_err(|e| format!("topic {topic} partition {number}: {e}"))?;
            let reader = self.tasks.spawn(read_partition(
                self.engine.clone(),
                self.core.clone(),
                self.step.clone(),
                topic.clone(),
                number,
                Arc::new(partition_client),
                Arc::clone(&self.status),
            ));
            info!(service = %self.step.service, step = %self.step.name, topic = %topic, partition = number, "consuming from kafka");
            self.reading.insert(partition.clone(), reader);
        }
        Ok(())
    }

    /// How many of `partitions` this host reads: all on a store of its
    /// own, its share of the live hosts' otherwise.
    async fn share(&self, partitions: usize) -> usize {
        if !self.core.store_is_shared() {
            return partitions;
        }
        let now = self.engine.clock().now_ms();
        let live = match self.core.hosts().await {
            Ok(hosts) => hosts.iter().filter(|h| h.until_ms > now).count(),
            // Unknown: keep what is read, as if alone.
            Err(_) => 1,
        };
        partitions.div_ceil(live.max(1))
    }

    /// The lease of a partition's reader.
    fn lease(&self, (topic, partition): &Partition) -> String {
        format!(
            "event {} {} {topic} {partition}",
            self.step.service, self.step.name
        )
    }

    /// Stops reading `partition` here; an event being handled is handled
    /// again by the next reader (its offset is stored after it).
    fn stop(&mut self, partition: &Partition) {
        if let Some(reader) = self.reading.remove(partition) {
            reader.abort();
        }
    }

    /// Stops every reader and gives up their leases.
    async fn stop_all(&mut self) {
        self.tasks.shutdown().await;
        for (partition, _) in std::mem::take(&mut self.reading) {
            self.engine.let_go(&self.lease(&partition)).await;
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
