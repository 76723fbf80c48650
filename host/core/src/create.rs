//! Creating objects, one or a batch: one path, a few statements per batch.
//!
//! A create is done in phases, so that a batch of `n` objects costs a few
//! statements rather than a few per object:
//!
//! 1. every input is checked and converted in memory (names, types,
//!    required fields, defaults); link targets are looked up once per
//!    batch, each target once;
//! 2. ids and change sequences are allocated for the whole batch, and the
//!    rows inserted several per statement;
//! 3. the objects are read back in one statement, and each is checked as
//!    every write is (validators, the user rules);
//! 4. their audit entries are written several per statement.
//!
//! A single create is a batch of one.

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::{Map, Value};
use syncplane_store::{Condition, SqlValue, TableSpec};

use crate::core::{CoreTx, LinkTargets};
use crate::error::{Error, Result};
use crate::object::{Change, ChangeKind, Object};
use crate::registry::{CHANGE_SEQ, FAILURES, stored_fields};
use crate::time::now_secs;

/// Most objects one batch create takes ([`CoreTx::create_many`]): 10,000.
/// A batch is one transaction on the store's only connection, and other
/// requests wait while it runs (about half a second at this size).
pub const MAX_BATCH: usize = 10_000;

/// Puts an item's index on an error of that item.
pub(crate) trait AtIndex<T> {
    /// The error as [`Error::Item`] of item `index`.
    fn at(self, index: usize) -> Result<T>;
}

impl<T> AtIndex<T> for Result<T> {
    fn at(self, index: usize) -> Result<T> {
        self.map_err(|error| error.at(index))
    }
}

impl CoreTx {
    /// Creates an object of the concrete model `model` from API field values.
    ///
    /// Fields not given take their xproto default; bookkeeping is set by the
    /// core. A `creator` link to a User not given is the acting user, as
    /// XOS's `Slice` did. A `ServiceInstance`-like model with an `owner_class_name` option
    /// and no owner gets the single existing object of that class as owner,
    /// as XOS does.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidField`] for an unknown, read-only, mistyped, missing
    /// or dangling field; [`Error::UnknownModel`]/[`Error::AbstractModel`].
    pub async fn create(&mut self, model: &str, input: Map<String, Value>) -> Result<Object> {
        match self.create_many(model, vec![input]).await {
            Ok(mut created) => created
                .pop()
                .ok_or_else(|| Error::Conflict(format!("creating a {model} created nothing"))),
            Err(Error::Item { error, .. }) => Err(*error),
            Err(e) => Err(e),
        }
    }

