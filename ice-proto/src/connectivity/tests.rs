//! Tests of the connectivity checks: answering checks (§7.3), pacing (§6.1.4.2) and
//! responses (§7.2.5) here; nomination and failover in `nomination.rs`.

mod nomination;

use std::net::SocketAddr;

use super::*;
use crate::Agent;
use crate::check::DeclaredRole;
use crate::checklist::PairStateKind;
use crate::config::AgentConfig;
use crate::event::ComponentState;
use crate::event::{Event, Problem};
use crate::handled::NotIceReason;
use crate::handled::{DropReason, Handled};
use crate::stream::Credentials;
use crate::stream::StreamId;
use crate::test_support::t0;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use stun_proto::Message;
use stun_proto::attribute::{
    ErrorCode, IceControlled, IceControlling, Priority, UseCandidate, Username, XorMappedAddress,
};
use stun_proto::{Class, IntegrityKey, MessageBuilder, MessageType, Transmit, TransportProtocol};

type TestAgent = Agent<ChaCha20Rng>;
const BASE: &str = "192.0.2.1:5000";
const PEER: &str = "203.0.113.9:4000";
const LOCAL_PWD: &str = "localpasswordlocalpassword";
const REMOTE_PWD: &str = "remotepasswordremotepassword";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn agent_with(config: AgentConfig, components: u16) -> (TestAgent, StreamId) {
    let now = t0();
    let mut a = Agent::new(config, ChaCha20Rng::seed_from_u64(7));
    let s = a.add_stream(components).unwrap();
    let mut view = a.stream_mut(s).unwrap();
    view.set_local_credentials(Credentials::new("LOCL", LOCAL_PWD).unwrap())
        .unwrap();
    for c in 1..=components {
        view.add_base(c, SocketAddr::new(addr(BASE).ip(), 5000 + c - 1))
            .unwrap();
    }
    a.handle_remote_credentials(now, s, Credentials::new("REMO", REMOTE_PWD).unwrap())
        .unwrap();
    a.handle_gather(now, s).unwrap();
    while a.poll_event().is_some() {}
    (a, s)
}

fn agent(controlling: bool) -> (TestAgent, StreamId) {
    let config = AgentConfig {
        controlling,
        ..AgentConfig::default()
    };
    agent_with(config, 1)
}

fn transmits(a: &mut TestAgent) -> Vec<Transmit> {
    std::iter::from_fn(|| a.poll_transmit()).collect()
}

fn events(a: &mut TestAgent) -> Vec<Event> {
    std::iter::from_fn(|| a.poll_event()).collect()
}

/// A check from the peer, signed with our password.
fn request(
    tid: u8,
    priority: Option<u32>,
    role: Option<DeclaredRole>,
    use_candidate: bool,
) -> Vec<u8> {
    let key = IntegrityKey::short_term(LOCAL_PWD).unwrap();
    let mut b = MessageBuilder::new_bytes(MessageType::BINDING_REQUEST, [tid; 12].into());
    b.add(&Username::new("LOCL:REMO").unwrap()).unwrap();
    if let Some(p) = priority {
        b.add(&Priority(p)).unwrap();
    }
    match role {
        Some(DeclaredRole::Controlling(tb)) => b.add(&IceControlling(tb)).unwrap(),
        Some(DeclaredRole::Controlled(tb)) => b.add(&IceControlled(tb)).unwrap(),
        None => &mut b,
    };
    if use_candidate {
        b.add(&UseCandidate).unwrap();
    }
    b.add_message_integrity(&key)
        .unwrap()
        .add_fingerprint()
        .unwrap();
    b.into_bytes().to_vec()
}

