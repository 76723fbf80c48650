//! One service's lane: its queue of jobs and the workers that run them.
//!
//! Every service has its own lane, so a service with a long queue or slow
//! steps only ever waits for itself. A lane runs at most its
//! [`ServiceLimits::concurrency`] jobs at once, each holding one of the
//! engine's slots while it runs. Slots are handed out first come, first
//! served ([`tokio::sync::Semaphore`] is fair), so when services compete
//! for slots each gets a share in proportion to its concurrency: its
//! weight.

use std::collections::VecDeque;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use governor::{DefaultDirectRateLimiter, Quota};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::task::JoinSet;
use tracing::debug;

use crate::engine::lock;
use crate::job::{Finished, Job};
use crate::limits::ServiceLimits;

/// Paces a service's invocations.
pub(crate) type RateLimiter = DefaultDirectRateLimiter;

/// A call admitted to run: holds a lane permit and an engine slot.
pub(crate) struct Admitted {
    lane: Arc<Lane>,
    /// Paces the invocations of the call.
    pub rate: Option<Arc<RateLimiter>>,
    _permit: OwnedSemaphorePermit,
    _slot: OwnedSemaphorePermit,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.lane.running.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A finished job on its way to the committer, with the lane it ran in.
pub(crate) struct Done {
    /// The lane the job ran in; `None` for work that ran no step (purges).
    pub lane: Option<Arc<Lane>>,
    /// What it produced.
    pub finished: Finished,
}

/// One service's queue and workers.
pub(crate) struct Lane {
    /// The service.
    pub service: String,
    queue: Mutex<VecDeque<Job>>,
    /// Objects leased to this lane: queued, running or being committed.
    held: AtomicUsize,
    /// Jobs running now.
    running: AtomicUsize,
    /// Workers alive; at most `limits.concurrency`.
    workers: AtomicUsize,
    settings: Mutex<Settings>,
}

struct Settings {
    limits: ServiceLimits,
    rate: Option<Arc<RateLimiter>>,
    /// One permit per call the service may run at once: taken by the
    /// lane's workers and by calls of pull and event steps alike.
    permits: Arc<Semaphore>,
}

fn rate_limiter(limits: &ServiceLimits) -> Option<Arc<RateLimiter>> {
    let per_sec = NonZeroU32::new(limits.invocations_per_sec?)?;
    Some(Arc::new(RateLimiter::direct(Quota::per_second(per_sec))))
}

/// What workers need besides their lane.
#[derive(Clone)]
pub(crate) struct WorkerContext {
    /// The engine's slots, shared by all lanes.
    pub slots: Arc<Semaphore>,
    /// Where finished jobs go.
    pub done: mpsc::UnboundedSender<Done>,
    /// Turns true when the engine stops taking new jobs.
    pub stopping: watch::Receiver<bool>,
}

impl Lane {
    /// An empty lane for `service`.
    pub(crate) fn new(service: &str, limits: ServiceLimits) -> Self {
        Lane {
            service: service.to_owned(),
            queue: Mutex::default(),
            held: AtomicUsize::new(0),
            running: AtomicUsize::new(0),
            workers: AtomicUsize::new(0),
            settings: Mutex::new(Settings {
                rate: rate_limiter(&limits),
                permits: Arc::new(Semaphore::new(limits.concurrency.max(1) as usize)),
                limits,
            }),
        }
    }

    /// The lane's limits.
    pub(crate) fn limits(&self) -> ServiceLimits {
        lock(&self.settings).limits
    }

    /// Changes the lane's limits; takes effect from the next job.
    pub(crate) fn set_limits(&self, limits: ServiceLimits) {
        let mut settings = lock(&self.settings);
        if settings.limits != limits {
            settings.rate = rate_limiter(&limits);
            if settings.limits.concurrency != limits.concurrency {
                // Calls holding permits of the old size finish under it.
                settings.permits = Arc::new(Semaphore::new(limits.concurrency.max(1) as usize));
            }
            settings.limits = limits;
        }
    }

