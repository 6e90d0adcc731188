//! Each NAT preset's behaviour, packet by packet, independent of any protocol: which mappings
//! are reused, which inbound datagrams pass or are filtered, hairpinning, expiry, port choice;
//! TCP through NATs and firewalls.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use harness::nodes::{Probe, Received};
use harness::{
    DropReason, HostId, Link, NatConfig, NatDrop, NatPreset, NetworkId, PortAssignment, World,
    epoch,
};
use stun_proto::TransportProtocol;

const CLIENT: &str = "192.168.1.10";
const S1: &str = "198.51.100.1";
const S2: &str = "198.51.100.2";

fn addr(ip: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip.parse().unwrap(), port)
}

struct Setup {
    world: World,
    client: HostId,
    client_ip: IpAddr,
    s1: HostId,
    s2: HostId,
}

/// A client behind `preset`, and two probes on the internet.
fn setup(preset: NatPreset) -> Setup {
    setup_with(preset.boxes())
}

fn setup_with(boxes: Vec<NatConfig>) -> Setup {
    let mut world = World::new(1, epoch());
    let internet = world.internet();
    let s1 = world.add_host(
        "s1",
        internet,
        &[S1.parse().unwrap()],
        Link::default(),
        Probe::new(),
    );
    let s2 = world.add_host(
        "s2",
        internet,
        &[S2.parse().unwrap()],
        Link::default(),
        Probe::new(),
    );
    let mut network: NetworkId = internet;
    // Outermost box first: its outside address is public.
    for (i, config) in boxes.iter().rev().enumerate() {
        let external: IpAddr = if i == 0 {
            "203.0.113.1".parse().unwrap()
        } else {
            format!("100.64.0.{i}").parse().unwrap()
        };
        network = world.add_nat(network, *config, external, Link::default()).1;
    }
    let client_ip: IpAddr = if boxes.is_empty() {
        "203.0.113.50".parse().unwrap()
    } else {
        CLIENT.parse().unwrap()
    };
    let client = world.add_host(
        "client",
        network,
        &[client_ip],
        Link::default(),
        Probe::new(),
    );
    Setup {
        world,
        client,
        client_ip,
        s1,
        s2,
    }
}

impl Setup {
    fn send(&mut self, from: HostId, source: SocketAddr, to: SocketAddr) {
        self.world
            .with_node::<Probe, _>(from, |p, _| p.send(source, to, b"probe"));
        self.world.run_for(Duration::from_millis(100));
    }

    /// The client sends from port 5000 to `to`; returns the source address `to` saw, if any.
    fn outbound(&mut self, to: SocketAddr, server: HostId) -> Option<SocketAddr> {
        let source = SocketAddr::new(self.client_ip, 5000);
        self.world.with_node::<Probe, _>(server, |p, _| p.clear());
        self.send(self.client, source, to);
        self.world
            .node::<Probe>(server)
            .unwrap()
            .received()
            .last()
            .map(|r| r.source)
    }

    /// `server` sends from `from` to `mapped`; whether the client got it.
    fn inbound_passes(&mut self, server: HostId, from: SocketAddr, mapped: SocketAddr) -> bool {
        self.world
            .with_node::<Probe, _>(self.client, |p, _| p.clear());
        self.send(server, from, mapped);
        !self
            .world
            .node::<Probe>(self.client)
            .unwrap()
            .received()
            .is_empty()
    }
}

/// What one preset must do: mapping reuse and the three inbound probes after the client sent
/// to S1:1000 only.
fn check_preset(preset: NatPreset, same_mapping: bool, same_ip_other_port: bool, other_ip: bool) {
    let mut s = setup(preset);
    let (s1, s2) = (s.s1, s.s2);
    let m1 = s.outbound(addr(S1, 1000), s1).expect("outbound passes");
    let inbound_same = s.inbound_passes(s1, addr(S1, 1000), m1);
    assert!(
        inbound_same,
        "{preset:?}: the contacted endpoint's reply passes"
    );
    assert_eq!(
        s.inbound_passes(s1, addr(S1, 2000), m1),
        same_ip_other_port,
        "{preset:?}: same IP, other port"
    );
    assert_eq!(
        s.inbound_passes(s2, addr(S2, 1000), m1),
        other_ip,
        "{preset:?}: other IP"
    );
    let m2 = s.outbound(addr(S1, 2000), s1).expect("outbound passes");
    let m3 = s.outbound(addr(S2, 1000), s2).expect("outbound passes");
    assert_eq!(
        m1 == m2 && m2 == m3,
        same_mapping,
        "{preset:?}: mappings {m1} {m2} {m3}"
    );
}

