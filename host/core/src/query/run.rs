//! Running a [`Query`]: candidates from the store in order, a chunk at a
//! time, each decided by the one authorization check; a page is the first
//! `page_size` objects the caller may read.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

use syncplane_store::{Condition, OrderKey, PageQuery, SqlValue, TableSpec};

use super::Query;
use crate::authz::{Principal, Snapshot, retain_readable_held};
use crate::core::{Core, CoreTx, ValueColumns};
use crate::error::Result;
use crate::object::Object;
use crate::registry::Registry;

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

impl Leaf<'_> {
    /// The order key values of the row `id` with `values`.
    fn key(&self, id: i64, values: &[SqlValue]) -> Vec<SqlValue> {
        self.keys
            .iter()
            .map(|at| match at {
                Some(at) => values.get(*at).cloned().unwrap_or(SqlValue::Null),
                None => SqlValue::Integer(id),
            })
            .collect()
    }
}

/// The concrete models whose tables hold objects of `model`, with where
/// each key of `order` sits among their columns.
fn leaves<'r>(registry: &'r Registry, model: &str, order: &[OrderKey]) -> Result<Vec<Leaf<'r>>> {
    registry.model(model)?;
    registry
        .schema()
        .concrete_descendants(model)
        .into_iter()
        .map(|leaf| {
            let table = registry.table(&leaf.name)?;
            let keys = order
                .iter()
                .map(|k| table.columns.iter().position(|c| c.name == k.column))
                .collect();
            Ok(Leaf {
                model: leaf.name.clone(),
                table,
                keys,
            })
        })
        .collect()
}

/// A page of `want` = page size + 1 readable objects (fewer after the
/// last) with their key values: the page's objects and its `next` cursor.
fn listing(query: &Query, mut page: Vec<(Object, Vec<SqlValue>)>) -> (Vec<Object>, Option<String>) {
    let want = query.page_size() as usize + 1;
    let more = page.len() == want;
    page.truncate(want - 1);
    let next = match page.last() {
        Some((_, key)) if more => Some(query.cursor_after(key)),
        _ => None,
    };
    (page.into_iter().map(|(o, _)| o).collect(), next)
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
        let order = query.order();
        let leaves = leaves(&registry, model, order)?;
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
        let (mut objects, next) = listing(query, page);
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
                let key = leaf.key(id, &values);
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
    /// [`CoreTx::query_as`] in its own read-only transaction
    /// ([`Core::begin_read`]): one snapshot of the database for the whole
    /// page.
    ///
    /// # Errors
    ///
    /// As [`CoreTx::query_as`].
    pub async fn query_as(&self, who: &Principal, model: &str, query: &Query) -> Result<Listing> {
        if let Some(listing) = self.query_in_one_read(who, model, query).await? {
            return Ok(listing);
        }
        self.begin_read().await?.query_as(who, model, query).await
    }

    /// The page of [`CoreTx::query_as`] from one statement outside a
    /// transaction (a statement is one snapshot), when that is enough to
    /// answer it as the transaction would: the model has one table and no
    /// many-to-many fields, every row read is decided from itself and the
    /// user alone, and the rows fill the page or are all there are. `None`
    /// otherwise. Spares the `BEGIN` and `ROLLBACK` round trips of most
    /// lists (an admin's, or any list whose policy needs no other data).
    pub(super) async fn query_in_one_read(
        &self,
        who: &Principal,
        model: &str,
        query: &Query,
    ) -> Result<Option<Listing>> {
        let registry = self.registry();
        let order = query.order();
        let leaves = leaves(&registry, model, order)?;
        let [leaf] = leaves.as_slice() else {
            return Ok(None);
        };
        if !registry.joins(&leaf.model).is_empty() {
            return Ok(None);
        }
        let decoder = registry.value_columns(&leaf.model)?;
        let (after, skip) = query.start();
        let want = query.page_size() as usize + 1;
        let limit = u32::try_from(want)
            .unwrap_or(u32::MAX)
            .saturating_add(skip)
            .min(MAX_CHUNK);
        let conditions = query.conditions();
        let rows = self
            .store
            .select_page(
                leaf.table,
                &PageQuery {
                    conditions: &conditions,
                    order,
                    after,
                    limit,
                },
            )
            .await?;
        let exhausted = rows.len() < limit as usize;
        let candidates: Vec<(Object, Vec<SqlValue>)> = rows
            .into_iter()
            .map(|(id, values)| {
                let key = leaf.key(id, &values);
                (decoder.decode(&leaf.model, id, values), key)
            })
            .collect();
        let mut snapshot = Snapshot::new(Arc::clone(&registry));
        let Some(readable) = retain_readable_held(who, candidates, &mut snapshot) else {
            return Ok(None);
        };
        let page: Vec<_> = readable
            .into_iter()
            .skip(skip as usize)
            .take(want)
            .collect();
        if page.len() < want && !exhausted {
            // Rows the caller may not read (or skipped) left the page short
            // of what the table may still hold.
            return Ok(None);
        }
        let (objects, next) = listing(query, page);
        Ok(Some(Listing { objects, next }))
    }
}
