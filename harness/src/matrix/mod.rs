//! The NAT traversal matrix: every pair of NAT presets, both ways, each a fresh world with a
//! STUN server and a TURN server on the internet and one full peer (ICE + DTLS,
//! [`crate::peer::Peer`]) behind each preset. A cell records what ICE selected, how long it
//! took in virtual time, when the DTLS handshake was done on both sides, how many datagrams
//! the peers sent, and whether that met the expectation from theory ([`crate::theory`]) —
//! or why not ([`Miss`]). [`report`] prints cells and seed sweeps as a table, JSON lines or CSV.

use std::fmt;
use std::fs::File;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use ice_proto::FailureReason;

use crate::nat::NatPreset;
use crate::nodes::{PeerNode, StunServer, TurnServer};
use crate::peer::PeerError;
use crate::theory::{Expectation, TURN_TCP_PORT, expect};
use crate::{HostId, Link, NatConfig, NetworkId, Node, Path, World, epoch};

pub mod report;

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

impl CandidateKind {
    /// The RFC 8839 `typ` name: host, srflx, prflx, relay.
    pub const fn name(self) -> &'static str {
        match self {
            CandidateKind::Host => "host",
            CandidateKind::ServerReflexive => "srflx",
            CandidateKind::PeerReflexive => "prflx",
            CandidateKind::Relayed => "relay",
        }
    }
}

/// What a peer reports about its selected pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Selected {
    /// The local candidate's type.
    pub local: CandidateKind,
    /// The remote candidate's type.
    pub remote: CandidateKind,
}

impl fmt::Display for Selected {
    /// `local→remote`, e.g. `srflx→relay`: what this side sends from, and what it sends to.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}→{}", self.local.name(), self.remote.name())
    }
}

/// What the matrix needs to know of a peer node.
pub trait MatrixPeer: Node {
    /// The selected pair, once there is one.
    fn selected(&self) -> Option<Selected>;
    /// Whether connectivity failed for good.
    fn failed(&self) -> bool;
    /// When the DTLS handshake over the selected pair completed, if it did.
    fn dtls_done_at(&self) -> Option<std::time::Instant>;
    /// When the peer became ready (a selected pair and, with DTLS, keys exported), if it
    /// did.
    fn ready_at(&self) -> Option<std::time::Instant>;
    /// When the peer first learnt that there is no path, before it was ever ready: ICE's
    /// early `disconnected` (both sides done gathering, every check failed or unanswered)
    /// or the failure itself.
    fn no_path_at(&self) -> Option<std::time::Instant>;
    /// Whether the peer is still connected (after selection: consent holds).
    fn connected(&self) -> bool;
    /// Why the peer failed, if it did.
    fn failure(&self) -> Option<PeerError>;
    /// The selected pair and the application datagrams received on it so far.
    fn received_on_selected(&self) -> Option<(ice_proto::PairId, u64)>;
}

/// The end of the hold over which `one_path` is judged: each side's selected pair stays and
/// receives the other side's pings.
const PATH_WINDOW: Duration = Duration::from_secs(10);

