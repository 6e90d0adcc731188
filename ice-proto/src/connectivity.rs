//! Connectivity checks (RFC 8445 §6.1.4, §7): sending a check at each Ta slot (§6.1.4.2)
//! with the RTO of §14.3 and RFC 8489 retransmissions; answering checks (§7.3) with role
//! conflict resolution (§7.3.1.1), peer-reflexive remote candidates (§7.3.1.3), triggered
//! checks (§7.3.1.4) and USE-CANDIDATE on the controlled side (§7.3.1.5); processing
//! responses (§7.2.5): 487 role conflict (§7.2.5.1), non-symmetric addresses (§7.2.5.2.1),
//! peer-reflexive local candidates (§7.2.5.3.1), the valid list (§7.2.5.3.2) and unfreezing
//! (§7.2.5.3.3).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand_core::{CryptoRng, RngCore};
use stun_proto::time::saturating_add;
use stun_proto::{Message, TransactionId};

use crate::agent::Agent;
use crate::candidate::{Candidate, CandidateType, priority};
use crate::check::{
    CheckOutcome, CheckRequest, DeclaredRole, build_error, build_request, build_success,
    read_request, read_response,
};
use crate::checklist::{InFlight, Pair, PairId, PairState};
use crate::config::NominationMode;
use crate::event::{ComponentState, Event, Problem};
use crate::nomination::Gate;
use crate::received::{DropReason, Received};
use crate::stream::{RemoteCandidate, StreamId};

/// The least RTO of a check (§14.3).
const MIN_RTO: Duration = Duration::from_millis(500);
/// With re-nomination, how many check transactions a pair above the selected one gets
/// before it fails for good.
const CHECK_ROUNDS_ABOVE_SELECTED: u8 = 3;

impl<R: RngCore + CryptoRng> Agent<R> {
    /// §14.3: RTO = max(500 ms, Ta × (Waiting + In-Progress pairs of all check lists)).
    pub(crate) fn check_rto(&self) -> Duration {
        let n: usize = self
            .streams
            .iter()
            .map(|s| {
                s.checklist
                    .pairs()
                    .iter()
                    .filter(|p| matches!(p.state(), PairState::Waiting | PairState::InProgress(_)))
                    .count()
            })
            .sum();
        MIN_RTO.max(
            self.config
                .ta
                .saturating_mul(u32::try_from(n).unwrap_or(u32::MAX)),
        )
    }

    /// Retransmits checks whose RTO expired; fails those out of retransmissions.
    pub(crate) fn retransmit_checks(&mut self, now: Instant) {
        let (rc, rm, max) = (
            self.config.check_request_count,
            self.config.check_last_wait_factor,
            self.config.check_max_rto,
        );
        for s in 0..self.streams.len() {
            self.streams[s].checklist.expire_cancelled(now);
            let (mut resend, mut timed_out) = (Vec::new(), Vec::new());
            self.streams[s].checklist.expire_checks(
                now,
                (rc, rm, max),
                &mut resend,
                &mut timed_out,
            );
            for (source, destination, payload) in resend {
                self.stats.retransmissions += 1;
                self.push_transmit(now, source, destination, payload);
            }
            for id in timed_out {
                self.fail_pair(now, s, id);
            }
            self.retry_above_selected(s);
        }
    }

    /// A check of pair `id` of stream `s` failed (§7.2.5.2: an error response, non-symmetric
    /// addresses, an ICMP error, no answer): the pair fails and leaves the valid list. A
    /// selected pair that fails is selected no more: the component moves on to its best
    /// remaining valid pair, or back to checking (`fail_over`), so that the selected pair
    /// is always a nominated valid pair of its component (§8.1.1).
    pub(crate) fn fail_pair(&mut self, now: Instant, s: usize, id: PairId) {
        let Some(component) = self.streams.get_mut(s).and_then(|st| st.checklist.fail(id)) else {
            return;
        };
        let selected = self.streams[s]
            .component(component)
            .is_some_and(|c| c.selected == Some(id));
        if selected {
            self.streams[s].checklist.unnominate(id);
            self.fail_over(now, s, component);
        }
    }

    /// Re-nomination: pairs above a component's selected pair whose checks timed out are
    /// checked again, up to [`CHECK_ROUNDS_ABOVE_SELECTED`] times in all. A direct path
    /// that lost its seven check datagrams to a lossy link would otherwise leave the call
    /// on the relay for good; before a pair is selected a timeout is final, so a component
    /// with no path still fails on time.
    pub(crate) fn retry_above_selected(&mut self, s: usize) {
        let components = self.streams.get(s).map_or(0, |st| st.components.len());
        for i in 0..components {
            let id = self.streams[s].components[i].id;
            if let Gate::Above(floor) = self.gate(&self.streams[s], id) {
                self.streams[s]
                    .checklist
                    .retry_timed_out(id, floor, CHECK_ROUNDS_ABOVE_SELECTED);
            }
        }
    }

    /// Whether some check list has a pair to check for a component still looking for one
    /// (or, with re-nomination, for a better one), or a nomination to send.
    fn has_check_work(&self) -> bool {
        self.streams.iter().any(|st| {
            st.remote.is_some()
                && st.checklist.pairs().iter().any(|p| {
                    matches!(p.state(), PairState::Waiting | PairState::Frozen)
                        && st
                            .component(p.component())
                            .is_some_and(|c| c.state != ComponentState::Failed)
                        && (p.nominating() || self.gate(st, p.component()).admits(p.priority()))
                })
        })
    }

    /// Sends the next check if its Ta slot has come (§6.1.4.2), round-robin over the
    /// streams' check lists.
    pub(crate) fn pace_checks(&mut self, now: Instant) {
        if self.config.lite {
            // §2.5: a lite agent sends no checks.
            self.next_check_at = None;
            return;
        }
        let due = self
            .last_check_at
            .map_or(now, |t| saturating_add(t, self.config.ta));
        if !self.has_check_work() {
            self.next_check_at = None;
            return;
        }
        if due > now {
            self.next_check_at = Some(due);
            return;
        }
        // Foundations being checked; a list that cannot check yet (no remote credentials)
        // holds nothing back.
        let mut active = Vec::new();
        for st in self.streams.iter().filter(|st| st.remote.is_some()) {
            st.checklist.active_foundations(&mut active);
        }
        let n = self.streams.len();
        for i in 0..n {
            let s = (self.round_robin + i) % n;
            if self.streams[s].remote.is_none() {
                continue;
            }
            // Per component: what may be checked (nothing once failed).
            let st = &self.streams[s];
            let gates: Vec<(Gate, bool)> = st
                .components
                .iter()
                .map(|c| match c.state {
                    ComponentState::Failed => (Gate::Closed, false),
                    _ => (self.gate(st, c.id), true),
                })
                .collect();
            let st = &mut self.streams[s];
            // A nomination of a live component always goes out, also that of a pair selected
            // below the gate by a failover (`network.rs`).
            let skip = |p: &Pair| {
                usize::from(p.component())
                    .checked_sub(1)
                    .and_then(|i| gates.get(i))
                    .is_none_or(|(g, live)| !(g.admits(p.priority()) || (*live && p.nominating())))
            };
            if let Some(id) = st.checklist.next_check(&active, skip) {
                self.round_robin = s + 1;
                self.send_check(now, s, id);
                self.last_check_at = Some(now);
                self.next_check_at = Some(saturating_add(now, self.config.ta));
                return;
            }
        }
        self.next_check_at = None;
    }

    /// Sends a check on pair `id` of stream `s` (§7.2.4).
    fn send_check(&mut self, now: Instant, s: usize, id: PairId) {
        let rto = self.check_rto();
        let tid = TransactionId::random(&mut self.rng);
        let controlling = self.controlling;
        let role = if controlling {
            DeclaredRole::Controlling(self.tie_breaker)
        } else {
            DeclaredRole::Controlled(self.tie_breaker)
        };
        let st = &mut self.streams[s];
        let Some(remote) = &st.remote else {
            return;
        };
        let Some(pair) = st.checklist.get(id) else {
            return;
        };
        let Some(local) = st.local.get(pair.local()) else {
            return;
        };
        let component = pair.component();
        // §7.1.1: the priority a peer-reflexive candidate of this base would have.
        let local_pref = (local.candidate.priority >> 8) as u16;
        let prflx = priority(
            CandidateType::PeerReflexive.preference(),
            local_pref,
            component,
        );
        let aggressive = self.config.nomination == NominationMode::Aggressive;
        let use_candidate = controlling && (pair.nominating() || aggressive);
        let check = CheckRequest {
            username: &remote.username,
            priority: prflx,
            role,
            use_candidate,
        };
        let (base, destination) = (pair.base(), pair.remote_addr());
        let Ok(request) = build_request(tid, &check, &remote.key) else {
            st.checklist.fail(id);
            return;
        };
        let check = InFlight::new(now, tid, request.clone(), rto, use_candidate, controlling);
        st.checklist.start_check(id, check);
        self.stats.checks_sent += 1;
        self.push_transmit(now, base, destination, request);
        let state = self.streams[s].component(component).map(|c| c.state);
        if matches!(
            state,
            Some(ComponentState::Disconnected | ComponentState::Gathering)
        ) {
            self.set_component_state(s, component, ComponentState::Connecting, None);
        }
    }

