//! `syncplane:plugin/models`: capability-checked model access for sync steps.

use serde_json::{Map, Value as Json};
use syncplane_core::Object;

use crate::bindings::syncplane::plugin::models::Host;
use crate::bindings::syncplane::plugin::types::{AccessError, ModelObject, Value};
use crate::state::{Access, StepState};

/// Converts a core object into what the guest sees (secrets left out).
pub(crate) fn to_model_object(object: &Object) -> ModelObject {
    let fields = object
        .fields
        .iter()
        .filter(|(k, _)| k.as_str() != "password")
        .map(|(k, v)| {
            let value = match v {
                Json::Null => Value::Null,
                Json::Bool(b) => Value::Boolean(*b),
                Json::Number(n) => match n.as_i64() {
                    Some(i) => Value::Integer(i),
                    None => Value::Float(n.as_f64().unwrap_or_default()),
                },
                Json::String(s) => Value::Text(s.clone()),
                other => Value::Text(other.to_string()),
            };
            (k.clone(), value)
        })
        .collect();
    ModelObject {
        model: object.model.clone(),
        id: object.id as u64,
        fields,
    }
}

pub(crate) fn to_json(value: Value) -> Json {
    match value {
        Value::Null => Json::Null,
        Value::Boolean(b) => Json::Bool(b),
        Value::Integer(i) => Json::from(i),
        Value::Float(f) => Json::from(f),
        Value::Text(s) => Json::String(s),
    }
}

impl Access {
    pub(crate) fn denied(&self, what: String) -> AccessError {
        tracing::warn!(service = %self.service, step = %self.step, object = self.observed, "denied guest access: {what}");
        AccessError::Denied(format!(
            "step `{}` of service `{}` may not {what}",
            self.step, self.service
        ))
    }

    pub(crate) async fn load(&self, id: u64) -> Result<Object, AccessError> {
        match self.core.get(id as i64).await {
            Ok(Some(object)) => Ok(object),
            Ok(None) => Err(AccessError::NotFound(format!("object {id} does not exist"))),
            Err(e) => Err(AccessError::NotFound(format!(
                "object {id} could not be read: {e}"
            ))),
        }
    }

    fn check_readable(&self, id: u64) -> Result<(), AccessError> {
        if self.readable.contains(&(id as i64)) {
            Ok(())
        } else {
            Err(self.denied(format!(
                "read object {id}: a sync step may read the object it observes ({}) and objects reached through its links",
                self.observed
            )))
        }
    }
}

impl Host for StepState {
    async fn get(&mut self, id: u64) -> Result<ModelObject, AccessError> {
        self.access.check_readable(id)?;
        let object = self.access.load(id).await?;
        Ok(to_model_object(&object))
    }

    async fn get_link(
        &mut self,
        id: u64,
        field: String,
    ) -> Result<Option<ModelObject>, AccessError> {
        self.access.check_readable(id)?;
        let object = self.access.load(id).await?;
        let registry = self.access.core.registry();
        let link = registry
            .schema()
            .field(&object.model, &field)
            .filter(|f| f.link_target().is_some())
            .ok_or_else(|| {
                AccessError::Invalid(format!("`{field}` is not a link field of {}", object.model))
            })?;
        let Some(target) = object.int_field(&link.column_name()) else {
            return Ok(None);
        };
        let linked = self.access.load(target as u64).await?;
        self.access.readable.insert(linked.id);
        Ok(Some(to_model_object(&linked)))
    }

    async fn set_feedback(
        &mut self,
        id: u64,
        fields: Vec<(String, Value)>,
    ) -> Result<(), AccessError> {
        if id as i64 != self.access.observed {
            return Err(self.access.denied(format!(
                "write object {id}: a sync step may write only the object it observes ({})",
                self.access.observed
            )));
        }
        let object = self.access.load(id).await?;
        let registry = self.access.core.registry();
        let mut input = Map::new();
        for (name, value) in fields {
            match registry.schema().field(&object.model, &name) {
                None => {
                    return Err(AccessError::Invalid(format!(
                        "{} has no field `{name}`",
                        object.model
                    )));
                }
                Some(f) if !f.flag("feedback_state") => {
                    return Err(self.access.denied(format!(
                        "write `{}.{name}`: it is declarative state, and sync steps write only feedback fields",
                        object.model
                    )));
                }
                Some(_) => {
                    input.insert(name, to_json(value));
                }
            }
        }
        self.access
            .core
            .set_feedback(id as i64, input)
            .await
            .map_err(|e| AccessError::Invalid(e.to_string()))
    }
}

impl crate::bindings::syncplane::plugin::types::Host for StepState {}
