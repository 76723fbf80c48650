//! Host bindings of every WIT world, generated in one place.
//!
//! `bindgen!` emits `SyncStep` (the world), `SyncStepPre`, and the host
//! traits `syncplane::plugin::models::Host` and `syncplane::plugin::log::Host`.

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "sync-step",
    imports: { default: async },
    exports: { default: async },
});
