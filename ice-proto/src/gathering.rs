//! Gathering server-reflexive candidates (RFC 8445 §5.1.1.2): a Binding request from every
//! base to every STUN server of the same address family, run as stun-proto client
//! transactions paced at Ta (§14.2) with RFC 8489 retransmissions; the mapped address of each
//! answer becomes a server-reflexive candidate unless it is redundant (§5.1.3, decided by
//! the agent). Host candidates need no query (§5.1.1.1) and relayed ones come from TURN.
//!
//! A component's gathering is done when none of its queries is outstanding.

use std::net::SocketAddr;
use std::time::Instant;

use rand_core::{CryptoRng, RngCore};
use stun_proto::attribute::{MappedAddress, XorMappedAddress};
use stun_proto::transaction::{
    ClientTransactions, Handled, Request, TransactionConfig, TransactionError, TransactionEvent,
};
use stun_proto::{
    Class, Message, MessageBuilder, MessageType, TransactionId, Transmit, TransportProtocol,
};

use crate::agent::Agent;
use crate::candidate::{Candidate, CandidateType, local_preference};
use crate::event::ComponentState;
use crate::event::{Event, Problem};
use crate::stream::{Gathering, LocalCandidate, StreamId};

/// One outstanding Binding query.
#[derive(Clone, Copy, Debug)]
struct Query {
    tid: TransactionId,
    stream: usize,
    component: u16,
    base: SocketAddr,
    server: SocketAddr,
}

/// What a finished query found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Outcome {
    /// The stream index.
    pub stream: usize,
    /// The component id.
    pub component: u16,
    /// The base the request went from.
    pub base: SocketAddr,
    /// The STUN server.
    pub server: SocketAddr,
    /// The mapped address, or `None` when the query failed.
    pub mapped: Option<SocketAddr>,
}

/// The server-reflexive queries of an agent.
#[derive(Debug)]
pub(crate) struct Gatherer {
    transactions: ClientTransactions,
    queries: Vec<Query>,
}

impl Gatherer {
    /// A gatherer whose transactions use `config` (its pacing interval is Ta).
    pub fn new(config: TransactionConfig) -> Self {
        Self {
            transactions: ClientTransactions::new(config),
            queries: Vec::new(),
        }
    }

    /// Starts a query from `base` to `server`.
    pub fn start<R: RngCore + ?Sized>(
        &mut self,
        now: Instant,
        rng: &mut R,
        stream: usize,
        component: u16,
        base: SocketAddr,
        server: SocketAddr,
    ) -> Result<(), TransactionError> {
        let tid = TransactionId::random(rng);
        let mut b = MessageBuilder::new_bytes(MessageType::BINDING_REQUEST, tid);
        b.add_fingerprint()
            .map_err(|_| TransactionError::NotARequest)?;
        let request = Request::new(TransportProtocol::Udp, base, server, b.into_bytes());
        let tid = self.transactions.handle_request(now, request)?;
        self.queries.push(Query {
            tid,
            stream,
            component,
            base,
            server,
        });
        Ok(())
    }

    /// Offers a response received on `destination` from `from`; returns whether it answered
    /// one of our queries.
    pub fn handle_response(
        &mut self,
        now: Instant,
        from: SocketAddr,
        destination: SocketAddr,
        message: &Message<'_>,
    ) -> bool {
        let tid = message.transaction_id();
        let ours = self
            .queries
            .iter()
            .any(|q| q.tid == tid && q.base == destination);
        ours && matches!(
            self.transactions.handle_response(now, from, message),
            Handled::Response(_)
        )
    }

    /// The transport failed towards `server`: its queries fail.
    pub fn handle_transport_error(&mut self, now: Instant, server: SocketAddr) {
        self.transactions.handle_transport_error(
            now,
            server,
            stun_proto::transaction::TransportFailure::Unreachable,
        );
    }

