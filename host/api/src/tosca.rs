//! TOSCA: `POST /run` applies a recipe; `GET /custom_type/<model>` shows a type.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;
use syncplane_core::field;

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::IntoResponse;
use serde_json::{Map, Value};
use syncplane_core::{CascadeAction, Object};
use syncplane_tosca::{NodeTemplate, Recipe, custom_type, key_fields, parse_recipe};
use tokio::sync::Semaphore;

use crate::AppState;
use crate::auth::User;
use crate::error::ApiError;

/// How long parsing and planning one recipe may take. Within
/// [`syncplane_tosca::Limits`] a 2 MiB recipe takes well under a second;
/// this is the backstop. Waiting for a parser has the same budget.
const PARSE_BUDGET: Duration = Duration::from_secs(5);

/// Recipes parsed at the same time, each on a blocking thread: a flood of
/// large recipes waits here instead of taking every core.
static PARSERS: Semaphore = Semaphore::const_new(2);

/// Parses and plans `body` on a blocking thread, within [`PARSE_BUDGET`],
/// so a hostile recipe never runs on the async workers that answer other
/// requests (`/healthz` included).
///
/// # Errors
///
/// 400 for a recipe past a limit, invalid or too slow to parse; 503 when
/// no parser is free within the budget.
async fn parse_and_plan(
    body: String,
    registry: std::sync::Arc<syncplane_core::Registry>,
) -> Result<(Recipe, Vec<NodeTemplate>), ApiError> {
    let permit = match tokio::time::timeout(PARSE_BUDGET, PARSERS.acquire()).await {
        Ok(Ok(permit)) => permit,
        Ok(Err(_)) | Err(_) => {
            return Err(ApiError::Unavailable {
                message: "too many recipes are being parsed; try again".into(),
                retry_after: 1,
            });
        }
    };
    // The permit goes with the thread: a parse that outlives its budget
    // still holds a parser until it ends.
    let parse = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let recipe = parse_recipe(&body)?;
        let plan = recipe.plan(registry.schema())?;
        Ok::<_, syncplane_tosca::Error>((recipe, plan))
    });
    match tokio::time::timeout(PARSE_BUDGET, parse).await {
        Ok(Ok(parsed)) => Ok(parsed?),
        Ok(Err(e)) => Err(ApiError::Internal(format!("recipe parser failed: {e}"))),
        Err(_) => Err(ApiError::BadRequest(format!(
            "recipe refused: parsing took longer than {} s",
            PARSE_BUDGET.as_secs()
        ))),
    }
}

/// Applies a recipe in one transaction: every node template creates or
/// updates (by its key fields) one object; on any error nothing is written.
/// Consecutive templates of one model that do not require each other are
/// applied together: their existing objects found with one query, the new
/// ones created as one batch, so a recipe of thousands of templates costs
/// a few statements per model rather than a few per template.
/// Answers like XOS: `Created models: ['service', ...]`.
///
/// The recipe is checked against [`syncplane_tosca::Limits`] and parsed
/// off the async workers (see [`parse_and_plan`]).
pub async fn run(
    State(state): State<AppState>,
    user: User,
    body: String,
) -> Result<String, ApiError> {
    let who = user.principal();
    let core = state.host.core();
    let registry = core.registry();
    let (recipe, plan) = parse_and_plan(body, std::sync::Arc::clone(&registry)).await?;
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
    let mut rest = plan.as_slice();
    while !rest.is_empty() {
        let segment = segment(&registry, rest, &ids);
        apply_segment(&mut tx, &who, &registry, segment, &mut ids).await?;
        rest = &rest[segment.len()..];
    }
    tx.commit().await?;
    let names: Vec<String> = recipe
        .templates
        .iter()
        .map(|t| format!("'{}'", t.name))
        .collect();
    Ok(format!("Created models: [{}]", names.join(", ")))
}

