//! `syncplane service new NAME --lang rust|python|js [--model Foo]`: writes
//! a complete service that builds unchanged: its manifest, an xproto file
//! with one model, typed models generated from it, one sync step that logs
//! what it syncs, and a README. `tests/` is left for `syncplane service
//! test` cases.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use syncplane_xproto_gen::Target;

use crate::args::{Lang, NewArgs};

/// The build tools a JavaScript service installs beside the SDK (so npm
/// links their programs into its `node_modules/.bin`): the versions
/// `sdk/js/package.json` pins.
const JS_TOOLS: &[(&str, &str)] = &[
    ("@bytecodealliance/componentize-js", "0.23.0"),
    ("@bytecodealliance/preview2-shim", "0.17.4"),
    ("esbuild", "0.25.12"),
];

/// `my-service` -> `MyService`.
fn camel(name: &str) -> String {
    name.split(['-', '_'])
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut chars = p.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// `MyService` -> `my_service`.
fn snake(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else if c == '-' {
            out.push('_');
        } else {
            out.push(c);
        }
    }
    out
}

/// The syncplane checkout whose SDKs the new service uses: `--sdk`, else
/// the one this binary was built in (`<checkout>/target/<profile>/syncplane`).
fn checkout(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    let is_checkout =
        |p: &Path| p.join("sdk/rust/Cargo.toml").is_file() && p.join("wit/plugin.wit").is_file();
    if let Some(dir) = explicit {
        let dir = std::fs::canonicalize(dir)
            .with_context(|| format!("--sdk {}: no such directory", dir.display()))?;
        if !is_checkout(&dir) {
            bail!(
                "--sdk {}: not a syncplane checkout (no sdk/ and wit/)",
                dir.display()
            );
        }
        return Ok(dir);
    }
    let exe = std::env::current_exe().context("cannot find this program's path")?;
    exe.ancestors()
        .find(|p| is_checkout(p))
        .map(Path::to_path_buf)
        .context("cannot find the syncplane SDKs: pass --sdk with the path of a syncplane checkout")
}

fn write(dir: &Path, path: &str, text: &str) -> anyhow::Result<()> {
    let path = dir.join(path);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
}

fn models(target: Target, name: &str, xproto: &str) -> anyhow::Result<String> {
    let file = syncplane_xproto::parse(&format!("models/{name}.xproto"), xproto)
        .map_err(|e| anyhow::anyhow!("{e:?}"))
        .context("the template's xproto does not parse (a bug)")?;
    let files = [file];
    let schema = syncplane_xproto::Schema::resolve(&files)
        .map_err(|e| anyhow::anyhow!("{e:?}"))
        .context("the template's xproto is not valid (a bug)")?;
    Ok(syncplane_xproto_gen::generate(target, &schema, &files)?)
}

