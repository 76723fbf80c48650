//! The Python and JavaScript guest toolchains for the end-to-end tests,
//! installed from this checkout by `sdk/install-toolchains.sh` into
//! `target/guest-toolchains/` (once; again only when an SDK changes), and
//! installing a service through the real binary with them.
//!
//! Without python3 (with venv and pip), Node.js and npm, or without access
//! to PyPI and npm, the tests fail saying what to install; they never skip.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use crate::util::{ADMIN, BIN, PASSWORD, Server, assert_success, describe, repo};

const PYTHON_HINT: &str = "the Python guest tests need python3 with venv and pip, and access to \
     PyPI (for componentize-py): on Debian/Ubuntu `apt-get install -y python3 python3-venv \
     python3-pip`, then `sdk/install-toolchains.sh python`";
const JS_HINT: &str = "the JavaScript guest tests need Node.js 18+ and npm, and access to the npm \
     registry (for componentize-js and esbuild): on Debian/Ubuntu `apt-get install -y nodejs npm`, \
     then `sdk/install-toolchains.sh js`";

/// Runs `sdk/install-toolchains.sh LANG` and returns its toolchain folder.
fn install(lang: &str, hint: &str) -> PathBuf {
    let output = Command::new("bash")
        .arg(repo().join("sdk/install-toolchains.sh"))
        .arg(lang)
        .output()
        .unwrap_or_else(|e| panic!("cannot run sdk/install-toolchains.sh: {e}\n{hint}"));
    assert!(
        output.status.success(),
        "installing the {lang} guest toolchain failed:\n{}\n{hint}",
        describe(&output)
    );
    repo().join("target/guest-toolchains").join(lang)
}

/// componentize-py from the Python toolchain, with the SDK beside it.
pub fn componentize_py() -> PathBuf {
    let tool = install("python", PYTHON_HINT).join("bin/componentize-py");
    assert!(tool.is_file(), "{} missing\n{PYTHON_HINT}", tool.display());
    tool
}

/// componentize-js from the JavaScript toolchain, with esbuild and the SDK
/// beside it.
pub fn componentize_js() -> PathBuf {
    let tool = install("js", JS_HINT).join("syncplane-sdk/node_modules/.bin/componentize-js");
    assert!(tool.is_file(), "{} missing\n{JS_HINT}", tool.display());
    tool
}

/// Runs `syncplane ARGS` against `server` (when given) with `env` set.
pub fn syncplane(server: Option<&Server>, args: &[&str], env: &[(&str, PathBuf)]) -> Output {
    let mut command = Command::new(BIN);
    command.args(args);
    if let Some(server) = server {
        command
            .env("SYNCPLANE_SERVER", &server.url)
            .env("SYNCPLANE_USERNAME", ADMIN)
            .env("SYNCPLANE_PASSWORD", PASSWORD);
    }
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("run syncplane")
}

/// A new service `name` in `lang` observing `model`, written by `syncplane
/// service new` into `parent/name` with this checkout's SDKs.
pub fn service_new(parent: &Path, name: &str, lang: &str, model: &str) -> PathBuf {
    let dir = parent.join(name);
    let out = assert_success(&syncplane(
        None,
        &[
            "service",
            "new",
            name,
            "--lang",
            lang,
            "--model",
            model,
            "--dir",
            dir.to_str().expect("utf-8 path"),
            "--sdk",
            repo().to_str().expect("utf-8 path"),
        ],
        &[],
    ));
    assert!(out.contains("created"), "{out}");
    dir
}

/// `syncplane service install DIR` with the test toolchains (the binary
/// builds first, or finds the build up to date); prints how long it took.
pub fn install_with_toolchains(server: &Server, dir: &Path, env: &[(&str, PathBuf)]) {
    let started = Instant::now();
    let out = assert_success(&syncplane(
        Some(server),
        &["service", "install", dir.to_str().expect("utf-8 path")],
        env,
    ));
    assert!(out.contains("installed hello-world 1.0.0"), "{out}");
    eprintln!(
        "installed {} in {:.1}s",
        dir.display(),
        started.elapsed().as_secs_f64()
    );
}

/// `service build` in `dir` builds each of its two steps, and a second run
/// finds both up to date within seconds.
pub fn builds_once_then_up_to_date(dir: &Path, env: &[(&str, PathBuf)]) {
    let path = dir.to_str().expect("utf-8 path");
    let out = assert_success(&syncplane(None, &["service", "build", path], env));
    assert!(
        out.contains("build/sync_hello_world_service.wasm (")
            && out.contains("build/sync_hello_world_service_instance.wasm ("),
        "{out}"
    );
    // Both steps say "up to date": neither toolchain ran again (no timing
    // is asserted; a loaded machine starts even `--version` slowly).
    let again = syncplane(None, &["service", "build", path], env);
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(again.status.success(), "{stderr}");
    assert_eq!(stderr.matches(": up to date").count(), 2, "{stderr}");
}

/// `service build` in `dir` with the toolchain `variable` names missing
/// fails, and its error says each of `hints`.
pub fn build_without_toolchain_says(dir: &Path, variable: &str, hints: &[&str]) {
    let out = Command::new(crate::util::BIN)
        .args(["service", "build", dir.to_str().expect("utf-8 path")])
        .env("PATH", "/nonexistent")
        .env_remove(variable)
        .output()
        .expect("run syncplane");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    for hint in hints {
        assert!(stderr.contains(hint), "no `{hint}` in: {stderr}");
    }
}
