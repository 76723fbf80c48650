//! Per-service quotas through the real binary (issue 15, section 1): the
//! operator sets a service's limits with `syncplane service limits` or
//! REST, reads them back, and they survive a restart; only admins may;
//! a service at its most objects is refused with 429 for REST and TOSCA
//! creates and a guest's declarative create, while another service still
//! creates; a service's own deadline and memory limit trap its guests
//! while another service's calls run under the host's.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use syncplane_test_artifacts::test_guest;

use crate::util::{ADMIN, PASSWORD, Server, assert_success, repo};

const LIMIT: Duration = Duration::from_secs(30);
const GET: reqwest::Method = reqwest::Method::GET;
const PUT: reqwest::Method = reqwest::Method::PUT;
const POST: reqwest::Method = reqwest::Method::POST;

/// Service `shop`: one model, no steps.
const SHOP_XPROTO: &str = r#"option app_label = "shop";

message ShopItem (XOSBase) {
    required string name = 1;
}
"#;
const SHOP_ITEMS: &str = "/xosapi/v1/shop/shopitems";

/// Service `farm`: one model, no steps.
const FARM_XPROTO: &str = r#"option app_label = "farm";

message FarmItem (XOSBase) {
    required string name = 1;
}
"#;
const FARM_ITEMS: &str = "/xosapi/v1/farm/farmitems";

/// A package with models only, as `POST /syncplane/v1/services` takes it.
fn rest_package(name: &str, xproto: &str) -> Value {
    let file = format!("models/{name}.xproto");
    let mut files = Map::new();
    files.insert(file.clone(), Value::String(xproto.to_owned()));
    json!({
        "manifest": {
            "manifest_version": 1,
            "service": { "name": name, "version": "1.0.0", "xproto": [file] },
        },
        "xproto": files,
        "components": {},
    })
}

async fn install_models_only(server: &Server) {
    for (name, xproto) in [("shop", SHOP_XPROTO), ("farm", FARM_XPROTO)] {
        let (status, answer) = server
            .request(
                POST,
                "/syncplane/v1/services",
                Some(json!({ "package": rest_package(name, xproto) })),
            )
            .await;
        assert_eq!(status, 200, "install {name}: {answer}");
    }
}

fn limits_path(service: &str) -> String {
    format!("/syncplane/v1/services/{service}/limits")
}

/// Writes a service package `name` to `dir`: `models/<name>.xproto` with
/// `xproto`, and sync steps `(step name, test guest, observed model)`.
fn steps_package(dir: &Path, name: &str, xproto: &str, steps: &[(&str, &str, &str)]) {
    std::fs::create_dir_all(dir.join("models")).expect("package dir");
    std::fs::write(dir.join(format!("models/{name}.xproto")), xproto).expect("xproto");
    let mut manifest = format!(
        "manifest_version = 1\n\n[service]\nname = \"{name}\"\nversion = \"1.0.0\"\n\
         xproto = [\"models/{name}.xproto\"]\n"
    );
    for (step, guest, model) in steps {
        manifest.push_str(&format!(
            "\n[[sync_steps]]\nname = \"{step}\"\ncomponent = {:?}\nobserves = \"{model}\"\n",
            test_guest(guest).display().to_string()
        ));
    }
    crate::util::write_manifest(dir, &manifest);
}

