//! Command-line arguments.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use serde_json::Value;

pub use crate::registry_args::{
    DiffArgs, PublishPackageArgs, PullArgs, ReachArgs, RegistryCommand, SearchArgs, VersionsArgs,
};

/// A control plane for service synchronizers, with service logic in
/// WebAssembly components.
#[derive(Debug, Parser)]
#[command(name = "syncplane", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the REST and TOSCA API and run the synchronizer.
    Serve(Box<ServeArgs>),
    /// Run the hello-world tutorial end to end on a temporary data directory.
    Demo(DemoArgs),
    /// Manage services on a running server.
    Service {
        #[command(subcommand)]
        command: ServiceCommand,
        #[command(flatten)]
        log: LogArgs,
    },
    /// Check xproto files and generate from them.
    Xproto {
        #[command(subcommand)]
        command: XprotoCommand,
    },
    /// Generate from xproto files (to stdout): `syncplane gen proto
    /// core.xproto my-service.xproto` prints the `xos.proto` a server with
    /// those models serves over gRPC. The same as `xproto gen --target`.
    Gen {
        /// What to generate.
        #[arg(value_enum)]
        target: GenTarget,
        /// The SQL dialect of `sql`.
        #[arg(long, value_enum, default_value = "sqlite")]
        dialect: SqlDialect,
        #[command(flatten)]
        files: XprotoFiles,
    },
    /// Measure the host with a no-op guest and print the figures.
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
    /// Publish events to a running server's event steps.
    Event {
        #[command(subcommand)]
        command: EventCommand,
    },
    /// Show what the synchronizer of a running server is doing: per step,
    /// pending, running, failed and deferred objects, last error, next retry.
    Status(StatusArgs),
    /// Read the audit log of a running server (admins): who wrote what,
    /// oldest first.
    Audit(AuditArgs),
    /// Manage your API tokens on a running server: long-lived bearer
    /// tokens for automation (use one with --token / SYNCPLANE_TOKEN).
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Publishers' signing keys (ed25519): `key generate NAME`.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// Print this build's version and the WIT package versions it serves
    /// to components (`--json` for tools).
    Version(VersionArgs),
    /// Move a host's store: `store copy --from DATA_DIR --to
    /// postgres://…` copies an embedded installation to PostgreSQL.
    Store {
        #[command(subcommand)]
        command: StoreCommand,
    },
    /// OCI registries packages are published to and pulled from:
    /// `registry login HOST:PORT -u USER < PASSWORD_FILE`.
    Registry {
        #[command(subcommand)]
        command: RegistryCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Copy everything in a data directory's SQLite store (services and
    /// their packages, objects with their ids and bookkeeping, secrets,
    /// users, sessions, audit) into an empty PostgreSQL database, then
    /// check that every table has as many rows on both sides. Stop the
    /// server first; then start it with `--store` and the same data
    /// directory, which keeps the key that seals secrets.
    Copy(StoreCopyArgs),
}

#[derive(Debug, Args)]
pub struct StoreCopyArgs {
    /// The data directory whose store is copied (its `syncplane.db`).
    #[arg(long, value_name = "DATA_DIR")]
    pub from: PathBuf,
    /// The store to copy into, empty: `postgres://USER[:PASSWORD]@HOST:PORT/DB`
    /// (the database must exist), or a path for a new SQLite file.
    #[arg(long, value_name = "STORE", env = "SYNCPLANE_STORE", hide_env_values = true, value_parser = parse_store)]
    pub to: syncplane_platform::StoreLocation,
    #[command(flatten)]
    pub log: LogArgs,
}

#[derive(Debug, Args)]
pub struct VersionArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Make a signing key: `NAME.key`, the private key as PKCS#8 PEM (mode
    /// 0600; encrypted with the passphrase of --passphrase-file, else
    /// plain), and `NAME.pub`, one line `ed25519:<base64>` to hand to
    /// operators. Refuses to overwrite either.
    Generate(KeyGenerateArgs),
}

