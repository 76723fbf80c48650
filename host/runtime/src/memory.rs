//! The operator's cap on guest memory (`serve --guest-memory-max`).
//!
//! An idle service holds compiled code, mapped clean from the cache, and
//! no linear memory (see [`crate::lazy`]). Guest memory is held by running
//! calls, and by instances parked between calls for services that reuse
//! them ([`crate::warm`]). The cap is kept by reserving, before an
//! instance is made, the memory it may grow to (its service's limit); a
//! parked instance keeps its reservation. When the reservations would
//! pass the cap, a new call first releases parked instances, least
//! recently used first, then waits for a running call to end (first come,
//! first served), at most for its deadline; a call whose own limit is
//! larger than the whole cap can never run and fails its object with a
//! status saying so. The host is never the one to run out.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Reservations are counted in MiB.
const UNIT: usize = 1 << 20;

/// The host's guest-memory budget, shared by every call.
#[derive(Debug)]
pub struct GuestMemory {
    cap_bytes: usize,
    permits: Arc<Semaphore>,
    /// Bytes reserved and calls running, per service.
    held: Mutex<BTreeMap<String, (usize, usize)>>,
    waits: AtomicU64,
    refused: AtomicU64,
}

/// Why a call could not have its memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemoryRefusal {
    /// The call's own limit is larger than the whole cap: it can never run.
    TooLarge(String),
    /// The memory did not come free within the call's deadline.
    Waited(String),
}

/// One running call's memory; given back when dropped.
#[derive(Debug)]
pub struct Reservation {
    budget: Arc<GuestMemory>,
    service: String,
    bytes: usize,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let mut held = self.budget.lock();
        if let Some((bytes, calls)) = held.get_mut(&self.service) {
            *bytes = bytes.saturating_sub(self.bytes);
            *calls = calls.saturating_sub(1);
            if *calls == 0 {
                held.remove(&self.service);
            }
        }
    }
}

impl GuestMemory {
    /// A budget of `cap_bytes` (rounded down to whole MiB, at least one).
    pub fn new(cap_bytes: usize) -> Arc<GuestMemory> {
        let units = (cap_bytes / UNIT).max(1);
        Arc::new(GuestMemory {
            cap_bytes: units * UNIT,
            permits: Arc::new(Semaphore::new(units)),
            held: Mutex::default(),
            waits: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        })
    }

