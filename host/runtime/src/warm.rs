//! Warm instances: kept between calls for services that ask for it.
//!
//! By default every call instantiates its component afresh and drops the
//! instance when it ends ([`crate::lazy`]): a guest keeps nothing between
//! calls. For a Rust component that costs microseconds; for a Python or
//! JavaScript one, whose interpreter initialises a large heap, it costs
//! milliseconds per call. A service whose manifest sets
//! `[service] reuse_instances = true` has an instance that ended its call
//! cleanly (success or a typed failure, never a trap or a deadline) parked
//! on its step, and the step's next call runs in it with fresh per-call
//! state (observed object, caps, deadline). Whatever the guest keeps in
//! its own memory survives, as it did in XOS's long-running synchronizers.
//!
//! Parked instances are bounded three ways:
//! - per host: at most [`WarmInstances::max`] (`serve --warm-instances-max`),
//!   the least recently parked released first when more are parked;
//! - by age: they go with their component when it is unloaded for being
//!   idle (`serve --guest-idle-unload`, default 30 s);
//! - by use: an instance serves at most [`MAX_CALLS`] calls, and its
//!   resource table at most [`MAX_RESOURCES`] handles, so a guest leaking
//!   slowly is replaced rather than grown.
//!
//! A parked instance keeps the guest memory it reserved under the
//! operator's cap ([`crate::memory`]): a call that finds the cap full
//! releases parked instances, least recently used first, before it waits.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use wasmtime::Store;

use crate::lazy::Unload;
use crate::memory::Reservation;
use crate::runtime::Limits;
use crate::state::StepState;

/// Calls one instance serves before a fresh one replaces it.
pub const MAX_CALLS: u32 = 10_000;

/// Resource handles a reused instance's table may hold at once; a guest
/// that leaks handles call after call fails a host call past it, traps,
/// and its instance is dropped.
pub const MAX_RESOURCES: usize = 4096;

/// Parked instances the host keeps by default (`serve
/// --warm-instances-max`).
pub const DEFAULT_MAX_WARM: usize = 32;

/// Parked instances one step keeps: enough for its concurrent calls.
const MAX_PER_STEP: usize = 8;

/// The future [`Pre::instantiate`] returns.
pub(crate) type InstantiateFuture<'a, I> =
    Pin<Box<dyn Future<Output = wasmtime::Result<I>> + Send + 'a>>;

/// A pre-instantiated component of one world, and the instance it makes.
pub(crate) trait Pre: Send + Sync + 'static {
    /// The typed instance of the world.
    type Instance: Send + 'static;
    /// Instantiates the component in `store`.
    fn instantiate<'a>(
        &'a self,
        store: &'a mut Store<StepState>,
    ) -> InstantiateFuture<'a, Self::Instance>;
}

/// Implements [`Pre`] for the bindings' `...Pre` types.
macro_rules! pre {
    ($($pre:ty => $instance:ty),* $(,)?) => {$(
        impl Pre for $pre {
            type Instance = $instance;
            fn instantiate<'a>(
                &'a self,
                store: &'a mut Store<StepState>,
            ) -> InstantiateFuture<'a, Self::Instance> {
                Box::pin(self.instantiate_async(store))
            }
        }
    )*};
}

pre! {
    crate::bindings::v2::SyncStepPre<StepState> => crate::bindings::v2::SyncStep,
    crate::bindings::v2::event::EventStepPre<StepState> => crate::bindings::v2::event::EventStep,
    crate::bindings::v2::pull::PullStepPre<StepState> => crate::bindings::v2::pull::PullStep,
    crate::bindings::v2::policy::ModelPolicyPre<StepState> => crate::bindings::v2::policy::ModelPolicy,
}

/// One call's instance, with its store and its guest memory.
pub(crate) struct Instance<I> {
    pub(crate) store: Store<StepState>,
    pub(crate) instance: I,
    /// Guest memory reserved under the operator's cap, if one is set.
    pub(crate) _memory: Option<Reservation>,
    /// The limits its store was made with: a parked instance whose
    /// service's limits changed since is not used again.
    pub(crate) limits: Limits,
    /// Calls it has served.
    pub(crate) calls: u32,
    /// When the call's deadline started: before instantiating a fresh
    /// instance, when taking a parked one.
    pub(crate) started: Instant,
}

/// An instance waiting for its step's next call, counted in the host's
/// total while it waits.
struct Parked<I> {
    instance: Instance<I>,
    since: Instant,
    _counted: Counted,
}

/// One parked instance in [`WarmInstances::parked`].
struct Counted(Arc<WarmInstances>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.parked.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A parked instance taken out to be dropped, whatever its world.
pub(crate) type Evicted = Box<dyn Send>;

/// Drops `value` on the blocking pool when there is a runtime, else now.
fn drop_later<T: Send + 'static>(value: T) {
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => {
            runtime.spawn_blocking(move || drop(value));
        }
        Err(_) => drop(value),
    }
}

/// The parked instances of one step, newest last.
pub(crate) struct Parking<I> {
    parked: Mutex<VecDeque<Parked<I>>>,
}

impl<I> Default for Parking<I> {
    fn default() -> Self {
        Parking {
            parked: Mutex::new(VecDeque::new()),
        }
    }
}

