//! The navigation every page shows: the models that have objects, grouped
//! by the service that defines them (`core` for the built-in ones), by
//! `verbose_name`, without models marked `gui_hidden`; after a service's
//! models, the views its manifest adds (`[[gui_views]]`).

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::{Value, json};
use syncplane_api::AppState;
use syncplane_core::ModelDef;

use crate::session::Viewer;

/// One group of the navigation.
#[derive(Debug, Serialize)]
pub(crate) struct NavGroup {
    /// The service (or `core`).
    pub(crate) service: String,
    /// Its models, by verbose name.
    pub(crate) models: Vec<NavModel>,
    /// The views its manifest adds, in the manifest's order.
    pub(crate) views: Vec<View>,
}

/// A view a service adds to the GUI: a list of its objects, named.
#[derive(Debug, Serialize)]
pub(crate) struct View {
    pub(crate) title: String,
    pub(crate) description: String,
    /// The list page, with the view's query.
    pub(crate) href: String,
}

/// The views `service` adds.
pub(crate) fn views(service: &syncplane_platform::InstalledService) -> Vec<View> {
    service
        .gui_views
        .iter()
        .map(|view| View {
            title: view.title.clone(),
            description: view.description.clone(),
            href: if view.query.is_empty() {
                format!("/ui/m/{}", view.model)
            } else {
                format!("/ui/m/{}?{}", view.model, view.query)
            },
        })
        .collect()
}

/// One model in the navigation.
#[derive(Debug, Serialize)]
pub(crate) struct NavModel {
    /// The model's name, as URLs spell it.
    pub(crate) name: String,
    /// What the page calls it.
    pub(crate) verbose_name: String,
}

/// The navigation of the models in `defs`.
pub(crate) fn groups(state: &AppState, defs: &[ModelDef]) -> Vec<NavGroup> {
    let mut placed = BTreeSet::new();
    let mut groups = Vec::new();
    let entry = |def: &ModelDef| NavModel {
        name: def.name.clone(),
        verbose_name: def.verbose_name.clone(),
    };
    let mut services = state.host.services();
    services.sort_by(|a, b| a.name.cmp(&b.name));
    for service in services {
        let mut models: Vec<NavModel> = defs
            .iter()
            .filter(|d| service.models.contains(&d.name))
            .map(entry)
            .collect();
        if models.is_empty() {
            continue;
        }
        models.sort_by(|a, b| a.verbose_name.cmp(&b.verbose_name));
        placed.extend(models.iter().map(|m| m.name.clone()));
        groups.push(NavGroup {
            views: views(&service),
            service: service.name,
            models,
        });
    }
    let mut core: Vec<NavModel> = defs
        .iter()
        .filter(|d| !placed.contains(&d.name))
        .map(entry)
        .collect();
    core.sort_by(|a, b| a.verbose_name.cmp(&b.verbose_name));
    if !core.is_empty() {
        groups.insert(
            0,
            NavGroup {
                service: "core".into(),
                models: core,
                views: Vec::new(),
            },
        );
    }
    groups
}

/// What the page layout needs: the user, the CSRF token of its forms, the
/// navigation, the current section, and what the live script watches
/// (`model`, `id`; both `null`: every change).
pub(crate) fn layout(
    state: &AppState,
    viewer: &Viewer,
    current: &str,
    live_model: Option<&str>,
    live_id: Option<i64>,
) -> Value {
    let defs = syncplane_core::modeldefs(&state.host.core().registry());
    json!({
        "user": viewer.email(),
        "is_admin": viewer.user.is_admin(),
        "may_write": viewer.may_write(),
        "csrf": viewer.csrf,
        "nav": groups(state, &defs),
        "current": current,
        "live_model": live_model,
        "live_id": live_id,
    })
}
