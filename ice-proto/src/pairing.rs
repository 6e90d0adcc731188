//! Forming candidate pairs (RFC 8445 §6.1.2.2): each local host or relayed candidate with
//! each remote candidate of the same component and address family; server-reflexive local
//! candidates are replaced by their base and so pruned (§6.1.2.4); the pair's foundation
//! joins both candidates' (§6.1.2.6).

use std::time::Instant;

use rand_core::{CryptoRng, RngCore};

use crate::agent::Agent;
use crate::checklist::{Added, Pair, PairId, PairSpec};
use crate::event::{Event, Problem};
use crate::stream::StreamId;

impl<R: RngCore + CryptoRng> Agent<R> {
    /// Pairs a new remote candidate with the local host and relayed candidates.
    pub(crate) fn pair_remote(&mut self, now: Instant, s: usize, remote: usize) {
        let locals = self.streams[s].local.len();
        for l in 0..locals {
            let kind = self.streams[s].local[l].candidate.kind;
            if self.is_paired(kind) {
                self.make_pair(s, l, remote);
            }
        }
        self.permit_relayed_pairs(now, s);
    }

    /// Forms the pair (§6.1.2.2) of local `l` and remote `r` if they match (component,
    /// address family) and the component has no selected pair yet — or, with re-nomination,
    /// the pair would rank above the selected one.
    pub(crate) fn make_pair(&mut self, s: usize, l: usize, r: usize) -> Option<PairId> {
        let st = &self.streams[s];
        let (local, remote) = (st.local.get(l)?, st.remote_candidates.get(r)?);
        let component = local.candidate.component;
        if component != remote.candidate.component || local.addr.is_ipv4() != remote.addr.is_ipv4()
        {
            return None;
        }
        st.component(component)?;
        let foundation = pair_foundation(&local.candidate.foundation, &remote.candidate.foundation);
        let foundation_succeeded = self
            .streams
            .iter()
            .any(|st| st.checklist.foundation_succeeded(foundation));
        let st = &self.streams[s];
        let (local, remote) = (&st.local[l], &st.remote_candidates[r]);
        let spec = PairSpec {
            component,
            local: l,
            remote: r,
            base: local.base,
            remote_addr: remote.addr,
            foundation,
            local_priority: local.candidate.priority,
            remote_priority: remote.candidate.priority,
        };
        let pair = Pair::new(spec, self.controlling);
        // Once a pair is selected, only a pair that could replace it (re-nomination).
        if !self
            .gate(&self.streams[s], component)
            .admits(pair.priority())
        {
            return None;
        }
        let dropped = self.streams[s].checklist.dropped;
        // §6.1.2.6: the first check list starts its foundations Waiting; the others wait.
        let added = self.streams[s]
            .checklist
            .add(pair, foundation_succeeded, s == 0);
        if self.streams[s].checklist.dropped != dropped {
            // Refused, or another pair evicted to make room (§6.1.2.5).
            self.push_event(Event::Problem(Problem::PairLimitReached {
                stream: StreamId(s),
            }));
        }
        match added {
            Added::New(id) | Added::Existing(id) => Some(id),
            Added::Full => None,
        }
    }
}

/// A pair's foundation: the local and remote foundations together (§6.1.2.6), hashed.
pub(crate) fn pair_foundation(local: &str, remote: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in local.bytes().chain([b':']).chain(remote.bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}
