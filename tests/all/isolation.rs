//! Isolation in the engine, through the real binary: a slow service does
//! not hold up another one, and SIGTERM stops the server cleanly within its
//! grace period, committing what finished and leaving the rest pending.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::lifecycle::{package_dir, sync_step};
use crate::util::{Server, assert_success};

const LIMIT: Duration = Duration::from_secs(60);

/// A service `name` whose model `<Model>` is served by the `slow_step` test
/// guest: an object named `sleep-<ms>-<tag>` sleeps that long in WASI.
pub(crate) fn install_sleeper(server: &Server, name: &str, model: &str) -> String {
    let xproto = format!(
        "option app_label = \"{name}\";\n\nmessage {model} (XOSBase) {{\n    required string name = 1;\n}}\n"
    );
    let dir = package_dir(
        name,
        "1.0.0",
        &xproto,
        &sync_step(&format!("sync_{name}"), "slow_step", &[model]),
    );
    assert_success(&server.install(dir.path(), &[]));
    format!("/xosapi/v1/{name}/{}s", model.to_lowercase())
}

/// Waits until the server log contains `line` `times` times.
pub(crate) async fn logged(server: &Server, line: &str, times: usize) {
    let started = Instant::now();
    while server.log().matches(line).count() < times {
        assert!(
            started.elapsed() < LIMIT,
            "`{line}` not logged {times} times within {LIMIT:?}:\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_whose_steps_take_ten_seconds_does_not_hold_up_another_service() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start_with(data.path(), &[("--step-timeout", "30s")]);
    let slow = install_sleeper(&server, "slowsvc", "SlowItem");
    let quick = install_sleeper(&server, "quicksvc", "QuickItem");

    // Eight calls of ten seconds: the slow service's whole share is busy.
    for i in 0..8 {
        server
            .create(&slow, json!({ "name": format!("sleep-10000-{i}") }))
            .await;
    }
    logged(&server, "slow started sleep-10000-", 4).await;

    // The other service's changes are enacted while they sleep.
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    for i in 0..20 {
        let changed = Instant::now();
        let path = server
            .create_path(&quick, json!({ "name": format!("sleep-0-{i}") }))
            .await;
        let synced = server
            .wait_for(&path, LIMIT, |o| o["backend_code"] != 0)
            .await;
        assert_eq!(synced["backend_code"], 1, "{synced}");
        slowest = slowest.max(changed.elapsed());
    }
    let log = server.log();
    assert!(
        !log.contains("slow finished sleep-10000-"),
        "the slow calls ended before the quick service was done ({:?}), so this shows nothing",
        started.elapsed()
    );
    assert!(
        slowest < Duration::from_secs(2),
        "a quick change took {slowest:?} while the other service slept:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_running_calls_finish_within_the_grace_then_stops_and_loses_nothing() {
    let data = tempfile::tempdir().expect("tempdir");
    let flags = [("--step-timeout", "60s"), ("--shutdown-grace", "2s")];
    let server = Server::start_with(data.path(), &flags);
    let items = install_sleeper(&server, "sleepy", "SleepyItem");

    // One call runs far past the grace, one ends within it.
    let long = server
        .create_path(&items, json!({ "name": "sleep-30000-long" }))
        .await;
    logged(&server, "slow started sleep-30000-long", 1).await;
    let short = server
        .create_path(&items, json!({ "name": "sleep-1000-short" }))
        .await;
    logged(&server, "slow started sleep-1000-short", 1).await;

    let (status, took) = server.terminate(Duration::from_secs(10));
    let status = status.unwrap_or_else(|| {
        panic!(
            "still running {took:?} after SIGTERM:\n{}",
            crate::util::read_log(data.path())
        )
    });
    assert!(
        status.success(),
        "exit status {status:?}:\n{}",
        crate::util::read_log(data.path())
    );
    assert!(
        took < Duration::from_secs(4),
        "stopping took {took:?}, more than the grace (2 s) + 2 s"
    );
    let log = crate::util::read_log(data.path());
    assert!(log.contains("slow finished sleep-1000-short"), "{log}");
    assert!(!log.contains("slow finished sleep-30000-long"), "{log}");

    // After a restart: the call that finished was committed; the one that
    // was interrupted is still pending and runs again.
    let server = Server::start_with(data.path(), &flags);
    let short = server.get(&short).await;
    assert_eq!(short["backend_code"], 1, "{short}");
    let long_now = server.get(&long).await;
    assert_eq!(long_now["backend_code"], 0, "{long_now}");
    assert!(long_now["enacted"].is_null(), "{long_now}");
    logged(&server, "slow started sleep-30000-long", 2).await;
    logged(&server, "slow started sleep-1000-short", 1).await;
    assert_eq!(
        server
            .log()
            .matches("slow started sleep-1000-short")
            .count(),
        1,
        "the committed call ran again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_runs_at_most_its_concurrency_and_its_invocation_rate() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start_with(data.path(), &[("--step-timeout", "30s")]);
    let items = install_sleeper(&server, "paced", "PacedItem");

    // Concurrency 1: each call starts only after the previous one ended.
    assert_success(&server.cli(&["service", "limits", "paced", "--concurrency", "1"]));
    let mut paths = Vec::new();
    for tag in ["a", "b", "c"] {
        paths.push(
            server
                .create_path(&items, json!({ "name": format!("sleep-300-{tag}") }))
                .await,
        );
    }
    for path in &paths {
        server
            .wait_for(path, LIMIT, |o| o["backend_code"] == 1)
            .await;
    }
    let log = server.log();
    let calls: Vec<&str> = log
        .lines()
        .filter_map(|l| {
            if l.contains("slow started sleep-300-") {
                Some("started")
            } else if l.contains("slow finished sleep-300-") {
                Some("finished")
            } else {
                None
            }
        })
        .collect();
    assert_eq!(
        calls,
        [
            "started", "finished", "started", "finished", "started", "finished"
        ],
        "calls overlapped under concurrency 1:\n{log}"
    );

    // Two calls per second, with a burst of two: six calls span at least
    // two seconds however fast they are.
    assert_success(&server.cli(&[
        "service",
        "limits",
        "paced",
        "--concurrency",
        "4",
        "--rate",
        "2",
    ]));
    let started = Instant::now();
    let mut paths = Vec::new();
    for i in 0..6 {
        paths.push(
            server
                .create_path(&items, json!({ "name": format!("sleep-0-rate{i}") }))
                .await,
        );
    }
    for path in &paths {
        server
            .wait_for(path, LIMIT, |o| o["backend_code"] == 1)
            .await;
    }
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1900),
        "six calls at two per second took only {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_made_while_its_objects_step_runs_is_synced_after_it_without_another_change() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start_with(data.path(), &[("--step-timeout", "30s")]);
    let items = install_sleeper(&server, "rerun", "RerunItem");
    let path = server
        .create_path(&items, json!({ "name": "sleep-1500-first" }))
        .await;
    logged(&server, "slow started sleep-1500-first", 1).await;
    // Changed while the step runs for the first version: once that call
    // commits, the object is pending again and the second version syncs,
    // with nothing else happening on the server.
    server.put(&path, json!({ "name": "sleep-0-second" })).await;
    logged(&server, "slow finished sleep-1500-first", 1).await;
    logged(&server, "slow finished sleep-0-second", 1).await;
    let synced = server
        .wait_for(&path, LIMIT, |o| o["backend_code"] == 1)
        .await;
    assert_eq!(synced["name"], "sleep-0-second");
}