    /// Retransmits and times out queries.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.transactions.handle_timeout(now);
    }

    /// The next request to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transactions.poll_transmit()
    }

    /// The next finished query.
    pub fn poll_outcome(&mut self) -> Option<Outcome> {
        while let Some(event) = self.transactions.poll_event() {
            let (tid, mapped) = match event {
                TransactionEvent::Response {
                    id, class, message, ..
                } => (id, mapped_address(class, &message)),
                TransactionEvent::Timeout { id, .. } | TransactionEvent::Error { id, .. } => {
                    (id, None)
                }
                _ => continue,
            };
            let Some(i) = self.queries.iter().position(|q| q.tid == tid) else {
                continue;
            };
            let q = self.queries.swap_remove(i);
            return Some(Outcome {
                stream: q.stream,
                component: q.component,
                base: q.base,
                server: q.server,
                mapped,
            });
        }
        None
    }

    /// When [`handle_timeout`](Self::handle_timeout) is due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.transactions.poll_timeout()
    }

    /// Abandons the queries of stream index `stream` (removed): no more retransmissions,
    /// no outcome.
    pub fn cancel_stream(&mut self, now: Instant, stream: usize) {
        for q in self.queries.iter().filter(|q| q.stream == stream) {
            self.transactions.handle_cancel(now, q.tid);
        }
        self.queries.retain(|q| q.stream != stream);
    }

    /// Whether a query of `stream`'s `component` is outstanding.
    pub fn is_pending(&self, stream: usize, component: u16) -> bool {
        self.queries
            .iter()
            .any(|q| q.stream == stream && q.component == component)
    }
}

impl<R: RngCore + CryptoRng> Agent<R> {
    /// Gathers for stream `s` (§5.1.1): a host candidate per base at once, then a
    /// server-reflexive query per base and STUN server and a TURN allocation per base and
    /// TURN server (an existing allocation, after a restart, gives its candidates at once).
    pub(crate) fn gather(&mut self, now: Instant, s: usize) {
        let Some(st) = self.streams.get_mut(s) else {
            return;
        };
        st.gathering = Gathering::Running;
        let bases: Vec<(u16, usize, SocketAddr)> = st
            .components
            .iter()
            .flat_map(|c| c.bases.iter().enumerate().map(|(i, b)| (c.id, i, *b)))
            .collect();
        let components: Vec<u16> = st.components.iter().map(|c| c.id).collect();
        for c in components {
            let state = self.streams[s].component(c).map(|k| k.state);
            if state == Some(ComponentState::Disconnected) {
                self.set_component_state(s, c, ComponentState::Gathering, None);
            }
        }
        for (component, index, base) in bases {
            let pref = local_preference(base.ip(), index);
            let candidate = Candidate::new(CandidateType::Host, component, base, base, None, pref);
            self.add_local(s, candidate, base, base);
            if self.config.lite {
                // §2.5: a lite agent has host candidates only.
                continue;
            }
            if self.config.relay_only {
                // Reflexive candidates would not be signalled: no STUN queries.
                self.start_or_reuse_relays(now, s, component, base);
                continue;
            }
            for i in 0..self.config.stun_servers.len() {
                let server = self.config.stun_servers[i];
                if server.is_ipv4() != base.is_ipv4() {
                    continue;
                }
                let started = self
                    .gatherer
                    .start(now, &mut self.rng, s, component, base, server);
                if started.is_err() {
                    self.push_event(Event::Problem(Problem::StunServerFailed {
                        stream: StreamId(s),
                        component,
                        base,
                        server,
                    }));
                }
            }
            self.start_or_reuse_relays(now, s, component, base);
        }
    }

    /// Turns finished gathering queries into candidates and gathering-done events.
    pub(crate) fn pump_gathering(&mut self) {
        while let Some(o) = self.gatherer.poll_outcome() {
            let stream = StreamId(o.stream);
            let Some(mapped) = o.mapped else {
                self.push_event(Event::Problem(Problem::StunServerFailed {
                    stream,
                    component: o.component,
                    base: o.base,
                    server: o.server,
                }));
                continue;
            };
            let Some(st) = self.streams.get(o.stream).filter(|st| !st.removed) else {
                continue;
            };
            let pref = st
                .local
                .iter()
                .find(|l| l.base == o.base && l.candidate.kind == CandidateType::Host)
                .map_or(0, |l| (l.candidate.priority >> 8) as u16);
            let candidate = Candidate::new(
                CandidateType::ServerReflexive,
                o.component,
                mapped,
                o.base,
                Some(o.server.ip()),
                pref,
            );
            self.add_local(o.stream, candidate, mapped, o.base);
        }
        for s in 0..self.streams.len() {
            if self.streams[s].gathering != Gathering::Running {
                continue;
            }
            let mut all = true;
            for i in 0..self.streams[s].components.len() {
                let c = &self.streams[s].components[i];
                let id = c.id;
                if c.gathering_done {
                    continue;
                }
                let relaying = self
                    .relays
                    .iter()
                    .any(|r| r.stream == s && r.component == id && r.pending);
                if relaying || self.gatherer.is_pending(s, id) {
                    all = false;
                    continue;
                }
                self.streams[s].components[i].gathering_done = true;
                self.push_event(Event::ComponentGatheringDone {
                    stream: StreamId(s),
                    component: id,
                });
            }
            if all {
                self.streams[s].gathering = Gathering::Done;
                self.push_event(Event::CandidateGatheringDone {
                    stream: StreamId(s),
                });
            }
        }
    }

