//! The RFC 8489 §6.2.1 retransmission schedule of one request, as a value its owner
//! queries: sent at 0, then again after RTO, 2·RTO, 4·RTO … (the RTO doubling, capped),
//! Rc sends in all, and after the last one a wait of Rm × the first RTO before the
//! transaction times out. Over a reliable transport the request is sent once and waits a
//! fixed time (§6.2.2). STUN transactions ([`ClientTransactions`](crate::transaction::ClientTransactions),
//! which the Binding, NAT-discovery and TURN clients use) and ICE connectivity checks keep
//! their schedule in this one type.

use std::time::{Duration, Instant};

use crate::time::saturating_add;

/// The parameters of a schedule (RFC 8489 §6.2.1: Rc, Rm; the RTO cap is ours).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// Rc: the most times the request is sent (RFC default 7).
    pub request_count: u32,
    /// Rm: the last wait, in units of the first RTO (RFC default 16).
    pub last_wait_factor: u32,
    /// The cap of the doubling RTO.
    pub max_rto: Duration,
}

impl Schedule {
    /// The schedule of a request sent once over a reliable transport (RFC 8489 §6.2.2) that
    /// waits as long as all of this schedule's retransmissions and its last wait would have
    /// with a first RTO of `rto`: Rc = 1, Rm = that time in units of `rto` (at least 1).
    pub fn sent_once(self, rto: Duration) -> Self {
        let mut total = rto.saturating_mul(self.last_wait_factor);
        let mut wait = rto;
        for _ in 1..self.request_count {
            total = total.saturating_add(wait);
            wait = wait.saturating_mul(2).min(self.max_rto.max(rto));
        }
        let units = total.as_nanos() / rto.as_nanos().max(1);
        Self {
            request_count: 1,
            last_wait_factor: u32::try_from(units).unwrap_or(u32::MAX).max(1),
            max_rto: self.max_rto,
        }
    }
}

/// What a schedule whose deadline came does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expiry {
    /// Send the same request again.
    Retransmit,
    /// No answer after the last wait: the transaction timed out.
    GiveUp,
}

/// Where one request is in its schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    first_sent: Instant,
    sends: u32,
    initial_rto: Duration,
    rto: Duration,
    next_at: Instant,
}

impl Backoff {
    /// A request first sent at `now` over an unreliable transport with `rto`: its deadline
    /// is `rto` later, or, when the schedule sends it only once, Rm × `rto`.
    pub fn start(now: Instant, rto: Duration, schedule: &Schedule) -> Self {
        let wait = if schedule.request_count <= 1 {
            rto.saturating_mul(schedule.last_wait_factor)
        } else {
            rto
        };
        Self {
            first_sent: now,
            sends: 1,
            initial_rto: rto,
            rto,
            next_at: saturating_add(now, wait),
        }
    }

    /// A request sent once at `now` over a reliable transport, which times out `wait`
    /// later (RFC 8489 §6.2.2).
    pub fn once(now: Instant, wait: Duration) -> Self {
        Self {
            first_sent: now,
            sends: 1,
            initial_rto: wait,
            rto: wait,
            next_at: saturating_add(now, wait),
        }
    }

    /// When it was first sent.
    pub const fn first_sent(&self) -> Instant {
        self.first_sent
    }

    /// How many times it was sent so far.
    pub const fn sends(&self) -> u32 {
        self.sends
    }

    /// The RTO of the first send.
    pub const fn initial_rto(&self) -> Duration {
        self.initial_rto
    }

    /// The current RTO.
    pub const fn rto(&self) -> Duration {
        self.rto
    }

    /// When it must be sent again or given up on.
    pub const fn next_at(&self) -> Instant {
        self.next_at
    }

    /// Whether its deadline has come at `now`.
    pub fn is_due(&self, now: Instant) -> bool {
        self.next_at <= now
    }

    /// The round-trip time of an answer at `now`, by Karn's rule (RFC 6298 §3): only for
    /// a request answered before it was sent again.
    pub fn rtt(&self, now: Instant) -> Option<Duration> {
        (self.sends == 1).then(|| now.saturating_duration_since(self.first_sent))
    }

