//! Relayed candidates (RFC 8445 §5.1.1.2 with RFC 8656): a TURN allocation per base and
//! TURN server, through stun-proto's TURN client. The allocation yields a relayed candidate
//! (its base is itself) and the server-reflexive address the server saw. Everything the
//! agent sends from a relayed address — checks, answers, consent, data — goes through the
//! allocation: a permission for the peer's IP first (§9), Send indications, and ChannelData
//! once the pair is selected and a channel bound (§11, §12). A check for a peer whose
//! permission is still being asked for waits in the TURN client and leaves right after the
//! CreatePermission success — the server would drop it before, and the first relayed check
//! would only get through one retransmission later. What the server relays back is handled
//! as if it had arrived on the relayed address from the peer.

use std::net::SocketAddr;
use std::time::Instant;

use rand_chacha::ChaCha20Rng;
use rand_core::{CryptoRng, RngCore, SeedableRng};
use stun_proto::TransmitRef;
use stun_proto::transaction::IgnoreReason;
use stun_proto::turn::client::{
    AllocationFamily, IgnoredReason, Incoming, SendError as TurnSendError, TurnClient,
    TurnClientConfig, TurnEvent,
};

use crate::agent::Agent;
use crate::candidate::{Candidate, CandidateType};
use crate::checklist::PairState;
use crate::event::{Event, Problem};
use crate::stream::StreamId;

/// A TURN server and the long-term credentials to use it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct TurnServer {
    /// Its address (reached over [`AgentConfig::turn_transport`](crate::AgentConfig)).
    pub server: SocketAddr,
    /// The long-term credential username.
    pub username: String,
    /// The long-term credential password.
    pub password: String,
}

/// One allocation, for one base of one component.
#[derive(Debug)]
pub(crate) struct Relay {
    pub client: TurnClient<ChaCha20Rng>,
    pub stream: usize,
    pub component: u16,
    pub base: SocketAddr,
    pub server: SocketAddr,
    /// The relayed address, once allocated.
    pub relayed: Option<SocketAddr>,
    /// Still allocating (gathering waits for it).
    pub pending: bool,
    /// Its base was removed: deallocated at the restart that followed, no longer used.
    pub retired: bool,
    /// Where a datagram is framed for the allocation (ChannelData or a Send indication):
    /// kept from one datagram to the next, so that sending through the relay allocates only
    /// while the buffer grows to the largest datagram.
    pub send_buf: Vec<u8>,
}

/// The most a TURN framing adds to a datagram: a Send indication to an IPv6 peer (56 bytes,
/// RFC 8656 §11.1) with room to spare; ChannelData adds 4, and up to 3 of padding over TCP
/// (§12.5).
const RELAY_OVERHEAD: usize = 64;

/// Why a datagram could not leave through an allocation now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RelayRefusal {
    /// The permission for the peer is asked for and not confirmed yet (RFC 8656 §9).
    Pending,
    /// The allocation is gone, or the datagram does not fit.
    Refused,
}

/// What a datagram from a TURN server turned out to be.
pub(crate) enum FromRelay<'a> {
    /// Consumed by the TURN client.
    Handled,
    /// Relayed from `peer` to our relayed address.
    Data {
        relayed: SocketAddr,
        peer: SocketAddr,
        data: &'a [u8],
    },
}

