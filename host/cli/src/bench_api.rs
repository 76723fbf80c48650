//! `syncplane bench api`: what authentication costs the API, measured in
//! one run against `/healthz`.
//!
//! The server runs in this process on its own tokio runtime (its own
//! threads, as a separate process would have), from a temporary data
//! directory, on two loopback listeners sharing one host: one with the
//! default rate limits of failed sign-ins, one with none (to time the
//! hashing path itself). The clients are `reqwest` clients, one
//! connection each, on the command's runtime.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde::Serialize;
use serde_json::{Value, json};
use syncplane_api::{ApiConfig, LoginLimits};
use syncplane_core::{ADMIN_EMAIL, AuthOptions, Core};
use syncplane_platform::{Host, HostConfig};

use crate::args::BenchApiArgs;
use crate::bench_server::ServerThread;

const PASSWORD: &str = "bench-password";
const LIST: &str = "/xosapi/v1/core/sites";
/// Sites in the listed collection.
const SITES: usize = 5;

/// How a bench client authenticates.
#[derive(Clone)]
enum Auth {
    None,
    Bearer(String),
    Basic(&'static str, &'static str),
}

impl Auth {
    fn apply(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            Auth::None => request,
            Auth::Bearer(token) => request.bearer_auth(token),
            Auth::Basic(user, password) => request.basic_auth(user, Some(password)),
        }
    }
}

/// The server under test: its base URLs and its core.
struct BenchServer {
    limited: String,
    open: String,
    core: Core,
    thread: ServerThread,
}

impl BenchServer {
    fn start() -> anyhow::Result<BenchServer> {
        let ((limited, open, core), thread) = ServerThread::start(serve)?;
        Ok(BenchServer {
            limited,
            open,
            core,
            thread,
        })
    }
}

async fn serve(
    dir: std::path::PathBuf,
    ready: std::sync::mpsc::Sender<(String, String, Core)>,
    stopped: tokio::sync::oneshot::Receiver<()>,
) -> anyhow::Result<()> {
    let mut config = HostConfig::new(&dir);
    config.admin_password = Some(PASSWORD.into());
    let host = Host::open(config)
        .await
        .context("cannot open the bench store")?;
    for i in 0..SITES {
        let fields = serde_json::Map::from_iter([
            ("name".to_owned(), json!(format!("site-{i}"))),
            ("login_base".to_owned(), json!(format!("s{i}"))),
        ]);
        host.core().create("Site", fields).await?;
    }
    let limited = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let open = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let urls = (
        format!("http://{}", limited.local_addr()?),
        format!("http://{}", open.local_addr()?),
    );
    let (stop_all, _) = tokio::sync::broadcast::channel::<()>(1);
    let until = |tx: &tokio::sync::broadcast::Sender<()>| {
        let mut rx = tx.subscribe();
        async move {
            let _ = rx.recv().await;
        }
    };
    let unlimited = ApiConfig {
        login_limits: LoginLimits::off(),
        ..ApiConfig::default()
    };
    let a = tokio::spawn(syncplane_api::serve(
        limited,
        host.clone(),
        ApiConfig::default(),
        until(&stop_all),
    ));
    let b = tokio::spawn(syncplane_api::serve(
        open,
        host.clone(),
        unlimited,
        until(&stop_all),
    ));
    let _ = ready.send((urls.0, urls.1, host.core().clone()));
    let _ = stopped.await;
    let _ = stop_all.send(());
    a.await??;
    b.await??;
    Ok(())
}

/// The figures, as `--json` prints them.
#[derive(Debug, Serialize)]
struct Figures {
    clients: u32,
    duration_s: f64,
    healthz_rps: f64,
    token_auth_only_rps: f64,
    token_get_rps: f64,
    basic_get_rps: f64,
    basic_uncached_get_rps: f64,
    token_vs_healthz: f64,
    basic_vs_healthz: f64,
    idle_p50_ms: f64,
    idle_p99_ms: f64,
    flood_p50_ms: f64,
    flood_p99_ms: f64,
    flood_vs_idle: f64,
    flood_requests: u64,
    flood_401: u64,
    flood_429: u64,
    unlimited_flood_p50_ms: f64,
    unlimited_flood_vs_idle: f64,
    unlimited_flood_requests: u64,
    login_unknown_p50_ms: f64,
    login_known_wrong_p50_ms: f64,
    /// Median over pairs of (unknown / known), each pair timed back to back.
    login_unknown_vs_known: f64,
    targets: Targets,
}

