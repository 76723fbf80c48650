//! `syncplane service new` in each language writes a service that builds
//! unchanged (`service build`), installs, and syncs its model's objects;
//! `syncplane gen` writes the same typed models it does.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;

use crate::toolchains::{componentize_js, componentize_py, service_new, syncplane};
use crate::util::{Server, assert_success, describe};

/// Python and JavaScript components are compiled when they load.
const LIMIT: Duration = Duration::from_secs(180);

/// The model of the new service in `lang` (model names are unique across
/// the services of a server).
fn model(lang: &str) -> String {
    match lang {
        "rust" => "RustThing",
        "python" => "PythonThing",
        _ => "JsThing",
    }
    .to_owned()
}

fn new_service(parent: &Path, lang: &str) -> PathBuf {
    service_new(parent, &format!("demo-{lang}"), lang, &model(lang))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_service_in_each_language_builds_installs_and_syncs() {
    let env = [
        ("SYNCPLANE_COMPONENTIZE_PY", componentize_py()),
        ("SYNCPLANE_COMPONENTIZE_JS", componentize_js()),
    ];
    let parent = tempfile::tempdir().expect("tempdir");
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start_with(data.path(), &[("--step-timeout", "5s")]);
    for (synced_services, (lang, models)) in (1..).zip([
        ("rust", vec!["src/models.rs"]),
        ("python", vec!["src/models.py"]),
        ("js", vec!["src/models.js", "src/models.d.ts"]),
    ]) {
        let dir = new_service(parent.path(), lang);
        let test_file = format!("tests/sync_{lang}_thing.yaml");
        for file in ["syncplane.toml", "README.md", test_file.as_str()]
            .into_iter()
            .chain(models.iter().copied())
        {
            assert!(dir.join(file).is_file(), "{lang}: no {file}");
        }
        // The typed models are what `syncplane gen` writes.
        let xproto = dir.join(format!("models/demo-{lang}.xproto"));
        let gen_targets: &[&str] = match lang {
            "rust" => &["rust"],
            "python" => &["python"],
            _ => &["javascript", "typescript"],
        };
        for (target, file) in gen_targets.iter().zip(&models) {
            let generated = assert_success(&syncplane(
                None,
                &["gen", target, xproto.to_str().expect("utf-8 path")],
                &[],
            ));
            let written = std::fs::read_to_string(dir.join(file)).expect("models");
            assert!(
                generated.contains(&model(lang))
                    && written.trim_end()
                        == generated
                            .replace(
                                xproto.to_str().expect("utf-8 path"),
                                &format!("models/demo-{lang}.xproto")
                            )
                            .trim_end(),
                "{lang}: {file}"
            );
        }
        let path = dir.to_str().expect("utf-8 path");
        let built = syncplane(None, &["service", "build", path], &env);
        assert!(built.status.success(), "{lang}: {}", describe(&built));
        // Its own tests pass unchanged, offline.
        let tested = syncplane(None, &["service", "test", path], &env);
        assert!(tested.status.success(), "{lang}: {}", describe(&tested));
        assert!(
            String::from_utf8_lossy(&tested.stdout).contains("2 passed, 0 failed"),
            "{lang}: {}",
            describe(&tested)
        );
        let out = assert_success(&syncplane(
            Some(&server),
            &["service", "install", path],
            &env,
        ));
        assert!(
            out.contains(&format!("installed demo-{lang} 0.1.0")),
            "{out}"
        );
        let collection = format!("/xosapi/v1/demo-{lang}/{}s", model(lang).to_lowercase());
        let object = server
            .create_path(&collection, json!({ "name": format!("thing in {lang}") }))
            .await;
        let synced = server
            .wait_for(&object, LIMIT, |o| o["backend_code"] == 1)
            .await;
        assert_eq!(synced["backend_status"], "OK", "{lang}: {synced}");
        assert!(
            server.log().contains(&format!("{} synced", model(lang))),
            "{lang}: {}",
            server.log()
        );
        assert_eq!(
            server.log().matches("Thing synced").count(),
            synced_services,
            "{lang}: {}",
            server.log()
        );
    }
}

#[test]
fn service_new_refuses_a_directory_that_is_not_empty() {
    let parent = tempfile::tempdir().expect("tempdir");
    std::fs::write(parent.path().join("keep"), "mine").expect("write");
    let out = syncplane(
        None,
        &[
            "service",
            "new",
            "demo",
            "--lang",
            "python",
            "--dir",
            parent.path().to_str().expect("utf-8 path"),
        ],
        &[],
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is not empty"),
        "{}",
        describe(&out)
    );
    assert_eq!(
        std::fs::read_to_string(parent.path().join("keep")).expect("read"),
        "mine"
    );
}
