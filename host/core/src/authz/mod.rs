//! Authorization: who may read and change which objects.
//!
//! Every read and write made for a user goes through [`CoreTx::may`], the
//! one check: the security policy of the object's model (`message
//! Name::policy`, the nearest one up the inheritance chain) decides, as in
//! XOS, with `ctx.read_access` / `ctx.write_access` set for the kind of
//! access. A model without a policy is readable by every user and writable
//! by admins. A user marked `is_readonly` writes nothing. Objects a user may
//! not read do not exist for them (not found, never forbidden).
//!
//! Services (steps and policies) act through the grants of their manifest,
//! checked by the runtime before the core is reached; the host itself
//! (bookkeeping, purges) is not restricted. Whoever writes, the model's
//! validators and field checks run, and the rules that keep users sound
//! (see `users.rs`) hold.

mod snapshot;
mod users;

use std::collections::HashSet;

use serde_json::{Map, Value};
use syncplane_xproto::{Access, ObjectRef, PolicyExpr};

use crate::bookkeeping::field;
use crate::core::{Core, CoreTx};
use crate::deletion::{CascadeAction, CascadePlan, DeleteOptions, Deletion};
use crate::error::{Error, Result};
use crate::object::Object;
use crate::registry::Registry;
pub(crate) use snapshot::Snapshot;
use snapshot::{Decided, decide, decide_held, object_ref};

/// On whose behalf a read or write is made.
#[derive(Debug, Clone)]
pub enum Principal {
    /// A signed-in user (REST, TOSCA, the CLI): the security policies of
    /// the models decide.
    User(Object),
    /// A service's step, policy, pull or event step: its grants were
    /// checked by the runtime.
    Service {
        /// The service.
        service: String,
        /// The step or policy.
        step: String,
    },
    /// The host itself: bookkeeping, purges, the bootstrap admin.
    Host,
}

impl Principal {
    /// The user, for a [`Principal::User`].
    pub fn user(&self) -> Option<&Object> {
        match self {
            Principal::User(user) => Some(user),
            _ => None,
        }
    }

    /// Whether this is a user with `is_admin` set.
    pub fn is_admin(&self) -> bool {
        self.user().is_some_and(|u| flag(u, "is_admin"))
    }

    /// Who it is, for logs and the audit: `user <email>`, `service <name>`
    /// or `host`.
    pub fn describe(&self) -> String {
        match self {
            Principal::User(user) => {
                format!("user {}", user.str_field("email").unwrap_or("?"))
            }
            Principal::Service { service, step } => format!("service {service} step {step}"),
            Principal::Host => "host".to_owned(),
        }
    }
}

fn flag(object: &Object, name: &str) -> bool {
    object.fields.get(name) == Some(&Value::Bool(true))
}

/// The security policy guarding `model`: its own, else its nearest
/// ancestor's.
fn policy_of<'r>(registry: &'r Registry, model: &str) -> Option<&'r PolicyExpr> {
    let schema = registry.schema();
    std::iter::once(model)
        .chain(schema.ancestors(model))
        .find_map(|m| schema.model(m)?.policy.as_deref())
        .and_then(|name| schema.policy(name))
        .map(|p| &p.expr)
}

/// [`CoreTx::retain_readable`] without a database: the items whose
/// object `who` may read, in their order, when every decision needs
/// nothing but the object, the user and the policy; `None` as soon as one
/// reads other data (only a transaction can decide it then).
pub(crate) fn retain_readable_held<T>(
    who: &Principal,
    items: Vec<(Object, T)>,
    snapshot: &mut Snapshot,
) -> Option<Vec<(Object, T)>> {
    let Principal::User(user) = who else {
        return Some(items);
    };
    let registry = snapshot.registry();
    let mut visible = Vec::with_capacity(items.len());
    for (object, extra) in items {
        let Some(expr) = policy_of(&registry, &object.model) else {
            visible.push((object, extra));
            continue;
        };
        snapshot.hold_once(user);
        let target = object_ref(&object);
        snapshot.hold(object);
        let decided = decide_held(
            snapshot,
            expr,
            &target,
            Some(&object_ref(user)),
            Access::Read,
        );
        let object = snapshot.release(target.id);
        match decided {
            Decided::Granted(true) => visible.extend(object.map(|o| (o, extra))),
            Decided::Granted(false) => {}
            Decided::Needs(_) => return None,
        }
    }
    Some(visible)
}

