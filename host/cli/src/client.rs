//! Talking to a running server: `syncplane service install`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use serde_json::Value;
use syncplane_platform::ServicePackage;
use syncplane_platform::archive::PackedService;

use crate::args::{PublishArgs, ServerArgs, StatusArgs};

/// How the client proves who it is.
enum Credentials {
    Password { username: String, password: String },
    Token(String),
}

/// An authenticated HTTP client for one server.
pub struct Client {
    http: reqwest::Client,
    base: String,
    credentials: Credentials,
}

impl Client {
    /// A client with the token of `args`, else its user name and password.
    pub fn from_args(args: &ServerArgs) -> anyhow::Result<Self> {
        let credentials = match (&args.token, &args.password) {
            (Some(token), _) => Credentials::Token(token.clone()),
            (None, Some(password)) => Credentials::Password {
                username: args.username.clone(),
                password: password.clone(),
            },
            (None, None) => bail!(
                "no credentials: set --password (SYNCPLANE_PASSWORD) or --token (SYNCPLANE_TOKEN)"
            ),
        };
        Ok(Client::with(&args.server, credentials))
    }

    pub fn new(base: &str, username: &str, password: &str) -> Self {
        Client::with(
            base,
            Credentials::Password {
                username: username.to_owned(),
                password: password.to_owned(),
            },
        )
    }

    fn with(base: &str, credentials: Credentials) -> Self {
        Client {
            http: reqwest::Client::new(),
            base: base.trim_end_matches('/').to_owned(),
            credentials,
        }
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let request = self.http.request(method, format!("{}{path}", self.base));
        match &self.credentials {
            Credentials::Password { username, password } => {
                request.basic_auth(username, Some(password))
            }
            Credentials::Token(token) => request.bearer_auth(token),
        }
    }

    async fn check(response: reqwest::Response) -> anyhow::Result<String> {
        let status = response.status();
        let body = response
            .text()
            .await
            .context("cannot read the server's answer")?;
        if status.is_success() {
            return Ok(body);
        }
        let message = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or(body);
        bail!("server answered {status}: {message}")
    }

    /// Sends a request with an optional JSON body and returns the JSON answer.
    pub async fn json(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let mut request = self.request(method.clone(), path);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("cannot reach {}{path}", self.base))?;
        let text = Self::check(response)
            .await
            .with_context(|| format!("{method} {path} failed"))?;
        serde_json::from_str(&text)
            .with_context(|| format!("{method} {path}: the answer is not JSON"))
    }

    /// `GET` that returns `None` on 404.
    pub async fn get_optional(&self, path: &str) -> anyhow::Result<Option<Value>> {
        let response = self
            .request(reqwest::Method::GET, path)
            .send()
            .await
            .with_context(|| format!("cannot reach {}{path}", self.base))?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let text = Self::check(response).await?;
        Ok(Some(serde_json::from_str(&text)?))
    }

    /// Posts a TOSCA recipe to `/run` with XOS's headers.
    pub async fn run_tosca(&self, recipe: &str) -> anyhow::Result<String> {
        let request = self.http.post(format!("{}/run", self.base));
        let request = match &self.credentials {
            Credentials::Password { username, password } => request
                .header("xos-username", username)
                .header("xos-password", password),
            Credentials::Token(token) => request.header("x-xossession", token),
        };
        let response = request
            .body(recipe.to_owned())
            .send()
            .await
            .with_context(|| format!("cannot reach {}/run", self.base))?;
        Self::check(response)
            .await
            .context("applying the TOSCA recipe failed")
    }

    /// Installs a package, allowing what `allow` lists beyond the
    /// server's policy.
    pub async fn install(
        &self,
        package: &ServicePackage,
        allow: &[String],
    ) -> anyhow::Result<Value> {
        let body = serde_json::json!({ "package": package, "allow": allow });
        self.json(reqwest::Method::POST, "/syncplane/v1/services", Some(&body))
            .await
    }

    /// Sends a raw text body with `PUT`; returns the JSON answer.
    pub async fn put_text(&self, path: &str, body: String) -> anyhow::Result<Value> {
        let response = self
            .request(reqwest::Method::PUT, path)
            .body(body)
            .send()
            .await
            .with_context(|| format!("cannot reach {}{path}", self.base))?;
        let text = Self::check(response).await?;
        serde_json::from_str(&text).with_context(|| format!("PUT {path}: the answer is not JSON"))
    }
}

/// The largest packed service read: the most a package's files may be, with
/// room for samples and the archive's own overhead.
const MAX_ARCHIVE_BYTES: u64 = 64 << 20;

/// Reads a packed service (`.spkg`), checking every file's digest and
/// every signature.
pub fn read_packed(path: &Path) -> anyhow::Result<PackedService> {
    Ok(read_packed_bytes(path)?.1)
}

