//! The full [`Peer`] (ICE + DTLS) as a simulator node: it starts at a given virtual time,
//! trickles the peer's JSON signalling lines over the world's signalling channel — the same
//! lines the real-UDP command line prints —, and once ready sends a ping every second (or
//! every `Liveness::ping_interval`) over the transport (DTLS records when DTLS is on),
//! counting the other side's, so the matrix sees not only a selected pair and a finished
//! handshake but data flowing for the whole call.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use dtls_proto::crypto::RustCrypto;
use dtls_proto::{CertificateParams, DtlsCertificate};
use ice_proto::{AgentConfig, CandidateType, TurnServer};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use stun_proto::{Transmit, TransportProtocol};

use crate::Node;
use crate::matrix::{CandidateKind, Liveness, MatrixPeer, PeerSetup, Selected};
use crate::nodes::ice_tcp::IceTcpSockets;
use crate::peer::{Event, Peer, PeerConfig, PeerDtlsConfig, PeerState, Setup, Signal};

/// A peer counts as connected while a ping arrived within its ping interval plus this: the
/// W3C "disconnected" threshold (10 s without a consent response), which 1 s pings over a
/// path losing half its datagrams (six lossy hops at 10% each) miss one time in 2000.
const PING_SLACK: Duration = Duration::from_secs(10);
/// The certificates' notBefore (unix time): the simulator has no wall clock, and a fixed
/// value keeps runs reproducible.
const CERTIFICATE_NOT_BEFORE: u64 = 1_767_225_600; // 2026-01-01

/// See the module documentation.
pub struct PeerNode {
    peer: Peer,
    start_at: Instant,
    started: bool,
    signals: VecDeque<String>,
    ping_interval: Duration,
    next_ping: Option<Instant>,
    last_ping_received: Option<Instant>,
    last_seen: Instant,
    pings_received: u64,
    ready_at: Option<Instant>,
    dtls_done_at: Option<Instant>,
    no_path_at: Option<Instant>,
    log: Vec<Event>,
    /// Its ICE-TCP sockets, when it has a TCP base.
    ice_tcp: Option<IceTcpSockets>,
}

impl PeerNode {
    /// A peer as the matrix sets it up, with DTLS (`setup:actpass` when controlling, `active`
    /// otherwise, as an offer and its answer), starting at `setup.start`.
    pub fn new(setup: &PeerSetup) -> Self {
        Self::with_dtls(setup, true)
    }