#[test]
fn open_host_is_reached_directly() {
    check_preset(NatPreset::Open, true, true, true);
}

#[test]
fn full_cone_reuses_its_mapping_and_lets_anyone_in() {
    check_preset(NatPreset::FullCone, true, true, true);
}

#[test]
fn restricted_cone_filters_by_address() {
    check_preset(NatPreset::RestrictedCone, true, true, false);
}

#[test]
fn port_restricted_cone_filters_by_address_and_port() {
    check_preset(NatPreset::PortRestrictedCone, true, false, false);
}

#[test]
fn symmetric_maps_per_destination_and_filters_by_address_and_port() {
    check_preset(NatPreset::Symmetric, false, false, false);
    check_preset(NatPreset::SymmetricSequential, false, false, false);
}

#[test]
fn carrier_grade_double_nat_maps_independently_and_filters_by_port() {
    check_preset(NatPreset::CarrierGradeDouble, true, false, false);
}

/// `preset`'s client writes over TCP to a listening echo server on `port`; what came back.
fn tcp_round_trip(preset: NatPreset, port: u16) -> (Option<Received>, World) {
    let mut s = setup(preset);
    let internet = s.world.internet();
    let server = addr("198.51.100.9", port);
    let echo = s.world.add_host(
        "echo",
        internet,
        &[server.ip()],
        Link::default(),
        Probe::echo().listening(),
    );
    let source = SocketAddr::new(s.client_ip, 5000);
    s.world.with_node::<Probe, _>(s.client, |p, _| {
        p.send_over(TransportProtocol::Tcp, source, server, b"first");
        p.send_over(TransportProtocol::Tcp, source, server, b"second");
    });
    s.world.run_for(Duration::from_secs(1));
    let client = s.world.node::<Probe>(s.client).unwrap().received().to_vec();
    let echoed = s.world.node::<Probe>(echo).unwrap().received().to_vec();
    if let Some(first) = echoed.first() {
        // Both writes arrived, in order, from the NAT's mapping for the connection.
        assert_eq!(echoed.len(), 2);
        assert_eq!(first.transport, TransportProtocol::Tcp);
        assert_eq!(&echoed[1].payload[..], b"second");
        assert_eq!(client.len(), 2, "both echoes came back on the connection");
    }
    (client.first().cloned(), s.world)
}

#[test]
fn tcp_connects_through_a_nat_and_comes_back_on_its_mapping() {
    for preset in [NatPreset::PortRestrictedCone, NatPreset::Symmetric] {
        let (back, world) = tcp_round_trip(preset, 443);
        let back = back.unwrap_or_else(|| panic!("{preset:?}: no echo"));
        assert_eq!(back.transport, TransportProtocol::Tcp);
        assert_eq!(&back.payload[..], b"first");
        assert_eq!(back.source, addr("198.51.100.9", 443));
        assert!(world.stats().tcp_closed.is_empty());
    }
}

#[test]
fn firewalls_let_tcp_out_to_their_ports_only() {
    for (preset, port, passes) in [
        (NatPreset::UdpBlocked, 5000, true),
        (NatPreset::UdpBlocked, 443, true),
        (NatPreset::Corporate, 443, true),
        (NatPreset::Corporate, 80, true),
        (NatPreset::Corporate, 5000, false),
        (NatPreset::HttpOnly, 80, true),
        (NatPreset::HttpOnly, 443, false),
    ] {
        let (back, world) = tcp_round_trip(preset, port);
        assert_eq!(back.is_some(), passes, "{preset:?} to port {port}");
        let blocked = world
            .stats()
            .dropped
            .get(&DropReason::Nat(NatDrop::Blocked));
        assert_eq!(blocked.is_some(), !passes, "{preset:?} to port {port}");
    }
}

#[test]
fn an_unsolicited_tcp_syn_finds_no_mapping() {
    let mut s = setup(NatPreset::FullCone);
    let s1 = s.s1;
    let from = addr(S1, 443);
    // Even a full cone maps TCP only for connections from inside.
    let target = addr("203.0.113.1", 5000);
    s.world.with_node::<Probe, _>(s1, |p, _| {
        p.send_over(TransportProtocol::Tcp, from, target, b"hello")
    });
    s.world.run_for(Duration::from_millis(500));
    assert!(
        s.world
            .node::<Probe>(s.client)
            .unwrap()
            .received()
            .is_empty()
    );
    assert_eq!(
        s.world
            .stats()
            .dropped
            .get(&DropReason::Nat(NatDrop::NoMapping)),
        Some(&1)
    );
}

