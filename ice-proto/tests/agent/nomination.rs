//! Nomination after selection: re-nomination of a better pair that works late (beyond RFC
//! 8445 §8.1.1, which lets only a restart change the nominated pair, but interoperable: a
//! controlled agent nominated twice selects the higher-priority pair), aggressive
//! nomination, and what unauthenticated sources must not do.

use super::*;

/// A behind nothing, with a TURN server; B on a public address. The direct path is blocked
/// until `open_at` (the first attempts of the direct checks are lost), so the relayed pair
/// is selected first.
fn late_direct_path(renomination: bool, open_at: Duration) -> Sim {
    late_direct_path_with(renomination, ice_proto::NominationMode::Regular, open_at)
}

/// [`late_direct_path`] with a nomination mode for A.
fn late_direct_path_with(
    renomination: bool,
    mode: ice_proto::NominationMode,
    open_at: Duration,
) -> Sim {
    let mut a_config = config(true);
    a_config.renomination = renomination;
    a_config.nomination = mode;
    let mut b_config = config(false);
    b_config.renomination = renomination;
    let mut sim = relay_world(a_config, b_config, 401, true);
    sim.run_until(open_at, |_| false);
    assert_eq!(sim.elapsed(), open_at);
    sim.block_direct = false;
    sim
}

/// The selections of peer `i`: when, and the remote address.
fn selections_of(sim: &Sim, i: usize) -> Vec<(Duration, SocketAddr)> {
    sim.peers[i]
        .events
        .iter()
        .filter_map(|(t, e)| match e {
            Event::NewSelectedPair { remote, .. } => Some((*t - sim.start, remote.addr()?)),
            _ => None,
        })
        .collect()
}

#[test]
fn renomination_switches_from_the_relay_to_a_direct_pair_that_works_late() {
    // The direct path opens at 3 s. A's direct check retransmits at 3.5 s (sends at 0, 0.5,
    // 1.5, 3.5 s) and B's at 3.5 s too: both succeed at 3.51–3.52 s. The relayed pair was
    // selected at 0.12 s (B) / 0.14 s (A): it is the first valid pair, and A nominates the
    // first valid pair at once (`nomination_wait` 0). A nominates the direct pair at its
    // next Ta slot, 3.56 s; B selects it on the nomination at 3.57 s, A on the answer at
    // 3.58 s.
    let mut sim = late_direct_path(true, Duration::from_secs(3));
    assert!(sim.run_until(Duration::from_secs(10), |s| {
        s.selections(0) == 2 && s.selections(1) == 2
    }));
    let ms = Duration::from_millis;
    let (a_host, b_host, relayed) = (
        addr("192.0.2.1:5000"),
        addr("198.51.100.2:6000"),
        addr("203.0.113.50:49152"),
    );
    assert_eq!(
        selections_of(&sim, 0),
        [(ms(140), b_host), (ms(3_580), b_host)]
    );
    assert_eq!(
        selections_of(&sim, 1),
        [(ms(120), relayed), (ms(3_570), a_host)]
    );
    assert_eq!(sim.selected(0), Some((a_host, b_host)));
    assert_eq!(sim.selected(1), Some((b_host, a_host)));
    assert!(sim.both(ConnectionState::Completed));
    // Data now goes on the direct pair, not through the TURN server.
    let before = sim.log.len();
    sim.send_data(0, b"direct from A").unwrap();
    sim.send_data(1, b"direct from B").unwrap();
    let (_, _, a_tx) = &sim.log[before];
    let (_, _, b_tx) = &sim.log[before + 1];
    assert_eq!((a_tx.source, a_tx.destination), (a_host, b_host));
    assert_eq!((b_tx.source, b_tx.destination), (b_host, a_host));
    let t = sim.elapsed() + ms(50);
    sim.run_until(t, |_| false);
    assert_eq!(sim.peers[1].data.last().unwrap().1, b"direct from A");
    assert_eq!(sim.peers[0].data.last().unwrap().1, b"direct from B");
    // Settled: no further switch.
    let t = sim.elapsed() + Duration::from_secs(30);
    sim.run_until(t, |_| false);
    assert_eq!(sim.selections(0), 2);
    assert_eq!(sim.selections(1), 2);
}