    /// As [`new`](Self::new), with or without DTLS.
    pub fn with_dtls(setup: &PeerSetup, dtls: bool) -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(setup.seed);
        let setup_value = if setup.controlling {
            Setup::ActPass
        } else {
            Setup::Active
        };
        let dtls = dtls.then(|| dtls_config(&mut rng, setup_value));
        let config = PeerConfig {
            ice: AgentConfig {
                controlling: setup.controlling,
                stun_servers: vec![setup.stun],
                consent_interval: setup.liveness.consent_interval,
                keepalive_interval: setup.liveness.keepalive_interval,
                turn_servers: [
                    (setup.turn.0, TransportProtocol::Udp),
                    (setup.turn_tcp, TransportProtocol::Tcp),
                ]
                .map(|(server, transport)| TurnServer {
                    server,
                    transport,
                    username: setup.turn.1.to_owned(),
                    password: setup.turn.2.to_owned(),
                })
                .into(),
                ..AgentConfig::default()
            },
            bases: vec![setup.local],
            tcp_bases: setup.tcp_local.into_iter().collect(),
            relay_only: false,
            dtls,
        };
        // unwrap: a fresh agent takes one stream with one base.
        let peer = Peer::new(config, rng).expect("a fresh peer takes its base");
        let mut node =
            Self::from_peer(peer, setup.start).with_ping_interval(setup.liveness.ping_interval);
        node.ice_tcp = setup.tcp_local.map(IceTcpSockets::new);
        node
    }

    /// Pings every `interval` once ready (default 1 s).
    pub fn with_ping_interval(mut self, interval: Duration) -> Self {
        self.ping_interval = interval;
        self
    }

    /// A node around any peer, which starts at `start_at`.
    pub fn from_peer(peer: Peer, start_at: Instant) -> Self {
        Self {
            peer,
            start_at,
            started: false,
            signals: VecDeque::new(),
            ping_interval: Liveness::default().ping_interval,
            next_ping: None,
            last_ping_received: None,
            last_seen: start_at,
            pings_received: 0,
            ready_at: None,
            dtls_done_at: None,
            no_path_at: None,
            log: Vec::new(),
            ice_tcp: None,
        }
    }

    /// The peer, for inspection.
    pub const fn peer(&self) -> &Peer {
        &self.peer
    }

    /// The peer, to act on it as an application would (answer its data, say).
    pub fn peer_mut(&mut self) -> &mut Peer {
        &mut self.peer
    }

    /// Pings received from the other peer.
    pub const fn pings_received(&self) -> u64 {
        self.pings_received
    }

    /// Every event the peer reported, in order.
    pub fn events(&self) -> &[Event] {
        &self.log
    }

    /// Closes the peer (DTLS close_notify, ICE stops).
    pub fn handle_close(&mut self, now: Instant) {
        self.peer.handle_close(now);
        self.drain(now);
    }

    fn drain(&mut self, now: Instant) {
        while let Some(s) = self.peer.poll_signal() {
            self.signals.push_back(s.to_line());
        }
        while let Some(e) = self.peer.poll_event() {
            match &e {
                Event::StateChanged(PeerState::Ready) => {
                    self.ready_at = Some(now);
                    self.next_ping.get_or_insert(now);
                }
                Event::StateChanged(s) if s.is_terminal() => {
                    self.next_ping = None;
                    if matches!(s, PeerState::Failed(_)) {
                        self.no_path_at.get_or_insert(now);
                    }
                }
                Event::Ice(ice)
                    if self.ready_at.is_none()
                        && matches!(
                            **ice,
                            ice_proto::Event::ConnectionStateChanged(
                                ice_proto::ConnectionState::Disconnected
                            )
                        ) =>
                {
                    // Before any pair: ICE says there is no path now (issue 15).
                    self.no_path_at.get_or_insert(now);
                }
                Event::DtlsConnected(_) => self.dtls_done_at = Some(now),
                Event::Data(data) if data.as_slice() == b"ping" => {
                    self.pings_received += 1;
                    self.last_ping_received = Some(now);
                }
                _ => {}
            }
            self.log.push(e);
        }
    }

    fn ping(&mut self, now: Instant) {
        while let Some(at) = self.next_ping.filter(|&at| at <= now) {
            // Refused only when no longer ready: then the ping is not sent.
            let _ = self.peer.handle_send(now, b"ping");
            self.next_ping = Some(at + self.ping_interval);
        }
    }
}

fn kind(t: CandidateType) -> CandidateKind {
    match t {
        CandidateType::ServerReflexive => CandidateKind::ServerReflexive,
        CandidateType::PeerReflexive => CandidateKind::PeerReflexive,
        CandidateType::Relayed => CandidateKind::Relayed,
        // Host, and any type a later ice-proto adds: not a translated address.
        _ => CandidateKind::Host,
    }
}

/// A peer's DTLS configuration: a fresh self-signed certificate (RustCrypto, P-256) and the
/// `setup` value to signal.
pub fn dtls_config(rng: &mut ChaCha20Rng, setup: Setup) -> PeerDtlsConfig {
    let params = CertificateParams::new(CERTIFICATE_NOT_BEFORE);
    // unwrap: generating a P-256 key and signing a certificate with a fixed notBefore cannot
    // fail with the RustCrypto provider.
    let certificate =
        DtlsCertificate::generate(&RustCrypto, rng, &params).expect("certificate generation");
    PeerDtlsConfig {
        certificate,
        setup,
        provider: &RustCrypto,
        // Like `harness peer`: DTLS 1.3 offered first, 1.2 accepted (docs/dtls.md).
        versions: vec![
            dtls_proto::ProtocolVersion::Dtls13,
            dtls_proto::ProtocolVersion::Dtls12,
        ],
    }
}

