//! Instances kept warm between calls, through the real binary (issue 22,
//! sections 1 and 3; issue 17's throughput rests on it): a service whose
//! manifest sets `reuse_instances` runs its step's calls in one instance
//! (the `counting_step` guest writes how many calls its instance served),
//! a trap or new limits start a fresh one, a service without the switch gets a fresh
//! instance per call; parked instances give their guest memory back to a
//! call that needs it under the cap (least recently used first, no
//! waiting), are released past `--warm-instances-max`, and go when their
//! component is unloaded after its service's idle period (`service limits
//! NAME --idle-unload`).

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;
use syncplane_test_artifacts::test_guest;

use crate::util::{Server, assert_success};

const LIMIT: Duration = Duration::from_secs(60);

/// Writes service `name` to `dir`: model `<Name>Item` with the feedback
/// field `calls`, synced by `counting_step`; `reuse` sets
/// `reuse_instances`.
fn counting_service(dir: &Path, name: &str, reuse: bool) {
    let model = format!("{}Item", name[..1].to_uppercase() + &name[1..]);
    let xproto = format!(
        "option app_label = \"{name}\";\n\nmessage {model} (XOSBase) {{\n    \
         required string name = 1;\n    \
         optional int32 calls = 2 [feedback_state = True];\n}}\n"
    );
    std::fs::create_dir_all(dir.join("models")).expect("package dir");
    std::fs::write(dir.join(format!("models/{name}.xproto")), xproto).expect("xproto");
    let manifest = format!(
        "manifest_version = 1\n\n[service]\nname = \"{name}\"\nversion = \"1.0.0\"\n\
         xproto = [\"models/{name}.xproto\"]\nreuse_instances = {reuse}\n\n\
         [[sync_steps]]\nname = \"count\"\ncomponent = {:?}\nobserves = \"{model}\"\n",
        test_guest("counting_step").display().to_string()
    );
    crate::util::write_manifest(dir, &manifest);
}

fn collection(service: &str) -> String {
    format!("/xosapi/v1/{service}/{service}items")
}

/// Creates an object of `service` named `name`, waits until it is synced
/// and returns how many calls the instance that synced it had served.
async fn calls(server: &Server, service: &str, name: &str) -> i64 {
    let path = server
        .create_path(&collection(service), json!({ "name": name }))
        .await;
    let synced = server
        .wait_for(&path, LIMIT, |o| o["backend_code"] != 0)
        .await;
    assert_eq!(synced["backend_code"], 1, "{synced}");
    synced["calls"].as_i64().expect("calls written")
}

/// Parked instances per service, from `status`.
async fn parked(server: &Server) -> Vec<(String, u64)> {
    let status = server.get("/syncplane/v1/status").await;
    status["services"]
        .as_array()
        .expect("services")
        .iter()
        .map(|s| {
            let n = s["components"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c["warm_instances"].as_u64())
                .sum();
            (s["name"].as_str().expect("name").to_owned(), n)
        })
        .collect()
}

fn parked_of(all: &[(String, u64)], service: &str) -> u64 {
    all.iter()
        .find(|(name, _)| name == service)
        .map_or(0, |(_, n)| *n)
}

