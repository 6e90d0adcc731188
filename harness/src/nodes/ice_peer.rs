//! An ICE agent (`ice-proto`) as a peer node: it gathers from one socket, trickles its
//! credentials and candidates to its signalling peer as SDP attribute lines, checks, selects,
//! and then sends a ping every second over the selected pair, answering the other side's —
//! so the matrix sees not only a selected pair but data flowing on it.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ice_proto::sdp::IceAttribute;
use ice_proto::{
    Agent, AgentConfig, CandidateType, ConnectionState, Credentials, Event, Received, StreamId,
    TurnServer,
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use stun_proto::Transmit;

use crate::Node;
use crate::matrix::{CandidateKind, MatrixPeer, PeerSetup, Selected};

/// How often a connected peer pings.
const PING_INTERVAL: Duration = Duration::from_secs(1);
/// A peer counts as connected while a ping arrived this recently.
const PING_FRESHNESS: Duration = Duration::from_secs(5);

/// See the module documentation.
pub struct IcePeer {
    agent: Agent<ChaCha20Rng>,
    stream: StreamId,
    start_at: Instant,
    started: bool,
    signals: VecDeque<String>,
    /// Application datagrams `Agent::send` handed back for the wire.
    data_out: VecDeque<Transmit>,
    remote_ufrag: Option<String>,
    selected: Option<Selected>,
    state: ConnectionState,
    next_ping: Option<Instant>,
    last_ping_received: Option<Instant>,
    last_seen: Instant,
    pings_received: u64,
}

impl IcePeer {
    /// A peer as the matrix sets it up, starting at `start_at`.
    pub fn new(setup: &PeerSetup, start_at: Instant) -> Self {
        let config = AgentConfig {
            controlling: setup.controlling,
            stun_servers: vec![setup.stun],
            turn_servers: vec![TurnServer {
                server: setup.turn.0,
                username: setup.turn.1.to_owned(),
                password: setup.turn.2.to_owned(),
            }],
            ..AgentConfig::default()
        };
        let mut agent = Agent::new(config, ChaCha20Rng::seed_from_u64(setup.seed));
        // A fresh agent has room for a stream with one component and its base.
        let stream = agent.add_stream(1).expect("a new agent takes a stream");
        if let Some(mut s) = agent.stream_mut(stream) {
            s.add_base(1, setup.local)
                .expect("a new stream takes a base");
        }
        Self {
            agent,
            stream,
            start_at,
            started: false,
            signals: VecDeque::new(),
            data_out: VecDeque::new(),
            remote_ufrag: None,
            selected: None,
            state: ConnectionState::New,
            next_ping: None,
            last_ping_received: None,
            last_seen: start_at,
            pings_received: 0,
        }
    }

    /// The agent, for inspection.
    pub const fn agent(&self) -> &Agent<ChaCha20Rng> {
        &self.agent
    }

    /// Pings received from the other peer.
    pub const fn pings_received(&self) -> u64 {
        self.pings_received
    }

    fn drain_events(&mut self, now: Instant) {
        while let Some(event) = self.agent.poll_event() {
            match event {
                Event::NewLocalCandidate { candidate, .. } => {
                    self.signals
                        .push_back(IceAttribute::Candidate(candidate).to_string());
                }
                Event::CandidateGatheringDone { .. } => self
                    .signals
                    .push_back(IceAttribute::EndOfCandidates.to_string()),
                Event::NewSelectedPair { local, remote, .. } => {
                    self.selected = Some(Selected {
                        local: kind(local.kind),
                        remote: kind(remote.kind),
                    });
                    self.next_ping.get_or_insert(now);
                }
                Event::ConnectionStateChanged(state) => self.state = state,
                _ => {}
            }
        }
    }

    fn ping(&mut self, now: Instant) {
        while let Some(at) = self.next_ping.filter(|&at| at <= now) {
            // `send` fails only before selection or after failure: then there is nothing to send.
            if let Ok(datagram) = self.agent.send(now, self.stream, 1, b"ping") {
                self.data_out.push_back(datagram);
            }
            self.next_ping = Some(at + PING_INTERVAL);
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

impl Node for IcePeer {
    fn handle_datagram(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        payload: Bytes,
    ) {
        self.last_seen = now;
        let received = self.agent.handle_datagram(
            now,
            stun_proto::TransportProtocol::Udp,
            source,
            destination,
            &payload,
        );
        if let Received::Data { data, .. } = received {
            if data == b"ping" {
                self.pings_received += 1;
                self.last_ping_received = Some(now);
            }
        }
        self.drain_events(now);
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.last_seen = now;
        if !self.started && now >= self.start_at {
            self.started = true;
            let credentials = self
                .agent
                .stream(self.stream)
                .map(|s| s.local_credentials().clone());
            if let Some(c) = credentials {
                self.signals
                    .push_back(IceAttribute::Ufrag(c.ufrag.clone()).to_string());
                self.signals
                    .push_back(IceAttribute::Pwd(c.pwd.clone()).to_string());
            }
            // Gathering a fresh stream cannot fail.
            let _ = self.agent.handle_gather(now, self.stream);
        }
        self.agent.handle_timeout(now);
        self.ping(now);
        self.drain_events(now);
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.agent
            .poll_transmit()
            .or_else(|| self.data_out.pop_front())
    }

    fn poll_timeout(&self) -> Option<Instant> {
        if !self.started {
            return Some(self.start_at);
        }
        [self.agent.poll_timeout(), self.next_ping]
            .into_iter()
            .flatten()
            .min()
    }

    fn handle_signal(&mut self, now: Instant, line: String) {
        self.last_seen = now;
        // Lines that do not parse are ignored, as a signalling peer would.
        match IceAttribute::parse(&line) {
            Ok(IceAttribute::Ufrag(ufrag)) => self.remote_ufrag = Some(ufrag),
            Ok(IceAttribute::Pwd(pwd)) => {
                if let Some(c) = self
                    .remote_ufrag
                    .take()
                    .and_then(|u| Credentials::new(&u, &pwd).ok())
                {
                    let _ = self.agent.handle_remote_credentials(now, self.stream, c);
                }
            }
            Ok(IceAttribute::Candidate(c)) => {
                let _ = self.agent.handle_remote_candidate(now, self.stream, c);
            }
            Ok(IceAttribute::EndOfCandidates) => {
                let _ = self.agent.handle_remote_end_of_candidates(now, self.stream);
            }
            _ => {}
        }
        self.drain_events(now);
    }

    fn poll_signal(&mut self) -> Option<String> {
        self.signals.pop_front()
    }
}

impl MatrixPeer for IcePeer {
    fn selected(&self) -> Option<Selected> {
        self.selected
    }

    fn failed(&self) -> bool {
        self.state == ConnectionState::Failed
    }

    /// Not failed or closed, and the other side's pings still arrive. "Disconnected" (no
    /// consent response for a while, W3C) is transient under loss and not a drop.
    fn connected(&self) -> bool {
        let pinged = self
            .last_ping_received
            .is_some_and(|at| self.last_seen.saturating_duration_since(at) <= PING_FRESHNESS);
        !matches!(
            self.state,
            ConnectionState::Failed | ConnectionState::Closed
        ) && pinged
    }
}
