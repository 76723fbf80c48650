//! Host bindings of every WIT world, generated in one place, for each
//! version of the `syncplane:plugin` package the host serves.
//!
//! [`v2`] is the current contract (`wit/plugin.wit`, 0.2.0); [`v1`] the
//! previous one (`wit/previous/0.1.0`), kept so components built against
//! it load and run unchanged. In each, `bindgen!` emits the `sync-step`
//! world with the shared interfaces (`types`, `models`, `log`, and in 0.2
//! `config` and `secrets`); `event` adds the `event-step` world with
//! `declarative`; `pull` and `policy` reuse those. Every import may trap,
//! so a host-side failure is a trap, never a guest-visible error.

/// `syncplane:plugin@0.2.0`.
pub mod v2 {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "sync-step",
        imports: { default: async | trappable },
        exports: { default: async },
    });

    /// The `event-step` world.
    pub mod event {
        wasmtime::component::bindgen!({
            path: "../../wit",
            world: "event-step",
            imports: { default: async | trappable },
            exports: { default: async },
            with: {
                "syncplane:plugin/types": super::syncplane::plugin::types,
                "syncplane:plugin/log": super::syncplane::plugin::log,
                "syncplane:plugin/config": super::syncplane::plugin::config,
                "syncplane:plugin/secrets": super::syncplane::plugin::secrets,
            },
        });
    }

    /// The `pull-step` world.
    pub mod pull {
        wasmtime::component::bindgen!({
            path: "../../wit",
            world: "pull-step",
            imports: { default: async | trappable },
            exports: { default: async },
            with: {
                "syncplane:plugin/types": super::syncplane::plugin::types,
                "syncplane:plugin/log": super::syncplane::plugin::log,
                "syncplane:plugin/config": super::syncplane::plugin::config,
                "syncplane:plugin/secrets": super::syncplane::plugin::secrets,
                "syncplane:plugin/declarative": super::event::syncplane::plugin::declarative,
            },
        });
    }

    /// The `model-policy` world.
    pub mod policy {
        wasmtime::component::bindgen!({
            path: "../../wit",
            world: "model-policy",
            imports: { default: async | trappable },
            exports: { default: async },
            with: {
                "syncplane:plugin/types": super::syncplane::plugin::types,
                "syncplane:plugin/log": super::syncplane::plugin::log,
                "syncplane:plugin/config": super::syncplane::plugin::config,
                "syncplane:plugin/secrets": super::syncplane::plugin::secrets,
                "syncplane:plugin/declarative": super::event::syncplane::plugin::declarative,
            },
        });
    }
}

/// `syncplane:plugin@0.1.0`.
pub mod v1 {
    wasmtime::component::bindgen!({
        path: "../../wit/previous/0.1.0",
        world: "sync-step",
        imports: { default: async | trappable },
        exports: { default: async },
    });

    /// The `event-step` world.
    pub mod event {
        wasmtime::component::bindgen!({
            path: "../../wit/previous/0.1.0",
            world: "event-step",
            imports: { default: async | trappable },
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
            path: "../../wit/previous/0.1.0",
            world: "pull-step",
            imports: { default: async | trappable },
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
            path: "../../wit/previous/0.1.0",
            world: "model-policy",
            imports: { default: async | trappable },
            exports: { default: async },
            with: {
                "syncplane:plugin/types": super::syncplane::plugin::types,
                "syncplane:plugin/log": super::syncplane::plugin::log,
                "syncplane:plugin/declarative": super::event::syncplane::plugin::declarative,
            },
        });
    }
}
