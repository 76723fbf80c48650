//! The files of a service package: which paths a manifest may name, how
//! large each file may be, and reading them from a directory without
//! leaving it.
//!
//! Every path a manifest names (xproto files, the model-deps file,
//! components) must be relative, normalized (`models/a.xproto`, no `.` or
//! empty components, no `\`) and must not leave the package (no `..`).
//! [`PackageDir`] reads through a [`cap_std::fs::Dir`], so a symlink is
//! followed only while it stays inside the package directory; one that
//! leads out is refused by name. Each file's size is checked from its
//! metadata before it is read, and the read itself stops one byte past the
//! limit, so a file that grows meanwhile cannot make the reader buffer it.
//!
//! # Limits
//!
//! | file | limit |
//! |---|---|
//! | the manifest | [`MAX_MANIFEST_BYTES`] (64 KiB) |
//! | each xproto file | [`MAX_XPROTO_BYTES`] (1 MiB) |
//! | the model-deps file | [`MAX_MODEL_DEPS_BYTES`] (1 MiB) |
//! | each component | [`MAX_COMPONENT_BYTES`] (32 MiB) |
//! | all of them together | [`MAX_PACKAGE_FILES_BYTES`] (128 MiB) |
//!
//! The server accepts at most 192 MiB of JSON for a package, and
//! components travel in it as base64 (4 bytes for every 3), so 128 MiB of
//! files fits; the per-file limits make the error name the file that is
//! too large, before any upload.
//!
//! # Limits of the protection
//!
//! The checks guard the host and the operator's machine against a package
//! that names files it should not (`../../etc/passwd`, `/root/.ssh/id_rsa`,
//! a symlink to either). They do not judge what the files contain: a small
//! component can still be hostile, which is what the runtime's limits are
//! for. A directory the operator reads may change while it is read; a file
//! swapped for a symlink or a larger file between the check and the read is
//! still confined to the package and to its limit, because both hold for
//! the open file, not only for the name.

use std::fmt;
use std::io::Read as _;
use std::path::Path;

use cap_std::ambient_authority;
use cap_std::fs::Dir;

use crate::error::{Error, Result};
use crate::manifest::MANIFEST_FILE;

/// Largest manifest (`syncplane.toml`): 64 KiB. For an uploaded package,
/// the size of its manifest written back as TOML.
pub const MAX_MANIFEST_BYTES: u64 = 64 << 10;
/// Largest xproto file: 1 MiB each.
pub const MAX_XPROTO_BYTES: u64 = 1 << 20;
/// Largest model-deps file: 1 MiB.
pub const MAX_MODEL_DEPS_BYTES: u64 = 1 << 20;
/// Largest component: 32 MiB each.
pub const MAX_COMPONENT_BYTES: u64 = 32 << 20;
/// Largest TOSCA sample (`samples/*.yaml`) in a packed service: 1 MiB each.
pub const MAX_SAMPLE_BYTES: u64 = 1 << 20;
/// Largest package, all its files together: 128 MiB (nine Python steps of
/// about 13.5 MiB, each embedding the interpreter), which as JSON (base64
/// components) fits in the 192 MiB the server accepts.
pub const MAX_PACKAGE_FILES_BYTES: u64 = 128 << 20;

/// One file of a service package, named as its manifest names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PackageFile {
    /// The manifest, [`MANIFEST_FILE`].
    Manifest,
    /// An xproto file.
    Xproto(String),
    /// The model-deps file.
    ModelDeps(String),
    /// The component of a step (sync step, event step, pull step or model
    /// policy).
    Component {
        /// The step's name.
        step: String,
        /// The component's path.
        path: String,
    },
    /// A TOSCA sample shipped with a packed service (`samples/*.yaml`).
    Sample(String),
}

impl PackageFile {
    /// The file's path, relative to the package directory.
    pub fn path(&self) -> &str {
        match self {
            PackageFile::Manifest => MANIFEST_FILE,
            PackageFile::Xproto(path)
            | PackageFile::ModelDeps(path)
            | PackageFile::Sample(path)
            | PackageFile::Component { path, .. } => path,
        }
    }

