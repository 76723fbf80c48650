//! The xproto parser and schema checks on arbitrary text: they must return
//! a located error, never panic, loop or overflow the stack.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(file) = syncplane_xproto::parse("fuzz.xproto", text) {
        // Models that parse are checked against the built-in core models,
        // as `service install` does.
        if let Ok(core) = syncplane_xproto::parse("core.xproto", syncplane_xproto::CORE_XPROTO) {
            let _ = syncplane_xproto::Schema::default().with_files(&[core, file]);
        }
    }
});
