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

use rand_core::RngCore;
use stun_proto::time::saturating_add;

use crate::checklist::{ChecklistState, PairId, PairState};
use crate::config::{AgentConfig, NominationMode};
use crate::context::{Ctx, Intent};
use crate::event::{ComponentState, ConnectionState, Event, FailureReason};
use crate::freshness::Consent;
use crate::stream::{Component, Gathering, Patience, Stream};

/// Which pairs of a component may still be checked or formed, given its selected pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Gate {
    /// No pair is selected: every pair.
    All,
    /// A pair is selected and re-nomination is on: the pairs whose priority is above this
    /// one, the selected pair's valid-pair priority (a pair checked from a host base may
    /// end up a valid pair of a server-reflexive candidate, ranked lower, but never higher:
    /// what might beat the selected pair is what ranks above it as checked).
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
            Some(p) if renomination => Gate::Above(p.valid_priority()),
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

impl Stream {
    /// The gate of `component` (see [`Gate`]).
    pub(crate) fn gate(&self, component: u16, controlling: bool, config: &AgentConfig) -> Gate {
        // While the controlling agent doubts its selected pair (a probe, `network.rs`),
        // every pair may be formed and checked: one of them is where it fails over to.
        let probing = self.component(component).is_some_and(|c| c.probe.is_some());
        if controlling && probing {
            return Gate::All;
        }
        Gate::of(self, component, config.renomination)
    }

    /// When the controlling agent nominates `c` at the latest, if it is waiting to.
    pub(crate) fn nomination_deadline(
        &self,
        c: &Component,
        controlling: bool,
        config: &AgentConfig,
    ) -> Option<Instant> {
        let aggressive = config.nomination == NominationMode::Aggressive;
        if !controlling || aggressive || c.selected.is_some() {
            return None;
        }
        if c.state == ComponentState::Failed {
            return None;
        }
        let best = self.checklist.best_valid(c.id)?.valid_priority();
        // A nomination in flight on a lower pair does not hold back a better valid one: on
        // a lossy path (a relay to a relay loses most of its round trips at 10% per link) it
        // may take its every retransmission, and the better pair is nominated meanwhile —
        // strictly upwards, as re-nomination goes.
        let busy = self.checklist.pairs().iter().any(|p| {
            p.component() == c.id && (p.nominating() || p.nominated()) && p.valid_priority() >= best
        });
        if busy {
            return None;
        }
        c.first_valid_at
            .map(|t| saturating_add(t, config.nomination_wait))
    }

    /// Re-nomination: the valid pair of `c` to nominate in place of its selected pair — the
    /// best valid pair, when it ranks above the selected one (valid pairs by their valid-pair
    /// priority, as the peer ranks them) and no nomination is in flight.
    fn renomination_target(&self, c: &Component, config: &AgentConfig) -> Option<PairId> {
        if c.state == ComponentState::Failed {
            return None;
        }
        let Gate::Above(floor) = self.gate(c.id, true, config) else {
            return None;
        };
        let nominating = self
            .checklist
            .pairs()
            .iter()
            .any(|p| p.component() == c.id && p.nominating());
        let best = self.checklist.best_valid(c.id)?;
        (!nominating && !best.nominated() && best.valid_priority() > floor).then_some(best.id())
    }

    /// §8.1.1: the controlling agent nominates where its stopping criterion holds.
    pub(crate) fn nominate<R>(&mut self, ctx: &mut Ctx<'_, R>) {
        // Aggressive nomination: every check already carries USE-CANDIDATE.
        if !ctx.role.controlling || ctx.config.nomination == NominationMode::Aggressive {
            return;
        }
        for i in 0..self.components.len() {
            let c = &self.components[i];
            let id = match self.renomination_target(c, ctx.config) {
                // A valid pair above the selected one: nominate it at once.
                Some(id) => id,
                None => {
                    let Some(deadline) = self.nomination_deadline(c, true, ctx.config) else {
                        continue;
                    };
                    let Some(best) = self.checklist.best_valid(c.id) else {
                        continue;
                    };
                    let better_pending = self.checklist.has_pending_above(c.id, best.priority());
                    if better_pending && ctx.now < deadline {
                        continue;
                    }
                    best.id()
                }
            };
            let until = saturating_add(ctx.now, self.check_rto(ctx));
            self.checklist.nominate(id, until);
        }
    }

    /// Selects the highest-priority nominated valid pair of `component` (§8.1.1), if it is
    /// not the selected one already; starts consent on it and stops the component's other
    /// checks (§8.1.2).
    pub(crate) fn select<R: RngCore>(&mut self, ctx: &mut Ctx<'_, R>, component: u16) {
        let Some(best) = self.checklist.best_nominated(component) else {
            return;
        };
        let Some(c) = self.component(component) else {
            return;
        };
        if c.selected == Some(best.id()) {
            return;
        }
        let (id, base, remote_addr, priority) = (
            best.id(),
            best.base(),
            best.remote_addr(),
            best.valid_priority(),
        );
        let local = self
            .local
            .get(best.valid_local().unwrap_or(best.local()))
            .map(|l| l.candidate.clone());
        let remote = self
            .remote_candidates
            .get(best.remote())
            .map(|r| r.candidate.clone());
        let (Some(local), Some(remote)) = (local, remote) else {
            return;
        };
        let consent = ctx
            .config
            .consent_interval
            .map(|base| Consent::new(ctx.now, Consent::interval(ctx.rng, base)));
        let keep_above = ctx.config.renomination.then_some(priority);
        self.checklist.stop_component(component, keep_above);
        if ctx.role.controlling {
            let until = saturating_add(ctx.now, self.check_rto(ctx).saturating_mul(16));
            self.checklist
                .abandon_nominations_below(component, priority, until);
        }
        // The call may last hours: the tables keep what they hold, not the room they grew.
        self.checklist.compact();
        self.local.shrink_to_fit();
        self.remote_candidates.shrink_to_fit();
        let now = ctx.now;
        if let Some(c) = self.component_mut(component) {
            c.selected = Some(id);
            c.previous = None;
            c.consent = consent;
            c.last_sent = Some(now);
        }
        self.retry_above_selected(ctx);
        ctx.event(Event::NewSelectedPair {
            stream: self.id,
            component,
            local,
            remote,
        });
        self.set_component_state(ctx, component, ComponentState::Ready, None);
        // A relayed pair's data goes as ChannelData from now on (RFC 8656 §12).
        ctx.out.push(Intent::BindChannel {
            relayed: base,
            peer: remote_addr,
        });
    }

