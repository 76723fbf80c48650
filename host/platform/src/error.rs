//! Platform errors.

/// What went wrong opening the host or installing a service.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The manifest is invalid; the message says where.
    #[error("invalid service manifest: {0}")]
    Manifest(String),
    /// A file of a service directory could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The data directory could not be prepared.
    #[error("cannot prepare the data directory {path}")]
    DataDir {
        /// The directory.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A file of a package has a path that is absolute, not normalized or
    /// leaves the package (directly or through a symlink), or is too large;
    /// nothing of it was read.
    #[error("{file} {problem}")]
    PackageFile {
        /// The file, as the manifest names it.
        file: crate::package_files::PackageFile,
        /// What is wrong with it.
        problem: crate::package_files::FileProblem,
    },
    /// A file of a package directory could not be read.
    #[error("cannot read {file} in {dir}")]
    ReadPackageFile {
        /// The file, as the manifest names it.
        file: crate::package_files::PackageFile,
        /// The package directory.
        dir: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A package's files together are larger than the host accepts.
    #[error(
        "the package's files total at least {}; the limit is {}",
        crate::package_files::human_size(*.bytes),
        crate::package_files::human_size(*.limit)
    )]
    PackageTooLarge {
        /// Their size in bytes, counted up to the file that went over.
        bytes: u64,
        /// The limit in bytes.
        limit: u64,
    },
    /// A package names a file or step that is not in it, or a model no file defines.
    #[error("invalid service package: {0}")]
    Package(String),
    /// An upgrade asks for grants the installed version did not have, and
    /// was not sent with `--accept-grants`; the installed version keeps
    /// running.
    #[error(
        "upgrading {service} from {installed} to {version} widens its grants ({}): review them (`service diff`) and upgrade with --accept-grants; {installed} keeps running",
        added.join(", ")
    )]
    GrantsWidened {
        /// The service.
        service: String,
        /// The installed version.
        installed: String,
        /// The version offered.
        version: String,
        /// The grants it adds.
        added: Vec<String>,
    },
    /// A component imports an interface this host does not serve (a WIT
    /// package, version or interface it lacks); nothing was compiled.
    #[error("component {step} imports {import}; {served}")]
    ImportNotServed {
        /// The step whose component it is.
        step: String,
        /// The import, `namespace:package/interface@version`.
        import: String,
        /// What the host serves instead.
        served: String,
    },
    /// A component imports an interface its manifest grants nothing for
    /// (`wasi:http/outgoing-handler` without `outbound_http`).
    #[error(
        "component {step} imports {import}, but the manifest's [capabilities] grant no {grant}: declare what it needs, or build it without that import"
    )]
    UndeclaredImport {
        /// The step whose component it is.
        step: String,
        /// The import.
        import: String,
        /// The grant it needs.
        grant: String,
    },
    /// A service's components could not be built.
    #[error(transparent)]
    Build(syncplane_guest_build::Error),
    /// A packed service (`.spkg`) that cannot be trusted or read: the
    /// message says what is wrong with it.
    #[error("invalid packed service: {0}")]
    Archive(String),
    /// A key file or public key that cannot be used; the message names the
    /// file, never its content.
    #[error("{problem}")]
    Key {
        /// What is wrong.
        problem: String,
    },
    /// A signature in a packed service that does not hold: made for
    /// another package, name or version, or not by the key it names. The
    /// whole file is refused.
    #[error("invalid packed service: the signature by {key} {problem}")]
    BadSignature {
        /// The key the signature names.
        key: String,
        /// What does not hold.
        problem: String,
    },
    /// A trust policy file that cannot be used; the message says where.
    #[error("invalid trust policy: {problem}")]
    Trust {
        /// What is wrong, with file:line:column.
        problem: String,
    },
    /// The operator's trust policy refuses the package; nothing was
    /// compiled or installed.
    #[error("package {name} {version} ({digest}) is refused by the trust policy: {reason}")]
    Untrusted {
        /// The package's full name.
        name: String,
        /// Its version.
        version: String,
        /// Its digest, or `(not a packed file)`.
        digest: String,
        /// The rule that failed, naming keys and patterns.
        reason: String,
    },
    /// The service's models do not parse or fit.
    #[error("service `{service}` has invalid models:\n{source}")]
    Models {
        /// The service.
        service: String,
        /// The xproto errors, with file:line:column.
        source: syncplane_xproto::Error,
    },
    /// A component could not be loaded.
    #[error(transparent)]
    Component(#[from] syncplane_runtime::Error),
    /// The operator's policy does not allow what the package asks for;
    /// nothing was installed.
    #[error("service `{service}` asks for capabilities the operator's policy does not allow:\n  - {}", .refused.join("\n  - "))]
    Refused {
        /// The service.
        service: String,
        /// Each grant not allowed, with how to allow it.
        refused: Vec<String>,
    },
    /// Names the package would take belong to another service or to core.
    #[error("service `{service}` cannot be installed; its names clash:\n  - {}", .clashes.join("\n  - "))]
    Collision {
        /// The service.
        service: String,
        /// Each clash, naming both sides.
        clashes: Vec<String>,
    },
    /// An older version would replace the installed one.
    #[error(
        "service `{service}` {installed} is installed; {requested} is older (pass --allow-downgrade to install it anyway, or `service rollback` to return to the previous version)"
    )]
    Downgrade {
        /// The service.
        service: String,
        /// The installed version.
        installed: String,
        /// The version asked for.
        requested: String,
    },
    /// The change cannot be applied to the installed version and its objects.
    #[error("service `{service}` cannot be changed as asked; what blocks it:\n  - {}", .blockers.join("\n  - "))]
    Incompatible {
        /// The service.
        service: String,
        /// What blocks the change.
        blockers: Vec<String>,
        /// The whole plan, blockers included.
        plan: Box<crate::plan::Plan>,
    },
    /// The package's `requires` excludes this host's version.
    #[error(
        "service `{service}` requires syncplane {requires}; this host is syncplane {host}: upgrade the host or install a version of the service made for {host}"
    )]
    HostVersion {
        /// The service.
        service: String,
        /// Its `requires`.
        requires: String,
        /// This host's version.
        host: String,
    },
    /// Services the package depends on are not installed at a version it
    /// accepts.
    #[error(
        "{service} {version} needs services that are not installed at a matching version:\n  - {}",
        unmet.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n  - ")
    )]
    Dependencies {
        /// The service.
        service: String,
        /// Its version.
        version: String,
        /// Each dependency not met.
        unmet: Vec<crate::dependencies::DependencyStatus>,
    },
    /// Rollback of a service with no earlier version kept.
    #[error("service `{0}` has no previous version to roll back to")]
    NoPrevious(String),
    /// Other installed services depend on the service's models.
    #[error("service `{service}` cannot be uninstalled:\n  - {}", .dependents.join("\n  - "))]
    Dependents {
        /// The service.
        service: String,
        /// Each dependent, naming the model.
        dependents: Vec<String>,
    },
    /// The service's models still hold objects.
    #[error("service `{service}` still has objects: {}; uninstall with --purge to delete them first (their delete steps run)", .counts.iter().map(|c| format!("{} {}", c.model, c.objects)).collect::<Vec<_>>().join(", "))]
    HasObjects {
        /// The service.
        service: String,
        /// Objects per model.
        counts: Vec<crate::plan::ModelCount>,
    },
    /// The purge did not finish in time.
    #[error("service `{service}`: the purge did not finish; objects still being torn down: {} (see `syncplane status`; uninstall --purge again to go on)", .remaining.iter().map(|c| format!("{} {}", c.model, c.objects)).collect::<Vec<_>>().join(", "))]
    PurgeIncomplete {
        /// The service.
        service: String,
        /// Objects left per model.
        remaining: Vec<crate::plan::ModelCount>,
    },
    /// The service's running invocations did not end in time for a
    /// lifecycle change; nothing was changed.
    #[error(
        "service `{service}`: invocations still running after {waited:?}; nothing was changed, try again"
    )]
    StillRunning {
        /// The service.
        service: String,
        /// How long the change waited.
        waited: std::time::Duration,
    },
    /// No such service is installed.
    #[error("no service `{0}` is installed")]
    UnknownService(String),
    /// The service has no pull step or event step of that name.
    #[error("service `{service}` has no {kind} `{name}`")]
    UnknownStep {
        /// The service.
        service: String,
        /// `pull step` or `event step`.
        kind: &'static str,
        /// The name asked for.
        name: String,
    },
    /// A config or secret name the service's manifest does not declare.
    #[error("service `{service}` declares no {kind} `{name}` (its manifest lists: {declared})")]
    Undeclared {
        /// The service.
        service: String,
        /// `config` or `secret`.
        kind: &'static str,
        /// The name asked for.
        name: String,
        /// What the manifest declares.
        declared: String,
    },
    /// A limit set for a service is out of range; nothing was changed.
    #[error("service `{service}`: {problem}")]
    InvalidQuota {
        /// The service.
        service: String,
        /// What is wrong, with the allowed range.
        problem: String,
    },
    /// The secret key file is missing or unusable.
    #[error("secret key {path}: {message}")]
    SecretKey {
        /// The key file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A stored secret does not open with the host's key.
    #[error(
        "secret `{name}` of service `{service}` cannot be opened with this host's secret key (was the key replaced?)"
    )]
    Secret {
        /// The service.
        service: String,
        /// The secret's name.
        name: String,
    },
    /// The core failed.
    #[error(transparent)]
    Core(#[from] syncplane_core::Error),
}

impl Error {
    /// Whether the caller sent something wrong (a 4xx), not the host failing.
    pub fn is_client_error(&self) -> bool {
        match self {
            Error::Core(e) => e.is_client_error(),
            Error::DataDir { .. }
            | Error::SecretKey { .. }
            | Error::Secret { .. }
            | Error::PurgeIncomplete { .. }
            | Error::StillRunning { .. } => false,
            _ => true,
        }
    }
}

/// Result with the platform's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