impl CoreTx {
    /// Whether `who` may read or write `object`: the one authorization
    /// check (see the module docs). `snapshot` holds what earlier decisions
    /// of the same request read; pass a new one otherwise.
    ///
    /// # Errors
    ///
    /// A database failure; a policy that cannot be decided denies.
    pub(crate) async fn may(
        &mut self,
        who: &Principal,
        access: Access,
        object: &Object,
        snapshot: &mut Snapshot,
    ) -> Result<bool> {
        if !matches!(who, Principal::User(_)) {
            return Ok(true);
        }
        snapshot.hold(object.clone());
        self.may_held(who, access, &object_ref(object), snapshot)
            .await
    }

    /// [`CoreTx::may`] for an object `snapshot` holds already.
    async fn may_held(
        &mut self,
        who: &Principal,
        access: Access,
        target: &ObjectRef,
        snapshot: &mut Snapshot,
    ) -> Result<bool> {
        let Principal::User(user) = who else {
            return Ok(true);
        };
        if access == Access::Write && flag(user, "is_readonly") {
            return Ok(false);
        }
        let registry = std::sync::Arc::clone(self.registry_arc());
        match policy_of(&registry, &target.model) {
            None => Ok(access == Access::Read || flag(user, "is_admin")),
            Some(expr) => {
                snapshot.hold_once(user);
                let user = object_ref(user);
                decide(self, snapshot, expr, target, Some(&user), access).await
            }
        }
    }

    pub(crate) fn snapshot(&self) -> Snapshot {
        Snapshot::new(std::sync::Arc::clone(self.registry_arc()))
    }

    /// Runs the validators of `object`'s model (`option validators`, its
    /// ancestors' too): the first that fails refuses the write with its
    /// message.
    pub(crate) async fn validate(&mut self, object: &Object) -> Result<()> {
        let registry = std::sync::Arc::clone(self.registry_arc());
        let schema = registry.schema();
        let mut snapshot = self.snapshot();
        for model in std::iter::once(object.model.as_str()).chain(schema.ancestors(&object.model)) {
            let Some(ir) = schema.model(model) else {
                continue;
            };
            for validator in ir.validators() {
                let Some(policy) = schema.policy(&validator.policy) else {
                    continue;
                };
                snapshot.hold_once(object);
                if !decide(
                    self,
                    &mut snapshot,
                    &policy.expr,
                    &object_ref(object),
                    None,
                    Access::Write,
                )
                .await?
                {
                    return Err(Error::Rejected {
                        model: object.model.clone(),
                        message: validator.message,
                    });
                }
            }
        }
        Ok(())
    }

    /// The object `id` if `who` may read it; `None` when it does not exist
    /// or is hidden from them.
    ///
    /// # Errors
    ///
    /// A database failure.
    pub async fn get_as(&mut self, who: &Principal, id: i64) -> Result<Option<Object>> {
        let Some(object) = self.get(id).await? else {
            return Ok(None);
        };
        let mut snapshot = self.snapshot();
        Ok(self
            .may(who, Access::Read, &object, &mut snapshot)
            .await?
            .then_some(object))
    }

    /// The objects of `model` (and its descendants) matching `filter` that
    /// `who` may read.
    ///
    /// # Errors
    ///
    /// As [`CoreTx::list`].
    pub async fn list_as(
        &mut self,
        who: &Principal,
        model: &str,
        filter: &[(String, Value)],
    ) -> Result<Vec<Object>> {
        let all = self.list(model, filter).await?;
        let mut snapshot = self.snapshot();
        self.retain_readable(who, all, &mut snapshot).await
    }

