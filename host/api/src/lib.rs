//! The HTTP API of a syncplane host.
//!
//! # Brief overview
//!
//! - [`app`] builds the axum `Router`: XOS-style REST under `/xosapi/v1`,
//!   TOSCA at `/run` and `/custom_type/<model>`, service onboarding under
//!   `/syncplane/v1/services`, synchronizer status at `/syncplane/v1/status`,
//!   Prometheus metrics at `/metrics`, event publishing at
//!   `/syncplane/v1/events/<topic>`.
//! - Every route but `/custom_type`, `/healthz` and `/metrics` needs credentials:
//!   XOS's `xos-username`/`xos-password` headers or HTTP Basic.
//! - [`serve`] runs the router on a listener until shutdown.
#![deny(missing_docs)]

mod auth;
mod error;
mod rest;
mod services;
mod tosca;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use syncplane_platform::Host;
use tower_http::trace::TraceLayer;

pub use error::ApiError;

/// Shared state of the handlers.
#[derive(Clone)]
pub struct AppState {
    /// The host the API serves.
    pub host: Host,
}

/// Largest request body on every route but the two that take a service
/// package: 2 MiB, the largest TOSCA recipe accepted
/// ([`syncplane_tosca::Limits::max_bytes`]); REST objects are far
/// smaller. A larger body is answered `413 Payload Too Large` before it is
/// read. JSON bodies are parsed by `serde_json`, which refuses nesting
/// deeper than 128 (`400`).
pub const MAX_REQUEST_BYTES: usize = syncplane_tosca::MAX_RECIPE_BYTES;

/// Largest accepted service package upload: the package's files are capped
/// at 48 MiB together (`syncplane_platform::package_files`), which base64
/// in JSON makes 64 MiB, plus room for the JSON around them.
pub const MAX_PACKAGE_BYTES: usize = 72 << 20;

/// Builds the router.
pub fn app(host: Host) -> Router {
    let state = AppState { host };
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/run", post(tosca::run))
        .route("/custom_type/{name}", get(tosca::show_custom_type))
        .route(
            "/xosapi/v1/{app}/{collection}",
            get(rest::list).post(rest::create),
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
        .route(
            "/syncplane/v1/services/{name}",
            get(services::show).delete(services::uninstall),
        )
        .route(
            "/syncplane/v1/services/{name}/rollback",
            post(services::rollback),
        )
        .route(
            "/syncplane/v1/services/{name}/config",
            axum::routing::put(services::set_config),
        )
        .route(
            "/syncplane/v1/services/{name}/secrets/{key}",
            axum::routing::put(services::set_secret),
        )
        .route("/syncplane/v1/status", get(services::status))
        .route("/metrics", get(services::metrics))
        .route("/syncplane/v1/events/{topic}", post(services::publish))
        // Route layers above are closer to their handlers, so the package
        // routes keep their larger limit.
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Serves the API on `listener` until `shutdown` completes.
///
/// # Errors
///
/// When the listener fails.
pub async fn serve(
    listener: tokio::net::TcpListener,
    host: Host,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app(host))
        .with_graceful_shutdown(shutdown)
        .await
}
