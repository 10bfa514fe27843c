//! Where "now" comes from. The phone's replica, the server's document cache and its storage
//! take a [`Clock`] instead of reading the system time themselves, so a test moves time by hand
//! (a campaign's close, the grace period, a session's expiry) and never sleeps or bets on timing.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use crate::model::{Millis, now_millis};

/// A source of the current time in milliseconds since the Unix epoch.
pub trait Clock: Send + Sync + fmt::Debug {
    fn now(&self) -> Millis;
}

/// The system's clock: what every phone and server uses outside tests.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Millis {
        now_millis()
    }
}

/// The system clock, shared.
pub fn system() -> Arc<dyn Clock> {
    Arc::new(SystemClock)
}

/// A clock that stands still until told otherwise (tests).
#[derive(Debug)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    /// A clock showing `at`.
    pub fn new(at: Millis) -> Arc<ManualClock> {
        Arc::new(ManualClock(AtomicI64::new(at)))
    }

    /// Show `at` from now on.
    pub fn set(&self, at: Millis) {
        self.0.store(at, Ordering::SeqCst);
    }

    /// Move the clock forward by `ms`.
    pub fn advance(&self, ms: Millis) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Millis {
        self.0.load(Ordering::SeqCst)
    }
}

/// The system clock moved forward by an offset a test sets: time still passes, so phones and
/// server stay in step, and a test that needs "later" advances it instead of sleeping.
#[derive(Debug, Default)]
pub struct OffsetClock(AtomicI64);

impl OffsetClock {
    pub fn new() -> Arc<OffsetClock> {
        Arc::new(OffsetClock::default())
    }

    /// Move this clock `ms` ahead of the system clock (cumulative).
    pub fn advance(&self, ms: Millis) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for OffsetClock {
    fn now(&self) -> Millis {
        now_millis().saturating_add(self.0.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let clock = ManualClock::new(1_000);
        assert_eq!(clock.now(), 1_000);
        clock.advance(500);
        assert_eq!(clock.now(), 1_500);
        clock.set(10);
        assert_eq!(clock.now(), 10);
    }

    #[test]
    fn an_offset_clock_runs_ahead_of_the_system_clock_by_what_it_was_told() {
        let clock = OffsetClock::new();
        clock.advance(60_000);
        let system = now_millis();
        assert!(clock.now() >= system + 60_000);
    }
}
