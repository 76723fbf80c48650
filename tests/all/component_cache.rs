//! The compiled-component cache: written at install, used at restart, and
//! never trusted when an entry is damaged.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::util::{Server, install_hello_world, repo, tutorial_recipe};

const COMPILED: &str = "compiled a component";
const NOT_USABLE: &str = "not usable; compiling it again";
const INSTANCES: &str = "/xosapi/v1/hello-world/helloworldserviceinstances";

/// The cache in the data directory, not the one the tests share.
struct OwnCache(String);

impl OwnCache {
    fn flags(&self) -> Vec<(&str, &str)> {
        vec![("--component-cache-dir", self.0.as_str())]
    }
}

fn own_cache(data: &Path) -> OwnCache {
    OwnCache(
        data.join("cache/components")
            .to_str()
            .expect("utf-8 path")
            .to_owned(),
    )
}

fn entries(data: &Path, ext: &str) -> Vec<PathBuf> {
    let dir = data.join("cache/components");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    found.sort();
    found
}

async fn tutorial_syncs(server: &Server, run: u32) {
    let (status, answer) = server
        .tosca(
            &tutorial_recipe(),
            crate::util::ADMIN,
            crate::util::PASSWORD,
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let instances = server.get(INSTANCES).await;
    let id = instances["items"][0]["id"].as_i64().expect("id");
    let name = format!("run-{run}");
    server
        .put(
            &format!("{INSTANCES}/{id}"),
            serde_json::json!({ "hello_to": name }),
        )
        .await;
    // The step itself says it ran for this change.
    let said = format!("saying hello to {name}");
    let started = std::time::Instant::now();
    while !server.log().contains(&said) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the step did not run for {name}:\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn components_compile_once_and_a_damaged_cache_entry_is_compiled_again() {
    let data = tempfile::tempdir().expect("tempdir");
    let own = own_cache(data.path());
    let server = Server::start_with(data.path(), &own.flags());
    install_hello_world(&server);
    assert_eq!(
        server.log().matches(COMPILED).count(),
        2,
        "{}",
        server.log()
    );
    let code = entries(data.path(), "cwasm");
    assert_eq!(code.len(), 2, "one entry per step: {code:?}");
    assert_eq!(entries(data.path(), "sha256").len(), 2);
    tutorial_syncs(&server, 1).await;
    server.kill();

    // A restart maps both from the cache: nothing is compiled.
    let before = crate::util::read_log(data.path()).len();
    let server = Server::start_with(data.path(), &own.flags());
    tutorial_syncs(&server, 2).await;
    let since = server.log()[before..].to_owned();
    assert_eq!(since.matches(COMPILED).count(), 0, "{since}");
    server.kill();

    // One flipped byte in the middle of the instance step's entry: it is
    // compiled again when the step next has work, and syncs as before.
    let instance_step = repo().join(
        "guests/hello-world/target/wasm32-wasip2/release/sync_hello_world_service_instance.wasm",
    );
    let digest = sha256(&instance_step);
    let entry = code
        .iter()
        .find(|p| p.to_string_lossy().contains(&digest))
        .unwrap_or_else(|| panic!("no entry for {digest} among {code:?}"))
        .clone();
    let mut bytes = std::fs::read(&entry).expect("read entry");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x5a;
    std::fs::write(&entry, &bytes).expect("damage entry");
    let before = crate::util::read_log(data.path()).len();
    let server = Server::start_with(data.path(), &own.flags());
    tutorial_syncs(&server, 3).await;
    let since = server.log()[before..].to_owned();
    assert_eq!(since.matches(NOT_USABLE).count(), 1, "{since}");
    assert_eq!(since.matches(COMPILED).count(), 1, "{since}");
    assert_ne!(
        std::fs::read(&entry).expect("read entry"),
        bytes,
        "the damaged entry was rewritten"
    );
}

fn sha256(path: &Path) -> String {
    let out = std::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("run sha256sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .expect("a digest")
        .to_owned()
}

/// The state `status` reports for hello-world: the service's and each
/// component's.
async fn states(server: &Server) -> (String, Vec<String>) {
    let status = server.get("/syncplane/v1/status").await;
    let service = status["services"]
        .as_array()
        .expect("services")
        .iter()
        .find(|s| s["name"] == "hello-world")
        .expect("hello-world in status")
        .clone();
    let components = service["components"]
        .as_array()
        .expect("components")
        .iter()
        .map(|c| c["state"].as_str().expect("state").to_owned())
        .collect();
    (
        service["state"].as_str().expect("state").to_owned(),
        components,
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn components_load_on_first_work_and_unload_when_idle() {
    let data = tempfile::tempdir().expect("tempdir");
    let own = own_cache(data.path());
    let mut flags = own.flags();
    flags.push(("--guest-idle-unload", "1s"));
    let server = Server::start_with(data.path(), &flags);
    install_hello_world(&server);
    tutorial_syncs(&server, 1).await;
    server.kill();

    // A restart loads nothing.
    let server = Server::start_with(data.path(), &flags);
    assert_eq!(
        states(&server).await,
        (
            "cold".to_owned(),
            vec!["cold".to_owned(), "cold".to_owned()]
        )
    );
    // Work loads what it needs.
    tutorial_syncs(&server, 2).await;
    let (state, components) = states(&server).await;
    assert!(
        state == "warm" || state == "running",
        "{state} {components:?}"
    );
    let metrics = server
        .request(reqwest::Method::GET, "/metrics", None)
        .await
        .1;
    let metrics = metrics.as_str().expect("metrics text");
    assert!(
        metrics.contains("syncplane_guest_instances{service=\"hello-world\",state=\"warm\"}"),
        "{metrics}"
    );
    assert!(metrics.trim_end().ends_with("# EOF"), "{metrics}");
    // Idle for longer than the idle period: unloaded, and counted.
    let started = std::time::Instant::now();
    while states(&server).await.0 != "cold" {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "still loaded: {:?}",
            states(&server).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let metrics = server
        .request(reqwest::Method::GET, "/metrics", None)
        .await
        .1;
    let metrics = metrics.as_str().expect("metrics text").to_owned();
    let unloads = metrics
        .lines()
        .find_map(|l| l.strip_prefix("syncplane_guest_unloads_total "))
        .and_then(|n| n.trim().parse::<u64>().ok())
        .expect("unloads counted");
    assert!(unloads >= 1, "{metrics}");
    // And its next work loads it again.
    tutorial_syncs(&server, 3).await;
}