/// The peer's answer to our request `t`, signed with the remote password.
fn answer(t: &Transmit, class: Class, mapped: SocketAddr, code: Option<u16>) -> Vec<u8> {
    let key = IntegrityKey::short_term(REMOTE_PWD).unwrap();
    let request = Message::parse(&t.payload).unwrap();
    let mut b = MessageBuilder::response_to(bytes::BytesMut::new(), &request, class).unwrap();
    match code {
        Some(code) => b.add(&ErrorCode::new(code).unwrap()).unwrap(),
        None => b.add(&XorMappedAddress(mapped)).unwrap(),
    };
    b.add_message_integrity(&key)
        .unwrap()
        .add_fingerprint()
        .unwrap();
    b.into_bytes().to_vec()
}

fn remote(a: &mut TestAgent, s: StreamId, line: &str) {
    a.handle_remote_candidate(t0(), s, line.parse().unwrap())
        .unwrap();
}

fn pair_states(a: &TestAgent, s: StreamId) -> Vec<(u16, PairStateKind)> {
    a.stream(s)
        .unwrap()
        .pairs()
        .map(|p| (p.component, p.state))
        .collect()
}

#[test]
fn a_check_is_answered_and_its_source_learnt_peer_reflexive_7_3_1() {
    let (mut a, s) = agent(false);
    let now = t0();
    let req = request(
        1,
        Some(1_845_501_695),
        Some(DeclaredRole::Controlling(1)),
        false,
    );
    let r = a.handle_datagram(now, TransportProtocol::Udp, addr(PEER), addr(BASE), &req);
    assert_eq!(r, Handled::Consumed);
    let out = transmits(&mut a);
    assert_eq!(out.len(), 2, "the answer, then the triggered check");
    // §7.3.1.2: success, XOR-MAPPED-ADDRESS = source, signed with our password.
    let ok = Message::parse(&out[0].payload).unwrap();
    assert_eq!(
        (out[0].source, out[0].destination),
        (addr(BASE), addr(PEER))
    );
    assert_eq!(ok.class(), Class::Success);
    ok.verify_integrity(&IntegrityKey::short_term(LOCAL_PWD).unwrap())
        .unwrap();
    assert_eq!(ok.get::<XorMappedAddress>().unwrap().unwrap().0, addr(PEER));
    // §7.3.1.3: a peer-reflexive remote candidate with the PRIORITY of the check.
    let view = a.stream(s).unwrap();
    let prflx: Vec<_> = view.remote_candidates().collect();
    assert_eq!(prflx.len(), 1);
    assert_eq!(prflx[0].kind, CandidateType::PeerReflexive);
    assert_eq!(prflx[0].priority, 1_845_501_695);
    let prflx0 = prflx[0].clone();
    let learnt = events(&mut a).into_iter().find_map(|e| match e {
        Event::NewPeerReflexiveRemoteCandidate { candidate, .. } => Some(candidate),
        _ => None,
    });
    assert_eq!(learnt, Some(prflx0));
    // §7.3.1.4: a triggered check back, as controlled, signed with the remote password.
    let check = Message::parse(&out[1].payload).unwrap();
    assert_eq!(check.class(), Class::Request);
    assert_eq!(out[1].destination, addr(PEER));
    check
        .verify_integrity(&IntegrityKey::short_term(REMOTE_PWD).unwrap())
        .unwrap();
    assert_eq!(
        check.get::<Username<'_>>().unwrap().unwrap().as_str(),
        "REMO:LOCL"
    );
    assert_eq!(
        check.get::<IceControlled>().unwrap().unwrap().0,
        a.tie_breaker()
    );
    assert!(!check.has(stun_proto::AttributeType::USE_CANDIDATE));
    // PRIORITY: type preference 110 with the base's local preference (§7.1.1).
    assert_eq!(
        check.get::<Priority>().unwrap().unwrap().0,
        crate::candidate::priority(110, 32_767, 1)
    );
}