    /// The largest this file may be, in bytes.
    pub fn limit(&self) -> u64 {
        match self {
            PackageFile::Manifest => MAX_MANIFEST_BYTES,
            PackageFile::Xproto(_) => MAX_XPROTO_BYTES,
            PackageFile::ModelDeps(_) => MAX_MODEL_DEPS_BYTES,
            PackageFile::Component { .. } => MAX_COMPONENT_BYTES,
            PackageFile::Sample(_) => MAX_SAMPLE_BYTES,
        }
    }

    /// Checks the file's path is relative, normalized and inside the
    /// package.
    ///
    /// # Errors
    ///
    /// [`Error::PackageFile`] saying what is wrong with the path.
    pub fn check_path(&self) -> Result<()> {
        path_problem(self.path()).map_or(Ok(()), |problem| Err(self.refused(problem)))
    }

    /// Checks `bytes` is within the file's limit.
    ///
    /// # Errors
    ///
    /// [`Error::PackageFile`] with [`FileProblem::TooLarge`].
    pub fn check_size(&self, bytes: u64) -> Result<()> {
        let limit = self.limit();
        if bytes > limit {
            return Err(self.refused(FileProblem::TooLarge { bytes, limit }));
        }
        Ok(())
    }

    pub(crate) fn refused(&self, problem: FileProblem) -> Error {
        Error::PackageFile {
            file: self.clone(),
            problem,
        }
    }
}

impl fmt::Display for PackageFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PackageFile::Manifest => write!(f, "manifest `{MANIFEST_FILE}`"),
            PackageFile::Xproto(path) => write!(f, "xproto file `{path}`"),
            PackageFile::ModelDeps(path) => write!(f, "model-deps file `{path}`"),
            PackageFile::Sample(path) => write!(f, "TOSCA sample `{path}`"),
            PackageFile::Component { step, path } => {
                write!(f, "component `{path}` of step `{step}`")
            }
        }
    }
}

/// What is wrong with a package file; displayed after the file's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileProblem {
    /// The path is empty.
    Empty,
    /// The path is absolute.
    Absolute,
    /// The path has a `..` component.
    LeavesPackage,
    /// The path has a `.` or empty component, a trailing `/`, a `\` or a
    /// NUL.
    NotNormalized,
    /// The path is or goes through a symlink that leads out of the package.
    SymlinkOutside {
        /// The symlink: the path itself or one of its parent directories.
        link: String,
    },
    /// The path names a directory, a device, a FIFO or a socket.
    NotAFile,
    /// The file is over its limit.
    TooLarge {
        /// Its size in bytes (at least this many, if it grew while read).
        bytes: u64,
        /// The limit in bytes.
        limit: u64,
    },
    /// A text file (manifest, xproto, model-deps) is not UTF-8.
    NotUtf8,
}

impl fmt::Display for FileProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileProblem::Empty => f.write_str("is an empty path"),
            FileProblem::Absolute => f.write_str(
                "is an absolute path; paths in a manifest are relative to its directory",
            ),
            FileProblem::LeavesPackage => f.write_str("leaves the package directory"),
            FileProblem::NotNormalized => f.write_str(
                "is not a normalized relative path: write `dir/file`, without `.` or empty components, a trailing `/` or `\\`",
            ),
            FileProblem::SymlinkOutside { link } => write!(
                f,
                "{} a symlink pointing outside the package (symlinks must be relative and stay inside it)",
                if link.is_empty() {
                    "is".to_owned()
                } else {
                    format!("is under `{link}`,")
                }
            ),
            FileProblem::NotAFile => f.write_str("is not a regular file"),
            FileProblem::TooLarge { bytes, limit } => {
                let (size, max) = (human_size(*bytes), human_size(*limit));
                if size == max {
                    write!(f, "is {bytes} bytes; the limit is {max} ({limit} bytes)")
                } else {
                    write!(f, "is {size}; the limit is {max}")
                }
            }
            FileProblem::NotUtf8 => f.write_str("is not UTF-8 text"),
        }
    }
}

