//! Bulk ingest through the real binary (issue 15 §4): a REST `POST` of a
//! JSON array creates the whole batch in one transaction or nothing, with
//! the same validation and authorization as single creates; a TOSCA recipe
//! of thousands of templates is applied all or nothing.

use reqwest::Method;
use serde_json::{Value, json};

use crate::util::{ADMIN, PASSWORD, Server};

const SITES: &str = "/xosapi/v1/core/sites";
const USERS: &str = "/xosapi/v1/core/users";
const PRIVILEGES: &str = "/xosapi/v1/core/privileges";
const SERVICE_INSTANCES: &str = "/xosapi/v1/core/serviceinstances";

fn sites(prefix: &str, n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| json!({ "name": format!("{prefix}-{i}"), "login_base": format!("{prefix}{i}") }))
        .collect()
}

async fn count(server: &Server, collection: &str) -> usize {
    server
        .list_all(&format!("{collection}?page_size=1000"))
        .await
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_is_created_in_one_request_and_reads_back() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(data.path());
    let (status, created) = server
        .request(Method::POST, SITES, Some(Value::from(sites("bulk", 500))))
        .await;
    assert_eq!(status, 201, "{created}");
    let created = created.as_array().expect("an array of the created objects");
    assert_eq!(created.len(), 500);
    let ids: Vec<i64> = created
        .iter()
        .map(|o| o["id"].as_i64().expect("id"))
        .collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "ids follow the order sent"
    );
    for (i, object) in created.iter().enumerate() {
        assert_eq!(object["name"], format!("bulk-{i}"));
        assert_eq!(
            object["backend_code"], 0,
            "pending, as after a single create"
        );
    }
    let read = server.get(&format!("{SITES}/{}", ids[321])).await;
    assert_eq!(read["name"], "bulk-321");
    assert_eq!(read["login_base"], "bulk321");
    assert_eq!(read["enabled"], true, "defaults are applied");
    assert_eq!(count(&server, SITES).await, 500);
    // Audited as single creates are, on the caller.
    let audit = server
        .get("/syncplane/v1/audit?model=Site&limit=10000")
        .await;
    let entries = audit["items"].as_array().expect("audit entries");
    let creates: Vec<&Value> = entries
        .iter()
        .filter(|e| e["operation"] == "create")
        .collect();
    assert_eq!(creates.len(), 500, "{audit}");
    assert_eq!(creates[7]["principal"], format!("user {ADMIN}"));
    assert_eq!(creates[7]["fields"]["name"], "bulk-7");

    // An object is still created alone, answered as before.
    let (status, one) = server
        .request(Method::POST, SITES, Some(json!({ "name": "alone" })))
        .await;
    assert_eq!(status, 201, "{one}");
    assert_eq!(one["name"], "alone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_with_one_bad_item_creates_nothing_and_names_the_item_and_field() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(data.path());
    let mut batch = sites("bad", 6);
    batch[3] = json!({ "login_base": "no-name" });
    let (status, answer) = server
        .request(Method::POST, SITES, Some(Value::from(batch)))
        .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"], "[3].name: is required");
    assert_eq!(answer["index"], 3);
    assert_eq!(answer["field"], "name");

    let mut batch = sites("bad", 6);
    batch[4] = json!({ "name": "x", "colour": "red" });
    let (status, answer) = server
        .request(Method::POST, SITES, Some(Value::from(batch)))
        .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"], "[4].colour: unknown field");

    let mut batch = sites("bad", 3);
    batch[1] = json!(5);
    let (status, answer) = server
        .request(Method::POST, SITES, Some(Value::from(batch)))
        .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"], "[1]: expected a JSON object, got 5");

    // A dangling link in the last item: the first items were fine.
    let svc = server
        .create("/xosapi/v1/core/services", json!({ "name": "svc" }))
        .await;
    let mut batch: Vec<Value> = (0..4)
        .map(|i| json!({ "name": format!("si-{i}"), "owner_id": svc }))
        .collect();
    batch[3] = json!({ "name": "si-3", "owner_id": 999_999 });
    let (status, answer) = server
        .request(Method::POST, SERVICE_INSTANCES, Some(Value::from(batch)))
        .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["index"], 3, "{answer}");
    assert_eq!(answer["field"], "owner", "{answer}");

    assert_eq!(count(&server, SITES).await, 0, "nothing was created");
    assert_eq!(count(&server, SERVICE_INSTANCES).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_over_the_limit_is_refused() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(data.path());
    let batch: Vec<Value> = (0..10_001)
        .map(|i| json!({ "name": format!("s{i}") }))
        .collect();
    let (status, answer) = server
        .request(Method::POST, SITES, Some(Value::from(batch)))
        .await;
    assert_eq!(status, 413, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .is_some_and(|e| e.contains("a batch of 10001 objects is more than 10000")),
        "{answer}"
    );
    assert_eq!(count(&server, SITES).await, 0);
    // An empty batch creates nothing and is no error.
    let (status, answer) = server.request(Method::POST, SITES, Some(json!([]))).await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer, json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_users_batch_with_one_object_they_may_not_create_is_refused_whole() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(data.path());
    let site_a = server
        .create(SITES, json!({ "name": "site-a", "login_base": "a" }))
        .await;
    let site_b = server
        .create(SITES, json!({ "name": "site-b", "login_base": "b" }))
        .await;
    const SECRET: &str = "pa55-word";
    let user = |email: &str| {
        json!({
            "email": email, "password": SECRET, "firstname": email, "lastname": "test",
            "site_id": site_a,
        })
    };
    let bob = server.create(USERS, user("bob@a.example")).await;
    let alice = server.create(USERS, user("alice@a.example")).await;
    let privilege = |accessor: i64, site: i64, permission: &str| {
        json!({
            "accessor_id": accessor, "accessor_type": "User",
            "object_type": "Site", "object_id": site, "permission": permission,
        })
    };
    // Bob administers site A: he may grant on it, not on site B.
    server
        .create(PRIVILEGES, privilege(bob, site_a, "role:admin"))
        .await;
    let bob_login = ("bob@a.example", SECRET);
    let before = count(&server, PRIVILEGES).await;

    let batch = json!([
        privilege(alice, site_a, "role:user"),
        privilege(alice, site_b, "role:user"),
        privilege(alice, site_a, "role:tech"),
    ]);
    let (status, answer) = server
        .request_as(bob_login, Method::POST, PRIVILEGES, Some(batch))
        .await;
    assert_eq!(status, 403, "{answer}");
    assert_eq!(answer["index"], 1, "{answer}");
    assert!(
        answer["error"].as_str().is_some_and(
            |e| e.starts_with("[1]: forbidden: user bob@a.example may not create Privilege")
        ),
        "{answer}"
    );
    assert_eq!(
        count(&server, PRIVILEGES).await,
        before,
        "nothing was created"
    );

    // The same batch without the object he may not create.
    let batch = json!([
        privilege(alice, site_a, "role:user"),
        privilege(alice, site_a, "role:tech"),
    ]);
    let (status, answer) = server
        .request_as(bob_login, Method::POST, PRIVILEGES, Some(batch))
        .await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(count(&server, PRIVILEGES).await, before + 2);

    // A batch of sites is the admins' alone: refused at its first item.
    let (status, answer) = server
        .request_as(
            bob_login,
            Method::POST,
            SITES,
            Some(Value::from(sites("bob", 3))),
        )
        .await;
    assert_eq!(status, 403, "{answer}");
    assert_eq!(answer["index"], 0, "{answer}");
    assert_eq!(count(&server, SITES).await, 2);
}

