//! Connectivity checks (RFC 8445 §6.1.4, §7), in three parts: here, sending a check at
//! each Ta slot (§6.1.4.2, §7.2.4) with the RTO of §14.3 and RFC 8489 retransmissions; in
//! `request.rs`, answering the peer's checks (§7.3); in `response.rs`, processing the
//! answers to ours (§7.2.5). Each changes pairs only through the check list's transitions
//! (`checklist`).

use std::time::{Duration, Instant};

use rand_core::RngCore;
use stun_proto::TransactionId;
use stun_proto::backoff::Backoff;
use stun_proto::time::saturating_add;

use crate::candidate::{CandidateType, priority};
use crate::check::{CheckRequest, build_request};
use crate::checklist::{InFlight, Pair, PairId, PairState};
use crate::config::{AgentConfig, NominationMode};
use crate::context::Ctx;
use crate::event::ComponentState;
use crate::nomination::Gate;
use crate::stream::Stream;

mod request;
mod response;

pub(crate) use response::Answers;
#[cfg(test)]
mod tests;

/// How many transactions our nomination of a valid pair gets before the pair fails (RFC
/// 8445 §7.2.5.2 fails it at the first timeout). The pair is known to work both ways, and
/// the controlled agent selects it on the request (§7.3.1.5), so on a lossy path the peer
/// may well be using it while every answer was lost; failing it would leave the two sides on
/// different pairs, ours the worse. Consent watches the pair once it is selected.
const NOMINATION_ROUNDS: u8 = 3;
/// With re-nomination, how many check transactions a pair above the selected one gets
/// before it fails for good.
const CHECK_ROUNDS_ABOVE_SELECTED: u8 = 3;

impl Stream {
    /// §14.3: the RTO of a check now (see [`Ctx::check_rto`]).
    pub(crate) fn check_rto<R>(&self, ctx: &Ctx<'_, R>) -> Duration {
        ctx.check_rto(self.checklist.pending_checks())
    }

    /// Retransmits checks whose RTO expired; fails those out of retransmissions.
    pub(crate) fn retransmit_checks<R: RngCore>(&mut self, ctx: &mut Ctx<'_, R>) {
        let now = ctx.now;
        let schedule = ctx.check_schedule();
        self.checklist.expire_cancelled(now);
        let (mut resend, mut timed_out) = (Vec::new(), Vec::new());
        self.checklist
            .expire_checks(now, &schedule, &mut resend, &mut timed_out);
        for (path, payload) in resend {
            ctx.stats.retransmissions += 1;
            ctx.send(path, payload);
        }
        let until = saturating_add(now, self.check_rto(ctx));
        for id in timed_out {
            // A nomination unanswered on a valid pair is sent again before the pair fails
            // (see `NOMINATION_ROUNDS`).
            if !self
                .checklist
                .retry_nomination(id, until, NOMINATION_ROUNDS)
            {
                self.fail_pair(ctx, id);
            }
        }
        self.retry_above_selected(ctx);
    }

    /// A check of pair `id` failed (§7.2.5.2: an error response, non-symmetric addresses,
    /// an ICMP error, no answer): the pair fails and leaves the valid list. A selected pair
    /// that fails is selected no more: the component moves on to its best remaining valid
    /// pair, or back to checking (`fail_over`), so that the selected pair is always a
    /// nominated valid pair of its component (§8.1.1).
    pub(crate) fn fail_pair<R: RngCore>(&mut self, ctx: &mut Ctx<'_, R>, id: PairId) {
        let Some(component) = self.checklist.fail(id) else {
            return;
        };
        let selected = self
            .component(component)
            .is_some_and(|c| c.selected == Some(id));
        if selected {
            self.checklist.unnominate(id);
            self.fail_over(ctx, component);
        }
    }

