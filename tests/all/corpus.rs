//! The services of the original project's corpus (`shared/corpus/xproto`)
//! on the running host: those written for the current core install, all
//! side by side, and the seed's example services' TOSCA recipes run; those
//! written for the historical core are refused with a located error naming
//! the model they miss.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use syncplane_test_artifacts::test_guest;

use crate::util::{Server, assert_success, describe, write_manifest};

/// The services written for the historical core (`TenantWithContainer`,
/// `Tenant`, ...), which the current core does not have.
const HISTORICAL: &[&str] = &[
    "epc-service",
    "internetemulator",
    "monitoring",
    "vEG",
    "vHSS",
    "vMME",
    "venb",
    "vsg",
    "vspgwc",
    "vspgwu",
];

/// Directories of `corpus/xproto` that are not services: XOS's own core and
/// its TOSCA engine's test models.
const NOT_SERVICES: &[&str] = &["xos", "xos-tosca"];

fn corpus() -> PathBuf {
    crate::util::repo().join("../shared/corpus")
}

/// One corpus service: its directory name, xproto files and what it needs.
struct CorpusService {
    dir: String,
    files: Vec<PathBuf>,
    /// Models its files define.
    defines: BTreeSet<String>,
    /// Models its files extend or link to.
    uses: BTreeSet<String>,
    /// Its model extending `Service`, observed by its stub step.
    service_model: Option<String>,
}

fn corpus_services() -> Vec<CorpusService> {
    let root = corpus().join("xproto");
    let mut out = Vec::new();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("the corpus is at ../shared/corpus")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    for path in dirs {
        let dir = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        if NOT_SERVICES.contains(&dir.as_str()) {
            continue;
        }
        let mut files: Vec<PathBuf> = std::fs::read_dir(&path)
            .expect("service dir")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "xproto"))
            .collect();
        files.sort();
        let mut service = CorpusService {
            dir,
            files,
            defines: BTreeSet::new(),
            uses: BTreeSet::new(),
            service_model: None,
        };
        for file in &service.files {
            let text = std::fs::read_to_string(file).expect("xproto");
            let parsed = syncplane_xproto::parse(&file.display().to_string(), &text)
                .unwrap_or_else(|e| panic!("{e}"));
            for model in parsed.models {
                if model.bases.iter().any(|b| b == "Service") {
                    service.service_model.get_or_insert(model.name.clone());
                }
                service.uses.extend(model.bases.iter().cloned());
                service.uses.extend(
                    model
                        .fields
                        .iter()
                        .filter_map(|f| f.link_target())
                        .map(str::to_owned),
                );
                service.defines.insert(model.name);
            }
        }
        out.push(service);
    }
    out
}

/// The services in an order where each comes after those whose models it
/// uses (Kahn's algorithm; ties by name).
fn install_order(services: &[CorpusService]) -> Vec<&CorpusService> {
    let owner: BTreeMap<&str, &str> = services
        .iter()
        .flat_map(|s| s.defines.iter().map(move |m| (m.as_str(), s.dir.as_str())))
        .collect();
    let needs: BTreeMap<&str, BTreeSet<&str>> = services
        .iter()
        .map(|s| {
            let deps = s
                .uses
                .iter()
                .filter_map(|m| owner.get(m.as_str()).copied())
                .filter(|d| *d != s.dir)
                .collect();
            (s.dir.as_str(), deps)
        })
        .collect();
    let mut done: BTreeSet<&str> = BTreeSet::new();
    let mut order = Vec::new();
    while order.len() < services.len() {
        let next = services
            .iter()
            .find(|s| !done.contains(s.dir.as_str()) && needs[s.dir.as_str()].is_subset(&done))
            .expect("the corpus services' dependencies have no cycle");
        done.insert(&next.dir);
        order.push(next);
    }
    order
}

/// Writes `service` as a package: its xproto files, and a stub sync step
/// (a test guest that logs and succeeds) observing its `Service` model.
fn package(service: &CorpusService, dest: &Path) {
    std::fs::create_dir_all(dest.join("models")).expect("models dir");
    let mut xproto = Vec::new();
    for file in &service.files {
        let name = file
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        std::fs::copy(file, dest.join("models").join(&name)).expect("copy xproto");
        xproto.push(format!("models/{name}"));
    }
    let mut manifest = format!(
        "manifest_version = 1\n\n[service]\nname = \"{}\"\nversion = \"1.0.0\"\nxproto = {xproto:?}\n\n",
        service.dir.to_ascii_lowercase()
    );
    if let Some(model) = &service.service_model {
        manifest.push_str(&format!(
            "[[sync_steps]]\nname = \"stub\"\ncomponent = {:?}\nobserves = [{model:?}]\n",
            test_guest("slow_step").display().to_string()
        ));
    }
    write_manifest(dest, &manifest);
}

