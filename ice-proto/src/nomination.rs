//! Nomination and the selected pair (RFC 8445 §8): regular nomination by the controlling
//! agent (§8.1.1: once a stopping criterion holds, a check with USE-CANDIDATE on the best
//! valid pair), the controlled agent's view (§7.3.1.5 marks pairs nominated; §8.1.1 the
//! highest-priority nominated pair is selected), the end of checks for a component once it
//! has a nominated pair (§8.1.2), check-list completion and failure (§8.1.2, RFC 8838 §14),
//! and the states the application sees (libnice component states, W3C overall state).
//!
//! The stopping criterion: nominate the best valid pair of a component as soon as no pending
//! pair of the component has a higher priority, or `nomination_wait` after its first valid
//! pair, whichever comes first. The default wait is 0 — nominate the first valid pair, then
//! move up by re-nomination — so that the time to the first selected pair is one check
//! round trip after the first success, not a fixed second.
//!
//! Re-nomination (`AgentConfig::renomination`, on by default; beyond §8.1.1, which
//! changes the nominated pair only by an ICE restart, yet interoperable because §8.1.1 has a
//! controlled agent nominated more than once select the highest-priority pair): after selection, the pairs of higher
//! priority than the selected one stay in the schedule on both sides ([`Gate`]); as soon as
//! one of them is valid and no nomination is in flight, the controlling agent nominates it
//! (USE-CANDIDATE). Both sides then select it — the controlled side always selects its
//! highest-priority nominated valid pair — with a new `Event::NewSelectedPair`, and data
//! follows. Each switch goes strictly up in priority, so a component switches at most once
//! per pair.

use std::time::Instant;

use rand_core::{CryptoRng, RngCore};
use stun_proto::time::saturating_add;

use crate::agent::Agent;
use crate::checklist::ChecklistState;
use crate::checklist::PairState;
use crate::config::NominationMode;
use crate::consent::Consent;
use crate::event::{ComponentState, ConnectionState, Event, FailureReason};
use crate::stream::{Component, Gathering, Patience, Stream, StreamId};

/// Which pairs of a component may still be checked or formed, given its selected pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Gate {
    /// No pair is selected: every pair.
    All,
    /// A pair of this priority is selected and re-nomination is on: the pairs above it.
    Above(u64),
    /// A pair is selected and re-nomination is off: none (§8.1.2).
    Closed,
}

impl Gate {
    /// The gate of `component` in `st`.
    pub(crate) fn of(st: &Stream, component: u16, renomination: bool) -> Self {
        let Some(selected) = st.component(component).and_then(|c| c.selected) else {
            return Gate::All;
        };
        match st.checklist.get(selected) {
            Some(p) if renomination => Gate::Above(p.priority()),
            Some(_) => Gate::Closed,
            None => Gate::All,
        }
    }

    /// Whether a pair of `priority` passes.
    pub(crate) fn admits(self, priority: u64) -> bool {
        match self {
            Gate::All => true,
            Gate::Above(floor) => priority > floor,
            Gate::Closed => false,
        }
    }
}

impl<R: RngCore + CryptoRng> Agent<R> {
    /// The gate of a component (see [`Gate`]).
    pub(crate) fn gate(&self, st: &Stream, component: u16) -> Gate {
        // While the controlling agent doubts its selected pair (a probe, `network.rs`),
        // every pair may be formed and checked: one of them is where it fails over to.
        let probing = st.component(component).is_some_and(|c| c.probe.is_some());
        if self.controlling && probing {
            return Gate::All;
        }
        Gate::of(st, component, self.config.renomination)
    }

    /// When the controlling agent nominates `c` at the latest, if it is waiting to.
    pub(crate) fn nomination_deadline(&self, st: &Stream, c: &Component) -> Option<Instant> {
        let aggressive = self.config.nomination == NominationMode::Aggressive;
        if !self.controlling || aggressive || c.selected.is_some() {
            return None;
        }
        if c.state == ComponentState::Failed {
            return None;
        }
        let busy = st
            .checklist
            .pairs()
            .iter()
            .any(|p| p.component() == c.id && (p.nominating() || p.nominated()));
        if busy || st.checklist.best_valid(c.id).is_none() {
            return None;
        }
        c.first_valid_at
            .map(|t| saturating_add(t, self.config.nomination_wait))
    }

