//! Helpers shared by the unit tests of the state machines: a start instant, the earliest
//! instant the platform can represent (for the "very early timestamp" tests).

use std::time::{Duration, Instant};

/// An arbitrary instant for tests to start their virtual clock at.
#[allow(clippy::disallowed_methods)] // tests need one real instant to build virtual time on
pub(crate) fn t0() -> Instant {
    Instant::now()
}

/// About the earliest `Instant` the platform represents: machines must not subtract their
/// way below it (STYLE.md, "a very early timestamp test per machine").
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
