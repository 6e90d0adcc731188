//! Candidate pairs (RFC 8445 §6.1.2): their priority (§6.1.2.3), their state (§6.1.2.6:
//! Frozen, Waiting, In-Progress, Succeeded, Failed) and, while a check is in flight, the
//! check's retransmission schedule (RFC 8489 §6.2.1 with the RTO of RFC 8445 §14.3).
//!
//! ```text
//! Frozen ──unfreeze──► Waiting ──Ta slot──► InProgress ──success──► Succeeded
//!                         ▲                    │  └──timeout/error──► Failed
//!                         └── triggered check ─┘ (and from Failed)
//! ```
//!
//! The deadline of a check lives in its pair ([`InFlight::next_at`]); the agent's
//! `poll_timeout` is the earliest of them and its other timers.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use stun_proto::TransactionId;
use stun_proto::time::saturating_add;

/// A pair's id, unique within its stream for the agent's lifetime.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct PairId(pub(crate) u32);

/// The pair priority of RFC 8445 §6.1.2.3, where `g` is the controlling agent's candidate
/// priority and `d` the controlled one's: `2^32 × min(G, D) + 2 × max(G, D) + (G > D ? 1 : 0)`.
/// Candidate priorities are at most 2^31 − 1 (§5.1.2.1); larger ones (from a peer) are
/// clamped to it, which keeps the result within 64 bits.
pub const fn pair_priority(g: u32, d: u32) -> u64 {
    const MAX: u32 = 0x7fff_ffff;
    let g = if g > MAX { MAX } else { g };
    let d = if d > MAX { MAX } else { d };
    let (min, max) = if g < d { (g, d) } else { (d, g) };
    ((min as u64) << 32) + 2 * (max as u64) + if g > d { 1 } else { 0 }
}

/// Where a pair stands (RFC 8445 §6.1.2.6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum PairState {
    /// Waits for a pair of its foundation to succeed (or the §6.1.4.2 unfreeze rule).
    Frozen,
    /// Ready to be checked at the next Ta slot.
    Waiting,
    /// A check is in flight.
    InProgress(InFlight),
    /// A check produced a success response (§7.2.5.3).
    Succeeded,
    /// A check failed (timeout, error response, non-symmetric addresses).
    Failed,
}

impl PairState {
    /// The public name of the state.
    pub(crate) fn public(&self) -> PairStateKind {
        match self {
            PairState::Frozen => PairStateKind::Frozen,
            PairState::Waiting => PairStateKind::Waiting,
            PairState::InProgress(_) => PairStateKind::InProgress,
            PairState::Succeeded => PairStateKind::Succeeded,
            PairState::Failed => PairStateKind::Failed,
        }
    }

    /// Whether the pair may still produce a valid pair (Frozen, Waiting, In-Progress).
    pub(crate) fn is_pending(&self) -> bool {
        matches!(
            self,
            PairState::Frozen | PairState::Waiting | PairState::InProgress(_)
        )
    }
}

/// The state of a candidate pair, as the application sees it (RFC 8445 §6.1.2.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PairStateKind {
    /// Not checked until a pair of the same foundation succeeds.
    Frozen,
    /// To be checked.
    Waiting,
    /// A check is in flight.
    InProgress,
    /// A check succeeded.
    Succeeded,
    /// Checks failed.
    Failed,
}

/// A check in flight: the request (kept to retransmit the same bytes) and its schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct InFlight {
    /// The transaction id of the request.
    pub tid: TransactionId,
    /// The encoded request.
    pub request: Bytes,
    /// Whether the request carried USE-CANDIDATE (the controlling agent nominating).
    pub use_candidate: bool,
    /// Whether the request carried ICE-CONTROLLING (for 487 handling, §7.2.5.1).
    pub controlling: bool,
    /// When it was first sent.
    pub first_sent: Instant,
    /// Requests sent so far.
    pub sends: u32,
    /// The RTO of the first send (§14.3), the base of the last wait.
    pub initial_rto: Duration,
    /// The current RTO (doubles on each retransmission).
    pub rto: Duration,
    /// When to retransmit, or give up once `sends` reached the request count.
    pub next_at: Instant,
}

/// What an expired check does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Expiry {
    /// Send the same request again.
    Retransmit,
    /// No answer after the last wait: the pair fails.
    GiveUp,
}

impl InFlight {
    /// A check first sent at `now` with `rto`.
    pub fn new(
        now: Instant,
        tid: TransactionId,
        request: Bytes,
        rto: Duration,
        use_candidate: bool,
        controlling: bool,
    ) -> Self {
        Self {
            tid,
            request,
            use_candidate,
            controlling,
            first_sent: now,
            sends: 1,
            initial_rto: rto,
            rto,
            next_at: saturating_add(now, rto),
        }
    }

    /// Whether the deadline has come.
    pub fn is_expired(&self, now: Instant) -> bool {
        self.next_at <= now
    }

    /// Advances the schedule at its deadline (RFC 8489 §6.2.1: Rc sends with a doubling
    /// RTO capped at `max_rto`, then Rm × the first RTO).
    pub fn on_expired(
        &mut self,
        now: Instant,
        request_count: u32,
        last_wait_factor: u32,
        max_rto: Duration,
    ) -> Expiry {
        if self.sends >= request_count {
            return Expiry::GiveUp;
        }
        self.sends += 1;
        self.rto = self.rto.saturating_mul(2).min(max_rto);
        self.next_at = if self.sends < request_count {
            saturating_add(now, self.rto)
        } else {
            saturating_add(now, self.initial_rto.saturating_mul(last_wait_factor))
        };
        Expiry::Retransmit
    }
}

