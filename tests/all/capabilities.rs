//! Capabilities through the real binary (issue 12): a component built
//! against the previous WIT still runs; hostile guests that reach for
//! hosts, secrets, models and resources they were not granted fail only
//! their own object, with a clear status, while the host keeps serving and
//! other services keep syncing; a policy chains two services only when the
//! operator allows its write grant.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use syncplane_test_artifacts::test_guest;

use crate::util::{Server, assert_success, describe, repo};

const LIMIT: Duration = Duration::from_secs(30);
const CHAIN_A: &str = "/xosapi/v1/chaina/chainainstances";
const CHAIN_B: &str = "/xosapi/v1/chainb/chainbinstances";

/// A secret of service `chainb` that no other service may read.
const CHAINB_SECRET: &str = "chainb-secret-3f9a1c77e2";
/// The secret of service `capabilities`, which its guest leaks into its
/// failure and its log (the host must redact it).
const OWN_SECRET: &str = "own-secret-b81d0e4a95";

/// Writes a service package to `dir`: `models/` from `tests/guests/models`,
/// and a manifest of `name` with `body` after its `[service]` section.
pub(crate) fn package(dir: &Path, name: &str, xproto: &[&str], body: &str) {
    std::fs::create_dir_all(dir.join("models")).expect("dir");
    for file in xproto {
        std::fs::copy(
            repo().join("tests/guests/models").join(file),
            dir.join("models").join(file),
        )
        .expect("xproto");
    }
    let files: Vec<String> = xproto.iter().map(|f| format!("\"models/{f}\"")).collect();
    let manifest = format!(
        "manifest_version = 1\n\n[service]\nname = \"{name}\"\nversion = \"0.1.0\"\nxproto = [{}]\n\n{body}",
        files.join(", ")
    );
    crate::util::write_manifest(dir, &manifest);
}

/// A `[[sync_steps]]` entry for a prebuilt test guest.
pub(crate) fn sync_step(guest: &str, observes: &str) -> String {
    format!(
        "[[sync_steps]]\nname = \"{guest}\"\ncomponent = {:?}\nobserves = \"{observes}\"\n\n",
        test_guest(guest).display().to_string()
    )
}

/// A `[[model_policies]]` entry for a prebuilt test guest.
fn model_policy(guest: &str, model: &str) -> String {
    format!(
        "[[model_policies]]\nname = \"{guest}\"\ncomponent = {:?}\nmodel = \"{model}\"\n\n",
        test_guest(guest).display().to_string()
    )
}

/// Service `chainb`: `ChainBInstance` synced by `cap_chain_step`, with a
/// secret `api_key`.
fn chainb_package(dir: &Path) {
    let body = format!(
        "[capabilities]\nsecrets = [\"api_key\"]\n\n{}",
        sync_step("cap_chain_step", "ChainBInstance")
    );
    package(dir, "chainb", &["chainb.xproto"], &body);
}

/// Service `chaina`: `ChainAInstance` with `cap_chain_policy`, asking for
/// the write grant on `chainb.ChainBInstance` when `grant`.
fn chaina_package(dir: &Path, grant: bool) {
    let capabilities = if grant {
        "[capabilities.models]\nwrite = [\"chainb.ChainBInstance\"]\n\n"
    } else {
        ""
    };
    let body = format!(
        "{capabilities}{}{}",
        sync_step("cap_chain_step", "ChainAInstance"),
        model_policy("cap_chain_policy", "ChainAInstance")
    );
    package(dir, "chaina", &["chaina.xproto"], &body);
}

/// Position of `line` in the log, panicking with the log when absent.
fn position(log: &str, line: &str) -> usize {
    log.find(line)
        .unwrap_or_else(|| panic!("`{line}` not in the log:\n{log}"))
}