    /// Advances the schedule at its deadline `now`: one more send with the RTO doubled
    /// (capped at `max_rto`), the last one followed by Rm × the first RTO, or, once all
    /// Rc sends went unanswered, the end.
    pub fn on_expired(&mut self, now: Instant, schedule: &Schedule) -> Expiry {
        if self.sends >= schedule.request_count {
            return Expiry::GiveUp;
        }
        self.sends += 1;
        self.rto = self.rto.saturating_mul(2).min(schedule.max_rto);
        self.next_at = if self.sends < schedule.request_count {
            saturating_add(now, self.rto)
        } else {
            saturating_add(
                now,
                self.initial_rto.saturating_mul(schedule.last_wait_factor),
            )
        };
        Expiry::Retransmit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sent_once_waits_what_every_retransmission_would_have() {
        let t0 = crate::test_support::t0();
        let rto = Duration::from_millis(500);
        let udp = Schedule {
            request_count: 7,
            last_wait_factor: 16,
            max_rto: Duration::from_secs(3),
        };
        // 0.5 + 1 + 2 + 3 + 3 + 3 s between the seven sends, then 16 × 0.5 s: 20.5 s.
        let once = udp.sent_once(rto);
        assert_eq!((once.request_count, once.last_wait_factor), (1, 41));
        let mut b = Backoff::start(t0, rto, &once);
        assert_eq!(b.next_at(), t0 + Duration::from_millis(20_500));
        assert_eq!(b.on_expired(b.next_at(), &once), Expiry::GiveUp);
    }

    #[test]
    fn sends_double_then_the_last_wait_is_rm_times_the_first_rto() {
        let t0 = crate::test_support::t0();
        let rto = Duration::from_millis(500);
        let schedule = Schedule {
            request_count: 4,
            last_wait_factor: 16,
            max_rto: Duration::from_secs(3),
        };
        let mut b = Backoff::start(t0, rto, &schedule);
        assert_eq!(b.next_at(), t0 + rto);
        assert!(!b.is_due(t0 + Duration::from_millis(499)));
        assert!(b.is_due(t0 + rto));
        assert_eq!(
            b.rtt(t0 + Duration::from_millis(40)),
            Some(Duration::from_millis(40))
        );
        // Rc = 4, Rm = 16: sends at 0, 0.5, 1.5, 3.5 (RTO 1 s, 2 s, then capped at 3 s).
        let mut now = b.next_at();
        assert_eq!(b.on_expired(now, &schedule), Expiry::Retransmit);
        assert_eq!(b.next_at(), now + Duration::from_secs(1));
        assert_eq!(b.rtt(now), None, "Karn: no RTT once it was sent again");
        now = b.next_at();
        assert_eq!(b.on_expired(now, &schedule), Expiry::Retransmit);
        assert_eq!(b.next_at(), now + Duration::from_secs(2));
        now = b.next_at();
        assert_eq!(b.on_expired(now, &schedule), Expiry::Retransmit);
        // The fourth and last send: wait Rm × the first RTO = 8 s.
        assert_eq!(b.sends(), 4);
        assert_eq!(b.next_at(), now + Duration::from_secs(8));
        now = b.next_at();
        assert_eq!(b.on_expired(now, &schedule), Expiry::GiveUp);
        assert_eq!(now, t0 + Duration::from_millis(11_500));
    }

    #[test]
    fn a_single_send_waits_rm_times_its_rto() {
        let t0 = crate::test_support::t0();
        let schedule = Schedule {
            request_count: 1,
            last_wait_factor: 16,
            max_rto: Duration::from_secs(3),
        };
        let mut b = Backoff::start(t0, Duration::from_millis(500), &schedule);
        assert_eq!(b.next_at(), t0 + Duration::from_secs(8));
        assert_eq!(b.on_expired(b.next_at(), &schedule), Expiry::GiveUp);
        let reliable = Backoff::once(t0, Duration::from_millis(39_500));
        assert_eq!(reliable.next_at(), t0 + Duration::from_millis(39_500));
    }

    #[test]
    fn the_end_of_time_saturates() {
        let end = crate::time::saturating_add(crate::test_support::t0(), Duration::MAX);
        let schedule = Schedule {
            request_count: 7,
            last_wait_factor: 16,
            max_rto: Duration::MAX,
        };
        let mut b = Backoff::start(end, Duration::MAX, &schedule);
        for _ in 0..10 {
            let at = b.next_at();
            let _ = b.on_expired(at, &schedule);
        }
        assert!(b.next_at() >= end);
    }
}
