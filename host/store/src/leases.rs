//! Leases of objects to hosts, for several hosts sharing one store.
//!
//! A host that takes an object's work writes a lease, `(id, host)`, in
//! `sp_leases`. A lease holds while its host is alive: every host has a
//! row in `sp_hosts` whose `until` it moves forward with a heartbeat
//! ([`Store::renew_leases`]). The heartbeat is one row per host, whatever
//! it holds, so renewing never locks lease rows that claims and commits
//! are working on. A host that dies (or loses the database) stops moving
//! its `until`; once that passes, every lease it held may be taken over,
//! and the object's work is done again elsewhere (steps are idempotent by
//! contract).
//!
//! A claim is one `INSERT … ON CONFLICT DO UPDATE … WHERE` the holder is
//! this host or is no longer alive: the conflict on the primary key
//! decides between hosts claiming at once, and a lease row being ended or
//! taken over is locked by the statement that changes it, so two hosts
//! never both hold one. Ids a live host holds are left out before any row
//! is locked, and claims and commits lock rows in id order, so hosts
//! working side by side rarely wait for each other and never deadlock. Outcomes are written under the same rule
//! ([`StoreTx::end_leases`]): a host writes the outcome of an object only
//! while the lease row still names it.
//!
//! A claiming host must have renewed once before it claims: to the others,
//! a lease of a host with no `sp_hosts` row is a lease of a dead host.

use crate::backend::Dialect;
use crate::error::Result;
use crate::store::{Store, StoreTx};
use crate::value::SqlValue;

/// A host sharing the store, as it last reported itself.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostRecord {
    /// Its unique id for this run (new at every start).
    pub host: String,
    /// What it calls itself (the machine's name and process id).
    pub name: String,
    /// When it started, in ms since the epoch.
    pub started_ms: i64,
    /// When it last renewed its leases.
    pub seen_ms: i64,
    /// Until when its leases hold unless it renews them again.
    pub until_ms: i64,
    /// How many leases it held then.
    pub leases: i64,
    /// The step invocations it finished since it started.
    pub steps: i64,
    /// The step invocations running on it then.
    pub running: i64,
    /// The step invocations it finished per second since its previous
    /// heartbeat.
    pub steps_per_s: f64,
}

/// What a claim got.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The ids now leased to the claimant.
    pub granted: Vec<i64>,
    /// When the earliest current lease of another host on the rest ends.
    pub busy_until_ms: Option<i64>,
}

/// The statements' list of ids: a subquery of one column `id`, read from
/// one text bind.
fn ids_source(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => "SELECT CAST(value AS INTEGER) AS id FROM json_each(?)",
        Dialect::Postgres => "SELECT unnest(CAST(? AS BIGINT[])) AS id",
    }
}

/// The lease id of the singleton `key`: negative, so it never meets an
/// object's id.
fn singleton_id(key: &str) -> i64 {
    -((crate::schema::stable_hash(key) >> 1) as i64) - 1
}

/// `column` is one of the ids of one text bind. On PostgreSQL an array
/// comparison, which the primary key's index answers in id order (and
/// which, unlike a join with the unnested list, never scans the table).
fn among_ids(dialect: Dialect, column: &str) -> String {
    match dialect {
        Dialect::Sqlite => format!("{column} IN (SELECT value FROM json_each(?))"),
        Dialect::Postgres => format!("{column} = ANY(CAST(? AS BIGINT[]))"),
    }
}

/// `ids` as the text bind of [`ids_source`] and [`among_ids`].
fn ids_text(dialect: Dialect, ids: &[i64]) -> SqlValue {
    let list = ids
        .iter()
        .map(|id| id.to_string())
        .collect::<Vec<_>>()
        .join(",");
    SqlValue::Text(match dialect {
        Dialect::Sqlite => format!("[{list}]"),
        Dialect::Postgres => format!("{{{list}}}"),
    })
}

