//! Deletion as XOS does it: Django's collector, with soft deletes.
//!
//! Deleting an object marks it `deleted` and, in the same transaction,
//! marks every live object that links to it through a **required** link
//! deleted too (recursively: `Region ← Zone ← Rack` goes all the way);
//! **optional** (nullable) links to a deleted object are set to null. Each
//! of these writes is audited like any other and, for a user, goes through
//! the same authorization check: one refusal refuses the whole deletion.
//! [`MAX_CASCADE`] bounds the work. What cascaded comes back as a
//! [`Deletion`].
//!
//! The synchronizer purges a deleted object only when nothing links to it
//! any more (see [`crate::Core::apply`]), and no write may link an object to
//! a deleted one, so a link never dangles.

use crate::bookkeeping::field;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value};
use syncplane_store::{Condition, Row, SqlValue};
use syncplane_xproto::Modifier;

use crate::authz::Principal;
use crate::core::{CoreTx, decode};
use crate::error::{Error, Result};
use crate::object::{Change, ChangeKind, Object};
use crate::registry::Registry;
use crate::tokens;

/// Objects one deletion may delete or change besides the object itself.
/// A larger cascade is refused ([`Error::CascadeTooLarge`]) rather than run
/// as one unbounded transaction.
pub const MAX_CASCADE: usize = 10_000;

/// What a deletion did to an object that linked to a deleted one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CascadeAction {
    /// Marked deleted: its required link pointed at a deleted object.
    Deleted,
    /// Its optional link to the deleted object was set to null.
    Cleared,
}

/// One object a deletion reached besides the object deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cascaded {
    /// The object's model.
    pub model: String,
    /// The object's id.
    pub id: i64,
    /// Deleted, or its link cleared.
    pub action: CascadeAction,
    /// The link field (`region`, stored as `region_id`) that pointed at a
    /// deleted object.
    pub field: String,
    /// The deleted object the link pointed at.
    pub target: i64,
}

/// What deleting one object did: the object, and every object the
/// deletion cascaded to, in the order they were reached (breadth first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Deletion {
    /// The model of the object deleted.
    pub model: String,
    /// The id of the object deleted.
    pub id: i64,
    /// Objects deleted with it, and objects whose links to a deleted object
    /// were cleared.
    pub cascaded: Vec<Cascaded>,
}

/// How [`crate::Core::delete_as`] deletes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeleteOptions {
    /// Work out and check the whole deletion, then roll it back: the
    /// answer says what *would* cascade; nothing changes. Off by default.
    pub dry_run: bool,
}

/// A non-many link field of a concrete model: where to look for objects
/// linking to an object of `target` (or a model inheriting it).
struct LinkColumn {
    model: String,
    field: String,
    column: String,
    target: String,
    required: bool,
}

fn link_columns(registry: &Registry) -> Vec<LinkColumn> {
    let schema = registry.schema();
    let mut out = Vec::new();
    for model in schema.models().filter(|m| !m.is_abstract()) {
        for field in schema.all_fields(&model.name) {
            let Some(target) = field.link_target() else {
                continue;
            };
            if field.is_many() {
                continue;
            }
            out.push(LinkColumn {
                model: model.name.clone(),
                field: field.name.clone(),
                column: field.column_name(),
                target: target.to_owned(),
                required: field.modifier == Modifier::Required,
            });
        }
    }
    out
}

/// What a deletion will write, worked out before anything is written.
#[derive(Debug, Default)]
pub(crate) struct CascadePlan {
    /// Live objects to mark deleted, each with why.
    pub(crate) deletes: Vec<(Object, Cascaded)>,
    /// Live objects (not deleted with the rest) whose links to deleted
    /// objects are cleared, one entry per link.
    pub(crate) clears: Vec<(Object, Cascaded)>,
}

impl CascadePlan {
    fn len(&self) -> usize {
        self.deletes.len() + self.clears.len()
    }
}

