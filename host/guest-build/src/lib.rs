//! Builds guest components, one toolchain per module:
//!
//! | toolchain | manifest | module | what runs |
//! |---|---|---|---|
//! | Rust | `[build] cargo = true` | this file ([`build`]) | `cargo build --release --target wasm32-wasip2`, adding the target through rustup when it is missing (as wasm-pack does) |
//! | Python | `[build] python = true` | [`python`] | `componentize-py` per step: `src/<name>.py` to the component the manifest names |
//! | JavaScript | `[build] js = true` | [`js`] | `esbuild` then `componentize-js` per step: `src/<name>.js` to the component the manifest names |
//!
//! Python and JavaScript builds are cached: a step whose sources, SDK,
//! WIT and toolchain are unchanged is not built again (a key file beside
//! the component records what it was built from).
//!
//! Used by build scripts (to embed or test guests) and by
//! `syncplane service build` / `service install` for source directories.
#![deny(missing_docs)]

mod component;
pub mod js;
pub mod python;
mod wasi_http;

use std::path::{Path, PathBuf};
use std::process::Command;

pub use component::StepSource;

/// The Rust target guests are compiled for.
pub const WASM_TARGET: &str = "wasm32-wasip2";

/// Why a guest could not be built.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The target is missing and rustup cannot add it.
    #[error(
        "the Rust target {WASM_TARGET} is not installed and could not be added: {reason}\n\
         install it with `rustup target add {WASM_TARGET}` (or your toolchain manager's equivalent) and try again"
    )]
    TargetMissing {
        /// What went wrong when adding it.
        reason: String,
    },
    /// A command could not be started.
    #[error("cannot run `{command}`")]
    Spawn {
        /// The command.
        command: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// `cargo build` failed; its output went to stderr.
    #[error(
        "building the guest in {dir} failed (`cargo build --release --target {WASM_TARGET}` exited with {status})"
    )]
    BuildFailed {
        /// The guest directory.
        dir: String,
        /// The exit status.
        status: String,
    },
    /// A toolchain program (or the SDK it needs) is not installed.
    #[error("{tool} is not installed: {hint}")]
    ToolMissing {
        /// The program.
        tool: &'static str,
        /// How to install it.
        hint: &'static str,
    },
    /// A toolchain failed on one step; its output went to stderr.
    #[error("building step `{step}` in {dir} failed (`{tool}` exited with {status})")]
    ComponentFailed {
        /// The program that failed.
        tool: String,
        /// The step (module) being built.
        step: String,
        /// The service directory.
        dir: String,
        /// The exit status.
        status: String,
    },
    /// A step's module is not where its component path says.
    #[error("{path} does not exist: the component {component} is built from it")]
    SourceMissing {
        /// The expected source file.
        path: String,
        /// The component the manifest names.
        component: String,
    },
    /// A component path without a usable file name.
    #[error("the component path `{path}` does not end in a file name to build")]
    BadComponentPath {
        /// The path.
        path: String,
    },
    /// A world the WIT package does not define.
    #[error("no world `{world}` in syncplane:plugin")]
    UnknownWorld {
        /// The world.
        world: String,
    },
    /// Reading or writing a file failed.
    #[error("cannot read or write {path}")]
    Io {
        /// The path.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

fn rustc() -> String {
    std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned())
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}

/// Whether the active toolchain has the standard library for [`WASM_TARGET`].
pub fn target_installed() -> bool {
    let Ok(out) = Command::new(rustc()).args(["--print", "sysroot"]).output() else {
        return false;
    };
    let sysroot = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    Path::new(&sysroot)
        .join("lib/rustlib")
        .join(WASM_TARGET)
        .is_dir()
}

/// Makes sure [`WASM_TARGET`] is installed, adding it with rustup when it is
/// not. `notify` receives a line to show the user before the download.
///
/// # Errors
///
/// [`Error::TargetMissing`] when the target is missing and rustup is absent
/// or fails.
pub fn ensure_target(notify: impl Fn(&str)) -> Result<()> {
    if target_installed() {
        return Ok(());
    }
    notify(&format!(
        "the Rust target {WASM_TARGET} is missing; installing it with `rustup target add {WASM_TARGET}`"
    ));
    let status = Command::new("rustup")
        .args(["target", "add", WASM_TARGET])
        .status()
        .map_err(|e| Error::TargetMissing {
            reason: format!("rustup is not available ({e})"),
        })?;
    if !status.success() || !target_installed() {
        return Err(Error::TargetMissing {
            reason: format!("`rustup target add {WASM_TARGET}` exited with {status}"),
        });
    }
    Ok(())
}

/// Builds the cargo project in `dir` for [`WASM_TARGET`] in release mode
/// and returns the directory holding the `.wasm` files.
///
/// `target_dir` overrides the project's own `target/` (build scripts pass
/// a directory under the outer build's target directory).
///
/// # Errors
///
/// [`Error::TargetMissing`], [`Error::Spawn`], [`Error::BuildFailed`].
pub fn build(dir: &Path, target_dir: Option<&Path>, notify: impl Fn(&str)) -> Result<PathBuf> {
    ensure_target(&notify)?;
    let mut command = Command::new(cargo());
    command
        .current_dir(dir)
        .args(["build", "--release", "--target", WASM_TARGET])
        // Flags meant for the outer (host) build must not leak into the guest's.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("CARGO_TARGET_DIR")
        // Progress, not an answer: see `component::run`.
        .stdout(std::io::stderr());
    if let Some(target_dir) = target_dir {
        command.env("CARGO_TARGET_DIR", target_dir);
    }
    let status = command.status().map_err(|source| Error::Spawn {
        command: format!("{} build --release --target {WASM_TARGET}", cargo()),
        source,
    })?;
    if !status.success() {
        return Err(Error::BuildFailed {
            dir: dir.display().to_string(),
            status: status.to_string(),
        });
    }
    let base = target_dir
        .map(Path::to_path_buf)
        .unwrap_or_else(|| dir.join("target"));
    Ok(base.join(WASM_TARGET).join("release"))
}

/// In a build script: a shared directory for guest builds under the outer
/// build's target directory, so every build script reuses one guest build.
pub fn shared_target_dir() -> Option<PathBuf> {
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR")?);
    // OUT_DIR is <target>/<profile>/build/<crate>-<hash>/out.
    out_dir
        .ancestors()
        .nth(4)
        .map(|t| t.join("syncplane-guests"))
}

/// In a build script: builds the guest at `root/guest` into
/// [`shared_target_dir`], tells cargo to rerun when the guest, the SDK or the
/// WIT change, shows messages as build warnings, and returns the directory
/// of the `.wasm` files.
///
/// # Panics
///
/// When the build fails; a build script has no better way to stop, and the
/// message says what to do.
pub fn build_from_build_script(root: &Path, guest: &str) -> PathBuf {
    // Not the whole guest directory: its own target/ changes on every build.
    let guest_dir = root.join(guest);
    let sources = [
        "src",
        "models",
        "samples",
        "Cargo.toml",
        "Cargo.lock",
        "syncplane.toml",
    ]
    .iter()
    .map(|p| guest_dir.join(p))
    .filter(|p| p.exists());
    for watched in sources.chain([root.join("sdk/rust/src"), root.join("wit")]) {
        println!("cargo:rerun-if-changed={}", watched.display());
    }
    let target_dir = shared_target_dir();
    build(&root.join(guest), target_dir.as_deref(), |line| {
        println!("cargo:warning={line}")
    })
    .unwrap_or_else(|e| panic!("{e}"))
}
