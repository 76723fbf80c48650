//! What a GUI request fails with, answered as an HTML page in one place:
//! client errors show their message; host faults say "something went
//! wrong" and are logged once, with detail.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::json;
use syncplane_api::ApiError;

use crate::templates;

/// A failed GUI request.
#[derive(Debug, thiserror::Error)]
pub enum GuiError {
    /// Not signed in, or the session ended: answered with a redirect to
    /// the login page, which comes back to `next` after signing in.
    #[error("sign in to see this page")]
    SignIn {
        /// The page asked for (path and query, under `/ui/`).
        next: String,
        /// Whether a session was presented but is expired or revoked.
        expired: bool,
    },
    /// A form's CSRF token is missing or does not match the session.
    #[error(
        "this form expired or did not come from this site: nothing was changed; reload the page and try again"
    )]
    Csrf,
    /// No such page, model or object (or one the user may not read).
    #[error("{0}")]
    NotFound(String),
    /// The user may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// The request is wrong; the message says how.
    #[error("{0}")]
    BadRequest(String),
    /// Busy or temporarily unable to answer.
    #[error("{0}")]
    Unavailable(String),
    /// The host failed; the detail is logged, not shown.
    #[error("something went wrong: {0}")]
    Internal(String),
}

/// The GUI's result type.
pub type Result<T, E = GuiError> = std::result::Result<T, E>;

impl From<ApiError> for GuiError {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::Unauthorized(m) => GuiError::Forbidden(m.to_owned()),
            ApiError::Forbidden(m) => GuiError::Forbidden(m),
            ApiError::NotFound(m) | ApiError::Gone(m) => GuiError::NotFound(m),
            ApiError::BadParameter(e) => GuiError::BadRequest(e.to_string()),
            ApiError::BadRequest(m)
            | ApiError::Conflict(m)
            | ApiError::QuotaExceeded(m)
            | ApiError::PayloadTooLarge(m) => GuiError::BadRequest(m),
            ApiError::Item { message, .. } => GuiError::BadRequest(message),
            ApiError::Unavailable { message, .. } | ApiError::TooManyRequests { message, .. } => {
                GuiError::Unavailable(message)
            }
            ApiError::InsufficientStorage(m) => GuiError::Unavailable(m),
            ApiError::Internal(detail) => GuiError::Internal(detail),
        }
    }
}

impl From<syncplane_core::Error> for GuiError {
    fn from(e: syncplane_core::Error) -> Self {
        ApiError::from(e).into()
    }
}

impl From<syncplane_platform::Error> for GuiError {
    fn from(e: syncplane_platform::Error) -> Self {
        ApiError::from(e).into()
    }
}

impl From<minijinja::Error> for GuiError {
    fn from(e: minijinja::Error) -> Self {
        GuiError::Internal(format!("rendering a page failed: {e:#}"))
    }
}

/// The login page's address that comes back to `next`.
pub(crate) fn login_url(next: &str, expired: bool) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.append_pair("next", next);
    if expired {
        query.append_pair("expired", "1");
    }
    format!("/ui/login?{}", query.finish())
}

impl IntoResponse for GuiError {
    fn into_response(self) -> Response {
        let status = match &self {
            GuiError::SignIn { next, expired } => {
                return Redirect::to(&login_url(next, *expired)).into_response();
            }
            GuiError::Csrf | GuiError::Forbidden(_) => StatusCode::FORBIDDEN,
            GuiError::NotFound(_) => StatusCode::NOT_FOUND,
            GuiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            GuiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            GuiError::Internal(detail) => {
                tracing::error!(error = %detail, "GUI request failed");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        let message = match &self {
            GuiError::Internal(_) => "Something went wrong; see the server log.".to_owned(),
            other => other.to_string(),
        };
        let page = templates::render(
            "error.html",
            &json!({ "status": status.as_u16(), "message": message }),
        );
        match page {
            Ok(html) => (status, html).into_response(),
            Err(e) => {
                tracing::error!(error = %e, "rendering the error page failed");
                (status, message).into_response()
            }
        }
    }
}

/// Any other path under `/ui/`.
pub(crate) async fn not_found() -> GuiError {
    GuiError::NotFound("there is no such page".into())
}
