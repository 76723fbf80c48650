//! `syncplane demo`, the README's first command, runs to its summary.

use std::process::Command;

use crate::util::{BIN, assert_success};

#[test]
fn the_demo_runs_the_tutorial_and_prints_a_summary() {
    let output = Command::new(BIN)
        .arg("demo")
        .env("RUST_LOG", "warn,syncplane::guest=info")
        .output()
        .expect("run demo");
    let stdout = assert_success(&output);
    for expected in [
        "Created models: ['service', 'serviceinstance', 'constraints']",
        "deferred: backend_code=0 backend_status=\"Maybe later\"",
        "failed and retried: backend_code=2 backend_status=\"Maybe not\"",
        "recovered: backend_code=1 backend_status=\"OK\"",
        "deleted and purged",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("Jhon Snow is saying hello to Daenerys Targaryen"),
        "{stderr}"
    );
}