impl Store {
    /// Leases those of `ids` that no other live host holds at `now_ms` to
    /// `host` (which must have renewed once); `until_ms` is recorded on
    /// the rows for people reading them, the host's heartbeat decides.
    ///
    /// # Errors
    ///
    /// When the database fails.
    pub async fn claim_leases(
        &self,
        host: &str,
        ids: &[i64],
        now_ms: i64,
        until_ms: i64,
    ) -> Result<Claim> {
        if ids.is_empty() {
            return Ok(Claim::default());
        }
        let dialect = self.dialect();
        let source = ids_source(dialect);
        let list = ids_text(dialect, ids);
        let granted = self
            .pool
            .fetch_ints(
                &format!(
                    "INSERT INTO sp_leases (id, host, until) SELECT id, ?, ? FROM ({source}) AS ids \
                     WHERE NOT EXISTS (SELECT 1 FROM sp_leases l JOIN sp_hosts h ON h.host = l.host \
                     WHERE l.id = ids.id AND l.host <> ? AND h.until >= ?) ORDER BY id \
                     ON CONFLICT (id) DO UPDATE SET host = excluded.host, until = excluded.until \
                     WHERE sp_leases.host = excluded.host OR NOT EXISTS \
                     (SELECT 1 FROM sp_hosts h WHERE h.host = sp_leases.host AND h.until >= ?) RETURNING id"
                ),
                &[
                    SqlValue::Text(host.to_owned()),
                    SqlValue::Integer(until_ms),
                    list.clone(),
                    SqlValue::Text(host.to_owned()),
                    SqlValue::Integer(now_ms),
                    SqlValue::Integer(now_ms),
                ],
            )
            .await?;
        let granted: Vec<i64> = granted.into_iter().flatten().collect();
        let busy_until_ms = if granted.len() < ids.len() {
            self.pool
                .fetch_ints(
                    &format!(
                        "SELECT min(h.until) FROM sp_leases l JOIN sp_hosts h ON h.host = l.host \
                         WHERE {} AND l.host <> ? AND h.until >= ?",
                        among_ids(dialect, "l.id")
                    ),
                    &[
                        list,
                        SqlValue::Text(host.to_owned()),
                        SqlValue::Integer(now_ms),
                    ],
                )
                .await?
                .into_iter()
                .flatten()
                .next()
        } else {
            None
        };
        Ok(Claim {
            granted,
            busy_until_ms,
        })
    }

    /// Leases the singleton `key` (a pull step, an event consumer: work
    /// one host at a time does) to `host` until `until_ms`, unless another
    /// host holds it at `now_ms`. Returns whether `host` holds it. It is
    /// renewed with the host's other leases and ends with them.
    ///
    /// # Errors
    ///
    /// When the database fails.
    pub async fn claim_singleton(
        &self,
        host: &str,
        key: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<bool> {
        let claim = self
            .claim_leases(host, &[singleton_id(key)], now_ms, until_ms)
            .await?;
        Ok(!claim.granted.is_empty())
    }

    /// Of `ids`, those leased to a host other than `host` that is alive
    /// at `now_ms`, each with when its host's leases end unless renewed.
    ///
    /// # Errors
    ///
    /// When the database fails.
    pub async fn leased_elsewhere(
        &self,
        host: &str,
        ids: &[i64],
        now_ms: i64,
    ) -> Result<Vec<(i64, i64)>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let dialect = self.dialect();
        self.read_pool()
            .fetch(
                &format!(
                    "SELECT l.id, h.until FROM sp_leases l JOIN sp_hosts h ON h.host = l.host \
                     WHERE l.host <> ? AND h.until >= ? AND {}",
                    among_ids(dialect, "l.id")
                ),
                &[
                    SqlValue::Text(host.to_owned()),
                    SqlValue::Integer(now_ms),
                    ids_text(dialect, ids),
                ],
                |r| Ok((r.int(0)?.unwrap_or_default(), r.int(1)?.unwrap_or_default())),
            )
            .await
    }

    /// Ends `host`'s lease on the singleton `key`, if it holds it: another
    /// host may take it at once.
    ///
    /// # Errors
    ///
    /// When the database fails.
    pub async fn end_singleton(&self, host: &str, key: &str) -> Result<()> {
        self.end_leases(host, &[singleton_id(key)]).await?;
        Ok(())
    }

    /// Ends `host`'s leases on `ids`.
    ///
    /// # Errors
    ///
    /// When the database fails.
    pub async fn end_leases(&self, host: &str, ids: &[i64]) -> Result<u64> {
        if ids.is_empty() {
            return Ok(0);
        }
        let dialect = self.dialect();
        self.pool
            .execute(
                &format!(
                    "DELETE FROM sp_leases WHERE host = ? AND {}",
                    among_ids(dialect, "id")
                ),
                &[SqlValue::Text(host.to_owned()), ids_text(dialect, ids)],
            )
            .await
    }