impl<R: RngCore + CryptoRng> Agent<R> {
    /// Starts an allocation from `base` on every TURN server of its family.
    pub(crate) fn start_relays(
        &mut self,
        now: Instant,
        s: usize,
        component: u16,
        base: SocketAddr,
    ) {
        for i in 0..self.config.turn_servers.len() {
            let t = &self.config.turn_servers[i];
            if t.server.is_ipv4() != base.is_ipv4() {
                continue;
            }
            let mut config = TurnClientConfig::new(
                base,
                t.server,
                self.config.turn_transport,
                t.username.clone(),
                t.password.clone(),
            );
            // A relayed address of the base's family (RFC 8656 §7.1: the server's default is
            // IPv4; an IPv6 one takes REQUESTED-ADDRESS-FAMILY), so it pairs with the peer's
            // candidates of that family.
            if base.is_ipv6() {
                config.address_family = AllocationFamily::Ipv6;
            }
            config.transactions = self.config.turn_requests.clone();
            let server = t.server;
            let mut seed = [0u8; 32];
            self.rng.fill_bytes(&mut seed);
            let mut client = TurnClient::new(config, ChaCha20Rng::from_seed(seed));
            if client.handle_allocate(now).is_err() || self.relays.len() >= MAX_RELAYS {
                self.push_event(Event::Problem(Problem::TurnServerFailed {
                    stream: StreamId(s),
                    component,
                    base,
                    server,
                }));
                continue;
            }
            self.relays.push(Relay {
                client,
                stream: s,
                component,
                base,
                server,
                relayed: None,
                pending: true,
                retired: false,
                send_buf: Vec::new(),
            });
        }
    }

    /// Turns TURN events into candidates and problems.
    pub(crate) fn pump_relays(&mut self, now: Instant) {
        for i in 0..self.relays.len() {
            while let Some(event) = self.relays[i].client.poll_event() {
                let r = &mut self.relays[i];
                let (s, component, base, server) = (r.stream, r.component, r.base, r.server);
                if self.streams.get(s).is_some_and(|st| st.removed) {
                    // Its stream is gone: nothing to report, nothing to add.
                    continue;
                }
                match event {
                    TurnEvent::Allocated(allocation) => {
                        r.pending = false;
                        r.relayed = Some(allocation.relayed);
                        self.relay_candidates(i);
                        self.permit_relayed_pairs(now, s);
                    }
                    TurnEvent::AllocationFailed(_) | TurnEvent::Expired => {
                        r.pending = false;
                        self.push_event(Event::Problem(Problem::TurnServerFailed {
                            stream: StreamId(s),
                            component,
                            base,
                            server,
                        }));
                    }
                    _ => {}
                }
            }
        }
    }

    /// Asks for the permission (RFC 8656 §9) of every peer a relayed pair of stream `s` is
    /// to check, all at once, as soon as the pair exists: a check leaves through the
    /// allocation only once its peer is permitted (`relay_send`), and asking as each check
    /// comes up in the schedule puts a CreatePermission round trip to the server in front of
    /// every relayed check, one after the other. Peers already permitted or asked for cost
    /// nothing (the TURN client's requests are idempotent); a refused one (403, a private
    /// address the server will not relay to) fails only its own pairs.
    pub(crate) fn permit_relayed_pairs(&mut self, now: Instant, s: usize) {
        let Some(st) = self.streams.get(s) else {
            return;
        };
        for p in st.checklist.pairs() {
            if p.state() == &PairState::Failed {
                continue;
            }
            let relay = self
                .relays
                .iter_mut()
                .find(|r| r.relayed == Some(p.base()) && !r.retired);
            if let Some(r) = relay {
                if !r.client.has_permission(p.remote_addr().ip()) {
                    // Refusals (a full table, a peer of the wrong family) surface when the
                    // check itself is sent.
                    let _ = r.client.handle_create_permission(now, p.remote_addr().ip());
                }
            }
        }
    }

    /// The relayed candidate of allocation `i`, and the server-reflexive one its mapped
    /// address gives.
    pub(crate) fn relay_candidates(&mut self, i: usize) {
        let Some(r) = self.relays.get(i) else {
            return;
        };
        let Some(allocation) = r.client.allocation().copied() else {
            return;
        };
        let (s, component, base, server) = (r.stream, r.component, r.base, r.server);
        let pref = self.host_preference(s, base);
        // Over TCP the mapped address is the TCP connection's: no UDP server-reflexive
        // candidate comes from it.
        let udp = self.config.turn_transport == stun_proto::TransportProtocol::Udp;
        if let Some(mapped) = allocation.mapped.filter(|_| udp) {
            let srflx = Candidate::new(
                CandidateType::ServerReflexive,
                component,
                mapped,
                base,
                Some(server.ip()),
                pref,
            );
            self.add_local(s, srflx, mapped, base);
        }
        let related = allocation.mapped.unwrap_or(base);
        let relayed = allocation.relayed;
        let mut candidate = Candidate::new(
            CandidateType::Relayed,
            component,
            relayed,
            related,
            Some(server.ip()),
            pref,
        );
        candidate.related = Some((crate::ConnectionAddress::Ip(related.ip()), related.port()));
        self.add_local(s, candidate, relayed, relayed);
    }