fn conflict(
    controlling: bool,
    declared: fn(u64) -> DeclaredRole,
    larger: bool,
) -> (TestAgent, Vec<Transmit>, Vec<Event>) {
    let (mut a, _) = agent(controlling);
    let tb = a.tie_breaker();
    let theirs = if larger {
        tb.saturating_add(1)
    } else {
        tb.saturating_sub(1)
    };
    let req = request(2, Some(1), Some(declared(theirs)), false);
    a.handle_datagram(t0(), TransportProtocol::Udp, addr(PEER), addr(BASE), &req);
    let out = transmits(&mut a);
    let ev = events(&mut a);
    (a, out, ev)
}

fn error_code(t: &Transmit) -> Option<u16> {
    let m = Message::parse(&t.payload).unwrap();
    m.get::<ErrorCode<'_>>()
        .and_then(Result::ok)
        .map(|e| e.code())
}

#[test]
fn role_conflicts_on_received_checks_7_3_1_1() {
    // Both controlling; ours is larger: 487, we stay controlling.
    let (a, out, _) = conflict(true, DeclaredRole::Controlling, false);
    assert_eq!(error_code(&out[0]), Some(487));
    assert_eq!(out.len(), 1);
    assert!(a.is_controlling());
    // Both controlling; theirs is larger: we switch to controlled and answer success.
    let (a, out, ev) = conflict(true, DeclaredRole::Controlling, true);
    assert_eq!(error_code(&out[0]), None);
    assert!(!a.is_controlling());
    assert!(ev.contains(&Event::RoleChanged { controlling: false }));
    // Both controlled; ours is larger: we switch to controlling.
    let (a, out, _) = conflict(false, DeclaredRole::Controlled, false);
    assert_eq!(error_code(&out[0]), None);
    assert!(a.is_controlling());
    // Both controlled; theirs is larger: 487, we stay controlled.
    let (a, out, _) = conflict(false, DeclaredRole::Controlled, true);
    assert_eq!(error_code(&out[0]), Some(487));
    assert!(!a.is_controlling());
}

