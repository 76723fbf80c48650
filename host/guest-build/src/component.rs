//! What the Python and JavaScript toolchains share: the steps to build,
//! the WIT they build against, finding a tool, and the build cache.

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// The WIT package every component is built against: the host's
/// `syncplane:plugin@0.2.0`, embedded so a service directory needs no copy.
pub(crate) const PLUGIN_WIT: &str = include_str!("../../../wit/plugin.wit");

/// One component a Python or JavaScript service builds: the step module
/// `src/<stem>.<ext>` becomes the file `output` (relative to the service
/// directory), exporting `world`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepSource {
    /// The WIT world: `sync-step`, `event-step`, `pull-step` or `model-policy`.
    pub world: String,
    /// The component file the manifest names, relative to the service
    /// directory, e.g. `build/sync_hello.wasm`; its stem names the module.
    pub output: PathBuf,
    /// Whether the manifest grants outbound HTTP. Without it the component
    /// is built without `wasi:http` imports (an install refuses a component
    /// importing what its manifest grants nothing for).
    pub outbound_http: bool,
}

impl StepSource {
    /// The module name: the output file's stem.
    pub(crate) fn module(&self) -> Result<String> {
        self.output
            .file_stem()
            .and_then(|s| s.to_str())
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| Error::BadComponentPath {
                path: self.output.display().to_string(),
            })
    }
}

/// `dir` as an absolute path, so tools run elsewhere still find it.
pub(crate) fn absolute(dir: &Path) -> Result<PathBuf> {
    std::fs::canonicalize(dir).map_err(|source| Error::Io {
        path: dir.display().to_string(),
        source,
    })
}

/// The name of the WIT package (`syncplane:plugin@0.2.0`), from its
/// `package` line.
pub(crate) fn plugin_package() -> &'static str {
    PLUGIN_WIT
        .lines()
        .find_map(|l| l.trim().strip_prefix("package "))
        .map_or("syncplane:plugin", |p| p.trim_end_matches(';'))
}

/// The worlds of the WIT package.
pub(crate) const WORLDS: &[&str] = &["sync-step", "event-step", "pull-step", "model-policy"];

/// Writes the WIT into `dir/.syncplane-wit/` and returns that directory.
pub(crate) fn write_wit(build_dir: &Path) -> Result<PathBuf> {
    let wit = build_dir.join(".syncplane-wit");
    create_dir(&wit)?;
    write_if_changed(&wit.join("plugin.wit"), PLUGIN_WIT)?;
    Ok(wit)
}

pub(crate) fn create_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|source| Error::Io {
        path: dir.display().to_string(),
        source,
    })
}

/// Writes `text` to `path` unless it already holds it (so its time stays
/// as it was).
pub(crate) fn write_if_changed(path: &Path, text: &str) -> Result<()> {
    if std::fs::read_to_string(path).ok().as_deref() == Some(text) {
        return Ok(());
    }
    std::fs::write(path, text).map_err(|source| Error::Io {
        path: path.display().to_string(),
        source,
    })
}

/// The first of `candidates` that is an executable file, else `name` found
/// on `PATH`.
pub(crate) fn find_tool(name: &str, candidates: &[PathBuf]) -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(name))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    candidates
        .iter()
        .cloned()
        .chain(on_path)
        .find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    {
        path.is_file()
    }
}

/// The first line a tool prints for `args` (its version), or empty.
pub(crate) fn tool_version(tool: &Path, args: &[&str]) -> String {
    Command::new(tool)
        .args(args)
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or_default()
                .trim()
                .to_owned()
        })
        .unwrap_or_default()
}

/// A digest of what a component is built from, so an unchanged step is
/// not rebuilt: named strings, and every file under the given directories
/// (by relative path and content, in a fixed order).
#[derive(Default)]
pub(crate) struct BuildKey(Sha256);

impl BuildKey {
    /// The key of one step's build so far: the tool's version, the
    /// step's world and module, and the WIT it is built against.
    pub(crate) fn for_step(version: &str, step: &StepSource, module: &str) -> BuildKey {
        let mut key = BuildKey::default();
        key.text("tool", version)
            .text("world", &step.world)
            .text("module", module)
            .text("wit", PLUGIN_WIT);
        key
    }