impl CoreTx {
    /// Marks an object deleted (XOS's soft delete) and cascades: live
    /// objects linking to it through a required link are marked deleted
    /// too, recursively; optional links to any of them are set to null.
    /// The synchronizer then tears them down, dependents first, and purges
    /// each once nothing links to it. Deleting an object already marked
    /// deleted marks it again (and cascades to anything live that links to
    /// it).
    ///
    /// The host or a service deletes: no security policy is checked; see
    /// [`CoreTx::delete_as`] for a user.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`]; [`Error::CascadeTooLarge`] past
    /// [`MAX_CASCADE`]; [`Error::Forbidden`] when a user rule refuses (the
    /// last active admin among the users deleted); a validator refusing an
    /// object whose link is cleared ([`Error::Rejected`]). The transaction
    /// must be dropped after an error.
    pub async fn delete(&mut self, id: i64) -> Result<Deletion> {
        self.delete_cascading(None, id).await
    }

    /// [`CoreTx::delete`], checking each cascaded write against `who`'s
    /// rights first when `who` is given.
    pub(crate) async fn delete_cascading(
        &mut self,
        who: Option<&Principal>,
        id: i64,
    ) -> Result<Deletion> {
        let root = self.get_existing(id).await?;
        let plan = self.plan_cascade(&root, MAX_CASCADE).await?;
        if let Some(who) = who {
            self.authorize_cascade(who, &root, &plan).await?;
        }
        self.mark_deleted(&root, None).await?;
        let mut cascaded = Vec::with_capacity(plan.len());
        for (object, why) in &plan.deletes {
            self.mark_deleted(object, Some(why)).await?;
            cascaded.push(why.clone());
        }
        // One update per object, clearing all its links to deleted objects.
        let mut done: HashSet<i64> = HashSet::new();
        for (object, _) in &plan.clears {
            if !done.insert(object.id) {
                continue;
            }
            let mine: Vec<&Cascaded> = plan
                .clears
                .iter()
                .filter(|(o, _)| o.id == object.id)
                .map(|(_, c)| c)
                .collect();
            let input: Map<String, Value> = mine
                .iter()
                .map(|c| (format!("{}_id", c.field), Value::Null))
                .collect();
            let updated = self.update(object.id, input).await?;
            if let Some(who) = who {
                self.check_still_writable(who, &updated).await?;
            }
            cascaded.extend(mine.into_iter().cloned());
        }
        tracing::debug!(
            model = %root.model,
            object.id = root.id,
            cascaded = cascaded.len(),
            "object deleted"
        );
        Ok(Deletion {
            model: root.model,
            id: root.id,
            cascaded,
        })
    }

    /// The objects deleting `root` reaches, breadth first; refused past
    /// `limit` of them.
    async fn plan_cascade(&mut self, root: &Object, limit: usize) -> Result<CascadePlan> {
        let registry = Arc::clone(self.registry_arc());
        let links = link_columns(&registry);
        let mut plan = CascadePlan::default();
        let mut deleted: HashSet<i64> = HashSet::from([root.id]);
        let mut queue: VecDeque<(i64, String)> = VecDeque::from([(root.id, root.model.clone())]);
        while let Some((target, target_model)) = queue.pop_front() {
            for link in links
                .iter()
                .filter(|l| registry.schema().is_a(&target_model, &l.target))
            {
                let table = registry.table(&link.model)?;
                // One more than fits tells that the cascade is too large.
                let room = (limit + 1).saturating_sub(plan.len()).max(1);
                let rows = self
                    .store_tx()
                    .select(
                        table,
                        &[
                            Condition::Eq(link.column.clone(), SqlValue::Integer(target)),
                            Condition::Eq(field::DELETED.into(), SqlValue::Integer(0)),
                        ],
                        Some(u32::try_from(room).unwrap_or(u32::MAX)),
                    )
                    .await?;
                for (id, row) in rows {
                    let object = decode(&registry, &link.model, id, row);
                    let why = |action| Cascaded {
                        model: link.model.clone(),
                        id,
                        action,
                        field: link.field.clone(),
                        target,
                    };
                    if link.required {
                        if deleted.insert(id) {
                            plan.deletes.push((object, why(CascadeAction::Deleted)));
                            queue.push_back((id, link.model.clone()));
                        }
                    } else {
                        plan.clears.push((object, why(CascadeAction::Cleared)));
                    }
                    if plan.len() > limit {
                        return Err(Error::CascadeTooLarge {
                            model: root.model.clone(),
                            id: root.id,
                            limit,
                        });
                    }
                }
            }
        }
        // An object deleted anyway keeps its links: teardown order reads them.
        plan.clears.retain(|(o, _)| !deleted.contains(&o.id));
        Ok(plan)
    }

