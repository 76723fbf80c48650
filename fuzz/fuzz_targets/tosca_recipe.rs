//! TOSCA recipes as `POST /run` takes them: the limit walk, the YAML
//! parse and the plan against the core models. Any input ends in a plan
//! or an error, quickly.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use syncplane_xproto::Schema;

fn schema() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let core = syncplane_xproto::parse("core.xproto", syncplane_xproto::CORE_XPROTO)
            .expect("the core models parse");
        Schema::default()
            .with_files(&[core])
            .expect("the core models are valid")
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(recipe) = syncplane_tosca::parse_recipe(text) {
        let _ = recipe.plan(schema());
    }
});
