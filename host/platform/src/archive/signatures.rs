//! Signatures inside a packed service, as OCI referrers.
//!
//! Each signature is one more image manifest in `index.json`:
//! artifactType [`SIGNATURE_ARTIFACT_TYPE`], `subject` the package's image
//! manifest, the empty config blob, and one layer ([`SIGNATURE_MEDIA_TYPE`])
//! holding the [`Signature`] as JSON. Adding one changes `index.json`
//! only: the package's image manifest, and so its digest, stays as it was.
//! This is the shape `oras attach` and cosign's referrers give, so a
//! registry with the referrers API (or the `sha256-<hex>` tag scheme)
//! keeps them beside the package.

use std::collections::BTreeMap;

use serde_json::json;
use syncplane_runtime::cache::digest;

use super::{
    Descriptor, IMAGE_MANIFEST, ImageManifest, PackedService, archive_error, check_metadata_size,
    len, read_entries, take_blob, write_tar,
};
use crate::error::Result;
use crate::signing::{Signature, SigningKey};

/// The OCI artifact type of a signature of a packed service.
pub const SIGNATURE_ARTIFACT_TYPE: &str = "application/vnd.syncplane.signature.v1";
/// The media type of the layer holding a signature as JSON.
pub const SIGNATURE_MEDIA_TYPE: &str = "application/vnd.syncplane.signature.v1+json";
/// The OCI empty descriptor's media type, for a config with nothing in it.
const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
/// The OCI empty blob.
const EMPTY_BLOB: &[u8] = b"{}";
/// The most signatures a package carries.
pub const MAX_SIGNATURES: usize = 32;
/// The largest signature layer.
const MAX_SIGNATURE_BYTES: u64 = 16 << 10;

/// Reads the signatures `descriptors` name out of `blobs`, each checked:
/// a referrer of the package (`subject`), one signature layer, and a
/// signature that verifies for the package's digest, name and version.
pub(super) fn take_signatures(
    blobs: &mut BTreeMap<String, Vec<u8>>,
    descriptors: &[(Descriptor, ImageManifest)],
    package: &Descriptor,
    name: &str,
    version: &str,
) -> Result<Vec<Signature>> {
    if descriptors.len() > MAX_SIGNATURES {
        return Err(archive_error(format!(
            "it carries {} signatures; the limit is {MAX_SIGNATURES}",
            descriptors.len()
        )));
    }
    let mut signatures: Vec<Signature> = Vec::new();
    let mut empty_used = false;
    for (descriptor, manifest) in descriptors {
        let what = format!("the signature manifest {}", descriptor.digest);
        take_blob(blobs, descriptor, &what)?;
        let subject = manifest.subject.as_ref().filter(|s| {
            s.digest == package.digest && s.size == package.size && s.media_type == IMAGE_MANIFEST
        });
        if subject.is_none() {
            return Err(archive_error(format!(
                "{what} does not refer to the package's manifest {}",
                package.digest
            )));
        }
        if manifest.config.media_type != EMPTY_MEDIA_TYPE
            || manifest.config.digest != empty_digest()
        {
            return Err(archive_error(format!(
                "{what} has a config other than the empty one"
            )));
        }
        if !empty_used {
            take_blob(blobs, &manifest.config, &format!("{what}'s config"))?;
            empty_used = true;
        }
        let [layer] = manifest.layers.as_slice() else {
            return Err(archive_error(format!(
                "{what} has {} layers; a signature has one",
                manifest.layers.len()
            )));
        };
        if layer.media_type != SIGNATURE_MEDIA_TYPE || layer.size > MAX_SIGNATURE_BYTES {
            return Err(archive_error(format!(
                "{what}'s layer is not a signature ({SIGNATURE_MEDIA_TYPE}, at most {MAX_SIGNATURE_BYTES} bytes)"
            )));
        }
        let bytes = take_blob(blobs, layer, &format!("{what}'s layer"))?;
        let signature: Signature = serde_json::from_slice(&bytes)
            .map_err(|e| archive_error(format!("{what} holds no valid signature: {e}")))?;
        signature.verify(&package.digest, name, version)?;
        if signatures.iter().any(|s| s.key == signature.key) {
            return Err(archive_error(format!(
                "it carries two signatures by {}",
                signature.key
            )));
        }
        signatures.push(signature);
    }
    signatures.sort_by_key(|s| s.key);
    Ok(signatures)
}

