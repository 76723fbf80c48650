//! Packed services: one file holding a whole service package, in the
//! shape registries store.
//!
//! `syncplane service pack DIR` writes an [OCI image layout] in one
//! (uncompressed) tar, by convention `NAME-VERSION.spkg`:
//!
//! - `oci-layout` and `index.json`, which names one image manifest (tagged
//!   with the service's version);
//! - `blobs/sha256/<digest>` for every blob, named by its SHA-256: the image
//!   manifest (artifact type [`ARTIFACT_TYPE`]), a config blob with the
//!   normalized manifest ([`CONFIG_MEDIA_TYPE`]), and one layer per file of
//!   the package, titled with its path (`org.opencontainers.image.title`):
//!   the manifest as its author wrote it, xproto files, the model-deps file,
//!   components (`application/wasm`) and the TOSCA samples under
//!   `samples/`.
//!
//! The image manifest's digest is the package's identity: the same in the
//! file and in any OCI registry it is pushed to, and the same every time a
//! directory is packed (entries sorted, no times, owners or modes of the
//! packing machine, layers in path order). It is what signatures sign.
//!
//! Reading a file trusts nothing in it: only regular files, each blob's
//! content must hash to its name, the manifest must be the one `index.json`
//! names, every layer it lists must be there and no other blob may be,
//! titles are checked as manifest paths are (relative, normalized, inside),
//! each file within the limit of its kind and all within the package's
//! total, and the tar stream is capped before anything is buffered.
//!
//! [OCI image layout]: https://github.com/opencontainers/image-spec/blob/main/image-layout.md

use std::collections::BTreeMap;
use std::io::Read;

use serde::{Deserialize, Serialize};
use serde_json::json;
use syncplane_runtime::cache::digest;

use crate::error::{Error, Result};
use crate::manifest::{MANIFEST_FILE, Manifest};
use crate::package::{ServicePackage, manifest_files};
use crate::package_files::{
    FileProblem, MAX_PACKAGE_FILES_BYTES, MAX_SAMPLE_BYTES, PackageDir, PackageFile, PackageSource,
};
use crate::signing::Signature;

mod layout;
mod signatures;

pub use layout::{Blob, Layout, config_identity};
pub use signatures::{MAX_SIGNATURES, SIGNATURE_ARTIFACT_TYPE, SIGNATURE_MEDIA_TYPE, Signed};

/// The OCI artifact type of a packed service.
pub const ARTIFACT_TYPE: &str = "application/vnd.syncplane.service.v1";
/// The media type of its config blob: the normalized manifest as JSON.
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.syncplane.service.config.v1+json";
/// The media type of an OCI image manifest.
pub const IMAGE_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// The media type of an OCI image index.
pub const IMAGE_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// The annotation that titles a layer with its path.
const TITLE: &str = "org.opencontainers.image.title";
/// The annotation that tags a manifest in `index.json`.
const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// The extension of a packed service.
pub const ARCHIVE_EXT: &str = "spkg";
/// The directory of TOSCA samples in a service directory and a package.
pub const SAMPLES_DIR: &str = "samples";
/// The most samples a packed service carries.
pub const MAX_SAMPLES: usize = 64;
/// The most entries a packed file may have: the files a manifest can name
/// are bounded by the package's size, so this only stops a flood of empty
/// entries.
const MAX_ENTRIES: usize = 4096;
/// The largest `index.json`, image manifest or config blob.
pub const MAX_METADATA_BYTES: u64 = 1 << 20;

/// One file of a packed service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PackedFile {
    /// Its path in the archive (as the manifest names it).
    pub path: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// Its SHA-256, in hex.
    pub sha256: String,
}

