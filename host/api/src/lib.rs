//! The HTTP API of a syncplane host.
//!
//! # Brief overview
//!
//! - [`app`] builds the axum `Router`: XOS-style REST under `/xosapi/v1`,
//!   TOSCA at `/run` and `/custom_type/<model>`, service onboarding under
//!   `/syncplane/v1/services` (a service's limits at
//!   `/syncplane/v1/services/<name>/limits`), synchronizer status at `/syncplane/v1/status`,
//!   Prometheus metrics at `/metrics`, event publishing at
//!   `/syncplane/v1/events/<topic>`, the change log as Server-Sent Events
//!   at `/syncplane/v1/watch` ([`visible`] decides what a watcher sees).
//! - Lists (`GET /xosapi/v1/<app>/<plural>`) take XOS's query
//!   parameters: filters, `ordering`, `page`/`page_size` and a `cursor`,
//!   answered a page at a time with a `next` link; `/xosapi/v1/modeldefs`
//!   describes every model and field.
//! - Every route but `/custom_type`, `/healthz`, `/metrics` and
//!   `/syncplane/v1/login` needs credentials: a session or API token
//!   (`Authorization: Bearer`, XOS's `x-xossession`), XOS's
//!   `xos-username`/`xos-password` headers or HTTP Basic. Handlers receive
//!   the caller as [`User`].
//! - `POST /syncplane/v1/login` issues session tokens, `/syncplane/v1/tokens`
//!   the caller's API tokens; failed password checks are rate-limited per
//!   user and per client address ([`LoginLimits`]), as [`ApiConfig`] sets.
//! - [`serve`] runs the router on a listener until shutdown.
#![deny(missing_docs)]

mod audit;
mod auth;
mod error;
mod limit;
mod list;
mod modeldefs;
mod package_ref;
mod rest;
mod services;
mod sessions;
mod tosca;
mod watch;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use syncplane_platform::Host;
use tower_http::trace::TraceLayer;

pub use auth::{Credential, MISSING_CREDENTIALS, User, authenticate};
pub use error::ApiError;
pub use limit::{LoginLimits, Quota};
pub use sessions::{DEFAULT_API_TOKEN_TTL, sign_in};
pub use watch::{VisibleChange, kind_name, visible};

/// How the API authenticates; `Default` gives the documented defaults.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// How long a session token from `POST /syncplane/v1/login` lives.
    /// Default: 24 hours.
    pub session_ttl: Duration,
    /// Limits on failed password checks. Default: [`LoginLimits::default`].
    pub login_limits: LoginLimits,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            session_ttl: Duration::from_secs(24 * 3600),
            login_limits: LoginLimits::default(),
        }
    }
}

/// Shared state of the handlers. Cloned for every extractor of every
/// request, so each part is behind an `Arc`: a clone is a few counter
/// increments, not a copy of the host's handles.
#[derive(Clone)]
pub struct AppState {
    /// The host the API serves.
    pub host: Arc<Host>,
    config: Arc<ApiConfig>,
    login: Arc<limit::LoginGuard>,
}

/// Largest request body on every route but the two that take a service
/// package: 2 MiB, the largest TOSCA recipe accepted
/// ([`syncplane_tosca::Limits::max_bytes`]); REST objects are far
/// smaller. A larger body is answered `413 Payload Too Large` before it is
/// read. JSON bodies are parsed by `serde_json`, which refuses nesting
/// deeper than 128 (`400`).
pub const MAX_REQUEST_BYTES: usize = syncplane_tosca::MAX_RECIPE_BYTES;

/// Largest accepted service package upload: the package's files are capped
/// at 128 MiB together (`syncplane_platform::package_files`), which base64
/// in JSON makes about 171 MiB, plus room for the JSON around them.
pub const MAX_PACKAGE_BYTES: usize = 192 << 20;

/// Builds the router with the default [`ApiConfig`].
pub fn app(host: Host) -> Router {
    app_with(host, ApiConfig::default())
}

impl AppState {
    /// The state of a host's API: the REST router ([`app_from`]) and the
    /// gRPC server share one, so that they share the sign-in limits.
    pub fn new(host: Host, config: ApiConfig) -> Self {
        AppState {
            host: Arc::new(host),
            login: Arc::new(limit::LoginGuard::new(config.login_limits)),
            config: Arc::new(config),
        }
    }
}

