//! Local network changes and failover (RFC 8445 §8.1.1 and RFC 7675 applied to a path that
//! disappears): the caller removes a base (an interface went away); the agent fails every
//! pair on it at once and moves the component to another valid pair — or, with none left,
//! back to checking its remaining pairs.
//!
//! Flow on the side that lost the interface: `handle_base_removed` → the pairs of that base
//! (and of TURN allocations made from it) fail → the selected pair was among them → the best
//! remaining valid pair is selected (`Event::NewSelectedPair`); the controlling agent also
//! nominates it (USE-CANDIDATE) so the peer follows. No valid pair left: the component goes
//! back to Connecting and its remaining pairs are checked again (§6.1.4), then nominated.
//!
//! The controlled peer of such a failover receives a nomination of a pair ranked below its
//! selected one. RFC 8445 §8.1.1 makes it keep the highest-priority nominated pair — as long
//! as that pair works: it sends a consent check (RFC 7675) on its selected pair at once and,
//! with no answer within the check RTO (§14.3), treats that pair as failed and selects the
//! nominated one (a "probe"). A selected pair that answers stays.
//!
//! When the *controlled* agent loses the interface, it selects its best remaining valid pair
//! at once and sends a consent check on it (or, with none valid, checks its remaining
//! pairs). Only the controlling agent may nominate (§8.1.1), so it must move: a check or
//! consent check from the peer on a pair below its selected one (one the gate keeps out)
//! makes it probe its selected pair — three consent checks an RTO apart, so that one lost
//! answer does not move a working call — while it forms and checks that pair. With no
//! answer, the selected pair fails and the controlling agent fails over as above (the best
//! valid pair, nominated); the abandoned pair is checked again, and comes back by
//! re-nomination if it works after all.

use std::net::{IpAddr, SocketAddr};

use rand_core::RngCore;
use stun_proto::time::saturating_add;

use crate::checklist::{PairId, PairState};
use crate::context::Ctx;
use crate::event::ComponentState;
use crate::stream::{Probe, Stream};

/// Consent checks the controlling side's probe sends after its first, an RTO apart: the
/// selected pair is given up only when three went unanswered.
const CONTROLLING_PROBE_RETRIES: u8 = 2;

impl Stream {
    /// The interface of `base` went away: the pairs of `component` on it and on the
    /// relayed addresses in `gone` (the allocations made from it, which the agent
    /// released) fail at once; the component fails over if its selected pair was among
    /// them.
    pub(crate) fn lose_bases<R: RngCore>(
        &mut self,
        ctx: &mut Ctx<'_, R>,
        component: u16,
        gone: &[SocketAddr],
    ) {
        let selected = self.component(component).and_then(|c| c.selected);
        if self.checklist.fail_on_bases(component, gone, selected) {
            self.fail_over(ctx, component);
        }
    }

    /// The TURN server refused a permission for `peer` on relayed address `relayed` (RFC
    /// 8656 §9.2): the pairs from `relayed` to `peer` can never pass a check, so they fail
    /// now instead of asking again at every retransmission.
    pub(crate) fn lose_relayed_peer<R: RngCore>(
        &mut self,
        ctx: &mut Ctx<'_, R>,
        relayed: SocketAddr,
        peer: IpAddr,
    ) {
        let refused: Vec<PairId> = (self.checklist.pairs().iter())
            .filter(|p| p.base() == relayed && p.remote_addr().ip() == peer)
            .filter(|p| p.state() != &PairState::Failed)
            .map(|p| p.id())
            .collect();
        for id in refused {
            self.fail_pair(ctx, id);
        }
    }

