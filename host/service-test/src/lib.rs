//! Offline step tests for syncplane services: `syncplane service test DIR`
//! and `cargo test`.
//!
//! # Brief overview
//!
//! A service keeps its tests in `tests/*.yaml` (the format is described in
//! `docs/services.md`, "Testing a service"). [`Runner`] runs them: for each
//! file it opens a throwaway host — the real core on a temporary SQLite
//! store, the real engine on a virtual clock, the real component runtime —
//! and installs the service there as `syncplane service install` would
//! (manifest, xproto, components, every declared capability allowed).
//! Then, for each test, it creates the fixtures as synced objects, sets
//! config and secrets, and runs the action: a sync or delete through the
//! engine's own pass (so `backend_code`, `backend_status`, backoff and
//! deferral are what a server writes), a model policy, a pull step or an
//! event. Outbound HTTP is answered by the test's declared exchanges, never
//! the network; a request none matches fails the test. The [`Report`] says
//! per test what differed, with file and line, as TAP lines or JUnit XML.
//!
//! - [`Runner`]: which service directory, `--filter`, whether to build.
//! - [`TestResult`] and [`Failure`]: one test, and what differed.
//! - [`Report`]: every result, a summary (`N passed, M failed`), JUnit XML.
//!
//! # Examples
//!
//! In a Rust service's own tests (with this crate as a dev-dependency):
//!
//! ```no_run
//! #[test]
//! fn service_tests() {
//!     syncplane_test::Runner::new(env!("CARGO_MANIFEST_DIR"))
//!         .run(|_| {})
//!         .expect("the tests ran")
//!         .assert_success();
//! }
//! ```
#![deny(missing_docs)]

mod act;
mod backend;
mod clock;
mod compare;
mod error;
mod format;
mod logs;
mod report;
mod session;

use std::path::{Path, PathBuf};
use std::time::Instant;
use syncplane_core::error_chain as chain;

use syncplane_platform::ServicePackage;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

pub use error::{Error, Result};
pub use format::{
    EventSpec, Exchange, Expect, ExpectedObject, ExpectedOutcome, Fixture, PolicyOn, RequestSpec,
    ResponseSpec, Step, TestCase, TestFile,
};
pub use report::{Failure, Report, TestResult};

use crate::format::LoadedFile;
use crate::logs::Captured;
use crate::session::Session;

/// Where a service keeps its tests, relative to its directory.
pub const TESTS_DIR: &str = "tests";

/// Runs the tests of one service directory.
#[derive(Debug, Clone)]
pub struct Runner {
    dir: PathBuf,
    filter: Option<String>,
    build: bool,
    log: Option<String>,
}

impl Runner {
    /// A runner for the service in `dir`. By default every test runs, the
    /// service is built first when its manifest asks for a cargo build,
    /// and nothing is logged.
    pub fn new(dir: impl Into<PathBuf>) -> Runner {
        Runner {
            dir: dir.into(),
            filter: None,
            build: true,
            log: None,
        }
    }

    /// Runs only tests whose name contains `filter` (or whose
    /// `file: name` does).
    #[must_use]
    pub fn filter(mut self, filter: Option<String>) -> Runner {
        self.filter = filter;
        self
    }

    /// Whether to build the service first when its manifest has
    /// `[build] cargo = true` (default: yes).
    #[must_use]
    pub fn build(mut self, build: bool) -> Runner {
        self.build = build;
        self
    }

    /// Writes the host's log to stderr, filtered by `filter` (an
    /// `EnvFilter` directive such as `info,syncplane::guest=debug`).
    /// Default: nothing is written; guest logs are kept in the results.
    #[must_use]
    pub fn log(mut self, filter: Option<String>) -> Runner {
        self.log = filter;
        self
    }

