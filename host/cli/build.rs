//! Builds the hello-world guest so `syncplane demo` can embed it.

use std::path::PathBuf;

fn main() {
    let root =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo")).join("../..");
    for watched in [
        "guests/hello-world/src",
        "guests/hello-world/models",
        "guests/hello-world/syncplane.toml",
        "sdk/rust/src",
        "wit",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    let target_dir = syncplane_guest_build::shared_target_dir();
    let wasm_dir = syncplane_guest_build::build(
        &root.join("guests/hello-world"),
        target_dir.as_deref(),
        |line| println!("cargo:warning={line}"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    println!(
        "cargo:rustc-env=SYNCPLANE_HELLO_WORLD_WASM={}",
        wasm_dir.display()
    );
    println!(
        "cargo:rustc-env=SYNCPLANE_HELLO_WORLD_DIR={}",
        root.join("guests/hello-world").display()
    );
}
