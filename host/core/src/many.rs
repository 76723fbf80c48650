//! Many-to-many links (`manytomany` fields).
//!
//! Each concrete model keeps one join table per `manytomany` field
//! (`mm_<model>_<field>`, rows of `src` → `dst`). As in XOS, the API shows
//! and takes such a field as a list of ids named `<field>_ids`
//! (`permitted_slices_ids: [3, 7]`); writing the list replaces the set.
//! Targets are checked as for any link: they exist, are of the field's
//! model and are not deleted. Purging an object removes the join rows on
//! both sides (as Django does), never the objects at the other end.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value};
use syncplane_store::{Column, ColumnType, Condition, SqlValue, StoreTx, TableSpec};
use syncplane_xproto::{Field, Schema};

use crate::core::{CoreTx, LinkTargets};
use crate::error::{Error, Result};
use crate::object::Object;
use crate::registry::Registry;

/// Most ids one `<field>_ids` list may hold.
pub const MAX_MANY: usize = 10_000;

/// Most ids one `IN (...)` lists: under SQLite's bound-parameter limit.
const IN_CHUNK: usize = 10_000;

/// The join table of one `manytomany` field of one concrete model.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Join {
    /// The field's name (without `_ids`).
    pub field: String,
    /// The model the field links to.
    pub target: String,
    /// The table: `src` (this model's object) → `dst` (the target).
    pub table: TableSpec,
}

/// The API name of a many-to-many field: `<field>_ids`.
pub fn ids_name(field: &str) -> String {
    format!("{field}_ids")
}

/// The join tables of the concrete model `model`, one per `manytomany`
/// field (own or inherited), in field order.
pub(crate) fn joins_of(schema: &Schema, model: &str) -> Vec<Join> {
    schema
        .all_fields(model)
        .into_iter()
        .filter(|f| f.is_many())
        .filter_map(|f| {
            Some(Join {
                field: f.name.clone(),
                target: f.link_target()?.to_owned(),
                table: join_spec(model, &f.name),
            })
        })
        .collect()
}

fn join_spec(model: &str, field: &str) -> TableSpec {
    let column = |name: &str| Column {
        name: name.to_owned(),
        ty: ColumnType::Integer,
        indexed: true,
        default: None,
    };
    TableSpec {
        name: format!(
            "mm_{}_{}",
            model.to_ascii_lowercase(),
            field.to_ascii_lowercase()
        ),
        columns: vec![column("src"), column("dst")],
        partial_indexes: Vec::new(),
    }
}

/// Takes the `<field>_ids` values of the many-to-many fields of `model` out
/// of `input`, checked to be lists of at most [`MAX_MANY`] ids; a field
/// not given is absent from the answer.
///
/// # Errors
///
/// [`Error::InvalidField`] naming the field.
pub(crate) fn take_many(
    registry: &Registry,
    model: &str,
    input: &mut Map<String, Value>,
) -> Result<Vec<(String, Vec<i64>)>> {
    let mut out = Vec::new();
    for join in registry.joins(model) {
        let name = ids_name(&join.field);
        let Some(value) = input.remove(&name).or_else(|| input.remove(&join.field)) else {
            continue;
        };
        let wrong = || Error::invalid(model, &name, format!("expected a list of ids, got {value}"));
        let items = match &value {
            Value::Array(items) => items,
            Value::Null => &Vec::new(),
            _ => return Err(wrong()),
        };
        if items.len() > MAX_MANY {
            return Err(Error::invalid(
                model,
                &name,
                format!("{} ids, more than the {MAX_MANY} allowed", items.len()),
            ));
        }
        let mut ids = items
            .iter()
            .map(Value::as_i64)
            .collect::<Option<Vec<i64>>>()
            .ok_or_else(wrong)?;
        ids.sort_unstable();
        ids.dedup();
        out.push((join.field.clone(), ids));
    }
    Ok(out)
}

