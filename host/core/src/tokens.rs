//! Session and API tokens: random bearer secrets, stored only as their
//! SHA-256 digest in the host records (namespace [`TOKENS_NAMESPACE`]).
//!
//! A token is `sps_` (session) or `spa_` (API token) followed by 32 random
//! bytes in URL-safe base64. Being high-entropy, a fast digest is enough to
//! store it: nobody can guess a token from its digest. The record (keyed by
//! the digest) holds what [`TokenInfo`] shows and never the token.
//!
//! # Guarantees
//!
//! - A token is refused (as [`Error::BadCredentials`]) once it expired (its
//!   record is then removed), was revoked, or its user was deleted,
//!   deactivated, or had its password changed: every path that writes
//!   `User.password` through the core removes the user's tokens in the
//!   same transaction ([`crate::CoreTx::update`]).
//! - The token itself is returned once, by [`Core::issue_token`].

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use syncplane_store::StoreTx;

use serde_json::{Map, Value};

use crate::Principal;
use crate::core::Core;
use crate::error::{Error, Result};
use crate::object::Object;
use crate::time::now_secs;

/// The host-record namespace of tokens.
pub const TOKENS_NAMESPACE: &str = "sessions";

/// Hex digits of a token's digest that make its public id.
const ID_LEN: usize = 16;

/// What a token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    /// From `POST /syncplane/v1/login`; ends at logout.
    Session,
    /// A long-lived token for automation (`syncplane token create`).
    Api,
}

impl TokenKind {
    fn prefix(self) -> &'static str {
        match self {
            TokenKind::Session => "sps_",
            TokenKind::Api => "spa_",
        }
    }

    /// `session` or `api`, as JSON spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Session => "session",
            TokenKind::Api => "api",
        }
    }
}

/// What is known about a token, never the token itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenInfo {
    /// Public id: the first hex digits of the token's digest.
    pub id: String,
    /// The user the token authenticates.
    pub user_id: i64,
    /// Session or API token.
    pub kind: TokenKind,
    /// A name unique among the user's tokens (the id when none was given).
    pub name: String,
    /// When it was issued, in seconds since the epoch.
    pub created: f64,
    /// When it stops working, in seconds since the epoch; `None`: never.
    pub expires: Option<f64>,
}

impl TokenInfo {
    /// Whether the token stopped working at `now` (seconds since the epoch).
    pub fn is_expired(&self, now: f64) -> bool {
        self.expires.is_some_and(|e| e <= now)
    }
}

/// A token just issued: the secret, shown to its owner once, and its info.
pub struct IssuedToken {
    /// The bearer token. Never logged nor stored.
    pub token: String,
    /// What is stored about it.
    pub info: TokenInfo,
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken")
            .field("token", &"<redacted>")
            .field("info", &self.info)
            .finish()
    }
}

