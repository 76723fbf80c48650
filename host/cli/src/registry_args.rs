//! Arguments of the registry and package commands: `registry login|logout`, `service
//! publish|pull|versions|diff`.

use std::path::PathBuf;

use clap::{Args, Subcommand};

#[derive(Debug, Subcommand)]
pub enum RegistryCommand {
    /// Keep a registry's credentials for publish, pull and install: the
    /// password is read from stdin (first line), checked against the
    /// registry, and stored mode 0600 in the user's config directory
    /// (`$SYNCPLANE_CONFIG_DIR`, else `~/.config/syncplane`,
    /// `registries.json`). It is never printed or logged.
    Login(LoginArgs),
    /// Forget a registry's credentials.
    Logout(LogoutArgs),
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The registry, HOST:PORT.
    pub registry: String,
    /// The user name.
    #[arg(short, long)]
    pub username: String,
    #[command(flatten)]
    pub reach: ReachArgs,
}

#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// The registry, HOST:PORT.
    pub registry: String,
}

/// How to reach a registry.
#[derive(Debug, Clone, Args)]
pub struct ReachArgs {
    /// Reach a registry that is not on loopback over plain http (loopback
    /// registries are always reached over http, others over https).
    /// Anyone on the way can then read the credentials.
    #[arg(long)]
    pub insecure: bool,
}

#[derive(Debug, Args)]
pub struct PublishPackageArgs {
    /// The packed (and signed) service, `.spkg`.
    pub file: PathBuf,
    /// Where to: HOST:PORT/PUBLISHER/NAME. The tag is the package's
    /// version; a version published already is never overwritten.
    pub reference: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub reach: ReachArgs,
}

#[derive(Debug, Args)]
pub struct PullArgs {
    /// HOST:PORT/PUBLISHER/NAME[:VERSION|@sha256:DIGEST]; the newest
    /// version without either.
    pub reference: String,
    /// Where to write the package; default NAME-VERSION.spkg.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// A trust policy to check the package against before writing it.
    #[arg(long)]
    pub trust: Option<PathBuf>,
    /// Accept a package that carries no signature.
    #[arg(long)]
    pub allow_unsigned: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub reach: ReachArgs,
}

#[derive(Debug, Args)]
pub struct VersionsArgs {
    /// HOST:PORT/PUBLISHER/NAME.
    pub reference: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub reach: ReachArgs,
}

#[derive(Debug, Args)]
pub struct SearchArgs {
    /// The registry, HOST:PORT.
    pub registry: String,
    /// Only services whose PUBLISHER/NAME contains this (ignoring case).
    #[arg(default_value = "")]
    pub text: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub reach: ReachArgs,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The first package: a packed file or a registry reference.
    pub from: String,
    /// The second package: a packed file or a registry reference.
    pub to: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub reach: ReachArgs,
}
