//! API errors, converted to responses in one place.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error answered to a client.
#[derive(Debug)]
pub enum ApiError {
    /// No or wrong credentials.
    Unauthorized(&'static str),
    /// Authenticated but not allowed.
    Forbidden(String),
    /// Nothing at that path.
    NotFound(String),
    /// The request is wrong; the message says how.
    BadRequest(String),
    /// A query parameter is wrong: answered `400` with the parameter's
    /// name beside the message, `{"error": ..., "parameter": "page_size"}`.
    BadParameter(syncplane_core::QueryError),
    /// The request conflicts with what is installed (a clash, a downgrade,
    /// an incompatible upgrade, objects or dependents left).
    Conflict(String),
    /// Busy for now; the client should try again after `retry_after`
    /// seconds.
    Unavailable {
        /// What is busy.
        message: String,
        /// Seconds to wait, sent as `Retry-After`.
        retry_after: u64,
    },
    /// Too many failed attempts; the client should try again after
    /// `retry_after` seconds.
    TooManyRequests {
        /// What is limited.
        message: String,
        /// Seconds to wait, sent as `Retry-After`.
        retry_after: u64,
    },
    /// A service is at one of its operator's limits (e.g. its most
    /// objects): `429 Too Many Requests`, without `Retry-After`, since
    /// waiting alone does not help; the message names the service, the
    /// limit and the count.
    QuotaExceeded(String),
    /// The disk holding the database is full: nothing was written. Answered
    /// `507 Insufficient Storage`; reads still work.
    InsufficientStorage(String),
    /// The request body is too large: a batch past
    /// [`syncplane_core::MAX_BATCH`] objects. Answered `413`.
    PayloadTooLarge(String),
    /// One item of a batch was refused, and with it the batch: answered as
    /// `error` is (`400`, `403`, ...), with the item's `index` (and the
    /// `field`, when one is to blame) beside the message.
    Item {
        /// The item's position in the batch, from 0.
        index: usize,
        /// The field at fault, if one is.
        field: Option<String>,
        /// The message, naming the item: `[3].name: is required`.
        message: String,
        /// The answer the item alone would have had.
        error: Box<ApiError>,
    },
    /// What was asked for is no longer kept (a watch resuming after a
    /// change older than the change log holds). Answered `410`.
    Gone(String),
    /// The host failed; details are logged, not sent.
    Internal(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Item {
            index,
            field,
            message,
            error,
        } = self
        {
            let status = error.into_response().status();
            return (
                status,
                Json(json!({ "error": message, "index": index, "field": field })),
            )
                .into_response();
        }
        if let ApiError::BadParameter(error) = self {
            let message = error.to_string();
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({ "error": message, "parameter": error.parameter })),
            )
                .into_response();
        }
        let (status, message) = match self {
            ApiError::Unauthorized(m) => (StatusCode::UNAUTHORIZED, m.to_owned()),
            ApiError::Forbidden(m) => (StatusCode::FORBIDDEN, m),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, m),
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
            ApiError::BadParameter(e) => (StatusCode::BAD_REQUEST, e.to_string()),
            ApiError::Conflict(m) => (StatusCode::CONFLICT, m),
            ApiError::Unavailable {
                message,
                retry_after,
            } => {
                return retry_later(StatusCode::SERVICE_UNAVAILABLE, message, retry_after);
            }
            ApiError::TooManyRequests {
                message,
                retry_after,
            } => {
                return retry_later(StatusCode::TOO_MANY_REQUESTS, message, retry_after);
            }
            ApiError::QuotaExceeded(m) => (StatusCode::TOO_MANY_REQUESTS, m),
            ApiError::PayloadTooLarge(m) => (StatusCode::PAYLOAD_TOO_LARGE, m),
            ApiError::Gone(m) => (StatusCode::GONE, m),
            ApiError::Item { message, .. } => (StatusCode::BAD_REQUEST, message),
            ApiError::InsufficientStorage(m) => {
                tracing::error!(error = %m, "write refused: the disk is full");
                (StatusCode::INSUFFICIENT_STORAGE, m)
            }
            ApiError::Internal(detail) => {
                tracing::error!(error = %detail, "request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong; see the server log".to_owned(),
                )
            }
        };
        let mut response = (status, Json(json!({ "error": message }))).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"syncplane\", Bearer realm=\"syncplane\""),
            );
        }
        response
    }
}

fn retry_later(status: StatusCode, message: String, retry_after: u64) -> Response {
    let mut response = (status, Json(json!({ "error": message }))).into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    response
}

pub(crate) use syncplane_core::error_chain as chain;

/// Seconds a client is told to wait when the database is busy: the store's
/// busy timeout is 1 s, so a lock that outlived it is likely held by a
/// process doing more than a moment's work.
const BUSY_RETRY_AFTER: u64 = 2;

