//! Deletion as XOS does it, through the real binary (issue 15 §3): a
//! deletion cascades through required links and clears optional ones,
//! `?dry_run=true` changes nothing, a user must be allowed every cascaded
//! write, TOSCA `/delete` lists what cascaded, and a deleted object is
//! purged only once nothing links to it.

use std::path::Path;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use syncplane_test_artifacts::test_guest;

use crate::util::{Server, assert_success};

const LIMIT: Duration = Duration::from_secs(30);
const REGIONS: &str = "/xosapi/v1/casc/cascregions";
const ZONES: &str = "/xosapi/v1/casc/casczones";
const RACKS: &str = "/xosapi/v1/casc/cascracks";
const NOTES: &str = "/xosapi/v1/casc/cascnotes";
const PODS: &str = "/xosapi/v1/casc/cascpods";
const USERS: &str = "/xosapi/v1/core/users";

/// Region ← Zone ← Rack through required links; a Note's link to its
/// region is optional; a Box (the only model a step serves) requires a
/// region. Users write only what they own.
const XPROTO: &str = r#"option app_label = "casc";

policy casc_owner < ctx.user.is_admin | (ctx.write_access -> obj.owner.id = ctx.user.id) >

message CascRegion::casc_owner (XOSBase) {
    required string name = 1 [tosca_key = True];
    optional manytoone owner->User:casc_regions = 2:1001;
}

message CascZone::casc_owner (XOSBase) {
    required string name = 1 [tosca_key = True];
    required manytoone region->CascRegion:zones = 2:1001;
    optional manytoone owner->User:casc_zones = 3:1002;
}

message CascRack::casc_owner (XOSBase) {
    required string name = 1;
    required manytoone zone->CascZone:racks = 2:1001;
    optional manytoone owner->User:casc_racks = 3:1002;
}

message CascNote (XOSBase) {
    required string name = 1;
    optional manytoone region->CascRegion:notes = 2:1001;
}

message CascPod (XOSBase) {
    required string name = 1;
    required manytoone region->CascRegion:pods = 2:1001;
}
"#;

/// Starts a server with the `casc` service: `chain_step` serves `CascPod`
/// only, so the other models have no steps and are purged directly.
fn start(data: &Path) -> Server {
    let service = tempfile::tempdir().expect("tempdir");
    let dir = service.path();
    std::fs::create_dir_all(dir.join("models")).expect("dir");
    std::fs::write(dir.join("models/casc.xproto"), XPROTO).expect("xproto");
    let manifest = format!(
        "manifest_version = 1\n[service]\nname = \"casc\"\nversion = \"0.1.0\"\n\
         xproto = [\"models/casc.xproto\"]\n\n[[sync_steps]]\nname = \"chain_step\"\n\
         component = {:?}\nobserves = \"CascPod\"\n",
        test_guest("chain_step").display().to_string(),
    );
    crate::util::write_manifest(dir, &manifest);
    let server = Server::start(data);
    assert_success(&server.install(dir, &[]));
    server
}

/// The `(model, id, action, field, target)` of each cascaded entry, sorted.
fn cascaded(answer: &Value) -> Vec<(String, i64, String, String, i64)> {
    let mut out: Vec<_> = answer["cascaded"]
        .as_array()
        .unwrap_or_else(|| panic!("no `cascaded` list in {answer}"))
        .iter()
        .map(|c| {
            (
                c["model"].as_str().unwrap_or_default().to_owned(),
                c["id"].as_i64().unwrap_or_default(),
                c["action"].as_str().unwrap_or_default().to_owned(),
                c["field"].as_str().unwrap_or_default().to_owned(),
                c["target"].as_i64().unwrap_or_default(),
            )
        })
        .collect();
    out.sort();
    out
}

fn entry(
    model: &str,
    id: i64,
    action: &str,
    field: &str,
    target: i64,
) -> (String, i64, String, String, i64) {
    (model.into(), id, action.into(), field.into(), target)
}

