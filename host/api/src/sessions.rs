//! Sessions and API tokens: `POST /syncplane/v1/login`, `POST
//! /syncplane/v1/logout`, and the caller's tokens under
//! `/syncplane/v1/tokens`.

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::Deserialize;
use serde_json::{Value, json};
use syncplane_core::{IssuedToken, TokenKind};

use crate::AppState;
use crate::auth::{Credential, User, check_password, client_address};
use crate::error::ApiError;

/// The body of `POST /syncplane/v1/login`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Login {
    username: String,
    password: String,
}

/// The client's address, for the rate limits of [`login`].
pub struct ClientAddress(Option<std::net::IpAddr>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddress(client_address(parts)))
    }
}

fn issued(token: IssuedToken) -> Value {
    json!({
        "token": token.token,
        "id": token.info.id,
        "name": token.info.name,
        "kind": token.info.kind,
        "created": token.info.created,
        "expires_at": token.info.expires,
    })
}

/// Checks a password (rate-limited per user and per `address`, as every
/// password check) and issues a session of the configured lifetime: what
/// `POST /syncplane/v1/login` and gRPC's `utility.Login` both do.
///
/// # Errors
///
/// [`ApiError::Unauthorized`] for a wrong user or password,
/// [`ApiError::TooManyRequests`] beyond the sign-in limits, or a store
/// failure.
pub async fn sign_in(
    state: &AppState,
    username: &str,
    password: &str,
    address: Option<std::net::IpAddr>,
) -> Result<IssuedToken, ApiError> {
    let user = check_password(state, username, password, address).await?;
    let token = state
        .host
        .core()
        .issue_token(
            &user,
            TokenKind::Session,
            None,
            Some(state.config.session_ttl),
        )
        .await?;
    tracing::debug!(user.id = user.id, token.id = %token.info.id, "signed in");
    Ok(token)
}

/// `POST /syncplane/v1/login`: `{"username", "password"}` answers a
/// session token and when it expires (seconds since the epoch).
pub async fn login(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    Json(body): Json<Login>,
) -> Result<Json<Value>, ApiError> {
    let token = sign_in(&state, &body.username, &body.password, address).await?;
    Ok(Json(issued(token)))
}

/// `POST /syncplane/v1/logout`: revokes the session token presented.
pub async fn logout(State(state): State<AppState>, user: User) -> Result<Json<Value>, ApiError> {
    let Credential::Session(info) = &user.1 else {
        return Err(ApiError::BadRequest(
            "logout ends a session: send the session token (Authorization: Bearer or \
             x-xossession); revoke API tokens with DELETE /syncplane/v1/tokens/<id>"
                .into(),
        ));
    };
    state
        .host
        .core()
        .revoke_token(&user.principal(), user.0.id, &info.id)
        .await?;
    Ok(Json(json!({})))
}

/// The query of `GET /syncplane/v1/tokens` and `DELETE
/// /syncplane/v1/tokens/<id>`: whose tokens (an e-mail; the caller's when
/// absent).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Whose {
    #[serde(default)]
    user: Option<String>,
}

/// What a request does with the tokens [`Whose`] names.
#[derive(Clone, Copy)]
enum Intent {
    List,
    Revoke,
}

/// The id of the user whose tokens a request names: the caller's own, or,
/// for an administrator, any user's (`?user=EMAIL`).
///
/// # Errors
///
/// 403 when a user that is not an administrator names another user (or a
/// read-only administrator revokes); 404 when no user has that e-mail.
async fn whose(
    state: &AppState,
    caller: &User,
    whose: &Whose,
    intent: Intent,
) -> Result<i64, ApiError> {
    let Some(email) = whose.user.as_deref().map(str::trim) else {
        return Ok(caller.0.id);
    };
    let own = caller
        .0
        .str_field("email")
        .is_some_and(|mine| mine.eq_ignore_ascii_case(email));
    if own {
        return Ok(caller.0.id);
    }
    match intent {
        Intent::List => caller.require_admin("list other users' tokens")?,
        Intent::Revoke => caller.require_writing_admin("revoke other users' tokens")?,
    }
    let user = state
        .host
        .core()
        .user_by_email(email)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no user has the e-mail `{email}`")))?;
    Ok(user.id)
}