#[derive(Debug, Args)]
pub struct KeyGenerateArgs {
    /// The key's name: the files are NAME.key and NAME.pub.
    pub name: String,
    /// Where to write them.
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
    /// A file whose first line is the passphrase that encrypts the private
    /// key. Without it the key is written unencrypted, protected by its
    /// file mode only.
    #[arg(long)]
    pub passphrase_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SignArgs {
    /// The packed service (`.spkg`); the signature is added to it.
    pub file: PathBuf,
    /// The private key (`NAME.key` of `key generate`).
    #[arg(long)]
    pub key: PathBuf,
    /// The file with the key's passphrase, when it is encrypted.
    #[arg(long)]
    pub passphrase_file: Option<PathBuf>,
    /// Write the signed package here instead of replacing FILE.
    #[arg(short, long, value_name = "OUT")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The packed service (`.spkg`), or a registry reference
    /// (`HOST:PORT/PUBLISHER/NAME[:VERSION|@DIGEST]`) to pull and check.
    pub file: PathBuf,
    #[command(flatten)]
    pub reach: ReachArgs,
    /// A trust policy (TOML, as `serve --trust`) to check the package
    /// against; without one, only the digests and signatures are checked.
    #[arg(long)]
    pub trust: Option<PathBuf>,
    /// Check as an install with --allow-unsigned would.
    #[arg(long)]
    pub allow_unsigned: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only writes to this model, e.g. `Site`.
    #[arg(long)]
    pub model: Option<String>,
    /// Only writes by this user (an e-mail), or by a principal as the log
    /// names it, e.g. `service dns step zones`.
    #[arg(long)]
    pub user: Option<String>,
    /// Only writes in this last stretch of time, e.g. `1h` or `2days`.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub since: Option<Duration>,
    /// At most this many entries.
    #[arg(long, default_value_t = 1000)]
    pub limit: u32,
    /// Print the JSON the server returns.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an API token and print it, once, on stdout (the details go
    /// to stderr). The server keeps only its digest: it cannot be shown
    /// again. Needs a password (or session), not another API token.
    Create(TokenCreateArgs),
    /// List your live tokens (API tokens and sessions): id, name, kind,
    /// created, expires. Never the secret. Administrators may list another
    /// user's with --user.
    List(TokenListArgs),
    /// Revoke one of your tokens by its name or id; it stops working at once.
    /// Administrators may revoke another user's with --user.
    Revoke(TokenRevokeArgs),
}

#[derive(Debug, Args)]
pub struct TokenCreateArgs {
    /// A name for the token, unique among yours (default: its id).
    #[arg(long)]
    pub name: Option<String>,
    /// How long the token lives (e.g. `30d`, `12h`), or `never`.
    #[arg(long, default_value = "30d")]
    pub expires: String,
    /// Print the token and its details as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Args)]
pub struct TokenListArgs {
    /// Another user's tokens, by e-mail (administrators only).
    #[arg(long)]
    pub user: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Args)]
pub struct TokenRevokeArgs {
    /// The token's name or id (see `syncplane token list`).
    pub which: String,
    /// Revoke a token of this user, by e-mail (administrators that are not
    /// read-only).
    #[arg(long)]
    pub user: Option<String>,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Subcommand)]
pub enum EventCommand {
    /// Publish one event on the server's in-process bus.
    Publish(PublishArgs),
}

#[derive(Debug, Args)]
pub struct PublishArgs {
    /// The topic, e.g. `regions`.
    pub topic: String,
    /// The payload (often JSON).
    pub value: String,
    /// The event's key.
    #[arg(long)]
    pub key: Option<String>,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Sync freshly created objects through a no-op step on a temporary
    /// SQLite store; then time single changes among them.
    Sync(Box<BenchSyncArgs>),
    /// Serve the API on loopback from a temporary data directory and
    /// measure it: /healthz rate, authenticated list rate with a session
    /// token and with HTTP Basic (4 clients each), a token client's latency
    /// idle and during a wrong-password flood, and login timing of an
    /// unknown user against a wrong password.
    Api(BenchApiArgs),
    /// Measure one service's change-to-enacted latency alone, then while
    /// another service has slow calls running and a backlog queued behind
    /// them (no-op guests, a temporary embedded store).
    Isolation(BenchIsolationArgs),
    /// Serve the API on loopback from a temporary data directory and
    /// create objects through it: REST batches, one large TOSCA recipe,
    /// and single REST creates for comparison; prints objects/s of each.
    Ingest(BenchIngestArgs),
    /// Serve the API on loopback from a temporary data directory, create
    /// objects through REST batches, then time filtered, ordered and paged
    /// list requests among them; prints p50/p99 of each.
    Query(BenchQueryArgs),
    /// Install many copies of services into a `syncplane serve` child
    /// process and measure what they cost idle (private memory from
    /// /proc/PID/smaps_rollup), the first change of an idle service (cold)
    /// and a second one (warm), one busy service's throughput while the
    /// others idle, and a restart with all of them installed.
    Idle(BenchIdleArgs),
    /// Publish a signed package of about 20 MB to a loopback
    /// `docker-registry` this command starts (or --registry), then time
    /// pulling it, verifying the pulled file and installing it into a host
    /// on a temporary data directory.
    Registry(BenchRegistryArgs),
}

#[derive(Debug, Args)]
pub struct BenchRegistryArgs {
    /// The package's size in MiB (its component padded to it).
    #[arg(long, default_value_t = 20)]
    pub size_mib: usize,
    /// Pulls (and verifications) to time.
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
    /// A registry to use instead of starting one (HOST:PORT; the
    /// credentials of `registry login`).
    #[arg(long)]
    pub registry: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct BenchIdleArgs {
    /// A service directory and how many copies to install, e.g.
    /// `guests/noop-py=100` (built first; its first sync step's model must
    /// have a `name` field, as `service new` writes). Repeatable.
    #[arg(long = "service", value_name = "DIR=COUNT")]
    pub service: Vec<String>,
    /// Objects created for one service of each kind to measure throughput.
    #[arg(long, default_value_t = 2_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub objects: u32,
    /// The server's --guest-idle-unload, in seconds.
    #[arg(long, default_value_t = 2)]
    pub idle_unload_secs: u64,
    /// Seconds to wait once everything is unloaded before memory is read
    /// (freed memory goes back to the kernel after a short decay).
    #[arg(long, default_value_t = 12)]
    pub settle_secs: u64,
    /// Print one JSON object instead of a summary.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct BenchQueryArgs {
    /// Sites created before the queries are timed.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u32).range(1_000..=10_000_000))]
    pub objects: u32,
    /// Objects per REST batch (the API takes at most 10,000).
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub batch: u32,
    /// Requests timed of each kind (sequential, one client).
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..))]
    pub samples: u32,
    /// Print one JSON object instead of a summary (no progress bar).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub log: LogArgs,
}

