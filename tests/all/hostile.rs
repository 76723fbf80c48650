//! Hostile guests fail only their own object, with a clear status, and the
//! host keeps serving.

use std::path::Path;
use std::time::Duration;

use serde_json::json;
use syncplane_test_artifacts::test_guest;

use crate::util::{Server, assert_success, repo};

const LIMIT: Duration = Duration::from_secs(30);

/// Writes a service directory whose steps are the prebuilt hostile guests.
fn hostile_service(dir: &Path) {
    std::fs::create_dir_all(dir.join("models")).expect("dir");
    std::fs::copy(
        repo().join("tests/guests/models/hostile.xproto"),
        dir.join("models/hostile.xproto"),
    )
    .expect("xproto");
    let mut manifest = String::from(
        "manifest_version = 1\n[service]\nname = \"hostile\"\nversion = \"0.1.0\"\nxproto = [\"models/hostile.xproto\"]\n",
    );
    for (step, model) in [
        ("hostile_trap", "TrapTarget"),
        ("hostile_infinite_loop", "LoopTarget"),
        ("hostile_memory_bomb", "BombTarget"),
        ("hostile_undeclared_access", "SnoopTarget"),
    ] {
        manifest.push_str(&format!(
            "\n[[sync_steps]]\nname = \"{step}\"\ncomponent = {:?}\nobserves = \"{model}\"\n",
            test_guest(step).display().to_string()
        ));
    }
    crate::util::write_manifest(dir, &manifest);
}

#[tokio::test(flavor = "multi_thread")]
async fn traps_loops_memory_bombs_and_undeclared_access_fail_only_their_object() {
    let data = tempfile::tempdir().expect("tempdir");
    let service = tempfile::tempdir().expect("tempdir");
    hostile_service(service.path());
    let server = Server::start(data.path());
    assert_success(&server.cli(&[
        "service",
        "install",
        service.path().to_str().expect("utf-8"),
    ]));

    let mut paths = Vec::new();
    for collection in ["traptargets", "looptargets", "bombtargets", "snooptargets"] {
        let url = format!("/xosapi/v1/hostile/{collection}");
        let (status, created) = server
            .request(
                reqwest::Method::POST,
                &url,
                Some(json!({ "name": collection })),
            )
            .await;
        assert_eq!(status, 201, "{created}");
        paths.push(format!("{url}/{}", created["id"]));
    }
    let failed = |o: &serde_json::Value| o["backend_code"] == 2;

    let trap = server.wait_for(&paths[0], LIMIT, failed).await;
    let status = trap["backend_status"].as_str().expect("status");
    assert!(
        status.starts_with("trap (crash): step `hostile_trap` of service `hostile` trapped"),
        "{status}"
    );

    let looped = server.wait_for(&paths[1], LIMIT, failed).await;
    let status = looped["backend_status"].as_str().expect("status");
    assert!(
        status.starts_with("trap (deadline): ")
            && status.contains("exceeded its deadline of 1s and was interrupted"),
        "{status}"
    );

    let bomb = server.wait_for(&paths[2], LIMIT, failed).await;
    let status = bomb["backend_status"].as_str().expect("status");
    assert!(
        status.starts_with("trap (memory): step `hostile_memory_bomb`")
            && status.contains("beyond the limit of 32 MiB"),
        "{status}"
    );

    let snoop = server.wait_for(&paths[3], LIMIT, failed).await;
    let status = snoop["backend_status"].as_str().expect("status");
    assert!(status.contains("read: access denied: step `hostile_undeclared_access` of service `hostile` may not read object 1"), "{status}");
    assert!(
        status.contains("write: access denied") && status.contains("SnoopTarget.note"),
        "{status}"
    );
    assert_eq!(
        snoop["note"],
        serde_json::Value::Null,
        "the declarative write went through: {snoop}"
    );

    // The host is still serving, and the admin user (object 1) is untouched.
    let (status, users) = server
        .request(reqwest::Method::GET, "/xosapi/v1/core/users", None)
        .await;
    assert_eq!(status, 200, "{users}");
    assert_eq!(users["items"][0]["email"], "admin@opencord.org");
    assert!(
        users["items"][0].get("password").is_none(),
        "password hash leaked: {users}"
    );
}
