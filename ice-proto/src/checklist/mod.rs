//! The check list of a stream (RFC 8445 §6.1.2): its pairs ordered by priority, pruned
//! (§6.1.2.4) and bounded (§6.1.2.5: 100 by default), their initial states (§6.1.2.6 and
//! RFC 8838 §11 for pairs added while checks run), the triggered-check queue (§6.1.4.1),
//! the choice of the next check at each Ta slot with the unfreeze rule of §6.1.4.2, the
//! unfreezing of a foundation after a success (§7.2.5.3.3), and the valid list (§7.2.5.3.2,
//! a flag on the pairs).
//!
//! Pairs are never removed except to make room for a better one when the list is full;
//! candidates are referenced by index into the stream's tables.
//!
//! The check list is a sub-machine that owns its pairs: a pair's fields are private to
//! `pair.rs`, and every change of a pair — a check sent, retransmitted or timed out, a
//! success or failure, a nomination (ours, the peer's, or at a failover), data counted — is
//! a method here, which the connectivity, nomination, consent and network code call by
//! pair id instead of writing fields.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;

use stun_proto::TransactionId;
use stun_proto::backoff::{Expiry, Schedule};

mod pair;

use crate::path::Path;

pub(crate) use pair::{InFlight, Pair, PairSpec, PairState};
pub use pair::{PairId, PairStateKind, Traffic, pair_priority};

/// How many cancelled transactions (§7.3.1.4) are still matched to their pair.
const CANCELLED: usize = 16;

/// The state of a check list (RFC 8445 §6.1.2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ChecklistState {
    /// Checks are running (or waiting for candidates).
    Running,
    /// Every component has a selected pair.
    Completed,
    /// Some component can no longer get a pair.
    Failed,
}

/// What [`Checklist::add`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Added {
    /// A new pair.
    New(PairId),
    /// A pair with the same base and remote address existed (§6.1.2.4); its id.
    Existing(PairId),
    /// The list is full of pairs of higher priority (§6.1.2.5).
    Full,
}

/// A transaction the agent stopped retransmitting but whose answer still counts (§7.3.1.4).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Cancelled {
    pub tid: TransactionId,
    pub pair: PairId,
    pub use_candidate: bool,
    pub controlling: bool,
    pub until: Instant,
}

/// A stream's check list.
#[derive(Debug)]
pub(crate) struct Checklist {
    /// The pairs, highest priority first.
    pairs: Vec<Pair>,
    /// Pairs to check before any ordinary check, in order (§6.1.4.1).
    triggered: VecDeque<PairId>,
    /// Cancelled in-flight checks whose late answers still count.
    pub cancelled: VecDeque<Cancelled>,
    next_id: u32,
    max_pairs: usize,
    /// The list's state.
    pub state: ChecklistState,
    /// Pairs refused or evicted because the list was full.
    pub dropped: u64,
}

impl Checklist {
    /// An empty list holding at most `max_pairs` pairs.
    pub fn new(max_pairs: usize) -> Self {
        Self {
            pairs: Vec::new(),
            triggered: VecDeque::new(),
            cancelled: VecDeque::new(),
            next_id: 0,
            max_pairs: max_pairs.max(1),
            state: ChecklistState::Running,
            dropped: 0,
        }
    }

