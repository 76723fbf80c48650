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

# Fuzz every target (xproto parser, TOSCA recipes, REST JSON decoding) for
# SECONDS each, one after another. Needs nightly and cargo-fuzz
# (`cargo install cargo-fuzz --locked`); crashes land in fuzz/artifacts/.
fuzz SECONDS="600":
    just fuzz-one xproto_parse {{SECONDS}}
    just fuzz-one tosca_recipe {{SECONDS}}
    just fuzz-one rest_json {{SECONDS}}

# Fuzz one target for SECONDS, from the committed seeds (fuzz/seeds/TARGET);
# the corpus it grows stays in fuzz/corpus/TARGET (not committed).
fuzz-one TARGET SECONDS="600":
    mkdir -p fuzz/corpus/{{TARGET}}
    cargo +nightly fuzz run {{TARGET}} fuzz/corpus/{{TARGET}} fuzz/seeds/{{TARGET}} -- -max_total_time={{SECONDS}} -timeout=10 -rss_limit_mb=2048
