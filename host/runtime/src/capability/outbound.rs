//! `wasi:http/outgoing-handler` behind the service's grants: every request
//! is checked before any socket opens, its host name is resolved once and
//! the address checked against the operator's networks, and the connection
//! goes to exactly that address (no second lookup a rebinding DNS server
//! could answer differently).

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use syncplane_engine::Stats;
use tokio::net::TcpStream;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

use super::context::ServiceContext;
use super::origin::Scheme;
use super::responder::{HttpResponder, OutboundRequest};

/// Limits of one outbound request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Time to connect, and to the response's first byte; the guest may
    /// ask for less, never for more. The step's deadline bounds the rest.
    pub timeout: Duration,
    /// Response body bytes the guest may read.
    pub body_bytes: u64,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            timeout: Duration::from_secs(10),
            body_bytes: 16 << 20,
        }
    }
}

/// The last access the host denied during one invocation, so a trap right
/// after can be shown as caused by it.
pub(crate) type LastDenial = Arc<Mutex<Option<String>>>;

/// The hooks `wasmtime-wasi-http` calls for each request of one invocation.
pub(crate) struct OutboundGate {
    pub(crate) ctx: Arc<ServiceContext>,
    pub(crate) stats: Arc<Stats>,
    pub(crate) limits: HttpLimits,
    pub(crate) last_denial: LastDenial,
}

type Sent = (
    http::Response<WasiBody>,
    Box<dyn Future<Output = Result<(), HttpError>> + Send>,
);

impl OutboundGate {
    fn deny(&self, message: String) -> HttpError {
        deny(&self.ctx, &self.stats, &self.last_denial, message)
    }
}

fn deny(ctx: &ServiceContext, stats: &Stats, last: &LastDenial, message: String) -> HttpError {
    tracing::warn!(service = ctx.service(), "denied guest access: {message}");
    stats.capability_denied(ctx.service(), "outbound_http");
    *last.lock().unwrap_or_else(|p| p.into_inner()) = Some(message.clone());
    HttpError::InternalError(Some(format!("denied: {message}")))
}

impl WasiHttpHooks for OutboundGate {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> Box<dyn Future<Output = Result<Sent, HttpError>> + Send> {
        let uri = request.uri();
        let scheme = match uri.scheme_str() {
            Some("http") => Scheme::Http,
            Some("https") => Scheme::Https,
            other => {
                let e = self.deny(format!(
                    "scheme {:?} is not http or https",
                    other.unwrap_or("")
                ));
                return Box::new(async move { Err(e) });
            }
        };
        let Some(host) = uri.host().map(str::to_owned) else {
            return Box::new(async { Err(HttpError::HttpRequestUriInvalid) });
        };
        let port = uri.port_u16().unwrap_or(scheme.default_port());
        let granted = self
            .ctx
            .grants()
            .outbound_http
            .iter()
            .any(|o| o.matches(scheme, &host, port));
        if !granted {
            let e = self.deny(format!(
                "outbound host {host}:{port} is not in this service's grants"
            ));
            return Box::new(async move { Err(e) });
        }
        let timeout = options
            .and_then(|o| o.connect_timeout)
            .map_or(self.limits.timeout, |t| t.min(self.limits.timeout));
        let first_byte = options
            .and_then(|o| o.first_byte_timeout)
            .map_or(self.limits.timeout, |t| t.min(self.limits.timeout));
        let body_bytes = self.limits.body_bytes;
        if let Some(responder) = self.ctx.http_responder() {
            return Box::new(respond_offline(request, responder, body_bytes));
        }
        let ctx = Arc::clone(&self.ctx);
        let stats = Arc::clone(&self.stats);
        let last = Arc::clone(&self.last_denial);
        Box::new(async move {
            let host = host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned();
            let addr = match resolve(&host, port, timeout).await? {
                addrs if ctx.networks().is_empty() => addrs[0],
                addrs => match addrs
                    .iter()
                    .find(|a| ctx.networks().iter().any(|n| n.contains(&a.ip())))
                {
                    Some(addr) => *addr,
                    None => {
                        return Err(deny(
                            &ctx,
                            &stats,
                            &last,
                            format!(
                                "outbound host {host}:{port} resolves to {}, outside the networks the operator allows",
                                addrs[0].ip()
                            ),
                        ));
                    }
                },
            };
            send(
                request, scheme, &host, addr, timeout, first_byte, body_bytes,
            )
            .await
        })
    }
}

