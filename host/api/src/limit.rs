//! Rate limits on failed password checks, per user and per client address.
//!
//! Each key (a lower-cased e-mail, a client address) has a leaky bucket
//! of failures: a failure adds one, the bucket drains at `burst / period`,
//! and a password check is refused with `429 Too Many Requests` and
//! `Retry-After` while the bucket is full. The check comes before any
//! database read or hashing, so a limited flood costs no argon2 time.
//!
//! Only failures count: successful sign-ins and requests with a session or
//! API token never touch a bucket, so a token client keeps working from an
//! address that floods wrong passwords.
//!
//! # Caveats
//!
//! - Requests that passed the check concurrently may all fail: a bucket can
//!   overshoot by the number of checks in flight (bounded by the hashing
//!   pool's queue).
//! - A per-user bucket lets anyone keep a user's *password* sign-in
//!   refused by sending wrong passwords for it; its tokens keep working.
//! - The client address is the TCP peer: behind a reverse proxy every
//!   client shares the proxy's address (no `X-Forwarded-For` is trusted).
//!   IPv6 clients are keyed by their /64.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Buckets kept before drained ones are dropped.
const PRUNE_AT: usize = 10_000;

/// How many failures a key may have: `burst` at once, drained evenly over
/// `period` (so `burst / period` per second in the long run).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Failures allowed in a row.
    pub burst: u32,
    /// Time for a full bucket to drain.
    pub period: Duration,
}

impl Quota {
    fn drain_per_sec(&self) -> f64 {
        f64::from(self.burst) / self.period.as_secs_f64().max(1e-3)
    }
}

impl FromStr for Quota {
    type Err = String;

    /// `BURST/PERIOD`, e.g. `10/1m`: 10 failures, drained over a minute.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (burst, period) = s
            .split_once('/')
            .ok_or_else(|| format!("expected BURST/PERIOD such as `10/1m`, got `{s}`"))?;
        let burst: u32 = burst
            .trim()
            .parse()
            .map_err(|_| format!("`{burst}` is not a number of failures"))?;
        let period = humantime::parse_duration(period.trim())
            .map_err(|e| format!("`{period}` is not a duration: {e}"))?;
        if burst == 0 || period.is_zero() {
            return Err("a quota needs at least one failure and a period above zero".into());
        }
        Ok(Quota { burst, period })
    }
}

/// The limits on failed password checks; `None` turns one off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginLimits {
    /// Per e-mail (ignoring case), known or not. Default: 10 per minute.
    pub per_user: Option<Quota>,
    /// Per client address (IPv6 by /64). Default: 30 per minute.
    pub per_address: Option<Quota>,
}

impl Default for LoginLimits {
    fn default() -> Self {
        LoginLimits {
            per_user: Some(Quota {
                burst: 10,
                period: Duration::from_secs(60),
            }),
            per_address: Some(Quota {
                burst: 30,
                period: Duration::from_secs(60),
            }),
        }
    }
}

impl LoginLimits {
    /// No limits at all (benchmarks of the hashing path).
    pub fn off() -> Self {
        LoginLimits {
            per_user: None,
            per_address: None,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    level: f64,
    at: Instant,
}

impl Bucket {
    fn drained(&self, quota: &Quota, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        (self.level - elapsed * quota.drain_per_sec()).max(0.0)
    }
}

/// Leaky buckets of failures for one kind of key.
#[derive(Debug)]
struct Buckets<K> {
    quota: Quota,
    buckets: Mutex<HashMap<K, Bucket>>,
}

impl<K: Hash + Eq> Buckets<K> {
    fn new(quota: Quota) -> Self {
        Buckets {
            quota,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, Bucket>> {
        self.buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `Err(wait)` while `key`'s bucket is full.
    fn check(&self, key: &K, now: Instant) -> Result<(), Duration> {
        let Some(bucket) = self.lock().get(key).copied() else {
            return Ok(());
        };
        let level = bucket.drained(&self.quota, now);
        let room = f64::from(self.quota.burst) - level;
        if room >= 1.0 {
            return Ok(());
        }
        Err(Duration::from_secs_f64(
            (1.0 - room) / self.quota.drain_per_sec(),
        ))
    }

    /// Counts a failure; returns whether the bucket is full now.
    fn fail(&self, key: K, now: Instant) -> bool {
        let quota = self.quota;
        let mut buckets = self.lock();
        if buckets.len() >= PRUNE_AT {
            buckets.retain(|_, b| b.drained(&quota, now) > 0.0);
        }
        let bucket = buckets.entry(key).or_insert(Bucket {
            level: 0.0,
            at: now,
        });
        bucket.level = bucket.drained(&quota, now) + 1.0;
        bucket.at = now;
        f64::from(quota.burst) - bucket.level < 1.0
    }
}

/// Who a password check is for: the e-mail and the client's address.
#[derive(Debug, Clone)]
pub(crate) struct Attempt {
    user: String,
    address: Option<IpAddr>,
}

impl Attempt {
    pub(crate) fn new(email: &str, address: Option<IpAddr>) -> Self {
        Attempt {
            user: email.trim().to_lowercase(),
            address: address.map(network),
        }
    }
}

/// The address a client is limited by: itself for IPv4, its /64 for IPv6
/// (one host usually holds a whole /64).
fn network(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut octets = v6.octets();
                octets[8..].fill(0);
                IpAddr::from(octets)
            }
        },
    }
}

/// What a refused check says: which limit, and when to come back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limited {
    /// Whole seconds to wait, at least one.
    pub retry_after: u64,
}

/// The per-user and per-address limits of one server.
#[derive(Debug)]
pub(crate) struct LoginGuard {
    per_user: Option<Buckets<String>>,
    per_address: Option<Buckets<IpAddr>>,
}

impl LoginGuard {
    pub(crate) fn new(limits: LoginLimits) -> Self {
        LoginGuard {
            per_user: limits.per_user.map(Buckets::new),
            per_address: limits.per_address.map(Buckets::new),
        }
    }

