//! The service lifecycle through the real binary (issue 13): a package that
//! fails late leaves nothing behind; names that clash are refused naming
//! both sides; a crash just before or just after an activation commits
//! comes back with the old or the new version, whole; services load in
//! dependency order whatever order they were installed in; upgrades apply
//! compatible changes live and refuse incompatible ones with what blocks
//! them; rollback, `service show` and `service list`; uninstall with and
//! without objects and dependents; and changes that must not leave a
//! broken host behind (new fields' defaults, a model renamed in case, a
//! field's type changed over two upgrades, a model another service reads);
//! an upgrade waits for the old version's running calls to end or reach
//! their deadline. Meanwhile a service installed first keeps syncing.

use std::path::Path;
use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use syncplane_test_artifacts::test_guest;

use crate::util::{ADMIN, PASSWORD, Server, assert_success, describe};

const LIMIT: Duration = Duration::from_secs(30);
const GET: reqwest::Method = reqwest::Method::GET;

/// Service `steady`: installed first in every test, it must keep syncing
/// whatever happens to the others.
const STEADY_XPROTO: &str = r#"option app_label = "steady";

message SteadyItem (XOSBase) {
    required string name = 1;
}
"#;
const STEADY: &str = "/xosapi/v1/steady/steadyitems";

/// Writes a service package to `dir`: `xproto` as `models/<name>.xproto`,
/// and a manifest of `name` at `version` with `body` (its steps) after its
/// `[service]` section.
fn package(dir: &Path, name: &str, version: &str, xproto: &str, body: &str) {
    std::fs::create_dir_all(dir.join("models")).expect("package dir");
    std::fs::write(dir.join(format!("models/{name}.xproto")), xproto).expect("xproto");
    let manifest = format!(
        "manifest_version = 1\n\n[service]\nname = \"{name}\"\nversion = \"{version}\"\n\
         xproto = [\"models/{name}.xproto\"]\n\n{body}"
    );
    crate::util::write_manifest(dir, &manifest);
}

/// As [`package`], in a new temporary directory.
pub(crate) fn package_dir(
    name: &str,
    version: &str,
    xproto: &str,
    body: &str,
) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    package(dir.path(), name, version, xproto, body);
    dir
}

/// A `[[sync_steps]]` entry `name` running the prebuilt test guest `guest`.
pub(crate) fn sync_step(name: &str, guest: &str, observes: &[&str]) -> String {
    format!(
        "[[sync_steps]]\nname = \"{name}\"\ncomponent = {:?}\nobserves = {observes:?}\n\n",
        test_guest(guest).display().to_string()
    )
}

/// A package with models only, as `POST /syncplane/v1/services` takes it.
fn rest_package(name: &str, version: &str, xproto: &str) -> Value {
    let file = format!("models/{name}.xproto");
    let mut files = Map::new();
    files.insert(file.clone(), Value::String(xproto.to_owned()));
    json!({
        "manifest": {
            "manifest_version": 1,
            "service": { "name": name, "version": version, "xproto": [file] },
        },
        "xproto": files,
        "components": {},
    })
}

/// Installs a package over REST, as `rest_package` makes it.
async fn install_rest(server: &Server, package: Value) -> Value {
    let (status, installed) = server
        .request(
            reqwest::Method::POST,
            "/syncplane/v1/services",
            Some(json!({ "package": package })),
        )
        .await;
    assert_eq!(status, 200, "{installed}");
    installed
}

fn install_steady(server: &Server) {
    let dir = package_dir(
        "steady",
        "1.0.0",
        STEADY_XPROTO,
        &sync_step("steady_step", "cap_chain_step", &["SteadyItem"]),
    );
    assert_success(&server.install(dir.path(), &[]));
}

/// Creates a `SteadyItem` and waits until its step synced it.
async fn steady_syncs(server: &Server, name: &str) {
    let path = server.create_path(STEADY, json!({ "name": name })).await;
    let synced = server
        .wait_for(&path, LIMIT, |o| o["backend_code"] != 0)
        .await;
    assert_eq!(synced["backend_code"], 1, "{synced}");
}

/// Creates `SteadyItem`s in the background every 150 ms while lifecycle
/// changes go on around them; [`Steady::finish`] checks each was synced.
struct Steady {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<usize>,
}

impl Steady {
    fn start(server: &Server) -> Steady {
        let url = format!("{}{STEADY}", server.url);
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let task = tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut created = 0;
            while !stopped.load(Ordering::Relaxed) {
                let name = format!("steady-{created}");
                let response = http
                    .post(&url)
                    .basic_auth(ADMIN, Some(PASSWORD))
                    .json(&json!({ "name": name }))
                    .send()
                    .await
                    .expect("POST a steady item");
                let status = response.status().as_u16();
                let body = response.text().await.expect("body");
                assert_eq!(status, 201, "creating {name} meanwhile: {body}");
                created += 1;
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
            created
        });
        Steady { stop, task }
    }

    /// Stops creating, then waits until every item is synced.
    async fn finish(self, server: &Server) {
        self.stop.store(true, Ordering::Relaxed);
        let created = self.task.await.expect("the steady writer failed");
        assert!(created > 0, "no steady item was created");
        server
            .wait_for(STEADY, LIMIT, |list| {
                let items = list["items"].as_array().map(Vec::as_slice).unwrap_or(&[]);
                items.len() >= created && items.iter().all(|o| o["backend_code"] == 1)
            })
            .await;
    }
}

/// Creates an object and waits until it is synced; returns its path.
async fn create_synced(server: &Server, collection: &str, body: Value) -> String {
    let path = server.create_path(collection, body).await;
    let synced = server
        .wait_for(&path, LIMIT, |o| o["backend_code"] != 0)
        .await;
    assert_eq!(synced["backend_code"], 1, "{path}: {synced}");
    path
}

async fn status_of(server: &Server, path: &str) -> u16 {
    server.request(GET, path, None).await.0
}

/// Asserts the CLI refused: exit code 1 and each of `needles` on stderr.
fn refused(output: &Output, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(1),
        "expected a refusal:\n{}",
        describe(output)
    );
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "`{needle}` is not in the refusal:\n{}",
            describe(output)
        );
    }
}

/// Asserts a REST answer has `status` and an error saying each of `needles`.
fn answered(answer: &(u16, Value), status: u16, needles: &[&str]) {
    let (got, body) = answer;
    assert_eq!(*got, status, "{body}");
    let error = body["error"].as_str().unwrap_or_default();
    for needle in needles {
        assert!(error.contains(needle), "`{needle}` is not in: {body}");
    }
}

/// `GET /syncplane/v1/services/NAME` (`service` and `objects`).
async fn shown(server: &Server, name: &str) -> Value {
    server.get(&format!("/syncplane/v1/services/{name}")).await
}

/// The installed version of `name`.
async fn version_of(server: &Server, name: &str) -> Value {
    shown(server, name).await["service"]["version"].clone()
}

/// Objects per model as `service show` reports them.
fn objects(shown: &Value) -> Vec<(String, i64)> {
    shown["objects"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            (
                c["model"].as_str().unwrap_or_default().to_owned(),
                c["objects"].as_i64().unwrap_or(-1),
            )
        })
        .collect()
}