    /// Adds a pair unless one with the same base and remote address exists (§6.1.2.4: the
    /// higher priority one is kept: the existing one, whose local candidate was gathered
    /// first, is a host candidate or has the higher priority). The new pair is Waiting when a
    /// pair of its foundation succeeded in any list (RFC 8838 §11), or when this is the first
    /// check list (`first_list`) and no pair of it shares the foundation (§6.1.2.6); else
    /// Frozen — the other lists' pairs wait for the unfreeze rule of §6.1.4.2 or a success
    /// of their foundation (§7.2.5.3.3).
    pub fn add(&mut self, mut pair: Pair, foundation_succeeded: bool, first_list: bool) -> Added {
        if let Some(existing) = self.pairs.iter().find(|p| p.path() == pair.path()) {
            return Added::Existing(existing.id());
        }
        if self.pairs.len() >= self.max_pairs {
            // §6.1.2.5: keep the highest-priority pairs; evict the lowest unchecked one.
            let victim = self
                .pairs
                .iter()
                .rposition(|p| matches!(p.state(), PairState::Frozen | PairState::Waiting));
            match victim {
                Some(i) if self.pairs[i].priority() < pair.priority() => {
                    let gone = self.pairs.remove(i);
                    self.triggered.retain(|id| *id != gone.id());
                    self.dropped += 1;
                }
                _ => {
                    self.dropped += 1;
                    return Added::Full;
                }
            }
        }
        let shared = self
            .pairs
            .iter()
            .any(|p| p.foundation() == pair.foundation());
        if matches!(pair.state(), PairState::Frozen)
            && (foundation_succeeded || (first_list && !shared))
        {
            pair.wait();
        }
        let id = PairId(self.next_id);
        self.next_id = self.next_id.wrapping_add(1);
        pair.set_id(id);
        let at = self
            .pairs
            .iter()
            .position(|p| p.priority() < pair.priority())
            .unwrap_or(self.pairs.len());
        self.pairs.insert(at, pair);
        Added::New(id)
    }

    /// Waiting and in-progress pairs (§14.3 counts them for the RTO).
    pub fn pending_checks(&self) -> usize {
        self.pairs
            .iter()
            .filter(|p| matches!(p.state(), PairState::Waiting | PairState::InProgress(_)))
            .count()
    }

    /// The pair on `path` with a check in flight and not yet valid: the one an
    /// unauthenticated transport error may fail (RFC 8445 §7.2.5.2.2; one pair per path,
    /// §6.1.2.4).
    pub fn unproven_check(&self, path: Path) -> Option<PairId> {
        self.pairs
            .iter()
            .find(|p| {
                p.path() == path && !p.valid() && matches!(p.state(), PairState::InProgress(_))
            })
            .map(Pair::id)
    }

    /// The pairs, highest priority first.
    pub fn pairs(&self) -> &[Pair] {
        &self.pairs
    }

    /// A pair by id.
    pub fn get(&self, id: PairId) -> Option<&Pair> {
        self.pairs.iter().find(|p| p.id() == id)
    }

    /// A pair by id, mutably.
    fn get_mut(&mut self, id: PairId) -> Option<&mut Pair> {
        self.pairs.iter_mut().find(|p| p.id() == id)
    }

    // The transitions of one pair. The rest of the agent changes pairs only through these.

    /// A check of `id` was sent (§7.2.4).
    pub fn start_check(&mut self, id: PairId, check: InFlight) {
        if let Some(p) = self.get_mut(id) {
            p.start_check(check);
        }
    }

    /// Retransmits the checks whose RTO expired at `now` and gives up on those out of
    /// retransmissions (`schedule`, RFC 8489 §6.2.1; a check over TCP was sent once and
    /// gives up at its deadline, §6.2.2): the requests to send again with their paths, and
    /// the pairs whose checks timed out (the caller fails them).
    pub fn expire_checks(
        &mut self,
        now: Instant,
        schedule: &Schedule,
        resend: &mut Vec<(Path, Bytes)>,
        timed_out: &mut Vec<PairId>,
    ) {
        for p in &mut self.pairs {
            let path = p.path();
            let Some(f) = p.in_flight_mut().filter(|f| f.backoff.is_due(now)) else {
                continue;
            };
            let expiry = if path.transport.is_reliable() {
                Expiry::GiveUp
            } else {
                f.backoff.on_expired(now, schedule)
            };
            match expiry {
                Expiry::Retransmit => resend.push((path, f.request.clone())),
                Expiry::GiveUp => {
                    p.count_timeout();
                    timed_out.push(p.id());
                }
            }
        }
    }

