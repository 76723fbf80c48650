//! Per-service quotas, set by the operator: the most objects of the
//! service's models, its concurrent invocations and invocation rate, the
//! memory of one of its instances and the deadline of one of its calls.
//!
//! Each service's settings ([`QuotaOverrides`]) are kept in the store
//! (namespace `service-quotas`), so they survive restarts, upgrades and
//! rollbacks; what a service leaves unset follows the host's defaults
//! (`serve` flags). They are applied where each limit lives: the object cap
//! in the core, concurrency and rate in the engine, memory and deadline in
//! the service's runtime context — live, for the next create or call.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use syncplane_core::ObjectQuota;
use syncplane_engine::ServiceLimits;
use syncplane_runtime::capability::ServiceContext;
use syncplane_runtime::{InstanceLimits, Limits};
use syncplane_xproto::File;

use crate::error::{Error, Result};
use crate::host::Host;

/// Where each service's quota settings are kept (one JSON object per
/// service).
pub(crate) const QUOTAS_NAMESPACE: &str = "service-quotas";

/// The most invocations of one service that may run at once.
pub const MAX_SERVICE_CONCURRENCY: u32 = 1024;

/// The longest deadline a service may be given: one hour.
pub const MAX_SERVICE_DEADLINE: Duration = Duration::from_secs(3600);

/// The shortest deadline a service may be given: the runtime counts
/// deadlines in 10 ms ticks.
pub const MIN_SERVICE_DEADLINE: Duration = Duration::from_millis(10);

/// The shortest idle period a service may have: one check of the unloader.
pub const MIN_SERVICE_IDLE_UNLOAD: Duration = Duration::from_secs(1);

/// The longest idle period a service may have.
pub const MAX_SERVICE_IDLE_UNLOAD: Duration = Duration::from_secs(24 * 3600);

/// The most invocations per second a rate limit may allow.
pub const MAX_SERVICE_RATE: u64 = 1_000_000;

/// A limit that can also be lifted: a number, or `"unlimited"` in JSON
/// and on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cap {
    /// No limit, whatever the host's default.
    Unlimited,
    /// At most this many.
    At(u64),
}

impl Cap {
    /// The limit, `None` for [`Cap::Unlimited`].
    pub fn limit(self) -> Option<u64> {
        match self {
            Cap::Unlimited => None,
            Cap::At(n) => Some(n),
        }
    }
}

impl std::str::FromStr for Cap {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s.trim() {
            "unlimited" => Ok(Cap::Unlimited),
            n => n
                .parse()
                .map(Cap::At)
                .map_err(|_| format!("`{s}`: expected a whole number or `unlimited`")),
        }
    }
}

impl Serialize for Cap {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Cap::Unlimited => s.serialize_str("unlimited"),
            Cap::At(n) => s.serialize_u64(*n),
        }
    }
}

impl<'de> Deserialize<'de> for Cap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Number(n) => Ok(Cap::At(n)),
            Raw::Text(t) => t.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// The limits one service runs under: its operator's settings over the
/// host's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ServiceQuota {
    /// The most objects its own models may hold together (those marked
    /// deleted count until purged); `None`: no limit. A create beyond it
    /// fails (`429` on the API). Default: `serve --service-max-objects`,
    /// unlimited.
    pub max_objects: Option<u64>,
    /// Its invocations that may run at once (and its weight when services
    /// compete for the engine). Default: `serve --service-concurrency`, 4.
    pub concurrency: u32,
    /// Invocations it may start per second; `None`: no limit. Beyond it,
    /// its work waits. Default: `serve --service-rate`, unlimited.
    pub invocations_per_sec: Option<u32>,
    /// Linear memory one of its instances may use, in MiB; at most the
    /// host's. Default: `serve --memory-limit-mib`, 64.
    pub memory_mib: u64,
    /// Wall-clock time one of its calls may take before it traps
    /// (`deadline`). Default: `serve --step-timeout`, 10 s.
    #[serde(rename = "deadline_ms", serialize_with = "millis")]
    pub deadline: Duration,
    /// How long its components stay loaded (and its instances warm)
    /// without calls. Default: `serve --guest-idle-unload`, 30 s.
    #[serde(rename = "idle_unload_ms", serialize_with = "millis")]
    pub idle_unload: Duration,
}

