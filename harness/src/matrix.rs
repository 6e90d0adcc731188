//! The NAT traversal matrix: every pair of NAT presets, both ways, each a fresh world with a
//! STUN server and a TURN server on the internet and one full peer (ICE + DTLS,
//! [`crate::peer::Peer`]) behind each preset. A cell records what ICE selected, how long it
//! took in virtual time, when the DTLS handshake was done on both sides, how many datagrams
//! the peers sent, and whether that met the expectation from theory ([`crate::theory`]).

use std::fmt;
use std::fs::File;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use ice_proto::FailureReason;

use crate::nat::NatPreset;
use crate::nodes::{PeerNode, StunServer, TurnServer};
use crate::peer::PeerError;
use crate::theory::{Expectation, expect};
use crate::{HostId, Link, NatConfig, NetworkId, Node, Path, World, epoch};

/// The candidate type of one end of a selected pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CandidateKind {
    /// A host candidate.
    Host,
    /// Server-reflexive.
    ServerReflexive,
    /// Peer-reflexive.
    PeerReflexive,
    /// Relayed.
    Relayed,
}

/// What a peer reports about its selected pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Selected {
    /// The local candidate's type.
    pub local: CandidateKind,
    /// The remote candidate's type.
    pub remote: CandidateKind,
}

/// What the matrix needs to know of a peer node.
pub trait MatrixPeer: Node {
    /// The selected pair, once there is one.
    fn selected(&self) -> Option<Selected>;
    /// Whether connectivity failed for good.
    fn failed(&self) -> bool;
    /// When the DTLS handshake over the selected pair completed, if it did.
    fn dtls_done_at(&self) -> Option<std::time::Instant>;
    /// Whether the peer is still connected (after selection: consent holds).
    fn connected(&self) -> bool;
    /// Why the peer failed, if it did.
    fn failure(&self) -> Option<PeerError>;
}

/// How a peer is set up in a cell.
#[derive(Clone, Debug)]
pub struct PeerSetup {
    /// "a" or "b".
    pub name: &'static str,
    /// The address of its one socket.
    pub local: SocketAddr,
    /// The STUN server.
    pub stun: SocketAddr,
    /// The TURN server and its credentials.
    pub turn: (SocketAddr, &'static str, &'static str),
    /// Whether it is the controlling agent (the offerer).
    pub controlling: bool,
    /// Its RNG seed.
    pub seed: u64,
    /// What keeps the call and its NAT mappings alive.
    pub liveness: Liveness,
    /// When the world starts (the peer starts gathering then).
    pub start: std::time::Instant,
}

/// What keeps a call and its NAT mappings alive: the application's data, RFC 7675 consent
/// checks and RFC 8445 §11 keepalives. A NAT mapping lives `MatrixOptions::mapping_lifetime`
/// after the last outbound datagram; whichever of these comes often enough holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Liveness {
    /// How often each peer sends a ping once ready. Default 1 s (a call with media); a
    /// value above the mapping lifetime makes an idle call, held by ICE alone.
    pub ping_interval: Duration,
    /// The agents' consent interval (`AgentConfig::consent_interval`); `None` turns consent
    /// off. Default 5 s.
    pub consent_interval: Option<Duration>,
    /// The agents' keepalive interval Tr (`AgentConfig::keepalive_interval`), which acts
    /// when consent is off. Default 15 s.
    pub keepalive_interval: Duration,
}

impl Default for Liveness {
    fn default() -> Self {
        Self {
            ping_interval: Duration::from_secs(1),
            consent_interval: Some(Duration::from_secs(5)),
            keepalive_interval: Duration::from_secs(15),
        }
    }
}

/// The TURN user the matrix's peers allocate with.
pub const TURN_USER: &str = "matrix";
/// Its password.
pub const TURN_PASSWORD: &str = "matrix-secret";
/// The TURN realm.
pub const TURN_REALM: &str = "harness.invalid";

/// Options of a matrix run.
#[derive(Clone, Debug)]
pub struct MatrixOptions {
    /// Loss probability on every link.
    pub loss: f64,
    /// One-way latency of every link.
    pub delay: Duration,
    /// The seed of every cell's world (mixed with the cell's position).
    pub seed: u64,
    /// IPv6 addressing everywhere.
    pub ipv6: bool,
    /// Write each cell's capture here.
    pub pcap_dir: Option<PathBuf>,
    /// How long the call runs after selection; a peer must still be connected at the end.
    pub hold: Duration,
    /// NAT mapping lifetime (keepalives and consent checks must keep mappings alive).
    pub mapping_lifetime: Duration,
    /// What keeps the call alive: pings, consent, keepalives.
    pub liveness: Liveness,
    /// How long a cell may take, in virtual time, before it counts as failed.
    pub timeout: Duration,
    /// Presets to run (all by default).
    pub presets: Vec<NatPreset>,
}

