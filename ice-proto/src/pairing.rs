//! Forming candidate pairs (RFC 8445 §6.1.2.2): each local host or relayed candidate with
//! each remote candidate of the same component and address family; server-reflexive local
//! candidates are replaced by their base and so pruned (§6.1.2.4); the pair's foundation
//! joins both candidates' (§6.1.2.6).

use crate::candidate::{Candidate, CandidateType, TcpType, Transport};
use crate::checklist::{Added, Pair, PairId, PairSpec};
use crate::context::{Ctx, Intent};
use crate::error::AgentError;
use crate::event::{Event, Problem};
use crate::stream::{RemoteCandidate, Stream};

impl Stream {
    /// A remote candidate, signalled or trickled (RFC 8838): paired with the local
    /// candidates of its component (§6.1.2.2). A peer-reflexive candidate learnt at the same
    /// address takes the signalled type, priority and foundation; a host name waits for the
    /// caller to resolve it (`mdns.rs`).
    pub(crate) fn add_remote_candidate<R>(
        &mut self,
        ctx: &mut Ctx<'_, R>,
        candidate: Candidate,
    ) -> Result<(), AgentError> {
        if self.component(candidate.component).is_none() {
            return Err(AgentError::UnknownComponent(candidate.component));
        }
        // RFC 6544 §4.5: a TCP candidate says which way it connects; one without `tcptype`
        // (or simultaneous-open, which this agent does not do) cannot be paired.
        if candidate.transport == Transport::Tcp
            && !matches!(candidate.tcp_type, Some(TcpType::Active | TcpType::Passive))
        {
            return Err(AgentError::UnsupportedTransport(candidate.transport));
        }
        // Browsers tag trickled candidates with the ufrag they belong to (`ufrag KDyD`): one of
        // another generation is refused, as W3C addIceCandidate does.
        if let (Some(ufrag), Some(remote)) = (candidate.extension("ufrag"), &self.remote) {
            if ufrag != remote.credentials.ufrag {
                return Err(AgentError::StaleCandidate(ufrag.to_owned()));
            }
        }
        let Some(addr) = candidate.addr() else {
            // A host name (mDNS `.local`): kept until the caller resolves it.
            return self.hold_unresolved(ctx, candidate);
        };
        let known = self.remote_candidates.iter().position(|r| {
            r.addr == addr
                && r.candidate.component == candidate.component
                && r.candidate.transport == candidate.transport
        });
        if let Some(i) = known {
            let r = &mut self.remote_candidates[i];
            if r.candidate.kind == CandidateType::PeerReflexive {
                // The peer-reflexive candidate learnt from a check is the signalled one:
                // it takes its type, foundation and priority, and its pairs re-rank.
                let priority = candidate.priority;
                r.candidate = candidate;
                r.learnt = false;
                self.checklist
                    .update_remote_priority(i, priority, ctx.role.controlling);
            }
            return Ok(());
        }
        if self.remote_candidates.len() >= ctx.config.max_candidates {
            // Full: a signalled candidate displaces a learnt one that never worked (learnt
            // ones displace nothing: each would start checks to its source, and a flood of
            // them would aim those at any address).
            let address = self
                .evict_learnt_candidate()
                .ok_or(AgentError::TooManyCandidates)?;
            ctx.event(Event::Problem(Problem::PeerReflexiveCandidateEvicted {
                stream: self.id,
                address,
            }));
        }
        self.remote_candidates.push(RemoteCandidate {
            candidate,
            addr,
            learnt: false,
        });
        let remote = self.remote_candidates.len() - 1;
        self.pair_remote(ctx, remote);
        Ok(())
    }

    /// Pairs a new remote candidate with the local host and relayed candidates.
    fn pair_remote<R>(&mut self, ctx: &mut Ctx<'_, R>, remote: usize) {
        for l in 0..self.local.len() {
            if ctx.config.is_paired(self.local[l].candidate.kind) {
                self.make_pair(ctx, l, remote);
            }
        }
        ctx.out.push(Intent::PermitRelayedPairs);
    }

    /// Forms the pair (§6.1.2.2) of local `l` and remote `r` if they match (component,
    /// address family) and the component has no selected pair yet — or, with re-nomination,
    /// the pair would rank above the selected one.
    pub(crate) fn make_pair<R>(
        &mut self,
        ctx: &mut Ctx<'_, R>,
        l: usize,
        r: usize,
    ) -> Option<PairId> {
        let (local, remote) = (self.local.get(l)?, self.remote_candidates.get(r)?);
        let component = local.candidate.component;
        if component != remote.candidate.component
            || local.addr.is_ipv4() != remote.addr.is_ipv4()
            || !crate::tcp::pairable(&local.candidate, &remote.candidate, remote.learnt)
        {
            return None;
        }
        self.component(component)?;
        let foundation = pair_foundation(&local.candidate.foundation, &remote.candidate.foundation);
        let foundation_succeeded = self.checklist.foundation_succeeded(foundation)
            || ctx.others.foundation_succeeded(foundation);
        let spec = PairSpec {
            component,
            local: l,
            remote: r,
            path: local.path_to(remote.addr),
            foundation,
            local_priority: local.candidate.priority,
            remote_priority: remote.candidate.priority,
        };
        let pair = Pair::new(spec, ctx.role.controlling);
        // Once a pair is selected, only a pair that could replace it (re-nomination).
        if !self
            .gate(component, ctx.role.controlling, ctx.config)
            .admits(pair.priority())
        {
            return None;
        }
        let dropped = self.checklist.dropped;
        // §6.1.2.6: the first check list starts its foundations Waiting; the others wait.
        let first_list = self.id.0 == 0;
        let added = self.checklist.add(pair, foundation_succeeded, first_list);
        if self.checklist.dropped != dropped {
            // Refused, or another pair evicted to make room (§6.1.2.5).
            ctx.event(Event::Problem(Problem::PairLimitReached {
                stream: self.id,
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
