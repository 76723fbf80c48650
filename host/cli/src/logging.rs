//! Log output: `tracing` to stderr, filtered by `RUST_LOG` or `--log`.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber with `filter` (an `EnvFilter` directive).
pub fn init(filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .compact()
        .try_init();
}
