//! The test harness: a `syncplane serve` process on a temporary data dir.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_syncplane");
pub const ADMIN: &str = "admin@opencord.org";
pub const PASSWORD: &str = "letmein";

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A running server. Killed (SIGKILL) when dropped.
pub struct Server {
    child: Child,
    pub url: String,
    /// `http://ADDR` of gRPC, when started with `--grpc`.
    pub grpc_url: Option<String>,
    pub data_dir: PathBuf,
    http: reqwest::Client,
}

impl Server {
    /// Starts `syncplane serve` on `data_dir` with quick retry timing.
    pub fn start(data_dir: &Path) -> Server {
        Server::start_with(data_dir, &[])
    }

    /// As [`Server::start`], with some of its flags set otherwise, e.g.
    /// `[("--memory-limit-mib", "96")]`, or more flags added.
    pub fn start_with(data_dir: &Path, flags: &[(&str, &str)]) -> Server {
        Server::start_with_env(data_dir, flags, &[])
    }

    /// As [`Server::start_with`], with environment variables set for the
    /// server process, e.g. `[("SYNCPLANE_FAILPOINT", "activate:before-commit")]`.
    pub fn start_with_env(data_dir: &Path, flags: &[(&str, &str)], env: &[(&str, &str)]) -> Server {
        std::fs::create_dir_all(data_dir).expect("data dir");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(data_dir.join("server.log"))
            .expect("server log");
        let mut settings = vec![
            ("--retry-interval", "300ms"),
            ("--backoff-base", "300ms"),
            ("--backoff-max", "20s"),
            ("--step-timeout", "1s"),
            ("--memory-limit-mib", "32"),
            // The shared cache below outlives runs: keep what a run does
            // not use to 1 GiB, not the 4 GiB default.
            ("--component-cache-max-mib", "1024"),
        ];
        for &(flag, value) in flags {
            match settings.iter_mut().find(|(f, _)| *f == flag) {
                Some(setting) => setting.1 = value,
                None => settings.push((flag, value)),
            }
        }
        // One compiled-component cache for every test's servers: a Python
        // or JavaScript component compiles once per run, not per server
        // (the cache's own tests set their own).
        let shared_cache = repo().join("target/test-component-cache");
        // A test that names its store keeps it on either leg.
        let store = if flags.iter().any(|(flag, _)| *flag == "--store") {
            None
        } else {
            test_store(data_dir)
        };
        let mut child = Command::new(BIN)
            .args(["serve", "--http", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .args(settings.iter().flat_map(|(f, v)| [*f, *v]))
            .args(store.iter().flat_map(|url| ["--store", url.as_str()]))
            .env("SYNCPLANE_ADMIN_PASSWORD", PASSWORD)
            .env("RUST_LOG", "info,syncplane::guest=debug")
            .env("SYNCPLANE_COMPONENT_CACHE_DIR", &shared_cache)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("spawn syncplane serve");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                // The gRPC line comes first, when there is one.
                if let Some(url) = line.strip_prefix("syncplane gRPC listening on ") {
                    let _ = tx.send((true, url.to_owned()));
                }
                if let Some(url) = line.strip_prefix("syncplane listening on ") {
                    let _ = tx.send((false, url.to_owned()));
                }
            }
        });
        let mut grpc_url = None;
        // Generous: a server compiles its installed components before it
        // listens, which takes tens of seconds for Python and JavaScript
        // ones on a busy machine.
        let url = loop {
            match rx.recv_timeout(Duration::from_secs(240)) {
                Ok((true, url)) => grpc_url = Some(url),
                Ok((false, url)) => break url,
                Err(_) => {
                    let _ = child.kill();
                    panic!("server did not start; log:\n{}", read_log(data_dir));
                }
            }
        };
        Server {
            child,
            url,
            grpc_url,
            data_dir: data_dir.to_owned(),
            http: reqwest::Client::new(),
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends the process `signal` (`STOP`, `CONT`, …) with kill(1).
    pub fn signal(&self, signal: &str) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args([format!("-{signal}").as_str(), &pid])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -{signal} {pid} failed");
    }

