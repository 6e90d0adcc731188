//! Gathering server-reflexive candidates (RFC 8445 §5.1.1.2): a Binding request from every
//! base to every STUN server of the same address family, run as stun-proto client
//! transactions paced at Ta (§14.2) with RFC 8489 retransmissions; the mapped address of each
//! answer becomes a server-reflexive candidate unless it is redundant (§5.1.3, decided by
//! the agent). Host candidates need no query (§5.1.1.1) and relayed ones come from TURN.
//!
//! A component's gathering is done when none of its queries is outstanding.

use std::net::SocketAddr;
use std::time::Instant;

use rand_core::RngCore;
use stun_proto::attribute::{MappedAddress, XorMappedAddress};
use stun_proto::transaction::{
    ClientTransactions, Handled, Request, TransactionConfig, TransactionError, TransactionEvent,
};
use stun_proto::{
    Class, Message, MessageBuilder, MessageType, TransactionId, Transmit, TransportProtocol,
};

use crate::candidate::{Candidate, CandidateType, ConnectionAddress, local_preference};
use crate::context::Ctx;
use crate::event::{ComponentState, Event, Problem};
use crate::path::Path;
use crate::relay::{Allocated, Owner};
use crate::stream::{Gathering, LocalCandidate, Stream, StreamId};

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

impl Outcome {
    /// The problem to report when the query failed.
    pub const fn failed(&self) -> Problem {
        stun_failed(self.stream, self.component, self.base, self.server)
    }
}