/// A service read from a packed file, or packed into one.
#[derive(Debug, Clone)]
pub struct PackedService {
    /// The package, as [`ServicePackage::from_dir`] reads it.
    pub package: ServicePackage,
    /// The TOSCA samples by path (`samples/x.yaml`).
    pub samples: BTreeMap<String, String>,
    /// Every file with its size and digest, the manifest first, then in
    /// path order.
    pub files: Vec<PackedFile>,
    /// The package's identity: its image manifest's digest,
    /// `sha256:<hex>`.
    pub digest: String,
    /// The size of its image manifest in bytes.
    pub manifest_size: u64,
    /// The signatures it carries, each verified for this digest, full name
    /// and version, by key.
    pub signatures: Vec<Signature>,
}

/// `index.json` of an OCI image layout, as far as it is read.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Index {
    schema_version: u32,
    manifests: Vec<Descriptor>,
}

/// An OCI image manifest, as far as it is read.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ImageManifest {
    schema_version: u32,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    artifact_type: Option<String>,
    config: Descriptor,
    layers: Vec<Descriptor>,
    #[serde(default)]
    subject: Option<Descriptor>,
}

/// An OCI content descriptor.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    media_type: String,
    digest: String,
    size: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    annotations: BTreeMap<String, String>,
}

impl PackedService {
    /// Packs the service directory `dir` (whose components must be built):
    /// the file's bytes and what it holds.
    ///
    /// # Errors
    ///
    /// As [`ServicePackage::from_dir`], and for a sample that is too large,
    /// not UTF-8 or one too many.
    pub fn pack(dir: &std::path::Path) -> Result<(Vec<u8>, PackedService)> {
        let mut files = PackageDir::open(dir)?;
        let manifest_text = files.read_text(&PackageFile::Manifest)?;
        let shown = dir.join(MANIFEST_FILE).display().to_string();
        let manifest = Manifest::parse(&shown, &manifest_text)?;
        let mut contents: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        contents.insert(MANIFEST_FILE.to_owned(), manifest_text.into_bytes());
        for file in manifest_files(&manifest) {
            let bytes = files.read(&file)?;
            contents.insert(file.path().to_owned(), bytes);
        }
        for path in sample_paths(dir)? {
            let bytes = files.read(&PackageFile::Sample(path.clone()))?;
            contents.insert(path, bytes);
        }
        // Checked as an install would, before anything is written.
        ServicePackage::from_source(
            manifest.clone(),
            &mut Entries {
                entries: &contents,
                total: 0,
            },
        )?
        .check_imports()?;
        let layout = image_layout(&manifest, &contents)?;
        let archive = write_tar(&layout)?;
        let packed = PackedService::unpack(&archive)?;
        Ok((archive, packed))
    }

