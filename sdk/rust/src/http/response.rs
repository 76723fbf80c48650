//! Responses: read whole ([`Response`]) or streamed ([`StreamingResponse`]).

use wasi::http::types::{IncomingBody, IncomingResponse};
use wasi::io::streams::{InputStream, StreamError};

use super::error::HttpError;
use super::request::stream_error;

/// How many bytes one read from the body stream asks for.
const READ_CHUNK: u64 = 64 * 1024;

/// How much of a body an [`HttpError::Status`] quotes.
const QUOTED_BODY: usize = 1024;

/// A response whose body has been read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The HTTP status, e.g. 200.
    pub status: u16,
    /// The headers in the order received; names are lowercase.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// `METHOD URL` of the request, for messages.
    request: String,
}

impl Response {
    pub(crate) fn new(
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
        request: String,
    ) -> Self {
        Response {
            status,
            headers,
            body,
            request,
        }
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether the status is `2xx`.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The response itself when its status is `2xx`.
    ///
    /// # Errors
    ///
    /// [`HttpError::Status`] with the status and the start of the body
    /// otherwise (a `3xx` too: redirects are not followed).
    pub fn error_for_status(self) -> Result<Self, HttpError> {
        if self.is_success() {
            return Ok(self);
        }
        let end = self.body.len().min(QUOTED_BODY);
        let mut body = String::from_utf8_lossy(&self.body[..end]).trim().to_owned();
        if self.body.len() > QUOTED_BODY {
            body.push_str(" [...]");
        }
        Err(HttpError::Status {
            request: self.request,
            status: self.status,
            body,
        })
    }

    /// The body as UTF-8 text.
    ///
    /// # Errors
    ///
    /// [`HttpError::Decode`] when it is not UTF-8.
    pub fn text(&self) -> Result<&str, HttpError> {
        std::str::from_utf8(&self.body).map_err(|e| {
            HttpError::Decode(format!(
                "{}: the response body is not UTF-8: {e}",
                self.request
            ))
        })
    }

    /// The body parsed as JSON into `T` (`serde_json::Value` for anything).
    ///
    /// # Errors
    ///
    /// [`HttpError::Decode`] when it is not JSON of that shape.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, HttpError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            HttpError::Decode(format!(
                "{}: the response body is not the JSON expected: {e}",
                self.request
            ))
        })
    }
}

/// A response whose body is still to be read, from
/// [`Request::send_streaming`](super::Request::send_streaming).
///
/// ```no_run
/// use syncplane_sdk::http::Request;
///
/// # fn step() -> Result<(), syncplane_sdk::http::HttpError> {
/// let mut response = Request::get("http://127.0.0.1:8081/export").send_streaming()?;
/// let mut total = 0;
/// while let Some(chunk) = response.read_chunk()? {
///     total += chunk.len();
/// }
/// # let _ = total; Ok(()) }
/// ```
#[derive(Debug)]
pub struct StreamingResponse {
    /// The HTTP status.
    pub status: u16,
    /// The headers in the order received; names are lowercase.
    pub headers: Vec<(String, String)>,
    request: String,
    // Declaration order is drop order: `wasi:http` requires a child
    // resource (stream, then body) to be dropped before its parent.
    stream: Option<InputStream>,
    body: Option<IncomingBody>,
    _response: IncomingResponse,
}

impl StreamingResponse {
    pub(crate) fn new(request: String, response: IncomingResponse) -> Result<Self, HttpError> {
        let status = response.status();
        let headers = {
            let fields = response.headers();
            fields
                .entries()
                .into_iter()
                .map(|(name, value)| {
                    (
                        name.to_ascii_lowercase(),
                        String::from_utf8_lossy(&value).into_owned(),
                    )
                })
                .collect()
        };
        let body = response.consume().map_err(|()| {
            HttpError::Other(format!("{request}: the response body was already taken"))
        })?;
        let stream = body.stream().map_err(|()| {
            HttpError::Other(format!(
                "{request}: the response body stream was already taken"
            ))
        })?;
        Ok(StreamingResponse {
            status,
            headers,
            request,
            stream: Some(stream),
            body: Some(body),
            _response: response,
        })
    }

    /// `METHOD URL` of the request.
    pub(crate) fn request(&self) -> &str {
        &self.request
    }

    /// The `content-length` header, when there is a valid one.
    pub fn content_length(&self) -> Option<u64> {
        self.headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .and_then(|(_, v)| v.trim().parse().ok())
    }

    /// The next piece of the body, or `None` at its end. Blocks until data
    /// arrives.
    ///
    /// # Errors
    ///
    /// When the connection fails or a limit of the host ends the body.
    pub fn read_chunk(&mut self) -> Result<Option<Vec<u8>>, HttpError> {
        let Some(stream) = &self.stream else {
            return Ok(None);
        };
        loop {
            match stream.blocking_read(READ_CHUNK) {
                Ok(chunk) if chunk.is_empty() => continue,
                Ok(chunk) => return Ok(Some(chunk)),
                Err(StreamError::Closed) => {
                    self.stream = None;
                    if let Some(body) = self.body.take() {
                        // The trailers are not read; dropping the future
                        // discards them.
                        drop(IncomingBody::finish(body));
                    }
                    return Ok(None);
                }
                Err(e) => return Err(stream_error(&self.request, "reading the body", e)),
            }
        }
    }
}

impl std::io::Read for StreamingResponse {
    /// Reads at most `buf.len()` body bytes; `Ok(0)` at the end.
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let Some(stream) = &self.stream else {
            return Ok(0);
        };
        let wanted = u64::try_from(buf.len()).unwrap_or(u64::MAX);
        if wanted == 0 {
            return Ok(0);
        }
        match stream.blocking_read(wanted) {
            Ok(chunk) => {
                let n = chunk.len().min(buf.len());
                buf[..n].copy_from_slice(&chunk[..n]);
                Ok(n)
            }
            Err(StreamError::Closed) => {
                self.stream = None;
                Ok(0)
            }
            Err(e) => Err(std::io::Error::other(stream_error(
                &self.request,
                "reading the body",
                e,
            ))),
        }
    }
}
