//! Which steps serve which model, and in which order models are synced.

use std::collections::{BTreeMap, HashMap};

use syncplane_xproto::Schema;

use crate::order::sync_order;
use crate::outcome::SyncStep;

/// The installed steps, resolved against the current models.
#[derive(Debug, Default)]
pub(crate) struct StepTable {
    /// Concrete model → the steps that sync it, in installation order.
    by_model: BTreeMap<String, Vec<SyncStep>>,
    /// Models with steps, in dependency order.
    order: Vec<String>,
    rank: HashMap<String, usize>,
}

impl StepTable {
    pub(crate) fn build(schema: &Schema, steps: impl IntoIterator<Item = SyncStep>) -> Self {
        let mut by_model: BTreeMap<String, Vec<SyncStep>> = BTreeMap::new();
        for step in steps {
            for observed in &step.observes {
                for model in schema.concrete_descendants(observed) {
                    let list = by_model.entry(model.name.clone()).or_default();
                    if !list
                        .iter()
                        .any(|s| s.service == step.service && s.name == step.name)
                    {
                        list.push(step.clone());
                    }
                }
            }
        }
        let models: Vec<String> = by_model.keys().cloned().collect();
        let order = sync_order(schema, &models);
        let rank = order
            .iter()
            .enumerate()
            .map(|(i, m)| (m.clone(), i))
            .collect();
        StepTable {
            by_model,
            order,
            rank,
        }
    }

    /// The steps of a concrete model; empty when none serve it.
    pub(crate) fn steps(&self, model: &str) -> &[SyncStep] {
        self.by_model
            .get(model)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// Whether some step serves `model`.
    pub(crate) fn serves(&self, model: &str) -> bool {
        self.by_model.contains_key(model)
    }

    /// Models with steps, dependencies first.
    pub(crate) fn order(&self) -> &[String] {
        &self.order
    }

    /// The position of `model` in [`StepTable::order`].
    pub(crate) fn rank(&self, model: &str) -> usize {
        self.rank.get(model).copied().unwrap_or(usize::MAX)
    }
}
