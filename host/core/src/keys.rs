//! Finding many objects by their key fields at once (TOSCA's `tosca_key`s):
//! one statement per model table for a whole batch of keys, instead of one
//! statement (and, without an index, one table scan) per key.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;
use syncplane_store::{Condition, SqlValue};
use syncplane_xproto::Access;

use crate::authz::Principal;
use crate::core::{CoreTx, decode};
use crate::error::{Error, Result};
use crate::object::Object;
use crate::registry::{stored_fields, to_sql};

/// Values bound in one `IN (...)`, well under SQLite's 32,766.
const IN_CHUNK: usize = 10_000;

/// A key tuple as a map key (`SqlValue` holds floats, so is not `Hash`).
fn tuple_key(values: &[SqlValue]) -> String {
    format!("{values:?}")
}

impl CoreTx {
    /// For each of `wanted` (values of the fields `keys`, in that order),
    /// the first object by id of `model` or a model inheriting it whose
    /// key fields hold those values, is not deleted, and which `who` may
    /// read; `None` where there is none. What [`CoreTx::list_as`] with the
    /// equalities as filter, then the first live object, gives for each,
    /// in one statement per table.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownModel`]; [`Error::InvalidField`] for an unknown key
    /// field or a value of the wrong type; a database failure.
    pub async fn find_by_keys_as(
        &mut self,
        who: &Principal,
        model: &str,
        keys: &[String],
        wanted: &[Vec<Value>],
    ) -> Result<Vec<Option<Object>>> {
        let registry = Arc::clone(self.registry_arc());
        registry.model(model)?;
        let Some(first_key) = keys.first() else {
            return Ok(vec![None; wanted.len()]);
        };
        let mut found: Vec<Option<Object>> = vec![None; wanted.len()];
        // Which of `wanted` each key tuple answers.
        let mut slots: HashMap<String, Vec<usize>> = HashMap::new();
        let mut first_values: Vec<SqlValue> = Vec::new();
        for leaf in registry.schema().concrete_descendants(model) {
            let fields = stored_fields(registry.schema(), &leaf.name);
            let mut key_fields = Vec::with_capacity(keys.len());
            for key in keys {
                let field = fields
                    .iter()
                    .find(|f| &f.name == key || &f.column_name() == key)
                    .ok_or_else(|| Error::invalid(model, key, "unknown field"))?;
                key_fields.push(*field);
            }
            if slots.is_empty() {
                for (slot, values) in wanted.iter().enumerate() {
                    let tuple = key_fields
                        .iter()
                        .zip(values)
                        .map(|(field, value)| to_sql(model, field, value))
                        .collect::<Result<Vec<SqlValue>>>()?;
                    if let Some(first) = tuple.first() {
                        first_values.push(first.clone());
                    }
                    slots.entry(tuple_key(&tuple)).or_default().push(slot);
                }
            }
            let table = registry.table(&leaf.name)?;
            let columns: Vec<String> = key_fields.iter().map(|f| f.column_name()).collect();
            let first_column = columns
                .first()
                .cloned()
                .unwrap_or_else(|| first_key.clone());
            let mut candidates = Vec::new();
            for chunk in first_values.chunks(IN_CHUNK) {
                let condition = Condition::In(first_column.clone(), chunk.to_vec());
                candidates.extend(self.store_tx().select(table, &[condition], None).await?);
            }
            for (id, row) in candidates {
                let tuple: Vec<SqlValue> = columns
                    .iter()
                    .map(|c| row.get(c).cloned().unwrap_or(SqlValue::Null))
                    .collect();
                let Some(waiting) = slots.get(&tuple_key(&tuple)) else {
                    continue;
                };
                if waiting
                    .iter()
                    .all(|&slot| found[slot].as_ref().is_some_and(|o: &Object| o.id < id))
                {
                    continue;
                }
                let object = decode(&registry, &leaf.name, id, row);
                if object.fields.get("deleted") == Some(&Value::Bool(true)) {
                    continue;
                }
                for &slot in waiting {
                    if found[slot].as_ref().is_none_or(|o| o.id > id) {
                        found[slot] = Some(object.clone());
                    }
                }
            }
        }
        // Hidden objects do not exist for `who`: look again past them.
        if matches!(who, Principal::User(_)) {
            let mut snapshot = self.snapshot();
            for (entry, values) in found.iter_mut().zip(wanted) {
                let Some(object) = entry.take() else {
                    continue;
                };
                if self.may(who, Access::Read, &object, &mut snapshot).await? {
                    *entry = Some(object);
                } else {
                    // Rare: fall back to the one-by-one lookup.
                    let filter: Vec<(String, Value)> =
                        keys.iter().cloned().zip(values.iter().cloned()).collect();
                    *entry = self
                        .list_as(who, model, &filter)
                        .await?
                        .into_iter()
                        .find(|o| o.fields.get("deleted") != Some(&Value::Bool(true)));
                }
            }
        }
        Ok(found)
    }
}