    /// Re-nomination: pairs above a component's selected pair whose checks timed out are
    /// checked again, up to [`CHECK_ROUNDS_ABOVE_SELECTED`] times in all. A direct path
    /// that lost its seven check datagrams to a lossy link would otherwise leave the call
    /// on the relay for good; before a pair is selected a timeout is final, so a component
    /// with no path still fails on time.
    pub(crate) fn retry_above_selected<R>(&mut self, ctx: &Ctx<'_, R>) {
        for i in 0..self.components.len() {
            let id = self.components[i].id;
            if let Gate::Above(floor) = self.gate(id, ctx.role.controlling, ctx.config) {
                self.checklist
                    .retry_timed_out(id, floor, CHECK_ROUNDS_ABOVE_SELECTED);
            }
        }
    }

    /// Whether the check list has a pair to check for a component still looking for one
    /// (or, with re-nomination, for a better one), or a nomination to send.
    pub(crate) fn has_check_work(
        &self,
        lane: Lane,
        controlling: bool,
        config: &AgentConfig,
    ) -> bool {
        self.remote.is_some()
            && self.checklist.pairs().iter().any(|p| {
                matches!(p.state(), PairState::Waiting | PairState::Frozen)
                    && Lane::of(p) == lane
                    && self
                        .component(p.component())
                        .is_some_and(|c| c.state != ComponentState::Failed)
                    && (p.nominating()
                        || self
                            .gate(p.component(), controlling, config)
                            .admits(p.priority()))
            })
    }

    /// The check to send at this Ta slot of `lane` (§6.1.4.2), if any, given the
    /// foundations being checked across all check lists (`active`); pairs `held` are not
    /// taken now (a triggered one keeps its place in the queue).
    pub(crate) fn next_check(
        &mut self,
        active: &[u64],
        lane: Lane,
        held: impl Fn(&Pair) -> bool,
        controlling: bool,
        config: &AgentConfig,
    ) -> Option<PairId> {
        self.remote.as_ref()?;
        // Per component: what may be checked (nothing once failed).
        let gates: Vec<(Gate, bool)> = self
            .components
            .iter()
            .map(|c| match c.state {
                ComponentState::Failed => (Gate::Closed, false),
                _ => (self.gate(c.id, controlling, config), true),
            })
            .collect();
        // A nomination of a live component always goes out, also that of a pair selected
        // below the gate by a failover (`network.rs`).
        let wait = |p: &Pair| Lane::of(p) != lane || held(p);
        let skip = |p: &Pair| {
            usize::from(p.component())
                .checked_sub(1)
                .and_then(|i| gates.get(i))
                .is_none_or(|(g, live)| !(g.admits(p.priority()) || (*live && p.nominating())))
        };
        self.checklist.next_check(active, wait, skip)
    }

    /// Sends a check on pair `id` (§7.2.4).
    pub(crate) fn send_check<R: RngCore>(&mut self, ctx: &mut Ctx<'_, R>, id: PairId) {
        let now = ctx.now;
        let rto = self.check_rto(ctx);
        let mut schedule = ctx.check_schedule();
        let tid = TransactionId::random(ctx.rng);
        let controlling = ctx.role.controlling;
        let Some(remote) = &self.remote else {
            return;
        };
        let Some(pair) = self.checklist.get(id) else {
            return;
        };
        let Some(local) = self.local.get(pair.local()) else {
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
        let aggressive = ctx.config.nomination == NominationMode::Aggressive;
        let use_candidate = controlling && (pair.nominating() || aggressive);
        let check = CheckRequest {
            username: &remote.username,
            priority: prflx,
            role: ctx.role.declared(),
            use_candidate,
        };
        let path = pair.path();
        if path.transport.is_reliable() {
            // RFC 8489 §6.2.2 (RFC 6544 §7.1): over TCP the check is sent once, and answered
            // within what a UDP check's retransmissions would have waited in all.
            schedule = schedule.sent_once(rto);
        }
        let Ok(request) = build_request(tid, &check, &remote.key) else {
            self.checklist.fail(id);
            return;
        };
        let check = InFlight {
            tid,
            request: request.clone(),
            use_candidate,
            controlling,
            backoff: Backoff::start(now, rto, &schedule),
        };
        self.checklist.start_check(id, check);
        ctx.stats.checks_sent += 1;
        ctx.send(path, request);
        let state = self.component(component).map(|c| c.state);
        if matches!(
            state,
            Some(ComponentState::Disconnected | ComponentState::Gathering)
        ) {
            self.set_component_state(ctx, component, ComponentState::Connecting, None);
        }
    }
}

/// The two kinds of check the [`Pacer`] keeps apart: over UDP and over TCP (RFC 6544: each
/// opens, or uses, a connection).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lane {
    /// Checks over UDP, relayed ones included (a relayed candidate is UDP whatever
    /// carries it to the TURN server).
    Datagram,
    /// ICE-TCP checks.
    Stream,
}

