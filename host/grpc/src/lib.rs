//! The gRPC API of a syncplane host, in XOS's shape, generated from the
//! installed models at run time.
//!
//! # Brief overview
//!
//! - [`GrpcService`] answers every gRPC method of a host, over descriptors
//!   ([`Descriptors`]) built from the models installed *now*: the registry's
//!   models are rendered to `.proto` text by the xproto generator (the same
//!   text `syncplane gen proto` prints), compiled with `protox`, and served
//!   as `prost-reflect` dynamic messages. Installing a service changes the
//!   registry; the next call rebuilds the descriptors.
//! - `xos.xos` has XOS's `List/Filter/Get/Create/Update/Delete<Model>`
//!   methods; `syncplane.watch.Watch` has `Watch<Model>` (beyond XOS), a
//!   stream of creates, updates and deletes from a change sequence; server
//!   reflection (`grpc.reflection.v1` and `v1alpha`) describes both, so
//!   `grpcurl` needs no `.proto` files.
//! - Calls authenticate exactly as REST ([`syncplane_api::authenticate`]:
//!   metadata `authorization: Basic ...`, `authorization: Bearer <token>`,
//!   `x-xossession`) and go through the same core calls (`*_as`), so the
//!   same authorization decides. Errors map to gRPC codes in one place
//!   (see `error.rs`).
//! - [`serve`] runs the service on a listener (HTTP/2 without TLS).
//!
//! ```no_run
//! # async fn run(state: syncplane_api::AppState) -> Result<(), Box<dyn std::error::Error>> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:50051").await?;
//! syncplane_grpc::serve(listener, state, std::future::pending()).await?;
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

mod codec;
mod convert;
mod crud;
mod error;
mod protos;
mod service;
mod watch;

use std::future::Future;

use syncplane_api::AppState;
use tokio_stream::wrappers::TcpListenerStream;

pub use error::{Error, Result};
pub use protos::{
    ANNOTATIONS_PROTO, COMMON_PROTO, Descriptors, HTTP_PROTO, WATCH_PACKAGE, WATCH_SERVICE,
    XOS_SERVICE, XOSOPTIONS_PROTO,
};
pub use service::GrpcService;

/// Serves gRPC on `listener` until `shutdown` completes, sharing `state`
/// (the host and the sign-in limits) with the REST API.
///
/// # Errors
///
/// [`Error::Serve`] when the listener or the HTTP/2 server fails.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<()> {
    let router = axum::Router::new().fallback_service(GrpcService::new(state));
    tonic::transport::Server::builder()
        .add_routes(tonic::service::Routes::from(router))
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
        .await
        .map_err(Error::Serve)
}
