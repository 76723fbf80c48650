//! REST in XOS's path convention: `/xosapi/v1/<app_label>/<plural>[/<id>]`.

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use syncplane_core::{DeleteOptions, MAX_BATCH, field};

use crate::AppState;
use crate::auth::User;
use crate::error::ApiError;

/// Resolves `<app_label>/<plural>` to a concrete-or-abstract model name.
pub(crate) fn model_for(state: &AppState, app: &str, collection: &str) -> Result<String, ApiError> {
    state
        .host
        .core()
        .registry()
        .collection(app, collection)
        .map(str::to_owned)
        .ok_or_else(|| ApiError::NotFound(format!("no collection `{collection}` in app `{app}`")))
}

fn body_object(body: Value) -> Result<Map<String, Value>, ApiError> {
    match body {
        Value::Object(map) => Ok(map),
        other => Err(ApiError::BadRequest(format!(
            "expected a JSON object, got {other}"
        ))),
    }
}

/// `POST` to a collection creates an object, or a batch of them.
///
/// A JSON object creates one and answers it (`201`). A JSON array of
/// objects creates them all in one transaction, with the same checks as
/// one by one, and answers `201` with the created objects as an array in
/// the order sent; an item refused refuses the whole batch, answered as
/// that item would be (`400`, `403`) with its index:
/// `{"error": "[3].name: is required", "index": 3, "field": "name"}`.
/// A batch of more than [`MAX_BATCH`] objects is refused whole (`413`).
pub async fn create(
    State(state): State<AppState>,
    user: User,
    Path((app, collection)): Path<(String, String)>,
    Json(body): Json<Value>,
) -> Result<(axum::http::StatusCode, Json<Value>), ApiError> {
    let model = model_for(&state, &app, &collection)?;
    let core = state.host.core();
    let answer = match body {
        Value::Array(items) => {
            let inputs = batch_inputs(items)?;
            let created = core
                .create_many_as(&user.principal(), &model, inputs)
                .await?;
            Value::Array(
                created
                    .into_iter()
                    .map(syncplane_core::Object::into_json)
                    .collect(),
            )
        }
        body => core
            .create_as(&user.principal(), &model, body_object(body)?)
            .await?
            .to_json(),
    };
    Ok((axum::http::StatusCode::CREATED, Json(answer)))
}

/// The inputs of a batch create: at most [`MAX_BATCH`], each an object.
fn batch_inputs(items: Vec<Value>) -> Result<Vec<Map<String, Value>>, ApiError> {
    if items.len() > MAX_BATCH {
        return Err(ApiError::PayloadTooLarge(format!(
            "a batch of {} objects is more than {MAX_BATCH}; split it (nothing was created)",
            items.len()
        )));
    }
    items
        .into_iter()
        .enumerate()
        .map(|(index, item)| {
            body_object(item).map_err(|error| {
                let ApiError::BadRequest(message) = error else {
                    return error;
                };
                ApiError::Item {
                    index,
                    field: None,
                    message: format!("[{index}]: {message}"),
                    error: Box::new(ApiError::BadRequest(message)),
                }
            })
        })
        .collect()
}

/// Object `id` of the collection, if `user` may see it: an object they
/// may not read is not found, as if it did not exist.
async fn object_in(
    state: &AppState,
    user: &User,
    app: &str,
    collection: &str,
    id: i64,
) -> Result<syncplane_core::Object, ApiError> {
    let model = model_for(state, app, collection)?;
    let registry = state.host.core().registry();
    match state.host.core().get_as(&user.principal(), id).await? {
        Some(o) if registry.schema().is_a(&o.model, &model) => Ok(o),
        _ => Err(ApiError::NotFound(format!("{model} {id} does not exist"))),
    }
}

/// As in XOS, a `write_protect`ed object cannot be changed or deleted
/// through the API; steps and policies still may.
fn refuse_write_protected(object: &syncplane_core::Object) -> Result<(), ApiError> {
    if object.fields.get(field::WRITE_PROTECT) == Some(&Value::Bool(true)) {
        return Err(ApiError::Forbidden(format!(
            "{} {} is write-protected: it cannot be changed or deleted through the API",
            object.model, object.id
        )));
    }
    Ok(())
}

/// `GET` one object.
pub async fn get(
    State(state): State<AppState>,
    user: User,
    Path((app, collection, id)): Path<(String, String, i64)>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        object_in(&state, &user, &app, &collection, id)
            .await?
            .to_json(),
    ))
}

/// `PUT` changes the given fields of one object.
pub async fn update(
    State(state): State<AppState>,
    user: User,
    Path((app, collection, id)): Path<(String, String, i64)>,
    Json(body): Json<Value>,
) -> Result<Json<Value>, ApiError> {
    refuse_write_protected(&object_in(&state, &user, &app, &collection, id).await?)?;
    let object = state
        .host
        .core()
        .update_as(&user.principal(), id, body_object(body)?)
        .await?;
    Ok(Json(object.to_json()))
}

/// The query of a `DELETE`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteQuery {
    /// `?dry_run=true`: answer what would cascade, delete nothing.
    #[serde(default)]
    dry_run: bool,
}

/// `DELETE` marks an object deleted, with the objects linking to it through
/// a required link, and clears optional links to them; the synchronizer
/// tears them down and purges them. Answers what cascaded:
/// `{"model", "id", "dry_run", "cascaded": [{"model", "id", "action":
/// "deleted"|"cleared", "field", "target"}]}`. With `?dry_run=true` the
/// same answer, after the same checks, and nothing changes.
pub async fn delete(
    State(state): State<AppState>,
    user: User,
    Path((app, collection, id)): Path<(String, String, i64)>,
    Query(query): Query<DeleteQuery>,
) -> Result<Json<Value>, ApiError> {
    refuse_write_protected(&object_in(&state, &user, &app, &collection, id).await?)?;
    let options = DeleteOptions {
        dry_run: query.dry_run,
    };
    let deletion = state
        .host
        .core()
        .delete_as(&user.principal(), id, options)
        .await?;
    Ok(Json(json!({
        "model": deletion.model,
        "id": deletion.id,
        "dry_run": query.dry_run,
        "cascaded": deletion.cascaded,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_past_the_limit_or_with_a_non_object_item_is_refused_naming_it() {
        let too_many = vec![json!({}); MAX_BATCH + 1];
        assert!(matches!(
            batch_inputs(too_many),
            Err(ApiError::PayloadTooLarge(m)) if m.contains("10001 objects is more than 10000")
        ));
        let inputs = batch_inputs(vec![json!({"name": "a"}), json!([1])]);
        let Err(ApiError::Item { index, message, .. }) = inputs else {
            panic!("refused naming the item: {inputs:?}");
        };
        assert_eq!(index, 1);
        assert_eq!(message, "[1]: expected a JSON object, got [1]");
        assert_eq!(
            batch_inputs(vec![json!({"name": "a"})])
                .map(|i| i.len())
                .ok(),
            Some(1)
        );
    }
}
