//! Services that depend on other services (issue 19 §5): `[dependencies]`
//! met from what is installed, else pulled from the same registry and
//! installed first, all or nothing; installed services never upgraded
//! implicitly; `requires` against the host's version; the upgrade's plan
//! showing what changed. Through the real binary and a real registry.
// See: issue 19, "Versions: interfaces, host, dependencies" and "What changed".

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::marketplace::{generate_key, pack, path, run, sign};
use crate::oci_registry::{Registry, syncplane};
use crate::registry::{login, ok, refused};
use crate::util::{Server, assert_success};

/// A models-only service `acme/NAME` at `version` whose xproto is
/// `xproto`, with `service` lines added to `[service]` and `tail` after
/// it, packed and signed with `key`.
fn service(
    work: &Path,
    key: &Path,
    (name, version): (&str, &str),
    (service, tail): (&str, &str),
    xproto: &str,
) -> PathBuf {
    let dir = work.join(format!("src-{name}-{version}"));
    std::fs::create_dir_all(dir.join("models")).expect("mkdir");
    std::fs::write(
        dir.join("syncplane.toml"),
        format!(
            "manifest_version = 1\n[service]\nname = \"{name}\"\nversion = \"{version}\"\npublisher = \"acme\"\nxproto = [\"models/{name}.xproto\"]\n{service}\n{tail}"
        ),
    )
    .expect("manifest");
    std::fs::write(dir.join(format!("models/{name}.xproto")), xproto).expect("xproto");
    let file = work.join(format!("{name}-{version}.spkg"));
    assert_success(&run(&["service", "pack", "-o", path(&file), path(&dir)]));
    signed(&file, key)
}

fn signed(file: &Path, key: &Path) -> PathBuf {
    let out = file.with_extension("signed.spkg");
    sign(file, key, None, &out);
    out
}

/// The installed services as `name version`, sorted.
async fn installed(server: &Server) -> Vec<String> {
    let list = server.get("/syncplane/v1/services").await;
    let mut names: Vec<String> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|s| {
            format!(
                "{} {}",
                s["name"].as_str().expect("name"),
                s["version"].as_str().expect("version")
            )
        })
        .collect();
    names.sort();
    names
}

const GREETER: &str = "option name = \"greeter\";\noption app_label = \"greeter\";\n\
    message Greeter (XOSBase) {\n    required string phrase = 1;\n    optional manytoone hello->HelloWorldService:greeters = 2;\n}\n";

/// Defines a model hello-world owns: it can never install beside it.
const CLASH: &str = "option name = \"clash\";\noption app_label = \"clash\";\n\
    message HelloWorldServiceInstance (XOSBase) {\n    required string other = 1;\n}\n";

