//! The syncplane SDK for Rust service authors.
//!
//! A sync step is a type implementing [`SyncStep`], exported with
//! [`export_sync_step!`]; models are declared with [`model!`] so fields are
//! read as typed struct fields. The tutorial's step:
//!
//! ```no_run
//! use syncplane_sdk::prelude::*;
//!
//! model! {
//!     pub struct HelloWorldServiceInstance { pub name: Option<String>, pub hello_to: String }
//! }
//!
//! struct SyncHelloWorldServiceInstance;
//!
//! impl SyncStep for SyncHelloWorldServiceInstance {
//!     type Model = HelloWorldServiceInstance;
//!
//!     fn sync_record(o: &Object<HelloWorldServiceInstance>) -> StepResult {
//!         if o.hello_to == "Tyrion Lannister" {
//!             return Err(Deferred("Maybe later".into()));
//!         }
//!         Ok(())
//!     }
//! }
//!
//! export_sync_step!(SyncHelloWorldServiceInstance);
//! ```
//!
//! # What a guest may reach
//!
//! The host checks every access against the service's manifest:
//!
//! - **Models.** A sync step reads the object it observes and what that
//!   object links to ([`Object::follow`]), objects of models granted for
//!   reading ([`get`], [`find`]), and writes only feedback fields
//!   ([`Object::set_feedback`]). Policies, pull steps and event steps change
//!   their own service's models and models granted for writing through
//!   [`event::declarative`].
//! - **Configuration and secrets** the manifest declares: [`config`],
//!   [`require_config`], [`secret`].
//! - **HTTP** to the origins the manifest grants: [`http`].
//!
//! ```toml
//! [capabilities]
//! outbound_http = ["http://127.0.0.1:8081"]
//! config = ["api_url"]
//! secrets = ["api_key"]
//!
//! [capabilities.models]
//! read = ["core.Site"]
//! write = ["chainb.ChainBInstance"]
//! ```
//!
//! Every refusal is an ordinary error that `?` turns into
//! [`StepError::Failed`] (sync steps) or a `String` (the other kinds), so it
//! ends up in the object's `backend_status`.
//!
//! # Caveats
//!
//! Guests built with this SDK need a host speaking `syncplane:plugin@0.2.0`.
//! A host-side failure (a database error, exceeding the log budget) is not
//! an error the guest sees: the host stops the invocation (a trap).

#![deny(missing_docs)]

pub mod event;
mod fields;
pub mod http;
pub mod log;
mod object;
mod settings;

pub use fields::{FieldError, Fields, FromValue, Value};
pub use object::{Model, Object, find, get};
pub use settings::{Setting, SettingError, SettingErrorKind, config, require_config, secret};

/// Why a step did not succeed. `?` turns model access errors,
/// [`SettingError`]s and [`http::HttpError`]s into [`StepError::Failed`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepError {
    /// Retry later at the normal interval; not an error.
    Deferred(String),
    /// The step failed; the object is marked with `backend_code = 2`.
    Failed(String),
}

pub use StepError::{Deferred, Failed};

/// What a step returns.
pub type StepResult = Result<(), StepError>;

impl From<FieldError> for StepError {
    fn from(e: FieldError) -> Self {
        StepError::Failed(e.to_string())
    }
}

/// A sync step over one model.
pub trait SyncStep {
    /// The model the step observes.
    type Model: Model;

    /// Brings the backend in line with `o`; must be idempotent.
    fn sync_record(o: &Object<Self::Model>) -> StepResult;

    /// Tears down what the backend holds for the deleted `o`.
    fn delete_record(o: &Object<Self::Model>) -> StepResult {
        let _ = o;
        Ok(())
    }
}

/// Everything a step module usually needs.
pub mod prelude {
    pub use crate::log;
    pub use crate::{
        Deferred, Failed, Model, Object, StepError, StepResult, SyncStep, export_sync_step, model,
    };
}

#[doc(hidden)]
#[allow(
    clippy::too_many_arguments,
    reason = "the generated export of `process-event` takes the flattened event record"
)]
pub mod __private_event {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "event-step",
        pub_export_macro: true,
        default_bindings_module: "syncplane_sdk::__private_event",
        export_macro_name: "__export_event_world",
        with: {
            "syncplane:plugin/types@0.2.0": crate::__private::syncplane::plugin::types,
            "syncplane:plugin/log@0.2.0": crate::__private::syncplane::plugin::log,
            "syncplane:plugin/config@0.2.0": crate::__private::syncplane::plugin::config,
            "syncplane:plugin/secrets@0.2.0": crate::__private::syncplane::plugin::secrets,
        },
    });
}

#[doc(hidden)]
pub mod __private_pull {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "pull-step",
        pub_export_macro: true,
        default_bindings_module: "syncplane_sdk::__private_pull",
        export_macro_name: "__export_pull_world",
        with: {
            "syncplane:plugin/types@0.2.0": crate::__private::syncplane::plugin::types,
            "syncplane:plugin/log@0.2.0": crate::__private::syncplane::plugin::log,
            "syncplane:plugin/config@0.2.0": crate::__private::syncplane::plugin::config,
            "syncplane:plugin/secrets@0.2.0": crate::__private::syncplane::plugin::secrets,
            "syncplane:plugin/declarative@0.2.0": crate::__private_event::syncplane::plugin::declarative,
        },
    });
}

