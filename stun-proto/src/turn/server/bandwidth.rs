//! A per-allocation bandwidth cap: a token bucket per direction (client to peers, peers to
//! client), refilled at the configured rate and holding at most one second of it, so a
//! short burst passes and a sustained flood is cut to the rate. RFC 8656 sets no bandwidth
//! rules (its BANDWIDTH attribute of RFC 5766 drafts is gone); coturn's `max-bps` is the
//! same idea, each direction counted apart. Datagrams over the cap are dropped whole
//! (`DropReason::BandwidthExceeded`): the relay is UDP, losing a datagram is its nature.

use std::time::Instant;

/// One direction's bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Bucket {
    /// Bytes that may pass now.
    tokens: u64,
    /// When `tokens` was last refilled.
    refilled: Instant,
}

impl Bucket {
    /// Refills for the time since the last refill, then takes `len` bytes if they fit.
    fn take(&mut self, now: Instant, rate: u64, len: usize) -> bool {
        let elapsed = now.saturating_duration_since(self.refilled);
        // u128: a rate in bytes per second times nanoseconds stays far below 2^128.
        let earned = u128::from(rate) * elapsed.as_nanos() / 1_000_000_000;
        if earned > 0 {
            let earned = u64::try_from(earned).unwrap_or(u64::MAX);
            self.tokens = self.tokens.saturating_add(earned).min(rate);
            self.refilled = now;
        }
        let len = len as u64;
        if len > self.tokens {
            return false;
        }
        self.tokens -= len;
        true
    }
}

/// Which way a datagram goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Direction {
    /// From the client to a peer.
    ToPeer,
    /// From a peer to the client.
    ToClient,
}

/// The two buckets of an allocation capped at `rate` bytes per second each way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Bandwidth {
    rate: u64,
    buckets: [Bucket; 2],
}

impl Bandwidth {
    /// A cap of `rate` bytes per second each way, both buckets full at `now`.
    pub(super) fn new(now: Instant, rate: u32) -> Self {
        let rate = u64::from(rate);
        let full = Bucket {
            tokens: rate,
            refilled: now,
        };
        Self {
            rate,
            buckets: [full; 2],
        }
    }

    /// Whether `len` more bytes may go `direction` at `now` (and, if so, counts them).
    pub(super) fn allows(&mut self, now: Instant, direction: Direction, len: usize) -> bool {
        let index = match direction {
            Direction::ToPeer => 0,
            Direction::ToClient => 1,
        };
        let rate = self.rate;
        self.buckets
            .get_mut(index)
            .is_some_and(|bucket| bucket.take(now, rate, len))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::test_support::{t0, very_early};

    #[test]
    fn a_burst_of_one_second_passes_then_the_rate_holds() {
        let now = t0();
        let mut b = Bandwidth::new(now, 1000);
        assert!(b.allows(now, Direction::ToPeer, 600));
        assert!(b.allows(now, Direction::ToPeer, 400));
        assert!(!b.allows(now, Direction::ToPeer, 1), "the bucket is empty");
        assert!(
            b.allows(now, Direction::ToClient, 1000),
            "each direction apart"
        );
        let later = now + Duration::from_millis(100);
        assert!(
            b.allows(later, Direction::ToPeer, 100),
            "100 ms earn 100 bytes"
        );
        assert!(!b.allows(later, Direction::ToPeer, 1));
        // Idle for an hour: the bucket holds one second's worth, no more.
        let idle = now + Duration::from_secs(3600);
        assert!(b.allows(idle, Direction::ToPeer, 1000));
        assert!(!b.allows(idle, Direction::ToPeer, 1));
        // Time going backwards earns nothing and breaks nothing.
        assert!(!b.allows(very_early(), Direction::ToPeer, 1));
    }

    #[test]
    fn small_steps_are_not_lost_to_rounding() {
        let now = t0();
        let mut b = Bandwidth::new(now, 10);
        assert!(b.allows(now, Direction::ToPeer, 10));
        // 10 bytes/s: 1 ms earns nothing yet, and the clock of the bucket does not move.
        for ms in 1..100 {
            assert!(!b.allows(now + Duration::from_millis(ms), Direction::ToPeer, 1));
        }
        assert!(b.allows(now + Duration::from_millis(100), Direction::ToPeer, 1));
    }
}