/// How a peer is set up in a cell.
#[derive(Clone, Debug)]
pub struct PeerSetup {
    /// "a" or "b".
    pub name: &'static str,
    /// The address of its one socket.
    pub local: SocketAddr,
    /// Its listening TCP socket for ICE-TCP host candidates, if it has one.
    pub tcp_local: Option<SocketAddr>,
    /// The STUN server.
    pub stun: SocketAddr,
    /// The TURN server (over UDP) and its credentials.
    pub turn: (SocketAddr, &'static str, &'static str),
    /// The same TURN server's TCP address: the peer allocates over both, as a browser given
    /// a `turn:` URL for each transport does, and a firewall that blocks UDP leaves it this.
    pub turn_tcp: SocketAddr,
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
    /// The seed every cell's world is drawn from, with the cell's position ([`cell_seed`]).
    pub seed: u64,
    /// IPv6 addressing everywhere.
    pub ipv6: bool,
    /// Write each cell's capture here.
    pub pcap_dir: Option<PathBuf>,
    /// How long the call runs after selection; a peer must still be connected at the end.
    pub hold: Duration,
    /// NAT mapping lifetime (keepalives and consent checks must keep mappings alive).
    pub mapping_lifetime: Duration,
    /// Whether inbound datagrams refresh a NAT mapping too, as Linux conntrack does; by
    /// default only outbound ones do (RFC 4787 REQ-6 requires outbound refresh and leaves
    /// inbound refresh to the NAT).
    pub inbound_refreshes: bool,
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
            inbound_refreshes: false,
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
    /// The seed of this cell's world ([`cell_seed`]).
    pub seed: u64,
    /// What happened: for a connected cell, the class of the pair the call ended on.
    pub outcome: Outcome,
    /// The pair the call ended on as the controlling peer A saw it: the type of its own
    /// candidate → the type of B's (`srflx→relay`: A sent from its server-reflexive mapping
    /// to B's relayed address); `None` when no pair was selected.
    pub pair: Option<Selected>,
    /// Virtual time from the start until both peers had selected a pair (or one failed):
    /// the "time" column.
    pub time: Option<Duration>,
    /// Virtual time from the start until both peers had completed the DTLS handshake, if
    /// they did: the "DTLS done" column. It is often less than `time`: DTLS starts on the
    /// first pair that passed its checks, before ICE nominates and both sides select it.
    pub dtls: Option<Duration>,
    /// Virtual time from the start until both peers were ready (a selected pair and DTLS
    /// keys on each side): the "ready" column, what a user waits for before media flows.
    pub ready: Option<Duration>,
    /// Virtual time from the start until both peers had learnt that there is no path (ICE's
    /// early `disconnected`, or the failure), in a cell that never became ready: the "no
    /// path" column.
    pub no_path: Option<Duration>,
    /// Whether both peers were still connected (not failed, data still arriving) at the end
    /// of the hold period; `None` when no pair was selected.
    pub held: Option<bool>,
    /// Whether both directions rode one path over the last 10 s of the hold: each side's
    /// selected pair stayed and received the other's datagrams (false: each side sends on
    /// a pair the other does not receive on, say two relays). `None` when not measured (no
    /// call, a hold shorter than the window, pings rarer than it).
    pub one_path: Option<bool>,
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
        self.miss().is_none()
    }

    /// Why the cell missed its expectation, if it did.
    pub fn miss(&self) -> Option<Miss> {
        let failure = self.failure.clone();
        match (self.expected, self.outcome) {
            (Expectation::Fail, Outcome::Failed) => None,
            (Expectation::Fail, Outcome::Direct(_) | Outcome::Relay) => Some(Miss::Connected),
            (_, Outcome::Timeout) => Some(Miss::Timeout),
            (_, Outcome::Failed) => Some(Miss::Failed(failure)),
            _ if !self.outcome.meets(self.expected) => Some(Miss::WrongClass(self.outcome)),
            _ if self.dtls.is_none() => Some(Miss::DtlsNotDone),
            _ if self.held != Some(true) => Some(Miss::Dropped(failure)),
            _ => None,
        }
    }
}

/// Why a cell missed its expectation.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Miss {
    /// Neither a selected pair nor a failure within the timeout.
    Timeout,
    /// Connectivity failed where theory gives a path; the peer's error, if it said one.
    Failed(Option<PeerError>),
    /// A pair was selected where theory says connectivity must fail.
    Connected,
    /// The call ended on a pair of the other class: direct where theory gives relay, or
    /// relay where it gives direct.
    WrongClass(Outcome),
    /// A pair was selected but the DTLS handshake did not complete on both sides.
    DtlsNotDone,
    /// The call dropped before the end of the hold period; the peer's error, if one failed
    /// (none: the pings stopped arriving and no ICE state said so).
    Dropped(Option<PeerError>),
}