    /// A Binding request: a connectivity check from the peer (§7.3).
    pub(crate) fn handle_check_request<'a>(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        message: &Message<'_>,
    ) -> Received<'a> {
        let Ok(check) = read_request(message) else {
            self.stats.unknown_username += 1;
            return Received::Dropped(DropReason::UnknownUsername);
        };
        let Some(s) = self
            .streams
            .iter()
            .position(|st| !st.removed && st.local_credentials.ufrag == check.local_ufrag)
        else {
            self.stats.unknown_username += 1;
            return Received::Dropped(DropReason::UnknownUsername);
        };
        if message
            .verify_integrity(&self.streams[s].local_key)
            .is_err()
        {
            self.stats.bad_integrity += 1;
            // RFC 8489 §9.1.3: a check with our ufrag whose MESSAGE-INTEGRITY fails gets 401,
            // without integrity, so that the peer can tell a wrong password from a dead
            // path (libnice answers so too). Nothing else changes; a bad FINGERPRINT is no
            // STUN of ours and gets nothing.
            let fingerprint_ok = !message.has_fingerprint() || message.verify_fingerprint().is_ok();
            let ours = self.streams[s].local.iter().any(|l| l.base == destination);
            if fingerprint_ok && ours {
                if let Ok(answer) = build_error(message, 401, None) {
                    self.push_transmit(now, destination, source, answer);
                }
            }
            return Received::Dropped(DropReason::BadIntegrity);
        }
        let key = self.streams[s].local_key.clone();
        let Some(local) = self.streams[s]
            .local
            .iter()
            .position(|l| l.base == destination && self.is_paired(l.candidate.kind))
        else {
            return Received::NotIce(crate::received::NotIceReason::UnknownDestination);
        };
        let Some(priority) = check.priority else {
            if let Ok(answer) = build_error(message, 400, Some(&key)) {
                self.push_transmit(now, destination, source, answer);
            }
            return Received::Stun;
        };
        // §7.3.1.1: role conflicts.
        match (self.controlling, check.role) {
            (true, Some(DeclaredRole::Controlling(tb))) => {
                if self.tie_breaker >= tb {
                    if let Ok(answer) = build_error(message, 487, Some(&key)) {
                        self.push_transmit(now, destination, source, answer);
                    }
                    return Received::Stun;
                }
                self.switch_role(false);
            }
            (false, Some(DeclaredRole::Controlled(tb))) => {
                if self.tie_breaker >= tb {
                    self.switch_role(true);
                } else {
                    if let Ok(answer) = build_error(message, 487, Some(&key)) {
                        self.push_transmit(now, destination, source, answer);
                    }
                    return Received::Stun;
                }
            }
            _ => {}
        }
        self.stats.requests_received += 1;
        // §7.3.1.2: the success response, from the address the request arrived on.
        if let Ok(answer) = build_success(message, source, &key) {
            self.push_transmit(now, destination, source, answer);
        }
        let component = self.streams[s].local[local].candidate.component;
        if self.streams[s].component(component).is_none() {
            return Received::Stun;
        }
        // §7.3.1.3: a source address that is no remote candidate is peer-reflexive.
        let remote = self.remote_for(s, component, source, priority);
        let Some(remote) = remote else {
            return Received::Stun;
        };
        let existing = self.streams[s]
            .checklist
            .pairs()
            .iter()
            .find(|p| p.base() == destination && p.remote_addr() == source)
            .map(|p| p.id());
        let mut id = existing.or_else(|| self.make_pair(s, local, remote));
        // The controlling side: a check (or consent check) from the peer on a pair the
        // gate keeps out (below the selected one; a pair above is re-nomination's) may mean
        // the peer lost the selected pair's interface and moved there (a failover,
        // `network.rs`): probe the selected pair, and form and check this one meanwhile.
        if self.controlling && !check.use_candidate && !self.config.lite {
            let st = &self.streams[s];
            let gate = self.gate(st, component);
            let selected = st.component(component).and_then(|c| c.selected);
            let gated = match id.and_then(|id| st.checklist.get(id)) {
                Some(p) => Some(p.id()) != selected && !gate.admits(p.priority()),
                // Not formed: refused by the gate (or the table is full).
                None => true,
            };
            let i = usize::from(component).checked_sub(1);
            if let Some(i) = i.filter(|_| gated && selected.is_some()) {
                self.start_probe(now, s, i);
                if id.is_none() {
                    id = self.make_pair(s, local, remote);
                }
            }
        }
        let Some(id) = id else {
            return Received::Stun;
        };
        if self.config.lite {
            self.lite_check(now, s, id, component, check.use_candidate);
            return Received::Stun;
        }
        let until = saturating_add(now, self.check_rto().saturating_mul(16));
        let controlling = self.controlling;
        let gate = self.gate(&self.streams[s], component);
        let st = &mut self.streams[s];
        let Some(pair) = st.checklist.get(id) else {
            return Received::Stun;
        };
        // §7.3.1.4: triggered checks, unless the component already has its pair (with
        // re-nomination: unless the pair ranks below it) or the pair succeeded. "Succeeded"
        // is the pair being valid: a check of it succeeded, maybe one that a later check
        // (still in flight: a nomination, say) had cancelled.
        let succeeded = pair.valid();
        if gate.admits(pair.priority()) && !succeeded {
            st.checklist.trigger(id, until);
        }
        // §7.3.1.5: USE-CANDIDATE on the controlled side.
        if check.use_candidate && !controlling {
            let Some(priority) = st.checklist.get(id).map(Pair::priority) else {
                return Received::Stun;
            };
            if st.checklist.nominated_by_peer(id) {
                self.select(now, s, component);
            }
            // A nomination below the selected pair: is the selected pair still there?
            let st = &self.streams[s];
            let below = st
                .component(component)
                .and_then(|c| c.selected)
                .and_then(|id| st.checklist.get(id))
                .is_some_and(|sel| sel.priority() > priority);
            if let Some(i) = usize::from(component).checked_sub(1).filter(|_| below) {
                self.start_probe(now, s, i);
            }
        }
        Received::Stun
    }

    /// The remote candidate at `source`, learnt as peer-reflexive if new (§7.3.1.3).
    fn remote_for(
        &mut self,
        s: usize,
        component: u16,
        source: SocketAddr,
        priority: u32,
    ) -> Option<usize> {
        let max = self.config.max_candidates;
        let st = &mut self.streams[s];
        if let Some(i) = st
            .remote_candidates
            .iter()
            .position(|r| r.addr == source && r.candidate.component == component)
        {
            return Some(i);
        }
        if st.remote_candidates.len() >= max {
            self.push_event(Event::Problem(Problem::CandidateLimitReached {
                stream: StreamId(s),
            }));
            return None;
        }
        st.prflx_count += 1;
        let mut candidate = Candidate::new(
            CandidateType::PeerReflexive,
            component,
            source,
            source,
            None,
            0,
        );
        // §7.3.1.3: the priority from PRIORITY, an arbitrary unique foundation, no related
        // address (the peer's base is unknown).
        candidate.priority = priority;
        candidate.foundation = format!("prflx{}", st.prflx_count);
        candidate.related = None;
        st.remote_candidates.push(RemoteCandidate {
            candidate: candidate.clone(),
            addr: source,
            learnt: true,
        });
        let index = st.remote_candidates.len() - 1;
        self.push_event(Event::NewPeerReflexiveRemoteCandidate {
            stream: StreamId(s),
            candidate,
        });
        Some(index)
    }

    /// A Binding response: to one of our checks or consent checks? `None` if neither.
    pub(crate) fn handle_check_response<'a>(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        message: &Message<'_>,
    ) -> Option<Received<'a>> {
        let tid = message.transaction_id();
        for s in 0..self.streams.len() {
            if let Some((id, use_candidate, controlling)) =
                self.streams[s].checklist.find_transaction(&tid)
            {
                return Some(self.on_check_response(
                    now,
                    (s, id),
                    (use_candidate, controlling),
                    source,
                    destination,
                    message,
                ));
            }
            let consent = self.streams[s]
                .components
                .iter()
                .position(|c| c.consent.as_ref().is_some_and(|k| k.is_ours(&tid)));
            if let Some(i) = consent {
                return Some(self.on_consent_response(now, s, i, source, destination, message));
            }
        }
        None
    }

    /// A response to the check of pair `id` (§7.2.5).
    fn on_check_response<'a>(
        &mut self,
        now: Instant,
        (s, id): (usize, PairId),
        (use_candidate, sent_controlling): (bool, bool),
        source: SocketAddr,
        destination: SocketAddr,
        message: &Message<'_>,
    ) -> Received<'a> {
        let tid = message.transaction_id();
        let st = &mut self.streams[s];
        let Some(remote) = &st.remote else {
            return Received::Dropped(DropReason::BadIntegrity);
        };
        let authentic = message.verify_integrity(&remote.key).is_ok()
            && (!message.has_fingerprint() || message.verify_fingerprint().is_ok());
        if !authentic {
            // RFC 8489 §9.1.4: discarded, since anyone could have sent it; a 401 is counted
            // apart — every check answered so means the peer refuses the password we have
            // for it.
            if is_unauthenticated(message) {
                self.stats.unauthenticated_answers += 1;
            } else {
                self.stats.bad_integrity += 1;
            }
            return Received::Dropped(DropReason::BadIntegrity);
        }
        self.stats.responses_received += 1;
        st.checklist.cancelled.retain(|c| c.tid != tid);
        let Some(pair) = st.checklist.get(id) else {
            return Received::Stun;
        };
        let outcome = read_response(message);
        // §7.2.5.2.1: the response must come from where the request went, to where it
        // came from.
        let symmetric = source == pair.remote_addr() && destination == pair.base();
        let current = pair.in_flight().filter(|f| f.tid == tid);
        // Karn: an RTT only from a check answered at its first send.
        let rtt = current
            .filter(|f| f.sends == 1 && symmetric)
            .map(|f| now.saturating_duration_since(f.first_sent));
        let current = current.is_some();
        let valid = pair.valid();
        if let Some(rtt) = rtt {
            st.checklist.set_rtt(id, rtt);
        }
        // A failure answering a check this pair no longer waits for (one cancelled by a
        // triggered check, §7.3.1.4) does not take back the success of a later check: the
        // pair stays valid (and, if selected, selected).
        let failure = !symmetric || matches!(outcome, CheckOutcome::Error(_));
        if failure && !current && valid {
            self.stats.stale_failures += 1;
            return Received::Stun;
        }
        if !symmetric {
            self.fail_pair(now, s, id);
            return Received::Stun;
        }
        match outcome {
            CheckOutcome::RoleConflict => {
                // §7.2.5.1: switch to the role opposite to the one the request declared,
                // and check the pair again.
                if sent_controlling == self.controlling {
                    self.switch_role(!sent_controlling);
                }
                let until = saturating_add(now, self.check_rto());
                self.streams[s].checklist.trigger(id, until);
            }
            CheckOutcome::Error(_) => self.fail_pair(now, s, id),
            CheckOutcome::Success(mapped) => {
                self.on_check_success(now, s, id, (use_candidate, current), mapped);
            }
        }
        Received::Stun
    }

    /// A successful check (§7.2.5.3).
    /// `current` says whether it answers the pair's latest check, rather than one that a
    /// later check cancelled (§7.3.1.4).
    fn on_check_success(
        &mut self,
        now: Instant,
        s: usize,
        id: PairId,
        (use_candidate, current): (bool, bool),
        mapped: SocketAddr,
    ) {
        let controlling = self.controlling;
        let Some(pair) = self.streams[s].checklist.get(id) else {
            return;
        };
        let (component, base, local, foundation) = (
            pair.component(),
            pair.base(),
            pair.local(),
            pair.foundation(),
        );
        // §7.2.5.3.1: the mapped address names the valid pair's local candidate; a new one is
        // peer-reflexive, with the priority the request carried.
        let known = self.streams[s]
            .local
            .iter()
            .position(|l| l.addr == mapped && l.base == base);
        let valid_local = match known {
            Some(i) => i,
            None => {
                let local_pref = self.streams[s]
                    .local
                    .get(local)
                    .map_or(0, |l| (l.candidate.priority >> 8) as u16);
                let candidate = Candidate::new(
                    CandidateType::PeerReflexive,
                    component,
                    mapped,
                    base,
                    None,
                    local_pref,
                );
                self.add_local(s, candidate, mapped, base).unwrap_or(local)
            }
        };
        // §7.2.5.3.2: the valid list; §7.2.5.3.3: the pair succeeded (see
        // `Checklist::succeed` for the success of a cancelled check, §7.3.1.4).
        let roles = (use_candidate, controlling);
        let Some(nominated) = self.streams[s]
            .checklist
            .succeed(id, valid_local, current, roles)
        else {
            return;
        };
        for st in &mut self.streams {
            st.checklist.unfreeze(foundation);
        }
        let Some(c) = self.streams[s].component_mut(component) else {
            return;
        };
        c.first_valid_at.get_or_insert(now);
        if matches!(
            c.state,
            ComponentState::Disconnected | ComponentState::Gathering | ComponentState::Connecting
        ) {
            self.set_component_state(s, component, ComponentState::Connected, None);
        }
        if nominated {
            self.select(now, s, component);
        }
    }

    /// A lite agent received an authenticated check on pair `id` (§7.3.1.4, §7.3.1.5 for
    /// lite): the pair is valid, nominated if the check says so; a check on the selected
    /// pair refreshes its liveness.
    fn lite_check(&mut self, now: Instant, s: usize, id: PairId, component: u16, nominate: bool) {
        let st = &mut self.streams[s];
        st.checklist.lite_valid(id, nominate);
        let Some(c) = st.component_mut(component) else {
            return;
        };
        if c.selected == Some(id) {
            if let Some(consent) = &mut c.consent {
                consent.last_fresh = consent.last_fresh.max(now);
            }
        }
        c.first_valid_at.get_or_insert(now);
        if matches!(
            c.state,
            ComponentState::Disconnected | ComponentState::Gathering | ComponentState::Connecting
        ) {
            self.set_component_state(s, component, ComponentState::Connected, None);
        }
        if nominate {
            self.select(now, s, component);
        }
    }

    /// Switches the role after a conflict (§7.2.5.1, §7.3.1.1): pair priorities change.
    pub(crate) fn switch_role(&mut self, controlling: bool) {
        if self.controlling == controlling {
            return;
        }
        self.controlling = controlling;
        for st in &mut self.streams {
            st.checklist.set_role(controlling);
        }
        self.push_event(Event::RoleChanged { controlling });
    }
}

