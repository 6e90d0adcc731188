//! Helpers for the unit tests: a start instant, and about the earliest and the last instant
//! the platform represents (for the "very early" and "very late timestamp" tests).

use std::time::{Duration, Instant};
use stun_proto::time::{saturating_add, saturating_sub};

/// An arbitrary instant to start a virtual clock at: the same one for every call, so that
/// virtual times in tests are exact.
#[allow(clippy::disallowed_methods)] // tests need one real instant to build virtual time on
pub(crate) fn t0() -> Instant {
    static T0: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *T0.get_or_init(Instant::now)
}

/// About the earliest `Instant` the platform represents: the agent must not subtract its
/// way below it.
pub(crate) fn very_early() -> Instant {
    saturating_sub(t0(), Duration::MAX)
}

/// The last `Instant` the platform represents: the agent must not add its way past it.
pub(crate) fn very_late() -> Instant {
    saturating_add(t0(), Duration::MAX)
}
