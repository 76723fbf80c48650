//! Builds the test guests and hello-world for wasm32-wasip2.

use std::path::PathBuf;

fn main() {
    let root =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo")).join("../..");
    for watched in [
        "tests/guests/src",
        "guests/hello-world/src",
        "sdk/rust/src",
        "wit",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    let target_dir = syncplane_guest_build::shared_target_dir();
    for (var, dir) in [
        ("SYNCPLANE_TEST_GUESTS_WASM", "tests/guests"),
        ("SYNCPLANE_HELLO_WORLD_WASM", "guests/hello-world"),
    ] {
        let wasm_dir =
            syncplane_guest_build::build(&root.join(dir), target_dir.as_deref(), |line| {
                println!("cargo:warning={line}")
            })
            .unwrap_or_else(|e| panic!("{e}"));
        println!("cargo:rustc-env={var}={}", wasm_dir.display());
    }
}
