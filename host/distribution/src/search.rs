//! Finding services in a registry: `syncplane service search`.

use serde::Serialize;

use crate::client::Client;
use crate::error::Result;
use crate::pull::versions;

/// Most repositories of the catalog looked at.
pub const MAX_REPOSITORIES: usize = 5_000;

/// Most matching repositories whose versions are read (two requests each).
pub const MAX_MATCHES: usize = 200;

/// A service found in a registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Found {
    /// `PUBLISHER/NAME` in the registry.
    pub repository: String,
    /// Its published versions, newest first.
    pub versions: Vec<String>,
}

/// What [`search`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Search {
    /// The services whose repository name contains the text, by name.
    pub found: Vec<Found>,
    /// Whether the catalog or the matches were cut at
    /// [`MAX_REPOSITORIES`] or [`MAX_MATCHES`].
    pub cut: bool,
}

/// The services in `client`'s registry whose repository name contains
/// `text` (ignoring ASCII case; empty matches all): repositories whose
/// newest version is a syncplane service package, with their versions.
/// Other artifacts in the registry (images, charts) are left out.
///
/// # Errors
///
/// The client's: the registry cannot be reached, refuses the credentials,
/// or does not list its repositories.
pub async fn search(client: &Client, text: &str) -> Result<Search> {
    let (repositories, mut cut) = client.catalog(MAX_REPOSITORIES).await?;
    let text = text.to_ascii_lowercase();
    let mut matching: Vec<String> = repositories
        .into_iter()
        .filter(|r| r.to_ascii_lowercase().contains(&text))
        .collect();
    matching.sort();
    if matching.len() > MAX_MATCHES {
        matching.truncate(MAX_MATCHES);
        cut = true;
    }
    let mut found = Vec::new();
    for repository in matching {
        let reference = crate::Reference {
            registry: client.registry().to_owned(),
            repository: repository.clone(),
            tag: None,
            digest: None,
        };
        let versions = versions(client, &reference).await?;
        let Some(newest) = versions.first() else {
            continue;
        };
        if is_service(client, &repository, newest).await? {
            found.push(Found {
                repository,
                versions,
            });
        }
    }
    Ok(Search { found, cut })
}

/// Whether `repository:tag` is a syncplane service package.
async fn is_service(client: &Client, repository: &str, tag: &str) -> Result<bool> {
    let Some(fetched) = client.manifest(repository, tag).await? else {
        return Ok(false);
    };
    let manifest: serde_json::Value = serde_json::from_slice(&fetched.bytes).unwrap_or_default();
    Ok(manifest["artifactType"] == syncplane_platform::archive::ARTIFACT_TYPE)
}