#[test]
fn without_renomination_the_relayed_pair_stays_selected() {
    // The same network with `renomination: false`: the direct pair is no longer checked
    // after selection (§8.1.2), so the relayed pair selected first stays.
    let mut sim = late_direct_path(false, Duration::from_secs(3));
    let t = Duration::from_secs(20);
    sim.run_until(t, |_| false);
    let ms = Duration::from_millis;
    let relayed = addr("203.0.113.50:49152");
    assert_eq!(selections_of(&sim, 1), [(ms(120), relayed)]);
    assert_eq!(sim.selections(0), 1);
    assert!(sim.both(ConnectionState::Completed));
}

#[test]
fn aggressive_nomination_selects_on_the_first_success() {
    let mut a_config = config(true);
    a_config.nomination = ice_proto::NominationMode::Aggressive;
    let a = Peer::new(a_config, 411, &["192.0.2.1:5000"]);
    let b = Peer::new(config(false), 412, &["198.51.100.2:6000"]);
    let mut sim = Sim::new(a, b, 411);
    sim.start();
    assert!(sim.run_until(Duration::from_secs(5), |s| {
        s.both(ConnectionState::Completed)
    }));
    // A's first check (at 0) carries USE-CANDIDATE: B selects the pair when its own
    // triggered check succeeds, A on the answer — both at 20 ms (regular nomination takes
    // 60–70 ms here: the nominating check waits for the next Ta slot).
    let first = &sim.log.iter().find(|(_, from, _)| *from == 0).unwrap().2;
    let m = stun_proto::Message::parse(&first.payload).unwrap();
    assert!(m.has(stun_proto::AttributeType::USE_CANDIDATE));
    let ms = Duration::from_millis;
    assert_eq!(
        selections_of(&sim, 0),
        [(ms(20), addr("198.51.100.2:6000"))]
    );
    assert_eq!(selections_of(&sim, 1), [(ms(20), addr("192.0.2.1:5000"))]);
}

#[test]
fn aggressive_nomination_moves_up_to_a_better_pair_that_works_late() {
    let mut sim = late_direct_path_with(
        false,
        ice_proto::NominationMode::Aggressive,
        Duration::from_secs(3),
    );
    // The relayed pair is selected on its first success (at 90 ms on both sides: the peer's
    // permission was asked for when the pair formed, issue 15); the
    // direct check retransmitted at 3.5 s carries USE-CANDIDATE too, so its success at
    // 3.52 s switches both sides up at once.
    assert!(sim.run_until(Duration::from_secs(10), |s| {
        s.selections(0) >= 2 && s.selections(1) >= 2
    }));
    let ms = Duration::from_millis;
    let (a_host, b_host) = (addr("192.0.2.1:5000"), addr("198.51.100.2:6000"));
    let relayed = addr("203.0.113.50:49152");
    assert_eq!(
        selections_of(&sim, 0),
        [(ms(90), b_host), (ms(3_520), b_host)]
    );
    assert_eq!(
        selections_of(&sim, 1),
        [(ms(90), relayed), (ms(3_520), a_host)]
    );
    assert_eq!(sim.selected(0), Some((a_host, b_host)));
}

/// An attacker at one address who knows the peers' addresses and A's ufrag (from a
/// sniffed offer) but not the passwords: it answers every check it receives with a success
/// signed with a password of its own.
struct Forger {
    addr: SocketAddr,
}

impl relay::Middlebox for Forger {
    fn owns(&self, addr: SocketAddr) -> bool {
        addr == self.addr
    }

    fn handle(&mut self, _now: Instant, t: Transmit) -> Vec<Transmit> {
        let Ok(request) = stun_proto::Message::parse(&t.payload) else {
            return Vec::new();
        };
        if request.class() != stun_proto::Class::Request {
            return Vec::new();
        }
        let key = stun_proto::IntegrityKey::short_term("notthepasswordnotthepassword").unwrap();
        let mut b = stun_proto::MessageBuilder::response_to(
            bytes::BytesMut::new(),
            &request,
            stun_proto::Class::Success,
        )
        .unwrap();
        b.add(&stun_proto::attribute::XorMappedAddress(t.source))
            .unwrap();
        b.add_message_integrity(&key)
            .unwrap()
            .add_fingerprint()
            .unwrap();
        vec![Transmit {
            transport: TransportProtocol::Udp,
            source: self.addr,
            destination: t.source,
            payload: b.into_bytes(),
        }]
    }

    fn poll_timeout(&self) -> Option<Instant> {
        None
    }

