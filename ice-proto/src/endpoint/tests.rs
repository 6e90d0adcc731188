//! Tests of the endpoint: full agents (controlling, as browsers are against a lite SFU)
//! connecting to sessions on one port, routing, floods, expiry and bounds.

use std::time::Duration;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use super::*;
use crate::candidate::{Candidate, CandidateType};
use crate::check::{CheckRequest, build_request};
use crate::event::ConnectionState;
use crate::stream::StreamId;
use crate::test_support::t0;
use crate::{Agent, AgentConfig};

const PORT: &str = "192.0.2.1:3478";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn endpoint() -> Endpoint<ChaCha20Rng> {
    Endpoint::new(EndpointConfig::default(), ChaCha20Rng::seed_from_u64(7))
}

/// A full, controlling agent with one host base, told the session's credentials and the
/// endpoint's one candidate; the session made for its ufrag.
fn peer(
    sfu: &mut Endpoint<ChaCha20Rng>,
    now: Instant,
    seed: u64,
    base: &str,
) -> (Agent<ChaCha20Rng>, StreamId, SessionId) {
    let config = AgentConfig {
        controlling: true,
        ..AgentConfig::default()
    };
    let mut a = Agent::new(config, ChaCha20Rng::seed_from_u64(seed));
    let s = a.add_stream(1).unwrap();
    a.stream_mut(s).unwrap().add_base(1, addr(base)).unwrap();
    let ufrag = a.stream(s).unwrap().local_credentials().ufrag.clone();
    let session = sfu.add_session(now, &ufrag).unwrap();
    let ours = sfu.session(session).unwrap().local_credentials().clone();
    a.handle_remote_credentials(now, s, ours).unwrap();
    let port = addr(PORT);
    let candidate = Candidate::new(CandidateType::Host, 1, port, port, None, 65_535);
    a.handle_remote_candidate(now, s, candidate).unwrap();
    a.handle_remote_end_of_candidates(now, s).unwrap();
    a.handle_gather(now, s).unwrap();
    (a, s, session)
}

/// Runs the agents against the endpoint with zero latency until `done` or 10 s.
fn run(
    sfu: &mut Endpoint<ChaCha20Rng>,
    agents: &mut [Agent<ChaCha20Rng>],
    mut now: Instant,
    done: impl Fn(&[Agent<ChaCha20Rng>]) -> bool,
) -> Instant {
    let end = now + Duration::from_secs(10);
    while now < end && !done(agents) {
        let mut moved = true;
        while moved {
            moved = false;
            for a in agents.iter_mut() {
                while a.poll_event().is_some() {}
                while let Some(t) = a.poll_transmit() {
                    moved = true;
                    if t.destination == addr(PORT) {
                        sfu.handle_datagram(now, t.transport, t.source, t.destination, &t.payload);
                    }
                }
            }
            while let Some(t) = sfu.poll_transmit() {
                moved = true;
                for a in agents.iter_mut() {
                    a.handle_datagram(now, t.transport, t.source, t.destination, &t.payload);
                }
            }
        }
        let next = agents.iter().filter_map(Agent::poll_timeout).min();
        now = next
            .unwrap_or(end)
            .min(end)
            .max(now + Duration::from_millis(1));
        for a in agents.iter_mut() {
            a.handle_timeout(now);
        }
        sfu.handle_timeout(now);
    }
    now
}

/// A check signed with the session's `ours` credentials, from the peer whose ufrag is
/// `theirs`.
fn signed_check(ours: &Credentials, theirs: &str, role: DeclaredRole, tid: u8) -> bytes::Bytes {
    let key = stun_proto::IntegrityKey::new(ours.pwd.as_bytes());
    let username = format!("{}:{theirs}", ours.ufrag);
    let check = CheckRequest {
        username: &username,
        priority: 1,
        role,
        use_candidate: false,
    };
    build_request(stun_proto::TransactionId::from([tid; 12]), &check, &key).unwrap()
}

