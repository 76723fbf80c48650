//! Taking work under a lease: the seam between the scheduler and the store.
//!
//! The scheduler never reads pending objects itself: it asks a
//! [`WorkSource`] for ready work, and every object it receives is leased to
//! it until it releases the object (after the outcome is committed, or when
//! it decides not to run it after all). While leased, nobody else takes the
//! object. One host on SQLite keeps its leases in memory
//! ([`LocalLeases`]); several hosts sharing one PostgreSQL store keep them
//! in the store ([`crate::SharedLeases`]).

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use syncplane_core::{Core, Object, Work};

use crate::clock::{Clock, SystemClock};
use crate::error::Result;

/// What one [`WorkSource::take`] returned.
#[derive(Debug, Default)]
pub struct Taken {
    /// The objects now leased to the caller.
    pub objects: Vec<Object>,
    /// Whether more of this work may be ready beyond what was read.
    pub more: bool,
    /// Whether some of the ready objects were left out because they are
    /// leased already: they changed again while their work runs, and must
    /// be looked at again once it commits.
    pub busy: bool,
    /// When the earliest lease another host holds on some of them ends:
    /// the work is looked at again then, should that host be gone.
    pub busy_until_ms: Option<i64>,
}

/// A boxed future returned by [`WorkSource::take`].
pub type TakeFuture<'a> = Pin<Box<dyn Future<Output = Result<Taken>> + Send + 'a>>;

/// A boxed future returned by [`WorkSource::hold`].
pub type HoldFuture<'a> = Pin<Box<dyn Future<Output = bool> + Send + 'a>>;

/// A boxed future returned by [`WorkSource::held_elsewhere`].
pub type ElsewhereFuture<'a> = Pin<Box<dyn Future<Output = Result<Vec<(i64, i64)>>> + Send + 'a>>;

/// A boxed future returned by [`WorkSource::stop`].
pub type StopFuture<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// Where the scheduler takes ready work from.
pub trait WorkSource: Send + Sync {
    /// Reads up to `limit` objects of leaf model `model` with `work` due
    /// and leases those nobody holds to the caller.
    fn take<'a>(&'a self, model: &'a str, work: Work, limit: u32) -> TakeFuture<'a>;

    /// Whether the object `id` is leased now (its work is queued, running
    /// or being committed).
    fn is_leased(&self, id: i64) -> bool;

    /// Of `ids`, the objects whose work another host runs now, each with
    /// when that host's lease ends unless renewed. None on a store of one
    /// host.
    fn held_elsewhere<'a>(&'a self, ids: &'a [i64]) -> ElsewhereFuture<'a> {
        let _ = ids;
        Box::pin(std::future::ready(Ok(Vec::new())))
    }

    /// Ends the leases of `ids`: their objects may be taken again.
    fn release(&self, ids: &[i64]);

    /// How many objects are leased now.
    fn leased(&self) -> usize;

    /// Ends the leases of `ids`, whose outcomes were just committed under
    /// [`WorkSource::fence`] (which ended them in the store already).
    fn committed(&self, ids: &[i64]) {
        self.release(ids);
    }

    /// The host whose leases in the store outcomes must be written under
    /// ([`syncplane_core::SyncBatch::fence`]), when leases live there.
    fn fence(&self) -> Option<&str> {
        None
    }

    /// Whether this host holds (or has just taken) the singleton `key`:
    /// work only one host at a time does. Always on a store of one host.
    fn hold<'a>(&'a self, key: &'a str) -> HoldFuture<'a> {
        let _ = key;
        Box::pin(std::future::ready(true))
    }

    /// Gives up the singleton `key` (see [`WorkSource::hold`]): another
    /// host may take it at once. Nothing on a store of one host.
    fn let_go<'a>(&'a self, key: &'a str) -> StopFuture<'a> {
        let _ = key;
        Box::pin(std::future::ready(()))
    }

    /// The engine stops: ends what the source holds outside this process.
    fn stop(&self) -> StopFuture<'_> {
        Box::pin(std::future::ready(()))
    }
}

