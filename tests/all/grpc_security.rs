//! The security policies over gRPC (issue 14 §1: "applies to ... the gRPC
//! API"): the world of `security.rs`, driven through `xos.xos` with the
//! same users, gets the answers REST gives — `NOT_FOUND` for what a policy
//! hides, `PERMISSION_DENIED` for a refused write, lists with only what
//! the user may read, and nothing written by a read-only user.

use prost_reflect::{DynamicMessage, Value};
use tonic::Code;

use crate::grpc::{Auth, Client, int, items, site, text};
use crate::security::{ALICE, BOB, CAROL, DAVE, SITES, USERS, World, world};
use crate::util::Server;

fn as_user((email, password): (&'static str, &'static str)) -> Auth<'static> {
    Auth::Basic(email, password)
}

/// A partial update of `model` `id` setting one string field.
fn change(client: &Client, model: &str, id: i64, field: &str, value: &str) -> DynamicMessage {
    let mut message = client.message(&format!("xos.{model}"));
    message.set_field_by_name("id", Value::I32(i32::try_from(id).expect("small id")));
    message.set_field_by_name(field, Value::String(value.into()));
    message
}

/// The ids `who` gets from `List<model>`.
async fn listed(client: &Client, who: (&'static str, &'static str), model: &str) -> Vec<i64> {
    let empty = client.message("google.protobuf.Empty");
    let list = client
        .call_as(as_user(who), &format!("List{model}"), empty)
        .await
        .unwrap_or_else(|e| panic!("{} List{model}: {e:?}", who.0));
    let mut ids: Vec<i64> = items(&list).iter().map(|o| int(o, "id")).collect();
    ids.sort_unstable();
    ids
}

/// Calls `method` as `who` and returns the status code (`Ok` for success).
async fn code(
    client: &Client,
    who: (&'static str, &'static str),
    method: &str,
    message: DynamicMessage,
) -> Code {
    match client.call_as(as_user(who), method, message).await {
        Ok(_) => Code::Ok,
        Err(status) => status.code(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_calls_get_the_answers_the_security_policies_give_over_rest() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start_with(data.path(), &[("--grpc", "127.0.0.1:0")]);
    let w: World = world(&server).await;
    let client = Client::connect(&server).await;

    let table: Vec<(_, &str, DynamicMessage, Code)> = vec![
        // Hidden objects do not exist for the user: reads and writes.
        (ALICE, "GetUser", client.id(w.bob), Code::NotFound),
        (DAVE, "GetUser", client.id(w.alice), Code::NotFound),
        (ALICE, "GetService", client.id(w.svc2), Code::NotFound),
        (
            DAVE,
            "UpdateUser",
            change(&client, "User", w.alice, "firstname", "by dave"),
            Code::NotFound,
        ),
        (DAVE, "DeleteUser", client.id(w.alice), Code::NotFound),
        // Visible but not writable: refused.
        (
            ALICE,
            "UpdateSite",
            change(&client, "Site", w.site_a, "name", "A by alice"),
            Code::PermissionDenied,
        ),
        (
            BOB,
            "UpdateSite",
            change(&client, "Site", w.site_b, "name", "B by bob"),
            Code::PermissionDenied,
        ),
        (
            ALICE,
            "CreateSite",
            site(&client, "alice-site"),
            Code::PermissionDenied,
        ),
        (
            ALICE,
            "DeleteSite",
            client.id(w.site_b),
            Code::PermissionDenied,
        ),
        // A read-only user writes nothing, not even itself.
        (
            CAROL,
            "UpdateUser",
            change(&client, "User", w.carol, "firstname", "Carol"),
            Code::PermissionDenied,
        ),
        (
            CAROL,
            "CreateSite",
            site(&client, "carol-site"),
            Code::PermissionDenied,
        ),
        (
            CAROL,
            "DeleteSite",
            client.id(w.site_a),
            Code::PermissionDenied,
        ),
        // What the policies allow works.
        (ALICE, "GetUser", client.id(w.alice), Code::Ok),
        (BOB, "GetUser", client.id(w.alice), Code::Ok),
        (CAROL, "GetUser", client.id(w.carol), Code::Ok),
        (
            BOB,
            "UpdateSite",
            change(&client, "Site", w.site_a, "name", "A by bob"),
            Code::Ok,
        ),
        (
            ALICE,
            "UpdateService",
            change(&client, "Service", w.svc1, "name", "svc1 by alice"),
            Code::Ok,
        ),
    ];
    let mut wrong = Vec::new();
    for (who, method, message, expected) in table {
        let got = code(&client, who, method, message.clone()).await;
        if got != expected {
            wrong.push(format!(
                "{} {method} {message:?}: expected {expected:?}, got {got:?}",
                who.0
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));

    // Lists hold only what the user may read, as over REST.
    assert_eq!(listed(&client, ALICE, "User").await, [w.alice]);
    assert_eq!(
        listed(&client, BOB, "User").await,
        [w.alice, w.bob, w.carol]
    );
    assert_eq!(listed(&client, DAVE, "User").await, [w.dave]);
    assert_eq!(listed(&client, ALICE, "Service").await, [w.svc1]);
    assert_eq!(listed(&client, DAVE, "Service").await, Vec::<i64>::new());
    assert_eq!(listed(&client, CAROL, "Site").await, [w.site_a, w.site_b]);

    // The refused writes were not made; the allowed one was.
    let site_b = server.get(&format!("{SITES}/{}", w.site_b)).await;
    assert_eq!(site_b["name"], "site-b", "{site_b}");
    assert_eq!(site_b["deleted"], false, "{site_b}");
    let site_a = server.get(&format!("{SITES}/{}", w.site_a)).await;
    assert_eq!(site_a["name"], "A by bob", "{site_a}");
    assert_eq!(site_a["deleted"], false, "{site_a}");
    let carol = server.get(&format!("{USERS}/{}", w.carol)).await;
    assert_ne!(carol["firstname"], "Carol", "{carol}");
    let alice = server.get(&format!("{USERS}/{}", w.alice)).await;
    assert_ne!(alice["firstname"], "by dave", "{alice}");
    let sites = server.list_all(SITES).await;
    assert_eq!(sites.len(), 2, "no site created: {sites:?}");
    let got = client
        .call_as(as_user(ALICE), "GetUser", client.id(w.alice))
        .await
        .expect("alice reads herself");
    assert_eq!(text(&got, "email"), ALICE.0);
}
