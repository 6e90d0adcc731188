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
//! The deadline of a check lives in its pair (its [`InFlight`]'s schedule); the agent's
//! `poll_timeout` is the earliest of them and its other timers.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use stun_proto::TransactionId;
use stun_proto::backoff::Backoff;

use crate::path::Path;

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

/// A check in flight: the request (kept to retransmit the same bytes) and its RFC 8489
/// retransmission schedule (`stun_proto::backoff`, the one STUN transactions use).
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
    /// Where it is in its schedule.
    pub backoff: Backoff,
}

/// A nomination not in effect yet (RFC 8445 §8.1.1, §7.3.1.5).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Pending {
    /// None.
    #[default]
    None,
    /// Controlling side: the pair's next check (or the one in flight) carries USE-CANDIDATE.
    Ours,
    /// Controlled side: the peer's USE-CANDIDATE came while our check of the pair was in
    /// flight, so the valid pair that check produces is nominated (§7.3.1.5).
    Theirs,
}

/// A candidate pair of a check list. Its fields are read through getters; only the check
/// list changes them, through the transitions below (`checklist/mod.rs` names them for the
/// rest of the agent).
#[derive(Clone, Debug)]
pub(crate) struct Pair {
    id: PairId,
    component: u16,
    /// Index of the local candidate in the stream's local candidates.
    local: usize,
    /// Index of the remote candidate in the stream's remote candidates.
    remote: usize,
    /// From the local candidate's base to the remote candidate's address: where checks go
    /// (§6.1.2.4 prunes on it).
    path: Path,
    /// A hash of the local and remote foundations (§6.1.2.6: the pair's foundation).
    foundation: u64,
    /// §6.1.2.3 priority with the current roles.
    priority: u64,
    /// The local and remote candidate priorities, to recompute on a role change.
    local_priority: u32,
    remote_priority: u32,
    /// The priority of the valid pair (§7.2.5.3.2): computed with the priority of its local
    /// candidate, `valid_local`'s, once there is one; the checked priority until then.
    valid_priority: u64,
    /// `valid_local`'s priority.
    valid_local_priority: Option<u32>,
    state: PairState,
    /// In the valid list (§7.2.5.3.2).
    valid: bool,
    /// Nominated (§8.1.1 on the controlling side, §7.3.1.5 on the controlled side).
    nominated: bool,
    pending: Pending,
    /// The local candidate of the valid pair this pair's check produced (§7.2.5.3.2): the
    /// one whose address is the mapped address (a server- or peer-reflexive candidate when a
    /// NAT is in the way). The valid pair shares base and remote address with the checked
    /// pair, so it is this pair on the wire; this index says which local candidate it reports.
    valid_local: Option<usize>,
    /// The round-trip time of the last check (or consent check) answered at its first send.
    rtt: Option<Duration>,
    /// Checks of this pair that went unanswered through all their retransmissions.
    timeouts: u8,
    traffic: Traffic,
}

/// What a new pair is made of (§6.1.2.2): its component, candidates and their priorities.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PairSpec {
    /// The component.
    pub component: u16,
    /// Index of the local candidate in the stream's local candidates.
    pub local: usize,
    /// Index of the remote candidate in the stream's remote candidates.
    pub remote: usize,
    /// From the local candidate's base to the remote candidate's address.
    pub path: Path,
    /// The pair's foundation (§6.1.2.6).
    pub foundation: u64,
    /// The local candidate's priority.
    pub local_priority: u32,
    /// The remote candidate's priority.
    pub remote_priority: u32,
}

impl Pair {
    /// A Frozen pair of `spec` with the priority of the current role (`controlling`: the
    /// local agent is G, §6.1.2.3); the check list gives it its id.
    pub(crate) fn new(spec: PairSpec, controlling: bool) -> Self {
        let mut pair = Self {
            id: PairId(0),
            component: spec.component,
            local: spec.local,
            remote: spec.remote,
            path: spec.path,
            foundation: spec.foundation,
            priority: 0,
            local_priority: spec.local_priority,
            remote_priority: spec.remote_priority,
            valid_priority: 0,
            valid_local_priority: None,
            state: PairState::Frozen,
            valid: false,
            nominated: false,
            pending: Pending::None,
            valid_local: None,
            rtt: None,
            timeouts: 0,
            traffic: Traffic::default(),
        };
        pair.set_role(controlling);
        pair
    }