    /// Creates objects of the concrete model `model`, one per input, in
    /// this transaction: what [`CoreTx::create`] does for each, in a few
    /// statements for the whole batch. Returns them in input order, with
    /// increasing ids.
    ///
    /// # Guarantees
    ///
    /// All or nothing once the transaction is dropped on error: an error
    /// may leave some of the batch written in the transaction.
    ///
    /// # Caveats
    ///
    /// Values and links are checked against the objects as they were before
    /// the batch (an input cannot link to another object of its batch);
    /// validators run once the whole batch is written, so they see all of
    /// it. When several inputs are wrong, the one named is the first to
    /// fail in that order: values first, then validators.
    ///
    /// # Errors
    ///
    /// [`Error::Item`] naming the input (by its index) and wrapping what
    /// [`CoreTx::create`] would have said (an [`Error::QuotaExceeded`] when
    /// the model's owner would hold more objects than its quota allows,
    /// [`Core::set_object_quota`]); [`Error::UnknownModel`],
    /// [`Error::AbstractModel`], a database failure.
    pub async fn create_many(
        &mut self,
        model: &str,
        inputs: Vec<Map<String, Value>>,
    ) -> Result<Vec<Object>> {
        let registry = Arc::clone(self.registry_arc());
        let table = registry.table(model)?.clone();
        let model_ir = registry.model(model)?;
        let owner_class = model_ir
            .option_str("owner_class_name")
            .filter(|_| registry.schema().field(model, "owner").is_some());
        let now = now_secs();
        // XOS's `Slice.save()`: an object with a `creator` link to a User,
        // created by a user without naming one, is that user's.
        let creator = registry
            .schema()
            .field(model, "creator")
            .and_then(|f| f.link_target())
            .filter(|target| registry.schema().is_a("User", target))
            .and(self.actor().user().map(|user| user.id));
        let fields = crate::input::create_fields(&registry, model)?;
        // Every row has the same columns: the stored fields, then the
        // bookkeeping set here (which may be stored fields too: the value
        // set here wins, at the field's place).
        let mut columns: Vec<String> = fields.iter().map(|(_, c)| c.clone()).collect();
        let mut place = |name: &str| match columns.iter().position(|c| c == name) {
            Some(at) => at,
            None => {
                columns.push(name.to_owned());
                columns.len() - 1
            }
        };
        let bookkeeping = [
            place("created"),
            place("updated"),
            place("leaf_model_name"),
            place("backend_need_delete"),
            place(FAILURES),
            place("id"),
            place(CHANGE_SEQ),
        ];
        let mut links = LinkTargets::default();
        // XOS's default owner: looked up once for the batch.
        let mut default_owner: Option<Option<i64>> = None;
        let mut rows: Vec<Vec<SqlValue>> = Vec::with_capacity(inputs.len());
        let mut many_sets = Vec::new();
        for (index, mut input) in inputs.into_iter().enumerate() {
            input.remove("id");
            if let Some(user) = creator
                && input
                    .get("creator_id")
                    .or_else(|| input.get("creator"))
                    .is_none_or(Value::is_null)
            {
                input.remove("creator");
                input.insert("creator_id".into(), Value::from(user));
            }
            let many = crate::many::take_many(&registry, model, &mut input).at(index)?;
            if !many.is_empty() {
                many_sets.push((index, many));
            }
            if let Some(owner_class) = owner_class
                && input.get("owner_id").is_none_or(Value::is_null)
            {
                let owner = match default_owner {
                    Some(owner) => owner,
                    None => {
                        let owner = self.single_live(owner_class).await?;
                        default_owner = Some(owner);
                        owner
                    }
                };
                if let Some(owner) = owner {
                    input.insert("owner_id".into(), Value::from(owner));
                }
            }
            let values = crate::input::create_values_with(&fields, model, input, now).at(index)?;
            self.check_object_quota(model).await.at(index)?;
            let mut row = Vec::with_capacity(columns.len());
            for (field, value) in values {
                let value = self
                    .prepare_value(model, field, value, &mut links)
                    .await
                    .at(index)?;
                row.push(value);
            }
            row.resize(columns.len(), SqlValue::Null);
            let [created, updated, leaf, need_delete, failures, _, _] = bookkeeping;
            row[created] = SqlValue::Real(now);
            row[updated] = SqlValue::Real(now);
            row[leaf] = SqlValue::Text(model.to_owned());
            row[need_delete] = SqlValue::Integer(0);
            row[failures] = SqlValue::Integer(0);
            rows.push(row);
        }
        if rows.is_empty() {
            return Ok(Vec::new());
        }

        let first_seq = self.store_tx().next_change_seqs(rows.len()).await?;
        let ids = self.store_tx().allocate_ids(model, rows.len()).await?;
        let [.., id_at, seq_at] = bookkeeping;
        for ((row, id), seq) in rows.iter_mut().zip(&ids).zip(first_seq..) {
            row[id_at] = SqlValue::Integer(*id);
            row[seq_at] = SqlValue::Integer(seq);
        }
        if rows.len() > 1 {
            // The store's unique indexes refuse a clash without saying which
            // item made it: find it first, so the error names the item.
            if let Some((index, error)) = self.unique_clash(model, &table, &columns, &rows).await? {
                return Err(error.at(index));
            }
        }
        self.store_tx()
            .insert_values(&table, &columns, rows)
            .await
            .map_err(|e| registry.write_error(model, e))?;
        for (index, many) in &many_sets {
            self.write_many(model, ids[*index], many, &mut links)
                .await
                .at(*index)?;
        }
        self.note_user_write(model);
        for id in &ids {
            self.note(Change {
                id: *id,
                model: model.to_owned(),
                kind: ChangeKind::Created,
            });
        }

        let created = self.read_created(model, &ids).await?;
        for (index, object) in created.iter().enumerate() {
            self.check_written(None, object).await.at(index)?;
        }
        let writable: Vec<String> = stored_fields(registry.schema(), model)
            .into_iter()
            .filter(|f| f.is_user_writable())
            .map(|f| f.column_name())
            .collect();
        let entries = created.iter().map(|object| {
            let set: Map<String, Value> = writable
                .iter()
                .filter_map(|c| object.fields.get(c).map(|v| (c.clone(), v.clone())))
                .collect();
            (object.id, set)
        });
        self.audit_many("create", model, entries).await?;
        Ok(created)
    }

