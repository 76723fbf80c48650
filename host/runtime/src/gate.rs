//! The invocation gate of a service: its components' calls pass it, and a
//! lifecycle change closes it so that the version being replaced finishes
//! what it runs before its components go.
//!
//! One gate is shared by every version of a service (the new version's
//! [`ServiceContext`](crate::capability::ServiceContext) takes the old
//! one's). Calls hold a read guard while they run; [`InvocationGate::drain`]
//! takes the write guard, which waits for running calls to end (at the
//! latest at their deadline) and holds back new ones until the change is
//! done. A call that waited behind a drain then finds its version retired
//! and does not run its old component.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedRwLockReadGuard, OwnedRwLockWriteGuard, RwLock};

/// Held by a running invocation; see the module docs.
pub type Entered = OwnedRwLockReadGuard<()>;

/// Held while a service's components are replaced; dropping it lets calls
/// in again.
pub type Drained = OwnedRwLockWriteGuard<()>;

/// Running invocations of one service, and the way to wait for them.
#[derive(Debug, Default)]
pub struct InvocationGate {
    // tokio's lock is fair: once a drain waits, new calls queue behind it,
    // so a busy service cannot keep it waiting forever.
    lock: Arc<RwLock<()>>,
}

impl InvocationGate {
    /// Lets one invocation in; waits while a drain holds the gate.
    pub async fn enter(&self) -> Entered {
        Arc::clone(&self.lock).read_owned().await
    }

    /// Waits until no invocation runs and closes the gate, or gives up
    /// after `within` (running calls end at their deadline, so a `within`
    /// past the step deadline only expires if something is wrong).
    ///
    /// # Errors
    ///
    /// The time waited, when calls were still running after `within`.
    pub async fn drain(&self, within: Duration) -> Result<Drained, Duration> {
        tokio::time::timeout(within, Arc::clone(&self.lock).write_owned())
            .await
            .map_err(|_| within)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_drain_waits_for_running_calls_and_holds_back_new_ones() {
        let gate = Arc::new(InvocationGate::default());
        let running = gate.enter().await;
        // Still running: the drain cannot close the gate.
        assert_eq!(
            gate.drain(Duration::from_millis(50)).await.err(),
            Some(Duration::from_millis(50))
        );
        let draining = tokio::spawn({
            let gate = Arc::clone(&gate);
            async move { gate.drain(Duration::from_secs(5)).await.is_ok() }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        // A call arriving while the drain waits queues behind it.
        let late = tokio::spawn({
            let gate = Arc::clone(&gate);
            async move {
                let _entered = gate.enter().await;
            }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!late.is_finished());
        drop(running);
        assert!(draining.await.expect("drain task"));
        late.await.expect("late call ran once the drain let go");
    }
}