/// [`read_packed`], with the file's bytes.
pub fn read_packed_bytes(path: &Path) -> anyhow::Result<(Vec<u8>, PackedService)> {
    use std::io::Read as _;
    let file = std::fs::File::open(path)
        .with_context(|| format!("cannot open the packed service {}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(MAX_ARCHIVE_BYTES + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if bytes.len() as u64 > MAX_ARCHIVE_BYTES {
        bail!(
            "{} is larger than a packed service may be ({} MiB)",
            path.display(),
            MAX_ARCHIVE_BYTES >> 20
        );
    }
    let packed =
        PackedService::unpack(&bytes).with_context(|| format!("cannot use {}", path.display()))?;
    Ok((bytes, packed))
}

/// A service package from a directory ([`package_from_dir`]) or a packed
/// service file ([`read_packed`]).
pub fn package_from_path(path: &Path) -> anyhow::Result<ServicePackage> {
    if path.is_file() {
        return Ok(read_packed(path)?.package);
    }
    package_from_dir(path)
}

/// Reads a service directory, building its components first with the
/// toolchain its manifest's `[build]` names.
pub fn package_from_dir(dir: &Path) -> anyhow::Result<ServicePackage> {
    crate::build::build_dir(dir)?;
    Ok(ServicePackage::from_dir(dir)?)
}

/// `syncplane status`: the server's synchronizer status as a table.
pub async fn status(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let client = Client::from_args(&args.server)?;
    let status = client
        .json(reqwest::Method::GET, "/syncplane/v1/status", None)
        .await
        .context("cannot read the server's status")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
        return Ok(ExitCode::SUCCESS);
    }
    crate::output::write_stdout(&render_status(&status))?;
    Ok(ExitCode::SUCCESS)
}

