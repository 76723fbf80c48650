//! Building a service directory's components with the toolchain its
//! manifest's `[build]` names: `cargo` (wasm32-wasip2), `componentize-py`
//! or `componentize-js` (see `syncplane-guest-build`). `service build`,
//! `service install`, `service pack` and `service test` all build this way.

use std::path::{Path, PathBuf};

use syncplane_guest_build::StepSource;

use crate::error::{Error, Result};
use crate::manifest::{Manifest, Toolchain};
use crate::package::ServicePackage;

/// Every step's world and component, as the Python and JS toolchains
/// build them.
pub fn step_sources(manifest: &Manifest) -> Vec<StepSource> {
    let outbound_http = !manifest.capabilities.outbound_http.is_empty();
    let step = |world: &str, component: &str| StepSource {
        world: world.to_owned(),
        output: PathBuf::from(component),
        outbound_http,
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
/// manifest names, telling `notify` what it does; returns the manifest,
/// and whether anything was built (false without `[build]`).
///
/// # Errors
///
/// [`Error::Manifest`] and the other errors of
/// [`ServicePackage::read_manifest`]; [`Error::Build`] when the toolchain
/// is missing (saying how to install it) or the build fails.
pub fn build_service(dir: &Path, notify: impl Fn(&str)) -> Result<(Manifest, bool)> {
    let manifest = ServicePackage::read_manifest(dir)?;
    let name = &manifest.service.name;
    let built = match manifest.build.as_ref().and_then(|b| b.toolchain()) {
        None => false,
        Some(Toolchain::Cargo) => {
            notify(&format!(
                "building {name} for {} ...",
                syncplane_guest_build::WASM_TARGET
            ));
            syncplane_guest_build::build(dir, None, &notify)?;
            true
        }
        Some(Toolchain::Python) => {
            notify(&format!("building {name} with componentize-py ..."));
            syncplane_guest_build::python::build(dir, &step_sources(&manifest), &notify)?;
            true
        }
        Some(Toolchain::Js) => {
            notify(&format!("building {name} with componentize-js ..."));
            syncplane_guest_build::js::build(dir, &step_sources(&manifest), &notify)?;
            true
        }
    };
    Ok((manifest, built))
}

impl From<syncplane_guest_build::Error> for Error {
    fn from(e: syncplane_guest_build::Error) -> Self {
        Error::Build(e)
    }
}