fn millis<S: Serializer>(d: &Duration, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl ServiceQuota {
    /// The host's defaults: `max_objects` (none by default), the engine's
    /// per-service `limits` and the runtime's `limits` of an invocation.
    pub fn defaults(
        max_objects: Option<u64>,
        engine: ServiceLimits,
        runtime: &Limits,
    ) -> ServiceQuota {
        ServiceQuota {
            max_objects,
            concurrency: engine.concurrency,
            invocations_per_sec: engine.invocations_per_sec,
            memory_mib: (runtime.memory_bytes >> 20) as u64,
            deadline: runtime.deadline,
            idle_unload: syncplane_runtime::lazy::DEFAULT_IDLE_UNLOAD,
        }
    }

    /// These defaults, with the host's idle period (`serve
    /// --guest-idle-unload`).
    #[must_use]
    pub fn with_idle_unload(mut self, idle: Duration) -> ServiceQuota {
        self.idle_unload = idle;
        self
    }

    /// These defaults with what the operator set for one service. Memory
    /// is cut to these defaults' (the host's cap): a setting kept from a
    /// host that allowed more.
    pub fn with(&self, overrides: &QuotaOverrides) -> ServiceQuota {
        ServiceQuota {
            max_objects: overrides.max_objects.map_or(self.max_objects, Cap::limit),
            concurrency: overrides.concurrency.unwrap_or(self.concurrency),
            invocations_per_sec: overrides
                .invocations_per_sec
                .map_or(self.invocations_per_sec, |cap| {
                    cap.limit().map(|n| u32::try_from(n).unwrap_or(u32::MAX))
                }),
            memory_mib: overrides
                .memory_mib
                .map_or(self.memory_mib, |m| m.min(self.memory_mib)),
            deadline: overrides
                .deadline_ms
                .map_or(self.deadline, Duration::from_millis),
            idle_unload: overrides
                .idle_unload_ms
                .map_or(self.idle_unload, Duration::from_millis),
        }
    }
}

/// What the operator set for one service; a field left `None` follows the
/// host's default. This is what the store keeps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotaOverrides {
    /// See [`ServiceQuota::max_objects`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_objects: Option<Cap>,
    /// See [`ServiceQuota::concurrency`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
    /// See [`ServiceQuota::invocations_per_sec`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invocations_per_sec: Option<Cap>,
    /// See [`ServiceQuota::memory_mib`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mib: Option<u64>,
    /// See [`ServiceQuota::deadline`], in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_ms: Option<u64>,
    /// See [`ServiceQuota::idle_unload`], in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_unload_ms: Option<u64>,
}

impl QuotaOverrides {
    /// Whether the engine must hear of this service's own limits.
    fn sets_engine_limits(&self) -> bool {
        self.concurrency.is_some() || self.invocations_per_sec.is_some()
    }

    fn instance_limits(&self) -> InstanceLimits {
        InstanceLimits {
            deadline: self.deadline_ms.map(Duration::from_millis),
            idle_unload: self.idle_unload_ms.map(Duration::from_millis),
            memory_bytes: self.memory_mib.map(|m| {
                usize::try_from(m)
                    .unwrap_or(usize::MAX)
                    .saturating_mul(1 << 20)
            }),
        }
    }

