//! The composition root of a syncplane host.
//!
//! # Brief overview
//!
//! - [`Host`] opens a data directory ([`HostConfig`]), wires the core, the
//!   engine and the component runtime together, and installs services while
//!   running ([`Host::install`]); installed services are reloaded on start.
//! - [`ServiceQuota`] is what one service may use (objects, concurrent
//!   invocations, rate, memory, deadline), set by the operator per service
//!   ([`Host::set_service_quota`]) over the host's defaults.
//! - [`ServicePackage`] is what gets installed: a [`Manifest`] (the
//!   `syncplane.toml` authors write), xproto sources and compiled components.
#![deny(missing_docs)]

pub mod archive;
pub mod build;
mod collision;
mod dependencies;
mod diff;
mod error;
mod events;
mod follow;
mod history;
mod host;
mod integrity;
mod kafka;
mod lifecycle;
mod manifest;
mod package;
mod package_files;
mod plan;
mod provenance;
mod pulls;
mod quota;
mod registry;
mod resolve;
mod secrets;
mod signing;
mod subscription;
mod trust;

pub use dependencies::{DependencyStatus, HOST_VERSION, accepts, best_match, install_order};
pub use diff::{Changes, DiffSide, PackageDiff};
pub use error::{Error, Result};
pub use events::{BUS_CAPACITY, EventStepStatus};
pub use history::{HistoryEntry, MAX_HISTORY};
pub use host::{
    ADMIN_PASSWORD_FILE, GuestMemoryStatus, Host, HostConfig, HostStatus, InspectedLimits,
    Inspection, ServiceDependency, ServiceSettings, ServiceStatus, SharedHostStatus, StepStatus,
    StoreStatus,
};
pub use lifecycle::{InstallOptions, PURGE_TIMEOUT, RollbackOutcome, ServiceDetails};
pub use manifest::{
    BuildSection, EventBusKind, EventBusSection, EventStepSection, GuiViewSection, MANIFEST_FILE,
    MAX_GUI_VIEWS, Manifest, ModelPolicySection, Observes, PullStepSection, ServiceSection,
    SyncStepSection, Toolchain, toml_error,
};
pub use package::{InspectedImport, ServicePackage};
pub use package_files::{
    FileProblem, MAX_COMPONENT_BYTES, MAX_MANIFEST_BYTES, MAX_MODEL_DEPS_BYTES,
    MAX_PACKAGE_FILES_BYTES, MAX_XPROTO_BYTES, PackageFile,
};
pub use plan::{Action, ModelChange, ModelCount, Plan};
pub use provenance::Provenance;
pub use pulls::PullStepStatus;
pub use quota::{
    Cap, MAX_SERVICE_CONCURRENCY, MAX_SERVICE_DEADLINE, MAX_SERVICE_RATE, MIN_SERVICE_DEADLINE,
    QuotaChange, QuotaOverrides, QuotaReport, QuotaUsage, ServiceQuota, Setting,
};
pub use registry::{InstalledService, Origin};
pub use secrets::{SECRET_KEY_FILE, SecretBox};
pub use signing::{ED25519, PublicKey, Signature, SigningKey, signed_message};
pub use subscription::{PatternError, Subscription};
pub use syncplane_core::StoreLocation;
pub use syncplane_engine::{EngineConfig, RetryPolicy, ServiceLimits, Stats, StepActivity};
pub use syncplane_runtime::Limits;
pub use syncplane_runtime::capability;
pub use trust::{
    Candidate, GrantsCeiling, NamePattern, Publisher, Requirement, Revoked, TrustPolicy, Verdict,
};