    /// Reads a packed file, checking everything the [module](self) says.
    ///
    /// # Errors
    ///
    /// [`Error::Archive`] for a file that is not an OCI image layout in a
    /// tar, has an entry that is not a regular file, a blob that does not
    /// match its name, a missing or extra blob, or lacks a file its
    /// manifest names; [`Error::PackageFile`] and [`Error::PackageTooLarge`]
    /// as for a directory.
    pub fn unpack(archive: &[u8]) -> Result<PackedService> {
        let mut entries = read_entries(archive)?;
        let index: Index = metadata(&mut entries, "index.json")?;
        entries.remove("oci-layout");
        if index.schema_version != 2 {
            return Err(archive_error(format!(
                "its index.json has schemaVersion {}, not 2",
                index.schema_version
            )));
        }
        let mut blobs = take_blobs(entries)?;
        // One package and its signatures (referrers); anything else is
        // refused.
        let mut packages = Vec::new();
        let mut referrers = Vec::new();
        for descriptor in &index.manifests {
            let manifest = signatures::peek_manifest(&blobs, descriptor)?;
            match (manifest.artifact_type.as_deref(), &manifest.subject) {
                (Some(ARTIFACT_TYPE), None) => packages.push(descriptor),
                (Some(SIGNATURE_ARTIFACT_TYPE), Some(_)) => {
                    referrers.push((descriptor.clone(), manifest));
                }
                (kind, _) => {
                    return Err(archive_error(format!(
                        "its index.json names the manifest {} of artifactType {}, which is neither a syncplane service nor a signature of one",
                        descriptor.digest,
                        kind.unwrap_or("(none)")
                    )));
                }
            }
        }
        let [descriptor] = packages.as_slice() else {
            return Err(archive_error(format!(
                "its index.json names {} services; a packed service has exactly one",
                packages.len()
            )));
        };
        let descriptor = *descriptor;
        let manifest_bytes = take_blob(&mut blobs, descriptor, "its image manifest")?;
        check_metadata_size(descriptor.size, "its image manifest")?;
        let image: ImageManifest = serde_json::from_slice(&manifest_bytes)
            .map_err(|e| archive_error(format!("its image manifest is not valid: {e}")))?;
        if image.schema_version != 2
            || image
                .media_type
                .as_deref()
                .is_some_and(|m| m != IMAGE_MANIFEST)
            || image.artifact_type.as_deref() != Some(ARTIFACT_TYPE)
        {
            return Err(archive_error(format!(
                "its image manifest is not a syncplane service (artifactType {ARTIFACT_TYPE})"
            )));
        }
        check_metadata_size(image.config.size, "its config")?;
        take_blob(&mut blobs, &image.config, "its config")?;
        let mut contents: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        for layer in &image.layers {
            let Some(title) = layer.annotations.get(TITLE) else {
                return Err(archive_error(format!(
                    "its layer {} has no title (annotation {TITLE})",
                    layer.digest
                )));
            };
            let file = PackageFile::Sample(title.clone());
            file.check_path()?;
            let bytes = take_blob(&mut blobs, layer, &format!("the layer `{title}`"))?;
            if contents.insert(title.clone(), bytes).is_some() {
                return Err(archive_error(format!("it holds `{title}` twice")));
            }
        }
        let package = package_of(&contents)?;
        let signatures = signatures::take_signatures(
            &mut blobs,
            &referrers,
            descriptor,
            &package.manifest.full_name(),
            &package.manifest.service.version,
        )?;
        if let Some(digest) = blobs.keys().next() {
            return Err(archive_error(format!(
                "it holds the blob {digest}, which its manifest does not list"
            )));
        }
        let samples = samples_of(&contents, &package.manifest)?;
        let mut files = vec![packed_file(MANIFEST_FILE, &contents[MANIFEST_FILE])];
        files.extend(
            contents
                .iter()
                .filter(|(path, _)| path.as_str() != MANIFEST_FILE)
                .map(|(path, bytes)| packed_file(path, bytes)),
        );
        Ok(PackedService {
            package,
            samples,
            files,
            digest: descriptor.digest.clone(),
            manifest_size: descriptor.size,
            signatures,
        })
    }
}

/// The package the files of a packed service make.
fn package_of(contents: &BTreeMap<String, Vec<u8>>) -> Result<ServicePackage> {
    let manifest_bytes = contents
        .get(MANIFEST_FILE)
        .ok_or_else(|| archive_error(format!("it has no {MANIFEST_FILE}")))?;
    PackageFile::Manifest.check_size(len(manifest_bytes))?;
    let manifest_text = String::from_utf8(manifest_bytes.clone())
        .map_err(|_| PackageFile::Manifest.refused(FileProblem::NotUtf8))?;
    let manifest = Manifest::parse(&format!("(package)/{MANIFEST_FILE}"), &manifest_text)?;
    ServicePackage::from_source(
        manifest,
        &mut Entries {
            entries: contents,
            total: 0,
        },
    )
}