impl Node for PeerNode {
    fn handle_datagram(
        &mut self,
        now: Instant,
        transport: TransportProtocol,
        source: SocketAddr,
        destination: SocketAddr,
        payload: Bytes,
    ) {
        self.last_seen = now;
        let frames = (self.ice_tcp.as_mut())
            .filter(|_| transport == TransportProtocol::Tcp)
            .and_then(|tcp| Some((tcp.base(), tcp.incoming(source, destination, &payload)?)));
        match frames {
            // ICE-TCP: frame by frame, as arriving at the TCP base.
            Some((base, frames)) => {
                for frame in frames {
                    (self.peer).handle_datagram(now, transport, source, base, &frame);
                }
            }
            None => {
                (self.peer).handle_datagram(now, transport, source, destination, &payload);
            }
        }
        self.drain(now);
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.last_seen = now;
        if !self.started && now >= self.start_at {
            self.started = true;
            self.peer.handle_start(now);
        }
        self.peer.handle_timeout(now);
        self.drain(now);
        self.ping(now);
        self.drain(now);
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        loop {
            let t = self.peer.poll_transmit()?;
            let Some(tcp) = &mut self.ice_tcp else {
                return Some(t);
            };
            if let Some(t) = tcp.outgoing(t) {
                return Some(t);
            }
        }
    }

    fn listens(&self, local: SocketAddr) -> bool {
        self.ice_tcp.as_ref().is_some_and(|tcp| tcp.base() == local)
    }

    fn poll_timeout(&self) -> Option<Instant> {
        if !self.started {
            return Some(self.start_at);
        }
        [self.peer.poll_timeout(), self.next_ping]
            .into_iter()
            .flatten()
            .min()
    }

    fn handle_signal(&mut self, now: Instant, line: String) {
        self.last_seen = now;
        // Lines that are not ours or do not parse are ignored, as a signalling peer would.
        if let Ok(Some(signal)) = Signal::parse_line(&line) {
            self.peer.handle_signal(now, signal);
        }
        self.drain(now);
    }

    fn poll_signal(&mut self) -> Option<String> {
        self.signals.pop_front()
    }
}

impl MatrixPeer for PeerNode {
    fn failure(&self) -> Option<crate::peer::PeerError> {
        match self.peer.state() {
            PeerState::Failed(e) => Some(e.clone()),
            _ => None,
        }
    }

    fn received_on_selected(&self) -> Option<(ice_proto::PairId, u64)> {
        self.peer.selected_received()
    }

    fn selected(&self) -> Option<Selected> {
        self.peer.selected_types().map(|(l, r)| Selected {
            local: kind(l),
            remote: kind(r),
        })
    }

    fn failed(&self) -> bool {
        matches!(self.peer.state(), PeerState::Failed(_))
    }

    fn dtls_done_at(&self) -> Option<Instant> {
        self.dtls_done_at
    }

    fn ready_at(&self) -> Option<Instant> {
        self.ready_at
    }

    fn no_path_at(&self) -> Option<Instant> {
        self.no_path_at
    }

    /// Ready, and the other side's pings still arrive: one came within the ping interval
    /// plus `PING_SLACK`, or none yet since a ready that recent (a call checked right at
    /// its start, `--hold 0`). ICE "disconnected" (no consent response for a while, W3C) is
    /// transient under loss and not a drop.
    fn connected(&self) -> bool {
        let fresh = self.ping_interval + PING_SLACK;
        let pinged = self
            .last_ping_received
            .or(self.ready_at)
            .is_some_and(|at| self.last_seen.saturating_duration_since(at) <= fresh);
        *self.peer.state() == PeerState::Ready && pinged
    }
}
