//! Registry credentials, kept by `syncplane registry login` in the user's
//! config directory (mode 0600).
//!
//! The file, `registries.json`, maps `HOST[:PORT]` to a user name and
//! password. Passwords are never printed, logged or put into an error;
//! [`Credentials`]' `Debug` shows the user name only.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// The file name of the credentials in the config directory.
pub const CREDENTIALS_FILE: &str = "registries.json";
/// The environment variable that overrides the config directory.
pub const CONFIG_DIR_ENV: &str = "SYNCPLANE_CONFIG_DIR";

/// A user name and password for one registry.
#[derive(Clone)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    password: Zeroizing<String>,
}

impl Credentials {
    /// Credentials of `username` with `password`.
    #[must_use]
    pub fn new(username: String, password: Zeroizing<String>) -> Credentials {
        Credentials { username, password }
    }

    /// The password; to be sent to the registry only.
    #[must_use]
    pub fn password(&self) -> &str {
        &self.password
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"(hidden)")
            .finish()
    }
}

#[derive(Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    registries: BTreeMap<String, Entry>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    username: String,
    password: String,
}

/// The credentials of every registry the user logged in to.
pub struct CredentialStore {
    path: PathBuf,
    file: File,
}

impl CredentialStore {
    /// The default file: `$SYNCPLANE_CONFIG_DIR/registries.json`, else
    /// `$XDG_CONFIG_HOME/syncplane/registries.json`, else
    /// `~/.config/syncplane/registries.json`; `None` without a home.
    #[must_use]
    pub fn default_path() -> Option<PathBuf> {
        let dir = std::env::var_os(CONFIG_DIR_ENV)
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("XDG_CONFIG_HOME")
                    .filter(|d| !d.is_empty())
                    .map(|d| PathBuf::from(d).join("syncplane"))
            })
            .or_else(|| {
                std::env::var_os("HOME")
                    .filter(|d| !d.is_empty())
                    .map(|d| PathBuf::from(d).join(".config/syncplane"))
            })?;
        Some(dir.join(CREDENTIALS_FILE))
    }

    /// Reads the store at `path`; a missing file is an empty store.
    ///
    /// # Errors
    ///
    /// [`Error::CredentialsIo`] when it cannot be read,
    /// [`Error::CredentialsFile`] when it is not valid.
    pub fn open(path: &Path) -> Result<CredentialStore> {
        let file = match std::fs::read(path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|e| Error::CredentialsFile {
                    path: path.to_owned(),
                    // serde_json's message names the position, not the
                    // value: no password gets into it.
                    reason: e.to_string(),
                })?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => File::default(),
            Err(source) => {
                return Err(Error::CredentialsIo {
                    action: "read",
                    path: path.to_owned(),
                    source,
                });
            }
        };
        Ok(CredentialStore {
            path: path.to_owned(),
            file,
        })
    }

    /// The file this store is kept in.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The credentials for `registry` (`HOST[:PORT]`), if any.
    #[must_use]
    pub fn get(&self, registry: &str) -> Option<Credentials> {
        self.file.registries.get(registry).map(|e| Credentials {
            username: e.username.clone(),
            password: Zeroizing::new(e.password.clone()),
        })
    }

    /// Sets the credentials for `registry`; [`CredentialStore::save`]
    /// writes them.
    pub fn set(&mut self, registry: &str, credentials: &Credentials) {
        self.file.registries.insert(
            registry.to_owned(),
            Entry {
                username: credentials.username.clone(),
                password: credentials.password().to_owned(),
            },
        );
    }

    /// Forgets the credentials for `registry`; whether there were any.
    pub fn remove(&mut self, registry: &str) -> bool {
        self.file.registries.remove(registry).is_some()
    }

    /// Writes the store: a new file of mode 0600 (its directory created
    /// 0700 when missing), renamed over the old one.
    ///
    /// # Errors
    ///
    /// [`Error::CredentialsIo`] when it cannot be written.
    pub fn save(&self) -> Result<()> {
        let io = |source| Error::CredentialsIo {
            action: "write",
            path: self.path.clone(),
            source,
        };
        if let Some(dir) = self.path.parent() {
            let mut builder = std::fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::DirBuilderExt as _;
                builder.mode(0o700);
            }
            builder.create(dir).map_err(io)?;
        }
        let text = Zeroizing::new(serde_json::to_vec_pretty(&self.file).map_err(|e| {
            Error::CredentialsFile {
                path: self.path.clone(),
                reason: e.to_string(),
            }
        })?);
        let partial = self.path.with_extension("json.partial");
        let _ = std::fs::remove_file(&partial);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let mut file = options.open(&partial).map_err(io)?;
        file.write_all(&text)
            .and_then(|()| file.sync_all())
            .map_err(io)?;
        std::fs::rename(&partial, &self.path).map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_kept_owner_only_and_never_shown() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config/registries.json");
        let mut store = CredentialStore::open(&path).expect("open");
        assert!(store.get("127.0.0.1:5000").is_none());
        let credentials = Credentials::new("acme".into(), Zeroizing::new("s3cret".into()));
        assert!(!format!("{credentials:?}").contains("s3cret"));
        store.set("127.0.0.1:5000", &credentials);
        store.save().expect("save");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let mut again = CredentialStore::open(&path).expect("open");
        let got = again.get("127.0.0.1:5000").expect("stored");
        assert_eq!((got.username.as_str(), got.password()), ("acme", "s3cret"));
        assert!(again.remove("127.0.0.1:5000"));
        again.save().expect("save");
        assert!(
            CredentialStore::open(&path)
                .expect("open")
                .get("127.0.0.1:5000")
                .is_none()
        );
    }
}