/// Builds the router.
pub fn app_with(host: Host, config: ApiConfig) -> Router {
    app_from(AppState::new(host, config))
}

/// Builds the router on a shared [`AppState`].
pub fn app_from(state: AppState) -> Router {
    app_with_routes(state, Router::new())
}

/// Builds the router on a shared [`AppState`] with `extra` routes beside
/// the API's, under the same body limit and tracing: how `serve` mounts
/// the web GUI at `/ui/` (`syncplane_gui::router`), which sits on top of
/// this crate (its sign-in, [`User`], [`visible`]) and so cannot be a
/// dependency of it.
pub fn app_with_routes(state: AppState, extra: Router<AppState>) -> Router {
    Router::new()
        .merge(extra)
        .route("/healthz", get(|| async { "ok" }))
        .route("/syncplane/v1/login", post(sessions::login))
        .route("/syncplane/v1/logout", post(sessions::logout))
        .route(
            "/syncplane/v1/tokens",
            get(sessions::list).post(sessions::create),
        )
        .route(
            "/syncplane/v1/tokens/{which}",
            axum::routing::delete(sessions::revoke),
        )
        .route("/run", post(tosca::run))
        .route("/delete", post(tosca::delete))
        .route("/custom_type/{name}", get(tosca::show_custom_type))
        .route("/xosapi/v1/modeldefs", get(modeldefs::list))
        .route(
            "/xosapi/v1/{app}/{collection}",
            get(list::list).post(rest::create),
        )
        .route(
            "/xosapi/v1/{app}/{collection}/{id}",
            get(rest::get).put(rest::update).delete(rest::delete),
        )
        .route(
            "/syncplane/v1/services",
            get(services::list)
                .post(services::install)
                .layer(DefaultBodyLimit::max(MAX_PACKAGE_BYTES)),
        )
        .route(
            "/syncplane/v1/services/inspect",
            post(services::inspect).layer(DefaultBodyLimit::max(MAX_PACKAGE_BYTES)),
        )
        // The name for it: a package is inspected, not a service.
        .route(
            "/syncplane/v1/packages/inspect",
            post(services::inspect).layer(DefaultBodyLimit::max(MAX_PACKAGE_BYTES)),
        )
        .route(
            "/syncplane/v1/services/{name}",
            get(services::show).delete(services::uninstall),
        )
        .route(
            "/syncplane/v1/services/{name}/rollback",
            post(services::rollback),
        )
        .route(
            "/syncplane/v1/services/{name}/history",
            get(services::history),
        )
        .route(
            "/syncplane/v1/services/{name}/config",
            axum::routing::put(services::set_config),
        )
        .route(
            "/syncplane/v1/services/{name}/limits",
            get(services::limits).put(services::set_limits),
        )
        .route(
            "/syncplane/v1/services/{name}/secrets/{key}",
            axum::routing::put(services::set_secret),
        )
        .route(
            "/syncplane/v1/trust",
            get(services::trust).put(services::set_trust),
        )
        .route("/syncplane/v1/status", get(services::status))
        .route("/syncplane/v1/audit", get(audit::read))
        .route("/syncplane/v1/watch", get(watch::watch))
        .route("/metrics", get(services::metrics))
        // The rest of the path is the topic: topic names may contain `/`.
        .route("/syncplane/v1/events/{*topic}", post(services::publish))
        // Route layers above are closer to their handlers, so the package
        // routes keep their larger limit.
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Serves the API on `listener` until `shutdown` completes. Handlers see
/// each client's address (for the rate limits of failed sign-ins).
///
/// # Errors
///
/// When the listener fails.
pub async fn serve(
    listener: tokio::net::TcpListener,
    host: Host,
    config: ApiConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_state(listener, AppState::new(host, config), shutdown).await
}

/// [`serve`] on a shared [`AppState`].
///
/// # Errors
///
/// When the listener fails.
pub async fn serve_state(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_state_with(listener, state, Router::new(), shutdown).await
}

/// [`serve_state`] with `extra` routes beside the API's
/// ([`app_with_routes`]).
///
/// # Errors
///
/// When the listener fails.
pub async fn serve_state_with(
    listener: tokio::net::TcpListener,
    state: AppState,
    extra: Router<AppState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = app_with_routes(state, extra).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