    /// Our nomination of the valid pair `id` went unanswered through all its
    /// retransmissions: it goes out again, as a new transaction (the old one's answer still
    /// counts until `until`), if the pair has timed out fewer than `rounds` times. Says
    /// whether it did; if not, the caller fails the pair.
    pub fn retry_nomination(&mut self, id: PairId, until: Instant, rounds: u8) -> bool {
        let Some(p) = self.get_mut(id) else {
            return false;
        };
        let nominating = p.in_flight().is_some_and(|f| f.use_candidate);
        if !(nominating && p.valid() && p.timeouts() < rounds) {
            return false;
        }
        p.mark_nominating();
        self.trigger(id, until);
        true
    }

    /// A check of `id` failed (§7.2.5.2: an error, non-symmetric addresses, an ICMP error,
    /// no answer): out of the valid list. Its component, if the pair exists.
    pub fn fail(&mut self, id: PairId) -> Option<u16> {
        let p = self.get_mut(id)?;
        p.fail();
        Some(p.component())
    }

    /// `id` was selected and is nominated no more (it failed, or its peer went silent).
    pub fn unnominate(&mut self, id: PairId) {
        if let Some(p) = self.get_mut(id) {
            p.unnominate();
        }
    }

    /// Fails the pairs of `component` on the bases `gone` (interfaces removed); says
    /// whether `selected` was one of them.
    pub fn fail_on_bases(
        &mut self,
        component: u16,
        gone: &[SocketAddr],
        selected: Option<PairId>,
    ) -> bool {
        let mut lost_selected = false;
        for p in &mut self.pairs {
            if p.component() == component && gone.contains(&p.base()) {
                p.drop_out();
                lost_selected |= Some(p.id()) == selected;
            }
        }
        lost_selected
    }

    /// The failed pairs of `component` whose base is still `alive` are checked again.
    pub fn check_again(&mut self, component: u16, alive: impl Fn(SocketAddr) -> bool) {
        for p in &mut self.pairs {
            if p.component() == component && alive(p.base()) && p.state() == &PairState::Failed {
                p.wait();
            }
        }
    }

    /// A check of `id` succeeded (§7.2.5.3) and names `valid_local` (with its priority) as
    /// the valid pair's local candidate. `current`: it answers the pair's latest check, not one a later
    /// check cancelled (§7.3.1.4); `use_candidate`: the check carried USE-CANDIDATE;
    /// `controlling`: our role now. Says whether the pair is nominated by it (controlling:
    /// our USE-CANDIDATE; controlled: the peer's nomination that waited for it, §7.3.1.5).
    ///
    /// The success of a cancelled check still makes the pair valid, and the later check
    /// that cancelled it is not needed — unless it is our nomination (in flight or
    /// waiting for its slot): it carries what the first did not (USE-CANDIDATE), and
    /// forgetting it would leave the pair "nominating" with no check to answer it, and
    /// the component without a selected pair.
    pub fn succeed(
        &mut self,
        id: PairId,
        valid_local: (usize, u32),
        current: bool,
        roles: (bool, bool),
    ) -> Option<bool> {
        let p = self.get_mut(id)?;
        let keep_state = !current && p.nominating();
        Some(p.succeed(valid_local, keep_state, roles))
    }

    /// An ICE-lite agent got an authenticated check on `id`: valid, nominated if the check
    /// said so.
    pub fn lite_valid(&mut self, id: PairId, nominate: bool) {
        if let Some(p) = self.get_mut(id) {
            p.lite_valid(nominate);
        }
    }

    /// The controlling agent nominates `id` (§8.1.1): a triggered check with USE-CANDIDATE.
    pub fn nominate(&mut self, id: PairId, until: Instant) {
        if let Some(p) = self.get_mut(id) {
            p.mark_nominating();
        }
        self.trigger(id, until);
    }

    /// The peer nominated `id` (§7.3.1.5): nominated now if valid, else once our check of
    /// it succeeds. Says whether it is nominated now.
    pub fn nominated_by_peer(&mut self, id: PairId) -> bool {
        self.get_mut(id).is_some_and(Pair::nominated_by_peer)
    }

