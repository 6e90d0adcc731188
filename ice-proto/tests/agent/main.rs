//! Two ICE agents wired through a small in-memory network on a virtual clock: latency,

//! seeded loss, an optional NAT in front of agent A, instant signalling of candidates.
//! (The full simulator with NAT behaviours and servers is the harness crate's.)

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ice_proto::{
    Agent, AgentConfig, ComponentState, ConnectionState, Event, FailureReason, Handled, SendError,
    StreamId,
};
use ice_proto::{Transmit, TransportProtocol};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

// The counting global allocator implements `GlobalAlloc`, which is unsafe; it only delegates.
#[allow(unsafe_code)]
#[path = "../../../stun-proto/tests/common/counting_allocator.rs"]
mod counting_allocator;
mod network;
mod nomination;
mod relay;
mod restart;
mod trickle;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// A peer: an agent, its one stream, what it received.
pub(crate) struct Peer {
    pub(crate) agent: Agent<ChaCha20Rng>,
    pub(crate) stream: StreamId,
    pub(crate) events: Vec<(Instant, Event)>,
    pub(crate) data: Vec<(Instant, Vec<u8>)>,
    pub(crate) addrs: Vec<SocketAddr>,
}

impl Peer {
    pub(crate) fn new(config: AgentConfig, seed: u64, bases: &[&str]) -> Self {
        Self::with_components(config, seed, &[bases])
    }

    /// A peer whose stream has one component per entry of `bases`.
    pub(crate) fn with_components(config: AgentConfig, seed: u64, bases: &[&[&str]]) -> Self {
        let mut agent = Agent::new(config, ChaCha20Rng::seed_from_u64(seed));
        let stream = agent.add_stream(bases.len() as u16).unwrap();
        let mut addrs: Vec<SocketAddr> = Vec::new();
        for (c, list) in bases.iter().enumerate() {
            for b in *list {
                let a = addr(b);
                agent
                    .stream_mut(stream)
                    .unwrap()
                    .add_base(c as u16 + 1, a)
                    .unwrap();
                addrs.push(a);
            }
        }
        Self {
            agent,
            stream,
            events: Vec::new(),
            data: Vec::new(),
            addrs,
        }
    }

    pub(crate) fn state_changes(&self) -> Vec<ConnectionState> {
        self.events
            .iter()
            .filter_map(|(_, e)| match e {
                Event::ConnectionStateChanged(s) => Some(*s),
                _ => None,
            })
            .collect()
    }

    pub(crate) fn first(&self, pred: impl Fn(&Event) -> bool) -> Option<Instant> {
        self.events.iter().find(|(_, e)| pred(e)).map(|(t, _)| *t)
    }
}

/// A NAT in front of peer A: endpoint-independent mapping, address-and-port-dependent
/// filtering (RFC 4787), private addresses unreachable from outside.
#[derive(Default)]
pub(crate) struct Nat {
    pub(crate) public_ip: Option<std::net::IpAddr>,
    mappings: HashMap<SocketAddr, SocketAddr>,
    permissions: HashSet<(SocketAddr, SocketAddr)>,
}

/// A signalling message: a candidate line or end-of-candidates.
pub(crate) enum Signal {
    Candidate(String),
    EndOfCandidates,
}

/// The network: a time-ordered queue of datagrams.
pub(crate) struct Sim {
    pub(crate) now: Instant,
    pub(crate) start: Instant,
    pub(crate) peers: [Peer; 2],
    queue: BinaryHeap<Reverse<(Instant, u64, usize)>>,
    in_flight: BTreeMap<u64, Transmit>,
    seq: u64,
    pub(crate) latency: Duration,
    pub(crate) loss: f64,
    rng: ChaCha20Rng,
    pub(crate) nat: Option<Nat>,
    /// Drop everything when set (a cut link).
    pub(crate) cut: bool,
    /// Every datagram sent, with its time and sender, for determinism checks.
    pub(crate) log: Vec<(Duration, usize, Transmit)>,
    /// Signal candidates to the other side.
    pub(crate) signal_candidates: bool,
    /// How long the signalling channel takes from each peer (trickle, RFC 8838): `None`
    /// withholds that peer's candidates and end-of-candidates until the test releases them
    /// with [`Sim::release_signals`].
    pub(crate) signal_delay: [Option<Duration>; 2],
    /// Signals on their way: (due, sender, signal).
    signals: Vec<(Option<Instant>, usize, Signal)>,
    pub(crate) extra: Option<Box<dyn relay::Middlebox>>,
    /// Drop datagrams from or to these addresses.
    pub(crate) blocked: Vec<SocketAddr>,
    /// Drop datagrams between the peers' own addresses.
    pub(crate) block_direct: bool,
}

impl Sim {
    pub(crate) fn new(a: Peer, b: Peer, seed: u64) -> Self {
        #[allow(clippy::disallowed_methods)] // the test's one real instant, origin of virtual time
        let start = Instant::now();
        Self {
            now: start,
            start,
            peers: [a, b],
            queue: BinaryHeap::new(),
            in_flight: BTreeMap::new(),
            seq: 0,
            latency: Duration::from_millis(10),
            loss: 0.0,
            rng: ChaCha20Rng::seed_from_u64(seed),
            nat: None,
            cut: false,
            log: Vec::new(),
            signal_candidates: true,
            signal_delay: [Some(Duration::ZERO); 2],
            signals: Vec::new(),
            extra: None,
            block_direct: false,
            blocked: Vec::new(),
        }
    }

    /// Exchanges credentials and starts gathering on both sides.
    pub(crate) fn start(&mut self) {
        let now = self.now;
        let creds: Vec<_> = self
            .peers
            .iter()
            .map(|p| {
                p.agent
                    .stream(p.stream)
                    .unwrap()
                    .local_credentials()
                    .clone()
            })
            .collect();
        for i in 0..2 {
            let p = &mut self.peers[i];
            p.agent
                .handle_remote_credentials(now, p.stream, creds[1 - i].clone())
                .unwrap();
            p.agent.handle_gather(now, p.stream).unwrap();
        }
        self.drain();
    }

    pub(crate) fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// Drains both agents: transmits onto the network, events into the log and signalling.
    pub(crate) fn drain(&mut self) {
        loop {
            let mut progress = false;
            for i in 0..2 {
                while let Some(t) = self.peers[i].agent.poll_transmit() {
                    progress = true;
                    self.send(i, t);
                }
                while let Some(e) = self.peers[i].agent.poll_event() {
                    progress = true;
                    self.signal(i, &e);
                    self.peers[i].events.push((self.now, e));
                }
            }
            if !progress {
                return;
            }
        }
    }

    fn signal(&mut self, from: usize, event: &Event) {
        let signal = match event {
            Event::NewLocalCandidate { candidate, .. } if self.signal_candidates => {
                // Through the SDP grammar, as a real signalling channel would.
                Signal::Candidate(candidate.to_string())
            }
            Event::CandidateGatheringDone { .. } => Signal::EndOfCandidates,
            _ => return,
        };
        match self.signal_delay[from] {
            Some(Duration::ZERO) => self.deliver_signal(from, signal),
            delay => {
                let due = delay.map(|d| self.now + d);
                self.signals.push((due, from, signal));
            }
        }
    }

    /// Hands a signal from peer `from` to the other peer.
    fn deliver_signal(&mut self, from: usize, signal: Signal) {
        let now = self.now;
        let to = &mut self.peers[1 - from];
        match signal {
            Signal::Candidate(line) => {
                to.agent
                    .handle_remote_candidate(now, to.stream, line.parse().unwrap())
                    .unwrap();
            }
            Signal::EndOfCandidates => {
                to.agent
                    .handle_remote_end_of_candidates(now, to.stream)
                    .unwrap();
            }
        }
    }

    /// Delivers the first `count` signals of peer `from` withheld so far (all with `None`),
    /// now, in order.
    pub(crate) fn release_signals(&mut self, from: usize, count: Option<usize>) {
        let mut out = Vec::new();
        let mut keep = Vec::new();
        for (due, f, signal) in std::mem::take(&mut self.signals) {
            if f == from && due.is_none() && count.is_none_or(|n| out.len() < n) {
                out.push(signal);
            } else {
                keep.push((due, f, signal));
            }
        }
        self.signals = keep;
        for signal in out {
            self.deliver_signal(from, signal);
        }
        self.drain();
    }

    /// Delivers the delayed signals due at `self.now`, in order.
    fn deliver_due_signals(&mut self) {
        let now = self.now;
        let (out, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.signals)
            .into_iter()
            .partition(|(due, _, _)| due.is_some_and(|t| t <= now));
        self.signals = keep;
        for (_, from, signal) in out {
            self.deliver_signal(from, signal);
        }
    }

