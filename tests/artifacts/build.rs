//! Builds the test guests, hello-world and the PowerDNS service for
//! wasm32-wasip2.

use std::path::PathBuf;

fn main() {
    let root =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo")).join("../..");
    for (var, guest) in [
        ("SYNCPLANE_TEST_GUESTS_WASM", "tests/guests"),
        ("SYNCPLANE_HELLO_WORLD_WASM", "guests/hello-world"),
        ("SYNCPLANE_POWERDNS_WASM", "guests/powerdns"),
    ] {
        let wasm_dir = syncplane_guest_build::build_from_build_script(&root, guest);
        println!("cargo:rustc-env={var}={}", wasm_dir.display());
    }
}
