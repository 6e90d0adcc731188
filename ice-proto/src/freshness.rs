//! The consent state of one selected pair (RFC 7675 §5.1): when the next consent check goes,
//! when consent was last refreshed, and the recent transactions an answer may match; and
//! when an RFC 8445 §11 keepalive is due. The checks themselves are sent and answered by
//! the stream (`consent.rs`).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rand_core::RngCore;
use stun_proto::TransactionId;
use stun_proto::time::saturating_add;

/// How many consent transactions are matched to responses: the last eight checks, 8 s or
/// more of them (a response slower than that no longer counts).
const RECENT: usize = 8;

/// The consent state of one selected pair.
#[derive(Debug, Clone)]
pub(crate) struct Consent {
    /// When the next consent check goes.
    pub next_check_at: Instant,
    /// When the next check goes if the last one is answered (the regular interval after it).
    next_if_answered: Instant,
    /// When consent was last refreshed.
    pub last_fresh: Instant,
    /// Outstanding consent transactions and when they were sent (oldest first).
    recent: VecDeque<(TransactionId, Instant)>,
}

impl Consent {
    /// Consent for a pair selected at `now` (its selecting check just succeeded, so consent
    /// is fresh), the first check after `first`.
    pub fn new(now: Instant, first: Duration) -> Self {
        Self {
            next_check_at: saturating_add(now, first),
            next_if_answered: saturating_add(now, first),
            last_fresh: now,
            // Grown as checks go (usually one is out at a time), bounded by `RECENT`.
            recent: VecDeque::new(),
        }
    }

    /// A randomized interval: uniform in 0.8–1.2 × `base` (RFC 7675 §5.1).
    pub fn interval<R: RngCore + ?Sized>(rng: &mut R, base: Duration) -> Duration {
        let low = base / 5 * 4;
        let spread = u64::try_from((base / 5 * 2).as_micros()).unwrap_or(u64::MAX);
        let jitter = if spread == 0 {
            0
        } else {
            rng.next_u64() % spread.saturating_add(1)
        };
        low.saturating_add(Duration::from_micros(jitter))
    }

    /// When consent expires without a refresh.
    pub fn expires_at(&self, lifetime: Duration) -> Instant {
        saturating_add(self.last_fresh, lifetime)
    }

    /// Whether consent expired at `now`.
    pub fn is_expired(&self, now: Instant, lifetime: Duration) -> bool {
        self.expires_at(lifetime) <= now
    }

    /// Records a consent check sent with `tid`: the next one is due `recheck` later, or
    /// `next` later once a response arrives.
    pub fn on_sent(&mut self, now: Instant, tid: TransactionId, next: Duration, recheck: Duration) {
        if self.recent.len() >= RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back((tid, now));
        self.next_if_answered = saturating_add(now, next);
        self.next_check_at = saturating_add(now, recheck.min(next));
    }

    /// Whether `tid` is one of our consent checks.
    pub fn is_ours(&self, tid: &TransactionId) -> bool {
        self.recent.iter().any(|(t, _)| t == tid)
    }

    /// An authenticated success response to consent check `tid` arrived at `now`; returns
    /// the round-trip time if it was ours.
    pub fn on_response(&mut self, now: Instant, tid: &TransactionId) -> Option<Duration> {
        let i = self.recent.iter().position(|(t, _)| t == tid)?;
        let (_, sent) = self.recent.remove(i)?;
        if now > self.last_fresh {
            self.last_fresh = now;
        }
        // Answered: no recheck; the regular interval after the last check applies.
        self.next_check_at = self.next_check_at.max(self.next_if_answered);
        Some(now.saturating_duration_since(sent))
    }
}

