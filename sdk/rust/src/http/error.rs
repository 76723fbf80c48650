//! What can go wrong with an outbound request.

use std::fmt;

use wasi::http::types::ErrorCode;

use crate::StepError;

/// Why a request did not produce the response the caller wanted.
///
/// Every variant carries a complete, readable message (method and URL
/// included where known), so `?` into [`StepError::Failed`] gives a useful
/// `backend_status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// The request could not be built: a malformed URL, header or JSON
    /// body. Nothing was sent.
    InvalidRequest(String),
    /// The host refused the request: its origin is not in the manifest's
    /// `[capabilities] outbound_http`. Nothing was sent. The message is
    /// the host's (`denied: outbound host ... is not in this service's
    /// grants`).
    Denied(String),
    /// No connection: DNS failed, the peer refused or reset it, or TLS
    /// failed.
    Connect(String),
    /// A connect, first-byte or between-bytes timeout elapsed.
    Timeout(String),
    /// The response body is longer than the request's body limit
    /// ([`Request::body_limit`](super::Request::body_limit)).
    BodyTooLarge {
        /// The request, as `METHOD URL`.
        request: String,
        /// The limit in bytes.
        limit: usize,
    },
    /// [`Response::error_for_status`](super::Response::error_for_status)
    /// found a status that is not `2xx`.
    Status {
        /// The request, as `METHOD URL`.
        request: String,
        /// The HTTP status.
        status: u16,
        /// The start of the response body (at most 1 KiB, lossily UTF-8).
        body: String,
    },
    /// The response body is not what the caller asked for (not UTF-8, or
    /// not JSON of the expected shape).
    Decode(String),
    /// Anything else the host or the peer reported (protocol errors, a
    /// body cap of the host, ...).
    Other(String),
}

impl HttpError {
    /// Classifies a `wasi:http` error code for the request `request`
    /// (`METHOD URL`).
    pub(crate) fn from_code(request: &str, code: ErrorCode) -> Self {
        match code {
            ErrorCode::InternalError(Some(m)) if m.starts_with("denied") => HttpError::Denied(m),
            ErrorCode::HttpRequestDenied => {
                HttpError::Denied(format!("denied: {request}: the host refused the request"))
            }
            ErrorCode::DestinationIpProhibited => HttpError::Denied(format!(
                "denied: {request}: the destination address is prohibited"
            )),
            ErrorCode::DnsTimeout
            | ErrorCode::ConnectionTimeout
            | ErrorCode::ConnectionReadTimeout
            | ErrorCode::ConnectionWriteTimeout
            | ErrorCode::HttpResponseTimeout => {
                HttpError::Timeout(format!("{request}: {}", describe(&code)))
            }
            ErrorCode::DnsError(_)
            | ErrorCode::DestinationNotFound
            | ErrorCode::DestinationUnavailable
            | ErrorCode::DestinationIpUnroutable
            | ErrorCode::ConnectionRefused
            | ErrorCode::ConnectionTerminated
            | ErrorCode::ConnectionLimitReached
            | ErrorCode::TlsProtocolError
            | ErrorCode::TlsCertificateError
            | ErrorCode::TlsAlertReceived(_) => {
                HttpError::Connect(format!("{request}: {}", describe(&code)))
            }
            other => HttpError::Other(format!("{request}: {}", describe(&other))),
        }
    }

    /// Whether this is the host refusing a request its grants do not cover.
    pub fn is_denied(&self) -> bool {
        matches!(self, HttpError::Denied(_))
    }
}

/// A short English description of an error code.
fn describe(code: &ErrorCode) -> String {
    match code {
        ErrorCode::DnsTimeout => "DNS lookup timed out".into(),
        ErrorCode::DnsError(p) => format!(
            "DNS lookup failed{}",
            p.rcode
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        ),
        ErrorCode::DestinationNotFound => "destination not found".into(),
        ErrorCode::DestinationUnavailable => "destination unavailable".into(),
        ErrorCode::DestinationIpUnroutable => "destination address unroutable".into(),
        ErrorCode::ConnectionRefused => "connection refused".into(),
        ErrorCode::ConnectionTerminated => "connection terminated".into(),
        ErrorCode::ConnectionTimeout => "connect timed out".into(),
        ErrorCode::ConnectionReadTimeout => "read timed out".into(),
        ErrorCode::ConnectionWriteTimeout => "write timed out".into(),
        ErrorCode::ConnectionLimitReached => "connection limit reached".into(),
        ErrorCode::TlsProtocolError => "TLS protocol error".into(),
        ErrorCode::TlsCertificateError => "TLS certificate error".into(),
        ErrorCode::TlsAlertReceived(p) => format!(
            "TLS alert received{}",
            p.alert_message
                .as_deref()
                .map(|m| format!(" ({m})"))
                .unwrap_or_default()
        ),
        ErrorCode::HttpResponseTimeout => "no response in time".into(),
        ErrorCode::HttpResponseIncomplete => "the response ended early".into(),
        ErrorCode::HttpResponseBodySize(limit) => match limit {
            Some(n) => format!("the response body exceeds the host's limit of {n} bytes"),
            None => "the response body exceeds the host's limit".into(),
        },
        ErrorCode::HttpRequestBodySize(_) => "the request body has the wrong size".into(),
        ErrorCode::HttpProtocolError => "HTTP protocol error".into(),
        ErrorCode::InternalError(Some(m)) => m.clone(),
        ErrorCode::InternalError(None) => "internal error in the host".into(),
        other => format!("{other:?}"),
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::InvalidRequest(m) => write!(f, "invalid request: {m}"),
            HttpError::Denied(m) if m.starts_with("denied") => f.write_str(m),
            HttpError::Denied(m) => write!(f, "denied: {m}"),
            HttpError::Connect(m)
            | HttpError::Timeout(m)
            | HttpError::Decode(m)
            | HttpError::Other(m) => f.write_str(m),
            HttpError::BodyTooLarge { request, limit } => {
                write!(f, "{request}: the response body exceeds {limit} bytes")
            }
            HttpError::Status {
                request,
                status,
                body,
            } if body.is_empty() => {
                write!(f, "{request}: HTTP {status}")
            }
            HttpError::Status {
                request,
                status,
                body,
            } => write!(f, "{request}: HTTP {status}: {body}"),
        }
    }
}

impl std::error::Error for HttpError {}

impl From<HttpError> for StepError {
    fn from(e: HttpError) -> Self {
        StepError::Failed(e.to_string())
    }
}

impl From<HttpError> for String {
    fn from(e: HttpError) -> Self {
        e.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hosts_denial_is_classified_as_denied_and_shown_verbatim() {
        let text = "denied: outbound host 127.0.0.1:9 is not in this service's grants";
        let e = HttpError::from_code(
            "GET http://127.0.0.1:9/",
            ErrorCode::InternalError(Some(text.into())),
        );
        assert!(e.is_denied());
        assert_eq!(e.to_string(), text);
    }

    #[test]
    fn a_refused_connection_names_the_request() {
        let e = HttpError::from_code("GET http://127.0.0.1:9/", ErrorCode::ConnectionRefused);
        assert_eq!(
            e,
            HttpError::Connect("GET http://127.0.0.1:9/: connection refused".into())
        );
    }
}