    /// The selected pair of `component` is gone: select the best remaining valid pair (and
    /// nominate it when controlling), or check the remaining pairs again.
    pub(crate) fn fail_over<R: RngCore>(&mut self, ctx: &mut Ctx<'_, R>, component: u16) {
        let controlling = ctx.role.controlling;
        let until = saturating_add(ctx.now, self.check_rto(ctx));
        let best = self.checklist.best_valid(component).map(|p| p.id());
        if let Some(c) = self.component_mut(component) {
            c.selected = None;
            c.consent = None;
            c.probe = None;
        }
        match best {
            Some(id) => {
                // The pair is valid: selected now, on our side. The controlling agent
                // nominates it (after selecting: selection stops the pairs not above the
                // selected one, and a nomination goes out regardless); the controlled agent
                // sends a consent check on it at once, and the controlling peer, seeing a
                // check on another pair than its selected one, probes that pair and fails
                // over too.
                self.checklist.nominate_for_failover(id, controlling);
                self.select(ctx, component);
                if controlling {
                    self.checklist.trigger(id, until);
                } else if let Some(i) = usize::from(component).checked_sub(1) {
                    self.send_consent(ctx, i, id);
                }
            }
            None => {
                // Nothing valid left: check what remains, as at the start (§6.1.4).
                let bases: Vec<SocketAddr> = self
                    .component(component)
                    .map(|c| c.bases.clone())
                    .unwrap_or_default();
                let relayed: Vec<SocketAddr> = ctx.relays.relayed_of(self.id.0).collect();
                let alive = |base| bases.contains(&base) || relayed.contains(&base);
                self.checklist.check_again(component, alive);
                if let Some(c) = self.component_mut(component) {
                    c.first_valid_at = None;
                }
                self.set_component_state(ctx, component, ComponentState::Connecting, None);
            }
        }
    }

    /// Checks that the selected pair of component index `i` still works (see the module
    /// docs): the controlled side after the peer nominated a lower pair (one consent check),
    /// the controlling side after the peer checked another pair (up to three, an RTO apart).
    pub(crate) fn start_probe<R: RngCore>(&mut self, ctx: &mut Ctx<'_, R>, i: usize) {
        let deadline = saturating_add(ctx.now, self.check_rto(ctx));
        let retries = if ctx.role.controlling {
            CONTROLLING_PROBE_RETRIES
        } else {
            0
        };
        let Some(c) = self.components.get_mut(i) else {
            return;
        };
        let (Some(selected), Some(_)) = (c.selected, &c.consent) else {
            return;
        };
        if c.probe.is_some() {
            return;
        }
        c.probe = Some(Probe {
            sent: ctx.now,
            deadline,
            retries,
        });
        self.send_consent(ctx, i, selected);
    }

    /// Ends probes: a selected pair that answered since stays; one that did not by the
    /// deadline (after its retries) fails, and the best nominated valid pair is selected
    /// instead — on the controlling side, the best valid pair, nominated (`fail_over`).
    pub(crate) fn check_probes<R: RngCore>(&mut self, ctx: &mut Ctx<'_, R>) {
        let now = ctx.now;
        let rto = self.check_rto(ctx);
        let controlling = ctx.role.controlling;
        for i in 0..self.components.len() {
            let c = &mut self.components[i];
            let Some(probe) = c.probe else {
                continue;
            };
            let answered = c
                .consent
                .as_ref()
                .is_some_and(|k| k.last_fresh >= probe.sent);
            if answered {
                c.probe = None;
                continue;
            }
            if now < probe.deadline {
                continue;
            }
            let (id, selected) = (c.id, c.selected);
            if probe.retries > 0 {
                c.probe = Some(Probe {
                    deadline: saturating_add(now, rto),
                    retries: probe.retries - 1,
                    ..probe
                });
                if let Some(sel) = selected {
                    self.send_consent(ctx, i, sel);
                }
                continue;
            }
            c.probe = None;
            let other = self.checklist.pairs().iter().any(|p| {
                p.component() == id
                    && p.valid()
                    && (p.nominated() || controlling)
                    && Some(p.id()) != selected
            });
            if !other {
                continue;
            }
            if let Some(sel) = selected {
                self.checklist.fail(sel);
                self.checklist.unnominate(sel);
            }
            if controlling {
                self.fail_over(ctx, id);
                // The abandoned pair ranks above the new one: checked again, it comes
                // back by re-nomination if it works after all (a probe lost to loss).
                if let Some(sel) = selected {
                    self.checklist
                        .trigger(sel, saturating_add(now, rto.saturating_mul(16)));
                }
            } else {
                self.select(ctx, id);
            }
        }
    }
}
