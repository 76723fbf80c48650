//! `syncplane bench registry`: publish a signed package of about 20 MB to
//! a loopback registry, then time pulling it (by digest, hashed while it
//! streams), verifying the pulled file (every digest and signature) and
//! installing it into a host on a temporary data directory.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde_json::json;
use syncplane_distribution::{Client, ClientOptions, PullOptions, Reference};
use syncplane_platform::archive::PackedService;
use syncplane_platform::{Host, HostConfig, SigningKey};

use crate::args::BenchRegistryArgs;
use crate::bench::{NOOP_MANIFEST, NOOP_WASM, NOOP_XPROTO};

/// Where the no-op manifest puts its component.
const COMPONENT: &str = "target/wasm32-wasip2/release/noop.wasm";

/// A `docker-registry` this benchmark started: no authentication, a
/// temporary storage directory, a free loopback port. Killed when dropped.
struct LoopbackRegistry {
    child: Child,
    addr: String,
}

impl LoopbackRegistry {
    fn start(dir: &Path) -> anyhow::Result<LoopbackRegistry> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .context("no free loopback port")?
            .port();
        let addr = format!("127.0.0.1:{port}");
        let config = dir.join("registry.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n  secret: bench\n",
                dir.join("storage").display()
            ),
        )
        .context("cannot write the registry's config")?;
        let mut child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context(
                "cannot start docker-registry (apt-get install -y docker-registry), or give --registry HOST:PORT",
            )?;
        let stderr = child.stderr.take().context("no registry stderr")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("listening on") {
                    let _ = tx.send(());
                }
            }
        });
        if rx.recv_timeout(Duration::from_secs(30)).is_err() {
            let _ = child.kill();
            bail!("docker-registry did not start");
        }
        Ok(LoopbackRegistry { child, addr })
    }
}

impl Drop for LoopbackRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The no-op service in `dir`, its component padded with a custom section
/// to about `bytes`.
fn write_package(dir: &Path, bytes: usize) -> anyhow::Result<()> {
    let component = dir.join(COMPONENT);
    if let Some(parent) = component.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::create_dir_all(dir.join("models"))?;
    std::fs::write(dir.join("syncplane.toml"), NOOP_MANIFEST)?;
    std::fs::write(dir.join("models/noop.xproto"), NOOP_XPROTO)?;
    let mut wasm = NOOP_WASM.to_vec();
    let padding = bytes.saturating_sub(wasm.len()).max(16);
    let name = b"syncplane-bench-padding";
    let mut payload = vec![u8::try_from(name.len()).unwrap_or(0)];
    payload.extend_from_slice(name);
    // Not compressible, as real code is not.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    payload.extend((0..padding).map(|_| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state.to_le_bytes()[0]
    }));
    wasm.push(0);
    leb128(&mut wasm, payload.len());
    wasm.extend_from_slice(&payload);
    std::fs::write(&component, wasm)?;
    Ok(())
}

fn leb128(out: &mut Vec<u8>, mut value: usize) {
    loop {
        let byte = u8::try_from(value & 0x7f).unwrap_or(0);
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The median and the largest of `samples`, in milliseconds.
fn summary(samples: &mut [Duration]) -> (f64, f64) {
    samples.sort();
    let median = samples.get(samples.len() / 2).copied().unwrap_or_default();
    let max = samples.last().copied().unwrap_or_default();
    (millis(median), millis(max))
}

/// `bench registry [--size-mib N] [--rounds N] [--registry HOST:PORT]`.
pub async fn run(args: BenchRegistryArgs) -> anyhow::Result<ExitCode> {
    let work = tempfile::tempdir().context("cannot create a temporary directory")?;
    let service = work.path().join("noop");
    write_package(&service, args.size_mib.saturating_mul(1 << 20))?;
    let (archive, _) = PackedService::pack(&service).context("cannot pack the bench package")?;
    let (signed, _, _) = PackedService::sign(&archive, &SigningKey::generate())?;

    let started_registry;
    let (registry, credentials) = match &args.registry {
        Some(registry) => (
            registry.clone(),
            crate::registry::client_credentials(registry)?,
        ),
        None => {
            let storage = work.path().join("registry");
            std::fs::create_dir_all(&storage)?;
            started_registry = LoopbackRegistry::start(&storage)?;
            (started_registry.addr.clone(), None)
        }
    };
    let client = Client::new(
        &registry,
        ClientOptions {
            insecure: false,
            credentials,
        },
    )?;
    // The package is the same every run: publishing it again to a
    // registry that has it sends nothing.
    let reference = Reference::parse(&format!("{registry}/syncplane-bench/noop"))?;
    let started = Instant::now();
    let published = syncplane_distribution::publish(&client, &reference, &signed).await?;
    let publish = started.elapsed();

    let (mut pulls, mut verifies) = (Vec::new(), Vec::new());
    let mut pulled = None;
    for _ in 0..args.rounds.max(1) {
        let started = Instant::now();
        let this = syncplane_distribution::pull(
            &client,
            &published.reference,
            PullOptions {
                require_signature: true,
            },
        )
        .await?;
        pulls.push(started.elapsed());
        let started = Instant::now();
        PackedService::unpack(&this.archive)?;
        verifies.push(started.elapsed());
        pulled = Some(this);
    }
    let pulled = pulled.context("nothing was pulled")?;
    if pulled.archive != signed {
        bail!("the pulled file differs from the one published");
    }

    let data = work.path().join("data");
    let mut config = HostConfig::new(&data);
    config.admin_password = Some("bench".into());
    let host = Host::open(config)
        .await
        .context("cannot open the bench store")?;
    let started = Instant::now();
    host.install(pulled.packed.package, &Default::default())
        .await
        .context("cannot install the bench package")?;
    let install = started.elapsed();

    let (pull_p50, pull_max) = summary(&mut pulls);
    let (verify_p50, verify_max) = summary(&mut verifies);
    let mib = signed.len() as f64 / f64::from(1 << 20);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "package_mib": mib,
                "registry": registry,
                "publish_ms": millis(publish),
                "pull_p50_ms": pull_p50,
                "pull_max_ms": pull_max,
                "verify_p50_ms": verify_p50,
                "verify_max_ms": verify_max,
                "install_ms": millis(install),
                "rounds": pulls.len(),
            }))?
        );
    } else {
        println!(
            "package  {mib:.1} MiB, signed, from {registry} ({} rounds)",
            pulls.len()
        );
        println!("publish  {:>8.1} ms", millis(publish));
        println!(
            "pull     {pull_p50:>8.1} ms p50, {pull_max:.1} ms max (by digest, each blob hashed while it streams, then read back)"
        );
        println!(
            "verify   {verify_p50:>8.1} ms p50, {verify_max:.1} ms max (every digest and the signature of the pulled file)"
        );
        println!(
            "install  {:>8.1} ms (compile and activate, temporary store)",
            millis(install)
        );
    }
    drop(host);
    Ok(ExitCode::SUCCESS)
}