impl<I> Parking<I> {
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Parked<I>>> {
        self.parked.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The most recently parked instance made under `limits`; parked ones
    /// made under other limits are released (on the blocking pool).
    pub(crate) fn take(&self, limits: &Limits) -> Option<Instance<I>>
    where
        I: Send + 'static,
    {
        let mut parked = self.lock();
        if parked.iter().any(|p| p.instance.limits != *limits) {
            let (keep, stale): (VecDeque<_>, VecDeque<_>) = std::mem::take(&mut *parked)
                .into_iter()
                .partition(|p| p.instance.limits == *limits);
            *parked = keep;
            drop_later(stale);
        }
        parked.pop_back().map(|p| p.instance)
    }

    /// Parks `instance` for the next call, first releasing the host's
    /// least recently parked ones while `warm` is at its maximum. What it
    /// releases is dropped on the blocking pool: dropping an interpreter's
    /// instance takes milliseconds the call's outcome need not wait for.
    pub(crate) fn put(&self, instance: Instance<I>, warm: &Arc<WarmInstances>)
    where
        I: Send + 'static,
    {
        let max = warm.max();
        if max == 0 {
            drop_later(instance);
            return;
        }
        while warm.parked() >= max {
            match warm.evict_lru() {
                Some(evicted) => drop_later(evicted),
                None => break,
            }
        }
        warm.parked.fetch_add(1, Ordering::AcqRel);
        let parked = Parked {
            instance,
            since: Instant::now(),
            _counted: Counted(Arc::clone(warm)),
        };
        let evicted = {
            let mut all = self.lock();
            all.push_back(parked);
            if all.len() > MAX_PER_STEP {
                all.pop_front()
            } else {
                None
            }
        };
        if let Some(evicted) = evicted {
            warm.evictions.fetch_add(1, Ordering::Relaxed);
            drop_later(evicted);
        }
    }

    /// How many are parked.
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    /// When the least recently parked one was parked.
    pub(crate) fn oldest(&self) -> Option<Instant> {
        self.lock().front().map(|p| p.since)
    }

    /// Takes out the least recently parked one, if any, for the caller
    /// to drop.
    pub(crate) fn evict_oldest(&self) -> Option<Evicted>
    where
        I: Send + 'static,
    {
        let oldest = self.lock().pop_front()?;
        Some(Box::new(oldest))
    }

    /// Releases every parked instance; how many.
    pub(crate) fn clear(&self) -> usize {
        let all = std::mem::take(&mut *self.lock());
        all.len()
    }
}

/// The host's parked instances, across every step.
pub struct WarmInstances {
    /// Every component slot, to find the least recently parked instance.
    slots: Arc<Mutex<Vec<Weak<dyn Unload>>>>,
    parked: AtomicUsize,
    max: AtomicUsize,
    evictions: AtomicU64,
    reuses: AtomicU64,
}

impl std::fmt::Debug for WarmInstances {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WarmInstances")
            .field("parked", &self.parked())
            .field("max", &self.max())
            .finish_non_exhaustive()
    }
}

impl WarmInstances {
    pub(crate) fn new(slots: Arc<Mutex<Vec<Weak<dyn Unload>>>>) -> Arc<WarmInstances> {
        Arc::new(WarmInstances {
            slots,
            parked: AtomicUsize::new(0),
            max: AtomicUsize::new(DEFAULT_MAX_WARM),
            evictions: AtomicU64::new(0),
            reuses: AtomicU64::new(0),
        })
    }

    /// Instances parked now.
    pub fn parked(&self) -> usize {
        self.parked.load(Ordering::Acquire)
    }

    /// The most instances the host parks.
    pub fn max(&self) -> usize {
        self.max.load(Ordering::Relaxed)
    }

    pub(crate) fn set_max(&self, max: usize) {
        self.max.store(max, Ordering::Relaxed);
    }

    /// Parked instances released before their component was unloaded: to
    /// park a newer one past the maximum, or to free guest memory or pool
    /// slots for a call.
    pub fn evictions(&self) -> u64 {
        self.evictions.load(Ordering::Relaxed)
    }

    /// Calls that ran in a parked instance.
    pub fn reuses(&self) -> u64 {
        self.reuses.load(Ordering::Relaxed)
    }

    pub(crate) fn count_reuse(&self) {
        self.reuses.fetch_add(1, Ordering::Relaxed);
    }

    /// Takes out the least recently parked instance of the host, if any:
    /// dropping it frees its guest memory and pool slot.
    pub(crate) fn evict_lru(&self) -> Option<Evicted> {
        let live: Vec<Arc<dyn Unload>> = self
            .slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter_map(Weak::upgrade)
            .collect();
        let oldest = live
            .iter()
            .filter_map(|slot| slot.oldest_parked().map(|since| (since, slot)))
            .min_by_key(|(since, _)| *since);
        let evicted = oldest.and_then(|(_, slot)| slot.evict_parked());
        if evicted.is_some() {
            self.evictions.fetch_add(1, Ordering::Relaxed);
        }
        evicted
    }

    /// Releases the least recently parked instance now; whether there
    /// was one.
    pub(crate) fn release_lru(&self) -> bool {
        self.evict_lru().is_some()
    }
}
