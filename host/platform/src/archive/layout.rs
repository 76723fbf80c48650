//! A packed service taken apart into the blobs and manifests a registry
//! stores, and put back together from them.
//!
//! [`PackedService::layout`] splits a (checked) file; publishing pushes
//! its parts. [`Layout::into_archive`] writes the parts pulled from a
//! registry into a file, byte for byte the file they were published from
//! (same signatures), and reads it back with [`PackedService::unpack`], so
//! a pulled package passes every check a file does.

use std::collections::BTreeMap;

use serde_json::json;
use syncplane_runtime::cache::digest;

use super::{
    ARTIFACT_TYPE, IMAGE_INDEX, IMAGE_MANIFEST, Index, PackedService, REF_NAME,
    SIGNATURE_ARTIFACT_TYPE, archive_error, len, read_entries, write_tar,
};
use crate::error::Result;

/// One manifest or blob, named by its digest (`sha256:<hex>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    /// `sha256:<hex>` of `bytes`.
    pub digest: String,
    /// Its content.
    pub bytes: Vec<u8>,
}

impl Blob {
    /// A blob of `bytes`, its digest computed.
    #[must_use]
    pub fn new(bytes: Vec<u8>) -> Blob {
        Blob {
            digest: format!("sha256:{}", digest(&bytes)),
            bytes,
        }
    }
}

/// The parts of a packed service.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The package's image manifest: its digest is the package's identity.
    pub manifest: Blob,
    /// The package's version, the tag it is published under.
    pub version: String,
    /// The image manifests of its signatures (OCI referrers whose
    /// `subject` is [`Layout::manifest`]), by digest.
    pub referrers: Vec<Blob>,
    /// Every other blob by digest: the config and layers of the package
    /// and of its signatures.
    pub blobs: BTreeMap<String, Vec<u8>>,
}

impl PackedService {
    /// Takes the packed file `archive` apart, after checking it as
    /// [`PackedService::unpack`] does.
    ///
    /// # Errors
    ///
    /// As [`PackedService::unpack`].
    pub fn layout(archive: &[u8]) -> Result<(Layout, PackedService)> {
        let packed = PackedService::unpack(archive)?;
        let mut entries = read_entries(archive)?;
        let index: Index = serde_json::from_slice(
            &entries
                .remove("index.json")
                .ok_or_else(|| archive_error("it has no index.json".into()))?,
        )
        .map_err(|e| archive_error(format!("its index.json is not valid: {e}")))?;
        let mut blobs: BTreeMap<String, Vec<u8>> = entries
            .into_iter()
            .filter_map(|(path, bytes)| {
                let hex = path.strip_prefix("blobs/sha256/")?;
                Some((format!("sha256:{hex}"), bytes))
            })
            .collect();
        let mut take = |digest: &str| {
            blobs
                .remove(digest)
                .map(|bytes| Blob {
                    digest: digest.to_owned(),
                    bytes,
                })
                .ok_or_else(|| archive_error(format!("the manifest {digest} is not in it")))
        };
        let manifest = take(&packed.digest)?;
        let referrers = index
            .manifests
            .iter()
            .filter(|d| d.digest != packed.digest)
            .map(|d| take(&d.digest))
            .collect::<Result<Vec<_>>>()?;
        let layout = Layout {
            manifest,
            version: packed.package.manifest.service.version.clone(),
            referrers,
            blobs,
        };
        Ok((layout, packed))
    }
}