/// The longest run of templates at the head of `plan` that can be applied
/// together ([`apply_segment`]): of one model, none requiring another of
/// the run (it needs that one's id), no two with the same keys (the second
/// updates what the first creates), at most [`syncplane_core::MAX_BATCH`].
/// Never empty when `plan` is not.
fn segment<'p>(
    registry: &syncplane_core::Registry,
    plan: &'p [NodeTemplate],
    ids: &BTreeMap<String, i64>,
) -> &'p [NodeTemplate] {
    let Some(first) = plan.first() else {
        return plan;
    };
    let keys = key_fields(registry.schema(), &first.model);
    let mut names: HashSet<&str> = HashSet::new();
    let mut filters: HashSet<String> = HashSet::new();
    let mut len = 0;
    for template in plan.iter().take(syncplane_core::MAX_BATCH) {
        if template.model != first.model
            || template
                .all_requirements()
                .any(|(_, node)| names.contains(node.as_str()))
        {
            break;
        }
        let (_, filter) = template_input(registry, template, &keys, ids);
        if !keys.is_empty()
            && filter.len() == keys.len()
            && !filters.insert(Value::from(Map::from_iter(filter)).to_string())
        {
            break;
        }
        names.insert(&template.name);
        len += 1;
    }
    &plan[..len.max(1)]
}

/// Applies templates of one model that do not depend on each other: finds
/// the existing objects of all of them at once (by their keys), updates
/// those, and creates the others in one batch
/// ([`syncplane_core::CoreTx::create_many_as`]). Notes the objects' ids.
async fn apply_segment(
    tx: &mut syncplane_core::CoreTx,
    who: &syncplane_core::Principal,
    registry: &syncplane_core::Registry,
    segment: &[NodeTemplate],
    ids: &mut BTreeMap<String, i64>,
) -> Result<(), ApiError> {
    let Some(model) = segment.first().map(|t| t.model.as_str()) else {
        return Ok(());
    };
    let keys = key_fields(registry.schema(), model);
    let mut inputs = Vec::with_capacity(segment.len());
    let mut keyed = Vec::new();
    for (i, template) in segment.iter().enumerate() {
        let (input, filter) = template_input(registry, template, &keys, ids);
        if !keys.is_empty() && filter.len() == keys.len() {
            keyed.push((
                i,
                filter.into_iter().map(|(_, v)| v).collect::<Vec<Value>>(),
            ));
        }
        inputs.push(Some(input));
    }
    let wanted: Vec<Vec<Value>> = keyed.iter().map(|(_, values)| values.clone()).collect();
    let found = tx.find_by_keys_as(who, model, &keys, &wanted).await?;
    let mut existing: Vec<Option<Object>> = vec![None; segment.len()];
    for ((i, _), object) in keyed.into_iter().zip(found) {
        existing[i] = object;
    }
    let mut to_create = Vec::new();
    for (i, template) in segment.iter().enumerate() {
        let input = inputs[i].take().unwrap_or_default();
        match existing[i].take() {
            Some(found) => {
                let object = tx.update_as(who, found.id, input).await?;
                ids.insert(template.name.clone(), object.id);
            }
            None if template.must_exist => {
                let filter: Vec<(String, Value)> = keys
                    .iter()
                    .filter_map(|k| input.get(k).map(|v| (k.clone(), v.clone())))
                    .collect();
                return Err(ApiError::BadRequest(format!(
                    "node template `{}`: must-exist is set but no {} matches {:?}",
                    template.name, template.model, filter
                )));
            }
            None => to_create.push((template, input)),
        }
    }
    if to_create.is_empty() {
        return Ok(());
    }
    let (templates, inputs): (Vec<&NodeTemplate>, Vec<Map<String, Value>>) =
        to_create.into_iter().unzip();
    let created = match tx.create_many_as(who, model, inputs).await {
        Ok(created) => created,
        Err(syncplane_core::Error::Item { index, error }) => {
            let name = templates.get(index).map_or("?", |t| t.name.as_str());
            return Err(match ApiError::from(*error) {
                ApiError::BadRequest(m) => {
                    ApiError::BadRequest(format!("node template `{name}`: {m}"))
                }
                ApiError::QuotaExceeded(m) => {
                    ApiError::QuotaExceeded(format!("node template `{name}`: {m}"))
                }
                other => other,
            });
        }
        Err(e) => return Err(e.into()),
    };
    for (template, object) in templates.into_iter().zip(created) {
        ids.insert(template.name.clone(), object.id);
    }
    Ok(())
}

