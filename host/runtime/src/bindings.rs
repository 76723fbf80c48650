//! Host bindings of every WIT world, generated in one place.
//!
//! `bindgen!` emits `SyncStep` (the world), `SyncStepPre`, and the host
//! traits `syncplane::plugin::models::Host` and `syncplane::plugin::log::Host`;
//! [`event`] adds the `event-step` world and its `declarative` interface,
//! sharing the `types` and `log` interfaces with the first.

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "sync-step",
    imports: { default: async },
    exports: { default: async },
});

/// The `event-step` world.
pub mod event {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "event-step",
        imports: { default: async },
        exports: { default: async },
        with: {
            "syncplane:plugin/types": super::syncplane::plugin::types,
            "syncplane:plugin/log": super::syncplane::plugin::log,
        },
    });
}

/// The `pull-step` world.
pub mod pull {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "pull-step",
        imports: { default: async },
        exports: { default: async },
        with: {
            "syncplane:plugin/types": super::syncplane::plugin::types,
            "syncplane:plugin/log": super::syncplane::plugin::log,
            "syncplane:plugin/declarative": super::event::syncplane::plugin::declarative,
        },
    });
}

/// The `model-policy` world.
pub mod policy {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "model-policy",
        imports: { default: async },
        exports: { default: async },
        with: {
            "syncplane:plugin/types": super::syncplane::plugin::types,
            "syncplane:plugin/log": super::syncplane::plugin::log,
            "syncplane:plugin/declarative": super::event::syncplane::plugin::declarative,
        },
    });
}