    /// Its id.
    pub(crate) const fn id(&self) -> PairId {
        self.id
    }
    /// The component.
    pub(crate) const fn component(&self) -> u16 {
        self.component
    }
    /// Index of the local candidate in the stream's local candidates.
    pub(crate) const fn local(&self) -> usize {
        self.local
    }
    /// Index of the remote candidate in the stream's remote candidates.
    pub(crate) const fn remote(&self) -> usize {
        self.remote
    }
    /// The path checks and data take: from the local candidate's base to the remote
    /// candidate's address.
    pub(crate) const fn path(&self) -> Path {
        self.path
    }
    /// Where checks are sent from: the local candidate's base.
    pub(crate) const fn base(&self) -> SocketAddr {
        self.path.base
    }
    /// Where checks go: the remote candidate's address.
    pub(crate) const fn remote_addr(&self) -> SocketAddr {
        self.path.remote
    }
    /// The pair's foundation (§6.1.2.6), hashed.
    pub(crate) const fn foundation(&self) -> u64 {
        self.foundation
    }
    /// The §6.1.2.3 priority with the current roles: how the pair ranks in the schedule
    /// and against pairs not yet valid.
    pub(crate) const fn priority(&self) -> u64 {
        self.priority
    }
    /// The valid pair's priority (§7.2.5.3.2), with the current roles: how valid pairs rank
    /// among themselves — which to nominate, which nominated one to select (§8.1.1). Its
    /// local candidate is the one the mapped address named, so a pair checked from a host
    /// base through a NAT ranks with the server-reflexive candidate's priority, which is the
    /// candidate the peer sees and ranks the same path with; ranked by the checked host
    /// candidate instead, the two sides could order two valid pairs differently and the
    /// controlled side ignore an upward re-nomination. The checked priority until valid.
    pub(crate) const fn valid_priority(&self) -> u64 {
        self.valid_priority
    }
    /// The state.
    pub(crate) const fn state(&self) -> &PairState {
        &self.state
    }
    /// In the valid list (§7.2.5.3.2).
    pub(crate) const fn valid(&self) -> bool {
        self.valid
    }
    /// Nominated (§8.1.1, §7.3.1.5).
    pub(crate) const fn nominated(&self) -> bool {
        self.nominated
    }
    /// Controlling side: the next check of the pair carries USE-CANDIDATE.
    pub(crate) fn nominating(&self) -> bool {
        self.pending == Pending::Ours
    }
    /// The local candidate the valid pair reports (§7.2.5.3.2), once valid.
    pub(crate) const fn valid_local(&self) -> Option<usize> {
        self.valid_local
    }
    /// The round-trip time of the last check answered at its first send.
    pub(crate) const fn rtt(&self) -> Option<Duration> {
        self.rtt
    }
    /// Checks of this pair that timed out.
    pub(crate) const fn timeouts(&self) -> u8 {
        self.timeouts
    }
    /// Application data counters.
    pub(crate) const fn traffic(&self) -> Traffic {
        self.traffic
    }

    /// The in-flight check, if any.
    pub(crate) fn in_flight(&self) -> Option<&InFlight> {
        match &self.state {
            PairState::InProgress(f) => Some(f),
            _ => None,
        }
    }

    // The transitions, for the check list only.

    /// Gives the pair its id in the list.
    pub(super) fn set_id(&mut self, id: PairId) {
        self.id = id;
    }

    /// Recomputes the priority for the role: `controlling` means the local agent is G.
    pub(super) fn set_role(&mut self, controlling: bool) {
        let rank = |local: u32| {
            if controlling {
                pair_priority(local, self.remote_priority)
            } else {
                pair_priority(self.remote_priority, local)
            }
        };
        self.priority = rank(self.local_priority);
        self.valid_priority = rank(self.valid_local_priority.unwrap_or(self.local_priority));
    }

    /// The remote candidate before its own left the stream's table: its index moves down.
    pub(super) fn follow_remote_down(&mut self) {
        self.remote = self.remote.saturating_sub(1);
    }

    /// The remote candidate has a new priority: the pair's is recomputed.
    pub(super) fn set_remote_priority(&mut self, priority: u32, controlling: bool) {
        self.remote_priority = priority;
        self.set_role(controlling);
    }

    /// To be checked at a Ta slot (unfrozen, triggered, or checked again).
    pub(super) fn wait(&mut self) {
        self.state = PairState::Waiting;
    }

    /// A check of it was sent.
    pub(super) fn start_check(&mut self, check: InFlight) {
        self.state = PairState::InProgress(check);
    }

    /// The in-flight check, to advance its retransmission schedule.
    pub(super) fn in_flight_mut(&mut self) -> Option<&mut InFlight> {
        match &mut self.state {
            PairState::InProgress(f) => Some(f),
            _ => None,
        }
    }