    /// Whether `attempt` may check a password now.
    pub(crate) fn check(&self, attempt: &Attempt) -> Result<(), Limited> {
        let now = Instant::now();
        let mut wait = Duration::ZERO;
        if let Some(b) = &self.per_user
            && let Err(w) = b.check(&attempt.user, now)
        {
            wait = wait.max(w);
        }
        if let (Some(b), Some(ip)) = (&self.per_address, &attempt.address)
            && let Err(w) = b.check(ip, now)
        {
            wait = wait.max(w);
        }
        if wait.is_zero() {
            Ok(())
        } else {
            Err(Limited {
                retry_after: wait.as_secs_f64().ceil().max(1.0) as u64,
            })
        }
    }

    /// Counts a failed check of `attempt`; logs when a key becomes limited.
    pub(crate) fn fail(&self, attempt: &Attempt) {
        let now = Instant::now();
        if let Some(b) = &self.per_user
            && b.fail(attempt.user.clone(), now)
        {
            tracing::warn!(user = %attempt.user, "failed sign-ins: password checks of this user are rate-limited");
        }
        if let (Some(b), Some(ip)) = (&self.per_address, attempt.address)
            && b.fail(ip, now)
        {
            tracing::warn!(client = %ip, "failed sign-ins: password checks from this address are rate-limited");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quota(burst: u32, secs: u64) -> Quota {
        Quota {
            burst,
            period: Duration::from_secs(secs),
        }
    }

    #[test]
    fn a_quota_reads_burst_slash_period() {
        assert_eq!("10/1m".parse::<Quota>(), Ok(quota(10, 60)));
        assert!("10".parse::<Quota>().is_err());
        assert!("0/1m".parse::<Quota>().is_err());
        assert!("5/0s".parse::<Quota>().is_err());
    }

    #[test]
    fn a_bucket_refuses_after_burst_failures_and_drains_with_time() {
        let b = Buckets::new(quota(3, 30));
        let t0 = Instant::now();
        for _ in 0..2 {
            assert!(b.check(&"k", t0).is_ok());
            assert!(!b.fail("k", t0));
        }
        assert!(b.check(&"k", t0).is_ok());
        assert!(b.fail("k", t0), "the third failure fills the bucket");
        let wait = b.check(&"k", t0).expect_err("full");
        assert_eq!(wait, Duration::from_secs(10));
        assert!(b.check(&"other", t0).is_ok());
        assert!(b.check(&"k", t0 + Duration::from_secs(10)).is_ok());
    }

    #[test]
    fn the_guard_limits_by_user_and_by_address_independently() {
        let guard = LoginGuard::new(LoginLimits {
            per_user: Some(quota(2, 60)),
            per_address: Some(quota(3, 60)),
        });
        let a: IpAddr = "127.0.0.1".parse().expect("ip");
        let b: IpAddr = "127.0.0.2".parse().expect("ip");
        let admin_from_a = Attempt::new("Admin@X", Some(a));
        guard.fail(&admin_from_a);
        guard.fail(&Attempt::new("admin@x", Some(b)));
        // The user is limited wherever it comes from, in any case.
        assert!(guard.check(&Attempt::new("ADMIN@x", Some(b))).is_err());
        // The address is not, for another user, until its own burst.
        assert!(guard.check(&Attempt::new("bob@x", Some(a))).is_ok());
        guard.fail(&Attempt::new("carol@x", Some(a)));
        guard.fail(&Attempt::new("dave@x", Some(a)));
        let limited = guard
            .check(&Attempt::new("bob@x", Some(a)))
            .expect_err("address");
        assert!(limited.retry_after >= 1);
    }

    #[test]
    fn ipv6_clients_share_their_slash_64() {
        let one: IpAddr = "2001:db8::1".parse().expect("ip");
        let two: IpAddr = "2001:db8::ffff:2".parse().expect("ip");
        assert_eq!(network(one), network(two));
        let mapped: IpAddr = "::ffff:10.1.2.3".parse().expect("ip");
        assert_eq!(network(mapped), "10.1.2.3".parse::<IpAddr>().expect("ip"));
    }
}