    /// The first of `rows` (values in the order of `columns`) whose values
    /// of a unique index of `table` another row of the batch, or a live
    /// object, already has; with the error naming its field.
    async fn unique_clash(
        &mut self,
        model: &str,
        table: &TableSpec,
        columns: &[String],
        rows: &[Vec<SqlValue>],
    ) -> Result<Option<(usize, Error)>> {
        let registry = Arc::clone(self.registry_arc());
        for index in table.partial_indexes.iter().filter(|i| i.unique) {
            let Some(at): Option<Vec<usize>> = index
                .columns
                .iter()
                .map(|c| columns.iter().position(|k| k == c))
                .collect()
            else {
                continue;
            };
            let key = |row: &[SqlValue]| -> Option<String> {
                let parts: Vec<&SqlValue> = at.iter().map(|&i| &row[i]).collect();
                (!parts.iter().any(|v| **v == SqlValue::Null)).then(|| format!("{parts:?}"))
            };
            let clash = |item: usize| {
                let error = registry.write_error(
                    model,
                    syncplane_store::Error::Unique {
                        table: table.name.clone(),
                        columns: index.columns.clone(),
                    },
                );
                Some((item, error))
            };
            let mut seen = HashSet::new();
            for (item, row) in rows.iter().enumerate() {
                if let Some(k) = key(row)
                    && !seen.insert(k)
                {
                    return Ok(clash(item));
                }
            }
            // Live objects with one of the batch's first-column values,
            // compared on the whole key.
            let first: Vec<SqlValue> = rows
                .iter()
                .map(|r| r[at[0]].clone())
                .filter(|v| *v != SqlValue::Null)
                .collect();
            let stored_at: Vec<usize> = index
                .columns
                .iter()
                .filter_map(|c| table.columns.iter().position(|k| &k.name == c))
                .collect();
            let mut existing = HashSet::new();
            for chunk in first.chunks(10_000) {
                let conditions = [
                    Condition::Sql(crate::registry::LIVE),
                    Condition::In(index.columns[0].clone(), chunk.to_vec()),
                ];
                for (_, values) in self
                    .store_tx()
                    .select_values(table, &conditions, None)
                    .await?
                {
                    let parts: Vec<&SqlValue> = stored_at.iter().map(|&i| &values[i]).collect();
                    existing.insert(format!("{parts:?}"));
                }
            }
            if let Some(item) = rows
                .iter()
                .position(|row| key(row).is_some_and(|k| existing.contains(&k)))
            {
                return Ok(clash(item));
            }
        }
        Ok(None)
    }

    /// The only live (not deleted) object of `model`, if there is exactly
    /// one.
    async fn single_live(&mut self, model: &str) -> Result<Option<i64>> {
        let candidates = self.list(model, &[]).await?;
        let mut live = candidates
            .iter()
            .filter(|o| o.fields.get("deleted") != Some(&Value::Bool(true)));
        Ok(match (live.next(), live.next()) {
            (Some(only), None) => Some(only.id),
            _ => None,
        })
    }

