//! `syncplane service publish FILE HOST:PORT/PUBLISHER/NAME`.

use serde_json::{Value, json};
use syncplane_platform::archive::{Blob, IMAGE_INDEX, IMAGE_MANIFEST, PackedService};

use crate::client::{Client, ManifestKind};
use crate::error::{Error, Result};
use crate::reference::{Reference, check_tag};

/// What publishing did.
#[derive(Debug, Clone)]
pub struct Published {
    /// Where the package is now: the repository, tagged with its version.
    pub reference: Reference,
    /// The package's full name.
    pub name: String,
    /// Its version (the tag).
    pub version: String,
    /// Its digest, the same as in the file.
    pub digest: String,
    /// Blobs sent.
    pub blobs_sent: usize,
    /// Blobs the registry had already.
    pub blobs_present: usize,
    /// Signatures (referrers) the package carries, all now in the registry.
    pub signatures: usize,
    /// Whether the version was in the registry already, as this package
    /// (only signatures may have been added).
    pub republished: bool,
}

/// Publishes the packed file `archive` to `target`'s repository, tagged
/// with the package's exact version, with its signatures as referrers
/// (an image index under the tag `sha256-<hex of the digest>`, the
/// referrers tag scheme, for registries without the referrers API).
///
/// # Guarantees
///
/// A version the registry has already is never re-pointed: the same
/// package again only adds signatures it lacks; another package under the
/// same version is refused before anything is sent. Blobs go first and the
/// tag last, so a failure half-way leaves no tag naming missing blobs.
///
/// # Caveats
///
/// Two publishers racing for one new version: the registry keeps the
/// last tag written (the check and the push are two requests).
///
/// # Errors
///
/// [`Error::Package`] for a file that is not a valid package,
/// [`Error::BadTag`] for a tag other than the version (or `latest`),
/// [`Error::AlreadyPublished`], and the client's errors.
pub async fn publish(client: &Client, target: &Reference, archive: &[u8]) -> Result<Published> {
    let (layout, packed) = PackedService::layout(archive).map_err(|source| Error::Package {
        reference: target.to_string(),
        source: Box::new(source),
    })?;
    let version = layout.version.clone();
    let bad_tag = |reason: String| Error::BadTag {
        reference: target.to_string(),
        reason,
    };
    if target.digest.is_some() {
        return Err(bad_tag(
            "a package is published to a repository (its version is the tag), not to a digest"
                .into(),
        ));
    }
    if let Some(tag) = target.tag.as_deref().filter(|t| **t != version) {
        return Err(bad_tag(format!(
            "the tag `{tag}` is not the package's version {version}: packages are published under their exact version"
        )));
    }
    if version == "latest" {
        return Err(bad_tag("`latest` is never a package's tag".into()));
    }
    check_tag(&version).map_err(|reason| bad_tag(format!("the version {version}: {reason}")))?;
    let reference = target.with_tag(&version);
    let repository = &target.repository;
    let existing = client.manifest(repository, &version).await?;
    if let Some(existing) = existing
        .as_ref()
        .filter(|e| e.digest != layout.manifest.digest)
    {
        return Err(Error::AlreadyPublished {
            reference: reference.to_string(),
            published: existing.digest.clone(),
            ours: layout.manifest.digest.clone(),
        });
    }
    let (mut blobs_sent, mut blobs_present) = (0, 0);
    for (digest, bytes) in &layout.blobs {
        if client.push_blob(repository, digest, bytes).await? {
            blobs_sent += 1;
        } else {
            blobs_present += 1;
        }
    }
    if existing.is_none() {
        client
            .push_manifest(
                repository,
                &version,
                ManifestKind::Image,
                &layout.manifest.bytes,
            )
            .await?;
    }
    for referrer in &layout.referrers {
        client
            .push_manifest(
                repository,
                &referrer.digest,
                ManifestKind::Image,
                &referrer.bytes,
            )
            .await?;
    }
    if !layout.referrers.is_empty() {
        add_referrers(
            client,
            repository,
            &layout.manifest.digest,
            &layout.referrers,
        )
        .await?;
    }
    Ok(Published {
        reference,
        name: packed.package.manifest.full_name(),
        version,
        digest: packed.digest,
        blobs_sent,
        blobs_present,
        signatures: layout.referrers.len(),
        republished: existing.is_some(),
    })
}

/// The tag of the referrers of `digest` in the referrers tag scheme:
/// `sha256-<hex>`.
#[must_use]
pub fn referrers_tag(digest: &str) -> String {
    digest.replacen(':', "-", 1)
}

/// Adds `referrers` to the image index under [`referrers_tag`], keeping
/// the referrers it lists already (other signers', other tools').
async fn add_referrers(
    client: &Client,
    repository: &str,
    subject: &str,
    referrers: &[Blob],
) -> Result<()> {
    let tag = referrers_tag(subject);
    let mut descriptors: Vec<Value> = match client.manifest(repository, &tag).await? {
        Some(index) => serde_json::from_slice::<Value>(&index.bytes)
            .ok()
            .and_then(|v| v["manifests"].as_array().cloned())
            .unwrap_or_default(),
        None => Vec::new(),
    };
    let before = descriptors.len();
    for referrer in referrers {
        if descriptors
            .iter()
            .any(|d| d["digest"] == referrer.digest.as_str())
        {
            continue;
        }
        let manifest: Value = serde_json::from_slice(&referrer.bytes).unwrap_or(Value::Null);
        let mut descriptor = json!({
            "mediaType": IMAGE_MANIFEST,
            "artifactType": manifest["artifactType"],
            "digest": referrer.digest,
            "size": referrer.bytes.len(),
        });
        if manifest["annotations"].is_object() {
            descriptor["annotations"] = manifest["annotations"].clone();
        }
        descriptors.push(descriptor);
    }
    if descriptors.len() == before {
        return Ok(());
    }
    descriptors.sort_by(|a, b| {
        a["digest"]
            .as_str()
            .unwrap_or_default()
            .cmp(b["digest"].as_str().unwrap_or_default())
    });
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": IMAGE_INDEX,
        "manifests": descriptors,
    }))
    .map_err(|e| Error::Status {
        registry: client.registry().to_owned(),
        what: format!("the referrers of {subject}"),
        status: 0,
        message: e.to_string(),
    })?;
    client
        .push_manifest(repository, &tag, ManifestKind::Index, &index)
        .await
}
