//! The wire between two test endpoints, 0 and 1, in virtual time: each datagram is lost,
//! duplicated or delayed (with jitter, which reorders) by seeded draws, and waits in a queue
//! ordered by arrival. The handshake suite's `Sim` and the dimpl suite's `Link` both run on it.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

/// An origin for the virtual clock.
pub fn origin() -> Instant {
    #[allow(clippy::disallowed_methods)] // tests need an origin; only offsets from it matter
    Instant::now()
}

/// Impairments, applied per datagram in each direction.
#[derive(Debug, Clone, Copy)]
pub struct Impairments {
    pub loss: f64,
    pub duplicate: f64,
    pub delay: Duration,
    pub jitter: Duration,
}

impl Impairments {
    pub fn perfect() -> Self {
        Self {
            loss: 0.0,
            duplicate: 0.0,
            delay: Duration::from_millis(10),
            jitter: Duration::ZERO,
        }
    }

    /// Loss, duplication and enough jitter to reorder datagrams.
    pub fn hostile(loss: f64) -> Self {
        Self {
            loss,
            duplicate: 0.1,
            delay: Duration::from_millis(10),
            jitter: Duration::from_millis(40),
        }
    }
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Delivery {
    at: Instant,
    order: u64,
    to: usize,
    payload: Vec<u8>,
}

/// See the module documentation.
pub struct Wire {
    pub impairments: Impairments,
    rng: ChaCha20Rng,
    queue: BinaryHeap<Reverse<Delivery>>,
    order: u64,
}

impl Wire {
    pub fn new(impairments: Impairments, seed: u64) -> Self {
        Self {
            impairments,
            rng: ChaCha20Rng::seed_from_u64(seed),
            queue: BinaryHeap::new(),
            order: 0,
        }
    }

    /// Puts one datagram from `from` on the wire at `now`.
    pub fn transmit(&mut self, now: Instant, from: usize, payload: Vec<u8>) {
        if self.chance(self.impairments.loss) {
            return;
        }
        let copies = if self.chance(self.impairments.duplicate) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let jitter_ns = self.impairments.jitter.as_nanos() as u64;
            let extra = if jitter_ns == 0 {
                0
            } else {
                self.rng.next_u64() % jitter_ns
            };
            let at = now + self.impairments.delay + Duration::from_nanos(extra);
            self.order += 1;
            self.queue.push(Reverse(Delivery {
                at,
                order: self.order,
                to: 1 - from,
                payload: payload.clone(),
            }));
        }
    }

    /// When the next datagram arrives.
    pub fn next_at(&self) -> Option<Instant> {
        self.queue.peek().map(|Reverse(d)| d.at)
    }

    /// The next datagram to arrive: to which side, and its bytes.
    pub fn pop(&mut self) -> Option<(usize, Vec<u8>)> {
        self.queue.pop().map(|Reverse(d)| (d.to, d.payload))
    }

    fn chance(&mut self, p: f64) -> bool {
        (self.rng.next_u64() as f64 / u64::MAX as f64) < p
    }
}