/// Asserts nothing of service `name` is live: none of `routes` is served,
/// it is neither listed nor shown, and no step of it (nor any of `steps`)
/// is in the status.
async fn assert_not_installed(server: &Server, name: &str, steps: &[&str], routes: &[&str]) {
    for route in routes {
        let (status, body) = server.request(GET, route, None).await;
        assert_eq!(status, 404, "{route} is still served: {body}");
    }
    let list = server.get("/syncplane/v1/services").await;
    assert!(
        list["items"]
            .as_array()
            .expect("items")
            .iter()
            .all(|s| s["name"] != name),
        "`{name}` is listed: {list}"
    );
    let (status, body) = server
        .request(GET, &format!("/syncplane/v1/services/{name}"), None)
        .await;
    assert_eq!(status, 404, "`{name}` is shown: {body}");
    let status = server.get("/syncplane/v1/status").await;
    for service in status["services"].as_array().expect("services") {
        assert_ne!(service["name"], name, "`{name}` is in the status: {status}");
        for step in service["steps"].as_array().into_iter().flatten() {
            assert!(
                !steps.iter().any(|s| step["name"] == *s),
                "step {} is in the status: {status}",
                step["name"]
            );
        }
    }
    let listed = assert_success(&server.cli(&["service", "list"]));
    assert!(
        !listed.lines().any(|l| l.starts_with(&format!("{name} "))),
        "`{name}` is in `service list`:\n{listed}"
    );
}

/// The bookkeeping of an object, which lifecycle changes must not touch.
fn bookkeeping(object: &Value) -> Value {
    let fields = [
        "id",
        "name",
        "created",
        "updated",
        "enacted",
        "backend_code",
        "backend_status",
        "backend_register",
        "deleted",
    ];
    Value::Object(
        fields
            .iter()
            .map(|f| ((*f).to_owned(), object[*f].clone()))
            .collect(),
    )
}

/// How many times the log says `line`.
fn occurrences(log: &str, line: &str) -> usize {
    log.matches(line).count()
}

/// Position of `line` in the log, panicking with the log when absent.
fn position(log: &str, line: &str) -> usize {
    log.find(line)
        .unwrap_or_else(|| panic!("`{line}` not in the log:\n{log}"))
}

// ---------------------------------------------------------------------------
// 1. A late failure

const LATE: &str = r#"option app_label = "late";

message LateThing (XOSBase) {
    required string name = 1;
}

message LateOther (XOSBase) {
    required string name = 1;
}
"#;
const LATE_THINGS: &str = "/xosapi/v1/late/latethings";
const LATE_OTHERS: &str = "/xosapi/v1/late/lateothers";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_package_that_fails_late_leaves_nothing_behind_and_installs_once_fixed() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(data.path());
    install_steady(&server);
    let steady = Steady::start(&server);
    let things = sync_step("late_things", "chain_step", &["LateThing"]);
    let steps = ["late_things", "late_others"];
    let routes = [LATE_THINGS, LATE_OTHERS];

    // The second step's component is not a component: only compiling it,
    // after the models, names and grants were checked, finds that out.
    let broken = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(broken.path().join("components")).expect("dir");
    std::fs::write(
        broken.path().join("components/broken.wasm"),
        b"\0asm\x0d\x00\x01\x00 not a component",
    )
    .expect("broken component");
    package(
        broken.path(),
        "late",
        "1.0.0",
        LATE,
        &format!(
            "{things}[[sync_steps]]\nname = \"late_others\"\n\
             component = \"components/broken.wasm\"\nobserves = \"LateOther\"\n"
        ),
    );
    refused(&server.install(broken.path(), &[]), &["late_others"]);
    assert_not_installed(&server, "late", &steps, &routes).await;

    // The second step observes a model nobody defines.
    let unknown = package_dir(
        "late",
        "1.0.0",
        LATE,
        &format!(
            "{things}{}",
            sync_step("late_others", "chain_step", &["Nowhere"])
        ),
    );
    refused(
        &server.install(unknown.path(), &[]),
        &["late_others", "`Nowhere`"],
    );
    assert_not_installed(&server, "late", &steps, &routes).await;

    // Fixed, the same package installs, and both its models sync.
    let fixed = package_dir(
        "late",
        "1.0.0",
        LATE,
        &format!(
            "{things}{}",
            sync_step("late_others", "chain_step", &["LateOther"])
        ),
    );
    let out = assert_success(&server.install(fixed.path(), &[]));
    assert!(out.contains("installed late 1.0.0"), "{out}");
    create_synced(&server, LATE_THINGS, json!({ "name": "thing-1" })).await;
    create_synced(&server, LATE_OTHERS, json!({ "name": "other-1" })).await;
    let log = server.log();
    position(&log, "chain synced thing-1");
    position(&log, "chain synced other-1");
    steady.finish(&server).await;
}

// ---------------------------------------------------------------------------
// 2. Clashes

/// One package whose names clash, and what the refusal must say.
struct Clash {
    name: &'static str,
    xproto: &'static str,
    says: &'static [&'static str],
    routes: &'static [&'static str],
}

const CLASHES: &[Clash] = &[
    Clash {
        name: "sitey",
        xproto: r#"option app_label = "sitey";

message site (XOSBase) {
    required string name = 1;
}
"#,
        says: &["model `site` of service `sitey` clashes with model `Site` of core"],
        routes: &["/xosapi/v1/sitey/sites"],
    },
    Clash {
        name: "twins",
        xproto: r#"option app_label = "twins";

message Gadget (XOSBase) {
    required string name = 1;
}

message GADGET (XOSBase) {
    required string name = 1;
}
"#,
        says: &["`Gadget`", "`GADGET`", "differ only in case"],
        routes: &["/xosapi/v1/twins/gadgets"],
    },
    Clash {
        name: "thief",
        xproto: r#"option app_label = "thief";

message Steadyitem (XOSBase) {
    required string name = 1;
}
"#,
        says: &[
            "model `Steadyitem` of service `thief` clashes with model `SteadyItem` of service `steady`",
        ],
        routes: &["/xosapi/v1/thief/steadyitems"],
    },
    Clash {
        name: "hijack",
        xproto: r#"option app_label = "core";

message Member (XOSBase) {
    option plural = "users";
    required string name = 1;
}
"#,
        says: &[
            "app_label `core` of service `hijack` belongs to core",
            "route /xosapi/v1/core/users of model `Member` is already served by model `User` of core",
        ],
        routes: &[],
    },
    Clash {
        name: "squatter",
        xproto: r#"option app_label = "steady";

message Squat (XOSBase) {
    required string name = 1;
}
"#,
        says: &["app_label `steady` of service `squatter` belongs to service `steady`"],
        routes: &["/xosapi/v1/steady/squats"],
    },
    Clash {
        name: "doubles",
        xproto: r#"option app_label = "doubles";

message Left (XOSBase) {
    option plural = "things";
    required string name = 1;
}

message Right (XOSBase) {
    option plural = "things";
    required string name = 1;
}
"#,
        says: &[
            "models `Left` and `Right` of service `doubles` would both be served at /xosapi/v1/doubles/things",
        ],
        routes: &["/xosapi/v1/doubles/things"],
    },
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_that_clash_are_refused_naming_both_sides_and_nothing_is_created() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(data.path());
    install_steady(&server);
    let steady = Steady::start(&server);
    for clash in CLASHES {
        let dir = package_dir(clash.name, "1.0.0", clash.xproto, "");
        let mut says = vec!["names clash"];
        says.extend(clash.says);
        refused(&server.install(dir.path(), &[]), &says);
        assert_not_installed(&server, clash.name, &[], clash.routes).await;

        let answer = server
            .request(
                reqwest::Method::POST,
                "/syncplane/v1/services",
                Some(json!({
                    "package": rest_package(clash.name, "1.0.0", clash.xproto),
                    "dry_run": false,
                })),
            )
            .await;
        answered(&answer, 409, &says);
        assert_not_installed(&server, clash.name, &[], clash.routes).await;
    }

    // `/xosapi/v1/core/users` still serves core's users.
    let users = server.get("/xosapi/v1/core/users").await;
    assert!(
        users["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|u| u["email"] == ADMIN),
        "{users}"
    );
    let list = server.get("/syncplane/v1/services").await;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1), "{list}");
    steady.finish(&server).await;
}