/// Leases kept in this process: right for one host on its own store, and
/// free of any write per object.
///
/// Each `(model, work)` keeps a cursor, the last id it read: the next take
/// reads on from there, so a long queue is walked once instead of reading
/// the objects already held on every take. A read that reaches the end of
/// the queue goes on from the lowest id.
pub struct LocalLeases {
    core: Core,
    clock: Arc<dyn Clock>,
    state: Mutex<LeaseState>,
}

#[derive(Default)]
struct LeaseState {
    held: HashSet<i64>,
    cursors: HashMap<(String, Work), i64>,
    /// Takes reading the store now.
    reading: usize,
    /// Leases ended while some take was reading, numbered in order: an
    /// object read before its lease ended may have been read before its
    /// outcome was committed, and is not handed out by that take.
    ended: Vec<(u64, i64)>,
    /// The number of the latest entry of `ended`.
    ended_seq: u64,
}

impl LeaseState {
    /// A take starts reading; returns where `ended` stands.
    fn start_reading(&mut self) -> u64 {
        self.reading += 1;
        self.ended_seq
    }

    /// A take that started reading at `since` is done reading; returns the
    /// objects whose leases ended meanwhile.
    fn done_reading(&mut self, since: u64) -> HashSet<i64> {
        let stale = self
            .ended
            .iter()
            .filter(|(seq, _)| *seq > since)
            .map(|(_, id)| *id)
            .collect();
        self.reading = self.reading.saturating_sub(1);
        if self.reading == 0 {
            self.ended.clear();
        }
        stale
    }

    fn end(&mut self, id: i64) {
        if self.held.remove(&id) && self.reading > 0 {
            self.ended_seq += 1;
            self.ended.push((self.ended_seq, id));
        }
    }
}

/// Marks a take done reading, also when its future is dropped mid-read.
struct Reading<'a> {
    leases: &'a LocalLeases,
    since: u64,
    done: bool,
}

impl Reading<'_> {
    fn done(mut self) -> HashSet<i64> {
        self.done = true;
        self.leases.state().done_reading(self.since)
    }
}

impl Drop for Reading<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.leases.state().done_reading(self.since);
        }
    }
}

impl LocalLeases {
    /// Leases over `core`'s store; work is due by the system clock.
    pub fn new(core: Core) -> Self {
        LocalLeases::with_clock(core, Arc::new(SystemClock))
    }