fn status_of(object: &Value) -> String {
    object["backend_status"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// An HTTP backend on 127.0.0.1 for the capability guests: `GET /ok`
/// answers `fine`, `GET /endless` sends a body that never ends (until the
/// client goes away), `GET /hang/ok` never answers, `GET
/// /redirect-to-PORT/...` redirects to
/// `http://127.0.0.1:PORT/ok`. Returns its port.
fn start_backend() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("backend");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            std::thread::spawn(move || serve(stream));
        }
    });
    port
}

fn serve(mut stream: TcpStream) {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if head.len() > 64 * 1024 {
            return;
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let path = head.split_whitespace().nth(1).unwrap_or("/");
    match path {
        "/ok" => {
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 5\r\nconnection: close\r\n\r\nfine\n",
            );
        }
        "/hang/ok" => {
            // Accept, read the request, never answer.
            std::thread::sleep(Duration::from_secs(60));
        }
        redirect if redirect.starts_with("/redirect-to-") => {
            let port = redirect
                .trim_start_matches("/redirect-to-")
                .split('/')
                .next()
                .unwrap_or_default();
            let _ = stream.write_all(
                format!(
                    "HTTP/1.1 302 Found\r\nlocation: http://127.0.0.1:{port}/ok\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                )
                .as_bytes(),
            );
        }
        "/endless" => {
            // No length: the body lasts until the connection closes.
            if stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\nconnection: close\r\n\r\n")
                .is_err()
            {
                return;
            }
            let chunk = vec![b'x'; 64 * 1024];
            while stream.write_all(&chunk).is_ok() {}
        }
        _ => {
            let _ = stream.write_all(
                b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            );
        }
    }
}

/// How many connections reached `listener` (non-blocking) so far.
fn connections(listener: &TcpListener) -> usize {
    let mut count = 0;
    loop {
        match listener.accept() {
            Ok(_) => count += 1,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return count,
            Err(e) => panic!("accept on the unlisted port: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_component_built_against_plugin_0_1_0_still_syncs() {
    let data = tempfile::tempdir().expect("tempdir");
    let dir = tempfile::tempdir().expect("tempdir");
    package(
        dir.path(),
        "legacy",
        &["legacy.xproto"],
        &sync_step("legacy_v01_step", "LegacyTarget"),
    );
    let server = Server::start(data.path());
    let installed = server.install(dir.path(), &[]);
    assert_success(&installed);

    let path = server
        .create_path(
            "/xosapi/v1/legacy/legacytargets",
            json!({ "name": "old-timer" }),
        )
        .await;
    let synced = server
        .wait_for(&path, LIMIT, |o| o["backend_code"] != 0)
        .await;
    assert_eq!(synced["backend_code"], 1, "{synced}");
    assert!(
        server.log().contains("legacy step synced old-timer"),
        "{}",
        server.log()
    );

    let (status, body) = server.request(reqwest::Method::DELETE, &path, None).await;
    assert!(status < 300, "DELETE {path}: {status} {body}");
    let started = Instant::now();
    while !server.log().contains("legacy step deleted old-timer") {
        assert!(
            started.elapsed() < LIMIT,
            "never torn down:\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_capability_guests_fail_only_their_own_object_and_the_host_keeps_serving() {
    let backend = start_backend();
    // The port no grant covers; whatever connects here, the host let through.
    let unlisted = TcpListener::bind("127.0.0.1:0").expect("unlisted listener");
    unlisted.set_nonblocking(true).expect("non-blocking");
    let unlisted_port = unlisted.local_addr().expect("addr").port();

    let data = tempfile::tempdir().expect("tempdir");
    // Above the 40 MiB error `cap_huge_error` builds.
    let server = Server::start_with(data.path(), &[("--memory-limit-mib", "128")]);

    // Another service, syncing all along, with a secret of its own.
    let chainb = tempfile::tempdir().expect("tempdir");
    chainb_package(chainb.path());
    assert_success(&server.install(chainb.path(), &[]));
    server.set_secret("chainb", "api_key", CHAINB_SECRET);
    let steady = server
        .create_path(CHAIN_B, json!({ "name": "steady-0" }))
        .await;
    server
        .wait_for(&steady, LIMIT, |o| o["backend_code"] == 1)
        .await;

    let origin = format!("http://127.0.0.1:{backend}");
    let mut body = format!(
        "[capabilities]\noutbound_http = [\"{origin}\"]\nconfig = [\"target_port\", \"url\"]\nsecrets = [\"own_secret\"]\n\n"
    );
    let steps = [
        ("cap_unlisted_host", "UnlistedHostTarget"),
        ("cap_secret_snoop", "SecretSnoopTarget"),
        ("cap_user_read", "UserReadTarget"),
        ("cap_sleep_forever", "SleepTarget"),
        ("cap_endless_body", "EndlessBodyTarget"),
        ("cap_log_flood", "LogFloodTarget"),
        ("cap_huge_error", "HugeErrorTarget"),
        ("cap_http_ok", "HttpOkTarget"),
    ];
    for (guest, model) in steps {
        body.push_str(&sync_step(guest, model));
    }
    body.push_str(&model_policy("cap_write_ungranted", "WriteTarget"));
    let service = tempfile::tempdir().expect("tempdir");
    package(
        service.path(),
        "capabilities",
        &["capabilities.xproto"],
        &body,
    );
    let allow = format!("outbound_http={origin}");
    let installed = server.install(service.path(), &[allow.as_str()]);
    assert_success(&installed);
    server.set_config(
        "capabilities",
        &[
            ("target_port", &unlisted_port.to_string()),
            ("url", &origin),
        ],
    );
    server.set_secret("capabilities", "own_secret", OWN_SECRET);

    let mut paths = std::collections::BTreeMap::new();
    for model in [
        "UnlistedHostTarget",
        "SecretSnoopTarget",
        "UserReadTarget",
        "SleepTarget",
        "EndlessBodyTarget",
        "LogFloodTarget",
        "HugeErrorTarget",
        "HttpOkTarget",
        "WriteTarget",
    ] {
        let collection = format!("/xosapi/v1/capabilities/{}s", model.to_ascii_lowercase());
        let name = model.to_ascii_lowercase();
        paths.insert(
            model,
            server
                .create_path(&collection, json!({ "name": name }))
                .await,
        );
    }

    // Meanwhile the other service keeps syncing, and the host serving.
    for i in 1..=3 {
        let steady = server
            .create_path(CHAIN_B, json!({ "name": format!("steady-{i}") }))
            .await;
        server
            .wait_for(&steady, LIMIT, |o| o["backend_code"] == 1)
            .await;
        let (status, health) = server.request(reqwest::Method::GET, "/healthz", None).await;
        assert_eq!(status, 200, "{health}");
    }

    let failed = |o: &Value| o["backend_code"] == 2;

    let unlisted_status = status_of(
        &server
            .wait_for(&paths["UnlistedHostTarget"], LIMIT, failed)
            .await,
    );
    assert!(
        unlisted_status.starts_with("unlisted host: denied")
            && unlisted_status.contains(&unlisted_port.to_string()),
        "{unlisted_status}"
    );

    let snoop = status_of(
        &server
            .wait_for(&paths["SecretSnoopTarget"], LIMIT, failed)
            .await,
    );
    for expected in [
        "secret `other`: access denied",
        "secret `api_key`: access denied",
        "secret `chainb/api_key`: ",
        "own secret: [redacted]",
    ] {
        assert!(snoop.contains(expected), "`{expected}` not in: {snoop}");
    }
    assert!(
        !snoop.contains("LEAKED") && !snoop.contains(CHAINB_SECRET) && !snoop.contains(OWN_SECRET),
        "{snoop}"
    );

    let users = status_of(
        &server
            .wait_for(&paths["UserReadTarget"], LIMIT, failed)
            .await,
    );
    assert!(users.starts_with("user read: access denied"), "{users}");

    let sleeper = status_of(&server.wait_for(&paths["SleepTarget"], LIMIT, failed).await);
    assert!(sleeper.starts_with("trap (deadline): "), "{sleeper}");

    let endless = status_of(
        &server
            .wait_for(&paths["EndlessBodyTarget"], LIMIT, failed)
            .await,
    );
    assert!(
        endless.starts_with("trap (deadline): ")
            || endless.starts_with("endless body stopped after"),
        "{endless}"
    );

    let flood = status_of(
        &server
            .wait_for(&paths["LogFloodTarget"], LIMIT, failed)
            .await,
    );
    assert!(flood.starts_with("trap (output-limit): "), "{flood}");

    let huge = status_of(
        &server
            .wait_for(&paths["HugeErrorTarget"], LIMIT, failed)
            .await,
    );
    assert!(
        huge.starts_with("huge error: EEEE")
            && huge.contains("[truncated")
            && huge.len() <= 4096 + 128,
        "{} bytes: {}",
        huge.len(),
        &huge[..huge.len().min(256)]
    );

    let ok = server
        .wait_for(&paths["HttpOkTarget"], LIMIT, |o| o["backend_code"] != 0)
        .await;
    assert_eq!(ok["backend_code"], 1, "{ok}");
    assert!(
        server.log().contains("http ok httpoktarget: fine"),
        "{}",
        server.log()
    );

    let write = server
        .wait_for(&paths["WriteTarget"], LIMIT, |o| o["policy_code"] == 2)
        .await;
    let policy_status = write["policy_status"].as_str().unwrap_or_default();
    assert!(
        policy_status.starts_with("ungranted write: access denied")
            && policy_status.contains("ChainBInstance"),
        "{write}"
    );
    let instances = server.get(CHAIN_B).await;
    let names: Vec<&str> = instances["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|o| o["name"].as_str())
        .collect();
    assert!(
        names.iter().all(|n| n.starts_with("steady-")),
        "the ungranted write went through: {names:?}"
    );

    // Nothing reached the unlisted port, and the host still serves.
    assert_eq!(
        connections(&unlisted),
        0,
        "a request reached the unlisted port"
    );
    let (status, _) = server.request(reqwest::Method::GET, "/healthz", None).await;
    assert_eq!(status, 200);
    let steady = server
        .create_path(CHAIN_B, json!({ "name": "steady-last" }))
        .await;
    server
        .wait_for(&steady, LIMIT, |o| o["backend_code"] == 1)
        .await;

    // Status and metrics carry truncated errors and count the denials;
    // secrets appear nowhere, and the log flood stayed out of the log.
    let status = server.get("/syncplane/v1/status").await;
    let status_text = status.to_string();
    assert!(
        status_text.len() < 256 * 1024,
        "status is {} bytes",
        status_text.len()
    );
    assert!(!status_text.contains(OWN_SECRET) && !status_text.contains(CHAINB_SECRET));
    let (code, metrics) = server.request(reqwest::Method::GET, "/metrics", None).await;
    assert_eq!(code, 200);
    let metrics = metrics.as_str().unwrap_or_default().to_owned();
    assert!(
        metrics.contains("syncplane_capability_denied_total{")
            && metrics.contains("service=\"capabilities\""),
        "{metrics}"
    );
    let log = server.log();
    assert!(
        !log.contains(OWN_SECRET) && !log.contains(CHAINB_SECRET),
        "a secret is in the server log"
    );
    assert!(
        log.len() < 32 * 1024 * 1024,
        "the server log grew to {} bytes",
        log.len()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_policy_chains_two_services_only_when_the_operator_allows_its_write_grant() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(data.path());
    let chainb = tempfile::tempdir().expect("tempdir");
    chainb_package(chainb.path());
    assert_success(&server.install(chainb.path(), &[]));

    // Asking for the grant without the operator allowing it: refused,
    // before any of the package's code runs.
    let granted = tempfile::tempdir().expect("tempdir");
    chaina_package(granted.path(), true);
    let refused = server.install(granted.path(), &[]);
    assert_eq!(refused.status.code(), Some(1), "{}", describe(&refused));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("chainb.ChainBInstance")
            && stderr.contains("--allow write=chainb.ChainBInstance"),
        "{}",
        describe(&refused)
    );
    let (status, body) = server
        .request(reqwest::Method::GET, "/syncplane/v1/services/chaina", None)
        .await;
    assert_eq!(status, 404, "a refused package was installed: {body}");

    // Without the grant declared, the policy runs and is denied.
    let ungranted = tempfile::tempdir().expect("tempdir");
    chaina_package(ungranted.path(), false);
    assert_success(&server.install(ungranted.path(), &[]));
    let alpha = server
        .create_path(CHAIN_A, json!({ "name": "alpha" }))
        .await;
    let denied = server
        .wait_for(&alpha, LIMIT, |o| o["policy_code"] == 2)
        .await;
    let policy_status = denied["policy_status"].as_str().unwrap_or_default();
    assert!(
        policy_status.contains("access denied") && policy_status.contains("ChainBInstance"),
        "{denied}"
    );
    assert!(
        server.get(CHAIN_B).await["items"]
            .as_array()
            .is_some_and(Vec::is_empty),
        "a ChainBInstance was created without the grant"
    );

    // With the grant allowed (and accepted: it widens the installed
    // version's grants), the same object goes through: its provider is
    // created in the other service and linked, and both sync.
    let installed = server.cli(&[
        "service",
        "install",
        granted.path().to_str().expect("utf-8 path"),
        "--allow",
        "write=chainb.ChainBInstance",
        "--accept-grants",
    ]);
    assert_success(&installed);
    let linked = server
        .wait_for(&alpha, LIMIT, |o| {
            o["policy_code"] == 1 && o["provider_id"].is_i64() && o["backend_code"] == 1
        })
        .await;
    let provider = format!("{CHAIN_B}/{}", linked["provider_id"]);
    let b = server
        .wait_for(&provider, LIMIT, |o| o["backend_code"] == 1)
        .await;
    assert_eq!(b["name"], "alpha-b", "{b}");
    // The audit log puts each write on whoever made it: the user's create,
    // the policy's create of the provider and its link.
    let (_, audit) = server
        .request(reqwest::Method::GET, "/syncplane/v1/audit", None)
        .await;
    let entries = audit["items"].as_array().expect("audit items");
    let entry = |model: &str, operation: &str, id: &Value| {
        entries
            .iter()
            .find(|e| e["model"] == model && e["operation"] == operation && e["object_id"] == *id)
            .unwrap_or_else(|| panic!("no {operation} of {model} {id} in {audit}"))
    };
    assert_eq!(
        entry("ChainAInstance", "create", &linked["id"])["principal"],
        "user admin@opencord.org"
    );
    let provider_created = entry("ChainBInstance", "create", &linked["provider_id"]);
    assert!(
        provider_created["principal"]
            .as_str()
            .is_some_and(|p| p.starts_with("service chaina step ")),
        "{provider_created}"
    );
    assert_eq!(provider_created["fields"]["name"], "alpha-b");
    let link = entry("ChainAInstance", "update", &linked["id"]);
    assert_eq!(
        link["fields"]["provider_id"], linked["provider_id"],
        "{link}"
    );
    assert_eq!(link["principal"], provider_created["principal"]);
    let log = server.log();
    assert!(log.contains("chain linked alpha to alpha-b"), "{log}");
    // The subscriber links to its provider, so the provider syncs first
    // (the record's fields follow its message after a space).
    assert!(
        position(&log, "chain instance synced alpha-b")
            < position(&log, "chain instance synced alpha "),
        "the subscriber synced before its provider:\n{log}"
    );

    // Deleting the subscriber deletes its provider through the policy.
    let (status, body) = server.request(reqwest::Method::DELETE, &alpha, None).await;
    assert!(status < 300, "DELETE {alpha}: {status} {body}");
    let started = Instant::now();
    loop {
        let (status, _) = server.request(reqwest::Method::GET, &provider, None).await;
        if status == 404 {
            break;
        }
        assert!(
            started.elapsed() < LIMIT,
            "the provider was never deleted:\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The operator's policy file decides what installs without `--allow`, and
/// its networks are checked against the address a granted host name
/// resolves to when the request is made: `localhost` is granted, but it
/// resolves to 127.0.0.1, outside the allowed 10.0.0.0/8, so no connection
/// is made.
#[tokio::test(flavor = "multi_thread")]
async fn the_operator_policy_file_gates_installs_and_resolved_addresses() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("listener");
    listener.set_nonblocking(true).expect("non-blocking");
    let port = listener.local_addr().expect("addr").port();

    let data = tempfile::tempdir().expect("tempdir");
    let policy = data.path().join("policy.toml");
    std::fs::write(
        &policy,
        "[outbound_http]\norigins = [\"http://localhost:*\"]\nnetworks = [\"10.0.0.0/8\"]\n",
    )
    .expect("policy");
    let server = Server::start_with(
        data.path(),
        &[("--policy", policy.to_str().expect("utf-8 path"))],
    );

    // A grant the policy does not cover is refused before anything loads.
    let refused_dir = tempfile::tempdir().expect("tempdir");
    package(
        refused_dir.path(),
        "elsewhere",
        &["capabilities.xproto"],
        &format!(
            "[capabilities]\noutbound_http = [\"http://127.0.0.1:{port}\"]\nconfig = [\"url\"]\n\n{}",
            sync_step("cap_http_ok", "HttpOkTarget")
        ),
    );
    let refused = server.install(refused_dir.path(), &[]);
    assert!(!refused.status.success(), "{}", describe(&refused));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains(&format!(
            "outbound_http \"http://127.0.0.1:{port}\" is not allowed"
        )) && stderr.contains("not installed"),
        "{stderr}"
    );
    let (status, _) = server
        .request(
            reqwest::Method::GET,
            "/syncplane/v1/services/elsewhere",
            None,
        )
        .await;
    assert_eq!(status, 404, "a refused package was installed");

    // A grant the policy covers installs without --allow ...
    let dir = tempfile::tempdir().expect("tempdir");
    package(
        dir.path(),
        "resolver",
        &["capabilities.xproto"],
        &format!(
            "[capabilities]\noutbound_http = [\"http://localhost:{port}\"]\nconfig = [\"url\"]\n\n{}",
            sync_step("cap_http_ok", "HttpOkTarget")
        ),
    );
    assert_success(&server.install(dir.path(), &[]));
    server.set_config("resolver", &[("url", &format!("http://localhost:{port}"))]);

    // ... but the name resolves outside the allowed networks.
    let path = server
        .create_path(
            "/xosapi/v1/capabilities/httpoktargets",
            json!({ "name": "pinned" }),
        )
        .await;
    let failed = server
        .wait_for(&path, LIMIT, |o| o["backend_code"] == 2)
        .await;
    let status = status_of(&failed);
    assert!(
        status.contains("denied") && status.contains("outside the networks the operator allows"),
        "{status}"
    );
    assert_eq!(connections(&listener), 0, "the host connected anyway");
    let (code, metrics) = server.request(reqwest::Method::GET, "/metrics", None).await;
    assert_eq!(code, 200);
    let metrics = metrics.as_str().unwrap_or_default().to_owned();
    assert!(
        metrics.contains(
            r#"syncplane_capability_denied_total{service="resolver",kind="outbound_http"}"#
        ),
        "{metrics}"
    );
}

/// A redirect is not followed by the host: the guest sees the 302, and the
/// unlisted host it points to gets no connection. Secrets are sealed in the
/// store and no API answer carries them.
#[tokio::test(flavor = "multi_thread")]
async fn redirects_are_not_followed_past_the_grants_and_secrets_stay_sealed() {
    let backend = start_backend();
    let unlisted = TcpListener::bind("127.0.0.1:0").expect("unlisted listener");
    unlisted.set_nonblocking(true).expect("non-blocking");
    let unlisted_port = unlisted.local_addr().expect("addr").port();

    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(data.path());
    let origin = format!("http://127.0.0.1:{backend}");
    let dir = tempfile::tempdir().expect("tempdir");
    package(
        dir.path(),
        "redirected",
        &["capabilities.xproto"],
        &format!(
            "[capabilities]\noutbound_http = [\"{origin}\"]\nconfig = [\"url\"]\nsecrets = [\"token\"]\n\n{}",
            sync_step("cap_http_ok", "HttpOkTarget")
        ),
    );
    let allow = format!("outbound_http={origin}");
    assert_success(&server.install(dir.path(), &[allow.as_str()]));
    server.set_config(
        "redirected",
        &[("url", &format!("{origin}/redirect-to-{unlisted_port}"))],
    );
    const TOKEN: &str = "sealed-token-5c1e9b02d4";
    server.set_secret("redirected", "token", TOKEN);

    let path = server
        .create_path(
            "/xosapi/v1/capabilities/httpoktargets",
            json!({ "name": "redirected" }),
        )
        .await;
    let failed = server
        .wait_for(&path, LIMIT, |o| o["backend_code"] == 2)
        .await;
    let status = status_of(&failed);
    assert!(status.contains("HTTP 302"), "{status}");
    assert_eq!(
        connections(&unlisted),
        0,
        "the redirect was followed to an unlisted host"
    );

    let shown = server.get("/syncplane/v1/services/redirected").await;
    assert_eq!(shown["settings"]["secrets"]["token"], true, "{shown}");
    assert!(!shown.to_string().contains(TOKEN), "{shown}");
    for file in ["syncplane.db", "syncplane.db-wal"] {
        let bytes = std::fs::read(data.path().join(file)).unwrap_or_default();
        assert!(
            !bytes.windows(TOKEN.len()).any(|w| w == TOKEN.as_bytes()),
            "the secret is stored in plain text in {file}"
        );
    }
}

/// Limits that need a longer deadline to show: an outbound request whose
/// server never answers ends at the host's per-request timeout (10 s) as
/// a failure the guest reports, well before the 30 s deadline; a guest
/// making 200,000 host calls traps at the cap (100,000).
#[tokio::test(flavor = "multi_thread")]
async fn a_silent_server_times_out_per_request_and_a_call_flood_traps() {
    let backend = start_backend();
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start_with(data.path(), &[("--step-timeout", "30s")]);
    let origin = format!("http://127.0.0.1:{backend}");
    let dir = tempfile::tempdir().expect("tempdir");
    package(
        dir.path(),
        "limits",
        &["capabilities.xproto"],
        &format!(
            "[capabilities]\noutbound_http = [\"{origin}\"]\nconfig = [\"url\"]\n\n{}{}",
            sync_step("cap_http_ok", "HttpOkTarget"),
            sync_step("cap_call_flood", "CallFloodTarget")
        ),
    );
    let allow = format!("outbound_http={origin}");
    assert_success(&server.install(dir.path(), &[allow.as_str()]));
    server.set_config("limits", &[("url", &format!("{origin}/hang"))]);

    let started = Instant::now();
    let hang = server
        .create_path(
            "/xosapi/v1/capabilities/httpoktargets",
            json!({ "name": "silent" }),
        )
        .await;
    let flood = server
        .create_path(
            "/xosapi/v1/capabilities/callfloodtargets",
            json!({ "name": "flood" }),
        )
        .await;
    let failed = server
        .wait_for(&hang, Duration::from_secs(60), |o| o["backend_code"] == 2)
        .await;
    let elapsed = started.elapsed();
    let status = status_of(&failed);
    assert!(!status.starts_with("trap"), "{status}");
    assert!(status.contains("/hang/ok"), "{status}");
    assert!(
        elapsed < Duration::from_secs(28),
        "the request ran into the 30 s deadline ({elapsed:?}): {status}"
    );

    let flooded = server
        .wait_for(&flood, LIMIT, |o| o["backend_code"] == 2)
        .await;
    let status = status_of(&flooded);
    assert!(
        status.starts_with("trap (output-limit): ")
            && status.contains("more than 100000 host calls"),
        "{status}"
    );
}
