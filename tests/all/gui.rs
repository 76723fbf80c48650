//! The web GUI (`/ui/`) in a real browser: `tests/gui/gui_test.py` drives
//! the system Chromium with Playwright for Python against the real binary.
//!
//! The test needs Chromium (Debian's `chromium`, launched by its path:
//! never a downloaded browser) and python3 with `venv` and pip; it builds
//! a virtual environment with Playwright once under
//! `target/gui-venv/py<version>` from `tests/gui/requirements.txt`
//! (again when that file changes), as the xosapi test does. Without either it fails, saying what
//! to install. A failed run leaves a screenshot and the page's HTML under
//! `target/gui-artifacts/`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use syncplane_test_artifacts::test_guest;

use crate::util::{ADMIN, PASSWORD, Server, assert_success, describe, repo, write_manifest};

/// What the script needs (Playwright, pinned); the venv is made again
/// when it changes.
const REQUIREMENTS: &str = "tests/gui/requirements.txt";

const INSTALL_HINT: &str = "the GUI test needs Chromium and python3 with venv and pip (and PyPI \
     for Playwright): on Debian/Ubuntu `apt-get install -y chromium python3 python3-venv \
     python3-pip`; set SYNCPLANE_TEST_CHROMIUM to use another Chromium";

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

/// The browser: `SYNCPLANE_TEST_CHROMIUM`, else Debian's.
fn chromium() -> PathBuf {
    let path = std::env::var("SYNCPLANE_TEST_CHROMIUM")
        .map_or_else(|_| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    assert!(
        path.exists(),
        "no Chromium at {}: {INSTALL_HINT}",
        path.display()
    );
    path
}

/// A virtual environment with Playwright, made once per Python version
/// and [`REQUIREMENTS`] (copied into it as `.ready` when done; `.ci/run`
/// makes the same one).
fn venv() -> PathBuf {
    // Two browser tests of this process may ask at once: one makes it.
    static MAKING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = MAKING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let python = std::env::var("SYNCPLANE_TEST_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let version = run(
        Command::new(&python).args(["-c", "import sys; print('%d.%d' % sys.version_info[:2])"]),
        "asking python3 for its version",
    );
    let version = String::from_utf8_lossy(&version.stdout).trim().to_owned();
    let requirements = repo().join(REQUIREMENTS);
    let wanted = std::fs::read_to_string(&requirements).expect("tests/gui/requirements.txt");
    let dir = repo().join(format!("target/gui-venv/py{version}"));
    if std::fs::read_to_string(dir.join(".ready")).ok().as_deref() == Some(wanted.as_str()) {
        return dir;
    }
    let _ = std::fs::remove_dir_all(&dir);
    run(
        Command::new(&python).arg("-m").arg("venv").arg(&dir),
        "creating a virtual environment (python3 -m venv)",
    );
    run(
        Command::new(dir.join("bin/pip"))
            .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
            .arg(&requirements)
            // Playwright's own browsers are never downloaded.
            .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1"),
        "installing Playwright from PyPI",
    );
    std::fs::write(dir.join(".ready"), wanted).expect("mark the venv ready");
    dir
}

/// The `gadgets` service: `Gadget` (a field of each kind, a feedback
/// field) synced by `chain_step`, which fails objects named `bad...` with
/// `<name> is broken`, and a `gui_hidden` model.
pub(crate) fn gadgets_package(dir: &Path) {
    std::fs::create_dir_all(dir.join("models")).expect("package dir");
    std::fs::write(
        dir.join("models/gadgets.xproto"),
        r#"option app_label = "gadgets";

message Gadget (XOSBase) {
    option verbose_name = "Gadget";
    option description = "A thing the GUI test makes";
    required string name = 1 [max_length = 64, unique = True, help_text = "What the gadget is called"];
    optional int32 vlan = 2 [min_value = 1, max_value = 4095, help_text = "Its VLAN"];
    optional string color = 3 [choices = "(('red', 'Red'), ('blue', 'Blue'))", max_length = 8];
    required bool enabled = 4 [default = True];
    optional string observed = 5 [feedback_state = True, max_length = 64];
    optional string notes = 6 [text = True, help_text = "Anything"];
    optional manytoone site->Site:gadgets = 7:1001 [blank = True, help_text = "Where it is"];
}

message HiddenGadget (XOSBase) {
    option gui_hidden = True;
    required string name = 1;
}
"#,
    )
    .expect("xproto");
    let manifest = format!(
        "manifest_version = 1\n\n[service]\nname = \"gadgets\"\nversion = \"0.1.0\"\n\
         xproto = [\"models/gadgets.xproto\"]\n\n[[sync_steps]]\nname = \"chain_step\"\n\
         component = {:?}\nobserves = \"Gadget\"\n",
        test_guest("chain_step").display().to_string()
    );
    write_manifest(dir, &manifest);
}

/// The `widgets` service (one model, no steps) packed as `service pack`
/// makes it, for the install review to upload; returns the file.
fn widgets_file(server: &Server, work: &Path) -> PathBuf {
    let dir = work.join("widgets");
    std::fs::create_dir_all(dir.join("models")).expect("package dir");
    std::fs::write(
        dir.join("models/widgets.xproto"),
        "option app_label = \"widgets\";\n\nmessage Widget (XOSBase) {\n    required string name = 1;\n}\n",
    )
    .expect("xproto");
    write_manifest(
        &dir,
        "manifest_version = 1\n\n[service]\nname = \"widgets\"\nversion = \"0.2.0\"\n\
         xproto = [\"models/widgets.xproto\"]\n",
    );
    let file = work.join("widgets.spkg");
    let (out, src) = (
        file.to_str().expect("utf-8 path"),
        dir.to_str().expect("utf-8 path"),
    );
    assert_success(&server.cli(&["service", "pack", "-o", out, src]));
    file
}

/// The hostile name of the object whose sync fails: its `backend_status`
/// is `<name> is broken`.
const HOSTILE: &str = "bad<img src=x onerror=window.__xss=1>";

#[tokio::test(flavor = "multi_thread")]
async fn the_gui_in_chromium_signs_in_lists_edits_deletes_and_updates_live() {
    let chromium = chromium();
    let started = Instant::now();
    let venv = tokio::task::spawn_blocking(venv).await.expect("venv");
    eprintln!("GUI venv ready in {:?}", started.elapsed());

    let work = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&work.path().join("data"));
    let package = work.path().join("gadgets");
    gadgets_package(&package);
    assert_success(&server.install(&package, &[]));

    let mut gadgets: Vec<Value> = (0..120)
        .map(|i| json!({ "name": format!("gadget-{i:03}"), "vlan": i + 1 }))
        .collect();
    gadgets.push(json!({ "name": HOSTILE }));
    let (status, created) = server
        .request(
            reqwest::Method::POST,
            "/xosapi/v1/gadgets/gadgets",
            Some(Value::Array(gadgets)),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let bad = created[120]["id"].as_i64().expect("id");
    server
        .wait_for(
            &format!("/xosapi/v1/gadgets/gadgets/{bad}"),
            Duration::from_secs(60),
            |o| o["backend_code"] == 2,
        )
        .await;

    let widgets = widgets_file(&server, work.path());
    let install = widgets.to_str().expect("utf-8 path").to_owned();
    browser_run(
        &server,
        venv,
        chromium,
        "gui_test.py",
        &[("INSTALL_PACKAGE", &install)],
    )
    .await;
}

/// The XOS tutorial in the browser (`tests/gui/tutorial_test.py`):
/// hello-world installed, the recipe's instance syncing in an open list,
/// a failing instance found, read in its history, fixed in its form.
#[tokio::test(flavor = "multi_thread")]
async fn an_operator_does_the_xos_tutorial_in_chromium() {
    let chromium = chromium();
    let venv = tokio::task::spawn_blocking(venv).await.expect("venv");
    let work = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&work.path().join("data"));
    crate::util::install_hello_world(&server);
    let recipe = repo().join("guests/hello-world/samples/hello-world.yaml");
    let recipe = recipe.to_str().expect("utf-8 path").to_owned();
    browser_run(
        &server,
        venv,
        chromium,
        "tutorial_test.py",
        &[("RECIPE", &recipe)],
    )
    .await;
}