/// The targets, each met or not.
#[derive(Debug, Serialize)]
struct Targets {
    token_get_at_least_30pct_of_healthz: bool,
    basic_get_at_least_10pct_of_healthz: bool,
    flood_p50_within_2x_idle: bool,
    login_unknown_vs_known_within_10pct: bool,
}

pub async fn run(args: BenchApiArgs) -> anyhow::Result<ExitCode> {
    let server = BenchServer::start()?;
    let measured = measure(&args, &server).await;
    let stopped = server.thread.shutdown();
    let figures = measured?;
    stopped?;
    if args.json {
        println!("{}", serde_json::to_string(&figures)?);
    } else {
        print_summary(&figures);
    }
    Ok(ExitCode::SUCCESS)
}

async fn measure(args: &BenchApiArgs, server: &BenchServer) -> anyhow::Result<Figures> {
    let clients = args.clients;
    let duration = args.duration;
    let list = format!("{}{LIST}", server.limited);
    let token = login(&server.limited).await?;
    let bearer = Auth::Bearer(token);
    let basic = Auth::Basic(ADMIN_EMAIL, PASSWORD);

    let healthz = rate(
        &format!("{}/healthz", server.limited),
        &Auth::None,
        clients,
        duration,
    )
    .await?;
    // Authenticated, then answered 404 by the handler: what authentication
    // alone costs, without the list.
    let nowhere = format!("{}/xosapi/v1/core/nowhere", server.limited);
    let token_auth_only = rate_of(&nowhere, &bearer, clients, duration, 404).await?;
    let token_get = rate(&list, &bearer, clients, duration).await?;
    let basic_get = rate(&list, &basic, clients, duration).await?;
    server.core.set_auth_options(AuthOptions {
        credential_cache_ttl: Duration::ZERO,
        ..AuthOptions::default()
    });
    let basic_uncached = rate(&list, &basic, clients, duration).await?;
    server.core.set_auth_options(AuthOptions::default());

    // Idle and flooded samples alternate in rounds, so that a change of
    // load on the machine during the run weighs on both alike.
    let (mut idle, mut flood) = (Vec::new(), Flooded::default());
    let chunk = (args.samples / ROUNDS).max(1);
    for _ in 0..ROUNDS {
        idle.extend(latencies(&list, &bearer, chunk).await?);
        flood.add(with_flood(&list, clients, latencies(&list, &bearer, chunk)).await?);
    }
    let open_list = format!("{}{LIST}", server.open);
    let unlimited = with_flood(
        &open_list,
        clients,
        latencies(&open_list, &bearer, args.samples),
    )
    .await?;
    let (unknown, known) = login_timing(&server.open, args.logins).await?;

    let idle_p50 = percentile(&idle, 0.5);
    let flood_p50 = percentile(&flood.latencies, 0.5);
    let unlimited_p50 = percentile(&unlimited.latencies, 0.5);
    let unknown_p50 = percentile(&unknown, 0.5);
    let known_p50 = percentile(&known, 0.5);
    let token_vs_healthz = token_get / healthz;
    let basic_vs_healthz = basic_get / healthz;
    let flood_vs_idle = flood_p50 / idle_p50;
    // The median of each pair's ratio: a pair is timed back to back, so a
    // change of load on the machine between pairs cancels out.
    let mut ratios: Vec<f64> = unknown
        .iter()
        .zip(&known)
        .map(|(u, k)| u.as_secs_f64() / k.as_secs_f64().max(1e-9))
        .collect();
    ratios.sort_by(f64::total_cmp);
    let login_ratio = ratios.get(ratios.len() / 2).copied().unwrap_or(f64::NAN);
    Ok(Figures {
        clients,
        duration_s: duration.as_secs_f64(),
        healthz_rps: healthz,
        token_auth_only_rps: token_auth_only,
        token_get_rps: token_get,
        basic_get_rps: basic_get,
        basic_uncached_get_rps: basic_uncached,
        token_vs_healthz,
        basic_vs_healthz,
        idle_p50_ms: idle_p50,
        idle_p99_ms: percentile(&idle, 0.99),
        flood_p50_ms: flood_p50,
        flood_p99_ms: percentile(&flood.latencies, 0.99),
        flood_vs_idle,
        flood_requests: flood.requests,
        flood_401: flood.unauthorized,
        flood_429: flood.limited,
        unlimited_flood_p50_ms: unlimited_p50,
        unlimited_flood_vs_idle: unlimited_p50 / idle_p50,
        unlimited_flood_requests: unlimited.requests,
        login_unknown_p50_ms: unknown_p50,
        login_known_wrong_p50_ms: known_p50,
        login_unknown_vs_known: login_ratio,
        targets: Targets {
            token_get_at_least_30pct_of_healthz: token_vs_healthz >= 0.30,
            basic_get_at_least_10pct_of_healthz: basic_vs_healthz >= 0.10,
            flood_p50_within_2x_idle: flood_vs_idle <= 2.0,
            login_unknown_vs_known_within_10pct: (login_ratio - 1.0).abs() <= 0.10,
        },
    })
}