impl Lane {
    /// Both lanes, in the order `drive` serves them.
    pub const ALL: [Lane; 2] = [Lane::Datagram, Lane::Stream];

    /// The lane a pair's checks go in.
    pub fn of(pair: &Pair) -> Lane {
        if pair.path().transport.is_reliable() {
            Lane::Stream
        } else {
            Lane::Datagram
        }
    }
}

/// The pacing of checks across the agent's check lists (§6.1.4.2, §14.2): one new check
/// per Ta slot, the lists served round-robin — in each lane apart. A TCP check does not
/// take a UDP check's slot: the slot that opens a TCP connection would otherwise hold back
/// a server-reflexive pair that forms a moment later (about 50 ms of every NAT'd cell of
/// the matrix), and TCP paces its own connection attempts (SYN retransmissions, RFC 6298);
/// together the two lanes stay far inside §14.2's one transaction per 5 ms.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Pacer {
    /// Each lane's slots, [`Lane::Datagram`] first.
    lanes: [Slots; 2],
}

/// One lane's Ta slots.
#[derive(Clone, Copy, Debug, Default)]
struct Slots {
    /// The next check slot, `None` when nothing waits.
    next_check_at: Option<Instant>,
    /// When the last new check went out.
    last_check_at: Option<Instant>,
    /// The check list served first at the next slot.
    round_robin: usize,
}

impl Pacer {
    /// The earliest slot either lane waits for.
    pub fn next_check_at(&self) -> Option<Instant> {
        self.lanes.iter().filter_map(|l| l.next_check_at).min()
    }

    /// The stream (index) and pair to check now in `lane`, if its slot has come; the slot
    /// is taken.
    pub fn due(
        &mut self,
        now: Instant,
        lane: Lane,
        streams: &mut [Stream],
        held: impl Fn(&Pair) -> bool,
        controlling: bool,
        config: &AgentConfig,
    ) -> Option<(usize, PairId)> {
        let slots = &mut self.lanes[lane as usize];
        slots.next_check_at = None;
        if config.lite {
            // §2.5: a lite agent sends no checks.
            return None;
        }
        let due = slots
            .last_check_at
            .map_or(now, |t| saturating_add(t, config.ta));
        if !streams
            .iter()
            .any(|st| st.has_check_work(lane, controlling, config))
        {
            return None;
        }
        if due > now {
            slots.next_check_at = Some(due);
            return None;
        }
        // Foundations being checked; a list that cannot check yet (no remote credentials)
        // holds nothing back.
        let mut active = Vec::new();
        for st in streams.iter().filter(|st| st.remote.is_some()) {
            st.checklist.active_foundations(&mut active);
        }
        // A pair `held` yields the slot to one that can go now, and takes it only when no
        // other pair can.
        let n = streams.len();
        for held in [&held as &dyn Fn(&Pair) -> bool, &|_: &Pair| false] {
            for i in 0..n {
                let s = (slots.round_robin + i) % n;
                if let Some(id) = streams[s].next_check(&active, lane, held, controlling, config) {
                    slots.round_robin = s + 1;
                    slots.last_check_at = Some(now);
                    slots.next_check_at = Some(saturating_add(now, config.ta));
                    return Some((s, id));
                }
            }
        }
        None
    }

    /// No more checks (the agent closed).
    pub fn stop(&mut self) {
        for slots in &mut self.lanes {
            slots.next_check_at = None;
        }
    }
}