/// Puts the ids of the templates `template` requires (which `plan` placed
/// first) into its input: `<field>_id` for a link, `<field>_ids` (every
/// target named) for a many-to-many link.
fn add_requirements(
    registry: &syncplane_core::Registry,
    template: &NodeTemplate,
    ids: &BTreeMap<String, i64>,
    input: &mut Map<String, Value>,
) {
    let schema = registry.schema();
    for (field, node) in template.all_requirements() {
        let Some(id) = ids.get(node) else {
            continue;
        };
        let is_many = schema
            .field(&template.model, field)
            .is_some_and(|f| f.is_many());
        if is_many {
            let list = input
                .entry(syncplane_core::ids_name(field))
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(list) = list {
                list.push(Value::from(*id));
            }
        } else {
            input.insert(format!("{field}_id"), Value::from(*id));
        }
    }
}

/// A template's input (its properties, and the ids of the templates it
/// requires, which `plan` placed first) and the equalities of its `keys`
/// that it sets.
fn template_input(
    registry: &syncplane_core::Registry,
    template: &NodeTemplate,
    keys: &[String],
    ids: &BTreeMap<String, i64>,
) -> (Map<String, Value>, Vec<(String, Value)>) {
    let mut input = template.properties.clone();
    add_requirements(registry, template, ids, &mut input);
    let filter: Vec<(String, Value)> = keys
        .iter()
        .filter_map(|k| input.get(k).map(|v| (k.clone(), v.clone())))
        .collect();
    (input, filter)
}

/// A template's input (its properties, and the ids of the templates it
/// requires, which `plan` placed first), the key filter it finds an
/// existing object by, and that object if one matches (not deleted).
async fn find_existing(
    tx: &mut syncplane_core::CoreTx,
    who: &syncplane_core::Principal,
    registry: &syncplane_core::Registry,
    template: &NodeTemplate,
    ids: &BTreeMap<String, i64>,
) -> Result<(Map<String, Value>, Vec<(String, Value)>, Option<Object>), ApiError> {
    let mut input = template.properties.clone();
    add_requirements(registry, template, ids, &mut input);
    let keys = key_fields(registry.schema(), &template.model);
    let filter: Vec<(String, Value)> = keys
        .iter()
        .filter_map(|k| input.get(k).map(|v| (k.clone(), v.clone())))
        .collect();
    let existing = if !keys.is_empty() && filter.len() == keys.len() {
        tx.list_as(who, &template.model, &filter)
            .await?
            .into_iter()
            .find(|o| o.fields.get(field::DELETED) != Some(&Value::Bool(true)))
    } else {
        None
    };
    Ok((input, filter, existing))
}

