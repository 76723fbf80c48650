//! `syncplane service test DIR`: a service's offline step tests, as TAP.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;

use crate::args::TestArgs;
use crate::output::write_stdout;

/// Builds the service when its manifest asks, runs its tests (printing a
/// TAP line as each finishes, then the plan and a summary), writes the
/// JUnit report when asked; fails when a test failed or none ran.
pub async fn run(args: TestArgs, log: Option<String>) -> anyhow::Result<ExitCode> {
    if !args.no_build {
        // Cargo, componentize-py or componentize-js, as `[build]` says;
        // nothing without it.
        crate::build::build_dir(&args.path)?;
    }
    let runner = syncplane_test::Runner::new(&args.path)
        .filter(args.filter.clone())
        .build(false)
        .log(log);
    write_stdout("TAP version 13\n")?;
    // The runner has its own single-threaded runtime.
    let report = tokio::task::spawn_blocking(move || {
        let mut n = 0;
        runner.run(|result| {
            n += 1;
            // A closed stdout must not stop the run; the exit code still tells.
            let _ = write_stdout(&result.tap(n));
        })
    })
    .await
    .context("the test run stopped")?
    .with_context(|| format!("cannot run the tests of {}", args.path.display()))?;
    let mut tail = format!("1..{}\n# {}\n", report.results.len(), report.summary());
    if report.results.is_empty()
        && let Some(filter) = &args.filter
    {
        tail.push_str(&format!("# no test matches --filter {filter:?}\n"));
    }
    write_stdout(&tail)?;
    if let Some(path) = &args.junit {
        write_junit(path, &report.junit_xml())?;
    }
    Ok(if report.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn write_junit(path: &Path, xml: &str) -> anyhow::Result<()> {
    std::fs::write(path, xml)
        .with_context(|| format!("cannot write the JUnit report to {}", path.display()))
}
