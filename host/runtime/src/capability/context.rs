//! What one installed service may touch, resolved against the installed
//! models, with the operator's current config and secret values.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use ipnet::IpNet;

use super::grants::Grants;
use super::responder::HttpResponder;
use crate::gate::InvocationGate;
use crate::runtime::InstanceLimits;

/// Replaces secret values in text the guest produced.
pub const REDACTED: &str = "[redacted]";

/// A service's capabilities as every invocation of its components sees
/// them. Shared by all its components; config and secrets change live.
#[derive(Debug)]
pub struct ServiceContext {
    service: String,
    own_models: BTreeSet<String>,
    readable: BTreeSet<String>,
    writable: BTreeSet<String>,
    grants: Grants,
    networks: Vec<IpNet>,
    values: RwLock<Values>,
    /// The operator's deadline and memory limit for this service, if not
    /// the host's; read at the start of every call.
    instance_limits: RwLock<InstanceLimits>,
    gate: Arc<InvocationGate>,
    /// Set once another version replaced this one (or the service was
    /// removed): its components no longer run.
    retired: AtomicBool,
    /// Answers outbound requests instead of the network when set (offline
    /// step tests); `None` on a server.
    responder: RwLock<Option<Arc<dyn HttpResponder>>>,
    /// Whether a call's instance is kept for the next call of its step
    /// ([`crate::warm`]).
    reuse_instances: bool,
    /// Linear memory one instance needs, as the service's manifest asks;
    /// its limit unless the operator set one.
    requested_memory: Option<usize>,
}

#[derive(Debug, Default)]
struct Values {
    config: BTreeMap<String, String>,
    secrets: BTreeMap<String, String>,
}

impl ServiceContext {
    /// A context for `service`.
    ///
    /// `own_models` are the models its files define (with their concrete
    /// descendants); `readable` and `writable` the other models its grants
    /// resolve to; `networks` the operator's limits on where outbound
    /// requests may connect (empty: anywhere its origins allow).
    pub fn new(
        service: impl Into<String>,
        own_models: BTreeSet<String>,
        readable: BTreeSet<String>,
        writable: BTreeSet<String>,
        grants: Grants,
        networks: Vec<IpNet>,
    ) -> Self {
        ServiceContext {
            service: service.into(),
            own_models,
            readable,
            writable,
            grants,
            networks,
            values: RwLock::default(),
            instance_limits: RwLock::default(),
            gate: Arc::default(),
            retired: AtomicBool::new(false),
            responder: RwLock::default(),
            reuse_instances: false,
            requested_memory: None,
        }
    }

    /// The same context, with the memory one instance needs as the
    /// manifest asks (`[service] memory_mib`), in bytes.
    #[must_use]
    pub fn requesting_memory(mut self, bytes: Option<usize>) -> Self {
        self.requested_memory = bytes;
        self
    }

    /// The memory one instance needs as the manifest asks, in bytes.
    pub fn requested_memory(&self) -> Option<usize> {
        self.requested_memory
    }

    /// The same context, with instances kept between calls when `reuse`
    /// (the manifest's `[service] reuse_instances`; see [`crate::warm`]).
    #[must_use]
    pub fn reusing_instances(mut self, reuse: bool) -> Self {
        self.reuse_instances = reuse;
        self
    }

    /// Whether the service's instances are kept between calls.
    pub fn reuses_instances(&self) -> bool {
        self.reuse_instances
    }

    /// The same context, passing the invocation gate of `previous` (the
    /// version it replaces), so that a drain covers both.
    #[must_use]
    pub fn sharing_gate_of(mut self, previous: &ServiceContext) -> Self {
        self.gate = Arc::clone(&previous.gate);
        self
    }

    /// The gate every invocation of the service passes.
    pub fn gate(&self) -> &InvocationGate {
        &self.gate
    }

    /// Marks this version as replaced: calls still waiting at the gate do
    /// not run its components.
    pub fn retire(&self) {
        self.retired.store(true, Ordering::Release);
    }

    /// Whether [`ServiceContext::retire`] was called.
    pub fn is_retired(&self) -> bool {
        self.retired.load(Ordering::Acquire)
    }

    /// A context with no grants: own models only.
    pub fn own_only(service: impl Into<String>, own_models: BTreeSet<String>) -> Self {
        Self::new(
            service,
            own_models,
            BTreeSet::new(),
            BTreeSet::new(),
            Grants::default(),
            Vec::new(),
        )
    }

    /// The service's name.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// What the package declared.
    pub fn grants(&self) -> &Grants {
        &self.grants
    }

    /// The operator's network limits for outbound requests.
    pub fn networks(&self) -> &[IpNet] {
        &self.networks
    }