    /// Its check went unanswered through all its retransmissions.
    pub(super) fn count_timeout(&mut self) {
        self.timeouts = self.timeouts.saturating_add(1);
    }

    /// A check failed (§7.2.5.2): out of the valid list, and our nomination of it is off.
    /// A nomination of the peer's that waits for our check stays: the peer's next check
    /// with USE-CANDIDATE may make it good.
    pub(super) fn fail(&mut self) {
        self.state = PairState::Failed;
        self.valid = false;
        if self.pending == Pending::Ours {
            self.pending = Pending::None;
        }
    }

    /// Its base is gone: failed, nominated no more, no nomination pending either way.
    pub(super) fn drop_out(&mut self) {
        self.fail();
        self.nominated = false;
        self.pending = Pending::None;
    }

    /// Nominated no more (it was selected and failed).
    pub(super) fn unnominate(&mut self) {
        self.nominated = false;
    }

    /// A check succeeded (§7.2.5.3): valid, with the local candidate the mapped address
    /// named; Succeeded unless a later check of ours carrying USE-CANDIDATE is still to be
    /// answered (`keep_state`). `use_candidate`: the check carried USE-CANDIDATE;
    /// `controlling`: our role now. Nominated when it was our USE-CANDIDATE check
    /// (controlling) or the peer's nomination waited for it (controlled, §7.3.1.5); says
    /// whether it is.
    pub(super) fn succeed(
        &mut self,
        (valid_local, valid_local_priority): (usize, u32),
        keep_state: bool,
        (use_candidate, controlling): (bool, bool),
    ) -> bool {
        if !keep_state {
            self.state = PairState::Succeeded;
        }
        self.valid = true;
        self.valid_local = Some(valid_local);
        self.valid_local_priority = Some(valid_local_priority);
        self.set_role(controlling);
        let nominated =
            (use_candidate && controlling) || (!controlling && self.pending == Pending::Theirs);
        if use_candidate && self.pending == Pending::Ours {
            self.pending = Pending::None;
        }
        if nominated {
            self.nominated = true;
            if self.pending == Pending::Theirs {
                self.pending = Pending::None;
            }
        }
        nominated
    }

    /// An ICE-lite agent's pair that an authenticated check arrived on: valid, nominated
    /// if the check said so.
    pub(super) fn lite_valid(&mut self, nominate: bool) {
        self.state = PairState::Succeeded;
        self.valid = true;
        self.nominated |= nominate;
    }

    /// The controlling agent's next check of it carries USE-CANDIDATE.
    pub(super) fn mark_nominating(&mut self) {
        self.pending = Pending::Ours;
    }

    /// The peer nominated it (§7.3.1.5): nominated now if valid, else once our check of it
    /// succeeds. Says whether it is nominated now.
    pub(super) fn nominated_by_peer(&mut self) -> bool {
        if self.valid {
            self.nominated = true;
        } else {
            self.pending = Pending::Theirs;
        }
        self.valid
    }

    /// Nominated at once on failover, and, when controlling, nominated again by a check.
    pub(super) fn nominate_for_failover(&mut self, controlling: bool) {
        self.nominated = true;
        if controlling {
            self.pending = Pending::Ours;
        }
    }

    /// §8.1.2 at selection: no longer scheduled. A valid pair waiting for a later check
    /// keeps its success; that check is not sent.
    pub(super) fn stop(&mut self) {
        self.state = if self.valid {
            PairState::Succeeded
        } else {
            PairState::Failed
        };
        if self.pending == Pending::Ours {
            self.pending = Pending::None;
        }
    }

    /// The round-trip time of a check or consent check answered at its first send.
    pub(super) fn set_rtt(&mut self, rtt: Duration) {
        self.rtt = Some(rtt);
    }

    /// Application data sent on it.
    pub(super) fn count_sent(&mut self, bytes: usize) {
        self.traffic.packets_sent += 1;
        self.traffic.bytes_sent += bytes as u64;
    }

    /// Application data received on it.
    pub(super) fn count_received(&mut self, bytes: usize) {
        self.traffic.packets_received += 1;
        self.traffic.bytes_received += bytes as u64;
    }
}

/// Application data sent and received on a pair (W3C `RTCIceCandidatePairStats`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Traffic {
    /// Datagrams sent with [`Agent::handle_send`](crate::Agent::handle_send).
    pub packets_sent: u64,
    /// Their bytes (the application's payload, without TURN framing).
    pub bytes_sent: u64,
    /// Non-STUN datagrams received.
    pub packets_received: u64,
    /// Their bytes.
    pub bytes_received: u64,
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
}
