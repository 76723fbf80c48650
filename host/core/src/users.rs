//! Users: the admin account and password checks.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use serde_json::{Value, json};

use crate::core::Core;
use crate::error::{Error, Result};
use crate::object::Object;
use crate::time::now_secs;

/// The e-mail of the administrator created on a new data directory.
pub const ADMIN_EMAIL: &str = "admin@opencord.org";

/// Where the store remembers that its first start created the admin.
const BOOTSTRAP_NAMESPACE: &str = "host";
const BOOTSTRAP_KEY: &str = "bootstrapped";

pub(crate) fn hash_password(plain: &str) -> Result<String> {
    let bytes: [u8; 16] = rand::random();
    let salt = SaltString::encode_b64(&bytes).map_err(|e| Error::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(plain.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Hash(e.to_string()))
}

pub(crate) fn verify_password(plain: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(plain.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

impl Core {
    /// Creates the administrator with `password` on the very first start
    /// of an empty store, and never again: a store that was bootstrapped
    /// (or already has users) gets no new admin, even after its admin was
    /// deleted. Returns whether it was created.
    ///
    /// # Errors
    ///
    /// A database or hashing failure.
    pub async fn ensure_admin(&self, password: &str) -> Result<bool> {
        let mut tx = self.begin().await?;
        if tx
            .store_tx()
            .record(BOOTSTRAP_NAMESPACE, BOOTSTRAP_KEY)
            .await?
            .is_some()
        {
            return Ok(false);
        }
        let empty = tx.list("User", &[]).await?.is_empty();
        tx.store_tx()
            .put_record(BOOTSTRAP_NAMESPACE, BOOTSTRAP_KEY, &now_secs().to_string())
            .await?;
        if empty {
            let input: serde_json::Map<String, Value> = [
                ("email", json!(ADMIN_EMAIL)),
                ("username", json!("admin")),
                ("password", json!(password)),
                ("firstname", json!("XOS")),
                ("lastname", json!("admin")),
                ("is_admin", json!(true)),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
            tx.create("User", input).await?;
        }
        tx.commit().await?;
        Ok(empty)
    }

    /// Checks a user's credentials and returns the user.
    ///
    /// # Errors
    ///
    /// [`Error::BadCredentials`] for an unknown, inactive or deleted user or a
    /// wrong password, without saying which.
    pub async fn authenticate(&self, email: &str, password: &str) -> Result<Object> {
        let mut tx = self.begin().await?;
        let users = tx
            .list("User", &[("email".into(), Value::from(email))])
            .await?;
        let user = users.into_iter().next().ok_or(Error::BadCredentials)?;
        let hash = user.str_field("password").unwrap_or_default().to_owned();
        let active = user.fields.get("is_active") == Some(&Value::Bool(true))
            && user.fields.get("deleted") != Some(&Value::Bool(true));
        let password = password.to_owned();
        let ok = tokio::task::spawn_blocking(move || verify_password(&password, &hash))
            .await
            .unwrap_or(false);
        if ok && active {
            Ok(user)
        } else {
            Err(Error::BadCredentials)
        }
    }
}
