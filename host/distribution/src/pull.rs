//! `syncplane service pull REF -o FILE`, and install by reference.

use std::collections::BTreeMap;

use serde::Deserialize;
use syncplane_platform::archive::{
    ARTIFACT_TYPE, Blob, CONFIG_MEDIA_TYPE, Layout, MAX_METADATA_BYTES, MAX_SIGNATURES,
    PackedService, SIGNATURE_ARTIFACT_TYPE, SIGNATURE_MEDIA_TYPE, config_identity,
};
use syncplane_platform::{MAX_COMPONENT_BYTES, MAX_PACKAGE_FILES_BYTES, Signature};

use crate::client::{Client, FetchedManifest};
use crate::error::{Error, Result};
use crate::publish::referrers_tag;
use crate::reference::Reference;

/// The most layers a package's manifest may list.
const MAX_LAYERS: usize = 4096;
/// The largest signature layer.
const MAX_SIGNATURE_BYTES: u64 = 16 << 10;
/// The most all of a package's layers may add up to: its files and its
/// TOSCA samples (each checked precisely once the package is read).
const MAX_LAYERS_BYTES: u64 = MAX_PACKAGE_FILES_BYTES + (64 << 20);

/// What a pull checks beyond digests and signatures.
#[derive(Debug, Clone, Copy, Default)]
pub struct PullOptions {
    /// Refuse a package that carries no signature (before its layers are
    /// fetched).
    pub require_signature: bool,
}

/// A package pulled from a registry, verified.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// What was pulled: the repository, the tag it was resolved from (the
    /// newest version when none was given) and its digest.
    pub reference: Reference,
    /// The packed file, as `service pack` and `service sign` wrote it.
    pub archive: Vec<u8>,
    /// What it holds, every digest and signature checked.
    pub packed: PackedService,
}

/// An OCI image manifest, as far as pulling reads it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ImageManifest {
    schema_version: u32,
    #[serde(default)]
    artifact_type: Option<String>,
    config: Descriptor,
    #[serde(default)]
    layers: Vec<Descriptor>,
    #[serde(default)]
    subject: Option<Descriptor>,
}

