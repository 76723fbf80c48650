//! Secrets at rest: sealed with XChaCha20-Poly1305 under a key the
//! operator provides or one generated into the data directory (mode 0600).
//! Each value is bound to its service and name, so a sealed value moved
//! to another service or name does not open.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use rand::RngCore;

use crate::error::{Error, Result};

/// The key file generated into a data directory when none is given.
pub const SECRET_KEY_FILE: &str = "secret.key";

/// Seals and opens secret values.
#[derive(Clone)]
pub struct SecretBox {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox")
    }
}

impl SecretBox {
    /// Reads the key from `path` (32 bytes, base64), creating it with
    /// random bytes and mode 0600 when `create` is set and it is missing.
    ///
    /// # Errors
    ///
    /// [`Error::SecretKey`] when the file cannot be read or written, or
    /// does not hold a key.
    pub fn open(path: &Path, create: bool) -> Result<SecretBox> {
        let err = |message: String| Error::SecretKey {
            path: path.display().to_string(),
            message,
        };
        if create && !path.exists() {
            let mut key = [0u8; 32];
            rand::rng().fill_bytes(&mut key);
            crate::host::write_private(path, &STANDARD.encode(key))
                .map_err(|e| err(e.to_string()))?;
        }
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        let key = STANDARD
            .decode(text.trim())
            .ok()
            .filter(|k| k.len() == 32)
            .ok_or_else(|| err("not a key: expected 32 bytes in base64".into()))?;
        Ok(SecretBox {
            cipher: XChaCha20Poly1305::new(Key::from_slice(&key)),
        })
    }

    /// The default key path of a data directory.
    pub fn default_path(data_dir: &Path) -> PathBuf {
        data_dir.join(SECRET_KEY_FILE)
    }

    /// Seals `value` for the secret `name` of `service`.
    pub fn seal(&self, service: &str, name: &str, value: &str) -> String {
        let mut nonce = [0u8; 24];
        rand::rng().fill_bytes(&mut nonce);
        let aad = format!("{service}\0{name}");
        // Encryption fails only for messages beyond 256 GiB.
        let sealed = self
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: value.as_bytes(),
                    aad: aad.as_bytes(),
                },
            )
            .unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend(sealed);
        STANDARD.encode(out)
    }

    /// Opens what [`SecretBox::seal`] sealed for the same service and name.
    ///
    /// # Errors
    ///
    /// [`Error::Secret`] when the value was sealed under another key, for
    /// another secret, or was changed; the message never contains it.
    pub fn unseal(&self, service: &str, name: &str, sealed: &str) -> Result<String> {
        let err = || Error::Secret {
            service: service.to_owned(),
            name: name.to_owned(),
        };
        let bytes = STANDARD.decode(sealed).map_err(|_| err())?;
        if bytes.len() < 24 {
            return Err(err());
        }
        let (nonce, ciphertext) = bytes.split_at(24);
        let aad = format!("{service}\0{name}");
        let plain = self
            .cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| err())?;
        String::from_utf8(plain).map_err(|_| err())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_for_their_secret_and_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = SecretBox::default_path(dir.path());
        let sbox = SecretBox::open(&path, true).expect("key");
        let sealed = sbox.seal("dns", "api_key", "hunter2");
        assert!(!sealed.contains("hunter2"));
        assert_eq!(
            sbox.unseal("dns", "api_key", &sealed).expect("open"),
            "hunter2"
        );
        assert!(sbox.unseal("dns", "other", &sealed).is_err());
        assert!(sbox.unseal("evil", "api_key", &sealed).is_err());
        // The same key file opens it again; another key does not.
        let again = SecretBox::open(&path, false).expect("key");
        assert_eq!(
            again.unseal("dns", "api_key", &sealed).expect("open"),
            "hunter2"
        );
        let other = SecretBox::open(&dir.path().join("other.key"), true).expect("key");
        assert!(other.unseal("dns", "api_key", &sealed).is_err());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn a_file_without_a_key_is_refused_with_its_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bad.key");
        std::fs::write(&path, "short").expect("write");
        let err = SecretBox::open(&path, false)
            .expect_err("bad key")
            .to_string();
        assert!(err.contains("bad.key") && err.contains("32 bytes"), "{err}");
    }
}