impl Miss {
    /// A short name for the cause, to count misses by: `timeout`, `connected`,
    /// `wrong-class`, `dtls-not-done`, `failed:ERROR` and `dropped:ERROR`, where ERROR is
    /// `consent`, `ice`, `setup-conflict`, `dtls` or `silent` (no error reported).
    pub fn cause(&self) -> String {
        let error = |e: &Option<PeerError>| error_name(e.as_ref());
        match self {
            Miss::Timeout => "timeout".into(),
            Miss::Failed(e) => format!("failed:{}", error(e)),
            Miss::Connected => "connected".into(),
            Miss::WrongClass(_) => "wrong-class".into(),
            Miss::DtlsNotDone => "dtls-not-done".into(),
            Miss::Dropped(e) => format!("dropped:{}", error(e)),
        }
    }
}

/// The short name of a peer's error in a [`Miss::cause`]: `consent`, `ice`, `setup-conflict`,
/// `dtls`, or `silent` for none.
fn error_name(e: Option<&PeerError>) -> &'static str {
    match e {
        Some(PeerError::Ice(FailureReason::ConsentExpired)) => "consent",
        Some(PeerError::Ice(_)) => "ice",
        Some(PeerError::SetupConflict { .. }) => "setup-conflict",
        Some(PeerError::Dtls(_)) => "dtls",
        None => "silent",
    }
}

impl fmt::Display for Miss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Miss::Timeout => f.write_str("no pair selected and no failure within the timeout"),
            Miss::Failed(Some(e)) => write!(f, "failed where a path exists: {e}"),
            Miss::Failed(None) => f.write_str("failed where a path exists"),
            Miss::Connected => f.write_str("connected where theory says no path exists"),
            Miss::WrongClass(outcome) => write!(f, "the call ended on {outcome}"),
            Miss::DtlsNotDone => f.write_str("a pair was selected but DTLS did not complete"),
            Miss::Dropped(Some(e)) => write!(f, "the call dropped before the end: {e}"),
            Miss::Dropped(None) => f.write_str(
                "the call dropped before the end: pings stopped arriving, no ICE state said so",
            ),
        }
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
        turn_tcp: SocketAddr::new(ip(v6, [198, 51, 100, 20], 100), TURN_TCP_PORT),
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
                    inbound_refreshes: options.inbound_refreshes,
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
                // ICE-TCP's listening socket; the TURN-over-TCP connection leaves from
                // `local`'s number, a socket of its own.
                tcp_local: Some(SocketAddr::new(local_ip, 7000 + u16::from(index))),
                stun: plan.stun,
                turn: (plan.turn, TURN_USER, TURN_PASSWORD),
                turn_tcp: plan.turn_tcp,
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
    /// The TURN server's listening address over UDP.
    pub turn: SocketAddr,
    /// Its listening address over TCP (port 443, where `turns:` servers listen; the
    /// simulator does not run TLS).
    pub turn_tcp: SocketAddr,
    /// The address its relayed transport addresses are on.
    pub turn_relay: IpAddr,
    /// The link every host has.
    pub link: Link,
}

/// The seed of the cell `a` → `b`'s world: `seed` and the cell's position in the full matrix,
/// mixed by SplitMix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number
/// generators", 2014), so that nearby seeds and nearby cells give unrelated worlds and a cell
/// has the same world whichever `--presets` it runs among.
pub fn cell_seed(seed: u64, a: NatPreset, b: NatPreset) -> u64 {
    let position = (a as u64) * (NatPreset::ALL.len() as u64) + b as u64;
    splitmix64(splitmix64(seed) ^ position)
}

