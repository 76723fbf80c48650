//! Many idle Python and JavaScript services on one host (issue 22), through
//! the real binary: `syncplane bench idle` installs 20 copies of a no-op
//! Python service and 20 of a JavaScript one into a `serve` child process,
//! lets them go idle, reads the server's private memory from
//! `/proc/PID/smaps_rollup`, changes one object of each (cold), syncs a
//! batch through one service of each kind while the others idle, restarts
//! the server and waits for every service's first object. The test checks
//! what it printed against the per-service figures.

use serde_json::Value;

use crate::toolchains::{componentize_js, componentize_py, service_new, syncplane};
use crate::util::{assert_success, repo};

/// Copies of each service: the test size.
const COPIES: u32 = 20;
/// The most private memory an idle service may cost the server.
const MAX_IDLE_MIB_PER_SERVICE: f64 = 10.0;

/// `figures[path...]` as a number, or a failure naming the path.
fn number(figures: &Value, path: &[&str]) -> f64 {
    let mut at = figures;
    for key in path {
        at = &at[key];
    }
    at.as_f64()
        .unwrap_or_else(|| panic!("no number at {path:?} in {figures:#}"))
}

#[test]
fn twenty_python_and_twenty_javascript_services_idle_cheaply_wake_and_restart() {
    let env = [
        ("SYNCPLANE_COMPONENTIZE_PY", componentize_py()),
        ("SYNCPLANE_COMPONENTIZE_JS", componentize_js()),
        (
            "SYNCPLANE_COMPONENT_CACHE_DIR",
            repo().join("target/test-component-cache"),
        ),
    ];
    let parent = tempfile::tempdir().expect("tempdir");
    let python = service_new(parent.path(), "idle-python", "python", "IdlePyThing");
    let js = service_new(parent.path(), "idle-js", "js", "IdleJsThing");
    let services = [
        format!("{}={COPIES}", python.display()),
        format!("{}={COPIES}", js.display()),
    ];
    let out = assert_success(&syncplane(
        None,
        &[
            "bench",
            "idle",
            "--json",
            "--service",
            &services[0],
            "--service",
            &services[1],
            "--objects",
            "200",
        ],
        &env,
    ));
    let figures: Value = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("bench idle printed no JSON ({e}):\n{out}"));
    eprintln!("{figures:#}");

    let per_service = number(&figures, &["memory_mib", "idle_private_per_service"]);
    assert!(
        per_service <= MAX_IDLE_MIB_PER_SERVICE,
        "an idle service costs {per_service:.1} MiB of private memory, over {MAX_IDLE_MIB_PER_SERVICE} MiB: {figures:#}"
    );
    let kinds = figures["kinds"].as_array().expect("kinds");
    assert_eq!(kinds.len(), 2, "{figures:#}");
    for kind in kinds {
        assert_eq!(kind["services"], Value::from(COPIES), "{kind:#}");
        // Every idle copy's first change was enacted (cold) and a second
        // one while warm; a busy copy synced its batch.
        for figure in ["cold_change_to_enacted_ms", "warm_change_to_enacted_ms"] {
            assert!(number(kind, &[figure, "p99"]) > 0.0, "{kind:#}");
        }
        assert!(number(kind, &["busy_objects_per_sec"]) > 0.0, "{kind:#}");
    }
    // After a restart every service's first change was enacted.
    assert!(number(&figures, &["restart", "ready_secs"]) > 0.0);
    assert!(number(&figures, &["restart", "every_first_change_enacted_secs"]) > 0.0);
}