    /// Failover to the valid pair `id`: nominated at once, and, when `controlling`, by a
    /// check too (the caller triggers it).
    pub fn nominate_for_failover(&mut self, id: PairId, controlling: bool) {
        if let Some(p) = self.get_mut(id) {
            p.nominate_for_failover(controlling);
        }
    }

    /// The round-trip time of a check or consent check of `id` answered at its first send.
    pub fn set_rtt(&mut self, id: PairId, rtt: std::time::Duration) {
        if let Some(p) = self.get_mut(id) {
            p.set_rtt(rtt);
        }
    }

    /// Application data of `bytes` sent on `id`: counted, and the pair's path returned, if
    /// the pair exists.
    pub fn count_sent(&mut self, id: PairId, bytes: usize) -> Option<Path> {
        let p = self.get_mut(id)?;
        p.count_sent(bytes);
        Some(p.path())
    }

    /// Application data of `bytes` received on `path`: counted on its pair, whose id it
    /// returns, if there is one.
    pub fn count_received(&mut self, path: Path, bytes: usize) -> Option<PairId> {
        let p = self.pairs.iter_mut().find(|p| p.path() == path)?;
        p.count_received(bytes);
        Some(p.id())
    }

    /// The pair whose in-flight check has transaction id `tid`, or a cancelled one.
    pub fn find_transaction(&self, tid: &TransactionId) -> Option<(PairId, bool, bool)> {
        self.pairs
            .iter()
            .find_map(|p| {
                p.in_flight()
                    .filter(|f| f.tid == *tid)
                    .map(|f| (p.id(), f.use_candidate, f.controlling))
            })
            .or_else(|| {
                self.cancelled
                    .iter()
                    .find(|c| c.tid == *tid)
                    .map(|c| (c.pair, c.use_candidate, c.controlling))
            })
    }

    /// Remembers `pair`'s in-flight check, if it has one, as cancelled: no more
    /// retransmissions, its answer still counts until `until` (§7.3.1.4).
    fn cancel_in_flight(cancelled: &mut VecDeque<Cancelled>, pair: &Pair, until: Instant) {
        if let PairState::InProgress(f) = pair.state() {
            if cancelled.len() >= CANCELLED {
                cancelled.pop_front();
            }
            cancelled.push_back(Cancelled {
                tid: f.tid,
                pair: pair.id(),
                use_candidate: f.use_candidate,
                controlling: f.controlling,
                until,
            });
        }
    }

    /// Queues a triggered check of `id` (§6.1.4.1, §7.3.1.4): an in-flight check is
    /// cancelled (its answer still counts until `until`), and the pair becomes Waiting.
    pub fn trigger(&mut self, id: PairId, until: Instant) {
        let Some(pair) = self.pairs.iter_mut().find(|p| p.id() == id) else {
            return;
        };
        Self::cancel_in_flight(&mut self.cancelled, pair, until);
        pair.wait();
        if pair.nominating() {
            // A nomination concludes the component (§8.1.1): it goes ahead of the
            // triggered checks already queued.
            self.triggered.retain(|&t| t != id);
            self.triggered.push_front(id);
        } else if !self.triggered.contains(&id) {
            self.triggered.push_back(id);
        }
    }

    /// Gives back the room the table grew for and no longer needs (at selection: the pairs
    /// that can still be formed are few, those above the selected one).
    pub fn compact(&mut self) {
        self.pairs.shrink_to_fit();
        self.triggered.shrink_to_fit();
        self.cancelled.shrink_to_fit();
    }

    /// Forgets cancelled transactions whose wait is over.
    pub fn expire_cancelled(&mut self, now: Instant) {
        self.cancelled.retain(|c| c.until > now);
    }

    /// The foundations of Waiting and In-Progress pairs (for §6.1.4.2 across lists).
    pub fn active_foundations(&self, out: &mut Vec<u64>) {
        out.extend(
            self.pairs
                .iter()
                .filter(|p| matches!(p.state(), PairState::Waiting | PairState::InProgress(_)))
                .map(|p| p.foundation()),
        );
    }