/// SplitMix64's output function: a bijection of `u64` whose every output bit depends on every
/// input bit.
const fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Runs one cell to completion.
pub fn run_cell<P: MatrixPeer>(
    a: NatPreset,
    b: NatPreset,
    options: &MatrixOptions,
    servers: impl FnOnce(&mut World, &ServerPlan),
    peer: impl Fn(PeerSetup) -> P,
) -> std::io::Result<Cell> {
    let seed = cell_seed(options.seed, a, b);
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
    let (mut dtls, mut ready, mut held, mut pair) = (None, None, None, None);
    let mut one_path = None;
    let origin = world.now() - world.elapsed();
    let both = |w: &World, at: fn(&P) -> Option<std::time::Instant>| {
        let a = w.node::<P>(host_a).and_then(at)?;
        let b = w.node::<P>(host_b).and_then(at)?;
        Some(a.max(b) - origin)
    };
    let outcome = match peer_a.and_then(|p| p.selected()) {
        Some(selected) if finished => {
            let started = world.elapsed();
            let done_at = |w: &World, h| w.node::<P>(h).and_then(MatrixPeer::dtls_done_at);
            let handshaken =
                |w: &World| done_at(w, host_a).is_some() && done_at(w, host_b).is_some();
            if world.run_until_condition(options.timeout, handshaken) {
                dtls = both(&world, MatrixPeer::dtls_done_at);
                ready = both(&world, MatrixPeer::ready_at);
            }
            // The call lasts `hold` from selection, however long the handshake took.
            let hold_end = started + options.hold;
            let received = |w: &World| {
                [host_a, host_b].map(|h| w.node::<P>(h).and_then(MatrixPeer::received_on_selected))
            };
            let window_start = hold_end.checked_sub(PATH_WINDOW);
            let before = window_start
                .filter(|&t| t >= world.elapsed() && options.liveness.ping_interval < PATH_WINDOW)
                .map(|t| {
                    world.run_for(t - world.elapsed());
                    received(&world)
                });
            world.run_for(hold_end.saturating_sub(world.elapsed()));
            one_path = before.map(|before| {
                let after = received(&world);
                before.iter().zip(&after).all(|(b, a)| match (b, a) {
                    (Some((id0, n0)), Some((id1, n1))) => id0 == id1 && n1 > n0,
                    _ => false,
                })
            });
            let still = |h| world.node::<P>(h).is_some_and(MatrixPeer::connected);
            held = Some(still(host_a) && still(host_b));
            // The path the call ended on: a better pair found later replaces the first one.
            let last = world
                .node::<P>(host_a)
                .and_then(MatrixPeer::selected)
                .unwrap_or(selected);
            pair = Some(last);
            classify(last)
        }
        _ if peer_a.is_some_and(MatrixPeer::failed) => Outcome::Failed,
        _ => Outcome::Timeout,
    };
    let failure = [host_a, host_b]
        .into_iter()
        .find_map(|h| world.node::<P>(h).and_then(MatrixPeer::failure));
    let no_path = if ready.is_none() {
        both(&world, MatrixPeer::no_path_at)
    } else {
        None
    };
    world.finish_capture()?;
    Ok(Cell {
        a,
        b,
        expected: expect(a, b),
        seed,
        outcome,
        pair,
        time,
        dtls,
        ready,
        no_path,
        held,
        one_path,
        failure,
        packets,
        trace: world.trace_hash(),
    })
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
    )
    .with_tcp(plan.turn_tcp);
    world.add_host(
        "turn",
        internet,
        &[plan.turn.ip(), plan.turn_relay],
        plan.link,
        turn,
    );
}

/// Every pair of `options.presets`, both ways, in the matrix's order: A (controlling) first.
pub fn pairs(options: &MatrixOptions) -> Vec<(NatPreset, NatPreset)> {
    let presets = &options.presets;
    presets
        .iter()
        .flat_map(|&a| presets.iter().map(move |&b| (a, b)))
        .collect()
}