    /// Starts the TURN allocations of `base`, or, after a restart, gives the candidates of
    /// those it already has.
    fn start_or_reuse_relays(&mut self, now: Instant, s: usize, component: u16, base: SocketAddr) {
        let existing: Vec<usize> = (0..self.relays.len())
            .filter(|&i| {
                let r = &self.relays[i];
                r.stream == s && r.component == component && r.base == base && !r.retired
            })
            .collect();
        if existing.is_empty() {
            self.start_relays(now, s, component, base);
        }
        for i in existing {
            // An ICE restart keeps the allocations: their candidates again.
            self.relay_candidates(i);
        }
    }

    /// Whether local candidates of this type are signalled (peer-reflexive ones never are;
    /// with `relay_only`, only relayed ones).
    pub(crate) fn is_signalled(&self, kind: CandidateType) -> bool {
        if self.config.relay_only {
            kind == CandidateType::Relayed
        } else {
            kind != CandidateType::PeerReflexive
        }
    }

    /// Whether local candidates of this type are paired and answer checks: host and relayed
    /// ones (§6.1.2.2: reflexive ones are replaced by their base); with `relay_only`, relayed
    /// ones only.
    pub(crate) fn is_paired(&self, kind: CandidateType) -> bool {
        kind == CandidateType::Relayed || (kind == CandidateType::Host && !self.config.relay_only)
    }

    /// Adds a local candidate unless redundant (§5.1.3: same address and same base as one
    /// already there); signals it and pairs it. Returns its index.
    pub(crate) fn add_local(
        &mut self,
        s: usize,
        candidate: Candidate,
        addr: SocketAddr,
        base: SocketAddr,
    ) -> Option<usize> {
        let max = self.config.max_candidates;
        let st = self.streams.get_mut(s).filter(|st| !st.removed)?;
        if let Some(i) = st
            .local
            .iter()
            .position(|l| l.addr == addr && l.base == base)
        {
            return Some(i);
        }
        if st.local.len() >= max {
            self.push_event(Event::Problem(Problem::CandidateLimitReached {
                stream: StreamId(s),
            }));
            return None;
        }
        let kind = candidate.kind;
        st.local.push(LocalCandidate {
            candidate: candidate.clone(),
            addr,
            base,
        });
        let index = st.local.len() - 1;
        if self.is_signalled(kind) {
            self.push_event(Event::NewLocalCandidate {
                stream: StreamId(s),
                candidate,
            });
        }
        // §6.1.2.2/§6.1.2.4: a server-reflexive candidate is replaced by its base, which
        // is the host candidate already paired; peer-reflexive ones are never paired.
        if self.is_paired(kind) {
            let remotes = self.streams[s].remote_candidates.len();
            for r in 0..remotes {
                self.make_pair(s, index, r);
            }
        }
        Some(index)
    }
}

fn mapped_address(class: Class, message: &[u8]) -> Option<SocketAddr> {
    if class != Class::Success {
        return None;
    }
    let message = Message::parse(message).ok()?;
    match message.get::<XorMappedAddress>() {
        Some(Ok(XorMappedAddress(addr))) => Some(addr),
        _ => match message.get::<MappedAddress>() {
            Some(Ok(MappedAddress(addr))) => Some(addr),
            _ => None,
        },
    }
}
