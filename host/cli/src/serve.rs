//! `syncplane serve`.

use std::process::ExitCode;

use anyhow::Context as _;
use syncplane_api::{ApiConfig, AppState, LoginLimits};
use syncplane_core::HistoryRetention;
use syncplane_core::{ADMIN_EMAIL, AuthOptions};
use syncplane_platform::capability::OperatorPolicy;
use syncplane_platform::toml_error;
use syncplane_platform::{
    ADMIN_PASSWORD_FILE, EngineConfig, Host, HostConfig, Limits, RetryPolicy, ServiceLimits,
};
use tokio::sync::watch;

use crate::args::{ServeArgs, TuningArgs};

impl TuningArgs {
    pub fn apply(&self, config: &mut HostConfig) {
        config.engine = EngineConfig {
            retry: RetryPolicy {
                retry_interval: self.retry_interval,
                backoff_base: self.backoff_base,
                backoff_max: self.backoff_max,
                backoff_disabled: self.backoff_disabled,
            },
            concurrency: self.concurrency as usize,
            batch_size: self.batch_size,
            service_limits: ServiceLimits {
                concurrency: self.service_concurrency,
                invocations_per_sec: self.service_rate.0,
            },
            shutdown_grace: self.shutdown_grace,
            lease_ttl: self.lease_ttl,
            history: HistoryRetention {
                keep: self.history_keep,
                max_age_ms: i64::try_from(self.history_max_age.as_millis()).unwrap_or(i64::MAX),
            },
        };
        config.service_max_objects = self.service_max_objects.0;
        config.guest_idle_unload = self.guest_idle_unload;
        config.guest_memory_max = self.guest_memory_max.map(|mib| (mib as usize) << 20);
        config.warm_instances_max = self.warm_instances_max;
        config.component_cache_max_bytes = self.component_cache_max_mib << 20;
        config.component_cache_dir = self.component_cache_dir.clone();
        config.limits = Limits {
            deadline: self.step_timeout,
            memory_bytes: self.memory_limit_mib << 20,
            ..Limits::default()
        };
    }
}

/// Resolves when the process is asked to stop (Ctrl-C or SIGTERM).
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// Where gRPC listens, and the TLS identity it presents (plain text
/// without).
pub struct GrpcListener {
    /// The bound socket.
    pub listener: tokio::net::TcpListener,
    /// The certificate and key; `None` serves plain text.
    pub tls: Option<syncplane_grpc::TlsIdentity>,
}

/// Serves HTTP (and gRPC on `grpc`, when given) and runs the engine until
/// `stop` completes. REST and gRPC share one API state: the same host, the
/// same sign-in limits.
pub async fn serve_host(
    host: Host,
    listener: tokio::net::TcpListener,
    grpc: Option<GrpcListener>,
    api: ApiConfig,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let engine = host.spawn_engine(shutdown_rx);
    let state = AppState::new(host, api);
    // One stop for both servers; it also fires when the HTTP server ends
    // first (its sender is dropped then).
    let (stop_tx, stop_rx) = watch::channel(false);
    let grpc = grpc.map(|grpc| {
        let mut stopped = stop_rx.clone();
        tokio::spawn(syncplane_grpc::serve(
            grpc.listener,
            state.clone(),
            grpc.tls,
            async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            },
        ))
    });
    // The web GUI answers under /ui/ on the same listener.
    let http =
        syncplane_api::serve_state_with(listener, state, syncplane_gui::router(), async move {
            stop.await;
            let _ = stop_tx.send(true);
        })
        .await;
    let grpc = match grpc {
        Some(task) => task.await.context("gRPC server task failed")?,
        None => Ok(()),
    };
    let _ = shutdown_tx.send(true);
    let _ = engine.await;
    http.context("HTTP server failed")?;
    grpc.context("gRPC server failed")?;
    Ok(())
}

/// Reads an operator policy file, naming the file and position of a mistake.
fn read_policy(path: &std::path::Path) -> anyhow::Result<OperatorPolicy> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the policy file {}", path.display()))?;
    toml::from_str(&text)
        .map_err(|e| anyhow::anyhow!(toml_error(&path.display().to_string(), &text, &e)))
}

pub async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let mut config = HostConfig::new(&args.data_dir);
    config.store = args.store.clone();
    config.admin_password = args.admin_password.clone();
    config.secret_key_file = args.secret_key_file.clone();
    if let Some(path) = &args.policy {
        config.policy = read_policy(path)?;
    }
    if let Some(path) = &args.trust {
        config.trust = Some(crate::market::read_trust(path)?);
    }
    args.tuning.apply(&mut config);
    let opening = match &args.store {
        Some(store) => format!(
            "cannot open the store {store} (data directory {})",
            args.data_dir.display()
        ),
        None => format!("cannot open the data directory {}", args.data_dir.display()),
    };
    let host = Host::open(config).await.context(opening)?;
    if let Some(store) = &args.store {
        tracing::info!(store = %store, "models and bookkeeping are in this store");
    }
    if let Some(password) = host.generated_admin_password() {
        println!(
            "created user {ADMIN_EMAIL} with password {password}\n  (shown once; kept in {}, readable only by you)",
            args.data_dir.join(ADMIN_PASSWORD_FILE).display()
        );
    }
    let listener = tokio::net::TcpListener::bind(args.http)
        .await
        .with_context(|| format!("cannot listen on {}", args.http))?;
    let addr = listener.local_addr().context("listener has no address")?;
    let grpc = match args.grpc {
        Some(grpc) => {
            let tls = match (&args.grpc_tls_cert, &args.grpc_tls_key) {
                (Some(cert), Some(key)) => Some(syncplane_grpc::TlsIdentity {
                    cert_pem: std::fs::read(cert).with_context(|| {
                        format!("cannot read the gRPC TLS certificate {}", cert.display())
                    })?,
                    key_pem: std::fs::read(key).with_context(|| {
                        format!("cannot read the gRPC TLS key {}", key.display())
                    })?,
                }),
                _ => None,
            };
            let listener = tokio::net::TcpListener::bind(grpc)
                .await
                .with_context(|| format!("cannot listen for gRPC on {grpc}"))?;
            let grpc_addr = listener.local_addr().context("listener has no address")?;
            let scheme = if tls.is_some() { "https" } else { "http" };
            // Printed before the HTTP line, which tells that both are up.
            println!("syncplane gRPC listening on {scheme}://{grpc_addr}");
            Some(GrpcListener { listener, tls })
        }
        None => None,
    };
    println!("syncplane listening on http://{addr}");
    let defaults = AuthOptions::default();
    host.core().set_auth_options(AuthOptions {
        credential_cache_ttl: args.auth_cache_ttl,
        max_waiting_password_checks: args
            .password_check_queue
            .unwrap_or(defaults.max_waiting_password_checks),
    });
    let api = ApiConfig {
        session_ttl: args.session_ttl,
        login_limits: LoginLimits {
            per_user: args.login_limit_user.0,
            per_address: args.login_limit_address.0,
        },
    };
    serve_host(host, listener, grpc, api, shutdown_signal()).await?;
    Ok(ExitCode::SUCCESS)
}
