//! Connectivity checks (RFC 8445 §6.1.4, §7), in three parts: here, sending a check at
//! each Ta slot (§6.1.4.2, §7.2.4) with the RTO of §14.3 and RFC 8489 retransmissions; in
//! `request.rs`, answering the peer's checks (§7.3); in `response.rs`, processing the
//! answers to ours (§7.2.5). Each changes pairs only through the check list's transitions
//! (`checklist`).

use std::time::{Duration, Instant};

use rand_core::{CryptoRng, RngCore};
use stun_proto::TransactionId;
use stun_proto::backoff::{Backoff, Schedule};
use stun_proto::time::saturating_add;

use crate::agent::Agent;
use crate::candidate::{CandidateType, priority};
use crate::check::{CheckRequest, DeclaredRole, build_request};
use crate::checklist::{InFlight, Pair, PairId, PairState};
use crate::config::NominationMode;
use crate::event::ComponentState;
use crate::nomination::Gate;

mod request;
mod response;
#[cfg(test)]
mod tests;

/// The least RTO of a check (§14.3).
const MIN_RTO: Duration = Duration::from_millis(500);
/// How many transactions our nomination of a valid pair gets before the pair fails (RFC
/// 8445 §7.2.5.2 fails it at the first timeout). The pair is known to work both ways, and
/// the controlled agent selects it on the request (§7.3.1.5), so on a lossy path the peer
/// may well be using it while every answer was lost; failing it would leave the two sides on
/// different pairs, ours the worse. Consent watches the pair once it is selected.
const NOMINATION_ROUNDS: u8 = 3;
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

    /// The retransmission schedule of a check (RFC 8489 §6.2.1 with RFC 8445's Rc and Rm).
    pub(crate) const fn check_schedule(&self) -> Schedule {
        Schedule {
            request_count: self.config.check_request_count,
            last_wait_factor: self.config.check_last_wait_factor,
            max_rto: self.config.check_max_rto,
        }
    }

    /// Retransmits checks whose RTO expired; fails those out of retransmissions.
    pub(crate) fn retransmit_checks(&mut self, now: Instant) {
        let schedule = self.check_schedule();
        for s in 0..self.streams.len() {
            self.streams[s].checklist.expire_cancelled(now);
            let (mut resend, mut timed_out) = (Vec::new(), Vec::new());
            self.streams[s]
                .checklist
                .expire_checks(now, &schedule, &mut resend, &mut timed_out);
            for (source, destination, payload) in resend {
                self.stats.retransmissions += 1;
                self.push_transmit(now, source, destination, payload);
            }
            let until = saturating_add(now, self.check_rto());
            for id in timed_out {
                // A nomination unanswered on a valid pair is sent again before the pair
                // fails (see `NOMINATION_ROUNDS`).
                let checklist = &mut self.streams[s].checklist;
                if !checklist.retry_nomination(id, until, NOMINATION_ROUNDS) {
                    self.fail_pair(now, s, id);
                }
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
        let schedule = self.check_schedule();
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
        let check = InFlight {
            tid,
            request: request.clone(),
            use_candidate,
            controlling,
            backoff: Backoff::start(now, rto, &schedule),
        };
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
}
