//! `declarative`: event steps, pull steps and model policies change
//! declarative state, as users do, of their own service's models and of
//! models granted for writing; they read those and models granted for
//! reading.

use serde_json::{Map, Value as Json};
use syncplane_core::Object;

use super::models::HIDDEN_FIELDS;
use super::{Fault, Kind, core_fault};
use crate::state::{Access, StepState};

impl Access {
    /// Denies writes outside the service's own and write-granted models.
    fn check_write(&self, model: &str) -> Result<(), Fault> {
        if self.ctx.owns(model) || self.ctx.may_write_granted(model) {
            return Ok(());
        }
        Err(self.denied(
            Kind::ModelWrite,
            format!(
                "change `{model}`: it is not one of the service's models and not granted for writing in [capabilities.models]"
            ),
        ))
    }

    /// Reads an object of a model the step may read.
    async fn readable_object(&self, id: u64) -> Result<Object, Fault> {
        let object = self.load(id).await?;
        self.check_find(&object.model)?;
        Ok(object)
    }

    /// Reads an object of a model the step may change.
    async fn writable_object(&self, id: u64) -> Result<Object, Fault> {
        let object = self.load(id).await?;
        self.check_write(&object.model)?;
        Ok(object)
    }
}

/// Refuses fields no guest may see or set.
fn visible(model: &str, fields: Vec<(String, Json)>) -> Result<Map<String, Json>, Fault> {
    if let Some((name, _)) = fields
        .iter()
        .find(|(k, _)| HIDDEN_FIELDS.contains(&k.as_str()))
    {
        return Err(Fault::Invalid(format!(
            "{model}.{name} cannot be set by a component"
        )));
    }
    Ok(fields.into_iter().collect())
}

impl StepState {
    pub(crate) async fn decl_get(&mut self, id: u64) -> Result<Object, Fault> {
        self.enter()?;
        self.access.readable_object(id).await
    }

    pub(crate) async fn decl_create(
        &mut self,
        model: String,
        fields: Vec<(String, Json)>,
    ) -> Result<u64, Fault> {
        self.enter()?;
        self.access.check_write(&model)?;
        let mut fields = visible(&model, fields)?;
        let mut flags = Vec::new();
        for name in syncplane_core::IMPORT_FLAGS {
            match fields.remove(*name) {
                None | Some(Json::Null) => {}
                Some(Json::Bool(on)) => flags.push((*name, on)),
                Some(other) => {
                    return Err(Fault::Invalid(format!(
                        "{model}.{name}: expected true or false, got {other}"
                    )));
                }
            }
        }
        // One transaction: the engine never sees the object without its flags.
        let mut tx = self.access.begin().await?;
        let object = tx.create(&model, fields).await.map_err(core_fault)?;
        if !flags.is_empty() {
            tx.set_flags(object.id, &flags).await.map_err(core_fault)?;
        }
        tx.commit().await.map_err(core_fault)?;
        Ok(object.id as u64)
    }

    pub(crate) async fn decl_update(
        &mut self,
        id: u64,
        fields: Vec<(String, Json)>,
        always_update_timestamp: bool,
    ) -> Result<(), Fault> {
        self.enter()?;
        let before = self.access.writable_object(id).await?;
        let fields = visible(&before.model, fields)?;
        let mut tx = self.access.begin().await?;
        let after = tx.update(before.id, fields).await.map_err(core_fault)?;
        if always_update_timestamp && after.sync.change_seq == before.sync.change_seq {
            tx.touch(before.id).await.map_err(core_fault)?;
        }
        tx.commit().await.map_err(core_fault)
    }

    pub(crate) async fn decl_delete(&mut self, id: u64) -> Result<(), Fault> {
        self.enter()?;
        let object = self.access.writable_object(id).await?;
        let mut tx = self.access.begin().await?;
        tx.delete(object.id).await.map_err(core_fault)?;
        tx.commit().await.map_err(core_fault)
    }
}