impl Default for MatrixOptions {
    fn default() -> Self {
        Self {
            loss: 0.0,
            delay: Duration::from_millis(10),
            seed: 1,
            ipv6: false,
            pcap_dir: None,
            hold: Duration::from_secs(60),
            mapping_lifetime: Duration::from_secs(30),
            liveness: Liveness::default(),
            timeout: Duration::from_secs(60),
            presets: NatPreset::ALL.to_vec(),
        }
    }
}

/// What a cell achieved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A direct pair; the label is the more telling of its candidate types (prflx over srflx
    /// over host).
    Direct(CandidateKind),
    /// A relayed pair.
    Relay,
    /// ICE reported failure.
    Failed,
    /// Neither selection nor failure within the timeout.
    Timeout,
}

impl Outcome {
    fn meets(self, expected: Expectation) -> bool {
        matches!(
            (self, expected),
            (Outcome::Direct(_), Expectation::Direct)
                | (Outcome::Relay, Expectation::Relay)
                | (Outcome::Failed, Expectation::Fail)
        )
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Outcome::Direct(CandidateKind::Host) => "direct host",
            Outcome::Direct(CandidateKind::ServerReflexive) => "direct srflx",
            Outcome::Direct(CandidateKind::PeerReflexive) => "direct prflx",
            Outcome::Direct(CandidateKind::Relayed) | Outcome::Relay => "relay",
            Outcome::Failed => "failed",
            Outcome::Timeout => "timeout",
        })
    }
}

/// One cell of the matrix.
#[derive(Clone, Debug)]
pub struct Cell {
    /// The controlling peer's NAT.
    pub a: NatPreset,
    /// The controlled peer's NAT.
    pub b: NatPreset,
    /// What theory says.
    pub expected: Expectation,
    /// What happened: for a connected cell, the class of the pair the call ended on.
    pub outcome: Outcome,
    /// Virtual time until both peers had selected a pair (or failed).
    pub time: Option<Duration>,
    /// Virtual time until both peers had completed the DTLS handshake, if they did (it may
    /// complete before the pair is selected: DTLS starts on the first valid pair).
    pub dtls: Option<Duration>,
    /// Whether both peers were still connected (not failed, data still arriving) at the end
    /// of the hold period; `None` when no pair was selected.
    pub held: Option<bool>,
    /// Why a peer failed (controlling peer first), if one did: ICE checks, consent expiry,
    /// DTLS.
    pub failure: Option<PeerError>,
    /// Datagrams the two peers sent until then.
    pub packets: u64,
    /// The world's trace hash at the end.
    pub trace: String,
}

impl Cell {
    /// Whether the outcome met the expectation; a connected cell must also have completed
    /// DTLS on both sides and held the call to the end of the hold period.
    pub fn met(&self) -> bool {
        self.outcome.meets(self.expected)
            && (self.expected == Expectation::Fail
                || (self.dtls.is_some() && self.held == Some(true)))
    }
}

fn classify(selected: Selected) -> Outcome {
    use CandidateKind::*;
    match (selected.local, selected.remote) {
        (Relayed, _) | (_, Relayed) => Outcome::Relay,
        (PeerReflexive, _) | (_, PeerReflexive) => Outcome::Direct(PeerReflexive),
        (ServerReflexive, _) | (_, ServerReflexive) => Outcome::Direct(ServerReflexive),
        (Host, Host) => Outcome::Direct(Host),
    }
}

fn ip(ipv6: bool, v4: [u8; 4], v6: u16) -> IpAddr {
    if ipv6 {
        IpAddr::from([0x2001, 0xdb8, v6, 0, 0, 0, 0, u16::from(v4[3])])
    } else {
        IpAddr::from(v4)
    }
}