async fn login(base: &str) -> anyhow::Result<String> {
    let answer: Value = reqwest::Client::new()
        .post(format!("{base}/syncplane/v1/login"))
        .json(&json!({ "username": ADMIN_EMAIL, "password": PASSWORD }))
        .send()
        .await
        .context("cannot reach the bench server")?
        .error_for_status()
        .context("login failed")?
        .json()
        .await?;
    answer["token"]
        .as_str()
        .map(str::to_owned)
        .context("login answered no token")
}

/// Successful requests per second of `clients` clients, each with its own
/// connection, sending `GET url` back to back for `duration`.
async fn rate(url: &str, auth: &Auth, clients: u32, duration: Duration) -> anyhow::Result<f64> {
    rate_of(url, auth, clients, duration, 200).await
}

/// As [`rate`], counting answers with status `expected`; any other fails.
async fn rate_of(
    url: &str,
    auth: &Auth,
    clients: u32,
    duration: Duration,
    expected: u16,
) -> anyhow::Result<f64> {
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (url, auth) = (url.to_owned(), auth.clone());
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut ok = 0u64;
            while Instant::now() < deadline {
                let response = auth.apply(http.get(&url)).send().await?;
                let status = response.status();
                response.bytes().await?;
                if status.as_u16() != expected {
                    bail!("GET {url} answered {status}, not {expected}");
                }
                ok += 1;
            }
            Ok(ok)
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await??;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}

/// Latencies of `n` sequential `GET url`s.
async fn latencies(url: &str, auth: &Auth, n: u32) -> anyhow::Result<Vec<Duration>> {
    let http = reqwest::Client::new();
    let mut out = Vec::with_capacity(n as usize);
    // One warm-up request opens the connection.
    auth.apply(http.get(url)).send().await?.bytes().await?;
    for _ in 0..n {
        let started = Instant::now();
        let response = auth.apply(http.get(url)).send().await?;
        let status = response.status();
        response.bytes().await?;
        if !status.is_success() {
            bail!("GET {url} answered {status}");
        }
        out.push(started.elapsed());
    }
    Ok(out)
}

/// Rounds of alternating idle and flooded latency samples.
const ROUNDS: u32 = 5;

#[derive(Default)]
struct Flooded {
    latencies: Vec<Duration>,
    requests: u64,
    unauthorized: u64,
    limited: u64,
}

impl Flooded {
    fn add(&mut self, other: Flooded) {
        self.latencies.extend(other.latencies);
        self.requests += other.requests;
        self.unauthorized += other.unauthorized;
        self.limited += other.limited;
    }
}

/// Runs `work` while `clients` clients send wrong passwords for the admin
/// to `url` as fast as they are answered.
async fn with_flood(
    url: &str,
    clients: u32,
    work: impl std::future::Future<Output = anyhow::Result<Vec<Duration>>>,
) -> anyhow::Result<Flooded> {
    let stop = Arc::new(AtomicBool::new(false));
    let counts = Arc::new([AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)]);
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (url, stop, counts) = (url.to_owned(), Arc::clone(&stop), Arc::clone(&counts));
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut k = 0u64;
            while !stop.load(Ordering::Relaxed) {
                k += 1;
                let wrong = format!("wrong-{c}-{k}");
                let Ok(response) = http
                    .get(&url)
                    .basic_auth(ADMIN_EMAIL, Some(&wrong))
                    .send()
                    .await
                else {
                    continue;
                };
                counts[0].fetch_add(1, Ordering::Relaxed);
                match response.status().as_u16() {
                    401 => counts[1].fetch_add(1, Ordering::Relaxed),
                    429 => counts[2].fetch_add(1, Ordering::Relaxed),
                    _ => 0,
                };
                let _ = response.bytes().await;
            }
        }));
    }
    // Let the flood reach its pace (and the limits) before timing.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let measured = work.await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        let _ = task.await;
    }
    Ok(Flooded {
        latencies: measured?,
        requests: counts[0].load(Ordering::Relaxed),
        unauthorized: counts[1].load(Ordering::Relaxed),
        limited: counts[2].load(Ordering::Relaxed),
    })
}

