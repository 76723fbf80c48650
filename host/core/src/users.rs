//! Users: the admin account and password checks.

use crate::bookkeeping::field;
use serde_json::{Value, json};
use syncplane_store::Condition;

use crate::core::Core;
use crate::error::{Error, Result};
use crate::object::Object;
use crate::time::now_secs;

/// The e-mail of the administrator created on a new data directory.
pub const ADMIN_EMAIL: &str = "admin@opencord.org";

/// Where the store remembers that its first start created the admin.
const BOOTSTRAP_NAMESPACE: &str = "host";
const BOOTSTRAP_KEY: &str = "bootstrapped";

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
        let bootstrapped = self
            .begin()
            .await?
            .store_tx()
            .record(BOOTSTRAP_NAMESPACE, BOOTSTRAP_KEY)
            .await?
            .is_some();
        if bootstrapped {
            return Ok(false);
        }
        // Hashed before the transaction opens; the check is repeated inside.
        let mut tx = self.begin_with_passwords([password]).await?;
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
    /// The user is read in a short transaction that ends before the
    /// password is verified, on the bounded hashing pool. An unknown user
    /// is verified against a dummy hash with the same parameters, so it
    /// costs as much as a wrong password. A success is remembered for the
    /// same e-mail and password for [`AuthOptions::credential_cache_ttl`]
    /// (until any user or token changes); failures are never remembered.
    ///
    /// [`AuthOptions::credential_cache_ttl`]: crate::AuthOptions::credential_cache_ttl
    ///
    /// # Errors
    ///
    /// [`Error::BadCredentials`] for an unknown, inactive or deleted user or a
    /// wrong password, without saying which; [`Error::Hash`] or a database
    /// failure.
    pub async fn authenticate(&self, email: &str, password: &str) -> Result<Object> {
        let key = self.auth.credential_key(email, password);
        if let Some(user) = self.auth.cached_credential(&key) {
            return Ok(user);
        }
        let epoch = self.auth.epoch();
        let user = self
            .begin()
            .await?
            .list("User", &[("email".into(), Value::from(email))])
            .await?
            .into_iter()
            .next();
        let hash = user
            .as_ref()
            .and_then(|u| u.str_field("password"))
            .filter(|h| !h.is_empty());
        let matched = self.auth.hasher.verify(password, hash).await?;
        match user {
            Some(user) if matched && is_active(&user) => {
                self.auth.cache_credential(key, &user, epoch);
                Ok(user)
            }
            _ => Err(Error::BadCredentials),
        }
    }
}

impl Core {
    /// The user whose e-mail is `email`, ignoring case (e-mails are unique
    /// that way); `None` when there is none or it was deleted.
    ///
    /// # Errors
    ///
    /// A database failure.
    pub async fn user_by_email(&self, email: &str) -> Result<Option<Object>> {
        let mut tx = self.begin().await?;
        let table = tx.table("User")?;
        let found = tx
            .store_tx()
            .select(
                &table,
                &[Condition::EqIgnoreCase(
                    "email".into(),
                    email.trim().to_owned(),
                )],
                None,
            )
            .await?;
        let Some((id, _)) = found.first() else {
            return Ok(None);
        };
        Ok(tx
            .get(*id)
            .await?
            .filter(|u| u.fields.get(field::DELETED) != Some(&Value::Bool(true))))
    }
}

/// Whether a user may sign in: active and not deleted.
pub(crate) fn is_active(user: &Object) -> bool {
    user.fields.get("is_active") == Some(&Value::Bool(true))
        && user.fields.get(field::DELETED) != Some(&Value::Bool(true))
}
