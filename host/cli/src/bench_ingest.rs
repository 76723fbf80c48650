//! `syncplane bench ingest`: how fast objects are created through the real
//! HTTP API, as REST batches, as one large TOSCA recipe, and one by one.
//!
//! The server runs in this process on its own tokio runtime (its own
//! threads, as a separate process would have) from a temporary data
//! directory (SQLite, WAL, synchronous commits), on a loopback listener;
//! the client is one `reqwest` client signed in with a session token,
//! sending one request at a time. Every phase creates core `Site`s, whose
//! security policy is evaluated for each object, and is checked afterwards
//! by counting them.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde::Serialize;
use serde_json::{Value, json};
use syncplane_core::{ADMIN_EMAIL, Core};
use syncplane_platform::{Host, HostConfig};

use crate::args::BenchIngestArgs;
use crate::bench::progress;
use crate::bench_server::ServerThread;

pub(crate) const PASSWORD: &str = "bench-password";
const SITES: &str = "/xosapi/v1/core/sites";
/// The target for the batch paths.
const TARGET: f64 = 20_000.0;

/// One way of creating objects, measured.
#[derive(Debug, Serialize)]
struct Phase {
    objects: u32,
    /// Objects per request.
    per_request: u32,
    seconds: f64,
    objects_per_sec: f64,
}

impl Phase {
    fn new(objects: u32, per_request: u32, took: Duration) -> Phase {
        let seconds = took.as_secs_f64();
        Phase {
            objects,
            per_request,
            seconds,
            objects_per_sec: f64::from(objects) / seconds.max(1e-9),
        }
    }
}

/// The figures, as `--json` prints them.
#[derive(Debug, Serialize)]
struct Figures {
    rest_batch: Phase,
    tosca: Phase,
    single: Phase,
    targets: Targets,
}

/// The targets, each met or not.
#[derive(Debug, Serialize)]
struct Targets {
    rest_batch_at_least_20000_per_sec: bool,
    tosca_at_least_20000_per_sec: bool,
}

/// The server under test: its base URL and its core.
struct IngestServer {
    url: String,
    core: Core,
    thread: ServerThread,
}

impl IngestServer {
    fn start() -> anyhow::Result<IngestServer> {
        let ((url, core), thread) = ServerThread::start(serve)?;
        Ok(IngestServer { url, core, thread })
    }
}

pub(crate) async fn serve(
    dir: std::path::PathBuf,
    ready: std::sync::mpsc::Sender<(String, Core)>,
    stopped: tokio::sync::oneshot::Receiver<()>,
) -> anyhow::Result<()> {
    let mut config = HostConfig::new(&dir);
    config.admin_password = Some(PASSWORD.into());
    let host = Host::open(config)
        .await
        .context("cannot open the bench store")?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let server = tokio::spawn(syncplane_api::serve(
        listener,
        host.clone(),
        syncplane_api::ApiConfig::default(),
        async move {
            let _ = stopped.await;
        },
    ));
    let _ = ready.send((url, host.core().clone()));
    server.await??;
    Ok(())
}