    pub(crate) fn send(&mut self, from: usize, mut t: Transmit) {
        self.log.push((self.now - self.start, from, t.clone()));
        if self.cut
            || (self.loss > 0.0 && (self.rng.next_u32() as f64 / u32::MAX as f64) < self.loss)
        {
            return;
        }
        if from == 0 {
            if let Some(nat) = &mut self.nat {
                let Some(ip) = nat.public_ip else { return };
                let next = 7000 + nat.mappings.len() as u16;
                let public = *nat
                    .mappings
                    .entry(t.source)
                    .or_insert(SocketAddr::new(ip, next));
                nat.permissions.insert((public, t.destination));
                t.source = public;
            }
        }
        self.seq += 1;
        self.in_flight.insert(self.seq, t);
        self.queue
            .push(Reverse((self.now + self.latency, self.seq, from)));
    }

    fn deliver(&mut self, mut t: Transmit) {
        if self.cut {
            return;
        }
        if let Some(extra) = &mut self.extra {
            if extra.owns(t.destination) {
                for out in extra.handle(self.now, t) {
                    self.log.push((self.now - self.start, 9, out.clone()));
                    self.seq += 1;
                    self.in_flight.insert(self.seq, out);
                    self.queue
                        .push(Reverse((self.now + self.latency, self.seq, 9)));
                }
                return;
            }
        }
        let is_peer = |a: &SocketAddr| self.peers.iter().any(|p| p.addrs.contains(a));
        let blocked = self.blocked.contains(&t.source) || self.blocked.contains(&t.destination);
        if blocked || (self.block_direct && is_peer(&t.source) && is_peer(&t.destination)) {
            // Firewalled peers: only the relay gets through.
            return;
        }
        if let Some(nat) = &self.nat {
            if Some(t.destination.ip()) == nat.public_ip {
                let Some((private, _)) = nat.mappings.iter().find(|(_, p)| **p == t.destination)
                else {
                    return;
                };
                if !nat.permissions.contains(&(t.destination, t.source)) {
                    return;
                }
                t.destination = *private;
            } else if self.peers[0].addrs.contains(&t.destination) {
                // Private addresses are unreachable from outside the NAT.
                return;
            }
        }
        let Some(i) = self
            .peers
            .iter()
            .position(|p| p.addrs.contains(&t.destination))
        else {
            return;
        };
        let now = self.now;
        let p = &mut self.peers[i];
        let received = p.agent.handle_datagram(
            now,
            TransportProtocol::Udp,
            t.source,
            t.destination,
            &t.payload,
        );
        if let Handled::Data { data, .. } = received {
            p.data.push((now, data.to_vec()));
        }
    }

    /// The next instant something happens.
    fn next(&self) -> Option<Instant> {
        let timers = self.peers.iter().filter_map(|p| p.agent.poll_timeout());
        let net = self.queue.peek().map(|Reverse((t, _, _))| *t);
        let extra = self.extra.as_ref().and_then(|e| e.poll_timeout());
        let signals = self.signals.iter().filter_map(|(due, _, _)| *due);
        timers.chain(net).chain(extra).chain(signals).min()
    }

    /// Runs until `done` holds or virtual time passes `limit`; returns whether `done` held.
    pub(crate) fn run_until(&mut self, limit: Duration, done: impl Fn(&Sim) -> bool) -> bool {
        let deadline = self.start + limit;
        loop {
            self.drain();
            if done(self) {
                return true;
            }
            let Some(next) = self.next() else {
                return false;
            };
            if next > deadline {
                self.now = deadline;
                return done(self);
            }
            self.now = self.now.max(next);
            self.step();
        }
    }

    /// Everything due at `self.now`.
    fn step(&mut self) {
        let now = self.now;
        self.deliver_due_signals();
        self.drain();
        while let Some(Reverse((t, seq, _))) = self.queue.peek().copied() {
            if t > now {
                break;
            }
            self.queue.pop();
            if let Some(tx) = self.in_flight.remove(&seq) {
                self.deliver(tx);
            }
            self.drain();
        }
        if let Some(extra) = &mut self.extra {
            for out in extra.handle_timeout(now) {
                self.seq += 1;
                self.in_flight.insert(self.seq, out);
                self.queue.push(Reverse((now + self.latency, self.seq, 9)));
            }
        }
        for i in 0..2 {
            if self.peers[i].agent.poll_timeout().is_some_and(|t| t <= now) {
                self.peers[i].agent.handle_timeout(now);
            }
        }
        self.drain();
        // Progress: nothing is left due at `now` once handled (no spinning caller).
        for p in &self.peers {
            if let Some(t) = p.agent.poll_timeout() {
                assert!(t > now, "{:?} still due", p.agent.next_timer());
            }
        }
    }

    pub(crate) fn both(&self, state: ConnectionState) -> bool {
        self.peers.iter().all(|p| p.agent.state() == state)
    }

    /// Sends `payload` from peer `from` on component 1.
    pub(crate) fn send_data(&mut self, from: usize, payload: &[u8]) -> Result<(), SendError> {
        let now = self.now;
        let p = &mut self.peers[from];
        let t = Transmit::from(p.agent.handle_send(now, p.stream, 1, payload)?);
        self.send(from, t);
        Ok(())
    }

    pub(crate) fn selected(&self, i: usize) -> Option<(SocketAddr, SocketAddr)> {
        let p = &self.peers[i];
        let view = p.agent.stream(p.stream)?;
        let pair = view.selected_pair(1)?;
        Some((pair.local.addr()?, pair.remote.addr()?))
    }
}

fn config(controlling: bool) -> AgentConfig {
    AgentConfig {
        controlling,
        ..AgentConfig::default()
    }
}

/// The address of the simulated TURN server of the relay scenarios.
const TURN_SERVER: &str = "203.0.113.50:3478";

/// `config` with the TURN server at `turn` (user "user", password "pass").
fn with_turn(mut config: AgentConfig, turn: SocketAddr) -> AgentConfig {
    config.turn_servers = vec![ice_proto::TurnServer {
        server: turn,
        transport: TransportProtocol::Udp,
        username: "user".into(),
        password: "pass".into(),
    }];
    config
}

/// A (`a`, given the TURN server) at 192.0.2.1:5000 and B (`b`) at 198.51.100.2:6000, seeded
/// `seed` and `seed + 1`, with the simulated TURN server at [`TURN_SERVER`]; `block_direct`
/// leaves only the relay. Started.
fn relay_world(a: AgentConfig, b: AgentConfig, seed: u64, block_direct: bool) -> Sim {
    let turn = addr(TURN_SERVER);
    let a = Peer::new(with_turn(a, turn), seed, &["192.0.2.1:5000"]);
    let b = Peer::new(b, seed + 1, &["198.51.100.2:6000"]);
    let mut sim = Sim::new(a, b, seed);
    sim.block_direct = block_direct;
    sim.extra = Some(Box::new(relay::TurnBox::new(turn)));
    sim.start();
    sim
}

fn host_pair(seed: u64) -> Sim {
    let a = Peer::new(config(true), seed, &["192.0.2.1:5000"]);
    let b = Peer::new(config(false), seed + 1, &["198.51.100.2:6000"]);
    Sim::new(a, b, seed)
}

