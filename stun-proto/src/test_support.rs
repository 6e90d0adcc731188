//! Helpers shared by the unit tests of the state machines: a start instant, the earliest
//! instant the platform can represent (for the "very early timestamp" tests).

use std::time::{Duration, Instant};

use rand_core::{CryptoRng, RngCore, SeedableRng};

use crate::time::{saturating_add, saturating_sub};

/// An arbitrary instant for tests to start their virtual clock at.
#[allow(clippy::disallowed_methods)] // tests need one real instant to build virtual time on
pub(crate) fn t0() -> Instant {
    Instant::now()
}

/// About the earliest `Instant` the platform represents: machines must not subtract their
/// way below it (STYLE.md, "a very early timestamp test per machine").
pub(crate) fn very_early() -> Instant {
    saturating_sub(t0(), Duration::MAX)
}
/// The last `Instant` the platform represents: machines must not add their way past it
/// (DESIGN.md: no panic on any input, time included).
pub(crate) fn very_late() -> Instant {
    saturating_add(t0(), Duration::MAX)
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
}

impl CryptoRng for TestRng {}
