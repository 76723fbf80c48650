//! The WIT packages this host serves to components, and a component's
//! imports read without compiling it.
//!
//! [`SERVED`] is what the runtime's linker holds (see `Runtime::new`):
//! both versions of `syncplane:plugin` (the bindings in `bindings.rs`) and
//! WASI 0.2 as wasmtime-wasi and wasmtime-wasi-http 48 provide it
//! (0.2.12; wasmtime links a component importing any earlier 0.2.x to it).
//! [`check_import`] tells whether one import of a component is served, so
//! an install can refuse a component built for an interface this host
//! lacks before anything is compiled, naming what it serves instead.

use std::fmt;

use semver::Version;

/// One WIT package the host serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServedPackage {
    /// `namespace:name`, e.g. `syncplane:plugin`.
    pub package: &'static str,
    /// The versions served, each an inclusive range `(lowest, highest)`.
    pub versions: &'static [(&'static str, &'static str)],
    /// The interfaces served, for every version; empty for "all of the
    /// package's interfaces" (WASI, which wasmtime provides whole).
    pub interfaces: &'static [(&'static str, &'static [&'static str])],
}

/// The interfaces of `syncplane:plugin@0.1.0`.
const PLUGIN_0_1: &[&str] = &["types", "models", "declarative", "log"];
/// The interfaces of `syncplane:plugin@0.2.0`.
const PLUGIN_0_2: &[&str] = &["types", "models", "declarative", "log", "config", "secrets"];
/// The WASI 0.2 versions wasmtime 48 serves.
const WASI_0_2: &[(&str, &str)] = &[("0.2.0", "0.2.12")];

/// Every WIT package the host serves.
pub const SERVED: &[ServedPackage] = &[
    ServedPackage {
        package: "syncplane:plugin",
        versions: &[("0.1.0", "0.1.0"), ("0.2.0", "0.2.0")],
        interfaces: &[("0.1.0", PLUGIN_0_1), ("0.2.0", PLUGIN_0_2)],
    },
    wasi("wasi:cli"),
    wasi("wasi:clocks"),
    wasi("wasi:filesystem"),
    wasi("wasi:http"),
    wasi("wasi:io"),
    wasi("wasi:random"),
    wasi("wasi:sockets"),
];

const fn wasi(package: &'static str) -> ServedPackage {
    ServedPackage {
        package,
        versions: WASI_0_2,
        interfaces: &[],
    }
}

impl ServedPackage {
    /// The versions served, as text: `0.1.0, 0.2.0` or `0.2.0–0.2.12`.
    #[must_use]
    pub fn range(&self) -> String {
        self.versions
            .iter()
            .map(|(low, high)| {
                if low == high {
                    (*low).to_owned()
                } else {
                    format!("{low}–{high}")
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn serves_version(&self, version: &Version) -> bool {
        self.versions.iter().any(
            |(low, high)| match (Version::parse(low), Version::parse(high)) {
                (Ok(low), Ok(high)) => low <= *version && *version <= high,
                _ => false,
            },
        )
    }

    fn serves_interface(&self, version: &Version, interface: &str) -> bool {
        if self.interfaces.is_empty() {
            return true;
        }
        self.interfaces.iter().any(|(v, names)| {
            Version::parse(v).is_ok_and(|v| v == *version) && names.contains(&interface)
        })
    }
}

/// Whether the host serves an import, and if not, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportStatus {
    /// The host links it.
    Served,
    /// A package the host does not serve at all.
    UnknownPackage,
    /// The package in a version the host does not serve; what it serves.
    VersionNotServed {
        /// The versions served.
        served: String,
    },
    /// An interface the package does not have in this version.
    InterfaceNotServed {
        /// The versions served.
        served: String,
    },
    /// A plain function or an unversioned interface: the host's worlds
    /// import versioned interfaces only.
    Unversioned,
}

impl fmt::Display for ImportStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImportStatus::Served => f.write_str("served"),
            ImportStatus::UnknownPackage => f.write_str("this host serves no such package"),
            ImportStatus::VersionNotServed { served } => {
                write!(f, "this host serves {served}")
            }
            ImportStatus::InterfaceNotServed { served } => write!(
                f,
                "this host serves no such interface in that version (it serves {served})"
            ),
            ImportStatus::Unversioned => {
                f.write_str("this host serves versioned interfaces (`ns:pkg/iface@x.y.z`) only")
            }
        }
    }
}

/// Whether the host serves the import `name`
/// (`namespace:package/interface@version`).
#[must_use]
pub fn check_import(name: &str) -> ImportStatus {
    let Some((path, version)) = name.split_once('@') else {
        return ImportStatus::Unversioned;
    };
    let Some((package, interface)) = path.split_once('/') else {
        return ImportStatus::Unversioned;
    };
    let Ok(version) = Version::parse(version) else {
        return ImportStatus::Unversioned;
    };
    let Some(served) = SERVED.iter().find(|s| s.package == package) else {
        return ImportStatus::UnknownPackage;
    };
    if !served.serves_version(&version) {
        return ImportStatus::VersionNotServed {
            served: served.range(),
        };
    }
    if !served.serves_interface(&version, interface) {
        return ImportStatus::InterfaceNotServed {
            served: served.range(),
        };
    }
    ImportStatus::Served
}