    /// The objects of `objects` that `who` may read, in their order: the
    /// check of [`CoreTx::may`] for each, sharing `snapshot` (what one
    /// decision loaded answers the next).
    ///
    /// # Errors
    ///
    /// A database failure.
    pub(crate) async fn retain_readable(
        &mut self,
        who: &Principal,
        objects: Vec<Object>,
        snapshot: &mut Snapshot,
    ) -> Result<Vec<Object>> {
        if !matches!(who, Principal::User(_)) {
            return Ok(objects);
        }
        let mut visible = Vec::with_capacity(objects.len());
        for object in objects {
            // Moved into the snapshot for the decision and back, not copied.
            let target = object_ref(&object);
            snapshot.hold(object);
            let readable = self.may_held(who, Access::Read, &target, snapshot).await?;
            if let Some(object) = snapshot.release(target.id)
                && readable
            {
                visible.push(object);
            }
        }
        Ok(visible)
    }

    /// Creates an object for `who`: refused unless they may write it as
    /// created (the transaction must then be dropped).
    ///
    /// # Errors
    ///
    /// [`Error::Forbidden`], and as [`CoreTx::create`].
    pub async fn create_as(
        &mut self,
        who: &Principal,
        model: &str,
        mut input: Map<String, Value>,
    ) -> Result<Object> {
        self.act_as(who.clone());
        if self.registry_arc().schema().is_a(model, "User") {
            users::check_change(&self.auth().hasher, who, None, &mut input).await?;
        }
        let object = self.create(model, input).await?;
        let mut snapshot = self.snapshot().hiding(object.id);
        if !self.may(who, Access::Write, &object, &mut snapshot).await? {
            return Err(forbidden(who, "create", &object));
        }
        Ok(object)
    }

    /// Creates a batch of objects of `model` for `who`, one per input, as
    /// [`CoreTx::create_as`] creates one: the same checks for each, made
    /// with a few statements for the whole batch ([`CoreTx::create_many`]).
    /// Each object must not grant its own creation, nor any other of the
    /// batch: policies decide with the whole batch hidden from them.
    ///
    /// # Errors
    ///
    /// [`Error::Item`] naming the first refused input (wrapping
    /// [`Error::Forbidden`] or what [`CoreTx::create_many`] says); the
    /// transaction must then be dropped.
    pub async fn create_many_as(
        &mut self,
        who: &Principal,
        model: &str,
        mut inputs: Vec<Map<String, Value>>,
    ) -> Result<Vec<Object>> {
        self.act_as(who.clone());
        if self.registry_arc().schema().is_a(model, "User") {
            for (index, input) in inputs.iter_mut().enumerate() {
                users::check_change(&self.auth().hasher, who, None, input)
                    .await
                    .map_err(|e| e.at(index))?;
            }
        }
        let objects = self.create_many(model, inputs).await?;
        if !matches!(who, Principal::User(_)) {
            return Ok(objects);
        }
        let batch: HashSet<i64> = objects.iter().map(|o| o.id).collect();
        // One snapshot for the batch: what one decision loaded (the user's
        // privileges) answers the others.
        let mut snapshot = self.snapshot().hiding_all(std::sync::Arc::new(batch));
        let mut allowed = Vec::with_capacity(objects.len());
        for (index, object) in objects.into_iter().enumerate() {
            // Moved into the snapshot for the decision and back, not copied.
            let target = object_ref(&object);
            snapshot.hold(object);
            let may = self
                .may_held(who, Access::Write, &target, &mut snapshot)
                .await?;
            let object = snapshot.release(target.id).ok_or_else(|| Error::NotFound {
                model: target.model.clone(),
                id: target.id,
            })?;
            if !may {
                return Err(forbidden(who, "create", &object).at(index));
            }
            allowed.push(object);
        }
        Ok(allowed)
    }