/// Reads the many-to-many links of `objects` into their fields as
/// `<field>_ids` lists (sorted; empty when none).
pub(crate) async fn attach(
    tx: &mut StoreTx,
    registry: &Registry,
    objects: &mut [Object],
) -> Result<()> {
    let mut by_model: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (at, object) in objects.iter().enumerate() {
        by_model.entry(object.model.as_str()).or_default().push(at);
    }
    let mut found: Vec<(usize, String, Vec<i64>)> = Vec::new();
    for (model, places) in by_model {
        for join in registry.joins(model) {
            let ids: Vec<i64> = places.iter().map(|&at| objects[at].id).collect();
            let mut links: HashMap<i64, Vec<i64>> = HashMap::new();
            for chunk in ids.chunks(IN_CHUNK) {
                let condition = Condition::In(
                    "src".into(),
                    chunk.iter().map(|id| SqlValue::Integer(*id)).collect(),
                );
                for (_, row) in tx.select(&join.table, &[condition], None).await? {
                    if let (Some(SqlValue::Integer(src)), Some(SqlValue::Integer(dst))) =
                        (row.get("src"), row.get("dst"))
                    {
                        links.entry(*src).or_default().push(*dst);
                    }
                }
            }
            for &at in &places {
                let mut dsts = links.remove(&objects[at].id).unwrap_or_default();
                dsts.sort_unstable();
                found.push((at, ids_name(&join.field), dsts));
            }
        }
    }
    for (at, name, dsts) in found {
        objects[at].fields.insert(name, Value::from(dsts));
    }
    Ok(())
}

impl CoreTx {
    /// Replaces the many-to-many links of the object `id` of `model` with
    /// `sets` (field, target ids), after checking every target as a link.
    /// Returns whether any set changed.
    pub(crate) async fn write_many(
        &mut self,
        model: &str,
        id: i64,
        sets: &[(String, Vec<i64>)],
        links: &mut LinkTargets,
    ) -> Result<bool> {
        let registry = std::sync::Arc::clone(self.registry_arc());
        let joins = registry.joins(model);
        let mut changed = false;
        for (field_name, ids) in sets {
            let Some(join) = joins.iter().find(|j| &j.field == field_name) else {
                continue;
            };
            let field: &Field = registry
                .schema()
                .field(model, field_name)
                .ok_or_else(|| Error::invalid(model, field_name, "unknown field"))?;
            for target in ids {
                self.prepare_value(model, field, Value::from(*target), links)
                    .await?;
            }
            let src = Condition::Eq("src".into(), SqlValue::Integer(id));
            let mut current: Vec<i64> = self
                .store_tx()
                .select(&join.table, std::slice::from_ref(&src), None)
                .await?
                .into_iter()
                .filter_map(|(_, row)| match row.get("dst") {
                    Some(SqlValue::Integer(dst)) => Some(*dst),
                    _ => None,
                })
                .collect();
            current.sort_unstable();
            current.dedup();
            if &current == ids {
                continue;
            }
            changed = true;
            self.store_tx().delete_where(&join.table, &[src]).await?;
            let rows = ids
                .iter()
                .map(|dst| vec![SqlValue::Integer(id), SqlValue::Integer(*dst)])
                .collect();
            self.store_tx()
                .insert_values(&join.table, &["src".into(), "dst".into()], rows)
                .await?;
        }
        Ok(changed)
    }

