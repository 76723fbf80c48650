//! What one service may use of the engine: its share of the invocation
//! slots and its invocation rate.

/// How much of the engine one service may use.
///
/// The engine runs each service's work from its own queue. `concurrency`
/// is both the most invocations of the service running at once and its
/// weight when services compete for the engine's slots: a service with
/// twice the concurrency gets about twice the slots under contention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceLimits {
    /// Invocations of the service that may run at once. Default: 4.
    pub concurrency: u32,
    /// Invocations the service may start per second; `None` for no limit.
    pub invocations_per_sec: Option<u32>,
}

impl Default for ServiceLimits {
    fn default() -> Self {
        ServiceLimits {
            concurrency: 4,
            invocations_per_sec: None,
        }
    }
}
