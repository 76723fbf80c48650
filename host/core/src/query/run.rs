//! Running a [`Query`]: candidates from the store in order, a chunk at a
//! time, each decided by the one authorization check; a page is the first
//! `page_size` objects the caller may read.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

use syncplane_store::{Condition, OrderKey, PageQuery, SqlValue, TableSpec};

use super::Query;
use crate::authz::Principal;
use crate::core::{Core, CoreTx, ValueColumns};
use crate::error::Result;
use crate::object::Object;

/// The most candidate rows read from one table per statement.
const MAX_CHUNK: u32 = 1000;
/// The fewest, so that a user who may read few objects does not cost a
/// statement per object.
const MIN_CHUNK: u32 = 32;

/// A page of a query's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Listing {
    /// The objects of the page the caller may read, in the query's order.
    pub objects: Vec<Object>,
    /// The cursor of the next page, when there are more objects the
    /// caller may read.
    pub next: Option<String>,
}

/// A concrete model whose table holds objects of the queried model.
struct Leaf<'r> {
    model: String,
    table: &'r TableSpec,
    /// Where each order key sits among the table's columns (`None`: `id`).
    keys: Vec<Option<usize>>,
}

/// A row read for a page: its leaf, id, values and order key values.
struct Candidate {
    leaf: usize,
    id: i64,
    values: Vec<SqlValue>,
    key: Vec<SqlValue>,
}

impl CoreTx {
    /// The page of `query` on `model` (and the models inheriting from it)
    /// that `who` may read.
    ///
    /// # Guarantees
    ///
    /// - Every object passes [`CoreTx::may`] (read access) before it is in
    ///   a page; objects `who` may not read neither fill a page nor show in
    ///   `next`: its cursor holds the key values of the page's last object.
    /// - Pages followed by their `next` cursors list every readable object
    ///   matching the filters once, in the query's order (ties broken by
    ///   id), whatever is created or deleted between two pages; objects
    ///   created meanwhile show if they sort after the cursor.
    ///
    /// # Caveats
    ///
    /// A page costs the candidates read to fill it: for a caller who may
    /// read a small share of the matching objects, many of them.
    ///
    /// # Errors
    ///
    /// [`crate::Error::UnknownModel`] or a database failure.
    pub async fn query_as(
        &mut self,
        who: &Principal,
        model: &str,
        query: &Query,
    ) -> Result<Listing> {
        let registry = Arc::clone(self.registry_arc());
        registry.model(model)?;
        let order = query.order();
        let mut leaves = Vec::new();
        for leaf in registry.schema().concrete_descendants(model) {
            let table = registry.table(&leaf.name)?;
            let keys = order
                .iter()
                .map(|k| table.columns.iter().position(|c| c.name == k.column))
                .collect();
            leaves.push(Leaf {
                model: leaf.name.clone(),
                table,
                keys,
            });
        }
        let decoders: Vec<&ValueColumns> = leaves
            .iter()
            .map(|l| registry.value_columns(&l.model))
            .collect::<Result<_>>()?;
        let conditions = query.conditions();
        let (after, mut skip) = query.start();
        let mut after: Option<Vec<SqlValue>> = after.map(<[SqlValue]>::to_vec);
        // One more than a page: whether it exists says whether `next` does.
        let want = query.page_size() as usize + 1;
        let mut page: Vec<(Object, Vec<SqlValue>)> = Vec::with_capacity(want);
        let mut snapshot = self.snapshot();
        let mut chunk = (want as u32 + skip).clamp(MIN_CHUNK, MAX_CHUNK);
        loop {
            let candidates = self
                .candidates(&leaves, &conditions, order, after.as_deref(), chunk)
                .await?;
            let exhausted = candidates.len() < chunk as usize;
            let Some(last) = candidates.last() else {
                break;
            };
            after = Some(last.key.clone());
            let mut keys = HashMap::with_capacity(candidates.len());
            let objects: Vec<Object> = candidates
                .into_iter()
                .map(|c| {
                    keys.insert(c.id, c.key);
                    decoders[c.leaf].decode(&leaves[c.leaf].model, c.id, c.values)
                })
                .collect();
            for object in self.retain_readable(who, objects, &mut snapshot).await? {
                if skip > 0 {
                    skip -= 1;
                    continue;
                }
                let key = keys.remove(&object.id).unwrap_or_default();
                page.push((object, key));
                if page.len() == want {
                    break;
                }
            }
            if page.len() == want || exhausted {
                break;
            }
            chunk = chunk.saturating_mul(2).min(MAX_CHUNK);
        }
        let more = page.len() == want;
        page.truncate(want - 1);
        let next = match page.last() {
            Some((_, key)) if more => Some(query.cursor_after(key)),
            _ => None,
        };
        let mut objects: Vec<Object> = page.into_iter().map(|(o, _)| o).collect();
        drop(decoders);
        crate::many::attach(self.store_tx(), &registry, &mut objects).await?;
        Ok(Listing { objects, next })
    }

    /// Up to `limit` rows after `after` in `order`, from every leaf's
    /// table, merged in that order.
    async fn candidates(
        &mut self,
        leaves: &[Leaf<'_>],
        conditions: &[Condition],
        order: &[OrderKey],
        after: Option<&[SqlValue]>,
        limit: u32,
    ) -> Result<Vec<Candidate>> {
        let query = PageQuery {
            conditions,
            order,
            after,
            limit,
        };
        let mut merged = Vec::new();
        for (i, leaf) in leaves.iter().enumerate() {
            let rows = self.store_tx().select_page(leaf.table, &query).await?;
            merged.extend(rows.into_iter().map(|(id, values)| {
                let key = leaf
                    .keys
                    .iter()
                    .map(|at| match at {
                        Some(at) => values[*at].clone(),
                        None => SqlValue::Integer(id),
                    })
                    .collect();
                Candidate {
                    leaf: i,
                    id,
                    values,
                    key,
                }
            }));
        }
        if leaves.len() > 1 {
            // Each table's rows are in order; SQLite's order is the one
            // `sql_cmp` gives, so the merge continues it.
            merged.sort_by(|a, b| compare_keys(order, &a.key, &b.key));
            merged.truncate(limit as usize);
        }
        Ok(merged)
    }
}

/// Compares two rows' key values in `order`.
fn compare_keys(order: &[OrderKey], a: &[SqlValue], b: &[SqlValue]) -> Ordering {
    order
        .iter()
        .zip(a.iter().zip(b))
        .map(|(key, (a, b))| {
            let o = a.sql_cmp(b);
            if key.descending { o.reverse() } else { o }
        })
        .find(|o| o.is_ne())
        .unwrap_or(Ordering::Equal)
}

impl Core {
    /// [`CoreTx::query_as`] in its own (read-only) transaction: one
    /// snapshot of the database for the whole page.
    ///
    /// # Errors
    ///
    /// As [`CoreTx::query_as`].
    pub async fn query_as(&self, who: &Principal, model: &str, query: &Query) -> Result<Listing> {
        self.begin().await?.query_as(who, model, query).await
    }
}