/// An OCI image index, as far as pulling reads it.
#[derive(Debug, Deserialize)]
struct ImageIndex {
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    #[serde(default)]
    media_type: String,
    #[serde(default)]
    artifact_type: Option<String>,
    digest: String,
    size: u64,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

/// Pulls the package `reference` names.
///
/// # Guarantees
///
/// A tag is resolved to a digest once, by hashing the manifest the
/// registry serves for it; everything after is fetched by digest and
/// hashed while it streams in, so a tag moved half-way changes nothing.
/// The package's signatures are fetched and verified for that digest,
/// name and version before any of its layers; its config must state the
/// version of the tag. The file is then put together and read back as a
/// file is ([`PackedService::unpack`]): only verified bytes are returned.
///
/// # Errors
///
/// [`Error::NotFound`], [`Error::NotAService`], [`Error::TagMismatch`],
/// [`Error::BadSignature`], [`Error::Unsigned`] (with
/// [`PullOptions::require_signature`]), [`Error::DigestMismatch`] naming
/// the blob, [`Error::TooLarge`], [`Error::Package`], and the client's.
pub async fn pull(client: &Client, reference: &Reference, options: PullOptions) -> Result<Pulled> {
    let (reference, fetched) = resolve(client, reference).await?;
    let shown = reference.to_string();
    let not_a_service = |reason: String| Error::NotAService {
        reference: shown.clone(),
        reason,
    };
    let manifest: ImageManifest = serde_json::from_slice(&fetched.bytes)
        .map_err(|e| not_a_service(format!("its manifest is not an OCI image manifest: {e}")))?;
    if manifest.schema_version != 2
        || manifest.artifact_type.as_deref() != Some(ARTIFACT_TYPE)
        || manifest.config.media_type != CONFIG_MEDIA_TYPE
        || manifest.subject.is_some()
    {
        return Err(not_a_service(format!(
            "its manifest is not of artifactType {ARTIFACT_TYPE} (it has {})",
            manifest.artifact_type.as_deref().unwrap_or("none")
        )));
    }
    if manifest.layers.len() > MAX_LAYERS {
        return Err(not_a_service(format!(
            "its manifest lists {} layers",
            manifest.layers.len()
        )));
    }
    let repository = &reference.repository;
    let mut blobs = BTreeMap::new();
    let config = client
        .blob(
            repository,
            &manifest.config.digest,
            manifest.config.size,
            MAX_METADATA_BYTES,
            "its config",
        )
        .await?;
    let (name, version) = config_identity(&config).map_err(|source| Error::Package {
        reference: shown.clone(),
        source: Box::new(source),
    })?;
    blobs.insert(manifest.config.digest.clone(), config);
    if let Some(tag) = reference.tag.as_deref().filter(|t| **t != version) {
        return Err(Error::TagMismatch {
            reference: shown,
            tag: tag.to_owned(),
            name,
            version,
        });
    }
    let subject = Subject {
        digest: &fetched.digest,
        size: u64::try_from(fetched.bytes.len()).unwrap_or(u64::MAX),
        name: &name,
        version: &version,
    };
    let referrers = signatures(client, &reference, &subject, &mut blobs).await?;
    if options.require_signature && referrers.is_empty() {
        return Err(Error::Unsigned {
            reference: shown,
            digest: fetched.digest,
        });
    }
    let declared: u64 = manifest
        .layers
        .iter()
        .map(|l| l.size)
        .fold(0, u64::saturating_add);
    if declared > MAX_LAYERS_BYTES {
        return Err(Error::TooLarge {
            what: "its layers together".into(),
            digest: fetched.digest,
            size: declared,
            limit: MAX_LAYERS_BYTES,
        });
    }
    for layer in &manifest.layers {
        let title = layer
            .annotations
            .get("org.opencontainers.image.title")
            .map_or_else(|| "a layer".to_owned(), |t| format!("the layer `{t}`"));
        let bytes = client
            .blob(
                repository,
                &layer.digest,
                layer.size,
                MAX_COMPONENT_BYTES,
                &title,
            )
            .await?;
        blobs.insert(layer.digest.clone(), bytes);
    }
    let layout = Layout {
        manifest: Blob {
            digest: fetched.digest.clone(),
            bytes: fetched.bytes,
        },
        version: version.clone(),
        referrers,
        blobs,
    };
    let (archive, packed) = layout.into_archive().map_err(|source| Error::Package {
        reference: shown.clone(),
        source: Box::new(source),
    })?;
    let stated = &packed.package.manifest.service.version;
    if packed.digest != fetched.digest || *stated != version {
        return Err(Error::TagMismatch {
            reference: shown,
            tag: version,
            name: packed.package.manifest.full_name(),
            version: stated.clone(),
        });
    }
    Ok(Pulled {
        reference: Reference {
            digest: Some(packed.digest.clone()),
            ..reference
        },
        archive,
        packed,
    })
}

/// The versions published in `reference`'s repository, newest first: its
/// tags that are semantic versions (not the referrers' `sha256-…` tags).
///
/// # Errors
///
/// The client's.
pub async fn versions(client: &Client, reference: &Reference) -> Result<Vec<String>> {
    let mut versions: Vec<semver::Version> = client
        .tags(&reference.repository)
        .await?
        .iter()
        .filter_map(|t| semver::Version::parse(t).ok())
        .collect();
    versions.sort();
    versions.reverse();
    Ok(versions.iter().map(ToString::to_string).collect())
}

/// The manifest `reference` names: by digest, by tag, or the newest
/// version when it has neither; with the reference completed.
async fn resolve(client: &Client, reference: &Reference) -> Result<(Reference, FetchedManifest)> {
    let reference = match (&reference.tag, &reference.digest) {
        (None, None) => {
            let newest = versions(client, reference).await?;
            let Some(newest) = newest.first() else {
                return Err(Error::NotFound {
                    reference: format!("{reference} (no version is published)"),
                });
            };
            reference.with_tag(newest)
        }
        _ => reference.clone(),
    };
    let by = reference
        .digest
        .as_deref()
        .or(reference.tag.as_deref())
        .unwrap_or_default();
    let fetched = client
        .manifest(&reference.repository, by)
        .await?
        .ok_or_else(|| Error::NotFound {
            reference: reference.to_string(),
        })?;
    if let Some(digest) = &reference.digest
        && *digest != fetched.digest
    {
        return Err(Error::DigestMismatch {
            registry: reference.registry.clone(),
            what: "the package's manifest".into(),
            digest: digest.clone(),
        });
    }
    Ok((reference, fetched))
}

/// The package a signature must be made for.
struct Subject<'a> {
    digest: &'a str,
    size: u64,
    name: &'a str,
    version: &'a str,
}

