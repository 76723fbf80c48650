//! Outbound HTTP from Python and JavaScript steps, built through the real
//! binary with their toolchains: a granted origin on loopback answers, an
//! origin the manifest does not grant is refused by the host before a
//! connection opens, and each SDK reports both as its language does.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::toolchains::{componentize_js, componentize_py, service_new, syncplane};
use crate::util::{Server, assert_success};

/// Guest components are compiled when loaded; generous for a busy machine.
const LIMIT: Duration = Duration::from_secs(120);

/// A longer step deadline than the default, for a busy machine.
const FLAGS: &[(&str, &str)] = &[("--step-timeout", "5s")];

/// An HTTP/1.1 server on 127.0.0.1 that answers `you asked for PATH`,
/// with ` with BODY` when the request had one, and 404 for paths under
/// `/status/404`; it counts the requests it gets.
struct Backend {
    port: u16,
    hits: Arc<AtomicUsize>,
}

impl Backend {
    fn start() -> Backend {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                counter.fetch_add(1, Ordering::SeqCst);
                answer(&stream);
            }
        });
        Backend { port, hits }
    }

    fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

fn answer(stream: &std::net::TcpStream) {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    let _ = reader.read_line(&mut line);
    let path = line.split(' ').nth(1).unwrap_or("/").to_owned();
    let mut length = 0usize;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length.min(1 << 20)];
    let _ = reader.read_exact(&mut body);
    let (status, text) = if path.starts_with("/status/404") {
        ("404 Not Found", "no such thing".to_owned())
    } else if body.is_empty() {
        ("200 OK", format!("you asked for {path}"))
    } else {
        (
            "200 OK",
            format!(
                "you asked for {path} with {}",
                String::from_utf8_lossy(&body)
            ),
        )
    };
    let _ = (&*stream).write_all(
        format!(
            "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
            text.len()
        )
        .as_bytes(),
    );
}

/// `syncplane service new NAME --lang LANG --model WebThing` in a temporary
/// directory, granted outbound HTTP to `origin` and the config keys `url`
/// and `other`; returns the directory (and its guard).
fn new_service(name: &str, lang: &str, origin: &str) -> (tempfile::TempDir, PathBuf) {
    let parent = tempfile::tempdir().expect("tempdir");
    let dir = service_new(parent.path(), name, lang, "WebThing");
    let manifest = std::fs::read_to_string(dir.join("syncplane.toml")).expect("manifest");
    std::fs::write(
        dir.join("syncplane.toml"),
        format!(
            "{manifest}\n[capabilities]\noutbound_http = [\"{origin}\"]\nconfig = [\"url\", \"other\"]\n"
        ),
    )
    .expect("manifest");
    (parent, dir)
}

/// Installs the service in `dir` on a new server granting `backend`'s
/// origin, points `url` at it and `other` at `refused`, creates a
/// `WebThing` named `x1` and waits for it to sync; returns the server log.
async fn sync_one(
    service: &str,
    dir: &Path,
    env: &[(&str, PathBuf)],
    backend: &Backend,
    refused: &Backend,
) -> String {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start_with(data.path(), FLAGS);
    let allow = format!("outbound_http={}", backend.origin());
    assert_success(&syncplane(
        Some(&server),
        &[
            "service",
            "install",
            dir.to_str().expect("utf-8 path"),
            "--allow",
            &allow,
        ],
        env,
    ));
    server.set_config(
        service,
        &[("url", &backend.origin()), ("other", &refused.origin())],
    );
    let object = server
        .create_path(
            &format!("/xosapi/v1/{service}/webthings"),
            serde_json::json!({ "name": "x1" }),
        )
        .await;
    let synced = server
        .wait_for(&object, LIMIT, |o| o["backend_code"] != 0)
        .await;
    assert_eq!(synced["backend_status"], "OK", "{synced}");
    server.log()
}

