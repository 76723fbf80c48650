//! `syncplane bench isolation`: how quickly one service's changes are
//! enacted while another service is busy with slow steps and a backlog.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde::Serialize;
use syncplane_core::Core;
use syncplane_platform::{Host, HostConfig, Manifest};
use tokio::sync::watch;

use crate::args::BenchIsolationArgs;
use crate::bench::{
    MODEL, NOOP_DIR, NOOP_MANIFEST, NOOP_XPROTO, STALL_LIMIT, enacted, fields, noop_package,
    progress, store_dir,
};
use crate::bench_api::percentile;

/// The quiet service's model.
const QUICK_MODEL: &str = "QuickItem";

/// Targets of the isolation benchmark (issue: engine isolation).
const P50_TARGET_MS: f64 = 5.0;
const P99_TARGET_MS: f64 = 20.0;

/// Changes of the quiet service made, not timed, after the busy service's
/// objects were written.
const WARM_UP: u32 = 5;

#[derive(Debug, Serialize)]
struct Latency {
    changes: usize,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

impl Latency {
    fn of(samples: &[Duration]) -> Self {
        Latency {
            changes: samples.len(),
            p50_ms: percentile(samples, 0.5),
            p99_ms: percentile(samples, 0.99),
            max_ms: percentile(samples, 1.0),
        }
    }
}

#[derive(Debug, Serialize)]
struct Figures {
    slow_objects: u32,
    slow_step_ms: u64,
    backlog_objects: u32,
    /// The quiet service's change-to-enacted with nothing else running.
    alone: Latency,
    /// The same while the busy service sleeps and has its backlog.
    beside_busy: Latency,
    /// The slowest of the untimed changes right after the busy service's
    /// objects were written (SQLite's WAL checkpoint).
    warm_up_max_ms: f64,
    /// Busy-service calls that were running when the last change was
    /// enacted: shows the two really overlapped.
    busy_running_at_end: usize,
    targets_met: bool,
}

/// The no-op package renamed to service `quick` with model `QuickItem`.
fn quick_package() -> anyhow::Result<syncplane_platform::ServicePackage> {
    let mut package = noop_package()?;
    let manifest = NOOP_MANIFEST
        .replace("name = \"noop\"", "name = \"quick\"")
        .replace("models/noop.xproto", "models/quick.xproto")
        .replace(MODEL, QUICK_MODEL);
    package.manifest = Manifest::parse(&format!("{NOOP_DIR}/syncplane.toml"), &manifest)?;
    let xproto = NOOP_XPROTO
        .replace("app_label = \"noop\"", "app_label = \"quick\"")
        .replace(MODEL, QUICK_MODEL);
    package.xproto = [("models/quick.xproto".to_owned(), xproto)].into();
    Ok(package)
}

pub async fn isolation(args: BenchIsolationArgs) -> anyhow::Result<ExitCode> {
    let (_temp, data_dir) = store_dir(args.data_dir.as_deref())?;
    let mut config = HostConfig::new(&data_dir);
    config.admin_password = Some("bench".into());
    config.limits.deadline = args.step_timeout;
    let host = Host::open(config)
        .await
        .context("cannot open the bench store")?;
    host.install(noop_package()?, &Default::default())
        .await
        .context("cannot install the busy (no-op) service")?;
    host.install(quick_package()?, &Default::default())
        .await
        .context("cannot install the quiet service")?;
    let core = host.core().clone();
    let (stop, stopped) = watch::channel(false);
    let engine = host.spawn_engine(stopped);

    // The quiet service alone.
    let quick = create(&core, QUICK_MODEL, "quick", 100).await?;
    wait_until_enacted(&core, QUICK_MODEL).await?;
    let alone = time_changes(&core, &quick, "alone", args.changes, args.json).await?;

    // The busy service: slow calls first, then a backlog behind them, in
    // one transaction.
    let mut tx = core.begin().await?;
    for i in 0..args.slow {
        tx.create(
            MODEL,
            fields(format!("sleep-{}-{i}", args.slow_step.as_millis())),
        )
        .await?;
    }
    for i in 0..args.backlog {
        tx.create(MODEL, fields(format!("backlog-{i}"))).await?;
    }
    tx.commit().await?;
    // The first commits after a large transaction pay SQLite's WAL
    // checkpoint (seconds on a slow disk): a store effect, not the
    // engine's, so a few changes absorb it before the timing starts.
    let warm_up = time_changes(&core, &quick, "warm-up", WARM_UP, true).await?;
    let stats = host.engine().stats();
    let running = || -> usize {
        stats
            .activity()
            .iter()
            .filter(|a| a.service == "noop")
            .map(|a| a.running as usize)
            .sum()
    };
    let started = Instant::now();
    while running() == 0 {
        if started.elapsed() > STALL_LIMIT {
            bail!("the busy service's slow calls did not start");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let beside_busy = time_changes(&core, &quick, "busy", args.changes, args.json).await?;
    let busy_running_at_end = running();
    let _ = stop.send(true);
    let _ = engine.await;

    let alone = Latency::of(&alone);
    let beside_busy = Latency::of(&beside_busy);
    let targets_met = beside_busy.p50_ms <= P50_TARGET_MS && beside_busy.p99_ms <= P99_TARGET_MS;
    let figures = Figures {
        slow_objects: args.slow,
        slow_step_ms: args.slow_step.as_millis() as u64,
        backlog_objects: args.backlog,
        alone,
        beside_busy,
        warm_up_max_ms: percentile(&warm_up, 1.0),
        busy_running_at_end,
        targets_met,
    };
    if args.json {
        println!("{}", serde_json::to_string(&figures)?);
    } else {
        print_summary(&figures);
    }
    Ok(ExitCode::SUCCESS)
}

/// Creates `n` objects of `model` in one transaction; returns their ids.
async fn create(core: &Core, model: &str, prefix: &str, n: u32) -> anyhow::Result<Vec<i64>> {
    let mut tx = core.begin().await?;
    let mut ids = Vec::with_capacity(n as usize);
    for i in 0..n {
        ids.push(tx.create(model, fields(format!("{prefix}-{i}"))).await?.id);
    }
    tx.commit().await?;
    Ok(ids)
}

async fn wait_until_enacted(core: &Core, model: &str) -> anyhow::Result<()> {
    let started = Instant::now();
    while !core.pending(model, Some(1)).await?.is_empty() {
        if started.elapsed() > STALL_LIMIT {
            bail!("{model} objects were not enacted within {STALL_LIMIT:?}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}

/// Changes the objects one at a time (names starting with `phase`, so
/// that every change is new); each sample runs from the update's commit
/// until the engine's outcome for it is committed.
async fn time_changes(
    core: &Core,
    ids: &[i64],
    phase: &str,
    changes: u32,
    quiet: bool,
) -> anyhow::Result<Vec<Duration>> {
    let bar = progress(quiet, u64::from(changes), "changes");
    let mut feed = core.subscribe();
    let mut out = Vec::with_capacity(changes as usize);
    for k in 0..changes {
        let id = ids[k as usize % ids.len()];
        let started = Instant::now();
        core.update(id, fields(format!("{phase}-{k}"))).await?;
        tokio::time::timeout(STALL_LIMIT, enacted(&mut feed, id))
            .await
            .with_context(|| format!("object {id} was not enacted within {STALL_LIMIT:?}"))??;
        out.push(started.elapsed());
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(out)
}

fn print_summary(f: &Figures) {
    let line = |l: &Latency| {
        format!(
            "p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} changes)",
            l.p50_ms, l.p99_ms, l.max_ms, l.changes
        )
    };
    println!("\nsyncplane bench isolation (no-op guests, embedded SQLite)");
    println!(
        "  busy service         {} calls of {} ms running, {} objects queued behind them",
        f.slow_objects, f.slow_step_ms, f.backlog_objects
    );
    println!("  quiet service alone  {}", line(&f.alone));
    println!("  beside the busy one  {}", line(&f.beside_busy));
    println!(
        "  target               p50 <= {P50_TARGET_MS} ms, p99 <= {P99_TARGET_MS} ms: {}",
        if f.targets_met { "met" } else { "NOT met" }
    );
    println!(
        "  busy calls still running at the end: {}; slowest untimed change right after the busy service's {} objects were written: {:.0} ms",
        f.busy_running_at_end,
        f.slow_objects + f.backlog_objects,
        f.warm_up_max_ms
    );
}