/// The samples among the files; any other file the manifest does not name
/// is refused.
fn samples_of(
    contents: &BTreeMap<String, Vec<u8>>,
    manifest: &Manifest,
) -> Result<BTreeMap<String, String>> {
    let named = manifest_files(manifest);
    let mut samples = BTreeMap::new();
    for (path, bytes) in contents {
        if path == MANIFEST_FILE || named.iter().any(|f| f.path() == path) {
            continue;
        }
        if !is_sample(path) {
            return Err(archive_error(format!(
                "it holds `{path}`, which is neither named by its manifest nor a sample under {SAMPLES_DIR}/"
            )));
        }
        let file = PackageFile::Sample(path.clone());
        file.check_size(len(bytes))?;
        let text =
            String::from_utf8(bytes.clone()).map_err(|_| file.refused(FileProblem::NotUtf8))?;
        samples.insert(path.clone(), text);
    }
    if samples.len() > MAX_SAMPLES {
        return Err(archive_error(format!(
            "it holds {} samples; the limit is {MAX_SAMPLES}",
            samples.len()
        )));
    }
    Ok(samples)
}

fn check_metadata_size(size: u64, what: &str) -> Result<()> {
    if size > MAX_METADATA_BYTES {
        return Err(archive_error(format!(
            "{what} is {size} bytes; the limit is {MAX_METADATA_BYTES}"
        )));
    }
    Ok(())
}

/// Takes a small JSON file of the layout out of `entries`.
fn metadata<T: serde::de::DeserializeOwned>(
    entries: &mut BTreeMap<String, Vec<u8>>,
    name: &str,
) -> Result<T> {
    let bytes = entries.remove(name).ok_or_else(|| {
        archive_error(format!(
            "it has no {name}: it is not an OCI image layout written by `syncplane service pack`"
        ))
    })?;
    check_metadata_size(len(&bytes), name)?;
    serde_json::from_slice(&bytes)
        .map_err(|e| archive_error(format!("its {name} is not valid: {e}")))
}

/// The blobs by digest (`sha256:<hex>`), each checked against its name;
/// any other entry is refused.
fn take_blobs(entries: BTreeMap<String, Vec<u8>>) -> Result<BTreeMap<String, Vec<u8>>> {
    let mut blobs = BTreeMap::new();
    for (path, bytes) in entries {
        let Some(hex_name) = path.strip_prefix("blobs/sha256/") else {
            return Err(archive_error(format!(
                "it holds `{path}`, which an OCI image layout does not have"
            )));
        };
        let actual = digest(&bytes);
        if actual != hex_name {
            return Err(archive_error(format!(
                "the blob `{path}` does not match its digest: the file is damaged or was changed"
            )));
        }
        blobs.insert(format!("sha256:{actual}"), bytes);
    }
    Ok(blobs)
}

/// Takes the blob `descriptor` names, checking its size.
fn take_blob(
    blobs: &mut BTreeMap<String, Vec<u8>>,
    descriptor: &Descriptor,
    what: &str,
) -> Result<Vec<u8>> {
    let bytes = blobs.remove(&descriptor.digest).ok_or_else(|| {
        archive_error(format!(
            "{what} ({}) is not in it (or is listed twice)",
            descriptor.digest
        ))
    })?;
    if len(&bytes) != descriptor.size {
        return Err(archive_error(format!(
            "{what} is {} bytes, not the {} its descriptor says",
            bytes.len(),
            descriptor.size
        )));
    }
    Ok(bytes)
}

fn media_type(path: &str) -> &'static str {
    if path == MANIFEST_FILE {
        "application/vnd.syncplane.manifest.v1+toml"
    } else if path.ends_with(".wasm") {
        "application/wasm"
    } else if path.ends_with(".xproto") {
        "application/vnd.syncplane.xproto"
    } else if is_sample(path) {
        "application/vnd.syncplane.tosca+yaml"
    } else {
        "application/octet-stream"
    }
}