/// `service new`.
pub fn new(args: NewArgs) -> anyhow::Result<ExitCode> {
    let name = &args.name;
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        || !name.starts_with(|c: char| c.is_ascii_lowercase())
    {
        bail!(
            "the service name {name:?} must be lowercase letters, digits and `-`, starting with a letter"
        );
    }
    let model = args.model.clone().unwrap_or_else(|| camel(name));
    if !model.starts_with(|c: char| c.is_ascii_uppercase())
        || !model.chars().all(|c| c.is_ascii_alphanumeric())
    {
        bail!("the model name {model:?} must be CamelCase letters and digits");
    }
    let dir = args.dir.clone().unwrap_or_else(|| PathBuf::from(name));
    if dir.exists()
        && std::fs::read_dir(&dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        bail!("{} exists and is not empty", dir.display());
    }
    let sdk = checkout(args.sdk.as_deref())?;
    let step = format!("sync_{}", snake(&model));
    let xproto = format!(
        "option name = \"{name}\";\noption app_label = \"{name}\";\n\n\
         message {model} (XOSBase) {{\n    \
         required string name = 1 [help_text = \"The name of this {model}\", max_length = 200];\n}}\n"
    );
    write(&dir, &format!("models/{name}.xproto"), &xproto)?;
    // An interpreter's start costs milliseconds per call; Rust's costs
    // microseconds, so a Rust step keeps the fresh instance per call.
    let reuse = match args.lang {
        Lang::Rust => "",
        Lang::Python | Lang::Js => {
            "# Keep each step's instance between calls: its interpreter starts once,\n\
             # not per object (module-level state survives from call to call).\n\
             reuse_instances = true\n"
        }
    };
    let (build, component, lang) = match args.lang {
        Lang::Rust => (
            "cargo = true",
            format!("target/wasm32-wasip2/release/{step}.wasm"),
            "Rust",
        ),
        Lang::Python => ("python = true", format!("build/{step}.wasm"), "Python"),
        Lang::Js => ("js = true", format!("build/{step}.wasm"), "JavaScript"),
    };
    write(
        &dir,
        "syncplane.toml",
        &format!(
            "# The service package manifest of {name}.\nmanifest_version = 1\n\n\
             [service]\nname = \"{name}\"\nversion = \"0.1.0\"\n\
             description = \"{name}, a syncplane service in {lang}\"\n\
             xproto = [\"models/{name}.xproto\"]\n{reuse}\n\
             # `syncplane service build` (and `service install`) builds the components.\n\
             [build]\n{build}\n\n\
             [[sync_steps]]\nname = \"{step}\"\ncomponent = \"{component}\"\nobserves = \"{model}\"\n"
        ),
    )?;
    match args.lang {
        Lang::Rust => rust(&dir, name, &model, &step, &sdk, &xproto)?,
        Lang::Python => python(&dir, name, &model, &step, &xproto)?,
        Lang::Js => js(&dir, name, &model, &step, &sdk, &xproto)?,
    }
    let build_help = match args.lang {
        Lang::Rust => "Needs Rust with the `wasm32-wasip2` target (added through rustup when missing).".to_owned(),
        Lang::Python => format!(
            "Needs componentize-py and the Python SDK:\n\n```sh\npython3 -m venv .venv\n.venv/bin/pip install {}\n```\n\n\
             (`service build` finds `.venv/` in this directory, or componentize-py on `PATH`.)",
            sdk.join("sdk/python").display()
        ),
        Lang::Js => "Needs Node.js 18+ and npm: run `npm install` here first (it brings the SDK, esbuild and componentize-js).".to_owned(),
    };
    let models_file = match args.lang {
        Lang::Rust => "src/lib.rs",
        Lang::Python => "src/models.py",
        Lang::Js => "src/models.js` and `src/models.d.ts",
    };
    let regenerate = match args.lang {
        Lang::Rust => format!("syncplane gen rust models/{name}.xproto > src/models.rs"),
        Lang::Python => format!("syncplane gen python models/{name}.xproto > src/models.py"),
        Lang::Js => format!(
            "syncplane gen javascript models/{name}.xproto > src/models.js\nsyncplane gen typescript models/{name}.xproto > src/models.d.ts"
        ),
    };
    write(
        &dir,
        "README.md",
        &format!(
            "# {name}\n\nA syncplane service in {lang}: the model `{model}` (`models/{name}.xproto`) and \
             the sync step `{step}`, which logs each object it syncs.\n\n\
             ## Build and install\n\n{build_help}\n\n```sh\nsyncplane service build .\n\
             syncplane service install .      # builds first, then installs on $SYNCPLANE_SERVER\n```\n\n\
             ## Models\n\nThe typed models in `{models_file}` are generated from the xproto file; after \
             changing it, generate them again:\n\n```sh\n{regenerate}\n```\n\n\
             ## Tests\n\n`tests/{step}.yaml` tests the step offline, against the real component and an \
             in-memory store (see \"Testing a service\" in syncplane's docs/services.md):\n\n```sh\n\
             syncplane service test .\n```\n"
        ),
    )?;
    write(
        &dir,
        &format!("tests/{step}.yaml"),
        &format!(
            "# Offline tests of the sync step `{step}`: `syncplane service test .`\n\
             tests:\n  \
             - name: an object is synced\n    \
               fixtures:\n      \
                 - name: first\n        model: {model}\n        fields:\n          name: first\n    \
               sync: first\n    \
               expect:\n      outcome: ok\n      logs:\n        - {model} synced\n      \
                 objects:\n        first:\n          backend_code: 1\n\n  \
             - name: a deleted object is torn down and purged\n    \
               fixtures:\n      \
                 - name: gone\n        model: {model}\n        fields:\n          name: gone\n    \
               delete: gone\n    \
               expect:\n      outcome: ok\n      deleted: [gone]\n      logs:\n        - {model} deleted\n"
        ),
    )?;
    let ignore = match args.lang {
        Lang::Rust => "target/\n",
        Lang::Python => "build/\n.venv/\n__pycache__/\n",
        Lang::Js => "build/\nnode_modules/\n",
    };
    write(&dir, ".gitignore", ignore)?;
    println!("created {lang} service {name} in {}", dir.display());
    Ok(ExitCode::SUCCESS)
}