#[test]
fn host_to_host_connects_and_selects_the_same_pair() {
    let mut sim = host_pair(1);
    sim.start();
    assert!(sim.run_until(Duration::from_secs(5), |s| {
        s.both(ConnectionState::Completed)
    }));
    // One pair, 10 ms each way: A checks at 0 (answered at 20 ms) while B's triggered check
    // returns at 20 ms; A nominates at once (no better pair pending) in the next Ta slot
    // (50 ms) and the nomination is answered at 70 ms; B selects on the request at 60 ms.
    let a_ready = sim.peers[0]
        .first(|e| matches!(e, Event::NewSelectedPair { .. }))
        .unwrap();
    let b_ready = sim.peers[1]
        .first(|e| matches!(e, Event::NewSelectedPair { .. }))
        .unwrap();
    assert_eq!(a_ready - sim.start, Duration::from_millis(70));
    assert_eq!(b_ready - sim.start, Duration::from_millis(60));
    let (a_local, a_remote) = sim.selected(0).unwrap();
    let (b_local, b_remote) = sim.selected(1).unwrap();
    assert_eq!((a_local, a_remote), (b_remote, b_local));
    assert_eq!(a_local, addr("192.0.2.1:5000"));
    // The round-trip time: 10 ms each way.
    let rtt = |sim: &Sim, i: usize| {
        let p = &sim.peers[i];
        p.agent
            .stream(p.stream)
            .unwrap()
            .selected_pair(1)
            .unwrap()
            .rtt
    };
    assert_eq!(rtt(&sim, 0), Some(Duration::from_millis(20)));
    // Consent checks keep measuring it.
    sim.latency = Duration::from_millis(30);
    let t = sim.elapsed() + Duration::from_secs(8);
    sim.run_until(t, |_| false);
    assert_eq!(rtt(&sim, 0), Some(Duration::from_millis(60)));
    assert_eq!(rtt(&sim, 1), Some(Duration::from_millis(60)));
    assert_eq!(
        sim.peers[0].state_changes(),
        [
            ConnectionState::Checking,
            ConnectionState::Connected,
            ConnectionState::Completed
        ]
    );
    assert_eq!(
        sim.peers[1].state_changes(),
        [
            ConnectionState::Checking,
            ConnectionState::Connected,
            ConnectionState::Completed
        ]
    );
    for p in &sim.peers {
        let states: Vec<_> = p
            .events
            .iter()
            .filter_map(|(_, e)| match e {
                Event::ComponentStateChanged { state, .. } => Some(*state),
                _ => None,
            })
            .collect();
        assert_eq!(
            states,
            [
                ComponentState::Gathering,
                ComponentState::Connecting,
                ComponentState::Connected,
                ComponentState::Ready
            ]
        );
    }
}

#[test]
fn data_flows_both_ways_after_selection() {
    let mut sim = host_pair(3);
    sim.start();
    // Before any valid pair there is nowhere to send.
    assert_eq!(sim.send_data(0, b"early"), Err(SendError::NotConnected));
    assert!(sim.run_until(Duration::from_secs(5), |s| {
        s.both(ConnectionState::Completed)
    }));
    sim.send_data(0, b"hello from A").unwrap();
    sim.send_data(1, b"hello from B").unwrap();
    // A DTLS-looking record is not STUN: handed back, not swallowed.
    sim.send_data(0, &[22, 254, 253, 0, 0]).unwrap();
    let t = sim.elapsed() + Duration::from_millis(100);
    sim.run_until(t, |_| false);
    let got =
        |i: usize| -> Vec<Vec<u8>> { sim.peers[i].data.iter().map(|(_, d)| d.clone()).collect() };
    assert_eq!(got(1), [b"hello from A".to_vec(), vec![22, 254, 253, 0, 0]]);
    assert_eq!(got(0), [b"hello from B".to_vec()]);
    // Per-pair counters (W3C candidate-pair stats): application data only.
    let traffic = |i: usize| {
        let p = &sim.peers[i];
        p.agent
            .stream(p.stream)
            .unwrap()
            .selected_pair(1)
            .unwrap()
            .traffic
    };
    let a = traffic(0);
    assert_eq!((a.packets_sent, a.bytes_sent), (2, 12 + 5));
    assert_eq!((a.packets_received, a.bytes_received), (1, 12));
    let b = traffic(1);
    assert_eq!((b.packets_sent, b.bytes_sent), (1, 12));
    assert_eq!((b.packets_received, b.bytes_received), (2, 17));
}

#[test]
fn received_data_names_stream_component_and_pair() {
    let mut sim = host_pair(5);
    sim.start();
    assert!(sim.run_until(Duration::from_secs(5), |s| {
        s.both(ConnectionState::Completed)
    }));
    let now = sim.now;
    let b = &mut sim.peers[1];
    let stream = b.stream;
    let selected = b.agent.stream(stream).unwrap().selected_pair(1).unwrap().id;
    let r = b.agent.handle_datagram(
        now,
        TransportProtocol::Udp,
        addr("192.0.2.1:5000"),
        addr("198.51.100.2:6000"),
        b"rtp",
    );
    assert_eq!(
        r,
        Handled::Data {
            stream,
            component: 1,
            pair: Some(selected),
            source: addr("192.0.2.1:5000"),
            data: b"rtp",
        }
    );
    // On an address that is no base: not ours.
    let r = b.agent.handle_datagram(
        now,
        TransportProtocol::Udp,
        addr("192.0.2.1:5000"),
        addr("198.51.100.2:1"),
        b"rtp",
    );
    assert!(matches!(r, Handled::NotIce(_)));
}

#[test]
fn a_pair_that_only_works_peer_reflexive_is_found() {
    // A is behind a NAT and has no STUN server: it signals only its private host candidate,
    // which B cannot reach. A's checks reach B from the NAT's public address: B learns a
    // peer-reflexive remote candidate (§7.3.1.3) and checks it (triggered, §7.3.1.4); A
    // learns its peer-reflexive local candidate from XOR-MAPPED-ADDRESS (§7.2.5.3.1).
    let a = Peer::new(config(true), 11, &["10.0.0.1:5000"]);
    let b = Peer::new(config(false), 12, &["198.51.100.2:6000"]);
    let mut sim = Sim::new(a, b, 11);
    sim.nat = Some(Nat {
        public_ip: Some("203.0.113.1".parse().unwrap()),
        ..Nat::default()
    });
    sim.start();
    assert!(sim.run_until(Duration::from_secs(10), |s| {
        s.both(ConnectionState::Completed)
    }));
    let public = addr("203.0.113.7:7000".replace(".7:", ".1:").as_str());
    let (a_local, a_remote) = sim.selected(0).unwrap();
    let (b_local, b_remote) = sim.selected(1).unwrap();
    assert_eq!(b_remote, public, "B's remote is A's NAT mapping");
    assert_eq!(b_local, addr("198.51.100.2:6000"));
    assert_eq!(a_remote, addr("198.51.100.2:6000"));
    assert_eq!(
        a_local, public,
        "A's valid pair has the peer-reflexive local candidate"
    );
    let a_view = sim.peers[0].agent.stream(sim.peers[0].stream).unwrap();
    let prflx = a_view.selected_pair(1).unwrap();
    assert_eq!(prflx.local.kind, ice_proto::CandidateType::PeerReflexive);
    let b_view = sim.peers[1].agent.stream(sim.peers[1].stream).unwrap();
    assert_eq!(
        b_view.selected_pair(1).unwrap().remote.kind,
        ice_proto::CandidateType::PeerReflexive
    );
    // Data flows through the NAT both ways.
    sim.send_data(0, b"out").unwrap();
    sim.send_data(1, b"in").unwrap();
    let t = sim.elapsed() + Duration::from_millis(50);
    sim.run_until(t, |_| false);
    assert_eq!(sim.peers[1].data.len(), 1);
    assert_eq!(sim.peers[0].data.len(), 1);
}

fn role_conflict(a_controlling: bool, b_controlling: bool, seed: u64) {
    let a = Peer::new(config(a_controlling), seed, &["192.0.2.1:5000"]);
    let b = Peer::new(config(b_controlling), seed + 1, &["198.51.100.2:6000"]);
    let mut sim = Sim::new(a, b, seed);
    sim.start();
    assert!(sim.run_until(Duration::from_secs(10), |s| {
        s.both(ConnectionState::Completed)
    }));
    let roles: Vec<bool> = sim.peers.iter().map(|p| p.agent.is_controlling()).collect();
    assert_ne!(roles[0], roles[1], "exactly one agent ends controlling");
    // The agent with the larger tie-breaker is controlling (§7.3.1.1).
    let tb: Vec<u64> = sim.peers.iter().map(|p| p.agent.tie_breaker()).collect();
    assert_eq!(roles[0], tb[0] > tb[1]);
    let changed = sim
        .peers
        .iter()
        .filter(|p| {
            p.first(|e| matches!(e, Event::RoleChanged { .. }))
                .is_some()
        })
        .count();
    assert_eq!(changed, 1, "exactly one agent switched");
    let (a_local, a_remote) = sim.selected(0).unwrap();
    assert_eq!(sim.selected(1).unwrap(), (a_remote, a_local));
}

#[test]
fn a_role_conflict_resolves_both_controlling() {
    for seed in [21, 23, 25, 27] {
        role_conflict(true, true, seed);
    }
}

#[test]
fn a_role_conflict_resolves_both_controlled() {
    for seed in [31, 33, 35, 37] {
        role_conflict(false, false, seed);
    }
}

