//! A service package: manifest, model sources and compiled components,
//! as sent to a host and stored by it.

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use syncplane_runtime::served;

use crate::error::{Error, Result};
use crate::manifest::{MANIFEST_FILE, Manifest};
use crate::package_files::{MAX_PACKAGE_FILES_BYTES, PackageDir, PackageFile, PackageSource};

/// Everything needed to install a service, self-contained.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServicePackage {
    /// The manifest.
    pub manifest: Manifest,
    /// xproto sources by their path in the manifest.
    pub xproto: BTreeMap<String, String>,
    /// The model-deps file's text, when the manifest names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_deps: Option<String>,
    /// Component bytes by step name (base64 in JSON).
    #[serde(serialize_with = "to_base64", deserialize_with = "from_base64")]
    pub components: BTreeMap<String, Vec<u8>>,
}

fn to_base64<S: Serializer>(map: &BTreeMap<String, Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
    let encoded: BTreeMap<&String, String> =
        map.iter().map(|(k, v)| (k, STANDARD.encode(v))).collect();
    encoded.serialize(s)
}

fn from_base64<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, Vec<u8>>, D::Error> {
    let encoded = BTreeMap::<String, String>::deserialize(d)?;
    encoded
        .into_iter()
        .map(|(k, v)| {
            STANDARD
                .decode(v.as_bytes())
                .map(|bytes| (k.clone(), bytes))
                .map_err(|e| {
                    serde::de::Error::custom(format!("component `{k}` is not valid base64: {e}"))
                })
        })
        .collect()
}

impl ServicePackage {
    /// The dependencies `(model, depends_on)` of the package's model-deps
    /// file; none without one.
    ///
    /// # Errors
    ///
    /// [`Error::Package`] for text that is not the model-deps format.
    pub fn model_dependencies(&self) -> Result<Vec<(String, String)>> {
        let Some(text) = &self.model_deps else {
            return Ok(Vec::new());
        };
        let name = self
            .manifest
            .service
            .model_deps
            .as_deref()
            .unwrap_or("model-deps");
        let parsed: BTreeMap<String, Vec<Vec<String>>> = serde_json::from_str(text).map_err(|e| {
            Error::Package(format!(
                "{name}:{}:{}: not a model-deps file ({{\"Model\": [[\"Dependency\", \"field\", \"reverse\"]]}}): {e}",
                e.line(),
                e.column()
            ))
        })?;
        let mut deps = Vec::new();
        for (model, entries) in parsed {
            for entry in entries {
                let Some(dependency) = entry.first() else {
                    return Err(Error::Package(format!(
                        "{name}: an entry of `{model}` is empty"
                    )));
                };
                deps.push((model.clone(), dependency.clone()));
            }
        }
        Ok(deps)
    }

    /// The component of the step `name`.
    ///
    /// # Errors
    ///
    /// [`Error::Package`] when the package lacks it.
    pub fn component(&self, name: &str) -> Result<&[u8]> {
        self.components.get(name).map(Vec::as_slice).ok_or_else(|| {
            Error::Package(format!(
                "the component of step `{name}` is not in the package"
            ))
        })
    }

    /// Every file the manifest names: xproto files, the model-deps file
    /// and each step's component, in that order.
    pub fn files(&self) -> Vec<PackageFile> {
        manifest_files(&self.manifest)
    }