fn rust(
    dir: &Path,
    name: &str,
    model: &str,
    step: &str,
    sdk: &Path,
    xproto: &str,
) -> anyhow::Result<()> {
    let crate_name = snake(name);
    write(
        dir,
        "Cargo.toml",
        &format!(
            "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2024\"\npublish = false\n\n\
             [dependencies]\nsyncplane-sdk = {{ path = {:?} }}\n\n\
             [profile.release]\nopt-level = \"s\"\nlto = true\nstrip = true\n\n\
             # A standalone workspace: guests build for wasm32-wasip2, not for the host.\n[workspace]\n",
            sdk.join("sdk/rust").display().to_string()
        ),
    )?;
    write(
        dir,
        "src/lib.rs",
        &format!("//! The models of {name}.\n\nmod models;\n\npub use models::*;\n"),
    )?;
    write(dir, "src/models.rs", &models(Target::Rust, name, xproto)?)?;
    write(
        dir,
        &format!("src/bin/{step}.rs"),
        &format!(
            "//! Syncs {model} objects: logs each one (replace with your backend's calls).\n\n\
             use {crate_name}::{model};\nuse syncplane_sdk::prelude::*;\n\n\
             struct Step;\n\n\
             impl SyncStep for Step {{\n    type Model = {model};\n\n    \
             fn sync_record(o: &Object<{model}>) -> StepResult {{\n        \
             log::info!(\"{model} synced\"; object = o, name = o.name);\n        Ok(())\n    }}\n\n    \
             fn delete_record(o: &Object<{model}>) -> StepResult {{\n        \
             log::info!(\"{model} deleted\"; object = o);\n        Ok(())\n    }}\n}}\n\n\
             export_sync_step!(Step);\n"
        ),
    )
}

fn python(dir: &Path, name: &str, model: &str, step: &str, xproto: &str) -> anyhow::Result<()> {
    write(dir, "src/models.py", &models(Target::Python, name, xproto)?)?;
    write(
        dir,
        &format!("src/{step}.py"),
        &format!(
            "\"\"\"Syncs {model} objects: logs each one (replace with your backend's calls).\"\"\"\n\n\
             from models import {model}\nfrom syncplane import SyncStep, export_sync_step, log\n\n\n\
             class Step(SyncStep[{model}]):\n    model = {model}\n\n    \
             def sync_record(self, o: {model}) -> None:\n        \
             log.info(\"{model} synced\", object=o, name=o.name)\n\n    \
             def delete_record(self, o: {model}) -> None:\n        \
             log.info(\"{model} deleted\", object=o)\n\n\n\
             WitWorld = export_sync_step(Step)\n"
        ),
    )
}

fn js(
    dir: &Path,
    name: &str,
    model: &str,
    step: &str,
    sdk: &Path,
    xproto: &str,
) -> anyhow::Result<()> {
    write(
        dir,
        "src/models.js",
        &models(Target::Javascript, name, xproto)?,
    )?;
    write(
        dir,
        "src/models.d.ts",
        &models(Target::Typescript, name, xproto)?,
    )?;
    write(
        dir,
        "package.json",
        &format!(
            "{{\n  \"name\": \"{name}\",\n  \"version\": \"0.1.0\",\n  \"private\": true,\n  \"type\": \"module\",\n  \
             \"dependencies\": {{\n    \"syncplane-sdk\": {:?}\n  }},\n  \
             \"devDependencies\": {{\n{}\n  }}\n}}\n",
            format!("file:{}", sdk.join("sdk/js").display()),
            JS_TOOLS
                .iter()
                .map(|(package, version)| format!("    \"{package}\": \"{version}\""))
                .collect::<Vec<_>>()
                .join(",\n")
        ),
    )?;
    write(
        dir,
        &format!("src/{step}.js"),
        &format!(
            "// Syncs {model} objects: logs each one (replace with your backend's calls).\n\n\
             import {{ log }} from \"syncplane-sdk\";\nimport {{ exportSyncStep }} from \"syncplane-sdk/sync\";\n\n\
             import {{ {model} }} from \"./models.js\";\n\n\
             /** @type {{import(\"syncplane-sdk\").SyncStep<import(\"./models.js\").{model}>}} */\n\
             const step = {{\n  syncRecord(o) {{\n    log.info(\"{model} synced\", {{ object: o, name: o.name }});\n  }},\n  \
             deleteRecord(o) {{\n    log.info(\"{model} deleted\", {{ object: o }});\n  }},\n}};\n\n\
             export const {{ syncRecord, deleteRecord }} = exportSyncStep({model}, step);\n"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_cased_for_models_and_steps() {
        assert_eq!(camel("my-service"), "MyService");
        assert_eq!(snake("DnsZone"), "dns_zone");
        assert_eq!(snake("my-service"), "my_service");
    }

    #[test]
    fn js_services_pin_the_tools_the_sdk_pins() {
        let manifest = include_str!("../../../sdk/js/package.json");
        for (package, version) in JS_TOOLS {
            assert!(
                manifest.contains(&format!("\"{package}\": \"{version}\"")),
                "sdk/js/package.json does not pin {package} {version}"
            );
        }
    }
}
