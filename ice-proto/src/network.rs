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

use std::net::SocketAddr;
use std::time::Instant;

use rand_core::{CryptoRng, RngCore};

use crate::agent::Agent;
use crate::error::AgentError;
use crate::event::ComponentState;
use crate::pair::PairState;
use crate::stream::{Probe, StreamId};

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
        let mut lost_selected = false;
        for p in st.checklist.pairs_mut() {
            if p.component == component && gone.contains(&p.base) {
                p.state = PairState::Failed;
                p.valid = false;
                p.nominated = false;
                p.nominating = false;
                p.nominate_on_success = false;
                lost_selected |= Some(p.id) == selected;
            }
        }
        if lost_selected {
            self.fail_over(now, s, component);
        }
        self.drive(now);
        Ok(true)
    }

    /// The selected pair of `component` is gone: select the best remaining valid pair (and
    /// nominate it when controlling), or check the remaining pairs again.
    fn fail_over(&mut self, now: Instant, s: usize, component: u16) {
        let controlling = self.controlling;
        let until = now + self.check_rto();
        let st = &mut self.streams[s];
        let best = st.checklist.best_valid(component).map(|p| p.id);
        if let Some(c) = st.component_mut(component) {
            c.selected = None;
            c.consent = None;
            c.probe = None;
        }
        match best {
            Some(id) => {
                // The pair is valid: selected now, on our side; the peer follows the
                // nomination (controlling) or our checks and consent on it.
                if let Some(p) = st.checklist.get_mut(id) {
                    p.nominated = true;
                    p.nominating = controlling;
                }
                if controlling {
                    st.checklist.trigger(id, until);
                }
                self.select(now, s, component);
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
                for p in st.checklist.pairs_mut() {
                    let alive = bases.contains(&p.base) || relayed.contains(&p.base);
                    if p.component == component && alive && p.state == PairState::Failed {
                        p.state = PairState::Waiting;
                    }
                }
                if let Some(c) = st.component_mut(component) {
                    c.first_valid_at = None;
                }
                self.set_component_state(s, component, ComponentState::Connecting, None);
            }
        }
    }

    /// Controlled side: the peer nominated a pair below the selected pair of component index
    /// `i`; check that the selected pair still works (see the module docs).
    pub(crate) fn start_probe(&mut self, now: Instant, s: usize, i: usize) {
        let deadline = now + self.check_rto();
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
        });
        self.send_consent(now, s, i, selected);
    }

    /// Ends probes: a selected pair that answered since stays; one that did not by the
    /// deadline fails, and the best nominated valid pair is selected instead.
    pub(crate) fn check_probes(&mut self, now: Instant) {
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
                c.probe = None;
                let (id, selected) = (c.id, c.selected);
                let other =
                    st.checklist.pairs().iter().any(|p| {
                        p.component == id && p.valid && p.nominated && Some(p.id) != selected
                    });
                if !other {
                    continue;
                }
                if let Some(p) = selected.and_then(|sel| st.checklist.get_mut(sel)) {
                    p.state = PairState::Failed;
                    p.valid = false;
                    p.nominated = false;
                }
                self.select(now, s, id);
            }
        }
    }
}