#[derive(Debug, Args)]
pub struct BenchIngestArgs {
    /// Objects created through REST batches.
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub objects: u32,
    /// Objects per REST batch (the API takes at most 10,000).
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub batch: u32,
    /// Node templates of the TOSCA recipe (the API takes at most 10,000).
    #[arg(long, default_value_t = 5_000, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub templates: u32,
    /// Objects created one request each, for comparison.
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u32).range(0..=100_000))]
    pub singles: u32,
    /// Print one JSON object instead of a summary (no progress bar).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub log: LogArgs,
}

#[derive(Debug, Args)]
pub struct BenchIsolationArgs {
    /// Calls of the busy service that sleep.
    #[arg(long, default_value_t = 8)]
    pub slow: u32,
    /// How long each of them sleeps.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub slow_step: Duration,
    /// No-op objects of the busy service queued behind the slow calls.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
    pub backlog: u32,
    /// Changes of the quiet service timed in each phase.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..))]
    pub changes: u32,
    /// Deadline of one guest call.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub step_timeout: Duration,
    /// Print one JSON object instead of a summary (no progress bars).
    #[arg(long)]
    pub json: bool,
    /// Keep the store here instead of a temporary directory (must not exist).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    #[command(flatten)]
    pub log: LogArgs,
}

#[derive(Debug, Args)]
pub struct BenchApiArgs {
    /// Concurrent clients of each rate measurement and of the flood.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub clients: u32,
    /// How long each rate measurement runs.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Requests of each latency measurement (sequential).
    #[arg(long, default_value_t = 300)]
    pub samples: u32,
    /// Login attempts of each kind for the timing comparison.
    #[arg(long, default_value_t = 40)]
    pub logins: u32,
    /// Print one JSON object instead of a summary.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub log: LogArgs,
}

#[derive(Debug, Args)]
pub struct BenchSyncArgs {
    /// How many objects to create and sync.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    pub objects: u32,
    /// How many single-object changes to time after the bulk sync.
    #[arg(long, default_value_t = 100)]
    pub changes: u32,
    /// How many back-to-back invocations to time for the per-call overhead.
    #[arg(long, default_value_t = 2000)]
    pub invocations: u32,
    /// Print one JSON object instead of a summary (no progress bars).
    #[arg(long)]
    pub json: bool,
    /// Keep the store here instead of a temporary directory (must not exist).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Run on this store instead of the data directory's SQLite file: an
    /// empty PostgreSQL database (`postgres://USER@HOST:PORT/DB`).
    #[arg(long, env = "SYNCPLANE_STORE", hide_env_values = true, value_parser = parse_store)]
    pub store: Option<syncplane_platform::StoreLocation>,
    /// Hosts sharing the store (in this process, each with its own engine,
    /// leases and connections); more than one needs `--store postgres://…`.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=8))]
    pub hosts: u32,
    #[command(flatten)]
    pub tuning: TuningArgs,
    #[command(flatten)]
    pub log: LogArgs,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// Print the JSON the server returns.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum XprotoCommand {
    /// Parse and validate files; bases and links that no file defines
    /// resolve to the built-in core models. Exits 1 on errors.
    Check(XprotoFiles),
    /// Format files canonically: to stdout, or in place with --write;
    /// --check lists the files that would change and exits 1 if any.
    /// Comments are kept (docs/xproto.md says how).
    Fmt(FmtArgs),
    /// Generate output from files (to stdout).
    Gen {
        /// What to generate.
        #[arg(long, value_enum)]
        target: GenTarget,
        /// The SQL dialect of `--target sql`.
        #[arg(long, value_enum, default_value = "sqlite")]
        dialect: SqlDialect,
        #[command(flatten)]
        files: XprotoFiles,
    },
}

