//! What installing, upgrading or rolling back a service would change: the
//! plan `--dry-run` prints, and the list of what blocks an incompatible
//! upgrade.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use syncplane_core::Core;
use syncplane_runtime::capability::Grants;
use syncplane_xproto::{Field, FieldType, File};

use crate::error::Result;
use crate::manifest::Manifest;

/// What kind of change a plan is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// The service is not installed yet.
    Install,
    /// A newer version replaces the installed one.
    Upgrade,
    /// The same version is installed again (a changed package, new grants).
    Reinstall,
    /// An older version replaces the installed one (`--allow-downgrade`).
    Downgrade,
    /// The previous version comes back (`service rollback`).
    Rollback,
}

impl Action {
    /// The action's name, as it is serialised (`install`, `upgrade`, …).
    pub fn name(self) -> &'static str {
        match self {
            Action::Install => "install",
            Action::Upgrade => "upgrade",
            Action::Reinstall => "reinstall",
            Action::Downgrade => "downgrade",
            Action::Rollback => "rollback",
        }
    }
}

/// The resolved plan of a lifecycle change, before it is activated.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// The service.
    pub service: String,
    /// What kind of change.
    pub action: Action,
    /// The installed version, if any.
    pub from_version: Option<String>,
    /// The version after the change.
    pub to_version: String,
    /// Models the change adds.
    pub models_added: Vec<String>,
    /// Models the change removes, with the objects they hold.
    pub models_removed: Vec<ModelCount>,
    /// Models whose fields change.
    pub models_changed: Vec<ModelChange>,
    /// Steps (of every kind) added, removed and kept.
    pub steps_added: Vec<String>,
    /// Steps removed.
    pub steps_removed: Vec<String>,
    /// Steps kept (their components are replaced).
    pub steps_kept: Vec<String>,
    /// Everything the new version asks for.
    pub grants: Grants,
    /// Grants the new version asks for that the installed one did not.
    pub grants_added: Vec<String>,
    /// Grants the installed version had that the new one drops.
    pub grants_removed: Vec<String>,
    /// What makes the change impossible; empty when it can be activated.
    pub blockers: Vec<String>,
    /// Everything that differs from the installed version's package, when
    /// one is installed: files, grants, models, imports, signers,
    /// dependencies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<Box<crate::diff::PackageDiff>>,
}

/// A model and how many objects it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelCount {
    /// The model.
    pub model: String,
    /// Its objects (those of models inheriting it included).
    pub objects: i64,
}

/// How one model's fields change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelChange {
    /// The model.
    pub model: String,
    /// Its objects now.
    pub objects: i64,
    /// New fields, with their types.
    pub fields_added: Vec<String>,
    /// Fields the new version no longer has (their stored values stay).
    pub fields_removed: Vec<String>,
    /// Fields whose type changes: `field: old -> new`.
    pub fields_changed: Vec<String>,
}

/// A field's type in words: `string`, `int`, `manytoone link to Site`.
fn describe(field: &Field) -> String {
    let base = match &field.ty {
        FieldType::Scalar { scalar } => format!("{scalar:?}").to_ascii_lowercase(),
        FieldType::Link { link, target, .. } => {
            format!(
                "{} link to {target}",
                format!("{link:?}").to_ascii_lowercase()
            )
        }
    };
    if field.repeated {
        format!("repeated {base}")
    } else {
        base
    }
}

fn has_default(field: &Field) -> bool {
    field.options.contains_key("default")
}

fn required(field: &Field) -> bool {
    field.modifier == syncplane_xproto::Modifier::Required
}

/// The names of every step of a manifest, of all kinds.
pub(crate) fn step_names(manifest: &Manifest) -> BTreeSet<String> {
    manifest
        .sync_steps
        .iter()
        .map(|s| s.name.clone())
        .chain(manifest.model_policies.iter().map(|s| s.name.clone()))
        .chain(manifest.pull_steps.iter().map(|s| s.name.clone()))
        .chain(manifest.event_steps.iter().map(|s| s.name.clone()))
        .collect()
}

/// Each grant as one line, to compare two versions.
fn grant_lines(grants: &Grants) -> BTreeSet<String> {
    let mut lines = BTreeSet::new();
    lines.extend(
        grants
            .outbound_http
            .iter()
            .map(|o| format!("outbound_http {o}")),
    );
    lines.extend(grants.models.read.iter().map(|m| format!("read {m}")));
    lines.extend(grants.models.write.iter().map(|m| format!("write {m}")));
    lines.extend(grants.config.iter().map(|c| format!("config {c}")));
    lines.extend(grants.secrets.iter().map(|s| format!("secret {s}")));
    lines
}

/// The version being replaced: its manifest and parsed files.
pub(crate) struct Before<'a> {
    pub(crate) manifest: &'a Manifest,
    pub(crate) files: &'a [File],
}

