//! Retry timing.

use std::time::Duration;

/// When failed and deferred objects are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Delay before retrying a deferred object. Default: 5 s.
    pub retry_interval: Duration,
    /// Delay after the first failure; doubles with each failure in a row.
    /// Default: 1 s.
    pub backoff_base: Duration,
    /// The longest delay after failures. Default: 5 min.
    pub backoff_max: Duration,
    /// Retry failed objects at `retry_interval` instead of backing off, as
    /// the original's `backoff_disabled` setting. Default: false.
    pub backoff_disabled: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            retry_interval: Duration::from_secs(5),
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(300),
            backoff_disabled: false,
        }
    }
}

impl RetryPolicy {
    /// When to retry after `failures` failures in a row: the backoff, or
    /// the plain retry interval when backoff is disabled.
    pub fn delay_after_failure(&self, failures: i64) -> Duration {
        if self.backoff_disabled {
            self.retry_interval
        } else {
            self.backoff(failures)
        }
    }

    /// The delay after `failures` failures in a row (at least 1): exponential,
    /// capped, plus up to 10% jitter so failing objects do not retry in step.
    pub fn backoff(&self, failures: i64) -> Duration {
        let exponent = failures.saturating_sub(1).clamp(0, 30) as u32;
        let raw = self
            .backoff_base
            .saturating_mul(2u32.saturating_pow(exponent));
        let capped = raw.min(self.backoff_max);
        let jitter = capped.mul_f64(rand::random::<f64>() * 0.1);
        capped + jitter
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_until_the_cap() {
        let policy = RetryPolicy {
            retry_interval: Duration::from_secs(1),
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_millis(1000),
            backoff_disabled: false,
        };
        let within = |d: Duration, base: u64| {
            d >= Duration::from_millis(base) && d <= Duration::from_millis(base + base / 10)
        };
        assert!(within(policy.backoff(1), 100));
        assert!(within(policy.backoff(2), 200));
        assert!(within(policy.backoff(4), 800));
        assert!(within(policy.backoff(5), 1000));
        assert!(within(policy.backoff(60), 1000));
        assert!(within(policy.delay_after_failure(2), 200));
        let flat = RetryPolicy {
            backoff_disabled: true,
            ..policy
        };
        assert_eq!(flat.delay_after_failure(5), Duration::from_secs(1));
    }
}