impl Layout {
    /// Writes the parts into a packed file and reads it back: the file as
    /// `service pack` and `service sign` would have written it.
    ///
    /// # Errors
    ///
    /// As [`PackedService::unpack`]: a part that does not match its
    /// digest, a missing or extra blob, a signature that does not verify.
    pub fn into_archive(self) -> Result<(Vec<u8>, PackedService)> {
        let mut entries: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        let mut manifests = vec![json!({
            "mediaType": IMAGE_MANIFEST,
            "artifactType": ARTIFACT_TYPE,
            "digest": self.manifest.digest,
            "size": len(&self.manifest.bytes),
            "annotations": { REF_NAME: self.version },
        })];
        let mut referrers: Vec<&Blob> = self.referrers.iter().collect();
        referrers.sort_by(|a, b| a.digest.cmp(&b.digest));
        referrers.dedup_by(|a, b| a.digest == b.digest);
        for referrer in referrers {
            manifests.push(json!({
                "mediaType": IMAGE_MANIFEST,
                "artifactType": SIGNATURE_ARTIFACT_TYPE,
                "digest": referrer.digest,
                "size": len(&referrer.bytes),
            }));
            entries.insert(blob_path(&referrer.digest), referrer.bytes.clone());
        }
        entries.insert(blob_path(&self.manifest.digest), self.manifest.bytes);
        for (digest, bytes) in self.blobs {
            entries.insert(blob_path(&digest), bytes);
        }
        let index = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": IMAGE_INDEX,
            "manifests": manifests,
        }))
        .map_err(|e| archive_error(format!("cannot write it: {e}")))?;
        entries.insert("index.json".to_owned(), index);
        entries.insert(
            "oci-layout".to_owned(),
            br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
        );
        let archive = write_tar(&entries)?;
        let packed = PackedService::unpack(&archive)?;
        Ok((archive, packed))
    }
}

/// The full name (`publisher/name`) and version a package's config blob
/// states: what its signatures must have been made for. Read before its
/// layers are fetched, so that a registry's package is refused before it
/// is downloaded; the manifest inside the package is what counts once it
/// is (see [`PackedService::unpack`]).
///
/// # Errors
///
/// [`crate::Error::Archive`] when the config is not a syncplane service's.
pub fn config_identity(config: &[u8]) -> Result<(String, String)> {
    let value: serde_json::Value = serde_json::from_slice(config)
        .map_err(|e| archive_error(format!("its config is not valid: {e}")))?;
    let service = &value["manifest"]["service"];
    let (Some(name), Some(version)) = (service["name"].as_str(), service["version"].as_str())
    else {
        return Err(archive_error(
            "its config names no service and version".into(),
        ));
    };
    let full_name = match service["publisher"].as_str() {
        Some(publisher) => format!("{publisher}/{name}"),
        None => name.to_owned(),
    };
    Ok((full_name, version.to_owned()))
}

/// The path of a blob in an image layout; a digest that is not
/// `sha256:<hex>` keeps its text and is refused on unpacking.
fn blob_path(digest: &str) -> String {
    format!(
        "blobs/sha256/{}",
        digest.strip_prefix("sha256:").unwrap_or(digest)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::tests::service_dir;
    use crate::signing::SigningKey;

    #[test]
    fn a_file_taken_apart_and_put_together_is_the_same_file() {
        let dir = service_dir();
        let (archive, _) = PackedService::pack(dir.path()).expect("pack");
        let (signed, _, _) = PackedService::sign(&archive, &SigningKey::generate()).expect("sign");
        let (signed, _, _) = PackedService::sign(&signed, &SigningKey::generate()).expect("sign");
        for file in [archive.clone(), signed] {
            let (layout, packed) = PackedService::layout(&file).expect("layout");
            assert_eq!(layout.manifest.digest, packed.digest);
            assert_eq!(layout.referrers.len(), packed.signatures.len());
            let (again, repacked) = layout.into_archive().expect("archive");
            assert_eq!(again, file);
            assert_eq!(repacked.digest, packed.digest);
        }
        let (layout, _) = PackedService::layout(&archive).expect("layout");
        let config = layout
            .blobs
            .values()
            .find(|b| b.starts_with(b"{\"manifest\""))
            .expect("config");
        assert_eq!(
            config_identity(config).expect("identity"),
            ("tiny".to_owned(), "1.2.3".to_owned())
        );
    }

    #[test]
    fn a_changed_part_is_refused() {
        let dir = service_dir();
        let (archive, _) = PackedService::pack(dir.path()).expect("pack");
        let (mut layout, _) = PackedService::layout(&archive).expect("layout");
        let (digest, _) = layout
            .blobs
            .iter()
            .max_by_key(|(_, b)| b.len())
            .map(|(d, b)| (d.clone(), b.clone()))
            .expect("a blob");
        layout.blobs.insert(digest, b"evil".to_vec());
        let message = layout.into_archive().expect_err("refused").to_string();
        assert!(message.contains("does not match its digest"), "{message}");
    }
}
