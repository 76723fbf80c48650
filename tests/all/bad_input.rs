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

/// A recipe header whose single template's value is `body`.
fn recipe_around(body: &str) -> String {
    format!(
        "tosca_definitions_version: tosca_simple_yaml_1_0\ntopology_template:\n  node_templates:\n    a: {body}\n"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_megabyte_of_nested_yaml_is_refused_naming_the_limit_while_healthz_answers() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(data.path());
    // 1 MB of flow nesting: before the limits this took libyaml minutes of
    // CPU on an async worker.
    let deep = recipe_around(&format!("{}{}", "[".repeat(500_000), "]".repeat(500_000)));
    assert!(deep.len() > 1_000_000);
    let started = std::time::Instant::now();
    let post = {
        let url = server.url.clone();
        tokio::spawn(async move {
            let response = reqwest::Client::new()
                .post(format!("{url}/run"))
                .basic_auth(ADMIN, Some(PASSWORD))
                .body(deep)
                .timeout(std::time::Duration::from_secs(60))
                .send()
                .await
                .expect("POST /run");
            let status = response.status().as_u16();
            (status, response.text().await.expect("body"))
        })
    };
    // /healthz is answered while the recipe is being refused.
    let http = reqwest::Client::new();
    for _ in 0..5 {
        let health = http
            .get(format!("{}/healthz", server.url))
            .timeout(std::time::Duration::from_secs(10))
            .send()
            .await
            .expect("/healthz answers");
        assert_eq!(health.status().as_u16(), 200);
    }
    let (status, body) = post.await.expect("the POST task");
    let took = started.elapsed();
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("recipe refused: nesting deeper than 64 at line 4"),
        "{body}"
    );
    // Well under a second on an idle machine; the margin is for a loaded CI.
    assert!(took < std::time::Duration::from_secs(10), "took {took:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_alias_bomb_is_refused_and_an_oversized_body_gets_413() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(data.path());
    // Nine levels of ten aliases each: a billion leaves once expanded.
    let mut anchors = String::from("      a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for level in 1..10 {
        let prev = format!("*a{}", level - 1);
        anchors.push_str(&format!(
            "      a{level}: &a{level} [{}]\n",
            [prev.as_str(); 10].join(", ")
        ));
    }
    let bomb = recipe_around(&format!(
        "\n      type: tosca.nodes.Site\n      properties:\n        name: s\n        login_base:\n{anchors}"
    ));
    let (status, body) = server.tosca(&bomb, ADMIN, PASSWORD).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("recipe refused: more than 200000 nodes once aliases are expanded"),
        "{body}"
    );

    // More templates than one transaction should hold the store for.
    let mut many = String::from(
        "tosca_definitions_version: tosca_simple_yaml_1_0\ntopology_template:\n  node_templates:\n",
    );
    for i in 0..10_001 {
        many.push_str(&format!(
            "    s{i}:\n      type: tosca.nodes.Site\n      properties: {{name: s{i}, login_base: b}}\n"
        ));
    }
    let (status, body) = server.tosca(&many, ADMIN, PASSWORD).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("10001 node templates, more than 10000; split the recipe"),
        "{body}"
    );

    // 3 MiB: over the 2 MiB limit of every route but package uploads.
    let large = "#".repeat(3 << 20);
    let (status, body) = server.tosca(&large, ADMIN, PASSWORD).await;
    assert_eq!(status, 413, "{body}");
    let response = reqwest::Client::new()
        .post(format!("{}/xosapi/v1/core/sites", server.url))
        .basic_auth(ADMIN, Some(PASSWORD))
        .header("content-type", "application/json")
        .body(format!("{{\"name\": \"{}\"}}", "x".repeat(3 << 20)))
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status().as_u16(), 413);

    // JSON nested past serde_json's recursion limit is a 400, not a crash.
    let deep_json = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let response = reqwest::Client::new()
        .post(format!("{}/xosapi/v1/core/sites", server.url))
        .basic_auth(ADMIN, Some(PASSWORD))
        .header("content-type", "application/json")
        .body(deep_json)
        .send()
        .await
        .expect("POST");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("recursion limit exceeded"), "{text}");
    assert_eq!(
        server.get("/xosapi/v1/core/sites").await["items"],
        json!([])
    );
}
