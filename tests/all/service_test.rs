//! `syncplane service test`: a service's step tests, offline, through the
//! real binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use syncplane_test_artifacts::{HELLO_WORLD_DIR, test_guest};

use crate::util::{BIN, repo};

fn service_test(dir: &Path, extra: &[&str]) -> Output {
    Command::new(BIN)
        .args(["service", "test"])
        .arg(dir)
        .args(extra)
        .output()
        .expect("run syncplane service test")
}

fn shown(out: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A copy of hello-world in a temporary directory, its components taken
/// from the artifacts build, with `tests` as its only test file.
fn hello_world_copy(tests: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = repo().join("guests/hello-world");
    std::fs::create_dir_all(dir.path().join("models")).expect("models dir");
    for file in ["syncplane.toml", "models/hello-world.xproto"] {
        std::fs::copy(src.join(file), dir.path().join(file)).expect("copy");
    }
    let release = dir.path().join("target/wasm32-wasip2/release");
    std::fs::create_dir_all(&release).expect("release dir");
    for step in [
        "sync_hello_world_service",
        "sync_hello_world_service_instance",
    ] {
        let wasm = format!("{step}.wasm");
        std::fs::copy(
            PathBuf::from(HELLO_WORLD_DIR).join(&wasm),
            release.join(&wasm),
        )
        .expect("copy component");
    }
    write_tests(dir.path(), tests);
    dir
}

fn write_tests(dir: &Path, tests: &str) {
    std::fs::create_dir_all(dir.join("tests")).expect("tests dir");
    std::fs::write(dir.join("tests/cases.yaml"), tests).expect("write tests");
}

/// A service of one sync step, the test guest `guest`, observing `model`
/// from `tests/guests/models/<xproto>`.
fn one_step_service(
    guest: &str,
    xproto: &str,
    model: &str,
    capabilities: &str,
    tests: &str,
) -> tempfile::TempDir {
    let section = format!(
        "{capabilities}\n\n[[sync_steps]]\nname = \"{guest}\"\ncomponent = \"step.wasm\"\nobserves = \"{model}\"\n"
    );
    one_component_service(guest, xproto, &section, tests)
}

/// A service of the test guest `guest` as `section` of its manifest
/// declares it (its component is `step.wasm`), with the models of
/// `tests/guests/models/<xproto>`.
fn one_component_service(
    guest: &str,
    xproto: &str,
    section: &str,
    tests: &str,
) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(
        repo().join("tests/guests/models").join(xproto),
        dir.path().join(xproto),
    )
    .expect("copy xproto");
    std::fs::copy(test_guest(guest), dir.path().join("step.wasm")).expect("copy component");
    std::fs::write(
        dir.path().join("syncplane.toml"),
        format!(
            "manifest_version = 1\n\n[service]\nname = \"probe\"\nversion = \"1.0.0\"\nxproto = [\"{xproto}\"]\n\n{section}"
        ),
    )
    .expect("manifest");
    write_tests(dir.path(), tests);
    dir
}