    /// Refuses values no host runs with; `host_memory_mib` is the cap.
    fn check(&self, service: &str, host_memory_mib: u64) -> Result<()> {
        let invalid = |problem: String| {
            Err(Error::InvalidQuota {
                service: service.to_owned(),
                problem,
            })
        };
        if let Some(c) = self.concurrency
            && !(1..=MAX_SERVICE_CONCURRENCY).contains(&c)
        {
            return invalid(format!(
                "concurrency {c} is out of range: 1 to {MAX_SERVICE_CONCURRENCY}"
            ));
        }
        if let Some(Cap::At(rate)) = self.invocations_per_sec
            && !(1..=MAX_SERVICE_RATE).contains(&rate)
        {
            return invalid(format!(
                "invocations_per_sec {rate} is out of range: 1 to {MAX_SERVICE_RATE}, or `unlimited`"
            ));
        }
        if let Some(m) = self.memory_mib {
            if m == 0 {
                return invalid("memory_mib must be at least 1".to_owned());
            }
            if m > host_memory_mib {
                return invalid(format!(
                    "memory_mib {m} is above the host's limit of {host_memory_mib} MiB per instance; \
                     a service may have less, not more (the host's is `serve --memory-limit-mib`)"
                ));
            }
        }
        if let Some(ms) = self.deadline_ms {
            let d = Duration::from_millis(ms);
            if !(MIN_SERVICE_DEADLINE..=MAX_SERVICE_DEADLINE).contains(&d) {
                return invalid(format!(
                    "deadline {d:?} is out of range: {MIN_SERVICE_DEADLINE:?} to {MAX_SERVICE_DEADLINE:?}"
                ));
            }
        }
        if let Some(ms) = self.idle_unload_ms {
            let d = Duration::from_millis(ms);
            if !(MIN_SERVICE_IDLE_UNLOAD..=MAX_SERVICE_IDLE_UNLOAD).contains(&d) {
                return invalid(format!(
                    "idle_unload {d:?} is out of range: {MIN_SERVICE_IDLE_UNLOAD:?} to {MAX_SERVICE_IDLE_UNLOAD:?}"
                ));
            }
        }
        Ok(())
    }
}

/// One field of a [`QuotaChange`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Setting<T> {
    /// Left as it is (the field is absent).
    #[default]
    Keep,
    /// Back to the host's default (`null`).
    Default,
    /// Set to this value.
    Set(T),
}

impl<T> Setting<T> {
    fn apply(self, field: &mut Option<T>) {
        match self {
            Setting::Keep => {}
            Setting::Default => *field = None,
            Setting::Set(v) => *field = Some(v),
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Setting<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        // Only present fields get here (absent ones take `Default::default`).
        Ok(match Option::<T>::deserialize(d)? {
            None => Setting::Default,
            Some(v) => Setting::Set(v),
        })
    }
}

/// A change of one service's quota, as `PUT
/// /syncplane/v1/services/NAME/limits` takes it: a field left out stays
/// as it is, `null` returns it to the host's default, a value sets it
/// (`max_objects` and `invocations_per_sec` also take `"unlimited"`).
///
/// ```json
/// {"max_objects": 1000, "deadline_ms": 30000, "invocations_per_sec": null}
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotaChange {
    /// See [`ServiceQuota::max_objects`].
    #[serde(default)]
    pub max_objects: Setting<Cap>,
    /// See [`ServiceQuota::concurrency`].
    #[serde(default)]
    pub concurrency: Setting<u32>,
    /// See [`ServiceQuota::invocations_per_sec`].
    #[serde(default)]
    pub invocations_per_sec: Setting<Cap>,
    /// See [`ServiceQuota::memory_mib`].
    #[serde(default)]
    pub memory_mib: Setting<u64>,
    /// See [`ServiceQuota::deadline`], in milliseconds.
    #[serde(default)]
    pub deadline_ms: Setting<u64>,
    /// See [`ServiceQuota::idle_unload`], in milliseconds.
    #[serde(default)]
    pub idle_unload_ms: Setting<u64>,
}

impl QuotaChange {
    /// Every limit back to the host's defaults.
    pub fn reset() -> QuotaChange {
        QuotaChange {
            max_objects: Setting::Default,
            concurrency: Setting::Default,
            invocations_per_sec: Setting::Default,
            memory_mib: Setting::Default,
            deadline_ms: Setting::Default,
            idle_unload_ms: Setting::Default,
        }
    }

    fn apply_to(self, overrides: &mut QuotaOverrides) {
        self.max_objects.apply(&mut overrides.max_objects);
        self.concurrency.apply(&mut overrides.concurrency);
        self.invocations_per_sec
            .apply(&mut overrides.invocations_per_sec);
        self.memory_mib.apply(&mut overrides.memory_mib);
        self.deadline_ms.apply(&mut overrides.deadline_ms);
        self.idle_unload_ms.apply(&mut overrides.idle_unload_ms);
    }
}

/// One service's quota, as `GET /syncplane/v1/services/NAME/limits`
/// answers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuotaReport {
    /// The service.
    pub service: String,
    /// The limits in effect.
    pub limits: ServiceQuota,
    /// What the operator set (the rest follows `defaults`).
    pub overrides: QuotaOverrides,
    /// The defaults of this service: the host's, with the memory its
    /// manifest asks for (at most the host's).
    pub defaults: ServiceQuota,
    /// What the service's manifest asks for one instance (`[service]
    /// memory_mib`), if anything.
    pub requested_memory_mib: Option<u64>,
}