// ---------------------------------------------------------------------------
// 3. A crash while activating

const CRASH_V1: &str = r#"option app_label = "crash";

message CrashThing (XOSBase) {
    required string name = 1;
}
"#;
const CRASH_V2: &str = r#"option app_label = "crash";

message CrashThing (XOSBase) {
    required string name = 1;
    optional string colour = 2;
}

message CrashExtra (XOSBase) {
    required string name = 1;
}
"#;
const FRESH: &str = r#"option app_label = "fresh";

message FreshThing (XOSBase) {
    required string name = 1;
}
"#;
const CRASH_THINGS: &str = "/xosapi/v1/crash/crashthings";
const CRASH_EXTRAS: &str = "/xosapi/v1/crash/crashextras";
const FRESH_THINGS: &str = "/xosapi/v1/fresh/freshthings";

fn crash_v2() -> tempfile::TempDir {
    package_dir(
        "crash",
        "2.0.0",
        CRASH_V2,
        &sync_step("crash_step", "chain_step", &["CrashThing", "CrashExtra"]),
    )
}

fn fresh() -> tempfile::TempDir {
    package_dir(
        "fresh",
        "1.0.0",
        FRESH,
        &sync_step("fresh_step", "chain_step", &["FreshThing"]),
    )
}

/// What a crash test starts from and goes through: `steady` and `crash`
/// 1.0.0 installed with a synced `CrashThing`; then, on a server with
/// `SYNCPLANE_FAILPOINT=point`, an install of `fresh`, and on another an
/// upgrade of `crash` to 2.0.0, each stopping the process at `point`.
/// Returns the synced object's path and state before the crashes, and a
/// server started again without the failpoint.
async fn crash_during_install_and_upgrade(data: &Path, point: &str) -> (Server, String, Value) {
    let server = Server::start(data);
    install_steady(&server);
    let v1 = package_dir(
        "crash",
        "1.0.0",
        CRASH_V1,
        &sync_step("crash_step", "chain_step", &["CrashThing"]),
    );
    assert_success(&server.install(v1.path(), &[]));
    let kept = create_synced(&server, CRASH_THINGS, json!({ "name": "kept" })).await;
    let before = server.get(&kept).await;
    steady_syncs(&server, "before-the-crashes").await;
    server.kill();

    let failpoint = [("SYNCPLANE_FAILPOINT", point)];
    let fresh = fresh();
    let server = Server::start_with_env(data, &[], &failpoint);
    let install = server.install(fresh.path(), &[]);
    assert!(
        !install.status.success(),
        "the install survived {point}:\n{}",
        describe(&install)
    );
    server.kill();
    assert_eq!(
        occurrences(&crate::util::read_log(data), "failpoint reached"),
        1,
        "the install did not stop at {point}"
    );

    let v2 = crash_v2();
    let server = Server::start_with_env(data, &[], &failpoint);
    let upgrade = server.cli(&[
        "service",
        "upgrade",
        v2.path().to_str().expect("utf-8 path"),
    ]);
    assert!(
        !upgrade.status.success(),
        "the upgrade survived {point}:\n{}",
        describe(&upgrade)
    );
    server.kill();
    assert_eq!(
        occurrences(&crate::util::read_log(data), "failpoint reached"),
        2,
        "the upgrade did not stop at {point}"
    );

    let server = Server::start(data);
    (server, kept, before)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_before_an_activation_commits_leaves_the_old_state_whole() {
    let data = tempfile::tempdir().expect("tempdir");
    let (server, kept, before) =
        crash_during_install_and_upgrade(data.path(), "activate:before-commit").await;

    // `fresh` was never installed; `crash` is 1.0.0 with its routes and
    // fields, its object as it was.
    assert_not_installed(&server, "fresh", &["fresh_step"], &[FRESH_THINGS]).await;
    let crash = shown(&server, "crash").await;
    assert_eq!(crash["service"]["version"], "1.0.0", "{crash}");
    assert_eq!(crash["service"]["previous_version"], Value::Null, "{crash}");
    assert_eq!(status_of(&server, CRASH_EXTRAS).await, 404);
    let after = server.get(&kept).await;
    assert_eq!(bookkeeping(&after), bookkeeping(&before));
    assert!(after.get("colour").is_none(), "{after}");
    steady_syncs(&server, "after-the-crashes").await;
    create_synced(&server, CRASH_THINGS, json!({ "name": "still-v1" })).await;

    // Both changes go through now.
    let fresh = fresh();
    assert_success(&server.install(fresh.path(), &[]));
    create_synced(&server, FRESH_THINGS, json!({ "name": "fresh-1" })).await;
    let v2 = crash_v2();
    assert_success(&server.cli(&[
        "service",
        "upgrade",
        v2.path().to_str().expect("utf-8 path"),
    ]));
    assert_eq!(version_of(&server, "crash").await, "2.0.0");
    create_synced(&server, CRASH_EXTRAS, json!({ "name": "extra-1" })).await;
    let coloured = server.put(&kept, json!({ "colour": "red" })).await;
    assert_eq!(coloured["colour"], "red", "{coloured}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_an_activation_commits_comes_back_with_the_new_version_whole() {
    let data = tempfile::tempdir().expect("tempdir");
    let (server, kept, before) =
        crash_during_install_and_upgrade(data.path(), "activate:after-commit").await;

    // `fresh` is installed and syncs.
    let fresh = shown(&server, "fresh").await;
    assert_eq!(fresh["service"]["version"], "1.0.0", "{fresh}");
    create_synced(&server, FRESH_THINGS, json!({ "name": "fresh-1" })).await;

    // `crash` is 2.0.0: its new model served and synced, its new field
    // settable, its object's bookkeeping as it was.
    let crash = shown(&server, "crash").await;
    assert_eq!(crash["service"]["version"], "2.0.0", "{crash}");
    assert_eq!(crash["service"]["previous_version"], "1.0.0", "{crash}");
    let after = server.get(&kept).await;
    assert_eq!(bookkeeping(&after), bookkeeping(&before));
    assert_eq!(after.get("colour"), Some(&Value::Null), "{after}");
    create_synced(&server, CRASH_EXTRAS, json!({ "name": "extra-1" })).await;
    let coloured = server.put(&kept, json!({ "colour": "red" })).await;
    assert_eq!(coloured["colour"], "red", "{coloured}");
    steady_syncs(&server, "after-the-crashes").await;
    let log = server.log();
    position(&log, "chain synced fresh-1");
    position(&log, "chain synced extra-1");
}

// ---------------------------------------------------------------------------
// 4. Restart order

const ZZZ_BASE_V1: &str = r#"option app_label = "zzzbase";

message ZzzBase (XOSBase) {
    required string name = 1;
}
"#;
const ZZZ_BASE_V2: &str = r#"option app_label = "zzzbase";

message ZzzBase (XOSBase) {
    required string name = 1;
    optional string shade = 2;
}
"#;
/// A model extending `zzz-base`'s and one linking to it.
const AAA_EXT: &str = r#"option app_label = "aaaext";

message AaaExt (ZzzBase) {
    optional string flavour = 1;
}

message AaaLink (XOSBase) {
    required string name = 1;
    optional manytoone base->ZzzBase:aaa_links = 2:1001;
}
"#;
const BASES: &str = "/xosapi/v1/zzzbase/zzzbases";
const EXTS: &str = "/xosapi/v1/aaaext/aaaexts";
const LINKS: &str = "/xosapi/v1/aaaext/aaalinks";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_load_in_dependency_order_whatever_order_they_were_installed_in() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(data.path());
    install_steady(&server);
    let base_step = sync_step("base_step", "chain_step", &["ZzzBase"]);
    let base_v1 = package_dir("zzz-base", "1.0.0", ZZZ_BASE_V1, &base_step);
    assert_success(&server.install(base_v1.path(), &[]));
    let ext = package_dir(
        "aaa-ext",
        "1.0.0",
        AAA_EXT,
        &sync_step("ext_step", "cap_chain_step", &["AaaExt", "AaaLink"]),
    );
    assert_success(&server.install(ext.path(), &[]));
    // `zzz-base` upgraded after `aaa-ext`: whether by name or by time,
    // the service extending it now comes first.
    let base_v2 = package_dir("zzz-base", "1.1.0", ZZZ_BASE_V2, &base_step);
    assert_success(&server.install(base_v2.path(), &[]));

    let b1 = create_synced(&server, BASES, json!({ "name": "b1" })).await;
    let b1_id = server.get(&b1).await["id"].clone();
    let e1 = create_synced(
        &server,
        EXTS,
        json!({ "name": "e1", "flavour": "mint", "shade": "dark" }),
    )
    .await;
    create_synced(&server, LINKS, json!({ "name": "l1", "base_id": b1_id })).await;
    let logged_before_restart = server.log().len();
    server.kill();

    let server = Server::start(data.path());
    for name in ["zzz-base", "aaa-ext", "steady"] {
        assert_eq!(
            shown(&server, name).await["service"]["state"],
            "active",
            "{name}"
        );
    }
    let e1_again = server.get(&e1).await;
    assert_eq!(
        (
            &e1_again["flavour"],
            &e1_again["shade"],
            &e1_again["backend_code"]
        ),
        (&json!("mint"), &json!("dark"), &json!(1)),
        "{e1_again}"
    );
    create_synced(&server, BASES, json!({ "name": "b2", "shade": "pale" })).await;
    create_synced(&server, EXTS, json!({ "name": "e2", "flavour": "lime" })).await;
    create_synced(&server, LINKS, json!({ "name": "l2", "base_id": b1_id })).await;
    steady_syncs(&server, "after-restart").await;
    let log = server.log();
    let since = &log[logged_before_restart..];
    position(since, "chain synced b2");
    position(since, "chain instance synced e2");
    position(since, "chain instance synced l2");

    // The base cannot go, nor lose the model the other service builds on.
    refused(
        &server.cli(&["service", "uninstall", "zzz-base", "--purge"]),
        &[
            "service `aaa-ext` depends on it: its model `AaaExt` uses `ZzzBase`",
            "service `aaa-ext` depends on it: its model `AaaLink` uses `ZzzBase`",
        ],
    );
    let renamed = package_dir(
        "zzz-base",
        "2.0.0",
        &ZZZ_BASE_V1.replace("ZzzBase", "ZzzOther"),
        &sync_step("base_step", "chain_step", &["ZzzOther"]),
    );
    refused(
        &server.install(renamed.path(), &[]),
        &[
            "model `ZzzBase` would be removed but still has",
            "service `aaa-ext` depends on it (its model `AaaExt`)",
        ],
    );
    assert_eq!(version_of(&server, "zzz-base").await, "1.1.0");
}

// ---------------------------------------------------------------------------
// 5. Upgrades

const SHOP_V1: &str = r#"option app_label = "shop";

message Widget (XOSBase) {
    required string name = 1;
}

message Gizmo (XOSBase) {
    required string name = 1;
}

message Spare (XOSBase) {
    required string name = 1;
}
"#;
/// 1.1.0: `Widget` gains an optional field and a required one with a
/// default, `Doohickey` is new, `Spare` (empty) goes.
const SHOP_V1_1: &str = r#"option app_label = "shop";

message Widget (XOSBase) {
    required string name = 1;
    optional string colour = 2;
    required string size = 3 [default = "M"];
}

message Gizmo (XOSBase) {
    required string name = 1;
}

message Doohickey (XOSBase) {
    required string name = 1;
}
"#;
/// 1.2.0, incompatible three ways: `Widget.colour` changes type, `Widget`
/// gets a required field without a default, `Gizmo` (with an object) goes.
const SHOP_V1_2: &str = r#"option app_label = "shop";

message Widget (XOSBase) {
    required string name = 1;
    optional int32 colour = 2;
    required string size = 3 [default = "M"];
    required string owner = 4;
}

message Doohickey (XOSBase) {
    required string name = 1;
}
"#;
const WIDGETS: &str = "/xosapi/v1/shop/widgets";
const GIZMOS: &str = "/xosapi/v1/shop/gizmos";
const SPARES: &str = "/xosapi/v1/shop/spares";
const DOOHICKEYS: &str = "/xosapi/v1/shop/doohickeys";

/// Service `shop` at `version`; from 1.1.0 on it asks for a config value.
fn shop(version: &str, xproto: &str, observes: &[&str]) -> tempfile::TempDir {
    let capabilities = if xproto == SHOP_V1 {
        ""
    } else {
        "[capabilities]\nconfig = [\"endpoint\"]\n\n"
    };
    package_dir(
        "shop",
        version,
        xproto,
        &format!(
            "{capabilities}{}",
            sync_step("shop_step", "chain_step", observes)
        ),
    )
}

fn path_arg(dir: &tempfile::TempDir) -> &str {
    dir.path().to_str().expect("utf-8 path")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrades_apply_compatible_changes_live_and_refuse_incompatible_ones_with_what_blocks_them()
{
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(data.path());
    install_steady(&server);
    let steady = Steady::start(&server);

    // `upgrade` needs an installed service.
    let v1 = shop("1.0.0", SHOP_V1, &["Widget", "Gizmo", "Spare"]);
    refused(
        &server.cli(&["service", "upgrade", path_arg(&v1)]),
        &["service `shop` is not installed"],
    );

    // An install's dry run shows the plan and installs nothing.
    let plan = assert_success(&server.cli(&["service", "install", path_arg(&v1), "--dry-run"]));
    for line in [
        "plan: install shop (not installed) -> 1.0.0",
        "models added:    Gizmo, Spare, Widget",
        "steps added:     shop_step",
        "nothing blocks it",
    ] {
        assert!(plan.contains(line), "`{line}` is not in the plan:\n{plan}");
    }
    assert_not_installed(&server, "shop", &["shop_step"], &[WIDGETS, GIZMOS, SPARES]).await;

    assert_success(&server.install(v1.path(), &[]));
    let w1 = create_synced(&server, WIDGETS, json!({ "name": "w1" })).await;
    create_synced(&server, GIZMOS, json!({ "name": "g1" })).await;
    let w1_before = server.get(&w1).await;

    // A dry run prints the plan and changes nothing.
    let v1_1 = shop("1.1.0", SHOP_V1_1, &["Widget", "Gizmo", "Doohickey"]);
    let plan = assert_success(&server.cli(&["service", "upgrade", path_arg(&v1_1), "--dry-run"]));
    for line in [
        "plan: upgrade shop 1.0.0 -> 1.1.0",
        "models added:    Doohickey",
        "models removed:  Spare (0 objects)",
        "model Widget (1 objects): added [colour: string, size: string] removed [] changed []",
        "steps replaced:  shop_step",
        "grants added:    config endpoint",
        "nothing blocks it",
    ] {
        assert!(plan.contains(line), "`{line}` is not in the plan:\n{plan}");
    }
    assert_eq!(version_of(&server, "shop").await, "1.0.0");
    assert_eq!(status_of(&server, DOOHICKEYS).await, 404);
    assert_eq!(status_of(&server, SPARES).await, 200);
    assert!(server.get(&w1).await.get("colour").is_none());

    // The upgrade applies live: the new model is served, the empty removed
    // one is gone at once, the new fields are there and settable, and the
    // object kept its bookkeeping. 1.1.0 asks for a config value 1.0.0 did
    // not: the upgrade says it accepts that.
    let out =
        assert_success(&server.cli(&["service", "upgrade", path_arg(&v1_1), "--accept-grants"]));
    assert!(out.contains("installed shop 1.1.0"), "{out}");
    assert_eq!(status_of(&server, SPARES).await, 404);
    let upgraded = server.get(&w1).await;
    assert_eq!(bookkeeping(&upgraded), bookkeeping(&w1_before));
    assert_eq!(upgraded["colour"], Value::Null, "{upgraded}");
    assert!(upgraded.get("size").is_some(), "{upgraded}");
    let coloured = server.put(&w1, json!({ "colour": "red" })).await;
    assert_eq!(coloured["colour"], "red", "{coloured}");
    create_synced(&server, DOOHICKEYS, json!({ "name": "d1" })).await;
    create_synced(&server, WIDGETS, json!({ "name": "w2", "colour": "blue" })).await;

    // An incompatible upgrade is refused with everything that blocks it,
    // and changes nothing; its dry run shows the same list.
    let v1_2 = shop("1.2.0", SHOP_V1_2, &["Widget", "Doohickey"]);
    let blockers = [
        "field `Widget.colour` would change type from string to int",
        "new required field `Widget.owner` has no default, and `Widget` has 2 object(s)",
        "model `Gizmo` would be removed but still has 1 object(s)",
    ];
    let mut says = vec!["service `shop` cannot be changed as asked"];
    says.extend(blockers);
    refused(&server.cli(&["service", "upgrade", path_arg(&v1_2)]), &says);
    let plan = assert_success(&server.cli(&["service", "upgrade", path_arg(&v1_2), "--dry-run"]));
    for line in blockers
        .iter()
        .copied()
        .chain(["blocked by:", "models removed:  Gizmo (1 objects)"])
    {
        assert!(plan.contains(line), "`{line}` is not in the plan:\n{plan}");
    }
    assert_eq!(version_of(&server, "shop").await, "1.1.0");
    assert_eq!(status_of(&server, GIZMOS).await, 200);
    assert_eq!(server.get(&w1).await["colour"], "red");

    // Versions are semantic; an older one needs --allow-downgrade; the
    // same one reinstalls.
    let not_semver = shop("v2", SHOP_V1_1, &["Widget", "Gizmo", "Doohickey"]);
    refused(
        &server.install(not_semver.path(), &[]),
        &["\"v2\" is not a semantic version"],
    );
    let older = shop("1.0.9", SHOP_V1_1, &["Widget", "Gizmo", "Doohickey"]);
    refused(
        &server.install(older.path(), &[]),
        &[
            "`shop` 1.1.0 is installed; 1.0.9 is older",
            "--allow-downgrade",
        ],
    );
    assert_eq!(version_of(&server, "shop").await, "1.1.0");
    let out =
        assert_success(&server.cli(&["service", "install", path_arg(&older), "--allow-downgrade"]));
    assert!(out.contains("installed shop 1.0.9"), "{out}");
    let downgraded = shown(&server, "shop").await;
    assert_eq!(downgraded["service"]["previous_version"], "1.1.0");
    assert_success(&server.install(older.path(), &[]));
    assert_eq!(version_of(&server, "shop").await, "1.0.9");
    create_synced(&server, DOOHICKEYS, json!({ "name": "d2" })).await;
    steady.finish(&server).await;
}

const DEFAULTS_V1: &str = r#"option app_label = "defaults";

message Setting (XOSBase) {
    required string name = 1;
}
"#;
const DEFAULTS_V2: &str = r#"option app_label = "defaults";

message Setting (XOSBase) {
    required string name = 1;
    required string size = 2 [default = "M"];
    optional bool enabled = 3 [default = True];
    optional int32 level = 4 [default = 7];
}
"#;
const SETTINGS: &str = "/xosapi/v1/defaults/settings";

/// A new field with a default is a compatible change because the objects
/// that exist get the default: a required field must not be left empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fields_added_with_defaults_give_existing_objects_their_defaults() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(data.path());
    install_rest(&server, rest_package("defaults", "1.0.0", DEFAULTS_V1)).await;
    let old = server.create_path(SETTINGS, json!({ "name": "old" })).await;
    install_rest(&server, rest_package("defaults", "1.1.0", DEFAULTS_V2)).await;

    let new = server.create_path(SETTINGS, json!({ "name": "new" })).await;
    let new = server.get(&new).await;
    let old = server.get(&old).await;
    for object in [&new, &old] {
        assert_eq!(
            (&object["size"], &object["enabled"], &object["level"]),
            (&json!("M"), &json!(true), &json!(7)),
            "{} after the upgrade: {object}",
            object["name"]
        );
    }
}

// ---------------------------------------------------------------------------
// 6. Rollback, show and list

const ROLL_V1: &str = r#"option app_label = "roll";

message RollThing (XOSBase) {
    required string name = 1;
}
"#;
const ROLL_V2: &str = r#"option app_label = "roll";

message RollThing (XOSBase) {
    required string name = 1;
    optional int32 size = 2;
}

message RollExtra (XOSBase) {
    required string name = 1;
}
"#;
const ROLL_THINGS: &str = "/xosapi/v1/roll/rollthings";
const ROLL_EXTRAS: &str = "/xosapi/v1/roll/rollextras";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_returns_to_the_previous_version_and_show_and_list_tell_them_apart() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(data.path());
    install_steady(&server);
    let steady = Steady::start(&server);
    let v1 = package_dir(
        "roll",
        "1.0.0",
        ROLL_V1,
        &sync_step("roll_step", "chain_step", &["RollThing"]),
    );
    let v2 = package_dir(
        "roll",
        "2.0.0",
        ROLL_V2,
        &sync_step("roll_step", "chain_step", &["RollThing", "RollExtra"]),
    );
    assert_success(&server.install(v1.path(), &[]));
    let r1 = create_synced(&server, ROLL_THINGS, json!({ "name": "r1" })).await;
    assert_success(&server.cli(&["service", "upgrade", path_arg(&v2)]));
    server.put(&r1, json!({ "size": 3 })).await;

    // `service show`: version, state, installed at, previous, objects.
    let details = shown(&server, "roll").await;
    let service = &details["service"];
    assert_eq!(
        (
            &service["version"],
            &service["state"],
            &service["previous_version"]
        ),
        (&json!("2.0.0"), &json!("active"), &json!("1.0.0")),
        "{details}"
    );
    assert!(
        service["installed_at"].as_f64().unwrap_or(0.0) > 1.0e9,
        "{details}"
    );
    let mut counts = objects(&details);
    counts.sort();
    assert_eq!(
        counts,
        [("RollExtra".to_owned(), 0), ("RollThing".to_owned(), 1)],
        "{details}"
    );
    let json_show: Value = serde_json::from_str(&assert_success(
        &server.cli(&["service", "show", "roll", "--json"]),
    ))
    .expect("JSON");
    assert_eq!(json_show["service"]["version"], "2.0.0", "{json_show}");
    let text = assert_success(&server.cli(&["service", "show", "roll"]));
    for line in [
        "service roll 2.0.0",
        "state:          active, installed 2",
        "previous:       1.0.0",
        "RollThing (1)",
        "RollExtra (0)",
    ] {
        assert!(text.contains(line), "`{line}` is not in:\n{text}");
    }

    // `service list`: one line per service, and JSON.
    let table = assert_success(&server.cli(&["service", "list"]));
    let row = table
        .lines()
        .find(|l| l.starts_with("roll "))
        .unwrap_or_else(|| panic!("no row for roll:\n{table}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        (cells[1], cells[2], cells.last().copied()),
        ("2.0.0", "active", Some("1.0.0")),
        "{table}"
    );
    let steady_row = table
        .lines()
        .find(|l| l.starts_with("steady "))
        .unwrap_or_else(|| panic!("no row for steady:\n{table}"));
    assert!(steady_row.trim_end().ends_with(" -"), "{table}");
    let listed: Value =
        serde_json::from_str(&assert_success(&server.cli(&["service", "list", "--json"])))
            .expect("JSON");
    let roll = listed["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|s| s["name"] == "roll")
        .unwrap_or_else(|| panic!("{listed}"));
    assert_eq!(roll["previous_version"], "1.0.0", "{listed}");

    // A dry run, over the CLI and REST, changes nothing.
    let plan = assert_success(&server.cli(&["service", "rollback", "roll", "--dry-run"]));
    for line in [
        "plan: rollback roll 2.0.0 -> 1.0.0",
        "models removed:  RollExtra (0 objects)",
        "model RollThing (1 objects): added [] removed [size] changed []",
    ] {
        assert!(plan.contains(line), "`{line}` is not in the plan:\n{plan}");
    }
    let (status, planned) = server
        .request(
            reqwest::Method::POST,
            "/syncplane/v1/services/roll/rollback?dry_run=true",
            None,
        )
        .await;
    assert_eq!(status, 200, "{planned}");
    assert_eq!(
        (&planned["action"], &planned["to_version"]),
        (&json!("rollback"), &json!("1.0.0")),
        "{planned}"
    );
    assert_eq!(version_of(&server, "roll").await, "2.0.0");
    assert_eq!(status_of(&server, ROLL_EXTRAS).await, 200);

    // Back to 1.0.0: its routes and fields, and its steps sync.
    let out = assert_success(&server.cli(&["service", "rollback", "roll"]));
    assert!(out.contains("rolled roll back to 1.0.0"), "{out}");
    assert_eq!(status_of(&server, ROLL_EXTRAS).await, 404);
    let rolled = server.get(&r1).await;
    assert!(rolled.get("size").is_none(), "{rolled}");
    let details = shown(&server, "roll").await;
    assert_eq!(
        (
            &details["service"]["version"],
            &details["service"]["previous_version"]
        ),
        (&json!("1.0.0"), &json!("2.0.0")),
        "{details}"
    );
    create_synced(&server, ROLL_THINGS, json!({ "name": "r2" })).await;

    // Rolling back again returns to 2.0.0, over REST; the stored value of
    // the field comes back with it.
    let (status, back) = server
        .request(
            reqwest::Method::POST,
            "/syncplane/v1/services/roll/rollback",
            None,
        )
        .await;
    assert_eq!(status, 200, "{back}");
    assert_eq!(back["version"], "2.0.0", "{back}");
    assert_eq!(server.get(&r1).await["size"], 3);
    create_synced(&server, ROLL_EXTRAS, json!({ "name": "x1" })).await;

    // Now 1.0.0 would remove a model with an object: refused, over both.
    refused(
        &server.cli(&["service", "rollback", "roll"]),
        &["model `RollExtra` would be removed but still has 1 object(s)"],
    );
    let answer = server
        .request(
            reqwest::Method::POST,
            "/syncplane/v1/services/roll/rollback",
            None,
        )
        .await;
    answered(&answer, 409, &["`RollExtra`"]);
    assert_eq!(version_of(&server, "roll").await, "2.0.0");

    // The history has every change made, by whom, and none refused.
    let history = server.get("/syncplane/v1/services/roll/history").await;
    let changes: Vec<(&str, &str, &str)> = history["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap_or("?"),
                e["version"].as_str().unwrap_or("?"),
                e["by"].as_str().unwrap_or("?"),
            )
        })
        .collect();
    let admin = "user admin@opencord.org";
    assert_eq!(
        changes,
        [
            ("install", "1.0.0", admin),
            ("upgrade", "2.0.0", admin),
            ("rollback", "1.0.0", admin),
            ("rollback", "2.0.0", admin)
        ],
        "{history}"
    );
    let text = assert_success(&server.cli(&["service", "history", "roll"]));
    assert_eq!(text.lines().count(), 4, "{text}");
    assert!(
        text.lines().last().is_some_and(
            |l| l.contains("rollback  2.0.0") && l.ends_with("by user admin@opencord.org")
        ),
        "{text}"
    );
    refused(
        &server.cli(&["service", "history", "nosuch"]),
        &["service `nosuch` was never installed"],
    );

    // Nothing to roll back to; nothing installed.
    refused(
        &server.cli(&["service", "rollback", "steady"]),
        &["service `steady` has no previous version to roll back to"],
    );
    let answer = server
        .request(
            reqwest::Method::POST,
            "/syncplane/v1/services/steady/rollback",
            None,
        )
        .await;
    answered(&answer, 409, &["no previous version"]);
    let answer = server
        .request(
            reqwest::Method::POST,
            "/syncplane/v1/services/nosuch/rollback",
            None,
        )
        .await;
    answered(&answer, 404, &["no service `nosuch` is installed"]);
    steady.finish(&server).await;
}

