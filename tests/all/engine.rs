//! The dependency engine through a real multi-model guest: order, deferral
//! behind a failure, teardown order, status and metrics, and a SIGKILL in
//! the middle of a cohort.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use syncplane_test_artifacts::test_guest;

use crate::util::{Server, assert_success, repo};

const LIMIT: Duration = Duration::from_secs(30);
const REGIONS: &str = "/xosapi/v1/chain/chainregions";
const ZONES: &str = "/xosapi/v1/chain/chainzones";
const RACKS: &str = "/xosapi/v1/chain/chainracks";

/// A service directory whose sync step serves the three chain models, with
/// two event steps and a pull step.
pub(crate) fn chain_service(dir: &Path, extra: &str) {
    std::fs::create_dir_all(dir.join("models")).expect("dir");
    std::fs::copy(
        repo().join("tests/guests/models/chain.xproto"),
        dir.join("models/chain.xproto"),
    )
    .expect("xproto");
    let manifest = format!(
        "manifest_version = 1\n[service]\nname = \"chain\"\nversion = \"0.1.0\"\n\
         xproto = [\"models/chain.xproto\"]\n\n[[sync_steps]]\nname = \"chain_step\"\n\
         component = {:?}\nobserves = [\"ChainRegion\", \"ChainZone\", \"ChainRack\"]\n\n\
         [[event_steps]]\nname = \"event_regions\"\ncomponent = {:?}\ntopics = [\"regions\"]\n\n\
         [[event_steps]]\nname = \"event_snoop\"\ncomponent = {:?}\ntopics = [\"snoop\"]\n\n\
         [[pull_steps]]\nname = \"pull_regions\"\ncomponent = {:?}\ninterval = \"200ms\"\n",
        test_guest("chain_step").display().to_string(),
        test_guest("event_regions").display().to_string(),
        test_guest("event_snoop").display().to_string(),
        test_guest("pull_regions").display().to_string(),
    );
    crate::util::write_manifest(dir, &(manifest + extra));
}

async fn start_with_chain(data: &Path) -> Server {
    start_with_chain_and(data, "").await
}

/// As [`start_with_chain`], with more manifest entries.
async fn start_with_chain_and(data: &Path, extra: &str) -> Server {
    let service = tempfile::tempdir().expect("tempdir");
    chain_service(service.path(), extra);
    let server = Server::start(data);
    assert_success(&server.cli(&[
        "service",
        "install",
        service.path().to_str().expect("utf-8"),
    ]));
    server
}

