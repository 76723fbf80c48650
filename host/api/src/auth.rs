//! Authentication: a session or API token (`Authorization: Bearer`, XOS's
//! `x-xossession`), or a password (XOS's `xos-username`/`xos-password`
//! headers, HTTP Basic).
//!
//! A token is checked against the core's token records (cached in memory
//! until any user or token changes). A password check is rate-limited per
//! user and per client address *before* it reads the user or hashes
//! ([`crate::limit`]); only failed checks count.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use syncplane_core::{Object, Principal, TokenInfo, TokenKind};

use crate::AppState;
use crate::error::ApiError;
use crate::limit::Attempt;

/// The authenticated user of a request: `.0` is the user's object, `.1`
/// how it proved who it is.
#[derive(Debug, Clone)]
pub struct User(pub Object, pub Credential);

/// How a request authenticated.
#[derive(Debug, Clone, PartialEq)]
pub enum Credential {
    /// A password (HTTP Basic or `xos-username`/`xos-password`).
    Password,
    /// A session token from `POST /syncplane/v1/login`.
    Session(TokenInfo),
    /// A long-lived API token.
    ApiToken(TokenInfo),
}

impl User {
    /// Whether the user is an administrator.
    pub fn is_admin(&self) -> bool {
        self.0.fields.get("is_admin") == Some(&Value::Bool(true))
    }

    /// Refused (403) unless the user is an administrator; `what` completes
    /// "only administrators may ...".
    pub fn require_admin(&self, what: &str) -> Result<(), ApiError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "only administrators may {what}"
            )))
        }
    }

    /// Who the user is, as history and audit name them
    /// (`user admin@opencord.org`).
    pub fn describe(&self) -> String {
        Principal::User(self.0.clone()).describe()
    }

    /// Whether the user may not write anything.
    pub fn is_readonly(&self) -> bool {
        self.0.fields.get("is_readonly") == Some(&Value::Bool(true))
    }

    /// Refused (403) unless the user is an administrator that is not
    /// read-only: host administration changes things. `what` completes
    /// "only administrators may ...".
    pub fn require_writing_admin(&self, what: &str) -> Result<(), ApiError> {
        if self.is_readonly() {
            return Err(ApiError::Forbidden(format!(
                "read-only users may not {what}"
            )));
        }
        self.require_admin(what)
    }

    /// The user as the core's authorization sees them.
    pub fn principal(&self) -> Principal {
        Principal::User(self.0.clone())
    }

    /// The token the request presented, if it was one.
    pub fn token(&self) -> Option<&TokenInfo> {
        match &self.1 {
            Credential::Password => None,
            Credential::Session(info) | Credential::ApiToken(info) => Some(info),
        }
    }
}

/// What a request presents.
enum Presented {
    Password { email: String, password: String },
    Token(String),
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn presented(headers: &HeaderMap) -> Option<Presented> {
    let authorization = header(headers, "authorization");
    if let Some(token) = authorization.and_then(|a| a.strip_prefix("Bearer ")) {
        return Some(Presented::Token(token.trim().to_owned()));
    }
    if let Some(token) = header(headers, "x-xossession") {
        return Some(Presented::Token(token.trim().to_owned()));
    }
    if let (Some(email), Some(password)) = (
        header(headers, "xos-username"),
        header(headers, "xos-password"),
    ) {
        return Some(Presented::Password {
            email: email.to_owned(),
            password: password.to_owned(),
        });
    }
    let encoded = authorization?.strip_prefix("Basic ")?;
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (email, password) = decoded.split_once(':')?;
    Some(Presented::Password {
        email: email.to_owned(),
        password: password.to_owned(),
    })
}

/// The TCP peer of the request, when the server records it.
pub(crate) fn client_address(parts: &Parts) -> Option<IpAddr> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
}

/// How long a rate-limited password check waits before its 429 is sent.
pub(crate) const REFUSAL_PAUSE: Duration = Duration::from_millis(250);

/// Checks a password, rate-limited: refused with 429 while `email` or the
/// client's address has had too many failures, counted when it fails.
pub(crate) async fn check_password(
    state: &AppState,
    email: &str,
    password: &str,
    address: Option<IpAddr>,
) -> Result<Object, ApiError> {
    let attempt = Attempt::new(email, address);
    if let Err(limited) = state.login.check(&attempt) {
        // A pause that costs no CPU: a client retrying at once on the same
        // connection cannot make the server answer 429s as fast as it sends.
        tokio::time::sleep(REFUSAL_PAUSE).await;
        return Err(ApiError::TooManyRequests {
            message: "too many failed sign-ins; try again later or use a token".into(),
            retry_after: limited.retry_after,
        });
    }
    match state.host.core().authenticate(email, password).await {
        Ok(user) => Ok(user),
        Err(syncplane_core::Error::BadCredentials) => {
            state.login.fail(&attempt);
            tracing::debug!(user = email, client = ?address, "password check failed");
            Err(ApiError::Unauthorized("invalid credentials"))
        }
        Err(e) => Err(e.into()),
    }
}

impl FromRequestParts<AppState> for User {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        authenticate(state, &parts.headers, client_address(parts)).await
    }
}

/// What credentials were wrong or missing, for APIs (gRPC) that answer
/// the two differently.
pub const MISSING_CREDENTIALS: &str = "credentials required: send a token \
     (Authorization: Bearer, x-xossession), xos-username/xos-password headers or HTTP Basic auth";

/// Authenticates a request by its headers, as every REST route does: a
/// token (`Authorization: Bearer`, `x-xossession`), `xos-username` /
/// `xos-password`, or HTTP Basic; password checks are rate-limited per
/// user and per `address`. Other APIs of the host (gRPC, whose metadata are
/// HTTP/2 headers) call this so that they authenticate exactly as REST.
///
/// # Errors
///
/// [`ApiError::Unauthorized`] with [`MISSING_CREDENTIALS`] when nothing is
/// presented, or another message for wrong credentials;
/// [`ApiError::TooManyRequests`] past the sign-in limits; storage faults.
pub async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    address: Option<IpAddr>,
) -> Result<User, ApiError> {
    let presented = presented(headers).ok_or(ApiError::Unauthorized(MISSING_CREDENTIALS))?;
    match presented {
        Presented::Token(token) => match state.host.core().authenticate_token(&token).await {
            Ok((user, info)) => {
                let credential = match info.kind {
                    TokenKind::Session => Credential::Session(info),
                    TokenKind::Api => Credential::ApiToken(info),
                };
                Ok(User(user, credential))
            }
            Err(syncplane_core::Error::BadCredentials) => {
                Err(ApiError::Unauthorized("invalid, expired or revoked token"))
            }
            Err(e) => Err(e.into()),
        },
        Presented::Password { email, password } => {
            let user = check_password(state, &email, &password, address).await?;
            Ok(User(user, Credential::Password))
        }
    }
}