/// `POST /delete`: deletes the objects a recipe's node templates name (found
/// by their keys, as `/run` finds them), dependents first, in one
/// transaction, each with what cascades from it (see
/// `syncplane_core::CoreTx::delete`). A template that matches nothing is
/// skipped, unless it sets `must-exist`. On any error nothing is deleted.
/// Answers like XOS, `Deleted models: ['service', ...]`, then one line per
/// object the deletions reached:
/// `cascaded: deleted Zone 12 (its region linked to 3)` or
/// `cascaded: cleared Note 14 (its region linked to 3)`.
pub async fn delete(
    State(state): State<AppState>,
    user: User,
    body: String,
) -> Result<String, ApiError> {
    let who = user.principal();
    let core = state.host.core();
    let registry = core.registry();
    let (_recipe, plan) = parse_and_plan(body, std::sync::Arc::clone(&registry)).await?;
    let mut tx = core.begin().await?;
    let mut ids: BTreeMap<String, i64> = BTreeMap::new();
    let mut found: Vec<(&NodeTemplate, Object)> = Vec::new();
    for template in &plan {
        let (_, filter, existing) = find_existing(&mut tx, &who, &registry, template, &ids).await?;
        match existing {
            Some(object) => {
                ids.insert(template.name.clone(), object.id);
                found.push((template, object));
            }
            None if template.must_exist => {
                return Err(ApiError::BadRequest(format!(
                    "node template `{}`: must-exist is set but no {} matches {:?}",
                    template.name, template.model, filter
                )));
            }
            None => {}
        }
    }
    let mut deleted_names = Vec::new();
    let mut reached: Vec<syncplane_core::Cascaded> = Vec::new();
    let mut gone: HashSet<i64> = HashSet::new();
    // Dependents first: `plan` put what a template requires before it.
    for (template, object) in found.iter().rev() {
        deleted_names.push(format!("'{}'", template.name));
        if gone.contains(&object.id) {
            // Deleted already, with an object deleted before it.
            continue;
        }
        if object.fields.get(field::WRITE_PROTECT) == Some(&Value::Bool(true)) {
            return Err(ApiError::Forbidden(format!(
                "node template `{}`: {} {} is write-protected: it cannot be deleted through the API",
                template.name, object.model, object.id
            )));
        }
        let deletion = tx.delete_as(&who, object.id).await?;
        gone.insert(object.id);
        for cascaded in deletion.cascaded {
            if cascaded.action == CascadeAction::Deleted {
                gone.insert(cascaded.id);
            }
            reached.push(cascaded);
        }
    }
    tx.commit().await?;
    deleted_names.reverse();
    let mut answer = format!("Deleted models: [{}]", deleted_names.join(", "));
    for c in reached {
        let action = match c.action {
            CascadeAction::Deleted => field::DELETED,
            CascadeAction::Cleared => "cleared",
        };
        answer.push_str(&format!(
            "\ncascaded: {action} {} {} (its {} linked to {})",
            c.model, c.id, c.field, c.target
        ));
    }
    Ok(answer)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn registry() -> syncplane_core::Registry {
        let file =
            syncplane_xproto::parse("core.xproto", syncplane_core::CORE_XPROTO).expect("parses");
        let schema = syncplane_xproto::Schema::default()
            .with_files(&[file])
            .expect("valid");
        syncplane_core::Registry::new(schema)
    }

    fn template(name: &str, model: &str, key: &str, requires: Option<&str>) -> NodeTemplate {
        NodeTemplate {
            name: name.into(),
            model: model.into(),
            properties: Map::from_iter([("name".to_owned(), Value::from(key))]),
            must_exist: false,
            requirements: requires
                .map(|node| BTreeMap::from([("owner".to_owned(), node.to_owned())]))
                .unwrap_or_default(),
            many: BTreeMap::new(),
        }
    }

    fn lengths(plan: &[NodeTemplate], ids: &BTreeMap<String, i64>) -> Vec<usize> {
        let registry = registry();
        let mut rest = plan;
        let mut out = Vec::new();
        while !rest.is_empty() {
            let len = segment(&registry, rest, ids).len();
            out.push(len);
            rest = &rest[len..];
        }
        out
    }

    #[test]
    fn templates_are_applied_together_until_the_model_changes_one_requires_another_or_keys_repeat()
    {
        let ids = BTreeMap::from([("svc".to_owned(), 1)]);
        let plan = vec![
            template("a", "Site", "a", None),
            template("b", "Site", "b", None),
            template("svc2", "Service", "svc2", None),
            template("si1", "ServiceInstance", "si1", Some("svc")),
            template("si2", "ServiceInstance", "si2", Some("svc")),
            template("si3", "ServiceInstance", "si3", Some("si2")),
            template("c", "Site", "c", None),
            template("c-again", "Site", "c", None),
        ];
        assert_eq!(lengths(&plan, &ids), [2, 1, 2, 1, 1, 1]);
    }
}