/// The world of one cell: servers on the internet, peer A behind `a`, peer B behind `b`.
pub fn build_cell<P: MatrixPeer>(
    a: NatPreset,
    b: NatPreset,
    options: &MatrixOptions,
    seed: u64,
    servers: impl FnOnce(&mut World, &ServerPlan),
    peer: impl Fn(PeerSetup) -> P,
) -> (World, HostId, HostId) {
    let v6 = options.ipv6;
    let mut world = World::new(seed, epoch());
    let internet = world.internet();
    let path = Path {
        loss: options.loss,
        ..Path::with_latency(options.delay)
    };
    let link = Link::symmetric(path);
    let plan = ServerPlan {
        stun: SocketAddr::new(ip(v6, [198, 51, 100, 10], 100), 3478),
        stun_alternate: SocketAddr::new(ip(v6, [198, 51, 100, 11], 100), 3479),
        turn: SocketAddr::new(ip(v6, [198, 51, 100, 20], 100), 3478),
        turn_relay: ip(v6, [198, 51, 100, 21], 100),
        link,
    };
    servers(&mut world, &plan);
    let place =
        |name: &'static str, preset: NatPreset, index: u8, controlling: bool, world: &mut World| {
            let mut network: NetworkId = internet;
            let boxes: Vec<NatConfig> = preset.boxes();
            for (depth, config) in boxes.iter().rev().enumerate() {
                let external = if depth == 0 {
                    ip(v6, [203, 0, 113, index], 113)
                } else {
                    ip(v6, [100, 64, index, depth as u8], 64)
                };
                let config = NatConfig {
                    mapping_lifetime: options.mapping_lifetime,
                    ..*config
                };
                network = world.add_nat(network, config, external, link).1;
            }
            let local_ip = if boxes.is_empty() {
                ip(v6, [203, 0, 113, 100 + index], 113)
            } else {
                ip(v6, [192, 168, index, 10], 192)
            };
            let local = SocketAddr::new(local_ip, 5000 + u16::from(index));
            let setup = PeerSetup {
                name,
                local,
                stun: plan.stun,
                turn: (plan.turn, TURN_USER, TURN_PASSWORD),
                controlling,
                seed: seed.wrapping_mul(31).wrapping_add(u64::from(index)),
                liveness: options.liveness,
                start: world.now(),
            };
            world.add_host(name, network, &[local_ip], link, peer(setup))
        };
    let host_a = place("a", a, 1, true, &mut world);
    let host_b = place("b", b, 2, false, &mut world);
    world.connect_signalling(host_a, host_b, Duration::from_millis(50));
    (world, host_a, host_b)
}

/// Where a cell's servers live.
#[derive(Clone, Copy, Debug)]
pub struct ServerPlan {
    /// The STUN server's primary address.
    pub stun: SocketAddr,
    /// Its RFC 5780 alternate address.
    pub stun_alternate: SocketAddr,
    /// The TURN server's listening address.
    pub turn: SocketAddr,
    /// The address its relayed transport addresses are on.
    pub turn_relay: IpAddr,
    /// The link every host has.
    pub link: Link,
}

/// Runs one cell to completion.
pub fn run_cell<P: MatrixPeer>(
    a: NatPreset,
    b: NatPreset,
    options: &MatrixOptions,
    servers: impl FnOnce(&mut World, &ServerPlan),
    peer: impl Fn(PeerSetup) -> P,
) -> std::io::Result<Cell> {
    let seed = options.seed ^ ((a as u64) << 8 | b as u64);
    let (mut world, host_a, host_b) = build_cell(a, b, options, seed, servers, peer);
    if let Some(dir) = &options.pcap_dir {
        let path = dir.join(format!("{}--{}.pcap", a.name(), b.name()));
        world.capture(Box::new(File::create(path)?))?;
    }
    let settled = |w: &World| {
        let done = |h| {
            w.node::<P>(h)
                .is_some_and(|p| p.selected().is_some() || p.failed())
        };
        done(host_a) && done(host_b)
    };
    let finished = world.run_until_condition(options.timeout, settled);
    let time = finished.then(|| world.elapsed());
    let packets = [host_a, host_b]
        .iter()
        .map(|h| world.stats().sent_by.get(h).copied().unwrap_or(0))
        .sum();
    let peer_a = world.node::<P>(host_a);
    let (mut dtls, mut held) = (None, None);
    let outcome = match peer_a.and_then(|p| p.selected()) {
        Some(selected) if finished => {
            let started = world.elapsed();
            let done_at = |w: &World, h| w.node::<P>(h).and_then(MatrixPeer::dtls_done_at);
            let handshaken =
                |w: &World| done_at(w, host_a).is_some() && done_at(w, host_b).is_some();
            if world.run_until_condition(options.timeout, handshaken) {
                let origin = world.now() - world.elapsed();
                dtls = done_at(&world, host_a)
                    .max(done_at(&world, host_b))
                    .map(|at| at - origin);
            }
            // The call lasts `hold` from selection, however long the handshake took.
            let hold_end = started + options.hold;
            world.run_for(hold_end.saturating_sub(world.elapsed()));
            let still = |h| world.node::<P>(h).is_some_and(MatrixPeer::connected);
            held = Some(still(host_a) && still(host_b));
            // The path the call ended on: a better pair found later replaces the first one.
            let last = world.node::<P>(host_a).and_then(MatrixPeer::selected);
            classify(last.unwrap_or(selected))
        }
        _ if peer_a.is_some_and(MatrixPeer::failed) => Outcome::Failed,
        _ => Outcome::Timeout,
    };
    let failure = [host_a, host_b]
        .into_iter()
        .find_map(|h| world.node::<P>(h).and_then(MatrixPeer::failure));
    world.finish_capture()?;
    Ok(Cell {
        a,
        b,
        expected: expect(a, b),
        outcome,
        time,
        dtls,
        held,
        failure,
        packets,
        trace: world.trace_hash(),
    })
}