    /// Records `host` alive until `host.until_ms` (seen at
    /// `host.seen_ms`): its leases hold until then. Forgets hosts whose
    /// `until` passed more than `forget_after_ms` ago, and their leases.
    /// Returns how many leases the host holds.
    ///
    /// # Errors
    ///
    /// When the database fails.
    pub async fn renew_leases(&self, host: &HostRecord, forget_after_ms: i64) -> Result<i64> {
        let me = SqlValue::Text(host.host.clone());
        let held = self
            .pool
            .fetch_ints(
                "SELECT count(*) FROM sp_leases WHERE host = ?",
                std::slice::from_ref(&me),
            )
            .await?
            .into_iter()
            .flatten()
            .next()
            .unwrap_or(0);
        self.pool
            .execute(
                "INSERT INTO sp_hosts (host, name, started, seen, until, leases, steps, running, steps_per_s) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) \
                 ON CONFLICT (host) DO UPDATE SET seen = excluded.seen, until = excluded.until, \
                 leases = excluded.leases, steps = excluded.steps, running = excluded.running, \
                 steps_per_s = excluded.steps_per_s",
                &[
                    me,
                    SqlValue::Text(host.name.clone()),
                    SqlValue::Integer(host.started_ms),
                    SqlValue::Integer(host.seen_ms),
                    SqlValue::Integer(host.until_ms),
                    SqlValue::Integer(held),
                    SqlValue::Integer(host.steps),
                    SqlValue::Integer(host.running),
                    SqlValue::Real(host.steps_per_s),
                ],
            )
            .await?;
        let horizon = SqlValue::Integer(host.seen_ms - forget_after_ms);
        self.pool
            .execute("DELETE FROM sp_hosts WHERE until < ?", &[horizon])
            .await?;
        self.pool
            .execute(
                "DELETE FROM sp_leases WHERE host NOT IN (SELECT host FROM sp_hosts)",
                &[],
            )
            .await?;
        Ok(held)
    }

    /// Ends every lease of `host` and its host record: it stops cleanly.
    ///
    /// # Errors
    ///
    /// When the database fails.
    pub async fn leave(&self, host: &str) -> Result<()> {
        let host = SqlValue::Text(host.to_owned());
        self.pool
            .execute(
                "DELETE FROM sp_leases WHERE host = ?",
                std::slice::from_ref(&host),
            )
            .await?;
        self.pool
            .execute("DELETE FROM sp_hosts WHERE host = ?", &[host])
            .await?;
        Ok(())
    }

    /// The hosts sharing the store, by start time.
    ///
    /// # Errors
    ///
    /// When the database fails.
    pub async fn hosts(&self) -> Result<Vec<HostRecord>> {
        self.read_pool()
            .fetch(
                "SELECT host, name, started, seen, until, leases, steps, running, steps_per_s \
                 FROM sp_hosts ORDER BY started, host",
                &[],
                |r| {
                    Ok(HostRecord {
                        host: r.text(0)?.unwrap_or_default(),
                        name: r.text(1)?.unwrap_or_default(),
                        started_ms: r.int(2)?.unwrap_or_default(),
                        seen_ms: r.int(3)?.unwrap_or_default(),
                        until_ms: r.int(4)?.unwrap_or_default(),
                        leases: r.int(5)?.unwrap_or_default(),
                        steps: r.int(6)?.unwrap_or_default(),
                        running: r.int(7)?.unwrap_or_default(),
                        steps_per_s: r.real(8)?.unwrap_or_default(),
                    })
                },
            )
            .await
    }
}

impl StoreTx {
    /// Ends `host`'s leases on `ids` in this transaction and returns the
    /// ids whose lease `host` still held: the objects whose outcome it may
    /// write. Another host took the others over (this host was too slow to
    /// renew), and will do their work again.
    ///
    /// # Errors
    ///
    /// When the database fails.
    pub async fn end_leases(&mut self, host: &str, ids: &[i64]) -> Result<Vec<i64>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let dialect = self.dialect();
        let held: Vec<i64> = self
            .conn
            .fetch_ints(
                // The index visits (and locks) the rows in id order, as
                // claims lock them, so that a claim and a commit never wait
                // for each other in a circle.
                &format!(
                    "DELETE FROM sp_leases WHERE host = ? AND {} RETURNING id",
                    among_ids(dialect, "id")
                ),
                &[SqlValue::Text(host.to_owned()), ids_text(dialect, ids)],
            )
            .await?
            .into_iter()
            .flatten()
            .collect();
        if !held.is_empty() {
            // Hosts whose work links to these objects wait for them.
            self.announce_outcomes().await?;
        }
        Ok(held)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::temp_store as store;

    /// Records host `host` as seen at `now`, alive until `until`.
    async fn alive(store: &Store, host: &str, now: i64, until: i64) -> i64 {
        let record = HostRecord {
            host: host.into(),
            name: format!("machine/{host}"),
            started_ms: 0,
            seen_ms: now,
            until_ms: until,
            ..HostRecord::default()
        };
        store.renew_leases(&record, 1000).await.expect("renew")
    }