/// `5.2 MiB`, `64 KiB`, `900 bytes`: one decimal, none when it is zero.
pub(crate) fn human_size(bytes: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (unit, name) in UNITS {
        if bytes >= unit {
            // Only one decimal is shown: the float's rounding cannot matter.
            let value = bytes as f64 / unit as f64;
            let text = format!("{value:.1}");
            let text = text.strip_suffix(".0").unwrap_or(&text);
            return format!("{text} {name}");
        }
    }
    format!("{bytes} bytes")
}

/// What is wrong with `path` as a package-relative path, if anything.
fn path_problem(path: &str) -> Option<FileProblem> {
    if path.is_empty() {
        return Some(FileProblem::Empty);
    }
    let bytes = path.as_bytes();
    let drive = bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':';
    if path.starts_with(['/', '\\']) || drive || Path::new(path).is_absolute() {
        return Some(FileProblem::Absolute);
    }
    // `\` separates on Windows: `..\x` leaves the package there.
    if path.split(['/', '\\']).any(|c| c == "..") {
        return Some(FileProblem::LeavesPackage);
    }
    if path.contains(['\\', '\0']) || path.split('/').any(|c| c.is_empty() || c == ".") {
        return Some(FileProblem::NotNormalized);
    }
    None
}

/// A package directory, opened so that nothing read through it can be
/// outside it.
pub(crate) struct PackageDir {
    dir: Dir,
    /// The directory as given, for messages.
    shown: String,
    /// Bytes read so far, against [`MAX_PACKAGE_FILES_BYTES`].
    total: u64,
}

/// Where the files of a package are read from: a directory
/// ([`PackageDir`]) or an unpacked archive (`crate::archive`).
pub(crate) trait PackageSource {
    /// Reads a file whole, within its limit and the package's total.
    fn read(&mut self, file: &PackageFile) -> Result<Vec<u8>>;

    /// Reads a text file: [`PackageSource::read`], then UTF-8.
    fn read_text(&mut self, file: &PackageFile) -> Result<String> {
        let bytes = self.read(file)?;
        String::from_utf8(bytes).map_err(|_| file.refused(FileProblem::NotUtf8))
    }
}

impl PackageSource for PackageDir {
    fn read(&mut self, file: &PackageFile) -> Result<Vec<u8>> {
        PackageDir::read(self, file)
    }
}

impl PackageDir {
    /// Opens `path` as a package directory.
    pub(crate) fn open(path: &Path) -> Result<PackageDir> {
        let dir =
            Dir::open_ambient_dir(path, ambient_authority()).map_err(|source| Error::Read {
                path: path.display().to_string(),
                source,
            })?;
        Ok(PackageDir {
            dir,
            shown: path.display().to_string(),
            total: 0,
        })
    }

    /// Reads a file whole, after checking its path, that it is a regular
    /// file inside the package, its size against its limit and the
    /// package's total.
    pub(crate) fn read(&mut self, file: &PackageFile) -> Result<Vec<u8>> {
        file.check_path()?;
        let path = file.path();
        let limit = file.limit();
        // Refuse by metadata first: opening a FIFO would block, and a file
        // over its limit is never read.
        let metadata = self
            .dir
            .metadata(path)
            .map_err(|e| self.read_error(file, e))?;
        self.check_metadata(file, metadata.is_file(), metadata.len())?;
        let opened = self.dir.open(path).map_err(|e| self.read_error(file, e))?;
        // The name may have been replaced since: check what was opened.
        let metadata = opened.metadata().map_err(|e| self.read_error(file, e))?;
        self.check_metadata(file, metadata.is_file(), metadata.len())?;
        let mut bytes = Vec::new();
        // One byte past the limit tells a file that grew from one that fits.
        opened
            .take(limit.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|e| self.read_error(file, e))?;
        let read = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        self.check_metadata(file, true, read)?;
        self.total += read;
        Ok(bytes)
    }

    fn check_metadata(&self, file: &PackageFile, is_file: bool, len: u64) -> Result<()> {
        if !is_file {
            return Err(file.refused(FileProblem::NotAFile));
        }
        file.check_size(len)?;
        let total = self.total.saturating_add(len);
        if total > MAX_PACKAGE_FILES_BYTES {
            return Err(Error::PackageTooLarge {
                bytes: total,
                limit: MAX_PACKAGE_FILES_BYTES,
            });
        }
        Ok(())
    }