    /// Whether a pair of this foundation succeeded.
    pub fn foundation_succeeded(&self, foundation: u64) -> bool {
        self.pairs
            .iter()
            .any(|p| p.foundation() == foundation && p.state() == &PairState::Succeeded)
    }

    /// The pair to check at this Ta slot (§6.1.4.2): the head of the triggered queue, else
    /// the highest-priority Waiting pair, else — when no pair is Waiting — every Frozen pair
    /// whose foundation has no Waiting or In-Progress pair in any list (`active`) is
    /// unfrozen and the best of them is taken. Pairs that `wait` are not taken now but keep
    /// their place in the triggered queue; `skip` excludes components not to check.
    pub fn next_check(
        &mut self,
        active: &[u64],
        wait: impl Fn(&Pair) -> bool,
        skip: impl Fn(&Pair) -> bool,
    ) -> Option<PairId> {
        // The triggered queue in order: entries that `wait` keep their place, entries no
        // longer checkable go.
        let mut i = 0;
        while let Some(&id) = self.triggered.get(i) {
            match self.get(id) {
                Some(p) if wait(p) => i += 1,
                Some(p) if matches!(p.state(), PairState::Waiting) && !skip(p) => {
                    self.triggered.remove(i);
                    return Some(id);
                }
                _ => {
                    self.triggered.remove(i);
                }
            }
        }
        let skip = |p: &Pair| wait(p) || skip(p);
        let waiting = |p: &&Pair| matches!(p.state(), PairState::Waiting) && !skip(p);
        if let Some(p) = self.pairs.iter().find(waiting) {
            return Some(p.id());
        }
        let mut unfrozen: Vec<u64> = Vec::new();
        for p in &mut self.pairs {
            let free = !active.contains(&p.foundation()) && !unfrozen.contains(&p.foundation());
            if matches!(p.state(), PairState::Frozen) && free && !skip(p) {
                // One pair per foundation: the first in priority order.
                unfrozen.push(p.foundation());
                p.wait();
            }
        }
        self.pairs.iter().find(waiting).map(|p| p.id())
    }

    /// §7.2.5.3.3: a pair of `foundation` succeeded; its Frozen pairs become Waiting.
    pub fn unfreeze(&mut self, foundation: u64) {
        for p in &mut self.pairs {
            if p.foundation() == foundation && matches!(p.state(), PairState::Frozen) {
                p.wait();
            }
        }
    }

    /// The remote candidate at index `remote` left the stream's table: its pairs go (with
    /// their triggered and cancelled checks), and the pairs of the candidates after it
    /// follow their index down.
    pub fn remove_remote(&mut self, remote: usize) {
        self.pairs.retain(|p| p.remote() != remote);
        let pairs = &self.pairs;
        let kept = |id: &PairId| pairs.iter().any(|p| p.id() == *id);
        self.triggered.retain(|id| kept(id));
        self.cancelled.retain(|c| kept(&c.pair));
        for p in &mut self.pairs {
            if p.remote() > remote {
                p.follow_remote_down();
            }
        }
    }

    /// The remote candidate `remote` has a new priority: its pairs are re-ranked.
    pub fn update_remote_priority(&mut self, remote: usize, priority: u32, controlling: bool) {
        for p in &mut self.pairs {
            if p.remote() == remote {
                p.set_remote_priority(priority, controlling);
            }
        }
        self.pairs.sort_by_key(|p| std::cmp::Reverse(p.priority()));
    }

    /// Recomputes priorities for a role change (§7.2.5.1) and re-sorts.
    pub fn set_role(&mut self, controlling: bool) {
        for p in &mut self.pairs {
            p.set_role(controlling);
        }
        self.pairs.sort_by_key(|p| std::cmp::Reverse(p.priority()));
    }