/// `GET /syncplane/v1/tokens[?user=EMAIL]`: the live sessions and API
/// tokens (ids, names, kinds, times; never a secret) of the caller, or of
/// the user `EMAIL` for an administrator.
pub async fn list(
    State(state): State<AppState>,
    user: User,
    Query(query): Query<Whose>,
) -> Result<Json<Value>, ApiError> {
    let owner = whose(&state, &user, &query, Intent::List).await?;
    let tokens = state.host.core().tokens(owner).await?;
    Ok(Json(json!({ "items": tokens })))
}

/// The body of `POST /syncplane/v1/tokens`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// Unique among the caller's tokens; the id when absent.
    #[serde(default)]
    name: Option<String>,
    /// A duration (`30d`, `12h`) or `never`; default [`DEFAULT_API_TOKEN_TTL`].
    #[serde(default)]
    expires: Option<String>,
}

/// How long an API token lives when the request does not say.
pub const DEFAULT_API_TOKEN_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

fn parse_expiry(expires: Option<&str>) -> Result<Option<Duration>, ApiError> {
    match expires.map(str::trim) {
        None => Ok(Some(DEFAULT_API_TOKEN_TTL)),
        Some("never") => Ok(None),
        Some(text) => match humantime::parse_duration(text) {
            Ok(d) if !d.is_zero() => Ok(Some(d)),
            Ok(_) => Err(ApiError::BadRequest("`expires` must be above zero".into())),
            Err(e) => Err(ApiError::BadRequest(format!(
                "`expires`: `{text}` is not a duration such as `30d` or `never`: {e}"
            ))),
        },
    }
}

/// `POST /syncplane/v1/tokens`: issues an API token for the caller; the
/// answer is the only time the token is shown. A request authenticated by
/// an API token may not issue another (a leaked token must not be able to
/// outlive its revocation).
pub async fn create(
    State(state): State<AppState>,
    user: User,
    Json(body): Json<NewToken>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    if let Credential::ApiToken(_) = user.1 {
        return Err(ApiError::Forbidden(
            "an API token cannot issue tokens: sign in with a password or a session".into(),
        ));
    }
    let name = body.name.as_deref().map(str::trim);
    if name.is_some_and(|n| n.is_empty() || n.len() > 100) {
        return Err(ApiError::BadRequest(
            "a token name has 1 to 100 characters".into(),
        ));
    }
    let ttl = parse_expiry(body.expires.as_deref())?;
    let token = state
        .host
        .core()
        .issue_token(&user.0, TokenKind::Api, name, ttl)
        .await
        .map_err(|e| match e {
            syncplane_core::Error::Conflict(m) => ApiError::Conflict(m),
            e => e.into(),
        })?;
    Ok((StatusCode::CREATED, Json(issued(token))))
}

/// `DELETE /syncplane/v1/tokens/<id or name>[?user=EMAIL]`: revokes one of
/// the caller's tokens (a session or an API token), or, for an
/// administrator that is not read-only, one of the user `EMAIL`'s. Audited
/// as the caller's.
///
/// A token of another user is unknown (404) to a caller that does not
/// name its user with `?user=`, and naming another user is refused (403)
/// to non-administrators.
pub async fn revoke(
    State(state): State<AppState>,
    user: User,
    Path(which): Path<String>,
    Query(query): Query<Whose>,
) -> Result<Json<Value>, ApiError> {
    let owner = whose(&state, &user, &query, Intent::Revoke).await?;
    let info = state
        .host
        .core()
        .revoke_token(&user.principal(), owner, &which)
        .await?;
    Ok(Json(json!({ "revoked": info })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_defaults_to_thirty_days_and_reads_never_and_durations() {
        assert_eq!(parse_expiry(None).ok(), Some(Some(DEFAULT_API_TOKEN_TTL)));
        assert_eq!(parse_expiry(Some("never")).ok(), Some(None));
        assert_eq!(
            parse_expiry(Some("2h")).ok(),
            Some(Some(Duration::from_secs(7200)))
        );
        assert!(parse_expiry(Some("soon")).is_err());
        assert!(parse_expiry(Some("0s")).is_err());
    }
}