    /// Leases over `core`'s store; work is due by `clock`.
    pub fn with_clock(core: Core, clock: Arc<dyn Clock>) -> Self {
        LocalLeases {
            core,
            clock,
            state: Mutex::default(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, LeaseState> {
        match self.state.lock() {
            Ok(state) => state,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

impl WorkSource for LocalLeases {
    fn take<'a>(&'a self, model: &'a str, work: Work, limit: u32) -> TakeFuture<'a> {
        Box::pin(async move {
            let limit = limit.max(1);
            let key = (model.to_owned(), work);
            let after = self.state().cursors.get(&key).copied().unwrap_or(0);
            let now = self.clock.now_ms();
            let reading = Reading {
                leases: self,
                since: self.state().start_reading(),
                done: false,
            };
            let mut read = self
                .core
                .ready_at(model, work, after, Some(limit), now)
                .await?;
            let mut more = read.len() >= limit as usize;
            if !more && after > 0 {
                // The walk reached the end: go on from the start.
                let left = limit - read.len() as u32;
                let start = self.core.ready_at(model, work, 0, Some(left), now).await?;
                more = start.len() >= left as usize;
                read.extend(start.into_iter().filter(|o| o.id <= after));
            }
            // An object whose work was committed while it was being read
            // may have been read as it was before: left for the next take,
            // which the commit triggers.
            let stale = reading.done();
            let mut state = self.state();
            match read.last() {
                Some(last) if more => {
                    state.cursors.insert(key, last.id);
                }
                _ => {
                    state.cursors.remove(&key);
                }
            }
            let found = read.len();
            let mut left_stale = false;
            let objects: Vec<Object> = read
                .into_iter()
                .filter(|o| {
                    let fresh = !stale.contains(&o.id);
                    left_stale |= !fresh;
                    fresh && state.held.insert(o.id)
                })
                .collect();
            let busy = objects.len() < found;
            Ok(Taken {
                objects,
                more,
                busy,
                // Their commit may have signalled before this take ends:
                // look again at once rather than wait for another.
                busy_until_ms: left_stale.then_some(now),
            })
        })
    }

    fn is_leased(&self, id: i64) -> bool {
        self.state().held.contains(&id)
    }

    fn release(&self, ids: &[i64]) {
        let mut state = self.state();
        for id in ids {
            state.end(*id);
        }
    }

    fn leased(&self) -> usize {
        self.state().held.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_ended_while_a_take_reads_marks_that_object_stale_for_it_alone() {
        let mut state = LeaseState::default();
        state.held.extend([1, 2]);
        let first = state.start_reading();
        state.end(1);
        let second = state.start_reading();
        state.end(2);
        // Not held: ending it again records nothing.
        state.end(3);
        assert_eq!(state.done_reading(second), HashSet::from([2]));
        assert_eq!(state.done_reading(first), HashSet::from([1, 2]));
        // Nobody reads: nothing is kept.
        state.held.insert(4);
        state.end(4);
        assert!(state.ended.is_empty());
        let third = state.start_reading();
        assert!(state.done_reading(third).is_empty());
    }
    use serde_json::{Value, json};

    async fn core_with(n: usize) -> (tempfile::TempDir, Core) {
        let dir = tempfile::tempdir().expect("tempdir");
        let core = Core::open(&dir.path().join("db.sqlite"))
            .await
            .expect("open");
        let file = syncplane_xproto::parse(
            "t.xproto",
            "option app_label = \"t\";\nmessage Item (XOSBase) { required string name = 1; }",
        )
        .expect("parses");
        core.register_models(&[file]).await.expect("models");
        for i in 0..n {
            let Value::Object(fields) = json!({ "name": format!("i{i}") }) else {
                unreachable!()
            };
            core.create("Item", fields).await.expect("create");
        }
        (dir, core)
    }

    fn ids(taken: &Taken) -> Vec<i64> {
        taken.objects.iter().map(|o| o.id).collect()
    }

    #[tokio::test]
    async fn a_leased_object_is_not_taken_again_until_released() {
        let (_dir, core) = core_with(3).await;
        let leases = LocalLeases::new(core);
        let first = leases.take("Item", Work::Sync, 10).await.expect("take");
        assert_eq!(first.objects.len(), 3);
        assert!(!first.more);
        assert!(!first.busy);
        assert!(leases.is_leased(first.objects[0].id));
        let again = leases.take("Item", Work::Sync, 10).await.expect("take");
        assert!(again.objects.is_empty(), "{:?}", ids(&again));
        assert!(again.busy, "ready but leased objects are reported");
        leases.release(&[first.objects[1].id]);
        let after = leases.take("Item", Work::Sync, 10).await.expect("take");
        assert_eq!(ids(&after), [first.objects[1].id]);
        assert_eq!(leases.leased(), 3);
    }

    #[tokio::test]
    async fn a_long_queue_is_walked_on_from_the_last_id_then_from_the_start() {
        let (_dir, core) = core_with(5).await;
        let leases = LocalLeases::new(core);
        let a = leases.take("Item", Work::Sync, 2).await.expect("take");
        let b = leases.take("Item", Work::Sync, 2).await.expect("take");
        assert!(a.more && b.more, "a long queue says there is more");
        assert!(ids(&a)[1] < ids(&b)[0], "read on from the last id");
        // The third read reaches the end and goes on from the start, where
        // only what was released is free.
        leases.release(&ids(&a));
        let c = leases.take("Item", Work::Sync, 2).await.expect("take");
        assert_eq!(c.objects.len(), 2, "{:?}", ids(&c));
        assert!(c.more);
        assert!(
            ids(&c).contains(&ids(&a)[0]),
            "the start is read again: {:?}",
            ids(&c)
        );
    }
}