/// The signatures stored beside the package (the referrers API, else the
/// referrers tag), each fetched by digest and verified for `subject`;
/// their blobs go into `blobs`. Referrers of other artifact types (an
/// SBOM, another tool's signature) are left aside.
async fn signatures(
    client: &Client,
    reference: &Reference,
    subject: &Subject<'_>,
    blobs: &mut BTreeMap<String, Vec<u8>>,
) -> Result<Vec<Blob>> {
    let repository = &reference.repository;
    let Some(index) = client
        .manifest(repository, &referrers_tag(subject.digest))
        .await?
    else {
        return Ok(Vec::new());
    };
    let index: ImageIndex = serde_json::from_slice(&index.bytes).unwrap_or(ImageIndex {
        manifests: Vec::new(),
    });
    let candidates: Vec<&Descriptor> = index
        .manifests
        .iter()
        .filter(|d| d.artifact_type.as_deref() == Some(SIGNATURE_ARTIFACT_TYPE))
        .collect();
    if candidates.len() > MAX_SIGNATURES {
        return Err(Error::NotAService {
            reference: reference.to_string(),
            reason: format!(
                "it has {} signatures; the limit is {MAX_SIGNATURES}",
                candidates.len()
            ),
        });
    }
    let mut referrers = Vec::new();
    for descriptor in candidates {
        let refused = |reason: String| Error::BadSignature {
            reference: reference.to_string(),
            signature: descriptor.digest.clone(),
            source: Box::new(syncplane_platform::Error::Archive(reason)),
        };
        let fetched = client
            .manifest(repository, &descriptor.digest)
            .await?
            .ok_or_else(|| refused("its manifest is not in the registry".into()))?;
        let manifest: ImageManifest = serde_json::from_slice(&fetched.bytes)
            .map_err(|e| refused(format!("its manifest is not valid: {e}")))?;
        let about_subject = manifest
            .subject
            .as_ref()
            .is_some_and(|s| s.digest == subject.digest && s.size == subject.size);
        let [layer] = manifest.layers.as_slice() else {
            return Err(refused("it does not have exactly one layer".into()));
        };
        if !about_subject
            || manifest.artifact_type.as_deref() != Some(SIGNATURE_ARTIFACT_TYPE)
            || layer.media_type != SIGNATURE_MEDIA_TYPE
        {
            return Err(refused(format!(
                "it is not a signature ({SIGNATURE_ARTIFACT_TYPE}) of {}",
                subject.digest
            )));
        }
        let bytes = client
            .blob(
                repository,
                &layer.digest,
                layer.size,
                MAX_SIGNATURE_BYTES,
                "a signature",
            )
            .await?;
        let signature: Signature = serde_json::from_slice(&bytes)
            .map_err(|e| refused(format!("it holds no valid signature: {e}")))?;
        signature
            .verify(subject.digest, subject.name, subject.version)
            .map_err(|source| Error::BadSignature {
                reference: reference.to_string(),
                signature: descriptor.digest.clone(),
                source: Box::new(source),
            })?;
        if !blobs.contains_key(&manifest.config.digest) {
            let config = client
                .blob(
                    repository,
                    &manifest.config.digest,
                    manifest.config.size,
                    MAX_METADATA_BYTES,
                    "a signature's config",
                )
                .await?;
            blobs.insert(manifest.config.digest.clone(), config);
        }
        blobs.insert(layer.digest.clone(), bytes);
        referrers.push(Blob {
            digest: fetched.digest,
            bytes: fetched.bytes,
        });
    }
    Ok(referrers)
}