    /// Whether the model is one of the service's own.
    pub fn owns(&self, model: &str) -> bool {
        self.own_models.contains(model)
    }

    /// Whether a grant lets the service read objects of `model` (a model of
    /// another service or of core; own models are separate).
    pub fn may_read_granted(&self, model: &str) -> bool {
        self.readable.contains(model) || self.writable.contains(model)
    }

    /// Whether a grant lets the service change objects of `model`.
    pub fn may_write_granted(&self, model: &str) -> bool {
        self.writable.contains(model)
    }

    /// Replaces the operator's config and secret values.
    pub fn set_values(&self, config: BTreeMap<String, String>, secrets: BTreeMap<String, String>) {
        let mut values = self.values.write().unwrap_or_else(|p| p.into_inner());
        *values = Values { config, secrets };
    }

    /// The config value `name`, if set.
    pub fn config(&self, name: &str) -> Option<String> {
        let values = self.values.read().unwrap_or_else(|p| p.into_inner());
        values.config.get(name).cloned()
    }

    /// The secret `name`, if set.
    pub fn secret(&self, name: &str) -> Option<String> {
        let values = self.values.read().unwrap_or_else(|p| p.into_inner());
        values.secrets.get(name).cloned()
    }

    /// Replaces the service's own deadline and memory limit; calls that
    /// start from now on run under them (running ones keep theirs).
    pub fn set_instance_limits(&self, limits: InstanceLimits) {
        *self
            .instance_limits
            .write()
            .unwrap_or_else(|p| p.into_inner()) = limits;
    }

    /// The service's own deadline and memory limit (`None`: the host's).
    pub fn instance_limits(&self) -> InstanceLimits {
        *self
            .instance_limits
            .read()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Sends the service's outbound requests to `responder` instead of the
    /// network from the next request on (`None`: the network again). For
    /// tools that test steps offline; the grants are still checked first.
    ///
    /// # Warning
    ///
    /// A server must never set one: every request of the service would be
    /// answered by it.
    pub fn set_http_responder(&self, responder: Option<Arc<dyn HttpResponder>>) {
        *self.responder.write().unwrap_or_else(|p| p.into_inner()) = responder;
    }

    /// The responder set with [`ServiceContext::set_http_responder`].
    pub fn http_responder(&self) -> Option<Arc<dyn HttpResponder>> {
        self.responder
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// `text` with every secret value of the service replaced by
    /// [`REDACTED`].
    pub fn redact(&self, text: &str) -> String {
        let values = self.values.read().unwrap_or_else(|p| p.into_inner());
        let mut text = text.to_owned();
        // Longest first, so a secret containing another is replaced whole.
        let mut secrets: Vec<&String> = values.secrets.values().filter(|s| !s.is_empty()).collect();
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        for secret in secrets {
            if text.contains(secret.as_str()) {
                text = text.replace(secret.as_str(), REDACTED);
            }
        }
        text
    }
}

/// `text` with each NUL character (U+0000), which PostgreSQL's text cannot
/// hold, replaced by U+FFFD: a guest's message is stored the same on
/// either store.
pub fn without_nul(text: String) -> String {
    if text.contains('\0') {
        text.replace('\0', "\u{FFFD}")
    } else {
        text
    }
}

/// Cuts `text` to at most `max` bytes (at a character boundary), saying how
/// much was cut.
pub fn truncate(mut text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    let total = text.len();
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push_str(&format!(" … [truncated: {total} bytes in all]"));
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_longest_first() {
        let ctx = ServiceContext::own_only("s", BTreeSet::new());
        ctx.set_values(
            BTreeMap::new(),
            BTreeMap::from([
                ("short".to_owned(), "abc".to_owned()),
                ("long".to_owned(), "abcdef".to_owned()),
                ("empty".to_owned(), String::new()),
            ]),
        );
        assert_eq!(
            ctx.redact("key abcdef and abc"),
            "key [redacted] and [redacted]"
        );
        assert_eq!(ctx.secret("short").as_deref(), Some("abc"));
        assert_eq!(ctx.config("short"), None);
    }

    #[test]
    fn truncation_keeps_characters_whole_and_says_so() {
        assert_eq!(truncate("short".into(), 10), "short");
        assert_eq!(without_nul("a\0b".into()), "a\u{FFFD}b");
        assert_eq!(without_nul("plain".into()), "plain");
        let cut = truncate("ééééé".into(), 3);
        assert!(cut.starts_with('é') && !cut.starts_with("éé"), "{cut}");
        assert!(cut.ends_with("[truncated: 10 bytes in all]"), "{cut}");
    }
}
