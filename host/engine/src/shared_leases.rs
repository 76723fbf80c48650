//! Leases in the store: several hosts sharing one PostgreSQL store take
//! work from one queue, each object from one host at a time.
//!
//! [`SharedLeases`] keeps what this host holds in memory, as
//! [`LocalLeases`] does, and claims each object in the store before its
//! work runs (`syncplane_store::Claim`). An object another host holds is
//! left out and looked at again when that lease ends. Claimed objects are
//! read again under the lease, since another host may have just finished
//! their work. A heartbeat keeps this host alive in the store, renewing
//! all its leases at once, every third of their time; a host that dies
//! stops renewing, and the others take its objects over once its leases
//! end. Outcomes are written only under a lease the
//! host still holds ([`SyncBatch::fence`](syncplane_core::SyncBatch::fence)),
//! so a host that was paused past its leases' end writes nothing that
//! another host has redone.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use syncplane_core::{Core, HostRecord, Work};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use crate::clock::Clock;
use crate::error::Result;
use crate::lease::{
    ElsewhereFuture, HoldFuture, LocalLeases, StopFuture, TakeFuture, Taken, WorkSource,
};
use crate::stats::Stats;

/// How long a lease lasts unless renewed, by default.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(10);

/// Leases kept in the store, shared by every host on it.
pub struct SharedLeases {
    core: Core,
    clock: Arc<dyn Clock>,
    local: LocalLeases,
    me: HostRecord,
    ttl_ms: i64,
    heartbeat: std::sync::Mutex<Option<JoinHandle<()>>>,
    /// Set once the host has renewed once: before that, the others would
    /// take its leases for a dead host's.
    alive: tokio::sync::OnceCell<()>,
    /// Released leases not yet ended in the store, and the wake-up of the
    /// task that ends them.
    ending: std::sync::Mutex<Vec<i64>>,
    end_soon: Arc<Notify>,
    ender: std::sync::Mutex<Option<JoinHandle<()>>>,
    /// What this host reports as its load.
    stats: Arc<Stats>,
    /// The previous heartbeat's time and finished invocations.
    last_beat: std::sync::Mutex<(i64, u64)>,
}

impl SharedLeases {
    /// Leases in `core`'s store for this host, lasting `ttl` unless
    /// renewed; starts the heartbeat that renews them (on the current
    /// Tokio runtime), and reports the load `stats` counts with it.
    pub fn start(
        core: Core,
        clock: Arc<dyn Clock>,
        ttl: Duration,
        stats: Arc<Stats>,
    ) -> Arc<SharedLeases> {
        let now = clock.now_ms();
        let me = HostRecord {
            host: format!("{:016x}", rand::random::<u64>()),
            name: format!("{}/{}", machine_name(), std::process::id()),
            started_ms: now,
            seen_ms: now,
            until_ms: now,
            ..HostRecord::default()
        };
        let leases = Arc::new(SharedLeases {
            local: LocalLeases::with_clock(core.clone(), Arc::clone(&clock)),
            core,
            clock,
            me,
            ttl_ms: (ttl.as_millis() as i64).max(3),
            heartbeat: std::sync::Mutex::default(),
            alive: tokio::sync::OnceCell::new(),
            ending: std::sync::Mutex::default(),
            end_soon: Arc::new(Notify::new()),
            ender: std::sync::Mutex::default(),
            stats,
            last_beat: std::sync::Mutex::new((now, 0)),
        });
        let task = tokio::spawn(heartbeat(Arc::downgrade(&leases)));
        *crate::engine::lock(&leases.heartbeat) = Some(task);
        let task = tokio::spawn(end_released(
            Arc::downgrade(&leases),
            Arc::clone(&leases.end_soon),
        ));
        *crate::engine::lock(&leases.ender) = Some(task);
        leases
    }

    /// Ends the released leases in the store; returns how many.
    async fn end_released(&self) -> usize {
        let ids = std::mem::take(&mut *crate::engine::lock(&self.ending));
        if ids.is_empty() {
            return 0;
        }
        if let Err(error) = self.core.end_leases(&self.me.host, &ids).await {
            debug!(error = %error, "cannot end leases; they end when this host stops");
        }
        ids.len()
    }

    /// Stops the heartbeat and the task that ends released leases.
    fn stop_tasks(&self) {
        for task in [&self.heartbeat, &self.ender] {
            if let Some(task) = crate::engine::lock(task).take() {
                task.abort();
            }
        }
    }

    /// Renews this host's leases once.
    async fn renew(&self) -> Result<i64> {
        let now = self.clock.now_ms();
        let (finished, running) = self.stats.load();
        let steps_per_s = {
            let mut last = crate::engine::lock(&self.last_beat);
            let (then, before) = std::mem::replace(&mut *last, (now, finished));
            let seconds = (now - then) as f64 / 1000.0;
            if seconds > 0.0 {
                finished.saturating_sub(before) as f64 / seconds
            } else {
                0.0
            }
        };
        let me = HostRecord {
            seen_ms: now,
            until_ms: now + self.ttl_ms,
            steps: i64::try_from(finished).unwrap_or(i64::MAX),
            running,
            steps_per_s,
            ..self.me.clone()
        };
        // Hosts and leases unseen for ten lease times are gone for good.
        let held = self.core.renew_leases(&me, self.ttl_ms * 10).await?;
        let _ = self.alive.set(());
        Ok(held)
    }

    /// Renews once unless that was done: a claim needs it.
    async fn ensure_alive(&self) -> Result<()> {
        self.alive
            .get_or_try_init(|| async { self.renew().await.map(|_| ()) })
            .await?;
        Ok(())
    }