    /// The local preference of the host candidate of `base`.
    pub(crate) fn host_preference(&self, s: usize, base: SocketAddr) -> u16 {
        self.streams.get(s).map_or(0, |st| {
            st.local
                .iter()
                .find(|l| l.base == base && l.candidate.kind == CandidateType::Host)
                .map_or(0, |l| (l.candidate.priority >> 8) as u16)
        })
    }

    /// The relay whose relayed address is `addr`.
    pub(crate) fn relay_of(&self, addr: SocketAddr) -> Option<usize> {
        self.relays
            .iter()
            .position(|r| r.relayed == Some(addr) && !r.retired)
    }

    /// Sends `payload` from relay `relay`'s relayed address to `peer` through its
    /// allocation, asking for the peer's permission first if it has none: the datagram to
    /// send now, framed in the relay's reused buffer, or why there is none.
    pub(crate) fn relay_send(
        &mut self,
        now: Instant,
        relay: usize,
        peer: SocketAddr,
        payload: &[u8],
    ) -> Result<TransmitRef<'_>, RelayRefusal> {
        let relay = self.relays.get_mut(relay).ok_or(RelayRefusal::Refused)?;
        if !relay.client.has_permission(peer.ip()) {
            // Idempotent for a peer already asked for (RFC 8656 §9).
            let _ = relay.client.handle_create_permission(now, peer.ip());
        }
        let needed = payload.len() + RELAY_OVERHEAD;
        if relay.send_buf.len() < needed {
            relay.send_buf.resize(needed, 0);
        }
        relay
            .client
            .handle_send_into(now, peer, payload, &mut relay.send_buf)
            .map_err(|e| match e {
                TurnSendError::PermissionPending(_) => RelayRefusal::Pending,
                _ => RelayRefusal::Refused,
            })
    }

    /// Hands `payload` for `peer` to relay `relay`'s TURN client to hold until the peer's
    /// permission is confirmed (it then leaves with the client's transmits); whether the
    /// client took it.
    pub(crate) fn relay_hold(
        &mut self,
        now: Instant,
        relay: usize,
        peer: SocketAddr,
        payload: &[u8],
    ) -> bool {
        self.relays
            .get_mut(relay)
            .is_some_and(|r| r.client.handle_send(now, peer, payload).is_ok())
    }

    /// Binds a channel to the peer of a selected relayed pair (data as ChannelData, §12).
    pub(crate) fn relay_bind(&mut self, now: Instant, relayed: SocketAddr, peer: SocketAddr) {
        if let Some(i) = self.relay_of(relayed) {
            let _ = self.relays[i].client.handle_bind_channel(now, peer);
        }
    }

    /// Offers a datagram to the TURN client it may belong to.
    pub(crate) fn offer_to_relay<'a>(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        payload: &'a [u8],
    ) -> Option<FromRelay<'a>> {
        let i = self
            .relays
            .iter()
            .position(|r| r.base == destination && r.client.server() == source)?;
        let relayed = self.relays[i].relayed;
        match self.relays[i].client.handle_incoming(now, source, payload) {
            Incoming::Data { peer, data, .. } => Some(FromRelay::Data {
                relayed: relayed?,
                peer,
                data,
            }),
            // A response to no TURN transaction may answer a gathering query: one server
            // is often both the STUN and the TURN server (coturn on 3478).
            Incoming::NotTurn(_)
            | Incoming::Ignored(IgnoredReason::Transaction(IgnoreReason::UnknownTransaction)) => {
                None
            }
            _ => Some(FromRelay::Handled),
        }
    }
}