/// The files of an OCI image layout holding `contents`: path → bytes.
fn image_layout(
    manifest: &Manifest,
    contents: &BTreeMap<String, Vec<u8>>,
) -> Result<BTreeMap<String, Vec<u8>>> {
    let json_error = |e: serde_json::Error| archive_error(format!("cannot write it: {e}"));
    let mut layout = BTreeMap::new();
    let mut add_blob = |bytes: Vec<u8>| {
        let hex = digest(&bytes);
        let size = len(&bytes);
        layout.insert(format!("blobs/sha256/{hex}"), bytes);
        (format!("sha256:{hex}"), size)
    };
    let mut config = manifest.clone();
    // How it was built on the publisher's machine is no part of what it is.
    config.build = None;
    let config = serde_json::to_vec(&json!({
        "name": manifest.service.name,
        "version": manifest.service.version,
        "manifest": config,
    }))
    .map_err(json_error)?;
    let (config_digest, config_size) = add_blob(config);
    let mut layers = Vec::new();
    // The manifest first, then the other files in path order.
    let mut ordered: Vec<&String> = contents.keys().collect();
    ordered.sort_by_key(|p| (p.as_str() != MANIFEST_FILE, p.as_str()));
    for path in ordered {
        let (digest, size) = add_blob(contents[path].clone());
        layers.push(Descriptor {
            media_type: media_type(path).to_owned(),
            digest,
            size,
            annotations: BTreeMap::from([(TITLE.to_owned(), path.clone())]),
        });
    }
    let image = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": IMAGE_MANIFEST,
        "artifactType": ARTIFACT_TYPE,
        "config": {
            "mediaType": CONFIG_MEDIA_TYPE,
            "digest": config_digest,
            "size": config_size,
        },
        "layers": layers,
    }))
    .map_err(json_error)?;
    let (image_digest, image_size) = add_blob(image);
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": IMAGE_INDEX,
        "manifests": [{
            "mediaType": IMAGE_MANIFEST,
            "artifactType": ARTIFACT_TYPE,
            "digest": image_digest,
            "size": image_size,
            "annotations": { REF_NAME: manifest.service.version },
        }],
    }))
    .map_err(json_error)?;
    layout.insert("index.json".to_owned(), index);
    layout.insert(
        "oci-layout".to_owned(),
        br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
    );
    Ok(layout)
}

/// The files of an unpacked archive, read as a package directory is.
struct Entries<'a> {
    entries: &'a BTreeMap<String, Vec<u8>>,
    total: u64,
}

impl PackageSource for Entries<'_> {
    fn read(&mut self, file: &PackageFile) -> Result<Vec<u8>> {
        file.check_path()?;
        let bytes = self
            .entries
            .get(file.path())
            .ok_or_else(|| archive_error(format!("it lacks the {file} that its manifest names")))?;
        file.check_size(len(bytes))?;
        self.total = self.total.saturating_add(len(bytes));
        if self.total > MAX_PACKAGE_FILES_BYTES {
            return Err(Error::PackageTooLarge {
                bytes: self.total,
                limit: MAX_PACKAGE_FILES_BYTES,
            });
        }
        Ok(bytes.clone())
    }
}

fn archive_error(message: String) -> Error {
    Error::Archive(message)
}

fn len(bytes: &[u8]) -> u64 {
    u64::try_from(bytes.len()).unwrap_or(u64::MAX)
}

fn packed_file(path: &str, bytes: &[u8]) -> PackedFile {
    PackedFile {
        path: path.to_owned(),
        bytes: len(bytes),
        sha256: digest(bytes),
    }
}

fn is_sample(path: &str) -> bool {
    path.strip_prefix(SAMPLES_DIR)
        .and_then(|rest| rest.strip_prefix('/'))
        .is_some_and(|name| {
            !name.contains('/') && (name.ends_with(".yaml") || name.ends_with(".yml"))
        })
}

/// The TOSCA samples of a service directory: `samples/*.yaml` and
/// `samples/*.yml`, sorted.
fn sample_paths(dir: &std::path::Path) -> Result<Vec<String>> {
    let samples = dir.join(SAMPLES_DIR);
    let Ok(read) = std::fs::read_dir(&samples) else {
        return Ok(Vec::new());
    };
    let mut paths: Vec<String> = read
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .map(|name| format!("{SAMPLES_DIR}/{name}"))
        .filter(|path| is_sample(path))
        .collect();
    paths.sort();
    if paths.len() > MAX_SAMPLES {
        return Err(archive_error(format!(
            "{} has {} samples; a package carries at most {MAX_SAMPLES}",
            samples.display(),
            paths.len()
        )));
    }
    Ok(paths)
}

