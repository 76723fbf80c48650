//! The syncplane command line: serve, demo, service install
pub fn main() -> std::process::ExitCode { std::process::ExitCode::SUCCESS }
