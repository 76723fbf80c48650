//! The tutorial, end to end, against hello-world written in Python
//! (`guests/hello-world-py`), built with componentize-py through
//! `syncplane service build` and `service install`.

use std::time::{Duration, Instant};

use crate::hello_world::tutorial;
use crate::toolchains::{componentize_py, install_with_toolchains, syncplane};
use crate::util::{assert_success, repo};

/// Python components are compiled when loaded; generous, as the host
/// compiles them again on restart.
const LIMIT: Duration = Duration::from_secs(120);

/// The Rust tutorial's server settings, with a longer step deadline
/// for a busy machine (a call takes about 0.1 s; instances fit in the
/// default 32 MiB).
const FLAGS: &[(&str, &str)] = &[("--step-timeout", "5s")];

#[tokio::test(flavor = "multi_thread")]
async fn the_tutorial_runs_end_to_end_against_python() {
    let env = [("SYNCPLANE_COMPONENTIZE_PY", componentize_py())];
    let dir = repo().join("guests/hello-world-py");
    tutorial(
        &|server| install_with_toolchains(server, &dir, &env),
        FLAGS,
        LIMIT,
    )
    .await;
}

#[test]
fn service_build_builds_each_step_once_then_finds_it_up_to_date() {
    let env = [("SYNCPLANE_COMPONENTIZE_PY", componentize_py())];
    let dir = repo().join("guests/hello-world-py");
    let path = dir.to_str().expect("utf-8 path");
    let out = assert_success(&syncplane(None, &["service", "build", path], &env));
    assert!(
        out.contains("build/sync_hello_world_service.wasm (")
            && out.contains("build/sync_hello_world_service_instance.wasm ("),
        "{out}"
    );
    let started = Instant::now();
    let again = syncplane(None, &["service", "build", path], &env);
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(again.status.success(), "{stderr}");
    assert_eq!(stderr.matches(": up to date").count(), 2, "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(5), "not cached");
}

#[test]
fn service_build_without_componentize_py_says_how_to_install_it() {
    let dir = repo().join("guests/hello-world-py");
    let out = std::process::Command::new(crate::util::BIN)
        .args(["service", "build", dir.to_str().expect("utf-8 path")])
        .env("PATH", "/nonexistent")
        .env_remove("SYNCPLANE_COMPONENTIZE_PY")
        .output()
        .expect("run syncplane");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("componentize-py is not installed")
            && stderr.contains("pip install")
            && stderr.contains("sdk/python"),
        "{stderr}"
    );
}
