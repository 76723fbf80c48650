# Developer shortcuts; each recipe is a plain cargo command.

# Run the hello-world tutorial end to end.
demo:
    cargo run --release -- demo

# Run every test (guests are built by build scripts).
test:
    cargo test --workspace

# Serve on a local data directory.
serve:
    cargo run --release -- serve --data-dir syncplane-data

# Format and lint like CI does.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# Everything CI runs.
ci:
    bash .ci/run
