//! Building and sending a request.

use std::fmt;
use std::time::Duration;

use wasi::http::outgoing_handler;
use wasi::http::types::{
    self as wasi_http, FutureIncomingResponse, IncomingResponse, OutgoingBody, OutgoingRequest,
    RequestOptions,
};

use super::error::HttpError;
use super::response::{Response, StreamingResponse};
use super::url;

/// How much of a response body [`Request::send`] reads by default: 16 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 16 * 1024 * 1024;

/// `wasi:io` writes at most this many bytes per blocking call.
const WRITE_CHUNK: usize = 4096;

/// An HTTP method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `GET`
    Get,
    /// `HEAD`
    Head,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `PATCH`
    Patch,
    /// `DELETE`
    Delete,
    /// `OPTIONS`
    Options,
}

impl Method {
    fn to_wasi(self) -> wasi_http::Method {
        match self {
            Method::Get => wasi_http::Method::Get,
            Method::Head => wasi_http::Method::Head,
            Method::Post => wasi_http::Method::Post,
            Method::Put => wasi_http::Method::Put,
            Method::Patch => wasi_http::Method::Patch,
            Method::Delete => wasi_http::Method::Delete,
            Method::Options => wasi_http::Method::Options,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
        })
    }
}

/// An outbound HTTP request, built with chained calls and sent with
/// [`send`](Request::send).
///
/// ```no_run
/// use syncplane_sdk::http::Request;
///
/// # fn step() -> Result<(), syncplane_sdk::http::HttpError> {
/// let response = Request::patch("http://127.0.0.1:8081/api/v1/servers/localhost/zones/example.org.")
///     .header("X-API-Key", "secret")
///     .json(&serde_json::json!({ "rrsets": [] }))
///     .send()?
///     .error_for_status()?;
/// assert_eq!(response.status, 204);
/// # Ok(()) }
/// ```
#[derive(Clone)]
#[must_use = "a request does nothing until it is sent"]
pub struct Request {
    method: Method,
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    timeout: Option<Duration>,
    body_limit: usize,
    /// An error found while building (a JSON body that did not
    /// serialize), reported by `send`.
    invalid: Option<String>,
}

impl fmt::Debug for Request {
    /// Header values are left out: they often carry credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header_names: Vec<&str> = self.headers.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("headers", &header_names)
            .field("body_bytes", &self.body.len())
            .field("timeout", &self.timeout)
            .field("body_limit", &self.body_limit)
            .finish()
    }
}

impl Request {
    /// A request with `method` to `url` (`http://` or `https://`), no
    /// headers and no body.
    pub fn new(method: Method, url: impl Into<String>) -> Self {
        Request {
            method,
            url: url.into(),
            headers: Vec::new(),
            body: Vec::new(),
            timeout: None,
            body_limit: DEFAULT_BODY_LIMIT,
            invalid: None,
        }
    }

    /// A `GET` request.
    pub fn get(url: impl Into<String>) -> Self {
        Self::new(Method::Get, url)
    }

    /// A `POST` request.
    pub fn post(url: impl Into<String>) -> Self {
        Self::new(Method::Post, url)
    }

    /// A `PUT` request.
    pub fn put(url: impl Into<String>) -> Self {
        Self::new(Method::Put, url)
    }

    /// A `PATCH` request.
    pub fn patch(url: impl Into<String>) -> Self {
        Self::new(Method::Patch, url)
    }

    /// A `DELETE` request.
    pub fn delete(url: impl Into<String>) -> Self {
        Self::new(Method::Delete, url)
    }

    /// Adds a header (a name may appear more than once). The host may
    /// refuse some names (`host`, `connection`, `transfer-encoding`, ...);
    /// `send` then fails with [`HttpError::InvalidRequest`].
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sets the body to `value` as JSON, with `content-type:
    /// application/json` unless a content type was set.
    pub fn json<T: serde::Serialize + ?Sized>(mut self, value: &T) -> Self {
        match serde_json::to_vec(value) {
            Ok(body) => self.body = body,
            Err(e) => self.invalid = Some(format!("the JSON body does not serialize: {e}")),
        }
        if !self.has_header("content-type") {
            self.headers
                .push(("content-type".into(), "application/json".into()));
        }
        self
    }

    /// Sets the body to raw bytes (set a `content-type` header yourself).
    pub fn body(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.body = bytes.into();
        self
    }