/// Prints the matrix as a table: one row per cell.
pub fn print_table(cells: &[Cell], out: &mut impl std::io::Write) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<16} {:<16} {:<8} {:<14} {:>10} {:>10} {:<10} {:>8}  {:<4} trace",
        "A (controlling)", "B", "expect", "outcome", "time", "DTLS done", "held", "packets", "ok"
    )?;
    for c in cells {
        let expected = match c.expected {
            Expectation::Direct => "direct",
            Expectation::Relay => "relay",
            Expectation::Fail => "fail",
        };
        let time = c
            .time
            .map_or("-".to_owned(), |t| format!("{:.3}s", t.as_secs_f64()));
        let dtls = c
            .dtls
            .map_or("-".to_owned(), |t| format!("{:.3}s", t.as_secs_f64()));
        let held = match (c.held, &c.failure) {
            (Some(true), _) => "yes",
            (Some(false), Some(PeerError::Ice(FailureReason::ConsentExpired))) => "no:consent",
            (Some(false), _) => "no",
            (None, _) => "-",
        };
        let ok = if c.met() { "yes" } else { "NO" };
        writeln!(
            out,
            "{:<16} {:<16} {:<8} {:<14} {:>10} {:>10} {:<10} {:>8}  {:<4} {}",
            c.a.name(),
            c.b.name(),
            expected,
            c.outcome.to_string(),
            time,
            dtls,
            held,
            c.packets,
            ok,
            c.trace
        )?;
    }
    let met = cells.iter().filter(|c| c.met()).count();
    writeln!(out, "{met} of {} cells met their expectation", cells.len())
}

/// The servers every cell has: an RFC 5780 STUN server and a TURN server with 32 relayed ports.
pub fn standard_servers(world: &mut World, plan: &ServerPlan) {
    let internet = world.internet();
    let stun = StunServer::new(plan.stun, Some(plan.stun_alternate));
    world.add_host(
        "stun",
        internet,
        &[plan.stun.ip(), plan.stun_alternate.ip()],
        plan.link,
        stun,
    );
    let relays = (0..32)
        .map(|i| SocketAddr::new(plan.turn_relay, 49_152 + i))
        .collect();
    let now = world.now();
    let turn = TurnServer::new(
        now,
        plan.turn,
        relays,
        TURN_REALM,
        (TURN_USER, TURN_PASSWORD),
        0x7e57,
    );
    world.add_host(
        "turn",
        internet,
        &[plan.turn.ip(), plan.turn_relay],
        plan.link,
        turn,
    );
}

/// Runs every pair of `options.presets`, both ways, with full peers (ICE + DTLS); the cells
/// in order.
pub fn run_matrix(options: &MatrixOptions) -> std::io::Result<Vec<Cell>> {
    let mut cells = Vec::new();
    for &a in &options.presets {
        for &b in &options.presets {
            cells.push(run_cell(a, b, options, standard_servers, |setup| {
                PeerNode::new(&setup)
            })?);
        }
    }
    Ok(cells)
}
