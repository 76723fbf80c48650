//! REST bodies as `POST /xosapi/v1/...` decodes them: `serde_json` (the
//! axum `Json` extractor's parser, recursion limit included), then the
//! core's checks of a create's values for a core model chosen by the
//! first byte.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use syncplane_core::Registry;

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let core = syncplane_xproto::parse("core.xproto", syncplane_xproto::CORE_XPROTO)
            .expect("the core models parse");
        Registry::new(
            syncplane_xproto::Schema::default()
                .with_files(&[core])
                .expect("the core models are valid"),
        )
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let registry = registry();
    let models: Vec<&str> = registry
        .schema()
        .models()
        .filter(|m| !m.is_abstract())
        .map(|m| m.name.as_str())
        .collect();
    let model = models[usize::from(pick) % models.len()];
    let Ok(serde_json::Value::Object(input)) = serde_json::from_slice(body) else {
        return;
    };
    let _ = syncplane_core::decode_create(registry, model, input);
});