// ---------------------------------------------------------------------------
// 7. Uninstall

const GONE: &str = r#"option app_label = "gone";

message GoneHub (XOSBase) {
    required string name = 1;
}

message GoneSpoke (XOSBase) {
    required string name = 1;
    required manytoone hub->GoneHub:spokes = 2:1001;
}
"#;
/// Service `leaner`, which links to `gone`'s model.
const LEANER: &str = r#"option app_label = "leaner";

message LeanerThing (XOSBase) {
    required string name = 1;
    optional manytoone hub->GoneHub:leaners = 2:1001;
}
"#;
const HUBS: &str = "/xosapi/v1/gone/gonehubs";
const SPOKES: &str = "/xosapi/v1/gone/gonespokes";
const LEANERS: &str = "/xosapi/v1/leaner/leanerthings";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uninstall_is_refused_while_objects_or_dependents_remain_and_purge_runs_the_delete_steps() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(data.path());
    install_steady(&server);
    let steady = Steady::start(&server);
    let gone = package_dir(
        "gone",
        "1.0.0",
        GONE,
        &sync_step("gone_step", "chain_step", &["GoneHub", "GoneSpoke"]),
    );
    assert_success(&server.install(gone.path(), &[]));
    let (status, plan) = server
        .request(
            reqwest::Method::POST,
            "/syncplane/v1/services",
            Some(json!({ "package": rest_package("leaner", "1.0.0", LEANER), "dry_run": true })),
        )
        .await;
    assert_eq!(status, 200, "{plan}");
    assert_eq!(
        (&plan["action"], &plan["models_added"]),
        (&json!("install"), &json!(["LeanerThing"])),
        "{plan}"
    );
    assert_not_installed(&server, "leaner", &[], &[LEANERS]).await;
    let leaner = install_rest(&server, rest_package("leaner", "1.0.0", LEANER)).await;
    assert_eq!(leaner["version"], "1.0.0", "{leaner}");
    let hub = create_synced(&server, HUBS, json!({ "name": "hub-1" })).await;
    let hub_id = server.get(&hub).await["id"].clone();
    for spoke in ["spoke-1", "spoke-2"] {
        create_synced(&server, SPOKES, json!({ "name": spoke, "hub_id": hub_id })).await;
    }

    // A service another one depends on stays, naming the dependent.
    let dependent = "service `leaner` depends on it: its model `LeanerThing` uses `GoneHub`";
    refused(
        &server.cli(&["service", "uninstall", "gone", "--purge"]),
        &["service `gone` cannot be uninstalled", dependent],
    );
    let answer = server
        .request(reqwest::Method::DELETE, "/syncplane/v1/services/gone", None)
        .await;
    answered(&answer, 409, &[dependent]);

    // Without objects, an uninstall takes the routes at once.
    let out = assert_success(&server.cli(&["service", "uninstall", "leaner"]));
    assert!(out.contains("uninstalled leaner"), "{out}");
    assert_not_installed(&server, "leaner", &[], &[LEANERS]).await;
    // Its history stays, ending with the uninstall.
    let history = assert_success(&server.cli(&["service", "history", "leaner"]));
    let last = history.lines().last().unwrap_or_default();
    assert!(
        last.contains("uninstall") && last.ends_with("by user admin@opencord.org"),
        "{history}"
    );

    // With objects, refused with each model and its count; nothing deleted.
    let held = "service `gone` still has objects: GoneHub 1, GoneSpoke 2";
    refused(
        &server.cli(&["service", "uninstall", "gone"]),
        &[held, "--purge"],
    );
    let answer = server
        .request(reqwest::Method::DELETE, "/syncplane/v1/services/gone", None)
        .await;
    answered(&answer, 409, &[held]);
    let kept = server.get(&hub).await;
    assert_eq!(
        (&kept["backend_code"], &kept["deleted"]),
        (&json!(1), &json!(false)),
        "{kept}"
    );
    assert!(!server.log().contains("chain deleted"), "{}", server.log());

    // --purge deletes them through the normal path, dependents first, then
    // the routes, tables and steps go, with no restart.
    let out = assert_success(&server.cli(&["service", "uninstall", "gone", "--purge"]));
    assert!(
        out.contains("uninstalled gone (purged GoneHub 1, GoneSpoke 2)"),
        "{out}"
    );
    let log = server.log();
    let hub_deleted = position(&log, "chain deleted hub-1");
    for spoke in ["spoke-1", "spoke-2"] {
        assert!(
            position(&log, &format!("chain deleted {spoke}")) < hub_deleted,
            "the hub was torn down before its spoke:\n{log}"
        );
    }
    assert_not_installed(&server, "gone", &["gone_step"], &[HUBS, SPOKES]).await;

    // Its tables went too: installed again, it starts empty; uninstalled
    // again, it needs no purge.
    assert_success(&server.install(gone.path(), &[]));
    let mut counts = objects(&shown(&server, "gone").await);
    counts.sort();
    assert_eq!(
        counts,
        [("GoneHub".to_owned(), 0), ("GoneSpoke".to_owned(), 0)]
    );
    let hubs = server.get(HUBS).await;
    assert_eq!(hubs["items"], json!([]), "{hubs}");
    assert_success(&server.cli(&["service", "uninstall", "gone"]));

    // An unknown service.
    refused(
        &server.cli(&["service", "uninstall", "nosuch"]),
        &["no service `nosuch` is installed"],
    );
    let answer = server
        .request(
            reqwest::Method::DELETE,
            "/syncplane/v1/services/nosuch",
            None,
        )
        .await;
    answered(&answer, 404, &["no service `nosuch` is installed"]);
    steady.finish(&server).await;

    // After a restart, what was uninstalled stays so.
    server.kill();
    let server = Server::start(data.path());
    assert_not_installed(&server, "gone", &["gone_step"], &[HUBS, SPOKES]).await;
    assert_not_installed(&server, "leaner", &[], &[LEANERS]).await;
    steady_syncs(&server, "after-restart").await;
}