#[test]
fn the_hello_world_tests_pass() {
    let out = service_test(&repo().join("guests/hello-world"), &[]);
    assert!(out.status.success(), "{}", shown(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("TAP version 13\n"), "{stdout}");
    assert!(
        stdout.contains("ok 3 - tests/tutorial.yaml: Tyrion is deferred")
            && stdout.contains("ok 4 - tests/tutorial.yaml: Joffrey fails"),
        "{stdout}"
    );
    assert!(!stdout.contains("not ok"), "{stdout}");
    assert!(
        stdout.contains("\n1..5\n# 5 passed, 0 failed in "),
        "{stdout}"
    );
}

const WRONG: &str = "\
fixtures:
  - name: service
    model: HelloWorldService
    fields: {name: HelloWorld, hello_from: Jhon Snow}
tests:
  - name: a right expectation
    sync: service
    expect:
      outcome: ok
  - name: a wrong expectation
    fixtures:
      - name: tyrion
        model: HelloWorldServiceInstance
        fields: {hello_to: Tyrion Lannister, owner_id: {ref: service}}
    sync: tyrion
    expect:
      objects:
        tyrion:
          backend_status: Maybe not
";

#[test]
fn a_wrong_expectation_fails_naming_file_line_and_field_and_junit_says_so() {
    let dir = hello_world_copy(WRONG);
    let junit = dir.path().join("report.xml");
    let out = service_test(
        dir.path(),
        &["--no-build", "--junit", junit.to_str().expect("utf-8 path")],
    );
    assert_eq!(out.status.code(), Some(1), "{}", shown(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("ok 1 - tests/cases.yaml: a right expectation"),
        "{stdout}"
    );
    assert!(
        stdout.contains("not ok 2 - tests/cases.yaml: a wrong expectation"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "#   tests/cases.yaml:19: objects.tyrion.backend_status (HelloWorldServiceInstance "
        ) && stdout.contains("#     expected: \"Maybe not\"\n#     actual:   \"Maybe later\"\n"),
        "{stdout}"
    );
    assert!(stdout.contains("# 1 passed, 1 failed in "), "{stdout}");

    let xml = std::fs::read_to_string(&junit).expect("the JUnit report");
    let mut reader = quick_xml::Reader::from_str(&xml);
    let (mut cases, mut failures, mut depth) = (Vec::new(), 0, 0i32);
    loop {
        match reader.read_event().expect("well-formed XML") {
            quick_xml::events::Event::Start(e) | quick_xml::events::Event::Empty(e)
                if e.name().as_ref() == b"testcase" =>
            {
                let name = e
                    .try_get_attribute("name")
                    .expect("attribute")
                    .expect("name")
                    .unescape_value()
                    .expect("value")
                    .into_owned();
                cases.push(name);
                depth += i32::from(matches!(
                    reader.read_event(),
                    Ok(quick_xml::events::Event::Start(ref f)) if f.name().as_ref() == b"failure"
                ));
            }
            quick_xml::events::Event::Start(e) if e.name().as_ref() == b"failure" => failures += 1,
            quick_xml::events::Event::Eof => break,
            _ => {}
        }
    }
    assert_eq!(
        cases,
        ["a right expectation", "a wrong expectation"],
        "{xml}"
    );
    assert_eq!(failures + depth, 1, "{xml}");
    assert!(
        xml.contains("tests/cases.yaml:19: objects.tyrion.backend_status"),
        "{xml}"
    );

    // --filter runs only what it names.
    let out = service_test(dir.path(), &["--no-build", "--filter", "right"]);
    assert!(out.status.success(), "{}", shown(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("# 1 passed, 0 failed, 1 filtered out in "),
        "{}",
        shown(&out)
    );
}

#[test]
fn an_unknown_key_in_a_test_file_fails_with_its_location() {
    let dir = hello_world_copy(&WRONG.replace("      outcome: ok", "      outcom: ok"));
    let out = service_test(dir.path(), &["--no-build"]);
    assert_eq!(out.status.code(), Some(1), "{}", shown(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("not ok 1 - tests/cases.yaml: (load)")
            && stdout.contains(
                "#   tests/cases.yaml:9: tests[0].expect: unknown field `outcom`, expected one of"
            )
            && stdout.contains("(column 7)"),
        "{stdout}"
    );
}

#[test]
fn an_unexpected_http_request_fails_the_test() {
    let dir = one_step_service(
        "cap_http_ok",
        "capabilities.xproto",
        "HttpOkTarget",
        "[capabilities]\noutbound_http = [\"http://127.0.0.1:9\"]\nconfig = [\"url\"]",
        "\
config: {url: 'http://127.0.0.1:9'}
fixtures:
  - name: probe
    model: HttpOkTarget
    fields: {name: probe}
tests:
  - name: the declared request is answered
    sync: probe
    http:
      - request: {url: 'http://127.0.0.1:9/ok'}
        response: {body: fine}
    expect:
      outcome: ok
      logs: ['http ok probe: fine']
  - name: no request is declared
    sync: probe
    expect:
      outcome: ok
  - name: the grants are checked before the test's backend
    config: {url: 'http://127.0.0.1:10'}
    sync: probe
    http:
      - request: {url: 'http://127.0.0.1:10/ok'}
        optional: true
    expect:
      outcome: failed
      message_contains: outbound host 127.0.0.1:10 is not in this service's grants
",
    );
    let out = service_test(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(1), "{}", shown(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("ok 1 - tests/cases.yaml: the declared request is answered"),
        "{stdout}"
    );
    assert!(
        stdout.contains("not ok 2 - tests/cases.yaml: no request is declared")
            && stdout.contains(
                "#   tests/cases.yaml:15: unexpected HTTP request #1: GET http://127.0.0.1:9/ok"
            )
            && stdout.contains("(this action declares no HTTP exchanges)"),
        "{stdout}"
    );
    assert!(
        stdout
            .contains("ok 3 - tests/cases.yaml: the grants are checked before the test's backend"),
        "{stdout}"
    );
}

#[test]
fn a_trapping_guest_is_reported_as_a_trap() {
    let dir = one_step_service(
        "hostile_trap",
        "hostile.xproto",
        "TrapTarget",
        "",
        "\
tests:
  - name: the guest panics
    fixtures:
      - name: target
        model: TrapTarget
        fields: {name: boom}
    sync: target
    expect:
      outcome: trap
      trap: crash
      message_contains: hostile guest panics while syncing boom
      objects:
        target: {backend_code: 2}
  - name: a trap is not a failure
    fixtures:
      - name: target
        model: TrapTarget
        fields: {name: boom}
    sync: target
    expect:
      outcome: failed
",
    );
    let out = service_test(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(1), "{}", shown(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("ok 1 - tests/cases.yaml: the guest panics"),
        "{stdout}"
    );
    assert!(
        stdout.contains("not ok 2 - tests/cases.yaml: a trap is not a failure")
            && stdout.contains("#     expected: failed\n#     actual:   trap (crash): step `hostile_trap` of service `probe`"),
        "{stdout}"
    );
}

#[test]
fn an_event_is_handed_to_its_event_step() {
    let dir = one_component_service(
        "event_regions",
        "chain.xproto",
        "[[event_steps]]\nname = \"event_regions\"\ncomponent = \"step.wasm\"\ntopics = [\"regions\"]\n",
        "\
tests:
  - name: a new key creates its region
    event: {step: event_regions, topic: regions, key: north, value: {size: 3}}
    expect:
      outcome: ok
      logs: [event created region north]
      created:
        - model: ChainRegion
          fields: {name: north}
  - name: an event without a key fails the step
    event: {step: event_regions, topic: regions}
    expect:
      outcome: failed
      message: a regions event needs a key
      created: []
  - name: a step the service does not have is a failure, not a crash
    event: {step: nowhere, topic: regions, key: south}
",
    );
    let out = service_test(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(1), "{}", shown(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("ok 1 - tests/cases.yaml: a new key creates its region")
            && stdout.contains("ok 2 - tests/cases.yaml: an event without a key fails the step"),
        "{stdout}"
    );
    assert!(
        stdout.contains("not ok 3 - tests/cases.yaml: a step the service does not have")
            && stdout
                .contains("#   tests/cases.yaml:16: service `probe` has no event step `nowhere`"),
        "{stdout}"
    );
}

#[test]
fn fixtures_may_be_objects_of_another_services_models() {
    let dir = one_step_service(
        "hostile_trap",
        "hostile.xproto",
        "TrapTarget",
        "",
        "\
services: [chain]
fixtures:
  - name: north
    model: ChainRegion
    fields: {name: north}
  - name: rack-zone
    model: ChainZone
    fields: {name: z1, region_id: {ref: north}}
tests:
  - name: the other service's objects are there, linked
    delete: north
    expect:
      deleted: [north, rack-zone]
",
    );
    let chain = dir.path().join("chain");
    std::fs::create_dir_all(&chain).expect("chain dir");
    std::fs::copy(
        repo().join("tests/guests/models/chain.xproto"),
        chain.join("chain.xproto"),
    )
    .expect("copy xproto");
    std::fs::write(
        chain.join("syncplane.toml"),
        "manifest_version = 1\n\n[service]\nname = \"chain\"\nversion = \"1.0.0\"\nxproto = [\"chain.xproto\"]\n\n\
         [[sync_steps]]\nname = \"chain_step\"\ncomponent = \"not-built.wasm\"\nobserves = \"ChainRegion\"\n",
    )
    .expect("manifest");
    let out = service_test(dir.path(), &[]);
    assert!(out.status.success(), "{}", shown(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("ok 1 - tests/cases.yaml: the other service's objects are there, linked"),
        "{}",
        shown(&out)
    );
}
