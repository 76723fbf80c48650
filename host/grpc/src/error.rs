//! Errors of the gRPC server, and the one place API errors become statuses.

use syncplane_api::{ApiError, MISSING_CREDENTIALS};
use tonic::{Code, Status};

/// What failed while building or running the gRPC server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Generating `xos.proto` from the installed models failed.
    #[error("generating the protobuf of the installed models failed")]
    Generate(#[source] syncplane_xproto_gen::Error),
    /// Compiling the generated protobuf failed.
    #[error("compiling the protobuf of the installed models failed")]
    Compile(#[source] Box<protox::Error>),
    /// Building the reflection service failed.
    #[error("building the reflection service failed")]
    Reflection(#[source] tonic_reflection::server::Error),
    /// The TLS certificate or key cannot be used.
    #[error("the gRPC server's TLS certificate or key cannot be used")]
    Tls(#[source] tonic::transport::Error),
    /// The server's transport failed.
    #[error("the gRPC server failed")]
    Serve(#[source] tonic::transport::Error),
}

/// Result with the gRPC server's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) use syncplane_core::error_chain as chain;

/// The status for an API error, as REST answers it with an HTTP status:
///
/// | REST | gRPC |
/// |---|---|
/// | 401 without credentials | `UNAUTHENTICATED` |
/// | 401 with wrong credentials | `PERMISSION_DENIED` (as XOS answered) |
/// | 403 | `PERMISSION_DENIED` |
/// | 404 | `NOT_FOUND` |
/// | 400 (the message names the field) | `INVALID_ARGUMENT` |
/// | 409 | `FAILED_PRECONDITION` |
/// | 410 (a watch older than the log) | `OUT_OF_RANGE` |
/// | 413, 429 | `RESOURCE_EXHAUSTED` |
/// | 503 (a busy store), 507 | `UNAVAILABLE` |
/// | 500 | `INTERNAL` (logged) |
pub(crate) fn status(error: ApiError) -> Status {
    let (code, message) = match error {
        ApiError::Unauthorized(m) if m == MISSING_CREDENTIALS => {
            (Code::Unauthenticated, m.to_owned())
        }
        ApiError::Unauthorized(m) => (Code::PermissionDenied, m.to_owned()),
        ApiError::Forbidden(m) => (Code::PermissionDenied, m),
        ApiError::NotFound(m) => (Code::NotFound, m),
        ApiError::BadRequest(m) => (Code::InvalidArgument, m),
        ApiError::BadParameter(e) => (Code::InvalidArgument, e.to_string()),
        ApiError::Conflict(m) => (Code::FailedPrecondition, m),
        ApiError::Gone(m) => (Code::OutOfRange, m),
        ApiError::Unavailable { message, .. } => (Code::Unavailable, message),
        ApiError::InsufficientStorage(m) => (Code::Unavailable, m),
        ApiError::TooManyRequests { message, .. } => (Code::ResourceExhausted, message),
        ApiError::QuotaExceeded(m) | ApiError::PayloadTooLarge(m) => (Code::ResourceExhausted, m),
        ApiError::Item { message, .. } => (Code::InvalidArgument, message),
        ApiError::Internal(detail) => {
            tracing::error!(error = %detail, "gRPC request failed");
            (
                Code::Internal,
                "Something went wrong; see the server log".to_owned(),
            )
        }
    };
    Status::new(code, message)
}

/// The status for a core error, through the same conversion REST uses.
pub(crate) fn core_status(error: syncplane_core::Error) -> Status {
    status(ApiError::from(error))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_wrong_credentials_are_told_apart() {
        assert_eq!(
            status(ApiError::Unauthorized(MISSING_CREDENTIALS)).code(),
            Code::Unauthenticated
        );
        assert_eq!(
            status(ApiError::Unauthorized("invalid credentials")).code(),
            Code::PermissionDenied
        );
    }

    #[test]
    fn a_busy_store_is_unavailable_and_a_bad_field_is_named() {
        let busy = ApiError::Unavailable {
            message: "the database is busy".into(),
            retry_after: 2,
        };
        assert_eq!(status(busy).code(), Code::Unavailable);
        let invalid = core_status(syncplane_core::Error::InvalidField {
            model: "Site".into(),
            field: "name".into(),
            message: "is required".into(),
        });
        assert_eq!(invalid.code(), Code::InvalidArgument);
        assert_eq!(invalid.message(), "Site.name: is required");
    }
}