/// Whether `message` is a 401 Unauthenticated error response (RFC 8489 §9.1.3).
fn is_unauthenticated(message: &Message<'_>) -> bool {
    message.class() == stun_proto::Class::Error
        && message
            .get::<stun_proto::attribute::ErrorCode<'_>>()
            .and_then(Result::ok)
            .is_some_and(|e| e.code() == 401)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checklist::PairStateKind;
    use crate::config::AgentConfig;
    use crate::event::ComponentState;
    use crate::received::NotIceReason;
    use crate::stream::Credentials;
    use crate::test_support::t0;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;
    use stun_proto::attribute::{
        ErrorCode, IceControlled, IceControlling, Priority, UseCandidate, Username,
        XorMappedAddress,
    };
    use stun_proto::{
        Class, IntegrityKey, MessageBuilder, MessageType, Transmit, TransportProtocol,
    };

    type TestAgent = Agent<ChaCha20Rng>;
    const BASE: &str = "192.0.2.1:5000";
    const PEER: &str = "203.0.113.9:4000";
    const LOCAL_PWD: &str = "localpasswordlocalpassword";
    const REMOTE_PWD: &str = "remotepasswordremotepassword";

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn agent_with(config: AgentConfig, components: u16) -> (TestAgent, StreamId) {
        let now = t0();
        let mut a = Agent::new(config, ChaCha20Rng::seed_from_u64(7));
        let s = a.add_stream(components).unwrap();
        let mut view = a.stream_mut(s).unwrap();
        view.set_local_credentials(Credentials::new("LOCL", LOCAL_PWD).unwrap())
            .unwrap();
        for c in 1..=components {
            view.add_base(c, SocketAddr::new(addr(BASE).ip(), 5000 + c - 1))
                .unwrap();
        }
        a.handle_remote_credentials(now, s, Credentials::new("REMO", REMOTE_PWD).unwrap())
            .unwrap();
        a.handle_gather(now, s).unwrap();
        while a.poll_event().is_some() {}
        (a, s)
    }

    fn agent(controlling: bool) -> (TestAgent, StreamId) {
        let config = AgentConfig {
            controlling,
            ..AgentConfig::default()
        };
        agent_with(config, 1)
    }

    fn transmits(a: &mut TestAgent) -> Vec<Transmit> {
        std::iter::from_fn(|| a.poll_transmit()).collect()
    }

    fn events(a: &mut TestAgent) -> Vec<Event> {
        std::iter::from_fn(|| a.poll_event()).collect()
    }

    /// A check from the peer, signed with our password.
    fn request(
        tid: u8,
        priority: Option<u32>,
        role: Option<DeclaredRole>,
        use_candidate: bool,
    ) -> Vec<u8> {
        let key = IntegrityKey::short_term(LOCAL_PWD).unwrap();
        let mut b = MessageBuilder::new_bytes(MessageType::BINDING_REQUEST, [tid; 12].into());
        b.add(&Username::new("LOCL:REMO").unwrap()).unwrap();
        if let Some(p) = priority {
            b.add(&Priority(p)).unwrap();
        }
        match role {
            Some(DeclaredRole::Controlling(tb)) => b.add(&IceControlling(tb)).unwrap(),
            Some(DeclaredRole::Controlled(tb)) => b.add(&IceControlled(tb)).unwrap(),
            None => &mut b,
        };
        if use_candidate {
            b.add(&UseCandidate).unwrap();
        }
        b.add_message_integrity(&key)
            .unwrap()
            .add_fingerprint()
            .unwrap();
        b.into_bytes().to_vec()
    }

    /// The peer's answer to our request `t`, signed with the remote password.
    fn answer(t: &Transmit, class: Class, mapped: SocketAddr, code: Option<u16>) -> Vec<u8> {
        let key = IntegrityKey::short_term(REMOTE_PWD).unwrap();
        let request = Message::parse(&t.payload).unwrap();
        let mut b = MessageBuilder::response_to(bytes::BytesMut::new(), &request, class).unwrap();
        match code {
            Some(code) => b.add(&ErrorCode::new(code).unwrap()).unwrap(),
            None => b.add(&XorMappedAddress(mapped)).unwrap(),
        };
        b.add_message_integrity(&key)
            .unwrap()
            .add_fingerprint()
            .unwrap();
        b.into_bytes().to_vec()
    }

    fn remote(a: &mut TestAgent, s: StreamId, line: &str) {
        a.handle_remote_candidate(t0(), s, line.parse().unwrap())
            .unwrap();
    }

    fn pair_states(a: &TestAgent, s: StreamId) -> Vec<(u16, PairStateKind)> {
        a.stream(s)
            .unwrap()
            .pairs()
            .map(|p| (p.component, p.state))
            .collect()
    }

    #[test]
    fn a_check_is_answered_and_its_source_learnt_peer_reflexive_7_3_1() {
        let (mut a, s) = agent(false);
        let now = t0();
        let req = request(
            1,
            Some(1_845_501_695),
            Some(DeclaredRole::Controlling(1)),
            false,
        );
        let r = a.handle_datagram(now, TransportProtocol::Udp, addr(PEER), addr(BASE), &req);
        assert_eq!(r, Received::Stun);
        let out = transmits(&mut a);
        assert_eq!(out.len(), 2, "the answer, then the triggered check");
        // §7.3.1.2: success, XOR-MAPPED-ADDRESS = source, signed with our password.
        let ok = Message::parse(&out[0].payload).unwrap();
        assert_eq!(
            (out[0].source, out[0].destination),
            (addr(BASE), addr(PEER))
        );
        assert_eq!(ok.class(), Class::Success);
        ok.verify_integrity(&IntegrityKey::short_term(LOCAL_PWD).unwrap())
            .unwrap();
        assert_eq!(ok.get::<XorMappedAddress>().unwrap().unwrap().0, addr(PEER));
        // §7.3.1.3: a peer-reflexive remote candidate with the PRIORITY of the check.
        let view = a.stream(s).unwrap();
        let prflx: Vec<_> = view.remote_candidates().collect();
        assert_eq!(prflx.len(), 1);
        assert_eq!(prflx[0].kind, CandidateType::PeerReflexive);
        assert_eq!(prflx[0].priority, 1_845_501_695);
        let prflx0 = prflx[0].clone();
        let learnt = events(&mut a).into_iter().find_map(|e| match e {
            Event::NewPeerReflexiveRemoteCandidate { candidate, .. } => Some(candidate),
            _ => None,
        });
        assert_eq!(learnt, Some(prflx0));
        // §7.3.1.4: a triggered check back, as controlled, signed with the remote password.
        let check = Message::parse(&out[1].payload).unwrap();
        assert_eq!(check.class(), Class::Request);
        assert_eq!(out[1].destination, addr(PEER));
        check
            .verify_integrity(&IntegrityKey::short_term(REMOTE_PWD).unwrap())
            .unwrap();
        assert_eq!(
            check.get::<Username<'_>>().unwrap().unwrap().as_str(),
            "REMO:LOCL"
        );
        assert_eq!(
            check.get::<IceControlled>().unwrap().unwrap().0,
            a.tie_breaker()
        );
        assert!(!check.has(stun_proto::AttributeType::USE_CANDIDATE));
        // PRIORITY: type preference 110 with the base's local preference (§7.1.1).
        assert_eq!(
            check.get::<Priority>().unwrap().unwrap().0,
            crate::candidate::priority(110, 32_767, 1)
        );
    }

    fn conflict(
        controlling: bool,
        declared: fn(u64) -> DeclaredRole,
        larger: bool,
    ) -> (TestAgent, Vec<Transmit>, Vec<Event>) {
        let (mut a, _) = agent(controlling);
        let tb = a.tie_breaker();
        let theirs = if larger {
            tb.saturating_add(1)
        } else {
            tb.saturating_sub(1)
        };
        let req = request(2, Some(1), Some(declared(theirs)), false);
        a.handle_datagram(t0(), TransportProtocol::Udp, addr(PEER), addr(BASE), &req);
        let out = transmits(&mut a);
        let ev = events(&mut a);
        (a, out, ev)
    }

    fn error_code(t: &Transmit) -> Option<u16> {
        let m = Message::parse(&t.payload).unwrap();
        m.get::<ErrorCode<'_>>()
            .and_then(Result::ok)
            .map(|e| e.code())
    }

    #[test]
    fn role_conflicts_on_received_checks_7_3_1_1() {
        // Both controlling; ours is larger: 487, we stay controlling.
        let (a, out, _) = conflict(true, DeclaredRole::Controlling, false);
        assert_eq!(error_code(&out[0]), Some(487));
        assert_eq!(out.len(), 1);
        assert!(a.is_controlling());
        // Both controlling; theirs is larger: we switch to controlled and answer success.
        let (a, out, ev) = conflict(true, DeclaredRole::Controlling, true);
        assert_eq!(error_code(&out[0]), None);
        assert!(!a.is_controlling());
        assert!(ev.contains(&Event::RoleChanged { controlling: false }));
        // Both controlled; ours is larger: we switch to controlling.
        let (a, out, _) = conflict(false, DeclaredRole::Controlled, false);
        assert_eq!(error_code(&out[0]), None);
        assert!(a.is_controlling());
        // Both controlled; theirs is larger: 487, we stay controlled.
        let (a, out, _) = conflict(false, DeclaredRole::Controlled, true);
        assert_eq!(error_code(&out[0]), Some(487));
        assert!(!a.is_controlling());
    }

    #[test]
    fn unauthenticated_or_unknown_checks_are_dropped_and_counted() {
        let (mut a, _) = agent(false);
        let mut req = request(3, Some(1), Some(DeclaredRole::Controlling(1)), false);
        // Flip a byte of the MESSAGE-INTEGRITY value (before the 8-byte FINGERPRINT).
        let n = req.len();
        req[n - 12] ^= 1;
        // Recompute nothing: the fingerprint now fails too, which is also a drop.
        let r = a.handle_datagram(t0(), TransportProtocol::Udp, addr(PEER), addr(BASE), &req);
        assert!(matches!(r, Received::Dropped(_)));
        assert!(transmits(&mut a).is_empty());
        // Signed with another password.
        let key = IntegrityKey::short_term("anotherpasswordanotherpw").unwrap();
        let mut b = MessageBuilder::new_bytes(MessageType::BINDING_REQUEST, [4; 12].into());
        b.add(&Username::new("LOCL:REMO").unwrap()).unwrap();
        b.add(&Priority(1)).unwrap();
        b.add_message_integrity(&key)
            .unwrap()
            .add_fingerprint()
            .unwrap();
        let bytes = b.into_bytes();
        let r = a.handle_datagram(t0(), TransportProtocol::Udp, addr(PEER), addr(BASE), &bytes);
        assert_eq!(r, Received::Dropped(DropReason::BadIntegrity));
        assert_eq!(a.stats().bad_integrity, 1);
        // RFC 8489 §9.1.3: that one gets 401, without integrity, and changes nothing else.
        let [refusal] = &transmits(&mut a)[..] else {
            panic!("one 401")
        };
        assert_eq!(
            (refusal.source, refusal.destination),
            (addr(BASE), addr(PEER))
        );
        let m = Message::parse(&refusal.payload).unwrap();
        assert_eq!(m.class(), Class::Error);
        assert_eq!(m.get::<ErrorCode<'_>>().unwrap().unwrap().code(), 401);
        assert!(m.verify_fingerprint().is_ok());
        assert!(
            m.raw(stun_proto::AttributeType::MESSAGE_INTEGRITY)
                .is_none()
        );
        // Another ufrag.
        let mut b = MessageBuilder::new_bytes(MessageType::BINDING_REQUEST, [5; 12].into());
        b.add(&Username::new("OTHER:REMO").unwrap()).unwrap();
        b.add_message_integrity(&key).unwrap();
        let bytes = b.into_bytes();
        let r = a.handle_datagram(t0(), TransportProtocol::Udp, addr(PEER), addr(BASE), &bytes);
        assert_eq!(r, Received::Dropped(DropReason::UnknownUsername));
        assert_eq!(a.stats().unknown_username, 2);
        assert!(transmits(&mut a).is_empty());
        assert_eq!(
            a.stream(StreamId(0)).unwrap().remote_candidates().count(),
            0
        );
        // A response to nothing of ours is not the agent's.
        let t = Transmit {
            transport: TransportProtocol::Udp,
            source: addr(PEER),
            destination: addr(BASE),
            payload: request(6, Some(1), None, false).into(),
        };
        let stray = answer(&t, Class::Success, addr(PEER), None);
        let r = a.handle_datagram(t0(), TransportProtocol::Udp, addr(PEER), addr(BASE), &stray);
        assert_eq!(r, Received::NotIce(NotIceReason::UnknownTransaction));
    }

    #[test]
    fn a_check_without_priority_gets_400() {
        let (mut a, _) = agent(false);
        let req = request(7, None, Some(DeclaredRole::Controlling(1)), false);
        a.handle_datagram(t0(), TransportProtocol::Udp, addr(PEER), addr(BASE), &req);
        let out = transmits(&mut a);
        assert_eq!(out.len(), 1);
        assert_eq!(error_code(&out[0]), Some(400));
    }

    #[test]
    fn checks_are_paced_at_ta_with_the_rto_of_14_3() {
        let (mut a, s) = agent(true);
        let now = t0();
        for i in 0..20 {
            remote(
                &mut a,
                s,
                &format!(
                    "candidate:{i} 1 udp {} 203.0.113.9 {} typ host",
                    2_000_000_000 - i,
                    4000 + i
                ),
            );
        }
        let mut sent: Vec<(Duration, Transmit)> = Vec::new();
        let mut t = now;
        loop {
            for x in transmits(&mut a) {
                sent.push((t - now, x));
            }
            let next = a.poll_timeout().unwrap();
            if next - now > Duration::from_millis(1_060) {
                break;
            }
            t = next;
            a.handle_timeout(t);
        }
        let ms = Duration::from_millis;
        let first_sends: Vec<Duration> = sent.iter().take(4).map(|(t, _)| *t).collect();
        assert_eq!(first_sends, [ms(0), ms(50), ms(100), ms(150)]);
        // Highest priority first.
        assert_eq!(sent[0].1.destination, addr("203.0.113.9:4000"));
        // §14.3: RTO = max(500 ms, Ta × pairs Waiting or In-Progress), computed when the
        // check is sent: the first check went out with one pair (500 ms), the second with
        // twenty (1 s).
        let resends = |i: usize| -> Vec<Duration> {
            let tid = Message::parse(&sent[i].1.payload).unwrap().transaction_id();
            sent.iter()
                .filter(|(_, x)| Message::parse(&x.payload).unwrap().transaction_id() == tid)
                .map(|(t, _)| *t)
                .collect()
        };
        assert_eq!(resends(0), [ms(0), ms(500)]);
        assert_eq!(resends(1), [ms(50), ms(1_050)]);
        assert_eq!(a.check_rto(), ms(1_000));
    }

    #[test]
    fn responses_7_2_5() {
        let (mut a, s) = agent(true);
        let now = t0();
        remote(
            &mut a,
            s,
            &format!("candidate:1 1 udp 2000 {} typ host", PEER.replace(':', " ")),
        );
        let check = transmits(&mut a).remove(0);
        // §7.2.5.2.1: from another address than the request went to: the pair fails.
        let wrong = answer(&check, Class::Success, addr(BASE), None);
        a.handle_datagram(
            now,
            TransportProtocol::Udp,
            addr("203.0.113.9:4001"),
            addr(BASE),
            &wrong,
        );
        assert_eq!(pair_states(&a, s), [(1, PairStateKind::Failed)]);

        // RFC 8489 §9.1.4: a 401 without integrity (the peer refuses our password for it)
        // is discarded — anyone could send it — and counted apart.
        let (mut a, s) = agent(true);
        remote(
            &mut a,
            s,
            &format!("candidate:1 1 udp 2000 {} typ host", PEER.replace(':', " ")),
        );
        let check = transmits(&mut a).remove(0);
        let request = Message::parse(&check.payload).unwrap();
        let refusal = crate::check::build_error(&request, 401, None).unwrap();
        let r = a.handle_datagram(
            now,
            TransportProtocol::Udp,
            addr(PEER),
            addr(BASE),
            &refusal,
        );
        assert_eq!(r, Received::Dropped(DropReason::BadIntegrity));
        assert_eq!(
            (a.stats().unauthenticated_answers, a.stats().bad_integrity),
            (1, 0)
        );
        assert!(matches!(
            pair_states(&a, s)[..],
            [(1, PairStateKind::InProgress)]
        ));

        // §7.2.5.1: 487 switches the role and checks the pair again.
        let (mut a, s) = agent(true);
        remote(
            &mut a,
            s,
            &format!("candidate:1 1 udp 2000 {} typ host", PEER.replace(':', " ")),
        );
        let check = transmits(&mut a).remove(0);
        assert!(
            Message::parse(&check.payload)
                .unwrap()
                .has(stun_proto::AttributeType::ICE_CONTROLLING)
        );
        let conflict = answer(&check, Class::Error, addr(BASE), Some(487));
        a.handle_datagram(
            now,
            TransportProtocol::Udp,
            addr(PEER),
            addr(BASE),
            &conflict,
        );
        assert!(!a.is_controlling());
        assert_eq!(pair_states(&a, s), [(1, PairStateKind::Waiting)]);
        a.handle_timeout(now + Duration::from_millis(50));
        let retry = transmits(&mut a).remove(0);
        assert!(
            Message::parse(&retry.payload)
                .unwrap()
                .has(stun_proto::AttributeType::ICE_CONTROLLED)
        );

        // §7.2.5.3.1: a mapped address we do not know is a peer-reflexive local candidate.
        let mapped = addr("198.51.100.77:9999");
        let ok = answer(&retry, Class::Success, mapped, None);
        a.handle_datagram(
            now + Duration::from_millis(60),
            TransportProtocol::Udp,
            addr(PEER),
            addr(BASE),
            &ok,
        );
        let view = a.stream(s).unwrap();
        let prflx = view
            .local_candidates()
            .find(|c| c.kind == CandidateType::PeerReflexive)
            .unwrap();
        assert_eq!(prflx.addr(), Some(mapped));
        assert_eq!(prflx.priority, crate::candidate::priority(110, 32_767, 1));
        let pair = view.pairs().next().unwrap();
        assert!(pair.valid);
        assert_eq!(pair.state, PairStateKind::Succeeded);
        assert_eq!(
            pair.local.addr(),
            Some(mapped),
            "the valid pair names the mapped address"
        );
        assert_eq!(view.component_state(1), Some(ComponentState::Connected));
        // Not signalled: peer-reflexive candidates are learnt, not gathered.
        assert!(
            !events(&mut a)
                .iter()
                .any(|e| matches!(e, Event::NewLocalCandidate { .. }))
        );
    }

    #[test]
    fn use_candidate_during_a_check_nominates_on_its_success_7_3_1_5() {
        let (mut a, s) = agent(false);
        let now = t0();
        remote(
            &mut a,
            s,
            &format!("candidate:1 1 udp 2000 {} typ host", PEER.replace(':', " ")),
        );
        let first = transmits(&mut a).remove(0);
        // The controlling peer nominates while our check is in flight: §7.3.1.4 cancels it
        // and triggers a new one; §7.3.1.5 nominates the pair when a check succeeds.
        let req = request(8, Some(1), Some(DeclaredRole::Controlling(1)), true);
        a.handle_datagram(
            now + Duration::from_millis(5),
            TransportProtocol::Udp,
            addr(PEER),
            addr(BASE),
            &req,
        );
        let out = transmits(&mut a);
        assert_eq!(
            out.len(),
            1,
            "the answer; the triggered check waits for its Ta slot"
        );
        a.handle_timeout(now + Duration::from_millis(50));
        let second = transmits(&mut a).remove(0);
        assert_ne!(
            Message::parse(&second.payload).unwrap().transaction_id(),
            Message::parse(&first.payload).unwrap().transaction_id()
        );
        // The answer to the cancelled check still counts (§7.3.1.4).
        let ok = answer(&first, Class::Success, addr(BASE), None);
        a.handle_datagram(
            now + Duration::from_millis(60),
            TransportProtocol::Udp,
            addr(PEER),
            addr(BASE),
            &ok,
        );
        let ev = events(&mut a);
        assert!(
            ev.iter()
                .any(|e| matches!(e, Event::NewSelectedPair { .. })),
            "{ev:?}"
        );
        let view = a.stream(s).unwrap();
        assert_eq!(view.component_state(1), Some(ComponentState::Ready));
        assert_eq!(
            view.selected_pair(1).unwrap().remote.addr(),
            Some(addr(PEER))
        );
    }

    #[test]
    fn a_late_failure_of_a_cancelled_check_keeps_the_selected_pair_7_3_1_4() {
        let (mut a, s) = agent(false);
        let now = t0();
        remote(
            &mut a,
            s,
            &format!("candidate:1 1 udp 2000 {} typ host", PEER.replace(':', " ")),
        );
        let first = transmits(&mut a).remove(0);
        // Nominated while the first check is in flight: it is cancelled, a second one goes.
        let req = request(8, Some(1), Some(DeclaredRole::Controlling(1)), true);
        a.handle_datagram(now, TransportProtocol::Udp, addr(PEER), addr(BASE), &req);
        transmits(&mut a);
        a.handle_timeout(now + Duration::from_millis(50));
        let second = transmits(&mut a).remove(0);
        let ok = answer(&second, Class::Success, addr(BASE), None);
        let t = now + Duration::from_millis(60);
        a.handle_datagram(t, TransportProtocol::Udp, addr(PEER), addr(BASE), &ok);
        let selected = |a: &TestAgent| {
            let p = a.stream(s).unwrap().selected_pair(1).unwrap();
            (p.valid, p.nominated, p.state)
        };
        assert_eq!(selected(&a), (true, true, PairStateKind::Succeeded));
        // A signed failure of the cancelled check arrives late: an error from another
        // address (non-symmetric, §7.2.5.2.1). The later success stands.
        let error = answer(&first, Class::Error, addr(BASE), Some(500));
        let other = addr("203.0.113.9:4001");
        a.handle_datagram(t, TransportProtocol::Udp, other, addr(BASE), &error);
        assert_eq!(selected(&a), (true, true, PairStateKind::Succeeded));
        assert_eq!(a.stats().stale_failures, 1);
        // The transaction is over: the same error from the right address matches nothing.
        a.handle_datagram(t, TransportProtocol::Udp, addr(PEER), addr(BASE), &error);
        assert_eq!(selected(&a), (true, true, PairStateKind::Succeeded));
        assert_eq!(
            a.stream(s).unwrap().component_state(1),
            Some(ComponentState::Ready)
        );
    }

    #[test]
    fn a_cancelled_checks_late_success_does_not_swallow_the_nomination_7_3_1_4() {
        // Found by the matrix at 10% loss. A's check X is in flight when the peer's check
        // arrives on the pair: A answers and its triggered check Y replaces X (§7.3.1.4: X
        // is cancelled, its answer still counts). Y's success makes the pair valid and A
        // nominates it (check N, USE-CANDIDATE). X's answer, arriving late, used to set
        // the pair Succeeded over N, so that N's own answer matched no transaction, the
        // pair stayed "nominating" and the component never selected a pair.
        let (mut a, s) = agent(true);
        remote(
            &mut a,
            s,
            &format!("candidate:1 1 udp 2000 {} typ host", PEER.replace(':', " ")),
        );
        let x = transmits(&mut a).remove(0);
        let t = t0() + Duration::from_millis(10);
        let peer_check = request(1, Some(2000), Some(DeclaredRole::Controlled(1)), false);
        a.handle_datagram(t, TransportProtocol::Udp, addr(PEER), x.source, &peer_check);
        let mut out = transmits(&mut a);
        let t = t0() + Duration::from_millis(50);
        a.handle_timeout(t);
        out.extend(transmits(&mut a));
        let is_check =
            |m: &Transmit| Message::parse(&m.payload).is_ok_and(|m| m.class() == Class::Request);
        let y = out
            .into_iter()
            .find(|m| is_check(m) && m.payload != x.payload)
            .expect("the triggered check Y");
        let ok_y = answer(&y, Class::Success, y.source, None);
        a.handle_datagram(t, TransportProtocol::Udp, addr(PEER), y.source, &ok_y);
        let t = t + Duration::from_millis(50);
        a.handle_timeout(t);
        let n = transmits(&mut a)
            .into_iter()
            .find(|m| {
                Message::parse(&m.payload)
                    .unwrap()
                    .has(stun_proto::AttributeType::USE_CANDIDATE)
            })
            .expect("the nomination N left in the next Ta slot");
        // X's late answer, then N's.
        let ok_x = answer(&x, Class::Success, x.source, None);
        a.handle_datagram(t, TransportProtocol::Udp, addr(PEER), x.source, &ok_x);
        let ok_n = answer(&n, Class::Success, n.source, None);
        a.handle_datagram(t, TransportProtocol::Udp, addr(PEER), n.source, &ok_n);
        let selected = a.stream(s).unwrap().selected_pair(1).map(|p| p.nominated);
        assert_eq!(selected, Some(true));
    }

    #[test]
    fn a_selected_pair_whose_check_fails_is_selected_no_more_8_1_1() {
        // The controlling agent, two interfaces, one peer address: both pairs valid.
        let (wifi, wired) = (addr("192.0.2.1:5000"), addr("192.0.2.2:5000"));
        let mut a = Agent::new(
            AgentConfig {
                controlling: true,
                // Waits for the better pair instead of nominating the first valid one.
                nomination_wait: Duration::from_secs(1),
                ..AgentConfig::default()
            },
            ChaCha20Rng::seed_from_u64(7),
        );
        let s = a.add_stream(1).unwrap();
        let mut view = a.stream_mut(s).unwrap();
        view.set_local_credentials(Credentials::new("LOCL", LOCAL_PWD).unwrap())
            .unwrap();
        view.add_base(1, wifi).unwrap();
        view.add_base(1, wired).unwrap();
        let now = t0();
        a.handle_remote_credentials(now, s, Credentials::new("REMO", REMOTE_PWD).unwrap())
            .unwrap();
        a.handle_gather(now, s).unwrap();
        remote(
            &mut a,
            s,
            &format!("candidate:1 1 udp 2000 {} typ host", PEER.replace(':', " ")),
        );
        let high = transmits(&mut a).remove(0);
        let t = now + Duration::from_millis(50);
        a.handle_timeout(t);
        let low = transmits(&mut a).remove(0);
        assert_eq!((high.source, low.source), (wifi, wired));
        // The lower pair answers first (the agent waits for the better one), then the
        // higher: it is nominated, and selected on the nomination's answer.
        for check in [&low, &high] {
            let ok = answer(check, Class::Success, check.source, None);
            a.handle_datagram(t, TransportProtocol::Udp, addr(PEER), check.source, &ok);
        }
        let t = t + Duration::from_millis(50);
        a.handle_timeout(t);
        let nomination = transmits(&mut a).remove(0);
        let ok = answer(&nomination, Class::Success, wifi, None);
        a.handle_datagram(t, TransportProtocol::Udp, addr(PEER), wifi, &ok);
        let selected = |a: &TestAgent| {
            a.stream(s)
                .unwrap()
                .selected_pair(1)
                .map(|p| (p.local.addr(), p.valid, p.nominated))
        };
        assert_eq!(selected(&a), Some((Some(wifi), true, true)));
        // The first interface goes: the agent fails over to the other valid pair and
        // nominates it; the peer answers that nomination with an error.
        assert_eq!(a.handle_base_removed(t, s, 1, wifi), Ok(true));
        assert_eq!(selected(&a), Some((Some(wired), true, true)));
        let t = t + Duration::from_millis(50);
        a.handle_timeout(t);
        let nomination = transmits(&mut a)
            .into_iter()
            .find(|x| {
                x.source == wired
                    && Message::parse(&x.payload)
                        .unwrap()
                        .has(stun_proto::AttributeType::USE_CANDIDATE)
            })
            .expect("the failover's nomination");
        let error = answer(&nomination, Class::Error, wired, Some(500));
        a.handle_datagram(t, TransportProtocol::Udp, addr(PEER), wired, &error);
        // The failed pair is selected no more: nothing valid is left, so the component
        // checks its remaining pairs again.
        assert_eq!(selected(&a), None);
        let view = a.stream(s).unwrap();
        assert_eq!(view.component_state(1), Some(ComponentState::Connecting));
        assert!(view.pairs().all(|p| !p.valid));
    }

    #[test]
    fn the_401_to_an_unsigned_check_is_at_most_1_6_times_its_size() {
        // docs/hostile-input.md: the smallest check that draws an answer without our
        // password names our ufrag (USERNAME "LOCL:", 32 bytes); its 401 is 52 bytes.
        let (mut a, _) = agent(false);
        let mut b = MessageBuilder::new_bytes(MessageType::BINDING_REQUEST, [6; 12].into());
        b.add(&Username::new("LOCL:").unwrap()).unwrap();
        let bare = b.into_bytes();
        assert_eq!(bare.len(), 32);
        a.handle_datagram(t0(), TransportProtocol::Udp, addr(PEER), addr(BASE), &bare);
        let out = transmits(&mut a);
        let sizes: Vec<usize> = out.iter().map(|t| t.payload.len()).collect();
        assert_eq!(sizes, [52]);
    }

    #[test]
    fn a_signalled_candidate_displaces_a_learnt_one_that_never_worked() {
        let config = AgentConfig {
            max_candidates: 4,
            ..AgentConfig::default()
        };
        let (mut a, s) = agent_with(config, 1);
        let now = t0();
        let source = |i: u8| SocketAddr::from(([198, 51, 100, i], 4000));
        // Signed checks from five sources (a replay from spoofed addresses, say): four are
        // learnt peer-reflexive, the fifth finds the table full. The first one's pair works.
        for i in 1..=5 {
            let req = request(i, Some(1_000), Some(DeclaredRole::Controlling(1)), false);
            a.handle_datagram(now, TransportProtocol::Udp, source(i), addr(BASE), &req);
            let out = transmits(&mut a);
            if i == 1 {
                let check = out
                    .iter()
                    .find(|x| Message::parse(&x.payload).unwrap().class() == Class::Request)
                    .expect("the triggered check");
                let ok = answer(check, Class::Success, addr(BASE), None);
                a.handle_datagram(now, TransportProtocol::Udp, source(1), addr(BASE), &ok);
            }
        }
        let ev = events(&mut a);
        assert!(ev.contains(&Event::Problem(Problem::CandidateLimitReached {
            stream: s
        })));
        let remotes = |a: &TestAgent| -> Vec<SocketAddr> {
            a.stream(s)
                .unwrap()
                .remote_candidates()
                .filter_map(|c| c.addr())
                .collect()
        };
        assert_eq!(remotes(&a), [1, 2, 3, 4].map(source));
        // The peer trickles its real candidates: each displaces the oldest learnt one that
        // never worked (not the first, whose pair succeeded), and is paired.
        let trickle = |a: &mut TestAgent, port: u16| {
            a.handle_remote_candidate(
                now,
                s,
                format!("candidate:7 1 udp 2130706431 203.0.113.9 {port} typ host")
                    .parse()
                    .unwrap(),
            )
        };
        assert_eq!(trickle(&mut a, 4000), Ok(()));
        assert!(
            events(&mut a).contains(&Event::Problem(Problem::PeerReflexiveCandidateEvicted {
                stream: s,
                address: source(2),
            }))
        );
        assert_eq!(remotes(&a), [source(1), source(3), source(4), addr(PEER)]);
        let view = a.stream(s).unwrap();
        assert!(view.pairs().any(|p| p.remote.addr() == Some(addr(PEER))));
        assert!(view.pairs().all(|p| p.remote.addr() != Some(source(2))));
        assert!(
            view.pairs()
                .any(|p| p.remote.addr() == Some(source(1)) && p.valid),
            "the pair that works keeps its candidate"
        );
        assert_eq!(trickle(&mut a, 4001), Ok(()));
        assert_eq!(trickle(&mut a, 4002), Ok(()));
        // Only the candidate that worked is left of the learnt ones: the table is full.
        assert_eq!(
            trickle(&mut a, 4003),
            Err(crate::AgentError::TooManyCandidates)
        );
        assert_eq!(remotes(&a)[0], source(1));
        assert_eq!(remotes(&a).len(), 4);
    }

    #[test]
    fn a_second_component_waits_frozen_for_the_first_6_1_2_6() {
        let config = AgentConfig {
            controlling: true,
            ..AgentConfig::default()
        };
        let (mut a, s) = agent_with(config, 2);
        let now = t0();
        // The peer's two host candidates share a foundation, as ours do.
        remote(
            &mut a,
            s,
            "candidate:9 1 udp 2130706431 203.0.113.9 4000 typ host",
        );
        remote(
            &mut a,
            s,
            "candidate:9 2 udp 2130706430 203.0.113.9 4001 typ host",
        );
        assert_eq!(
            pair_states(&a, s),
            [(1, PairStateKind::InProgress), (2, PairStateKind::Frozen)]
        );
        let check = transmits(&mut a).remove(0);
        // Nothing to do at the next slot: component 2's pair stays Frozen while its
        // foundation is In-Progress.
        a.handle_timeout(now + Duration::from_millis(50));
        assert!(transmits(&mut a).is_empty());
        assert_eq!(pair_states(&a, s)[1], (2, PairStateKind::Frozen));
        // Component 1 succeeds: component 2's pair is unfrozen (§7.2.5.3.3).
        let ok = answer(&check, Class::Success, addr(BASE), None);
        a.handle_datagram(
            now + Duration::from_millis(60),
            TransportProtocol::Udp,
            addr(PEER),
            addr(BASE),
            &ok,
        );
        let states = pair_states(&a, s);
        assert!(
            states.contains(&(2, PairStateKind::Waiting))
                || states.contains(&(2, PairStateKind::InProgress)),
            "{states:?}"
        );
    }

    #[test]
    fn the_check_list_is_bounded_6_1_2_5() {
        let config = AgentConfig {
            max_pairs: 10,
            ..AgentConfig::default()
        };
        let (mut a, s) = agent_with(config, 1);
        for i in 0..15 {
            remote(
                &mut a,
                s,
                &format!(
                    "candidate:{i} 1 udp {} 203.0.113.9 {} typ host",
                    1000 + i,
                    4000 + i
                ),
            );
        }
        let view = a.stream(s).unwrap();
        assert_eq!(view.pairs().count(), 10);
        assert_eq!(view.dropped_pairs(), 5);
        // The best are kept (the highest remote priorities), and the pair whose check is
        // already in flight (the first one).
        let mut kept: Vec<u32> = view.pairs().map(|p| p.remote.priority).collect();
        kept.sort_unstable();
        assert_eq!(
            kept,
            [1000, 1006, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014]
        );
        let ev = events(&mut a);
        assert!(ev.iter().any(|e| matches!(
            e,
            Event::Problem(crate::event::Problem::PairLimitReached { .. })
        )));
    }

    #[test]
    fn an_icmp_error_fails_the_check_at_once_7_2_5_2_2() {
        let (mut a, s) = agent(true);
        let now = t0();
        remote(
            &mut a,
            s,
            &format!("candidate:1 1 udp 2000 {} typ host", PEER.replace(':', " ")),
        );
        assert_eq!(pair_states(&a, s), [(1, PairStateKind::InProgress)]);
        // Another path: nothing changes.
        a.handle_transport_error(now, addr(BASE), addr("203.0.113.9:4001"));
        assert_eq!(pair_states(&a, s), [(1, PairStateKind::InProgress)]);
        a.handle_transport_error(now + Duration::from_millis(1), addr(BASE), addr(PEER));
        assert_eq!(pair_states(&a, s), [(1, PairStateKind::Failed)]);
        a.handle_remote_end_of_candidates(now, s).unwrap();
        // Every pair failed, but the ICE PAC timer (RFC 8863 §4) started with the remote
        // credentials at t0 runs until 39.5 s: only then does the component fail.
        let state = |a: &TestAgent| a.stream(s).unwrap().component_state(1);
        assert_eq!(state(&a), Some(ComponentState::Connecting));
        let pac = now + Duration::from_millis(39_500);
        assert_eq!(a.next_timer(), Some((crate::Timer::Patience, pac)));
        a.handle_timeout(pac - Duration::from_millis(1));
        assert_eq!(state(&a), Some(ComponentState::Connecting));
        a.handle_timeout(pac);
        assert_eq!(state(&a), Some(ComponentState::Failed));
    }

    #[test]
    fn an_icmp_error_fails_no_valid_pair() {
        // The error is unauthenticated: a pair an authenticated answer made valid stays
        // valid, even with a check in flight on its path.
        let (mut a, s) = agent(true);
        let now = t0();
        remote(
            &mut a,
            s,
            &format!("candidate:1 1 udp 2000 {} typ host", PEER.replace(':', " ")),
        );
        let check = transmits(&mut a).remove(0);
        let ok = answer(&check, Class::Success, addr(BASE), None);
        a.handle_datagram(now, TransportProtocol::Udp, addr(PEER), addr(BASE), &ok);
        // Valid: the nomination goes at the next Ta slot.
        a.handle_timeout(now + Duration::from_millis(50));
        let nomination = transmits(&mut a).remove(0);
        assert!(
            Message::parse(&nomination.payload)
                .unwrap()
                .has(stun_proto::AttributeType::USE_CANDIDATE)
        );
        let pair = |a: &TestAgent| {
            let p = a.stream(s).unwrap().pairs().next().unwrap();
            (p.state, p.valid)
        };
        assert_eq!(pair(&a), (PairStateKind::InProgress, true));
        a.handle_transport_error(now + Duration::from_millis(60), addr(BASE), addr(PEER));
        assert_eq!(pair(&a), (PairStateKind::InProgress, true));
    }

    #[test]
    fn a_signalled_candidate_replaces_the_peer_reflexive_one_learnt_first() {
        let (mut a, s) = agent(false);
        let now = t0();
        let req = request(9, Some(1_000), Some(DeclaredRole::Controlling(1)), false);
        a.handle_datagram(now, TransportProtocol::Udp, addr(PEER), addr(BASE), &req);
        let before = a.stream(s).unwrap().pairs().next().unwrap().priority;
        // Trickled late: the same address as a host candidate.
        remote(
            &mut a,
            s,
            &format!(
                "candidate:7 1 udp 2130706431 {} typ host",
                PEER.replace(':', " ")
            ),
        );
        let view = a.stream(s).unwrap();
        let remotes: Vec<_> = view.remote_candidates().collect();
        assert_eq!(remotes.len(), 1, "no second candidate at the same address");
        assert_eq!(remotes[0].kind, CandidateType::Host);
        assert_eq!(remotes[0].foundation, "7");
        let pairs: Vec<_> = view.pairs().collect();
        assert_eq!(pairs.len(), 1);
        assert!(
            pairs[0].priority > before,
            "re-ranked with the signalled priority"
        );
        assert_eq!(
            pairs[0].priority,
            crate::pair_priority(2_130_706_431, crate::candidate::priority(126, 32_767, 1))
        );
    }

    #[test]
    fn the_controlled_agent_selects_the_best_nominated_pair_8_1_1() {
        // A peer nominating several pairs (aggressive nomination of RFC 5245): the controlled
        // agent selects the highest-priority nominated valid pair, and switches up.
        let (mut a, s) = agent(false);
        let now = t0();
        let (low, high) = (addr("203.0.113.9:4001"), addr("203.0.113.9:4000"));
        remote(
            &mut a,
            s,
            "candidate:1 1 udp 2130706431 203.0.113.9 4000 typ host",
        );
        remote(
            &mut a,
            s,
            "candidate:2 1 udp 1000 203.0.113.9 4001 typ host",
        );
        // Our checks on both pairs succeed.
        let mut t = now;
        let mut answered = 0;
        while answered < 2 {
            for check in transmits(&mut a) {
                let ok = answer(&check, Class::Success, addr(BASE), None);
                a.handle_datagram(
                    t,
                    TransportProtocol::Udp,
                    check.destination,
                    addr(BASE),
                    &ok,
                );
                answered += 1;
            }
            t += Duration::from_millis(50);
            a.handle_timeout(t);
        }
        assert!(a.stream(s).unwrap().pairs().all(|p| p.valid));
        while a.poll_event().is_some() {}
        let nominate = |a: &mut TestAgent, from: SocketAddr, tid: u8| {
            let req = request(tid, Some(1), Some(DeclaredRole::Controlling(1)), true);
            a.handle_datagram(t, TransportProtocol::Udp, from, addr(BASE), &req);
            std::iter::from_fn(|| a.poll_event())
                .filter_map(|e| match e {
                    Event::NewSelectedPair { remote, .. } => remote.addr(),
                    _ => None,
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(nominate(&mut a, low, 20), [low]);
        assert_eq!(nominate(&mut a, high, 21), [high]);
        // A lower nomination afterwards changes nothing while the selected pair works: the
        // agent probes it with a consent check at once, and its answer keeps it.
        while !transmits(&mut a).is_empty() {}
        assert_eq!(nominate(&mut a, low, 22), []);
        let out = transmits(&mut a);
        let probe = out
            .iter()
            .find(|x| {
                x.destination == high
                    && Message::parse(&x.payload).unwrap().class() == Class::Request
            })
            .expect("a consent check on the selected pair");
        let ok = answer(probe, Class::Success, addr(BASE), None);
        a.handle_datagram(t, TransportProtocol::Udp, high, addr(BASE), &ok);
        a.handle_timeout(t + Duration::from_secs(1));
        let selected = |a: &TestAgent| a.stream(s).unwrap().selected_pair(1).unwrap().remote.addr();
        assert_eq!(selected(&a), Some(high));
        assert!(
            events(&mut a)
                .iter()
                .all(|e| !matches!(e, Event::NewSelectedPair { .. }))
        );
        // Nominated low again with the selected pair silent: after the probe's RTO (500 ms)
        // the selected pair is taken as failed and the nominated one selected (a failover).
        let t2 = t + Duration::from_secs(2);
        let req = request(23, Some(1), Some(DeclaredRole::Controlling(1)), true);
        a.handle_datagram(t2, TransportProtocol::Udp, low, addr(BASE), &req);
        assert_eq!(
            a.next_timer(),
            Some((crate::Timer::Failover, t2 + Duration::from_millis(500)))
        );
        a.handle_timeout(t2 + Duration::from_millis(499));
        assert_eq!(selected(&a), Some(high));
        a.handle_timeout(t2 + Duration::from_millis(500));
        assert_eq!(selected(&a), Some(low));
    }
}