    /// Updates an object for `who`: they must be able to read it (else it
    /// is not found), and to write it before and after the change.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`], [`Error::Forbidden`], and as
    /// [`CoreTx::update`].
    pub async fn update_as(
        &mut self,
        who: &Principal,
        id: i64,
        mut input: Map<String, Value>,
    ) -> Result<Object> {
        let current = self.writable(who, id, "change").await?;
        if self.registry_arc().schema().is_a(&current.model, "User") {
            users::check_change(&self.auth().hasher, who, Some(&current), &mut input).await?;
        }
        let updated = self.update(id, input).await?;
        let mut snapshot = self.snapshot().hiding(updated.id);
        if !self
            .may(who, Access::Write, &updated, &mut snapshot)
            .await?
        {
            return Err(forbidden(who, "change", &current));
        }
        Ok(updated)
    }

    /// Marks an object deleted for `who`, with what cascades from it (see
    /// [`CoreTx::delete`]). `who` must be able to write the object and
    /// every object the deletion reaches: those deleted with it and those
    /// whose links to it are cleared (before and after the change). For a
    /// user, a `write_protect`ed object among them refuses the deletion too.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`]; [`Error::Forbidden`] naming the first object
    /// `who` may not delete or change (or, when `who` may not even read it,
    /// saying that objects they cannot see link there); and as
    /// [`CoreTx::delete`]. The transaction must then be dropped: nothing
    /// is deleted.
    pub async fn delete_as(&mut self, who: &Principal, id: i64) -> Result<Deletion> {
        self.writable(who, id, "delete").await?;
        self.delete_cascading(Some(who), id).await
    }

    /// Refuses a deletion of `root` unless `who` may write every object
    /// `plan` reaches.
    pub(crate) async fn authorize_cascade(
        &mut self,
        who: &Principal,
        root: &Object,
        plan: &CascadePlan,
    ) -> Result<()> {
        if !matches!(who, Principal::User(_)) {
            return Ok(());
        }
        let mut snapshot = self.snapshot();
        let reached = plan.deletes.iter().chain(&plan.clears);
        for (object, why) in reached {
            let (action, effect) = match why.action {
                CascadeAction::Deleted => ("delete", "would be deleted with"),
                CascadeAction::Cleared => ("change", "would have its link cleared by deleting"),
            };
            if !self.may(who, Access::Read, object, &mut snapshot).await? {
                return Err(Error::Forbidden(format!(
                    "{} may not delete {} {}: objects they cannot see link to it",
                    who.describe(),
                    root.model,
                    root.id
                )));
            }
            if !self.may(who, Access::Write, object, &mut snapshot).await? {
                return Err(Error::Forbidden(format!(
                    "{} may not {action} {} {}, which {effect} {} {} (its `{}` links to {}); nothing was deleted",
                    who.describe(),
                    object.model,
                    object.id,
                    root.model,
                    root.id,
                    why.field,
                    why.target,
                )));
            }
            if flag(object, field::WRITE_PROTECT) {
                return Err(Error::Forbidden(format!(
                    "{} {} is write-protected and {effect} {} {}; nothing was deleted",
                    object.model, object.id, root.model, root.id
                )));
            }
        }
        Ok(())
    }

    /// Refuses when `who` may not write `object` as it is now (after a
    /// cascaded change).
    pub(crate) async fn check_still_writable(
        &mut self,
        who: &Principal,
        object: &Object,
    ) -> Result<()> {
        let mut snapshot = self.snapshot().hiding(object.id);
        if !self.may(who, Access::Write, object, &mut snapshot).await? {
            return Err(forbidden(who, "change", object));
        }
        Ok(())
    }

    /// The object `id` that `who` is about to `action`: not found when
    /// they may not read it, forbidden when they may not write it. The
    /// transaction's writes are put on `who` from here on.
    async fn writable(&mut self, who: &Principal, id: i64, action: &str) -> Result<Object> {
        self.act_as(who.clone());
        let current = self.visible(who, id).await?;
        let mut snapshot = self.snapshot();
        if !self
            .may(who, Access::Write, &current, &mut snapshot)
            .await?
        {
            return Err(forbidden(who, action, &current));
        }
        Ok(current)
    }