/// Times `n` logins of an unknown user and `n` of the admin with a wrong
/// password, interleaved, on a listener without rate limits.
async fn login_timing(base: &str, n: u32) -> anyhow::Result<(Vec<Duration>, Vec<Duration>)> {
    let http = reqwest::Client::new();
    let url = format!("{base}/syncplane/v1/login");
    let attempt = |username: String| {
        let request = http
            .post(&url)
            .json(&json!({ "username": username, "password": "not-the-password" }));
        async move {
            let started = Instant::now();
            let status = request.send().await?.status();
            if status != reqwest::StatusCode::UNAUTHORIZED {
                bail!("a wrong login answered {status}, not 401");
            }
            Ok::<_, anyhow::Error>(started.elapsed())
        }
    };
    let (mut unknown, mut known) = (Vec::new(), Vec::new());
    for i in 0..n + 3 {
        // Which goes first alternates, so neither gains from the other.
        let (u, k) = if i % 2 == 0 {
            let u = attempt(format!("nobody-{i}@example.org")).await?;
            (u, attempt(ADMIN_EMAIL.to_owned()).await?)
        } else {
            let k = attempt(ADMIN_EMAIL.to_owned()).await?;
            (attempt(format!("nobody-{i}@example.org")).await?, k)
        };
        // The first three of each warm up (connection, the dummy hash).
        if i >= 3 {
            unknown.push(u);
            known.push(k);
        }
    }
    Ok((unknown, known))
}

/// The `p` quantile in milliseconds.
/// The sample at or above rank `p` (0..=1), in milliseconds; 0 when none.
pub(crate) fn percentile(samples: &[Duration], p: f64) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort();
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
}

fn print_summary(f: &Figures) {
    let met = |ok: bool| if ok { "met" } else { "NOT met" };
    println!(
        "\nsyncplane bench api ({} clients, {:.1} s per rate)",
        f.clients, f.duration_s
    );
    println!("  /healthz              {:>9.0} req/s", f.healthz_rps);
    println!(
        "  token, 404 (auth only) {:>8.0} req/s  {:>5.1} % of healthz",
        f.token_auth_only_rps,
        f.token_auth_only_rps / f.healthz_rps * 100.0
    );
    println!(
        "  GET list, token       {:>9.0} req/s  {:>5.1} % of healthz (target >= 30 %: {})",
        f.token_get_rps,
        f.token_vs_healthz * 100.0,
        met(f.targets.token_get_at_least_30pct_of_healthz)
    );
    println!(
        "  GET list, basic       {:>9.0} req/s  {:>5.1} % of healthz (target >= 10 %: {})",
        f.basic_get_rps,
        f.basic_vs_healthz * 100.0,
        met(f.targets.basic_get_at_least_10pct_of_healthz)
    );
    println!(
        "  GET list, basic, no credential cache {:>6.0} req/s",
        f.basic_uncached_get_rps
    );
    println!(
        "  token p50 idle {:.2} ms, during a wrong-password flood {:.2} ms ({:.2}x, target <= 2x: {}); flood: {} requests, {} x 401, {} x 429",
        f.idle_p50_ms,
        f.flood_p50_ms,
        f.flood_vs_idle,
        met(f.targets.flood_p50_within_2x_idle),
        f.flood_requests,
        f.flood_401,
        f.flood_429
    );
    println!(
        "  token p50 during a flood with no rate limits {:.2} ms ({:.2}x idle; {} flood requests)",
        f.unlimited_flood_p50_ms, f.unlimited_flood_vs_idle, f.unlimited_flood_requests
    );
    println!(
        "  login p50: unknown user {:.2} ms, known user with wrong password {:.2} ms (median pair ratio {:.3}, target within 10 %: {})",
        f.login_unknown_p50_ms,
        f.login_known_wrong_p50_ms,
        f.login_unknown_vs_known,
        met(f.targets.login_unknown_vs_known_within_10pct)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_the_sample_at_or_above_the_rank() {
        let ms = |v: u64| Duration::from_millis(v);
        let samples = [ms(4), ms(1), ms(3), ms(2)];
        assert_eq!(percentile(&samples, 0.5), 2.0);
        assert_eq!(percentile(&samples, 0.99), 4.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }
}
