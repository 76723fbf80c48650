//! Host interfaces, one per file.

mod log;
mod models;

pub(crate) use models::to_model_object;
