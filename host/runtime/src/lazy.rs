//! Components loaded when work arrives and unloaded when idle.
//!
//! A loaded component is its compiled code (mapped from the
//! [cache](crate::cache), so clean and shared pages), the metadata wasmtime
//! keeps for it and its pre-instantiation against the host's linker. No
//! instance lives between calls, unless its service asks for that
//! ([`crate::warm`]): each call instantiates from the loaded component and
//! drops the instance when it ends. A
//! component unused for the idle period ([`crate::Runtime::with_idle_unload`],
//! default [`DEFAULT_IDLE_UNLOAD`]) is unloaded; the next call loads it
//! again from the cache (milliseconds), or — when the cache lost it — from
//! its bytes, fetched from wherever the host keeps them, and compiled.
//!
//! A host restarting with many services installed therefore loads none of
//! them until they have work ([`ComponentState::Cold`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use wasmtime::component::Component;

use crate::capability::ServiceContext;
use crate::warm::{Parking, Pre};

/// How long a component stays loaded without calls, by default.
pub const DEFAULT_IDLE_UNLOAD: Duration = Duration::from_secs(30);

/// The future [`Fetch`] returns.
pub type FetchFuture = Pin<Box<dyn Future<Output = Result<Vec<u8>, String>> + Send>>;

/// Fetches a component's bytes, for when its compiled form is not cached.
pub type Fetch = Arc<dyn Fn() -> FetchFuture + Send + Sync>;

/// A component by its digest, and how to fetch its bytes.
#[derive(Clone)]
pub struct ComponentSource {
    /// The SHA-256 of the component's bytes, in hex.
    pub digest: String,
    /// Fetches the bytes; called only when the cache has no valid entry.
    pub fetch: Fetch,
}

impl ComponentSource {
    /// A source that keeps `wasm` in memory (tests and benchmarks; a host
    /// fetches from its store instead).
    pub fn in_memory(wasm: &[u8]) -> ComponentSource {
        let bytes: Arc<[u8]> = Arc::from(wasm);
        ComponentSource {
            digest: crate::cache::digest(wasm),
            fetch: Arc::new(move || {
                let bytes = Arc::clone(&bytes);
                Box::pin(async move { Ok(bytes.to_vec()) })
            }),
        }
    }
}

impl std::fmt::Debug for ComponentSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComponentSource")
            .field("digest", &self.digest)
            .finish_non_exhaustive()
    }
}

/// Whether a component is loaded, and whether it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ComponentState {
    /// Not loaded: the next call loads it first.
    Cold,
    /// Loaded, with no call running.
    Warm,
    /// At least one call is running.
    Running,
}

/// One component's state as `status` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ComponentStatus {
    /// The service.
    pub service: String,
    /// The step (or policy).
    pub step: String,
    /// Cold, warm or running.
    pub state: ComponentState,
    /// Calls running now.
    pub running: usize,
    /// Bytes of compiled code mapped while loaded (clean pages of the
    /// cache file, shared and reclaimable); 0 when cold.
    pub code_bytes: usize,
    /// Times it was loaded since the host started.
    pub loads: u64,
    /// Instances parked for its next call ([`crate::warm`]); 0 unless its
    /// service reuses instances.
    pub warm_instances: usize,
}

/// Makes a typed pre-instantiated component from a compiled one.
pub(crate) type Make<P> = Box<dyn Fn(&Component) -> Result<P, String> + Send + Sync>;

/// Loads a compiled component by source (the runtime's cache and engine).
pub(crate) type LoadFuture = Pin<Box<dyn Future<Output = Result<Component, String>> + Send>>;

/// What a slot needs to load its component.
pub(crate) type Load = Arc<dyn Fn(ComponentSource) -> LoadFuture + Send + Sync>;

/// A component that is loaded on demand; see the module docs.
pub(crate) struct Slot<P: Pre> {
    /// The service's context: its name, and its own idle period.
    ctx: Arc<ServiceContext>,
    step: String,
    source: ComponentSource,
    load: Load,
    make: Make<P>,
    loaded: RwLock<Option<(Arc<P>, usize)>>,
    /// Serialises loads, so concurrent first calls load once.
    loading: tokio::sync::Mutex<()>,
    running: AtomicUsize,
    last_used_ms: AtomicU64,
    loads: AtomicU64,
    /// Instances kept for the next call, when the service reuses them.
    pub(crate) parking: Parking<P::Instance>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A call's hold on a loaded component: the slot cannot unload it while
/// the guard lives.
pub(crate) struct InUse<'a, P: Pre> {
    pub(crate) pre: Arc<P>,
    slot: &'a Slot<P>,
}

impl<P: Pre> InUse<'_, P> {
    /// The instances parked on the component's slot.
    pub(crate) fn parking(&self) -> &Parking<P::Instance> {
        &self.slot.parking
    }
}

impl<P: Pre> Drop for InUse<'_, P> {
    fn drop(&mut self) {
        self.slot.last_used_ms.store(now_ms(), Ordering::Relaxed);
        self.slot.running.fetch_sub(1, Ordering::AcqRel);
    }
}

