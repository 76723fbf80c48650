//! The `wasi:http` WIT a Python component granted outbound HTTP is built
//! against: the WASI packages the host implements, and a world per step
//! kind that adds `wasi:http/outgoing-handler` to the syncplane world.
//!
//! JavaScript needs none of this: componentize-js brings its own WASI WIT
//! for `fetch`.

use std::path::Path;

use crate::Result;
use crate::component::{create_dir, write_if_changed};

/// The WASI version of the embedded WIT (that of the host's wasmtime).
pub(crate) const WASI_VERSION: &str = "0.2.12";

/// The WASI packages, one file each, as `deps/<name>`.
const WASI_WIT: &[(&str, &str)] = &[
    ("cli.wit", include_str!("../wit/wasi-0.2.12/cli.wit")),
    ("clocks.wit", include_str!("../wit/wasi-0.2.12/clocks.wit")),
    (
        "filesystem.wit",
        include_str!("../wit/wasi-0.2.12/filesystem.wit"),
    ),
    ("http.wit", include_str!("../wit/wasi-0.2.12/http.wit")),
    ("io.wit", include_str!("../wit/wasi-0.2.12/io.wit")),
    ("random.wit", include_str!("../wit/wasi-0.2.12/random.wit")),
    (
        "sockets.wit",
        include_str!("../wit/wasi-0.2.12/sockets.wit"),
    ),
];

/// The world of step kind `world` with outbound HTTP, e.g.
/// `sync-step-with-http`.
pub(crate) fn world_with_http(world: &str) -> String {
    format!("{world}-with-http")
}

/// Writes the WASI packages into `wit/deps/` and, into `wit/`, a file
/// declaring [`world_with_http`] for every step kind of the syncplane
/// package there.
pub(crate) fn write(wit: &Path, worlds: &[&str]) -> Result<()> {
    let deps = wit.join("deps");
    create_dir(&deps)?;
    for (name, text) in WASI_WIT {
        write_if_changed(&deps.join(name), text)?;
    }
    // No `package` line: `plugin.wit` names the package, and a second
    // one would make its doc comments ambiguous.
    let mut worlds_wit = String::from(
        "// Written by `syncplane service build`: each step kind with outbound HTTP.\n",
    );
    for world in worlds {
        worlds_wit.push_str(&format!(
            "\nworld {} {{\n  include {world};\n  import wasi:http/outgoing-handler@{WASI_VERSION};\n}}\n",
            world_with_http(world)
        ));
    }
    write_if_changed(&wit.join("with-http.wit"), &worlds_wit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_wit_is_the_version_named() {
        for (name, text) in WASI_WIT {
            let package = text
                .lines()
                .find_map(|l| l.strip_prefix("package "))
                .unwrap_or_else(|| panic!("{name} has no package line"));
            assert!(
                package.ends_with(&format!("@{WASI_VERSION};")),
                "{name}: {package}"
            );
        }
    }

    #[test]
    fn every_step_kind_gets_a_world_with_http() {
        let temp = tempfile::tempdir().expect("tempdir");
        let dir = temp.path();
        write(dir, &["sync-step", "pull-step"]).expect("write");
        let worlds = std::fs::read_to_string(dir.join("with-http.wit")).expect("worlds");
        assert!(
            worlds.contains(
                "world sync-step-with-http {\n  include sync-step;\n  import wasi:http/outgoing-handler@0.2.12;\n}"
            ),
            "{worlds}"
        );
        assert!(worlds.contains("world pull-step-with-http"), "{worlds}");
        assert!(dir.join("deps/http.wit").is_file());
    }
}