/// Runs `tests/gui/<script>` against `server` with the venv's Python,
/// the variables every browser script reads, and `extra`; fails with its
/// output and the server's log unless it passes.
async fn browser_run(
    server: &Server,
    venv: PathBuf,
    chromium: PathBuf,
    script: &str,
    extra: &[(&str, &str)],
) {
    let artifacts = repo().join("target/gui-artifacts");
    let _ = std::fs::create_dir_all(&artifacts);
    let mut command = Command::new(venv.join("bin/python"));
    command
        .arg(repo().join("tests/gui").join(script))
        .env("SYNCPLANE_URL", &server.url)
        .env("SYNCPLANE_PID", server.pid().to_string())
        .env("SYNCPLANE_USER", ADMIN)
        .env("SYNCPLANE_PASSWORD", PASSWORD)
        .env("CHROMIUM", chromium)
        .env("ARTIFACTS", &artifacts);
    for (name, value) in extra {
        command.env(name, value);
    }
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("join")
        .unwrap_or_else(|e| panic!("run tests/gui/{script}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    eprintln!("{stdout}");
    assert!(
        output.status.success(),
        "the browser test failed (screenshot and HTML under target/gui-artifacts/):\n{}\nserver log:\n{}",
        describe(&output),
        server.log()
    );
}