pub async fn run(args: BenchIngestArgs) -> anyhow::Result<ExitCode> {
    let server = IngestServer::start()?;
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

/// A site's fields; `prefix` keeps the phases' names apart.
fn site(prefix: &str, i: u32) -> Value {
    json!({ "name": format!("{prefix}-{i}"), "login_base": format!("{prefix}{i}") })
}

async fn measure(args: &BenchIngestArgs, server: &IngestServer) -> anyhow::Result<Figures> {
    let http = reqwest::Client::new();
    let token = login(&http, &server.url).await?;
    let sites = format!("{}{SITES}", server.url);
    let total = u64::from(args.objects) + u64::from(args.templates) + u64::from(args.singles);
    let bar = progress(args.json, total, "ingest");

    let started = Instant::now();
    let mut sent = 0;
    while sent < args.objects {
        let n = args.batch.min(args.objects - sent);
        let batch: Vec<Value> = (sent..sent + n).map(|i| site("batch", i)).collect();
        let response = http
            .post(&sites)
            .bearer_auth(&token)
            .json(&batch)
            .send()
            .await
            .context("batch create failed")?;
        expect_created(response, "batch create").await?;
        sent += n;
        bar.inc(u64::from(n));
    }
    let rest_batch = Phase::new(args.objects, args.batch, started.elapsed());

    let recipe = recipe(args.templates);
    let started = Instant::now();
    let response = http
        .post(format!("{}/run", server.url))
        .bearer_auth(&token)
        .body(recipe)
        .send()
        .await
        .context("TOSCA recipe failed")?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    if !status.is_success() {
        bail!("TOSCA recipe answered {status}: {text}");
    }
    let tosca = Phase::new(args.templates, args.templates, started.elapsed());
    bar.inc(u64::from(args.templates));

    let started = Instant::now();
    for i in 0..args.singles {
        let response = http
            .post(&sites)
            .bearer_auth(&token)
            .json(&site("single", i))
            .send()
            .await
            .context("single create failed")?;
        expect_created(response, "single create").await?;
        bar.inc(1);
    }
    let single = Phase::new(args.singles, 1, started.elapsed());
    bar.finish_and_clear();

    let count = server.core.object_count("Site").await?;
    let expected = i64::from(args.objects) + i64::from(args.templates) + i64::from(args.singles);
    if count != expected {
        bail!("{count} sites exist after the run; expected {expected}");
    }
    Ok(Figures {
        targets: Targets {
            rest_batch_at_least_20000_per_sec: rest_batch.objects_per_sec >= TARGET,
            tosca_at_least_20000_per_sec: tosca.objects_per_sec >= TARGET,
        },
        rest_batch,
        tosca,
        single,
    })
}

/// A recipe of `n` site templates.
fn recipe(n: u32) -> String {
    let mut text = String::from(
        "tosca_definitions_version: tosca_simple_yaml_1_0\nimports:\n  - custom_types/site.yaml\ntopology_template:\n  node_templates:\n",
    );
    for i in 0..n {
        text.push_str(&format!(
            "    site{i}:\n      type: tosca.nodes.Site\n      properties: {{name: tosca-{i}, login_base: t{i}}}\n"
        ));
    }
    text
}

pub(crate) async fn expect_created(response: reqwest::Response, what: &str) -> anyhow::Result<()> {
    let status = response.status();
    if status.as_u16() != 201 {
        let text = response.text().await.unwrap_or_default();
        bail!("{what} answered {status}: {text}");
    }
    // The answer is read whole, as a client would.
    response.bytes().await.context("reading the answer")?;
    Ok(())
}

pub(crate) async fn login(http: &reqwest::Client, base: &str) -> anyhow::Result<String> {
    let answer: Value = http
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

fn print_summary(f: &Figures) {
    let line = |what: &str, p: &Phase| {
        println!(
            "{what:<28} {:>8.0} objects/s   ({} objects, {} per request, {:.2} s)",
            p.objects_per_sec, p.objects, p.per_request, p.seconds
        );
    };
    line("REST batch create", &f.rest_batch);
    line("TOSCA recipe", &f.tosca);
    line("REST single creates", &f.single);
    let verdict = |met: bool| if met { "met" } else { "NOT met" };
    println!(
        "target ≥ 20,000 objects/s: REST batch {}, TOSCA {}",
        verdict(f.targets.rest_batch_at_least_20000_per_sec),
        verdict(f.targets.tosca_at_least_20000_per_sec)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_phase_counts_objects_per_second() {
        let phase = Phase::new(5000, 1000, Duration::from_millis(250));
        assert!((phase.objects_per_sec - 20_000.0).abs() < 1e-6);
    }

    #[test]
    fn the_recipe_has_one_template_per_object() {
        let text = recipe(3);
        assert_eq!(text.matches("type: tosca.nodes.Site").count(), 3);
        assert!(text.contains("name: tosca-2"));
    }
}
