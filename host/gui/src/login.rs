//! Signing in and out. The password is checked by the API's own sign-in
//! ([`syncplane_api::sign_in`]: the core's argon2 check, rate-limited per
//! user and per client address as REST's), which issues an ordinary
//! session token; the GUI keeps it in an `HttpOnly; SameSite=Strict;
//! Path=/ui` cookie.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::json;
use syncplane_api::{ApiError, AppState, Credential};

use crate::error::GuiError;
use crate::session::{SESSION_COOKIE, Viewer, cookie, form_pairs, set_cookie, value};
use crate::{PREFIX, csrf, templates};

/// The cookie holding the login form's CSRF token.
const LOGIN_COOKIE: &str = "syncplane_login";
/// How long a login form stays valid.
const LOGIN_FORM_SECS: u64 = 3600;
/// Where a sign-in goes when it was not sent from another page.
const HOME: &str = "/ui/services";

/// `next` if it is a page of the GUI, else the home page: a login link
/// cannot send the user to another site, nor to a route that is not a
/// page (the event stream, sign-out, the static files).
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(next)
            if next.starts_with("/ui/")
                && !["/ui/login", "/ui/logout", "/ui/events", "/ui/static/"]
                    .iter()
                    .any(|not_a_page| next.starts_with(not_a_page))
                && !next.contains(['\\', '\r', '\n'])
                && !next.contains("//") =>
        {
            next
        }
        _ => HOME,
    }
}

/// The client's address, for the sign-in limits (when the server records
/// it).
pub(crate) struct ClientAddress(Option<std::net::IpAddr>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientAddress(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(a)| a.ip()),
        ))
    }
}

/// The login page's query.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct LoginQuery {
    next: Option<String>,
    expired: Option<String>,
    out: Option<String>,
}

/// Renders the login form with a fresh CSRF token (set in its cookie).
fn login_page(
    next: &str,
    notice: Option<&str>,
    error: Option<&str>,
    status: StatusCode,
) -> Result<Response, GuiError> {
    let token = csrf::random();
    let html = templates::render(
        "login.html",
        &json!({ "next": next, "csrf": token, "notice": notice, "error": error }),
    )?;
    let cookie = set_cookie(LOGIN_COOKIE, &token, "/ui/login", LOGIN_FORM_SECS);
    Ok((status, [(header::SET_COOKIE, cookie)], html).into_response())
}

/// `GET /ui/login[?next=...]`: the form, or straight to `next` for a
/// browser that is signed in already.
pub(crate) async fn form(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<LoginQuery>,
) -> Result<Response, GuiError> {
    // A session, as `Viewer` takes it (an API token in the cookie would
    // send the browser back and forth).
    if let Some(token) = cookie(&headers, SESSION_COOKIE)
        && let Ok((_, info)) = state.host.core().authenticate_token(&token).await
        && info.kind == syncplane_core::TokenKind::Session
    {
        return Ok(Redirect::to(safe_next(query.next.as_deref())).into_response());
    }
    let notice = if query.expired.is_some() {
        Some("Your session has ended. Sign in again to continue.")
    } else if query.out.is_some() {
        Some("You are signed out.")
    } else {
        None
    };
    login_page(
        safe_next(query.next.as_deref()),
        notice,
        None,
        StatusCode::OK,
    )
}

/// `POST /ui/login`: signs in and goes to `next`.
pub(crate) async fn submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    ClientAddress(address): ClientAddress,
    body: Bytes,
) -> Result<Response, GuiError> {
    let pairs = form_pairs(&body);
    let next = safe_next(value(&pairs, "next")).to_owned();
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if !csrf::matches(&expected, value(&pairs, csrf::FIELD).unwrap_or_default()) {
        return login_page(
            &next,
            None,
            Some("The login form expired. Please sign in again."),
            StatusCode::FORBIDDEN,
        );
    }
    let username = value(&pairs, "username").unwrap_or_default().trim();
    let password = value(&pairs, "password").unwrap_or_default();
    match syncplane_api::sign_in(&state, username, password, address).await {
        Ok(token) => {
            let max_age = token
                .info
                .expires
                .map_or(0.0, |e| (e - syncplane_core::now_secs()).max(0.0));
            #[allow(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                reason = "a positive number of seconds; `as` saturates"
            )]
            let max_age = max_age as u64;
            let cookies = [
                set_cookie(SESSION_COOKIE, &token.token, PREFIX, max_age),
                set_cookie(LOGIN_COOKIE, "", "/ui/login", 0),
            ];
            let mut response = Redirect::to(&next).into_response();
            for cookie in cookies {
                if let Ok(value) = cookie.parse() {
                    response.headers_mut().append(header::SET_COOKIE, value);
                }
            }
            Ok(response)
        }
        Err(ApiError::Unauthorized(_)) => login_page(
            &next,
            None,
            Some("Wrong e-mail or password."),
            StatusCode::UNAUTHORIZED,
        ),
        Err(e) => match GuiError::from(e) {
            GuiError::Internal(detail) => Err(GuiError::Internal(detail)),
            other => login_page(
                &next,
                None,
                Some(&other.to_string()),
                StatusCode::TOO_MANY_REQUESTS,
            ),
        },
    }
}

/// `POST /ui/logout`: ends the session (its token is revoked) and clears
/// the cookie.
pub(crate) async fn logout(
    State(state): State<AppState>,
    viewer: Viewer,
    body: Bytes,
) -> Result<Response, GuiError> {
    viewer.check_csrf(&form_pairs(&body))?;
    if let Credential::Session(info) = &viewer.user.1 {
        state
            .host
            .core()
            .revoke_token(&viewer.user.principal(), viewer.user.0.id, &info.id)
            .await?;
    }
    Ok((
        [(
            header::SET_COOKIE,
            set_cookie(SESSION_COOKIE, "", PREFIX, 0),
        )],
        Redirect::to("/ui/login?out=1"),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_inside_the_gui() {
        assert_eq!(safe_next(Some("/ui/m/Site?page=2")), "/ui/m/Site?page=2");
        for outside in [
            "https://evil.example/",
            "//evil.example/ui/",
            "/ui/..//evil",
            "/xosapi/v1/core/sites",
            "/ui/login?next=x",
            "/ui/logout",
            "/ui/events?since=3",
            "/ui/\\evil",
        ] {
            assert_eq!(safe_next(Some(outside)), HOME, "{outside}");
        }
        assert_eq!(safe_next(None), HOME);
    }
}