impl<P: Pre> Slot<P> {
    pub(crate) fn new(
        ctx: Arc<ServiceContext>,
        step: &str,
        source: ComponentSource,
        load: Load,
        make: Make<P>,
    ) -> Slot<P> {
        Slot {
            ctx,
            step: step.to_owned(),
            source,
            load,
            make,
            loaded: RwLock::new(None),
            loading: tokio::sync::Mutex::new(()),
            running: AtomicUsize::new(0),
            last_used_ms: AtomicU64::new(now_ms()),
            loads: AtomicU64::new(0),
            parking: Parking::default(),
        }
    }

    /// Installs an already compiled component (an install checks it
    /// eagerly).
    pub(crate) fn preload(&self, component: &Component) -> Result<(), String> {
        let pre = (self.make)(component)?;
        self.set(Arc::new(pre), code_bytes(component));
        Ok(())
    }

    fn set(&self, pre: Arc<P>, bytes: usize) {
        *self.loaded.write().unwrap_or_else(|p| p.into_inner()) = Some((pre, bytes));
        self.loads.fetch_add(1, Ordering::Relaxed);
        self.last_used_ms.store(now_ms(), Ordering::Relaxed);
    }

    /// The loaded component for one call, loading it first when cold.
    pub(crate) async fn acquire(&self) -> Result<InUse<'_, P>, String> {
        if let Some(in_use) = self.try_acquire() {
            return Ok(in_use);
        }
        let _loading = self.loading.lock().await;
        if let Some(in_use) = self.try_acquire() {
            return Ok(in_use);
        }
        let started = std::time::Instant::now();
        let component = (self.load)(self.source.clone()).await?;
        let pre = (self.make)(&component)?;
        self.set(Arc::new(pre), code_bytes(&component));
        tracing::debug!(
            service = %self.ctx.service(),
            step = %self.step,
            took_us = started.elapsed().as_micros() as u64,
            "loaded a component"
        );
        self.try_acquire()
            .ok_or_else(|| "the component was unloaded while it loaded".to_owned())
    }

    fn try_acquire(&self) -> Option<InUse<'_, P>> {
        let loaded = self.loaded.read().unwrap_or_else(|p| p.into_inner());
        let (pre, _) = loaded.as_ref()?;
        // Counted under the read lock: unloading takes the write lock and
        // then finds the call running.
        self.running.fetch_add(1, Ordering::AcqRel);
        Some(InUse {
            pre: Arc::clone(pre),
            slot: self,
        })
    }
}

fn code_bytes(component: &Component) -> usize {
    let range = component.image_range();
    (range.end as usize).saturating_sub(range.start as usize)
}

/// What the runtime's unloader sees of a slot, whatever its world.
pub(crate) trait Unload: Send + Sync {
    /// Unloads the component when no call runs and none ran for its
    /// service's idle period, else `idle`; whether it did.
    fn unload_if_idle(&self, idle: Duration) -> bool;
    /// Its state for `status`.
    fn status(&self) -> ComponentStatus;
    /// When its least recently parked instance was parked, if any.
    fn oldest_parked(&self) -> Option<Instant>;
    /// Takes out its least recently parked instance, if any.
    fn evict_parked(&self) -> Option<crate::warm::Evicted>;
}

impl<P: Pre> Unload for Slot<P> {
    fn unload_if_idle(&self, idle: Duration) -> bool {
        if self.running.load(Ordering::Acquire) > 0 {
            return false;
        }
        let idle = self.ctx.instance_limits().idle_unload.unwrap_or(idle);
        let since = now_ms().saturating_sub(self.last_used_ms.load(Ordering::Relaxed));
        if u128::from(since) < idle.as_millis() {
            return false;
        }
        let mut loaded = self.loaded.write().unwrap_or_else(|p| p.into_inner());
        if loaded.is_none() || self.running.load(Ordering::Acquire) > 0 {
            return false;
        }
        *loaded = None;
        drop(loaded);
        // Parked instances hold the code too; they go with it.
        self.parking.clear();
        true
    }

    fn oldest_parked(&self) -> Option<Instant> {
        self.parking.oldest()
    }

    fn evict_parked(&self) -> Option<crate::warm::Evicted> {
        self.parking.evict_oldest()
    }

    fn status(&self) -> ComponentStatus {
        let running = self.running.load(Ordering::Acquire);
        let loaded = self.loaded.read().unwrap_or_else(|p| p.into_inner());
        let (state, code_bytes) = match loaded.as_ref() {
            None => (ComponentState::Cold, 0),
            Some((_, bytes)) if running > 0 => (ComponentState::Running, *bytes),
            Some((_, bytes)) => (ComponentState::Warm, *bytes),
        };
        ComponentStatus {
            service: self.ctx.service().to_owned(),
            step: self.step.clone(),
            state,
            running,
            code_bytes,
            loads: self.loads.load(Ordering::Relaxed),
            warm_instances: self.parking.len(),
        }
    }
}
