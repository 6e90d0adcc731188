//! Helpers for the unit tests: a start instant, and about the earliest and the last instant
//! the platform represents (for the "very early" and "very late timestamp" tests).

use std::time::{Duration, Instant};

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
    let mut t = t0();
    for shift in (0..64).rev() {
        while let Some(earlier) = t.checked_sub(Duration::from_secs(1 << shift)) {
            t = earlier;
        }
    }
    for shift in (0..30).rev() {
        while let Some(earlier) = t.checked_sub(Duration::from_nanos(1 << shift)) {
            t = earlier;
        }
    }
    t
}

/// The last `Instant` the platform represents: the agent must not add its way past it.
pub(crate) fn very_late() -> Instant {
    let mut t = t0();
    for shift in (0..64).rev() {
        while let Some(later) = t.checked_add(Duration::from_secs(1 << shift)) {
            t = later;
        }
    }
    for shift in (0..30).rev() {
        while let Some(later) = t.checked_add(Duration::from_nanos(1 << shift)) {
            t = later;
        }
    }
    t
}
