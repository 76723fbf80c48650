//! TOSCA: `POST /run` applies a recipe; `GET /custom_type/<model>` shows a type.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::IntoResponse;
use serde_json::Value;
use syncplane_tosca::{custom_type, key_fields, parse_recipe};

use crate::AppState;
use crate::auth::User;
use crate::error::ApiError;

/// Applies a recipe in one transaction: every node template creates or
/// updates (by its key fields) one object; on any error nothing is written.
/// Answers like XOS: `Created models: ['service', ...]`.
pub async fn run(
    State(state): State<AppState>,
    user: User,
    body: String,
) -> Result<String, ApiError> {
    let who = user.principal();
    let core = state.host.core();
    let recipe = parse_recipe(&body)?;
    let registry = core.registry();
    let plan = recipe.plan(registry.schema())?;
    // Users' passwords are hashed before the transaction opens.
    let passwords = plan
        .iter()
        .filter(|t| t.model == "User")
        .filter_map(|t| t.properties.get("password").and_then(Value::as_str))
        .map(str::to_owned)
        .collect::<Vec<String>>();
    let mut tx = core
        .begin_with_passwords(passwords.iter().map(String::as_str))
        .await?;
    let mut ids: BTreeMap<String, i64> = BTreeMap::new();
    for template in &plan {
        let mut input = template.properties.clone();
        for (field, node) in &template.requirements {
            // `plan` orders required templates first, so the id is known.
            if let Some(id) = ids.get(node) {
                input.insert(format!("{field}_id"), Value::from(*id));
            }
        }
        let keys = key_fields(registry.schema(), &template.model);
        let filter: Vec<(String, Value)> = keys
            .iter()
            .filter_map(|k| input.get(k).map(|v| (k.clone(), v.clone())))
            .collect();
        let existing = if !keys.is_empty() && filter.len() == keys.len() {
            tx.list_as(&who, &template.model, &filter)
                .await?
                .into_iter()
                .find(|o| o.fields.get("deleted") != Some(&Value::Bool(true)))
        } else {
            None
        };
        let object = match existing {
            Some(found) => tx.update_as(&who, found.id, input).await?,
            None if template.must_exist => {
                return Err(ApiError::BadRequest(format!(
                    "node template `{}`: must-exist is set but no {} matches {:?}",
                    template.name, template.model, filter
                )));
            }
            None => tx
                .create_as(&who, &template.model, input)
                .await
                .map_err(|e| match ApiError::from(e) {
                    ApiError::BadRequest(m) => {
                        ApiError::BadRequest(format!("node template `{}`: {m}", template.name))
                    }
                    other => other,
                })?,
        };
        ids.insert(template.name.clone(), object.id);
    }
    tx.commit().await?;
    let names: Vec<String> = recipe
        .templates
        .iter()
        .map(|t| format!("'{}'", t.name))
        .collect();
    Ok(format!("Created models: [{}]", names.join(", ")))
}

/// The generated TOSCA type of a model, by its lower-case name.
pub async fn show_custom_type(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let name = name
        .strip_suffix(".yaml")
        .unwrap_or(&name)
        .to_ascii_lowercase();
    let registry = state.host.core().registry();
    let model = registry
        .schema()
        .model_by_lowercase(&name)
        .ok_or_else(|| ApiError::NotFound(format!("no model named `{name}`")))?;
    let text = custom_type(registry.schema(), &model.name)
        .ok_or_else(|| ApiError::NotFound(format!("no model named `{name}`")))?;
    Ok(([(header::CONTENT_TYPE, "text/yaml; charset=utf-8")], text))
}
