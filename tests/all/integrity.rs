//! Data integrity through the real binary: every write path (REST, TOSCA)
//! refuses what the models forbid with an error naming the field and the
//! rule, and an upgrade that makes a field unique is refused while
//! objects repeat its values.

use reqwest::Method;
use serde_json::json;

use crate::lifecycle::package_dir;
use crate::util::{ADMIN, PASSWORD, Server, assert_success, describe};

const SITES: &str = "/xosapi/v1/core/sites";
const IMAGES: &str = "/xosapi/v1/core/images";

#[tokio::test(flavor = "multi_thread")]
async fn rest_and_tosca_refuse_what_the_models_forbid_naming_the_field_and_rule() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(data.path());
    server.create(SITES, json!({ "name": "taken" })).await;
    for (path, body, message) in [
        (
            SITES,
            json!({ "name": "taken" }),
            "Site.name: must be unique",
        ),
        (SITES, json!({ "name": null }), "Site.name: is required"),
        (
            SITES,
            json!({ "name": "  " }),
            "Site.name: may not be blank",
        ),
        (
            SITES,
            json!({ "name": "s", "site_url": "not a url" }),
            "Site.site_url: \"not a url\" is not a URL",
        ),
        (
            SITES,
            json!({ "name": "s", "no_sync": true }),
            "Site.no_sync: is maintained by syncplane",
        ),
        (
            IMAGES,
            json!({ "name": "i", "kind": "lxc" }),
            "Image.kind: \"lxc\" is not one of the choices vm, container",
        ),
    ] {
        let (status, answer) = server.request(Method::POST, path, Some(body.clone())).await;
        assert_eq!(status, 400, "{body}: {answer}");
        let error = answer["error"].as_str().unwrap_or_default();
        assert!(error.contains(message), "{body}: {answer}");
    }
    // An update is held to the same rules.
    let other = server.create(SITES, json!({ "name": "other" })).await;
    let (status, answer) = server
        .request(
            Method::PUT,
            &format!("{SITES}/{other}"),
            Some(json!({ "name": "taken" })),
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer.to_string().contains("Site.name: must be unique"),
        "{answer}"
    );

    // So is TOSCA: the recipe is refused whole, naming the template.
    let recipe = "tosca_definitions_version: tosca_simple_yaml_1_0\ntopology_template:\n  node_templates:\n    fresh:\n      type: tosca.nodes.Site\n      properties:\n        name: fresh\n    image:\n      type: tosca.nodes.Image\n      properties:\n        name: i\n        kind: lxc\n";
    let (status, body) = server.tosca(recipe, ADMIN, PASSWORD).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("Image.kind: \\\"lxc\\\" is not one of the choices"),
        "{body}"
    );
    let (_, sites) = server.request(Method::GET, SITES, None).await;
    assert!(
        !sites.to_string().contains("\"fresh\""),
        "a refused recipe created a site: {sites}"
    );
}

const BOOK_V1: &str =
    "option app_label = \"books\";\nmessage Book (XOSBase) {\n    required string title = 1;\n}\n";
const BOOK_V2: &str = "option app_label = \"books\";\nmessage Book (XOSBase) {\n    required string title = 1 [unique = True];\n}\n";
const BOOKS: &str = "/xosapi/v1/books/books";

#[tokio::test(flavor = "multi_thread")]
async fn an_upgrade_making_a_field_unique_or_tightening_its_rules_is_refused_while_objects_break_them()
 {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(data.path());
    let v1 = package_dir("books", "1.0.0", BOOK_V1, "");
    assert_success(&server.install(v1.path(), &[]));
    let first = server.create(BOOKS, json!({ "title": "Dune" })).await;
    server.create(BOOKS, json!({ "title": "Dune" })).await;
    server.create(BOOKS, json!({ "title": "Emma" })).await;

    let v2 = package_dir("books", "2.0.0", BOOK_V2, "");
    let output = server.install(v2.path(), &[]);
    let text = describe(&output);
    assert!(!output.status.success(), "{text}");
    assert!(
        text.contains(
            "Book: 2 objects share their title with another, but the new version makes it unique"
        ),
        "{text}"
    );
    let listed = assert_success(&server.cli(&["service", "list"]));
    assert!(
        listed.contains("1.0.0"),
        "the refused upgrade changed something: {listed}"
    );

    // Once the values differ, the upgrade goes through and holds.
    server
        .put(
            &format!("{BOOKS}/{first}"),
            json!({ "title": "Dune Messiah" }),
        )
        .await;
    assert_success(&server.install(v2.path(), &[]));
    let (status, answer) = server
        .request(Method::POST, BOOKS, Some(json!({ "title": "Emma" })))
        .await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer.to_string().contains("Book.title: must be unique"),
        "{answer}"
    );

    // A rule that tightens (a shorter max_length) is checked the same way.
    let v3 = package_dir("books", "3.0.0", BOOK_V3, "");
    let output = server.install(v3.path(), &[]);
    let text = describe(&output);
    assert!(!output.status.success(), "{text}");
    assert!(
        text.contains("Book: 1 objects break the new rules of `title` (first: Book.title: longer than max_length 4)"),
        "{text}"
    );
}

