//! Several hosts on one PostgreSQL store, through the real processes: they
//! share the work without doing any of it twice, a change made on one host
//! is synced without waiting, and when a host dies (SIGKILL) or stops
//! (SIGSTOP) mid-step, another takes its work over once its leases end,
//! running each step again exactly once.

use std::time::{Duration, Instant};

use serde_json::json;
use syncplane_test_postgres::PostgresServer;

use crate::isolation::{install_sleeper, logged};
use crate::util::Server;

const LIMIT: Duration = Duration::from_secs(60);

/// A PostgreSQL server (stopped when dropped) with an empty database, its
/// URL, and a data directory for each of two hosts.
pub(crate) fn shared_store() -> (PostgresServer, String, [tempfile::TempDir; 2]) {
    let postgres = PostgresServer::start();
    let url = postgres.create_database("syncplane");
    let dirs = [(); 2].map(|()| tempfile::tempdir().expect("tempdir"));
    (postgres, url, dirs)
}

/// A host on the store at `url`, with leases of `ttl`.
pub(crate) fn host(data: &tempfile::TempDir, url: &str, ttl: &str, batch: &str) -> Server {
    Server::start_with(
        data.path(),
        &[
            ("--store", url),
            ("--lease-ttl", ttl),
            ("--batch-size", batch),
            ("--step-timeout", "60s"),
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hosts_share_the_work_and_run_each_step_once() {
    let (_postgres, url, [data_a, data_b]) = shared_store();
    let a = host(&data_a, &url, "10s", "4");
    let items = install_sleeper(&a, "shared", "SharedItem");
    // The second host loads the service from the store.
    let b = host(&data_b, &url, "10s", "4");

    // Created on the second host: each holds at most four at a time, so
    // both get a part.
    let mut paths = Vec::new();
    for i in 0..24 {
        paths.push(
            b.create_path(&items, json!({ "name": format!("sleep-300-{i:02}") }))
                .await,
        );
    }
    for path in &paths {
        let synced = a.wait_for(path, LIMIT, |o| o["backend_code"] != 0).await;
        assert_eq!(synced["backend_code"], 1, "{synced}");
    }
    let (log_a, log_b) = (a.log(), b.log());
    for i in 0..24 {
        let line = format!("slow started sleep-300-{i:02}");
        let runs = log_a.matches(&line).count() + log_b.matches(&line).count();
        assert_eq!(
            runs, 1,
            "sleep-300-{i:02} ran {runs} times\n--- a:\n{log_a}\n--- b:\n{log_b}"
        );
    }
    let on_a = log_a.matches("slow started sleep-300-").count();
    assert!(
        (4..=20).contains(&on_a),
        "the first host ran {on_a} of 24 steps; both should have a share\n--- a:\n{log_a}\n--- b:\n{log_b}"
    );

    // A change on one host is synced at once, whichever host runs it.
    let changed = Instant::now();
    let late = a
        .create_path(&items, json!({ "name": "sleep-0-late" }))
        .await;
    let synced = b.wait_for(&late, LIMIT, |o| o["backend_code"] != 0).await;
    assert_eq!(synced["backend_code"], 1, "{synced}");
    assert!(
        changed.elapsed() < Duration::from_secs(3),
        "a change took {:?} to be synced",
        changed.elapsed()
    );

    // Each host lists both, with the steps each ran as of its latest
    // heartbeat (a third of the lease time): 25 in all, some on each.
    let started = Instant::now();
    loop {
        let status = b.cli(&["status", "--json"]);
        let status: serde_json::Value = serde_json::from_slice(&status.stdout)
            .unwrap_or_else(|e| panic!("status: {e}: {status:?}"));
        let hosts = status["hosts"]
            .as_array()
            .unwrap_or_else(|| panic!("no hosts in {status}"));
        assert_eq!(hosts.len(), 2, "{status}");
        let steps: Vec<i64> = hosts
            .iter()
            .map(|h| h["steps"].as_i64().expect("steps"))
            .collect();
        assert!(
            hosts
                .iter()
                .all(|h| h["steps_per_s"].as_f64().is_some() && h["running"].as_i64().is_some()),
            "{status}"
        );
        if steps.iter().sum::<i64>() == 25 && steps.iter().all(|s| *s > 0) {
            break;
        }
        assert!(
            started.elapsed() < LIMIT,
            "hosts' steps {steps:?}: {status}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let human = crate::util::assert_success(&a.cli(&["status"]));
    assert!(
        human.contains("hosts sharing the store: 2") && human.contains("steps/s"),
        "{human}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_a_host_dies_mid_step_another_takes_its_work_over_within_the_lease_time() {
    let (_postgres, url, [data_a, data_b]) = shared_store();
    let a = host(&data_a, &url, "3s", "2000");
    let items = install_sleeper(&a, "failover", "FailoverItem");
    let mut paths = Vec::new();
    for i in 0..3 {
        paths.push(
            a.create_path(&items, json!({ "name": format!("sleep-4000-{i}") }))
                .await,
        );
    }
    logged(&a, "slow started sleep-4000-", 3).await;
    // The second host starts while the first holds every object.
    let b = host(&data_b, &url, "3s", "2000");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        b.log().matches("slow started").count(),
        0,
        "the second host ran steps the first held:\n{}",
        b.log()
    );

    a.kill();
    let killed = Instant::now();
    logged(&b, "slow started sleep-4000-", 3).await;
    let took = killed.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "the work was taken over after {took:?}, more than the lease (3 s) + 2 s"
    );
    for path in &paths {
        let synced = b.wait_for(path, LIMIT, |o| o["backend_code"] != 0).await;
        assert_eq!(synced["backend_code"], 1, "{synced}");
    }
    let log_b = b.log();
    for i in 0..3 {
        let line = format!("slow started sleep-4000-{i}");
        assert_eq!(log_b.matches(&line).count(), 1, "{log_b}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_linking_to_one_running_on_another_host_waits_for_it_without_deferral() {
    let (_postgres, url, [data_a, data_b]) = shared_store();
    // The first host holds one object per service at a time: running the
    // parent, it cannot take its child; the second host takes the child.
    let start = |data: &tempfile::TempDir, batch: &str| {
        Server::start_with(
            data.path(),
            &[
                ("--store", url.as_str()),
                ("--lease-ttl", "10s"),
                ("--batch-size", batch),
                ("--step-timeout", "60s"),
            ],
        )
    };
    let a = start(&data_a, "1");
    let xproto = "option app_label = \"deps\";\n\n\
        message DepParent (XOSBase) {\n    required string name = 1;\n}\n\n\
        message DepChild (XOSBase) {\n    required string name = 1;\n    \
        required manytoone parent->DepParent:children = 2;\n}\n";
    let package = crate::lifecycle::package_dir(
        "deps",
        "1.0.0",
        xproto,
        &crate::lifecycle::sync_step("sync_deps", "slow_step", &["DepParent", "DepChild"]),
    );
    crate::util::assert_success(&a.install(package.path(), &[]));
    let b = start(&data_b, "100");

    let parent = a
        .create(
            "/xosapi/v1/deps/depparents",
            json!({ "name": "sleep-3000-parent" }),
        )
        .await;
    logged(&a, "slow started sleep-3000-parent", 1).await;
    let child = b
        .create_path(
            "/xosapi/v1/deps/depchilds",
            json!({ "name": "sleep-0-child", "parent_id": parent }),
        )
        .await;

    // While the parent runs, the child neither runs nor is deferred: it
    // waits for the parent's outcome, then runs once.
    let started = Instant::now();
    let child = loop {
        let child = b.get(&child).await;
        let status = child["backend_status"].as_str().unwrap_or_default();
        assert!(
            !status.contains("DepParent"),
            "the child was deferred for its parent: {child}"
        );
        if child["backend_code"] == 1 {
            break child;
        }
        assert!(started.elapsed() < LIMIT, "the child never ran: {child}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let parent = b.get(&format!("/xosapi/v1/deps/depparents/{parent}")).await;
    assert_eq!(parent["backend_code"], 1, "{parent}");
    // Once, on either host: the second host waited for the parent's
    // commit, and either may take the child then.
    let runs = a.log().matches("slow started sleep-0-child").count()
        + b.log().matches("slow started sleep-0-child").count();
    assert_eq!(runs, 1, "--- a:\n{}\n--- b:\n{}", a.log(), b.log());
    let enacted = |o: &serde_json::Value| o["enacted"].as_f64().expect("enacted");
    let after = enacted(&child) - enacted(&parent);
    // Not held back to a retry (`--retry-interval`, 5 s): woken by the
    // parent's commit.
    assert!(
        (0.0..2.0).contains(&after),
        "the child was enacted {after:.3} s after its parent"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_stopped_past_its_leases_writes_no_outcome_of_work_another_host_redid() {
    let (_postgres, url, [data_a, data_b]) = shared_store();
    let a = host(&data_a, &url, "2s", "2000");
    let items = install_sleeper(&a, "fenced", "FencedItem");
    let path = a
        .create_path(&items, json!({ "name": "sleep-3000-only" }))
        .await;
    logged(&a, "slow started sleep-3000-only", 1).await;
    let b = host(&data_b, &url, "2s", "2000");

    // The first host freezes mid-step; its lease ends and the second host
    // runs the step and records it.
    a.signal("STOP");
    logged(&b, "slow finished sleep-3000-only", 1).await;
    let synced = b.wait_for(&path, LIMIT, |o| o["backend_code"] != 0).await;
    assert_eq!(synced["backend_code"], 1, "{synced}");
    let enacted = synced["enacted"].clone();

    // Woken, the first host finishes its call, but may not write it.
    a.signal("CONT");
    logged(&a, "their outcomes here are dropped", 1).await;
    let after = b.get(&path).await;
    assert_eq!(
        after["enacted"], enacted,
        "the stale outcome was written: {after}"
    );
}

/// Polls `host`'s installed services until `check` holds.
async fn services_until(host: &Server, what: &str, check: impl Fn(&[serde_json::Value]) -> bool) {
    let started = Instant::now();
    loop {
        let listed = host.get("/syncplane/v1/services").await;
        let services = listed["items"].as_array().cloned().unwrap_or_default();
        if check(&services) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{what}: the other host lists {listed}\n{}",
            host.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_installed_limited_upgraded_or_removed_on_one_host_changes_on_every_host() {
    let (_postgres, url, [data_a, data_b]) = shared_store();
    let a = host(&data_a, &url, "10s", "2000");
    let b = host(&data_b, &url, "10s", "2000");

    // Installed on the first host while the second runs.
    let installed = Instant::now();
    let items = install_sleeper(&a, "roaming", "RoamingItem");
    services_until(&b, "the install", |s| {
        s.iter().any(|s| s["name"] == "roaming")
    })
    .await;
    assert!(
        installed.elapsed() < Duration::from_secs(5),
        "the install reached the other host after {:?}",
        installed.elapsed()
    );
    // The second host serves its models and may run its steps.
    let path = b
        .create_path(&items, json!({ "name": "sleep-0-on-b" }))
        .await;
    let synced = b.wait_for(&path, LIMIT, |o| o["backend_code"] != 0).await;
    assert_eq!(synced["backend_code"], 1, "{synced}");

    // Limits set on the first host apply on the second.
    crate::util::assert_success(&a.cli(&["service", "limits", "roaming", "--concurrency", "2"]));
    let set = Instant::now();
    loop {
        let shown = b.get("/syncplane/v1/services/roaming/limits").await;
        if shown["limits"]["concurrency"] == 2 {
            break;
        }
        assert!(
            set.elapsed() < Duration::from_secs(5),
            "the other host's limits: {shown}\n{}",
            b.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // An upgrade on the first host.
    let xproto = "option app_label = \"roaming\";\n\nmessage RoamingItem (XOSBase) {\n    required string name = 1;\n}\n";
    let dir = crate::lifecycle::package_dir(
        "roaming",
        "2.0.0",
        xproto,
        &crate::lifecycle::sync_step("sync_roaming", "slow_step", &["RoamingItem"]),
    );
    crate::util::assert_success(&a.install(dir.path(), &[]));
    services_until(&b, "the upgrade", |s| {
        s.iter()
            .any(|s| s["name"] == "roaming" && s["version"] == "2.0.0")
    })
    .await;

    // Removed on the first host.
    let (status, body) = a.request(reqwest::Method::DELETE, &path, None).await;
    assert!((200..300).contains(&status), "{status}: {body}");
    let gone = Instant::now();
    loop {
        let out = a.cli(&["service", "uninstall", "roaming"]);
        if out.status.success() {
            break;
        }
        assert!(gone.elapsed() < LIMIT, "{}", crate::util::describe(&out));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    services_until(&b, "the uninstall", |s| {
        !s.iter().any(|s| s["name"] == "roaming")
    })
    .await;
    let (status, _) = b.request(reqwest::Method::GET, &items, None).await;
    assert_eq!(
        status, 404,
        "the removed model is still served on the other host"
    );
}

#[test]
fn bench_sync_runs_two_hosts_on_postgres_and_refuses_them_on_sqlite() {
    let postgres = PostgresServer::start();
    let url = postgres.create_database("bench");
    let out = crate::util::assert_success(&crate::toolchains::syncplane(
        None,
        &[
            "bench",
            "sync",
            "--json",
            "--store",
            &url,
            "--hosts",
            "2",
            "--objects",
            "3000",
            "--changes",
            "20",
            "--invocations",
            "10",
            // Each host holds at most 500 objects at a time, so a host that
            // starts first cannot take all 3,000 before the other starts.
            "--batch-size",
            "500",
        ],
        &[],
    ));
    let figures: serde_json::Value = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("bench sync printed no JSON ({e}):\n{out}"));
    assert_eq!(figures["hosts"], 2, "{figures}");
    let per_host: Vec<u64> = figures["per_host"]
        .as_array()
        .unwrap_or_else(|| panic!("{figures}"))
        .iter()
        .map(|d| d.as_u64().unwrap_or_default())
        .collect();
    assert_eq!(per_host.len(), 2, "{figures}");
    assert!(per_host.iter().sum::<u64>() >= 3000, "{figures}");
    assert!(
        per_host.iter().all(|&d| d > 0),
        "one host synced nothing: {figures}"
    );
    assert_eq!(figures["changes"], 20, "{figures}");

    let refused = crate::toolchains::syncplane(None, &["bench", "sync", "--hosts", "2"], &[]);
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("--store postgres://"), "{said}");
}

/// How many times each host ran the chain service's pull step.
async fn pull_runs(hosts: [&Server; 2]) -> [i64; 2] {
    let mut runs = [0; 2];
    for (i, host) in hosts.iter().enumerate() {
        let status = host.get("/syncplane/v1/status").await;
        runs[i] = status["services"][0]["pull_steps"][0]["runs"]
            .as_i64()
            .unwrap_or(0);
    }
    runs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_step_runs_on_one_host_at_a_time_and_moves_when_that_host_dies() {
    let (_postgres, url, [data_a, data_b]) = shared_store();
    let a = host(&data_a, &url, "3s", "2000");
    let b = host(&data_b, &url, "3s", "2000");
    let service = tempfile::tempdir().expect("tempdir");
    crate::engine::chain_service(service.path(), "");
    crate::util::assert_success(&a.cli(&[
        "service",
        "install",
        service.path().to_str().expect("utf-8"),
    ]));

    // Every 200 ms, on one of the two hosts only.
    let started = Instant::now();
    loop {
        let runs = pull_runs([&a, &b]).await;
        if runs[0] + runs[1] >= 10 {
            assert!(
                runs[0] == 0 || runs[1] == 0,
                "both hosts ran the pull step: {runs:?}"
            );
            break;
        }
        assert!(
            started.elapsed() < LIMIT,
            "the pull step ran {runs:?} times"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let runs = pull_runs([&a, &b]).await;
    let (holder, other) = if runs[0] > 0 { (a, b) } else { (b, a) };

    // The host running it dies: the other takes it over once the lease
    // ends.
    let before = other.get("/syncplane/v1/status").await["services"][0]["pull_steps"][0]["runs"]
        .as_i64()
        .unwrap_or(0);
    assert_eq!(before, 0);
    holder.kill();
    let killed = Instant::now();
    loop {
        let status = other.get("/syncplane/v1/status").await;
        let runs = status["services"][0]["pull_steps"][0]["runs"]
            .as_i64()
            .unwrap_or(0);
        if runs >= 3 {
            break;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(10),
            "the surviving host ran the pull step {runs} times in {:?}",
            killed.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
