//! The tutorial, end to end, against hello-world written in JavaScript
//! (`guests/hello-world-js`), bundled with esbuild and built with componentize-js through
//! `syncplane service build` and `service install`.

use std::time::Duration;

use crate::hello_world::tutorial;
use crate::toolchains::{
    build_without_toolchain_says, builds_once_then_up_to_date, componentize_js,
    install_with_toolchains,
};
use crate::util::repo;

/// JavaScript components are compiled when loaded; generous, as the host
/// compiles them again on restart.
const LIMIT: Duration = Duration::from_secs(120);

/// The Rust tutorial's server settings, with a longer step deadline
/// for a busy machine (a call takes about 0.1 s; instances fit in the
/// default 32 MiB).
const FLAGS: &[(&str, &str)] = &[("--step-timeout", "5s")];

#[tokio::test(flavor = "multi_thread")]
async fn the_tutorial_runs_end_to_end_against_javascript() {
    let env = [("SYNCPLANE_COMPONENTIZE_JS", componentize_js())];
    let dir = repo().join("guests/hello-world-js");
    tutorial(
        &|server| install_with_toolchains(server, &dir, &env),
        FLAGS,
        LIMIT,
    )
    .await;
}

#[test]
fn service_build_builds_each_step_once_then_finds_it_up_to_date() {
    let env = [("SYNCPLANE_COMPONENTIZE_JS", componentize_js())];
    builds_once_then_up_to_date(&repo().join("guests/hello-world-js"), &env);
}

#[test]
fn service_build_without_componentize_js_says_how_to_install_it() {
    build_without_toolchain_says(
        &repo().join("guests/hello-world-js"),
        "SYNCPLANE_COMPONENTIZE_JS",
        &["componentize-js is not installed", "npm install", "sdk/js"],
    );
}
