//! Log output: `tracing` to stderr, filtered by `RUST_LOG` or `--log`.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber with `filter` (an `EnvFilter` directive).
pub fn init(filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // When stderr cannot be written (a log file on a full disk), the
        // default reports it with `eprintln!`, which panics on the same
        // error and takes the request being served with it. Lost log lines
        // are the lesser harm.
        .log_internal_errors(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .compact()
        .try_init();
}