/// What `xproto fmt` does with the files.
#[derive(Debug, Args)]
pub struct FmtArgs {
    /// Only list the files whose formatting would change; exit 1 if any.
    #[arg(long, conflicts_with = "write")]
    pub check: bool,
    /// Rewrite the files that change in place (and list them).
    #[arg(long)]
    pub write: bool,
    /// xproto files to format.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// The xproto files to read.
#[derive(Debug, Args)]
pub struct XprotoFiles {
    /// xproto files, read in order (e.g. a core file, then a service).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// Generator targets.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum GenTarget {
    /// The model dependency graph in the original model-deps JSON format.
    Deps,
    /// The resolved IR (inheritance, links, field numbers) as JSON.
    Ir,
    /// Protobuf for the gRPC API, with the original field numbering.
    Proto,
    /// OpenAPI 3 (JSON) for the REST API.
    Openapi,
    /// TOSCA custom types, as /custom_type/<model> serves them.
    Tosca,
    /// CREATE TABLE statements (see --dialect).
    Sql,
    /// Typed model structs for the Rust guest SDK.
    Rust,
    /// Typed model dataclasses for the Python guest SDK (`src/models.py`).
    Python,
    /// Model types for the JavaScript guest SDK (`src/models.d.ts`).
    Typescript,
    /// Model definitions for the JavaScript guest SDK (`src/models.js`).
    Javascript,
    /// The model graph in Graphviz's dot language.
    Dot,
    /// The model graph as SVG (no Graphviz needed).
    Svg,
    /// A Markdown reference of the models.
    Docs,
}

/// SQL dialects for `--target sql`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum SqlDialect {
    /// SQLite, the embedded default.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

#[derive(Debug, Subcommand)]
pub enum ServiceCommand {
    /// Create a service directory that builds unchanged: manifest, xproto
    /// with one model, typed models, one sync step, README; `tests/` is
    /// left for `service test`.
    New(NewArgs),
    /// Build a service's components with the toolchain its manifest's
    /// `[build]` names: `cargo = true` (cargo, wasm32-wasip2), `python =
    /// true` (componentize-py), `js = true` (esbuild and componentize-js).
    /// Steps whose sources are unchanged are not rebuilt.
    Build(BuildArgs),
    /// Install or upgrade a service from its directory (building it first
    /// when its manifest has a `[build]` section) or from a packed service
    /// (`.spkg`, see `service pack`). Shows what the package asks for
    /// first, and installs only when the server's policy, widened by
    /// `--allow`, allows every capability.
    Install(InstallArgs),
    /// Upgrade an installed service from its directory or packed file: as
    /// install, but the service must be installed already.
    Upgrade(InstallArgs),
    /// Pack a service directory into one file (`NAME-VERSION.spkg`): its
    /// manifest, xproto files, components (built first when the manifest
    /// asks), TOSCA samples (`samples/*.yaml`) and the SHA-256 of each.
    /// `service install` and `service inspect` accept the file. Needs no
    /// server.
    Pack(PackArgs),
    /// Sign a packed service with a publisher's key: over its digest, full
    /// name and version. The signature travels inside the file (an OCI
    /// referrer); the package's digest does not change. Needs no server.
    Sign(SignArgs),
    /// Check a packed service (a file or a registry reference): its
    /// digests and signatures, and with
    /// --trust the operator's trust policy. Prints the digest, the signers
    /// and the rule that matched or the first that failed; exits non-zero
    /// when refused. Needs no server.
    Verify(VerifyArgs),
    /// Publish a packed (signed) service to an OCI registry:
    /// `service publish FILE HOST:PORT/PUBLISHER/NAME`. The tag is the
    /// package's exact version; its signatures go along as referrers. A
    /// version published already is never overwritten with other content.
    Publish(PublishPackageArgs),
    /// Pull a service from a registry into a packed file, verified: the
    /// tag is resolved to a digest once, its signatures are checked
    /// (--allow-unsigned to accept none; --trust for a policy), then
    /// every blob is fetched by digest and hashed.
    Pull(PullArgs),
    /// List the versions of a service published in a registry, newest
    /// first.
    Versions(VersionsArgs),
    /// Find services in a registry: `service search HOST:PORT [TEXT]`
    /// lists the service packages whose name contains TEXT, with their
    /// versions (other artifacts in the registry are left out).
    Search(SearchArgs),
    /// Show what changed from one package to another (each a packed file
    /// or a registry reference): files by digest, grants, models and
    /// fields, WIT imports, signers. Needs no server.
    Diff(DiffArgs),
    /// Return an installed service to its previous version.
    Rollback(RollbackArgs),
    /// Remove an installed service: its routes, tables and steps go at
    /// once. Refused while it has objects, unless --purge.
    Uninstall(UninstallArgs),
    /// List installed services: version, state, installed at, previous
    /// version.
    List(ListArgs),
    /// Show an installed service: version, state, previous version, models
    /// with object counts, steps, grants, config.
    Show(ShowArgs),
    /// Show a service's lifecycle history, oldest first: each install,
    /// upgrade, rollback and uninstall with when, who, the package's
    /// digest and signers, and the trust rule that let it in.
    History(ShowArgs),
    /// Show what a package asks for (hosts, models, config, secrets, steps,
    /// limits) and whether the server would install it; TARGET is a service
    /// directory, a packed service (`.spkg`, whose files and digests are
    /// listed too, even with no server running) or an installed service's
    /// name.
    Inspect(InspectArgs),
    /// Set config values of an installed service (`key=value`; `key=`
    /// unsets). Its components see them on their next call.
    Config(ConfigArgs),
    /// Set a secret of an installed service. The value is read from stdin
    /// (or --file), never from the command line, and never shown again.
    Secret(SecretArgs),
    /// Show or set the limits of an installed service: its most objects,
    /// concurrent invocations, invocations per second, memory per
    /// instance and step deadline. Without flags, shows them; a limit not
    /// set follows the server's defaults (`serve --service-*`,
    /// `--memory-limit-mib`, `--step-timeout`). Changes apply at once and
    /// are kept across restarts and upgrades.
    Limits(LimitsArgs),
    /// Run a service's step tests (`tests/*.yaml`) offline, in seconds:
    /// its real components on a throwaway store and a virtual clock, HTTP
    /// answered by the tests' declared exchanges, no server. Builds the
    /// service first when its manifest asks. Prints TAP; exits non-zero
    /// when a test fails.
    Test(TestArgs),
}

#[derive(Debug, Args)]
pub struct TestArgs {
    /// The service directory (with syncplane.toml and tests/*.yaml).
    pub path: PathBuf,
    /// Only tests whose name (or `FILE: NAME`) contains this text.
    #[arg(long, value_name = "TEXT")]
    pub filter: Option<String>,
    /// Also write the results as JUnit XML to FILE.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Do not build the service first, even when its manifest asks.
    #[arg(long)]
    pub no_build: bool,
}

#[derive(Debug, Args)]
pub struct LimitsArgs {
    /// The installed service.
    pub name: String,
    /// The most objects its models may hold together (those marked
    /// deleted count until purged); creating more fails (429). A number,
    /// `unlimited`, or `default` for the server's.
    #[arg(long, value_name = "N|unlimited|default", value_parser = parse_cap)]
    pub max_objects: Option<Value>,
    /// Its invocations that may run at once (also its weight when
    /// services compete for the engine): 1 to 1024, or `default`.
    #[arg(long, value_name = "N|default", value_parser = parse_count)]
    pub concurrency: Option<Value>,
    /// Invocations it may start per second; beyond that its work waits.
    /// A number, `unlimited`, or `default`.
    #[arg(long, value_name = "N|unlimited|default", value_parser = parse_cap)]
    pub rate: Option<Value>,
    /// Memory one of its instances may use, in MiB: at most the server's
    /// `--memory-limit-mib`, or `default`.
    #[arg(long, value_name = "MIB|default", value_parser = parse_count)]
    pub memory_mib: Option<Value>,
    /// Time one of its calls may take before it is interrupted (e.g.
    /// `30s`, `500ms`; 10ms to 1h), or `default`.
    #[arg(long, value_name = "DURATION|default", value_parser = parse_deadline)]
    pub deadline: Option<Value>,
    /// How long its components stay loaded, and its instances warm,
    /// without calls (e.g. `5m`; 1s to 24h), or `default` (the server's
    /// `--guest-idle-unload`).
    #[arg(long, value_name = "DURATION|default", value_parser = parse_deadline)]
    pub idle_unload: Option<Value>,
    /// Return every limit to the server's defaults first (then apply the
    /// other flags given).
    #[arg(long)]
    pub reset: bool,
    /// Print the JSON the server returns.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// `default` (JSON `null`: back to the server's default), `unlimited`, or
/// a whole number.
fn parse_cap(s: &str) -> Result<Value, String> {
    match s.trim() {
        "unlimited" => Ok(Value::from("unlimited")),
        _ => parse_count(s)
            .map_err(|_| format!("`{s}`: expected a whole number, `unlimited` or `default`")),
    }
}

/// `default` or a whole number.
fn parse_count(s: &str) -> Result<Value, String> {
    match s.trim() {
        "default" => Ok(Value::Null),
        n => n
            .parse::<u64>()
            .map(Value::from)
            .map_err(|_| format!("`{s}`: expected a whole number or `default`")),
    }
}

/// `default` or a duration, as milliseconds.
fn parse_deadline(s: &str) -> Result<Value, String> {
    match s.trim() {
        "default" => Ok(Value::Null),
        d => humantime::parse_duration(d)
            .map(|d| Value::from(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)))
            .map_err(|e| format!("`{s}`: {e}; write e.g. `30s`, `500ms` or `default`")),
    }
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The installed service.
    pub name: String,
    /// Print the plan; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Args)]
pub struct UninstallArgs {
    /// The installed service.
    pub name: String,
    /// Delete the service's objects first, through the normal deletion path
    /// (its delete steps run, dependents first), then uninstall.
    #[arg(long)]
    pub purge: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The service.
    pub name: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// A service directory (with syncplane.toml), a packed service
    /// (`.spkg`), a registry reference (pulled and verified first) or an
    /// installed service's name.
    pub target: String,
    #[command(flatten)]
    pub reach: ReachArgs,
    /// Capabilities to allow for this package beyond the server's policy,
    /// as `--allow` does for install.
    #[arg(long = "allow", value_name = "KIND=VALUE")]
    pub allow: Vec<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// The installed service.
    pub name: String,
    /// `key=value` pairs; the keys must be declared in the manifest's
    /// `[capabilities] config`. Without pairs, the current values are shown.
    #[arg(value_name = "KEY=VALUE")]
    pub values: Vec<String>,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Args)]
pub struct SecretArgs {
    /// The installed service.
    pub name: String,
    /// The secret's name, declared in the manifest's `[capabilities] secrets`.
    pub key: String,
    /// Read the value from this file instead of stdin.
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// Unset the secret.
    #[arg(long, conflicts_with = "file")]
    pub unset: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// Logging options shared by every command.
#[derive(Debug, Args)]
pub struct LogArgs {
    /// Log filter (tracing EnvFilter syntax); overrides RUST_LOG.
    #[arg(long, global = true)]
    pub log: Option<String>,
}

impl LogArgs {
    /// The filter to use: `--log`, else `RUST_LOG`, else `default`.
    pub fn filter(&self, default: &str) -> String {
        self.log
            .clone()
            .or_else(|| std::env::var("RUST_LOG").ok())
            .unwrap_or_else(|| default.to_owned())
    }
}

/// Synchronizer timing and guest limits.
#[derive(Debug, Args)]
pub struct TuningArgs {
    /// Delay before retrying a deferred object.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub retry_interval: Duration,
    /// Delay after a first failure; doubles with each failure in a row.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub backoff_base: Duration,
    /// Longest delay between retries of a failing object.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    pub backoff_max: Duration,
    /// Retry failing objects at --retry-interval instead of backing off.
    #[arg(long)]
    pub backoff_disabled: bool,
    /// Jobs (cohorts of linked objects, policies) of all services running
    /// at the same time. Each service also runs at most its own
    /// concurrency (`service limits`), so one service cannot take them all.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub concurrency: u32,
    /// The most objects one service has taken on at once (queued, running
    /// or being committed); also the most one read of the store takes.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch_size: u32,
    /// On SIGTERM or Ctrl-C, how long running guest calls may go on before
    /// they are interrupted (their objects stay pending).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub shutdown_grace: Duration,
    /// With several hosts on one PostgreSQL store: how long this host's
    /// claim on an object lasts unless renewed (every third of it), so how
    /// soon the other hosts take over the work of a host that died.
    #[arg(long, default_value = "10s", value_parser = parse_lease_ttl)]
    pub lease_ttl: Duration,
    /// The most step and policy invocations the history keeps (besides
    /// each object's first and latest failure, kept while it exists).
    /// 0 records no history (it costs each invocation a row written with
    /// its outcome).
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    pub history_keep: u64,
    /// How long the invocation history keeps an invocation (besides each
    /// object's first and latest failure).
    #[arg(long, default_value = "7d", value_parser = humantime::parse_duration)]
    pub history_max_age: Duration,
    /// Time one guest call may take before it is interrupted.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub step_timeout: Duration,
    /// Memory one guest instance may use, in MiB. Also the cap of each
    /// service's own limit (`service limits NAME --memory-mib`).
    #[arg(long, default_value_t = 64)]
    pub memory_limit_mib: usize,
    /// How long a guest component stays loaded without calls; then it is
    /// unloaded (its next call maps it again from the compiled-component
    /// cache, in milliseconds). Components are loaded when their step first
    /// has work, not at start.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub guest_idle_unload: Duration,
    /// The most linear memory all running guest calls may hold together,
    /// in MiB. Each call reserves its instance's limit (the service's
    /// `--memory-mib`, else --memory-limit-mib) before it starts; beyond
    /// the cap, instances kept warm are released first, then calls wait
    /// for one to end (up to their deadline). Idle services hold no
    /// instance. No cap by default.
    #[arg(long, value_name = "MIB", value_parser = clap::value_parser!(u64).range(1..=1 << 30))]
    pub guest_memory_max: Option<u64>,
    /// The most guest instances kept warm between calls, across the host,
    /// for services whose manifest sets `reuse_instances`; past it, the
    /// least recently used is released. 0 keeps none.
    #[arg(long, value_name = "N", default_value_t = syncplane_runtime::warm::DEFAULT_MAX_WARM)]
    pub warm_instances_max: usize,
    /// The most bytes of compiled components kept in the data directory's
    /// cache for services no longer installed, in MiB (those installed are
    /// always kept).
    #[arg(long, default_value_t = 4096)]
    pub component_cache_max_mib: u64,
    /// Where compiled components are cached; default
    /// `<data-dir>/cache/components`. Several servers may share one (each
    /// entry is written atomically and checked before use).
    #[arg(long, env = "SYNCPLANE_COMPONENT_CACHE_DIR", value_name = "DIR")]
    pub component_cache_dir: Option<PathBuf>,
    /// Invocations of one service that may run at once, unless the
    /// operator set its own (`service limits NAME --concurrency`).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub service_concurrency: u32,
    /// Invocations one service may start per second (`unlimited`: no
    /// limit), unless the operator set its own (`service limits NAME
    /// --rate`).
    #[arg(long, default_value = "unlimited", value_parser = parse_limit::<u32>)]
    pub service_rate: Limit<u32>,
    /// The most objects one service's models may hold (`unlimited`: no
    /// limit), unless the operator set its own (`service limits NAME
    /// --max-objects`); creating more answers 429.
    #[arg(long, default_value = "unlimited", value_parser = parse_limit::<u64>)]
    pub service_max_objects: Limit<u64>,
}

/// A positive number, or none (`unlimited`).
#[derive(Debug, Clone, Copy)]
pub struct Limit<T>(pub Option<T>);

fn parse_store(s: &str) -> Result<syncplane_platform::StoreLocation, String> {
    syncplane_platform::StoreLocation::parse(s).map_err(|e| e.to_string())
}

fn parse_limit<T: std::str::FromStr + Default + PartialEq>(s: &str) -> Result<Limit<T>, String> {
    match s.trim() {
        "unlimited" => Ok(Limit(None)),
        n => match n.parse::<T>() {
            Ok(n) if n != T::default() => Ok(Limit(Some(n))),
            _ => Err(format!("`{s}`: expected a number above 0 or `unlimited`")),
        },
    }
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Data directory (created when missing); holds the SQLite database
    /// unless `--store` names another, and the compiled-component cache
    /// and the secret key either way.
    #[arg(long, env = "SYNCPLANE_DATA_DIR", default_value = "syncplane-data")]
    pub data_dir: PathBuf,
    /// Where models and bookkeeping are kept: a PostgreSQL database
    /// (`postgres://USER[:PASSWORD]@HOST:PORT/DB`, which must exist), or a
    /// SQLite file path. Default: DATA_DIR/syncplane.db. See
    /// docs/operations.md.
    #[arg(long, env = "SYNCPLANE_STORE", hide_env_values = true, value_parser = parse_store)]
    pub store: Option<syncplane_platform::StoreLocation>,
    /// Address to serve HTTP on; port 0 picks a free port.
    #[arg(long, env = "SYNCPLANE_HTTP", default_value = "127.0.0.1:9101")]
    pub http: SocketAddr,
    /// Address to serve gRPC on (XOS's `xos.xos` service and what XOS's
    /// client calls, watch and server reflection; TLS with
    /// `--grpc-tls-cert`/`--grpc-tls-key`, else HTTP/2 in plain text); port
    /// 0 picks a free port. Off unless given.
    #[arg(long, env = "SYNCPLANE_GRPC")]
    pub grpc: Option<SocketAddr>,
    /// Certificate chain (PEM) gRPC presents over TLS; XOS's client sends
    /// credentials only over TLS. Needs `--grpc-tls-key`.
    #[arg(long, env = "SYNCPLANE_GRPC_TLS_CERT", requires = "grpc_tls_key")]
    pub grpc_tls_cert: Option<PathBuf>,
    /// Private key (PEM) of `--grpc-tls-cert`.
    #[arg(long, env = "SYNCPLANE_GRPC_TLS_KEY", requires = "grpc_tls_cert")]
    pub grpc_tls_key: Option<PathBuf>,
    /// Password of admin@opencord.org on a new data directory; without it a
    /// random one is generated, printed once, and kept in DATA_DIR/admin-password.
    #[arg(long, env = "SYNCPLANE_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,
    /// The operator's policy (TOML): which capabilities packages may be
    /// granted. Without one, packages get their own models, config and
    /// secrets and nothing else, unless an install says `--allow`.
    #[arg(long, env = "SYNCPLANE_POLICY")]
    pub policy: Option<PathBuf>,
    /// The operator's trust policy (TOML): which signed packages may be
    /// installed (see docs/marketplace.md). Without one, signatures are
    /// verified but not required.
    #[arg(long, env = "SYNCPLANE_TRUST")]
    pub trust: Option<PathBuf>,
    /// The key that seals secrets at rest (32 bytes, base64). Default:
    /// `<data-dir>/secret.key`, generated with mode 0600 on first start.
    #[arg(long, env = "SYNCPLANE_SECRET_KEY_FILE")]
    pub secret_key_file: Option<PathBuf>,
    /// How long a session token from `POST /syncplane/v1/login` lives.
    #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
    pub session_ttl: Duration,
    /// How long a successful password check is remembered for the same
    /// user and password, so HTTP Basic clients do not pay argon2 on every
    /// request; any change of a user or token forgets it. `0s`: off.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub auth_cache_ttl: Duration,
    /// How many password checks may wait for the hashing pool (one check
    /// per core, less one); beyond it a sign-in is refused at once with
    /// 503 and Retry-After. Token requests never wait. Default: 4 per
    /// hashing thread.
    #[arg(long)]
    pub password_check_queue: Option<usize>,
    /// Failed password checks allowed per user (e-mail): BURST/PERIOD,
    /// e.g. `10/1m` (10 in a row, then one more every 6 s), or `off`.
    /// Beyond it: 429 with Retry-After, before any hashing.
    #[arg(long, default_value = "10/1m", value_parser = parse_login_limit)]
    pub login_limit_user: LoginLimit,
    /// Failed password checks allowed per client address (IPv6: per /64):
    /// BURST/PERIOD or `off`. Token-authenticated requests never count.
    #[arg(long, default_value = "30/1m", value_parser = parse_login_limit)]
    pub login_limit_address: LoginLimit,
    #[command(flatten)]
    pub tuning: TuningArgs,
    #[command(flatten)]
    pub log: LogArgs,
}

/// A limit of failed sign-ins, or none (`off`).
#[derive(Debug, Clone, Copy)]
pub struct LoginLimit(pub Option<syncplane_api::Quota>);

fn parse_login_limit(s: &str) -> Result<LoginLimit, String> {
    if s.trim() == "off" {
        return Ok(LoginLimit(None));
    }
    s.parse().map(|q| LoginLimit(Some(q)))
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Keep serving after the demo, until Ctrl-C.
    #[arg(long)]
    pub keep_serving: bool,
    /// Address to serve HTTP on during the demo.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub http: SocketAddr,
    #[command(flatten)]
    pub log: LogArgs,
}

/// The language of a new service.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Lang {
    /// Rust with `syncplane-sdk` (cargo, wasm32-wasip2).
    Rust,
    /// Python with the `syncplane` package (componentize-py).
    Python,
    /// JavaScript with `syncplane-sdk` (esbuild, componentize-js).
    Js,
}

#[derive(Debug, Args)]
pub struct NewArgs {
    /// The service name: lowercase letters, digits and `-`.
    pub name: String,
    /// The language of its steps.
    #[arg(long, value_enum)]
    pub lang: Lang,
    /// The model its sync step observes (CamelCase); the name in
    /// CamelCase when not given.
    #[arg(long)]
    pub model: Option<String>,
    /// Where to write it; `./NAME` when not given. Must be empty or absent.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// The syncplane checkout whose SDKs the service uses; the one this
    /// binary was built in when not given.
    #[arg(long)]
    pub sdk: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The service directory (with syncplane.toml).
    #[arg(default_value = ".")]
    pub path: PathBuf,
}

#[derive(Debug, Args)]
pub struct InstallArgs {
    /// The service directory (with syncplane.toml), a packed service
    /// (`.spkg`) or a registry reference
    /// (`HOST:PORT/PUBLISHER/NAME[:VERSION]`, pulled and verified first;
    /// the newest version without one).
    pub path: PathBuf,
    #[command(flatten)]
    pub reach: ReachArgs,
    /// Allow a capability the package asks for beyond the server's policy:
    /// `outbound_http=ORIGIN` (e.g. `http://127.0.0.1:*`), `network=CIDR`
    /// (where outbound requests may connect), `read=app.Model`,
    /// `write=app.Model` (`app.*` for all of an app). Repeatable.
    #[arg(long = "allow", value_name = "KIND=VALUE")]
    pub allow: Vec<String>,
    /// Print the resolved plan (models and fields added, changed and
    /// removed with object counts, steps, grants); change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Let an older version replace the installed one.
    #[arg(long)]
    pub allow_downgrade: bool,
    /// Install an unsigned package although the server's trust policy
    /// asks for signatures (refused anyway under `require_signature = true`).
    #[arg(long)]
    pub allow_unsigned: bool,
    /// Let an upgrade ask for grants the installed version did not have
    /// (review them with `service diff` first). Without it such an upgrade
    /// is refused and the installed version keeps running.
    #[arg(long)]
    pub accept_grants: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Args)]
