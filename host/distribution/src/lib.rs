//! Packed services in OCI registries: publish, pull, list versions.
//!
//! # Brief overview
//!
//! - [`Reference`] is where a package is: `HOST[:PORT]/PUBLISHER/NAME`,
//!   with a `:VERSION` tag or an `@sha256:…` digest.
//! - [`Client`] talks the [OCI distribution API] to one registry: over
//!   https, or plain http to loopback only unless
//!   [`ClientOptions::insecure`]; HTTP Basic or bearer-token
//!   authentication with the [`Credentials`] `registry login` keeps in a
//!   [`CredentialStore`].
//! - [`publish`] pushes a packed file: its blobs, its image manifest
//!   tagged with the exact version (never `latest`, never re-pointed), and
//!   its signatures as referrers under the referrers tag scheme
//!   (`sha256-<hex>`), which registries without the referrers API, as
//!   CNCF distribution 2.8, keep like any tag.
//! - [`pull`] resolves a tag to a digest once, verifies the signatures
//!   for that digest, then fetches every blob by digest, hashing it as it
//!   streams in, and returns the packed file byte for byte as it was
//!   published ([`Pulled`]), read back with every check a file gets.
//!
//! The package's identity is its image manifest's digest: the same in the
//! file and in every registry (`skopeo inspect --raw` shows those bytes).
//!
//! ```no_run
//! # async fn example(file: &[u8]) -> syncplane_distribution::Result<()> {
//! use syncplane_distribution::{Client, ClientOptions, PullOptions, Reference, publish, pull};
//! let target = Reference::parse("127.0.0.1:5000/acme/hello-world")?;
//! let client = Client::new(&target.registry, ClientOptions::default())?;
//! let published = publish(&client, &target, file).await?;
//! let pulled = pull(&client, &published.reference, PullOptions { require_signature: true }).await?;
//! assert_eq!(pulled.packed.digest, published.digest);
//! # Ok(())
//! # }
//! ```
//!
//! [OCI distribution API]: https://github.com/opencontainers/distribution-spec/blob/main/spec.md
#![deny(missing_docs)]

mod auth;
mod client;
mod credentials;
mod dependencies;
mod error;
mod publish;
mod pull;
mod reference;
mod search;

pub use client::{Client, ClientOptions, FetchedManifest, ManifestKind};
pub use credentials::{CONFIG_DIR_ENV, CREDENTIALS_FILE, CredentialStore, Credentials};
pub use dependencies::{MAX_DEPENDENCIES, pull_dependencies};
pub use error::{Error, Result};
pub use publish::{Published, publish, referrers_tag};
pub use pull::{PullOptions, Pulled, pull, versions};
pub use reference::Reference;
pub use search::{Found, MAX_MATCHES, MAX_REPOSITORIES, Search, search};