#[test]
fn udp_blocking_firewall_passes_nothing() {
    let mut s = setup(NatPreset::UdpBlocked);
    let s1 = s.s1;
    assert_eq!(s.outbound(addr(S1, 1000), s1), None);
    assert_eq!(
        s.world
            .stats()
            .dropped
            .get(&DropReason::Nat(NatDrop::Blocked)),
        Some(&1)
    );
}

#[test]
fn port_assignment_preserves_or_counts_up() {
    let mut s = setup(NatPreset::FullCone);
    let s1 = s.s1;
    assert_eq!(
        s.outbound(addr(S1, 1000), s1).map(|a| a.port()),
        Some(5000),
        "preserving"
    );

    let mut s = setup(NatPreset::SymmetricSequential);
    let (s1, s2) = (s.s1, s.s2);
    let p1 = s.outbound(addr(S1, 1000), s1).unwrap().port();
    let p2 = s.outbound(addr(S1, 2000), s1).unwrap().port();
    let p3 = s.outbound(addr(S2, 1000), s2).unwrap().port();
    assert_eq!((p2, p3), (p1 + 1, p1 + 2), "sequential");
}

/// A 30 s mapping refreshed by outbound traffic every 20 s for a minute, then reached only
/// by inbound datagrams every 20 s: how many of three got through, and then whether a 31 s
/// silence expired it (a new random port on the next outbound datagram).
fn expiry(inbound_refreshes: bool) -> (u64, bool) {
    let config = NatConfig {
        mapping_lifetime: Duration::from_secs(30),
        inbound_refreshes,
        ..NatConfig::new(
            harness::Mapping::EndpointIndependent,
            harness::Filtering::AddressAndPortDependent,
            PortAssignment::Random,
        )
    };
    let mut s = setup_with(vec![config]);
    let s1 = s.s1;
    let m1 = s.outbound(addr(S1, 1000), s1).unwrap();
    for _ in 0..3 {
        s.world.run_for(Duration::from_secs(20));
        assert_eq!(s.outbound(addr(S1, 1000), s1), Some(m1));
    }
    let passed = (0..3)
        .filter(|_| {
            s.world.run_for(Duration::from_secs(20));
            s.inbound_passes(s1, addr(S1, 1000), m1)
        })
        .count() as u64;
    let dropped = |s: &Setup| {
        let stats = s.world.stats();
        stats
            .dropped
            .get(&DropReason::Nat(NatDrop::NoMapping))
            .copied()
            .unwrap_or(0)
    };
    assert_eq!(
        dropped(&s),
        3 - passed,
        "the inbound datagrams that did not pass found no mapping"
    );
    s.world.run_for(Duration::from_secs(31));
    assert!(!s.inbound_passes(s1, addr(S1, 1000), m1));
    let m2 = s.outbound(addr(S1, 1000), s1).unwrap();
    (passed, m1 != m2)
}

#[test]
fn mappings_expire_unless_refreshed_by_outbound_traffic() {
    // Inbound traffic does not refresh the mapping (the default, as RFC 4787 REQ-6 leaves
    // it): the first datagram 20 s after the last outbound one passes, the next (40 s) finds
    // the mapping gone. After 31 s idle, a new mapping on a new random port.
    assert_eq!(expiry(false), (1, true));
}

#[test]
fn inbound_traffic_refreshes_mappings_when_the_nat_says_so() {
    // `inbound_refreshes` (Linux conntrack): each inbound datagram keeps the mapping, so all
    // three pass a minute after the last outbound one; silence still expires it.
    assert_eq!(expiry(true), (3, true));
}

#[test]
fn hairpinning_loops_back_through_the_external_address() {
    for hairpinning in [true, false] {
        let mut world = World::new(3, epoch());
        let internet = world.internet();
        let config = NatConfig {
            hairpinning,
            ..NatPreset::FullCone.boxes()[0]
        };
        let (_, lan) = world.add_nat(
            internet,
            config,
            "203.0.113.1".parse().unwrap(),
            Link::default(),
        );
        let a = world.add_host(
            "a",
            lan,
            &["192.168.1.2".parse().unwrap()],
            Link::default(),
            Probe::new(),
        );
        let b = world.add_host(
            "b",
            lan,
            &["192.168.1.3".parse().unwrap()],
            Link::default(),
            Probe::new(),
        );
        // b opens a mapping by sending out; a then sends to b's external address.
        world.with_node::<Probe, _>(b, |p, _| {
            p.send(addr("192.168.1.3", 6000), addr(S1, 1), b"open")
        });
        world.run_for(Duration::from_millis(50));
        world.with_node::<Probe, _>(a, |p, _| {
            p.send(
                addr("192.168.1.2", 7000),
                addr("203.0.113.1", 6000),
                b"hairpin",
            )
        });
        world.run_for(Duration::from_millis(50));
        let got = world.node::<Probe>(b).unwrap().received().to_vec();
        if hairpinning {
            assert_eq!(got.len(), 1);
            assert_eq!(
                got[0].source,
                addr("203.0.113.1", 7000),
                "the source is a's external address"
            );
        } else {
            assert!(got.is_empty());
            assert_eq!(
                world
                    .stats()
                    .dropped
                    .get(&DropReason::Nat(NatDrop::NoHairpin)),
                Some(&1)
            );
        }
    }
}

