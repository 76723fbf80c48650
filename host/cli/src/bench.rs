//! `syncplane bench sync`: what the host costs per object, with a guest that
//! does nothing.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use serde_json::{Map, Value};
use syncplane_core::{ChangeKind, Core};
use syncplane_engine::{Outcome, StepInvoker as _};
use syncplane_platform::{Host, HostConfig, Manifest, ServicePackage};
use tokio::sync::{broadcast, watch};

use crate::args::BenchSyncArgs;

pub(crate) const NOOP_DIR: &str = env!("SYNCPLANE_NOOP_DIR");
pub(crate) const NOOP_MANIFEST: &str =
    include_str!(concat!(env!("SYNCPLANE_NOOP_DIR"), "/syncplane.toml"));
pub(crate) const NOOP_XPROTO: &str =
    include_str!(concat!(env!("SYNCPLANE_NOOP_DIR"), "/models/noop.xproto"));
pub(crate) const NOOP_WASM: &[u8] =
    include_bytes!(concat!(env!("SYNCPLANE_NOOP_WASM"), "/noop.wasm"));

pub(crate) const MODEL: &str = "NoopItem";
/// Objects created per transaction while setting up.
const CREATE_CHUNK: u32 = 5000;
/// Give up when the engine makes no progress for this long.
pub(crate) const STALL_LIMIT: Duration = Duration::from_secs(60);

/// The figures, as `--json` prints them.
#[derive(Debug, Serialize)]
struct Figures {
    /// `sqlite` or `postgres`.
    store: &'static str,
    objects: u32,
    /// Hosts sharing the store.
    hosts: u32,
    /// Objects each host synced (the bulk sync).
    per_host: Vec<u64>,
    concurrency: usize,
    batch_size: u32,
    create_seconds: f64,
    sync_seconds: f64,
    objects_per_sec: f64,
    changes: usize,
    change_p50_ms: f64,
    change_p99_ms: f64,
    change_max_ms: f64,
    invocations: u32,
    invoke_overhead_us: f64,
}

pub(crate) fn noop_package() -> anyhow::Result<ServicePackage> {
    let manifest = Manifest::parse(&format!("{NOOP_DIR}/syncplane.toml"), NOOP_MANIFEST)?;
    Ok(ServicePackage {
        manifest,
        xproto: BTreeMap::from([("models/noop.xproto".to_owned(), NOOP_XPROTO.to_owned())]),
        model_deps: None,
        components: BTreeMap::from([("sync_noop_item".to_owned(), NOOP_WASM.to_vec())]),
    })
}

pub(crate) fn progress(hidden: bool, len: u64, what: &'static str) -> ProgressBar {
    if hidden {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    if let Ok(style) =
        ProgressStyle::with_template("{msg:>9} [{bar:40}] {pos}/{len} ({per_sec}, {elapsed})")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what);
    bar
}

pub(crate) fn fields(name: String) -> Map<String, Value> {
    let mut map = Map::new();
    map.insert("name".into(), Value::String(name));
    map
}

/// Where a benchmark keeps its store: `dir`, which must not exist yet, or
/// a temporary directory (kept alive by the first value, removed on drop).
pub(crate) fn store_dir(
    dir: Option<&std::path::Path>,
) -> anyhow::Result<(Option<tempfile::TempDir>, PathBuf)> {
    match dir {
        Some(dir) if dir.exists() => bail!("{} exists; give a new directory", dir.display()),
        Some(dir) => Ok((None, dir.to_owned())),
        None => {
            let temp = tempfile::tempdir().context("cannot create a temporary directory")?;
            let path = temp.path().to_owned();
            Ok((Some(temp), path))
        }
    }
}

