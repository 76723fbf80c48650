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

/// A server with the `gadgets` service installed, its manifest with
/// `extra` appended.
fn gadgets_server(work: &std::path::Path, extra: &str) -> Server {
    let server = Server::start(&work.join("data"));
    let package = work.join("gadgets");
    gadgets_package(&package);
    let manifest = package.join("syncplane.toml");
    let text = std::fs::read_to_string(&manifest).expect("manifest");
    std::fs::write(&manifest, format!("{text}{extra}")).expect("manifest");
    assert_success(&server.install(&package, &[]));
    server
}

#[tokio::test(flavor = "multi_thread")]
async fn an_objects_history_shows_each_invocation_and_keeps_its_first_and_latest_failure() {
    let work = tempfile::tempdir().expect("tempdir");
    let server = gadgets_server(work.path(), "");

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
    let page = http.page(&format!("/ui/m/Gadget/{good}/history")).await;
    assert!(page.contains("gadgets / chain_step"), "{page}");
    assert!(page.contains("<span class=\"label\">Done</span>"), "{page}");
    assert!(page.contains("INFO: chain synced good-one"), "{page}");
    assert!(!page.contains("Failures kept"), "it never failed: {page}");

    // Two failed runs of the bad one, its message escaped, and the failure
    // panel naming the first and latest.
    let page = http.page(&format!("/ui/m/Gadget/{bad}/history")).await;
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
    let page = http.page(&format!("/ui/m/Gadget/{bad}/history")).await;
    let done = page.find("run run-done").expect("a done run");
    let failed = page.find("run run-failed").expect("failed runs");
    assert!(done < failed, "newest first: {page}");
    assert!(page.contains("INFO: chain synced fixed"), "{page}");
    assert!(page.contains("First failure"), "{page}");
    // Filtered to failures only, the done run goes.
    let page = http
        .page(&format!("/ui/m/Gadget/{bad}/history?outcome=failed"))
        .await;
    assert!(!page.contains("run run-done"), "{page}");
    assert_eq!(
        page.matches("class=\"run run-failed\"").count(),
        2,
        "{page}"
    );

    // The step's history across objects, failures only: the bad one's.
    let page = http
        .page("/ui/history?service=gadgets&step=chain_step&outcome=failed")
        .await;
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

/// A service's `[[gui_views]]`: named lists of its objects, on its section
/// of the services page and in the navigation, opening the list they
/// describe; a view of a model that is not the service's is refused at
/// install, naming it.
#[tokio::test(flavor = "multi_thread")]
async fn a_services_gui_views_are_listed_and_open_the_lists_they_name() {
    let work = tempfile::tempdir().expect("tempdir");
    let server = gadgets_server(
        work.path(),
        "\n[[gui_views]]\ntitle = \"Broken <gadgets>\"\nmodel = \"Gadget\"\n\
         query = \"failed=1&ordering=-name\"\ndescription = \"Gadgets whose sync failed\"\n",
    );
    let bad = server.create(GADGETS, json!({ "name": "bad-view" })).await;
    server.create(GADGETS, json!({ "name": "good-view" })).await;
    server
        .wait_for(&format!("{GADGETS}/{bad}"), LIMIT, |o| {
            o["backend_code"] == 2
        })
        .await;

    let http = client(&server);
    sign_in(&http, ADMIN, PASSWORD).await;
    let services = http.page("/ui/services").await;
    let link = "href=\"&#x2f;ui&#x2f;m&#x2f;Gadget?failed=1&amp;ordering=-name\"";
    assert!(
        services.contains(&format!(
            "{link}>Broken &lt;gadgets&gt;</a>: Gadgets whose sync failed"
        )),
        "{services}"
    );
    assert!(
        services.contains("<span aria-hidden=\"true\">▸ </span>Broken &lt;gadgets&gt;"),
        "the navigation lists it: {services}"
    );
    let list = http.page("/ui/m/Gadget?failed=1&ordering=-name").await;
    assert!(
        list.contains("bad-view") && !list.contains("good-view"),
        "{list}"
    );

    // A view of another service's model is refused, naming it.
    let other = work.path().join("other");
    gadgets_package(&other);
    let manifest = other.join("syncplane.toml");
    let text = std::fs::read_to_string(&manifest)
        .expect("manifest")
        .replace("name = \"gadgets\"", "name = \"gadgets2\"")
        .replace("models/gadgets.xproto", "models/gadgets2.xproto");
    std::fs::rename(
        other.join("models/gadgets.xproto"),
        other.join("models/gadgets2.xproto"),
    )
    .expect("rename");
    let xproto = std::fs::read_to_string(other.join("models/gadgets2.xproto"))
        .expect("xproto")
        .replace("app_label = \"gadgets\"", "app_label = \"gadgets2\"")
        .replace("message Gadget ", "message Gizmo ")
        .replace("site->Site:gadgets", "site->Site:gizmos")
        .replace("message HiddenGadget ", "message HiddenGizmo ")
        .replace("observes = \"Gadget\"", "observes = \"Gizmo\"");
    std::fs::write(other.join("models/gadgets2.xproto"), xproto).expect("xproto");
    std::fs::write(
        &manifest,
        format!(
            "{}\n[[gui_views]]\ntitle = \"Theirs\"\nmodel = \"Gadget\"\n",
            text.replace("observes = \"Gadget\"", "observes = \"Gizmo\"")
        ),
    )
    .expect("manifest");
    let refused = server.install(&other, &[]);
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.contains(
            "[[gui_views]] `Theirs` shows `Gadget`, which is not one of the service's models"
        ),
        "{said}"
    );
}
