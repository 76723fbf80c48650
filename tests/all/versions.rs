//! What the host serves to components, and components that import more
//! (issue 19 §5 and §1): `syncplane version --json`; a component built for
//! an interface version the host lacks, or importing outbound HTTP its
//! manifest does not declare, refused at pack and at install, naming the
//! component and import, before anything is compiled.
// See: issue 19, "Versions: interfaces, host, dependencies".

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::marketplace::{COMPILED, combined, path, run};
use crate::util::{Server, assert_success, describe, prebuilt_package, read_log, repo};

/// hello-world with its first component replaced by `wasm`.
fn hello_world_with(work: &Path, name: &str, wasm: &[u8]) -> PathBuf {
    let dir = work.join(name);
    prebuilt_package(
        &repo().join("guests/hello-world"),
        syncplane_test_artifacts::HELLO_WORLD_DIR,
        &dir,
        |manifest| manifest,
    );
    std::fs::write(dir.join("components/sync_hello_world_service.wasm"), wasm)
        .expect("write component");
    dir
}

/// `wasm` with every `from` replaced by `to` (of the same length).
fn replaced(wasm: &[u8], from: &str, to: &str) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let mut out = wasm.to_vec();
    let mut found = false;
    let mut i = 0;
    while i + from.len() <= out.len() {
        if &out[i..i + from.len()] == from.as_bytes() {
            out[i..i + from.len()].copy_from_slice(to.as_bytes());
            found = true;
            i += from.len();
        } else {
            i += 1;
        }
    }
    assert!(found, "{from} is not in the component");
    out
}

#[test]
fn version_json_lists_the_wit_packages_served() {
    let out = run(&["version", "--json"]);
    let answer: Value = serde_json::from_str(&assert_success(&out)).expect("json");
    let packages = answer["wit"].as_array().expect("wit");
    let plugin = packages
        .iter()
        .find(|p| p["package"] == "syncplane:plugin")
        .expect("syncplane:plugin");
    assert_eq!(plugin["range"], "0.1.0, 0.2.0", "{plugin}");
    assert!(
        plugin["interfaces"]["0.2.0"]
            .as_array()
            .is_some_and(|i| i.iter().any(|n| n == "secrets")),
        "{plugin}"
    );
    assert!(
        packages
            .iter()
            .any(|p| p["package"] == "wasi:http" && p["range"] == "0.2.0–0.2.12"),
        "{answer}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn components_importing_what_is_not_served_or_not_declared_are_refused() {
    let work = tempfile::tempdir().expect("tempdir");
    let work = work.path();
    let hello = std::fs::read(
        Path::new(syncplane_test_artifacts::HELLO_WORLD_DIR).join("sync_hello_world_service.wasm"),
    )
    .expect("hello-world component");
    let newer = hello_world_with(
        work,
        "newer",
        &replaced(
            &hello,
            "syncplane:plugin/log@0.2.0",
            "syncplane:plugin/log@0.9.0",
        ),
    );
    let http = std::fs::read(syncplane_test_artifacts::test_guest("cap_http_ok"))
        .expect("cap_http_ok component");
    let undeclared = hello_world_with(work, "undeclared", &http);
    let cases = [
        (
            "an interface version the host lacks",
            &newer,
            "component sync_hello_world_service imports syncplane:plugin/log@0.9.0; this host serves 0.1.0, 0.2.0",
        ),
        (
            "outbound HTTP without a grant",
            &undeclared,
            "component sync_hello_world_service imports wasi:http/outgoing-handler@0.2.12, but the manifest's [capabilities] grant no outbound_http",
        ),
    ];
    for (case, dir, expected) in &cases {
        let file = work.join("refused.spkg");
        let out = run(&["service", "pack", path(dir), "-o", path(&file)]);
        assert!(
            !out.status.success() && combined(&out).contains(expected),
            "pack, {case}: expected {expected:?}\n{}",
            describe(&out)
        );
        assert!(
            !file.exists(),
            "pack, {case}: a refused package was written"
        );
    }

    let data = tempfile::tempdir().expect("tempdir");
    let own_cache = data.path().join("cache/components");
    let server = Server::start_with(data.path(), &[("--component-cache-dir", path(&own_cache))]);
    for (case, dir, expected) in &cases {
        let out = server.install(dir, &[]);
        assert!(
            !out.status.success() && combined(&out).contains(expected),
            "install, {case}: expected {expected:?}\n{}",
            describe(&out)
        );
    }
    // inspect marks the import the host does not serve.
    let out = server.cli(&["service", "inspect", path(&newer)]);
    let text = combined(&out);
    assert!(
        text.contains("syncplane:plugin/log@0.9.0 NOT SERVED: this host serves 0.1.0, 0.2.0")
            && text.contains("sync_hello_world_service_instance: 16 served"),
        "{}",
        describe(&out)
    );
    let list = server.cli(&["service", "list"]);
    assert!(
        assert_success(&list).contains("no services installed"),
        "{}",
        describe(&list)
    );
    let log = read_log(data.path());
    assert!(
        !log.contains(COMPILED),
        "a refused package was compiled:\n{log}"
    );
}