pub async fn sync(args: BenchSyncArgs) -> anyhow::Result<ExitCode> {
    let shared = matches!(
        args.store,
        Some(syncplane_platform::StoreLocation::Postgres(_))
    );
    if args.hosts > 1 && !shared {
        bail!(
            "--hosts {} needs a store hosts can share: --store postgres://USER@HOST:PORT/DB",
            args.hosts
        );
    }
    let (_temp, data_dir) = store_dir(args.data_dir.as_deref())?;
    let open = |dir: PathBuf| {
        let mut config = HostConfig::new(dir);
        config.admin_password = Some("bench".into());
        config.store = args.store.clone();
        args.tuning.apply(&mut config);
        config
    };
    let config = open(data_dir.join("host-1"));
    let engine_config = config.engine;
    let host = Host::open(config)
        .await
        .context("cannot open the bench store")?;
    host.install(noop_package()?, &Default::default())
        .await
        .context("cannot install the no-op service")?;
    // The other hosts load the service from the store as they open.
    let mut hosts = vec![host.clone()];
    for i in 2..=args.hosts {
        let other = Host::open(open(data_dir.join(format!("host-{i}"))))
            .await
            .with_context(|| format!("cannot open host {i} on the bench store"))?;
        hosts.push(other);
    }
    let core = host.core().clone();
    let n = args.objects;

    let started = Instant::now();
    let ids = create(&core, n, args.json).await?;
    let create_seconds = started.elapsed().as_secs_f64();

    let (stop, stopped) = watch::channel(false);
    let started = Instant::now();
    let engines: Vec<_> = hosts
        .iter()
        .map(|h| h.spawn_engine(stopped.clone()))
        .collect();
    wait_until_synced(&hosts, n, args.json).await?;
    let sync_seconds = started.elapsed().as_secs_f64();
    let per_host: Vec<u64> = hosts.iter().map(done).collect();

    let latencies = time_changes(&hosts, &ids, args.changes).await?;
    let _ = stop.send(true);
    for engine in engines {
        engine.await.context("the engine task failed")?;
    }

    let invoke_overhead_us = time_invocations(&host, &core, ids[0], args.invocations).await?;

    let percentile = |p: f64| crate::bench_api::percentile(&latencies, p);
    let figures = Figures {
        store: match args.store {
            Some(syncplane_platform::StoreLocation::Postgres(_)) => "postgres",
            _ => "sqlite",
        },
        objects: n,
        hosts: args.hosts,
        per_host,
        concurrency: engine_config.concurrency,
        batch_size: engine_config.batch_size,
        create_seconds,
        sync_seconds,
        objects_per_sec: f64::from(n) / sync_seconds,
        changes: latencies.len(),
        change_p50_ms: percentile(0.50),
        change_p99_ms: percentile(0.99),
        change_max_ms: percentile(1.0),
        invocations: args.invocations,
        invoke_overhead_us,
    };
    if args.json {
        println!("{}", serde_json::to_string(&figures)?);
    } else {
        print_summary(&figures);
    }
    Ok(ExitCode::SUCCESS)
}

/// Creates `n` objects in batches of [`CREATE_CHUNK`], one transaction
/// each; returns their ids.
async fn create(core: &Core, n: u32, quiet: bool) -> anyhow::Result<Vec<i64>> {
    let bar = progress(quiet, u64::from(n), "creating");
    let mut ids = Vec::with_capacity(n as usize);
    while ids.len() < n as usize {
        let chunk = CREATE_CHUNK.min(n - ids.len() as u32);
        let mut tx = core.begin().await?;
        let inputs = (0..chunk)
            .map(|i| fields(format!("item-{}", ids.len() + i as usize)))
            .collect();
        // As a REST batch create does: one statement per chunk of rows.
        ids.extend(tx.create_many(MODEL, inputs).await?.iter().map(|o| o.id));
        tx.commit().await?;
        bar.set_position(ids.len() as u64);
    }
    bar.finish();
    Ok(ids)
}

/// Invocations `host` completed.
fn done(host: &Host) -> u64 {
    host.engine()
        .stats()
        .activity()
        .iter()
        .map(|a| a.done)
        .sum()
}

