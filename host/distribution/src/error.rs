//! What can go wrong talking to a registry.

use std::path::PathBuf;

/// A failed registry operation. Messages name the registry, the reference
/// and the blob or manifest involved; they never carry a password or token.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The text is not `HOST[:PORT]/REPOSITORY[:TAG|@DIGEST]`.
    #[error(
        "`{reference}` is not a registry reference ({reason}); write HOST:PORT/PUBLISHER/NAME[:VERSION]"
    )]
    BadReference {
        /// The text given.
        reference: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A plain-http URL to a host that is not loopback, without
    /// `--insecure` (a redirect or a token service, for instance).
    #[error(
        "refusing plain http to {url}: only loopback registries are reached without TLS, unless --insecure"
    )]
    Insecure {
        /// The URL refused.
        url: String,
    },
    /// The request could not be sent or its answer not read.
    #[error("cannot reach {registry} ({what})")]
    Request {
        /// The registry.
        registry: String,
        /// What was asked.
        what: String,
        /// Why.
        #[source]
        source: reqwest::Error,
    },
    /// The registry answered with an unexpected status.
    #[error("{registry} answered {status} to {what}: {message}")]
    Status {
        /// The registry.
        registry: String,
        /// What was asked.
        what: String,
        /// The HTTP status.
        status: u16,
        /// The registry's error messages, shortened.
        message: String,
    },
    /// The registry wants credentials it was not given, or refused them.
    #[error("{registry} refused {what}: {hint}")]
    Unauthorized {
        /// The registry.
        registry: String,
        /// What was asked.
        what: String,
        /// What to do.
        hint: String,
    },
    /// A manifest or blob fetched by digest does not hash to it.
    #[error(
        "{what} ({digest}) from {registry} does not match its digest: the registry's copy is damaged or was changed"
    )]
    DigestMismatch {
        /// The registry.
        registry: String,
        /// The blob or manifest (a layer's path when it has one).
        what: String,
        /// The digest it was fetched by.
        digest: String,
    },
    /// A manifest or blob larger than a package may hold.
    #[error("{what} ({digest}) is {size} bytes; the limit is {limit}")]
    TooLarge {
        /// The blob or manifest.
        what: String,
        /// Its digest.
        digest: String,
        /// Its size, as declared or as received so far.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The reference does not name a syncplane service.
    #[error("{reference} is not a syncplane service: {reason}")]
    NotAService {
        /// The reference.
        reference: String,
        /// Why not.
        reason: String,
    },
    /// The reference names a tag or repository the registry does not have.
    #[error("{reference} is not in the registry")]
    NotFound {
        /// The reference.
        reference: String,
    },
    /// A tag holds another version than its name: tags are exact versions.
    #[error(
        "{reference} holds {name} {version}, not version {tag}: a package is published under its exact version, so this tag was moved or pushed by hand"
    )]
    TagMismatch {
        /// The reference.
        reference: String,
        /// The tag.
        tag: String,
        /// The package's full name.
        name: String,
        /// The version the package states.
        version: String,
    },
    /// Publishing under a tag other than the package's version.
    #[error("{reference}: {reason}")]
    BadTag {
        /// The reference.
        reference: String,
        /// Why the tag cannot be used.
        reason: String,
    },
    /// The version is published already, with other content.
    #[error(
        "{reference} is published already as {published}, not as this package ({ours}): a published version is never overwritten; publish a new version"
    )]
    AlreadyPublished {
        /// The reference.
        reference: String,
        /// The digest the registry has.
        published: String,
        /// The digest of the package being published.
        ours: String,
    },
    /// The package pulled carries no signature and one was required.
    #[error("{reference} ({digest}) carries no signature; pull it anyway with --allow-unsigned")]
    Unsigned {
        /// The reference.
        reference: String,
        /// The package's digest.
        digest: String,
    },
    /// A signature stored beside the package is not valid for it.
    #[error("the signature {signature} of {reference} is refused")]
    BadSignature {
        /// The reference.
        reference: String,
        /// The signature's manifest digest.
        signature: String,
        /// Why.
        #[source]
        source: Box<syncplane_platform::Error>,
    },
    /// The package's parts do not make a valid package.
    #[error("the package {reference} is refused")]
    Package {
        /// The reference, or the file published.
        reference: String,
        /// The check that failed.
        #[source]
        source: Box<syncplane_platform::Error>,
    },
    /// A dependency of a package cannot be met from the registry, or only
    /// by upgrading an installed service (never done implicitly).
    #[error("{package} depends on {dependency} {requirement}: {problem}")]
    Dependency {
        /// The package that declares it (`name version`).
        package: String,
        /// The service depended on.
        dependency: String,
        /// The versions it accepts.
        requirement: String,
        /// What stops it being met, and what would.
        problem: String,
    },
    /// The credentials file cannot be read or written.
    #[error("cannot {action} the registry credentials {path}")]
    CredentialsIo {
        /// `read` or `write`.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The credentials file is not valid.
    #[error("the registry credentials {path} are not valid: {reason}")]
    CredentialsFile {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// The result of a registry operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;