pub struct PackArgs {
    /// The service directory (with syncplane.toml).
    #[arg(default_value = ".")]
    pub path: PathBuf,
    /// Where to write the package; default `NAME-VERSION.spkg` in the
    /// current directory.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Print JSON (the file, its digest and every file it holds) instead
    /// of text.
    #[arg(long)]
    pub json: bool,
}

/// Which server to talk to, and as whom.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// The server's URL.
    #[arg(
        long,
        env = "SYNCPLANE_SERVER",
        default_value = "http://127.0.0.1:9101"
    )]
    pub server: String,
    /// User name (e-mail).
    #[arg(long, env = "SYNCPLANE_USERNAME", default_value = "admin@opencord.org")]
    pub username: String,
    /// Password (or use --token).
    #[arg(long, env = "SYNCPLANE_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// An API or session token instead of user name and password
    /// (`syncplane token create` makes one).
    #[arg(long, env = "SYNCPLANE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

/// A lease time: at least 1 s (renewals go out every third of it), at most
/// an hour.
fn parse_lease_ttl(s: &str) -> Result<Duration, String> {
    let ttl = humantime::parse_duration(s).map_err(|e| e.to_string())?;
    if ttl < Duration::from_secs(1) || ttl > Duration::from_secs(3600) {
        return Err(format!("{s} is not between 1s and 1h"));
    }
    Ok(ttl)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_limit_values_take_numbers_unlimited_and_default() {
        assert_eq!(parse_cap("5"), Ok(Value::from(5)));
        assert_eq!(parse_cap("unlimited"), Ok(Value::from("unlimited")));
        assert_eq!(parse_cap("default"), Ok(Value::Null));
        assert!(parse_cap("lots").is_err());
        assert!(parse_count("unlimited").is_err());
        assert_eq!(parse_deadline("30s"), Ok(Value::from(30_000)));
        assert_eq!(parse_deadline("default"), Ok(Value::Null));
        assert!(parse_deadline("soon").is_err());
    }

    #[test]
    fn serve_defaults_per_service_are_unlimited_or_a_positive_number() {
        assert_eq!(parse_limit::<u32>("unlimited").map(|l| l.0), Ok(None));
        assert_eq!(parse_limit::<u64>("100").map(|l| l.0), Ok(Some(100)));
        assert!(parse_limit::<u32>("0").is_err());
        let cli = Cli::try_parse_from([
            "syncplane",
            "service",
            "limits",
            "shop",
            "--max-objects",
            "10",
            "--deadline",
            "500ms",
            "--reset",
        ])
        .expect("parses");
        let Command::Service {
            command: ServiceCommand::Limits(args),
            ..
        } = cli.command
        else {
            panic!("not service limits: {cli:?}");
        };
        assert_eq!(args.max_objects, Some(Value::from(10)));
        assert_eq!(args.deadline, Some(Value::from(500)));
        assert!(args.reset && args.rate.is_none());
    }
}
