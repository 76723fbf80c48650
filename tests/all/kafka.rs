//! Event steps fed by a real Kafka-compatible broker (`tansu`), started by
//! the test on localhost; offsets survive a server restart.
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

async fn produce(endpoint: &str, topic: &str, key: &str, value: &str) {
    let client = ClientBuilder::new(vec![endpoint.to_owned()])
        .build()
        .await
        .expect("connect");
    let partition = client
        .partition_client(topic.to_owned(), 0, UnknownTopicHandling::Retry)
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

#[tokio::test(flavor = "multi_thread")]
async fn event_steps_consume_a_real_kafka_broker_and_resume_after_a_restart() {
    let Some(tansu) = tansu_binary() else {
        panic!(
            "this test needs tansu, a Kafka-compatible broker, and it is not installed \
             (looked on PATH and in ~/.cargo/bin): install it with \
             `cargo install tansu --locked --features dynostore` (15-25 minutes on 2 cores)"
        );
    };
    let data = tempfile::tempdir().expect("tempdir");
    let broker = start_broker(&tansu, &data.path().join("tansu.log"));
    let client = ClientBuilder::new(vec![broker.endpoint.clone()])
        .build()
        .await
        .expect("connect");
    client
        .controller_client()
        .expect("controller")
        .create_topic("regions", 1, 1, 5_000)
        .await
        .expect("create topic");

    let service = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(service.path().join("models")).expect("dir");
    std::fs::copy(
        repo().join("tests/guests/models/chain.xproto"),
        service.path().join("models/chain.xproto"),
    )
    .expect("xproto");
    let manifest = format!(
        "manifest_version = 1\n[service]\nname = \"chain\"\nversion = \"0.1.0\"\nxproto = [\"models/chain.xproto\"]\n\n\
         [event_bus]\nkind = \"kafka\"\nendpoint = \"{}\"\n\n\
         [[sync_steps]]\nname = \"chain_step\"\ncomponent = {:?}\nobserves = [\"ChainRegion\", \"ChainZone\", \"ChainRack\"]\n\n\
         [[event_steps]]\nname = \"event_regions\"\ncomponent = {:?}\ntopics = [\"regions\"]\n",
        broker.endpoint,
        test_guest("chain_step").display().to_string(),
        test_guest("event_regions").display().to_string(),
    );
    crate::util::write_manifest(service.path(), &manifest);

    let server = Server::start(&data.path().join("server"));
    assert_success(&server.cli(&[
        "service",
        "install",
        service.path().to_str().expect("utf-8"),
    ]));
    produce(&broker.endpoint, "regions", "kafka-north", "hello").await;
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
    produce(&broker.endpoint, "regions", "kafka-south", "hello").await;
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