    #[tokio::test]
    async fn a_lease_goes_to_one_live_host_until_it_ends_or_its_host_stops_renewing() {
        let (_dir, store) = store().await;
        alive(&store, "a", 100, 200).await;
        alive(&store, "b", 100, 10_000).await;
        let a = store
            .claim_leases("a", &[1, 2, 3], 100, 200)
            .await
            .expect("claim");
        assert_eq!(a.granted.len(), 3);
        assert_eq!(a.busy_until_ms, None);
        let b = store
            .claim_leases("b", &[2, 3, 4], 150, 250)
            .await
            .expect("claim");
        assert_eq!(b.granted, [4], "b gets only what a does not hold");
        assert_eq!(b.busy_until_ms, Some(200), "and when a's leases end");
        assert_eq!(store.end_leases("a", &[2]).await.expect("end"), 1);
        let b = store
            .claim_leases("b", &[2, 3], 160, 260)
            .await
            .expect("claim");
        assert_eq!(b.granted, [2], "an ended lease is free");
        // a stopped renewing at 200: its lease on 3 is taken over; a may
        // then no longer write 3's outcome, but still 1's.
        let b = store
            .claim_leases("b", &[3], 201, 300)
            .await
            .expect("claim");
        assert_eq!(b.granted, [3]);
        let mut tx = store.begin().await.expect("begin");
        let mut held = tx.end_leases("a", &[1, 3]).await.expect("end");
        held.sort();
        assert_eq!(held, [1], "a lost 3");
        tx.commit().await.expect("commit");
        assert_eq!(
            alive(&store, "a", 210, 1000).await,
            0,
            "a holds nothing now"
        );
        let again = store
            .claim_leases("a", &[3], 210, 300)
            .await
            .expect("claim");
        assert!(again.granted.is_empty(), "b is alive and holds 3");
    }

    #[tokio::test]
    async fn a_lease_of_a_host_that_never_renewed_is_free() {
        let (_dir, store) = store().await;
        store
            .claim_leases("ghost", &[5], 100, 200)
            .await
            .expect("claim");
        alive(&store, "b", 100, 1000).await;
        let b = store
            .claim_leases("b", &[5], 110, 210)
            .await
            .expect("claim");
        assert_eq!(b.granted, [5]);
    }

    #[tokio::test]
    async fn a_singleton_has_one_holder_until_its_host_stops_renewing() {
        let (_dir, store) = store().await;
        alive(&store, "a", 100, 250).await;
        alive(&store, "b", 100, 10_000).await;
        assert!(
            store
                .claim_singleton("a", "pull s p", 100, 200)
                .await
                .expect("claim")
        );
        assert!(
            store
                .claim_singleton("a", "pull s p", 150, 250)
                .await
                .expect("again")
        );
        assert!(
            !store
                .claim_singleton("b", "pull s p", 200, 300)
                .await
                .expect("claim")
        );
        assert!(
            store
                .claim_singleton("b", "pull s q", 200, 300)
                .await
                .expect("other key")
        );
        assert!(
            store
                .claim_singleton("b", "pull s p", 251, 350)
                .await
                .expect("after a's end")
        );
        assert!(singleton_id("pull s p") < 0 && singleton_id("") < 0);
    }

    #[tokio::test]
    async fn hosts_are_listed_with_their_leases_and_forgotten_long_after_they_stop() {
        let (_dir, store) = store().await;
        alive(&store, "a", 100, 400).await;
        store
            .claim_leases("a", &[7, 8], 100, 400)
            .await
            .expect("claim");
        assert_eq!(alive(&store, "a", 150, 400).await, 2);
        alive(&store, "b", 300, 1300).await;
        let b = store
            .claim_leases("b", &[7], 300, 400)
            .await
            .expect("claim");
        assert!(b.granted.is_empty(), "a is alive at 300");
        let hosts = store.hosts().await.expect("hosts");
        assert_eq!(hosts.len(), 2);
        assert_eq!(
            (hosts[0].name.as_str(), hosts[0].leases, hosts[0].until_ms),
            ("machine/a", 2, 400)
        );
        // a's end, 400, is more than 1000 ms before 3000: forgotten, with
        // its leases.
        alive(&store, "b", 3000, 4000).await;
        let hosts = store.hosts().await.expect("hosts");
        assert_eq!(hosts.len(), 1);
        assert_eq!(hosts[0].host, "b");
        let b_claims = store
            .claim_leases("b", &[7, 8], 3000, 3100)
            .await
            .expect("claim");
        assert_eq!(b_claims.granted.len(), 2);
        store.leave("b").await.expect("leave");
        assert!(store.hosts().await.expect("hosts").is_empty());
        alive(&store, "a", 3001, 4000).await;
        let a_claims = store
            .claim_leases("a", &[7], 3001, 4000)
            .await
            .expect("claim");
        assert_eq!(a_claims.granted, [7], "b left: its leases ended");
    }
}