/// One service's usage against its limits, as `syncplane status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuotaUsage {
    /// Objects its own models hold (those marked deleted included).
    pub objects: u64,
    /// Its invocations running now.
    pub running: u64,
    /// The limits in effect.
    pub limits: ServiceQuota,
}

/// The operator's settings of every installed service, in memory. Changes
/// and activations apply them under its lock, so a change racing an
/// upgrade ends up on the version that stays.
#[derive(Clone, Default)]
pub(crate) struct Quotas {
    settings: Arc<Mutex<BTreeMap<String, QuotaOverrides>>>,
}

impl Quotas {
    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, QuotaOverrides>> {
        self.settings.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The concrete models a service's files define: the ones its object
/// quota counts.
pub(crate) fn counted_models(files: &[File]) -> Vec<String> {
    files
        .iter()
        .flat_map(|f| f.models.iter())
        .filter(|m| !m.is_abstract())
        .map(|m| m.name.clone())
        .collect()
}

impl Host {
    /// Loads every service's stored settings (at start, before services
    /// are swapped in).
    pub(crate) async fn restore_quotas(&self) -> Result<()> {
        let mut all = BTreeMap::new();
        for (service, text) in self.core.records(QUOTAS_NAMESPACE).await? {
            let overrides: QuotaOverrides = serde_json::from_str(&text).map_err(|e| {
                Error::Package(format!("stored limits of `{service}` are unreadable: {e}"))
            })?;
            let host_mib = self.quota_defaults.memory_mib;
            if let Some(m) = overrides.memory_mib
                && m > host_mib
            {
                tracing::warn!(
                    service,
                    memory_mib = m,
                    host_memory_mib = host_mib,
                    "the service's memory limit is above this host's; it runs with the host's"
                );
            }
            all.insert(service, overrides);
        }
        *self.quotas.lock() = all;
        Ok(())
    }

    /// Applies `overrides` to the core, the engine and the service's
    /// context. Nothing here can fail.
    pub(crate) fn apply_quota(
        &self,
        service: &str,
        ctx: &ServiceContext,
        files: &[File],
        overrides: &QuotaOverrides,
    ) {
        let quota = self.quota_defaults.with(overrides);
        self.core.set_object_quota(
            service,
            quota.max_objects.map(|max_objects| ObjectQuota {
                models: counted_models(files),
                max_objects,
            }),
        );
        self.engine.set_service_limits(
            service,
            overrides.sets_engine_limits().then_some(ServiceLimits {
                concurrency: quota.concurrency,
                invocations_per_sec: quota.invocations_per_sec,
            }),
        );
        ctx.set_instance_limits(overrides.instance_limits());
    }

    /// Forgets the limits of a service that was removed.
    pub(crate) fn clear_quota(&self, service: &str) {
        self.quotas.lock().remove(service);
        self.core.set_object_quota(service, None);
        self.engine.set_service_limits(service, None);
    }

    /// The quota of `service`: in effect, as set, and the host's defaults.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownService`].
    pub fn service_quota(&self, service: &str) -> Result<QuotaReport> {
        if self.registry.get(service).is_none() {
            return Err(Error::UnknownService(service.to_owned()));
        }
        let overrides = self.quotas.lock().get(service).copied().unwrap_or_default();
        Ok(self.quota_report(service, overrides))
    }

    fn quota_report(&self, service: &str, overrides: QuotaOverrides) -> QuotaReport {
        let requested_memory_mib = self
            .registry
            .get(service)
            .and_then(|installed| installed.ctx.requested_memory())
            .map(|bytes| (bytes >> 20) as u64);
        let mut defaults = self.quota_defaults;
        if let Some(m) = requested_memory_mib {
            defaults.memory_mib = m.min(defaults.memory_mib);
        }
        QuotaReport {
            service: service.to_owned(),
            limits: defaults.with(&overrides),
            overrides,
            defaults,
            requested_memory_mib,
        }
    }

    /// Changes the quota of `service`, live: its next creates and calls
    /// run under it (running calls keep theirs). Kept in the store, so it
    /// survives restarts, upgrades and rollbacks; an uninstall forgets it.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownService`]; [`Error::InvalidQuota`] for a value out
    /// of range, e.g. memory above the host's limit (nothing changes
    /// then); a store failure.
    pub async fn set_service_quota(
        &self,
        service: &str,
        change: QuotaChange,
    ) -> Result<QuotaReport> {
        if self.registry.get(service).is_none() {
            return Err(Error::UnknownService(service.to_owned()));
        }
        let _guard = self.settings_lock.lock().await;
        let mut overrides = self.quotas.lock().get(service).copied().unwrap_or_default();
        change.apply_to(&mut overrides);
        overrides.check(service, self.quota_defaults.memory_mib)?;
        let text = serde_json::to_string(&overrides)
            .map_err(|e| Error::Package(format!("cannot serialise the limits: {e}")))?;
        // Written as a host record change other hosts hear of.
        let write = syncplane_core::RecordWrite::Put {
            namespace: QUOTAS_NAMESPACE.to_owned(),
            key: service.to_owned(),
            value: text,
        };
        self.core.write_records(&[write]).await?;
        {
            let mut all = self.quotas.lock();
            all.insert(service.to_owned(), overrides);
            // Under the lock: an activation swapping in another version
            // applies the same settings, before or after.
            if let Some(installed) = self.registry.get(service) {
                self.apply_quota(service, &installed.ctx, &installed.files, &overrides);
            }
        }
        tracing::info!(service, ?overrides, "service limits changed");
        Ok(self.quota_report(service, overrides))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> ServiceQuota {
        ServiceQuota::defaults(None, ServiceLimits::default(), &Limits::default())
    }

    #[test]
    fn unset_fields_follow_the_hosts_defaults() {
        let d = defaults();
        assert_eq!(d.with(&QuotaOverrides::default()), d);
        assert_eq!(d.memory_mib, 64);
        assert_eq!(d.deadline, Duration::from_secs(10));
        let own = d.with(&QuotaOverrides {
            max_objects: Some(Cap::At(5)),
            invocations_per_sec: Some(Cap::At(20)),
            deadline_ms: Some(30_000),
            ..QuotaOverrides::default()
        });
        assert_eq!(own.max_objects, Some(5));
        assert_eq!(own.invocations_per_sec, Some(20));
        assert_eq!(own.deadline, Duration::from_secs(30));
        assert_eq!(own.concurrency, d.concurrency);
    }

    #[test]
    fn unlimited_lifts_a_default_limit() {
        let d = ServiceQuota::defaults(
            Some(100),
            ServiceLimits {
                concurrency: 2,
                invocations_per_sec: Some(10),
            },
            &Limits::default(),
        );
        let lifted = d.with(&QuotaOverrides {
            max_objects: Some(Cap::Unlimited),
            invocations_per_sec: Some(Cap::Unlimited),
            ..QuotaOverrides::default()
        });
        assert_eq!(lifted.max_objects, None);
        assert_eq!(lifted.invocations_per_sec, None);
    }

    #[test]
    fn a_change_keeps_absent_fields_resets_nulls_and_sets_values() {
        let mut overrides = QuotaOverrides {
            max_objects: Some(Cap::At(1)),
            concurrency: Some(2),
            memory_mib: Some(8),
            ..QuotaOverrides::default()
        };
        let change: QuotaChange = serde_json::from_str(
            r#"{"max_objects": "unlimited", "concurrency": null, "deadline_ms": 500, "idle_unload_ms": 5000}"#,
        )
        .expect("parses");
        change.apply_to(&mut overrides);
        assert_eq!(
            overrides,
            QuotaOverrides {
                max_objects: Some(Cap::Unlimited),
                concurrency: None,
                invocations_per_sec: None,
                memory_mib: Some(8),
                deadline_ms: Some(500),
                idle_unload_ms: Some(5000),
            }
        );
        QuotaChange::reset().apply_to(&mut overrides);
        assert_eq!(overrides, QuotaOverrides::default());
        let unknown =
            serde_json::from_str::<QuotaChange>(r#"{"memory": 3}"#).expect_err("unknown field");
        assert!(
            unknown.to_string().contains("unknown field `memory`"),
            "{unknown}"
        );
        let bad = serde_json::from_str::<QuotaChange>(r#"{"max_objects": "lots"}"#)
            .expect_err("not a cap");
        assert!(bad.to_string().contains("`unlimited`"), "{bad}");
    }

    #[test]
    fn out_of_range_values_are_refused_naming_the_limit() {
        let check = |o: QuotaOverrides| o.check("s", 64).map_err(|e| e.to_string());
        let memory = check(QuotaOverrides {
            memory_mib: Some(128),
            ..QuotaOverrides::default()
        })
        .expect_err("above the host");
        assert!(
            memory.contains("memory_mib 128 is above the host's limit of 64 MiB"),
            "{memory}"
        );
        for bad in [
            QuotaOverrides {
                concurrency: Some(0),
                ..QuotaOverrides::default()
            },
            QuotaOverrides {
                invocations_per_sec: Some(Cap::At(0)),
                ..QuotaOverrides::default()
            },
            QuotaOverrides {
                deadline_ms: Some(1),
                ..QuotaOverrides::default()
            },
            QuotaOverrides {
                deadline_ms: Some(7_200_000),
                ..QuotaOverrides::default()
            },
            QuotaOverrides {
                memory_mib: Some(0),
                ..QuotaOverrides::default()
            },
            QuotaOverrides {
                idle_unload_ms: Some(10),
                ..QuotaOverrides::default()
            },
            QuotaOverrides {
                idle_unload_ms: Some(100 * 24 * 3_600_000),
                ..QuotaOverrides::default()
            },
        ] {
            check(bad).expect_err("out of range");
        }
        check(QuotaOverrides {
            max_objects: Some(Cap::At(0)),
            memory_mib: Some(64),
            deadline_ms: Some(30_000),
            invocations_per_sec: Some(Cap::Unlimited),
            concurrency: Some(1),
            idle_unload_ms: Some(5_000),
        })
        .expect("in range");
    }

    #[test]
    fn memory_kept_from_a_larger_host_is_cut_to_this_hosts() {
        let d = defaults();
        let q = d.with(&QuotaOverrides {
            memory_mib: Some(512),
            ..QuotaOverrides::default()
        });
        assert_eq!(q.memory_mib, 64);
    }
}

#[cfg(test)]
mod host_tests {
    use std::collections::BTreeMap;

    use serde_json::{Map, Value, json};

    use super::*;
    use crate::{HostConfig, InstallOptions, Manifest, ServicePackage};

    const SHOP: &str = r#"option app_label = "shop";
message Apple (XOSBase) { required string name = 1; }
"#;
    const FARM: &str = r#"option app_label = "farm";
message Cow (XOSBase) { required string name = 1; }
"#;

    /// A package with models only (no steps).
    fn package(name: &str, xproto: &str) -> ServicePackage {
        let file = format!("models/{name}.xproto");
        let manifest = Manifest::parse(
            "syncplane.toml",
            &format!(
                "manifest_version = 1\n[service]\nname = \"{name}\"\nversion = \"1.0.0\"\nxproto = [\"{file}\"]\n"
            ),
        )
        .expect("manifest");
        ServicePackage {
            manifest,
            xproto: BTreeMap::from([(file, xproto.to_owned())]),
            model_deps: None,
            components: BTreeMap::new(),
        }
    }

    async fn host(dir: &std::path::Path) -> Host {
        let mut config = HostConfig::new(dir);
        config.admin_password = Some("pw".to_owned());
        config.limits.memory_bytes = 32 << 20;
        Host::open(config).await.expect("open")
    }

    fn named(name: &str) -> Map<String, Value> {
        match json!({ "name": name }) {
            Value::Object(m) => m,
            _ => unreachable!("an object literal"),
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn limits_reach_the_engine_core_and_runtime_live_and_survive_a_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let host = host(dir.path()).await;
        for (name, xproto) in [("shop", SHOP), ("farm", FARM)] {
            host.install(package(name, xproto), &InstallOptions::default())
                .await
                .expect("install");
        }
        let engine_default = host.engine().service_limits("shop");
        let change: QuotaChange = serde_json::from_value(json!({
            "max_objects": 1,
            "concurrency": 2,
            "invocations_per_sec": 50,
            "memory_mib": 16,
            "deadline_ms": 300,
        }))
        .expect("change");
        let report = host.set_service_quota("shop", change).await.expect("set");
        assert_eq!(report.limits.max_objects, Some(1));
        assert_eq!(
            host.engine().service_limits("shop"),
            ServiceLimits {
                concurrency: 2,
                invocations_per_sec: Some(50),
            }
        );
        assert_eq!(host.engine().service_limits("farm"), engine_default);
        let ctx = host.registry.context("shop").expect("ctx");
        assert_eq!(
            ctx.instance_limits(),
            InstanceLimits {
                deadline: Some(Duration::from_millis(300)),
                memory_bytes: Some(16 << 20),
                idle_unload: None,
            }
        );
        host.core()
            .create("Apple", named("a"))
            .await
            .expect("first");
        let err = host
            .core()
            .create("Apple", named("b"))
            .await
            .expect_err("over");
        assert!(
            matches!(
                err,
                syncplane_core::Error::QuotaExceeded {
                    limit: 1,
                    count: 1,
                    ..
                }
            ),
            "{err}"
        );
        for i in 0..3 {
            host.core()
                .create("Cow", named(&format!("c{i}")))
                .await
                .expect("another service is not limited");
        }
        let status = host.status().await.expect("status");
        let shop = status
            .services
            .iter()
            .find(|s| s.name == "shop")
            .expect("shop");
        assert_eq!(shop.quota.objects, 1);
        assert_eq!(shop.quota.limits.max_objects, Some(1));
        drop(host);

        let host = super::host_tests::host(dir.path()).await;
        assert_eq!(
            host.engine().service_limits("shop").invocations_per_sec,
            Some(50)
        );
        assert_eq!(
            host.service_quota("shop")
                .expect("report")
                .overrides
                .deadline_ms,
            Some(300)
        );
        host.core()
            .create("Apple", named("b"))
            .await
            .expect_err("still limited after a restart");
        // An upgrade (here a reinstall) keeps them.
        host.install(package("shop", SHOP), &InstallOptions::default())
            .await
            .expect("reinstall");
        host.core()
            .create("Apple", named("b"))
            .await
            .expect_err("still limited after a reinstall");
        let reset = host
            .set_service_quota("shop", QuotaChange::reset())
            .await
            .expect("reset");
        assert_eq!(reset.overrides, QuotaOverrides::default());
        assert_eq!(host.engine().service_limits("shop"), engine_default);
        assert_eq!(
            host.registry
                .context("shop")
                .expect("ctx")
                .instance_limits(),
            InstanceLimits::default()
        );
        host.core()
            .create("Apple", named("b"))
            .await
            .expect("reset");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn memory_above_the_hosts_and_unknown_services_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let host = host(dir.path()).await;
        host.install(package("shop", SHOP), &InstallOptions::default())
            .await
            .expect("install");
        let change = QuotaChange {
            memory_mib: Setting::Set(64),
            ..QuotaChange::default()
        };
        let err = host
            .set_service_quota("shop", change)
            .await
            .expect_err("above the host's 32 MiB");
        assert!(matches!(err, Error::InvalidQuota { .. }), "{err}");
        assert!(err.to_string().contains("limit of 32 MiB"), "{err}");
        assert_eq!(
            host.service_quota("shop").expect("report").overrides,
            QuotaOverrides::default()
        );
        let err = host
            .set_service_quota("nope", QuotaChange::default())
            .await
            .expect_err("unknown");
        assert!(matches!(err, Error::UnknownService(_)), "{err}");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn an_uninstall_forgets_the_limits() {
        let dir = tempfile::tempdir().expect("tempdir");
        let host = host(dir.path()).await;
        host.install(package("shop", SHOP), &InstallOptions::default())
            .await
            .expect("install");
        let change = QuotaChange {
            max_objects: Setting::Set(Cap::At(0)),
            concurrency: Setting::Set(1),
            ..QuotaChange::default()
        };
        host.set_service_quota("shop", change).await.expect("set");
        host.uninstall("shop", false, None)
            .await
            .expect("uninstall");
        assert_eq!(host.core().object_quota("shop"), None);
        assert_eq!(
            host.engine().service_limits("shop"),
            ServiceLimits::default()
        );
        host.install(package("shop", SHOP), &InstallOptions::default())
            .await
            .expect("install again");
        assert_eq!(
            host.service_quota("shop").expect("report").overrides,
            QuotaOverrides::default()
        );
        host.core()
            .create("Apple", named("a"))
            .await
            .expect("no quota");
    }
}