/// The host's log line for a request to an origin the manifest does not
/// grant.
fn host_denial(refused: &Backend) -> String {
    format!(
        "denied guest access: outbound host 127.0.0.1:{} is not in this service's grants",
        refused.port
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_python_step_calls_granted_origins_only() {
    let env = [("SYNCPLANE_COMPONENTIZE_PY", componentize_py())];
    let backend = Backend::start();
    let refused = Backend::start();
    let (_guard, dir) = new_service("web-py", "python", &backend.origin());
    std::fs::write(
        dir.join("src/sync_web_thing.py"),
        r#"from models import WebThing
from syncplane import SyncStep, export_sync_step, http, log, require_config
from syncplane.http import HttpError


class Step(SyncStep[WebThing]):
    model = WebThing

    def sync_record(self, o: WebThing) -> None:
        url = require_config("url")
        answer = http.get(f"{url}/things/{o.name}").raise_for_status()
        log.info(f"backend said: {answer.text()}")
        sent = http.post(f"{url}/things", json={"name": o.name}, timeout=5)
        log.info(f"backend got: {sent.text()} ({sent.status})")
        try:
            http.get(f"{url}/status/404").raise_for_status()
            log.info("the missing thing was found")
        except HttpError as e:
            log.info(f"missing thing: {e.kind} {e.status}")
        try:
            http.get(f"{require_config('other')}/secret")
            log.info("the ungranted origin answered")
        except HttpError as e:
            log.info(f"ungranted origin refused: {e.kind}: {e}")


WitWorld = export_sync_step(Step)
"#,
    )
    .expect("step");
    // Offline first: `service test` answers from the file's exchanges.
    std::fs::write(
        dir.join("tests/sync_web_thing.yaml"),
        format!(
            r#"config: {{url: "{url}", other: "{other}"}}
tests:
  - name: the backend is asked three times
    fixtures:
      - {{name: thing, model: WebThing, fields: {{name: x1}}}}
    sync: thing
    http:
      - request: {{url: "{url}/things/x1"}}
        response: {{body: recorded x1}}
      - request: {{method: POST, url: "{url}/things", json: {{name: x1}}}}
        response: {{status: 201, body: created}}
      - request: {{url: "{url}/status/404"}}
        response: {{status: 404, body: gone}}
    expect:
      outcome: ok
      logs:
        - "backend said: recorded x1"
        - "backend got: created (201)"
        - "missing thing: status 404"
        - "ungranted origin refused: denied"
"#,
            url = backend.origin(),
            other = refused.origin(),
        ),
    )
    .expect("test file");
    let tested = assert_success(&syncplane(
        None,
        &["service", "test", dir.to_str().expect("utf-8 path")],
        &env,
    ));
    assert!(tested.contains("1 passed"), "{tested}");
    assert_eq!(backend.hits(), 0, "service test sent a request");

    let log = sync_one("web-py", &dir, &env, &backend, &refused).await;
    assert!(
        log.contains("backend said: you asked for /things/x1"),
        "{log}"
    );
    assert!(
        log.contains(r#"backend got: you asked for /things with {\"name\": \"x1\"} (200)"#)
            || log.contains(r#"backend got: you asked for /things with {"name": "x1"} (200)"#),
        "the JSON body did not arrive: {log}"
    );
    assert!(log.contains("missing thing: status 404"), "{log}");
    // The SDK tells a refusal apart from a failure, with the host's reason.
    assert!(
        log.contains(&format!(
            "ungranted origin refused: denied: GET {}/secret: denied",
            refused.origin()
        )),
        "{log}"
    );
    assert!(log.contains(&host_denial(&refused)), "{log}");
    assert!(!log.contains("the ungranted origin answered"), "{log}");
    assert!(!log.contains("the missing thing was found"), "{log}");
    assert!(backend.hits() >= 3, "three requests to the granted origin");
    assert_eq!(
        refused.hits(),
        0,
        "a request reached the origin the manifest does not grant"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_javascript_step_fetches_granted_origins_only() {
    let env = [("SYNCPLANE_COMPONENTIZE_JS", componentize_js())];
    let backend = Backend::start();
    let refused = Backend::start();
    let (_guard, dir) = new_service("web-js", "js", &backend.origin());
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
    let log = sync_one("web-js", &dir, &env, &backend, &refused).await;
    assert!(
        log.contains("backend said: you asked for /things/x1"),
        "{log}"
    );
    // fetch reports a refusal as a network error; the host says why.
    assert!(log.contains("ungranted origin refused: network"), "{log}");
    assert!(log.contains(&host_denial(&refused)), "{log}");
    assert!(!log.contains("the ungranted origin answered"), "{log}");
    assert!(backend.hits() >= 1);
    assert_eq!(
        refused.hits(),
        0,
        "a request reached the origin the manifest does not grant"
    );
}
