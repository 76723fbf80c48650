//! The web GUI of a syncplane host, served at `/ui/` on the API's listener.
//!
//! # Brief overview
//!
//! - [`router`] answers every page under `/ui/`; `syncplane serve` merges
//!   it into the API's router (`syncplane_api::app_with_routes`), so the
//!   GUI shares the API's state, sign-in limits and body limit.
//! - Pages are rendered on the server from templates compiled into the
//!   binary (minijinja, HTML auto-escaping on every value); one stylesheet
//!   and one small script come from `/ui/static/`, nothing from another
//!   origin. Every answer carries a strict Content-Security-Policy
//!   (`default-src 'self'`, no inline script), and pages read the same
//!   with JavaScript off.
//! - Sign-in goes through the API's own password check
//!   ([`syncplane_api::sign_in`], rate-limited as REST's) and keeps the
//!   session token in an `HttpOnly; SameSite=Strict; Path=/ui` cookie.
//!   Every form carries a CSRF token derived from the session, checked on
//!   every `POST`.
//! - Lists, details and forms are generated from the model definitions
//!   ([`syncplane_core::modeldefs`]); every read and write runs as the
//!   signed-in user through the core's one authorization
//!   (`Core::query_as`, `get_as`, `create_as`, `update_as`, `delete_as`),
//!   so the GUI validates exactly as REST does.
//! - `/ui/events` streams the change log as Server-Sent Events (event id =
//!   change sequence, so `Last-Event-ID` resumes) plus the synchronizer's
//!   bookkeeping changes; the script refreshes what changed in place.
//!
//! # Example
//!
//! ```no_run
//! # async fn run(state: syncplane_api::AppState, listener: tokio::net::TcpListener) -> std::io::Result<()> {
//! syncplane_api::serve_state_with(listener, state, syncplane_gui::router(), std::future::pending()).await
//! # }
//! ```
#![deny(missing_docs)]

mod assets;
mod csrf;
mod detail;
mod edit;
mod error;
mod form;
mod graph;
mod graph_constraint;
mod graph_layout;
mod headers;
mod install;
mod list;
mod live;
mod login;
mod manage;
mod modelview;
mod nav;
mod paths;
mod pending;
mod runs;
mod search;
mod services;
mod session;
mod status;
mod templates;
mod values;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::response::Redirect;
use axum::routing::{get, post};
use syncplane_api::AppState;

pub use error::{GuiError, Result};

/// Where the GUI lives.
pub const PREFIX: &str = "/ui";

/// The GUI's routes, every one under [`PREFIX`], with its security headers
/// (see the crate docs); meant to be merged into the API's router.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ui", get(|| async { Redirect::to("/ui/") }))
        .route("/ui/", get(|| async { Redirect::to("/ui/services") }))
        .route("/ui/login", get(login::form).post(login::submit))
        .route("/ui/logout", post(login::logout))
        .route("/ui/static/app.css", get(assets::css))
        .route("/ui/static/app.js", get(assets::js))
        .route("/ui/services", get(services::page))
        .route(
            "/ui/services/install",
            get(install::form)
                .post(install::upload)
                .layer(DefaultBodyLimit::max(syncplane_api::MAX_PACKAGE_BYTES)),
        )
        .route("/ui/services/install/confirm", post(install::confirm))
        .route("/ui/services/{name}/history", get(manage::history))
        .route(
            "/ui/services/{name}/rollback",
            get(manage::rollback_review).post(manage::rollback),
        )
        .route(
            "/ui/services/{name}/uninstall",
            get(manage::uninstall_review).post(manage::uninstall),
        )
        .route("/ui/graph", get(graph::page))
        .route("/ui/history", get(runs::steps))
        .route("/ui/events", get(live::events))
        .route("/ui/m/{model}", get(list::page))
        .route("/ui/m/{model}/new", get(edit::new_form).post(edit::create))
        .route("/ui/m/{model}/search", get(search::search))
        .route("/ui/m/{model}/{id}", get(detail::page))
        .route("/ui/m/{model}/{id}/history", get(runs::object))
        .route(
            "/ui/m/{model}/{id}/edit",
            get(edit::edit_form).post(edit::update),
        )
        .route(
            "/ui/m/{model}/{id}/delete",
            get(edit::delete_form).post(edit::delete),
        )
        // Not a fallback: the API's unknown paths stay the API's.
        .route("/ui/{*rest}", get(error::not_found))
        .layer(axum::middleware::map_response(headers::secure))
}
