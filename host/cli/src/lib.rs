//! The `syncplane` command line.
//!
//! `main` parses arguments with clap, runs a command returning
//! `anyhow::Result<ExitCode>`, and prints errors with their causes. The work
//! itself lives in the library crates; this crate only wires and reports.

mod args;
mod audit;
mod bench;
mod bench_api;
mod bench_idle;
mod bench_ingest;
mod bench_isolation;
mod bench_query;
mod bench_registry;
mod bench_server;
mod build;
mod client;
mod demo;
mod diff;
mod logging;
mod market;
mod new;
mod output;
mod registry;
mod registry_args;
mod serve;
mod service;
mod service_test;
mod store;
mod token;
mod version;
mod xproto;

use std::process::ExitCode;

use clap::Parser;

use crate::args::{
    BenchCommand, Cli, Command, EventCommand, KeyCommand, RegistryCommand, ServiceCommand,
    StoreCommand, TokenCommand, XprotoCommand,
};

/// Runs the command line and returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("syncplane: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("syncplane: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => {
            logging::init(&args.log.filter("info,syncplane::guest=debug"));
            serve::run(*args).await
        }
        Command::Demo(args) => {
            logging::init(
                &args
                    .log
                    .filter("warn,syncplane::guest=debug,syncplane_engine=info"),
            );
            demo::run(args).await
        }
        Command::Xproto { command } => match command {
            XprotoCommand::Check(files) => xproto::check(&files),
            XprotoCommand::Fmt(args) => xproto::fmt(&args),
            XprotoCommand::Gen {
                target,
                dialect,
                files,
            } => xproto::generate(target, dialect, &files),
        },
        Command::Gen {
            target,
            dialect,
            files,
        } => xproto::generate(target, dialect, &files),
        Command::Bench {
            command: BenchCommand::Sync(args),
        } => {
            logging::init(&args.log.filter("warn"));
            bench::sync(*args).await
        }
        Command::Bench {
            command: BenchCommand::Api(args),
        } => {
            logging::init(&args.log.filter("error"));
            bench_api::run(args).await
        }
        Command::Bench {
            command: BenchCommand::Isolation(args),
        } => {
            logging::init(&args.log.filter("warn"));
            bench_isolation::isolation(args).await
        }
        Command::Bench {
            command: BenchCommand::Ingest(args),
        } => {
            logging::init(&args.log.filter("error"));
            bench_ingest::run(args).await
        }
        Command::Bench {
            command: BenchCommand::Query(args),
        } => {
            logging::init(&args.log.filter("error"));
            bench_query::run(args).await
        }
        Command::Bench {
            command: BenchCommand::Registry(args),
        } => {
            logging::init("error");
            bench_registry::run(args).await
        }
        Command::Bench {
            command: BenchCommand::Idle(args),
        } => {
            logging::init("error");
            bench_idle::idle(args).await
        }
        Command::Token { command } => match command {
            TokenCommand::Create(args) => token::create(args).await,
            TokenCommand::List(args) => token::list(args).await,
            TokenCommand::Revoke(args) => token::revoke(args).await,
        },
        Command::Key {
            command: KeyCommand::Generate(args),
        } => market::generate(&args),
        Command::Version(args) => version::version(&args),
        Command::Store {
            command: StoreCommand::Copy(args),
        } => {
            logging::init(&args.log.filter("warn"));
            store::copy(args).await
        }
        Command::Registry { command } => {
            logging::init("warn");
            match command {
                RegistryCommand::Login(args) => registry::login(args).await,
                RegistryCommand::Logout(args) => registry::logout(&args),
            }
        }
        Command::Status(args) => client::status(args).await,
        Command::Audit(args) => audit::audit(args).await,
        Command::Event {
            command: EventCommand::Publish(args),
        } => client::publish(args).await,
        Command::Service { command, log } => {
            // The tests keep the host's log per test, and print it only
            // when asked.
            if !matches!(command, ServiceCommand::Test(_)) {
                logging::init(&log.filter("warn"));
            }
            match command {
                ServiceCommand::New(args) => new::new(args),
                ServiceCommand::Build(args) => build::build(args),
                ServiceCommand::Install(args) => service::install(args, false).await,
                ServiceCommand::Upgrade(args) => service::install(args, true).await,
                ServiceCommand::Pack(args) => service::pack(&args),
                ServiceCommand::Sign(args) => market::sign(&args),
                ServiceCommand::Verify(args) => market::verify(&args).await,
                ServiceCommand::Publish(args) => registry::publish(args).await,
                ServiceCommand::Pull(args) => registry::pull(args).await,
                ServiceCommand::Versions(args) => registry::versions(args).await,
                ServiceCommand::Search(args) => registry::search(args).await,
                ServiceCommand::Diff(args) => diff::diff(args).await,
                ServiceCommand::Rollback(args) => service::rollback(args).await,
                ServiceCommand::Uninstall(args) => service::uninstall(args).await,
                ServiceCommand::List(args) => service::list(args).await,
                ServiceCommand::Show(args) => service::show(args).await,
                ServiceCommand::History(args) => service::history(args).await,
                ServiceCommand::Inspect(args) => service::inspect(args).await,
                ServiceCommand::Config(args) => service::config(args).await,
                ServiceCommand::Secret(args) => service::secret(args).await,
                ServiceCommand::Limits(args) => service::limits(args).await,
                ServiceCommand::Test(args) => {
                    let log = log.log.or_else(|| std::env::var("RUST_LOG").ok());
                    service_test::run(args, log).await
                }
            }
        }
    }
}
