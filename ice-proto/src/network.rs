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

use std::net::SocketAddr;
use std::time::Instant;

use rand_core::{CryptoRng, RngCore};
use stun_proto::time::saturating_add;

use crate::agent::Agent;
use crate::error::AgentError;
use crate::event::ComponentState;
use crate::stream::{Probe, StreamId};

/// Consent checks the controlling side's probe sends after its first, an RTO apart: the
/// selected pair is given up only when three went unanswered.
const CONTROLLING_PROBE_RETRIES: u8 = 2;

impl<R: RngCore + CryptoRng> Agent<R> {
    /// The interface of `base` went away (the caller closed the socket): the base is removed
    /// from `component`, its pairs and those of TURN allocations made from it fail at once,
    /// and the allocations are released. If the component's selected pair was on it, the
    /// agent fails over to the best remaining valid pair
    /// ([`Event::NewSelectedPair`](crate::Event::NewSelectedPair), nominated when
    /// controlling), or goes back to
    /// checking the remaining pairs ([`ComponentState::Connecting`]). Returns whether the
    /// base was there. Adding a base takes effect at the next
    /// [`handle_restart`](Self::handle_restart).
    pub fn handle_base_removed(
        &mut self,
        now: Instant,
        stream: StreamId,
        component: u16,
        base: SocketAddr,
    ) -> Result<bool, AgentError> {
        self.check_open()?;
        let s = self.live(stream)?;
        let st = self.streams.get_mut(s).ok_or(AgentError::UnknownStream)?;
        let c = st
            .component_mut(component)
            .ok_or(AgentError::UnknownComponent(component))?;
        let before = c.bases.len();
        c.bases.retain(|b| *b != base);
        if c.bases.len() == before {
            return Ok(false);
        }
        // Allocations made from the base go with it.
        let mut gone = vec![base];
        for r in &mut self.relays {
            if r.stream == s && r.component == component && r.base == base && !r.retired {
                r.retired = true;
                r.pending = false;
                r.client.handle_close(now);
                gone.extend(r.relayed);
            }
        }
        let st = &mut self.streams[s];
        let selected = st.component(component).and_then(|c| c.selected);
        let lost_selected = st.checklist.fail_on_bases(component, &gone, selected);
        if lost_selected {
            self.fail_over(now, s, component);
        }
        self.drive(now);
        Ok(true)
    }

    /// The selected pair of `component` is gone: select the best remaining valid pair (and
    /// nominate it when controlling), or check the remaining pairs again.
    pub(crate) fn fail_over(&mut self, now: Instant, s: usize, component: u16) {
        let controlling = self.controlling;
        let until = saturating_add(now, self.check_rto());
        let st = &mut self.streams[s];
        let best = st.checklist.best_valid(component).map(|p| p.id());
        if let Some(c) = st.component_mut(component) {
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
                st.checklist.nominate_for_failover(id, controlling);
                self.select(now, s, component);
                if controlling {
                    self.streams[s].checklist.trigger(id, until);
                } else if let Some(i) = usize::from(component).checked_sub(1) {
                    self.send_consent(now, s, i, id);
                }
            }
            None => {
                // Nothing valid left: check what remains, as at the start (§6.1.4).
                let bases: Vec<SocketAddr> = st
                    .component(component)
                    .map(|c| c.bases.clone())
                    .unwrap_or_default();
                let relayed: Vec<SocketAddr> = self
                    .relays
                    .iter()
                    .filter(|r| r.stream == s && !r.retired)
                    .filter_map(|r| r.relayed)
                    .collect();
                let st = &mut self.streams[s];
                let alive = |base| bases.contains(&base) || relayed.contains(&base);
                st.checklist.check_again(component, alive);
                if let Some(c) = st.component_mut(component) {
                    c.first_valid_at = None;
                }
                self.set_component_state(s, component, ComponentState::Connecting, None);
            }
        }
    }

    /// Checks that the selected pair of component index `i` still works (see the module
    /// docs): the controlled side after the peer nominated a lower pair (one consent check),
    /// the controlling side after the peer checked another pair (up to three, an RTO apart).
    pub(crate) fn start_probe(&mut self, now: Instant, s: usize, i: usize) {
        let deadline = saturating_add(now, self.check_rto());
        let retries = if self.controlling {
            CONTROLLING_PROBE_RETRIES
        } else {
            0
        };
        let st = &mut self.streams[s];
        let Some(c) = st.components.get_mut(i) else {
            return;
        };
        let (Some(selected), Some(_)) = (c.selected, &c.consent) else {
            return;
        };
        if c.probe.is_some() {
            return;
        }
        c.probe = Some(Probe {
            sent: now,
            deadline,
            retries,
        });
        self.send_consent(now, s, i, selected);
    }

    /// Ends probes: a selected pair that answered since stays; one that did not by the
    /// deadline (after its retries) fails, and the best nominated valid pair is selected
    /// instead — on the controlling side, the best valid pair, nominated (`fail_over`).
    pub(crate) fn check_probes(&mut self, now: Instant) {
        let rto = self.check_rto();
        let controlling = self.controlling;
        for s in 0..self.streams.len() {
            for i in 0..self.streams[s].components.len() {
                let st = &mut self.streams[s];
                let c = &mut st.components[i];
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
                        self.send_consent(now, s, i, sel);
                    }
                    continue;
                }
                c.probe = None;
                let other = st.checklist.pairs().iter().any(|p| {
                    p.component() == id
                        && p.valid()
                        && (p.nominated() || controlling)
                        && Some(p.id()) != selected
                });
                if !other {
                    continue;
                }
                if let Some(sel) = selected {
                    st.checklist.fail(sel);
                    st.checklist.unnominate(sel);
                }
                if controlling {
                    self.fail_over(now, s, id);
                    // The abandoned pair ranks above the new one: checked again, it comes
                    // back by re-nomination if it works after all (a probe lost to loss).
                    if let Some(sel) = selected {
                        self.streams[s]
                            .checklist
                            .trigger(sel, saturating_add(now, rto.saturating_mul(16)));
                    }
                } else {
                    self.select(now, s, id);
                }
            }
        }
    }
}
