//! `syncplane bench idle`: what many installed services cost while they
//! wait, how fast an idle one reacts, and how fast a host with all of them
//! restarts.
//!
//! The benchmark builds each service directory it is given once, installs
//! COUNT copies of it (service, app label and models renamed per copy) into
//! a `syncplane serve` child process on loopback, and measures that process:
//! its private memory from `/proc/PID/smaps_rollup` once every component
//! was unloaded for being idle, the change-to-enacted latency of each
//! service's first change (cold: its component loads from the cache) and
//! of a second one (warm), the throughput of one busy service while the
//! others idle, and a restart: time until the server listens, and until
//! every service enacted one change.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use regex::Regex;
use serde_json::{Value, json};
use syncplane_platform::ServicePackage;

use crate::args::BenchIdleArgs;
use crate::bench_api::percentile;

const ADMIN: &str = "admin@opencord.org";
const PASSWORD: &str = "bench-idle-password";
/// How long any one wait of the benchmark may take.
const WAIT_LIMIT: Duration = Duration::from_secs(600);

/// A `syncplane serve` child on loopback.
struct ServerProcess {
    child: Child,
    url: String,
}

impl ServerProcess {
    fn start(data: &Path, idle_unload: Duration) -> anyhow::Result<(ServerProcess, Duration)> {
        use std::io::BufRead as _;
        let started = Instant::now();
        let exe = std::env::current_exe().context("cannot find the syncplane binary")?;
        let mut child = Command::new(exe)
            .args(["serve", "--http", "127.0.0.1:0", "--data-dir"])
            .arg(data)
            .args([
                "--guest-idle-unload",
                &format!("{}ms", idle_unload.as_millis()),
                "--service-rate",
                "unlimited",
            ])
            .env("SYNCPLANE_ADMIN_PASSWORD", PASSWORD)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start `syncplane serve`")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut lines = std::io::BufReader::new(stdout).lines();
        let url = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(url) = line.strip_prefix("syncplane listening on ") {
                        break url.to_owned();
                    }
                }
                _ => {
                    let _ = child.kill();
                    bail!("the server stopped before it listened");
                }
            }
        };
        // Keep draining its output so it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines.by_ref() {});
        Ok((ServerProcess { child, url }, started.elapsed()))
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

/// Memory of a process, from `/proc/PID/smaps_rollup`, in bytes.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
struct Memory {
    rss: u64,
    private_dirty: u64,
    anonymous: u64,
}

impl Memory {
    fn of(pid: u32) -> anyhow::Result<Memory> {
        let path = format!("/proc/{pid}/smaps_rollup");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {path} (Linux only)"))?;
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|kb| kb.parse::<u64>().ok())
                .map_or(0, |kb| kb * 1024)
        };
        Ok(Memory {
            rss: field("Rss:"),
            private_dirty: field("Private_Dirty:"),
            anonymous: field("Anonymous:"),
        })
    }

    /// What an operator pays for: private dirty and anonymous memory
    /// (anonymous pages are private dirty too, unless swapped; the larger
    /// of the two).
    fn private(&self) -> u64 {
        self.private_dirty.max(self.anonymous)
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1 << 20)
}

/// One installed copy: its name, and the collection its objects go to.
struct Copy {
    kind: String,
    name: String,
    collection: String,
}

/// One copy to install: the package, the service's name, and the
/// collection its objects go to.
type CopyPackage = (ServicePackage, String, String);

