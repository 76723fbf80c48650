//! Hosts sharing one store: leases of objects to hosts, and the hosts'
//! records. The store does the work ([`syncplane_store::Claim`]); the
//! engine's shared work source calls it through here.

use syncplane_store::{Claim, Dialect, HostRecord};

use crate::core::Core;
use crate::error::Result;

impl Core {
    /// Whether several hosts may share this store (PostgreSQL): work is
    /// then taken under leases in the store, not in memory.
    pub fn store_is_shared(&self) -> bool {
        self.store.dialect() == Dialect::Postgres
    }

    /// Leases those of `ids` no other host holds at `now_ms` to `host`,
    /// until `until_ms`.
    ///
    /// # Errors
    ///
    /// A database failure.
    pub async fn claim_leases(
        &self,
        host: &str,
        ids: &[i64],
        now_ms: i64,
        until_ms: i64,
    ) -> Result<Claim> {
        Ok(self.store.claim_leases(host, ids, now_ms, until_ms).await?)
    }

    /// Leases the singleton `key` to `host` unless another host holds it;
    /// returns whether `host` holds it.
    ///
    /// # Errors
    ///
    /// A database failure.
    pub async fn claim_singleton(
        &self,
        host: &str,
        key: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<bool> {
        Ok(self
            .store
            .claim_singleton(host, key, now_ms, until_ms)
            .await?)
    }

    /// Of `ids`, those leased to a live host other than `host`, each with
    /// when that lease ends unless renewed.
    ///
    /// # Errors
    ///
    /// A database failure.
    pub async fn leased_elsewhere(
        &self,
        host: &str,
        ids: &[i64],
        now_ms: i64,
    ) -> Result<Vec<(i64, i64)>> {
        Ok(self.store.leased_elsewhere(host, ids, now_ms).await?)
    }

    /// Ends `host`'s lease on the singleton `key`, if it holds it.
    ///
    /// # Errors
    ///
    /// A database failure.
    pub async fn end_singleton(&self, host: &str, key: &str) -> Result<()> {
        Ok(self.store.end_singleton(host, key).await?)
    }

    /// Ends `host`'s leases on `ids`.
    ///
    /// # Errors
    ///
    /// A database failure.
    pub async fn end_leases(&self, host: &str, ids: &[i64]) -> Result<()> {
        self.store.end_leases(host, ids).await?;
        Ok(())
    }

    /// Records `host` alive until `host.until_ms`, which its leases hold
    /// until; forgets hosts gone for `forget_after_ms`. Returns how many
    /// leases the host holds.
    ///
    /// # Errors
    ///
    /// A database failure.
    pub async fn renew_leases(&self, host: &HostRecord, forget_after_ms: i64) -> Result<i64> {
        Ok(self.store.renew_leases(host, forget_after_ms).await?)
    }

    /// Ends every lease and the record of `host`, which stops.
    ///
    /// # Errors
    ///
    /// A database failure.
    pub async fn leave(&self, host: &str) -> Result<()> {
        Ok(self.store.leave(host).await?)
    }

    /// The hosts sharing the store.
    ///
    /// # Errors
    ///
    /// A database failure.
    pub async fn hosts(&self) -> Result<Vec<HostRecord>> {
        Ok(self.store.hosts().await?)
    }
}