    /// Re-nomination: the valid pair of `c` to nominate in place of its selected pair — the
    /// best valid pair, when it ranks above the selected one and no nomination is in flight.
    fn renomination_target(&self, st: &Stream, c: &Component) -> Option<crate::checklist::PairId> {
        if !self.controlling || c.state == ComponentState::Failed {
            return None;
        }
        let Gate::Above(floor) = self.gate(st, c.id) else {
            return None;
        };
        let nominating = st
            .checklist
            .pairs()
            .iter()
            .any(|p| p.component() == c.id && p.nominating());
        let best = st.checklist.best_valid(c.id)?;
        (!nominating && !best.nominated() && best.priority() > floor).then_some(best.id())
    }

    /// §8.1.1: the controlling agent nominates where its stopping criterion holds.
    pub(crate) fn nominate(&mut self, now: Instant) {
        // Aggressive nomination: every check already carries USE-CANDIDATE.
        if !self.controlling || self.config.nomination == NominationMode::Aggressive {
            return;
        }
        for s in 0..self.streams.len() {
            for i in 0..self.streams[s].components.len() {
                let st = &self.streams[s];
                let c = &st.components[i];
                if let Some(id) = self.renomination_target(st, c) {
                    // A valid pair above the selected one: nominate it at once.
                    let until = saturating_add(now, self.check_rto());
                    self.streams[s].checklist.nominate(id, until);
                    continue;
                }
                let Some(deadline) = self.nomination_deadline(st, c) else {
                    continue;
                };
                let Some(best) = st.checklist.best_valid(c.id) else {
                    continue;
                };
                let better_pending = st.checklist.has_pending_above(c.id, best.priority());
                if better_pending && now < deadline {
                    continue;
                }
                let id = best.id();
                let until = saturating_add(now, self.check_rto());
                self.streams[s].checklist.nominate(id, until);
            }
        }
    }

    /// Selects the highest-priority nominated valid pair of `component` (§8.1.1), if it is
    /// not the selected one already; starts consent on it and stops the component's other
    /// checks (§8.1.2).
    pub(crate) fn select(&mut self, now: Instant, s: usize, component: u16) {
        let st = &self.streams[s];
        let Some(best) = st.checklist.best_nominated(component) else {
            return;
        };
        let Some(c) = st.component(component) else {
            return;
        };
        if c.selected == Some(best.id()) {
            return;
        }
        let (id, base, remote_addr, priority) =
            (best.id(), best.base(), best.remote_addr(), best.priority());
        let local = st
            .local
            .get(best.valid_local().unwrap_or(best.local()))
            .map(|l| l.candidate.clone());
        let remote = st
            .remote_candidates
            .get(best.remote())
            .map(|r| r.candidate.clone());
        let (Some(local), Some(remote)) = (local, remote) else {
            return;
        };
        let consent = self
            .config
            .consent_interval
            .map(|base| Consent::new(now, Consent::interval(&mut self.rng, base)));
        let keep_above = self.config.renomination.then_some(priority);
        let st = &mut self.streams[s];
        st.checklist.stop_component(component, keep_above);
        // The call may last hours: the tables keep what they hold, not the room they grew.
        st.checklist.compact();
        st.local.shrink_to_fit();
        st.remote_candidates.shrink_to_fit();
        if let Some(c) = st.component_mut(component) {
            c.selected = Some(id);
            c.previous = None;
            c.consent = consent;
            c.last_sent = Some(now);
        }
        self.retry_above_selected(s);
        self.push_event(Event::NewSelectedPair {
            stream: StreamId(s),
            component,
            local,
            remote,
        });
        self.set_component_state(s, component, ComponentState::Ready, None);
        // A relayed pair's data goes as ChannelData from now on (RFC 8656 §12).
        self.relay_bind(now, base, remote_addr);
    }

    /// Changes a component's state, with an event.
    pub(crate) fn set_component_state(
        &mut self,
        s: usize,
        component: u16,
        state: ComponentState,
        reason: Option<FailureReason>,
    ) {
        let Some(c) = self
            .streams
            .get_mut(s)
            .and_then(|st| st.component_mut(component))
        else {
            return;
        };
        if c.state == state || c.state == ComponentState::Failed {
            return;
        }
        c.state = state;
        self.push_event(Event::ComponentStateChanged {
            stream: StreamId(s),
            component,
            state,
            reason,
        });
    }

