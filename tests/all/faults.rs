//! Faults of the database under the real binary: another process locking
//! it, the disk filling up, restarts. A write is acknowledged only once it
//! is durable, refused writes leave nothing behind, and ids are never
//! handed out twice.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::Connection as _;

use crate::util::{ADMIN, PASSWORD, Server};

const SITES: &str = "/xosapi/v1/core/sites";
const SERVICES: &str = "/xosapi/v1/core/services";

/// Status, `Retry-After` and body of a request with the admin's
/// credentials.
async fn send(
    server: &Server,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Option<String>, Value) {
    let method_name = method.to_string();
    let mut request = reqwest::Client::new()
        .request(method, format!("{}{path}", server.url))
        .basic_auth(ADMIN, Some(PASSWORD))
        .timeout(Duration::from_secs(30));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = match request.send().await {
        Ok(response) => response,
        Err(e) => panic!("{method_name} {path}: {e}\nserver log:\n{}", server.log()),
    };
    let status = response.status().as_u16();
    let retry_after = crate::util::retry_after(&response);
    let text = response.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, retry_after, body)
}

/// The `(id, name)` of every item of a collection.
async fn names(server: &Server, collection: &str) -> Vec<(i64, String)> {
    server
        .list_all(collection)
        .await
        .iter()
        .map(|o| {
            (
                o["id"].as_i64().expect("id"),
                o["name"].as_str().expect("name").to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_locked_database_answers_503_with_retry_after_quickly_and_the_same_request_succeeds_after()
 {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(data.path());
    server
        .create(SITES, json!({"name": "before", "login_base": "b"}))
        .await;

    // Another process takes the write lock, as an operator's `sqlite3`
    // with `BEGIN EXCLUSIVE` or `psql` with `LOCK TABLE` would.
    let lock = StoreLock::take(data.path()).await;

    let site = json!({"name": "during", "login_base": "d"});
    let started = Instant::now();
    let (status, retry_after, body) =
        send(&server, reqwest::Method::POST, SITES, Some(site.clone())).await;
    let took = started.elapsed();
    assert_eq!(status, 503, "{body}\n{}", server.log());
    assert!(
        body["error"]
            .as_str()
            .unwrap_or_default()
            .contains("database is busy"),
        "{body}"
    );
    let retry_after: u64 = retry_after
        .expect("a Retry-After header")
        .parse()
        .expect("Retry-After in seconds");
    assert!((1..=10).contains(&retry_after), "Retry-After {retry_after}");
    // The store waits 1 s for a lock; 5 s leaves room for a slow machine
    // and is far from the 10 s it took before.
    assert!(took < Duration::from_secs(5), "took {took:?}");

    // A recipe is refused the same way, and nothing of it is written.
    let recipe = "tosca_definitions_version: tosca_simple_yaml_1_0\ntopology_template:\n  node_templates:\n    s:\n      type: tosca.nodes.Site\n      properties:\n        name: from-recipe\n        login_base: r\n";
    let (status, body) = server.tosca(recipe, ADMIN, PASSWORD).await;
    assert_eq!(status, 503, "{body}");

    // Reads go on: WAL readers (and PostgreSQL's) do not need the write lock.
    let (status, _, body) = send(&server, reqwest::Method::GET, SITES, None).await;
    assert_eq!(status, 200, "{body}");

    lock.release().await;

    let (status, _, body) = send(&server, reqwest::Method::POST, SITES, Some(site)).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = server.tosca(recipe, ADMIN, PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    let sites: Vec<String> = names(&server, SITES)
        .await
        .into_iter()
        .map(|(_, n)| n)
        .collect();
    assert_eq!(sites, ["before", "during", "from-recipe"]);
}

/// A write lock on the store held by another session.
enum StoreLock {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl StoreLock {
    /// Takes the write lock of the store of the server on `data_dir`.
    async fn take(data_dir: &Path) -> StoreLock {
        match crate::util::test_store(data_dir) {
            None => {
                let url = format!("sqlite://{}", data_dir.join("syncplane.db").display());
                let mut other = sqlx::SqliteConnection::connect(&url)
                    .await
                    .expect("open the server's database");
                sqlx::query("BEGIN EXCLUSIVE")
                    .execute(&mut other)
                    .await
                    .expect("take the lock");
                StoreLock::Sqlite(other)
            }
            Some(url) => {
                let mut other = sqlx::PgConnection::connect(&url)
                    .await
                    .expect("connect to the server's database");
                // Every write advances the change sequence in sp_meta;
                // EXCLUSIVE lets readers in and keeps writers out.
                sqlx::query("BEGIN")
                    .execute(&mut other)
                    .await
                    .expect("begin");
                sqlx::query("LOCK TABLE sp_meta IN EXCLUSIVE MODE")
                    .execute(&mut other)
                    .await
                    .expect("take the lock");
                StoreLock::Postgres(other)
            }
        }
    }

    async fn release(self) {
        match self {
            StoreLock::Sqlite(mut other) => {
                sqlx::query("ROLLBACK")
                    .execute(&mut other)
                    .await
                    .expect("release the lock");
                other.close().await.expect("close");
            }
            StoreLock::Postgres(mut other) => {
                sqlx::query("ROLLBACK")
                    .execute(&mut other)
                    .await
                    .expect("release the lock");
                other.close().await.expect("close");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn ids_are_not_reused_after_a_delete_and_a_restart() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(data.path());
    let first = server
        .create(SITES, json!({"name": "a", "login_base": "a"}))
        .await;
    let last = server
        .create(SITES, json!({"name": "b", "login_base": "b"}))
        .await;
    assert!(last > first);
    let (status, _, body) = send(
        &server,
        reqwest::Method::DELETE,
        &format!("{SITES}/{last}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // Sites have no sync step: the engine purges the row at once.
    server
        .wait_for(SITES, Duration::from_secs(20), |sites| {
            sites["items"]
                .as_array()
                .is_some_and(|items| items.len() == 1)
        })
        .await;
    server.kill();
    let server = Server::start(data.path());
    let next = server
        .create(SITES, json!({"name": "c", "login_base": "c"}))
        .await;
    assert!(next > last, "id {next} handed out again after {last}");
}

/// A small tmpfs mounted for the length of a test; unmounted on drop.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (as `mount -o size=` takes it) on `dir`,
    /// or fails the test saying how to run it.
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).expect("mount point");
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output();
        match output {
            Ok(output) if output.status.success() => Tmpfs {
                dir: dir.to_owned(),
            },
            other => panic!(
                "the disk-full test needs to mount a small tmpfs and could not ({}). \
                 Run it as root or with CAP_SYS_ADMIN, e.g. \
                 `sudo -E cargo test --test all -- faults::` (CI runs as root).",
                match other {
                    Ok(output) => String::from_utf8_lossy(&output.stderr).trim().to_owned(),
                    Err(e) => format!("`mount` did not run: {e}"),
                }
            ),
        }
    }

    /// Gives the filesystem a new size, as an operator freeing space would.
    fn resize(&self, size: &str) {
        let output = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.dir)
            .output()
            .expect("run mount");
        assert!(
            output.status.success(),
            "remount: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount")
            .arg(&self.dir)
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            // Something still holds a file: detach it now, it goes when
            // released.
            let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_refuses_writes_with_507_loses_no_acknowledged_write_and_reuses_no_id() {
    let root = tempfile::tempdir().expect("tempdir");
    let mount = root.path().join("disk");
    // Declared before the server, so the server is killed before unmount.
    let disk = Tmpfs::mount(&mount, "4m");
    let data = mount.join("data");
    // A full disk under SQLite's file, on either leg of the suite.
    let file = data.join("syncplane.db").display().to_string();
    let on_the_disk = [("--store", file.as_str())];
    let server = Server::start_with(&data, &on_the_disk);

    // 30 KB per service: a few dozen fill 4 MiB.
    let description = "x".repeat(30_000);
    let mut acknowledged: Vec<(i64, String)> = Vec::new();
    let mut refused: Vec<String> = Vec::new();
    for i in 0..1000 {
        let name = format!("svc{i}");
        let (status, _, body) = send(
            &server,
            reqwest::Method::POST,
            SERVICES,
            Some(json!({"name": name, "description": description})),
        )
        .await;
        match status {
            201 => acknowledged.push((body["id"].as_i64().expect("id"), name)),
            507 => {
                assert!(
                    body["error"]
                        .as_str()
                        .unwrap_or_default()
                        .contains("disk holding the database is full"),
                    "{body}"
                );
                refused.push(name);
                if refused.len() == 5 {
                    break;
                }
            }
            other => panic!("create {i}: {other} {body}\n{}", server.log()),
        }
    }
    assert_eq!(refused.len(), 5, "the disk never filled up");
    assert!(
        acknowledged.len() >= 10,
        "only {} creates fit",
        acknowledged.len()
    );

    // Reads still work and show exactly what was acknowledged.
    let listed = names(&server, SERVICES).await;
    assert_eq!(listed, acknowledged);

    // A crash, then the operator makes room and starts the server again.
    server.kill();
    disk.resize("64m");
    let server = Server::start_with(&data, &on_the_disk);
    let listed = names(&server, SERVICES).await;
    assert_eq!(
        listed, acknowledged,
        "acknowledged creates lost in the restart"
    );
    for name in &refused {
        assert!(
            !listed.iter().any(|(_, n)| n == name),
            "refused {name} exists"
        );
    }
    let highest = acknowledged.iter().map(|(id, _)| *id).max().expect("ids");
    let next = server
        .create(SERVICES, json!({"name": "after-restart"}))
        .await;
    assert!(next > highest, "id {next} handed out again (had {highest})");
    drop(server);
}