/// COUNT copies of the package in `dir`, renamed so they install side by
/// side: the service `<name>-<i>`, app label `<label>_<i>`, models `<M>I<i>`.
fn copies(dir: &Path, count: u32) -> anyhow::Result<(String, Vec<CopyPackage>)> {
    crate::build::build_dir(dir)?;
    let package = ServicePackage::from_dir(dir)
        .with_context(|| format!("cannot read the service in {}", dir.display()))?;
    let kind = package.manifest.service.name.clone();
    let observed = package
        .manifest
        .sync_steps
        .first()
        .and_then(|s| s.observes.0.first().cloned())
        .with_context(|| format!("{kind} has no sync step to measure"))?;
    let mut models: Vec<String> = Vec::new();
    let mut label = None;
    for (path, text) in &package.xproto {
        let file =
            syncplane_xproto::parse(path, text).map_err(|e| anyhow::anyhow!("{path}: {e}"))?;
        models.extend(file.models.iter().map(|m| m.name.clone()));
        label = label.or(file.app_label().map(str::to_owned));
    }
    let label = label.with_context(|| format!("{kind} has no app_label"))?;
    let mut out = Vec::new();
    for i in 0..count {
        let mut copy = package.clone();
        copy.manifest.service.name = format!("{kind}-{i}");
        let rename = |text: &str| -> anyhow::Result<String> {
            let mut text = text.replace(
                &format!("app_label = \"{label}\""),
                &format!("app_label = \"{label}_{i}\""),
            );
            for model in &models {
                let word = Regex::new(&format!(r"\b{}\b", regex::escape(model)))?;
                text = word
                    .replace_all(&text, format!("{model}I{i}").as_str())
                    .into_owned();
            }
            Ok(text)
        };
        for text in copy.xproto.values_mut() {
            *text = rename(text)?;
        }
        for step in &mut copy.manifest.sync_steps {
            for model in &mut step.observes.0 {
                *model = format!("{model}I{i}");
            }
        }
        let collection = format!(
            "/xosapi/v1/{label}_{i}/{}s",
            format!("{observed}I{i}").to_lowercase()
        );
        out.push((copy, format!("{kind}-{i}"), collection));
    }
    Ok((kind, out))
}

struct Api {
    http: reqwest::Client,
    url: String,
}