#[test]
fn twenty_percent_loss_still_connects() {
    for seed in 100..200 {
        let mut sim = host_pair(seed);
        sim.loss = 0.2;
        sim.start();
        assert!(
            sim.run_until(Duration::from_secs(30), |s| s
                .both(ConnectionState::Completed)),
            "seed {seed}: {:?} {:?}",
            sim.peers[0].agent.state(),
            sim.peers[1].agent.state()
        );
        assert!(sim.selected(0).is_some() && sim.selected(1).is_some());
        assert_eq!(
            sim.selected(0).unwrap(),
            (sim.selected(1).unwrap().1, sim.selected(1).unwrap().0)
        );
    }
}

#[test]
fn consent_expiry_fails_the_component_after_30_s() {
    let mut sim = host_pair(41);
    sim.start();
    assert!(sim.run_until(Duration::from_secs(5), |s| {
        s.both(ConnectionState::Completed)
    }));
    // Consent stays fresh while the link works: a minute later all is still well.
    let t = sim.elapsed() + Duration::from_secs(60);
    sim.run_until(t, |_| false);
    assert!(sim.both(ConnectionState::Completed));
    let consent_checks = sim.peers[0].agent.stats().consent_checks;
    assert!(
        (10..=16).contains(&consent_checks),
        "{consent_checks} checks in ~60 s"
    );
    // Cut the link. Consent was last refreshed by a response at most ~6 s + 20 ms ago.
    sim.cut = true;
    let cut_at = sim.now;
    let last_fresh = cut_at; // upper bound
    assert!(sim.run_until(Duration::from_secs(200), |s| {
        s.both(ConnectionState::Failed)
    }));
    for p in &sim.peers {
        let failed = p
            .first(|e| {
                matches!(
                    e,
                    Event::ComponentStateChanged {
                        state: ComponentState::Failed,
                        reason: Some(FailureReason::ConsentExpired),
                        ..
                    }
                )
            })
            .expect("failed on consent");
        let after = failed - cut_at;
        assert!(
            after <= Duration::from_secs(30) && after > Duration::from_secs(23),
            "failed {after:?} after the cut"
        );
        assert!(failed <= last_fresh + Duration::from_secs(30));
        // Disconnected came first (10 s without consent), then Failed.
        let states = p.state_changes();
        assert_eq!(
            &states[states.len() - 2..],
            [ConnectionState::Disconnected, ConnectionState::Failed]
        );
    }
    // Unanswered, each check is followed by another 0.8–1.2 s later (the recheck interval),
    // not 4–6 s later: 19–38 in the 23–30 s until consent expired.
    let rechecks = sim.peers[0].agent.stats().consent_checks - consent_checks;
    assert!(
        (19..=38).contains(&rechecks),
        "{rechecks} checks after the cut"
    );
    assert_eq!(sim.send_data(0, b"x"), Err(SendError::Failed));
}

#[test]
fn checks_fail_when_no_pair_works() {
    let mut sim = host_pair(51);
    sim.cut = true;
    sim.start();
    assert!(sim.run_until(Duration::from_secs(120), |s| {
        s.both(ConnectionState::Failed)
    }));
    // Rc = 7 sends, RTO 500 ms doubling capped at 3 s, then 16 × 500 ms: the single
    // pair's first check fails 0.5+1+2+3+3+3 + 8 = 20.5 s after it was sent (at 0); the
    // ICE PAC timer (RFC 8863 §4) holds the failure until 39.5 s. The application learns
    // much earlier that there is no path (issue 15): both sides signalled end-of-candidates
    // and the only check has gone unanswered for `checks_unanswered_after` (5 s) — the
    // overall state is Disconnected from 5 s (both checks left at 0), then Failed.
    for p in &sim.peers {
        let states: Vec<(Duration, ConnectionState)> = p
            .events
            .iter()
            .filter_map(|(t, e)| match e {
                Event::ConnectionStateChanged(state) => Some((*t - sim.start, *state)),
                _ => None,
            })
            .collect();
        let ms = Duration::from_millis;
        assert_eq!(
            states,
            [
                (ms(0), ConnectionState::Checking),
                (ms(5_000), ConnectionState::Disconnected),
                (ms(39_500), ConnectionState::Failed),
            ]
        );
    }
}

/// Failing early is a state, not a verdict: a path that starts working after the agent
/// said Disconnected brings it back.
#[test]
fn a_path_that_works_after_the_early_disconnected_connects() {
    let mut sim = host_pair(52);
    sim.cut = true;
    sim.start();
    assert!(sim.run_until(Duration::from_secs(10), |s| {
        s.both(ConnectionState::Disconnected)
    }));
    sim.cut = false;
    // The check's retransmission at 6.5 s was lost; the next, at 9.5 s, gets through.
    assert!(sim.run_until(Duration::from_secs(15), |s| {
        s.both(ConnectionState::Completed)
    }));
}

#[test]
fn spurious_timeouts_change_nothing() {
    let run = |spurious: bool| {
        let mut sim = host_pair(61);
        sim.loss = 0.2;
        sim.start();
        let mut t = Duration::ZERO;
        while t < Duration::from_secs(20) {
            t += Duration::from_millis(7);
            sim.run_until(t, |_| false);
            if spurious {
                let now = sim.now;
                for p in &mut sim.peers {
                    p.agent.handle_timeout(now);
                    p.agent.handle_timeout(now);
                }
            }
        }
        sim.log
            .iter()
            .map(|(t, from, tx)| (*t, *from, tx.destination, tx.payload.clone()))
            .collect::<Vec<(Duration, usize, SocketAddr, Bytes)>>()
    };
    let plain = run(false);
    let noisy = run(true);
    assert!(plain.len() > 10);
    assert_eq!(plain, noisy);
}

#[test]
fn same_seed_same_bytes() {
    let run = || {
        let mut sim = host_pair(71);
        sim.loss = 0.1;
        sim.start();
        sim.run_until(Duration::from_secs(10), |_| false);
        sim.log.clone()
    };
    assert_eq!(run(), run());
}

#[test]
fn data_flows_both_ways_through_a_relay() {
    // Direct traffic between the peers is blocked: only A's relayed candidate works. A's
    // checks go out as Send indications; B's checks to the relayed address come back to A
    // as Data indications; once the pair is selected, A binds a channel and data flows as
    // ChannelData.
    let turn = addr(TURN_SERVER);
    let mut sim = relay_world(config(true), config(false), 81, true);
    assert!(sim.run_until(Duration::from_secs(30), |s| {
        s.both(ConnectionState::Completed)
    }));
    let a_view = sim.peers[0].agent.stream(sim.peers[0].stream).unwrap();
    let a_pair = a_view.selected_pair(1).unwrap();
    assert_eq!(a_pair.local.kind, ice_proto::CandidateType::Relayed);
    assert_eq!(a_pair.local.addr(), Some(addr("203.0.113.50:49152")));
    assert_eq!(a_pair.local.related_addr(), Some(addr("192.0.2.1:5000")));
    let b_view = sim.peers[1].agent.stream(sim.peers[1].stream).unwrap();
    let b_pair = b_view.selected_pair(1).unwrap();
    assert_eq!(b_pair.remote.kind, ice_proto::CandidateType::Relayed);
    assert_eq!(b_pair.remote.addr(), Some(addr("203.0.113.50:49152")));
    // A gathered host, srflx (from the allocation's XOR-MAPPED-ADDRESS: here the host
    // address itself, so eliminated as redundant, §5.1.3) and relayed candidates.
    let kinds: Vec<_> = sim.peers[0]
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::NewLocalCandidate { candidate, .. } => Some(candidate.kind),
            _ => None,
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ice_proto::CandidateType::Host,
            ice_proto::CandidateType::Relayed
        ]
    );
    // Let the channel bind, then send both ways.
    let t = sim.elapsed() + Duration::from_millis(100);
    sim.run_until(t, |_| false);
    let before = sim.log.len();
    sim.send_data(0, b"via relay from A").unwrap();
    sim.send_data(1, b"via relay from B").unwrap();
    let t = sim.elapsed() + Duration::from_millis(100);
    sim.run_until(t, |_| false);
    let got =
        |i: usize| -> Vec<Vec<u8>> { sim.peers[i].data.iter().map(|(_, d)| d.clone()).collect() };
    assert_eq!(got(1), [b"via relay from A".to_vec()]);
    assert_eq!(got(0), [b"via relay from B".to_vec()]);
    // A's data went to the server as ChannelData (channel numbers 0x4000–0x4FFF).
    let (_, from, tx) = &sim.log[before];
    assert_eq!((*from, tx.destination), (0, turn));
    assert_eq!(tx.payload[0] & 0xF0, 0x40);
    assert_eq!(&tx.payload[4..], b"via relay from A");

    // Sending on the relayed pair frames into the relay's buffer: once it has grown to the
    // datagram's size, nothing is allocated.
    let now = sim.now;
    let p = &mut sim.peers[0];
    let payload = [0x80u8; 160];
    p.agent.handle_send(now, p.stream, 1, &payload).unwrap();
    let allocations = counting_allocator::allocations_during(|| {
        for _ in 0..1_000 {
            let t = p.agent.handle_send(now, p.stream, 1, &payload).unwrap();
            assert_eq!((t.destination, t.payload.len()), (turn, 4 + payload.len()));
        }
    });
    assert_eq!(allocations, 0, "1,000 sends as ChannelData allocated");
}

