//! `syncplane service build [DIR]`: runs the toolchain the manifest's
//! `[build]` names (cargo, componentize-py, componentize-js), as `service
//! install` does before it installs.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use syncplane_platform::{MANIFEST_FILE, Manifest, ServicePackage};

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

/// Builds the components of the service in `dir` with the toolchain its
/// manifest names; returns the manifest, and whether anything was built
/// (false without `[build]`).
pub fn build_dir(dir: &Path) -> anyhow::Result<(Manifest, bool)> {
    // Says which directory when it is not a service directory.
    read_manifest(dir)?;
    Ok(syncplane_platform::build::build_service(dir, |line| {
        eprintln!("{line}")
    })?)
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
    for step in syncplane_platform::build::step_sources(&manifest) {
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
