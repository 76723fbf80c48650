//! Names a package may not take: a model name another service or core has
//! (equal ignoring case, since tables and routes are lower-case), another
//! owner's app label, or a REST route already served.

use std::collections::BTreeMap;

use syncplane_core::Registry;
use syncplane_xproto::{File, Model};

use crate::error::{Error, Result};
use crate::registry::Installed;

/// Who owns a model: core or a service.
fn owner_name(owner: Option<&str>) -> String {
    match owner {
        None => "core".to_owned(),
        Some(service) => format!("service `{service}`"),
    }
}

/// Checks the models of `files` (the package of `service`) against each
/// other, against core (`core_models`) and against the other installed
/// services; every clash is named with both sides.
pub(crate) fn check(
    service: &str,
    files: &[File],
    others: &[Installed],
    core_models: &[&Model],
    registry: &Registry,
) -> Result<()> {
    let mut taken: Vec<(Option<&str>, &Model)> = core_models.iter().map(|m| (None, *m)).collect();
    for other in others {
        for file in &other.files {
            taken.extend(
                file.models
                    .iter()
                    .map(|m| (Some(other.info.name.as_str()), m)),
            );
        }
    }
    let mut clashes = Vec::new();
    let mut own: BTreeMap<String, &Model> = BTreeMap::new();
    let mut routes: BTreeMap<(String, String), &Model> = BTreeMap::new();
    for model in files.iter().flat_map(|f| f.models.iter()) {
        let lower = model.name.to_ascii_lowercase();
        if let Some(first) = own.get(&lower) {
            clashes.push(format!(
                "models `{}` and `{}` of service `{service}` differ only in case; they would share one table and one route",
                first.name, model.name
            ));
        } else {
            own.insert(lower.clone(), model);
        }
        for (owner, theirs) in &taken {
            if theirs.name.eq_ignore_ascii_case(&model.name) {
                clashes.push(format!(
                    "model `{}` of service `{service}` clashes with model `{}` of {} (model names equal ignoring case share one table and one route)",
                    model.name,
                    theirs.name,
                    owner_name(*owner)
                ));
            }
        }
        if !model.is_abstract() {
            let route = (model.app_label.clone(), registry.plural(model));
            if let Some(first) = routes.get(&route) {
                clashes.push(format!(
                    "models `{}` and `{}` of service `{service}` would both be served at /xosapi/v1/{}/{}",
                    first.name, model.name, route.0, route.1
                ));
            } else {
                routes.insert(route, model);
            }
        }
    }
    let mut labels: Vec<&str> = files
        .iter()
        .flat_map(|f| f.models.iter().map(|m| m.app_label.as_str()))
        .collect();
    labels.sort_unstable();
    labels.dedup();
    for label in labels {
        if let Some((owner, theirs)) = taken.iter().find(|(_, m)| m.app_label == label) {
            clashes.push(format!(
                "app_label `{label}` of service `{service}` belongs to {} (its model `{}`); routes under /xosapi/v1/{label}/ are theirs{}",
                owner_name(*owner),
                theirs.name,
                if label == "core" {
                    " (a file without `option app_label = \"...\";` gets `core`: give the service its own)"
                } else {
                    ""
                }
            ));
        }
    }
    for ((label, plural), model) in &routes {
        if let Some((owner, theirs)) = taken.iter().find(|(_, m)| {
            !m.is_abstract() && &m.app_label == label && &registry.plural(m) == plural
        }) {
            clashes.push(format!(
                "route /xosapi/v1/{label}/{plural} of model `{}` is already served by model `{}` of {}",
                model.name,
                theirs.name,
                owner_name(*owner)
            ));
        }
    }
    clashes.dedup();
    if clashes.is_empty() {
        Ok(())
    } else {
        Err(Error::Collision {
            service: service.to_owned(),
            clashes,
        })
    }
}
