//! Helpers shared by the unit tests of the state machines: a start instant, the earliest
//! instant the platform can represent (for the "very early timestamp" tests).

use std::time::{Duration, Instant};

use rand_core::{CryptoRng, RngCore, SeedableRng};

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
/// The last `Instant` the platform represents: machines must not add their way past it
/// (DESIGN.md: no panic on any input, time included).
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

/// A deterministic, seeded RNG (ChaCha20).
#[derive(Clone)]
pub(crate) struct TestRng(rand_chacha::ChaCha20Rng);

impl TestRng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(rand_chacha::ChaCha20Rng::seed_from_u64(seed))
    }
}

impl RngCore for TestRng {
    fn next_u32(&mut self) -> u32 {
        self.0.next_u32()
    }

    fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.0.fill_bytes(dest)
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.0.try_fill_bytes(dest)
    }
}

impl CryptoRng for TestRng {}