/// Parses an image manifest of `index.json`, within the metadata limit.
pub(super) fn peek_manifest(
    blobs: &BTreeMap<String, Vec<u8>>,
    descriptor: &Descriptor,
) -> Result<ImageManifest> {
    check_metadata_size(descriptor.size, "an image manifest")?;
    let bytes = blobs.get(&descriptor.digest).ok_or_else(|| {
        archive_error(format!(
            "the image manifest {} is not in it",
            descriptor.digest
        ))
    })?;
    serde_json::from_slice(bytes).map_err(|e| {
        archive_error(format!(
            "the image manifest {} is not valid: {e}",
            descriptor.digest
        ))
    })
}

fn empty_digest() -> String {
    format!("sha256:{}", digest(EMPTY_BLOB))
}

/// Whether signing added a signature or found one by the key already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signed {
    /// The signature was added.
    Added,
    /// The package already carried a signature by this key; the file is
    /// unchanged.
    AlreadySigned,
}

impl PackedService {
    /// Adds a signature by `key` to the packed file `archive`: over its
    /// digest, full name and version. The package's digest does not change.
    ///
    /// # Errors
    ///
    /// As [`PackedService::unpack`] for the file as it is, and
    /// [`crate::Error::Archive`] when it has [`MAX_SIGNATURES`] already.
    pub fn sign(archive: &[u8], key: &SigningKey) -> Result<(Vec<u8>, PackedService, Signed)> {
        let packed = PackedService::unpack(archive)?;
        if packed.signatures.iter().any(|s| s.key == key.public_key()) {
            return Ok((archive.to_vec(), packed, Signed::AlreadySigned));
        }
        if packed.signatures.len() >= MAX_SIGNATURES {
            return Err(archive_error(format!(
                "it carries {MAX_SIGNATURES} signatures already"
            )));
        }
        let manifest = &packed.package.manifest;
        let signature = key.sign(
            &packed.digest,
            &manifest.full_name(),
            &manifest.service.version,
        );
        let archive = attach(archive, &packed, &signature)?;
        let signed = PackedService::unpack(&archive)?;
        Ok((archive, signed, Signed::Added))
    }
}

