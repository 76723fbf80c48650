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
//! - XOS's client (`xosapi`) connects as it connected to XOS: it downloads
//!   the `.proto` files from `schema.SchemaService/GetSchema`, then calls
//!   `xos.dynamicload`, `xos.utility` (`Login`) and `xos.xos`.
//! - [`serve`] runs the service on a listener, over TLS when given a
//!   [`TlsIdentity`] (rustls), else HTTP/2 in plain text.
//!
//! ```no_run
//! # async fn run(state: syncplane_api::AppState) -> Result<(), Box<dyn std::error::Error>> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:50051").await?;
//! let tls = syncplane_grpc::TlsIdentity {
//!     cert_pem: std::fs::read("cert.pem")?,
//!     key_pem: std::fs::read("key.pem")?,
//! };
//! syncplane_grpc::serve(listener, state, Some(tls), std::future::pending()).await?;
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

mod codec;
mod convert;
mod crud;
mod error;
mod modeldefs;
mod protos;
mod schema;
mod service;
mod utility;
mod watch;

use std::future::Future;

use syncplane_api::AppState;
use tokio_stream::wrappers::TcpListenerStream;

pub use error::{Error, Result};
pub use protos::{
    COMMON_PROTO, DYNAMICLOAD_PROTO, DYNAMICLOAD_SERVICE, Descriptors, MODELDEFS_PROTO,
    MODELDEFS_SERVICE, SCHEMA_FILES, SCHEMA_PROTO, SCHEMA_SERVICE, UTILITY_PROTO, UTILITY_SERVICE,
    WATCH_PACKAGE, WATCH_SERVICE, XOS_SERVICE, XOSOPTIONS_PROTO,
};
pub use service::GrpcService;

/// A certificate chain and its private key, PEM-encoded, that the server
/// presents over TLS.
#[derive(Clone)]
pub struct TlsIdentity {
    /// The certificate chain, leaf first.
    pub cert_pem: Vec<u8>,
    /// The private key of the leaf (PKCS#8, PKCS#1 or SEC1).
    pub key_pem: Vec<u8>,
}

impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("TlsIdentity").finish_non_exhaustive()
    }
}

/// Serves gRPC on `listener` until `shutdown` completes, sharing `state`
/// (the host and the sign-in limits) with the REST API: over TLS with
/// `tls` (what XOS's client needs to send credentials), else in plain
/// text (for loopback and tests).
///
/// # Errors
///
/// [`Error::Tls`] when the certificate or key cannot be used,
/// [`Error::Serve`] when the listener or the HTTP/2 server fails.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    tls: Option<TlsIdentity>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<()> {
    let router = axum::Router::new().fallback_service(GrpcService::new(state));
    let mut server = tonic::transport::Server::builder();
    if let Some(tls) = tls {
        let identity = tonic::transport::Identity::from_pem(tls.cert_pem, tls.key_pem);
        server = server
            .tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))
            .map_err(Error::Tls)?;
    }
    server
        .add_routes(tonic::service::Routes::from(router))
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
        .await
        .map_err(Error::Serve)
}
