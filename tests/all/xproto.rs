//! `syncplane xproto check` and `gen` as authors run them.

use std::process::Command;

use crate::util::{BIN, assert_success, repo};

#[test]
fn check_accepts_a_service_alone_and_locates_errors() {
    let hello = repo().join("guests/hello-world/models/hello-world.xproto");
    let out = assert_success(
        &Command::new(BIN)
            .args(["xproto", "check"])
            .arg(&hello)
            .output()
            .expect("run"),
    );
    assert!(out.contains("ok: 1 file(s), 2 model(s)"), "{out}");

    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.xproto");
    std::fs::write(&bad, "message A (Service) {\n  required manytoone x->Nowhere:as = 1:1001;\n  required string x = 2;\n}\n")
        .expect("write");
    let output = Command::new(BIN)
        .args(["xproto", "check"])
        .arg(&bad)
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let at = bad.display();
    assert!(
        stderr.contains(&format!(
            "{at}:2:3: link `x` of `A` points to unknown model `Nowhere`"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{at}:3:3: field `x` is defined twice in `A`")),
        "{stderr}"
    );
    assert!(stderr.contains("2 error(s)"), "{stderr}");
}

#[test]
fn gen_deps_prints_the_model_deps_json() {
    let hello = repo().join("guests/hello-world/models/hello-world.xproto");
    let output = Command::new(BIN)
        .args(["xproto", "gen", "--target", "deps"])
        .arg(&hello)
        .output()
        .expect("run");
    let deps: serde_json::Value = serde_json::from_str(&assert_success(&output)).expect("json");
    assert_eq!(
        deps["HelloWorldServiceInstance"][0],
        serde_json::json!(["Service", "owner", "service_instances"])
    );
    assert!(
        deps.get("Service").is_none(),
        "only the given files' models: {deps}"
    );
}

#[test]
fn gen_proto_sql_and_svg_for_a_service() {
    let hello = repo().join("guests/hello-world/models/hello-world.xproto");
    let run = |args: &[&str]| {
        let output = Command::new(BIN)
            .args(["xproto", "gen"])
            .args(args)
            .arg(&hello)
            .output()
            .expect("run");
        assert_success(&output)
    };
    let proto = run(&["--target", "proto"]);
    // ServiceInstance's fields are numbered from 101, the service's from 201.
    assert!(proto.contains("string hello_to = 201"), "{proto}");
    assert!(
        proto.contains("message HelloWorldServiceInstance {"),
        "{proto}"
    );
    let pg = run(&["--target", "sql", "--dialect", "postgres"]);
    assert!(
        pg.contains("CREATE TABLE IF NOT EXISTS \"m_helloworldserviceinstance\""),
        "{pg}"
    );
    assert!(pg.contains("id BIGINT PRIMARY KEY"), "{pg}");
    let svg = run(&["--target", "svg"]);
    assert!(svg.starts_with("<svg"), "{svg}");
    let openapi: serde_json::Value =
        serde_json::from_str(&run(&["--target", "openapi"])).expect("json");
    assert!(
        openapi["paths"]["/xosapi/v1/hello-world/helloworldserviceinstances"].is_object(),
        "{openapi}"
    );
}