    /// The cap, in bytes.
    pub fn cap_bytes(&self) -> usize {
        self.cap_bytes
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, (usize, usize)>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reserves `bytes` for one call of `service`. While the cap is full,
    /// `release` is called to free memory held elsewhere (a parked
    /// instance; it says whether it freed any), then the call waits up to
    /// `wait` for running calls to end.
    ///
    /// # Errors
    ///
    /// [`MemoryRefusal::TooLarge`] at once when `bytes` is over the cap,
    /// [`MemoryRefusal::Waited`] when `wait` passed first.
    pub async fn reserve(
        self: &Arc<Self>,
        service: &str,
        bytes: usize,
        wait: Duration,
        release: impl Fn() -> bool,
    ) -> Result<Reservation, MemoryRefusal> {
        let units = bytes.div_ceil(UNIT).max(1);
        let mib = |b: usize| b >> 20;
        if units * UNIT > self.cap_bytes {
            self.refused.fetch_add(1, Ordering::Relaxed);
            return Err(MemoryRefusal::TooLarge(format!(
                "its memory limit of {} MiB is more than the host's guest memory cap of {} MiB (serve --guest-memory-max), so it can never run; lower the service's limit (service limits {service} --memory-mib) or raise the cap",
                mib(units * UNIT),
                mib(self.cap_bytes)
            )));
        }
        let units = u32::try_from(units).unwrap_or(u32::MAX);
        let mut free = Arc::clone(&self.permits).try_acquire_many_owned(units);
        while free.is_err() && release() {
            free = Arc::clone(&self.permits).try_acquire_many_owned(units);
        }
        let permit = match free {
            Ok(permit) => permit,
            Err(_) => {
                self.waits.fetch_add(1, Ordering::Relaxed);
                let acquire = Arc::clone(&self.permits).acquire_many_owned(units);
                match tokio::time::timeout(wait, acquire).await {
                    Ok(Ok(permit)) => permit,
                    // The semaphore is never closed; a timeout is the case.
                    _ => {
                        self.refused.fetch_add(1, Ordering::Relaxed);
                        return Err(MemoryRefusal::Waited(format!(
                            "waited {wait:?} for {} MiB of guest memory: running calls hold the host's cap of {} MiB (serve --guest-memory-max); it runs again at its next retry",
                            mib(units as usize * UNIT),
                            mib(self.cap_bytes)
                        )));
                    }
                }
            }
        };
        let reserved = units as usize * UNIT;
        let mut held = self.lock();
        let entry = held.entry(service.to_owned()).or_default();
        entry.0 += reserved;
        entry.1 += 1;
        drop(held);
        Ok(Reservation {
            budget: Arc::clone(self),
            service: service.to_owned(),
            bytes: reserved,
            _permit: permit,
        })
    }

    /// Bytes reserved and calls running, per service.
    pub fn held(&self) -> BTreeMap<String, (usize, usize)> {
        self.lock().clone()
    }

    /// Calls that had to wait for memory, since the host started.
    pub fn waits(&self) -> u64 {
        self.waits.load(Ordering::Relaxed)
    }

    /// Calls refused (too large, or waited past their deadline).
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1 << 20;

    #[tokio::test]
    async fn calls_within_the_cap_run_together_and_the_next_waits_for_one_to_end() {
        let budget = GuestMemory::new(100 * MIB);
        let wait = Duration::from_secs(5);
        let a = budget
            .reserve("a", 40 * MIB, wait, || false)
            .await
            .expect("a");
        let b = budget
            .reserve("b", 40 * MIB, wait, || false)
            .await
            .expect("b");
        assert_eq!(budget.held()["a"], (40 * MIB, 1));
        // 80 of 100 MiB are held: 40 more must wait until `a` ends.
        let waiting = {
            let budget = Arc::clone(&budget);
            tokio::spawn(async move { budget.reserve("c", 40 * MIB, wait, || false).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "the third call waits");
        assert_eq!(budget.waits(), 1);
        drop(a);
        let c = waiting.await.expect("task").expect("c runs once a ended");
        assert!(!budget.held().contains_key("a"));
        assert_eq!(budget.held()["c"], (40 * MIB, 1));
        drop((b, c));
        assert!(budget.held().is_empty());
    }

    #[tokio::test]
    async fn a_full_cap_releases_memory_held_elsewhere_before_it_waits() {
        let budget = GuestMemory::new(64 * MIB);
        let wait = Duration::from_secs(5);
        // A parked instance's reservation, released on request.
        let parked = Mutex::new(Some(
            budget
                .reserve("idle", 48 * MIB, wait, || false)
                .await
                .expect("parked"),
        ));
        let release = || parked.lock().expect("lock").take().is_some();
        let b = budget
            .reserve("busy", 32 * MIB, Duration::from_millis(50), release)
            .await
            .expect("the parked instance's memory is released for it");
        assert_eq!(budget.waits(), 0, "nothing waited");
        assert!(parked.lock().expect("lock").is_none());
        assert_eq!(budget.held()["busy"], (32 * MIB, 1));
        assert!(!budget.held().contains_key("idle"));
        // Nothing left to release: the next call over the cap waits.
        let Err(MemoryRefusal::Waited(_)) = budget
            .reserve("busy", 48 * MIB, Duration::from_millis(50), || false)
            .await
        else {
            panic!("32 of 64 MiB are held");
        };
        drop(b);
    }

    #[tokio::test]
    async fn a_call_larger_than_the_cap_is_refused_at_once_and_a_long_wait_gives_up() {
        let budget = GuestMemory::new(64 * MIB);
        let Err(MemoryRefusal::TooLarge(message)) = budget
            .reserve("greedy", 128 * MIB, Duration::from_secs(5), || false)
            .await
        else {
            panic!("a call over the cap cannot run");
        };
        assert!(
            message.contains("128 MiB") && message.contains("cap of 64 MiB"),
            "{message}"
        );
        let _all = budget
            .reserve("a", 64 * MIB, Duration::from_secs(1), || false)
            .await
            .expect("all of it");
        let Err(MemoryRefusal::Waited(message)) = budget
            .reserve("b", MIB, Duration::from_millis(50), || false)
            .await
        else {
            panic!("no memory comes free");
        };
        assert!(message.contains("waited 50ms"), "{message}");
        assert_eq!(budget.refused(), 2);
    }
}
