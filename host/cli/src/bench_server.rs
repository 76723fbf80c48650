//! A server for an API benchmark: on its own runtime in its own thread,
//! so that the load the benchmark's clients make and the server's work do
//! not share tokio workers, on a temporary data directory.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};

/// How long a server may take to start.
const START_LIMIT: Duration = Duration::from_secs(120);

/// The thread a benchmark's server runs in.
pub(crate) struct ServerThread {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<anyhow::Result<()>>>,
}

impl ServerThread {
    /// Runs `serve(data_dir, ready, stopped)` in a new thread: it sends
    /// what clients need (its URLs, its core) on `ready` once it listens,
    /// and serves until `stopped`. Returns what it sent.
    pub(crate) fn start<T, F, Fut>(serve: F) -> anyhow::Result<(T, ServerThread)>
    where
        T: Send + 'static,
        F: FnOnce(PathBuf, std::sync::mpsc::Sender<T>, tokio::sync::oneshot::Receiver<()>) -> Fut
            + Send
            + 'static,
        Fut: Future<Output = anyhow::Result<()>>,
    {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("bench-server".into())
            .spawn(move || -> anyhow::Result<()> {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .enable_all()
                    .build()
                    .context("cannot start the server's runtime")?;
                runtime.block_on(async move {
                    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
                    let served = serve(dir.path().to_owned(), ready_tx, stopped).await;
                    drop(dir);
                    served
                })
            })
            .context("cannot start the server thread")?;
        match ready_rx.recv_timeout(START_LIMIT) {
            Ok(ready) => Ok((
                ready,
                ServerThread {
                    stop: Some(stop),
                    thread: Some(thread),
                },
            )),
            Err(_) => match thread.join() {
                Ok(Err(e)) => Err(e.context("the bench server did not start")),
                _ => bail!("the bench server did not start"),
            },
        }
    }

    /// Stops the server and waits for its thread.
    pub(crate) fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.thread.take().map(std::thread::JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => bail!("the bench server panicked"),
            None => Ok(()),
        }
    }
}