impl Api {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.url))
            .basic_auth(ADMIN, Some(PASSWORD));
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("{method} {path}"))?;
        let status = response.status();
        let text = response.text().await?;
        if !status.is_success() {
            bail!("{method} {path}: {status}: {text}");
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn create(&self, collection: &str, name: &str) -> anyhow::Result<i64> {
        let created = self
            .send(
                reqwest::Method::POST,
                collection,
                Some(&json!({ "name": name })),
            )
            .await?;
        created["id"].as_i64().context("no id in the answer")
    }

    /// Waits until the object is enacted; returns how long since `since`.
    async fn enacted(&self, path: &str, since: Instant) -> anyhow::Result<Duration> {
        loop {
            let object = self.send(reqwest::Method::GET, path, None).await?;
            if object["backend_code"] == 1 {
                return Ok(since.elapsed());
            }
            if object["backend_code"] == 2 {
                bail!("{path} failed: {}", object["backend_status"]);
            }
            if since.elapsed() > WAIT_LIMIT {
                bail!("{path} was not enacted within {WAIT_LIMIT:?}");
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Waits until no service has pending objects or loaded components
    /// (when `cold`).
    async fn settled(&self, cold: bool) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            let status = self
                .send(reqwest::Method::GET, "/syncplane/v1/status", None)
                .await?;
            let services = status["services"].as_array().cloned().unwrap_or_default();
            let pending: i64 = services
                .iter()
                .flat_map(|s| s["models"].as_array().cloned().unwrap_or_default())
                .map(|m| m["pending"].as_i64().unwrap_or(0))
                .sum();
            let loaded = services.iter().any(|s| s["state"] != "cold");
            if pending == 0 && !(cold && loaded) {
                return Ok(());
            }
            if started.elapsed() > WAIT_LIMIT {
                bail!("the server did not settle within {WAIT_LIMIT:?}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

fn parse_services(specs: &[String]) -> anyhow::Result<Vec<(PathBuf, u32)>> {
    specs
        .iter()
        .map(|spec| {
            let (dir, count) = spec.rsplit_once('=').unwrap_or((spec, "1"));
            let count: u32 = count
                .parse()
                .with_context(|| format!("`{spec}`: COUNT must be a number (DIR=COUNT)"))?;
            Ok((PathBuf::from(dir), count))
        })
        .collect()
}

/// `syncplane bench idle`.
pub async fn idle(args: BenchIdleArgs) -> anyhow::Result<ExitCode> {
    let specs = parse_services(&args.service)?;
    if specs.is_empty() {
        bail!(
            "name the services to install: --service DIR=COUNT, e.g. \
             --service guests/noop-py=100 --service guests/noop-js=100"
        );
    }
    let say = |line: String| {
        if !args.json {
            eprintln!("{line}");
        }
    };
    let mut all = Vec::new();
    for (dir, count) in &specs {
        say(format!("building {} ...", dir.display()));
        let (kind, copies) = copies(dir, *count)?;
        all.extend(copies.into_iter().map(|c| (kind.clone(), c)));
    }
    let data = tempfile::tempdir().context("cannot create a temporary data directory")?;
    let idle_unload = Duration::from_secs(args.idle_unload_secs);
    let (server, _) = ServerProcess::start(data.path(), idle_unload)?;
    let baseline = Memory::of(server.pid())?;
    let api = Api {
        http: reqwest::Client::new(),
        url: server.url.clone(),
    };

    let started = Instant::now();
    let mut installed = Vec::new();
    for (i, (kind, (package, name, collection))) in all.into_iter().enumerate() {
        if i % 10 == 0 {
            say(format!(
                "installing {name} ({} of them so far) ...",
                installed.len()
            ));
        }
        api.send(
            reqwest::Method::POST,
            "/syncplane/v1/services",
            Some(&json!({ "package": package, "allow": [] })),
        )
        .await
        .with_context(|| format!("installing {name}"))?;
        installed.push(Copy {
            kind,
            name,
            collection,
        });
    }
    let install_time = started.elapsed();
    say(format!(
        "installed {} services in {:.1} s; waiting for them to go idle ...",
        installed.len(),
        install_time.as_secs_f64()
    ));
    api.settled(true).await?;
    // jemalloc hands freed memory back after a decay of about ten seconds.
    tokio::time::sleep(Duration::from_secs(args.settle_secs)).await;
    let idle = Memory::of(server.pid())?;

    say("first change of each idle service (cold) ...".into());
    let mut cold: BTreeMap<String, Vec<Duration>> = BTreeMap::new();
    let mut warm: BTreeMap<String, Vec<Duration>> = BTreeMap::new();
    for copy in &installed {
        let since = Instant::now();
        let id = api.create(&copy.collection, "cold").await?;
        let took = api
            .enacted(&format!("{}/{id}", copy.collection), since)
            .await?;
        cold.entry(copy.kind.clone()).or_default().push(took);
        let since = Instant::now();
        let id = api.create(&copy.collection, "warm").await?;
        let took = api
            .enacted(&format!("{}/{id}", copy.collection), since)
            .await?;
        warm.entry(copy.kind.clone()).or_default().push(took);
    }

    say(format!(
        "{} objects for one service of each kind while the others idle ...",
        args.objects
    ));
    let mut throughput = BTreeMap::new();
    let mut seen = std::collections::BTreeSet::new();
    for copy in &installed {
        if !seen.insert(copy.kind.clone()) {
            continue;
        }
        let items: Vec<Value> = (0..args.objects)
            .map(|i| json!({ "name": format!("busy-{i}") }))
            .collect();
        let since = Instant::now();
        for chunk in items.chunks(1000) {
            api.send(
                reqwest::Method::POST,
                &copy.collection,
                Some(&Value::Array(chunk.to_vec())),
            )
            .await
            .with_context(|| format!("creating objects of {}", copy.name))?;
        }
        api.settled(false).await?;
        let secs = since.elapsed().as_secs_f64();
        throughput.insert(copy.kind.clone(), f64::from(args.objects) / secs);
    }

    say("restarting ...".into());
    server.stop();
    let (server, ready) = ServerProcess::start(data.path(), idle_unload)?;
    let api = Api {
        http: reqwest::Client::new(),
        url: server.url.clone(),
    };
    let since = Instant::now();
    let mut paths = Vec::new();
    for copy in &installed {
        let id = api.create(&copy.collection, "after-restart").await?;
        paths.push(format!("{}/{id}", copy.collection));
    }
    let mut first_all = Duration::ZERO;
    for path in &paths {
        first_all = first_all.max(api.enacted(path, since).await?);
    }
    let after_restart = Memory::of(server.pid())?;
    server.stop();

    let services = installed.len() as u64;
    let per_service = idle.private().saturating_sub(baseline.private()) / services.max(1);
    let kinds: Vec<Value> = cold
        .keys()
        .map(|kind| {
            json!({
                "kind": kind,
                "services": installed.iter().filter(|c| &c.kind == kind).count(),
                "cold_change_to_enacted_ms": {
                    "p50": percentile(&cold[kind], 0.5), "p99": percentile(&cold[kind], 0.99)
                },
                "warm_change_to_enacted_ms": {
                    "p50": percentile(&warm[kind], 0.5), "p99": percentile(&warm[kind], 0.99)
                },
                "busy_objects_per_sec": throughput.get(kind),
            })
        })
        .collect();
    let figures = json!({
        "services": services,
        "install_secs": install_time.as_secs_f64(),
        "memory_mib": {
            "baseline_private": mib(baseline.private()),
            "idle_private": mib(idle.private()),
            "idle_rss": mib(idle.rss),
            "idle_private_per_service": mib(per_service),
            "after_restart_private": mib(after_restart.private()),
            "after_restart_rss": mib(after_restart.rss),
        },
        "restart": {
            "ready_secs": ready.as_secs_f64(),
            "every_first_change_enacted_secs": first_all.as_secs_f64(),
        },
        "kinds": kinds,
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&figures)?);
    } else {
        print_summary(&figures);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_summary(f: &Value) {
    let m = &f["memory_mib"];
    println!(
        "{} services installed in {:.1} s",
        f["services"],
        f["install_secs"].as_f64().unwrap_or(0.0)
    );
    println!(
        "idle: private {:.0} MiB (baseline {:.0}), {:.2} MiB per service; RSS {:.0} MiB",
        m["idle_private"].as_f64().unwrap_or(0.0),
        m["baseline_private"].as_f64().unwrap_or(0.0),
        m["idle_private_per_service"].as_f64().unwrap_or(0.0),
        m["idle_rss"].as_f64().unwrap_or(0.0),
    );
    for kind in f["kinds"].as_array().into_iter().flatten() {
        println!(
            "{}: cold change p50 {:.1} / p99 {:.1} ms, warm p50 {:.1} / p99 {:.1} ms, busy {:.0} objects/s",
            kind["kind"].as_str().unwrap_or("?"),
            kind["cold_change_to_enacted_ms"]["p50"]
                .as_f64()
                .unwrap_or(0.0),
            kind["cold_change_to_enacted_ms"]["p99"]
                .as_f64()
                .unwrap_or(0.0),
            kind["warm_change_to_enacted_ms"]["p50"]
                .as_f64()
                .unwrap_or(0.0),
            kind["warm_change_to_enacted_ms"]["p99"]
                .as_f64()
                .unwrap_or(0.0),
            kind["busy_objects_per_sec"].as_f64().unwrap_or(0.0),
        );
    }
    let r = &f["restart"];
    println!(
        "restart: listening after {:.2} s, every service's first change enacted after {:.2} s; private {:.0} MiB",
        r["ready_secs"].as_f64().unwrap_or(0.0),
        r["every_first_change_enacted_secs"].as_f64().unwrap_or(0.0),
        m["after_restart_private"].as_f64().unwrap_or(0.0),
    );
}
