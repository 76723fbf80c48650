//! Packed services: one file holding a whole service package.
//!
//! `syncplane service pack DIR` writes a gzip-compressed tar archive (by
//! convention `NAME-VERSION.spkg`) with the manifest as its author wrote
//! it, every file the manifest names (xproto files, the model-deps file,
//! components), the TOSCA samples under `samples/`, and [`SUMS_FILE`]: the
//! SHA-256 of every other file, in `sha256sum` format, so that
//! `tar xzf x.spkg && sha256sum -c SHA256SUMS` checks an unpacked copy.
//! Archives are reproducible: entries are sorted, with no times, owners or
//! modes of the packing machine, so the same files always give the same
//! archive and the same digest; that digest is what a marketplace signs.
//!
//! Reading an archive trusts nothing in it: only regular files, each path
//! checked as a manifest path is (relative, normalized, inside), each file
//! within the limit of its kind and all within the package's total, the
//! decompressed stream capped, and every file's digest checked against
//! [`SUMS_FILE`], which must list exactly the files there are.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::manifest::{MANIFEST_FILE, Manifest};
use crate::package::{ServicePackage, manifest_files};
use crate::package_files::{
    FileProblem, MAX_PACKAGE_FILES_BYTES, MAX_SAMPLE_BYTES, PackageDir, PackageFile, PackageSource,
};

/// The file of an archive that lists the SHA-256 of every other file.
pub const SUMS_FILE: &str = "SHA256SUMS";
/// The extension of a packed service.
pub const ARCHIVE_EXT: &str = "spkg";
/// The directory of TOSCA samples in a service directory and an archive.
pub const SAMPLES_DIR: &str = "samples";
/// The most samples a packed service carries.
pub const MAX_SAMPLES: usize = 64;
/// The most entries an archive may have: the files a manifest can name
/// are bounded by the package's size, so this only stops a flood of empty
/// entries.
const MAX_ENTRIES: usize = 4096;

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

/// A service read from an archive, or packed into one.
#[derive(Debug, Clone)]
pub struct PackedService {
    /// The package, as [`ServicePackage::from_dir`] reads it.
    pub package: ServicePackage,
    /// The TOSCA samples by path (`samples/x.yaml`).
    pub samples: BTreeMap<String, String>,
    /// Every file with its size and digest, the manifest first, then in
    /// path order; [`SUMS_FILE`] is not among them.
    pub files: Vec<PackedFile>,
    /// The SHA-256 of the whole archive, in hex.
    pub digest: String,
}