/// A Prometheus sample's value, 0 when absent.
fn sample(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_service_that_reuses_instances_counts_up_in_one_instance_and_a_trap_starts_a_fresh_one() {
    let data = tempfile::tempdir().expect("tempdir");
    let (warm, fresh) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    counting_service(warm.path(), "warm", true);
    counting_service(fresh.path(), "fresh", false);
    let server = Server::start_with(data.path(), &[]);
    assert_success(&server.install(warm.path(), &[]));
    assert_success(&server.install(fresh.path(), &[]));

    for expected in 1..=3 {
        assert_eq!(
            calls(&server, "warm", &format!("w{expected}")).await,
            expected
        );
    }
    for name in ["f1", "f2", "f3"] {
        assert_eq!(
            calls(&server, "fresh", name).await,
            1,
            "a fresh instance per call"
        );
    }
    let now = parked(&server).await;
    assert_eq!(parked_of(&now, "warm"), 1, "{now:?}");
    assert_eq!(parked_of(&now, "fresh"), 0, "{now:?}");
    let metrics = server.metrics().await;
    assert_eq!(
        sample(&metrics, "syncplane_guest_warm_instances{service=\"warm\"}"),
        1.0,
        "{metrics}"
    );
    assert!(
        sample(&metrics, "syncplane_guest_warm_instance_reuses_total") >= 2.0,
        "{metrics}"
    );
    let text = server.cli(&["status"]);
    assert_success(&text);
    assert!(
        String::from_utf8_lossy(&text.stdout).contains("1 instances kept warm"),
        "{}",
        String::from_utf8_lossy(&text.stdout)
    );

    // A trap ends the instance: the next call starts a fresh one.
    let trapped = server
        .create_path(&collection("warm"), json!({ "name": "trap" }))
        .await;
    let failed = server
        .wait_for(&trapped, LIMIT, |o| o["backend_code"] != 0)
        .await;
    let status = failed["backend_status"].as_str().unwrap_or_default();
    assert!(status.starts_with("trap (crash)"), "{failed}");
    // Deleted, so that its retries do not call the step again.
    let (code, answer) = server
        .request(reqwest::Method::DELETE, &trapped, None)
        .await;
    assert_eq!(code, 200, "{answer}");
    let started = Instant::now();
    while server.request(reqwest::Method::GET, &trapped, None).await.0 != 404 {
        assert!(started.elapsed() < LIMIT, "not purged: {}", server.log());
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(
        calls(&server, "warm", "w4").await,
        1,
        "fresh after the trap"
    );
    assert_eq!(calls(&server, "warm", "w5").await, 2);

    // New limits for the service: the instance made under the old ones
    // is not used again.
    assert_success(&server.cli(&["service", "limits", "warm", "--memory-mib", "16"]));
    assert_eq!(
        calls(&server, "warm", "w6").await,
        1,
        "fresh under new limits"
    );
    assert_eq!(calls(&server, "warm", "w7").await, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn parked_instances_give_their_memory_to_a_call_that_needs_it_least_recently_used_first() {
    let data = tempfile::tempdir().expect("tempdir");
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().expect("dir")).collect();
    counting_service(dirs[0].path(), "older", true);
    counting_service(dirs[1].path(), "newer", true);
    counting_service(dirs[2].path(), "plain", false);
    // Room for two 16 MiB instances.
    let server = Server::start_with(
        data.path(),
        &[("--memory-limit-mib", "16"), ("--guest-memory-max", "32")],
    );
    for dir in &dirs {
        assert_success(&server.install(dir.path(), &[]));
    }
    assert_eq!(calls(&server, "older", "o1").await, 1);
    assert_eq!(calls(&server, "newer", "n1").await, 1);
    let status = server.get("/syncplane/v1/status").await;
    assert_eq!(
        status["guest_memory"]["reserved_bytes"],
        32 << 20,
        "two parked instances hold the cap: {status}"
    );

    // A call of a third service needs 16 MiB: the least recently parked
    // instance gives it back at once, and nothing waits.
    assert_eq!(calls(&server, "plain", "p1").await, 1);
    assert_eq!(calls(&server, "newer", "n2").await, 2, "kept");
    assert_eq!(calls(&server, "older", "o2").await, 1, "released, so fresh");
    let status = server.get("/syncplane/v1/status").await;
    assert_eq!(status["guest_memory"]["waits"], 0, "{status}");
    assert_eq!(status["guest_memory"]["refused"], 0, "{status}");
    let metrics = server.metrics().await;
    assert!(
        sample(&metrics, "syncplane_guest_warm_instance_evictions_total") >= 1.0,
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn parked_instances_are_capped_across_the_host_and_go_after_their_services_idle_period() {
    let data = tempfile::tempdir().expect("tempdir");
    let (a, b) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    counting_service(a.path(), "alpha", true);
    counting_service(b.path(), "beta", true);
    let server = Server::start_with(
        data.path(),
        &[("--warm-instances-max", "1"), ("--guest-idle-unload", "1h")],
    );
    assert_success(&server.install(a.path(), &[]));
    assert_success(&server.install(b.path(), &[]));
    assert_eq!(calls(&server, "alpha", "a1").await, 1);
    assert_eq!(calls(&server, "alpha", "a2").await, 2);
    // Parking beta's instance releases alpha's: one at most.
    assert_eq!(calls(&server, "beta", "b1").await, 1);
    let now = parked(&server).await;
    assert_eq!(
        (parked_of(&now, "alpha"), parked_of(&now, "beta")),
        (0, 1),
        "{now:?}"
    );
    assert_eq!(calls(&server, "alpha", "a3").await, 1, "released, so fresh");

    // Alpha's own idle period: its component and parked instance go after
    // 2 s without calls, while beta's stays loaded under the host's hour.
    let set = server.cli(&["service", "limits", "alpha", "--idle-unload", "2s"]);
    assert_success(&set);
    let shown = String::from_utf8_lossy(&set.stdout);
    assert!(
        shown.lines().any(|l| l.contains("idle unload:")
            && l.contains("2s")
            && l.contains("set for this service")),
        "{shown}"
    );
    let started = Instant::now();
    while states(&server, "alpha").await != ["cold"]
        || parked_of(&parked(&server).await, "alpha") > 0
    {
        assert!(
            started.elapsed() < LIMIT,
            "alpha still loaded:\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(states(&server, "beta").await, ["warm"]);
    assert_eq!(calls(&server, "alpha", "a4").await, 1);
}

/// The states of `service`'s components, from `status`.
async fn states(server: &Server, service: &str) -> Vec<String> {
    let status = server.get("/syncplane/v1/status").await;
    status["services"]
        .as_array()
        .expect("services")
        .iter()
        .filter(|s| s["name"] == service)
        .flat_map(|s| s["components"].as_array().cloned().unwrap_or_default())
        .map(|c| c["state"].as_str().unwrap_or("?").to_owned())
        .collect()
}
