//! When waiting work is next due, per model, as last read from the store.

use std::collections::HashMap;

/// The earliest retry time of each model's waiting work (syncs and
/// teardowns, and model policies apart), as last read from the store.
///
/// The planner reads again only the models a round looked at, so finding
/// the next wake-up costs what the round touched, not a query per
/// installed model: with two hundred services that full read took longer
/// than the calls it scheduled.
#[derive(Debug, Default)]
pub(crate) struct Retries {
    sync: HashMap<String, i64>,
    policy: HashMap<String, i64>,
}

/// Which retry time.
#[derive(Debug, Clone, Copy)]
pub(crate) enum RetryOf {
    /// Of syncs and teardowns.
    Sync,
    /// Of model policies.
    Policy,
}

impl Retries {
    /// Forgets everything (before reading every model again, so models no
    /// longer installed go too).
    pub(crate) fn clear(&mut self) {
        self.sync.clear();
        self.policy.clear();
    }

    /// Records what was read for `models`: `times` for those that have a
    /// retry waiting, none for the others.
    pub(crate) fn set(&mut self, of: RetryOf, models: &[String], times: Vec<(String, i64)>) {
        let map = match of {
            RetryOf::Sync => &mut self.sync,
            RetryOf::Policy => &mut self.policy,
        };
        for model in models {
            map.remove(model);
        }
        map.extend(times);
    }

    /// The earliest retry time known.
    pub(crate) fn earliest(&self) -> Option<i64> {
        self.sync
            .values()
            .chain(self.policy.values())
            .min()
            .copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reading_some_models_again_keeps_what_is_known_of_the_others() {
        let mut retries = Retries::default();
        let all = ["A".to_owned(), "B".to_owned()];
        retries.set(
            RetryOf::Sync,
            &all,
            vec![("A".into(), 50), ("B".into(), 70)],
        );
        retries.set(RetryOf::Policy, &all, vec![("B".into(), 60)]);
        assert_eq!(retries.earliest(), Some(50));
        // A's failure was fixed: read again, it has no retry waiting.
        retries.set(RetryOf::Sync, &all[..1], Vec::new());
        assert_eq!(retries.earliest(), Some(60));
        retries.set(RetryOf::Policy, &all[1..], vec![("B".into(), 90)]);
        assert_eq!(retries.earliest(), Some(70));
        retries.clear();
        assert_eq!(retries.earliest(), None);
    }
}