#[tokio::test(flavor = "multi_thread")]
async fn corpus_services_for_the_current_core_install_together_and_historical_ones_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&dir.path().join("data"));
    let (historical, current): (Vec<CorpusService>, Vec<CorpusService>) = corpus_services()
        .into_iter()
        .partition(|s| HISTORICAL.contains(&s.dir.as_str()));
    assert_eq!(historical.len(), HISTORICAL.len(), "the corpus changed");
    assert!(
        current.len() >= 21,
        "only {} current services",
        current.len()
    );

    // Each installs with what it depends on (the corpus services depend on
    // the core alone), then leaves, so the next one's names cannot clash
    // with it: some corpus services could never share one XOS either
    // (below).
    let mut failures = Vec::new();
    for service in install_order(&current) {
        let package_dir = dir.path().join("packages").join(&service.dir);
        package(service, &package_dir);
        let output = server.install(&package_dir, &[]);
        if !output.status.success() {
            failures.push(format!("{}: {}", service.dir, describe(&output)));
            continue;
        }
        let name = service.dir.to_ascii_lowercase();
        let shown = assert_success(&server.cli(&["service", "show", &name]));
        for model in &service.defines {
            assert!(shown.contains(model.as_str()), "{model} not in:\n{shown}");
        }
        assert_success(&server.cli(&["service", "uninstall", &name]));
    }
    assert!(
        failures.is_empty(),
        "{} corpus service(s) did not install:\n{}",
        failures.len(),
        failures.join("\n")
    );

    // Services whose names clash are refused side by side, naming both
    // sides, as Django refused them in one XOS.
    for (first, second, clash) in [
        (
            "vnaas",
            "metro-net",
            "model `BandwidthProfile` of service `metro-net` clashes with model `BandwidthProfile` of service `vnaas`",
        ),
        (
            "exampleservice",
            "simpleexampleservice",
            "reverse name `service_instance_with_computes` of link `ServiceInstanceWithCompute2.compute_instance` is also used by `ServiceInstanceWithCompute.compute_instance`",
        ),
    ] {
        assert_success(&server.install(&dir.path().join("packages").join(first), &[]));
        let output = server.install(&dir.path().join("packages").join(second), &[]);
        let text = describe(&output);
        assert!(
            !output.status.success() && text.contains(clash),
            "{second} beside {first}:\n{text}"
        );
        assert_success(&server.cli(&["service", "uninstall", first]));
    }

    // The historical services are refused, saying where and what is missing.
    for service in &historical {
        let package_dir = dir.path().join("packages").join(&service.dir);
        package(service, &package_dir);
        let output = server.install(&package_dir, &[]);
        let text = describe(&output);
        assert!(
            !output.status.success(),
            "{} installed:\n{text}",
            service.dir
        );
        let missing = [
            "TenantWithContainer",
            "Tenant",
            "PlCoreBase",
            "ServiceMonitoringAgentInfo",
        ];
        assert!(
            text.contains(".xproto:")
                && missing
                    .iter()
                    .any(|m| text.contains(&format!("unknown model `{m}`"))),
            "{}: not a located error naming the missing model:\n{text}",
            service.dir
        );
    }
    let listed = assert_success(&server.cli(&["service", "list"]));
    assert!(!listed.contains("vsg"), "{listed}");

    // The seed's example services: their recipes run, once the service
    // objects they expect (`must-exist`) are there, as XOS's onboarding
    // made them. One at a time: they cannot share a host (above).
    for (service_type, name, recipe, made) in [
        (
            "ExampleService",
            "exampleservice",
            "exampleservice/xos/examples/exampleservice.yaml",
            ("exampleservice/exampleserviceinstances", "exampletenant1"),
        ),
        (
            "SimpleExampleService",
            "simpleexampleservice",
            "simpleexampleservice/xos/examples/SimpleExampleServiceInstance.yaml",
            (
                "simpleexampleservice/simpleexampleserviceinstances",
                "My Simple Example Service Instance",
            ),
        ),
    ] {
        let package_dir = dir.path().join("packages").join(name);
        assert_success(&server.install(&package_dir, &[]));
        let onboard = format!(
            "tosca_definitions_version: tosca_simple_yaml_1_0\ntopology_template:\n  node_templates:\n    s:\n      type: tosca.nodes.{service_type}\n      properties:\n        name: {name}\n        service_message: hello\n"
        );
        let (status, body) = server
            .tosca(&onboard, crate::util::ADMIN, crate::util::PASSWORD)
            .await;
        assert_eq!(status, 200, "{service_type}: {body}");
        let text = std::fs::read_to_string(corpus().join("tosca").join(recipe)).expect("recipe");
        let (status, body) = server
            .tosca(&text, crate::util::ADMIN, crate::util::PASSWORD)
            .await;
        assert_eq!(status, 200, "{recipe}: {body}\n{}", server.log());
        let (collection, wanted) = made;
        let listed = server
            .wait_for(
                &format!("/xosapi/v1/{collection}"),
                Duration::from_secs(10),
                |v| v["items"].as_array().is_some_and(|a| !a.is_empty()),
            )
            .await;
        let found = listed["items"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|o| o["name"] == wanted);
        let found = found.unwrap_or_else(|| panic!("{wanted} not in {listed}"));
        assert!(found["owner_id"].as_i64().is_some(), "{found}");
        let purged = server.cli(&["service", "uninstall", name, "--purge"]);
        assert_success(&purged);
    }
}