    /// Kills the process with SIGKILL, as a crash would.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits for the process to exit, for at most
    /// `limit`; returns its exit status and how long it took (`None` when
    /// it was still running at `limit`, and was then killed).
    pub fn terminate(mut self, limit: Duration) -> (Option<std::process::ExitStatus>, Duration) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM {pid} failed");
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return (Some(status), started.elapsed());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        (None, started.elapsed())
    }

    /// Everything the server logged so far.
    pub fn log(&self) -> String {
        read_log(&self.data_dir)
    }

    /// A request as the admin; the status and the JSON (or text) answer.
    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        self.request_as((ADMIN, PASSWORD), method, path, body).await
    }

    /// A request as the user `(email, password)`, with HTTP Basic auth.
    pub async fn request_as(
        &self,
        (email, password): (&str, &str),
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.url))
            .basic_auth(email, Some(password));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Creates an object with `POST collection`, asserting 201; returns its id.
    pub async fn create(&self, collection: &str, body: Value) -> i64 {
        let (status, created) = self
            .request(reqwest::Method::POST, collection, Some(body))
            .await;
        assert_eq!(status, 201, "POST {collection}: {created}");
        created["id"].as_i64().expect("id")
    }

    /// [`Server::create`], returning the object's path.
    pub async fn create_path(&self, collection: &str, body: Value) -> String {
        format!("{collection}/{}", self.create(collection, body).await)
    }

    pub async fn get(&self, path: &str) -> Value {
        let (status, body) = self.request(reqwest::Method::GET, path, None).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// `/metrics`, unauthenticated as scrapers read it.
    pub async fn metrics(&self) -> String {
        reqwest::get(format!("{}/metrics", self.url))
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text")
    }

    pub async fn put(&self, path: &str, body: Value) -> Value {
        let (status, answer) = self.request(reqwest::Method::PUT, path, Some(body)).await;
        assert_eq!(status, 200, "PUT {path}: {answer}");
        answer
    }

    /// Every item of a collection, page after page: follows each answer's
    /// `next` link (lists are paged, 100 items unless `page_size` says
    /// otherwise).
    pub async fn list_all(&self, collection: &str) -> Vec<Value> {
        let mut items = Vec::new();
        let mut path = collection.to_owned();
        loop {
            let page = self.get(&path).await;
            items.extend(page["items"].as_array().expect("items").iter().cloned());
            match page["next"].as_str() {
                Some(next) => path = next.to_owned(),
                None => return items,
            }
        }
    }

    /// Posts a TOSCA recipe; returns status and body text.
    pub async fn tosca(&self, recipe: &str, username: &str, password: &str) -> (u16, String) {
        let response = self
            .http
            .post(format!("{}/run", self.url))
            .header("xos-username", username)
            .header("xos-password", password)
            .body(recipe.to_owned())
            .send()
            .await
            .expect("POST /run");
        (
            response.status().as_u16(),
            response.text().await.expect("body"),
        )
    }

    /// Polls `path` until `done` holds for its JSON, or fails after `limit`
    /// with the last state and the server log.
    pub async fn wait_for(
        &self,
        path: &str,
        limit: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let started = Instant::now();
        loop {
            let (status, body) = self.request(reqwest::Method::GET, path, None).await;
            if status == 200 && done(&body) {
                return body;
            }
            if started.elapsed() > limit {
                panic!(
                    "condition on {path} not met within {limit:?}; last: {status} {body}\nserver log:\n{}",
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Runs a `syncplane` client command against this server.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(args)
            .env("SYNCPLANE_SERVER", &self.url)
            .env("SYNCPLANE_USERNAME", ADMIN)
            .env("SYNCPLANE_PASSWORD", PASSWORD)
            .output()
            .expect("run syncplane")
    }

    /// As [`Server::cli`], writing `stdin` to the command's standard input
    /// (for `service secret`).
    pub fn cli_with_stdin(&self, args: &[&str], stdin: &str) -> Output {
        let mut child = Command::new(BIN)
            .args(args)
            .env("SYNCPLANE_SERVER", &self.url)
            .env("SYNCPLANE_USERNAME", ADMIN)
            .env("SYNCPLANE_PASSWORD", PASSWORD)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run syncplane");
        {
            let mut input = child.stdin.take().expect("stdin");
            std::io::Write::write_all(&mut input, stdin.as_bytes()).expect("write stdin");
        }
        child.wait_with_output().expect("wait for syncplane")
    }

    /// Sets operator config values of `service` with `syncplane service
    /// config SERVICE key=value...`.
    pub fn set_config(&self, service: &str, values: &[(&str, &str)]) {
        let pairs: Vec<String> = values.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let mut args = vec!["service", "config", service];
        args.extend(pairs.iter().map(String::as_str));
        assert_success(&self.cli(&args));
    }

    /// Sets the secret `key` of `service` with `syncplane service secret
    /// SERVICE KEY`, the value on standard input; checks the command does
    /// not echo it.
    pub fn set_secret(&self, service: &str, key: &str, value: &str) {
        let output = self.cli_with_stdin(&["service", "secret", service, key], value);
        let stdout = assert_success(&output);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !stdout.contains(value) && !stderr.contains(value),
            "`service secret` echoed the value:\n{stdout}\n{stderr}"
        );
    }

    /// Installs the service package in `dir`, with `--allow` flags.
    pub fn install(&self, dir: &Path, allow: &[&str]) -> Output {
        let mut args = vec!["service", "install", dir.to_str().expect("utf-8 path")];
        for grant in allow {
            args.extend(["--allow", grant]);
        }
        self.cli(&args)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `Retry-After` header of an answer, if it has one.
pub fn retry_after(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// The store engine the tests' servers run on: `SYNCPLANE_TEST_STORE`,
/// `sqlite` (the default) or `postgres`.
pub fn test_engine() -> String {
    std::env::var("SYNCPLANE_TEST_STORE").unwrap_or_else(|_| "sqlite".into())
}

/// The `--store` of a server on `data_dir`: none on SQLite (the data
/// directory's own file); with `SYNCPLANE_TEST_STORE=postgres`, a database
/// of its own on the PostgreSQL server this test process runs, the same
/// for every server started on that data directory (a restart finds its
/// objects).
pub fn test_store(data_dir: &Path) -> Option<String> {
    match test_engine().as_str() {
        "sqlite" => None,
        "postgres" => {
            let path = data_dir.to_string_lossy();
            let hash = path.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
            });
            // The database goes when the directory does: made now, so
            // that it is there from the start.
            std::fs::create_dir_all(data_dir).expect("make the data directory");
            Some(syncplane_test_postgres::shared().database_for(&format!("d{hash:016x}"), data_dir))
        }
        other => panic!("SYNCPLANE_TEST_STORE={other}: expected sqlite or postgres"),
    }
}

/// Everything the store of the (stopped) server on `data_dir` holds, as
/// text: the SQLite files' bytes, or a `pg_dump` of its PostgreSQL
/// database. For checking what is, and is not, written down.
pub fn stored_bytes(data_dir: &Path) -> String {
    match test_store(data_dir) {
        None => {
            let mut stored = Vec::new();
            for entry in std::fs::read_dir(data_dir).expect("data dir") {
                let path = entry.expect("entry").path();
                if path
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("syncplane.db"))
                {
                    stored.extend(std::fs::read(&path).expect("read the store"));
                }
            }
            String::from_utf8_lossy(&stored).into_owned()
        }
        Some(url) => {
            let dump = Command::new(syncplane_test_postgres::bin_dir().join("pg_dump"))
                .args(["--data-only", "--dbname", &url])
                .output()
                .expect("run pg_dump");
            assert!(dump.status.success(), "pg_dump: {}", describe(&dump));
            String::from_utf8_lossy(&dump.stdout).into_owned()
        }
    }
}

/// Everything a server on `data_dir` logged so far, after it stopped too.
pub fn read_log(data_dir: &Path) -> String {
    std::fs::read_to_string(data_dir.join("server.log")).unwrap_or_default()
}

/// Asserts a CLI run succeeded, showing its output otherwise.
pub fn assert_success(output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "command failed with {}\nstdout:\n{stdout}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// Installs hello-world on `server`, applies the tutorial's recipe and
/// waits until its instance is synced; returns the instance's path.
pub async fn tutorial_synced(server: &Server) -> String {
    install_hello_world(server);
    let (status, answer) = server.tosca(&tutorial_recipe(), ADMIN, PASSWORD).await;
    assert_eq!(status, 200, "{answer}");
    let instances = "/xosapi/v1/hello-world/helloworldserviceinstances";
    let instance = server.get(instances).await["items"][0]["id"]
        .as_i64()
        .expect("an instance");
    let path = format!("{instances}/{instance}");
    server
        .wait_for(&path, Duration::from_secs(30), |o| o["backend_code"] == 1)
        .await;
    path
}

/// Installs the hello-world guest from its source directory.
pub fn install_hello_world(server: &Server) {
    let dir = repo().join("guests/hello-world");
    let out =
        assert_success(&server.cli(&["service", "install", dir.to_str().expect("utf-8 path")]));
    assert!(out.contains("installed hello-world 1.0.0"), "{out}");
}

/// The tutorial's recipe.
pub fn tutorial_recipe() -> String {
    std::fs::read_to_string(repo().join("guests/hello-world/samples/hello-world.yaml"))
        .expect("recipe")
}

/// The failure count the engine keeps in `backend_register`.
pub fn failures(object: &Value) -> i64 {
    object["backend_register"]
        .as_str()
        .and_then(|r| serde_json::from_str::<Value>(r).ok())
        .and_then(|r| r["failures"].as_i64())
        .unwrap_or(0)
}

/// A port on 127.0.0.1 that was free a moment ago (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Exit code and both outputs of a command, for assertion messages.
pub fn describe(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Copies the service package in `source` (its manifest and xproto files)
/// to `dest`, pointing the manifest's components at the prebuilt ones in
/// `wasm_dir` instead of building them: `[build]` goes, and
/// `target/wasm32-wasip2/release/X.wasm` becomes `wasm_dir/X.wasm`.
/// `edit` may change the manifest text further.
/// Writes `manifest` as the package's `syncplane.toml`, first copying
/// each component it names by absolute path (the prebuilt test guests)
/// into the package's `components/`, since a package may only name files
/// inside itself.
pub fn write_manifest(dir: &Path, manifest: &str) {
    let mut out = String::new();
    for line in manifest.lines() {
        let absolute = line
            .trim_start()
            .strip_prefix("component = \"")
            .and_then(|rest| rest.strip_suffix('"'))
            .filter(|path| Path::new(path).is_absolute());
        match absolute {
            Some(path) => {
                let name = Path::new(path).file_name().expect("a file name");
                std::fs::create_dir_all(dir.join("components")).expect("components dir");
                std::fs::copy(path, dir.join("components").join(name)).expect("copy component");
                out.push_str(&format!(
                    "component = \"components/{}\"\n",
                    name.to_string_lossy()
                ));
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    std::fs::write(dir.join("syncplane.toml"), out).expect("manifest");
}

pub fn prebuilt_package(
    source: &Path,
    wasm_dir: &str,
    dest: &Path,
    edit: impl FnOnce(String) -> String,
) {
    std::fs::create_dir_all(dest.join("models")).expect("package dir");
    for entry in std::fs::read_dir(source.join("models")).expect("models") {
        let path = entry.expect("entry").path();
        std::fs::copy(
            &path,
            dest.join("models").join(path.file_name().expect("name")),
        )
        .expect("copy model");
    }
    let manifest = std::fs::read_to_string(source.join("syncplane.toml")).expect("manifest");
    assert!(manifest.contains("[build]\ncargo = true\n"), "{manifest}");
    let manifest = manifest.replace("[build]\ncargo = true\n", "").replace(
        "\"target/wasm32-wasip2/release/",
        &format!("\"{}/", wasm_dir.trim_end_matches('/')),
    );
    write_manifest(dest, &edit(manifest));
}
