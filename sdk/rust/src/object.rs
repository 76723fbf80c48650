//! Typed objects and model access.

use std::fmt;
use std::ops::Deref;

use crate::__private::ModelObject;
use crate::__private::syncplane::plugin::models;
use crate::__private::syncplane::plugin::types::AccessError;
use crate::StepError;
use crate::fields::{FieldError, Fields, Value};

/// A model type, usually declared with [`model!`](crate::model).
pub trait Model: Sized {
    /// The model's name in xproto.
    const NAME: &'static str;
    /// Reads the typed fields.
    ///
    /// # Errors
    ///
    /// When a field is missing or of another type.
    fn from_fields(fields: &Fields) -> Result<Self, FieldError>;
}

/// An object: its id and leaf model, typed fields (through `Deref`), and the
/// raw fields for anything the type does not declare.
pub struct Object<M> {
    /// The object id.
    pub id: u64,
    /// The object's most specialised model.
    pub model: String,
    /// All fields as sent by the host.
    pub fields: Fields,
    typed: M,
}

impl<M> Deref for Object<M> {
    type Target = M;
    fn deref(&self) -> &M {
        &self.typed
    }
}

impl<M> fmt::Display for Object<M> {
    /// Like XOS's `str(o)`: the `name` field when there is one, else `Model id`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.fields.raw("name") {
            Some(Value::Text(name)) if !name.is_empty() => f.write_str(name),
            _ => write!(f, "{} {}", self.model, self.id),
        }
    }
}

impl From<AccessError> for StepError {
    fn from(e: AccessError) -> Self {
        StepError::Failed(match e {
            AccessError::Denied(m) => format!("access denied: {m}"),
            AccessError::NotFound(m) => format!("not found: {m}"),
            AccessError::Invalid(m) => format!("invalid access: {m}"),
        })
    }
}

impl<M: Model> Object<M> {
    pub(crate) fn from_raw(raw: ModelObject) -> Result<Self, FieldError> {
        let fields = Fields(raw.fields);
        let typed = M::from_fields(&fields)?;
        Ok(Object {
            id: raw.id,
            model: raw.model,
            fields,
            typed,
        })
    }

    /// Follows the link field `field` (e.g. `"owner"`) and reads the linked
    /// object, in its leaf model, as `T` — XOS's `o.owner.leaf_model`.
    ///
    /// # Errors
    ///
    /// [`StepError::Failed`] when the link is empty, access is denied, or the
    /// linked object is not a `T`.
    pub fn follow<T: Model>(&self, field: &str) -> Result<Object<T>, StepError> {
        match models::get_link(self.id, field)? {
            Some(raw) => Ok(Object::from_raw(raw)?),
            None => Err(StepError::Failed(format!(
                "link `{field}` of {} {} is empty",
                self.model, self.id
            ))),
        }
    }

    /// Writes feedback fields of this object (fields marked `feedback_state`).
    ///
    /// # Errors
    ///
    /// [`StepError::Failed`] when the host refuses, e.g. for declarative fields.
    pub fn set_feedback(&self, fields: &[(&str, Value)]) -> Result<(), StepError> {
        let fields = fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect::<Vec<_>>();
        Ok(models::set_feedback(self.id, &fields)?)
    }
}

/// Reads any object by id as `T`. The host allows the observed object,
/// objects reached through links, and objects of models the manifest grants
/// for reading (`[capabilities.models] read`); anything else is denied.
///
/// # Errors
///
/// [`StepError::Failed`] when access is denied or the object is not a `T`.
pub fn get<T: Model>(id: u64) -> Result<Object<T>, StepError> {
    Ok(Object::from_raw(models::get(id)?)?)
}

/// The objects of model `T` (and of the models inheriting it) whose field
/// `field` equals `value`. `T::NAME` must be granted for reading in the
/// manifest:
///
/// ```toml
/// [capabilities.models]
/// read = ["core.Site"]
/// ```
///
/// ```no_run
/// use syncplane_sdk::prelude::*;
///
/// model! { pub struct Site { pub name: String, pub login_base: String } }
///
/// # fn step() -> StepResult {
/// let sites = syncplane_sdk::find::<Site>("login_base", "mysite")?;
/// for site in &sites {
///     log::info!("found site {}", site.name);
/// }
/// # Ok(()) }
/// ```
///
/// # Errors
///
/// [`StepError::Failed`] when the model is not granted for reading, the
/// field does not exist, or an object found is not a `T`.
pub fn find<T: Model>(field: &str, value: impl Into<Value>) -> Result<Vec<Object<T>>, StepError> {
    let found = models::find(T::NAME, field, &value.into())?;
    let mut objects = Vec::with_capacity(found.len());
    for raw in found {
        objects.push(Object::from_raw(raw)?);
    }
    Ok(objects)
}

/// Declares a model type with typed fields; field names are the xproto
/// names (links as `<name>_id`).
#[macro_export]
macro_rules! model {
    ($(#[$meta:meta])* $vis:vis struct $name:ident { $($(#[$fmeta:meta])* $fvis:vis $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone)]
        $vis struct $name { $($(#[$fmeta])* $fvis $field: $ty),* }

        impl $crate::Model for $name {
            const NAME: &'static str = stringify!($name);
            fn from_fields(fields: &$crate::Fields) -> ::core::result::Result<Self, $crate::FieldError> {
                Ok(Self { $($field: fields.get(stringify!($field))?),* })
            }
        }
    };
}