    /// Component failure (every pair failed once both sides gathered everything and the ICE
    /// PAC timer expired, RFC 8863 §4), check-list states, and the overall state.
    pub(crate) fn update_states(&mut self, now: Instant) {
        for s in 0..self.streams.len() {
            if let Patience::Until(at) = self.streams[s].patience {
                if now >= at {
                    self.streams[s].patience = Patience::Expired;
                }
            }
            for i in 0..self.streams[s].components.len() {
                let st = &self.streams[s];
                let c = &st.components[i];
                let exhausted = c.selected.is_none()
                    && st.patience == Patience::Expired
                    && c.state != ComponentState::Failed
                    && (c.gathering_done || st.gathering == Gathering::Done)
                    && st.remote_end_of_candidates
                    && st.remote.is_some()
                    && !st.checklist.has_pending(c.id)
                    && st.checklist.best_valid(c.id).is_none();
                if exhausted {
                    let id = c.id;
                    self.set_component_state(
                        s,
                        id,
                        ComponentState::Failed,
                        Some(FailureReason::ChecksFailed),
                    );
                }
            }
            let st = &mut self.streams[s];
            st.checklist.state = if st
                .components
                .iter()
                .any(|c| c.state == ComponentState::Failed)
            {
                ChecklistState::Failed
            } else if st.components.iter().all(|c| c.selected.is_some()) {
                ChecklistState::Completed
            } else {
                ChecklistState::Running
            };
        }
        let state = self.overall_state(now);
        self.set_state(state);
    }

    /// Whether component `c` of `st` has lost hope of a path short of a new candidate or a
    /// late answer (`AgentConfig::checks_unanswered_after`): `None` while it has not (a
    /// pair valid, Frozen or Waiting; candidates still to come from either side; selected;
    /// failed; ICE-lite, which checks nothing), otherwise the instant from which it has —
    /// `Some(None)` when every pair failed or there is none, `Some(Some(t))` when the last
    /// check in flight counts as unanswered at `t`.
    pub(crate) fn hopeless_since(&self, st: &Stream, c: &Component) -> Option<Option<Instant>> {
        let gathered = c.gathering_done || st.gathering == Gathering::Done;
        let settled = c.selected.is_none()
            && c.state != ComponentState::Failed
            && !self.config.lite
            && gathered
            && st.remote_end_of_candidates
            && st.remote.is_some();
        if !settled {
            return None;
        }
        let mut latest = None;
        for p in st
            .checklist
            .pairs()
            .iter()
            .filter(|p| p.component() == c.id)
        {
            match &p.state() {
                _ if p.valid() => return None,
                PairState::Failed => {}
                PairState::InProgress(f) => {
                    let at =
                        saturating_add(f.backoff.first_sent(), self.config.checks_unanswered_after);
                    latest = latest.max(Some(at));
                }
                PairState::Frozen | PairState::Waiting | PairState::Succeeded => return None,
            }
        }
        Some(latest)
    }

    /// The W3C `RTCIceConnectionState` of the agent's components.
    fn overall_state(&self, now: Instant) -> ConnectionState {
        if self.closed {
            return ConnectionState::Closed;
        }
        let components = || self.streams.iter().flat_map(|st| st.components.iter());
        if components().next().is_none() {
            return ConnectionState::New;
        }
        if components().any(|c| c.state == ComponentState::Failed) {
            return ConnectionState::Failed;
        }
        let stale = components().any(|c| {
            c.consent.as_ref().is_some_and(|k| {
                saturating_add(k.last_fresh, self.config.disconnected_after) <= now
            })
        });
        // Before RFC 8863's failure: no path now (`hopeless_since`).
        let hopeless = self.streams.iter().filter(|st| !st.removed).any(|st| {
            st.components.iter().any(|c| {
                self.hopeless_since(st, c)
                    .is_some_and(|at| at.is_none_or(|at| at <= now))
            })
        });
        if stale || hopeless {
            return ConnectionState::Disconnected;
        }
        if components().all(|c| c.state == ComponentState::Ready) {
            return ConnectionState::Completed;
        }
        if components()
            .all(|c| matches!(c.state, ComponentState::Connected | ComponentState::Ready))
        {
            return ConnectionState::Connected;
        }
        if components().any(|c| {
            matches!(
                c.state,
                ComponentState::Connecting | ComponentState::Connected | ComponentState::Ready
            )
        }) {
            return ConnectionState::Checking;
        }
        ConnectionState::New
    }
}