/// Exports an [`event::PullStep`] as the component's `pull-step` world, and
/// provides the `main` a binary target needs.
#[macro_export]
macro_rules! export_pull_step {
    ($step:ty) => {
        #[doc(hidden)]
        struct __SyncplanePullExport;

        impl $crate::__private_pull::Guest for __SyncplanePullExport {
            fn pull_records() -> ::core::result::Result<(), ::std::string::String> {
                <$step as $crate::event::PullStep>::pull_records()
            }
        }

        $crate::__private_pull::__export_pull_world!(__SyncplanePullExport);

        fn main() {}
    };
}

#[doc(hidden)]
pub mod __private_policy {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "model-policy",
        pub_export_macro: true,
        default_bindings_module: "syncplane_sdk::__private_policy",
        export_macro_name: "__export_policy_world",
        with: {
            "syncplane:plugin/types@0.2.0": crate::__private::syncplane::plugin::types,
            "syncplane:plugin/log@0.2.0": crate::__private::syncplane::plugin::log,
            "syncplane:plugin/config@0.2.0": crate::__private::syncplane::plugin::config,
            "syncplane:plugin/secrets@0.2.0": crate::__private::syncplane::plugin::secrets,
            "syncplane:plugin/declarative@0.2.0": crate::__private_event::syncplane::plugin::declarative,
        },
    });

    use crate::Object;

    /// Runs a handler of `P` on a raw object.
    pub fn run<P: crate::event::ModelPolicy>(
        raw: crate::__private::ModelObject,
        handler: fn(&Object<P::Model>) -> Result<(), String>,
    ) -> Result<(), String> {
        let object = Object::<P::Model>::from_raw(raw).map_err(|e| e.to_string())?;
        handler(&object)
    }
}

/// Exports an [`event::ModelPolicy`] as the component's `model-policy`
/// world, and provides the `main` a binary target needs.
#[macro_export]
macro_rules! export_model_policy {
    ($policy:ty) => {
        #[doc(hidden)]
        struct __SyncplanePolicyExport;

        impl $crate::__private_policy::Guest for __SyncplanePolicyExport {
            fn handle_create(
                obj: $crate::__private::ModelObject,
            ) -> ::core::result::Result<(), ::std::string::String> {
                $crate::__private_policy::run::<$policy>(
                    obj,
                    <$policy as $crate::event::ModelPolicy>::handle_create,
                )
            }
            fn handle_update(
                obj: $crate::__private::ModelObject,
            ) -> ::core::result::Result<(), ::std::string::String> {
                $crate::__private_policy::run::<$policy>(
                    obj,
                    <$policy as $crate::event::ModelPolicy>::handle_update,
                )
            }
            fn handle_delete(
                obj: $crate::__private::ModelObject,
            ) -> ::core::result::Result<(), ::std::string::String> {
                $crate::__private_policy::run::<$policy>(
                    obj,
                    <$policy as $crate::event::ModelPolicy>::handle_delete,
                )
            }
        }

        $crate::__private_policy::__export_policy_world!(__SyncplanePolicyExport);

        fn main() {}
    };
}

/// Exports an [`event::EventStep`] as the component's `event-step` world,
/// and provides the `main` a binary target needs.
#[macro_export]
macro_rules! export_event_step {
    ($step:ty) => {
        #[doc(hidden)]
        struct __SyncplaneEventExport;

        impl $crate::__private_event::Guest for __SyncplaneEventExport {
            fn process_event(
                event: $crate::__private_event::Event,
            ) -> ::core::result::Result<(), ::std::string::String> {
                <$step as $crate::event::EventStep>::process_event(&event)
            }
        }

        $crate::__private_event::__export_event_world!(__SyncplaneEventExport);

        fn main() {}
    };
}

#[doc(hidden)]
pub mod __private {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "sync-step",
        pub_export_macro: true,
        default_bindings_module: "syncplane_sdk::__private",
        export_macro_name: "__export_world",
    });

    use crate::{Object, SyncStep};

    fn convert(result: crate::StepResult) -> Result<(), self::StepError> {
        match result {
            Ok(()) => Ok(()),
            Err(crate::StepError::Deferred(m)) => Err(self::StepError::Deferred(m)),
            Err(crate::StepError::Failed(m)) => Err(self::StepError::Failed(m)),
        }
    }

    /// Runs `sync_record` of `S` on a raw object.
    pub fn run_sync<S: SyncStep>(raw: ModelObject) -> Result<(), self::StepError> {
        convert(
            Object::<S::Model>::from_raw(raw)
                .map_err(crate::StepError::from)
                .and_then(|o| S::sync_record(&o)),
        )
    }

    /// Runs `delete_record` of `S` on a raw object.
    pub fn run_delete<S: SyncStep>(raw: ModelObject) -> Result<(), self::StepError> {
        convert(
            Object::<S::Model>::from_raw(raw)
                .map_err(crate::StepError::from)
                .and_then(|o| S::delete_record(&o)),
        )
    }
}

/// Exports a [`SyncStep`] as the component's `sync-step` world, and provides
/// the `main` a binary target needs.
#[macro_export]
macro_rules! export_sync_step {
    ($step:ty) => {
        #[doc(hidden)]
        struct __SyncplaneExport;

        impl $crate::__private::Guest for __SyncplaneExport {
            fn sync_record(
                obj: $crate::__private::ModelObject,
            ) -> ::core::result::Result<(), $crate::__private::StepError> {
                $crate::__private::run_sync::<$step>(obj)
            }

            fn delete_record(
                obj: $crate::__private::ModelObject,
            ) -> ::core::result::Result<(), $crate::__private::StepError> {
                $crate::__private::run_delete::<$step>(obj)
            }
        }

        $crate::__private::__export_world!(__SyncplaneExport);

        fn main() {}
    };
}