    /// Checks the package's paths and sizes, as the host does for every
    /// package it installs, uploaded or read from a directory: each path the
    /// manifest names is relative, normalized and inside the package; each
    /// file is within its limit ([`MAX_MANIFEST_BYTES`] for the manifest
    /// written as TOML, [`MAX_XPROTO_BYTES`], [`MAX_MODEL_DEPS_BYTES`],
    /// [`MAX_COMPONENT_BYTES`]) and all of them together within
    /// [`MAX_PACKAGE_FILES_BYTES`]; the package holds no xproto file or
    /// component its manifest does not name.
    ///
    /// [`MAX_MANIFEST_BYTES`]: crate::MAX_MANIFEST_BYTES
    /// [`MAX_XPROTO_BYTES`]: crate::MAX_XPROTO_BYTES
    /// [`MAX_MODEL_DEPS_BYTES`]: crate::MAX_MODEL_DEPS_BYTES
    /// [`MAX_COMPONENT_BYTES`]: crate::MAX_COMPONENT_BYTES
    /// [`MAX_PACKAGE_FILES_BYTES`]: crate::MAX_PACKAGE_FILES_BYTES
    ///
    /// # Errors
    ///
    /// The first problem found, paths before sizes:
    /// [`Error::PackageFile`] for a path or a size, [`Error::PackageTooLarge`]
    /// for the total, [`Error::Package`] for a file the manifest does not
    /// name.
    pub fn check_paths_and_sizes(&self) -> Result<()> {
        let files = self.files();
        for file in &files {
            file.check_path()?;
        }
        // The upload carries the manifest parsed; measure it in the form
        // its author wrote, as `from_dir` measured the file.
        let manifest_bytes = toml::to_string(&self.manifest)
            .map(|t| t.len())
            .or_else(|_| serde_json::to_vec(&self.manifest).map(|j| j.len()))
            .map_err(|e| Error::Package(format!("cannot serialise the manifest: {e}")))?;
        let mut total = 0;
        let mut add = |file: &PackageFile, len: usize| -> Result<()> {
            let len = u64::try_from(len).unwrap_or(u64::MAX);
            file.check_size(len)?;
            total = len.saturating_add(total);
            Ok(())
        };
        add(&PackageFile::Manifest, manifest_bytes)?;
        for (path, text) in &self.xproto {
            if !self.manifest.service.xproto.contains(path) {
                return Err(Error::Package(format!(
                    "xproto file `{path}` is in the package but not in its manifest"
                )));
            }
            add(&PackageFile::Xproto(path.clone()), text.len())?;
        }
        if let Some(text) = &self.model_deps {
            let path = self
                .manifest
                .service
                .model_deps
                .as_deref()
                .unwrap_or("model-deps");
            add(&PackageFile::ModelDeps(path.to_owned()), text.len())?;
        }
        for (step, bytes) in &self.components {
            let Some(file) = files
                .iter()
                .find(|f| matches!(f, PackageFile::Component { step: s, .. } if s == step))
            else {
                return Err(Error::Package(format!(
                    "the package has a component for `{step}`, which its manifest declares no step for"
                )));
            };
            add(file, bytes.len())?;
        }
        if total > MAX_PACKAGE_FILES_BYTES {
            return Err(Error::PackageTooLarge {
                bytes: total,
                limit: MAX_PACKAGE_FILES_BYTES,
            });
        }
        Ok(())
    }

    /// Reads and parses only the manifest of a service directory, as
    /// [`ServicePackage::from_dir`] does (through a handle that cannot leave
    /// `dir`, within [`MAX_MANIFEST_BYTES`]): for a caller that must see it
    /// first, e.g. to build the components it names.
    ///
    /// [`MAX_MANIFEST_BYTES`]: crate::MAX_MANIFEST_BYTES
    ///
    /// # Errors
    ///
    /// [`Error::Manifest`] for a bad manifest; [`Error::PackageFile`] when it
    /// is a symlink leading out of `dir`, not a regular file, too large or
    /// not UTF-8; [`Error::ReadPackageFile`] when it is missing or
    /// unreadable; [`Error::Read`] when `dir` cannot be opened.
    pub fn read_manifest(dir: &Path) -> Result<Manifest> {
        read_manifest(&mut PackageDir::open(dir)?, dir)
    }

    /// Reads a service directory: its manifest, the xproto files it names,
    /// its model-deps file and the components of its steps (which must
    /// already be built).
    ///
    /// Files are read through a capability handle on `dir`: a path the
    /// manifest names cannot leave it, whether by `..`, by being absolute or
    /// through a symlink (symlinks that stay inside are followed). Each
    /// file's size is checked against its limit before it is read; the
    /// package is then checked as [`ServicePackage::check_paths_and_sizes`]
    /// checks an upload.
    ///
    /// # Errors
    ///
    /// [`Error::Manifest`] for a bad manifest; [`Error::PackageFile`] for a
    /// path that leaves the package, a symlink leading out, a file that is
    /// not a regular file, too large or (for text) not UTF-8;
    /// [`Error::PackageTooLarge`] when the files together are too large;
    /// [`Error::ReadPackageFile`] for a missing or unreadable file;
    /// [`Error::Read`] when `dir` cannot be opened.
    pub fn from_dir(dir: &Path) -> Result<ServicePackage> {
        let mut files = PackageDir::open(dir)?;
        let manifest = read_manifest(&mut files, dir)?;
        ServicePackage::from_source(manifest, &mut files)
    }

