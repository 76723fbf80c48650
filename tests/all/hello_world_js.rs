//! The tutorial, end to end, against hello-world written in JavaScript
//! (`guests/hello-world-js`), bundled with esbuild and built with componentize-js through
//! `syncplane service build` and `service install`.

use std::time::Duration;

use crate::hello_world::tutorial;
use crate::toolchains::{
    build_without_toolchain_says, builds_once_then_up_to_date, componentize_js,
    install_with_toolchains, syncplane,
};
use crate::util::{assert_success, repo};

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

/// A one-line HTTP server on 127.0.0.1 answering every request with the
/// request line's path; returns its port and a count of requests.
fn echo_backend() -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{BufRead as _, BufReader, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = hits.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut reader = BufReader::new(&stream);
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let path = line.split(' ').nth(1).unwrap_or("/").to_owned();
            let body = format!("you asked for {path}");
            let _ = (&stream).write_all(
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            );
        }
    });
    (port, hits)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_javascript_step_fetches_granted_origins_only() {
    let env = [("SYNCPLANE_COMPONENTIZE_JS", componentize_js())];
    let parent = tempfile::tempdir().expect("tempdir");
    let dir = parent.path().join("web-js");
    assert_success(&syncplane(
        None,
        &[
            "service",
            "new",
            "web-js",
            "--lang",
            "js",
            "--model",
            "WebThing",
            "--dir",
            dir.to_str().expect("utf-8 path"),
            "--sdk",
            repo().to_str().expect("utf-8 path"),
        ],
        &[],
    ));
    let (port, hits) = echo_backend();
    let (refused_port, refused_hits) = echo_backend();
    let origin = format!("http://127.0.0.1:{port}");
    let manifest = std::fs::read_to_string(dir.join("syncplane.toml")).expect("manifest");
    std::fs::write(
        dir.join("syncplane.toml"),
        format!(
            "{manifest}\n[capabilities]\noutbound_http = [\"{origin}\"]\nconfig = [\"url\", \"other\"]\n"
        ),
    )
    .expect("manifest");
    std::fs::write(
        dir.join("src/sync_web_thing.js"),
        r#"import { log, requireConfig } from "syncplane-sdk";
import { exportSyncStep } from "syncplane-sdk/sync";
import { HttpError, request } from "syncplane-sdk/http";

import { WebThing } from "./models.js";

const step = {
  async syncRecord(o) {
    const answer = await (await request(`${requireConfig("url")}/things/${o.name}`)).text();
    log.info(`backend said: ${answer}`);
    try {
      await request(`${requireConfig("other")}/secret`);
      log.info("the ungranted origin answered");
    } catch (e) {
      if (!(e instanceof HttpError)) throw e;
      log.info(`ungranted origin refused: ${e.kind}`);
    }
  },
};

export const { syncRecord, deleteRecord } = exportSyncStep(WebThing, step);
"#,
    )
    .expect("step");
    let data = tempfile::tempdir().expect("tempdir");
    let server = crate::util::Server::start_with(data.path(), FLAGS);
    let path = dir.to_str().expect("utf-8 path");
    let allow = format!("outbound_http={origin}");
    assert_success(&syncplane(
        Some(&server),
        &["service", "install", path, "--allow", &allow],
        &env,
    ));
    server.set_config(
        "web-js",
        &[
            ("url", &origin),
            ("other", &format!("http://127.0.0.1:{refused_port}")),
        ],
    );
    let object = server
        .create_path(
            "/xosapi/v1/web-js/webthings",
            serde_json::json!({ "name": "x1" }),
        )
        .await;
    let synced = server
        .wait_for(&object, LIMIT, |o| o["backend_code"] == 1)
        .await;
    assert_eq!(synced["backend_status"], "OK", "{synced}");
    let log = server.log();
    assert!(
        log.contains("backend said: you asked for /things/x1"),
        "{log}"
    );
    // fetch reports a refusal as a network error; the host says why.
    assert!(log.contains("ungranted origin refused: network"), "{log}");
    assert!(
        log.contains(&format!(
            "denied guest access: outbound host 127.0.0.1:{refused_port} is not in this service's grants"
        )),
        "{log}"
    );
    assert!(!log.contains("the ungranted origin answered"), "{log}");
    assert!(hits.load(std::sync::atomic::Ordering::SeqCst) >= 1);
    assert_eq!(
        refused_hits.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "a request reached the origin the manifest does not grant"
    );
}
