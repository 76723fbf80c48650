//! A real PostgreSQL server for tests.
//!
//! [`PostgresServer::start`] makes a cluster with `initdb` in a temporary
//! directory and runs `postgres` on a free `127.0.0.1` port, as the
//! `postgres` user when the tests run as root (PostgreSQL refuses root).
//! The server is stopped when the value is dropped, and dies with the test
//! process (`PR_SET_PDEATHSIG` through `setpriv`) when that is killed.
//! [`shared`] is one server for a whole test process, with a fresh
//! database per caller ([`PostgresServer::fresh_database`]).
//!
//! A test process that ends leaves its cluster behind (the shared server
//! is never dropped, and a killed process drops nothing): each start first
//! removes the clusters of test processes no longer running. Databases
//! made for a data directory ([`PostgresServer::database_for`]) are
//! dropped once that directory is gone, so a long run holds only the
//! databases of the tests still running.
//!
//! Without the binaries the start panics with the command that installs
//! them: a test that needs PostgreSQL fails, it never skips.
#![deny(missing_docs)]

use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// What to run to install PostgreSQL on Debian.
pub const INSTALL: &str = "apt-get install postgresql";

/// How long the server may take to accept connections.
const START_LIMIT: Duration = Duration::from_secs(60);

/// What the temporary directory of every cluster is called first.
const PREFIX: &str = "syncplane-pg-";

/// The file in a cluster's directory naming the test process it is for.
const OWNER_FILE: &str = "owner.pid";

/// What the comment of a database made for a data directory starts with.
const OWNER_COMMENT: &str = "syncplane test data: ";

/// A running PostgreSQL server of its own, in a temporary directory.
pub struct PostgresServer {
    /// Holds the cluster; removed on drop.
    _dir: tempfile::TempDir,
    data: PathBuf,
    port: u16,
    child: Mutex<Option<Child>>,
    bin: PathBuf,
}

impl std::fmt::Debug for PostgresServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PostgresServer(127.0.0.1:{})", self.port)
    }
}