    /// Removes the join rows of the purged object `id` of `model`: its own
    /// links and every many-to-many link to it.
    pub(crate) async fn unlink_many(&mut self, model: &str, id: i64) -> Result<()> {
        let registry = std::sync::Arc::clone(self.registry_arc());
        for join in registry.joins(model) {
            let src = Condition::Eq("src".into(), SqlValue::Integer(id));
            self.store_tx().delete_where(&join.table, &[src]).await?;
        }
        for join in registry.all_joins() {
            if registry.schema().is_a(model, &join.target) {
                let dst = Condition::Eq("dst".into(), SqlValue::Integer(id));
                self.store_tx().delete_where(&join.table, &[dst]).await?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Core;
    use serde_json::json;

    fn map(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    /// A site, a user, two slices and a network template.
    async fn world(core: &Core) -> (i64, i64, i64, i64) {
        let site = core
            .create("Site", map(json!({"name": "s"})))
            .await
            .expect("site");
        let user = core
            .create(
                "User",
                map(json!({"email": "u@example.org", "site_id": site.id})),
            )
            .await
            .expect("user");
        let slice =
            |name: &str| map(json!({"name": name, "site_id": site.id, "creator_id": user.id}));
        let a = core.create("Slice", slice("a")).await.expect("slice a");
        let b = core.create("Slice", slice("b")).await.expect("slice b");
        let template = core
            .create("NetworkTemplate", map(json!({"name": "t"})))
            .await
            .expect("template");
        (a.id, b.id, template.id, user.id)
    }

    #[tokio::test]
    async fn many_to_many_links_are_written_read_replaced_checked_and_unlinked_on_purge() {
        let dir = tempfile::tempdir().expect("tempdir");
        let core = Core::open(&dir.path().join("db.sqlite"))
            .await
            .expect("open");
        let (a, b, template, _) = world(&core).await;
        let network = core
            .create(
                "Network",
                map(json!({"name": "n", "template_id": template, "owner_id": a,
                           "permitted_slices_ids": [b, a, b]})),
            )
            .await
            .expect("network");
        assert_eq!(network.fields["permitted_slices_ids"], json!([a, b]));
        let read = core.get(network.id).await.expect("get").expect("exists");
        assert_eq!(read.fields["permitted_slices_ids"], json!([a, b]));
        let listed = core.list("Network").await.expect("list");
        assert_eq!(listed[0].fields["permitted_slices_ids"], json!([a, b]));
        // Steps see them too.
        let pending = core.pending("Network", None).await.expect("pending");
        assert_eq!(pending[0].fields["permitted_slices_ids"], json!([a, b]));

        // Writing the list replaces the set and is a change.
        let before = read.sync.change_seq;
        let updated = core
            .update(network.id, map(json!({"permitted_slices_ids": [b]})))
            .await
            .expect("update");
        assert_eq!(updated.fields["permitted_slices_ids"], json!([b]));
        assert!(updated.sync.change_seq > before);
        // The same set again is not.
        let same = core
            .update(network.id, map(json!({"permitted_slices_ids": [b]})))
            .await
            .expect("update");
        assert_eq!(same.sync.change_seq, updated.sync.change_seq);

        // Targets are checked as links are.
        for (value, message) in [
            (
                json!([999_999]),
                "Network.permitted_slices: Slice 999999 does not exist",
            ),
            (
                json!([template]),
                &format!("Network.permitted_slices: NetworkTemplate {template} is not a Slice"),
            ),
            (
                json!("x"),
                "Network.permitted_slices_ids: expected a list of ids, got \"x\"",
            ),
        ] {
            let error = core
                .update(network.id, map(json!({"permitted_slices_ids": value})))
                .await
                .expect_err("refused");
            assert_eq!(error.to_string(), message);
        }

        // Purging a target removes the link, not the network.
        core.delete(b).await.expect("delete");
        assert!(
            core.purge(b).await.expect("purge"),
            "nothing links to b by a column"
        );
        let read = core.get(network.id).await.expect("get").expect("exists");
        assert_eq!(read.fields["permitted_slices_ids"], json!([]));
    }

    #[tokio::test]
    async fn policies_read_many_to_many_links() {
        let dir = tempfile::tempdir().expect("tempdir");
        let core = Core::open(&dir.path().join("db.sqlite"))
            .await
            .expect("open");
        let (a, b, template, _) = world(&core).await;
        let network = core
            .create(
                "Network",
                map(json!({"name": "n", "template_id": template, "owner_id": a,
                           "permitted_slices_ids": [b]})),
            )
            .await
            .expect("network");
        // NetworkSlice's validator: the slice is permitted, or owns the network.
        core.create(
            "NetworkSlice",
            map(json!({"network_id": network.id, "slice_id": b})),
        )
        .await
        .expect("b is permitted");
        core.update(network.id, map(json!({"permitted_slices_ids": []})))
            .await
            .expect("update");
        let a = core.get(a).await.expect("get").expect("a");
        let c = json!({"name": "c", "site_id": a.fields["site_id"], "creator_id": a.fields["creator_id"]});
        let third = core.create("Slice", map(c)).await.expect("slice c");
        let error = core
            .create(
                "NetworkSlice",
                map(json!({"network_id": network.id, "slice_id": third.id})),
            )
            .await
            .expect_err("c is not permitted");
        assert!(
            error.to_string().contains("is not allowed to connect"),
            "{error}"
        );
    }
}
