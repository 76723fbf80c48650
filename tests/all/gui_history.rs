//! The invocation history pages over HTTP: an object's invocations with
//! their outcome, message and log lines, its first and latest failure kept
//! after it is fixed, a step's history across objects filtered by outcome
//! for administrators, and nothing of it for others.

use std::time::Duration;

use serde_json::json;

use crate::gui::gadgets_package;
use crate::gui_http::{client, sign_in};
use crate::util::{ADMIN, PASSWORD, Server, assert_success};

const GADGETS: &str = "/xosapi/v1/gadgets/gadgets";
const LIMIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread")]
async fn an_objects_history_shows_each_invocation_and_keeps_its_first_and_latest_failure() {
    let work = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&work.path().join("data"));
    let package = work.path().join("gadgets");
    gadgets_package(&package);
    assert_success(&server.install(&package, &[]));

    let good = server.create(GADGETS, json!({ "name": "good-one" })).await;
    let bad = server
        .create(
            GADGETS,
            json!({ "name": "bad<img src=x onerror=alert(1)>" }),
        )
        .await;
    server
        .wait_for(&format!("{GADGETS}/{good}"), LIMIT, |o| {
            o["backend_code"] == 1
        })
        .await;
    server
        .wait_for(&format!("{GADGETS}/{bad}"), LIMIT, |o| {
            crate::util::failures(o) >= 2
        })
        .await;

    let http = client(&server);
    sign_in(&http, ADMIN, PASSWORD).await;

    // A successful run, with the line the guest logged while it ran.
    let page = http
        .get(&format!("/ui/m/Gadget/{good}/history"))
        .await
        .text()
        .await
        .expect("body");
    assert!(page.contains("gadgets / chain_step"), "{page}");
    assert!(page.contains("<span class=\"label\">Done</span>"), "{page}");
    assert!(page.contains("INFO: chain synced good-one"), "{page}");
    assert!(!page.contains("Failures kept"), "it never failed: {page}");

    // Two failed runs of the bad one, its message escaped, and the failure
    // panel naming the first and latest.
    let page = http
        .get(&format!("/ui/m/Gadget/{bad}/history"))
        .await
        .text()
        .await
        .expect("body");
    assert_eq!(
        page.matches("class=\"run run-failed\"").count(),
        2,
        "{page}"
    );
    assert!(
        page.contains("bad&lt;img src=x onerror=alert(1)&gt; is broken"),
        "{page}"
    );
    assert!(!page.contains("<img src=x"), "{page}");
    assert!(
        page.contains("First failure") && page.contains("Latest failure"),
        "{page}"
    );

    // Fixed, it runs once more and succeeds; the failures stay on show.
    server
        .put(&format!("{GADGETS}/{bad}"), json!({ "name": "fixed" }))
        .await;
    server
        .wait_for(&format!("{GADGETS}/{bad}"), LIMIT, |o| {
            o["backend_code"] == 1
        })
        .await;
    let page = http
        .get(&format!("/ui/m/Gadget/{bad}/history"))
        .await
        .text()
        .await
        .expect("body");
    let done = page.find("run run-done").expect("a done run");
    let failed = page.find("run run-failed").expect("failed runs");
    assert!(done < failed, "newest first: {page}");
    assert!(page.contains("INFO: chain synced fixed"), "{page}");
    assert!(page.contains("First failure"), "{page}");
    // Filtered to failures only, the done run goes.
    let page = http
        .get(&format!("/ui/m/Gadget/{bad}/history?outcome=failed"))
        .await
        .text()
        .await
        .expect("body");
    assert!(!page.contains("run run-done"), "{page}");
    assert_eq!(
        page.matches("class=\"run run-failed\"").count(),
        2,
        "{page}"
    );

    // The step's history across objects, failures only: the bad one's.
    let page = http
        .get("/ui/history?service=gadgets&step=chain_step&outcome=failed")
        .await
        .text()
        .await
        .expect("body");
    assert!(
        page.contains("History of step chain_step of gadgets"),
        "{page}"
    );
    assert!(page.contains(&format!(">Gadget {bad}</a>")), "{page}");
    assert!(!page.contains(&format!(">Gadget {good}</a>")), "{page}");
    // A bad filter is a clear error, not an empty page.
    let answer = http.get("/ui/history?outcome=sideways").await;
    assert_eq!(answer.status(), 400);
    assert!(
        answer
            .text()
            .await
            .expect("body")
            .contains("outcome `sideways` is none of"),
    );

    // Someone else: no step history; the history of what they may read
    // (every signed-in user reads a model without a policy), and none of
    // what they may not (the same answer as for no such object).
    server
        .create(
            "/xosapi/v1/core/users",
            json!({ "email": "alice@example.org", "password": "alice-pw", "username": "alice" }),
        )
        .await;
    let alice = client(&server);
    sign_in(&alice, "alice@example.org", "alice-pw").await;
    assert_eq!(alice.get("/ui/history").await.status(), 403);
    assert_eq!(
        alice
            .get(&format!("/ui/m/Gadget/{bad}/history"))
            .await
            .status(),
        200
    );
    assert_eq!(alice.get("/ui/m/User/1/history").await.status(), 404);
    assert_eq!(alice.get("/ui/m/Gadget/99999/history").await.status(), 404);
}