fn render_status(status: &Value) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let empty = Vec::new();
    let services = status["services"].as_array().unwrap_or(&empty);
    if let Some(engine) = status["store"]["engine"].as_str() {
        let _ = writeln!(
            out,
            "store: {engine} {}",
            status["store"]["location"].as_str().unwrap_or("")
        );
    }
    if let Some(hosts) = status["hosts"].as_array() {
        let _ = writeln!(out, "hosts sharing the store: {}", hosts.len());
        for host in hosts {
            let seen = (syncplane_core::now_ms() - host["seen_ms"].as_i64().unwrap_or_default())
                as f64
                / 1000.0;
            let _ = writeln!(
                out,
                "  {}{}  {} leases  {} steps running  {:.1} steps/s  {} steps done  seen {seen:.1}s ago",
                host["name"].as_str().unwrap_or("?"),
                if host["this"] == true {
                    " (this host)"
                } else {
                    ""
                },
                host["leases"],
                host["running"],
                host["steps_per_s"].as_f64().unwrap_or_default(),
                host["steps"],
            );
        }
    }
    let memory = &status["guest_memory"];
    if memory.is_object() {
        let mib = |v: &Value| v.as_u64().unwrap_or_default() >> 20;
        let _ = writeln!(
            out,
            "guest memory: {} of {} MiB reserved by running calls; {} waited, {} refused since start",
            mib(&memory["reserved_bytes"]),
            mib(&memory["cap_bytes"]),
            memory["waits"],
            memory["refused"],
        );
    }
    if services.is_empty() {
        out.push_str("no services installed\n");
    }
    let int = |v: &Value| v.as_i64().unwrap_or_default();
    let when = |v: &Value| match v.as_i64() {
        Some(ms) => {
            let secs = (ms - syncplane_core::now_ms()) as f64 / 1000.0;
            if secs <= 0.0 {
                "due".to_owned()
            } else {
                format!("in {secs:.1}s")
            }
        }
        None => "-".to_owned(),
    };
    for service in services {
        let _ = writeln!(
            out,
            "service {} {}",
            service["name"].as_str().unwrap_or("?"),
            service["version"].as_str().unwrap_or("?")
        );
        if let Some(components) = service["components"].as_array() {
            let count = |state: &str| components.iter().filter(|c| c["state"] == state).count();
            let code: u64 = components
                .iter()
                .filter_map(|c| c["code_bytes"].as_u64())
                .sum();
            let parked: u64 = components
                .iter()
                .filter_map(|c| c["warm_instances"].as_u64())
                .sum();
            let _ = writeln!(
                out,
                "  state: {} (components: {} running, {} warm, {} cold; {:.1} MiB of compiled code mapped; {parked} instances kept warm)",
                service["state"].as_str().unwrap_or("?"),
                count("running"),
                count("warm"),
                count("cold"),
                code as f64 / f64::from(1 << 20),
            );
        }
        for problem in service["damaged"].as_array().into_iter().flatten() {
            let _ = writeln!(out, "  DAMAGED: {}", problem.as_str().unwrap_or("?"));
        }
        let quota = &service["quota"];
        if quota.is_object() {
            let limits = &quota["limits"];
            let _ = writeln!(
                out,
                "  limits: objects {}/{}, running {}/{}, {} invocations/s, {} MiB memory, deadline {}",
                int(&quota["objects"]),
                crate::service::or_unlimited(&limits["max_objects"]),
                int(&quota["running"]),
                int(&limits["concurrency"]),
                crate::service::or_unlimited(&limits["invocations_per_sec"]),
                int(&limits["memory_mib"]),
                crate::service::millis(&limits["deadline_ms"]),
            );
        }
        let _ = writeln!(
            out,
            "  {:<36} {:>8} {:>8} {:>8} {:>8} {:>8} {:>7}  last error",
            "step", "calls", "done", "failed", "trapped", "deferred", "running"
        );
        for step in service["steps"].as_array().unwrap_or(&empty) {
            let _ = writeln!(
                out,
                "  {:<36} {:>8} {:>8} {:>8} {:>8} {:>8} {:>7}  {}",
                step["name"].as_str().unwrap_or("?"),
                int(&step["invocations"]),
                int(&step["done"]),
                int(&step["failed"]),
                int(&step["trapped"]),
                int(&step["deferred"]),
                int(&step["running"]),
                step["last_error"].as_str().unwrap_or("-"),
            );
        }
        let _ = writeln!(
            out,
            "  {:<36} {:>8} {:>8} {:>8} {:>8}  next retry",
            "model", "pending", "failed", "deferred", "deleted"
        );
        for model in service["models"].as_array().unwrap_or(&empty) {
            let _ = writeln!(
                out,
                "  {:<36} {:>8} {:>8} {:>8} {:>8}  {}",
                model["model"].as_str().unwrap_or("?"),
                int(&model["pending"]),
                int(&model["failed"]),
                int(&model["deferred"]),
                int(&model["deleted"]),
                when(&model["next_retry_ms"]),
            );
        }
        let events = service["event_steps"].as_array().unwrap_or(&empty);
        if !events.is_empty() {
            let _ = writeln!(
                out,
                "  {:<36} {:>8} {:>8} {:>8} {:>8}  topics; last error",
                "event step", "events", "failed", "deferred", "dropped"
            );
        }
        let pulls = service["pull_steps"].as_array().unwrap_or(&empty);
        if !pulls.is_empty() {
            let _ = writeln!(
                out,
                "  {:<36} {:>8} {:>8} {:>8} {:>8}  last error",
                "pull step", "every", "runs", "failed", "deferred"
            );
        }
        for step in pulls {
            let _ = writeln!(
                out,
                "  {:<36} {:>7}s {:>8} {:>8} {:>8}  {}",
                step["name"].as_str().unwrap_or("?"),
                int(&step["interval_ms"]) as f64 / 1000.0,
                int(&step["runs"]),
                int(&step["failed"]),
                int(&step["deferred"]),
                step["last_error"].as_str().unwrap_or("-"),
            );
        }
        for step in events {
            let topics: Vec<&str> = step["topics"]
                .as_array()
                .unwrap_or(&empty)
                .iter()
                .filter_map(Value::as_str)
                .collect();
            let _ = writeln!(
                out,
                "  {:<36} {:>8} {:>8} {:>8} {:>8}  {}; {}",
                step["name"].as_str().unwrap_or("?"),
                int(&step["events"]),
                int(&step["failed"]),
                int(&step["deferred"]),
                int(&step["dropped"]),
                topics.join(","),
                step["last_error"].as_str().unwrap_or("-"),
            );
        }
    }
    out
}

/// `syncplane event publish`: one event on the server's bus.
pub async fn publish(args: PublishArgs) -> anyhow::Result<ExitCode> {
    let client = Client::from_args(&args.server)?;
    let body = serde_json::json!({ "key": args.key, "value": args.value });
    let answer = client
        .json(
            reqwest::Method::POST,
            &format!("/syncplane/v1/events/{}", args.topic),
            Some(&body),
        )
        .await
        .context("publishing the event failed")?;
    let subscribers = answer["subscribers"].as_i64().unwrap_or(0);
    if subscribers == 0 {
        eprintln!(
            "warning: no event step subscribes to `{}`; the event was dropped",
            args.topic
        );
    }
    println!(
        "published to `{}` ({subscribers} event step(s) subscribed)",
        args.topic
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn status_shows_each_services_usage_against_its_limits() {
        let status = json!({ "services": [{
            "name": "shop", "version": "1.0.0", "steps": [], "models": [],
            "event_steps": [], "pull_steps": [],
            "quota": {
                "objects": 3, "running": 1,
                "limits": {
                    "max_objects": 10, "concurrency": 4, "invocations_per_sec": null,
                    "memory_mib": 16, "deadline_ms": 30000
                }
            }
        }]});
        let text = render_status(&status);
        assert!(
            text.contains(
                "limits: objects 3/10, running 1/4, unlimited invocations/s, 16 MiB memory, deadline 30s"
            ),
            "{text}"
        );
    }
}