    /// Runs the tests, calling `on_result` as each finishes. Runs on its
    /// own single-threaded async runtime, so it must not be called from
    /// async code (use `spawn_blocking`).
    ///
    /// # Errors
    ///
    /// [`Error::Build`] when the build fails, [`Error::Load`] when the
    /// service's manifest or package is refused, [`Error::NoTests`] when
    /// there is no `tests/*.yaml`, [`Error::Setup`]. A test file that does
    /// not parse, or whose host cannot be set up, is a failed result, not
    /// an error.
    pub fn run(&self, mut on_result: impl FnMut(&TestResult)) -> Result<Report> {
        let dir = &self.dir;
        let load = |source| Error::Load {
            dir: dir.clone(),
            source: Box::new(source),
        };
        if self.build {
            syncplane_platform::build::build_service(dir, |line| tracing::info!("{line}"))
                .map_err(load)?;
        }
        let package = ServicePackage::from_dir(dir).map_err(load)?;
        let files = test_files(dir)?;
        let started = Instant::now();
        let captured = Captured::default();
        let output = self.log.as_ref().map(|filter| {
            let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("warn"));
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_target(false)
                .compact()
                .with_filter(filter)
        });
        let subscriber = tracing_subscriber::registry()
            .with(captured.clone())
            .with(output);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(Error::Setup)?;
        let mut report = Report {
            service: package.manifest.service.name.clone(),
            results: Vec::new(),
            filtered_out: 0,
            elapsed: Default::default(),
        };
        tracing::subscriber::with_default(subscriber, || {
            runtime.block_on(async {
                for path in &files {
                    self.run_file(path, &package, &captured, &mut report, &mut on_result)
                        .await;
                }
            });
        });
        report.elapsed = started.elapsed();
        Ok(report)
    }

    async fn run_file(
        &self,
        path: &Path,
        package: &ServicePackage,
        captured: &Captured,
        report: &mut Report,
        on_result: &mut impl FnMut(&TestResult),
    ) {
        let shown = path.strip_prefix(&self.dir).unwrap_or(path).to_owned();
        let mut push = |result: TestResult, report: &mut Report| {
            on_result(&result);
            report.results.push(result);
        };
        let loaded = match LoadedFile::read(path) {
            Ok(mut loaded) => {
                loaded.path = shown.clone();
                loaded
            }
            Err(Error::Parse {
                line,
                column,
                message,
                ..
            }) => {
                // The report puts `file:line:` in front.
                let text = format!("{message} (column {column})");
                push(TestResult::load_error(&shown, line, text), report);
                return;
            }
            Err(e) => {
                push(TestResult::load_error(&shown, 0, chain(&e)), report);
                return;
            }
        };
        let selected: Vec<usize> = (0..loaded.file.tests.len())
            .filter(|&i| self.selects(&shown, &loaded.file.tests[i].name))
            .collect();
        report.filtered_out += loaded.file.tests.len() - selected.len();
        if selected.is_empty() {
            return;
        }
        captured.clear();
        let session = match Session::open(
            &self.dir,
            package,
            &loaded.file.services,
            captured.clone(),
        )
        .await
        {
            Ok(session) => session,
            Err(e) => {
                let mut result = TestResult::load_error(&shown, 0, chain(&e));
                result.logs = captured.take();
                push(result, report);
                return;
            }
        };
        for index in selected {
            let result = act::run_test(&session, &loaded, index).await;
            push(result, report);
        }
    }

    fn selects(&self, file: &Path, name: &str) -> bool {
        match &self.filter {
            None => true,
            Some(filter) => {
                name.contains(filter.as_str())
                    || format!("{}: {name}", file.display()).contains(filter.as_str())
            }
        }
    }
}

/// `tests/*.yaml` (and `*.yml`) of `dir`, sorted.
fn test_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let tests = dir.join(TESTS_DIR);
    let entries = match std::fs::read_dir(&tests) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::NoTests {
                dir: dir.to_owned(),
            });
        }
        Err(source) => {
            return Err(Error::Read {
                path: tests,
                source,
            });
        }
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|source| Error::Read {
                path: tests.clone(),
                source,
            })?
            .path();
        let yaml = path.extension().is_some_and(|e| e == "yaml" || e == "yml");
        if yaml && path.is_file() {
            files.push(path);
        }
    }
    if files.is_empty() {
        return Err(Error::NoTests {
            dir: dir.to_owned(),
        });
    }
    files.sort();
    Ok(files)
}
