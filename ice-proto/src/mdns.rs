//! Remote candidates with host names (RFC 8839 §5.1 allows an FQDN as connection address;
//! browsers use mDNS `.local` names, draft-ietf-mmusic-mdns-ice-candidates, to hide host
//! addresses). The agent does no lookups: it holds such candidates, asks the caller once per
//! name ([`Event::ResolveHostname`]) and turns them into IP candidates when the caller
//! answers ([`Agent::handle_resolved_hostname`]).

use crate::candidate::{Candidate, ConnectionAddress};
use crate::context::Ctx;
use crate::error::AgentError;
use crate::event::Event;
use crate::stream::Stream;

/// The most remote candidates with host names waiting for resolution, per stream.
const MAX_UNRESOLVED: usize = 16;

/// Whether `candidate`'s address is the host name `name`.
fn named(candidate: &Candidate, name: &str) -> bool {
    matches!(&candidate.address, ConnectionAddress::Fqdn(n) if n.eq_ignore_ascii_case(name))
}

impl Stream {
    /// The held candidates with host name `name`, taken out.
    pub(crate) fn take_unresolved(&mut self, name: &str) -> Vec<Candidate> {
        let (matching, rest) = std::mem::take(&mut self.unresolved)
            .into_iter()
            .partition(|c| named(c, name));
        self.unresolved = rest;
        matching
    }

    /// Keeps a host-name candidate until it is resolved, asking the caller once per name.
    pub(crate) fn hold_unresolved<R>(
        &mut self,
        ctx: &mut Ctx<'_, R>,
        candidate: Candidate,
    ) -> Result<(), AgentError> {
        let ConnectionAddress::Fqdn(name) = &candidate.address else {
            return Err(AgentError::UnresolvedHostname);
        };
        let name = name.clone();
        if self.unresolved.len() >= MAX_UNRESOLVED {
            return Err(AgentError::TooManyCandidates);
        }
        let asked = self.unresolved.iter().any(|c| named(c, &name));
        self.unresolved.push(candidate);
        if !asked {
            ctx.event(Event::ResolveHostname {
                stream: self.id,
                name,
            });
        }
        Ok(())
    }
}