/// Waits until every object is enacted, showing the engines' progress.
async fn wait_until_synced(hosts: &[Host], n: u32, quiet: bool) -> anyhow::Result<()> {
    let bar = progress(quiet, u64::from(n), "syncing");
    let mut last = (0, Instant::now());
    loop {
        let done: u64 = hosts.iter().map(done).sum();
        bar.set_position(done.min(u64::from(n)));
        if done >= u64::from(n) && hosts[0].core().pending(MODEL, Some(1)).await?.is_empty() {
            bar.finish();
            return Ok(());
        }
        if done != last.0 {
            last = (done, Instant::now());
        } else if last.1.elapsed() > STALL_LIMIT {
            bail!("the engine made no progress for {STALL_LIMIT:?} ({done} of {n} objects synced)");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Changes one object at a time and measures until its new version is
/// enacted (the engine's durable write, seen on the change feed).
///
/// Changes are made on the first host; with several, whichever enacts a
/// change says so on its own feed, so every host's feed is watched.
async fn time_changes(hosts: &[Host], ids: &[i64], changes: u32) -> anyhow::Result<Vec<Duration>> {
    let (tx, mut enacted_ids) = tokio::sync::mpsc::unbounded_channel();
    let forwarders: Vec<_> = hosts
        .iter()
        .map(|host| {
            let mut feed = host.core().subscribe();
            let tx = tx.clone();
            tokio::spawn(async move {
                loop {
                    match feed.recv().await {
                        Ok(change) if change.kind == ChangeKind::Bookkeeping => {
                            if tx.send(change.id).is_err() {
                                return;
                            }
                        }
                        Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                        Err(broadcast::error::RecvError::Closed) => return,
                    }
                }
            })
        })
        .collect();
    let core = hosts[0].core();
    let mut out = Vec::with_capacity(changes as usize);
    for k in 0..changes {
        let id = ids[(k as usize * 7919) % ids.len()];
        let started = Instant::now();
        core.update(id, fields(format!("changed-{k}"))).await?;
        let wait = async {
            while let Some(enacted) = enacted_ids.recv().await {
                if enacted == id {
                    return;
                }
            }
        };
        tokio::time::timeout(STALL_LIMIT, wait)
            .await
            .with_context(|| format!("object {id} was not enacted within {STALL_LIMIT:?}"))?;
        out.push(started.elapsed());
    }
    for forwarder in forwarders {
        forwarder.abort();
    }
    Ok(out)
}

pub(crate) async fn enacted(
    feed: &mut broadcast::Receiver<syncplane_core::Change>,
    id: i64,
) -> anyhow::Result<()> {
    loop {
        match feed.recv().await {
            Ok(change) if change.id == id && change.kind == ChangeKind::Bookkeeping => {
                return Ok(());
            }
            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => bail!("the change feed closed"),
        }
    }
}

/// The mean time of one call of the no-op step, back to back, with the
/// engine stopped: instantiation, argument passing and limits.
async fn time_invocations(host: &Host, core: &Core, id: i64, calls: u32) -> anyhow::Result<f64> {
    let ctx = std::sync::Arc::new(syncplane_platform::capability::ServiceContext::own_only(
        "noop",
        std::collections::BTreeSet::new(),
    ));
    let step = host.runtime().load_sync_step(&ctx, "bench", NOOP_WASM)?;
    let object = core
        .get(id)
        .await?
        .context("the benchmark object vanished")?;
    for _ in 0..calls.min(100) {
        if step.sync_record(&object).await != Outcome::Done {
            bail!("the no-op step did not succeed");
        }
    }
    let started = Instant::now();
    for _ in 0..calls {
        let _ = step.sync_record(&object).await;
    }
    Ok(started.elapsed().as_secs_f64() * 1e6 / f64::from(calls.max(1)))
}

fn print_summary(f: &Figures) {
    let rows = [
        ("objects", f.objects.to_string()),
        (
            "concurrency / batch",
            format!("{} / {}", f.concurrency, f.batch_size),
        ),
        ("create", format!("{:.2} s", f.create_seconds)),
        ("sync", format!("{:.2} s", f.sync_seconds)),
        ("throughput", format!("{:.0} objects/s", f.objects_per_sec)),
        (
            "change -> enacted",
            format!(
                "p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} changes)",
                f.change_p50_ms, f.change_p99_ms, f.change_max_ms, f.changes
            ),
        ),
        (
            "invocation",
            format!(
                "{:.1} µs per no-op call ({} calls)",
                f.invoke_overhead_us, f.invocations
            ),
        ),
    ];
    let store = match (f.store, f.hosts) {
        ("postgres", 1) => "PostgreSQL, one host".to_owned(),
        ("postgres", hosts) => format!(
            "PostgreSQL, {hosts} hosts synced {}",
            f.per_host
                .iter()
                .map(|d| format!(
                    "{:.0} %",
                    100.0 * *d as f64 / f.per_host.iter().sum::<u64>().max(1) as f64
                ))
                .collect::<Vec<_>>()
                .join(" / ")
        ),
        _ => "embedded SQLite".to_owned(),
    };
    println!("\nsyncplane bench sync (no-op guest, {store})");
    for (what, figure) in rows {
        println!("  {what:<20} {figure}");
    }
}