    /// Reads the files `manifest` names from `files`, checking every path
    /// before any file is read, then the package as a whole.
    pub(crate) fn from_source(
        manifest: Manifest,
        files: &mut impl PackageSource,
    ) -> Result<ServicePackage> {
        let named = manifest_files(&manifest);
        for file in &named {
            file.check_path()?;
        }
        let mut xproto = BTreeMap::new();
        let mut model_deps = None;
        let mut components = BTreeMap::new();
        for file in named {
            match &file {
                PackageFile::Manifest | PackageFile::Sample(_) => {}
                PackageFile::Xproto(path) => {
                    xproto.insert(path.clone(), files.read_text(&file)?);
                }
                PackageFile::ModelDeps(_) => model_deps = Some(files.read_text(&file)?),
                PackageFile::Component { step, .. } => {
                    components.insert(step.clone(), files.read(&file)?);
                }
            }
        }
        let package = ServicePackage {
            manifest,
            xproto,
            model_deps,
            components,
        };
        package.check_paths_and_sizes()?;
        Ok(package)
    }
}

impl ServicePackage {
    /// Each component's interface imports, by step, as read from the
    /// component (without compiling it); a step whose bytes are not a
    /// component has none (compiling it says what is wrong).
    #[must_use]
    pub fn imports(&self) -> BTreeMap<String, Vec<String>> {
        self.components
            .iter()
            .map(|(step, wasm)| {
                (
                    step.clone(),
                    served::component_imports(wasm).unwrap_or_default(),
                )
            })
            .collect()
    }

    /// Every import of every component, marked served by this host or not.
    #[must_use]
    pub fn inspect_imports(&self) -> Vec<InspectedImport> {
        let mut inspected = Vec::new();
        for (step, imports) in self.imports() {
            for import in imports {
                let status = served::check_import(&import);
                inspected.push(InspectedImport {
                    step: step.clone(),
                    served: status == served::ImportStatus::Served,
                    note: status.to_string(),
                    import,
                });
            }
        }
        inspected
    }

    /// Checks every component's imports against what the host serves and
    /// what the manifest declares, before anything is compiled.
    ///
    /// # Errors
    ///
    /// [`Error::ImportNotServed`] naming the component, the import and
    /// the versions served; [`Error::UndeclaredImport`] for outbound HTTP
    /// without an `outbound_http` grant.
    pub fn check_imports(&self) -> Result<()> {
        for (step, imports) in self.imports() {
            for import in imports {
                let status = served::check_import(&import);
                if status != served::ImportStatus::Served {
                    return Err(Error::ImportNotServed {
                        step,
                        import,
                        served: status.to_string(),
                    });
                }
                if served::unversioned(&import) == OUTGOING_HTTP
                    && self.manifest.capabilities.outbound_http.is_empty()
                {
                    return Err(Error::UndeclaredImport {
                        step,
                        import,
                        grant: "outbound_http".into(),
                    });
                }
            }
        }
        Ok(())
    }
}

/// One interface a component imports, as `inspect` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct InspectedImport {
    /// The step whose component imports it.
    pub step: String,
    /// The import, `namespace:package/interface@version`.
    pub import: String,
    /// Whether this host serves it.
    pub served: bool,
    /// `served`, or why not and what the host serves instead.
    pub note: String,
}

/// The interface through which a component makes HTTP requests.
const OUTGOING_HTTP: &str = "wasi:http/outgoing-handler";

fn read_manifest(files: &mut PackageDir, dir: &Path) -> Result<Manifest> {
    let text = files.read_text(&PackageFile::Manifest)?;
    Manifest::parse(&dir.join(MANIFEST_FILE).display().to_string(), &text)
}

