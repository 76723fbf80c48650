//! A real OCI registry for the registry tests: Debian's `docker-registry`
//! (CNCF distribution 2.8) on a free 127.0.0.1 port, with a temporary
//! storage directory and a bcrypt htpasswd file; and `skopeo`, to check
//! what it holds with another tool. Both are required: a test that needs
//! them fails, saying what to install, when they are missing.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

/// The registry's one user.
pub const REGISTRY_USER: &str = "acme";
/// Its password.
pub const REGISTRY_PASSWORD: &str = "registry-pw-7f3a9c";

/// `name` on the PATH (or in /usr/bin, /usr/sbin), else a failure saying
/// how to install it.
pub fn require_tool(name: &str, package: &str) -> PathBuf {
    let dirs =
        std::env::var_os("PATH").map_or_else(Vec::new, |p| std::env::split_paths(&p).collect());
    dirs.into_iter()
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("`{name}` is missing: the registry tests need it (apt-get install -y {package})")
        })
}

/// A running `docker-registry`. Killed when dropped.
pub struct Registry {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// Its storage directory (`docker/registry/v2/...` inside).
    pub storage: PathBuf,
    _dir: tempfile::TempDir,
}

impl Registry {
    /// Starts one and waits until it listens.
    pub fn start() -> Registry {
        let bin = require_tool("docker-registry", "docker-registry");
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = dir.path().join("storage");
        std::fs::create_dir_all(&storage).expect("mkdir");
        let hash = bcrypt::hash(REGISTRY_PASSWORD, 5).expect("bcrypt");
        let htpasswd = dir.path().join("htpasswd");
        std::fs::write(&htpasswd, format!("{REGISTRY_USER}:{hash}\n")).expect("htpasswd");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let addr = format!("127.0.0.1:{port}");
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
                 http:\n  addr: {addr}\n  secret: syncplane-test\n\
                 auth:\n  htpasswd:\n    realm: syncplane-test\n    path: {}\n",
                storage.display(),
                htpasswd.display()
            ),
        )
        .expect("config");
        let log = dir.path().join("registry.log");
        let mut child = Command::new(bin)
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn docker-registry");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        let log_path = log.clone();
        std::thread::spawn(move || {
            let mut file = std::fs::File::create(&log_path).expect("registry log");
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = writeln!(file, "{line}");
                if line.contains("listening on") {
                    let _ = tx.send(());
                }
            }
        });
        if rx.recv_timeout(Duration::from_secs(30)).is_err() {
            let _ = child.kill();
            panic!(
                "docker-registry did not start:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        Registry {
            child,
            addr,
            storage,
            _dir: dir,
        }
    }

    /// The reference of `repository` (`acme/hello-world`) here.
    pub fn reference(&self, repository: &str) -> String {
        format!("{}/{repository}", self.addr)
    }

    /// The file holding the blob `digest` in its storage.
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
        self.storage
            .join("docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `skopeo ARGS` with the registry's credentials and no TLS.
pub fn skopeo(args: &[&str]) -> Output {
    Command::new(require_tool("skopeo", "skopeo"))
        .args(args)
        .output()
        .expect("run skopeo")
}

/// The credentials as skopeo takes them.
pub fn skopeo_creds() -> String {
    format!("{REGISTRY_USER}:{REGISTRY_PASSWORD}")
}

/// `syncplane ARGS` with its config directory (registry credentials) at
/// `config`, against `server` when given, with `stdin` on its input.
pub fn syncplane(
    config: &Path,
    server: Option<&crate::util::Server>,
    args: &[&str],
    stdin: &str,
) -> Output {
    let mut command = Command::new(crate::util::BIN);
    command
        .args(args)
        .env("SYNCPLANE_CONFIG_DIR", config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(server) = server {
        command
            .env("SYNCPLANE_SERVER", &server.url)
            .env("SYNCPLANE_USERNAME", crate::util::ADMIN)
            .env("SYNCPLANE_PASSWORD", crate::util::PASSWORD);
    }
    let mut child = command.spawn().expect("run syncplane");
    {
        let mut input = child.stdin.take().expect("stdin");
        let _ = input.write_all(stdin.as_bytes());
    }
    child.wait_with_output().expect("wait for syncplane")
}