/// A candidate pair of a check list.
#[derive(Clone, Debug)]
pub(crate) struct Pair {
    /// Its id.
    pub id: PairId,
    /// The component.
    pub component: u16,
    /// Index of the local candidate in the stream's local candidates.
    pub local: usize,
    /// Index of the remote candidate in the stream's remote candidates.
    pub remote: usize,
    /// The local candidate's base: where checks are sent from (§6.1.2.4 prunes on it).
    pub base: SocketAddr,
    /// The remote candidate's address: where checks go.
    pub remote_addr: SocketAddr,
    /// A hash of the local and remote foundations (§6.1.2.6: the pair's foundation).
    pub foundation: u64,
    /// §6.1.2.3 priority with the current roles.
    pub priority: u64,
    /// The local and remote candidate priorities, to recompute on a role change.
    pub local_priority: u32,
    /// See `local_priority`.
    pub remote_priority: u32,
    /// The state.
    pub state: PairState,
    /// In the valid list (§7.2.5.3.2).
    pub valid: bool,
    /// Nominated (§8.1.1 on the controlling side, §7.3.1.5 on the controlled side).
    pub nominated: bool,
    /// Controlled side: USE-CANDIDATE arrived while the check was in flight, so the valid
    /// pair it produces is nominated on success (§7.3.1.5).
    pub nominate_on_success: bool,
    /// Controlling side: the next check of this pair carries USE-CANDIDATE.
    pub nominating: bool,
    /// The local candidate of the valid pair this pair's check produced (§7.2.5.3.2): the
    /// one whose address is the mapped address (a server- or peer-reflexive candidate when a
    /// NAT is in the way). The valid pair shares base and remote address with the checked
    /// pair, so it is this pair on the wire; this index says which local candidate it reports.
    pub valid_local: Option<usize>,
    /// The round-trip time of the last check (or consent check) answered at its first send.
    pub rtt: Option<Duration>,
    /// Checks of this pair that went unanswered through all their retransmissions.
    pub timeouts: u8,
    /// Application data counters.
    pub traffic: Traffic,
}

/// Application data sent and received on a pair (W3C `RTCIceCandidatePairStats`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Traffic {
    /// Datagrams sent with [`Agent::send`](crate::Agent::send).
    pub packets_sent: u64,
    /// Their bytes (the application's payload, without TURN framing).
    pub bytes_sent: u64,
    /// Non-STUN datagrams received.
    pub packets_received: u64,
    /// Their bytes.
    pub bytes_received: u64,
}

impl Pair {
    /// Recomputes the priority for the role: `controlling` means the local agent is G.
    pub fn set_role(&mut self, controlling: bool) {
        self.priority = if controlling {
            pair_priority(self.local_priority, self.remote_priority)
        } else {
            pair_priority(self.remote_priority, self.local_priority)
        };
    }

    /// The in-flight check, if any.
    pub fn in_flight(&self) -> Option<&InFlight> {
        match &self.state {
            PairState::InProgress(f) => Some(f),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pair_priority_formula_of_6_1_2_3() {
        // G > D: the low bit is set.
        assert_eq!(pair_priority(2, 1), (1 << 32) + 4 + 1);
        // G < D: the same bits but the low one.
        assert_eq!(pair_priority(1, 2), (1 << 32) + 4);
        // Both agents compute the same value from their own view of the roles.
        let (a, b) = (2_130_706_431, 1_694_498_815);
        assert_eq!(pair_priority(a, b), pair_priority(a, b));
        assert_ne!(pair_priority(a, b), pair_priority(b, a));
        // Out-of-range priorities from a peer are clamped: no overflow.
        let max = 0x7fff_ffffu64;
        assert_eq!(pair_priority(u32::MAX, u32::MAX), (max << 32) + 2 * max);
        assert_eq!(pair_priority(u32::MAX, 1), (1 << 32) + 2 * max + 1);
    }

    #[test]
    fn retransmission_schedule_doubles_then_waits_rm_times_rto() {
        let t0 = crate::test_support::t0();
        let rto = Duration::from_millis(500);
        let mut f = InFlight::new(t0, [1; 12].into(), Bytes::new(), rto, false, true);
        assert_eq!(f.next_at, t0 + rto);
        assert!(!f.is_expired(t0 + Duration::from_millis(499)));
        assert!(f.is_expired(t0 + rto));
        let max = Duration::from_secs(3);
        // Rc = 4, Rm = 16: sends at 0, 0.5, 1.5, 3.5 (RTO 1 s, 2 s, then capped at 3 s).
        let mut now = f.next_at;
        assert_eq!(f.on_expired(now, 4, 16, max), Expiry::Retransmit);
        assert_eq!(f.next_at, now + Duration::from_secs(1));
        now = f.next_at;
        assert_eq!(f.on_expired(now, 4, 16, max), Expiry::Retransmit);
        assert_eq!(f.next_at, now + Duration::from_secs(2));
        now = f.next_at;
        assert_eq!(f.on_expired(now, 4, 16, max), Expiry::Retransmit);
        // The fourth and last send: wait Rm × the first RTO = 8 s.
        assert_eq!(f.sends, 4);
        assert_eq!(f.next_at, now + Duration::from_secs(8));
        now = f.next_at;
        assert_eq!(f.on_expired(now, 4, 16, max), Expiry::GiveUp);
        assert_eq!(now, t0 + Duration::from_millis(11_500));
    }
}