    /// Marks one object deleted: a new version, `deleted` and
    /// `backend_need_delete` set, audited; a user's tokens end.
    async fn mark_deleted(&mut self, object: &Object, why: Option<&Cascaded>) -> Result<()> {
        if self.registry_arc().schema().is_a(&object.model, "User") {
            self.check_user_rules(Some(object), None).await?;
        }
        let table = self.table(&object.model)?;
        let mut row = self.new_version().await?;
        row.insert(field::DELETED.to_owned(), SqlValue::Integer(1));
        row.insert(field::BACKEND_NEED_DELETE.to_owned(), SqlValue::Integer(1));
        self.store_tx().update(&table, object.id, &row).await?;
        let mut fields = Map::new();
        if let Some(why) = why {
            fields.insert("cascaded_from".into(), Value::from(why.target));
            fields.insert("through".into(), Value::from(why.field.clone()));
        }
        self.audit("delete", &object.model, object.id, fields)
            .await?;
        if self.note_user_write(&object.model) {
            tokens::revoke_all(self.store_tx(), object.id).await?;
        }
        self.note(Change {
            id: object.id,
            model: object.model.clone(),
            kind: ChangeKind::Deleted,
        });
        Ok(())
    }

    /// Purges the objects of `purges` (id, leaf model) that nothing links to
    /// but objects purged with them; the others stay, deleted, with a
    /// `backend_status` naming what links there. Returns how many were
    /// purged. See [`crate::Core::apply`].
    pub(crate) async fn purge_unlinked(&mut self, purges: &[(i64, String)]) -> Result<usize> {
        if purges.is_empty() {
            return Ok(0);
        }
        let registry = Arc::clone(self.registry_arc());
        let links = link_columns(&registry);
        // Purged together unless something outside links in; an object
        // that stays may in turn keep those it links to: repeat until
        // nothing changes (one round when nothing links in, the usual case).
        let mut together: HashSet<i64> = purges.iter().map(|(id, _)| *id).collect();
        let mut kept: HashMap<i64, (String, i64)> = HashMap::new();
        loop {
            let mut changed = false;
            for (id, model) in purges {
                if !together.contains(id) {
                    continue;
                }
                if let Some(referrer) = self.referrer(&links, model, *id, &together).await? {
                    together.remove(id);
                    kept.insert(*id, referrer);
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        let mut purged = 0;
        let mut freed: Vec<i64> = Vec::new();
        for (id, model) in purges {
            let table = registry.table(model)?;
            if let Some((by_model, by_id)) = kept.get(id) {
                tracing::debug!(%model, object.id = id, referrer.model = %by_model, referrer.id = by_id, "not purged: still linked to");
                let row = Row::from([(
                    field::BACKEND_STATUS.to_owned(),
                    SqlValue::Text(format!(
                        "waiting on {by_model} {by_id}: it still links here"
                    )),
                )]);
                self.store_tx().update(table, *id, &row).await?;
                self.note(Change {
                    id: *id,
                    model: model.clone(),
                    kind: ChangeKind::Bookkeeping,
                });
                continue;
            }
            let Some(row) = self.store_tx().get(table, *id).await? else {
                continue;
            };
            if self.store_tx().delete(table, *id).await? {
                self.unlink_many(model, *id).await?;
                purged += 1;
                freed.extend(links.iter().filter(|l| &l.model == model).filter_map(|l| {
                    match row.get(&l.column) {
                        Some(SqlValue::Integer(target)) => Some(*target),
                        _ => None,
                    }
                }));
                self.note(Change {
                    id: *id,
                    model: model.clone(),
                    kind: ChangeKind::Purged,
                });
            }
        }
        // A deleted object this purge unlinked may be purgeable now: say so
        // on the feed, as its deletion did.
        freed.sort_unstable();
        freed.dedup();
        for target in freed.into_iter().filter(|t| !together.contains(t)) {
            if let Some(object) = self.get(target).await?
                && object.fields.get(field::DELETED) == Some(&Value::Bool(true))
            {
                self.note(Change {
                    id: target,
                    model: object.model,
                    kind: ChangeKind::Deleted,
                });
            }
        }
        Ok(purged)
    }

    /// An object other than those in `except` that links to the object `id`
    /// of `model` through one of `links`, deleted or not, as `(model, id)`.
    async fn referrer(
        &mut self,
        links: &[LinkColumn],
        model: &str,
        id: i64,
        except: &HashSet<i64>,
    ) -> Result<Option<(String, i64)>> {
        let registry = Arc::clone(self.registry_arc());
        for link in links {
            if !registry.schema().is_a(model, &link.target) {
                continue;
            }
            let table = registry.table(&link.model)?;
            // Among `except.len() + 1` referrers, one is not in `except`.
            let limit = u32::try_from(except.len() + 1).unwrap_or(u32::MAX);
            let found = self
                .store_tx()
                .select(
                    table,
                    &[Condition::Eq(link.column.clone(), SqlValue::Integer(id))],
                    Some(limit),
                )
                .await?;
            if let Some((rid, _)) = found.iter().find(|(rid, _)| !except.contains(rid)) {
                return Ok(Some((link.model.clone(), *rid)));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::core::Core;

    const CHAIN: &str = r#"
option app_label = "c";
policy mine < ctx.user.is_admin | (ctx.write_access -> obj.owner.id = ctx.user.id) >
message Region::mine (XOSBase) { required string name = 1; optional manytoone owner->User:regions = 2:1001; }
message Zone::mine (XOSBase) { required string name = 1; required manytoone region->Region:zones = 2:1001; optional manytoone owner->User:zones = 3:1002; }
message Rack::mine (XOSBase) { required string name = 1; required manytoone zone->Zone:racks = 2:1001; optional manytoone owner->User:racks = 3:1002; }
message Note (XOSBase) { required string name = 1; optional manytoone region->Region:notes = 2:1001; }
message Loop (XOSBase) { required string name = 1; optional manytoone next->Loop:previous = 2:1001; }"#;

    async fn core() -> (tempfile::TempDir, Core) {
        let dir = tempfile::tempdir().expect("tempdir");
        let core = Core::open(&dir.path().join("db.sqlite"))
            .await
            .expect("open");
        let file = syncplane_xproto::parse("chain.xproto", CHAIN).expect("parses");
        core.register_models(&[file]).await.expect("models");
        (dir, core)
    }

    fn map(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    async fn create(core: &Core, model: &str, fields: Value) -> i64 {
        core.create(model, map(fields)).await.expect("create").id
    }

    async fn is_deleted(core: &Core, id: i64) -> bool {
        core.get(id).await.expect("get").expect("exists").fields["deleted"] == json!(true)
    }

    /// Region ← Zone ← Rack, and a Note with an optional link to the region.
    async fn chain(core: &Core) -> (i64, i64, i64, i64) {
        let region = create(core, "Region", json!({ "name": "eu" })).await;
        let zone = create(core, "Zone", json!({ "name": "z", "region_id": region })).await;
        let rack = create(core, "Rack", json!({ "name": "r", "zone_id": zone })).await;
        let note = create(core, "Note", json!({ "name": "n", "region_id": region })).await;
        (region, zone, rack, note)
    }

    #[tokio::test]
    async fn deleting_cascades_through_required_links_and_clears_optional_ones() {
        let (_dir, core) = core().await;
        let (region, zone, rack, note) = chain(&core).await;
        let deletion = core.delete(region).await.expect("delete");
        let mut summary: Vec<(String, i64, CascadeAction, String, i64)> = deletion
            .cascaded
            .iter()
            .map(|c| (c.model.clone(), c.id, c.action, c.field.clone(), c.target))
            .collect();
        // The rack is reached through the zone, so after it.
        let zone_at = summary.iter().position(|c| c.1 == zone);
        let rack_at = summary.iter().position(|c| c.1 == rack);
        assert!(zone_at < rack_at, "{summary:?}");
        summary.sort_by_key(|c| c.1);
        assert_eq!(
            summary,
            [
                (
                    "Zone".into(),
                    zone,
                    CascadeAction::Deleted,
                    "region".into(),
                    region
                ),
                (
                    "Rack".into(),
                    rack,
                    CascadeAction::Deleted,
                    "zone".into(),
                    zone
                ),
                (
                    "Note".into(),
                    note,
                    CascadeAction::Cleared,
                    "region".into(),
                    region
                ),
            ]
        );
        for id in [region, zone, rack] {
            assert!(is_deleted(&core, id).await, "{id} not deleted");
        }
        let note = core.get(note).await.expect("get").expect("note");
        assert_eq!(note.fields["region_id"], Value::Null);
        assert_eq!(note.fields["deleted"], json!(false));
        // Every cascaded write is audited.
        let log = core
            .audit_log(&crate::AuditQuery::default())
            .await
            .expect("audit");
        let deletes: Vec<i64> = log
            .iter()
            .filter(|e| e.operation == "delete")
            .map(|e| e.object_id)
            .collect();
        assert_eq!(deletes, [region, zone, rack]);
        assert!(
            log.iter()
                .any(|e| e.operation == "update" && e.object_id == note.id),
            "{log:?}"
        );
    }

    #[tokio::test]
    async fn a_cascade_past_the_limit_is_refused() {
        let (_dir, core) = core().await;
        let (region, _zone, _rack, _note) = chain(&core).await;
        let mut tx = core.begin().await.expect("begin");
        let root = tx.get_existing(region).await.expect("region");
        let err = tx.plan_cascade(&root, 2).await.expect_err("too large");
        assert!(matches!(err, Error::CascadeTooLarge { .. }), "{err}");
        assert_eq!(
            err.to_string(),
            format!(
                "deleting Region {region} would delete or change more than 2 other objects; delete or relink its dependents in smaller steps first"
            )
        );
        assert_eq!(tx.plan_cascade(&root, 3).await.expect("fits").len(), 3);
    }

    #[tokio::test]
    async fn a_user_who_may_not_delete_a_dependent_cannot_delete_and_nothing_changes() {
        let (_dir, core) = core().await;
        let user = core
            .create(
                "User",
                map(json!({ "email": "u@x.org", "firstname": "U", "lastname": "X" })),
            )
            .await
            .expect("user");
        let who = Principal::User(user.clone());
        let region = create(&core, "Region", json!({ "name": "r", "owner_id": user.id })).await;
        let own = create(
            &core,
            "Zone",
            json!({ "name": "mine", "region_id": region, "owner_id": user.id }),
        )
        .await;
        let foreign = create(
            &core,
            "Zone",
            json!({ "name": "theirs", "region_id": region }),
        )
        .await;
        let err = core
            .delete_as(&who, region, DeleteOptions::default())
            .await
            .expect_err("refused");
        assert!(matches!(err, Error::Forbidden(_)), "{err}");
        assert!(
            err.to_string().contains(&format!("Zone {foreign}")),
            "{err}"
        );
        for id in [region, own, foreign] {
            assert!(!is_deleted(&core, id).await, "{id} changed");
        }
        // Without the foreign zone, the user may.
        core.delete(foreign).await.expect("admin deletes it");
        let deletion = core
            .delete_as(&who, region, DeleteOptions::default())
            .await
            .expect("allowed");
        assert_eq!(deletion.cascaded.len(), 1);
        assert!(is_deleted(&core, own).await);
    }

    #[tokio::test]
    async fn a_dry_run_answers_the_same_and_changes_nothing() {
        let (_dir, core) = core().await;
        let (region, zone, rack, note) = chain(&core).await;
        let admin = core
            .create(
                "User",
                map(json!({ "email": "a@x.org", "firstname": "A", "lastname": "X", "is_admin": true })),
            )
            .await
            .expect("admin");
        let who = Principal::User(admin);
        let dry = core
            .delete_as(&who, region, DeleteOptions { dry_run: true })
            .await
            .expect("dry run");
        for id in [region, zone, rack] {
            assert!(!is_deleted(&core, id).await, "{id} deleted by a dry run");
        }
        let note_now = core.get(note).await.expect("get").expect("note");
        assert_eq!(note_now.fields["region_id"], json!(region));
        let real = core
            .delete_as(&who, region, DeleteOptions::default())
            .await
            .expect("delete");
        assert_eq!(dry, real);
    }

    #[tokio::test]
    async fn nothing_may_link_to_a_deleted_object() {
        let (_dir, core) = core().await;
        let (region, _zone, _rack, note) = chain(&core).await;
        let other = create(&core, "Region", json!({ "name": "us" })).await;
        core.delete(other).await.expect("delete");
        let err = core
            .create("Zone", map(json!({ "name": "late", "region_id": other })))
            .await
            .expect_err("links to a deleted region");
        assert_eq!(
            err.to_string(),
            format!("Zone.region: Region {other} is deleted")
        );
        let err = core
            .update(note, map(json!({ "region_id": other })))
            .await
            .expect_err("links to a deleted region");
        assert_eq!(
            err.to_string(),
            format!("Note.region: Region {other} is deleted")
        );
        core.update(note, map(json!({ "region_id": region })))
            .await
            .expect("a live region is fine");
    }

    #[tokio::test]
    async fn a_self_link_cycle_is_cleared_once() {
        let (_dir, core) = core().await;
        let a = create(&core, "Loop", json!({ "name": "a" })).await;
        let b = create(&core, "Loop", json!({ "name": "b", "next_id": a })).await;
        core.update(a, map(json!({ "next_id": b })))
            .await
            .expect("cycle");
        let deletion = core.delete(a).await.expect("delete");
        assert_eq!(deletion.cascaded.len(), 1, "{deletion:?}");
        assert_eq!(deletion.cascaded[0].id, b);
        let b = core.get(b).await.expect("get").expect("b");
        assert_eq!(b.fields["next_id"], Value::Null);
    }

    #[tokio::test]
    async fn a_purge_waits_while_anything_links_to_the_object() {
        let (_dir, core) = core().await;
        let (region, zone, rack, _note) = chain(&core).await;
        core.delete(region).await.expect("delete");
        let region_obj = core.get(region).await.expect("get").expect("region");

        // The deleted zone, not torn down yet, still links to the region.
        let mut feed = core.subscribe();
        let mut batch = crate::SyncBatch::default();
        batch.purge(&region_obj);
        core.apply(&batch).await.expect("apply");
        let waiting = core.get(region).await.expect("get").expect("not purged");
        assert_eq!(
            waiting.fields["backend_status"],
            json!(format!("waiting on Zone {zone}: it still links here"))
        );
        assert_eq!(
            feed.recv().await.expect("change").kind,
            ChangeKind::Bookkeeping
        );

        // The rack goes, then the zone; purging each announces the deleted
        // object it linked to.
        assert!(core.purge(rack).await.expect("purge"));
        assert!(core.purge(zone).await.expect("purge"));
        let mut kinds = Vec::new();
        while let Ok(change) = feed.try_recv() {
            kinds.push((change.id, change.kind));
        }
        assert!(kinds.contains(&(rack, ChangeKind::Purged)), "{kinds:?}");
        assert!(kinds.contains(&(zone, ChangeKind::Deleted)), "{kinds:?}");
        assert!(kinds.contains(&(region, ChangeKind::Deleted)), "{kinds:?}");
        assert!(core.get(zone).await.expect("get").is_none());

        assert!(core.purge(region).await.expect("purge"));
        assert!(core.get(region).await.expect("get").is_none());
    }

    #[tokio::test]
    async fn objects_linking_to_each_other_are_purged_together() {
        let (_dir, core) = core().await;
        let (region, zone, rack, _note) = chain(&core).await;
        core.delete(region).await.expect("delete");
        let mut batch = crate::SyncBatch::default();
        for id in [region, zone, rack] {
            batch.purge(&core.get(id).await.expect("get").expect("exists"));
        }
        core.apply(&batch).await.expect("apply");
        for id in [region, zone, rack] {
            assert!(core.get(id).await.expect("get").is_none(), "{id} left");
        }
    }

    #[tokio::test]
    async fn a_live_object_keeps_a_deleted_one_it_links_to() {
        let (_dir, core) = core().await;
        let (region, _zone, _rack, _note) = chain(&core).await;
        // As data from before cascading could be: a live link to a
        // deleted object, written behind the core's back.
        let mut tx = core.begin().await.expect("begin");
        let table = tx.table("Region").expect("table");
        tx.store_tx()
            .update(
                &table,
                region,
                &Row::from([("deleted".to_owned(), SqlValue::Integer(1))]),
            )
            .await
            .expect("mark");
        tx.commit().await.expect("commit");
        assert!(!core.purge(region).await.expect("purge"));
        let kept = core.get(region).await.expect("get").expect("kept");
        assert!(
            kept.str_field("backend_status")
                .is_some_and(|s| s.starts_with("waiting on")),
            "{kept:?}"
        );
    }
}