// ---------------------------------------------------------------------------
// 8. Changes that must not leave a broken host behind

const CASER_V1: &str = r#"option app_label = "caser";

message Thing (XOSBase) {
    required string name = 1;
}
"#;
const CASER_THINGS: &str = "/xosapi/v1/caser/things";

/// `Thing` and `THING` share the table `m_thing` and the route
/// `/xosapi/v1/caser/things`: renaming the one to the other (with no
/// objects, so the old model may go) must leave the new model a table,
/// or be refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_renamed_only_in_case_is_still_served() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(data.path());
    install_rest(&server, rest_package("caser", "1.0.0", CASER_V1)).await;
    let (status, answer) = server
        .request(
            reqwest::Method::POST,
            "/syncplane/v1/services",
            Some(json!({
                "package": rest_package("caser", "1.1.0", &CASER_V1.replace("Thing", "THING")),
            })),
        )
        .await;
    assert!(
        status == 200 || status == 409,
        "the upgrade answered {status}: {answer}"
    );
    let (status, created) = server
        .request(
            reqwest::Method::POST,
            CASER_THINGS,
            Some(json!({ "name": "after-the-rename" })),
        )
        .await;
    assert_eq!(
        status,
        201,
        "{CASER_THINGS} after the rename: {created}\nserver log:\n{}",
        server.log()
    );
    let listed = server.get(CASER_THINGS).await;
    assert_eq!(
        listed["items"].as_array().map(Vec::len),
        Some(1),
        "{listed}"
    );
}