#[tokio::test(flavor = "multi_thread")]
async fn dependencies_come_from_the_registry_first_and_installed_ones_are_never_upgraded() {
    let registry = Registry::start();
    let work = tempfile::tempdir().expect("tempdir");
    let work = work.path();
    let config = work.join("config");
    login(&config, &registry);
    generate_key(work, "acme", None);
    let key = work.join("acme.key");
    let publish = |file: &Path, repository: &str| {
        ok(&syncplane(
            &config,
            None,
            &[
                "service",
                "publish",
                path(file),
                &registry.reference(repository),
            ],
            "",
        ));
    };
    let hello = registry.reference("acme/hello-world");
    for version in ["1.0.0", "1.1.0"] {
        publish(
            &signed(&pack(work, "acme", version, ""), &key),
            "acme/hello-world",
        );
    }
    // 2.0.0 asks for a config value: its upgrade shows the grant added.
    let hello_2 = signed(
        &pack(
            work,
            "acme",
            "2.0.0",
            "[capabilities]\nconfig = [\"greeting\"]\n",
        ),
        &key,
    );
    publish(&hello_2, "acme/hello-world");
    let dependencies = "[dependencies]\nhello-world = \"^1.1\"\n";
    let greeter = service(
        work,
        &key,
        ("greeter", "1.0.0"),
        ("", dependencies),
        GREETER,
    );
    publish(&greeter, "acme/greeter");
    let clash = service(work, &key, ("clash", "1.0.0"), ("", dependencies), CLASH);
    publish(&clash, "acme/clash");

    let data = tempfile::tempdir().expect("tempdir");
    // The server's user has logged in too: it pulls `{"ref": ...}` itself.
    let server =
        Server::start_with_env(data.path(), &[], &[("SYNCPLANE_CONFIG_DIR", path(&config))]);
    let cli = |args: &[&str]| syncplane(&config, Some(&server), args, "");

    // Nothing installed: the dependency comes from the registry, at the
    // highest version that matches, and installs first. The server's
    // inspection pulls it as its install would.
    let (status, inspection) = server
        .request(
            reqwest::Method::POST,
            "/syncplane/v1/packages/inspect",
            Some(json!({ "ref": registry.reference("acme/greeter:1.0.0") })),
        )
        .await;
    assert_eq!(status, 200, "{inspection}");
    assert_eq!(
        inspection["dependencies"],
        json!([{
            "service": "hello-world",
            "requirement": "^1.1",
            "installed": null,
            "met": false,
            "comes_with_install": "1.1.0"
        }]),
        "{inspection}"
    );
    // A dry run plans one service against what is installed: the
    // dependency's models are not there yet.
    let out = cli(&[
        "service",
        "install",
        &registry.reference("acme/greeter:1.0.0"),
        "--dry-run",
    ]);
    refused(
        &out,
        "a dry run needing a dependency",
        "greeter needs hello-world 1.1.0 installed first",
    );
    assert!(installed(&server).await.is_empty());
    let out = cli(&[
        "service",
        "install",
        &registry.reference("acme/greeter:1.0.0"),
    ]);
    let text = ok(&out);
    assert!(
        text.contains(&format!("pulled {hello}:1.1.0@"))
            && text.contains("), a dependency")
            && text.contains("depends on:     hello-world ^1.1: 1.1.0 comes with this install")
            && text.contains("installed hello-world 1.1.0 (a dependency)\ninstalled greeter 1.0.0"),
        "{text}"
    );
    assert_eq!(
        installed(&server).await,
        ["greeter 1.0.0", "hello-world 1.1.0"]
    );

    // A service something depends on stays, at a version it accepts.
    let out = cli(&["service", "uninstall", "hello-world"]);
    refused(
        &out,
        "uninstall a dependency",
        "service `greeter` 1.0.0 depends on hello-world ^1.1",
    );
    let out = cli(&["service", "upgrade", &format!("{hello}:2.0.0"), "--dry-run"]);
    let text = ok(&out);
    assert!(
        text.contains("changes from the installed version:")
            && text.contains("hello-world 1.1.0 (")
            && text.contains("grants:\n      + config greeting")
            && text
                .contains("blocked by:\n    - service `greeter` 1.0.0 depends on hello-world ^1.1"),
        "{text}"
    );
    let out = cli(&[
        "service",
        "upgrade",
        &format!("{hello}:2.0.0"),
        "--accept-grants",
    ]);
    refused(
        &out,
        "upgrade past a requirement",
        "greeter` 1.0.0 depends on hello-world ^1.1",
    );
    assert_eq!(
        installed(&server).await,
        ["greeter 1.0.0", "hello-world 1.1.0"]
    );

    // All or nothing: a service that cannot install takes the dependency
    // installed for it away again (here over REST, pulled by the server).
    let install_clash = || {
        server.request(
            reqwest::Method::POST,
            "/syncplane/v1/services",
            Some(json!({ "ref": registry.reference("acme/clash:1.0.0") })),
        )
    };
    let (status, answer) = install_clash().await;
    assert_eq!(status, 409, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .is_some_and(|e| e.contains("HelloWorldServiceInstance")),
        "{answer}"
    );
    for name in ["greeter", "hello-world"] {
        ok(&cli(&["service", "uninstall", name]));
    }
    let (status, answer) = install_clash().await;
    assert_eq!(status, 409, "{answer}");
    assert!(
        installed(&server).await.is_empty(),
        "the dependency was taken away again"
    );
    let history = server
        .get("/syncplane/v1/services/hello-world/history")
        .await;
    let actions: Vec<&str> = history["entries"]
        .as_array()
        .expect("history")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    // Installed for greeter, uninstalled by hand, installed for clash and
    // uninstalled again when clash failed.
    assert_eq!(
        actions,
        ["install", "uninstall", "install", "uninstall"],
        "{history}"
    );

    // An installed version that does not match is not upgraded: the error
    // names the upgrade that would do.
    ok(&cli(&["service", "install", &format!("{hello}:1.0.0")]));
    let out = cli(&[
        "service",
        "install",
        &registry.reference("acme/greeter:1.0.0"),
    ]);
    refused(
        &out,
        "an installed dependency too old",
        &format!("upgrade it first: `syncplane service upgrade {hello}:1.1.0`"),
    );
    assert_eq!(installed(&server).await, ["hello-world 1.0.0"]);
    // A file carries no registry to pull from: the host says what is
    // missing.
    let out = cli(&["service", "install", path(&greeter)]);
    refused(
        &out,
        "a file with an unmet dependency",
        "hello-world ^1.1: 1.0.0 is installed; upgrade hello-world to a version matching ^1.1 first",
    );

    // `requires` is checked against the host's version.
    let future = service(
        work,
        &key,
        ("future", "1.0.0"),
        ("requires = \">=99\"", ""),
        "option name = \"future\";\noption app_label = \"future\";\nmessage Future (XOSBase) { required string x = 1; }\n",
    );
    let out = cli(&["service", "install", path(&future)]);
    let version = env!("CARGO_PKG_VERSION");
    refused(
        &out,
        "a host too old",
        &format!("requires syncplane >=99; this host is syncplane {version}"),
    );
    assert_eq!(installed(&server).await, ["hello-world 1.0.0"]);
    let inspection: Value =
        serde_json::from_str(&ok(&cli(&["service", "inspect", path(&future), "--json"])))
            .expect("json");
    let inspection = &inspection["inspection"];
    assert_eq!(inspection["requires"], ">=99", "{inspection}");
    assert!(
        inspection["refused"][0]
            .as_str()
            .is_some_and(|r| r.contains("requires syncplane >=99")),
        "{inspection}"
    );
}