/// A reproducible tar of `files`: sorted, `oci-layout` and `index.json`
/// first, no times or owners.
fn write_tar(files: &BTreeMap<String, Vec<u8>>) -> Result<Vec<u8>> {
    let io = |e: std::io::Error| archive_error(format!("cannot write it: {e}"));
    let mut builder = tar::Builder::new(Vec::new());
    builder.mode(tar::HeaderMode::Deterministic);
    let mut ordered: Vec<(&String, &Vec<u8>)> = files.iter().collect();
    ordered.sort_by_key(|(p, _)| {
        (
            !matches!(p.as_str(), "oci-layout" | "index.json"),
            p.as_str(),
        )
    });
    for (path, bytes) in ordered {
        let mut header = tar::Header::new_ustar();
        header.set_size(len(bytes));
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(&mut header, path, bytes.as_slice())
            .map_err(io)?;
    }
    builder.into_inner().map_err(io)
}

/// The regular files of a tar (gzip-compressed or not) by path, within
/// the package's limits.
fn read_entries(archive: &[u8]) -> Result<BTreeMap<String, Vec<u8>>> {
    // The stream may hold the package's files, the layout's metadata and
    // the tar headers; anything beyond is refused, not buffered. The cap
    // also stops a small gzip file that inflates to gigabytes.
    let cap = MAX_PACKAGE_FILES_BYTES
        + MAX_SAMPLE_BYTES * MAX_SAMPLES as u64
        + 3 * MAX_METADATA_BYTES
        + (MAX_ENTRIES as u64 + 2) * 1024;
    if archive.starts_with(&[0x1f, 0x8b]) {
        read_tar(flate2::read::GzDecoder::new(archive).take(cap + 1), cap)
    } else {
        read_tar(archive.take(cap + 1), cap)
    }
}

fn read_tar(stream: impl Read, cap: u64) -> Result<BTreeMap<String, Vec<u8>>> {
    let not_archive = |e: std::io::Error| {
        archive_error(format!(
            "it is not a tar file written by `syncplane service pack` ({e})"
        ))
    };
    let mut tar = tar::Archive::new(stream);
    let mut entries = BTreeMap::new();
    let mut total: u64 = 0;
    for entry in tar.entries().map_err(not_archive)? {
        let mut entry = entry.map_err(not_archive)?;
        let path = String::from_utf8(entry.path_bytes().into_owned())
            .map_err(|_| archive_error("an entry's path is not UTF-8".into()))?;
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            continue;
        }
        if !kind.is_file() {
            return Err(archive_error(format!(
                "its entry `{path}` is not a regular file ({kind:?})"
            )));
        }
        // The same path checks as a manifest's, and a size within the
        // largest any package file may have, before reading it.
        let file = PackageFile::Component {
            step: String::new(),
            path: path.clone(),
        };
        file.check_path()?;
        let size = entry.header().size().map_err(not_archive)?;
        file.check_size(size)
            .map_err(|_| archive_error(format!("its entry `{path}` is {size} bytes")))?;
        total = total.saturating_add(size);
        if total > cap || entries.len() >= MAX_ENTRIES {
            return Err(Error::PackageTooLarge {
                bytes: total,
                limit: MAX_PACKAGE_FILES_BYTES,
            });
        }
        let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        entry
            .by_ref()
            .take(size)
            .read_to_end(&mut bytes)
            .map_err(not_archive)?;
        if entries.insert(path.clone(), bytes).is_some() {
            return Err(archive_error(format!("it holds `{path}` twice")));
        }
    }
    Ok(entries)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    const MANIFEST: &str = r#"# A comment that packing keeps.
manifest_version = 1

[service]
name = "tiny"
version = "1.2.3"
xproto = ["models/tiny.xproto"]