#[test]
fn full_agents_connect_to_sessions_on_one_port_and_data_is_routed_to_its_session() {
    let now = t0();
    let mut sfu = endpoint();
    let mut agents = Vec::new();
    let mut ids = Vec::new();
    for i in 0..3u16 {
        let (a, s, id) = peer(
            &mut sfu,
            now,
            u64::from(i) + 1,
            &format!("198.51.100.{}:5000", i + 1),
        );
        agents.push((a, s));
        ids.push(id);
    }
    let (mut only, streams): (Vec<_>, Vec<_>) = agents.into_iter().unzip();
    let done = |a: &[Agent<ChaCha20Rng>]| a.iter().all(|a| a.state() == ConnectionState::Completed);
    let now = run(&mut sfu, &mut only, now, done);
    assert!(
        done(&only),
        "every agent completed against the lite endpoint"
    );
    let mut connected = 0;
    let mut nominated = 0;
    while let Some(e) = sfu.poll_event() {
        match e {
            EndpointEvent::Connected { .. } => connected += 1,
            EndpointEvent::Nominated { .. } => nominated += 1,
            EndpointEvent::Expired { .. } => panic!("nothing expired"),
        }
    }
    assert_eq!((connected, nominated), (3, 3));
    for (i, (a, s)) in only.iter_mut().zip(&streams).enumerate() {
        let t = Transmit::from(a.handle_send(now, *s, 1, b"media").unwrap());
        let handled = sfu.handle_datagram(now, t.transport, t.source, t.destination, &t.payload);
        assert_eq!(
            handled,
            Handled::Data {
                session: ids[i],
                data: b"media"
            }
        );
        // And back, on the nominated path.
        let back = sfu.handle_send(ids[i], b"reply").unwrap();
        assert_eq!((back.source, back.destination), (t.destination, t.source));
    }
    assert_eq!(sfu.stats().data_received, 3);
}

/// Sessions expire without the peer's checks (RFC 7675 §5.1) and come back with them; the
/// endpoint's own deadline is the heap's earliest, never a scan.
#[test]
fn a_session_without_checks_expires_and_a_check_revives_it() {
    let t = t0();
    let mut sfu = endpoint();
    let (a, _, id) = peer(&mut sfu, t, 1, "198.51.100.1:5000");
    let mut agents = [a];
    let now = run(&mut sfu, &mut agents, t, |a| {
        a[0].state() == ConnectionState::Completed
    });
    while sfu.poll_event().is_some() {}
    // The agent is silenced; 30 s after its last check the session expires.
    let late = now + Duration::from_secs(31);
    sfu.handle_timeout(late);
    assert_eq!(
        sfu.poll_event(),
        Some(EndpointEvent::Expired { session: id })
    );
    assert_eq!(sfu.session(id).unwrap().state(), SessionState::Expired);
    assert_eq!(sfu.handle_send(id, b"x"), Err(EndpointError::NotConnected));
    // A consent check comes again: connected again, and watched again.
    let ours = sfu.session(id).unwrap().local_credentials().clone();
    let theirs = agents[0]
        .stream(StreamId(0))
        .unwrap()
        .local_credentials()
        .ufrag
        .clone();
    let check = signed_check(&ours, &theirs, DeclaredRole::Controlling(1), 7);
    let source = addr("198.51.100.1:5000");
    let handled = sfu.handle_datagram(late, TransportProtocol::Udp, source, addr(PORT), &check);
    assert_eq!(handled, Handled::Consumed);
    assert_eq!(sfu.session(id).unwrap().state(), SessionState::Connected);
    assert!(matches!(
        sfu.poll_event(),
        Some(EndpointEvent::Connected { .. })
    ));
    assert_eq!(sfu.poll_timeout(), Some(late + Duration::from_secs(30)));
}

/// A flood of checks with random ufrags, unsigned checks and data from unknown sources is
/// dropped and counted: nothing is queued, no session or path is made.
#[test]
fn floods_of_unknown_ufrags_forged_checks_and_strangers_cost_nothing_but_counters() {
    let now = t0();
    let mut sfu = endpoint();
    let (a, s, id) = peer(&mut sfu, now, 1, "198.51.100.1:5000");
    let real = a.stream(s).unwrap().local_credentials().ufrag.clone();
    let ours = sfu.session(id).unwrap().local_credentials().ufrag.clone();
    let key = stun_proto::IntegrityKey::new(b"not the password at all!");
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    for i in 0..1_000u32 {
        let source =
            SocketAddr::from(([203, 0, 113, (i % 250) as u8], 1_000 + (i % 60_000) as u16));
        let username = if i % 2 == 0 {
            format!("{:08x}:{real}", rng.next_u32())
        } else {
            format!("{ours}:{real}")
        };
        let check = CheckRequest {
            username: &username,
            priority: 1,
            role: DeclaredRole::Controlling(1),
            use_candidate: true,
        };
        let tid = stun_proto::TransactionId::random(&mut rng);
        let bytes = build_request(tid, &check, &key).unwrap();
        let handled = sfu.handle_datagram(now, TransportProtocol::Udp, source, addr(PORT), &bytes);
        assert!(matches!(handled, Handled::Dropped(_)));
        let data = sfu.handle_datagram(now, TransportProtocol::Udp, source, addr(PORT), b"\x80rtp");
        assert_eq!(data, Handled::Dropped(DropReason::UnknownSource));
    }
    let stats = sfu.stats();
    assert_eq!(
        (
            stats.unknown_username,
            stats.bad_integrity,
            stats.unknown_source
        ),
        (500, 500, 1_000)
    );
    assert!(sfu.poll_transmit().is_none(), "nothing answered");
    assert!(sfu.poll_event().is_none());
    assert_eq!(sfu.session(id).unwrap().paths().count(), 0);
    assert!(sfu.by_path.is_empty());
}

