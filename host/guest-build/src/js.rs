//! JavaScript services: each step module `src/<name>.js` is bundled with
//! esbuild (so it may import the SDK and other npm packages; the
//! `syncplane:` and `wasi:` imports stay imports) and the bundle becomes a
//! component with the componentize-js CLI, which embeds StarlingMonkey.
//!
//! The tools and the SDK come from one `node_modules`: the service's own
//! (`npm install` in the service directory; its `package.json` depends on
//! `syncplane-sdk`) or the one holding `$SYNCPLANE_COMPONENTIZE_JS`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::component::{self, BuildKey, StepSource};
use crate::{Error, Result};

/// The componentize-js version the SDK pins and the host is tested with.
pub const COMPONENTIZE_JS_VERSION: &str = "0.23.0";

/// How to get componentize-js, esbuild and the SDK, for error messages.
pub const JS_INSTALL_HINT: &str = "run `npm install` in the service directory (its package.json \
     depends on syncplane-sdk, which brings @bytecodealliance/componentize-js 0.23.0 and esbuild), \
     or `npm install SYNCPLANE_CHECKOUT/sdk/js` in a folder of your choice and set \
     SYNCPLANE_COMPONENTIZE_JS to its node_modules/.bin/componentize-js; Node.js 18 or later \
     and npm are needed (Debian/Ubuntu: `apt-get install -y nodejs npm`)";

/// Finds componentize-js: `$SYNCPLANE_COMPONENTIZE_JS`, then the
/// service's `node_modules/.bin/`, then `PATH`.
pub fn find_componentize_js(dir: &Path) -> Option<PathBuf> {
    let mut candidates = Vec::new();
    if let Some(explicit) = std::env::var_os("SYNCPLANE_COMPONENTIZE_JS") {
        candidates.push(PathBuf::from(explicit));
    }
    candidates.push(dir.join("node_modules/.bin/componentize-js"));
    component::find_tool("componentize-js", &candidates)
}

/// Builds every step of the JavaScript service in `dir`, skipping those
/// whose sources, SDK, WIT and toolchain are unchanged since their last
/// build. `notify` receives progress lines.
///
/// # Errors
///
/// [`Error::ToolMissing`] without componentize-js, esbuild or the SDK,
/// [`Error::SourceMissing`] for a step without its module,
/// [`Error::ComponentFailed`] when a tool fails (its output went to
/// stderr), [`Error::Io`].
pub fn build(dir: &Path, steps: &[StepSource], notify: impl Fn(&str)) -> Result<()> {
    let dir = &component::absolute(dir)?;
    let missing = |tool| Error::ToolMissing {
        tool,
        hint: JS_INSTALL_HINT,
    };
    let componentize = find_componentize_js(dir).ok_or(missing("componentize-js"))?;
    // The node_modules the tool was installed into: esbuild and the SDK
    // come from there too.
    let node_modules = componentize
        .parent()
        .filter(|bin| bin.ends_with(".bin"))
        .and_then(Path::parent)
        .map(Path::to_path_buf);
    let esbuild_candidates: Vec<PathBuf> = node_modules
        .iter()
        .map(|m| m.join(".bin/esbuild"))
        .collect();
    let esbuild = component::find_tool("esbuild", &esbuild_candidates).ok_or(missing("esbuild"))?;
    // The SDK: installed beside the tool, or the package the tool was
    // installed for (`npm ci` in a copy of sdk/js), or the service's own.
    let is_sdk = |p: &Path| {
        p.file_name().is_some_and(|n| n == "syncplane-sdk") && p.join("package.json").is_file()
    };
    let sdk = node_modules
        .iter()
        .flat_map(|m| {
            [
                m.join("syncplane-sdk"),
                m.parent().map(Path::to_path_buf).unwrap_or_default(),
            ]
        })
        .chain([dir.join("node_modules/syncplane-sdk")])
        .find(|p| is_sdk(p))
        .ok_or(missing(
            "the syncplane JavaScript SDK (npm package `syncplane-sdk`)",
        ))?;
    // esbuild finds `syncplane-sdk` (and its subpaths, through its
    // package.json) in the folder holding it.
    let sdk_parent = sdk.parent().map(Path::to_path_buf).unwrap_or_default();
    let sdk = std::fs::canonicalize(&sdk).unwrap_or(sdk);
    let version = format!(
        "{} / esbuild {}",
        component::tool_version(&componentize, &["--version"]),
        component::tool_version(&esbuild, &["--version"])
    );
    if !version.starts_with(COMPONENTIZE_JS_VERSION) {
        notify(&format!(
            "warning: {} is `{version}`; syncplane is tested with componentize-js {COMPONENTIZE_JS_VERSION}",
            componentize.display()
        ));
    }
    for step in steps {
        let (module, source) = component::check_step(dir, step, "js")?;
        let output = component::step_output(dir, step)?;
        let out_dir = output.parent().unwrap_or(dir).to_path_buf();
        let mut key = BuildKey::for_step(&version, step, &module);
        key.text("outbound_http", &step.outbound_http.to_string());
        key.tree(&dir.join("src"), &["node_modules"])?;
        key.tree(&sdk, &["node_modules"])?;
        let key = key.finish();
        if component::up_to_date(&output, &key) {
            notify(&format!("{}: up to date", step.output.display()));
            continue;
        }
        notify(&format!(
            "componentize-js: src/{module}.js -> {} ({})",
            step.output.display(),
            step.world
        ));
        let wit = component::write_wit(&out_dir)?;
        let bundle = out_dir.join(format!(".{module}.bundle.js"));
        let mut bundling = Command::new(&esbuild);
        bundling
            .current_dir(dir)
            .arg(&source)
            .args([
                "--bundle",
                "--format=esm",
                "--platform=neutral",
                "--log-level=warning",
                "--external:syncplane:*",
                "--external:wasi:*",
            ])
            .arg(format!("--outfile={}", bundle.display()));
        let mut node_path = vec![sdk_parent.clone()];
        node_path.extend(node_modules.iter().cloned());
        if let Ok(joined) = std::env::join_paths(node_path) {
            bundling.env("NODE_PATH", joined);
        }
        component::run(&mut bundling, "esbuild", &module, dir)?;
        let partial = output.with_extension("wasm.partial");
        let mut command = Command::new(&componentize);
        command
            .current_dir(dir)
            .arg(&bundle)
            .arg("--wit")
            .arg(&wit)
            .args(["--world-name", &step.world, "--out"])
            .arg(&partial);
        if !step.outbound_http {
            // StarlingMonkey imports `wasi:http` for `fetch` unless told
            // not to; a service granted no outbound HTTP has no use for it.
            command.args(["--disable", "http", "fetch-event"]);
        }
        component::run(&mut command, "componentize-js", &module, dir)?;
        component::commit(&partial, &output, &key)?;
    }
    Ok(())
}
