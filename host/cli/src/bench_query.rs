//! `syncplane bench query`: how fast a list answers among many objects —
//! a filtered page of 100 among N, a page deep into the table after a
//! cursor, an ordered page from the middle — through the real HTTP API.
//!
//! The server is the one `bench ingest` uses (in this process, on its own
//! runtime, from a temporary data directory); the sites are created with
//! REST batches, then one client signed in with a session token times
//! sequential requests of each kind at positions spread over the table,
//! checking each answer.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde::Serialize;
use serde_json::{Value, json};

use crate::args::BenchQueryArgs;
use crate::bench::progress;
use crate::bench_api::percentile;
use crate::bench_ingest::{expect_created, login, serve};
use crate::bench_server::ServerThread;

const SITES: &str = "/xosapi/v1/core/sites";
/// The target for a filtered page of 100 among 1,000,000.
const TARGET_MS: f64 = 20.0;

/// One kind of request, timed.
#[derive(Debug, Serialize)]
struct Timing {
    /// The query, with `K` where the position varies.
    query: &'static str,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

impl Timing {
    fn new(query: &'static str, samples: &[Duration]) -> Timing {
        Timing {
            query,
            p50_ms: percentile(samples, 0.50),
            p99_ms: percentile(samples, 0.99),
            max_ms: percentile(samples, 1.0),
        }
    }
}

/// The figures, as `--json` prints them.
#[derive(Debug, Serialize)]
struct Figures {
    objects: u32,
    /// How long creating them took, and the rate.
    create_seconds: f64,
    create_per_sec: f64,
    /// A name range matching 100 sites (through the index of `name`).
    filtered: Timing,
    /// 100 sites named in an `__in` list.
    listed: Timing,
    /// The page after a cursor at a random place, in id order.
    after_cursor: Timing,
    /// 100 sites in name order from a random name on, then their next page.
    ordered: Timing,
    /// The first page, without a filter.
    first_page: Timing,
    /// Whether the filtered page's p99 is within the 20 ms.
    filtered_p99_within_20_ms: bool,
}

/// Positions spread over the table, the same every run (xorshift).
struct Positions(u64);

impl Positions {
    fn next(&mut self, below: u32) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % u64::from(below.max(1))) as u32
    }
}

fn name(i: u32) -> String {
    format!("site-{i:08}")
}

pub async fn run(args: BenchQueryArgs) -> anyhow::Result<ExitCode> {
    let ((url, _core), thread) = ServerThread::start(serve)?;
    let measured = measure(&args, &url).await;
    let stopped = thread.shutdown();
    let figures = measured?;
    stopped?;
    if args.json {
        println!("{}", serde_json::to_string(&figures)?);
    } else {
        print_summary(&figures);
    }
    Ok(ExitCode::SUCCESS)
}