    /// The error for a failed open, stat or read: a symlink leading out of
    /// the package when cap-std refused one on the way, else the I/O error.
    fn read_error(&self, file: &PackageFile, source: std::io::Error) -> Error {
        // cap-std refuses a path that would leave the directory with
        // `PermissionDenied`; the path itself has no `..` and is relative
        // (checked before), so only a symlink can have led out.
        if source.kind() == std::io::ErrorKind::PermissionDenied
            && let Some(link) = self.first_symlink(file.path())
        {
            let link = if link == file.path() {
                String::new()
            } else {
                link
            };
            return file.refused(FileProblem::SymlinkOutside { link });
        }
        Error::ReadPackageFile {
            file: file.clone(),
            dir: self.shown.clone(),
            source,
        }
    }

    /// The first of `path`'s prefixes (`a`, `a/b`, ...) that is a symlink.
    fn first_symlink(&self, path: &str) -> Option<String> {
        let mut prefix = String::new();
        for component in path.split('/') {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(component);
            match self.dir.symlink_metadata(&prefix) {
                Ok(m) if m.file_type().is_symlink() => return Some(prefix),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_must_be_relative_normalized_and_inside_the_package() {
        for ok in [
            "a.xproto",
            "models/a.xproto",
            "target/x/y.wasm",
            "a..b/c..d",
        ] {
            assert_eq!(path_problem(ok), None, "{ok}");
        }
        for (path, problem) in [
            ("", FileProblem::Empty),
            ("/etc/passwd", FileProblem::Absolute),
            ("\\\\server\\share", FileProblem::Absolute),
            ("C:/x.wasm", FileProblem::Absolute),
            ("../outside.xproto", FileProblem::LeavesPackage),
            ("target/../../x.wasm", FileProblem::LeavesPackage),
            ("models/..", FileProblem::LeavesPackage),
            ("..\\x.wasm", FileProblem::LeavesPackage),
            ("./models/a.xproto", FileProblem::NotNormalized),
            ("models//a.xproto", FileProblem::NotNormalized),
            ("models/", FileProblem::NotNormalized),
            ("models\\a.xproto", FileProblem::NotNormalized),
            ("a\0b", FileProblem::NotNormalized),
        ] {
            assert_eq!(path_problem(path), Some(problem), "{path:?}");
        }
    }

    #[test]
    fn errors_name_the_file_and_say_what_is_wrong() {
        let component = PackageFile::Component {
            step: "s".into(),
            path: "target/../../x.wasm".into(),
        };
        let err = component.check_path().expect_err("escapes");
        assert_eq!(
            err.to_string(),
            "component `target/../../x.wasm` of step `s` leaves the package directory"
        );
        let big = PackageFile::Xproto("models/big.xproto".into());
        let err = big
            .check_size(5 * (1 << 20) + (1 << 20) / 5)
            .expect_err("too large");
        assert_eq!(
            err.to_string(),
            "xproto file `models/big.xproto` is 5.2 MiB; the limit is 1 MiB"
        );
        assert!(big.check_size(MAX_XPROTO_BYTES).is_ok());
        let just_over = big.check_size(MAX_XPROTO_BYTES + 1).expect_err("over");
        assert_eq!(
            just_over.to_string(),
            "xproto file `models/big.xproto` is 1048577 bytes; the limit is 1 MiB (1048576 bytes)"
        );
        let link = Error::PackageFile {
            file: PackageFile::Xproto("models/link.xproto".into()),
            problem: FileProblem::SymlinkOutside {
                link: String::new(),
            },
        };
        assert!(
            link.to_string().starts_with(
                "xproto file `models/link.xproto` is a symlink pointing outside the package"
            ),
            "{link}"
        );
    }

    #[test]
    fn sizes_read_in_the_largest_whole_unit() {
        assert_eq!(human_size(900), "900 bytes");
        assert_eq!(human_size(64 << 10), "64 KiB");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(48 << 20), "48 MiB");
        assert_eq!(human_size(3 << 30), "3 GiB");
    }
}
