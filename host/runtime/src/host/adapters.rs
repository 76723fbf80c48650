//! The host interfaces of each WIT version, bound to the version-free
//! implementations on [`StepState`]. Each version has its own generated
//! types; the conversions are the same, so one macro writes them.

macro_rules! adapt_version {
    ($v:ident, { $($models_extra:tt)* }) => {
        /// Bindings of this version's interfaces.
        pub(crate) mod $v {
            use serde_json::Value as Json;
            use syncplane_core::Object;

            use crate::bindings::$v::event::syncplane::plugin::declarative;
            use crate::bindings::$v::syncplane::plugin::types::{AccessError, ModelObject, Value};
            use crate::bindings::$v::syncplane::plugin::{log, models, types};
            #[allow(unused_imports)]
            use crate::host::Fault;
            use crate::host::models::HIDDEN_FIELDS;
            use crate::state::StepState;

            /// An object as this version's guests see it (hidden fields left out).
            pub(crate) fn object(object: &Object) -> ModelObject {
                let fields = object
                    .fields
                    .iter()
                    .filter(|(k, _)| !HIDDEN_FIELDS.contains(&k.as_str()))
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

            fn objects(found: Vec<Object>) -> Vec<ModelObject> {
                found.iter().map(object).collect()
            }

            pub(crate) fn value(value: Value) -> Json {
                match value {
                    Value::Null => Json::Null,
                    Value::Boolean(b) => Json::Bool(b),
                    Value::Integer(i) => Json::from(i),
                    Value::Float(f) => Json::from(f),
                    Value::Text(s) => Json::String(s),
                }
            }

            fn fields(fields: Vec<(String, Value)>) -> Vec<(String, Json)> {
                fields.into_iter().map(|(k, v)| (k, value(v))).collect()
            }

            /// A typed access error for the guest, or a trap.
            pub(crate) fn lift<T>(result: Result<T, Fault>) -> wasmtime::Result<Result<T, AccessError>> {
                match result {
                    Ok(t) => Ok(Ok(t)),
                    Err(Fault::Denied(m)) => Ok(Err(AccessError::Denied(m))),
                    Err(Fault::NotFound(m)) => Ok(Err(AccessError::NotFound(m))),
                    Err(Fault::Invalid(m)) => Ok(Err(AccessError::Invalid(m))),
                    Err(Fault::Trap(trap)) => Err(wasmtime::Error::new(trap)),
                }
            }

            impl types::Host for StepState {}

            impl models::Host for StepState {
                async fn get(&mut self, id: u64) -> wasmtime::Result<Result<ModelObject, AccessError>> {
                    lift(self.sync_get(id).await.map(|o| object(&o)))
                }

                async fn get_link(
                    &mut self,
                    id: u64,
                    field: String,
                ) -> wasmtime::Result<Result<Option<ModelObject>, AccessError>> {
                    lift(self.sync_get_link(id, field).await.map(|o| o.as_ref().map(object)))
                }

                async fn set_feedback(
                    &mut self,
                    id: u64,
                    values: Vec<(String, Value)>,
                ) -> wasmtime::Result<Result<(), AccessError>> {
                    lift(self.sync_set_feedback(id, fields(values)).await)
                }

                $($models_extra)*
            }

            impl declarative::Host for StepState {
                async fn get(&mut self, id: u64) -> wasmtime::Result<Result<ModelObject, AccessError>> {
                    lift(self.decl_get(id).await.map(|o| object(&o)))
                }

                async fn find(
                    &mut self,
                    model: String,
                    field: String,
                    equals: Value,
                ) -> wasmtime::Result<Result<Vec<ModelObject>, AccessError>> {
                    lift(self.find(model, field, value(equals)).await.map(objects))
                }

                async fn create(
                    &mut self,
                    model: String,
                    values: Vec<(String, Value)>,
                ) -> wasmtime::Result<Result<u64, AccessError>> {
                    lift(self.decl_create(model, fields(values)).await)
                }

                async fn update(
                    &mut self,
                    id: u64,
                    values: Vec<(String, Value)>,
                    always_update_timestamp: bool,
                ) -> wasmtime::Result<Result<(), AccessError>> {
                    lift(self.decl_update(id, fields(values), always_update_timestamp).await)
                }

                async fn delete(&mut self, id: u64) -> wasmtime::Result<Result<(), AccessError>> {
                    lift(self.decl_delete(id).await)
                }
            }

            impl log::Host for StepState {
                async fn log(
                    &mut self,
                    level: log::Level,
                    message: String,
                    fields: Vec<(String, String)>,
                ) -> wasmtime::Result<()> {
                    let level = match level {
                        log::Level::Trace => tracing::Level::TRACE,
                        log::Level::Debug => tracing::Level::DEBUG,
                        log::Level::Info => tracing::Level::INFO,
                        log::Level::Warn => tracing::Level::WARN,
                        log::Level::Error => tracing::Level::ERROR,
                    };
                    self.guest_log(level, message, fields).map_err(wasmtime::Error::new)
                }
            }
        }
    };
}

adapt_version!(v1, {});

adapt_version!(v2, {
    async fn find(
        &mut self,
        model: String,
        field: String,
        equals: Value,
    ) -> wasmtime::Result<Result<Vec<ModelObject>, AccessError>> {
        lift(self.find(model, field, value(equals)).await.map(objects))
    }
});

use crate::bindings::v2::syncplane::plugin::{config, secrets, types::AccessError};
use crate::state::StepState;

impl config::Host for StepState {
    async fn get(&mut self, name: String) -> wasmtime::Result<Result<Option<String>, AccessError>> {
        v2::lift(self.config_get(name))
    }
}

impl secrets::Host for StepState {
    async fn get(&mut self, name: String) -> wasmtime::Result<Result<String, AccessError>> {
        v2::lift(self.secret_get(name))
    }
}