const BOOK_V3: &str = "option app_label = \"books\";\nmessage Book (XOSBase) {\n    required string title = 1 [unique = True, max_length = 4];\n}\n";

#[tokio::test(flavor = "multi_thread")]
async fn many_to_many_links_are_id_lists_over_rest_and_requirements_in_tosca() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(data.path());
    let site = server.create(SITES, json!({ "name": "s" })).await;
    // A Slice's creator, not given, is the user who creates it (XOS).
    let slice = |name: &str| json!({ "name": name, "site_id": site });
    let a = server.create("/xosapi/v1/core/slices", slice("a")).await;
    let b = server.create("/xosapi/v1/core/slices", slice("b")).await;
    let template = server
        .create("/xosapi/v1/core/networktemplates", json!({ "name": "t" }))
        .await;
    let networks = "/xosapi/v1/core/networks";
    let n1 = server
        .create(
            networks,
            json!({ "name": "n1", "template_id": template, "owner_id": a,
                    "permitted_slices_ids": [b, a] }),
        )
        .await;
    let read = server.get(&format!("{networks}/{n1}")).await;
    assert_eq!(read["permitted_slices_ids"], json!([a, b]), "{read}");
    let slice_a = server.get(&format!("/xosapi/v1/core/slices/{a}")).await;
    assert!(slice_a["creator_id"].as_i64().is_some(), "{slice_a}");
    let changed = server
        .put(
            &format!("{networks}/{n1}"),
            json!({ "permitted_slices_ids": [b] }),
        )
        .await;
    assert_eq!(changed["permitted_slices_ids"], json!([b]), "{changed}");
    let (status, answer) = server
        .request(
            Method::PUT,
            &format!("{networks}/{n1}"),
            Some(json!({ "permitted_slices_ids": [999_999] })),
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer.to_string().contains("Slice 999999 does not exist"),
        "{answer}"
    );

    // TOSCA names a many-to-many requirement once per target.
    let (status, body) = server
        .request(Method::GET, "/custom_type/network", None)
        .await;
    let text = body.as_str().unwrap_or_default();
    assert!(status == 200 && text.contains("permitted_slices"), "{text}");
    let recipe = |owner_twice: bool| {
        format!(
            "tosca_definitions_version: tosca_simple_yaml_1_0\ntopology_template:\n  node_templates:\n\
             \x20   a:\n      type: tosca.nodes.Slice\n      properties:\n        name: a\n        must-exist: true\n\
             \x20   b:\n      type: tosca.nodes.Slice\n      properties:\n        name: b\n        must-exist: true\n\
             \x20   t:\n      type: tosca.nodes.NetworkTemplate\n      properties:\n        name: t\n        must-exist: true\n\
             \x20   n2:\n      type: tosca.nodes.Network\n      properties:\n        name: n2\n      requirements:\n\
             \x20       - template:\n            node: t\n\
             \x20       - owner:\n            node: a\n{}\
             \x20       - permitted_slices:\n            node: a\n\
             \x20       - permitted_slices:\n            node: b\n",
            if owner_twice {
                "        - owner:\n            node: b\n"
            } else {
                ""
            }
        )
    };
    let (status, body) = server.tosca(&recipe(true), ADMIN, PASSWORD).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("`owner` of Network links to one object: name it once"),
        "{body}"
    );
    let (status, body) = server.tosca(&recipe(false), ADMIN, PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    let (_, listed) = server
        .request(Method::GET, &format!("{networks}?name=n2"), None)
        .await;
    assert_eq!(
        listed["items"][0]["permitted_slices_ids"],
        json!([a, b]),
        "{listed}"
    );
}
