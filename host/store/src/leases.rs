//! Leases of objects to hosts, for several hosts sharing one store.
//!
//! A host that takes an object's work writes a lease, `(id, host, until)`,
//! in `sp_leases`. While the lease is current, no other host takes the
//! object; a lease past its `until` may be taken over by anyone. Holders
//! renew theirs well before they end ([`Store::renew_leases`]), so only a
//! host that died or lost the database loses its leases, and the object's
//! work is then done again elsewhere (steps are idempotent by contract).
//!
//! A claim is one `INSERT … ON CONFLICT DO UPDATE … WHERE expired`: the
//! conflict on the primary key decides between hosts claiming at once,
//! and a lease row being ended or taken over is locked by the statement
//! that changes it, so two hosts never both hold one. Outcomes are
//! written under the same rule ([`StoreTx::end_leases`]): a host writes
//! the outcome of an object only while the lease row still names it.
//!
//! `sp_hosts` has a row per running host, refreshed with its leases, for
//! `syncplane status`.

use crate::backend::Dialect;
use crate::error::Result;
use crate::store::{Store, StoreTx};
use crate::value::SqlValue;

/// A host sharing the store, as it last reported itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRecord {
    /// Its unique id for this run (new at every start).
    pub host: String,
    /// What it calls itself (the machine's name and process id).
    pub name: String,
    /// When it started, in ms since the epoch.
    pub started_ms: i64,
    /// When it last renewed its leases.
    pub seen_ms: i64,
    /// How many leases it held then.
    pub leases: i64,
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