    /// §8.1.2: once `component` has a nominated pair, its Frozen and Waiting pairs are
    /// removed from the schedule (marked Failed) and dropped from the triggered queue —
    /// except, with re-nomination, those whose priority is above `keep_above` (the selected
    /// pair's), which may still replace it.
    pub fn stop_component(&mut self, component: u16, keep_above: Option<u64>) {
        let mut stopped = Vec::new();
        for p in &mut self.pairs {
            let kept = keep_above.is_some_and(|floor| p.priority() > floor);
            if p.component() == component
                && !kept
                && matches!(p.state(), PairState::Frozen | PairState::Waiting)
            {
                p.stop();
                stopped.push(p.id());
            }
        }
        self.triggered.retain(|id| !stopped.contains(id));
    }

    /// The controlling agent selected a pair of `component` that ranks `floor` (valid-pair
    /// priority): its nominations of other valid pairs ranked no higher are abandoned — one
    /// waiting for its slot is dropped, one in flight is retransmitted no more (its answer
    /// still counts until `until`, as a cancelled check's does, §7.3.1.4). Without this a
    /// nomination of a lower pair sent before the better one went on being retransmitted
    /// after selection, and the controlled side, seeing a nomination below its selected
    /// pair, started doubting that pair (and under loss failed over to the lower one).
    pub fn abandon_nominations_below(&mut self, component: u16, floor: u64, until: Instant) {
        let mut dropped = Vec::new();
        for p in &mut self.pairs {
            if p.component() == component
                && p.valid()
                && p.nominating()
                && p.valid_priority() <= floor
                && !p.nominated()
            {
                Self::cancel_in_flight(&mut self.cancelled, p, until);
                p.stop();
                dropped.push(p.id());
            }
        }
        self.triggered.retain(|id| !dropped.contains(id));
    }

    /// Checks again the pairs of `component` above `floor` whose checks timed out fewer than
    /// `rounds` times: they go back to Waiting. Only timeouts: a pair that got an error or
    /// an asymmetric answer stays failed.
    pub fn retry_timed_out(&mut self, component: u16, floor: u64, rounds: u8) {
        for p in &mut self.pairs {
            // A check over TCP timed out after the transport itself retried (its SYN or
            // segments went unanswered for the whole budget): checking again would not help.
            if p.component() == component
                && p.priority() > floor
                && p.state() == &PairState::Failed
                && (1..rounds).contains(&p.timeouts())
                && !p.path().transport.is_reliable()
            {
                p.wait();
            }
        }
    }

    /// The valid pair of `component` with the highest valid-pair priority
    /// ([`Pair::valid_priority`]; the first in the list among equals).
    pub fn best_valid(&self, component: u16) -> Option<&Pair> {
        self.best_by_valid_priority(|p| p.component() == component && p.valid())
    }

    /// The nominated valid pair of `component` with the highest valid-pair priority (§8.1.1).
    pub fn best_nominated(&self, component: u16) -> Option<&Pair> {
        self.best_by_valid_priority(|p| p.component() == component && p.valid() && p.nominated())
    }

    fn best_by_valid_priority(&self, wanted: impl Fn(&Pair) -> bool) -> Option<&Pair> {
        self.pairs
            .iter()
            .filter(|p| wanted(p))
            .fold(None, |best: Option<&Pair>, p| match best {
                Some(b) if b.valid_priority() >= p.valid_priority() => Some(b),
                _ => Some(p),
            })
    }

    /// Whether `component` still has a pair that may succeed.
    pub fn has_pending(&self, component: u16) -> bool {
        self.pairs
            .iter()
            .any(|p| p.component() == component && p.state().is_pending())
    }

    /// Whether a pending pair of `component` has a priority above `priority`.
    pub fn has_pending_above(&self, component: u16, priority: u64) -> bool {
        self.pairs.iter().any(|p| {
            p.component() == component && p.state().is_pending() && p.priority() > priority
        })
    }

    /// The earliest retransmission deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        let cancelled = self.cancelled.iter().map(|c| c.until).min();
        let flights = self
            .pairs
            .iter()
            .filter_map(|p| p.in_flight().map(|f| f.backoff.next_at()))
            .min();
        match (cancelled, flights) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

#[cfg(test)]
mod tests;