fn recipe(templates: &str) -> String {
    format!(
        "tosca_definitions_version: tosca_simple_yaml_1_0\nimports:\n  - custom_types/site.yaml\ntopology_template:\n  node_templates:\n{templates}"
    )
}

fn site_templates(prefix: &str, n: usize) -> String {
    (0..n)
        .map(|i| {
            format!(
                "    {prefix}{i}:\n      type: tosca.nodes.Site\n      properties: {{name: {prefix}-{i}, login_base: {prefix}{i}}}\n"
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tosca_recipe_with_many_templates_creates_all_or_nothing() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(data.path());

    // 3,000 sites, a service, and 1,000 instances each requiring it.
    let mut templates = site_templates("site", 3000);
    templates
        .push_str("    svc:\n      type: tosca.nodes.Service\n      properties: {name: svc}\n");
    for i in 0..1000 {
        templates.push_str(&format!(
            "    si{i}:\n      type: tosca.nodes.ServiceInstance\n      properties: {{name: si-{i}}}\n      requirements:\n        - owner:\n            node: svc\n            relationship: tosca.relationships.BelongsToOne\n"
        ));
    }
    let many = recipe(&templates);
    let (status, body) = server.tosca(&many, ADMIN, PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.starts_with("Created models: ['site0', 'site1'"),
        "{body}"
    );
    assert_eq!(count(&server, SITES).await, 3000);
    let instances = server
        .list_all(&format!("{SERVICE_INSTANCES}?page_size=1000"))
        .await;
    assert_eq!(instances.len(), 1000);
    let svc = server.get("/xosapi/v1/core/services").await["items"][0]["id"].clone();
    assert!(instances.iter().all(|si| si["owner_id"] == svc));

    // Applied again: found by their keys, nothing is duplicated.
    let (status, body) = server.tosca(&many, ADMIN, PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(count(&server, SITES).await, 3000);
    assert_eq!(count(&server, SERVICE_INSTANCES).await, 1000);

    // 2,000 new sites, one of them bad near the end: nothing is written.
    let mut templates = site_templates("more", 2000);
    templates.push_str(
        "    toolong:\n      type: tosca.nodes.Site\n      properties: {name: toolong, login_base: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx}\n",
    );
    templates.push_str(&site_templates("after", 10));
    let (status, body) = server.tosca(&recipe(&templates), ADMIN, PASSWORD).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("node template `toolong`"), "{body}");
    assert!(body.contains("login_base"), "{body}");
    assert_eq!(count(&server, SITES).await, 3000, "nothing was created");

    // A template updating an existing site beside new ones, in one run.
    let mut templates = String::from(
        "    old:\n      type: tosca.nodes.Site\n      properties: {name: site-7, login_base: renamed}\n",
    );
    templates.push_str(&site_templates("fresh", 100));
    let (status, body) = server.tosca(&recipe(&templates), ADMIN, PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(count(&server, SITES).await, 3100);
    let sites = server.get(&format!("{SITES}?name=site-7")).await;
    let site7 = sites["items"][0].clone();
    assert_eq!(site7["login_base"], "renamed");
}