const PAINT_V1: &str = r#"option app_label = "paint";

message Pot (XOSBase) {
    required string name = 1;
    optional string colour = 2;
}
"#;
const PAINT_V2: &str = r#"option app_label = "paint";

message Pot (XOSBase) {
    required string name = 1;
}
"#;
const PAINT_V3: &str = r#"option app_label = "paint";

message Pot (XOSBase) {
    required string name = 1;
    optional int32 colour = 2;
}
"#;
const POTS: &str = "/xosapi/v1/paint/pots";

/// A field removed keeps its stored values (for a rollback); a later
/// version adding a field of that name with another type must either be
/// refused as a type change or not meet the old values: the model stays
/// readable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_field_dropped_and_added_back_with_another_type_leaves_its_model_readable() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(data.path());
    install_rest(&server, rest_package("paint", "1.0.0", PAINT_V1)).await;
    let pot = server
        .create_path(POTS, json!({ "name": "pot", "colour": "red" }))
        .await;
    install_rest(&server, rest_package("paint", "1.1.0", PAINT_V2)).await;
    let (status, answer) = server
        .request(
            reqwest::Method::POST,
            "/syncplane/v1/services",
            Some(json!({ "package": rest_package("paint", "1.2.0", PAINT_V3) })),
        )
        .await;
    match status {
        409 => answered(&(status, answer), 409, &["`Pot.colour`"]),
        200 => {}
        _ => panic!("the upgrade answered {status}: {answer}"),
    }
    for path in [POTS, pot.as_str()] {
        let (status, body) = server.request(GET, path, None).await;
        assert_eq!(
            status,
            200,
            "GET {path}: {body}\nserver log:\n{}",
            server.log()
        );
    }
}

