//! TOSCA custom types generated from models, as XOS serves them at
//! `/custom_type/<model>`. The one generator lives in
//! `syncplane-xproto-gen` (`--target tosca`); this is its per-model entry.

use syncplane_xproto::Schema;

/// The TOSCA definition of `model`: its properties (writable fields, plus
/// `must-exist`), its requirements (link fields) and its capability.
/// Returns `None` for an unknown model.
pub fn custom_type(schema: &Schema, model: &str) -> Option<String> {
    // Rendering fails only on a template bug (the templates are tested
    // against every kind of field), so a failure reads as "no type".
    syncplane_xproto_gen::tosca::custom_type(schema, model)
        .ok()
        .flatten()
}