[[sync_steps]]
name = "sync_tiny"
component = "components/sync_tiny.wasm"
observes = "Tiny"
"#;

    pub(crate) fn service_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::create_dir_all(root.join("models")).expect("mkdir");
        std::fs::create_dir_all(root.join("components")).expect("mkdir");
        std::fs::create_dir_all(root.join("samples")).expect("mkdir");
        std::fs::write(root.join(MANIFEST_FILE), MANIFEST).expect("write");
        std::fs::write(
            root.join("models/tiny.xproto"),
            "option app_label = \"tiny\";\nmessage Tiny (XOSBase) { required string name = 1; }\n",
        )
        .expect("write");
        std::fs::write(root.join("components/sync_tiny.wasm"), b"\0asm-ish").expect("write");
        std::fs::write(
            root.join("samples/tiny.yaml"),
            "tosca_definitions_version: x\n",
        )
        .expect("write");
        std::fs::write(root.join("samples/notes.txt"), "not a sample").expect("write");
        dir
    }

    #[test]
    fn a_packed_service_unpacks_to_the_same_package_with_its_samples() {
        let dir = service_dir();
        let (archive, packed) = PackedService::pack(dir.path()).expect("pack");
        assert_eq!(
            packed.package,
            ServicePackage::from_dir(dir.path()).expect("dir")
        );
        assert_eq!(
            packed.samples.keys().collect::<Vec<_>>(),
            ["samples/tiny.yaml"]
        );
        let paths: Vec<&str> = packed.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                MANIFEST_FILE,
                "components/sync_tiny.wasm",
                "models/tiny.xproto",
                "samples/tiny.yaml"
            ]
        );
        let again = PackedService::unpack(&archive).expect("unpack");
        assert_eq!(again.package, packed.package);
        assert!(again.digest.starts_with("sha256:"), "{}", again.digest);
        // Reproducible: packing again gives the same bytes.
        let (second, _) = PackedService::pack(dir.path()).expect("pack");
        assert_eq!(second, archive);
        // The manifest travels as written, comment and all.
        let entries = read_entries(&archive).expect("entries");
        let manifest = &entries[&blob_titled(&entries, MANIFEST_FILE)];
        assert!(
            String::from_utf8_lossy(manifest).starts_with("# A comment"),
            "the manifest is kept as written"
        );
    }

    fn tar_of(entries: &BTreeMap<String, Vec<u8>>) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, bytes) in entries {
            let mut header = tar::Header::new_ustar();
            header.set_size(len(bytes));
            header.set_entry_type(tar::EntryType::Regular);
            builder
                .append_data(&mut header, path, bytes.as_slice())
                .expect("append");
        }
        builder.into_inner().expect("tar")
    }

    fn refusal(archive: &[u8]) -> String {
        PackedService::unpack(archive)
            .expect_err("refused")
            .to_string()
    }

    fn blob_titled(entries: &BTreeMap<String, Vec<u8>>, title: &str) -> String {
        let index: serde_json::Value =
            serde_json::from_slice(&entries["index.json"]).expect("index");
        let digest = index["manifests"][0]["digest"].as_str().expect("digest");
        let manifest: serde_json::Value = serde_json::from_slice(
            &entries[&format!("blobs/sha256/{}", &digest["sha256:".len()..])],
        )
        .expect("manifest");
        let layer = manifest["layers"]
            .as_array()
            .expect("layers")
            .iter()
            .find(|l| l["annotations"][TITLE] == title)
            .expect("layer");
        format!(
            "blobs/sha256/{}",
            &layer["digest"].as_str().expect("digest")["sha256:".len()..]
        )
    }

    #[test]
    fn a_changed_extra_or_missing_blob_is_refused_with_its_name() {
        let dir = service_dir();
        let (archive, _) = PackedService::pack(dir.path()).expect("pack");
        let entries = read_entries(&archive).expect("entries");
        let component = blob_titled(&entries, "components/sync_tiny.wasm");

        let mut changed = entries.clone();
        changed.insert(component.clone(), b"evil".to_vec());
        let message = refusal(&tar_of(&changed));
        assert!(
            message.contains(&format!("the blob `{component}` does not match its digest")),
            "{message}"
        );

        // A blob replaced by another that matches its own name: the
        // manifest no longer finds the original.
        let mut swapped = entries.clone();
        swapped.remove(&component);
        let evil = b"evil".to_vec();
        swapped.insert(format!("blobs/sha256/{}", digest(&evil)), evil);
        let message = refusal(&tar_of(&swapped));
        assert!(
            message.contains("the layer `components/sync_tiny.wasm`")
                && message.contains("is not in it"),
            "{message}"
        );

        let mut extra = entries.clone();
        extra.insert("run.sh".into(), b"#!/bin/sh".to_vec());
        let message = refusal(&tar_of(&extra));
        assert!(
            message.contains("`run.sh`, which an OCI image layout does not have"),
            "{message}"
        );

        let message = refusal(b"just some bytes");
        assert!(
            message.contains("not a tar file") || message.contains("has no index.json"),
            "{message}"
        );
    }

    #[test]
    fn the_layout_is_a_standard_oci_artifact_tagged_with_the_version() {
        let dir = service_dir();
        let (archive, packed) = PackedService::pack(dir.path()).expect("pack");
        let entries = read_entries(&archive).expect("entries");
        assert_eq!(entries["oci-layout"], br#"{"imageLayoutVersion":"1.0.0"}"#);
        let index: serde_json::Value =
            serde_json::from_slice(&entries["index.json"]).expect("index");
        assert_eq!(index["manifests"][0]["digest"], packed.digest.as_str());
        assert_eq!(
            index["manifests"][0]["annotations"][REF_NAME], "1.2.3",
            "{index}"
        );
        let manifest: serde_json::Value = serde_json::from_slice(
            &entries[&format!("blobs/sha256/{}", &packed.digest["sha256:".len()..])],
        )
        .expect("manifest");
        assert_eq!(manifest["artifactType"], ARTIFACT_TYPE);
        assert_eq!(manifest["config"]["mediaType"], CONFIG_MEDIA_TYPE);
        let wasm = manifest["layers"]
            .as_array()
            .expect("layers")
            .iter()
            .find(|l| l["annotations"][TITLE] == "components/sync_tiny.wasm")
            .expect("component layer");
        assert_eq!(wasm["mediaType"], "application/wasm");
    }

    #[test]
    fn entries_that_leave_the_package_or_are_not_files_are_refused() {
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(4);
        header.set_entry_type(tar::EntryType::Regular);
        // `append_data` refuses `..`; write the name into the header.
        header.as_gnu_mut().expect("gnu").name[..13].copy_from_slice(b"../etc/passwd");
        header.set_cksum();
        builder.append(&header, &b"root"[..]).expect("append");
        let archive = builder.into_inner().expect("tar");
        let message = refusal(&archive);
        assert!(message.contains("leaves the package"), "{message}");

        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_ustar();
        header.set_size(0);
        header.set_entry_type(tar::EntryType::Symlink);
        builder
            .append_link(&mut header, "syncplane.toml", "/etc/passwd")
            .expect("append");
        let archive = builder.into_inner().expect("tar");
        let message = refusal(&archive);
        assert!(message.contains("is not a regular file"), "{message}");
    }

    #[test]
    fn a_decompression_bomb_is_refused_without_being_buffered() {
        use flate2::Compression;
        use flate2::write::GzEncoder;
        let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
        let mut header = tar::Header::new_ustar();
        let huge = MAX_PACKAGE_FILES_BYTES * 2;
        header.set_size(huge);
        header.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(
                &mut header,
                "components/x.wasm",
                std::io::repeat(0).take(huge),
            )
            .expect("append");
        let archive = builder.into_inner().expect("tar").finish().expect("gzip");
        assert!(archive.len() < 2 << 20, "compressed: {}", archive.len());
        let message = refusal(&archive);
        assert!(message.contains("components/x.wasm"), "{message}");
    }
}