impl PackedService {
    /// Packs the service directory `dir` (whose components must be built):
    /// the archive's bytes and what it holds.
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
        let archive = write_archive(&contents)?;
        let packed = PackedService::unpack(&archive)?;
        Ok((archive, packed))
    }

    /// Reads an archive, checking everything the [module](self) says.
    ///
    /// # Errors
    ///
    /// [`Error::Archive`] for an archive that is not a gzip-compressed tar,
    /// has an entry that is not a regular file, a missing, extra or wrong
    /// digest, or lacks a file its manifest names; [`Error::PackageFile`]
    /// and [`Error::PackageTooLarge`] as for a directory.
    pub fn unpack(archive: &[u8]) -> Result<PackedService> {
        let digest = hex(&Sha256::digest(archive));
        let mut entries = read_entries(archive)?;
        let sums = entries
            .remove(SUMS_FILE)
            .ok_or_else(|| archive_error(format!("it has no {SUMS_FILE}")))?;
        check_sums(&sums, &entries)?;
        let manifest_bytes = entries
            .get(MANIFEST_FILE)
            .ok_or_else(|| archive_error(format!("it has no {MANIFEST_FILE}")))?;
        PackageFile::Manifest.check_size(len(manifest_bytes))?;
        let manifest_text = String::from_utf8(manifest_bytes.clone())
            .map_err(|_| PackageFile::Manifest.refused(FileProblem::NotUtf8))?;
        let manifest = Manifest::parse(&format!("(archive)/{MANIFEST_FILE}"), &manifest_text)?;

        let named = manifest_files(&manifest);
        let mut samples = BTreeMap::new();
        for path in entries.keys() {
            if path == MANIFEST_FILE || named.iter().any(|f| f.path() == path) {
                continue;
            }
            if !is_sample(path) {
                return Err(archive_error(format!(
                    "it holds `{path}`, which is neither named by its manifest nor a sample under {SAMPLES_DIR}/"
                )));
            }
            let file = PackageFile::Sample(path.clone());
            let bytes = &entries[path];
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
        let mut files = vec![packed_file(MANIFEST_FILE, manifest_bytes)];
        files.extend(
            entries
                .iter()
                .filter(|(path, _)| path.as_str() != MANIFEST_FILE)
                .map(|(path, bytes)| packed_file(path, bytes)),
        );
        let mut source = Entries {
            entries: &entries,
            total: 0,
        };
        let package = ServicePackage::from_source(manifest, &mut source)?;
        Ok(PackedService {
            package,
            samples,
            files,
            digest,
        })
    }
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
        sha256: hex(&Sha256::digest(bytes)),
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

/// A reproducible archive of `contents` with its [`SUMS_FILE`].
fn write_archive(contents: &BTreeMap<String, Vec<u8>>) -> Result<Vec<u8>> {
    let io = |e: std::io::Error| archive_error(format!("cannot write it: {e}"));
    let sums: String = contents
        .iter()
        .map(|(path, bytes)| format!("{}  {path}\n", hex(&Sha256::digest(bytes))))
        .collect();
    let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::default()));
    builder.mode(tar::HeaderMode::Deterministic);
    // The manifest first, so a reader sees what the package is at once.
    let mut ordered: Vec<(&str, &[u8])> = contents
        .iter()
        .map(|(p, b)| (p.as_str(), b.as_slice()))
        .collect();
    ordered.sort_by_key(|(p, _)| (*p != MANIFEST_FILE, *p));
    ordered.push((SUMS_FILE, sums.as_bytes()));
    for (path, bytes) in ordered {
        let mut header = tar::Header::new_ustar();
        header.set_size(len(bytes));
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        builder.append_data(&mut header, path, bytes).map_err(io)?;
    }
    let encoder = builder.into_inner().map_err(io)?;
    let mut out = encoder.finish().map_err(io)?;
    out.flush().map_err(io)?;
    Ok(out)
}