/// Asserts an answer's status and that its error mentions every needle.
fn answered(answer: &(u16, Value), status: u16, needles: &[&str]) {
    let (got, body) = answer;
    let text = body["error"].as_str().unwrap_or_default();
    assert_eq!(*got, status, "{body}");
    for needle in needles {
        assert!(text.contains(needle), "`{needle}` not in: {text}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn limits_set_through_the_cli_and_rest_read_back_survive_a_restart_and_need_an_admin() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(data.path());
    install_models_only(&server).await;

    // Before anything is set: the server's defaults (the harness's 1 s
    // deadline and 32 MiB).
    let (status, shown) = server.request(GET, &limits_path("shop"), None).await;
    assert_eq!(status, 200, "{shown}");
    assert_eq!(
        shown["limits"],
        json!({
            "max_objects": null, "concurrency": 4, "invocations_per_sec": null,
            "memory_mib": 32, "deadline_ms": 1000, "idle_unload_ms": 30000,
        }),
        "{shown}"
    );
    assert_eq!(shown["overrides"], json!({}), "{shown}");

    let out = assert_success(&server.cli(&[
        "service",
        "limits",
        "shop",
        "--max-objects",
        "100",
        "--concurrency",
        "2",
        "--rate",
        "50",
        "--deadline",
        "30s",
        "--idle-unload",
        "5m",
    ]));
    for line in [
        "limits of shop:",
        "max objects:    100          (set for this service)",
        "concurrency:    2            (set for this service)",
        "invocations/s:  50           (set for this service)",
        "memory:         32 MiB       (server default)",
        "deadline:       30s          (set for this service)",
        "idle unload:    5m           (set for this service)",
    ] {
        assert!(out.contains(line), "`{line}` not in:\n{out}");
    }

    let answer = server
        .request(PUT, &limits_path("shop"), Some(json!({ "memory_mib": 16 })))
        .await;
    assert_eq!(answer.0, 200, "{}", answer.1);
    assert_eq!(answer.1["limits"]["memory_mib"], 16, "{}", answer.1);
    assert_eq!(answer.1["limits"]["max_objects"], 100, "{}", answer.1);

    // More memory than the host's cap, or nonsense, changes nothing.
    answered(
        &server
            .request(PUT, &limits_path("shop"), Some(json!({ "memory_mib": 64 })))
            .await,
        400,
        &[
            "service `shop`",
            "memory_mib 64 is above the host's limit of 32 MiB",
        ],
    );
    answered(
        &server
            .request(PUT, &limits_path("shop"), Some(json!({ "memory": 8 })))
            .await,
        400,
        &["unknown field `memory`"],
    );
    answered(
        &server
            .request(
                PUT,
                &limits_path("ghost"),
                Some(json!({ "concurrency": 1 })),
            )
            .await,
        404,
        &["no service `ghost`"],
    );
    let refused = server.cli(&["service", "limits", "shop", "--memory-mib", "64"]);
    assert!(!refused.status.success(), "{refused:?}");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("above the host's limit of 32 MiB"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    // Only admins read or change them.
    server
        .create(
            "/xosapi/v1/core/users",
            json!({ "email": "ops@example.org", "password": "ops-password", "username": "ops" }),
        )
        .await;
    let ops = ("ops@example.org", "ops-password");
    answered(
        &server
            .request_as(ops, GET, &limits_path("shop"), None)
            .await,
        403,
        &[],
    );
    answered(
        &server
            .request_as(
                ops,
                PUT,
                &limits_path("shop"),
                Some(json!({ "max_objects": "unlimited" })),
            )
            .await,
        403,
        &[],
    );

    // A restart keeps them; another service never had them.
    let expected = json!({
        "max_objects": 100, "concurrency": 2, "invocations_per_sec": 50,
        "memory_mib": 16, "deadline_ms": 30000, "idle_unload_ms": 300000,
    });
    server.kill();
    let server = Server::start(data.path());
    let (status, shown) = server.request(GET, &limits_path("shop"), None).await;
    assert_eq!(status, 200, "{shown}");
    assert_eq!(shown["limits"], expected, "{shown}");
    let (_, farm) = server.request(GET, &limits_path("farm"), None).await;
    assert_eq!(farm["overrides"], json!({}), "{farm}");

    // `syncplane status` shows them against the usage.
    let status = assert_success(&server.cli(&["status"]));
    assert!(
        status.contains(
            "limits: objects 0/100, running 0/2, 50 invocations/s, 16 MiB memory, deadline 30s"
        ),
        "{status}"
    );

    let shown = assert_success(&server.cli(&["service", "show", "shop"]));
    assert!(
        shown.contains(
            "limits:         max objects 100, concurrency 2, 50 invocations/s, 16 MiB memory, deadline 30s"
        ),
        "{shown}"
    );

    // `default` returns one, `--reset` all, to the server's.
    let out = assert_success(&server.cli(&["service", "limits", "shop", "--rate", "default"]));
    assert!(
        out.contains("invocations/s:  unlimited    (server default)"),
        "{out}"
    );
    let out = assert_success(&server.cli(&["service", "limits", "shop", "--reset", "--json"]));
    let reset: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(reset["overrides"], json!({}), "{reset}");
    assert_eq!(reset["limits"], reset["defaults"], "{reset}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_service_at_its_most_objects_gets_429_for_rest_and_tosca_creates_while_another_service_creates()
 {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(data.path());
    install_models_only(&server).await;
    assert_success(&server.cli(&["service", "limits", "shop", "--max-objects", "2"]));

    server.create(SHOP_ITEMS, json!({ "name": "one" })).await;
    server.create(SHOP_ITEMS, json!({ "name": "two" })).await;
    answered(
        &server
            .request(POST, SHOP_ITEMS, Some(json!({ "name": "three" })))
            .await,
        429,
        &[
            "service `shop` has 2 objects",
            "max_objects 2",
            "no `ShopItem` was created",
            "syncplane service limits shop --max-objects N",
        ],
    );
    let recipe = |model: &str, name: &str| {
        format!(
            "tosca_definitions_version: tosca_simple_yaml_1_0\ntopology_template:\n  node_templates:\n    \
             {name}:\n      type: tosca.nodes.{model}\n      properties:\n        name: {name}\n"
        )
    };
    let (status, answer) = server
        .tosca(&recipe("ShopItem", "tosca-three"), ADMIN, PASSWORD)
        .await;
    assert_eq!(status, 429, "{answer}");
    assert!(
        answer.contains("node template `tosca-three`")
            && answer.contains("service `shop` has 2 objects"),
        "{answer}"
    );
    // Re-applying a recipe for an existing object updates it: no new object.
    let (status, answer) = server
        .tosca(&recipe("ShopItem", "two"), ADMIN, PASSWORD)
        .await;
    assert_eq!(status, 200, "{answer}");

    // The other service is not limited.
    for i in 0..4 {
        server
            .create(FARM_ITEMS, json!({ "name": format!("farm-{i}") }))
            .await;
    }
    let (status, answer) = server
        .tosca(&recipe("FarmItem", "farm-tosca"), ADMIN, PASSWORD)
        .await;
    assert_eq!(status, 200, "{answer}");
    let listed = server.get(SHOP_ITEMS).await;
    assert_eq!(
        listed["items"].as_array().map(Vec::len),
        Some(2),
        "{listed}"
    );

    let status = assert_success(&server.cli(&["status"]));
    assert!(status.contains("limits: objects 2/2,"), "{status}");
    assert!(status.contains("limits: objects 5/unlimited,"), "{status}");

    // Raised, it creates again, at once.
    assert_success(&server.cli(&["service", "limits", "shop", "--max-objects", "3"]));
    server.create(SHOP_ITEMS, json!({ "name": "three" })).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_guests_declarative_create_beyond_the_quota_fails_with_a_clear_error() {
    let data = tempfile::tempdir().expect("tempdir");
    let service = tempfile::tempdir().expect("tempdir");
    let dir = service.path();
    std::fs::create_dir_all(dir.join("models")).expect("dir");
    std::fs::copy(
        repo().join("tests/guests/models/chain.xproto"),
        dir.join("models/chain.xproto"),
    )
    .expect("xproto");
    crate::util::write_manifest(
        dir,
        &format!(
            "manifest_version = 1\n[service]\nname = \"chain\"\nversion = \"0.1.0\"\n\
             xproto = [\"models/chain.xproto\"]\n\n[[event_steps]]\nname = \"event_regions\"\n\
             component = {:?}\ntopics = [\"regions\"]\n",
            test_guest("event_regions").display().to_string()
        ),
    );
    let server = Server::start(data.path());
    assert_success(&server.install(dir, &[]));
    assert_success(&server.cli(&["service", "limits", "chain", "--max-objects", "1"]));

    assert_success(&server.cli(&["event", "publish", "regions", "x", "--key", "north"]));
    assert_success(&server.cli(&["event", "publish", "regions", "x", "--key", "south"]));
    let started = Instant::now();
    let step = loop {
        let status = server.get("/syncplane/v1/status").await;
        let found = status["services"][0]["event_steps"]
            .as_array()
            .and_then(|a| a.iter().find(|s| s["events"] == 2).cloned());
        if let Some(step) = found {
            break step;
        }
        assert!(
            started.elapsed() < LIMIT,
            "the events were not handled: {status}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    assert_eq!(step["failed"], 1, "{step}");
    let error = step["last_error"].as_str().expect("last error");
    assert!(
        error.contains("service `chain` has 1 objects")
            && error.contains("max_objects 1")
            && error.contains("ChainRegion"),
        "{error}"
    );
    let regions = server.get("/xosapi/v1/chain/chainregions").await;
    let names: Vec<&str> = regions["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(names, ["north"], "{regions}");
}

const SLOW_XPROTO: &str = r#"option app_label = "slow";

message SlowItem (XOSBase) {
    required string name = 1;
}

message HungryItem (XOSBase) {
    required string name = 1;
}
"#;

const CALM_XPROTO: &str = r#"option app_label = "calm";

message CalmItem (XOSBase) {
    required string name = 1;
}
"#;

/// Service `slow` with `steps`, and service `calm` whose one step sleeps
/// as its object's name says.
fn slow_and_calm(steps: &[(&str, &str, &str)]) -> (tempfile::TempDir, tempfile::TempDir) {
    let slow = tempfile::tempdir().expect("tempdir");
    let calm = tempfile::tempdir().expect("tempdir");
    steps_package(slow.path(), "slow", SLOW_XPROTO, steps);
    steps_package(
        calm.path(),
        "calm",
        CALM_XPROTO,
        &[("calm_items", "slow_step", "CalmItem")],
    );
    (slow, calm)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_services_own_deadline_and_memory_limit_trap_its_guests_and_no_one_elses() {
    let data = tempfile::tempdir().expect("tempdir");
    let (slow, calm) = slow_and_calm(&[
        ("slow_items", "slow_step", "SlowItem"),
        ("hungry_items", "hostile_memory_bomb", "HungryItem"),
    ]);
    // The host allows 5 s per call; `slow` gets 300 ms and 16 of the
    // host's 32 MiB.
    let server = Server::start_with(data.path(), &[("--step-timeout", "5s")]);
    assert_success(&server.install(slow.path(), &[]));
    assert_success(&server.install(calm.path(), &[]));
    assert_success(&server.cli(&[
        "service",
        "limits",
        "slow",
        "--deadline",
        "300ms",
        "--memory-mib",
        "16",
    ]));

    let slow_item = server
        .create_path(
            "/xosapi/v1/slow/slowitems",
            json!({ "name": "sleep-3000-a" }),
        )
        .await;
    let hungry = server
        .create_path("/xosapi/v1/slow/hungryitems", json!({ "name": "bomb" }))
        .await;
    let calm_item = server
        .create_path(
            "/xosapi/v1/calm/calmitems",
            json!({ "name": "sleep-1000-b" }),
        )
        .await;

    let failed = |o: &Value| o["backend_code"] == 2;
    let trapped = server.wait_for(&slow_item, LIMIT, failed).await;
    let status = trapped["backend_status"].as_str().expect("status");
    assert!(
        status.starts_with("trap (deadline): step `slow_items` of service `slow`")
            && status.contains("deadline of 300ms"),
        "{status}"
    );
    let bombed = server.wait_for(&hungry, LIMIT, failed).await;
    let status = bombed["backend_status"].as_str().expect("status");
    assert!(
        status.starts_with("trap (memory): step `hungry_items` of service `slow`")
            && status.contains("beyond the limit of 16 MiB"),
        "{status}"
    );
    // A second longer than `slow`'s deadline, well within the host's.
    let synced = server
        .wait_for(&calm_item, LIMIT, |o| o["backend_code"] != 0)
        .await;
    assert_eq!(synced["backend_code"], 1, "{synced}");

    // Back to the host's deadline, live: the same sleep now finishes.
    assert_success(&server.cli(&["service", "limits", "slow", "--deadline", "default"]));
    let second = server
        .create_path(
            "/xosapi/v1/slow/slowitems",
            json!({ "name": "sleep-600-c" }),
        )
        .await;
    let synced = server
        .wait_for(&second, LIMIT, |o| o["backend_code"] != 0)
        .await;
    assert_eq!(synced["backend_code"], 1, "{synced}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_call_over_the_hosts_guest_memory_cap_fails_its_object_until_its_limit_fits() {
    let data = tempfile::tempdir().expect("tempdir");
    // Each hello-world call may grow to 64 MiB; all calls together to 32.
    let server = Server::start_with(
        data.path(),
        &[("--memory-limit-mib", "64"), ("--guest-memory-max", "32")],
    );
    crate::util::install_hello_world(&server);
    let (status, answer) = server
        .tosca(&crate::util::tutorial_recipe(), ADMIN, PASSWORD)
        .await;
    assert_eq!(status, 200, "{answer}");
    let instances = "/xosapi/v1/hello-world/helloworldserviceinstances";
    let id = server.get(instances).await["items"][0]["id"]
        .as_i64()
        .expect("an instance");
    let path = format!("{instances}/{id}");
    let refused = server
        .wait_for(&path, LIMIT, |o| {
            o["backend_status"]
                .as_str()
                .is_some_and(|s| s.contains("guest memory cap"))
        })
        .await;
    let message = refused["backend_status"].as_str().unwrap_or_default();
    assert!(
        message.contains(
            "its memory limit of 64 MiB is more than the host's guest memory cap of 32 MiB"
        ) && message.contains("service limits hello-world --memory-mib"),
        "{refused}"
    );
    assert_ne!(refused["backend_code"], 1, "{refused}");
    let status = server.get("/syncplane/v1/status").await;
    assert_eq!(status["guest_memory"]["cap_bytes"], 32 << 20, "{status}");
    assert!(
        status["guest_memory"]["refused"].as_u64() >= Some(1),
        "{status}"
    );
    let text = assert_success(&server.cli(&["status"]));
    assert!(
        text.contains("guest memory: 0 of 32 MiB reserved"),
        "{text}"
    );
    let metrics = server.metrics().await;
    assert!(
        metrics.contains("syncplane_guest_memory_cap_bytes 33554432")
            && metrics.contains("syncplane_guest_memory_refused_total"),
        "{metrics}"
    );

    // The operator lowers the service's limit under the cap: its next
    // retry runs.
    assert_success(&server.cli(&["service", "limits", "hello-world", "--memory-mib", "16"]));
    let synced = server
        .wait_for(&path, Duration::from_secs(90), |o| o["backend_code"] == 1)
        .await;
    assert_eq!(synced["backend_status"], "OK", "{synced}");
}

#[tokio::test(flavor = "multi_thread")]
async fn calls_beyond_the_guest_memory_cap_wait_for_room_and_every_object_syncs() {
    let data = tempfile::tempdir().expect("tempdir");
    let (slow, calm) = slow_and_calm(&[("slow_items", "slow_step", "SlowItem")]);
    // Room for two 16 MiB calls at once, though each service may run four.
    let server = Server::start_with(
        data.path(),
        &[
            ("--memory-limit-mib", "16"),
            ("--guest-memory-max", "32"),
            ("--step-timeout", "10s"),
        ],
    );
    assert_success(&server.install(slow.path(), &[]));
    assert_success(&server.install(calm.path(), &[]));
    let mut slow_items = Vec::new();
    for name in ["sleep-1500-a", "sleep-1500-b", "sleep-1500-c"] {
        slow_items.push(
            server
                .create_path("/xosapi/v1/slow/slowitems", json!({ "name": name }))
                .await,
        );
    }
    let calm_item = server
        .create_path("/xosapi/v1/calm/calmitems", json!({ "name": "sleep-10-d" }))
        .await;
    // While two slow calls hold the cap, the others wait: nothing fails,
    // and the other service syncs as soon as one ends.
    for path in slow_items.iter().chain([&calm_item]) {
        let synced = server
            .wait_for(path, LIMIT, |o| o["backend_code"] != 0)
            .await;
        assert_eq!(synced["backend_code"], 1, "{synced}");
    }
    let status = server.get("/syncplane/v1/status").await;
    let memory = &status["guest_memory"];
    assert!(memory["waits"].as_u64() >= Some(2), "{status}");
    assert_eq!(memory["refused"], 0, "{status}");
    assert_eq!(memory["reserved_bytes"], 0, "{status}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_service_whose_manifest_asks_for_less_memory_runs_under_a_cap_the_hosts_limit_would_pass()
{
    let data = tempfile::tempdir().expect("tempdir");
    let lean = tempfile::tempdir().expect("tempdir");
    steps_package(
        lean.path(),
        "slow",
        SLOW_XPROTO,
        &[
            ("slow_items", "slow_step", "SlowItem"),
            ("hungry_items", "hostile_memory_bomb", "HungryItem"),
        ],
    );
    // The manifest asks 16 MiB per instance, under the host's 64.
    let manifest = lean.path().join("syncplane.toml");
    let text = std::fs::read_to_string(&manifest).expect("manifest");
    let text = text.replacen("xproto = [", "memory_mib = 16\nxproto = [", 1);
    crate::util::write_manifest(lean.path(), &text);
    let server = Server::start_with(
        data.path(),
        &[("--memory-limit-mib", "64"), ("--guest-memory-max", "32")],
    );
    assert_success(&server.install(lean.path(), &[]));

    let (status, shown) = server.request(GET, &limits_path("slow"), None).await;
    assert_eq!(status, 200, "{shown}");
    assert_eq!(shown["limits"]["memory_mib"], 16, "{shown}");
    assert_eq!(shown["requested_memory_mib"], 16, "{shown}");
    assert_eq!(shown["overrides"], json!({}), "{shown}");
    let out = assert_success(&server.cli(&["service", "limits", "slow"]));
    assert!(
        out.contains("memory:         16 MiB       (asked by its manifest)"),
        "{out}"
    );

    // At the host's 64 MiB a call could never fit the 32 MiB cap; at the
    // manifest's 16 it runs, and its instance cannot grow past 16.
    let item = server
        .create_path("/xosapi/v1/slow/slowitems", json!({ "name": "sleep-10-a" }))
        .await;
    let synced = server
        .wait_for(&item, LIMIT, |o| o["backend_code"] != 0)
        .await;
    assert_eq!(synced["backend_code"], 1, "{synced}");
    let hungry = server
        .create_path("/xosapi/v1/slow/hungryitems", json!({ "name": "bomb" }))
        .await;
    let bombed = server
        .wait_for(&hungry, LIMIT, |o| o["backend_code"] == 2)
        .await;
    let status = bombed["backend_status"].as_str().expect("status");
    assert!(
        status.starts_with("trap (memory): step `hungry_items` of service `slow`")
            && status.contains("beyond the limit of 16 MiB"),
        "{status}"
    );

    // The operator's setting still wins, within the host's limit.
    let (code, answer) = server
        .request(PUT, &limits_path("slow"), Some(json!({ "memory_mib": 8 })))
        .await;
    assert_eq!(code, 200, "{answer}");
    assert_eq!(answer["limits"]["memory_mib"], 8, "{answer}");
}
