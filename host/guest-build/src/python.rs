//! Python services: each step module `src/<name>.py` becomes a component
//! with componentize-py, which embeds CPython and the modules the step
//! imports (from `src/` and the virtual environment's `site-packages`,
//! where `pip install sdk/python` put the SDK). A step whose manifest
//! grants outbound HTTP is built against its world plus
//! `wasi:http/outgoing-handler`, which `syncplane.http` calls.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::component::{self, BuildKey, StepSource};
use crate::wasi_http;
use crate::{Error, Result};

/// The componentize-py version the SDK pins and the host is tested with.
pub const COMPONENTIZE_PY_VERSION: &str = "0.25.1";

/// How to get componentize-py and the SDK, for error messages.
pub const PYTHON_INSTALL_HINT: &str = "create a virtual environment with the syncplane SDK, which \
     brings componentize-py 0.25.1: `python3 -m venv .venv && .venv/bin/pip install \
     SYNCPLANE_CHECKOUT/sdk/python`; then put its bin/ first on PATH (`source .venv/bin/activate`), \
     keep it as `.venv` in the service directory, or set SYNCPLANE_COMPONENTIZE_PY to its \
     componentize-py";

/// Finds componentize-py: `$SYNCPLANE_COMPONENTIZE_PY`, then the service's
/// `.venv/bin/`, then `PATH`.
pub fn find_componentize_py(dir: &Path) -> Option<PathBuf> {
    let mut candidates = Vec::new();
    if let Some(explicit) = std::env::var_os("SYNCPLANE_COMPONENTIZE_PY") {
        candidates.push(PathBuf::from(explicit));
    }
    candidates.push(dir.join(".venv/bin/componentize-py"));
    component::find_tool("componentize-py", &candidates)
}

/// The virtual environment a tool lives in (`<venv>/bin/<tool>` with
/// `<venv>/pyvenv.cfg`), if it does.
fn venv_of(tool: &Path) -> Option<PathBuf> {
    let venv = std::fs::canonicalize(tool.parent()?.parent()?).ok()?;
    venv.join("pyvenv.cfg").is_file().then_some(venv)
}

/// The `syncplane` package in a virtual environment's `site-packages`.
fn sdk_in(venv: &Path) -> Option<PathBuf> {
    let lib = std::fs::read_dir(venv.join("lib")).ok()?;
    lib.filter_map(|e| e.ok())
        .map(|e| e.path().join("site-packages/syncplane"))
        .find(|p| p.join("__init__.py").is_file())
}

/// Builds every step of the Python service in `dir`, skipping those whose
/// sources, SDK, WIT and toolchain are unchanged since their last build.
/// `notify` receives progress lines.
///
/// # Errors
///
/// [`Error::ToolMissing`] without componentize-py or without the SDK next
/// to it, [`Error::SourceMissing`] for a step without its module,
/// [`Error::ComponentFailed`] when componentize-py fails (its output went
/// to stderr), [`Error::Io`].
pub fn build(dir: &Path, steps: &[StepSource], notify: impl Fn(&str)) -> Result<()> {
    let dir = &component::absolute(dir)?;
    let tool = find_componentize_py(dir).ok_or(Error::ToolMissing {
        tool: "componentize-py",
        hint: PYTHON_INSTALL_HINT,
    })?;
    let version = component::tool_version(&tool, &["--version"]);
    if !version.ends_with(COMPONENTIZE_PY_VERSION) {
        notify(&format!(
            "warning: {} is `{version}`; syncplane is tested with componentize-py {COMPONENTIZE_PY_VERSION}",
            tool.display()
        ));
    }
    let venv = venv_of(&tool);
    let sdk = venv.as_deref().and_then(sdk_in);
    if venv.is_some() && sdk.is_none() {
        return Err(Error::ToolMissing {
            tool: "the syncplane Python SDK (package `syncplane` next to componentize-py)",
            hint: PYTHON_INSTALL_HINT,
        });
    }
    for step in steps {
        let (module, _) = component::check_step(dir, step, "py")?;
        let output = component::step_output(dir, step)?;
        let out_dir = output.parent().unwrap_or(dir).to_path_buf();
        let mut key = BuildKey::for_step(&version, step, &module);
        key.text("outbound_http", &step.outbound_http.to_string());
        key.tree(&dir.join("src"), &[])?;
        if let Some(sdk) = &sdk {
            key.tree(sdk, &[])?;
        }
        let key = key.finish();
        if component::up_to_date(&output, &key) {
            notify(&format!("{}: up to date", step.output.display()));
            continue;
        }
        let world = if step.outbound_http {
            wasi_http::world_with_http(&step.world)
        } else {
            step.world.clone()
        };
        notify(&format!(
            "componentize-py: src/{module}.py -> {} ({world})",
            step.output.display(),
        ));
        let wit = component::write_wit(&out_dir)?;
        let partial = output.with_extension("wasm.partial");
        let mut command = Command::new(&tool);
        command.current_dir(dir).arg("-d").arg(&wit);
        if step.outbound_http {
            let package = component::plugin_package();
            wasi_http::write(&wit, component::WORLDS)?;
            // Both packages have an interface `types`; the SDK imports the
            // syncplane one as `types`, so wasi's becomes `wasi_http_types`.
            let (name, version) = package.split_once('@').unwrap_or((package, ""));
            let at = if version.is_empty() { "" } else { "@" };
            command.args([
                "--import-interface-name",
                &format!("{name}/types{at}{version}=types"),
            ]);
        }
        command.args(["-w", &world]);
        command
            .args(["componentize", "-p", "src", &module, "-o"])
            .arg(&partial);
        if let Some(venv) = &venv {
            command.env("VIRTUAL_ENV", venv);
        }
        component::run(&mut command, "componentize-py", &module, dir)?;
        component::commit(&partial, &output, &key)?;
    }
    Ok(())
}
