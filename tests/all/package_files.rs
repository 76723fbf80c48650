//! Package files are read safely (issue 13, section 5): no path a manifest
//! names can leave the package directory — by `..`, by being absolute or
//! through a symlink — and every file is size-capped; uploaded packages are
//! checked the same way. A refused package leaves nothing installed.

use std::path::Path;

use serde_json::{Value, json};
use syncplane_test_artifacts::test_guest;

use crate::util::{Server, assert_success, describe, repo};

const SERVICES: &str = "/syncplane/v1/services";
const STEP: &str = "hostile_trap";

/// A manifest with one xproto file and one sync step (the prebuilt
/// `hostile_trap` guest) at `component`.
fn manifest(xproto: &str, component: &str) -> String {
    format!(
        "manifest_version = 1\n[service]\nname = \"pkgfiles\"\nversion = \"0.1.0\"\nxproto = [{xproto:?}]\n\n\
         [[sync_steps]]\nname = \"{STEP}\"\ncomponent = {component:?}\nobserves = \"TrapTarget\"\n"
    )
}

/// Writes a package into `dir`: the hostile models at
/// `models/hostile.xproto` and the guest at `hostile_trap.wasm`, unless
/// `files` already put something there; then the manifest.
fn package(dir: &Path, xproto: &str, component: &str, files: impl FnOnce(&Path)) {
    std::fs::create_dir_all(dir.join("models")).expect("package dir");
    files(dir);
    let models = dir.join("models/hostile.xproto");
    if std::fs::symlink_metadata(&models).is_err() {
        std::fs::copy(repo().join("tests/guests/models/hostile.xproto"), models).expect("xproto");
    }
    let wasm = dir.join("hostile_trap.wasm");
    if std::fs::symlink_metadata(&wasm).is_err() {
        std::fs::copy(test_guest(STEP), wasm).expect("component");
    }
    std::fs::write(dir.join("syncplane.toml"), manifest(xproto, component)).expect("manifest");
}

/// Asserts `service install dir` fails, with every one of `expected` in
/// its standard error.
fn assert_refused(server: &Server, dir: &Path, expected: &[&str]) {
    let output = server.install(dir, &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success() && expected.iter().all(|e| stderr.contains(e)),
        "expected a refusal saying {expected:?}, got:\n{}",
        describe(&output)
    );
}