/// Bounds: sessions up to the configured maximum; a removed session's id names nothing,
/// not even the session that reuses its slot.
#[test]
fn sessions_are_bounded_and_removed_ids_stay_dead() {
    let now = t0();
    let config = EndpointConfig {
        max_sessions: 2,
        ..EndpointConfig::default()
    };
    let mut sfu = Endpoint::new(config, ChaCha20Rng::seed_from_u64(3));
    let a = sfu.add_session(now, "peer1").unwrap();
    let _b = sfu.add_session(now, "peer2").unwrap();
    assert_eq!(
        sfu.add_session(now, "peer3"),
        Err(EndpointError::TooManySessions(2))
    );
    sfu.remove_session(a).unwrap();
    let c = sfu.add_session(now, "peer3").unwrap();
    assert_ne!(a, c);
    assert!(sfu.session(a).is_none());
    assert_eq!(sfu.remove_session(a), Err(EndpointError::UnknownSession));
    assert_eq!(sfu.session_count(), 2);
    assert!(matches!(
        sfu.add_session(now, "x"),
        Err(EndpointError::BadRemoteUfrag(_))
    ));
    // The removed session's deadline is skipped when it comes.
    sfu.handle_timeout(now + Duration::from_secs(31));
    let expired: Vec<_> = std::iter::from_fn(|| sfu.poll_event()).collect();
    assert_eq!(
        expired.len(),
        2,
        "the two live sessions, not the removed one"
    );
}

/// A restart gives the session new credentials; checks with the old ones no longer reach
/// it, and the nominated path carries data until the peer proves one again.
#[test]
fn a_restart_changes_the_credentials_and_keeps_the_nominated_path() {
    let t = t0();
    let mut sfu = endpoint();
    let (a, _, id) = peer(&mut sfu, t, 1, "198.51.100.1:5000");
    let mut agents = [a];
    run(&mut sfu, &mut agents, t, |a| {
        a[0].state() == ConnectionState::Completed
    });
    let old = sfu.session(id).unwrap().local_credentials().clone();
    sfu.restart_session(id, "newpeer").unwrap();
    let new = sfu.session(id).unwrap().local_credentials().clone();
    assert_ne!(old.ufrag, new.ufrag);
    assert!(!sfu.by_ufrag.contains_key(old.ufrag.as_str()));
    assert!(
        sfu.handle_send(id, b"x").is_ok(),
        "the nominated path still carries data"
    );
}

/// A check that claims the controlled role gets 487 (a lite endpoint is always controlled,
/// RFC 8445 §6.1.1, §7.3.1.1); one without PRIORITY gets 400; neither proves a path.
#[test]
fn checks_from_a_controlled_peer_or_without_priority_are_refused() {
    let now = t0();
    let mut sfu = endpoint();
    let id = sfu.add_session(now, "peer").unwrap();
    let ours = sfu.session(id).unwrap().local_credentials().clone();
    let bytes = signed_check(&ours, "peer", DeclaredRole::Controlled(5), 1);
    let source = addr("198.51.100.1:5000");
    let handled = sfu.handle_datagram(now, TransportProtocol::Udp, source, addr(PORT), &bytes);
    assert_eq!(handled, Handled::Consumed);
    let answer = sfu.poll_transmit().unwrap();
    let m = Message::parse(&answer.payload).unwrap();
    let code = m
        .get::<stun_proto::attribute::ErrorCode<'_>>()
        .unwrap()
        .unwrap();
    assert_eq!(code.code(), 487);
    assert_eq!(sfu.session(id).unwrap().paths().count(), 0);
    assert_eq!(sfu.stats().checks_refused, 1);
}