    /// Objects leased to the lane.
    pub(crate) fn held(&self) -> usize {
        self.held.load(Ordering::Acquire)
    }

    /// Jobs running now.
    pub(crate) fn running(&self) -> usize {
        self.running.load(Ordering::Acquire)
    }

    /// Jobs waiting for a worker.
    pub(crate) fn queued(&self) -> usize {
        lock(&self.queue).len()
    }

    /// Queues `job`, whose objects are already leased, and makes sure
    /// enough workers run.
    pub(crate) fn push(self: &Arc<Self>, job: Job, ctx: &WorkerContext, workers: &mut JoinSet<()>) {
        self.held.fetch_add(job.ids().len(), Ordering::AcqRel);
        lock(&self.queue).push_back(job);
        let want = self.limits().concurrency.max(1) as usize;
        let queued = self.queued();
        // One more worker per queued job, up to the lane's concurrency.
        while self.workers.load(Ordering::Acquire) < want.min(self.running() + queued) {
            self.workers.fetch_add(1, Ordering::AcqRel);
            workers.spawn(Arc::clone(self).work(ctx.clone()));
        }
    }

    /// Gives back the count of objects committed (or dropped).
    pub(crate) fn release(&self, objects: usize) {
        let _ = self
            .held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |h| {
                Some(h.saturating_sub(objects))
            });
    }

    /// Waits for one of the lane's permits and one of the engine's
    /// `slots`; holds both (and counts the call as running) until dropped.
    /// `None` when the engine is shutting its slots.
    pub(crate) async fn admit(self: &Arc<Self>, slots: &Arc<Semaphore>) -> Option<Admitted> {
        let permits = Arc::clone(&lock(&self.settings).permits);
        let permit = permits.acquire_owned().await.ok()?;
        let slot = Arc::clone(slots).acquire_owned().await.ok()?;
        self.running.fetch_add(1, Ordering::AcqRel);
        Some(Admitted {
            lane: Arc::clone(self),
            rate: lock(&self.settings).rate.clone(),
            _permit: permit,
            _slot: slot,
        })
    }

    fn pop(&self) -> Option<Job> {
        lock(&self.queue).pop_front()
    }

    /// A worker: runs the lane's jobs until the queue is empty or the
    /// engine stops; never more of them than the lane's concurrency.
    async fn work(self: Arc<Self>, mut ctx: WorkerContext) {
        loop {
            self.run_jobs(&mut ctx).await;
            self.workers.fetch_sub(1, Ordering::AcqRel);
            // A job pushed after the last empty pop but before the
            // decrement saw this worker alive and started none: the last
            // worker to leave takes it.
            if *ctx.stopping.borrow() || self.queued() == 0 {
                break;
            }
            let want = self.limits().concurrency.max(1) as usize;
            if self.workers.fetch_add(1, Ordering::AcqRel) >= want {
                self.workers.fetch_sub(1, Ordering::AcqRel);
                break;
            }
        }
        debug!(service = %self.service, "lane worker idle");
    }

    async fn run_jobs(self: &Arc<Self>, ctx: &mut WorkerContext) {
        loop {
            if *ctx.stopping.borrow() {
                return;
            }
            let want = self.limits().concurrency.max(1) as usize;
            if self.workers.load(Ordering::Acquire) > want {
                return;
            }
            let Some(job) = self.pop() else { return };
            let admitted = tokio::select! {
                admitted = self.admit(&ctx.slots) => admitted,
                // Not started: its objects stay pending.
                _ = ctx.stopping.changed() => return,
            };
            let Some(admitted) = admitted else { return };
            let finished = job.run(admitted.rate.clone()).await;
            drop(admitted);
            let done = Done {
                lane: Some(Arc::clone(self)),
                finished,
            };
            if ctx.done.send(done).is_err() {
                return;
            }
        }
    }
}
