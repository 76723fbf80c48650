//! Event steps fed by a real Kafka-compatible broker (`tansu`), started by
//! the test on localhost; offsets survive a server restart, and two hosts
//! on one PostgreSQL store split a topic's partitions, handling each event
//! once, the survivor taking the partitions of a host that dies.
//!
//! `tansu` installs with `cargo install tansu --locked --features dynostore`
//! (`.ci/run` does it when missing). Without it this test fails, saying how
//! to install it; it never skips.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rskafka::client::ClientBuilder;
use rskafka::client::partition::{Compression, UnknownTopicHandling};
use rskafka::record::Record;
use syncplane_test_artifacts::test_guest;

use crate::isolation::logged;
use crate::util::{Server, assert_success, repo};

const LIMIT: Duration = Duration::from_secs(60);

fn tansu_binary() -> Option<PathBuf> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let candidates = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("tansu"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
        .into_iter()
        .chain(home.map(|h| h.join(".cargo/bin/tansu")));
    candidates.into_iter().find(|p| p.is_file())
}

/// The broker process; killed on drop.
struct Broker {
    child: Child,
    endpoint: String,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_broker(tansu: &PathBuf, log: &std::path::Path) -> Broker {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let url = format!("tcp://127.0.0.1:{port}");
    let child = Command::new(tansu)
        .args([
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &url,
        ])
        .args(["--storage-engine", "memory://tansu/"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("broker log"))
        .spawn()
        .expect("start tansu");
    let endpoint = format!("127.0.0.1:{port}");
    let started = Instant::now();
    while std::net::TcpStream::connect(&endpoint).is_err() {
        assert!(
            started.elapsed() < LIMIT,
            "tansu did not listen on {endpoint}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Broker { child, endpoint }
}

async fn produce(endpoint: &str, topic: &str, partition: i32, key: &str, value: &str) {
    let client = ClientBuilder::new(vec![endpoint.to_owned()])
        .build()
        .await
        .expect("connect");
    let partition = client
        .partition_client(topic.to_owned(), partition, UnknownTopicHandling::Retry)
        .await
        .expect("partition");
    let record = Record {
        key: Some(key.as_bytes().to_vec()),
        value: Some(value.as_bytes().to_vec()),
        headers: Default::default(),
        timestamp: chrono::Utc::now(),
    };
    partition
        .produce(vec![record], Compression::NoCompression)
        .await
        .expect("produce");
}

async fn region_names(server: &Server) -> Vec<String> {
    let regions = server.get("/xosapi/v1/chain/chainregions").await;
    regions["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|r| r["name"].as_str().map(str::to_owned))
        .collect()
}

async fn wait_for_region(server: &Server, name: &str) {
    let started = Instant::now();
    while !region_names(server).await.iter().any(|n| n == name) {
        assert!(
            started.elapsed() < LIMIT,
            "region {name} never appeared:\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The broker binary, or a panic saying how to install it.
fn need_tansu() -> PathBuf {
    tansu_binary().unwrap_or_else(|| {
        panic!(
            "this test needs tansu, a Kafka-compatible broker, and it is not installed \
             (looked on PATH and in ~/.cargo/bin): install it with \
             `cargo install tansu --locked --features dynostore` (15-25 minutes on 2 cores)"
        )
    })
}

/// A broker logging into `dir`, with topic `regions` of `partitions`.
async fn broker_with_regions(dir: &std::path::Path, partitions: i32) -> Broker {
    let broker = start_broker(&need_tansu(), &dir.join("tansu.log"));
    let client = ClientBuilder::new(vec![broker.endpoint.clone()])
        .build()
        .await
        .expect("connect");
    client
        .controller_client()
        .expect("controller")
        .create_topic("regions", partitions, 1, 5_000)
        .await
        .expect("create topic");
    broker
}

/// The `chain` test service, whose event step creates a region per event
/// on topic `regions` of the broker at `endpoint`.
fn chain_service(endpoint: &str) -> tempfile::TempDir {
    let service = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(service.path().join("models")).expect("dir");
    std::fs::copy(
        repo().join("tests/guests/models/chain.xproto"),
        service.path().join("models/chain.xproto"),
    )
    .expect("xproto");
    let manifest = format!(
        "manifest_version = 1\n[service]\nname = \"chain\"\nversion = \"0.1.0\"\nxproto = [\"models/chain.xproto\"]\n\n\
         [event_bus]\nkind = \"kafka\"\nendpoint = \"{endpoint}\"\n\n\
         [[sync_steps]]\nname = \"chain_step\"\ncomponent = {:?}\nobserves = [\"ChainRegion\", \"ChainZone\", \"ChainRack\"]\n\n\
         [[event_steps]]\nname = \"event_regions\"\ncomponent = {:?}\ntopics = [\"regions\"]\n",
        test_guest("chain_step").display().to_string(),
        test_guest("event_regions").display().to_string(),
    );
    crate::util::write_manifest(service.path(), &manifest);
    service
}

#[tokio::test(flavor = "multi_thread")]
async fn event_steps_consume_a_real_kafka_broker_and_resume_after_a_restart() {
    let data = tempfile::tempdir().expect("tempdir");
    let broker = broker_with_regions(data.path(), 1).await;
    let service = chain_service(&broker.endpoint);

    let server = Server::start(&data.path().join("server"));
    assert_success(&server.cli(&[
        "service",
        "install",
        service.path().to_str().expect("utf-8"),
    ]));
    produce(&broker.endpoint, "regions", 0, "kafka-north", "hello").await;
    wait_for_region(&server, "kafka-north").await;
    // The log is written off the request path: wait for the line before
    // the kill, or it may be lost with the process.
    let started = Instant::now();
    while !server.log().contains("event created region kafka-north") {
        assert!(started.elapsed() < LIMIT, "{}", server.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Events published while the server is down are consumed after the
    // restart, from the stored offset: nothing lost, nothing handled twice.
    server.kill();
    produce(&broker.endpoint, "regions", 0, "kafka-south", "hello").await;
    let server = Server::start(&data.path().join("server"));
    wait_for_region(&server, "kafka-south").await;
    let names = region_names(&server).await;
    assert_eq!(
        names.iter().filter(|n| *n == "kafka-north").count(),
        1,
        "{names:?}"
    );
    let log = server.log();
    assert_eq!(
        log.matches("event created region kafka-north").count(),
        1,
        "{log}"
    );
    let status = server.get("/syncplane/v1/status").await;
    let step = &status["services"][0]["event_steps"][0];
    assert_eq!(step["failed"], 0, "{status}");
}

/// The names of `names` whose region was not created exactly once,
/// across the logs `logs`.
fn not_created_once(logs: &[&str], names: &[String]) -> Vec<(String, usize)> {
    names
        .iter()
        .map(|name| {
            let line = format!("event created region {name} as ");
            let times = logs.iter().map(|log| log.matches(&line).count()).sum();
            (name.clone(), times)
        })
        .filter(|(_, times)| *times != 1)
        .collect()
}

/// How many events the host's event step handled (each delivery counts:
/// one handled twice counts twice).
async fn events_handled(server: &Server) -> u64 {
    let status = server.get("/syncplane/v1/status").await;
    status["services"][0]["event_steps"][0]["events"]
        .as_u64()
        .unwrap_or_else(|| panic!("no event step in {status}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hosts_split_a_topics_partitions_and_handle_each_event_once_even_when_one_dies() {
    let data = tempfile::tempdir().expect("tempdir");
    let broker = broker_with_regions(data.path(), 4).await;
    let service = chain_service(&broker.endpoint);
    let (_postgres, url, [data_a, data_b]) = crate::multihost::shared_store();
    let a = crate::multihost::host(&data_a, &url, "3s", "100");
    assert_success(&a.cli(&[
        "service",
        "install",
        service.path().to_str().expect("utf-8"),
    ]));
    logged(&a, "consuming from kafka", 4).await;

    // A second host takes half of the partitions from the first.
    let b = crate::multihost::host(&data_b, &url, "3s", "100");
    logged(&b, "consuming from kafka", 2).await;
    logged(&a, "another host reads this partition now", 2).await;

    let first: Vec<String> = (0..40).map(|i| format!("shared-{i:02}")).collect();
    for (i, name) in first.iter().enumerate() {
        produce(&broker.endpoint, "regions", i as i32 % 4, name, "hello").await;
    }
    for name in &first {
        logged_anywhere(&[&a, &b], &format!("event created region {name} as ")).await;
    }
    // Each offset is stored just after its event is counted.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (log_a, log_b) = (a.log(), b.log());
    assert_eq!(
        not_created_once(&[&log_a, &log_b], &first),
        [],
        "--- a:\n{log_a}\n--- b:\n{log_b}"
    );
    let (on_a, on_b) = (events_handled(&a).await, events_handled(&b).await);
    assert_eq!(
        (on_a, on_b),
        (20, 20),
        "each host handles its two partitions' events, each once\n--- a:\n{log_a}\n--- b:\n{log_b}"
    );

    // The first host dies: the second reads every partition once its
    // leases end, from the offsets stored, losing nothing.
    a.kill();
    let second: Vec<String> = (0..20).map(|i| format!("after-{i:02}")).collect();
    for (i, name) in second.iter().enumerate() {
        produce(&broker.endpoint, "regions", i as i32 % 4, name, "hello").await;
    }
    logged(&b, "consuming from kafka", 4).await;
    for name in &second {
        logged(&b, &format!("event created region {name} as "), 1).await;
    }
    let log_b = b.log();
    assert_eq!(
        not_created_once(&[&log_a, &log_b], &second),
        [],
        "--- b:\n{log_b}"
    );
    // Nothing the first host handled is handled again.
    assert_eq!(events_handled(&b).await, on_b + 20, "--- b:\n{log_b}");
    let names = region_names(&b).await;
    assert_eq!(names.len(), 60, "{names:?}");
}

/// Waits until one of `servers` logged `line`.
async fn logged_anywhere(servers: &[&Server], line: &str) {
    let started = Instant::now();
    while !servers.iter().any(|s| s.log().contains(line)) {
        assert!(
            started.elapsed() < LIMIT,
            "`{line}` never logged:\n{}",
            servers
                .iter()
                .map(|s| s.log())
                .collect::<Vec<_>>()
                .join("\n---\n")
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