/// `archive` (which holds `packed`) with `signature` attached as a
/// referrer, unchecked: [`PackedService::unpack`] checks it.
fn attach(archive: &[u8], packed: &PackedService, signature: &Signature) -> Result<Vec<u8>> {
    {
        let mut entries = read_entries(archive)?;
        let json_error = |e: serde_json::Error| archive_error(format!("cannot write it: {e}"));
        let mut add_blob = |bytes: Vec<u8>| {
            let digest = digest(&bytes);
            let size = len(&bytes);
            entries.insert(format!("blobs/sha256/{digest}"), bytes);
            (format!("sha256:{digest}"), size)
        };
        let (layer_digest, layer_size) =
            add_blob(serde_json::to_vec(&signature).map_err(json_error)?);
        let (empty, empty_size) = add_blob(EMPTY_BLOB.to_vec());
        let (package_digest, package_size) = (packed.digest.clone(), packed.manifest_size);
        let referrer = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": IMAGE_MANIFEST,
            "artifactType": SIGNATURE_ARTIFACT_TYPE,
            "config": { "mediaType": EMPTY_MEDIA_TYPE, "digest": empty, "size": empty_size },
            "layers": [{
                "mediaType": SIGNATURE_MEDIA_TYPE,
                "digest": layer_digest,
                "size": layer_size,
            }],
            "subject": {
                "mediaType": IMAGE_MANIFEST,
                "digest": package_digest,
                "size": package_size,
            },
            "annotations": { "vnd.syncplane.signature.key": signature.key.to_string() },
        }))
        .map_err(json_error)?;
        let (referrer_digest, referrer_size) = add_blob(referrer);
        let mut index: serde_json::Value = serde_json::from_slice(
            entries
                .get("index.json")
                .ok_or_else(|| archive_error("it has no index.json".into()))?,
        )
        .map_err(json_error)?;
        let manifests = index["manifests"]
            .as_array_mut()
            .ok_or_else(|| archive_error("its index.json lists no manifests".into()))?;
        manifests.push(json!({
            "mediaType": IMAGE_MANIFEST,
            "artifactType": SIGNATURE_ARTIFACT_TYPE,
            "digest": referrer_digest,
            "size": referrer_size,
        }));
        // The package first, then signatures by digest: the same
        // signatures make the same file whatever order they were added in.
        manifests.sort_by_key(|m| {
            (
                m["artifactType"] == SIGNATURE_ARTIFACT_TYPE,
                m["digest"].as_str().unwrap_or_default().to_owned(),
            )
        });
        entries.insert(
            "index.json".to_owned(),
            serde_json::to_vec(&index).map_err(json_error)?,
        );
        write_tar(&entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::tests::service_dir;

    #[test]
    fn signing_keeps_the_digest_and_each_signer_is_verified() {
        let dir = service_dir();
        let (archive, packed) = PackedService::pack(dir.path()).expect("pack");
        assert!(packed.signatures.is_empty());
        let acme = SigningKey::generate();
        let ops = SigningKey::generate();
        let (once, signed, added) = PackedService::sign(&archive, &acme).expect("sign");
        assert_eq!(added, Signed::Added);
        assert_eq!(signed.digest, packed.digest, "signing keeps the identity");
        let (twice, signed, _) = PackedService::sign(&once, &ops).expect("sign");
        let keys: Vec<_> = signed.signatures.iter().map(|s| s.key).collect();
        let mut expected = vec![acme.public_key(), ops.public_key()];
        expected.sort();
        assert_eq!(keys, expected);
        assert_eq!(signed.signatures[0].name, "tiny");
        assert_eq!(signed.signatures[0].version, "1.2.3");
        let (again, _, added) = PackedService::sign(&twice, &acme).expect("sign");
        assert_eq!(added, Signed::AlreadySigned);
        assert_eq!(again, twice);
        // The same signatures in another order make the same file.
        let (other_order, _, _) =
            PackedService::sign(&PackedService::sign(&archive, &ops).expect("sign").0, &acme)
                .expect("sign");
        assert_eq!(other_order, twice);
    }

    #[test]
    fn a_signature_made_for_another_package_or_version_is_refused() {
        let dir = service_dir();
        let (archive, packed) = PackedService::pack(dir.path()).expect("pack");
        let key = SigningKey::generate();
        // Made for 1.2.2, attached to 1.2.3 as if it were its own.
        let replayed = key.sign(&packed.digest, "tiny", "1.2.2");
        let forged = attach(&archive, &packed, &replayed).expect("attach");
        let message = PackedService::unpack(&forged)
            .expect_err("refused")
            .to_string();
        assert!(
            message.contains(&key.public_key().to_string())
                && message.contains("was made for version 1.2.2, not 1.2.3"),
            "{message}"
        );
        // Made for another package's digest.
        let elsewhere = format!("sha256:{}", "0".repeat(64));
        let other = key.sign(&elsewhere, "tiny", "1.2.3");
        let forged = attach(&archive, &packed, &other).expect("attach");
        let message = PackedService::unpack(&forged)
            .expect_err("refused")
            .to_string();
        assert!(message.contains("copied from another package"), "{message}");
    }
}