/// §11 keepalive: when the next Binding indication is due, `tr` after the last send.
pub(crate) fn keepalive_due(last_sent: Instant, tr: Duration) -> Instant {
    saturating_add(last_sent, tr)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Counter(u64);
    impl RngCore for Counter {
        fn next_u32(&mut self) -> u32 {
            self.next_u64() as u32
        }
        fn next_u64(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            self.0 >> 11
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            dest.iter_mut().for_each(|b| *b = self.next_u64() as u8);
        }
    }

    #[test]
    fn intervals_are_within_0_8_and_1_2_of_the_base() {
        let mut rng = Counter(1);
        let base = Duration::from_secs(5);
        let mut seen_low = false;
        let mut seen_high = false;
        for _ in 0..1_000 {
            let i = Consent::interval(&mut rng, base);
            assert!(
                i >= Duration::from_secs(4) && i <= Duration::from_secs(6),
                "{i:?}"
            );
            seen_low |= i < Duration::from_millis(4_200);
            seen_high |= i > Duration::from_millis(5_800);
        }
        assert!(seen_low && seen_high, "the interval is randomized");
        assert_eq!(Consent::interval(&mut rng, Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn consent_expires_30_s_after_the_last_response() {
        let t0 = crate::test_support::t0();
        let life = Duration::from_secs(30);
        let mut c = Consent::new(t0, Duration::from_secs(5));
        assert_eq!(c.next_check_at, t0 + Duration::from_secs(5));
        assert!(!c.is_expired(t0 + Duration::from_millis(29_999), life));
        assert!(c.is_expired(t0 + life, life));
        let tid = TransactionId::from([1; 12]);
        c.on_sent(
            t0 + Duration::from_secs(5),
            tid,
            Duration::from_secs(5),
            Duration::from_secs(1),
        );
        assert!(c.is_ours(&tid));
        // An unknown transaction refreshes nothing.
        assert_eq!(
            c.on_response(t0 + Duration::from_secs(6), &[2; 12].into()),
            None
        );
        assert_eq!(
            c.on_response(t0 + Duration::from_secs(6), &tid),
            Some(Duration::from_secs(1)),
            "the round-trip time"
        );
        assert!(!c.is_ours(&tid), "a response is used once");
        assert_eq!(c.expires_at(life), t0 + Duration::from_secs(36));
    }

    #[test]
    fn an_unanswered_check_is_followed_after_the_recheck_interval() {
        let t0 = crate::test_support::t0();
        let (regular, recheck) = (Duration::from_secs(5), Duration::from_secs(1));
        let mut c = Consent::new(t0, regular);
        let at = |s: u64| t0 + Duration::from_secs(s);
        c.on_sent(at(5), [1; 12].into(), regular, recheck);
        assert_eq!(c.next_check_at, at(6), "no answer yet: recheck after 1 s");
        assert!(
            c.on_response(at(5) + Duration::from_millis(40), &[1; 12].into())
                .is_some()
        );
        assert_eq!(c.next_check_at, at(10), "answered: the regular interval");
        // Lost: the next check goes 1 s later, and again, until one is answered.
        c.on_sent(at(10), [2; 12].into(), regular, recheck);
        c.on_sent(at(11), [3; 12].into(), regular, recheck);
        assert_eq!(c.next_check_at, at(12));
        // A late answer to the first of them counts, and the regular cadence resumes from
        // the last check sent.
        assert!(
            c.on_response(at(11) + Duration::from_millis(500), &[2; 12].into())
                .is_some()
        );
        assert_eq!(c.last_fresh, at(11) + Duration::from_millis(500));
        assert_eq!(c.next_check_at, at(16));
        // A recheck interval longer than the regular one does not delay checks.
        c.on_sent(at(16), [4; 12].into(), regular, Duration::from_secs(9));
        assert_eq!(c.next_check_at, at(21));
    }

    #[test]
    fn only_the_last_eight_checks_are_remembered() {
        let t0 = crate::test_support::t0();
        let mut c = Consent::new(t0, Duration::from_secs(5));
        for i in 0..9u8 {
            c.on_sent(
                t0,
                [i; 12].into(),
                Duration::from_secs(5),
                Duration::from_secs(1),
            );
        }
        assert!(!c.is_ours(&[0; 12].into()));
        assert!(c.is_ours(&[8; 12].into()));
    }

    #[test]
    fn keepalive_is_due_tr_after_the_last_send() {
        let t0 = crate::test_support::t0();
        assert_eq!(
            keepalive_due(t0, Duration::from_secs(15)),
            t0 + Duration::from_secs(15)
        );
    }
}
