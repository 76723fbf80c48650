//! Work one host at a time does, when several hosts share a store: a
//! service's event consumers. The host runs it while it holds its lease
//! ([`Engine::holds`]), checks that every third of the lease time, and
//! stops when another host has it; a host that dies stops renewing, and
//! another takes the work over when the lease ends. On a store of one host
//! the work simply runs.

use std::future::Future;

use syncplane_engine::Engine;
use tracing::info;

/// Runs `work` (started afresh each time this host takes the lease
/// `key`) while this host holds it; returns when `work` does.
pub(crate) async fn while_holding<F, Fut>(engine: &Engine, key: &str, mut work: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let period = engine.hold_period();
    loop {
        if !engine.holds(key).await {
            tokio::time::sleep(period).await;
            continue;
        }
        let run = work();
        tokio::pin!(run);
        loop {
            tokio::select! {
                () = &mut run => return,
                () = tokio::time::sleep(period) => {
                    if !engine.holds(key).await {
                        info!(key, "another host does this work now");
                        break;
                    }
                }
            }
        }
    }
}
