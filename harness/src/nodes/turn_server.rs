//! The TURN server of `stun-proto` (RFC 8656) as a node: it listens on one address over UDP
//! (and, if asked, on one over TCP) and relays from a pool of relayed addresses on another,
//! all of them the host's addresses.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use stun_proto::turn::server::{
    FiveTuple, Handled, PeerClass, TurnServer as Server, TurnServerConfig,
};
use stun_proto::{Transmit, TransportProtocol};

use crate::Node;

/// A TURN server node.
pub struct TurnServer {
    server: Server<ChaCha20Rng>,
    listen: SocketAddr,
    listen_tcp: Option<SocketAddr>,
    relays: Vec<SocketAddr>,
    /// What the server asked to relay, in arrival order.
    outbox: VecDeque<Transmit>,
    scratch: Vec<u8>,
}

impl TurnServer {
    /// A server for `realm` listening on `listen`, relaying from `relays` (each one
    /// allocation), with one user; nonces and ids drawn from `seed`.
    pub fn new(
        now: Instant,
        listen: SocketAddr,
        relays: Vec<SocketAddr>,
        realm: &str,
        user: (&str, &str),
        seed: u64,
    ) -> Self {
        let mut config = TurnServerConfig::new(realm, relays.clone());
        // Two peers of the simulated world may both relay through it (both relay-only, or
        // both behind symmetric NATs): a deployment serving WebRTC lets its clients' relayed
        // addresses reach each other, which the filter denies by default.
        config
            .peer_filter
            .allowed_classes
            .insert(PeerClass::OwnRelay);
        let mut server = Server::new(now, config, ChaCha20Rng::seed_from_u64(seed));
        // The user name and password are ASCII: OpaqueString accepts them.
        let _ = server.add_user(user.0, user.1);
        Self {
            server,
            listen,
            listen_tcp: None,
            relays,
            outbox: VecDeque::new(),
            scratch: vec![0; 2048],
        }
    }

    /// Also accepts clients over TCP on `listen` (RFC 8656 §3.1: TURN over TCP, as browsers
    /// fall back to when UDP is blocked).
    pub fn with_tcp(mut self, listen: SocketAddr) -> Self {
        self.listen_tcp = Some(listen);
        self
    }

    /// The machine, for its counters.
    pub const fn server(&self) -> &Server<ChaCha20Rng> {
        &self.server
    }
}

impl Node for TurnServer {
    fn handle_datagram(
        &mut self,
        now: Instant,
        transport: TransportProtocol,
        source: SocketAddr,
        destination: SocketAddr,
        payload: Bytes,
    ) {
        let listening = match transport {
            TransportProtocol::Tcp => self.listen_tcp,
            _ => Some(self.listen),
        };
        if Some(destination) == listening {
            let tuple = FiveTuple {
                transport,
                client: source,
                server: destination,
            };
            if let Handled::Relay(t) = self.server.handle_client_datagram(now, tuple, &payload) {
                self.outbox.push_back(Transmit {
                    transport: t.transport,
                    source: t.source,
                    destination: t.destination,
                    payload: Bytes::copy_from_slice(t.payload),
                });
            }
        } else if transport == TransportProtocol::Udp && self.relays.contains(&destination) {
            self.scratch.resize(payload.len() + 64, 0);
            if let Handled::Relay(t) = self.server.handle_peer_datagram_into(
                now,
                destination,
                source,
                &payload,
                &mut self.scratch,
            ) {
                self.outbox.push_back(Transmit {
                    transport: t.transport,
                    source: t.source,
                    destination: t.destination,
                    payload: Bytes::copy_from_slice(t.payload),
                });
            }
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.server.handle_timeout(now);
    }

    fn listens(&self, local: SocketAddr) -> bool {
        Some(local) == self.listen_tcp
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.outbox
            .pop_front()
            .or_else(|| self.server.poll_transmit())
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.server.poll_timeout()
    }
}
