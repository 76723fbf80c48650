//! What validation and lookups ask of a schema again and again, worked out
//! once when models are added: each model's ancestors, and the named
//! reverse relations by the model their link points to.
//!
//! Without it, checking a file walked the inheritance of every model for
//! every link of every model (`reverse_links` calls `is_a` per field).

use std::collections::{BTreeMap, HashMap};

use crate::ir::{FieldType, Model};

use super::ReverseLink;

#[derive(Debug, Clone, Default)]
pub(super) struct Index {
    /// Each model's ancestors that are models, nearest first; `None` when
    /// the model inherits from itself.
    ancestors: HashMap<String, Option<Vec<String>>>,
    /// Every named reverse relation, models in name order, fields in
    /// declaration order.
    reverse: Vec<ReverseLink>,
    /// Positions in `reverse`, by the model the link points to.
    reverse_by_target: HashMap<String, Vec<usize>>,
}

impl Index {
    pub(super) fn build(models: &BTreeMap<String, Model>) -> Index {
        let mut index = Index::default();
        for model in models.values() {
            index
                .ancestors
                .insert(model.name.clone(), ancestors_of(models, &model.name));
            for field in &model.fields {
                if let FieldType::Link {
                    target,
                    reverse: Some(reverse),
                    ..
                } = &field.ty
                    && reverse != "+"
                {
                    index
                        .reverse_by_target
                        .entry(target.clone())
                        .or_default()
                        .push(index.reverse.len());
                    index.reverse.push(ReverseLink {
                        name: reverse.clone(),
                        peer: model.name.clone(),
                        field: field.name.clone(),
                    });
                }
            }
        }
        index
    }

    /// The ancestors of `name`, nearest first (none for an unknown model),
    /// or `None` when it inherits from itself.
    pub(super) fn ancestors(&self, name: &str) -> Option<&[String]> {
        match self.ancestors.get(name) {
            Some(found) => found.as_deref(),
            None => Some(&[]),
        }
    }

    /// The named reverse relations on `target`: links to `target` or one of
    /// its ancestors, in model then field order.
    pub(super) fn reverse_links_iter(&self, target: &str) -> impl Iterator<Item = &ReverseLink> {
        let ancestors = self.ancestors(target).unwrap_or_default();
        let mut positions: Vec<usize> = std::iter::once(target)
            .chain(ancestors.iter().map(String::as_str))
            .filter_map(|t| self.reverse_by_target.get(t))
            .flatten()
            .copied()
            .collect();
        positions.sort_unstable();
        positions.into_iter().map(|i| &self.reverse[i])
    }
}

/// Ancestors from the nearest outwards (depth first, as bases are listed),
/// or `None` on a cycle.
fn ancestors_of(models: &BTreeMap<String, Model>, name: &str) -> Option<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    let mut stack: Vec<&str> = models
        .get(name)
        .map(|m| m.bases.iter().rev().map(String::as_str).collect())
        .unwrap_or_default();
    while let Some(base) = stack.pop() {
        if base == name {
            return None;
        }
        if out.iter().any(|o| o == base) {
            continue;
        }
        if let Some(model) = models.get(base) {
            out.push(model.name.clone());
            stack.extend(model.bases.iter().rev().map(String::as_str));
        }
    }
    Some(out)
}