async fn measure(args: &BenchQueryArgs, url: &str) -> anyhow::Result<Figures> {
    let http = reqwest::Client::new();
    let token = login(&http, url).await?;
    let sites = format!("{url}{SITES}");
    let bar = progress(args.json, u64::from(args.objects), "create");
    let started = Instant::now();
    let mut sent = 0;
    while sent < args.objects {
        let n = args.batch.min(args.objects - sent);
        let batch: Vec<Value> = (sent..sent + n)
            .map(|i| json!({ "name": name(i), "login_base": format!("l{i}") }))
            .collect();
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
    let created = started.elapsed();
    bar.finish_and_clear();

    let client = Client {
        http,
        token,
        base: url.to_owned(),
    };
    let n = args.objects;
    let mut at = Positions(0x9E37_79B9_7F4A_7C15);
    let span = n - 100;

    let mut filtered = Vec::new();
    let mut listed = Vec::new();
    let mut after_cursor = Vec::new();
    let mut ordered = Vec::new();
    let mut first_page = Vec::new();
    let bar = progress(args.json, u64::from(args.samples) * 5, "query");
    for _ in 0..args.samples {
        let k = at.next(span);
        let path = format!("{SITES}?name__gte={}&name__lt={}", name(k), name(k + 100));
        let (took, page) = client.get(&path).await?;
        page.expect_names(k..k + 100)?;
        filtered.push(took);

        let k = at.next(span);
        let names: Vec<String> = (k..k + 100).map(name).collect();
        let path = format!("{SITES}?name__in={}", names.join(","));
        let (took, page) = client.get(&path).await?;
        page.expect_names(k..k + 100)?;
        listed.push(took);

        // A cursor at a random place: the `next` of a one-object page.
        let k = at.next(span);
        let (_, one) = client
            .get(&format!("{SITES}?name={}&page_size=1", name(k)))
            .await?;
        let id = one
            .items
            .first()
            .and_then(|o| o["id"].as_i64())
            .context("a site")?;
        let (_, from) = client
            .get(&format!("{SITES}?id__gte={id}&page_size=1"))
            .await?;
        let next = from.next.context("a next page")?;
        let cursor = next.split("cursor=").nth(1).context("a cursor")?;
        let (took, page) = client
            .get(&format!("{SITES}?page_size=100&cursor={cursor}"))
            .await?;
        page.expect_names(k + 1..k + 101)?;
        after_cursor.push(took);

        let k = at.next(span - 100);
        let path = format!("{SITES}?ordering=name&name__gte={}", name(k));
        let (took, page) = client.get(&path).await?;
        page.expect_names(k..k + 100)?;
        let next = page.next.context("a next page")?;
        let (took_next, page) = client.get(&next).await?;
        page.expect_names(k + 100..k + 200)?;
        ordered.push(took);
        ordered.push(took_next);

        let (took, page) = client.get(SITES).await?;
        page.expect_names(0..100)?;
        first_page.push(took);
        bar.inc(5);
    }
    bar.finish_and_clear();
    let filtered = Timing::new("name__gte=K&name__lt=K+100", &filtered);
    Ok(Figures {
        objects: n,
        create_seconds: created.as_secs_f64(),
        create_per_sec: f64::from(n) / created.as_secs_f64().max(1e-9),
        filtered_p99_within_20_ms: filtered.p99_ms <= TARGET_MS,
        filtered,
        listed: Timing::new("name__in=K,...,K+99", &listed),
        after_cursor: Timing::new("cursor=(after K)&page_size=100", &after_cursor),
        ordered: Timing::new("ordering=name&name__gte=K, and its next page", &ordered),
        first_page: Timing::new("(no parameters)", &first_page),
    })
}

/// The benchmark's one client.
struct Client {
    http: reqwest::Client,
    token: String,
    base: String,
}

/// A list answer.
struct Page {
    items: Vec<Value>,
    next: Option<String>,
}

impl Page {
    /// Fails unless the page holds the sites `range` names, in order.
    fn expect_names(&self, range: std::ops::Range<u32>) -> anyhow::Result<()> {
        let got: Vec<&str> = self
            .items
            .iter()
            .filter_map(|o| o["name"].as_str())
            .collect();
        let want: Vec<String> = range.map(name).collect();
        if got != want {
            bail!(
                "expected {} sites from {:?}, got {} from {:?}",
                want.len(),
                want.first(),
                got.len(),
                got.first()
            );
        }
        Ok(())
    }
}

impl Client {
    /// `GET path`, timed until the whole answer is read and decoded.
    async fn get(&self, path: &str) -> anyhow::Result<(Duration, Page)> {
        let started = Instant::now();
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .with_context(|| format!("GET {path}"))?;
        let status = response.status();
        let body: Value = response
            .json()
            .await
            .with_context(|| format!("GET {path}"))?;
        let took = started.elapsed();
        if !status.is_success() {
            bail!("GET {path} answered {status}: {body}");
        }
        let items = body["items"].as_array().cloned().unwrap_or_default();
        let next = body["next"].as_str().map(str::to_owned);
        Ok((took, Page { items, next }))
    }
}

fn print_summary(f: &Figures) {
    println!(
        "{} sites created in {:.1} s ({:.0}/s)",
        f.objects, f.create_seconds, f.create_per_sec
    );
    for t in [
        &f.filtered,
        &f.listed,
        &f.after_cursor,
        &f.ordered,
        &f.first_page,
    ] {
        println!(
            "{:<48} p50 {:>7.2} ms   p99 {:>7.2} ms   max {:>7.2} ms",
            t.query, t.p50_ms, t.p99_ms, t.max_ms
        );
    }
    let verdict = if f.filtered_p99_within_20_ms {
        "met"
    } else {
        "NOT met"
    };
    println!("target: a filtered page of 100 within 20 ms (p99): {verdict}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_stay_below_their_bound_and_spread() {
        let mut at = Positions(1);
        let seen: Vec<u32> = (0..1000).map(|_| at.next(100)).collect();
        assert!(seen.iter().all(|p| *p < 100));
        let distinct: std::collections::HashSet<u32> = seen.into_iter().collect();
        assert!(distinct.len() > 90, "{}", distinct.len());
    }
}