const SHELF_V1: &str = r#"option app_label = "shelf";

message Spare (XOSBase) {
    required string name = 1;
}

message Keep (XOSBase) {
    required string name = 1;
}
"#;
const SHELF_V2: &str = r#"option app_label = "shelf";

message Keep (XOSBase) {
    required string name = 1;
}
"#;
const WATCHER: &str = r#"option app_label = "watcher";

message Watch (XOSBase) {
    required string name = 1;
}
"#;

/// Service `watcher` reads `shelf.Spare` (a granted capability) and its
/// step observes it, so it depends on that model as much as a service
/// linking to it does: `shelf` may neither drop the model nor go, or the
/// host could not load `watcher` again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_another_service_reads_and_observes_cannot_be_taken_from_under_it() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(data.path());
    let shelf = package_dir("shelf", "1.0.0", SHELF_V1, "");
    assert_success(&server.install(shelf.path(), &[]));
    let watcher = package_dir(
        "watcher",
        "1.0.0",
        WATCHER,
        &format!(
            "[capabilities.models]\nread = [\"shelf.Spare\"]\n\n{}",
            sync_step("watch_step", "chain_step", &["Watch", "Spare"])
        ),
    );
    assert_success(&server.install(watcher.path(), &["read=shelf.Spare"]));

    let without_spare = package_dir("shelf", "1.1.0", SHELF_V2, "");
    let upgrade = server.install(without_spare.path(), &[]);
    let uninstall = server.cli(&["service", "uninstall", "shelf"]);
    server.kill();
    let server = Server::start(data.path());
    for name in ["shelf", "watcher"] {
        assert_eq!(
            shown(&server, name).await["service"]["state"],
            "active",
            "{name}"
        );
    }
    refused(&upgrade, &["`Spare`", "service `watcher`"]);
    refused(&uninstall, &["service `watcher`"]);
    assert_eq!(version_of(&server, "shelf").await, "1.0.0");
    create_synced(
        &server,
        "/xosapi/v1/shelf/spares",
        json!({ "name": "spare-1" }),
    )
    .await;
}

