//! `syncplane:plugin/declarative`: event steps change their own service's
//! models, as users do.

use serde_json::{Map, Value as Json};

use crate::bindings::event::syncplane::plugin::declarative::Host;
use crate::bindings::syncplane::plugin::types::{AccessError, ModelObject, Value};
use crate::host::models::{to_json, to_model_object};
use crate::state::{Access, StepState};

impl Access {
    /// Denies access to models outside the step's own service.
    fn check_own(&self, model: &str) -> Result<(), AccessError> {
        if self.own_models.contains(model) {
            Ok(())
        } else {
            Err(self.denied(format!(
                "touch `{model}`: an event step may change only the models of its own service"
            )))
        }
    }

    async fn own_object(&self, id: u64) -> Result<syncplane_core::Object, AccessError> {
        let object = self.load(id).await?;
        self.check_own(&object.model)?;
        Ok(object)
    }
}

fn input(fields: Vec<(String, Value)>) -> Map<String, Json> {
    fields.into_iter().map(|(k, v)| (k, to_json(v))).collect()
}

/// Core errors on writes are the caller's fault (unknown field, wrong type,
/// read-only field) or a vanished object.
fn invalid(e: syncplane_core::Error) -> AccessError {
    match e {
        syncplane_core::Error::NotFound { .. } => AccessError::NotFound(e.to_string()),
        other => AccessError::Invalid(other.to_string()),
    }
}

impl Host for StepState {
    async fn get(&mut self, id: u64) -> Result<ModelObject, AccessError> {
        Ok(to_model_object(&self.access.own_object(id).await?))
    }

    async fn find(
        &mut self,
        model: String,
        field: String,
        value: Value,
    ) -> Result<Vec<ModelObject>, AccessError> {
        self.access.check_own(&model)?;
        let filter = [(field, to_json(value))];
        let mut tx = self.access.core.begin().await.map_err(invalid)?;
        let found = tx.list(&model, &filter).await.map_err(invalid)?;
        Ok(found.iter().map(to_model_object).collect())
    }

    async fn create(
        &mut self,
        model: String,
        fields: Vec<(String, Value)>,
    ) -> Result<u64, AccessError> {
        self.access.check_own(&model)?;
        let mut fields = input(fields);
        let mut flags = Vec::new();
        for name in syncplane_core::IMPORT_FLAGS {
            match fields.remove(*name) {
                None | Some(Json::Null) => {}
                Some(Json::Bool(on)) => flags.push((*name, on)),
                Some(other) => {
                    return Err(AccessError::Invalid(format!(
                        "{model}.{name}: expected true or false, got {other}"
                    )));
                }
            }
        }
        // One transaction: the engine never sees the object without its flags.
        let mut tx = self.access.core.begin().await.map_err(invalid)?;
        let object = tx.create(&model, fields).await.map_err(invalid)?;
        if !flags.is_empty() {
            tx.set_flags(object.id, &flags).await.map_err(invalid)?;
        }
        tx.commit().await.map_err(invalid)?;
        Ok(object.id as u64)
    }

    async fn update(
        &mut self,
        id: u64,
        fields: Vec<(String, Value)>,
        always_update_timestamp: bool,
    ) -> Result<(), AccessError> {
        let before = self.access.own_object(id).await?;
        let mut tx = self.access.core.begin().await.map_err(invalid)?;
        let after = tx.update(before.id, input(fields)).await.map_err(invalid)?;
        if always_update_timestamp && after.sync.change_seq == before.sync.change_seq {
            tx.touch(before.id).await.map_err(invalid)?;
        }
        tx.commit().await.map_err(invalid)
    }

    async fn delete(&mut self, id: u64) -> Result<(), AccessError> {
        let object = self.access.own_object(id).await?;
        self.access.core.delete(object.id).await.map_err(invalid)
    }
}
