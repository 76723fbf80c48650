//! XOS's own Python client, `xosapi` 4.0.4 from PyPI, unmodified, against
//! the real binary over gRPC with TLS: the script `tests/xosapi/orm_test.py`
//! drives its ORM as an XOS script would.
//!
//! The test needs `python3` (3.8 to 3.11: xosapi's ORM imports `imp`,
//! gone in 3.12), its `venv` module and access to PyPI. It builds a virtual
//! environment once under `target/xosapi-venv/<key>` (the key covers the
//! Python version and the packages), so later runs skip the install.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use serde_json::{Map, Value, json};

use crate::util::{ADMIN, PASSWORD, Server, describe, repo};

/// What the test installs. xosapi 4.0.4 pins `grpcio~=1.19` (no wheels
/// for Python 3.9+), `PyYAML~=5.1` (does not build with current Cython)
/// and `structlog` loosely (multistructlog 2.1 needs the 19.x internals):
/// the three XOS packages go in with `--no-deps`, their dependencies at
/// versions that install on Python 3.11. `Jinja2` is what Chameleon's
/// protoc plugin imports without xosapi declaring it.
const XOS_PACKAGES: &[&str] = &["xosapi==4.0.4", "xosconfig==4.0.4", "multistructlog==2.1.0"];
const DEPENDENCIES: &[&str] = &[
    "grpcio==1.49.1",
    "grpcio-tools==1.49.1",
    "protobuf==4.21.12",
    "googleapis-common-protos==1.56.4",
    "Twisted==26.10.0",
    "structlog==19.2.0",
    "python-consul==1.1.0",
    "simplejson==4.3.0",
    "PyYAML==6.0.4",
    "pykwalify==1.8.0",
    "colorama==0.4.6",
    "six==1.17.0",
    "Jinja2==3.1.6",
];

const INSTALL_HINT: &str = "the xosapi test needs python3 (3.8 to 3.11) with venv and pip, \
     and access to PyPI: on Debian/Ubuntu `apt-get install -y python3 python3-venv python3-pip`";

fn run(command: &mut Command, what: &str) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run {command:?}: {e}\n{INSTALL_HINT}"));
    assert!(
        output.status.success(),
        "{what} failed: {command:?}\n{}\n{INSTALL_HINT}",
        describe(&output)
    );
    output
}

/// The Python interpreter: `SYNCPLANE_TEST_PYTHON`, else `python3`.
fn python() -> String {
    std::env::var("SYNCPLANE_TEST_PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

/// A virtual environment with xosapi 4.0.4 and its companions, made once
/// per Python version and package list.
fn venv() -> PathBuf {
    let python = python();
    let version = run(
        Command::new(&python).args(["-c", "import sys; print('%d.%d' % sys.version_info[:2])"]),
        "asking python3 for its version",
    );
    let version = String::from_utf8_lossy(&version.stdout).trim().to_owned();
    let minor: u32 = version
        .strip_prefix("3.")
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    assert!(
        (8..=11).contains(&minor),
        "python3 is {version}; {INSTALL_HINT} (or set SYNCPLANE_TEST_PYTHON to one)"
    );
    // The key: the interpreter's version and every package pinned.
    let mut key = 0xcbf2_9ce4_8422_2325_u64;
    for byte in std::iter::once(version.as_str())
        .chain(XOS_PACKAGES.iter().copied())
        .chain(DEPENDENCIES.iter().copied())
        .flat_map(|s| s.bytes().chain([0]))
    {
        key = (key ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3);
    }
    let dir = repo().join(format!("target/xosapi-venv/py{version}-{key:016x}"));
    if dir.join(".ready").exists() {
        return dir;
    }
    let _ = std::fs::remove_dir_all(&dir);
    run(
        Command::new(&python).arg("-m").arg("venv").arg(&dir),
        "creating a virtual environment (python3 -m venv)",
    );
    let pip = dir.join("bin/pip");
    run(
        Command::new(&pip)
            .args(["install", "--quiet", "--disable-pip-version-check"])
            .args(["--only-binary", "grpcio,grpcio-tools"])
            .args(DEPENDENCIES),
        "installing xosapi's dependencies from PyPI",
    );
    run(
        Command::new(&pip)
            .args([
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-deps",
            ])
            .args(XOS_PACKAGES),
        "installing xosapi 4.0.4 from PyPI",
    );
    std::fs::write(dir.join(".ready"), "").expect("mark the venv ready");
    dir
}

/// A self-signed certificate for `localhost` (a CA, so the client takes it
/// as its root) and its key, written to `dir`.
fn certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let mut params =
        rcgen::CertificateParams::new(vec!["localhost".to_owned()]).expect("certificate params");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let key = rcgen::KeyPair::generate().expect("key pair");
    let cert = params.self_signed(&key).expect("self-signed certificate");
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, cert.pem()).expect("write cert");
    std::fs::write(&key_path, key.serialize_pem()).expect("write key");
    (cert_path, key_path)
}

