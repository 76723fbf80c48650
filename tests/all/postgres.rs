//! A server on a PostgreSQL store (`serve --store postgres://…`) when that
//! store goes away and comes back: requests are refused with `503` and
//! `Retry-After` while it is gone, nothing acknowledged is lost, and the
//! server and its engine carry on once it is back, without a restart.
//! (Everything else runs on PostgreSQL in the suite's PostgreSQL leg.)

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use syncplane_test_postgres::PostgresServer;

use crate::util::{ADMIN, PASSWORD, Server, install_hello_world, tutorial_recipe};

const SITES: &str = "/xosapi/v1/core/sites";
const INSTANCES: &str = "/xosapi/v1/hello-world/helloworldserviceinstances";

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
    install_hello_world(&server);
    let (status, answer) = server.tosca(&tutorial_recipe(), ADMIN, PASSWORD).await;
    assert_eq!(status, 200, "{answer}");
    let instance = server.get(INSTANCES).await["items"][0]["id"]
        .as_i64()
        .expect("an instance");
    let path = format!("{INSTANCES}/{instance}");
    server
        .wait_for(&path, Duration::from_secs(30), |o| o["backend_code"] == 1)
        .await;
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
    let deadline = Instant::now() + Duration::from_secs(30);
    while !server.log().contains("saying hello to Arya") {
        assert!(
            Instant::now() < deadline,
            "the step did not run after the store came back:\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server
        .wait_for(&path, Duration::from_secs(30), |o| o["backend_code"] == 1)
        .await;
}
