//! The tutorial, end to end: install, TOSCA, sync, defer, fail with backoff,
//! recover, delete, and a crash-restart with nothing lost.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::util::{ADMIN, PASSWORD, Server, failures, install_hello_world, tutorial_recipe};

const INSTANCES: &str = "/xosapi/v1/hello-world/helloworldserviceinstances";
const LIMIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread")]
async fn the_tutorial_runs_end_to_end_and_survives_a_restart() {
    tutorial(&install_hello_world, &[], LIMIT).await;
}

/// The tutorial against a hello-world service in any language: `install`
/// installs it on a fresh server started with `flags`; `limit` bounds
/// each wait (the first sync includes compiling the components).
pub async fn tutorial(install: &dyn Fn(&Server), flags: &[(&str, &str)], limit: Duration) {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start_with(data.path(), flags);
    install(&server);

    // The generated TOSCA type, as the tutorial tells users to look up.
    let (status, body) = server
        .request(reqwest::Method::GET, "/custom_type/helloworldservice", None)
        .await;
    assert_eq!(status, 200);
    let text = body.as_str().expect("yaml text").to_owned();
    assert!(
        text.contains("tosca.nodes.HelloWorldService:") && text.contains("hello_from:"),
        "{text}"
    );

    // The recipe, unchanged, twice: the second run updates instead of duplicating.
    for _ in 0..2 {
        let (status, answer) = server.tosca(&tutorial_recipe(), ADMIN, PASSWORD).await;
        assert_eq!(
            (status, answer.as_str()),
            (
                200,
                "Created models: ['service', 'serviceinstance', 'constraints']"
            )
        );
    }
    let instances = server.get(INSTANCES).await;
    assert_eq!(
        instances["items"].as_array().expect("items").len(),
        1,
        "{instances}"
    );
    let services = server
        .get("/xosapi/v1/hello-world/helloworldservices")
        .await;
    assert_eq!(
        services["items"].as_array().expect("items").len(),
        1,
        "{services}"
    );
    assert_eq!(services["items"][0]["hello_from"], "Jhon Snow");
    // Core's collection lists the service too, through inheritance.
    let core_services = server.get("/xosapi/v1/core/services").await;
    assert!(
        core_services["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|s| s["name"] == "HelloWorld")
    );
    let id = instances["items"][0]["id"].as_i64().expect("id");
    let path = format!("{INSTANCES}/{id}");
    assert_eq!(
        instances["items"][0]["owner_id"], services["items"][0]["id"],
        "owner set from owner_class_name"
    );

    let synced = server
        .wait_for(&path, limit, |o| o["backend_code"] == 1)
        .await;
    assert_eq!(synced["backend_status"], "OK");
    assert!(synced["enacted"].as_f64().is_some(), "{synced}");
    assert!(
        server
            .log()
            .contains("Jhon Snow is saying hello to Daenerys Targaryen")
    );

    // Failing: backend_code 2, "Maybe not", retried with growing intervals.
    server
        .put(&path, json!({ "hello_to": "Joffrey Baratheon" }))
        .await;
    let mut seen: Vec<(i64, Instant)> = Vec::new();
    let started = Instant::now();
    while seen.last().map(|(n, _)| *n) < Some(4) {
        let o = server.get(&path).await;
        let n = failures(&o);
        if n > 0 && seen.last().map(|(m, _)| *m) != Some(n) {
            assert_eq!(o["backend_code"], 2, "{o}");
            assert!(
                o["backend_status"]
                    .as_str()
                    .expect("status")
                    .contains("Maybe not"),
                "{o}"
            );
            seen.push((n, Instant::now()));
        }
        assert!(
            started.elapsed() < limit,
            "retries too slow: {seen:?}\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let gaps: Vec<Duration> = seen.windows(2).map(|w| w[1].1 - w[0].1).collect();
    assert!(gaps.len() >= 2, "{seen:?}");
    assert!(
        gaps[gaps.len() - 1] > gaps[0] * 2,
        "retry intervals should grow (backoff 300ms doubling): {gaps:?}"
    );

    // Deferred: the message, without the error state.
    server
        .put(&path, json!({ "hello_to": "Tyrion Lannister" }))
        .await;
    let deferred = server
        .wait_for(&path, limit, |o| o["backend_status"] == "Maybe later")
        .await;
    assert_eq!(deferred["backend_code"], 0, "{deferred}");
    // It keeps being retried at the retry interval, never turning into an error.
    let log_before = server
        .log()
        .matches("hello_to=\"Tyrion Lannister\"")
        .count();
    tokio::time::sleep(Duration::from_millis(900)).await;
    let again = server.get(&path).await;
    assert_eq!(
        (
            again["backend_code"].clone(),
            again["backend_status"].clone()
        ),
        (json!(0), json!("Maybe later"))
    );
    assert!(
        server
            .log()
            .matches("hello_to=\"Tyrion Lannister\"")
            .count()
            > log_before,
        "deferred object was not retried"
    );

    // A good name again: synced.
    server.put(&path, json!({ "hello_to": "Arya Stark" })).await;
    server
        .wait_for(&path, limit, |o| {
            o["backend_code"] == 1 && o["backend_status"] == "OK"
        })
        .await;
    assert!(
        server
            .log()
            .contains("Jhon Snow is saying hello to Arya Stark")
    );

    // Delete: delete-record runs, then the object is purged.
    let (status, _) = server.request(reqwest::Method::DELETE, &path, None).await;
    assert_eq!(status, 200);
    let started = Instant::now();
    while server.request(reqwest::Method::GET, &path, None).await.0 != 404 {
        assert!(started.elapsed() < limit, "not purged:\n{}", server.log());
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(
        server
            .log()
            .contains("HelloWorldServiceInstance has been deleted!")
    );

    // A crash, then a restart on the same data dir: models, objects and the
    // installed service are all still there, and syncing goes on.
    server.kill();
    let server = Server::start_with(data.path(), flags);
    let services = server
        .get("/xosapi/v1/hello-world/helloworldservices")
        .await;
    assert_eq!(services["items"][0]["name"], "HelloWorld");
    assert_eq!(services["items"][0]["backend_code"], 1);
    assert_eq!(
        server.get(INSTANCES).await["items"]
            .as_array()
            .expect("items")
            .len(),
        0
    );
    let (status, created) = server
        .request(
            reqwest::Method::POST,
            INSTANCES,
            Some(json!({ "name": "after restart", "hello_to": "Sansa Stark" })),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let path = format!("{INSTANCES}/{}", created["id"]);
    server
        .wait_for(&path, limit, |o| o["backend_code"] == 1)
        .await;
    assert!(
        server
            .log()
            .contains("Jhon Snow is saying hello to Sansa Stark")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_change_that_only_touches_feedback_never_makes_an_object_pending() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(data.path());
    install_hello_world(&server);
    let (status, _) = server.tosca(&tutorial_recipe(), ADMIN, PASSWORD).await;
    assert_eq!(status, 200);
    let id = server.get(INSTANCES).await["items"][0]["id"]
        .as_i64()
        .expect("id");
    let path = format!("{INSTANCES}/{id}");
    let synced = server
        .wait_for(&path, LIMIT, |o| o["backend_code"] == 1)
        .await;
    // Wait a few retry intervals: the engine's own writes must not trigger syncs.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let later = server.get(&path).await;
    assert_eq!(
        later["enacted"], synced["enacted"],
        "re-synced without a change"
    );
    assert_eq!(
        server
            .log()
            .matches("is saying hello to Daenerys Targaryen")
            .count(),
        1
    );
}