/// The record key of a token: its SHA-256 digest in hex.
pub(crate) fn digest(token: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(64);
    for b in Sha256::digest(token.as_bytes()) {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    out
}

fn parse(value: &str) -> Option<TokenInfo> {
    serde_json::from_str(value).ok()
}

/// Every stored token with its record key; unreadable records are skipped.
async fn all(tx: &mut StoreTx) -> Result<Vec<(String, TokenInfo)>> {
    Ok(tx
        .records(TOKENS_NAMESPACE)
        .await?
        .into_iter()
        .filter_map(|(key, value)| parse(&value).map(|info| (key, info)))
        .collect())
}

/// Removes every token of `user_id` in `tx`; returns how many.
pub(crate) async fn revoke_all(tx: &mut StoreTx, user_id: i64) -> Result<usize> {
    let mut n = 0;
    for (key, info) in all(tx).await? {
        if info.user_id == user_id {
            tx.delete_record(TOKENS_NAMESPACE, &key).await?;
            n += 1;
        }
    }
    Ok(n)
}

impl Core {
    /// Issues a token for `user`: a session or an API token named `name`
    /// (unique among the user's tokens; the id when `None`), valid for
    /// `ttl` (`None`: until revoked). Returns the token, once.
    ///
    /// # Errors
    ///
    /// [`Error::Conflict`] when the user has a token of that name; a
    /// database failure.
    pub async fn issue_token(
        &self,
        user: &Object,
        kind: TokenKind,
        name: Option<&str>,
        ttl: Option<Duration>,
    ) -> Result<IssuedToken> {
        let secret: [u8; 32] = rand::random();
        let token = format!("{}{}", kind.prefix(), URL_SAFE_NO_PAD.encode(secret));
        let key = digest(&token);
        let now = now_secs();
        let info = TokenInfo {
            id: key[..ID_LEN].to_owned(),
            user_id: user.id,
            kind,
            name: name.map_or_else(|| key[..ID_LEN].to_owned(), str::to_owned),
            created: now,
            expires: ttl.map(|t| now + t.as_secs_f64()),
        };
        let value = serde_json::to_string(&info)
            .map_err(|e| Error::Conflict(format!("cannot encode the token record: {e}")))?;
        // Audited as the user's own: sign-ins and new API tokens are in the
        // log beside their revocations (never the secret).
        let mut tx = self.begin_as(Principal::User(user.clone())).await?;
        if name.is_some() {
            let taken = all(tx.store_tx())
                .await?
                .into_iter()
                .any(|(_, t)| t.user_id == user.id && t.name == info.name && !t.is_expired(now));
            if taken {
                return Err(Error::Conflict(format!(
                    "you have a token named `{}` already; revoke it or choose another name",
                    info.name
                )));
            }
        }
        tx.store_tx()
            .put_record(TOKENS_NAMESPACE, &key, &value)
            .await?;
        let issued = Map::from_iter([
            ("id".to_owned(), Value::from(info.id.as_str())),
            ("name".to_owned(), Value::from(info.name.as_str())),
            ("kind".to_owned(), Value::from(info.kind.as_str())),
        ]);
        tx.audit("issue-token", "User", user.id, issued).await?;
        tx.commit().await?;
        tracing::debug!(user.id = user.id, token.id = %info.id, kind = ?kind, "token issued");
        Ok(IssuedToken { token, info })
    }

    /// The user a bearer token authenticates, and the token's info.
    ///
    /// # Errors
    ///
    /// [`Error::BadCredentials`] for an unknown, revoked or expired token
    /// (an expired one is removed) or a user that is gone, inactive or
    /// deleted; a database failure.
    pub async fn authenticate_token(&self, token: &str) -> Result<(Object, TokenInfo)> {
        let key = digest(token);
        let now = now_secs();
        if let Some(found) = self.auth.cached_token(&key, now) {
            return Ok(found);
        }
        let epoch = self.auth.epoch();
        let mut tx = self.begin_read().await?;
        let info = tx
            .store_tx()
            .record(TOKENS_NAMESPACE, &key)
            .await?
            .as_deref()
            .and_then(parse)
            .ok_or(Error::BadCredentials)?;
        if info.is_expired(now) {
            drop(tx);
            self.remove_token(&key).await?;
            return Err(Error::BadCredentials);
        }
        let user = tx
            .get(info.user_id)
            .await?
            .filter(crate::users::is_active)
            .ok_or(Error::BadCredentials)?;
        drop(tx);
        self.auth.cache_token(key, &user, &info, epoch);
        Ok((user, info))
    }

    async fn remove_token(&self, key: &str) -> Result<()> {
        let mut tx = self.store.begin().await?;
        tx.delete_record(TOKENS_NAMESPACE, key).await?;
        tx.commit().await?;
        self.auth.invalidate();
        Ok(())
    }

    /// The live tokens of `user_id`, oldest first. Expired ones are removed
    /// on the way.
    ///
    /// # Errors
    ///
    /// A database failure.
    pub async fn tokens(&self, user_id: i64) -> Result<Vec<TokenInfo>> {
        let now = now_secs();
        let mut tx = self.store.begin().await?;
        let mut live = Vec::new();
        let mut expired = false;
        for (key, info) in all(&mut tx).await? {
            if info.is_expired(now) {
                tx.delete_record(TOKENS_NAMESPACE, &key).await?;
                expired = true;
            } else if info.user_id == user_id {
                live.push(info);
            }
        }
        if expired {
            tx.commit().await?;
        }
        live.sort_by(|a, b| a.created.total_cmp(&b.created));
        Ok(live)
    }

    /// Revokes the token of `user_id` whose id or name is `which`; returns
    /// its info. It stops working at once. The revocation is audited
    /// (`revoke-token` on the token's user, naming the token's id, name and
    /// kind) as `who`'s, in the same transaction.
    ///
    /// Whether `who` may revoke another user's tokens is the caller's
    /// decision (the API allows it to administrators).
    ///
    /// # Errors
    ///
    /// [`Error::UnknownToken`] when the user has no such token; a database
    /// failure.
    pub async fn revoke_token(
        &self,
        who: &Principal,
        user_id: i64,
        which: &str,
    ) -> Result<TokenInfo> {
        let mut tx = self.begin_as(who.clone()).await?;
        let found = all(tx.store_tx())
            .await?
            .into_iter()
            .find(|(_, t)| t.user_id == user_id && (t.id == which || t.name == which));
        let Some((key, info)) = found else {
            return Err(Error::UnknownToken(which.to_owned()));
        };
        tx.store_tx().delete_record(TOKENS_NAMESPACE, &key).await?;
        let revoked = Map::from_iter([
            ("id".to_owned(), Value::from(info.id.as_str())),
            ("name".to_owned(), Value::from(info.name.as_str())),
            ("kind".to_owned(), Value::from(info.kind.as_str())),
        ]);
        tx.audit("revoke-token", "User", user_id, revoked).await?;
        tx.commit().await?;
        self.auth.invalidate();
        tracing::debug!(user.id = user_id, token.id = %info.id, "token revoked");
        Ok(info)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Map, json};

    async fn core_with_user() -> (tempfile::TempDir, Core, Object) {
        let dir = tempfile::tempdir().expect("tempdir");
        let core = Core::open(&dir.path().join("db.sqlite"))
            .await
            .expect("open");
        let input: Map<String, serde_json::Value> = [
            ("email", json!("u@example.org")),
            ("password", json!("first")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let user = core.create("User", input).await.expect("create user");
        (dir, core, user)
    }

    fn set(field: &str, value: serde_json::Value) -> Map<String, serde_json::Value> {
        Map::from_iter([(field.to_owned(), value)])
    }

    #[tokio::test]
    async fn a_password_change_through_any_update_revokes_every_token_of_the_user() {
        let (_dir, core, user) = core_with_user().await;
        let session = core
            .issue_token(&user, TokenKind::Session, None, None)
            .await
            .expect("session");
        let api = core
            .issue_token(&user, TokenKind::Api, Some("ci"), None)
            .await
            .expect("api token");
        // Both work, and are cached now.
        core.authenticate_token(&session.token)
            .await
            .expect("session");
        core.authenticate_token(&api.token)
            .await
            .expect("api token");

        // A transaction, as TOSCA uses, not the REST path.
        let mut tx = core.begin().await.expect("begin");
        tx.update(user.id, set("password", json!("second")))
            .await
            .expect("update");
        tx.commit().await.expect("commit");

        for token in [&session.token, &api.token] {
            assert!(matches!(
                core.authenticate_token(token).await,
                Err(Error::BadCredentials)
            ));
        }
        assert!(core.tokens(user.id).await.expect("tokens").is_empty());
        assert!(core.authenticate("u@example.org", "first").await.is_err());
        core.authenticate("u@example.org", "second")
            .await
            .expect("new password");
    }

    #[tokio::test]
    async fn a_cached_login_ends_with_a_password_change_or_deactivation() {
        let (_dir, core, user) = core_with_user().await;
        core.authenticate("u@example.org", "first")
            .await
            .expect("ok");
        core.authenticate("u@example.org", "first")
            .await
            .expect("cached");
        core.update(user.id, set("is_active", json!(false)))
            .await
            .expect("deactivate");
        assert!(core.authenticate("u@example.org", "first").await.is_err());
    }

    #[tokio::test]
    async fn tokens_are_stored_by_digest_only_and_listed_without_the_secret() {
        let (_dir, core, user) = core_with_user().await;
        let issued = core
            .issue_token(
                &user,
                TokenKind::Api,
                Some("ci"),
                Some(Duration::from_secs(60)),
            )
            .await
            .expect("issue");
        assert!(issued.token.starts_with("spa_") && issued.token.len() >= 40);
        assert!(!format!("{issued:?}").contains(&issued.token));
        let records = core.records(TOKENS_NAMESPACE).await.expect("records");
        assert_eq!(records.len(), 1);
        let (key, value) = &records[0];
        assert_eq!(key, &digest(&issued.token));
        assert!(!value.contains(&issued.token) && !key.contains(&issued.token));
        let listed = core.tokens(user.id).await.expect("tokens");
        assert_eq!(listed, vec![issued.info.clone()]);
        assert!(matches!(
            core.issue_token(&user, TokenKind::Api, Some("ci"), None)
                .await,
            Err(Error::Conflict(_))
        ));
        core.revoke_token(&Principal::Host, user.id, "ci")
            .await
            .expect("revoke");
        assert!(core.authenticate_token(&issued.token).await.is_err());
        assert!(matches!(
            core.revoke_token(&Principal::Host, user.id, "ci").await,
            Err(Error::UnknownToken(_))
        ));
    }

    #[tokio::test]
    async fn an_expired_token_is_refused_and_removed() {
        let (_dir, core, user) = core_with_user().await;
        let issued = core
            .issue_token(&user, TokenKind::Session, None, Some(Duration::ZERO))
            .await
            .expect("issue");
        assert!(matches!(
            core.authenticate_token(&issued.token).await,
            Err(Error::BadCredentials)
        ));
        assert!(
            core.records(TOKENS_NAMESPACE)
                .await
                .expect("records")
                .is_empty()
        );
    }

    #[tokio::test]
    async fn a_revocation_is_audited_as_whoever_made_it_and_users_are_found_ignoring_case() {
        let (_dir, core, user) = core_with_user().await;
        let found = core
            .user_by_email("U@Example.ORG")
            .await
            .expect("lookup")
            .expect("found");
        assert_eq!(found.id, user.id);
        assert!(
            core.user_by_email("nobody@example.org")
                .await
                .expect("lookup")
                .is_none()
        );
        let issued = core
            .issue_token(&user, TokenKind::Api, Some("ci"), None)
            .await
            .expect("issue");
        let admin = Principal::User(found);
        core.revoke_token(&admin, user.id, "ci")
            .await
            .expect("revoke");
        let log = core
            .audit_log(&crate::AuditQuery::default())
            .await
            .expect("audit");
        // Issuing is the user's own entry, without the secret.
        let issuing = &log[log.len() - 2];
        assert_eq!(issuing.operation, "issue-token");
        assert_eq!(issuing.principal, "user u@example.org");
        assert_eq!(
            Value::Object(issuing.fields.clone()),
            json!({ "id": issued.info.id, "name": "ci", "kind": "api" })
        );
        assert!(!format!("{issuing:?}").contains(&issued.token));
        let entry = log.last().expect("an entry");
        assert_eq!(entry.operation, "revoke-token");
        assert_eq!(entry.principal, "user u@example.org");
        assert_eq!((entry.model.as_str(), entry.object_id), ("User", user.id));
        assert_eq!(
            Value::Object(entry.fields.clone()),
            json!({ "id": issued.info.id, "name": "ci", "kind": "api" })
        );
        // An unknown token leaves no entry.
        let before = log.len();
        assert!(core.revoke_token(&admin, user.id, "ci").await.is_err());
        let log = core
            .audit_log(&crate::AuditQuery::default())
            .await
            .expect("audit");
        assert_eq!(log.len(), before);
    }

    #[test]
    fn a_digest_is_hex_sha256() {
        assert_eq!(
            digest("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn expiry_is_inclusive_and_none_never_expires() {
        let mut info = TokenInfo {
            id: "x".into(),
            user_id: 1,
            kind: TokenKind::Api,
            name: "x".into(),
            created: 0.0,
            expires: Some(10.0),
        };
        assert!(!info.is_expired(9.9));
        assert!(info.is_expired(10.0));
        info.expires = None;
        assert!(!info.is_expired(f64::MAX));
    }
}