    /// Bounds connecting, waiting for the first response byte, and waiting
    /// between body bytes by `timeout` each. Without it only the host's
    /// limits and the step's deadline apply.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// How many body bytes [`send`](Request::send) reads before giving up
    /// with [`HttpError::BodyTooLarge`] (default [`DEFAULT_BODY_LIMIT`]).
    /// The body is held in the guest's memory, which the host limits too.
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    fn has_header(&self, name: &str) -> bool {
        self.headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case(name))
    }

    /// `METHOD URL`, for messages.
    fn describe(&self) -> String {
        format!("{} {}", self.method, self.url)
    }

    /// Sends the request, waits for the response and reads its whole body
    /// (up to the [body limit](Request::body_limit)). Redirects are not
    /// followed.
    ///
    /// # Errors
    ///
    /// - [`HttpError::InvalidRequest`]: a malformed URL, header or body;
    /// - [`HttpError::Denied`]: the manifest does not grant the origin;
    /// - [`HttpError::Connect`], [`HttpError::Timeout`]: the backend could
    ///   not be reached in time;
    /// - [`HttpError::BodyTooLarge`]: the body exceeds the limit;
    /// - [`HttpError::Other`]: a protocol error or a limit of the host.
    ///
    /// A status such as 404 or 500 is not an error here; see
    /// [`Response::error_for_status`].
    pub fn send(self) -> Result<Response, HttpError> {
        let limit = self.body_limit;
        let mut streaming = self.send_streaming()?;
        let request = streaming.request().to_owned();
        let mut body = Vec::new();
        if let Some(length) = streaming.content_length() {
            match usize::try_from(length) {
                Ok(length) if length <= limit => body.reserve_exact(length),
                _ => return Err(HttpError::BodyTooLarge { request, limit }),
            }
        }
        while let Some(chunk) = streaming.read_chunk()? {
            if body.len().saturating_add(chunk.len()) > limit {
                return Err(HttpError::BodyTooLarge { request, limit });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Response::new(
            streaming.status,
            std::mem::take(&mut streaming.headers),
            body,
            request,
        ))
    }

    /// Sends the request and returns once the status and headers are in;
    /// the body is read piece by piece from the [`StreamingResponse`],
    /// without a body limit (the host's limits and the deadline still
    /// apply).
    ///
    /// # Errors
    ///
    /// As [`send`](Request::send), except for the body limit.
    pub fn send_streaming(self) -> Result<StreamingResponse, HttpError> {
        let request = self.describe();
        if let Some(message) = self.invalid {
            return Err(HttpError::InvalidRequest(format!("{request}: {message}")));
        }
        let parts = url::split(&self.url).map_err(HttpError::InvalidRequest)?;

        let headers = wasi_http::Fields::new();
        for (name, value) in &self.headers {
            headers.append(name, value.as_bytes()).map_err(|e| {
                HttpError::InvalidRequest(format!("{request}: header `{name}` was refused ({e:?})"))
            })?;
        }
        if !self.body.is_empty() && !self.has_header("content-length") {
            // Without a length the body would go out chunked, which some
            // backends' HTTP servers do not read.
            headers
                .append("content-length", self.body.len().to_string().as_bytes())
                .map_err(|e| {
                    HttpError::InvalidRequest(format!(
                        "{request}: content-length was refused ({e:?})"
                    ))
                })?;
        }

        let outgoing = OutgoingRequest::new(headers);
        let invalid = |what: &str| {
            HttpError::InvalidRequest(format!("{request}: the host refused the {what}"))
        };
        outgoing
            .set_method(&self.method.to_wasi())
            .map_err(|()| invalid("method"))?;
        let scheme = if parts.https {
            wasi_http::Scheme::Https
        } else {
            wasi_http::Scheme::Http
        };
        outgoing
            .set_scheme(Some(&scheme))
            .map_err(|()| invalid("scheme"))?;
        outgoing
            .set_authority(Some(&parts.authority))
            .map_err(|()| invalid("host"))?;
        outgoing
            .set_path_with_query(Some(&parts.path_with_query))
            .map_err(|()| invalid("path"))?;
        let options = match self.timeout {
            Some(timeout) => Some(request_options(timeout).map_err(|()| invalid("timeout"))?),
            None => None,
        };
        let body = if self.body.is_empty() {
            None
        } else {
            Some(outgoing.body().map_err(|()| invalid("body"))?)
        };

        // The body is written after `handle`: before it nothing reads the
        // body's stream, and a large body would block.
        let future = outgoing_handler::handle(outgoing, options)
            .map_err(|code| HttpError::from_code(&request, code))?;
        let written = match body {
            Some(body) => write_body(&request, body, &self.body),
            None => Ok(()),
        };
        // When sending the body failed, the response usually says why (the
        // connection was refused, ...) better than the closed stream did.
        let response = wait(&request, future)?;
        written?;
        StreamingResponse::new(request, response)
    }
}

fn request_options(timeout: Duration) -> Result<RequestOptions, ()> {
    let nanos = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
    let options = RequestOptions::new();
    options.set_connect_timeout(Some(nanos))?;
    options.set_first_byte_timeout(Some(nanos))?;
    options.set_between_bytes_timeout(Some(nanos))?;
    Ok(options)
}

fn write_body(request: &str, body: OutgoingBody, bytes: &[u8]) -> Result<(), HttpError> {
    {
        // The stream is a child of the body: it must be gone before
        // `finish`.
        let stream = body
            .write()
            .map_err(|()| HttpError::Other(format!("{request}: the host gave no body stream")))?;
        for chunk in bytes.chunks(WRITE_CHUNK) {
            stream
                .blocking_write_and_flush(chunk)
                .map_err(|e| stream_error(request, "sending the body", e))?;
        }
    }
    OutgoingBody::finish(body, None).map_err(|code| HttpError::from_code(request, code))
}

/// Blocks until the response head is in.
fn wait(request: &str, future: FutureIncomingResponse) -> Result<IncomingResponse, HttpError> {
    {
        let pollable = future.subscribe();
        pollable.block();
    }
    match future.get() {
        Some(Ok(Ok(response))) => Ok(response),
        Some(Ok(Err(code))) => Err(HttpError::from_code(request, code)),
        Some(Err(())) => Err(HttpError::Other(format!(
            "{request}: the response was already taken"
        ))),
        None => Err(HttpError::Other(format!(
            "{request}: the host woke the request before its response"
        ))),
    }
}

/// Converts a `wasi:io` stream error, using the HTTP error code when the
/// host attached one.
pub(crate) fn stream_error(
    request: &str,
    doing: &str,
    e: wasi::io::streams::StreamError,
) -> HttpError {
    match e {
        wasi::io::streams::StreamError::Closed => {
            HttpError::Other(format!("{request}: the connection closed while {doing}"))
        }
        wasi::io::streams::StreamError::LastOperationFailed(error) => {
            match wasi_http::http_error_code(&error) {
                Some(code) => HttpError::from_code(request, code),
                None => HttpError::Other(format!(
                    "{request}: {doing} failed: {}",
                    error.to_debug_string()
                )),
            }
        }
    }
}
