//! Object quotas: the most objects a group of models (one service's own
//! models) may hold together. Checked by [`CoreTx::create`], whoever
//! creates: REST, TOSCA, a guest's declarative write or the host.
//!
//! [`CoreTx::create`]: crate::CoreTx::create

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use crate::core::{Core, CoreTx};
use crate::error::{Error, Result};

/// A cap on the objects of a group of models, counted together.
///
/// Every object in their tables counts, those marked deleted included: a
/// deleted object still holds its backend resources until its delete step
/// ran and it was purged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectQuota {
    /// The concrete models counted, and whose creation is refused at the
    /// cap (a service's own models).
    pub models: Vec<String>,
    /// The most objects they may hold together.
    pub max_objects: u64,
}

/// Every owner's quota, and the owner of each model under one.
#[derive(Debug, Default)]
pub(crate) struct Quotas {
    by_owner: BTreeMap<String, Arc<ObjectQuota>>,
    owner_of: HashMap<String, String>,
}

impl Quotas {
    fn with(&self, owner: &str, quota: Option<ObjectQuota>) -> Quotas {
        let mut by_owner = self.by_owner.clone();
        match quota {
            Some(quota) => by_owner.insert(owner.to_owned(), Arc::new(quota)),
            None => by_owner.remove(owner),
        };
        let owner_of = by_owner
            .iter()
            .flat_map(|(owner, quota)| quota.models.iter().map(|m| (m.clone(), owner.clone())))
            .collect();
        Quotas { by_owner, owner_of }
    }

    /// The owner and quota covering objects of `model`, if any.
    pub(crate) fn covering(&self, model: &str) -> Option<(&str, &ObjectQuota)> {
        let owner = self.owner_of.get(model)?;
        let quota = self.by_owner.get(owner)?;
        Some((owner.as_str(), quota.as_ref()))
    }
}

/// The quotas a [`Core`] and its clones share; transactions take a
/// snapshot when they begin.
pub(crate) type SharedQuotas = Arc<RwLock<Arc<Quotas>>>;

pub(crate) fn snapshot(shared: &SharedQuotas) -> Arc<Quotas> {
    match shared.read() {
        Ok(q) => Arc::clone(&q),
        Err(poisoned) => Arc::clone(&poisoned.into_inner()),
    }
}

impl Core {
    /// Sets (or with `None` removes) the object quota of `owner`, e.g. a
    /// service: from now on, creating an object of one of `quota.models`
    /// while they hold `max_objects` together fails with
    /// [`Error::QuotaExceeded`]. Transactions already open keep the quotas
    /// they began with.
    ///
    /// A model belongs to one owner's quota at a time; naming it in
    /// another owner's quota moves it there.
    pub fn set_object_quota(&self, owner: &str, quota: Option<ObjectQuota>) {
        let mut shared = match self.quotas.write() {
            Ok(q) => q,
            Err(poisoned) => poisoned.into_inner(),
        };
        let next = shared.with(owner, quota);
        *shared = Arc::new(next);
    }

    /// The object quota of `owner`, if one is set.
    pub fn object_quota(&self, owner: &str) -> Option<ObjectQuota> {
        snapshot(&self.quotas)
            .by_owner
            .get(owner)
            .map(|q| ObjectQuota::clone(q))
    }
}

impl CoreTx {
    /// Refuses a new object of `model` when its owner's quota is reached.
    /// The owner's count is taken once per transaction (the store
    /// serialises writers, so it cannot change underneath) and followed
    /// from there.
    pub(crate) async fn check_object_quota(&mut self, model: &str) -> Result<()> {
        let quotas = Arc::clone(&self.quotas);
        let Some((owner, quota)) = quotas.covering(model) else {
            return Ok(());
        };
        let count = match self.quota_counts.get(owner) {
            Some(count) => *count,
            None => {
                let registry = Arc::clone(self.registry_arc());
                let mut total = 0u64;
                for counted in &quota.models {
                    // A model that left with an upgrade has no table to count.
                    if let Ok(table) = registry.table(counted) {
                        let rows = self.store_tx().count(table, &[]).await?;
                        total += u64::try_from(rows).unwrap_or_default();
                    }
                }
                total
            }
        };
        if count >= quota.max_objects {
            return Err(Error::QuotaExceeded {
                service: owner.to_owned(),
                model: model.to_owned(),
                limit: quota.max_objects,
                count,
            });
        }
        self.quota_counts.insert(owner.to_owned(), count + 1);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Map, Value, json};

    use super::*;

    const MODELS: &str = r#"
option app_label = "shop";
message Basket (XOSBase) { required string name = 1; }
message Apple (XOSBase) { required string name = 1; }
message Pear (XOSBase) { required string name = 1; }
"#;

    async fn core() -> (tempfile::TempDir, Core) {
        let dir = tempfile::tempdir().expect("tempdir");
        let core = Core::open(&dir.path().join("db.sqlite"))
            .await
            .expect("open");
        let file = syncplane_xproto::parse("shop.xproto", MODELS).expect("parses");
        core.register_models(&[file]).await.expect("models");
        (dir, core)
    }

    fn named(name: &str) -> Map<String, Value> {
        match json!({ "name": name }) {
            Value::Object(m) => m,
            _ => unreachable!("an object literal"),
        }
    }

    fn fruit(max_objects: u64) -> Option<ObjectQuota> {
        Some(ObjectQuota {
            models: vec!["Apple".to_owned(), "Pear".to_owned()],
            max_objects,
        })
    }

    #[tokio::test]
    async fn creation_beyond_the_quota_fails_naming_owner_limit_and_count() {
        let (_dir, core) = core().await;
        core.set_object_quota("fruit", fruit(2));
        core.create("Apple", named("a")).await.expect("first");
        core.create("Pear", named("p")).await.expect("second");
        let err = core
            .create("Apple", named("b"))
            .await
            .expect_err("over the quota");
        assert!(
            matches!(
                err,
                Error::QuotaExceeded { ref service, ref model, limit: 2, count: 2 }
                    if service == "fruit" && model == "Apple"
            ),
            "{err:?}"
        );
        assert!(err.is_client_error());
        assert!(err.to_string().contains("service `fruit`"), "{err}");
        // Other models are not counted or limited.
        for i in 0..3 {
            core.create("Basket", named(&format!("b{i}")))
                .await
                .expect("unlimited model");
        }
    }

    #[tokio::test]
    async fn one_transaction_counts_its_own_creations() {
        let (_dir, core) = core().await;
        core.set_object_quota("fruit", fruit(2));
        let mut tx = core.begin().await.expect("begin");
        tx.create("Apple", named("a")).await.expect("first");
        tx.create("Apple", named("b")).await.expect("second");
        let err = tx.create("Pear", named("c")).await.expect_err("third");
        assert!(
            matches!(err, Error::QuotaExceeded { count: 2, .. }),
            "{err}"
        );
    }

    #[tokio::test]
    async fn deleted_objects_count_until_purged_and_a_removed_quota_no_longer_limits() {
        let (_dir, core) = core().await;
        core.set_object_quota("fruit", fruit(1));
        let apple = core.create("Apple", named("a")).await.expect("first");
        core.delete(apple.id).await.expect("delete");
        core.create("Apple", named("b"))
            .await
            .expect_err("still counted while its teardown is pending");
        core.purge(apple.id).await.expect("purge");
        core.create("Apple", named("b")).await.expect("after purge");
        assert_eq!(core.object_quota("fruit"), fruit(1));
        core.set_object_quota("fruit", None);
        assert_eq!(core.object_quota("fruit"), None);
        core.create("Apple", named("c")).await.expect("no quota");
    }
}