/// The answer for a database fault (busy, full disk, I/O error), where
/// nothing was written; `None` for other errors.
fn storage_fault(e: &syncplane_core::Error) -> Option<ApiError> {
    if e.is_busy() {
        return Some(ApiError::Unavailable {
            message:
                "the database is busy (locked by another process); nothing was written, try again"
                    .into(),
            retry_after: BUSY_RETRY_AFTER,
        });
    }
    if e.is_storage_full() {
        return Some(ApiError::InsufficientStorage(
            "the disk holding the database is full; nothing was written (reads still work)".into(),
        ));
    }
    if e.is_storage_unavailable() {
        tracing::error!(error = %chain(e), "database I/O failed");
        return Some(ApiError::Unavailable {
            message: "the database could not be written; nothing was written, try again".into(),
            retry_after: 5,
        });
    }
    None
}

impl From<syncplane_core::Error> for ApiError {
    fn from(e: syncplane_core::Error) -> Self {
        if let Some(fault) = storage_fault(&e) {
            return fault;
        }
        let e = match e {
            syncplane_core::Error::Item { index, error } => return item_error(index, *error),
            e => e,
        };
        match e {
            syncplane_core::Error::NotFound { .. } => ApiError::NotFound(e.to_string()),
            syncplane_core::Error::BadCredentials => ApiError::Unauthorized("invalid credentials"),
            syncplane_core::Error::Forbidden(_) => ApiError::Forbidden(e.to_string()),
            syncplane_core::Error::Conflict(_) | syncplane_core::Error::CascadeTooLarge { .. } => {
                ApiError::Conflict(e.to_string())
            }
            syncplane_core::Error::UnknownToken(_) => ApiError::NotFound(e.to_string()),
            syncplane_core::Error::PasswordChecksBusy => ApiError::Unavailable {
                message: e.to_string(),
                retry_after: 1,
            },
            syncplane_core::Error::QuotaExceeded { .. } => ApiError::QuotaExceeded(e.to_string()),
            syncplane_core::Error::ChangesExpired { .. } => ApiError::Gone(e.to_string()),
            e if e.is_client_error() => ApiError::BadRequest(e.to_string()),
            e => ApiError::Internal(chain(&e)),
        }
    }
}

/// The answer for item `index` of a batch refused with `error`: as the
/// item alone would be answered, naming it; a fault of the host (busy
/// database, full disk, a bug) is answered as such, without an index.
fn item_error(index: usize, error: syncplane_core::Error) -> ApiError {
    let field = match &error {
        syncplane_core::Error::InvalidField { field, .. } => Some(field.clone()),
        _ => None,
    };
    let item = error.at(index);
    let message = item.to_string();
    let syncplane_core::Error::Item { error, .. } = item else {
        return ApiError::BadRequest(message);
    };
    match ApiError::from(*error) {
        fault @ (ApiError::Internal(_)
        | ApiError::Unavailable { .. }
        | ApiError::InsufficientStorage(_)) => fault,
        error => ApiError::Item {
            index,
            field,
            message,
            error: Box::new(error),
        },
    }
}

impl From<syncplane_platform::Error> for ApiError {
    fn from(e: syncplane_platform::Error) -> Self {
        if let syncplane_platform::Error::UnknownService(_) = e {
            return ApiError::NotFound(e.to_string());
        }
        use syncplane_platform::Error as E;
        if let E::Core(core) = &e
            && let Some(fault) = storage_fault(core)
        {
            return fault;
        }
        if let E::Core(syncplane_core::Error::QuotaExceeded { .. }) = &e {
            return ApiError::QuotaExceeded(e.to_string());
        }
        match e {
            E::Refused { .. } | E::Untrusted { .. } => return ApiError::Forbidden(e.to_string()),
            E::Collision { .. }
            | E::GrantsWidened { .. }
            | E::Downgrade { .. }
            | E::Incompatible { .. }
            | E::Dependents { .. }
            | E::Dependencies { .. }
            | E::HostVersion { .. }
            | E::HasObjects { .. }
            | E::NoPrevious(_) => return ApiError::Conflict(e.to_string()),
            E::StillRunning { .. } => {
                return ApiError::Unavailable {
                    message: e.to_string(),
                    retry_after: 5,
                };
            }
            _ => {}
        }
        if e.is_client_error() {
            ApiError::BadRequest(chain(&e))
        } else {
            ApiError::Internal(chain(&e))
        }
    }
}

impl From<syncplane_core::QueryError> for ApiError {
    fn from(e: syncplane_core::QueryError) -> Self {
        ApiError::BadParameter(e)
    }
}

impl From<syncplane_tosca::Error> for ApiError {
    fn from(e: syncplane_tosca::Error) -> Self {
        ApiError::BadRequest(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quota_refusal_is_429_naming_the_service_without_retry_after() {
        let refused = syncplane_core::Error::QuotaExceeded {
            service: "shop".into(),
            model: "Apple".into(),
            limit: 2,
            count: 2,
        };
        let response = ApiError::from(refused).into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(response.headers().get(header::RETRY_AFTER).is_none());
        let wrapped = syncplane_platform::Error::Core(syncplane_core::Error::QuotaExceeded {
            service: "shop".into(),
            model: "Apple".into(),
            limit: 2,
            count: 2,
        });
        match ApiError::from(wrapped) {
            ApiError::QuotaExceeded(m) => assert!(m.contains("service `shop`"), "{m}"),
            other => panic!("not a quota refusal: {other:?}"),
        }
    }
}
