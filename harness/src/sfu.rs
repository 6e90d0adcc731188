//! The SFU scenario (issue 22): many full peers (ICE controlling, DTLS client), each behind
//! a NAT of the matrix's presets in turn, join one SFU endpoint on one port of a public
//! host ([`crate::nodes::SfuNode`]: ICE-lite sessions, one DTLS server per session), with
//! loss on every link. The UDP-blocking preset is left out: without UDP there is no path to
//! a UDP port (the matrix shows it failing). Each peer pings once ready and the SFU echoes;
//! the report says how many peers became ready and stayed connected, and when.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use ice_proto::AgentConfig;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use crate::matrix::{Liveness, MatrixPeer};
use crate::nat::NatPreset;
use crate::nodes::{PeerNode, SfuNode, StunServer, dtls_config};
use crate::peer::{Peer, PeerConfig, Setup};
use crate::{HostId, Link, NatConfig, Path, World, epoch};

/// How the scenario runs.
#[derive(Clone, Copy, Debug)]
pub struct SfuOptions {
    /// How many peers join.
    pub peers: usize,
    /// DTLS on every session.
    pub dtls: bool,
    /// Loss on every link (each way).
    pub loss: f64,
    /// One-way latency of every link.
    pub delay: Duration,
    /// How long the calls run.
    pub duration: Duration,
    /// The world's seed.
    pub seed: u64,
}

impl Default for SfuOptions {
    fn default() -> Self {
        Self {
            peers: 1_000,
            dtls: true,
            loss: 0.0,
            delay: Duration::from_millis(10),
            duration: Duration::from_secs(10),
            seed: 1,
        }
    }
}

/// What came of it.
#[derive(Clone, Debug)]
pub struct SfuReport {
    /// Peers that joined.
    pub peers: usize,
    /// Peers that became ready (ICE selected, DTLS done when on), with the time each took.
    pub ready: Vec<Duration>,
    /// Peers still connected at the end (their pings answered lately).
    pub connected: usize,
    /// Sessions the SFU holds as connected at the end.
    pub sfu_connected: usize,
    /// Sessions whose DTLS handshake the SFU completed.
    pub sfu_secured: usize,
    /// Datagrams of application data the SFU echoed.
    pub echoed: u64,
    /// Peers that failed, with their preset and why.
    pub failures: Vec<(NatPreset, String)>,
    /// Datagrams the simulator delivered.
    pub delivered: u64,
    /// Datagrams lost to links or dropped by NATs.
    pub dropped: u64,
}

impl SfuReport {
    /// The times to ready at these quantiles (0.5 the median, 1.0 the largest).
    pub fn ready_quantiles<const N: usize>(&self, q: [f64; N]) -> Option<[Duration; N]> {
        let mut t = self.ready.clone();
        t.sort();
        let last = t.len().checked_sub(1)?;
        Some(q.map(|q| t[((last as f64 * q).round() as usize).min(last)]))
    }
}

/// The presets peers sit behind, in turn.
const PRESETS: [NatPreset; 7] = [
    NatPreset::Open,
    NatPreset::FullCone,
    NatPreset::RestrictedCone,
    NatPreset::PortRestrictedCone,
    NatPreset::Symmetric,
    NatPreset::SymmetricSequential,
    NatPreset::CarrierGradeDouble,
];

/// The `i`th address of a /8 the simulation owns: peers get distinct public and private
/// addresses however many there are.
fn address(first: u8, i: usize, last: u8) -> IpAddr {
    let i = i as u32;
    IpAddr::V4(Ipv4Addr::new(first, (i >> 8) as u8, i as u8, last))
}

/// Runs the scenario.
pub fn run(options: &SfuOptions) -> SfuReport {
    let start = epoch();
    let mut world = World::new(options.seed, start);
    let link = Link::symmetric(Path {
        loss: options.loss,
        ..Path::with_latency(options.delay)
    });
    let internet = world.internet();
    let stun = SocketAddr::from(([198, 51, 100, 10], 3478));
    world.add_host(
        "stun",
        internet,
        &[stun.ip()],
        link,
        StunServer::new(stun, None),
    );
    let port = SocketAddr::from(([198, 51, 100, 50], 3478));
    let mut sfu = SfuNode::new(port, options.dtls, options.seed);
    let liveness = Liveness::default();
    let mut peers: Vec<(HostId, NatPreset)> = Vec::with_capacity(options.peers);
    let mut nodes = Vec::with_capacity(options.peers);
    for i in 0..options.peers {
        let preset = PRESETS[i % PRESETS.len()];
        let mut network = internet;
        let boxes = preset.boxes();
        for (depth, config) in boxes.iter().rev().enumerate() {
            let external = if depth == 0 {
                address(11, i, 1)
            } else {
                address(100, i, 64)
            };
            network = world
                .add_nat(network, NatConfig { ..*config }, external, link)
                .1;
        }
        let ip = if boxes.is_empty() {
            address(12, i, 1)
        } else {
            address(10, i, 10)
        };
        let mut rng = ChaCha20Rng::seed_from_u64(options.seed.wrapping_mul(1_000_003) ^ i as u64);
        let dtls = options.dtls.then(|| dtls_config(&mut rng, Setup::ActPass));
        let config = PeerConfig {
            ice: AgentConfig {
                controlling: true,
                stun_servers: vec![stun],
                consent_interval: liveness.consent_interval,
                ..AgentConfig::default()
            },
            bases: vec![SocketAddr::new(ip, 5000)],
            tcp_bases: Vec::new(),
            relay_only: false,
            dtls,
        };
        // unwrap: a fresh agent takes one stream with one base.
        let mut peer = Peer::new(config, rng).expect("a fresh peer takes its base");
        // The offer/answer exchange, out of band before the world runs: the SFU needs the
        // peer's ufrag and fingerprint, the peer the session's credentials, the port and
        // the SFU's fingerprint.
        peer.handle_start(start);
        let offer: Vec<_> = std::iter::from_fn(|| peer.poll_signal()).collect();
        if let Some(answer) = sfu.admit(start, &offer) {
            for line in answer {
                peer.handle_signal(start, line);
            }
        }
        nodes.push((network, ip, peer, preset));
    }
    let sfu_host = world.add_host("sfu", internet, &[port.ip()], link, sfu);
    for (i, (network, ip, peer, preset)) in nodes.into_iter().enumerate() {
        let node = PeerNode::from_peer(peer, start).with_ping_interval(liveness.ping_interval);
        let host = world.add_host(&format!("peer{i}"), network, &[ip], link, node);
        peers.push((host, preset));
    }
    world.run_for(options.duration);
    let mut report = SfuReport {
        peers: options.peers,
        ready: Vec::new(),
        connected: 0,
        sfu_connected: 0,
        sfu_secured: 0,
        echoed: 0,
        failures: Vec::new(),
        delivered: world.stats().delivered,
        dropped: world.stats().dropped.values().sum(),
    };
    for (host, preset) in peers {
        let Some(node) = world.node::<PeerNode>(host) else {
            continue;
        };
        if let Some(at) = node.ready_at() {
            report.ready.push(at.saturating_duration_since(start));
        }
        if node.connected() {
            report.connected += 1;
        }
        if let Some(e) = node.failure() {
            report.failures.push((preset, e.to_string()));
        }
    }
    if let Some(sfu) = world.node::<SfuNode>(sfu_host) {
        report.sfu_connected = sfu.connected();
        report.sfu_secured = sfu.secured().len();
        report.echoed = sfu.echoed();
    }
    report
}
