//! Which steps serve which model, and in which order models are synced.

use std::collections::{BTreeMap, HashMap};

use syncplane_xproto::Schema;

use crate::order::sync_order_with;
use crate::outcome::SyncStep;
use crate::policy::ModelPolicy;

/// The installed steps, resolved against the current models.
#[derive(Debug, Default)]
pub(crate) struct StepTable {
    /// Concrete model → the steps that sync it, in installation order.
    by_model: BTreeMap<String, Vec<SyncStep>>,
    /// Models with steps, in dependency order.
    order: Vec<String>,
    rank: HashMap<String, usize>,
    /// Concrete model → its model policies, in installation order.
    policies: BTreeMap<String, Vec<ModelPolicy>>,
    /// Models with policies, in dependency order.
    policed_order: Vec<String>,
}

impl StepTable {
    pub(crate) fn build(
        schema: &Schema,
        steps: impl IntoIterator<Item = SyncStep>,
        model_policies: impl IntoIterator<Item = ModelPolicy>,
        extra_deps: &[(String, String)],
    ) -> Self {
        let mut policies: BTreeMap<String, Vec<ModelPolicy>> = BTreeMap::new();
        for policy in model_policies {
            for model in schema.concrete_descendants(&policy.model) {
                policies
                    .entry(model.name.clone())
                    .or_default()
                    .push(policy.clone());
            }
        }
        let policed: Vec<String> = policies.keys().cloned().collect();
        let policed_order = sync_order_with(schema, &policed, extra_deps);
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
        let order = sync_order_with(schema, &models, extra_deps);
        let rank = order
            .iter()
            .enumerate()
            .map(|(i, m)| (m.clone(), i))
            .collect();
        StepTable {
            by_model,
            order,
            rank,
            policies,
            policed_order,
        }
    }

    /// The steps of a concrete model; empty when none serve it.
    pub(crate) fn steps(&self, model: &str) -> &[SyncStep] {
        self.by_model
            .get(model)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// The model policies of a concrete model; empty when none.
    pub(crate) fn policies(&self, model: &str) -> &[ModelPolicy] {
        self.policies
            .get(model)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// Models with policies, dependencies first.
    pub(crate) fn policed_models(&self) -> &[String] {
        &self.policed_order
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