/// Answers `request` from the service's [`HttpResponder`], with no
/// socket: the offline backend of step tests.
async fn respond_offline(
    request: http::Request<WasiBody>,
    responder: Arc<dyn HttpResponder>,
    body_bytes: u64,
) -> Result<Sent, HttpError> {
    let (parts, body) = request.into_parts();
    let body = body.collect().await?.to_bytes().to_vec();
    let recorded = OutboundRequest {
        method: parts.method.as_str().to_owned(),
        url: parts.uri.to_string(),
        headers: parts
            .headers
            .iter()
            .map(|(name, value)| {
                let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                (name.as_str().to_owned(), value)
            })
            .collect(),
        body,
    };
    let answer = responder
        .respond(recorded)
        .map_err(|message| HttpError::InternalError(Some(message)))?;
    if answer.body.len() as u64 > body_bytes {
        return Err(HttpError::HttpResponseBodySize(Some(body_bytes)));
    }
    let mut response = http::Response::builder().status(answer.status);
    for (name, value) in &answer.headers {
        response = response.header(name.as_str(), value.as_str());
    }
    let body = http_body_util::Full::new(Bytes::from(answer.body))
        .map_err(|never| match never {})
        .boxed_unsync();
    let response = response
        .body(body)
        .map_err(|e| HttpError::InternalError(Some(format!("invalid test response: {e}"))))?;
    Ok((response, Box::new(async { Ok(()) })))
}

async fn resolve(host: &str, port: u16, timeout: Duration) -> Result<Vec<SocketAddr>, HttpError> {
    let lookup = tokio::net::lookup_host((host, port));
    let addrs: Vec<SocketAddr> = match tokio::time::timeout(timeout, lookup).await {
        Err(_) => return Err(HttpError::DnsTimeout),
        Ok(Err(_)) => return Err(HttpError::DestinationNotFound),
        Ok(Ok(addrs)) => addrs.collect(),
    };
    if addrs.is_empty() {
        return Err(HttpError::DestinationNotFound);
    }
    Ok(addrs)
}

/// Sends `request` over a new connection to `addr`.
async fn send(
    mut request: http::Request<WasiBody>,
    scheme: Scheme,
    host: &str,
    addr: SocketAddr,
    timeout: Duration,
    first_byte: Duration,
    body_bytes: u64,
) -> Result<Sent, HttpError> {
    let tcp = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Err(_) => return Err(HttpError::ConnectionTimeout),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            return Err(HttpError::ConnectionRefused);
        }
        Ok(Err(e)) => return Err(HttpError::Connect(e)),
        Ok(Ok(tcp)) => tcp,
    };
    // Only the path goes on the wire; the Host header names the origin.
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .parse::<http::Uri>()
        .map_err(|_| HttpError::HttpRequestUriInvalid)?;
    *request.uri_mut() = path;
    let (mut sender, connection) = match scheme {
        Scheme::Http => handshake(TokioIo::new(tcp), timeout).await?,
        Scheme::Https => {
            let roots = rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.into(),
            };
            let config = rustls::ClientConfig::builder()
                .with_root_certificates(roots)
                .with_no_client_auth();
            let name = rustls::pki_types::ServerName::try_from(host.to_owned())?;
            let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
                .connect(name, tcp)
                .await
                .map_err(HttpError::Tls)?;
            handshake(TokioIo::new(tls), timeout).await?
        }
    };
    let driver = tokio::spawn(connection);
    let response = match tokio::time::timeout(first_byte, sender.send_request(request)).await {
        Err(_) => return Err(HttpError::ConnectionReadTimeout),
        Ok(result) => result?,
    };
    let response = response.map(|body| {
        Capped {
            inner: body,
            left: body_bytes,
            limit: body_bytes,
        }
        .boxed_unsync()
    });
    let done = async move {
        match driver.await {
            Ok(result) => result,
            Err(_) => Err(HttpError::ConnectionTerminated),
        }
    };
    Ok((response, Box::new(done)))
}

type Handshake = (
    hyper::client::conn::http1::SendRequest<WasiBody>,
    Pin<Box<dyn Future<Output = Result<(), HttpError>> + Send>>,
);

async fn handshake<T>(io: TokioIo<T>, timeout: Duration) -> Result<Handshake, HttpError>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (sender, connection) =
        tokio::time::timeout(timeout, hyper::client::conn::http1::handshake(io))
            .await
            .map_err(|_| HttpError::ConnectionTimeout)??;
    Ok((
        sender,
        Box::pin(async move { connection.await.map_err(HttpError::from) }),
    ))
}

/// A response body that errors once it has given `limit` bytes.
struct Capped {
    inner: hyper::body::Incoming,
    left: u64,
    limit: u64,
}

impl Body for Capped {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let len = data.len() as u64;
                    if len > self.left {
                        return Poll::Ready(Some(Err(HttpError::HttpResponseBodySize(Some(
                            self.limit,
                        )))));
                    }
                    self.left -= len;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