/// Runs a phase of `tests/xosapi/orm_test.py` against `endpoint`.
fn orm_test(venv: &Path, phase: &str, endpoint: &str, cert: &Path, work: &Path) -> String {
    let bin = venv.join("bin");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let output = Command::new(bin.join("python"))
        .arg(repo().join("tests/xosapi/orm_test.py"))
        .args([phase, endpoint])
        .arg(cert)
        .arg(work)
        .args([ADMIN, PASSWORD])
        // The client runs `python -m grpc.tools.protoc`: the venv's.
        .env("PATH", path)
        // xosapi ships protobuf code generated in the old style, which only
        // the pure-Python protobuf backend still loads.
        .env("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", "python")
        .output()
        .expect("run orm_test.py");
    let text = describe(&output);
    assert!(
        output.status.success(),
        "xosapi phase `{phase}` failed:\n{text}"
    );
    text
}

/// A package with one model and no steps, as `POST /syncplane/v1/services`
/// takes it.
fn shop_package() -> Value {
    let file = "models/shop.xproto";
    let mut files = Map::new();
    files.insert(
        file.to_owned(),
        Value::String(
            "option app_label = \"shop\";\n\nmessage ShopItem (XOSBase) {\n    required string name = 1;\n}\n"
                .to_owned(),
        ),
    );
    json!({
        "manifest": {
            "manifest_version": 1,
            "service": { "name": "shop", "version": "1.0.0", "xproto": [file] },
        },
        "xproto": files,
        "components": {},
    })
}

// See: issue 21.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xosapi_orm_works_unmodified_over_tls() {
    let started = Instant::now();
    let venv = tokio::task::spawn_blocking(venv).await.expect("venv");
    eprintln!("xosapi venv ready in {:?}", started.elapsed());
    let tmp = tempfile::tempdir().expect("tempdir");
    let (cert, key) = certificate(tmp.path());
    let server = Server::start_with(
        &tmp.path().join("data"),
        &[
            ("--grpc", "127.0.0.1:0"),
            ("--grpc-tls-cert", cert.to_str().expect("utf-8")),
            ("--grpc-tls-key", key.to_str().expect("utf-8")),
        ],
    );
    let url = server.grpc_url.clone().expect("gRPC url");
    let port = url
        .strip_prefix("https://127.0.0.1:")
        .unwrap_or_else(|| panic!("gRPC over TLS: {url}"));
    // The certificate names `localhost`.
    let endpoint = format!("localhost:{port}");
    let work = tmp.path().join("work");
    std::fs::create_dir_all(&work).expect("work dir");

    let main = {
        let (venv, cert, work, endpoint) =
            (venv.clone(), cert.clone(), work.clone(), endpoint.clone());
        tokio::task::spawn_blocking(move || orm_test(&venv, "main", &endpoint, &cert, &work))
            .await
            .expect("main phase")
    };
    assert!(main.contains("all checks passed"), "{main}");

    // A model installed while the server runs, seen by a new client.
    let (status, answer) = server
        .request(
            reqwest::Method::POST,
            "/syncplane/v1/services",
            Some(json!({ "package": shop_package() })),
        )
        .await;
    assert_eq!(status, 200, "install shop: {answer}");
    let again =
        tokio::task::spawn_blocking(move || orm_test(&venv, "reconnect", &endpoint, &cert, &work))
            .await
            .expect("reconnect phase");
    assert!(again.contains("all checks passed"), "{again}");
    eprintln!("xosapi test took {:?}", started.elapsed());
}