async fn status_of(server: &Server, path: &str) -> u16 {
    server.request(Method::GET, path, None).await.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_cascades_through_a_three_level_chain_and_a_dry_run_changes_nothing() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = start(data.path());
    let region = server.create(REGIONS, json!({ "name": "eu" })).await;
    let zone = server
        .create(ZONES, json!({ "name": "z", "region_id": region }))
        .await;
    let rack = server
        .create(RACKS, json!({ "name": "r", "zone_id": zone }))
        .await;
    let note = server
        .create(NOTES, json!({ "name": "n", "region_id": region }))
        .await;
    let mut expected = vec![
        entry("CascNote", note, "cleared", "region", region),
        entry("CascRack", rack, "deleted", "zone", zone),
        entry("CascZone", zone, "deleted", "region", region),
    ];
    expected.sort();

    // A dry run answers what would cascade and changes nothing.
    let (status, dry) = server
        .request(
            Method::DELETE,
            &format!("{REGIONS}/{region}?dry_run=true"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{dry}");
    assert_eq!(dry["dry_run"], true, "{dry}");
    assert_eq!(cascaded(&dry), expected, "{dry}");
    for path in [
        format!("{REGIONS}/{region}"),
        format!("{ZONES}/{zone}"),
        format!("{RACKS}/{rack}"),
    ] {
        assert_eq!(server.get(&path).await["deleted"], false, "{path}");
    }
    assert_eq!(
        server.get(&format!("{NOTES}/{note}")).await["region_id"],
        region
    );

    // The real one answers the same; the chain is deleted and, with no
    // step serving it, purged; the note's link is cleared.
    let (status, answer) = server
        .request(Method::DELETE, &format!("{REGIONS}/{region}"), None)
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["dry_run"], false, "{answer}");
    assert_eq!(
        (answer["model"].clone(), answer["id"].clone()),
        (json!("CascRegion"), json!(region))
    );
    assert_eq!(cascaded(&answer), expected, "{answer}");
    let note_now = server.get(&format!("{NOTES}/{note}")).await;
    assert_eq!(note_now["region_id"], Value::Null, "{note_now}");
    assert_eq!(note_now["deleted"], false, "{note_now}");
    for path in [
        format!("{RACKS}/{rack}"),
        format!("{ZONES}/{zone}"),
        format!("{REGIONS}/{region}"),
    ] {
        let started = std::time::Instant::now();
        while status_of(&server, &path).await != 404 {
            assert!(
                started.elapsed() < LIMIT,
                "{path} never purged:\n{}",
                server.log()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
    // Nothing may link to a deleted object.
    let gone = server.create(REGIONS, json!({ "name": "gone" })).await;
    let (status, _) = server
        .request(Method::DELETE, &format!("{REGIONS}/{gone}"), None)
        .await;
    assert_eq!(status, 200);
    let (status, refused) = server
        .request(
            Method::PUT,
            &format!("{NOTES}/{note}"),
            Some(json!({ "region_id": gone })),
        )
        .await;
    // Purged at once (no step serves regions) or deleted: either way refused.
    assert_eq!(status, 400, "{refused}");
    assert!(
        refused["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("CascNote.region: CascRegion")),
        "{refused}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_may_not_delete_what_would_cascade_to_an_object_they_may_not_delete() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = start(data.path());
    let user = ("casc-user@x.org", "pa55-word-casc");
    let uid = server
        .create(
            USERS,
            json!({ "email": user.0, "password": user.1, "firstname": "C", "lastname": "U" }),
        )
        .await;
    let region = server
        .create(REGIONS, json!({ "name": "mine", "owner_id": uid }))
        .await;
    let own = server
        .create(
            ZONES,
            json!({ "name": "mine", "region_id": region, "owner_id": uid }),
        )
        .await;
    let foreign = server
        .create(ZONES, json!({ "name": "admins", "region_id": region }))
        .await;
    for query in ["?dry_run=true", ""] {
        let (status, refused) = server
            .request_as(
                user,
                Method::DELETE,
                &format!("{REGIONS}/{region}{query}"),
                None,
            )
            .await;
        assert_eq!(status, 403, "{query}: {refused}");
        let message = refused["error"].as_str().unwrap_or_default();
        assert!(
            message.contains(&format!("may not delete CascZone {foreign}"))
                && message.contains("nothing was deleted"),
            "{refused}"
        );
    }
    for path in [
        format!("{REGIONS}/{region}"),
        format!("{ZONES}/{own}"),
        format!("{ZONES}/{foreign}"),
    ] {
        assert_eq!(server.get(&path).await["deleted"], false, "{path}");
    }
    // Once the admin's zone is gone, the user's deletion goes through.
    let (status, _) = server
        .request(Method::DELETE, &format!("{ZONES}/{foreign}"), None)
        .await;
    assert_eq!(status, 200);
    let (status, answer) = server
        .request_as(user, Method::DELETE, &format!("{REGIONS}/{region}"), None)
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        cascaded(&answer),
        [entry("CascZone", own, "deleted", "region", region)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_without_steps_is_purged_only_once_nothing_links_to_it() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = start(data.path());
    let region = server.create(REGIONS, json!({ "name": "kept" })).await;
    let pod = server
        .create(PODS, json!({ "name": "stuck-pod", "region_id": region }))
        .await;
    server
        .wait_for(&format!("{PODS}/{pod}"), LIMIT, |o| o["backend_code"] == 1)
        .await;

    let (status, answer) = server
        .request(Method::DELETE, &format!("{REGIONS}/{region}"), None)
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        cascaded(&answer),
        [entry("CascPod", pod, "deleted", "region", region)]
    );
    // The box's teardown fails, so the box stays, and so does the region
    // it links to: no step serves regions, but purging it would leave the
    // box's link dangling.
    server
        .wait_for(&format!("{PODS}/{pod}"), LIMIT, |o| {
            o["backend_status"] == "stuck-pod cannot be torn down"
        })
        .await;
    let region_now = server
        .wait_for(&format!("{REGIONS}/{region}"), LIMIT, |o| {
            o["backend_status"]
                .as_str()
                .is_some_and(|s| s.starts_with("waiting on"))
        })
        .await;
    assert_eq!(region_now["deleted"], true, "{region_now}");
    assert_eq!(
        region_now["backend_status"],
        format!("waiting on CascPod {pod}: it still links here")
    );

    // Once the box can be torn down and is purged, the region goes too.
    server
        .put(&format!("{PODS}/{pod}"), json!({ "name": "unstuck-pod" }))
        .await;
    for path in [format!("{PODS}/{pod}"), format!("{REGIONS}/{region}")] {
        let started = std::time::Instant::now();
        while status_of(&server, &path).await != 404 {
            assert!(
                started.elapsed() < LIMIT,
                "{path} never purged:\n{}",
                server.log()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tosca_delete_lists_what_cascaded() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = start(data.path());
    let region = server.create(REGIONS, json!({ "name": "west" })).await;
    let zone = server
        .create(ZONES, json!({ "name": "w1", "region_id": region }))
        .await;
    let note = server
        .create(NOTES, json!({ "name": "n", "region_id": region }))
        .await;
    let recipe = "tosca_definitions_version: tosca_simple_yaml_1_0\n\
                  imports:\n  - custom_types/cascregion.yaml\n\
                  topology_template:\n  node_templates:\n    west:\n      \
                  type: tosca.nodes.CascRegion\n      properties:\n        name: west\n";
    let response = reqwest::Client::new()
        .post(format!("{}/delete", server.url))
        .header("xos-username", crate::util::ADMIN)
        .header("xos-password", crate::util::PASSWORD)
        .body(recipe.to_owned())
        .send()
        .await
        .expect("POST /delete");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    assert_eq!(status, 200, "{text}");
    assert_eq!(
        text.lines().next(),
        Some("Deleted models: ['west']"),
        "{text}"
    );
    let mut lines: Vec<&str> = text.lines().skip(1).collect();
    lines.sort();
    let mut expected = vec![
        format!("cascaded: cleared CascNote {note} (its region linked to {region})"),
        format!("cascaded: deleted CascZone {zone} (its region linked to {region})"),
    ];
    expected.sort();
    assert_eq!(lines, expected, "{text}");
    assert_eq!(
        server.get(&format!("{NOTES}/{note}")).await["region_id"],
        Value::Null
    );
}