/// Runs one cell with the standard servers and full peers (ICE + DTLS).
pub fn run_standard_cell(
    a: NatPreset,
    b: NatPreset,
    options: &MatrixOptions,
) -> std::io::Result<Cell> {
    run_cell(a, b, options, standard_servers, |setup| {
        PeerNode::new(&setup)
    })
}

/// Runs every pair of `options.presets`, both ways, with full peers (ICE + DTLS); the cells
/// in order.
pub fn run_matrix(options: &MatrixOptions) -> std::io::Result<Vec<Cell>> {
    pairs(options)
        .into_iter()
        .map(|(a, b)| run_standard_cell(a, b, options))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A direct cell that connected, completed DTLS and held.
    fn good_cell() -> Cell {
        Cell {
            a: NatPreset::FullCone,
            b: NatPreset::FullCone,
            expected: Expectation::Direct,
            seed: 1,
            outcome: Outcome::Direct(CandidateKind::ServerReflexive),
            pair: Some(Selected {
                local: CandidateKind::Host,
                remote: CandidateKind::ServerReflexive,
            }),
            time: Some(Duration::from_secs(1)),
            dtls: Some(Duration::from_millis(300)),
            ready: Some(Duration::from_secs(1)),
            no_path: None,
            held: Some(true),
            one_path: Some(true),
            failure: None,
            packets: 50,
            trace: String::new(),
        }
    }

    #[test]
    fn a_cell_says_why_it_missed() {
        let consent = Some(PeerError::Ice(FailureReason::ConsentExpired));
        let cases = [
            (good_cell(), None),
            (
                Cell {
                    outcome: Outcome::Relay,
                    ..good_cell()
                },
                Some("wrong-class"),
            ),
            (
                Cell {
                    outcome: Outcome::Timeout,
                    ..good_cell()
                },
                Some("timeout"),
            ),
            (
                Cell {
                    outcome: Outcome::Failed,
                    failure: Some(PeerError::Ice(FailureReason::ChecksFailed)),
                    ..good_cell()
                },
                Some("failed:ice"),
            ),
            (
                Cell {
                    dtls: None,
                    ..good_cell()
                },
                Some("dtls-not-done"),
            ),
            (
                Cell {
                    held: Some(false),
                    failure: consent.clone(),
                    ..good_cell()
                },
                Some("dropped:consent"),
            ),
            (
                Cell {
                    held: Some(false),
                    ..good_cell()
                },
                Some("dropped:silent"),
            ),
            (
                Cell {
                    expected: Expectation::Fail,
                    ..good_cell()
                },
                Some("connected"),
            ),
            (
                Cell {
                    expected: Expectation::Fail,
                    outcome: Outcome::Failed,
                    failure: Some(PeerError::Ice(FailureReason::ChecksFailed)),
                    ..good_cell()
                },
                None,
            ),
        ];
        for (cell, cause) in cases {
            let miss = cell.miss();
            assert_eq!(miss.as_ref().map(Miss::cause).as_deref(), cause, "{cell:?}");
            assert_eq!(cell.met(), cause.is_none());
            // The reason in words names what happened.
            if let Some(Miss::Dropped(Some(_))) = miss {
                assert!(miss.unwrap().to_string().contains("RFC 7675"));
            }
        }
        assert_eq!(good_cell().pair.unwrap().to_string(), "host→srflx");
    }

    #[test]
    fn nearby_seeds_and_cells_give_unrelated_worlds() {
        let mut seeds = std::collections::HashSet::new();
        for seed in 0..200 {
            for a in NatPreset::ALL {
                for b in NatPreset::ALL {
                    assert!(seeds.insert(cell_seed(seed, a, b)), "{seed} {a:?} {b:?}");
                }
            }
        }
        // SplitMix64's published first output for seed 1234567.
        assert_eq!(splitmix64(1_234_567), 6_457_827_717_110_365_317);
    }
}
