//! Authorization through the real binary (issue 14 §1): the core's security
//! policies decide every read and write a user makes over REST and TOSCA,
//! checked as a table of (user × model × operation × expected answer); and
//! the escalations a user must not manage: making themselves or others
//! admin, changing passwords that are not theirs, removing the last admin,
//! taking an e-mail that differs only in case, a read-only user writing,
//! and the bootstrap admin coming back after a restart.

use reqwest::Method;
use serde_json::{Value, json};

use crate::util::{ADMIN, PASSWORD, Server};

pub(crate) const SITES: &str = "/xosapi/v1/core/sites";
pub(crate) const USERS: &str = "/xosapi/v1/core/users";
pub(crate) const SERVICES: &str = "/xosapi/v1/core/services";
const PRIVILEGES: &str = "/xosapi/v1/core/privileges";
const CONSTRAINTS: &str = "/xosapi/v1/core/servicegraphconstraints";

/// Everyone's password in these tests.
const SECRET: &str = "pa55-word";

pub(crate) const ALICE: (&str, &str) = ("alice@a.example", SECRET);
pub(crate) const BOB: (&str, &str) = ("bob@a.example", SECRET);
pub(crate) const CAROL: (&str, &str) = ("carol@a.example", SECRET);
pub(crate) const DAVE: (&str, &str) = ("dave@b.example", SECRET);
const ROOT: (&str, &str) = (ADMIN, PASSWORD);

/// The objects of the world every test starts from.
pub(crate) struct World {
    pub(crate) site_a: i64,
    pub(crate) site_b: i64,
    pub(crate) alice: i64,
    pub(crate) bob: i64,
    pub(crate) carol: i64,
    pub(crate) dave: i64,
    pub(crate) svc1: i64,
    pub(crate) svc2: i64,
    pub(crate) constraint: i64,
}

/// Site A with alice (a user), bob (its site admin) and carol (read-only);
/// site B with dave; service svc1 on which alice has a privilege, svc2 on
/// which nobody has; a model without a policy (a graph constraint).
pub(crate) async fn world(server: &Server) -> World {
    let site_a = server
        .create(SITES, json!({ "name": "site-a", "login_base": "a" }))
        .await;
    let site_b = server
        .create(SITES, json!({ "name": "site-b", "login_base": "b" }))
        .await;
    let user = |(email, _): (&str, &str), site: i64, readonly: bool| {
        json!({
            "email": email, "password": SECRET, "firstname": email, "lastname": "test",
            "site_id": site, "is_readonly": readonly,
        })
    };
    let alice = server.create(USERS, user(ALICE, site_a, false)).await;
    let bob = server.create(USERS, user(BOB, site_a, false)).await;
    let carol = server.create(USERS, user(CAROL, site_a, true)).await;
    let dave = server.create(USERS, user(DAVE, site_b, false)).await;
    let svc1 = server.create(SERVICES, json!({ "name": "svc1" })).await;
    let svc2 = server.create(SERVICES, json!({ "name": "svc2" })).await;
    let privilege = |accessor: i64, object_type: &str, object: i64, permission: &str| {
        json!({
            "accessor_id": accessor, "accessor_type": "User",
            "object_type": object_type, "object_id": object, "permission": permission,
        })
    };
    server
        .create(PRIVILEGES, privilege(bob, "Site", site_a, "role:admin"))
        .await;
    server
        .create(PRIVILEGES, privilege(alice, "Service", svc1, "role:user"))
        .await;
    let constraint = server
        .create(CONSTRAINTS, json!({ "constraints": "[svc1, svc2]" }))
        .await;
    World {
        site_a,
        site_b,
        alice,
        bob,
        carol,
        dave,
        svc1,
        svc2,
        constraint,
    }
}

/// One row of the policy table: who, method, path, body, expected status.
type Case = (
    (&'static str, &'static str),
    Method,
    String,
    Option<Value>,
    u16,
);

/// `PUT path body` as `who`.
async fn put_as(server: &Server, who: (&str, &str), path: &str, body: Value) -> (u16, Value) {
    server.request_as(who, Method::PUT, path, Some(body)).await
}

