//! Bad input gets a clear error and loses nothing.

use serde_json::json;

use crate::util::{ADMIN, PASSWORD, Server, install_hello_world, tutorial_recipe};

#[tokio::test(flavor = "multi_thread")]
async fn requests_without_or_with_wrong_credentials_get_401() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(data.path());
    let http = reqwest::Client::new();
    let none = http
        .get(format!("{}/xosapi/v1/core/users", server.url))
        .send()
        .await
        .expect("request");
    assert_eq!(none.status().as_u16(), 401);
    let wrong = http
        .get(format!("{}/xosapi/v1/core/users", server.url))
        .basic_auth(ADMIN, Some("not-the-password"))
        .send()
        .await
        .expect("request");
    assert_eq!(wrong.status().as_u16(), 401);
    let (status, body) = server.tosca(&tutorial_recipe(), ADMIN, "wrong").await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = server
        .tosca(&tutorial_recipe(), "nobody@example.org", PASSWORD)
        .await;
    assert_eq!(status, 401, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_recipe_is_refused_whole_with_a_clear_message() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(data.path());
    install_hello_world(&server);

    // The first template is fine, the second names an unknown property:
    // nothing at all is created.
    let bad_property = tutorial_recipe().replace(
        "hello_to: Daenerys Targaryen",
        "hello_too: Daenerys Targaryen",
    );
    let (status, body) = server.tosca(&bad_property, ADMIN, PASSWORD).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains(
            "node template `serviceinstance`: HelloWorldServiceInstance has no property `hello_too`"
        ),
        "{body}"
    );
    let services = server
        .get("/xosapi/v1/hello-world/helloworldservices")
        .await;
    assert_eq!(
        services["items"],
        json!([]),
        "half-applied recipe: {services}"
    );

    let bad_type = tutorial_recipe().replace(
        "tosca.nodes.HelloWorldServiceInstance",
        "tosca.nodes.HelloWorldServiceInstanze",
    );
    let (status, body) = server.tosca(&bad_type, ADMIN, PASSWORD).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("unknown type `tosca.nodes.HelloWorldServiceInstanze`"),
        "{body}"
    );

    let (status, body) = server
        .tosca("tosca_definitions_version: [unclosed\n", ADMIN, PASSWORD)
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("not valid TOSCA YAML"), "{body}");

    // REST: unknown field, wrong type, missing required field.
    let url = "/xosapi/v1/hello-world/helloworldservices";
    for (body, expected) in [
        (
            json!({ "name": "a", "hello_from": "x", "colour": 1 }),
            "HelloWorldService.colour: unknown field",
        ),
        (
            json!({ "name": "a", "hello_from": 5.5 }),
            "HelloWorldService.hello_from: expected a string",
        ),
        (
            json!({ "name": "a" }),
            "HelloWorldService.hello_from: is required",
        ),
        (
            json!({ "name": "a", "hello_from": "x", "backend_code": 1 }),
            "is maintained by syncplane",
        ),
    ] {
        let (status, answer) = server.request(reqwest::Method::POST, url, Some(body)).await;
        assert_eq!(status, 400, "{answer}");
        assert!(
            answer["error"]
                .as_str()
                .unwrap_or_default()
                .contains(expected),
            "{answer}"
        );
    }
    assert_eq!(server.get(url).await["items"], json!([]));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_service_with_malformed_xproto_is_refused_with_file_line_and_column() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(data.path());
    let service = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(service.path().join("models")).expect("dir");
    std::fs::write(
        service.path().join("models/broken.xproto"),
        "option app_label = \"broken\";\n\nmessage Broken (XOSBase) {\n    required strnig name = 1;\n}\n",
    )
    .expect("xproto");
    std::fs::write(
        service.path().join("syncplane.toml"),
        "manifest_version = 1\n[service]\nname = \"broken\"\nversion = \"0.1.0\"\nxproto = [\"models/broken.xproto\"]\n",
    )
    .expect("manifest");
    let out = server.cli(&[
        "service",
        "install",
        service.path().to_str().expect("utf-8"),
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("broken/models/broken.xproto:4:14: unknown field type `strnig`"),
        "{stderr}"
    );
    // Nothing was installed.
    let (status, _) = server
        .request(reqwest::Method::GET, "/xosapi/v1/broken/brokens", None)
        .await;
    assert_eq!(status, 404);
}
