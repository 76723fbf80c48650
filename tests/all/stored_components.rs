//! Components kept in the store are checked again at start and when they
//! load: one changed in the database after its install (here: swapped for
//! the other step's, a valid component) is not run, and the service's
//! status (at once) and the object's `backend_status` say why.

use std::time::{Duration, Instant};

use serde_json::json;
use sqlx::Connection as _;

use crate::util::{Server, tutorial_synced};

#[tokio::test(flavor = "multi_thread")]
async fn a_component_changed_in_the_store_is_not_loaded_and_the_status_says_so() {
    let data = tempfile::tempdir().expect("tempdir");
    // The embedded file on either leg of the suite: the test edits it.
    let file = data.path().join("syncplane.db");
    let store = file.display().to_string();
    let flags = [("--store", store.as_str())];
    let server = Server::start_with(data.path(), &flags);
    let path = tutorial_synced(&server).await;
    server.kill();

    // Someone with write access to the database swaps one step's component
    // for the other's.
    let mut db = sqlx::SqliteConnection::connect(&format!("sqlite://{}", file.display()))
        .await
        .expect("open the store");
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT key, value FROM sp_kv WHERE namespace = 'service-components' ORDER BY key",
    )
    .fetch_all(&mut db)
    .await
    .expect("components");
    assert_eq!(rows.len(), 2, "hello-world keeps two components");
    for (i, (digest, _)) in rows.iter().enumerate() {
        let other = &rows[1 - i].1;
        sqlx::query(
            "UPDATE sp_kv SET value = ? WHERE namespace = 'service-components' AND key = ?",
        )
        .bind(other)
        .bind(digest)
        .execute(&mut db)
        .await
        .expect("swap");
    }
    db.close().await.expect("close");

    // A host without the compiled copy (a new cache, another machine)
    // reads the component from the store. (One with it runs the compiled
    // code of the recorded digest, never the changed bytes.)
    let cache = data.path().join("fresh-cache");
    let cache = cache.display().to_string();
    let server = Server::start_with(
        data.path(),
        &[
            ("--store", store.as_str()),
            ("--component-cache-dir", cache.as_str()),
        ],
    );
    // The check made at start finds both before any step has work.
    let started = Instant::now();
    let status = loop {
        let status = server.get("/syncplane/v1/status").await;
        let damaged = status["services"][0]["damaged"]
            .as_array()
            .map_or(0, Vec::len);
        if damaged == 2 || started.elapsed() > Duration::from_secs(30) {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let damaged = status["services"][0]["damaged"].to_string();
    assert!(
        damaged.contains("step `sync_hello_world_service`: ")
            && damaged.contains("stored component ")
            && damaged.contains("does not match its digest"),
        "{status}"
    );
    let text = crate::util::assert_success(&server.cli(&["status"]));
    assert!(
        text.contains("DAMAGED: step `sync_hello_world_service"),
        "{text}"
    );
    server.put(&path, json!({"hello_to": "Arya"})).await;
    let object = server
        .wait_for(&path, Duration::from_secs(30), |o| {
            o["backend_status"]
                .as_str()
                .is_some_and(|s| s.contains("does not match its digest"))
        })
        .await;
    assert_ne!(object["backend_code"], 1, "{object}");
    let status = server.get("/syncplane/v1/status").await.to_string();
    assert!(status.contains("does not match its digest"), "{status}");
    // Nothing of the swapped component ran.
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(1) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = server.log();
    let after_restart = log.rsplit("syncplane listening on").next().unwrap_or(&log);
    assert!(
        !after_restart.contains("saying hello to Arya"),
        "{after_restart}"
    );
}