    async fn take_shared(&self, model: &str, work: Work, limit: u32) -> Result<Taken> {
        self.ensure_alive().await?;
        let mut taken = self.local.take(model, work, limit).await?;
        if taken.objects.is_empty() {
            return Ok(taken);
        }
        let ids: Vec<i64> = taken.objects.iter().map(|o| o.id).collect();
        let now = self.clock.now_ms();
        let claim = match self
            .core
            .claim_leases(&self.me.host, &ids, now, now + self.ttl_ms)
            .await
        {
            Ok(claim) => claim,
            Err(error) => {
                self.local.release(&ids);
                return Err(error.into());
            }
        };
        let granted: HashSet<i64> = claim.granted.iter().copied().collect();
        let elsewhere: Vec<i64> = ids
            .iter()
            .copied()
            .filter(|id| !granted.contains(id))
            .collect();
        self.local.release(&elsewhere);
        if !elsewhere.is_empty() {
            // Not `busy`: no commit here ends those leases.
            let until = claim.busy_until_ms.unwrap_or(now);
            taken.busy_until_ms = Some(taken.busy_until_ms.map_or(until, |u| u.min(until)));
        }
        // Read again under the lease: what another host finished between
        // the read and the claim is no longer due.
        let fresh = match self
            .core
            .ready_among(model, work, &claim.granted, now)
            .await
        {
            Ok(fresh) => fresh,
            Err(error) => {
                self.release(&claim.granted);
                return Err(error.into());
            }
        };
        let due: HashSet<i64> = fresh.iter().map(|o| o.id).collect();
        let done: Vec<i64> = claim
            .granted
            .iter()
            .copied()
            .filter(|id| !due.contains(id))
            .collect();
        self.release(&done);
        taken.objects = fresh;
        Ok(taken)
    }
}

impl WorkSource for SharedLeases {
    fn take<'a>(&'a self, model: &'a str, work: Work, limit: u32) -> TakeFuture<'a> {
        Box::pin(self.take_shared(model, work, limit))
    }

    fn is_leased(&self, id: i64) -> bool {
        self.local.is_leased(id)
    }

    fn release(&self, ids: &[i64]) {
        if ids.is_empty() {
            return;
        }
        self.local.release(ids);
        // Ended in the store in the background, many at once: until then
        // the objects stay with this host, which may take them again.
        crate::engine::lock(&self.ending).extend_from_slice(ids);
        self.end_soon.notify_one();
    }

    fn committed(&self, ids: &[i64]) {
        // The commit ended them in the store.
        self.local.release(ids);
    }

    fn leased(&self) -> usize {
        self.local.leased()
    }

    fn fence(&self) -> Option<&str> {
        Some(&self.me.host)
    }

    fn hold<'a>(&'a self, key: &'a str) -> HoldFuture<'a> {
        Box::pin(async move {
            let now = self.clock.now_ms();
            let claimed = match self.ensure_alive().await {
                Ok(()) => self
                    .core
                    .claim_singleton(&self.me.host, key, now, now + self.ttl_ms)
                    .await
                    .map_err(crate::Error::from),
                Err(error) => Err(error),
            };
            match claimed {
                Ok(held) => held,
                Err(error) => {
                    warn!(error = %error, key, "cannot tell whether this host holds the work; leaving it to others");
                    false
                }
            }
        })
    }

    fn held_elsewhere<'a>(&'a self, ids: &'a [i64]) -> ElsewhereFuture<'a> {
        Box::pin(async move {
            let now = self.clock.now_ms();
            Ok(self.core.leased_elsewhere(&self.me.host, ids, now).await?)
        })
    }

    fn let_go<'a>(&'a self, key: &'a str) -> StopFuture<'a> {
        Box::pin(async move {
            if let Err(error) = self.core.end_singleton(&self.me.host, key).await {
                warn!(error = %error, key, "cannot give up the work; its lease expires by itself");
            }
        })
    }

    fn stop(&self) -> StopFuture<'_> {
        Box::pin(async move {
            self.stop_tasks();
            match self.core.leave(&self.me.host).await {
                Ok(()) => debug!(host = %self.me.host, "left the shared store"),
                Err(error) => {
                    warn!(error = %error, "cannot end this host's leases; they expire by themselves")
                }
            }
        })
    }
}

impl Drop for SharedLeases {
    fn drop(&mut self) {
        self.stop_tasks();
    }
}

/// Ends released leases in the store as they come, in batches.
async fn end_released(leases: std::sync::Weak<SharedLeases>, wake: Arc<Notify>) {
    loop {
        wake.notified().await;
        let Some(leases) = leases.upgrade() else {
            return;
        };
        leases.end_released().await;
    }
}

/// Renews the leases every third of their time while they exist.
async fn heartbeat(leases: std::sync::Weak<SharedLeases>) {
    let period = match leases.upgrade() {
        Some(l) => Duration::from_millis((l.ttl_ms / 3).max(1) as u64),
        None => return,
    };
    let mut failing = false;
    loop {
        let Some(leases) = leases.upgrade() else {
            return;
        };
        match leases.renew().await {
            Ok(held) => {
                if failing {
                    warn!(held, "renewing leases again");
                }
                failing = false;
            }
            Err(error) => {
                if !failing {
                    warn!(error = %error, "cannot renew leases; other hosts take this host's work over when they end");
                }
                failing = true;
            }
        }
        drop(leases);
        tokio::time::sleep(period).await;
    }
}

/// The machine's name, for `syncplane status`.
fn machine_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}