fn candidate_events(p: &Peer) -> Vec<(Duration, ice_proto::Candidate)> {
    p.events
        .iter()
        .filter_map(|(t, e)| match e {
            Event::NewLocalCandidate { candidate, .. } => {
                Some((*t - p.events[0].0, candidate.clone()))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn server_reflexive_candidates_are_gathered_and_redundant_ones_eliminated() {
    // A is behind a NAT, B is not; both ask the same STUN server.
    let stun = addr("203.0.113.60:3478");
    let mut a_config = config(true);
    a_config.stun_servers = vec![stun];
    let mut b_config = config(false);
    b_config.stun_servers = vec![stun];
    let a = Peer::new(a_config, 91, &["10.0.0.1:5000"]);
    let b = Peer::new(b_config, 92, &["198.51.100.2:6000"]);
    let mut sim = Sim::new(a, b, 91);
    sim.nat = Some(Nat {
        public_ip: Some("203.0.113.1".parse().unwrap()),
        ..Nat::default()
    });
    sim.extra = Some(Box::new(relay::StunBox::new(stun)));
    sim.start();
    assert!(sim.run_until(Duration::from_secs(10), |s| {
        s.both(ConnectionState::Completed)
    }));
    // A: host at once, srflx when the answer came back (10 ms there, 10 ms back).
    let a = candidate_events(&sim.peers[0]);
    assert_eq!(a.len(), 2);
    assert_eq!(a[0].0, Duration::ZERO);
    assert_eq!(a[0].1.kind, ice_proto::CandidateType::Host);
    assert_eq!(a[1].0, Duration::from_millis(20));
    assert_eq!(a[1].1.kind, ice_proto::CandidateType::ServerReflexive);
    assert_eq!(a[1].1.addr(), Some(addr("203.0.113.1:7000")));
    assert_eq!(a[1].1.related_addr(), Some(addr("10.0.0.1:5000")));
    assert_eq!(
        a[1].1.priority,
        ice_proto::candidate::priority(100, 32_767, 1),
        "type preference 100, the base's local preference"
    );
    // B: its mapped address is its host address: redundant (§5.1.3), not signalled.
    let b = candidate_events(&sim.peers[1]);
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].1.kind, ice_proto::CandidateType::Host);
    // Gathering done for both at 20 ms, component then stream.
    for p in &sim.peers {
        let done: Vec<_> = p
            .events
            .iter()
            .filter(|(_, e)| {
                matches!(
                    e,
                    Event::ComponentGatheringDone { .. } | Event::CandidateGatheringDone { .. }
                )
            })
            .map(|(t, _)| *t - sim.start)
            .collect();
        assert_eq!(done, [Duration::from_millis(20), Duration::from_millis(20)]);
    }
}

#[test]
fn gathering_is_paced_at_ta_and_a_silent_server_ends_after_its_retransmissions() {
    // Two STUN servers; the second never answers (nothing owns its address).
    let stun = addr("203.0.113.60:3478");
    let silent = addr("203.0.113.61:3478");
    let mut a_config = config(true);
    a_config.stun_servers = vec![stun, silent];
    let a = Peer::new(a_config, 95, &["192.0.2.1:5000"]);
    let b = Peer::new(config(false), 96, &["198.51.100.2:6000"]);
    let mut sim = Sim::new(a, b, 95);
    sim.extra = Some(Box::new(relay::StunBox::new(stun)));
    sim.signal_candidates = false;
    sim.start();
    sim.run_until(Duration::from_secs(20), |_| false);
    let sends = |to: SocketAddr| -> Vec<Duration> {
        sim.log
            .iter()
            .filter(|(_, from, t)| *from == 0 && t.destination == to)
            .map(|(t, _, _)| *t)
            .collect()
    };
    // Ta = 50 ms between the first sends of the two queries (RFC 8445 §14.2).
    assert_eq!(sends(stun), [Duration::ZERO]);
    let ms = Duration::from_millis;
    // Rc = 7 sends with a 500 ms RTO doubling up to its 3 s cap, then Rm = 8 × 500 ms:
    // gives up at 16.55 s.
    assert_eq!(
        sends(silent),
        [
            ms(50),
            ms(550),
            ms(1_550),
            ms(3_550),
            ms(6_550),
            ms(9_550),
            ms(12_550)
        ]
    );
    let p = &sim.peers[0];
    let problem = p
        .first(|e| {
            matches!(
                e,
                Event::Problem(ice_proto::Problem::StunServerFailed { .. })
            )
        })
        .unwrap();
    assert_eq!(problem - sim.start, ms(16_550));
    let done = p
        .first(|e| matches!(e, Event::CandidateGatheringDone { .. }))
        .unwrap();
    assert_eq!(done - sim.start, ms(16_550));
}

#[test]
fn the_controlling_agent_waits_for_better_pairs_then_nominates_8_1_1() {
    // A's first base (the higher-priority pairs) is blocked; its second works. The pair of
    // the second base is valid at 70 ms, but the first base's pair is still In-Progress with
    // a higher priority: A, told to wait 1 s for a better pair (the default is to nominate
    // at once and move up by re-nomination), nominates it at 1070 ms; the answer comes
    // back at 1090 ms.
    let waiting = AgentConfig {
        nomination_wait: Duration::from_secs(1),
        ..config(true)
    };
    let a = Peer::new(waiting, 101, &["192.0.2.1:5000", "192.0.2.2:5000"]);
    let b = Peer::new(config(false), 102, &["198.51.100.2:6000"]);
    let mut sim = Sim::new(a, b, 101);
    sim.blocked = vec![addr("192.0.2.1:5000")];
    sim.start();
    assert!(sim.run_until(Duration::from_secs(10), |s| {
        s.both(ConnectionState::Completed)
    }));
    let ms = Duration::from_millis;
    let selected = sim.peers[0]
        .first(|e| matches!(e, Event::NewSelectedPair { .. }))
        .unwrap();
    assert_eq!(selected - sim.start, ms(1_090));
    assert_eq!(sim.selected(0).unwrap().0, addr("192.0.2.2:5000"));
    let connected = sim.peers[0]
        .first(|e| matches!(e, Event::ConnectionStateChanged(ConnectionState::Connected)))
        .unwrap();
    assert_eq!(
        connected - sim.start,
        ms(70),
        "data may flow on the valid pair meanwhile"
    );
}

#[test]
fn a_direct_path_is_preferred_to_the_relay_when_both_work() {
    let mut sim = relay_world(config(true), config(false), 111, false);
    assert!(sim.run_until(Duration::from_secs(10), |s| {
        s.both(ConnectionState::Completed)
    }));
    assert_eq!(
        sim.selected(0).unwrap(),
        (addr("192.0.2.1:5000"), addr("198.51.100.2:6000"))
    );
}

#[test]
fn two_components_both_become_ready() {
    let a = Peer::with_components(
        config(true),
        121,
        &[&["192.0.2.1:5000"], &["192.0.2.1:5001"]],
    );
    let b = Peer::with_components(
        config(false),
        122,
        &[&["198.51.100.2:6000"], &["198.51.100.2:6001"]],
    );
    let mut sim = Sim::new(a, b, 121);
    sim.start();
    assert!(sim.run_until(Duration::from_secs(10), |s| {
        s.both(ConnectionState::Completed)
    }));
    for p in &sim.peers {
        let view = p.agent.stream(p.stream).unwrap();
        for c in 1..=2 {
            assert_eq!(view.component_state(c), Some(ComponentState::Ready));
            let pair = view.selected_pair(c).unwrap();
            assert_eq!(pair.component, c);
            assert_eq!(pair.local.component, c);
        }
        assert_eq!(view.checklist_state(), ice_proto::ChecklistState::Completed);
    }
    // RTCP data on component 2 arrives as component 2.
    let now = sim.now;
    let p = &mut sim.peers[0];
    let t = Transmit::from(p.agent.handle_send(now, p.stream, 2, b"rtcp").unwrap());
    assert_eq!(t.source, addr("192.0.2.1:5001"));
    let b = &mut sim.peers[1];
    let r = b
        .agent
        .handle_datagram(now, t.transport, t.source, t.destination, &t.payload);
    assert!(matches!(r, Handled::Data { component: 2, .. }));
}

#[test]
fn keepalives_without_consent_every_tr_11() {
    // Consent off (ICE outside WebRTC): a Binding indication goes out on the selected pair
    // when nothing was sent for Tr = 15 s.
    let mut a_config = config(true);
    a_config.consent_interval = None;
    let mut b_config = config(false);
    b_config.consent_interval = None;
    let a = Peer::new(a_config, 131, &["192.0.2.1:5000"]);
    let b = Peer::new(b_config, 132, &["198.51.100.2:6000"]);
    let mut sim = Sim::new(a, b, 131);
    sim.start();
    assert!(sim.run_until(Duration::from_secs(5), |s| {
        s.both(ConnectionState::Completed)
    }));
    let selected = sim.peers[0]
        .first(|e| matches!(e, Event::NewSelectedPair { .. }))
        .unwrap()
        - sim.start;
    let t = sim.elapsed() + Duration::from_secs(20);
    sim.run_until(t, |_| false);
    // Data pushes the next keepalive to 15 s after it.
    let data_at = sim.elapsed();
    sim.send_data(0, b"x").unwrap();
    let t = sim.elapsed() + Duration::from_secs(20);
    sim.run_until(t, |_| false);
    let indications: Vec<Duration> = sim
        .log
        .iter()
        .filter(|(_, from, t)| {
            *from == 0
                && stun_proto::Message::parse(&t.payload)
                    .is_ok_and(|m| m.class() == stun_proto::Class::Indication)
        })
        .map(|(t, _, _)| *t)
        .collect();
    let tr = Duration::from_secs(15);
    assert_eq!(indications, [selected + tr, data_at + tr]);
    assert!(sim.both(ConnectionState::Completed));
}

#[test]
fn a_full_agent_connects_to_an_ice_lite_agent_8_2() {
    // B is ICE-lite (a server): it gathers host candidates only, sends no check of its own
    // and is nominated by A. Its liveness is A's checks: when A goes silent, B's component
    // fails 30 s after the last check arrived.
    let stun = addr("203.0.113.60:3478");
    let mut b_config = config(true); // asks to control; a lite agent never does
    b_config.lite = true;
    b_config.stun_servers = vec![stun];
    let a = Peer::new(config(true), 141, &["192.0.2.1:5000"]);
    let b = Peer::new(b_config, 142, &["198.51.100.2:6000"]);
    let mut sim = Sim::new(a, b, 141);
    sim.extra = Some(Box::new(relay::StunBox::new(stun)));
    sim.start();
    assert!(sim.run_until(Duration::from_secs(5), |s| {
        s.both(ConnectionState::Completed)
    }));
    assert!(!sim.peers[1].agent.is_controlling());
    let b_requests = sim
        .log
        .iter()
        .filter(|(_, from, t)| {
            *from == 1
                && stun_proto::Message::parse(&t.payload)
                    .is_ok_and(|m| m.class() == stun_proto::Class::Request)
        })
        .count();
    assert_eq!(
        b_requests, 0,
        "a lite agent sends no requests (not even to a STUN server)"
    );
    let (a_local, a_remote) = sim.selected(0).unwrap();
    assert_eq!(sim.selected(1).unwrap(), (a_remote, a_local));
    // A keeps checking consent; B stays fresh for a minute.
    let t = sim.elapsed() + Duration::from_secs(60);
    sim.run_until(t, |_| false);
    assert!(sim.both(ConnectionState::Completed));
    sim.send_data(1, b"from the lite side").unwrap();
    // A goes silent: B fails within 30 s of A's last check.
    let cut_at = sim.now;
    sim.cut = true;
    assert!(
        sim.run_until(Duration::from_secs(200), |s| s.peers[1].agent.state()
            == ConnectionState::Failed)
    );
    let failed = sim.peers[1]
        .first(|e| {
            matches!(
                e,
                Event::ComponentStateChanged {
                    state: ComponentState::Failed,
                    reason: Some(FailureReason::ConsentExpired),
                    ..
                }
            )
        })
        .unwrap();
    let after = failed - cut_at;
    assert!(
        after > Duration::from_secs(23) && after <= Duration::from_secs(30),
        "{after:?}"
    );
}

impl Sim {
    /// Both peers restart ICE (RFC 8445 §9) and exchange their new credentials; their new
    /// candidates are signalled by the next drain.
    fn restart(&mut self) {
        let now = self.now;
        for p in &mut self.peers {
            p.agent.handle_restart(now, p.stream).unwrap();
        }
        let creds: Vec<_> = self
            .peers
            .iter()
            .map(|p| {
                p.agent
                    .stream(p.stream)
                    .unwrap()
                    .local_credentials()
                    .clone()
            })
            .collect();
        for i in 0..2 {
            let p = &mut self.peers[i];
            p.agent
                .handle_remote_credentials(now, p.stream, creds[1 - i].clone())
                .unwrap();
        }
        self.drain();
    }

    fn selections(&self, i: usize) -> usize {
        self.peers[i]
            .events
            .iter()
            .filter(|(_, e)| matches!(e, Event::NewSelectedPair { .. }))
            .count()
    }
}

#[test]
fn an_ice_restart_keeps_media_on_the_old_pair_until_a_new_one_is_selected_9() {
    let mut sim = host_pair(151);
    sim.start();
    assert!(sim.run_until(Duration::from_secs(5), |s| {
        s.both(ConnectionState::Completed)
    }));
    let old = sim.peers[0]
        .agent
        .stream(sim.peers[0].stream)
        .unwrap()
        .local_credentials()
        .clone();
    sim.restart();
    let new = sim.peers[0]
        .agent
        .stream(sim.peers[0].stream)
        .unwrap()
        .local_credentials()
        .clone();
    assert_ne!(old, new, "new ufrag and password");
    // Right after the restart, before any new check: data still goes on the old pair.
    sim.send_data(0, b"during restart").unwrap();
    assert!(
        sim.peers
            .iter()
            .all(|p| p.agent.state() == ConnectionState::Connected)
    );
    assert!(sim.run_until(
        Duration::from_secs(10),
        |s| s.both(ConnectionState::Completed) && s.selections(0) == 2 && s.selections(1) == 2
    ));
    assert_eq!(sim.peers[1].data[0].1, b"during restart");
    let (a_local, a_remote) = sim.selected(0).unwrap();
    assert_eq!(sim.selected(1).unwrap(), (a_remote, a_local));
    // Checks with the old credentials are now unknown to both.
    let before = sim.peers[0].agent.stats().unknown_username;
    let t = sim.elapsed() + Duration::from_secs(10);
    sim.run_until(t, |_| false);
    assert_eq!(sim.peers[0].agent.stats().unknown_username, before);
    sim.send_data(0, b"after restart").unwrap();
    sim.send_data(1, b"after restart").unwrap();
    let t = sim.elapsed() + Duration::from_millis(50);
    sim.run_until(t, |_| false);
    assert_eq!(sim.peers[1].data.last().unwrap().1, b"after restart");
    assert_eq!(sim.peers[0].data.last().unwrap().1, b"after restart");
}

#[test]
fn an_ice_restart_recovers_from_failure() {
    let mut sim = host_pair(161);
    sim.start();
    assert!(sim.run_until(Duration::from_secs(5), |s| {
        s.both(ConnectionState::Completed)
    }));
    sim.cut = true;
    assert!(sim.run_until(Duration::from_secs(60), |s| s.both(ConnectionState::Failed)));
    assert_eq!(sim.send_data(0, b"x"), Err(SendError::Failed));
    // The network comes back; the application restarts ICE.
    sim.cut = false;
    sim.restart();
    // A failed component has no previous pair to fall back on.
    assert_eq!(sim.send_data(0, b"x"), Err(SendError::NotConnected));
    let t = sim.elapsed() + Duration::from_secs(5);
    assert!(sim.run_until(t, |s| s.both(ConnectionState::Completed)));
    sim.send_data(0, b"back").unwrap();
    let t = sim.elapsed() + Duration::from_millis(50);
    sim.run_until(t, |_| false);
    assert_eq!(sim.peers[1].data.last().unwrap().1, b"back");
}

#[test]
fn a_network_change_moves_to_a_new_interface_by_restart() {
    // A's interface changes: the caller adds the new socket, removes the old one and
    // restarts ICE; the new selected pair uses the new interface.
    let mut sim = host_pair(171);
    sim.start();
    assert!(sim.run_until(Duration::from_secs(5), |s| {
        s.both(ConnectionState::Completed)
    }));
    let (old, new) = (addr("192.0.2.1:5000"), addr("192.0.2.9:5000"));
    assert_eq!(sim.selected(0).unwrap().0, old);
    sim.peers[0].addrs.push(new);
    let s = sim.peers[0].stream;
    let mut view = sim.peers[0].agent.stream_mut(s).unwrap();
    view.add_base(1, new).unwrap();
    assert!(view.remove_base(1, old));
    sim.restart();
    let t = sim.elapsed() + Duration::from_secs(5);
    assert!(sim.run_until(t, |s| s.both(ConnectionState::Completed)
        && s.selections(0) == 2
        && s.selections(1) == 2));
    assert_eq!(sim.selected(0).unwrap().0, new);
    assert_eq!(sim.selected(1).unwrap().1, new);
    let view = sim.peers[0].agent.stream(s).unwrap();
    assert!(view.local_candidates().all(|c| c.addr() != Some(old)));
}

#[test]
fn relay_only_never_reveals_the_host_address() {
    // W3C iceTransportPolicy "relay": the direct path works, yet A signals and uses only its
    // relayed candidate, and sends nothing but to the TURN server.
    let turn = addr(TURN_SERVER);
    let mut a_config = config(true);
    a_config.relay_only = true;
    a_config.stun_servers = vec![addr("203.0.113.60:3478")];
    let mut sim = relay_world(a_config, config(false), 181, false);
    assert!(sim.run_until(Duration::from_secs(10), |s| {
        s.both(ConnectionState::Completed)
    }));
    let kinds: Vec<_> = candidate_events(&sim.peers[0])
        .into_iter()
        .map(|(_, c)| c.kind)
        .collect();
    assert_eq!(kinds, [ice_proto::CandidateType::Relayed]);
    assert!(
        sim.log
            .iter()
            .all(|(_, from, t)| *from != 0 || t.destination == turn),
        "A sent only to the TURN server"
    );
    let b_view = sim.peers[1].agent.stream(sim.peers[1].stream).unwrap();
    assert!(
        b_view
            .remote_candidates()
            .all(|c| c.address.ip() != Some("192.0.2.1".parse().unwrap())),
        "B never learnt A's host address, not even as peer-reflexive"
    );
    assert_eq!(sim.selected(0).unwrap().0, addr("203.0.113.50:49152"));
    sim.send_data(0, b"private").unwrap();
    let t = sim.elapsed() + Duration::from_millis(50);
    sim.run_until(t, |_| false);
    assert_eq!(sim.peers[1].data.last().unwrap().1, b"private");
}

#[test]
fn a_removed_interface_releases_its_turn_allocation_at_the_restart() {
    let turn = addr(TURN_SERVER);
    let mut sim = relay_world(config(true), config(false), 191, false);
    assert!(sim.run_until(Duration::from_secs(10), |s| {
        s.both(ConnectionState::Completed)
    }));
    let (old, new) = (addr("192.0.2.1:5000"), addr("192.0.2.9:5000"));
    sim.peers[0].addrs.push(new);
    let s = sim.peers[0].stream;
    let mut view = sim.peers[0].agent.stream_mut(s).unwrap();
    view.add_base(1, new).unwrap();
    view.remove_base(1, old);
    let before = sim.log.len();
    sim.restart();
    let t = sim.elapsed() + Duration::from_secs(5);
    assert!(sim.run_until(t, |s| s.both(ConnectionState::Completed)
        && s.selections(0) == 2));
    let refresh_zero = sim.log[before..].iter().any(|(_, from, t)| {
        *from == 0
            && t.source == old
            && t.destination == turn
            && stun_proto::Message::parse(&t.payload).is_ok_and(|m| {
                m.method() == stun_proto::Method::REFRESH
                    && m.get::<stun_proto::attribute::Lifetime>()
                        .and_then(Result::ok)
                        .is_some_and(|l| l.0 == 0)
            })
    });
    assert!(
        refresh_zero,
        "the old allocation is released (Refresh, LIFETIME 0)"
    );
    // The new base has its own allocation and relayed candidate.
    let relayed: Vec<_> = sim.peers[0]
        .agent
        .stream(s)
        .unwrap()
        .local_candidates()
        .filter(|c| c.kind == ice_proto::CandidateType::Relayed)
        .map(|c| c.related_addr())
        .collect();
    assert_eq!(relayed, [Some(new)]);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// For any layout of 1–3 bases per side (IPv4 and IPv6 mixed) and any seed, the agents
    /// complete with mirrored selected pairs of one family iff both sides have that family;
    /// otherwise both fail once the ICE PAC timer expires.
    #[test]
    fn any_base_layout_connects_iff_a_family_is_shared(
        seed in 0u64..10_000,
        a_v6 in proptest::collection::vec(proptest::bool::ANY, 1..4),
        b_v6 in proptest::collection::vec(proptest::bool::ANY, 1..4),
    ) {
        let bases = |v6: &[bool], side: u8| -> Vec<String> {
            v6.iter()
                .enumerate()
                .map(|(i, v6)| {
                    if *v6 {
                        format!("[2001:db8:{side}::{}]:5000", i + 1)
                    } else {
                        format!("192.0.{side}.{}:5000", i + 1)
                    }
                })
                .collect()
        };
        let (a_bases, b_bases) = (bases(&a_v6, 2), bases(&b_v6, 3));
        let a_refs: Vec<&str> = a_bases.iter().map(String::as_str).collect();
        let b_refs: Vec<&str> = b_bases.iter().map(String::as_str).collect();
        let a = Peer::new(config(true), seed, &a_refs);
        let b = Peer::new(config(false), seed + 1, &b_refs);
        let mut sim = Sim::new(a, b, seed);
        sim.start();
        let shared = (a_v6.contains(&true) && b_v6.contains(&true))
            || (a_v6.contains(&false) && b_v6.contains(&false));
        if shared {
            proptest::prop_assert!(
                sim.run_until(Duration::from_secs(10), |s| s.both(ConnectionState::Completed))
            );
            // The first valid pair is nominated at once; re-nomination then moves up to
            // the best pair that works, within the check timeouts.
            sim.run_until(Duration::from_secs(30), |_| false);
            let (a_local, a_remote) = sim.selected(0).unwrap();
            proptest::prop_assert_eq!(sim.selected(1).unwrap(), (a_remote, a_local));
            proptest::prop_assert_eq!(a_local.is_ipv4(), a_remote.is_ipv4());
            // IPv6 is preferred when both sides have it (RFC 8421 local preference).
            if a_v6.contains(&true) && b_v6.contains(&true) {
                proptest::prop_assert!(a_local.is_ipv6());
            }
        } else {
            // Empty check lists: both fail when the ICE PAC timer (RFC 8863 §4), started
            // with the credentials at 0, expires at 39.5 s — not before.
            proptest::prop_assert!(
                sim.run_until(Duration::from_secs(60), |s| s.both(ConnectionState::Failed))
            );
            for i in 0..2 {
                let failed = sim.peers[i]
                    .first(|e| *e == Event::ConnectionStateChanged(ConnectionState::Failed));
                proptest::prop_assert_eq!(
                    failed.map(|t| t - sim.start),
                    Some(Duration::from_millis(39_500))
                );
            }
        }
    }
}

#[test]
fn data_flows_through_stun_protos_turn_server_with_long_term_auth() {
    // The same as `data_flows_both_ways_through_a_relay`, against the project's TURN server:
    // the client answers its 401 challenge (REALM, NONCE) before the allocation exists.
    let turn = addr(TURN_SERVER);
    let relayed = addr("203.0.113.50:49999");
    let a = Peer::new(with_turn(config(true), turn), 201, &["192.0.2.1:5000"]);
    let b = Peer::new(config(false), 202, &["198.51.100.2:6000"]);
    let mut sim = Sim::new(a, b, 201);
    sim.block_direct = true;
    let now = sim.now;
    sim.extra = Some(Box::new(relay::RealTurnBox::new(now, turn, vec![relayed])));
    sim.start();
    assert!(sim.run_until(Duration::from_secs(30), |s| {
        s.both(ConnectionState::Completed)
    }));
    assert_eq!(sim.selected(0).unwrap().0, relayed);
    let t = sim.elapsed() + Duration::from_millis(100);
    sim.run_until(t, |_| false);
    sim.send_data(0, b"through the real server").unwrap();
    sim.send_data(1, b"and back").unwrap();
    let t = sim.elapsed() + Duration::from_millis(100);
    sim.run_until(t, |_| false);
    assert_eq!(
        sim.peers[1].data.last().unwrap().1,
        b"through the real server"
    );
    assert_eq!(sim.peers[0].data.last().unwrap().1, b"and back");
}

#[test]
fn twenty_percent_loss_still_connects_through_a_relay() {
    // Only the relayed path works, 20% loss on every hop (TURN requests included): the TURN
    // client's and the agent's retransmissions still get both agents to a selected pair.
    for seed in 0..20u64 {
        let turn = addr(TURN_SERVER);
        let mut a_config = config(true);
        a_config.turn_servers = vec![ice_proto::TurnServer {
            server: turn,
            transport: TransportProtocol::Udp,
            username: "user".into(),
            password: "pass".into(),
        }];
        let a = Peer::new(a_config, 300 + seed, &["192.0.2.1:5000"]);
        let b = Peer::new(config(false), 400 + seed, &["198.51.100.2:6000"]);
        let mut sim = Sim::new(a, b, seed);
        sim.block_direct = true;
        sim.loss = 0.2;
        let now = sim.now;
        let relayed = addr("203.0.113.50:49999");
        sim.extra = Some(Box::new(relay::RealTurnBox::new(now, turn, vec![relayed])));
        sim.start();
        assert!(
            sim.run_until(Duration::from_secs(60), |s| s
                .both(ConnectionState::Completed)),
            "seed {seed}"
        );
        assert_eq!(sim.selected(0).unwrap().0, relayed);
    }
}

/// Issues 14 and 15: the permission of a relayed pair's peer is asked for as soon as the
/// pair forms, so that its first check leaves in its own pacing slot; never before the
/// CreatePermission success (the server drops a Send indication without a permission, RFC
/// 8656 §10.2, and the pair would only be checked one retransmission later) — a check whose
/// permission is still pending waits in the TURN client — and the server relays it.
#[test]
fn the_first_relayed_check_leaves_after_its_permission_asked_when_the_pair_formed() {
    use stun_proto::{Class, Message, Method};
    let turn = addr(TURN_SERVER);
    let mut sim = relay_world(config(true), config(false), 81, true);
    assert!(sim.run_until(Duration::from_secs(30), |s| {
        s.both(ConnectionState::Completed)
    }));
    let is = |t: &Transmit, method: Method, class: Class| {
        Message::parse(&t.payload).is_ok_and(|m| m.method() == method && m.class() == class)
    };
    let permitted = sim
        .log
        .iter()
        .find(|(_, from, t)| *from == 9 && is(t, Method::CREATE_PERMISSION, Class::Success))
        .map(|(at, _, _)| *at)
        .expect("the server confirmed a permission");
    let sends: Vec<Duration> = sim
        .log
        .iter()
        .filter(|(_, from, t)| {
            *from == 0 && t.destination == turn && is(t, Method::SEND, Class::Indication)
        })
        .map(|(at, _, _)| *at)
        .collect();
    assert!(
        sends.iter().all(|at| *at >= permitted + sim.latency),
        "no Send indication before the permission: {sends:?}, permitted at {permitted:?}"
    );
    // The permission was asked for when the relayed pair formed (20 ms, B's candidate had
    // come while A allocated), not when the pair's check came up: confirmed at 30 ms, before
    // the check's Ta slot at 50 ms, so the check left in its slot, and the server relayed it.
    let asked = sim
        .log
        .iter()
        .find(|(_, from, t)| *from == 0 && is(t, Method::CREATE_PERMISSION, Class::Request))
        .map(|(at, _, _)| *at)
        .expect("A asked for a permission");
    assert_eq!(asked, Duration::from_millis(20));
    let first = sends[0];
    assert_eq!(first, Duration::from_millis(50));
    let b_addr = addr("198.51.100.2:6000");
    let relayed = sim
        .log
        .iter()
        .find(|(_, from, t)| *from == 9 && t.destination == b_addr)
        .map(|(at, _, _)| *at);
    assert_eq!(relayed, Some(first + sim.latency));
}

/// Issue 15: a peer the TURN server refuses (403 to CreatePermission, RFC 8656 §9.2: here a
/// host the server will not relay to) fails the relayed pairs to it when the refusal comes:
/// the permission is asked for once, no check to that peer ever takes a pacing slot or goes
/// through the allocation, and the call completes through the relay to the peer's other
/// address.
#[test]
fn a_peer_the_turn_server_refuses_fails_its_relayed_pairs_at_once() {
    use stun_proto::{Class, Message, Method};
    let turn = addr(TURN_SERVER);
    let relayed = addr("203.0.113.50:49999");
    let refused = addr("198.51.100.3:6000");
    let a = Peer::new(with_turn(config(true), turn), 211, &["192.0.2.1:5000"]);
    let b = Peer::new(
        config(false),
        212,
        &["198.51.100.2:6000", "198.51.100.3:6000"],
    );
    let mut sim = Sim::new(a, b, 211);
    sim.block_direct = true;
    let now = sim.now;
    let server = relay::RealTurnBox::denying(now, turn, vec![relayed], &[refused.ip()]);
    sim.extra = Some(Box::new(server));
    sim.start();
    let is = |t: &Transmit, method: Method, class: Class| {
        Message::parse(&t.payload).is_ok_and(|m| m.method() == method && m.class() == class)
    };
    let refusal = |t: &Transmit| t.source == turn && is(t, Method::CREATE_PERMISSION, Class::Error);
    let to_refused = |sim: &Sim| -> Vec<ice_proto::PairStateKind> {
        let p = &sim.peers[0];
        (p.agent.stream(p.stream).unwrap().pairs())
            .filter(|x| x.local.addr() == Some(relayed) && x.remote.addr() == Some(refused))
            .map(|x| x.state)
            .collect()
    };
    // The refusal leaves the server; once it has reached A, the pairs to that peer have
    // failed — long before any check of theirs could have timed out.
    assert!(sim.run_until(Duration::from_secs(5), |s| {
        s.log.iter().any(|(_, _, t)| refusal(t))
    }));
    let refused_at = sim.log.iter().find(|(_, _, t)| refusal(t)).unwrap().0;
    sim.run_until(refused_at + sim.latency, |_| false);
    let states = to_refused(&sim);
    assert!(
        !states.is_empty(),
        "the relayed pair to the refused peer formed"
    );
    assert!(
        states
            .iter()
            .all(|s| *s == ice_proto::PairStateKind::Failed),
        "{:?} at {:?}",
        states,
        sim.elapsed()
    );
    assert!(sim.run_until(Duration::from_secs(30), |s| {
        s.both(ConnectionState::Completed)
    }));
    assert_eq!(sim.selected(0), Some((relayed, addr("198.51.100.2:6000"))));
    let t = sim.elapsed() + Duration::from_secs(10);
    sim.run_until(t, |_| false);
    let refusals = sim.log.iter().filter(|(_, _, t)| refusal(t)).count();
    assert_eq!(refusals, 1, "asked for once, refused once");
    assert!(
        to_refused(&sim)
            .iter()
            .all(|s| *s == ice_proto::PairStateKind::Failed)
    );
    // Nothing from the relayed address ever reached the refused host.
    assert!(
        !sim.log
            .iter()
            .any(|(_, _, t)| t.source == relayed && t.destination == refused),
        "a datagram was relayed to the refused peer"
    );
}

/// RFC 8445 §12 (issue 14): a valid pair carries data before nomination, both ways. The
/// controlled side, connected but not nominated, sends on its best valid pair; the
/// controlling side gets it and answers at once on its own best valid pair.
#[test]
fn data_flows_on_a_valid_pair_before_nomination() {
    let mut sim = host_pair(7);
    sim.start();
    assert!(sim.run_until(Duration::from_secs(5), |s| {
        s.peers
            .iter()
            .all(|p| p.agent.state() == ConnectionState::Connected)
    }));
    assert_eq!((sim.selected(0), sim.selected(1)), (None, None));
    sim.send_data(1, b"early from B").unwrap();
    let t = sim.elapsed() + sim.latency;
    sim.run_until(t, |s| !s.peers[0].data.is_empty());
    assert_eq!(sim.peers[0].data[0].1, b"early from B");
    assert_eq!(sim.selected(0), None, "A answers before it selected a pair");
    sim.send_data(0, b"answer from A").unwrap();
    let t = sim.elapsed() + sim.latency;
    sim.run_until(t, |s| !s.peers[1].data.is_empty());
    assert_eq!(sim.peers[1].data[0].1, b"answer from A");
}
