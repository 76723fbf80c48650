//! The virtual clock the engine of a test host reads.

use std::time::Duration;

use syncplane_engine::{Clock, ManualClock, Sleep};

/// A clock that moves only when a test says so (`advance`), and goes back
/// to its start for each test.
#[derive(Debug)]
pub(crate) struct VirtualClock {
    start_ms: i64,
    clock: ManualClock,
}

impl VirtualClock {
    /// A clock showing `start_ms` (milliseconds since the epoch).
    pub(crate) fn at(start_ms: i64) -> Self {
        VirtualClock {
            start_ms,
            clock: ManualClock::at(start_ms),
        }
    }

    /// Back to the start.
    pub(crate) fn reset(&self) {
        self.clock.set(self.start_ms);
    }

    /// Forward by `by`.
    pub(crate) fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }
}

impl Clock for VirtualClock {
    fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    fn sleep_until(&self, at_ms: i64) -> Sleep<'_> {
        self.clock.sleep_until(at_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_moves_only_when_advanced_and_resets_to_its_start() {
        let clock = VirtualClock::at(1_000);
        clock.advance(Duration::from_millis(1_500));
        assert_eq!(clock.now_ms(), 2_500);
        clock.reset();
        assert_eq!(clock.now_ms(), 1_000);
    }
}