/// The most TURN allocations an agent holds.
pub(crate) const MAX_RELAYS: usize = 64;

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use stun_proto::TransportProtocol;

    use super::*;
    use crate::AgentConfig;
    use crate::test_support::t0;

    /// One server as STUN and TURN server (coturn on 3478): the answer to the Binding query
    /// reaches the gatherer, not the TURN client, and yields the server-reflexive candidate.
    #[test]
    fn a_stun_answer_from_the_turn_server_reaches_the_gatherer() {
        use stun_proto::attribute::XorMappedAddress;
        use stun_proto::{Message, MessageBuilder, MessageType, Method};

        let server: SocketAddr = "198.51.100.20:3478".parse().unwrap();
        let base: SocketAddr = "192.168.1.2:5000".parse().unwrap();
        let mapped: SocketAddr = "203.0.113.7:40000".parse().unwrap();
        let config = AgentConfig {
            stun_servers: vec![server],
            turn_servers: vec![TurnServer {
                server,
                username: "user".into(),
                password: "pass".into(),
            }],
            ..AgentConfig::default()
        };
        let mut agent = Agent::new(config, ChaCha20Rng::seed_from_u64(2));
        let s = agent.add_stream(1).unwrap();
        agent.stream_mut(s).unwrap().add_base(1, base).unwrap();
        let mut now = t0();
        agent.handle_gather(now, s).unwrap();
        let mut query = None;
        while query.is_none() && now < t0() + Duration::from_secs(1) {
            query = std::iter::from_fn(|| agent.poll_transmit())
                .find(|t| Message::parse(&t.payload).is_ok_and(|m| m.method() == Method::BINDING));
            now = agent
                .poll_timeout()
                .unwrap_or(now + Duration::from_millis(50));
            agent.handle_timeout(now);
        }
        let query = query.expect("a Binding query to the server");
        let tid = Message::parse(&query.payload).unwrap().transaction_id();
        let mut answer = MessageBuilder::new_bytes(MessageType::BINDING_SUCCESS, tid);
        answer.add(&XorMappedAddress(mapped)).unwrap();
        answer.add_fingerprint().unwrap();
        let answer = answer.into_bytes();
        agent.handle_datagram(now, TransportProtocol::Udp, server, base, &answer);
        let srflx = agent
            .stream(s)
            .unwrap()
            .local_candidates()
            .any(|c| c.kind == CandidateType::ServerReflexive && c.addr() == Some(mapped));
        assert!(srflx, "the server-reflexive candidate was gathered");
    }

    /// The allocation goes to the server over `AgentConfig::turn_transport`.
    #[test]
    fn allocations_use_the_configured_transport() {
        let server: SocketAddr = "198.51.100.20:3478".parse().unwrap();
        for transport in [TransportProtocol::Udp, TransportProtocol::Tcp] {
            let config = AgentConfig {
                turn_servers: vec![TurnServer {
                    server,
                    username: "user".into(),
                    password: "pass".into(),
                }],
                turn_transport: transport,
                ..AgentConfig::default()
            };
            let mut agent = Agent::new(config, ChaCha20Rng::seed_from_u64(1));
            let s = agent.add_stream(1).unwrap();
            let base = "192.0.2.1:5000".parse().unwrap();
            agent.stream_mut(s).unwrap().add_base(1, base).unwrap();
            let mut now = t0();
            agent.handle_gather(now, s).unwrap();
            let mut allocate = None;
            while allocate.is_none() && now < t0() + Duration::from_secs(1) {
                allocate =
                    std::iter::from_fn(|| agent.poll_transmit()).find(|t| t.destination == server);
                now = agent
                    .poll_timeout()
                    .unwrap_or(now + Duration::from_millis(50));
                agent.handle_timeout(now);
            }
            let allocate = allocate.expect("an Allocate request to the server");
            assert_eq!(allocate.transport, transport);
            assert_eq!(allocate.source, base);
        }
    }
}