#[test]
fn unauthenticated_or_unknown_checks_are_dropped_and_counted() {
    let (mut a, _) = agent(false);
    let mut req = request(3, Some(1), Some(DeclaredRole::Controlling(1)), false);
    // Flip a byte of the MESSAGE-INTEGRITY value (before the 8-byte FINGERPRINT).
    let n = req.len();
    req[n - 12] ^= 1;
    // Recompute nothing: the fingerprint now fails too, which is also a drop.
    let r = a.handle_datagram(t0(), TransportProtocol::Udp, addr(PEER), addr(BASE), &req);
    assert!(matches!(r, Handled::Dropped(_)));
    assert!(transmits(&mut a).is_empty());
    // Signed with another password.
    let key = IntegrityKey::short_term("anotherpasswordanotherpw").unwrap();
    let mut b = MessageBuilder::new_bytes(MessageType::BINDING_REQUEST, [4; 12].into());
    b.add(&Username::new("LOCL:REMO").unwrap()).unwrap();
    b.add(&Priority(1)).unwrap();
    b.add_message_integrity(&key)
        .unwrap()
        .add_fingerprint()
        .unwrap();
    let bytes = b.into_bytes();
    let r = a.handle_datagram(t0(), TransportProtocol::Udp, addr(PEER), addr(BASE), &bytes);
    assert_eq!(r, Handled::Dropped(DropReason::BadIntegrity));
    assert_eq!(a.stats().bad_integrity, 1);
    // RFC 8489 §9.1.3: that one gets 401, without integrity, and changes nothing else.
    let [refusal] = &transmits(&mut a)[..] else {
        panic!("one 401")
    };
    assert_eq!(
        (refusal.source, refusal.destination),
        (addr(BASE), addr(PEER))
    );
    let m = Message::parse(&refusal.payload).unwrap();
    assert_eq!(m.class(), Class::Error);
    assert_eq!(m.get::<ErrorCode<'_>>().unwrap().unwrap().code(), 401);
    assert!(m.verify_fingerprint().is_ok());
    assert!(
        m.raw(stun_proto::AttributeType::MESSAGE_INTEGRITY)
            .is_none()
    );
    // Another ufrag.
    let mut b = MessageBuilder::new_bytes(MessageType::BINDING_REQUEST, [5; 12].into());
    b.add(&Username::new("OTHER:REMO").unwrap()).unwrap();
    b.add_message_integrity(&key).unwrap();
    let bytes = b.into_bytes();
    let r = a.handle_datagram(t0(), TransportProtocol::Udp, addr(PEER), addr(BASE), &bytes);
    assert_eq!(r, Handled::Dropped(DropReason::UnknownUsername));
    assert_eq!(a.stats().unknown_username, 2);
    assert!(transmits(&mut a).is_empty());
    assert_eq!(
        a.stream(StreamId(0)).unwrap().remote_candidates().count(),
        0
    );
    // A response to nothing of ours is not the agent's.
    let t = Transmit {
        transport: TransportProtocol::Udp,
        source: addr(PEER),
        destination: addr(BASE),
        payload: request(6, Some(1), None, false).into(),
    };
    let stray = answer(&t, Class::Success, addr(PEER), None);
    let r = a.handle_datagram(t0(), TransportProtocol::Udp, addr(PEER), addr(BASE), &stray);
    assert_eq!(r, Handled::NotIce(NotIceReason::UnknownTransaction));
}

#[test]
fn a_check_without_priority_gets_400() {
    let (mut a, _) = agent(false);
    let req = request(7, None, Some(DeclaredRole::Controlling(1)), false);
    a.handle_datagram(t0(), TransportProtocol::Udp, addr(PEER), addr(BASE), &req);
    let out = transmits(&mut a);
    assert_eq!(out.len(), 1);
    assert_eq!(error_code(&out[0]), Some(400));
}

#[test]
fn checks_are_paced_at_ta_with_the_rto_of_14_3() {
    let (mut a, s) = agent(true);
    let now = t0();
    for i in 0..20 {
        remote(
            &mut a,
            s,
            &format!(
                "candidate:{i} 1 udp {} 203.0.113.9 {} typ host",
                2_000_000_000 - i,
                4000 + i
            ),
        );
    }
    let mut sent: Vec<(Duration, Transmit)> = Vec::new();
    let mut t = now;
    loop {
        for x in transmits(&mut a) {
            sent.push((t - now, x));
        }
        let next = a.poll_timeout().unwrap();
        if next - now > Duration::from_millis(1_060) {
            break;
        }
        t = next;
        a.handle_timeout(t);
    }
    let ms = Duration::from_millis;
    let first_sends: Vec<Duration> = sent.iter().take(4).map(|(t, _)| *t).collect();
    assert_eq!(first_sends, [ms(0), ms(50), ms(100), ms(150)]);
    // Highest priority first.
    assert_eq!(sent[0].1.destination, addr("203.0.113.9:4000"));
    // §14.3: RTO = max(500 ms, Ta × pairs Waiting or In-Progress), computed when the
    // check is sent: the first check went out with one pair (500 ms), the second with
    // twenty (1 s).
    let resends = |i: usize| -> Vec<Duration> {
        let tid = Message::parse(&sent[i].1.payload).unwrap().transaction_id();
        sent.iter()
            .filter(|(_, x)| Message::parse(&x.payload).unwrap().transaction_id() == tid)
            .map(|(t, _)| *t)
            .collect()
    };
    assert_eq!(resends(0), [ms(0), ms(500)]);
    assert_eq!(resends(1), [ms(50), ms(1_050)]);
    // Still twenty pairs Waiting or In-Progress: the next check's RTO is 1 s.
    let pending = (a.stream(s).unwrap().pairs())
        .filter(|p| matches!(p.state, PairStateKind::Waiting | PairStateKind::InProgress))
        .count();
    assert_eq!(pending, 20);
}

#[test]
fn responses_7_2_5() {
    let (mut a, s) = agent(true);
    let now = t0();
    remote(
        &mut a,
        s,
        &format!("candidate:1 1 udp 2000 {} typ host", PEER.replace(':', " ")),
    );
    let check = transmits(&mut a).remove(0);
    // §7.2.5.2.1: from another address than the request went to: the pair fails.
    let wrong = answer(&check, Class::Success, addr(BASE), None);
    a.handle_datagram(
        now,
        TransportProtocol::Udp,
        addr("203.0.113.9:4001"),
        addr(BASE),
        &wrong,
    );
    assert_eq!(pair_states(&a, s), [(1, PairStateKind::Failed)]);

    // RFC 8489 §9.1.4: a 401 without integrity (the peer refuses our password for it)
    // is discarded — anyone could send it — and counted apart.
    let (mut a, s) = agent(true);
    remote(
        &mut a,
        s,
        &format!("candidate:1 1 udp 2000 {} typ host", PEER.replace(':', " ")),
    );
    let check = transmits(&mut a).remove(0);
    let request = Message::parse(&check.payload).unwrap();
    let refusal = crate::check::build_error(&request, 401, None).unwrap();
    let r = a.handle_datagram(
        now,
        TransportProtocol::Udp,
        addr(PEER),
        addr(BASE),
        &refusal,
    );
    assert_eq!(r, Handled::Dropped(DropReason::BadIntegrity));
    assert_eq!(
        (a.stats().unauthenticated_answers, a.stats().bad_integrity),
        (1, 0)
    );
    assert!(matches!(
        pair_states(&a, s)[..],
        [(1, PairStateKind::InProgress)]
    ));

    // §7.2.5.1: 487 switches the role and checks the pair again.
    let (mut a, s) = agent(true);
    remote(
        &mut a,
        s,
        &format!("candidate:1 1 udp 2000 {} typ host", PEER.replace(':', " ")),
    );
    let check = transmits(&mut a).remove(0);
    assert!(
        Message::parse(&check.payload)
            .unwrap()
            .has(stun_proto::AttributeType::ICE_CONTROLLING)
    );
    let conflict = answer(&check, Class::Error, addr(BASE), Some(487));
    a.handle_datagram(
        now,
        TransportProtocol::Udp,
        addr(PEER),
        addr(BASE),
        &conflict,
    );
    assert!(!a.is_controlling());
    assert_eq!(pair_states(&a, s), [(1, PairStateKind::Waiting)]);
    a.handle_timeout(now + Duration::from_millis(50));
    let retry = transmits(&mut a).remove(0);
    assert!(
        Message::parse(&retry.payload)
            .unwrap()
            .has(stun_proto::AttributeType::ICE_CONTROLLED)
    );

    // §7.2.5.3.1: a mapped address we do not know is a peer-reflexive local candidate.
    let mapped = addr("198.51.100.77:9999");
    let ok = answer(&retry, Class::Success, mapped, None);
    a.handle_datagram(
        now + Duration::from_millis(60),
        TransportProtocol::Udp,
        addr(PEER),
        addr(BASE),
        &ok,
    );
    let view = a.stream(s).unwrap();
    let prflx = view
        .local_candidates()
        .find(|c| c.kind == CandidateType::PeerReflexive)
        .unwrap();
    assert_eq!(prflx.addr(), Some(mapped));
    assert_eq!(prflx.priority, crate::candidate::priority(110, 32_767, 1));
    let pair = view.pairs().next().unwrap();
    assert!(pair.valid);
    assert_eq!(pair.state, PairStateKind::Succeeded);
    assert_eq!(
        pair.local.addr(),
        Some(mapped),
        "the valid pair names the mapped address"
    );
    assert_eq!(view.component_state(1), Some(ComponentState::Connected));
    // Not signalled: peer-reflexive candidates are learnt, not gathered.
    assert!(
        !events(&mut a)
            .iter()
            .any(|e| matches!(e, Event::NewLocalCandidate { .. }))
    );
}