/// The problem to report when `server` gave `stream`'s `component` no server-reflexive
/// candidate of `base`.
pub(crate) const fn stun_failed(
    stream: usize,
    component: u16,
    base: SocketAddr,
    server: SocketAddr,
) -> Problem {
    Problem::StunServerFailed {
        stream: StreamId(stream),
        component,
        base,
        server,
    }
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

    /// Offers a response received on `path`; returns whether it answered one of our
    /// queries (on the base it left from: the transactions check the path).
    pub fn handle_response(&mut self, now: Instant, path: Path, message: &Message<'_>) -> bool {
        let tid = message.transaction_id();
        let ours = self.queries.iter().any(|q| q.tid == tid);
        let (transport, source, destination) = (path.transport, path.remote, path.base);
        ours && matches!(
            (self.transactions).handle_response(now, transport, source, destination, message),
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

impl Stream {
    /// Starts gathering (§5.1.1): components still disconnected are gathering now. Returns
    /// the bases to gather from: component, index among the component's bases (the order
    /// of preference), address.
    pub(crate) fn start_gathering<R>(
        &mut self,
        ctx: &mut Ctx<'_, R>,
    ) -> Vec<(u16, usize, SocketAddr)> {
        self.gathering = Gathering::Running;
        let bases = self
            .components
            .iter()
            .flat_map(|c| c.bases.iter().enumerate().map(|(i, b)| (c.id, i, *b)))
            .collect();
        let components: Vec<u16> = self.components.iter().map(|c| c.id).collect();
        for c in components {
            let state = self.component(c).map(|k| k.state);
            if state == Some(ComponentState::Disconnected) {
                self.set_component_state(ctx, c, ComponentState::Gathering, None);
            }
        }
        bases
    }

    /// The host candidate of `base`, the `index`th base of `component` (§5.1.1.1).
    pub(crate) fn add_host<R>(
        &mut self,
        ctx: &mut Ctx<'_, R>,
        component: u16,
        index: usize,
        base: SocketAddr,
    ) {
        let pref = local_preference(base.ip(), index);
        let candidate = Candidate::new(CandidateType::Host, component, base, base, None, pref);
        self.add_local(ctx, candidate, base, base);
    }

    /// The server-reflexive candidate a query from `base` to `server` found (§5.1.1.2).
    pub(crate) fn add_reflexive<R>(&mut self, ctx: &mut Ctx<'_, R>, found: &Outcome) {
        let Some(mapped) = found.mapped else {
            return;
        };
        let pref = self.host_preference(found.base);
        let candidate = Candidate::new(
            CandidateType::ServerReflexive,
            found.component,
            mapped,
            found.base,
            Some(found.server.ip()),
            pref,
        );
        self.add_local(ctx, candidate, mapped, found.base);
    }

    /// The local preference of the host candidate of `base`.
    pub(crate) fn host_preference(&self, base: SocketAddr) -> u16 {
        self.local
            .iter()
            .find(|l| l.base == base && l.candidate.kind == CandidateType::Host && l.is_udp())
            .map_or(0, |l| (l.candidate.priority >> 8) as u16)
    }

    /// Marks the components none of whose queries or allocations is outstanding (`pending`
    /// says which are) as done gathering, with their events, and the stream once all are.
    pub(crate) fn update_gathering<R>(&mut self, ctx: &mut Ctx<'_, R>, pending: &[u16]) {
        if self.gathering != Gathering::Running {
            return;
        }
        let mut all = true;
        for c in &mut self.components {
            if c.gathering_done {
                continue;
            }
            if pending.contains(&c.id) {
                all = false;
                continue;
            }
            c.gathering_done = true;
            ctx.event(Event::ComponentGatheringDone {
                stream: self.id,
                component: c.id,
            });
        }
        if all {
            self.gathering = Gathering::Done;
            ctx.event(Event::CandidateGatheringDone { stream: self.id });
        }
    }

    /// Adds a local candidate unless redundant (§5.1.3: same address, base and transport as
    /// one already there); signals it and pairs it. Returns its index.
    pub(crate) fn add_local<R>(
        &mut self,
        ctx: &mut Ctx<'_, R>,
        candidate: Candidate,
        addr: SocketAddr,
        base: SocketAddr,
    ) -> Option<usize> {
        if self.removed {
            return None;
        }
        if let Some(i) = self.local.iter().position(|l| {
            l.addr == addr && l.base == base && l.candidate.transport == candidate.transport
        }) {
            return Some(i);
        }
        if self.local.len() >= ctx.config.max_candidates {
            ctx.event(Event::Problem(Problem::CandidateLimitReached {
                stream: self.id,
            }));
            return None;
        }
        let kind = candidate.kind;
        if ctx.config.is_signalled(kind) {
            ctx.event(Event::NewLocalCandidate {
                stream: self.id,
                candidate: candidate.clone(),
            });
        }
        self.local.push(LocalCandidate {
            candidate,
            addr,
            base,
        });
        let index = self.local.len() - 1;
        // §6.1.2.2/§6.1.2.4: a server-reflexive candidate is replaced by its base, which
        // is the host candidate already paired; peer-reflexive ones are never paired.
        if ctx.config.is_paired(kind) {
            for r in 0..self.remote_candidates.len() {
                self.make_pair(ctx, index, r);
            }
        }
        Some(index)
    }
}

impl Stream {
    /// The candidates of a TURN allocation (§5.1.1.2, RFC 8656): its relayed address, whose base is itself, and —
    /// over UDP only (`udp`: over TCP the mapped address is the TCP connection's) — the
    /// server-reflexive address.
    pub(crate) fn add_relayed<R>(&mut self, ctx: &mut Ctx<'_, R>, found: &Allocated) {
        let Owner {
            component, base, ..
        } = found.owner;
        let udp = found.transport == TransportProtocol::Udp;
        let pref = self.host_preference(base);
        let server = Some(found.server.ip());
        // The mapped address a server saw over TCP is no UDP server-reflexive candidate.
        if let Some(mapped) = found.mapped.filter(|_| udp) {
            let kind = CandidateType::ServerReflexive;
            let srflx = Candidate::new(kind, component, mapped, base, server, pref);
            self.add_local(ctx, srflx, mapped, base);
        }
        let related = found.mapped.unwrap_or(base);
        let relayed = found.relayed;
        let kind = CandidateType::Relayed;
        // RFC 8445 §5.1.2.1 leaves the local preference to the agent: as browsers rank their
        // relays, one reached over TCP (a longer, head-of-line-blocking path) comes below one
        // reached over UDP from the same base.
        let pref = if udp { pref } else { pref >> 1 };
        let mut candidate = Candidate::new(kind, component, relayed, related, server, pref);
        candidate.related = Some((ConnectionAddress::Ip(related.ip()), related.port()));
        self.add_local(ctx, candidate, relayed, relayed);
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