impl PostgresServer {
    /// Makes a cluster and starts its server.
    ///
    /// # Panics
    ///
    /// When PostgreSQL is not installed (saying how to install it), or the
    /// server does not start (with its log).
    pub fn start() -> PostgresServer {
        let bin = bin_dir();
        remove_stale_clusters();
        let dir = tempfile::Builder::new()
            .prefix(PREFIX)
            .tempdir()
            .expect("a temporary directory for PostgreSQL");
        std::fs::write(dir.path().join(OWNER_FILE), std::process::id().to_string())
            .expect("write the cluster's owner");
        let data = dir.path().join("data");
        let as_root = is_root();
        if as_root {
            // initdb and postgres run as `postgres`, which must own the
            // directory (tempdir made it 0700 for root).
            let status = Command::new("chown")
                .args(["-R", "postgres:"])
                .arg(dir.path())
                .status()
                .expect("chown");
            assert!(
                status.success(),
                "cannot give {} to postgres",
                dir.path().display()
            );
        }
        let output = as_postgres(as_root, &bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "-A",
                "trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ])
            .output()
            .expect("run initdb");
        assert!(
            output.status.success(),
            "initdb failed:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let server = PostgresServer {
            _dir: dir,
            data,
            port: 0,
            child: Mutex::new(None),
            bin,
        };
        server.run()
    }

    /// Starts `postgres` on a free port; returns the server.
    fn run(mut self) -> PostgresServer {
        self.port = free_port();
        let log = std::fs::File::create(self.log_path()).expect("postgres log");
        if is_root() {
            let _ = Command::new("chown")
                .arg("postgres:")
                .arg(self.log_path())
                .status();
        }
        let child = self.spawn(log);
        *self.child.lock().unwrap_or_else(|p| p.into_inner()) = Some(child);
        let started = Instant::now();
        let address = SocketAddrV4::new(Ipv4Addr::LOCALHOST, self.port);
        while TcpStream::connect_timeout(&address.into(), Duration::from_millis(200)).is_err()
            || !self.accepts_queries()
        {
            if let Some(status) = self.exited() {
                panic!("postgres exited ({status}); log:\n{}", self.log());
            }
            assert!(
                started.elapsed() < START_LIMIT,
                "postgres did not start in {START_LIMIT:?}; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        self
    }

    /// Whether `psql` gets an answer (the server may listen before it
    /// accepts logins).
    fn accepts_queries(&self) -> bool {
        self.psql("postgres", "SELECT 1").is_ok()
    }

    fn exited(&self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.lock().unwrap_or_else(|p| p.into_inner());
        child.as_mut().and_then(|c| c.try_wait().ok().flatten())
    }

    fn log_path(&self) -> PathBuf {
        self.data.with_file_name("postgres.log")
    }

    /// What the server logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The server's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of database `db` (as the `postgres` superuser, no password).
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Creates a database with a new name; returns its URL.
    pub fn fresh_database(&self) -> String {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "t{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        self.create_database(&name)
    }

    /// Creates database `name` unless it exists; returns its URL.
    pub fn create_database(&self, name: &str) -> String {
        let exists = self
            .psql(
                "postgres",
                &format!("SELECT 1 FROM pg_database WHERE datname = '{name}'"),
            )
            .expect("list databases");
        if exists.trim() != "1" {
            self.psql("postgres", &format!("CREATE DATABASE \"{name}\""))
                .expect("create database");
        }
        self.url(name)
    }

    /// Creates the database of the files at `owner` (a test's data
    /// directory) unless it exists, under `name`; returns its URL. It is
    /// dropped by a later call once `owner` is gone.
    pub fn database_for(&self, name: &str, owner: &Path) -> String {
        self.drop_orphaned_databases();
        let url = self.create_database(name);
        let comment = format!("{OWNER_COMMENT}{}", owner.display()).replace('\'', "''");
        self.psql(
            "postgres",
            &format!("COMMENT ON DATABASE \"{name}\" IS '{comment}'"),
        )
        .expect("comment on database");
        url
    }

    /// Drops the databases made for data directories since removed.
    fn drop_orphaned_databases(&self) {
        let listing = self
            .psql(
                "postgres",
                "SELECT datname, shobj_description(oid, 'pg_database') FROM pg_database",
            )
            .expect("list databases");
        for line in listing.lines() {
            let Some((name, comment)) = line.split_once('|') else {
                continue;
            };
            let Some(owner) = comment.strip_prefix(OWNER_COMMENT) else {
                continue;
            };
            if !Path::new(owner).exists() {
                // Another test may be dropping it too: its error is moot.
                let _ = self.psql(
                    "postgres",
                    &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
                );
            }
        }
    }

    /// Runs `sql` with `psql` on database `db`; returns its unaligned
    /// output, or its error output when it fails.
    ///
    /// # Errors
    ///
    /// `psql`'s error output.
    pub fn psql(&self, db: &str, sql: &str) -> Result<String, String> {
        let output = Command::new(self.bin.join("psql"))
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
            ])
            .args(["-d", db, "-c", sql])
            .output()
            .map_err(|e| format!("run psql: {e}"))?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&output.stderr).into_owned())
        }
    }

    /// Stops the server at once (as a crash would), keeping its data.
    pub fn kill(&self) {
        if let Some(mut child) = self.child.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // Backends notice the postmaster's death and leave; wait for them
        // so that a restart finds the port and shared memory free.
        let pid_file = self.data.join("postmaster.pid");
        let started = Instant::now();
        while pid_file.exists() && started.elapsed() < Duration::from_secs(10) {
            if !self.any_backend_left() {
                let _ = std::fs::remove_file(&pid_file);
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether a process still has the data directory as its own.
    fn any_backend_left(&self) -> bool {
        let Ok(procs) = std::fs::read_dir("/proc") else {
            return false;
        };
        procs
            .flatten()
            .any(|p| std::fs::read_link(p.path().join("cwd")).is_ok_and(|cwd| cwd == self.data))
    }

    /// Starts `postgres` on the cluster and port, logging to `log`.
    fn spawn(&self, log: std::fs::File) -> Child {
        as_postgres(is_root(), &self.bin.join("postgres"))
            .arg("-D")
            .arg(&self.data)
            .args(["-p", &self.port.to_string()])
            .args(["-c", "listen_addresses=127.0.0.1"])
            .arg("-c")
            .arg(format!("unix_socket_directories={}", self.data.display()))
            // Tests stop hosts, not machines: skipping fsync changes no
            // behaviour they check and saves the disk.
            .args(["-c", "fsync=off", "-c", "full_page_writes=off"])
            // The default keeps up to a gigabyte of WAL; tests need none
            // of it for recovery beyond the last checkpoint.
            .args(["-c", "wal_level=minimal", "-c", "max_wal_senders=0"])
            .args(["-c", "max_wal_size=64MB", "-c", "min_wal_size=32MB"])
            .args(["-c", "max_connections=300"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start postgres")
    }

    /// Starts the server again after [`PostgresServer::kill`], on the same
    /// port.
    pub fn restart(&self) {
        let log = std::fs::OpenOptions::new()
            .append(true)
            .open(self.log_path())
            .expect("postgres log");
        let child = self.spawn(log);
        *self.child.lock().unwrap_or_else(|p| p.into_inner()) = Some(child);
        let started = Instant::now();
        while !self.accepts_queries() {
            assert!(
                started.elapsed() < START_LIMIT,
                "postgres did not restart; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One server for the whole test process, started on first use. It runs
/// until the process ends (its start thread never exits, so the
/// parent-death signal fires only then).
pub fn shared() -> &'static PostgresServer {
    static SHARED: OnceLock<&'static PostgresServer> = OnceLock::new();
    SHARED.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("postgres".into())
            .spawn(move || {
                let server: &'static PostgresServer = Box::leak(Box::new(PostgresServer::start()));
                let _ = tx.send(server);
                loop {
                    std::thread::park();
                }
            })
            .expect("postgres thread");
        rx.recv()
            .unwrap_or_else(|_| panic!("PostgreSQL did not start (see the panic above)"))
    })
}

/// The directory of PostgreSQL's programs (the newest installed version).
///
/// # Panics
///
/// When PostgreSQL is not installed, with the command that installs it.
pub fn bin_dir() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    // initdb and postgres run through setpriv (util-linux): as `postgres`
    // when we are root, and dying with the test process either way.
    if !["/usr/bin/setpriv", "/bin/setpriv"]
        .iter()
        .any(|p| Path::new(p).exists())
    {
        panic!("setpriv is not installed; install it with `apt-get install util-linux`");
    }
    match versions.pop() {
        Some((_, bin)) if bin.join("postgres").exists() && bin.join("psql").exists() => bin,
        _ => panic!(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb); \
             install it with `{INSTALL}` (Debian; .ci/run does this)"
        ),
    }
}

/// Removes the clusters of test processes that are no longer running
/// (their servers died with them).
fn remove_stale_clusters() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if !entry.file_name().to_string_lossy().starts_with(PREFIX) {
            continue;
        }
        let owner = std::fs::read_to_string(path.join(OWNER_FILE)).ok();
        let stale = match owner.and_then(|pid| pid.trim().parse::<u32>().ok()) {
            Some(pid) => !Path::new(&format!("/proc/{pid}")).exists(),
            // One being made by a process starting now has no owner file
            // for a moment; one that old never will.
            None => entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > Duration::from_secs(600))),
        };
        if stale {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
}

/// A command running `program` as `postgres` when we are root (PostgreSQL
/// refuses to run as root), dying with this process either way.
fn as_postgres(as_root: bool, program: &Path) -> Command {
    let mut command = Command::new("setpriv");
    if as_root {
        command.args([
            "--reuid",
            "postgres",
            "--regid",
            "postgres",
            "--init-groups",
        ]);
    }
    command.args(["--pdeathsig", "KILL", "--"]).arg(program);
    command
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}