// ---------------------------------------------------------------------------
// 8. Changes wait for running invocations

const DRAIN_XPROTO: &str = r#"option app_label = "drain";

message DrainItem (XOSBase) {
    required string name = 1;
}
"#;
const DRAIN_ITEMS: &str = "/xosapi/v1/drain/drainitems";

/// Waits until the server log says `line`.
async fn logged(server: &Server, line: &str) {
    let started = Instant::now();
    while !server.log().contains(line) {
        assert!(
            started.elapsed() < LIMIT,
            "`{line}` not logged within {LIMIT:?}:\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The first log line containing `needle`.
fn line_with<'a>(log: &'a str, needle: &str) -> &'a str {
    log.lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("`{needle}` not in the log:\n{log}"))
}

/// How long the last change in `log` waited for running invocations.
fn drain_wait_ms(log: &str) -> u64 {
    let line = log
        .lines()
        .rfind(|l| l.contains("running invocations finished before the change"))
        .unwrap_or_else(|| panic!("no change waited for running invocations:\n{log}"));
    line.split("waited_ms=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|ms| ms.parse().ok())
        .unwrap_or_else(|| panic!("no waited_ms in {line}"))
}

/// Upgrades the `drain` service to `version`, whose step is `step`.
fn upgrade_drain(server: &Server, version: &str, step: &str) {
    let dir = package_dir(
        "drain",
        version,
        DRAIN_XPROTO,
        &sync_step(step, "slow_step", &["DrainItem"]),
    );
    assert_success(&server.cli(&["service", "upgrade", path_arg(&dir)]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrades_wait_for_running_invocations_of_the_old_version_until_they_end_or_reach_their_deadline()
 {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start_with(data.path(), &[("--step-timeout", "4s")]);
    install_steady(&server);
    let steady = Steady::start(&server);
    let v1 = package_dir(
        "drain",
        "1.0.0",
        DRAIN_XPROTO,
        &sync_step("work_v1", "slow_step", &["DrainItem"]),
    );
    assert_success(&server.install(v1.path(), &[]));

    // A call of 1.0.0 that runs 2 s: the upgrade waits for it to end, and
    // only then activates 1.1.0.
    let finishing = server
        .create_path(DRAIN_ITEMS, json!({ "name": "sleep-2000-a" }))
        .await;
    logged(&server, "slow started sleep-2000-a").await;
    upgrade_drain(&server, "1.1.0", "work_v2");
    let synced = server
        .wait_for(&finishing, LIMIT, |o| o["backend_code"] != 0)
        .await;
    assert_eq!(synced["backend_code"], 1, "{synced}");
    let log = server.log();
    let finished = line_with(&log, "slow finished sleep-2000-a");
    assert!(finished.contains("step=work_v1"), "{finished}");
    assert!(
        position(&log, "slow finished sleep-2000-a") < position(&log, "version=1.1.0"),
        "1.1.0 was activated before the call of 1.0.0 ended:\n{log}"
    );
    assert_eq!(
        version_of(&server, "drain").await,
        "1.1.0",
        "{}",
        server.log()
    );

    // New objects run on the new version's component.
    let fresh = server
        .create_path(DRAIN_ITEMS, json!({ "name": "sleep-0-b" }))
        .await;
    let synced = server
        .wait_for(&fresh, LIMIT, |o| o["backend_code"] != 0)
        .await;
    assert_eq!(synced["backend_code"], 1, "{synced}");
    let log = server.log();
    let finished = line_with(&log, "slow finished sleep-0-b");
    assert!(finished.contains("step=work_v2"), "{finished}");

    // A call that would run for ten minutes: the upgrade waits until the
    // 4 s deadline ends it, then activates.
    let stuck = server
        .create_path(DRAIN_ITEMS, json!({ "name": "sleep-600000-c" }))
        .await;
    logged(&server, "slow started sleep-600000-c").await;
    upgrade_drain(&server, "1.2.0", "work_v3");
    let trapped = server
        .wait_for(&stuck, LIMIT, |o| o["backend_code"] != 0)
        .await;
    assert_eq!(trapped["backend_code"], 2, "{trapped}");
    let status = trapped["backend_status"].as_str().expect("status");
    assert!(status.contains("deadline"), "{status}");
    let log = server.log();
    assert!(
        !log.contains("slow finished sleep-600000-c"),
        "the stuck call was not stopped:\n{log}"
    );
    // Each change that waited says how long, before it activated.
    let before_v1_1 = &log[..position(&log, "version=1.1.0")];
    let before_v1_2 = &log[position(&log, "version=1.1.0")..position(&log, "version=1.2.0")];
    let first = drain_wait_ms(before_v1_1);
    let second = drain_wait_ms(before_v1_2);
    assert!(first >= 500, "1.1.0 waited only {first} ms for a 2 s call");
    assert!(
        second >= 2000,
        "1.2.0 waited only {second} ms for a call stopped at its 4 s deadline"
    );
    assert_eq!(version_of(&server, "drain").await, "1.2.0");
    steady.finish(&server).await;
}
