//! `syncplane service build [DIR]`: runs the toolchain the manifest's
//! `[build]` names (cargo, componentize-py, componentize-js), as `service
//! install` does before it installs.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use syncplane_guest_build::StepSource;
use syncplane_platform::{MANIFEST_FILE, Manifest, ServicePackage, Toolchain};

use crate::args::BuildArgs;

/// Reads the manifest in `dir`, saying what is wrong when there is none.
fn read_manifest(dir: &Path) -> anyhow::Result<Manifest> {
    ServicePackage::read_manifest(dir).with_context(|| {
        format!(
            "cannot read {} (is {} a service directory?)",
            dir.join(MANIFEST_FILE).display(),
            dir.display()
        )
    })
}

/// Every step's world and component, as the Python and JS toolchains
/// build them.
fn steps(manifest: &Manifest) -> Vec<StepSource> {
    let step = |world: &str, component: &str| StepSource {
        world: world.to_owned(),
        output: PathBuf::from(component),
    };
    let sync = manifest
        .sync_steps
        .iter()
        .map(|s| step("sync-step", &s.component));
    let events = manifest
        .event_steps
        .iter()
        .map(|s| step("event-step", &s.component));
    let pulls = manifest
        .pull_steps
        .iter()
        .map(|s| step("pull-step", &s.component));
    let policies = manifest
        .model_policies
        .iter()
        .map(|s| step("model-policy", &s.component));
    sync.chain(events).chain(pulls).chain(policies).collect()
}

/// Builds the components of the service in `dir` with the toolchain its
/// manifest names; returns the manifest, and whether anything was built
/// (false without `[build]`).
pub fn build_dir(dir: &Path) -> anyhow::Result<(Manifest, bool)> {
    let manifest = read_manifest(dir)?;
    let name = &manifest.service.name;
    let notify = |line: &str| eprintln!("{line}");
    let built = match manifest.build.as_ref().and_then(|b| b.toolchain()) {
        None => false,
        Some(Toolchain::Cargo) => {
            eprintln!(
                "building {name} for {} ...",
                syncplane_guest_build::WASM_TARGET
            );
            syncplane_guest_build::build(dir, None, notify)?;
            true
        }
        Some(Toolchain::Python) => {
            eprintln!("building {name} with componentize-py ...");
            syncplane_guest_build::python::build(dir, &steps(&manifest), notify)?;
            true
        }
        Some(Toolchain::Js) => {
            eprintln!("building {name} with componentize-js ...");
            syncplane_guest_build::js::build(dir, &steps(&manifest), notify)?;
            true
        }
    };
    Ok((manifest, built))
}

/// `service build [DIR]`: builds, then lists each component with its size.
pub fn build(args: BuildArgs) -> anyhow::Result<ExitCode> {
    let (manifest, built) = build_dir(&args.path)?;
    if !built {
        eprintln!(
            "{} has no [build] section: its components are used as they are",
            args.path.join(MANIFEST_FILE).display()
        );
    }
    let mut out = String::new();
    for step in steps(&manifest) {
        let path = args.path.join(&step.output);
        let size = std::fs::metadata(&path)
            .with_context(|| format!("the build did not produce {}", path.display()))?
            .len();
        out.push_str(&format!(
            "{} ({:.1} MB)\n",
            step.output.display(),
            size as f64 / 1e6
        ));
    }
    crate::output::write_stdout(&out)?;
    Ok(ExitCode::SUCCESS)
}