    /// The object `id`, or not found when `who` may not read it.
    async fn visible(&mut self, who: &Principal, id: i64) -> Result<Object> {
        self.get_as(who, id).await?.ok_or_else(|| Error::NotFound {
            model: "object".into(),
            id,
        })
    }
}

fn forbidden(who: &Principal, action: &str, object: &Object) -> Error {
    Error::Forbidden(format!(
        "{} may not {action} {} {}",
        who.describe(),
        object.model,
        object.id
    ))
}

impl Core {
    /// [`CoreTx::get_as`] in its own read-only transaction.
    ///
    /// # Errors
    ///
    /// A database failure.
    pub async fn get_as(&self, who: &Principal, id: i64) -> Result<Option<Object>> {
        self.begin_read().await?.get_as(who, id).await
    }

    /// [`CoreTx::list_as`] in its own read-only transaction, without a filter.
    ///
    /// # Errors
    ///
    /// As [`CoreTx::list`].
    pub async fn list_as(&self, who: &Principal, model: &str) -> Result<Vec<Object>> {
        self.begin_read().await?.list_as(who, model, &[]).await
    }

    /// [`CoreTx::create_as`] in its own transaction.
    ///
    /// # Errors
    ///
    /// As [`CoreTx::create_as`]; nothing is written then.
    pub async fn create_as(
        &self,
        who: &Principal,
        model: &str,
        input: Map<String, Value>,
    ) -> Result<Object> {
        let mut tx = self.begin_to_create(model, &input).await?;
        let object = tx.create_as(who, model, input).await?;
        tx.commit().await?;
        Ok(object)
    }

    /// [`CoreTx::create_many_as`] in its own transaction: all or nothing.
    /// Users' passwords are hashed before it opens.
    ///
    /// # Errors
    ///
    /// As [`CoreTx::create_many_as`]; nothing is written then.
    pub async fn create_many_as(
        &self,
        who: &Principal,
        model: &str,
        inputs: Vec<Map<String, Value>>,
    ) -> Result<Vec<Object>> {
        let passwords: Vec<String> = if model == "User" {
            inputs
                .iter()
                .filter_map(|input| input.get("password").and_then(Value::as_str))
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect()
        } else {
            Vec::new()
        };
        let mut tx = self
            .begin_with_passwords(passwords.iter().map(String::as_str))
            .await?;
        let objects = tx.create_many_as(who, model, inputs).await?;
        tx.commit().await?;
        Ok(objects)
    }

    /// [`CoreTx::update_as`] in its own transaction.
    ///
    /// # Errors
    ///
    /// As [`CoreTx::update_as`]; nothing is written then.
    pub async fn update_as(
        &self,
        who: &Principal,
        id: i64,
        input: Map<String, Value>,
    ) -> Result<Object> {
        let mut tx = self.begin_to_update(id, &input).await?;
        let object = tx.update_as(who, id, input).await?;
        tx.commit().await?;
        Ok(object)
    }

    /// [`CoreTx::delete_as`] in its own transaction, committed unless
    /// `options` ask for a dry run (then rolled back: the answer says what
    /// would have been deleted and cleared, after the same checks).
    ///
    /// # Errors
    ///
    /// As [`CoreTx::delete_as`]; nothing is written then.
    pub async fn delete_as(
        &self,
        who: &Principal,
        id: i64,
        options: DeleteOptions,
    ) -> Result<Deletion> {
        let mut tx = self.begin().await?;
        let deletion = tx.delete_as(who, id).await?;
        if options.dry_run {
            // Dropping the transaction rolls every write back.
            drop(tx);
        } else {
            tx.commit().await?;
        }
        Ok(deletion)
    }
}
