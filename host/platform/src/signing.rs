//! Publishers' keys and package signatures.
//!
//! A publisher makes a [`SigningKey`] once (`syncplane key generate`),
//! keeps its PKCS#8 PEM private and hands out its [`PublicKey`], one line
//! `ed25519:<base64>`. `syncplane service sign` makes a [`Signature`] over
//! a package's digest, **with its name and version**: the signed message
//! is [`signed_message`], so a signature cannot be moved onto another
//! package, nor onto the same package claiming another name or version.
//!
//! Signatures travel inside the packed file as OCI referrers
//! ([`crate::archive`]); every one is checked when the file is read.
//!
//! # Caveats
//!
//! A signature says who vouched for the bytes, not that they are safe;
//! what a key may vouch for is the operator's trust policy
//! ([`crate::TrustPolicy`]).

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::Signer as _;
use ed25519_dalek::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// The only signature kind so far; the field leaves room for others
/// (keyless signing, say).
pub const ED25519: &str = "ed25519";

/// The PEM label of an encrypted PKCS#8 private key.
const ENCRYPTED_LABEL: &str = "-----BEGIN ENCRYPTED PRIVATE KEY-----";

/// An ed25519 public key, written `ed25519:<base64 of its 32 bytes>`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    fn verifying_key(&self) -> Result<ed25519_dalek::VerifyingKey> {
        ed25519_dalek::VerifyingKey::from_bytes(&self.0).map_err(|_| Error::Key {
            problem: format!("{self} is not a valid ed25519 public key"),
        })
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{ED25519}:{}", STANDARD.encode(self.0))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

impl FromStr for PublicKey {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        let text = text.trim();
        let bad = |why: &str| Error::Key {
            problem: format!("`{text}` is not a public key ({why}); write ed25519:<base64>"),
        };
        let encoded = text
            .strip_prefix("ed25519:")
            .ok_or_else(|| bad("no `ed25519:` prefix"))?;
        let bytes = STANDARD.decode(encoded).map_err(|_| bad("not base64"))?;
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|_| bad("an ed25519 key has 32 bytes"))?;
        let key = PublicKey(bytes);
        key.verifying_key().map_err(|_| bad("not a curve point"))?;
        Ok(key)
    }
}

impl Serialize for PublicKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A publisher's private key. Its `Debug` shows only the public key; the
/// secret is wiped from memory when dropped.
pub struct SigningKey(ed25519_dalek::SigningKey);

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey({})", self.public_key())
    }
}

impl SigningKey {
    /// A new key from the operating system's random source.
    pub fn generate() -> SigningKey {
        SigningKey(ed25519_dalek::SigningKey::generate(&mut rand_core::OsRng))
    }

    /// Its public half.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.0.verifying_key().to_bytes())
    }

    /// The key as PKCS#8 PEM: `ENCRYPTED PRIVATE KEY` (scrypt and
    /// AES-256-CBC) with a passphrase, else a plain `PRIVATE KEY` that
    /// anyone who can read the file can use.
    ///
    /// # Errors
    ///
    /// [`Error::Key`] when encoding fails (it does not for a valid key).
    pub fn to_pem(&self, passphrase: Option<&[u8]>) -> Result<Zeroizing<String>> {
        let line = pkcs8::LineEnding::LF;
        let encoded = match passphrase {
            Some(passphrase) => self
                .0
                .to_pkcs8_encrypted_pem(rand_core::OsRng, passphrase, line),
            None => self.0.to_pkcs8_pem(line),
        };
        // The error of a PKCS#8 encoder never holds the key.
        encoded.map_err(|e| Error::Key {
            problem: format!("cannot encode the private key: {e}"),
        })
    }

    /// Reads a PKCS#8 PEM private key; an encrypted one needs its
    /// passphrase. `origin` names the key in errors (never its content).
    ///
    /// # Errors
    ///
    /// [`Error::Key`] for a file that is not an ed25519 PKCS#8 key, an
    /// encrypted one without a passphrase, or a wrong passphrase.
    pub fn from_pem(origin: &str, pem: &str, passphrase: Option<&[u8]>) -> Result<SigningKey> {
        let encrypted = pem.contains(ENCRYPTED_LABEL);
        let key = match (encrypted, passphrase) {
            (true, Some(passphrase)) => ed25519_dalek::SigningKey::from_pkcs8_encrypted_pem(
                pem, passphrase,
            )
            .map_err(|_| Error::Key {
                problem: format!(
                    "{origin}: cannot decrypt the private key (wrong passphrase, or not an ed25519 PKCS#8 key)"
                ),
            })?,
            (true, None) => {
                return Err(Error::Key {
                    problem: format!(
                        "{origin} is encrypted: give its passphrase (--passphrase-file)"
                    ),
                });
            }
            (false, _) => ed25519_dalek::SigningKey::from_pkcs8_pem(pem).map_err(|_| {
                Error::Key {
                    problem: format!("{origin} is not an ed25519 private key in PKCS#8 PEM"),
                }
            })?,
        };
        Ok(SigningKey(key))
    }

    /// Signs the package `digest` with its `name` and `version`.
    pub fn sign(&self, digest: &str, name: &str, version: &str) -> Signature {
        let signature = self
            .0
            .sign(signed_message(digest, name, version).as_bytes());
        Signature {
            kind: ED25519.to_owned(),
            key: self.public_key(),
            digest: digest.to_owned(),
            name: name.to_owned(),
            version: version.to_owned(),
            signature: STANDARD.encode(signature.to_bytes()),
        }
    }
}