/// Position of a line in the log, panicking with the log when absent.
fn position(log: &str, line: &str) -> usize {
    log.find(line)
        .unwrap_or_else(|| panic!("`{line}` not in the log:\n{log}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_chain_syncs_in_order_waits_behind_a_failure_and_is_torn_down_dependents_first() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = start_with_chain(data.path()).await;
    let eu = server.create(REGIONS, json!({ "name": "eu" })).await;
    let zone = server
        .create(ZONES, json!({ "name": "bad-zone", "region_id": eu }))
        .await;
    let rack = server
        .create(RACKS, json!({ "name": "r1", "zone_id": zone }))
        .await;
    let us = server.create(REGIONS, json!({ "name": "us" })).await;

    // The failing middle object: an error with its message; its dependent
    // waits with a status naming it; the others are unaffected.
    let failed = server
        .wait_for(&format!("{ZONES}/{zone}"), LIMIT, |o| {
            o["backend_code"] == 2
        })
        .await;
    assert_eq!(failed["backend_status"], "bad-zone is broken");
    let waiting = server
        .wait_for(&format!("{RACKS}/{rack}"), LIMIT, |o| {
            o["backend_status"]
                .as_str()
                .is_some_and(|s| s.starts_with("waiting on"))
        })
        .await;
    assert_eq!(
        waiting["backend_status"],
        format!("waiting on ChainZone {zone}: bad-zone is broken")
    );
    assert_eq!(waiting["backend_code"], 0, "deferral is not an error");
    for region in [eu, us] {
        server
            .wait_for(&format!("{REGIONS}/{region}"), LIMIT, |o| {
                o["backend_code"] == 1
            })
            .await;
    }
    assert!(
        !server.log().contains("chain synced r1"),
        "the rack ran early"
    );

    // Status over REST and the CLI, and Prometheus metrics.
    let status = server.get("/syncplane/v1/status").await;
    let chain = &status["services"][0];
    assert_eq!(chain["name"], "chain", "{status}");
    let step = &chain["steps"][0];
    assert_eq!(step["name"], "chain_step", "{status}");
    assert!(step["failed"].as_i64().unwrap_or(0) >= 1, "{status}");
    assert_eq!(step["last_error"], "bad-zone is broken", "{status}");
    let zones = chain["models"]
        .as_array()
        .expect("models")
        .iter()
        .find(|m| m["model"] == "ChainZone")
        .expect("zone counts");
    assert_eq!(
        (zones["pending"].clone(), zones["failed"].clone()),
        (json!(1), json!(1)),
        "{status}"
    );
    let table = assert_success(&server.cli(&["status"]));
    assert!(
        table.starts_with(&format!("store: {} ", crate::util::test_engine())),
        "{table}"
    );
    assert!(
        table.contains("chain_step") && table.contains("bad-zone is broken"),
        "{table}"
    );
    assert!(table.contains("ChainRack"), "{table}");
    let (code, metrics) = server.request(reqwest::Method::GET, "/metrics", None).await;
    assert_eq!(code, 200);
    let metrics = metrics.as_str().expect("text").to_owned();
    assert!(
        metrics.contains(
            r#"syncplane_step_invocations_total{service="chain",step="chain_step",outcome="failed"}"#
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("syncplane_step_duration_seconds_bucket"),
        "{metrics}"
    );

    // Repairing the zone lets the rack through, in order.
    server
        .put(&format!("{ZONES}/{zone}"), json!({ "name": "good-zone" }))
        .await;
    server
        .wait_for(&format!("{RACKS}/{rack}"), LIMIT, |o| {
            o["backend_code"] == 1
        })
        .await;
    let log = server.log();
    assert!(
        position(&log, "chain synced eu") < position(&log, "chain synced good-zone")
            && position(&log, "chain synced good-zone") < position(&log, "chain synced r1"),
        "out of order:\n{log}"
    );

    // Teardown: deleting the region cascades to its zone and rack (their
    // links are required); the rack is torn down before its zone before
    // its region, then purged.
    let (status, body) = server
        .request(reqwest::Method::DELETE, &format!("{REGIONS}/{eu}"), None)
        .await;
    assert_eq!(status, 200, "DELETE region: {body}");
    let mut cascaded: Vec<i64> = body["cascaded"]
        .as_array()
        .expect("cascaded")
        .iter()
        .filter(|c| c["action"] == "deleted")
        .filter_map(|c| c["id"].as_i64())
        .collect();
    cascaded.sort();
    assert_eq!(cascaded, [zone, rack], "{body}");
    let started = Instant::now();
    loop {
        let (status, _) = server
            .request(reqwest::Method::GET, &format!("{REGIONS}/{eu}"), None)
            .await;
        if status == 404 {
            break;
        }
        assert!(started.elapsed() < LIMIT, "never purged:\n{}", server.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = server.log();
    assert!(
        position(&log, "chain deleted r1") < position(&log, "chain deleted good-zone")
            && position(&log, "chain deleted good-zone") < position(&log, "chain deleted eu"),
        "teardown out of order:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sigkill_in_the_middle_of_a_cohort_loses_nothing_and_redoes_only_what_was_not_recorded() {
    const ZONE_COUNT: usize = 30;
    let data = tempfile::tempdir().expect("tempdir");
    let server = start_with_chain(data.path()).await;
    // One cohort, created in one transaction: every zone links to the same
    // region, and each takes 40 ms.
    let mut recipe = String::from(
        "tosca_definitions_version: tosca_simple_yaml_1_0\ntopology_template:\n  node_templates:\n    \
         root:\n      type: tosca.nodes.ChainRegion\n      properties:\n        name: slow-root\n",
    );
    for i in 0..ZONE_COUNT {
        recipe.push_str(&format!(
            "    zone{i}:\n      type: tosca.nodes.ChainZone\n      properties:\n        name: slow-z{i}\n      \
             requirements:\n        - region:\n            node: root\n            \
             relationship: tosca.relationships.BelongsToOne\n"
        ));
    }
    let (status, answer) = server
        .tosca(&recipe, crate::util::ADMIN, crate::util::PASSWORD)
        .await;
    assert_eq!(status, 200, "{answer}");
    let listed = server.get(ZONES).await;
    let zones: Vec<i64> = listed["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|z| z["id"].as_i64().expect("id"))
        .collect();
    assert_eq!(zones.len(), ZONE_COUNT);
    // Kill once some zones of the cohort ran but not all.
    let started = Instant::now();
    loop {
        let synced = server.log().matches("chain synced slow-z").count();
        if synced >= 3 {
            assert!(synced < ZONE_COUNT, "the cohort finished before the kill");
            break;
        }
        assert!(
            started.elapsed() < LIMIT,
            "zones never started:\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.kill();

    let before_restart = std::fs::read_to_string(data.path().join("server.log"))
        .unwrap_or_default()
        .len();
    let restarted_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    let server = Server::start(data.path());
    // Right after the restart every zone is either enacted for its version
    // or pending again; none is lost or duplicated. (The restarted engine
    // may already have enacted some: those count as after the crash.)
    let listed = server.get(ZONES).await;
    let items = listed["items"].as_array().expect("items");
    assert_eq!(items.len(), ZONE_COUNT, "{listed}");
    let mut enacted_before = Vec::new();
    for zone in items {
        let enacted = zone["backend_code"] == 1;
        assert!(
            enacted || (zone["backend_code"] == 0 && zone["enacted"].is_null()),
            "neither enacted nor pending: {zone}"
        );
        if enacted && zone["enacted"].as_f64().is_some_and(|at| at < restarted_at) {
            enacted_before.push(zone["name"].as_str().expect("name").to_owned());
        }
    }
    for zone in &zones {
        server
            .wait_for(&format!("{ZONES}/{zone}"), LIMIT, |o| {
                o["backend_code"] == 1
            })
            .await;
    }
    // What was recorded as enacted before the crash is not synced again.
    let log = server.log();
    let after = &log[before_restart.min(log.len())..];
    for name in &enacted_before {
        assert!(
            !after.contains(&format!("chain synced {name}\n"))
                && !after.contains(&format!("chain synced {name} ")),
            "{name} was enacted before the crash yet synced again:\n{after}"
        );
    }
    let resynced = after.matches("chain synced slow-z").count();
    assert_eq!(
        resynced,
        ZONE_COUNT - enacted_before.len(),
        "each zone not recorded before the crash syncs exactly once after it:\n{after}"
    );
}

/// Waits until `count` holds for the server log.
async fn wait_for_log(server: &Server, what: &str, done: impl Fn(&str) -> bool) {
    let started = Instant::now();
    loop {
        let log = server.log();
        if done(&log) {
            return;
        }
        assert!(started.elapsed() < LIMIT, "{what} never happened:\n{log}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn event_steps_turn_events_into_synced_models_and_touch_only_their_own_models() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = start_with_chain(data.path()).await;

    let out =
        assert_success(&server.cli(&["event", "publish", "regions", "hello", "--key", "north"]));
    assert!(out.contains("1 event step(s) subscribed"), "{out}");
    wait_for_log(&server, "the first sync of north", |log| {
        log.contains("chain synced north")
    })
    .await;
    let regions = server.get(REGIONS).await;
    let north = regions["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|r| r["name"] == "north")
        .cloned()
        .expect("the event created the region");
    let path = format!("{REGIONS}/{}", north["id"]);
    let first = server
        .wait_for(&path, LIMIT, |o| o["backend_code"] == 1)
        .await;

    // The same key again: nothing differs, yet `always_update_timestamp`
    // makes the region pending and it is synced a second time.
    assert_success(&server.cli(&["event", "publish", "regions", "again", "--key", "north"]));
    wait_for_log(&server, "the second sync of north", |log| {
        log.matches("chain synced north").count() == 2
    })
    .await;
    let second = server
        .wait_for(&path, LIMIT, |o| o["backend_code"] == 1)
        .await;
    assert!(
        second["updated"].as_f64() > first["updated"].as_f64(),
        "updated did not move: {first} {second}"
    );

    // A step may not touch models of other services (or core's).
    assert_success(&server.cli(&["event", "publish", "snoop", "x"]));
    let started = Instant::now();
    let snoop = loop {
        let status = server.get("/syncplane/v1/status").await;
        let steps = status["services"][0]["event_steps"].clone();
        if let Some(s) = steps.as_array().and_then(|a| {
            a.iter()
                .find(|s| s["name"] == "event_snoop" && s["events"] == 1)
        }) {
            break s.clone();
        }
        assert!(started.elapsed() < LIMIT, "snoop never ran: {status}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    assert_eq!(snoop["failed"], 1, "{snoop}");
    let error = snoop["last_error"].as_str().expect("error");
    assert!(
        error.contains("access denied")
            && error.contains("may not change `Site`")
            && error.contains("not granted for writing"),
        "{error}"
    );
    let sites = server.get("/xosapi/v1/core/sites").await;
    assert!(
        !sites["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|s| s["name"] == "stolen"),
        "{sites}"
    );

    // Deleting through an event tears the region down.
    assert_success(&server.cli(&["event", "publish", "regions", "delete", "--key", "north"]));
    wait_for_log(&server, "the teardown of north", |log| {
        log.contains("chain deleted north")
    })
    .await;

    // An event nobody subscribes to is dropped, with a warning.
    let output = server.cli(&["event", "publish", "nobody", "x"]);
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("no event step subscribes"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pull_step_runs_on_its_interval_and_its_no_sync_imports_are_not_synced() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = start_with_chain(data.path()).await;
    let started = Instant::now();
    let pull = loop {
        let status = server.get("/syncplane/v1/status").await;
        let steps = status["services"][0]["pull_steps"].clone();
        if let Some(p) = steps
            .as_array()
            .and_then(|a| a.first())
            .filter(|p| p["runs"].as_i64() >= Some(3))
        {
            break p.clone();
        }
        assert!(
            started.elapsed() < LIMIT,
            "the pull step did not run 3 times: {status}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        (pull["name"].clone(), pull["failed"].clone()),
        (json!("pull_regions"), json!(0)),
        "{pull}"
    );
    assert_eq!(pull["interval_ms"], 200);

    let regions = server.get(REGIONS).await;
    let imported: Vec<&Value> = regions["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|r| r["name"] == "imported")
        .collect();
    assert_eq!(
        imported.len(),
        1,
        "created once, found afterwards: {regions}"
    );
    assert_eq!(imported[0]["no_sync"], true, "{regions}");
    // An ordinary region syncs meanwhile; the imported one never does.
    let other = server.create(REGIONS, json!({ "name": "ordinary" })).await;
    server
        .wait_for(&format!("{REGIONS}/{other}"), LIMIT, |o| {
            o["backend_code"] == 1
        })
        .await;
    let imported = server
        .get(&format!("{REGIONS}/{}", imported[0]["id"]))
        .await;
    assert_eq!(imported["backend_code"], 0, "{imported}");
    assert!(
        !server.log().contains("chain synced imported"),
        "a no_sync import was synced"
    );
    // It is write-protected: users may neither change nor delete it.
    let path = format!("{REGIONS}/{}", imported["id"]);
    for method in [reqwest::Method::PUT, reqwest::Method::DELETE] {
        let body = (method == reqwest::Method::PUT).then(|| json!({ "name": "renamed" }));
        let (status, answer) = server.request(method, &path, body).await;
        assert_eq!(status, 403, "{answer}");
        assert!(answer.to_string().contains("write-protected"), "{answer}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_model_policy_creates_a_linked_object_before_the_sync_and_cleans_up_on_delete() {
    let data = tempfile::tempdir().expect("tempdir");
    let extra = format!(
        "\n[[model_policies]]\nname = \"zone_policy\"\ncomponent = {:?}\nmodel = \"ChainZone\"\n",
        test_guest("zone_policy").display().to_string()
    );
    let server = start_with_chain_and(data.path(), &extra).await;
    let region = server.create(REGIONS, json!({ "name": "west" })).await;
    let zone = server
        .create(ZONES, json!({ "name": "w1", "region_id": region }))
        .await;

    // The policy's rack exists, links to the zone, and syncs after it.
    wait_for_log(&server, "the rack's sync", |log| {
        log.contains("chain synced w1-rack1")
    })
    .await;
    let racks = server.get(RACKS).await;
    let rack = racks["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|r| r["name"] == "w1-rack1")
        .cloned()
        .expect("the policy created the rack");
    assert_eq!(rack["zone_id"], zone, "{rack}");
    let log = server.log();
    assert!(
        position(&log, "policy created w1-rack1") < position(&log, "chain synced w1 "),
        "the zone was synced before its policy ran:\n{log}"
    );
    assert!(
        position(&log, "chain synced w1") < position(&log, "chain synced w1-rack1"),
        "{log}"
    );
    let zone_now = server
        .wait_for(&format!("{ZONES}/{zone}"), LIMIT, |o| {
            o["backend_code"] == 1
        })
        .await;
    assert_eq!(zone_now["policy_code"], 1, "{zone_now}");
    assert!(
        zone_now["policed"].as_f64() <= zone_now["enacted"].as_f64(),
        "{zone_now}"
    );

    // Deleting the zone: handle-delete deletes the rack; both are torn
    // down, the rack first, and purged.
    let (status, body) = server
        .request(reqwest::Method::DELETE, &format!("{ZONES}/{zone}"), None)
        .await;
    assert!(status < 300, "{status} {body}");
    wait_for_log(&server, "the zone's teardown", |log| {
        log.contains("chain deleted w1 ")
    })
    .await;
    let log = server.log();
    assert!(log.contains("policy deleted the racks of w1"), "{log}");
    assert!(
        position(&log, "chain deleted w1-rack1") < position(&log, "chain deleted w1 "),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn any_topic_name_can_be_published_over_rest() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(data.path());
    for (path, topic) in [
        ("sites/eu/changes", "sites/eu/changes"),
        ("sites%2Fus", "sites/us"),
        ("plain", "plain"),
    ] {
        let (status, answer) = server
            .request(
                reqwest::Method::POST,
                &format!("/syncplane/v1/events/{path}"),
                Some(json!({ "key": "k", "value": "v" })),
            )
            .await;
        assert_eq!(status, 200, "{path}: {answer}");
        assert_eq!(answer["topic"], topic, "{answer}");
        assert_eq!(answer["subscribers"], 0, "{answer}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_event_step_may_subscribe_by_a_pattern_over_topic_names() {
    let data = tempfile::tempdir().expect("tempdir");
    let extra = format!(
        "\n[[event_steps]]\nname = \"regions_by_pattern\"\ncomponent = {:?}\npattern = \"regions/(north|south)/.+\"\n",
        test_guest("event_regions").display().to_string()
    );
    let server = start_with_chain_and(data.path(), &extra).await;
    let publish = |topic: &'static str, key: &'static str| {
        let server = &server;
        async move {
            let (status, answer) = server
                .request(
                    reqwest::Method::POST,
                    &format!("/syncplane/v1/events/{topic}"),
                    Some(json!({ "key": key, "value": "created" })),
                )
                .await;
            assert_eq!(status, 200, "{topic}: {answer}");
            answer["subscribers"].as_u64().expect("subscribers")
        }
    };
    assert_eq!(publish("regions/north/created", "pole").await, 1);
    wait_for_log(&server, "the region the matching event named", |log| {
        log.contains("chain synced pole")
    })
    .await;
    // Only whole names match: neither another region nor a longer prefix.
    assert_eq!(publish("regions/west/created", "west").await, 0);
    assert_eq!(publish("old/regions/south/x", "old").await, 0);
    let status = server.get("/syncplane/v1/status").await;
    let step = status["services"][0]["event_steps"]
        .as_array()
        .and_then(|steps| steps.iter().find(|s| s["name"] == "regions_by_pattern"))
        .cloned()
        .expect("the step in the status");
    assert_eq!(step["pattern"], "regions/(north|south)/.+", "{step}");
    assert_eq!(step["events"], 1, "{step}");
}
