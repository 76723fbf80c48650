//! Builds the hello-world guest so `syncplane demo` can embed it, and the
//! no-op guest for `syncplane bench sync`.

use std::path::PathBuf;

fn main() {
    let root =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo")).join("../..");
    let wasm_dir = syncplane_guest_build::build_from_build_script(&root, "guests/hello-world");
    println!(
        "cargo:rustc-env=SYNCPLANE_HELLO_WORLD_WASM={}",
        wasm_dir.display()
    );
    println!(
        "cargo:rustc-env=SYNCPLANE_HELLO_WORLD_DIR={}",
        root.join("guests/hello-world").display()
    );
    let noop_wasm = syncplane_guest_build::build_from_build_script(&root, "guests/noop");
    println!(
        "cargo:rustc-env=SYNCPLANE_NOOP_WASM={}",
        noop_wasm.display()
    );
    println!(
        "cargo:rustc-env=SYNCPLANE_NOOP_DIR={}",
        root.join("guests/noop").display()
    );
}
