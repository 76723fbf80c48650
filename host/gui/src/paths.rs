//! The object a URL names (`/ui/m/<Model>/<id>...`): an id that is not a
//! number names no object, answered as a page (`404`), not as a bare
//! parse error.

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;

use crate::error::GuiError;

/// The model and object id of a URL.
pub(crate) struct ObjectPath {
    /// The model's name.
    pub(crate) model: String,
    /// The object's id.
    pub(crate) id: i64,
}

impl<S: Send + Sync> FromRequestParts<S> for ObjectPath {
    type Rejection = GuiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path((model, id)) = Path::<(String, String)>::from_request_parts(parts, state)
            .await
            .map_err(|_| GuiError::NotFound("there is no such page".into()))?;
        let id = id.parse::<i64>().map_err(|_| {
            GuiError::NotFound(format!("{model} `{id}` does not exist: an id is a number"))
        })?;
        Ok(ObjectPath { model, id })
    }
}
