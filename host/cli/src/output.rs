//! Writing command output.

use anyhow::Context as _;

/// Writes `text` to standard output. A reader that stops early (`| head`)
/// closes the pipe: that ends the output quietly, as for any Unix filter,
/// instead of the panic `print!` gives.
pub(crate) fn write_stdout(text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("cannot write to standard output"),
    }
}