/// `ids` as the text bind of [`ids_source`].
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
    /// Leases those of `ids` that no other host holds at `now_ms` to
    /// `host`, until `until_ms`; renews those `host` holds already.
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
                    "INSERT INTO sp_leases (id, host, until) SELECT id, ?, ? FROM ({source}) AS ids WHERE true \
                     ON CONFLICT (id) DO UPDATE SET host = excluded.host, until = excluded.until \
                     WHERE sp_leases.host = excluded.host OR sp_leases.until < ? RETURNING id"
                ),
                &[
                    SqlValue::Text(host.to_owned()),
                    SqlValue::Integer(until_ms),
                    list.clone(),
                    SqlValue::Integer(now_ms),
                ],
            )
            .await?;
        let granted: Vec<i64> = granted.into_iter().flatten().collect();
        let busy_until_ms = if granted.len() < ids.len() {
            self.pool
                .fetch_ints(
                    &format!(
                        "SELECT min(until) FROM sp_leases WHERE id IN ({source}) AND host <> ? AND until >= ?"
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
                    "DELETE FROM sp_leases WHERE host = ? AND id IN ({})",
                    ids_source(dialect)
                ),
                &[SqlValue::Text(host.to_owned()), ids_text(dialect, ids)],
            )
            .await
    }

    /// Moves the end of every lease `host` holds to `until_ms`, records
    /// the host as seen at `now_ms` (named `name`, started at
    /// `started_ms`), and forgets leases and hosts gone for longer than
    /// `forget_after_ms`. Returns how many leases the host holds.
    ///
    /// # Errors
    ///
    /// When the database fails.
    pub async fn renew_leases(
        &self,
        host: &HostRecord,
        until_ms: i64,
        forget_after_ms: i64,
    ) -> Result<i64> {
        let held = self
            .pool
            .execute(
                "UPDATE sp_leases SET until = ? WHERE host = ?",
                &[
                    SqlValue::Integer(until_ms),
                    SqlValue::Text(host.host.clone()),
                ],
            )
            .await? as i64;
        self.pool
            .execute(
                "INSERT INTO sp_hosts (host, name, started, seen, leases) VALUES (?, ?, ?, ?, ?) \
                 ON CONFLICT (host) DO UPDATE SET seen = excluded.seen, leases = excluded.leases",
                &[
                    SqlValue::Text(host.host.clone()),
                    SqlValue::Text(host.name.clone()),
                    SqlValue::Integer(host.started_ms),
                    SqlValue::Integer(host.seen_ms),
                    SqlValue::Integer(held),
                ],
            )
            .await?;
        let horizon = SqlValue::Integer(host.seen_ms - forget_after_ms);
        self.pool
            .execute(
                "DELETE FROM sp_leases WHERE until < ?",
                std::slice::from_ref(&horizon),
            )
            .await?;
        self.pool
            .execute("DELETE FROM sp_hosts WHERE seen < ?", &[horizon])
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
                "SELECT host, name, started, seen, leases FROM sp_hosts ORDER BY started, host",
                &[],
                |r| {
                    Ok(HostRecord {
                        host: r.text(0)?.unwrap_or_default(),
                        name: r.text(1)?.unwrap_or_default(),
                        started_ms: r.int(2)?.unwrap_or_default(),
                        seen_ms: r.int(3)?.unwrap_or_default(),
                        leases: r.int(4)?.unwrap_or_default(),
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
        Ok(self
            .conn
            .fetch_ints(
                &format!(
                    "DELETE FROM sp_leases WHERE host = ? AND id IN ({}) RETURNING id",
                    ids_source(dialect)
                ),
                &[SqlValue::Text(host.to_owned()), ids_text(dialect, ids)],
            )
            .await?
            .into_iter()
            .flatten()
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::store::temp_store as store;

    #[tokio::test]
    async fn a_lease_goes_to_one_host_until_it_ends_or_expires() {
        let (_dir, store) = store().await;
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
        // Past its end, a's lease on 3 is taken over; a may then no longer
        // write 3's outcome, but still 1's.
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
        let again = store
            .claim_leases("a", &[3], 210, 300)
            .await
            .expect("claim");
        assert!(again.granted.is_empty());
    }

    #[tokio::test]
    async fn a_singleton_has_one_holder_until_its_lease_ends() {
        let (_dir, store) = store().await;
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
                .expect("renew")
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
                .expect("after the end")
        );
        assert!(singleton_id("pull s p") < 0 && singleton_id("") < 0);
    }

    #[tokio::test]
    async fn renewal_keeps_leases_and_hosts_gone_too_long_are_forgotten() {
        let (_dir, store) = store().await;
        let mut a = HostRecord {
            host: "a".into(),
            name: "machine-a/1".into(),
            started_ms: 100,
            seen_ms: 100,
            leases: 0,
        };
        store
            .claim_leases("a", &[7, 8], 100, 200)
            .await
            .expect("claim");
        a.seen_ms = 150;
        assert_eq!(store.renew_leases(&a, 400, 1000).await.expect("renew"), 2);
        let b = store
            .claim_leases("b", &[7], 300, 400)
            .await
            .expect("claim");
        assert!(b.granted.is_empty(), "the renewed lease still holds at 300");
        let hosts = store.hosts().await.expect("hosts");
        assert_eq!(hosts.len(), 1);
        assert_eq!(
            (hosts[0].name.as_str(), hosts[0].leases),
            ("machine-a/1", 2)
        );
        let b = HostRecord {
            host: "b".into(),
            name: "machine-b/2".into(),
            started_ms: 3000,
            seen_ms: 3000,
            leases: 0,
        };
        store.renew_leases(&b, 3100, 1000).await.expect("renew");
        let hosts = store.hosts().await.expect("hosts");
        assert_eq!(hosts.len(), 1, "a, unseen since 150, is forgotten at 3000");
        assert_eq!(hosts[0].host, "b");
        let b_claims = store
            .claim_leases("b", &[7, 8], 3000, 3100)
            .await
            .expect("claim");
        assert_eq!(b_claims.granted.len(), 2);
        store.leave("b").await.expect("leave");
        assert!(store.hosts().await.expect("hosts").is_empty());
        let a_claims = store
            .claim_leases("a", &[7], 3001, 3100)
            .await
            .expect("claim");
        assert_eq!(a_claims.granted, [7], "b left: its leases ended");
    }
}