/// The interfaces the component `wasm` imports, in its order, read
/// without compiling it; `None` when the bytes are not a component (the
/// compiler reports that).
#[must_use]
pub fn component_imports(wasm: &[u8]) -> Option<Vec<String>> {
    let mut imports = Vec::new();
    let mut depth = 0usize;
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        let payload = payload.ok()?;
        match payload {
            wasmparser::Payload::Version {
                encoding: wasmparser::Encoding::Module,
                ..
            } if depth == 0 => return None,
            wasmparser::Payload::ModuleSection { .. }
            | wasmparser::Payload::ComponentSection { .. } => depth += 1,
            wasmparser::Payload::End(_) => depth = depth.saturating_sub(1),
            // Only the outermost component's imports are the host's to
            // provide; nested ones are satisfied inside it.
            wasmparser::Payload::ComponentImportSection(reader) if depth == 0 => {
                for import in reader {
                    let import = import.ok()?;
                    // Types the world uses are imported too; the host
                    // provides interfaces (instances).
                    if !matches!(import.ty, wasmparser::ComponentTypeRef::Instance(_)) {
                        continue;
                    }
                    let mut name = import.name.name.to_owned();
                    if let Some(suffix) = import.name.version_suffix {
                        name.push_str(suffix);
                    }
                    imports.push(name);
                }
            }
            _ => {}
        }
    }
    Some(imports)
}

/// The package and interface of an import name, without the version:
/// `wasi:http/outgoing-handler@0.2.0` gives `wasi:http/outgoing-handler`.
#[must_use]
pub fn unversioned(name: &str) -> &str {
    name.split('@').next().unwrap_or(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imports_are_served_by_package_version_and_interface() {
        assert_eq!(
            check_import("syncplane:plugin/models@0.2.0"),
            ImportStatus::Served
        );
        assert_eq!(
            check_import("syncplane:plugin/models@0.1.0"),
            ImportStatus::Served
        );
        assert_eq!(
            check_import("syncplane:plugin/http@0.3.0"),
            ImportStatus::VersionNotServed {
                served: "0.1.0, 0.2.0".into()
            }
        );
        assert_eq!(
            check_import("syncplane:plugin/secrets@0.1.0").to_string(),
            "this host serves no such interface in that version (it serves 0.1.0, 0.2.0)"
        );
        assert_eq!(
            check_import("wasi:http/outgoing-handler@0.2.3"),
            ImportStatus::Served
        );
        assert_eq!(
            check_import("wasi:http/outgoing-handler@0.3.0").to_string(),
            "this host serves 0.2.0–0.2.12"
        );
        assert_eq!(check_import("acme:x/y@1.0.0"), ImportStatus::UnknownPackage);
        assert_eq!(check_import("log"), ImportStatus::Unversioned);
    }

    #[test]
    fn bytes_that_are_not_a_component_have_no_imports() {
        assert_eq!(component_imports(b"\0asm-ish"), None);
        // An empty core module.
        assert_eq!(component_imports(b"\0asm\x01\0\0\0"), None);
    }

    #[test]
    fn a_real_component_imports_served_interfaces_only() {
        let wasm = std::fs::read(syncplane_test_artifacts::test_guest("cap_http_ok"))
            .expect("a built test guest");
        let imports = component_imports(&wasm).expect("a component");
        assert!(
            imports
                .iter()
                .any(|i| i.starts_with("syncplane:plugin/log@")),
            "{imports:?}"
        );
        assert!(
            imports
                .iter()
                .any(|i| unversioned(i) == "wasi:http/outgoing-handler"),
            "{imports:?}"
        );
        for import in &imports {
            assert_eq!(check_import(import), ImportStatus::Served, "{import}");
        }
    }

    #[test]
    fn the_served_plugin_versions_are_the_wit_files() {
        let current = include_str!("../../../wit/plugin.wit");
        let previous = include_str!("../../../wit/previous/0.1.0/plugin.wit");
        for (wit, version, interfaces) in [
            (current, "0.2.0", PLUGIN_0_2),
            (previous, "0.1.0", PLUGIN_0_1),
        ] {
            assert!(
                wit.contains(&format!("package syncplane:plugin@{version};")),
                "{version}"
            );
            let declared: Vec<&str> = wit
                .lines()
                .filter_map(|l| l.strip_prefix("interface "))
                .filter_map(|l| l.split_whitespace().next())
                .collect();
            let mut declared = declared;
            declared.sort_unstable();
            let mut listed = interfaces.to_vec();
            listed.sort_unstable();
            assert_eq!(declared, listed, "{version}");
        }
    }
}