/// The ids a user sees in a collection.
async fn listed(server: &Server, who: (&str, &str), collection: &str) -> Vec<i64> {
    let (status, body) = server.request_as(who, Method::GET, collection, None).await;
    assert_eq!(status, 200, "{} listing {collection}: {body}", who.0);
    let mut ids: Vec<i64> = body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|o| o["id"].as_i64().expect("id"))
        .collect();
    ids.sort_unstable();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_core_policies_decide_every_read_and_write_as_the_table_says() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(data.path());
    let w = world(&server).await;
    let site = |id: i64| format!("{SITES}/{id}");
    let user = |id: i64| format!("{USERS}/{id}");
    let service = |id: i64| format!("{SERVICES}/{id}");
    let constraint = format!("{CONSTRAINTS}/{}", w.constraint);
    let rename = |name: &str| Some(json!({ "name": name }));
    let named = |first: &str| Some(json!({ "firstname": first }));
    let table: Vec<Case> = vec![
        // Sites: everyone reads; admins and the site's admin write.
        (ALICE, Method::GET, site(w.site_a), None, 200),
        (DAVE, Method::GET, site(w.site_a), None, 200),
        (CAROL, Method::GET, site(w.site_b), None, 200),
        (ROOT, Method::PUT, site(w.site_a), rename("A by root"), 200),
        (BOB, Method::PUT, site(w.site_a), rename("A by bob"), 200),
        (BOB, Method::PUT, site(w.site_b), rename("B by bob"), 403),
        (
            ALICE,
            Method::PUT,
            site(w.site_a),
            rename("A by alice"),
            403,
        ),
        (DAVE, Method::PUT, site(w.site_a), rename("A by dave"), 403),
        (
            ALICE,
            Method::POST,
            SITES.to_owned(),
            Some(json!({ "name": "c", "login_base": "c" })),
            403,
        ),
        (ALICE, Method::DELETE, site(w.site_b), None, 403),
        // Users: themselves, their site's admin, admins.
        (ALICE, Method::GET, user(w.alice), None, 200),
        (ALICE, Method::GET, user(w.bob), None, 404),
        (DAVE, Method::GET, user(w.alice), None, 404),
        (BOB, Method::GET, user(w.alice), None, 200),
        (BOB, Method::GET, user(w.dave), None, 404),
        (ALICE, Method::PUT, user(w.alice), named("Alice"), 200),
        (BOB, Method::PUT, user(w.alice), named("Alice by bob"), 200),
        (
            DAVE,
            Method::PUT,
            user(w.alice),
            named("Alice by dave"),
            404,
        ),
        (DAVE, Method::DELETE, user(w.alice), None, 404),
        // Read-only users read but write nothing, not even themselves.
        (CAROL, Method::GET, user(w.carol), None, 200),
        (CAROL, Method::PUT, user(w.carol), named("Carol"), 403),
        // Services: admins and users with a privilege on the service.
        (ALICE, Method::GET, service(w.svc1), None, 200),
        (ALICE, Method::GET, service(w.svc2), None, 404),
        (DAVE, Method::GET, service(w.svc1), None, 404),
        (ALICE, Method::PUT, service(w.svc1), rename("svc1b"), 200),
        (DAVE, Method::PUT, service(w.svc2), rename("svc2b"), 404),
        (ROOT, Method::PUT, service(w.svc2), rename("svc2c"), 200),
        // No policy: users read, admins write.
        (DAVE, Method::GET, constraint.clone(), None, 200),
        (
            DAVE,
            Method::PUT,
            constraint.clone(),
            Some(json!({ "priority": 3 })),
            403,
        ),
        (
            ROOT,
            Method::PUT,
            constraint.clone(),
            Some(json!({ "priority": 4 })),
            200,
        ),
        (
            ALICE,
            Method::POST,
            CONSTRAINTS.to_owned(),
            Some(json!({ "constraints": "[x]" })),
            403,
        ),
        // Privileges: a site's admin grants on the site; others cannot.
        (
            BOB,
            Method::POST,
            PRIVILEGES.to_owned(),
            Some(json!({
                "accessor_id": w.alice, "object_type": "Site", "object_id": w.site_a,
                "permission": "role:user",
            })),
            201,
        ),
        (
            ALICE,
            Method::POST,
            PRIVILEGES.to_owned(),
            Some(json!({
                "accessor_id": w.alice, "object_type": "Site", "object_id": w.site_a,
                "permission": "role:admin",
            })),
            403,
        ),
        (
            ALICE,
            Method::POST,
            PRIVILEGES.to_owned(),
            Some(json!({
                "accessor_id": w.dave, "object_type": "Service", "object_id": w.svc1,
                "permission": "role:user",
            })),
            403,
        ),
    ];
    let mut wrong = Vec::new();
    for (who, method, path, body, expected) in table {
        let (status, answer) = server
            .request_as(who, method.clone(), &path, body.clone())
            .await;
        if status != expected {
            wrong.push(format!(
                "{} {method} {path} {body:?}: expected {expected}, got {status} {answer}",
                who.0
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));

    // Lists hold only what the user may read.
    assert_eq!(listed(&server, ALICE, USERS).await, [w.alice]);
    assert_eq!(listed(&server, BOB, USERS).await, [w.alice, w.bob, w.carol]);
    assert_eq!(listed(&server, DAVE, USERS).await, [w.dave]);
    assert_eq!(listed(&server, ALICE, SERVICES).await, [w.svc1]);
    assert_eq!(listed(&server, DAVE, SERVICES).await, Vec::<i64>::new());
    assert_eq!(listed(&server, ROOT, SERVICES).await, [w.svc1, w.svc2]);
    assert_eq!(listed(&server, DAVE, SITES).await, [w.site_a, w.site_b]);

    // Writes refused were not made.
    let (_, b) = server.request(Method::GET, &site(w.site_b), None).await;
    assert_eq!(b["name"], "site-b");

    // TOSCA goes through the same check: dave cannot change site A there.
    let recipe = "tosca_definitions_version: tosca_simple_yaml_1_0\n\
        imports:\n  - custom_types/site.yaml\n\
        topology_template:\n  node_templates:\n    site-a:\n      type: tosca.nodes.Site\n\
        \x20     properties:\n        name: A by bob\n        login_base: hacked\n";
    let (status, answer) = server.tosca(recipe, DAVE.0, DAVE.1).await;
    assert_eq!(status, 403, "{answer}");
    let (_, a) = server.request(Method::GET, &site(w.site_a), None).await;
    assert_eq!(a["login_base"], "a", "{a}");
    let (status, answer) = server.tosca(recipe, BOB.0, BOB.1).await;
    assert_eq!(status, 200, "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_cannot_escalate_and_the_last_admin_stays() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(data.path());
    let w = world(&server).await;
    let user = |id: i64| format!("{USERS}/{id}");
    let root_id = listed(&server, ROOT, USERS).await[0];
    let refused = |answer: &(u16, Value), status: u16, needle: &str| {
        assert_eq!(answer.0, status, "{}", answer.1);
        let text = answer.1.to_string();
        assert!(text.contains(needle), "`{needle}` not in {text}");
    };

    // Making oneself admin or read-write, or anyone admin.
    let answer = put_as(&server, ALICE, &user(w.alice), json!({ "is_admin": true })).await;
    refused(&answer, 403, "only admins may set `is_admin`");
    let answer = put_as(
        &server,
        CAROL,
        &user(w.carol),
        json!({ "is_readonly": false }),
    )
    .await;
    assert_eq!(answer.0, 403, "{}", answer.1);
    let answer = server
        .request_as(
            BOB,
            Method::POST,
            USERS,
            Some(json!({
                "email": "eve@a.example", "password": SECRET, "firstname": "e",
                "lastname": "e", "site_id": w.site_a, "is_admin": true,
            })),
        )
        .await;
    refused(&answer, 403, "only admins may set `is_admin`");
    // bob, site A's admin, may add a plain user to site A.
    let answer = server
        .request_as(
            BOB,
            Method::POST,
            USERS,
            Some(json!({
                "email": "eve@a.example", "password": SECRET, "firstname": "e",
                "lastname": "e", "site_id": w.site_a,
            })),
        )
        .await;
    assert_eq!(answer.0, 201, "{}", answer.1);

    // Passwords: not another's (unless admin), one's own only with the old.
    let answer = put_as(
        &server,
        BOB,
        &user(w.alice),
        json!({ "password": "taken-over" }),
    )
    .await;
    refused(&answer, 403, "another user's password");
    let answer = put_as(
        &server,
        ALICE,
        &user(w.alice),
        json!({ "password": "new-one" }),
    )
    .await;
    refused(&answer, 403, "old_password");
    let answer = put_as(
        &server,
        ALICE,
        &user(w.alice),
        json!({ "password": "new-one", "old_password": "guess" }),
    )
    .await;
    refused(&answer, 403, "not the current password");
    let (status, _) = server.request_as(ALICE, Method::GET, SITES, None).await;
    assert_eq!(status, 200, "a refused change left the password as it was");
    let answer = put_as(
        &server,
        ALICE,
        &user(w.alice),
        json!({ "password": "new-one", "old_password": SECRET }),
    )
    .await;
    assert_eq!(answer.0, 200, "{}", answer.1);
    let (status, _) = server.request_as(ALICE, Method::GET, SITES, None).await;
    assert_eq!(status, 401, "the old password still works");
    let alice = (ALICE.0, "new-one");
    let (status, _) = server.request_as(alice, Method::GET, SITES, None).await;
    assert_eq!(status, 200);
    // The admin's user is out of reach.
    let answer = put_as(&server, alice, &user(root_id), json!({ "password": "x" })).await;
    assert_eq!(answer.0, 404, "{}", answer.1);
    let answer = server
        .request_as(alice, Method::DELETE, &user(root_id), None)
        .await;
    assert_eq!(answer.0, 404, "{}", answer.1);
    // An admin may set another user's password.
    let answer = server
        .request(
            Method::PUT,
            &user(w.dave),
            Some(json!({ "password": "reset" })),
        )
        .await;
    assert_eq!(answer.0, 200, "{}", answer.1);
    let (status, _) = server
        .request_as((DAVE.0, "reset"), Method::GET, SITES, None)
        .await;
    assert_eq!(status, 200);

    // E-mails are unique ignoring case.
    let answer = server
        .request(
            Method::POST,
            USERS,
            Some(json!({
                "email": "ALICE@A.example", "password": SECRET, "firstname": "a",
                "lastname": "a", "site_id": w.site_a,
            })),
        )
        .await;
    refused(&answer, 409, "taken (ignoring case)");
    let answer = server
        .request(
            Method::PUT,
            &user(w.dave),
            Some(json!({ "email": "Bob@A.example" })),
        )
        .await;
    refused(&answer, 409, "taken (ignoring case)");

    // The last admin can be neither demoted, deactivated nor deleted.
    for change in [json!({ "is_admin": false }), json!({ "is_active": false })] {
        let answer = server
            .request(Method::PUT, &user(root_id), Some(change))
            .await;
        refused(&answer, 409, "last active admin");
    }
    let answer = server.request(Method::DELETE, &user(root_id), None).await;
    refused(&answer, 409, "last active admin");
    // With a second admin, the first may go.
    let answer = server
        .request(
            Method::PUT,
            &user(w.dave),
            Some(json!({ "is_admin": true })),
        )
        .await;
    assert_eq!(answer.0, 200, "{}", answer.1);
    let answer = server.request(Method::DELETE, &user(root_id), None).await;
    assert_eq!(answer.0, 200, "{}", answer.1);

    // The bootstrap admin is not created again by a restart.
    drop(server);
    let server = Server::start(data.path());
    let (status, _) = server.request(Method::GET, SITES, None).await;
    assert_eq!(status, 401, "the deleted bootstrap admin came back");
    let (status, _) = server
        .request_as((DAVE.0, "reset"), Method::GET, SITES, None)
        .await;
    assert_eq!(status, 200);
}

const VALID_XPROTO: &str = r#"option app_label = "valid";

policy thing_no_spaces < {{ ' ' not in obj.name }} >
policy thing_has_site < obj.site >

message Thing (XOSBase) {
    option validators = "thing_no_spaces:Thing name contains spaces, thing_has_site:Thing has no site";
    required string name = 1;
    optional manytoone site->Site:things = 2:1001;
}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validators_refuse_writes_on_every_path_with_their_message() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(data.path());
    let package = json!({
        "manifest": {
            "manifest_version": 1,
            "service": { "name": "valid", "version": "1.0.0", "xproto": ["models/valid.xproto"] },
        },
        "xproto": { "models/valid.xproto": VALID_XPROTO },
        "components": {},
    });
    let (status, answer) = server
        .request(
            Method::POST,
            "/syncplane/v1/services",
            Some(json!({ "package": package })),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let site = server
        .create(SITES, json!({ "name": "s", "login_base": "s" }))
        .await;
    const THINGS: &str = "/xosapi/v1/valid/things";
    let answer = server
        .request(
            Method::POST,
            THINGS,
            Some(json!({ "name": "a b", "site_id": site })),
        )
        .await;
    assert_eq!(answer.0, 400, "{}", answer.1);
    assert!(
        answer.1["error"]
            .as_str()
            .is_some_and(|e| e.contains("Thing name contains spaces")),
        "{}",
        answer.1
    );
    let answer = server
        .request(Method::POST, THINGS, Some(json!({ "name": "ab" })))
        .await;
    assert_eq!(answer.0, 400, "{}", answer.1);
    assert!(
        answer.1.to_string().contains("Thing has no site"),
        "{}",
        answer.1
    );
    let id = server
        .create(THINGS, json!({ "name": "ab", "site_id": site }))
        .await;
    let answer = server
        .request(
            Method::PUT,
            &format!("{THINGS}/{id}"),
            Some(json!({ "name": "a b" })),
        )
        .await;
    assert_eq!(answer.0, 400, "{}", answer.1);
    // TOSCA too, and a refused recipe writes nothing.
    let recipe = "tosca_definitions_version: tosca_simple_yaml_1_0\n\
        topology_template:\n  node_templates:\n    other:\n      type: tosca.nodes.Thing\n\
        \x20     properties:\n        name: other thing\n";
    let (status, text) = server.tosca(recipe, ADMIN, PASSWORD).await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("Thing name contains spaces"), "{text}");
    assert_eq!(listed(&server, ROOT, THINGS).await, [id]);
    let (_, thing) = server
        .request(Method::GET, &format!("{THINGS}/{id}"), None)
        .await;
    assert_eq!(thing["name"], "ab");
}

// See: issue 14 §1, "validators run on every write": a sync step's
// feedback write too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_validator_refuses_a_steps_write_and_the_step_fails_with_its_message() {
    use crate::capabilities::{package, sync_step};
    const THINGS: &str = "/xosapi/v1/validated/validatedthings";
    const LIMIT: std::time::Duration = std::time::Duration::from_secs(30);
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(data.path());
    let service = tempfile::tempdir().expect("tempdir");
    package(
        service.path(),
        "validated",
        &["validated.xproto"],
        &sync_step("validated_feedback", "ValidatedThing"),
    );
    crate::util::assert_success(&server.install(service.path(), &[]));

    let fine = server
        .create_path(THINGS, json!({ "name": "fine-1" }))
        .await;
    // The user may create it: the validator looks at what the step reports.
    let refused = server
        .create_path(THINGS, json!({ "name": "out of sync" }))
        .await;
    let failed = server
        .wait_for(&refused, LIMIT, |o| o["backend_code"] == 2)
        .await;
    let status = failed["backend_status"].as_str().unwrap_or_default();
    assert!(
        status.contains("the backend reports the thing out of sync"),
        "{failed}"
    );
    assert_eq!(failed["observed"], Value::Null, "nothing written: {failed}");

    // Other objects keep syncing, before and after the refusal.
    let later = server
        .create_path(THINGS, json!({ "name": "fine-2" }))
        .await;
    for (path, name) in [(&fine, "fine-1"), (&later, "fine-2")] {
        let synced = server
            .wait_for(path, LIMIT, |o| o["backend_code"] == 1)
            .await;
        assert_eq!(synced["observed"], name, "{synced}");
    }
    // The refused write left no audit entry; the accepted ones did.
    let (status, audit) = server
        .request(
            Method::GET,
            "/syncplane/v1/audit?model=ValidatedThing",
            None,
        )
        .await;
    assert_eq!(status, 200, "{audit}");
    let feedback: Vec<&Value> = audit["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|e| e["operation"] == "feedback")
        .map(|e| &e["fields"]["observed"])
        .collect();
    assert_eq!(feedback.len(), 2, "{audit}");
    assert!(!feedback.contains(&&json!("out of sync")), "{audit}");
    let still = server.get(&refused).await;
    assert_eq!(still["observed"], Value::Null, "{still}");
    assert!(
        crate::util::failures(&still) >= 1,
        "counted as a failure: {still}"
    );
}

#[test]
fn python_escapes_syncplane_cannot_evaluate_are_refused_where_they_are() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("svc.xproto");
    std::fs::write(
        &file,
        "option app_label = \"svc\";\n\npolicy long < {{ obj.name.isalpha() }} >\n\n\
         message S (XOSBase) {\n    option validators = \"long:too short\";\n    required string name = 1;\n}\n",
    )
    .expect("write");
    let output = std::process::Command::new(crate::util::BIN)
        .args(["xproto", "check"])
        .arg(&file)
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("error: {}:3:", file.display()))
            && stderr.contains("cannot be evaluated"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_write_is_audited_with_its_principal_and_secrets_redacted() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(data.path());
    let w = world(&server).await;
    let audit = |query: &str| {
        let path = format!("/syncplane/v1/audit{query}");
        let server = &server;
        async move {
            let (status, body) = server.request(Method::GET, &path, None).await;
            assert_eq!(status, 200, "{body}");
            body["items"].as_array().expect("items").clone()
        }
    };
    // The admin's creates of the world, passwords redacted.
    let users = audit("?model=User").await;
    let alice_created = users
        .iter()
        .find(|e| e["object_id"] == w.alice && e["operation"] == "create")
        .expect("alice's creation");
    assert_eq!(alice_created["principal"], format!("user {ADMIN}"));
    assert_eq!(alice_created["fields"]["email"], ALICE.0);
    assert_eq!(alice_created["fields"]["password"], "[redacted]");
    let everything = serde_json::to_string(&audit("").await).expect("json");
    assert!(
        !everything.contains(SECRET),
        "a password reached the audit log"
    );

    // A user's update and delete, and a TOSCA write, name that user.
    let answer = put_as(
        &server,
        BOB,
        &format!("{SITES}/{}", w.site_a),
        json!({ "abbreviated_name": "A" }),
    )
    .await;
    assert_eq!(answer.0, 200, "{}", answer.1);
    let recipe = "tosca_definitions_version: tosca_simple_yaml_1_0\n\
        topology_template:\n  node_templates:\n    site-a:\n      type: tosca.nodes.Site\n\
        \x20     properties:\n        name: site-a\n        login_base: a2\n";
    let (status, text) = server.tosca(recipe, BOB.0, BOB.1).await;
    assert_eq!(status, 200, "{text}");
    let bobs = audit(&format!("?user={}", BOB.0)).await;
    let changes: Vec<(&str, &Value)> = bobs
        .iter()
        .map(|e| (e["operation"].as_str().unwrap_or("?"), &e["fields"]))
        .collect();
    assert_eq!(
        changes,
        [
            ("update", &json!({ "abbreviated_name": "A" })),
            ("update", &json!({ "login_base": "a2" })),
        ],
        "{bobs:?}"
    );
    let answer = server
        .request_as(
            ROOT,
            Method::DELETE,
            &format!("{SERVICES}/{}", w.svc2),
            None,
        )
        .await;
    assert_eq!(answer.0, 200, "{}", answer.1);
    let deleted = audit("?model=Service").await;
    assert!(
        deleted
            .iter()
            .any(|e| e["operation"] == "delete" && e["object_id"] == w.svc2),
        "{deleted:?}"
    );

    // A refused write leaves no entry: the entry is in the write's
    // transaction.
    let before = audit("").await.len();
    let answer = server
        .request_as(
            DAVE,
            Method::POST,
            SITES,
            Some(json!({ "name": "d", "login_base": "d" })),
        )
        .await;
    assert_eq!(answer.0, 403, "{}", answer.1);
    assert_eq!(audit("").await.len(), before);

    // Only admins read it; the CLI prints it.
    let (status, _) = server
        .request_as(BOB, Method::GET, "/syncplane/v1/audit", None)
        .await;
    assert_eq!(status, 403);
    let out = crate::util::assert_success(
        &server.cli(&["audit", "--user", BOB.0, "--model", "Site", "--since", "1h"]),
    );
    assert_eq!(out.lines().count(), 3, "a header and two entries:\n{out}");
    assert!(
        out.contains(&format!("user {}", BOB.0)) && out.contains("login_base"),
        "{out}"
    );
}