/// What a signature signs: the package's digest, name and version, each on
/// its own line after a fixed first line, so a signature made for anything
/// else never verifies here. Names hold no newline (the manifest allows
/// letters, digits, `-`, `_` and one `/`), so the lines cannot be shifted.
pub fn signed_message(digest: &str, name: &str, version: &str) -> String {
    format!("syncplane-signature-v1\ndigest={digest}\nname={name}\nversion={version}\n")
}

/// A signature as it is stored in a package: JSON
/// `{kind, key, digest, name, version, signature}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signature {
    /// The kind of signature: [`ED25519`].
    pub kind: String,
    /// The key that signed.
    pub key: PublicKey,
    /// The package digest signed, `sha256:<hex>`.
    pub digest: String,
    /// The package's full name signed (`publisher/name`, or the name).
    pub name: String,
    /// The version signed.
    pub version: String,
    /// The ed25519 signature of [`signed_message`], base64.
    pub signature: String,
}

impl Signature {
    /// Checks that the signature is for exactly this package (digest,
    /// name, version) and that its key made it.
    ///
    /// # Errors
    ///
    /// [`Error::BadSignature`] naming the key and what does not match.
    pub fn verify(&self, digest: &str, name: &str, version: &str) -> Result<()> {
        let bad = |problem: String| Error::BadSignature {
            key: self.key.to_string(),
            problem,
        };
        if self.kind != ED25519 {
            return Err(bad(format!(
                "is of kind `{}`; this host checks only `{ED25519}`",
                self.kind
            )));
        }
        if self.digest != digest {
            return Err(bad(format!(
                "was made for the package {}, not this one ({digest}): it was copied from another package",
                self.digest
            )));
        }
        if self.name != name {
            return Err(bad(format!("was made for `{}`, not `{name}`", self.name)));
        }
        if self.version != version {
            return Err(bad(format!(
                "was made for version {}, not {version}",
                self.version
            )));
        }
        let bytes: [u8; 64] = STANDARD
            .decode(&self.signature)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| bad("is not 64 bytes of base64".into()))?;
        let signature = ed25519_dalek::Signature::from_bytes(&bytes);
        self.key
            .verifying_key()?
            .verify_strict(signed_message(digest, name, version).as_bytes(), &signature)
            .map_err(|_| {
                bad("does not verify: it was not made by this key for this package".into())
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000001";

    #[test]
    fn a_signature_verifies_only_for_its_digest_name_and_version() {
        let key = SigningKey::generate();
        let signature = key.sign(DIGEST, "acme/tiny", "1.0.0");
        signature
            .verify(DIGEST, "acme/tiny", "1.0.0")
            .expect("verifies");
        let other = DIGEST.replace("01", "02");
        let message = signature
            .verify(&other, "acme/tiny", "1.0.0")
            .expect_err("other digest")
            .to_string();
        assert!(message.contains("copied from another package"), "{message}");
        let message = signature
            .verify(DIGEST, "acme/tiny", "1.1.0")
            .expect_err("other version")
            .to_string();
        assert!(message.contains("version 1.0.0, not 1.1.0"), "{message}");
        assert!(signature.verify(DIGEST, "evil/tiny", "1.0.0").is_err());

        // Fields rewritten to match another package: the signature no
        // longer verifies.
        let mut forged = signature.clone();
        forged.version = "1.1.0".into();
        let message = forged
            .verify(DIGEST, "acme/tiny", "1.1.0")
            .expect_err("forged")
            .to_string();
        assert!(message.contains("does not verify"), "{message}");
        assert!(message.contains(&key.public_key().to_string()), "{message}");
    }

    #[test]
    fn public_keys_round_trip_as_one_line_and_bad_ones_are_refused() {
        let key = SigningKey::generate().public_key();
        let text = key.to_string();
        assert!(text.starts_with("ed25519:"), "{text}");
        assert_eq!(text.parse::<PublicKey>().expect("parse"), key);
        assert!("ed25519:AAAA".parse::<PublicKey>().is_err());
        assert!("rsa:AAAA".parse::<PublicKey>().is_err());
    }

    #[test]
    fn a_private_key_reads_back_and_an_encrypted_one_needs_its_passphrase() {
        let key = SigningKey::generate();
        let plain = key.to_pem(None).expect("pem");
        assert!(
            plain.starts_with("-----BEGIN PRIVATE KEY-----"),
            "{}",
            *plain
        );
        let back = SigningKey::from_pem("k", &plain, None).expect("read");
        assert_eq!(back.public_key(), key.public_key());

        let encrypted = key.to_pem(Some(b"correct horse")).expect("pem");
        assert!(encrypted.starts_with(ENCRYPTED_LABEL), "{}", *encrypted);
        let back = SigningKey::from_pem("k", &encrypted, Some(b"correct horse")).expect("read");
        assert_eq!(back.public_key(), key.public_key());
        let message = SigningKey::from_pem("k.key", &encrypted, Some(b"wrong"))
            .expect_err("wrong passphrase")
            .to_string();
        assert!(message.contains("wrong passphrase"), "{message}");
        assert!(!message.contains("wrong\""), "no secret in: {message}");
        let message = SigningKey::from_pem("k.key", &encrypted, None)
            .expect_err("no passphrase")
            .to_string();
        assert!(message.contains("k.key is encrypted"), "{message}");
        // Debug never shows the secret.
        assert!(format!("{key:?}").contains("ed25519:"));
    }
}