async fn installed(server: &Server) -> Vec<Value> {
    server.get(SERVICES).await["items"]
        .as_array()
        .expect("items")
        .clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn manifest_paths_leaving_the_package_and_oversized_files_are_refused() {
    let data = tempfile::tempdir().expect("tempdir");
    let root = tempfile::tempdir().expect("tempdir");
    let root = root.path();
    std::fs::copy(
        repo().join("tests/guests/models/hostile.xproto"),
        root.join("outside.xproto"),
    )
    .expect("outside file");
    std::fs::create_dir_all(root.join("wasm")).expect("outside dir");
    std::fs::copy(test_guest(STEP), root.join("wasm/hostile_trap.wasm")).expect("outside wasm");
    let server = Server::start(data.path());

    // `..`, even to a file that exists and would parse.
    let dotdot = root.join("dotdot");
    package(&dotdot, "../outside.xproto", "hostile_trap.wasm", |_| {});
    assert_refused(
        &server,
        &dotdot,
        &["xproto file `../outside.xproto` leaves the package directory"],
    );

    // An absolute path, even to the very component the package would use.
    let absolute = root.join("absolute");
    let guest = test_guest(STEP).display().to_string();
    package(&absolute, "models/hostile.xproto", &guest, |_| {});
    assert_refused(
        &server,
        &absolute,
        &[
            &format!("component `{guest}` of step `{STEP}`"),
            "is an absolute path",
        ],
    );

    // A symlink to a file outside the package.
    let link = root.join("link");
    package(&link, "models/link.xproto", "hostile_trap.wasm", |dir| {
        std::os::unix::fs::symlink(root.join("outside.xproto"), dir.join("models/link.xproto"))
            .expect("symlink");
    });
    assert_refused(
        &server,
        &link,
        &["xproto file `models/link.xproto` is a symlink pointing outside the package"],
    );

    // A relative symlink that climbs out is refused the same way.
    let climb = root.join("climb");
    package(&climb, "models/link.xproto", "hostile_trap.wasm", |dir| {
        std::os::unix::fs::symlink("../../outside.xproto", dir.join("models/link.xproto"))
            .expect("symlink");
    });
    assert_refused(
        &server,
        &climb,
        &["xproto file `models/link.xproto` is a symlink pointing outside the package"],
    );

    // A directory of the path that is a symlink leading out.
    let linked_dir = root.join("linked-dir");
    package(
        &linked_dir,
        "models/hostile.xproto",
        "target/hostile_trap.wasm",
        |dir| std::os::unix::fs::symlink(root.join("wasm"), dir.join("target")).expect("symlink"),
    );
    assert_refused(
        &server,
        &linked_dir,
        &[
            "component `target/hostile_trap.wasm` of step `hostile_trap` is under `target`, a symlink pointing outside the package",
        ],
    );

    // An xproto file over its 1 MiB limit.
    let big = root.join("big");
    package(&big, "models/big.xproto", "hostile_trap.wasm", |dir| {
        let mut text = std::fs::read_to_string(repo().join("tests/guests/models/hostile.xproto"))
            .expect("xproto");
        while text.len() < 2 << 20 {
            text.push_str("// padding to make the file larger than the host accepts\n");
        }
        text.truncate(2 << 20);
        std::fs::write(dir.join("models/big.xproto"), text).expect("big xproto");
    });
    assert_refused(
        &server,
        &big,
        &["xproto file `models/big.xproto` is 2 MiB; the limit is 1 MiB"],
    );

    // A component over its 32 MiB limit: refused from its size alone (the
    // file is sparse; it is never read).
    let big_wasm = root.join("big-wasm");
    package(&big_wasm, "models/hostile.xproto", "big.wasm", |dir| {
        std::fs::File::create(dir.join("big.wasm"))
            .and_then(|f| f.set_len(33 << 20))
            .expect("big component");
    });
    assert_refused(
        &server,
        &big_wasm,
        &["component `big.wasm` of step `hostile_trap` is 33 MiB; the limit is 32 MiB"],
    );

    assert_eq!(installed(&server).await, Vec::<Value>::new());

    // Symlinks that stay inside the package are followed.
    let inside = root.join("inside");
    package(
        &inside,
        "models/hostile.xproto",
        "target/hostile_trap.wasm",
        |dir| {
            std::fs::create_dir_all(dir.join("shared")).expect("dir");
            std::fs::copy(
                repo().join("tests/guests/models/hostile.xproto"),
                dir.join("shared/hostile.xproto"),
            )
            .expect("xproto");
            std::os::unix::fs::symlink(
                "../shared/hostile.xproto",
                dir.join("models/hostile.xproto"),
            )
            .expect("symlink");
            std::fs::copy(test_guest(STEP), dir.join("shared/hostile_trap.wasm")).expect("wasm");
            std::os::unix::fs::symlink("shared", dir.join("target")).expect("symlink");
        },
    );
    assert_success(&server.install(&inside, &[]));
    let names: Vec<Value> = installed(&server)
        .await
        .iter()
        .map(|s| s["name"].clone())
        .collect();
    assert_eq!(names, [json!("pkgfiles")]);
}

/// Standard base64 with padding, as packages carry components.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The JSON package `POST /syncplane/v1/services` takes.
fn upload(xproto_path: &str, component_path: &str, component: &[u8]) -> Value {
    let models =
        std::fs::read_to_string(repo().join("tests/guests/models/hostile.xproto")).expect("xproto");
    json!({
        "manifest": {
            "manifest_version": 1,
            "service": { "name": "pkgfiles", "version": "0.1.0", "xproto": [xproto_path] },
            "sync_steps": [
                { "name": STEP, "component": component_path, "observes": "TrapTarget" }
            ]
        },
        "xproto": { xproto_path: models },
        "components": { STEP: base64(component) }
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn uploaded_packages_are_checked_the_same_way() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(data.path());
    let guest = std::fs::read(test_guest(STEP)).expect("guest");

    for (package, expected) in [
        (
            upload("models/hostile.xproto", "target/../../x.wasm", &guest),
            format!(
                "component `target/../../x.wasm` of step `{STEP}` leaves the package directory"
            ),
        ),
        (
            upload("../models/hostile.xproto", "hostile_trap.wasm", &guest),
            "xproto file `../models/hostile.xproto` leaves the package directory".to_owned(),
        ),
        (
            upload("models/hostile.xproto", "/etc/passwd", &guest),
            format!("component `/etc/passwd` of step `{STEP}` is an absolute path"),
        ),
        (
            // 33 MiB decoded is 44 MiB as base64: within the server's body
            // limit, over the component's.
            upload(
                "models/hostile.xproto",
                "hostile_trap.wasm",
                &vec![0; 33 << 20],
            ),
            format!(
                "component `hostile_trap.wasm` of step `{STEP}` is 33 MiB; the limit is 32 MiB"
            ),
        ),
    ] {
        let (status, answer) = server
            .request(reqwest::Method::POST, SERVICES, Some(package))
            .await;
        let error = answer["error"].as_str().unwrap_or_default();
        assert!(
            status == 400 && error.contains(&expected),
            "expected 400 saying {expected:?}, got {status}: {answer}"
        );
    }
    assert_eq!(installed(&server).await, Vec::<Value>::new());

    // The same package with sound paths installs.
    let (status, answer) = server
        .request(
            reqwest::Method::POST,
            SERVICES,
            Some(upload("models/hostile.xproto", "hostile_trap.wasm", &guest)),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
}
