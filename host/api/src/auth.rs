//! Authentication: XOS's `xos-username`/`xos-password` headers or HTTP Basic.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use syncplane_core::{Object, Principal};

use crate::AppState;
use crate::error::ApiError;

/// The authenticated user of a request.
#[derive(Debug, Clone)]
pub struct User(pub Object);

impl User {
    /// Whether the user is an administrator.
    pub fn is_admin(&self) -> bool {
        self.0.fields.get("is_admin") == Some(&Value::Bool(true))
    }

    /// Whether the user may not write anything.
    pub fn is_readonly(&self) -> bool {
        self.0.fields.get("is_readonly") == Some(&Value::Bool(true))
    }

    /// The user as the core's authorization sees them.
    pub fn principal(&self) -> Principal {
        Principal::User(self.0.clone())
    }
}

fn credentials(parts: &Parts) -> Option<(String, String)> {
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    if let (Some(user), Some(password)) = (header("xos-username"), header("xos-password")) {
        return Some((user, password));
    }
    let basic = header("authorization")?;
    let encoded = basic.strip_prefix("Basic ")?;
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

impl FromRequestParts<AppState> for User {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let (email, password) = credentials(parts).ok_or(ApiError::Unauthorized(
            "credentials required: send xos-username/xos-password headers or HTTP Basic auth",
        ))?;
        match state.host.core().authenticate(&email, &password).await {
            Ok(user) => Ok(User(user)),
            Err(syncplane_core::Error::BadCredentials) => {
                Err(ApiError::Unauthorized("invalid credentials"))
            }
            Err(e) => Err(e.into()),
        }
    }
}
