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
use stun_proto::{Message, TransactionId};

use crate::agent::Agent;
use crate::candidate::{Candidate, CandidateType, priority};
use crate::check::{
    CheckOutcome, CheckRequest, DeclaredRole, build_error, build_request, build_success,
    read_request, read_response,
};
use crate::event::{ComponentState, Event, Problem};
use crate::pair::{Expiry, InFlight, PairId, PairState};
use crate::received::{DropReason, Received};
use crate::stream::{RemoteCandidate, StreamId};

/// The least RTO of a check (§14.3).
const MIN_RTO: Duration = Duration::from_millis(500);

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
                    .filter(|p| matches!(p.state, PairState::Waiting | PairState::InProgress(_)))
                    .count()
            })
            .sum();
        MIN_RTO.max(self.config.ta * u32::try_from(n).unwrap_or(u32::MAX))
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
            let mut resend = Vec::new();
            for p in self.streams[s].checklist.pairs_mut() {
                let PairState::InProgress(f) = &mut p.state else {
                    continue;
                };
                if !f.is_expired(now) {
                    continue;
                }
                match f.on_expired(now, rc, rm, max) {
                    Expiry::Retransmit => resend.push((p.base, p.remote_addr, f.request.clone())),
                    Expiry::GiveUp => {
                        p.state = PairState::Failed;
                        p.valid = false;
                        p.nominating = false;
                    }
                }
            }
            for (source, destination, payload) in resend {
                self.stats.retransmissions += 1;
                self.push_transmit(now, source, destination, payload);
            }
        }
    }

    /// Whether some check list has a pair to check for a component still looking for one.
    fn has_check_work(&self) -> bool {
        self.streams.iter().any(|st| {
            st.remote.is_some()
                && st.checklist.pairs().iter().any(|p| {
                    matches!(p.state, PairState::Waiting | PairState::Frozen)
                        && st.component(p.component).is_some_and(|c| {
                            c.selected.is_none() && c.state != ComponentState::Failed
                        })
                })
        })
    }

    /// Sends the next check if its Ta slot has come (§6.1.4.2), round-robin over the
    /// streams' check lists.
    pub(crate) fn pace_checks(&mut self, now: Instant) {
        let due = self.last_check_at.map_or(now, |t| t + self.config.ta);
        if !self.has_check_work() {
            self.next_check_at = None;
            return;
        }
        if due > now {
            self.next_check_at = Some(due);
            return;
        }
        let mut active = Vec::new();
        for st in &self.streams {
            st.checklist.active_foundations(&mut active);
        }
        let n = self.streams.len();
        for i in 0..n {
            let s = (self.round_robin + i) % n;
            let st = &mut self.streams[s];
            if st.remote.is_none() {
                continue;
            }
            let components = &st.components;
            let skip = |c: u16| {
                usize::from(c)
                    .checked_sub(1)
                    .and_then(|i| components.get(i))
                    .is_none_or(|k| k.selected.is_some() || k.state == ComponentState::Failed)
            };
            if let Some(id) = st.checklist.next_check(&active, skip) {
                self.round_robin = s + 1;
                self.send_check(now, s, id);
                self.last_check_at = Some(now);
                self.next_check_at = Some(now + self.config.ta);
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
        let Some(local) = st.local.get(pair.local) else {
            return;
        };
        let component = pair.component;
        // §7.1.1: the priority a peer-reflexive candidate of this base would have.
        let local_pref = (local.candidate.priority >> 8) as u16;
        let prflx = priority(
            CandidateType::PeerReflexive.preference(),
            local_pref,
            component,
        );
        let use_candidate = controlling && pair.nominating;
        let check = CheckRequest {
            username: &remote.username,
            priority: prflx,
            role,
            use_candidate,
        };
        let (base, destination) = (pair.base, pair.remote_addr);
        let request = build_request(tid, &check, &remote.key);
        let Some(pair) = st.checklist.get_mut(id) else {
            return;
        };
        let Ok(request) = request else {
            pair.state = PairState::Failed;
            return;
        };
        pair.state = PairState::InProgress(InFlight::new(
            now,
            tid,
            request.clone(),
            rto,
            use_candidate,
            controlling,
        ));
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
            .position(|st| st.local_credentials.ufrag == check.local_ufrag)
        else {
            self.stats.unknown_username += 1;
            return Received::Dropped(DropReason::UnknownUsername);
        };
        if message
            .verify_integrity(&self.streams[s].local_key)
            .is_err()
        {
            self.stats.bad_integrity += 1;
            return Received::Dropped(DropReason::BadIntegrity);
        }
        let key = self.streams[s].local_key.clone();
        let Some(local) = self.streams[s].local.iter().position(|l| {
            l.base == destination
                && matches!(
                    l.candidate.kind,
                    CandidateType::Host | CandidateType::Relayed
                )
        }) else {
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
        let Some(c) = self.streams[s].component(component) else {
            return Received::Stun;
        };
        let selected = c.selected.is_some();
        // §7.3.1.3: a source address that is no remote candidate is peer-reflexive.
        let remote = self.remote_for(s, component, source, priority);
        let Some(remote) = remote else {
            return Received::Stun;
        };
        let existing = self.streams[s]
            .checklist
            .pairs()
            .iter()
            .find(|p| p.base == destination && p.remote_addr == source)
            .map(|p| p.id);
        let Some(id) = existing.or_else(|| self.make_pair(s, local, remote)) else {
            return Received::Stun;
        };
        let until = now + self.check_rto() * 16;
        let controlling = self.controlling;
        let st = &mut self.streams[s];
        let Some(pair) = st.checklist.get_mut(id) else {
            return Received::Stun;
        };
        // §7.3.1.4: triggered checks, unless the component already has its pair.
        let succeeded = pair.state == PairState::Succeeded;
        if !selected && !succeeded {
            st.checklist.trigger(id, until);
        }
        // §7.3.1.5: USE-CANDIDATE on the controlled side.
        if check.use_candidate && !controlling {
            let Some(pair) = st.checklist.get_mut(id) else {
                return Received::Stun;
            };
            if pair.valid && succeeded {
                pair.nominated = true;
                self.select(now, s, component);
            } else {
                pair.nominate_on_success = true;
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
            candidate,
            addr: source,
        });
        Some(st.remote_candidates.len() - 1)
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
            self.stats.bad_integrity += 1;
            return Received::Dropped(DropReason::BadIntegrity);
        }
        self.stats.responses_received += 1;
        st.checklist.cancelled.retain(|c| c.tid != tid);
        let Some(pair) = st.checklist.get_mut(id) else {
            return Received::Stun;
        };
        // §7.2.5.2.1: the response must come from where the request went, to where it
        // came from.
        if source != pair.remote_addr || destination != pair.base {
            pair.state = PairState::Failed;
            pair.valid = false;
            pair.nominating = false;
            return Received::Stun;
        }
        match read_response(message) {
            CheckOutcome::RoleConflict => {
                // §7.2.5.1: switch to the role opposite to the one the request declared,
                // and check the pair again.
                if sent_controlling == self.controlling {
                    self.switch_role(!sent_controlling);
                }
                let until = now + self.check_rto();
                self.streams[s].checklist.trigger(id, until);
            }
            CheckOutcome::Error(_) => {
                pair.state = PairState::Failed;
                pair.valid = false;
                pair.nominating = false;
            }
            CheckOutcome::Success(mapped) => {
                self.on_check_success(now, s, id, use_candidate, mapped);
            }
        }
        Received::Stun
    }

    /// A successful check (§7.2.5.3).
    fn on_check_success(
        &mut self,
        now: Instant,
        s: usize,
        id: PairId,
        use_candidate: bool,
        mapped: SocketAddr,
    ) {
        let controlling = self.controlling;
        let Some(pair) = self.streams[s].checklist.get(id) else {
            return;
        };
        let (component, base, local, foundation) =
            (pair.component, pair.base, pair.local, pair.foundation);
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
        let Some(pair) = self.streams[s].checklist.get_mut(id) else {
            return;
        };
        // §7.2.5.3.2: the valid list; §7.2.5.3.3: the pair succeeded.
        pair.state = PairState::Succeeded;
        pair.valid = true;
        pair.valid_local = Some(valid_local);
        let nominated =
            (use_candidate && controlling) || (!controlling && pair.nominate_on_success);
        if use_candidate {
            pair.nominating = false;
        }
        if nominated {
            pair.nominated = true;
            pair.nominate_on_success = false;
        }
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