    /// The objects `ids` of `model` just inserted, in the order of `ids`
    /// (increasing), read in one statement.
    async fn read_created(&mut self, model: &str, ids: &[i64]) -> Result<Vec<Object>> {
        let (Some(&first), Some(&last)) = (ids.first(), ids.last()) else {
            return Ok(Vec::new());
        };
        let registry = Arc::clone(self.registry_arc());
        let table = registry.table(model)?;
        let columns = registry.value_columns(model)?;
        let conditions = [
            Condition::AtLeast("id".into(), SqlValue::Integer(first)),
            Condition::AtMost("id".into(), SqlValue::Integer(last)),
        ];
        let wanted: HashSet<i64> = ids.iter().copied().collect();
        let mut created: Vec<Object> = self
            .store_tx()
            .select_values(table, &conditions, None)
            .await?
            .into_iter()
            .filter(|(id, _)| wanted.contains(id))
            .map(|(id, values)| columns.decode(model, id, values))
            .collect();
        if created.len() != ids.len() {
            return Err(Error::Conflict(format!(
                "{} of {} new {model} objects could be read back",
                created.len(),
                ids.len()
            )));
        }
        if !registry.joins(model).is_empty() {
            crate::many::attach(self.store_tx(), &registry, &mut created).await?;
        }
        Ok(created)
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

    async fn core() -> (tempfile::TempDir, Core) {
        let dir = tempfile::tempdir().expect("tempdir");
        let core = Core::open(&dir.path().join("db.sqlite"))
            .await
            .expect("open");
        (dir, core)
    }

    #[tokio::test]
    async fn a_batch_creates_every_object_with_increasing_ids_sequences_and_audit_entries() {
        let (_dir, core) = core().await;
        let inputs = (0..1200)
            .map(|i| map(json!({"name": format!("site-{i}"), "login_base": format!("s{i}")})))
            .collect();
        let mut tx = core.begin().await.expect("begin");
        let created = tx.create_many("Site", inputs).await.expect("created");
        tx.commit().await.expect("commit");
        assert_eq!(created.len(), 1200);
        for pair in created.windows(2) {
            assert!(pair[0].id < pair[1].id);
            assert!(pair[0].sync.change_seq < pair[1].sync.change_seq);
        }
        assert_eq!(created[7].fields["name"], "site-7");
        assert_eq!(created[7].fields["enabled"], true, "defaults are set");
        let read = core.get(created[7].id).await.expect("get").expect("exists");
        assert_eq!(read.fields, created[7].fields);
        let audit = core
            .audit_log(&crate::AuditQuery {
                model: Some("Site".into()),
                ..Default::default()
            })
            .await
            .expect("audit");
        assert_eq!(audit.len(), 1200);
        assert_eq!(audit[1199].object_id, created[1199].id);
        assert_eq!(audit[1199].fields["name"], "site-1199");
    }

    #[tokio::test]
    async fn a_bad_item_names_its_index_and_field_and_nothing_is_kept() {
        let (_dir, core) = core().await;
        let inputs = vec![
            map(json!({"name": "a"})),
            map(json!({"name": "b"})),
            map(json!({"login_base": "c"})),
        ];
        let mut tx = core.begin().await.expect("begin");
        let error = tx.create_many("Site", inputs).await.expect_err("refused");
        drop(tx);
        assert_eq!(error.to_string(), "[2].name: is required");
        assert!(matches!(error, Error::Item { index: 2, .. }));
        assert!(core.list("Site").await.expect("list").is_empty());
    }

    #[tokio::test]
    async fn links_of_a_batch_are_checked_against_existing_objects() {
        let (_dir, core) = core().await;
        let site = core
            .create("Site", map(json!({"name": "s"})))
            .await
            .expect("site");
        let mut tx = core.begin().await.expect("begin");
        let inputs = vec![
            map(json!({"name": "one", "site_id": site.id})),
            map(json!({"name": "two", "site_id": site.id})),
        ];
        let created = tx.create_many("Service", inputs).await.expect("created");
        assert_eq!(created[1].fields["site_id"], site.id);
        let inputs = vec![
            map(json!({"name": "three", "site_id": site.id})),
            map(json!({"name": "four", "site_id": site.id + 1000})),
        ];
        let error = tx
            .create_many("Service", inputs)
            .await
            .expect_err("dangling");
        assert_eq!(
            error.to_string(),
            format!("[1].site: Site {} does not exist", site.id + 1000)
        );
    }
}