/// The files `manifest` names, xproto files first, then the model-deps
/// file, then each step's component.
pub(crate) fn manifest_files(manifest: &Manifest) -> Vec<PackageFile> {
    let steps = manifest.step_components();
    manifest
        .service
        .xproto
        .iter()
        .map(|path| PackageFile::Xproto(path.clone()))
        .chain(
            manifest
                .service
                .model_deps
                .iter()
                .map(|p| PackageFile::ModelDeps(p.clone())),
        )
        .chain(steps.map(|(step, path)| PackageFile::Component {
            step: step.clone(),
            path: path.clone(),
        }))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{Observes, SyncStepSection};

    fn package(deps: Option<&str>) -> ServicePackage {
        let manifest = Manifest::parse(
            "m.toml",
            "manifest_version = 1\n[service]\nname = \"x\"\nversion = \"1\"\nxproto = []\nmodel_deps = \"deps.json\"\n",
        )
        .expect("manifest");
        ServicePackage {
            manifest,
            xproto: BTreeMap::new(),
            model_deps: deps.map(str::to_owned),
            components: BTreeMap::new(),
        }
    }

    #[test]
    fn a_model_deps_file_reads_in_the_original_format() {
        let deps = package(Some(r#"{"User": [["Site", "site", "users"]], "Site": []}"#))
            .model_dependencies()
            .expect("deps");
        assert_eq!(deps, [("User".to_owned(), "Site".to_owned())]);
        assert!(package(None).model_dependencies().expect("none").is_empty());
        let bad = package(Some("{\"User\": 3}"))
            .model_dependencies()
            .expect_err("bad");
        assert!(bad.to_string().contains("deps.json:1:"), "{bad}");
    }

    /// A package directory in a fresh temporary directory `root/pkg`: a
    /// manifest naming `xproto` and one sync step `s` at `component`; `files`
    /// creates the files (`root` is outside the package).
    fn dir_package(
        xproto: &str,
        component: &str,
        files: impl FnOnce(&Path, &Path),
    ) -> (tempfile::TempDir, std::path::PathBuf) {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("pkg");
        std::fs::create_dir_all(dir.join("models")).expect("dir");
        std::fs::write(
            dir.join(MANIFEST_FILE),
            format!(
                "manifest_version = 1\n[service]\nname = \"x\"\nversion = \"1\"\nxproto = [{xproto:?}]\n\
                 [[sync_steps]]\nname = \"s\"\ncomponent = {component:?}\nobserves = \"A\"\n"
            ),
        )
        .expect("manifest");
        files(root.path(), &dir);
        (root, dir)
    }

    fn refusal(xproto: &str, component: &str, files: impl FnOnce(&Path, &Path)) -> String {
        let (_root, dir) = dir_package(xproto, component, files);
        ServicePackage::from_dir(&dir)
            .expect_err("refused")
            .to_string()
    }

    fn write(path: &Path, text: &str) {
        std::fs::write(path, text).expect("write");
    }

    fn sparse(path: &Path, len: u64) {
        std::fs::File::create(path)
            .and_then(|f| f.set_len(len))
            .expect("sparse file");
    }

    #[test]
    fn a_directory_package_follows_symlinks_that_stay_inside_it() {
        let (_root, dir) = dir_package("models/a.xproto", "target/s.wasm", |_, dir| {
            std::fs::create_dir_all(dir.join("shared")).expect("dir");
            write(&dir.join("shared/a.xproto"), "message A {}");
            write(&dir.join("shared/s.wasm"), "wasm");
            std::os::unix::fs::symlink("../shared/a.xproto", dir.join("models/a.xproto"))
                .expect("link");
            std::os::unix::fs::symlink("shared", dir.join("target")).expect("link");
        });
        let package = ServicePackage::from_dir(&dir).expect("package");
        assert_eq!(package.xproto["models/a.xproto"], "message A {}");
        assert_eq!(package.components["s"], b"wasm");
    }

    #[test]
    fn a_directory_package_cannot_name_files_outside_it() {
        let outside = |root: &Path, dir: &Path| {
            write(&root.join("outside.xproto"), "message A {}");
            write(&dir.join("s.wasm"), "wasm");
        };
        let err = refusal("../outside.xproto", "s.wasm", outside);
        assert_eq!(
            err,
            "xproto file `../outside.xproto` leaves the package directory"
        );

        let err = refusal("models/a.xproto", "/etc/passwd", |_, _| {});
        assert!(
            err.starts_with("component `/etc/passwd` of step `s` is an absolute path"),
            "{err}"
        );

        let err = refusal("models/link.xproto", "s.wasm", |root, dir| {
            outside(root, dir);
            std::os::unix::fs::symlink(root.join("outside.xproto"), dir.join("models/link.xproto"))
                .expect("link");
        });
        assert!(
            err.starts_with(
                "xproto file `models/link.xproto` is a symlink pointing outside the package"
            ),
            "{err}"
        );

        let err = refusal("models/link.xproto", "s.wasm", |root, dir| {
            outside(root, dir);
            std::os::unix::fs::symlink("../../outside.xproto", dir.join("models/link.xproto"))
                .expect("link");
        });
        assert!(
            err.starts_with(
                "xproto file `models/link.xproto` is a symlink pointing outside the package"
            ),
            "{err}"
        );

        let err = refusal("models/a.xproto", "target/s.wasm", |root, dir| {
            write(&dir.join("models/a.xproto"), "message A {}");
            std::os::unix::fs::symlink(root, dir.join("target")).expect("link");
            write(&root.join("s.wasm"), "wasm");
        });
        assert!(
            err.starts_with(
                "component `target/s.wasm` of step `s` is under `target`, a symlink pointing outside the package"
            ),
            "{err}"
        );

        let err = refusal("models/a.xproto", "s.wasm", |root, dir| {
            write(&root.join("outside.toml"), "manifest_version = 1");
            std::fs::remove_file(dir.join(MANIFEST_FILE)).expect("rm");
            std::os::unix::fs::symlink(root.join("outside.toml"), dir.join(MANIFEST_FILE))
                .expect("link");
        });
        assert!(
            err.starts_with("manifest `syncplane.toml` is a symlink pointing outside the package"),
            "{err}"
        );
    }

    #[test]
    fn the_manifest_alone_is_read_as_from_dir_reads_it() {
        let (_root, dir) = dir_package("models/a.xproto", "s.wasm", |_, _| {});
        let manifest = ServicePackage::read_manifest(&dir).expect("manifest");
        assert_eq!(manifest.service.name, "x");
        let err = refusal("models/a.xproto", "s.wasm", |root, dir| {
            sparse(&root.join("zeros"), 1 << 30);
            std::fs::remove_file(dir.join(MANIFEST_FILE)).expect("rm");
            std::os::unix::fs::symlink("../zeros", dir.join(MANIFEST_FILE)).expect("link");
        });
        assert!(
            err.starts_with("manifest `syncplane.toml` is a symlink pointing outside"),
            "{err}"
        );
    }

    #[test]
    fn a_directory_package_refuses_files_over_their_limit_without_reading_them() {
        let err = refusal("models/big.xproto", "s.wasm", |_, dir| {
            sparse(
                &dir.join("models/big.xproto"),
                5 * (1 << 20) + (1 << 20) / 5,
            );
        });
        assert_eq!(
            err,
            "xproto file `models/big.xproto` is 5.2 MiB; the limit is 1 MiB"
        );

        let err = refusal("models/a.xproto", "s.wasm", |_, dir| {
            write(&dir.join("models/a.xproto"), "message A {}");
            sparse(&dir.join("s.wasm"), 33 << 20);
        });
        assert_eq!(
            err,
            "component `s.wasm` of step `s` is 33 MiB; the limit is 32 MiB"
        );

        let err = refusal("models/a.xproto", "s.wasm", |_, dir| {
            let mut text = std::fs::read_to_string(dir.join(MANIFEST_FILE)).expect("manifest");
            text.push_str(&"# a comment making the manifest long\n".repeat(2000));
            write(&dir.join(MANIFEST_FILE), &text);
        });
        assert!(
            err.starts_with("manifest `syncplane.toml` is ")
                && err.ends_with("; the limit is 64 KiB"),
            "{err}"
        );

        let err = refusal("models/a.xproto", "s.wasm", |_, dir| {
            std::fs::create_dir(dir.join("models/a.xproto")).expect("dir");
        });
        assert_eq!(err, "xproto file `models/a.xproto` is not a regular file");

        let (_root, dir) = dir_package("models/missing.xproto", "s.wasm", |_, _| {});
        let err = ServicePackage::from_dir(&dir).expect_err("missing");
        assert_eq!(
            err.to_string(),
            format!(
                "cannot read xproto file `models/missing.xproto` in {}",
                dir.display()
            )
        );
        let source = std::error::Error::source(&err).expect("source");
        assert!(source.to_string().contains("No such file"), "{source}");
    }

    #[test]
    fn a_directory_package_is_refused_once_its_files_together_are_too_large() {
        let (_root, dir) = dir_package("models/a.xproto", "s.wasm", |_, dir| {
            write(&dir.join("models/a.xproto"), "message A {}");
            sparse(&dir.join("s.wasm"), 30 << 20);
            let mut text = std::fs::read_to_string(dir.join(MANIFEST_FILE)).expect("manifest");
            // Five components of 30 MiB: each within its limit, 150 MiB
            // together.
            for step in ["t", "u", "v", "w"] {
                sparse(&dir.join(format!("{step}.wasm")), 30 << 20);
                text.push_str(&format!(
                    "[[sync_steps]]\nname = \"{step}\"\ncomponent = \"{step}.wasm\"\nobserves = \"A\"\n"
                ));
            }
            write(&dir.join(MANIFEST_FILE), &text);
        });
        let err = ServicePackage::from_dir(&dir).expect_err("too large");
        assert!(matches!(err, Error::PackageTooLarge { .. }), "{err:?}");
        assert!(err.to_string().ends_with("; the limit is 128 MiB"), "{err}");
    }

    fn uploaded(component_path: &str, component: Vec<u8>) -> ServicePackage {
        let manifest = Manifest::parse(
            "m.toml",
            &format!(
                "manifest_version = 1\n[service]\nname = \"x\"\nversion = \"1\"\nxproto = [\"models/a.xproto\"]\n\
                 [[sync_steps]]\nname = \"s\"\ncomponent = {component_path:?}\nobserves = \"A\"\n"
            ),
        )
        .expect("manifest");
        ServicePackage {
            manifest,
            xproto: BTreeMap::from([("models/a.xproto".to_owned(), "message A {}".to_owned())]),
            model_deps: None,
            components: BTreeMap::from([("s".to_owned(), component)]),
        }
    }

    #[test]
    fn uploaded_packages_are_checked_like_directories() {
        assert!(
            uploaded("s.wasm", b"wasm".to_vec())
                .check_paths_and_sizes()
                .is_ok()
        );
        let err = uploaded("target/../../x.wasm", Vec::new())
            .check_paths_and_sizes()
            .expect_err("escapes");
        assert_eq!(
            err.to_string(),
            "component `target/../../x.wasm` of step `s` leaves the package directory"
        );
        let err = uploaded("s.wasm", vec![0; 33 << 20])
            .check_paths_and_sizes()
            .expect_err("too large");
        assert_eq!(
            err.to_string(),
            "component `s.wasm` of step `s` is 33 MiB; the limit is 32 MiB"
        );

        let mut extra = uploaded("s.wasm", Vec::new());
        extra.components.insert("t".into(), Vec::new());
        let err = extra.check_paths_and_sizes().expect_err("extra component");
        assert!(err.to_string().contains("a component for `t`"), "{err}");

        let mut extra = uploaded("s.wasm", Vec::new());
        extra.xproto.insert("../b.xproto".into(), String::new());
        let err = extra.check_paths_and_sizes().expect_err("extra xproto");
        assert!(
            err.to_string()
                .contains("xproto file `../b.xproto` is in the package but not in its manifest"),
            "{err}"
        );

        let mut deps = uploaded("s.wasm", Vec::new());
        deps.model_deps = Some(" ".repeat(2 << 20));
        let err = deps.check_paths_and_sizes().expect_err("big deps");
        assert!(
            err.to_string()
                .starts_with("model-deps file `model-deps` is 2 MiB"),
            "{err}"
        );

        let mut total = uploaded("s.wasm", vec![0; 30 << 20]);
        for step in ["t", "u", "v", "w"] {
            total.manifest.sync_steps.push(SyncStepSection {
                name: step.into(),
                component: format!("{step}.wasm"),
                observes: Observes(vec!["A".into()]),
            });
            total.components.insert(step.into(), vec![0; 30 << 20]);
        }
        let err = total.check_paths_and_sizes().expect_err("total");
        assert!(matches!(err, Error::PackageTooLarge { .. }), "{err:?}");
    }

    #[test]
    fn a_manifest_written_back_as_toml_is_no_larger_than_its_file() {
        for (name, text) in [
            (
                "hello-world",
                include_str!("../../../guests/hello-world/syncplane.toml"),
            ),
            (
                "powerdns",
                include_str!("../../../guests/powerdns/syncplane.toml"),
            ),
        ] {
            let manifest = Manifest::parse(name, text).expect("manifest");
            let written = toml::to_string(&manifest).expect("as TOML");
            assert!(written.len() <= text.len(), "{name}: {written}");
            for file in manifest_files(&manifest) {
                file.check_path().expect("path");
            }
        }
    }
}