    /// Changes a component's state, with an event.
    pub(crate) fn set_component_state<R>(
        &mut self,
        ctx: &mut Ctx<'_, R>,
        component: u16,
        state: ComponentState,
        reason: Option<FailureReason>,
    ) {
        let Some(c) = self.component_mut(component) else {
            return;
        };
        if c.state == state || c.state == ComponentState::Failed {
            return;
        }
        c.state = state;
        ctx.event(Event::ComponentStateChanged {
            stream: self.id,
            component,
            state,
            reason,
        });
    }

    /// Component failure (every pair failed once both sides gathered everything and the ICE
    /// PAC timer expired, RFC 8863 §4) and the check list's state.
    pub(crate) fn update_states<R>(&mut self, ctx: &mut Ctx<'_, R>) {
        if let Patience::Until(at) = self.patience {
            if ctx.now >= at {
                self.patience = Patience::Expired;
            }
        }
        for i in 0..self.components.len() {
            let c = &self.components[i];
            let exhausted = c.selected.is_none()
                && self.patience == Patience::Expired
                && c.state != ComponentState::Failed
                && (c.gathering_done || self.gathering == Gathering::Done)
                && self.remote_end_of_candidates
                && self.remote.is_some()
                && !self.checklist.has_pending(c.id)
                && self.checklist.best_valid(c.id).is_none();
            if exhausted {
                let id = c.id;
                let reason = Some(FailureReason::ChecksFailed);
                self.set_component_state(ctx, id, ComponentState::Failed, reason);
            }
        }
        self.checklist.state = if self
            .components
            .iter()
            .any(|c| c.state == ComponentState::Failed)
        {
            ChecklistState::Failed
        } else if self.components.iter().all(|c| c.selected.is_some()) {
            ChecklistState::Completed
        } else {
            ChecklistState::Running
        };
    }

    /// Whether component `c` has lost hope of a path short of a new candidate or a late
    /// answer (`AgentConfig::checks_unanswered_after`): `None` while it has not (a pair
    /// valid, Frozen or Waiting; candidates still to come from either side; selected;
    /// failed; ICE-lite, which checks nothing), otherwise the instant from which it has —
    /// `Some(None)` when every pair failed or there is none, `Some(Some(t))` when the last
    /// check in flight counts as unanswered at `t`.
    pub(crate) fn hopeless_since(
        &self,
        c: &Component,
        config: &AgentConfig,
    ) -> Option<Option<Instant>> {
        let gathered = c.gathering_done || self.gathering == Gathering::Done;
        let settled = c.selected.is_none()
            && c.state != ComponentState::Failed
            && !config.lite
            && gathered
            && self.remote_end_of_candidates
            && self.remote.is_some();
        if !settled {
            return None;
        }
        let mut latest = None;
        for p in self
            .checklist
            .pairs()
            .iter()
            .filter(|p| p.component() == c.id)
        {
            match &p.state() {
                _ if p.valid() => return None,
                PairState::Failed => {}
                PairState::InProgress(f) => {
                    let at = saturating_add(f.backoff.first_sent(), config.checks_unanswered_after);
                    latest = latest.max(Some(at));
                }
                PairState::Frozen | PairState::Waiting | PairState::Succeeded => return None,
            }
        }
        Some(latest)
    }
}

/// The W3C `RTCIceConnectionState` of the agent's components at `now`.
pub(crate) fn overall_state(
    streams: &[Stream],
    config: &AgentConfig,
    now: Instant,
    closed: bool,
) -> ConnectionState {
    if closed {
        return ConnectionState::Closed;
    }
    let components = || streams.iter().flat_map(|st| st.components.iter());
    if components().next().is_none() {
        return ConnectionState::New;
    }
    if components().any(|c| c.state == ComponentState::Failed) {
        return ConnectionState::Failed;
    }
    let stale = components().any(|c| {
        c.consent
            .as_ref()
            .is_some_and(|k| saturating_add(k.last_fresh, config.disconnected_after) <= now)
    });
    // Before RFC 8863's failure: no path now (`hopeless_since`).
    let hopeless = streams.iter().filter(|st| !st.removed).any(|st| {
        st.components.iter().any(|c| {
            st.hopeless_since(c, config)
                .is_some_and(|at| at.is_none_or(|at| at <= now))
        })
    });
    if stale || hopeless {
        return ConnectionState::Disconnected;
    }
    if components().all(|c| c.state == ComponentState::Ready) {
        return ConnectionState::Completed;
    }
    if components().all(|c| matches!(c.state, ComponentState::Connected | ComponentState::Ready)) {
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