/// RFC 5780 discovery (stun-proto's `natcheck` logic) run through each simulated preset must
/// name the preset: the NAT models and the discovery client check each other.
#[test]
fn nat_discovery_classifies_every_preset() {
    use harness::nodes::{NatCheck, StunServer};
    use stun_proto::nat_behavior::ClassicNatType as T;

    let expected = [
        (NatPreset::Open, T::OpenInternet),
        (NatPreset::FullCone, T::FullCone),
        (NatPreset::RestrictedCone, T::RestrictedCone),
        (NatPreset::PortRestrictedCone, T::PortRestrictedCone),
        (NatPreset::Symmetric, T::Symmetric),
        (NatPreset::SymmetricSequential, T::Symmetric),
        // Inner box: endpoint-independent mapping, port-dependent filtering; the outer box
        // maps endpoint-independently too, so the pair looks like one port-restricted cone.
        (NatPreset::CarrierGradeDouble, T::PortRestrictedCone),
        (NatPreset::UdpBlocked, T::UdpBlocked),
        (NatPreset::Corporate, T::UdpBlocked),
        (NatPreset::HttpOnly, T::UdpBlocked),
    ];
    for (preset, classic) in expected {
        let mut s = setup(preset);
        let primary = addr("198.51.100.10", 3478);
        let alternate = addr("198.51.100.11", 3479);
        let internet = s.world.internet();
        s.world.add_host(
            "stun",
            internet,
            &[primary.ip(), alternate.ip()],
            Link::default(),
            StunServer::new(primary, Some(alternate)),
        );
        let network = s.world.network_of(s.client);
        let std::net::IpAddr::V4(client) = s.client_ip else {
            unreachable!()
        };
        let local = SocketAddr::new(
            std::net::Ipv4Addr::from(u32::from(client) + 1).into(),
            40_000,
        );
        let start = s.world.now();
        let check = s.world.add_host(
            "natcheck",
            network,
            &[local.ip()],
            Link::default(),
            NatCheck::new(local, primary, start, 9),
        );
        // Each unanswered test waits out its transaction (39.5 s): give it five minutes.
        s.world.run_for(Duration::from_secs(300));
        let report = s.world.node::<NatCheck>(check).unwrap().report().copied();
        let report =
            report.unwrap_or_else(|| panic!("{preset:?}: discovery did not finish in 300 s"));
        assert_eq!(report.classic_type(), classic, "{preset:?}: {report:?}");
    }
}

/// The complete example of docs/harness.md, verbatim but for `?`.
#[test]
fn docs_example_restricted_cone_behind_a_lossy_uplink() {
    use harness::Path;
    use harness::nodes::{NatCheck, StunServer};
    use stun_proto::nat_behavior::ClassicNatType;

    let mut world = World::new(7, epoch()); // seed 7
    let internet = world.internet();

    let primary: SocketAddr = "198.51.100.10:3478".parse().unwrap();
    let alternate: SocketAddr = "198.51.100.11:3479".parse().unwrap();
    world.add_host(
        "stun",
        internet,
        &[primary.ip(), alternate.ip()],
        Link::default(),
        StunServer::new(primary, Some(alternate)),
    );

    let uplink = Link::symmetric(Path {
        loss: 0.1,
        jitter: Duration::from_millis(20),
        ..Path::with_latency(Duration::from_millis(15))
    });
    let (_nat, lan) = world.add_nat(
        internet,
        NatPreset::RestrictedCone.boxes()[0],
        "203.0.113.1".parse().unwrap(),
        uplink,
    );

    let local: SocketAddr = "192.168.1.2:40000".parse().unwrap();
    let start = world.now();
    let host = world.add_host(
        "natcheck",
        lan,
        &[local.ip()],
        Link::default(),
        NatCheck::new(local, primary, start, 1),
    );

    world.run_for(Duration::from_secs(300));
    let report = world
        .node::<NatCheck>(host)
        .and_then(|n| n.report())
        .expect("finished");
    assert_eq!(report.classic_type(), ClassicNatType::RestrictedCone);
    println!(
        "trace {} after {:?}, {} datagrams",
        world.trace_hash(),
        world.elapsed(),
        world.stats().sent
    );
}
