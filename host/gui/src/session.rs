//! The signed-in user of a GUI request: the session token from the
//! `HttpOnly` cookie, checked by the core as any bearer token is.

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use syncplane_api::{AppState, Credential, User};
use syncplane_core::TokenKind;

use crate::csrf;
use crate::error::GuiError;

/// The cookie holding the session token.
pub(crate) const SESSION_COOKIE: &str = "syncplane_session";

/// The value of the cookie `name`, if the request sends it.
pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim().to_owned())
        .filter(|value| !value.is_empty())
}

/// A `Set-Cookie` value for the GUI: `HttpOnly; SameSite=Strict`, under
/// `path`, for `max_age` seconds (0 removes it).
pub(crate) fn set_cookie(name: &str, value: &str, path: &str, max_age: u64) -> String {
    format!("{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Strict")
}

/// The signed-in user of a page, with the CSRF token its forms carry.
pub(crate) struct Viewer {
    /// The user, as the API's handlers see them.
    pub(crate) user: User,
    /// The token every form of the session must send back.
    pub(crate) csrf: String,
    /// The session's secret (for streams that outlive the request, to
    /// check it still holds).
    pub(crate) session: String,
}

impl Viewer {
    /// Refuses a form whose CSRF field does not match the session.
    ///
    /// # Errors
    ///
    /// [`GuiError::Csrf`].
    pub(crate) fn check_csrf(&self, form: &[(String, String)]) -> Result<(), GuiError> {
        let given = form
            .iter()
            .find(|(k, _)| k == csrf::FIELD)
            .map(|(_, v)| v.as_str())
            .unwrap_or_default();
        if csrf::matches(&self.csrf, given) {
            Ok(())
        } else {
            Err(GuiError::Csrf)
        }
    }

    /// The user's e-mail.
    pub(crate) fn email(&self) -> &str {
        self.user.0.str_field("email").unwrap_or_default()
    }

    /// Whether the user may write at all (not a read-only user).
    pub(crate) fn may_write(&self) -> bool {
        !self.user.is_readonly()
    }
}

/// The path and query a request asked for, where the login page returns.
fn asked_for(parts: &Parts) -> String {
    parts
        .uri
        .path_and_query()
        .map_or_else(|| "/ui/".to_owned(), |p| p.as_str().to_owned())
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = GuiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(token) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(GuiError::SignIn {
                next: asked_for(parts),
                expired: false,
            });
        };
        match state.host.core().authenticate_token(&token).await {
            // An API token is for automation; the cookie holds sessions only.
            Ok((user, info)) if info.kind == TokenKind::Session => Ok(Viewer {
                csrf: csrf::for_session(&token),
                user: User(user, Credential::Session(info)),
                session: token,
            }),
            Ok(_) | Err(syncplane_core::Error::BadCredentials) => Err(GuiError::SignIn {
                next: asked_for(parts),
                expired: true,
            }),
            Err(e) => Err(e.into()),
        }
    }
}

/// The pairs of a form body (`application/x-www-form-urlencoded`).
pub(crate) fn form_pairs(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).into_owned().collect()
}

/// The first value of `name` in a form or query.
pub(crate) fn value<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            axum::http::header::COOKIE,
            axum::http::HeaderValue::from_static("a=1; syncplane_session=tok; b=2"),
        );
        assert_eq!(cookie(&headers, SESSION_COOKIE).as_deref(), Some("tok"));
        assert_eq!(cookie(&headers, "c"), None);
        assert!(set_cookie("n", "v", "/ui", 10).contains("HttpOnly; SameSite=Strict"));
    }
}