    /// Adds a labelled string.
    pub(crate) fn text(&mut self, label: &str, value: &str) -> &mut Self {
        for part in [label, value] {
            self.0.update((part.len() as u64).to_le_bytes());
            self.0.update(part.as_bytes());
        }
        self
    }

    /// Adds every file under `dir` (none when it does not exist), leaving
    /// out `skip` directory names (build outputs, `node_modules`).
    pub(crate) fn tree(&mut self, dir: &Path, skip: &[&str]) -> Result<&mut Self> {
        let mut files = Vec::new();
        collect(dir, dir, skip, &mut files)?;
        files.sort();
        for (relative, path) in files {
            let bytes = std::fs::read(&path).map_err(|source| Error::Io {
                path: path.display().to_string(),
                source,
            })?;
            self.text("file", &relative);
            self.0.update((bytes.len() as u64).to_le_bytes());
            self.0.update(&bytes);
        }
        Ok(self)
    }

    /// The digest as hex.
    pub(crate) fn finish(&self) -> String {
        self.0
            .clone()
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

fn collect(root: &Path, dir: &Path, skip: &[&str], out: &mut Vec<(String, PathBuf)>) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries {
        let entry = entry.map_err(|source| Error::Io {
            path: dir.display().to_string(),
            source,
        })?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            if !skip.contains(&name.as_str()) && name != "__pycache__" {
                collect(root, &path, skip, out)?;
            }
        } else {
            let relative = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .to_string_lossy()
                .into_owned();
            out.push((relative, path));
        }
    }
    Ok(())
}

/// Whether `output` was built from `key` already: the component exists
/// and the key file beside it holds `key`.
pub(crate) fn up_to_date(output: &Path, key: &str) -> bool {
    output.is_file() && std::fs::read_to_string(key_file(output)).ok().as_deref() == Some(key)
}

/// Moves a freshly built component into place (atomically, so a reader
/// never sees half a file) and records its key.
pub(crate) fn commit(built: &Path, output: &Path, key: &str) -> Result<()> {
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| Error::Io { path, source }
    };
    std::fs::rename(built, output).map_err(io(output))?;
    std::fs::write(key_file(output), key).map_err(io(output))?;
    Ok(())
}

fn key_file(output: &Path) -> PathBuf {
    let name = output
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    output.with_file_name(format!(".{name}.key"))
}

/// Runs a prepared toolchain command, mapping a missing program and a
/// failure to errors naming the step.
pub(crate) fn run(command: &mut Command, tool: &str, step: &str, dir: &Path) -> Result<()> {
    // The tools are Rust programs: their errors read better without a
    // backtrace, which a RUST_BACKTRACE meant for syncplane would add.
    command
        .env("RUST_BACKTRACE", "0")
        .env("RUST_LIB_BACKTRACE", "0")
        // What a tool prints is progress for the person watching: our
        // stdout is for what a command answers (`bench idle --json`).
        .stdout(std::io::stderr());
    let status = command.status().map_err(|source| Error::Spawn {
        command: format!("{command:?}"),
        source,
    })?;
    if !status.success() {
        return Err(Error::ComponentFailed {
            tool: tool.to_owned(),
            step: step.to_owned(),
            dir: dir.display().to_string(),
            status: status.to_string(),
        });
    }
    Ok(())
}

/// Checks the world name and that the step's source exists.
/// Where a step's component goes, its directory created.
pub(crate) fn step_output(dir: &Path, step: &StepSource) -> Result<PathBuf> {
    let output = dir.join(&step.output);
    let out_dir = output.parent().unwrap_or(dir).to_path_buf();
    std::fs::create_dir_all(&out_dir).map_err(|source| Error::Io {
        path: out_dir.display().to_string(),
        source,
    })?;
    Ok(output)
}

pub(crate) fn check_step(dir: &Path, step: &StepSource, ext: &str) -> Result<(String, PathBuf)> {
    if !WORLDS.contains(&step.world.as_str()) {
        return Err(Error::UnknownWorld {
            world: step.world.clone(),
        });
    }
    let module = step.module()?;
    let source = dir.join("src").join(format!("{module}.{ext}"));
    if !source.is_file() {
        return Err(Error::SourceMissing {
            path: source.display().to_string(),
            component: step.output.display().to_string(),
        });
    }
    Ok((module, source))
}
