//! A server on a PostgreSQL store (`serve --store postgres://…`) when that
//! store goes away and comes back: requests are refused with `503` and
//! `Retry-After` while it is gone, nothing acknowledged is lost, and the
//! server and its engine carry on once it is back, without a restart.
//! (Everything else runs on PostgreSQL in the suite's PostgreSQL leg.)

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use syncplane_test_postgres::PostgresServer;

use crate::util::{ADMIN, PASSWORD, Server, tutorial_synced};

const SITES: &str = "/xosapi/v1/core/sites";

fn names(sites: &[Value]) -> Vec<String> {
    sites
        .iter()
        .map(|s| s["name"].as_str().expect("name").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lost_postgres_store_answers_503_then_the_server_resumes_losing_nothing() {
    let postgres = PostgresServer::start();
    let url = postgres.create_database("syncplane");
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start_with(data.path(), &[("--store", url.as_str())]);
    let path = tutorial_synced(&server).await;
    server
        .create(SITES, json!({"name": "before", "login_base": "b"}))
        .await;

    // The database server dies (as a crash or a failover would take it).
    postgres.kill();
    let started = Instant::now();
    let (status, body) = server
        .request(
            reqwest::Method::POST,
            SITES,
            Some(json!({"name": "during", "login_base": "d"})),
        )
        .await;
    assert_eq!(status, 503, "{body}\n{}", server.log());
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "the refusal took {:?}",
        started.elapsed()
    );
    let response = reqwest::Client::new()
        .get(format!("{}{SITES}", server.url))
        .basic_auth(ADMIN, Some(PASSWORD))
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status().as_u16(), 503);
    assert!(
        crate::util::retry_after(&response).is_some(),
        "503 without Retry-After"
    );
    // The URL's password (none here) and the statement's values stay out
    // of the answer; the answer says what is wrong.
    let text = response.text().await.expect("body");
    assert!(text.contains("database"), "{text}");

    // It comes back on the same address: the server reconnects by itself.
    postgres.restart();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = server
            .request(
                reqwest::Method::POST,
                SITES,
                Some(json!({"name": "after", "login_base": "a"})),
            )
            .await;
        if status == 201 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no write succeeded after the store came back: {status} {body}\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let sites = server.list_all(SITES).await;
    assert_eq!(names(&sites), ["before", "after"]);

    // The engine carries on too: a change made now is synced.
    server.put(&path, json!({"hello_to": "Arya"})).await;
    wait_for_log(&server, "saying hello to Arya").await;
}

/// Waits until the server's log says `text`.
async fn wait_for_log(server: &Server, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !server.log().contains(text) {
        assert!(
            Instant::now() < deadline,
            "the log never said {text:?}:\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn store_copy_moves_an_embedded_installation_to_postgres_with_everything_in_it() {
    let data = tempfile::tempdir().expect("tempdir");
    // Embedded SQLite on either leg of the suite: this is what is moved.
    let file = data.path().join("syncplane.db").display().to_string();
    let server = Server::start_with(data.path(), &[("--store", file.as_str())]);
    let path = tutorial_synced(&server).await;
    server
        .create(SITES, json!({"name": "kept", "login_base": "k"}))
        .await;
    let gone = server
        .create(SITES, json!({"name": "gone", "login_base": "g"}))
        .await;
    let (status, body) = server
        .request(reqwest::Method::DELETE, &format!("{SITES}/{gone}"), None)
        .await;
    assert_eq!(status, 200, "{body}");
    // The engine purges the deleted site on its own time; the snapshot
    // below must not race it (a copy made before the purge is purged by
    // the new server at start, and the lists would differ for that alone).
    let started = std::time::Instant::now();
    while server
        .list_all(SITES)
        .await
        .iter()
        .any(|site| site["id"] == gone)
    {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "the deleted site was not purged:\n{}",
            server.log()
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let token = crate::util::assert_success(&server.cli(&["token", "create", "--name", "moved"]))
        .trim()
        .to_owned();
    let sites = server.list_all(SITES).await;
    let object = server.get(&path).await;
    let audit = server.get("/syncplane/v1/audit?limit=10000").await["items"]
        .as_array()
        .expect("audit")
        .len();
    server.kill();

    let url = syncplane_test_postgres::shared().fresh_database();
    let copy = |to: &str| {
        std::process::Command::new(crate::util::BIN)
            .args(["store", "copy", "--from"])
            .arg(data.path())
            .args(["--to", to])
            .output()
            .expect("run store copy")
    };
    let out = crate::util::assert_success(&copy(&url));
    assert!(
        out.contains("every table has as many rows on both sides"),
        "{out}"
    );
    let progress = String::from_utf8_lossy(&copy(&url).stderr).into_owned();
    assert!(
        progress.contains("the target store is not empty"),
        "a second copy into the same database must be refused: {progress}"
    );

    let server = Server::start_with(data.path(), &[("--store", url.as_str())]);
    assert!(!server.log().contains("ERROR"), "{}", server.log());
    let status = server.get("/syncplane/v1/status").await;
    assert_eq!(
        status["store"],
        json!({"engine": "postgres", "location": url})
    );
    // The same objects with the same ids and bookkeeping.
    assert_eq!(server.list_all(SITES).await, sites);
    assert_eq!(server.get(&path).await, object);
    let audit_after = server.get("/syncplane/v1/audit?limit=10000").await["items"]
        .as_array()
        .expect("audit")
        .len();
    assert_eq!(audit_after, audit);
    // Tokens and users came along: the API token still signs in.
    let response = reqwest::Client::new()
        .get(format!("{}{SITES}", server.url))
        .bearer_auth(&token)
        .send()
        .await
        .expect("GET with the token");
    assert_eq!(response.status().as_u16(), 200);
    // No id is handed out twice, not even a deleted object's.
    let next = server
        .create(SITES, json!({"name": "new", "login_base": "n"}))
        .await;
    assert!(next > gone, "id {next} after a deleted {gone}");
    // The service came along and syncs.
    server.put(&path, json!({"hello_to": "Arya"})).await;
    wait_for_log(&server, "saying hello to Arya").await;
}
