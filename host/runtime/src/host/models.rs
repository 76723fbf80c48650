//! `models`: what a sync step may read and write.
//!
//! A sync step reads the object it observes, the objects reached through
//! its links, and objects of models its service is granted to read; it
//! writes only feedback fields of the object it observes.

use serde_json::{Map, Value as Json};
use syncplane_core::Object;

use super::{Fault, Kind, core_fault};
use crate::state::{Access, StepState};

/// Fields no guest ever sees.
pub(crate) const HIDDEN_FIELDS: &[&str] = &["password"];

impl Access {
    /// Reads an object; a missing one is `not-found`.
    pub(crate) async fn load(&self, id: u64) -> Result<Object, Fault> {
        let id = i64::try_from(id)
            .map_err(|_| Fault::NotFound(format!("object {id} does not exist")))?;
        match self.core.get(id).await {
            Ok(Some(object)) => Ok(object),
            Ok(None) => Err(Fault::NotFound(format!("object {id} does not exist"))),
            Err(e) => Err(core_fault(e)),
        }
    }

    /// Whether a sync step may read `object`: reached already, or of a
    /// model granted for reading.
    fn check_sync_read(&self, object: &Object) -> Result<(), Fault> {
        if self.readable.contains(&object.id) || self.ctx.may_read_granted(&object.model) {
            return Ok(());
        }
        Err(self.denied(
            Kind::ModelRead,
            format!(
                "read object {}: a sync step may read the object it observes ({}), objects reached through its links, and models granted in [capabilities.models]",
                object.id, self.observed
            ),
        ))
    }

    /// Whether `model` may be searched: granted for reading, or (for
    /// declarative components) one of the service's own.
    pub(crate) fn check_find(&self, model: &str) -> Result<(), Fault> {
        let own = self.role == crate::state::Role::Declarative && self.ctx.owns(model);
        if own || self.ctx.may_read_granted(model) {
            return Ok(());
        }
        Err(self.denied(
            Kind::ModelRead,
            format!("read `{model}`: it is not granted in [capabilities.models]"),
        ))
    }
}

impl StepState {
    pub(crate) async fn sync_get(&mut self, id: u64) -> Result<Object, Fault> {
        self.enter()?;
        let object = self.access.load(id).await?;
        self.access.check_sync_read(&object)?;
        Ok(object)
    }

    pub(crate) async fn sync_get_link(
        &mut self,
        id: u64,
        field: String,
    ) -> Result<Option<Object>, Fault> {
        self.enter()?;
        let object = self.access.load(id).await?;
        self.access.check_sync_read(&object)?;
        let registry = self.access.core.registry();
        let link = registry
            .schema()
            .field(&object.model, &field)
            .filter(|f| f.link_target().is_some())
            .ok_or_else(|| {
                Fault::Invalid(format!("`{field}` is not a link field of {}", object.model))
            })?;
        let Some(target) = object.int_field(&link.column_name()) else {
            return Ok(None);
        };
        let linked = self.access.load(target as u64).await?;
        self.access.readable.insert(linked.id);
        Ok(Some(linked))
    }

    /// `models.find` and `declarative.find`: objects of a model the step
    /// may search (granted for reading, or, for declarative components, its
    /// own) whose `field` equals `value`.
    pub(crate) async fn find(
        &mut self,
        model: String,
        field: String,
        value: Json,
    ) -> Result<Vec<Object>, Fault> {
        self.enter()?;
        self.access.check_find(&model)?;
        find(&self.access, &model, field, value).await
    }

    pub(crate) async fn sync_set_feedback(
        &mut self,
        id: u64,
        fields: Vec<(String, Json)>,
    ) -> Result<(), Fault> {
        self.enter()?;
        if id as i64 != self.access.observed {
            return Err(self.access.denied(
                Kind::ModelWrite,
                format!(
                    "write object {id}: a sync step may write only the object it observes ({})",
                    self.access.observed
                ),
            ));
        }
        let object = self.access.load(id).await?;
        let registry = self.access.core.registry();
        let mut input = Map::new();
        for (name, value) in fields {
            match registry.schema().field(&object.model, &name) {
                None => {
                    return Err(Fault::Invalid(format!(
                        "{} has no field `{name}`",
                        object.model
                    )));
                }
                Some(f) if !f.flag("feedback_state") => {
                    return Err(self.access.denied(
                        Kind::ModelWrite,
                        format!(
                            "write `{}.{name}`: it is declarative state, and sync steps write only feedback fields",
                            object.model
                        ),
                    ));
                }
                Some(_) => {
                    input.insert(name, value);
                }
            }
        }
        self.access
            .core
            .set_feedback(&self.access.principal(), id as i64, input)
            .await
            .map_err(core_fault)
    }
}

/// The objects of `model` (and its descendants) whose `field` is `value`.
pub(crate) async fn find(
    access: &Access,
    model: &str,
    field: String,
    value: Json,
) -> Result<Vec<Object>, Fault> {
    if HIDDEN_FIELDS.contains(&field.as_str()) {
        return Err(Fault::Invalid(format!("{model} has no field `{field}`")));
    }
    let filter = [(field, value)];
    let mut tx = access.core.begin().await.map_err(core_fault)?;
    tx.list(model, &filter).await.map_err(core_fault)
}
