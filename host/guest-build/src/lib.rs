//! Builds guest components for wasm32-wasip2, installing the target through rustup when missing