/// Compares the installed version (if any) with the new one. Object counts
/// come from the live store; they decide whether removing a model or
/// adding a required field can go ahead.
pub(crate) async fn plan(
    core: &Core,
    action: Action,
    before: Option<Before<'_>>,
    manifest: &Manifest,
    files: &[File],
) -> Result<Plan> {
    let new_models: BTreeMap<&str, &syncplane_xproto::Model> = files
        .iter()
        .flat_map(|f| f.models.iter())
        .map(|m| (m.name.as_str(), m))
        .collect();
    let mut plan = Plan {
        service: manifest.service.name.clone(),
        action,
        from_version: before.as_ref().map(|b| b.manifest.service.version.clone()),
        to_version: manifest.service.version.clone(),
        models_added: Vec::new(),
        models_removed: Vec::new(),
        models_changed: Vec::new(),
        steps_added: Vec::new(),
        steps_removed: Vec::new(),
        steps_kept: Vec::new(),
        grants: manifest.capabilities.clone(),
        grants_added: Vec::new(),
        grants_removed: Vec::new(),
        diff: None,
        blockers: Vec::new(),
    };
    let new_steps = step_names(manifest);
    let new_grants = grant_lines(&manifest.capabilities);
    let Some(before) = before else {
        plan.models_added = new_models.keys().map(|m| (*m).to_owned()).collect();
        plan.steps_added = new_steps.into_iter().collect();
        plan.grants_added = new_grants.into_iter().collect();
        return Ok(plan);
    };
    let old_models: BTreeMap<&str, &syncplane_xproto::Model> = before
        .files
        .iter()
        .flat_map(|f| f.models.iter())
        .map(|m| (m.name.as_str(), m))
        .collect();
    for (name, old) in &old_models {
        let objects = core.object_count(name).await?;
        let Some(new) = new_models.get(name) else {
            if objects > 0 {
                plan.blockers.push(format!(
                    "model `{name}` would be removed but still has {objects} object(s); delete them first"
                ));
            }
            plan.models_removed.push(ModelCount {
                model: (*name).to_owned(),
                objects,
            });
            continue;
        };
        let old_fields: BTreeMap<&str, &Field> =
            old.fields.iter().map(|f| (f.name.as_str(), f)).collect();
        let new_fields: BTreeMap<&str, &Field> =
            new.fields.iter().map(|f| (f.name.as_str(), f)).collect();
        let mut change = ModelChange {
            model: (*name).to_owned(),
            objects,
            fields_added: Vec::new(),
            fields_removed: Vec::new(),
            fields_changed: Vec::new(),
        };
        for (field, new_field) in &new_fields {
            match old_fields.get(field) {
                None => {
                    change
                        .fields_added
                        .push(format!("{field}: {}", describe(new_field)));
                    if required(new_field) && !has_default(new_field) && objects > 0 {
                        plan.blockers.push(format!(
                            "new required field `{name}.{field}` has no default, and `{name}` has {objects} object(s) without a value for it"
                        ));
                    }
                }
                Some(old_field) => {
                    if !required(old_field)
                        && required(new_field)
                        && !has_default(new_field)
                        && objects > 0
                    {
                        plan.blockers.push(format!(
                            "field `{name}.{field}` would become required without a default, and `{name}` has {objects} object(s) that may lack a value"
                        ));
                    }
                    let (from, to) = (describe(old_field), describe(new_field));
                    if from != to {
                        plan.blockers.push(format!(
                            "field `{name}.{field}` would change type from {from} to {to}"
                        ));
                        change
                            .fields_changed
                            .push(format!("{field}: {from} -> {to}"));
                    }
                }
            }
        }
        for field in old_fields.keys() {
            if !new_fields.contains_key(field) {
                change.fields_removed.push((*field).to_owned());
            }
        }
        if !change.fields_added.is_empty()
            || !change.fields_removed.is_empty()
            || !change.fields_changed.is_empty()
        {
            plan.models_changed.push(change);
        }
    }
    plan.models_added = new_models
        .keys()
        .filter(|m| !old_models.contains_key(*m))
        .map(|m| (*m).to_owned())
        .collect();
    let old_steps = step_names(before.manifest);
    plan.steps_added = new_steps.difference(&old_steps).cloned().collect();
    plan.steps_removed = old_steps.difference(&new_steps).cloned().collect();
    plan.steps_kept = new_steps.intersection(&old_steps).cloned().collect();
    let old_grants = grant_lines(&before.manifest.capabilities);
    plan.grants_added = new_grants.difference(&old_grants).cloned().collect();
    plan.grants_removed = old_grants.difference(&new_grants).cloned().collect();
    Ok(plan)
}
