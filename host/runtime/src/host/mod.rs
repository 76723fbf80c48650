//! Host interfaces, one per file.

mod declarative;
mod log;
pub(crate) mod models;

pub(crate) use models::to_model_object;
