//! `syncplane xproto check`, `fmt` and `gen` as authors run them.

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
    // Each error comes with its source line; no colour outside a terminal.
    assert!(
        stderr.contains(&format!(
            "error: {at}:2:3: link `x` of `A` points to unknown model `Nowhere`"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(" 2 │   required manytoone x->Nowhere:as = 1:1001;"),
        "{stderr}"
    );
    assert!(!stderr.contains('\u{1b}'), "{stderr:?}");
}

#[test]
fn check_reports_warnings_with_snippets_and_still_succeeds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let svc = dir.path().join("svc.xproto");
    std::fs::write(
        &svc,
        "option app_label = \"svc\";\nmessage S (Service) {\n  required string a = 1 [colour = \"red\"];\n}\n",
    )
    .expect("write");
    let output = Command::new(BIN)
        .args(["xproto", "check"])
        .arg(&svc)
        .output()
        .expect("run");
    let stdout = assert_success(&output);
    assert!(stdout.contains("ok: 1 file(s), 1 model(s)"), "{stdout}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let at = svc.display();
    assert!(
        stderr.contains(&format!(
            "warning: {at}:3:26: unknown field option `colour` (kept, but syncplane does not use it)"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(" 3 │   required string a = 1 [colour = \"red\"];"),
        "{stderr}"
    );
    assert!(stderr.contains("1 warning(s)"), "{stderr}");

    // A syntax error still shows the warnings of the files that parsed.
    let bad = dir.path().join("bad.xproto");
    std::fs::write(&bad, "message B {\n  required strin b = 1;\n}\n").expect("write");
    let output = Command::new(BIN)
        .args(["xproto", "check"])
        .arg(&svc)
        .arg(&bad)
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "error: {}:2:12: unknown field type `strin`",
            bad.display()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("1 error(s), 1 warning(s)"), "{stderr}");
}

#[test]
fn check_and_gen_report_semantic_warnings_and_still_succeed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let svc = dir.path().join("svc.xproto");
    std::fs::write(
        &svc,
        "option app_label = \"svc\";\n\
         policy svc_policy < ctx.user.is_admin | {{ ' ' not in obj.name }} >\n\
         message S::svc_policy (Service) {\n\
         \x20 optional int32 n = 1 [default = \"0\"];\n\
         \x20 required manytoone owner->Service:owned_s = 2:1001 [max_length = 30];\n\
         }\n",
    )
    .expect("write");
    let at = svc.display();
    let expected = [
        format!(
            "warning: {at}:4:3: field `S.n`: `default = \"0\"` is a quoted number; write `default = 0`"
        ),
        format!("warning: {at}:5:3: field `S.owner`: `max_length` on a link is ignored"),
    ];
    for args in [&["check"][..], &["gen", "--target", "ir"]] {
        let output = Command::new(BIN)
            .arg("xproto")
            .args(args)
            .arg(&svc)
            .output()
            .expect("run");
        // Warnings only: exit 0, and what was asked for on stdout.
        let stdout = assert_success(&output);
        if args[0] == "check" {
            assert!(stdout.contains("ok: 1 file(s), 1 model(s)"), "{stdout}");
        } else {
            let ir: serde_json::Value = serde_json::from_str(&stdout).expect("IR is JSON");
            assert!(ir.get("models").is_some(), "{stdout}");
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        for warning in &expected {
            assert!(stderr.contains(warning.as_str()), "{args:?}: {stderr}");
        }
        // Rendered as the parse warnings are: with the source line.
        assert!(
            stderr.contains(" 4 │   optional int32 n = 1 [default = \"0\"];"),
            "{stderr}"
        );
        // The one python escape syncplane evaluates is no warning.
        assert!(!stderr.contains("python"), "{args:?}: {stderr}");
        assert!(stderr.contains("2 warning(s)"), "{args:?}: {stderr}");
    }
}

#[test]
fn fmt_prints_checks_and_rewrites_keeping_comments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("svc.xproto");
    let messy = "// The service.\noption app_label='svc';\nmessage S(Service){ // the model\nrequired string a=1[max_length=10];}\n";
    let tidy = "// The service.\noption app_label = \"svc\";\n\nmessage S (Service) { // the model\n    required string a = 1 [max_length = 10];\n}\n";
    std::fs::write(&file, messy).expect("write");
    let fmt = |args: &[&str]| {
        Command::new(BIN)
            .args(["xproto", "fmt"])
            .args(args)
            .arg(&file)
            .output()
            .expect("run")
    };

    assert_eq!(assert_success(&fmt(&[])), tidy);
    assert_eq!(std::fs::read_to_string(&file).expect("read"), messy);

    let check = fmt(&["--check"]);
    assert_eq!(check.status.code(), Some(1));
    let listed = String::from_utf8_lossy(&check.stdout);
    assert_eq!(listed.trim(), file.display().to_string());

    let write = fmt(&["--write"]);
    assert_success(&write);
    assert_eq!(std::fs::read_to_string(&file).expect("read"), tidy);
    let again = fmt(&["--check"]);
    assert_eq!(assert_success(&again), "");

    std::fs::write(&file, "message S {\n  required string a = 1\n}\n").expect("write");
    let broken = fmt(&["--write"]);
    assert_eq!(broken.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&broken.stderr);
    assert!(
        stderr.contains("3:1: expected `;` after the field, found `}`"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(&file).expect("read"),
        "message S {\n  required string a = 1\n}\n",
        "a file that does not parse is left alone"
    );
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

#[test]
fn gen_ends_quietly_when_its_reader_stops_early() {
    use std::io::Read as _;
    let core = repo().join("host/xproto/models/core.xproto");
    // 120 kB of protobuf: more than a pipe holds, so the writer meets the
    // closed pipe, as under `syncplane gen proto core.xproto | head`.
    let mut child = Command::new(BIN)
        .args(["gen", "proto", core.to_str().expect("utf-8 path")])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run syncplane gen");
    let mut head = [0u8; 64];
    child
        .stdout
        .take()
        .expect("stdout")
        .read_exact(&mut head)
        .expect("the first bytes");
    let output = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && !stderr.contains("panicked"),
        "{:?}: {stderr}",
        output.status
    );
    assert!(String::from_utf8_lossy(&head).starts_with("// Generated by syncplane"));
}