/// The regular files of an archive by path, within the package's limits.
fn read_entries(archive: &[u8]) -> Result<BTreeMap<String, Vec<u8>>> {
    let not_archive = |e: std::io::Error| {
        archive_error(format!(
            "it is not a gzip-compressed tar archive written by `syncplane service pack` ({e})"
        ))
    };
    // The decompressed stream may hold the package's files, their tar
    // headers and the samples; anything beyond is refused, not buffered.
    let cap = MAX_PACKAGE_FILES_BYTES
        + MAX_SAMPLE_BYTES * MAX_SAMPLES as u64
        + (MAX_ENTRIES as u64 + 2) * 1024;
    let decoder = GzDecoder::new(archive).take(cap + 1);
    let mut tar = tar::Archive::new(decoder);
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
        PackageFile::Sample(path.clone()).check_path()?;
        let size = entry.header().size().map_err(not_archive)?;
        let biggest = PackageFile::Component {
            step: String::new(),
            path: path.clone(),
        };
        if path != SUMS_FILE {
            biggest
                .check_size(size)
                .map_err(|_| archive_error(format!("its entry `{path}` is {size} bytes")))?;
        }
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

/// Checks [`SUMS_FILE`] lists every entry once, with its digest.
fn check_sums(sums: &[u8], entries: &BTreeMap<String, Vec<u8>>) -> Result<()> {
    let text = std::str::from_utf8(sums)
        .map_err(|_| archive_error(format!("its {SUMS_FILE} is not UTF-8")))?;
    let mut listed = BTreeMap::new();
    for (number, line) in text.lines().enumerate() {
        let Some((digest, path)) = line.split_once("  ") else {
            return Err(archive_error(format!(
                "line {} of its {SUMS_FILE} is not `DIGEST  PATH`",
                number + 1
            )));
        };
        if listed.insert(path, digest).is_some() {
            return Err(archive_error(format!(
                "its {SUMS_FILE} lists `{path}` twice"
            )));
        }
    }
    for (path, bytes) in entries {
        let Some(expected) = listed.remove(path.as_str()) else {
            return Err(archive_error(format!(
                "`{path}` is not listed in its {SUMS_FILE}"
            )));
        };
        if hex(&Sha256::digest(bytes)) != expected {
            return Err(archive_error(format!(
                "`{path}` does not match its digest in {SUMS_FILE}: the archive is damaged or was changed"
            )));
        }
    }
    if let Some(path) = listed.keys().next() {
        return Err(archive_error(format!(
            "its {SUMS_FILE} lists `{path}`, which it does not hold"
        )));
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
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

    fn service_dir() -> tempfile::TempDir {
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
        assert_eq!(again.digest, hex(&Sha256::digest(&archive)));
        // Reproducible: packing again gives the same bytes.
        let (second, _) = PackedService::pack(dir.path()).expect("pack");
        assert_eq!(second, archive);
        // The manifest travels as written, comment and all.
        let entries = read_entries(&archive).expect("entries");
        assert!(
            String::from_utf8_lossy(&entries[MANIFEST_FILE]).starts_with("# A comment"),
            "the manifest is kept as written"
        );
    }

    fn rewrite(archive: &[u8], change: impl FnOnce(&mut BTreeMap<String, Vec<u8>>)) -> Vec<u8> {
        let mut entries = read_entries(archive).expect("entries");
        entries.remove(SUMS_FILE);
        let sums_before: BTreeMap<String, Vec<u8>> = entries.clone();
        change(&mut entries);
        // Written with the sums of the files before the change.
        let mut with_old_sums = entries.clone();
        let sums: String = sums_before
            .iter()
            .map(|(path, bytes)| format!("{}  {path}\n", hex(&Sha256::digest(bytes))))
            .collect();
        with_old_sums.insert(SUMS_FILE.to_owned(), sums.into_bytes());
        let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::default()));
        for (path, bytes) in &with_old_sums {
            let mut header = tar::Header::new_ustar();
            header.set_size(len(bytes));
            header.set_entry_type(tar::EntryType::Regular);
            builder
                .append_data(&mut header, path, bytes.as_slice())
                .expect("append");
        }
        builder.into_inner().expect("tar").finish().expect("gzip")
    }

    fn refusal(archive: &[u8]) -> String {
        PackedService::unpack(archive)
            .expect_err("refused")
            .to_string()
    }

    #[test]
    fn a_changed_extra_or_missing_file_is_refused_with_its_name() {
        let dir = service_dir();
        let (archive, _) = PackedService::pack(dir.path()).expect("pack");

        let changed = rewrite(&archive, |e| {
            e.insert("components/sync_tiny.wasm".into(), b"evil".to_vec());
        });
        let message = refusal(&changed);
        assert!(
            message.contains("`components/sync_tiny.wasm` does not match its digest"),
            "{message}"
        );

        let extra = rewrite(&archive, |e| {
            e.insert("bin/run.sh".into(), b"#!/bin/sh".to_vec());
        });
        let message = refusal(&extra);
        assert!(message.contains("`bin/run.sh` is not listed"), "{message}");

        let missing = rewrite(&archive, |e| {
            e.remove("models/tiny.xproto");
        });
        let message = refusal(&missing);
        assert!(
            message.contains("lists `models/tiny.xproto`, which it does not hold"),
            "{message}"
        );

        let message = refusal(b"just some bytes");
        assert!(message.contains("not a gzip-compressed tar"), "{message}");
    }

    #[test]
    fn entries_that_leave_the_package_or_are_not_files_are_refused() {
        let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::default()));
        let mut header = tar::Header::new_gnu();
        header.set_size(4);
        header.set_entry_type(tar::EntryType::Regular);
        // `append_data` refuses `..`; write the name into the header.
        header.as_gnu_mut().expect("gnu").name[..13].copy_from_slice(b"../etc/passwd");
        header.set_cksum();
        builder.append(&header, &b"root"[..]).expect("append");
        let archive = builder.into_inner().expect("tar").finish().expect("gzip");
        let message = refusal(&archive);
        assert!(message.contains("leaves the package"), "{message}");

        let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::default()));
        let mut header = tar::Header::new_ustar();
        header.set_size(0);
        header.set_entry_type(tar::EntryType::Symlink);
        builder
            .append_link(&mut header, "syncplane.toml", "/etc/passwd")
            .expect("append");
        let archive = builder.into_inner().expect("tar").finish().expect("gzip");
        let message = refusal(&archive);
        assert!(message.contains("is not a regular file"), "{message}");
    }

    #[test]
    fn a_decompression_bomb_is_refused_without_being_buffered() {
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
        assert!(archive.len() < 1 << 20, "compressed: {}", archive.len());
        let message = refusal(&archive);
        assert!(message.contains("components/x.wasm"), "{message}");
    }
}