    fn handle_timeout(&mut self, _now: Instant) -> Vec<Transmit> {
        Vec::new()
    }
}

/// A check from `from` to `to` naming `username`, with USE-CANDIDATE and the highest
/// priority, signed with a password that is not the receiver's.
fn forged_check(from: SocketAddr, to: SocketAddr, username: &str, controlling: bool) -> Transmit {
    let key = stun_proto::IntegrityKey::short_term("notthepasswordnotthepassword").unwrap();
    let mut b = stun_proto::MessageBuilder::new_bytes(
        stun_proto::MessageType::BINDING_REQUEST,
        [9; 12].into(),
    );
    b.add(&stun_proto::attribute::Username::new(username).unwrap())
        .unwrap();
    b.add(&stun_proto::attribute::Priority(0x7fff_ffff))
        .unwrap();
    if controlling {
        b.add(&stun_proto::attribute::IceControlling(u64::MAX))
            .unwrap();
    } else {
        b.add(&stun_proto::attribute::IceControlled(0)).unwrap();
    }
    b.add(&stun_proto::attribute::UseCandidate).unwrap();
    b.add_message_integrity(&key)
        .unwrap()
        .add_fingerprint()
        .unwrap();
    Transmit {
        transport: TransportProtocol::Udp,
        source: from,
        destination: to,
        payload: b.into_bytes(),
    }
}

#[test]
fn unauthenticated_sources_never_displace_the_selected_pair() {
    // A and B are connected on their host pair. Then, with re-nomination on: (1) a forged
    // check with USE-CANDIDATE and the highest priority reaches each of them from the
    // attacker's address; (2) a candidate at the attacker's address with the highest
    // priority is trickled to A (a stale or injected line), so A pairs and checks it — and
    // the attacker answers with successes it cannot sign. Nothing of it is valid: no
    // peer-reflexive candidate, no new valid pair, no new selection, data stays put.
    let mut sim = host_pair(421);
    let evil = addr("203.0.113.66:4444");
    sim.extra = Some(Box::new(Forger { addr: evil }));
    sim.start();
    assert!(sim.run_until(Duration::from_secs(5), |s| {
        s.both(ConnectionState::Completed)
    }));
    let (a_host, b_host) = (addr("192.0.2.1:5000"), addr("198.51.100.2:6000"));
    let before = [sim.selected(0), sim.selected(1)];
    assert_eq!(before, [Some((a_host, b_host)), Some((b_host, a_host))]);
    let ufrag = |i: usize| {
        let p: &Peer = &sim.peers[i];
        p.agent
            .stream(p.stream)
            .unwrap()
            .local_credentials()
            .ufrag
            .clone()
    };
    let (ua, ub) = (ufrag(0), ufrag(1));
    sim.send(1, forged_check(evil, a_host, &format!("{ua}:{ub}"), false));
    sim.send(0, forged_check(evil, b_host, &format!("{ub}:{ua}"), true));
    let line = "candidate:66 1 udp 2130706431 203.0.113.66 4444 typ host";
    let (now, p) = (sim.now, &mut sim.peers[0]);
    p.agent
        .handle_remote_candidate(now, p.stream, line.parse().unwrap())
        .unwrap();
    let t = sim.elapsed() + Duration::from_secs(30);
    sim.run_until(t, |_| false);
    assert_eq!([sim.selected(0), sim.selected(1)], before);
    assert_eq!(sim.selections(0), 1);
    assert_eq!(sim.selections(1), 1);
    for i in 0..2 {
        let p = &sim.peers[i];
        assert!(p.agent.stats().bad_integrity >= 1, "peer {i}");
        let view = p.agent.stream(p.stream).unwrap();
        assert!(
            view.remote_candidates()
                .all(|c| c.kind != ice_proto::CandidateType::PeerReflexive)
        );
        assert!(
            view.pairs()
                .filter(|pair| pair.remote.addr() == Some(evil))
                .all(|pair| !pair.valid)
        );
    }
    // A did check the injected candidate (it ranks above the selected pair)...
    assert!(
        sim.log
            .iter()
            .any(|(_, from, t)| *from == 0 && t.destination == evil)
    );
    // ...and every forged answer was dropped.
    assert!(sim.peers[0].agent.stats().bad_integrity >= 2);
    assert!(sim.both(ConnectionState::Completed));
}
