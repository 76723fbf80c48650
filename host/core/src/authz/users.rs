//! The rules that keep users sound.
//!
//! For users acting through the API: only admins set `is_admin` or
//! `is_readonly` or another user's password, and a user changes their own
//! password only by giving the current one (`old_password`). Whoever
//! writes: e-mails are unique ignoring case, and the last active admin
//! can be neither demoted, deactivated nor deleted.

use crate::bookkeeping::field;
use serde_json::{Map, Value};
use syncplane_store::Condition;

use super::{Principal, flag};
use crate::core::CoreTx;
use crate::error::{Error, Result};
use crate::object::Object;
use crate::password::Hasher;

/// Fields only admins may set.
const ADMIN_ONLY: &[&str] = &["is_admin", "is_readonly"];

/// Checks a user's change to the `User` `current` (`None`: a new user) and
/// takes `old_password` out of `input`.
pub(super) async fn check_change(
    hasher: &Hasher,
    who: &Principal,
    current: Option<&Object>,
    input: &mut Map<String, Value>,
) -> Result<()> {
    let old_password = input.remove("old_password");
    let Principal::User(user) = who else {
        return Ok(());
    };
    let admin = flag(user, "is_admin");
    if !admin {
        for name in ADMIN_ONLY {
            let Some(wanted) = input.get(*name) else {
                continue;
            };
            let now = current
                .and_then(|c| c.fields.get(*name))
                .cloned()
                .unwrap_or(Value::Bool(false));
            if *wanted != now {
                return Err(Error::Forbidden(format!("only admins may set `{name}`")));
            }
        }
    }
    let new_password = input
        .get("password")
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty());
    let (Some(_), Some(current)) = (new_password, current) else {
        return Ok(());
    };
    if current.id != user.id {
        return if admin {
            Ok(())
        } else {
            Err(Error::Forbidden(
                "only admins may set another user's password".into(),
            ))
        };
    }
    let Some(old) = old_password.as_ref().and_then(Value::as_str) else {
        return Err(Error::Forbidden(
            "changing your own password needs `old_password`, the current one".into(),
        ));
    };
    // On the bounded hashing pool, though inside the transaction: a
    // change of one's own password is rare.
    if hasher.verify(old, current.str_field("password")).await? {
        Ok(())
    } else {
        Err(Error::Forbidden(
            "`old_password` is not the current password".into(),
        ))
    }
}

fn active_admin(user: &Object) -> bool {
    flag(user, "is_admin") && flag(user, "is_active") && !flag(user, field::DELETED)
}

impl CoreTx {
    /// Checks a change of a `User` from `before` (`None`: created) to
    /// `after` (`None`: deleted), whoever makes it.
    pub(crate) async fn check_user_rules(
        &mut self,
        before: Option<&Object>,
        after: Option<&Object>,
    ) -> Result<()> {
        if let Some(after) = after
            && let Some(email) = after.str_field("email")
        {
            let table = self.registry_arc().table(&after.model)?.clone();
            let same = self
                .store_tx()
                .select(
                    &table,
                    &[Condition::EqIgnoreCase("email".into(), email.to_owned())],
                    None,
                )
                .await?;
            if let Some((other, _)) = same.iter().find(|(id, _)| *id != after.id) {
                return Err(Error::Conflict(format!(
                    "User.email: `{email}` is taken (ignoring case) by User {other}"
                )));
            }
        }
        let Some(before) = before.filter(|b| active_admin(b)) else {
            return Ok(());
        };
        if after.is_some_and(active_admin) {
            return Ok(());
        }
        let others = self
            .list(&before.model, &[("is_admin".to_owned(), Value::Bool(true))])
            .await?
            .into_iter()
            .filter(|u| u.id != before.id && active_admin(u))
            .count();
        if others == 0 {
            return Err(Error::Conflict(format!(
                "User {} is the last active admin: make another user admin first",
                before.id
            )));
        }
        Ok(())
    }
}
