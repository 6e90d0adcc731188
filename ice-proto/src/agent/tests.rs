//! Unit tests of the agent: its API's misuse, timestamps at the ends of time, streams.

use super::*;
use crate::candidate::Transport;
use crate::test_support::{t0, very_early, very_late};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use std::time::Duration;

mod ice_tcp;
mod mdns;
mod relay;

type TestAgent = Agent<ChaCha20Rng>;

fn agent(controlling: bool, seed: u64, base: &str) -> (TestAgent, StreamId) {
    agent_with(controlling, seed, |s| s.add_base(1, base.parse().unwrap()))
}

/// An agent of one stream of one component, whose bases `add` gives it.
fn agent_with(
    controlling: bool,
    seed: u64,
    add: impl FnOnce(&mut StreamMut<'_>) -> Result<(), AgentError>,
) -> (TestAgent, StreamId) {
    let config = AgentConfig {
        controlling,
        ..AgentConfig::default()
    };
    let mut a = Agent::new(config, ChaCha20Rng::seed_from_u64(seed));
    let s = a.add_stream(1).unwrap();
    add(&mut a.stream_mut(s).unwrap()).unwrap();
    (a, s)
}

/// Hands `x`'s candidates and datagrams to `y`; whether anything moved.
fn exchange(now: Instant, x: &mut TestAgent, y: &mut TestAgent, sy: StreamId) -> bool {
    let mut moved = false;
    while let Some(e) = x.poll_event() {
        moved = true;
        if let Event::NewLocalCandidate { candidate, .. } = e {
            y.handle_remote_candidate(now, sy, candidate).unwrap();
        }
    }
    while let Some(t) = x.poll_transmit() {
        moved = true;
        y.handle_datagram(now, t.transport, t.source, t.destination, &t.payload);
    }
    moved
}

/// Wires two agents with zero latency, starting at `start`; returns when both complete.
fn connect(start: Instant) -> (TestAgent, TestAgent, Instant) {
    let (mut a, sa) = agent(true, 1, "192.0.2.1:5000");
    let (mut b, sb) = agent(false, 2, "198.51.100.2:6000");
    let ca = a.stream(sa).unwrap().local_credentials().clone();
    let cb = b.stream(sb).unwrap().local_credentials().clone();
    a.handle_remote_credentials(start, sa, cb).unwrap();
    b.handle_remote_credentials(start, sb, ca).unwrap();
    a.handle_gather(start, sa).unwrap();
    b.handle_gather(start, sb).unwrap();
    let mut now = start;
    for _ in 0..10_000 {
        let mut moved = true;
        while moved {
            moved = false;
            moved |= exchange(now, &mut a, &mut b, sb);
            moved |= exchange(now, &mut b, &mut a, sa);
        }
        if a.state() == ConnectionState::Completed && b.state() == ConnectionState::Completed {
            return (a, b, now);
        }
        let next = [a.poll_timeout(), b.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
            .expect("something is scheduled");
        assert!(
            next >= now,
            "deadlines are never in the past of the last call"
        );
        now = next;
        a.handle_timeout(now);
        b.handle_timeout(now);
    }
    panic!("did not complete");
}

#[test]
fn very_early_timestamps_are_harmless() {
    let start = very_early();
    let (mut a, _, now) = connect(start);
    assert_eq!(now - start, Duration::from_millis(50));
    // Time going backwards (a caller's bug) panics nothing either.
    a.handle_timeout(start);
    let _ = a.handle_datagram(
        start,
        TransportProtocol::Udp,
        "198.51.100.2:6000".parse().unwrap(),
        "192.0.2.1:5000".parse().unwrap(),
        b"data",
    );
    assert_eq!(a.state(), ConnectionState::Completed);
}

#[test]
fn very_late_timestamps_are_harmless() {
    // Remote credentials within a second of the last representable instant used to
    // panic (the ICE PAC timer, RFC 8863 §4, is 39.5 s).
    let end = very_late();
    let start = end - Duration::from_millis(900);
    let (mut a, mut b, now) = connect(start);
    assert_eq!(now - start, Duration::from_millis(50));
    // Consent, keepalives and every other deadline fall due at the end of time, not
    // past it; driving both agents there stays bounded and panics nothing.
    let (sa, sb) = (StreamId(0), StreamId(0));
    let mut now = now;
    for _ in 0..50 {
        exchange(now, &mut a, &mut b, sb);
        exchange(now, &mut b, &mut a, sa);
        let next = [a.poll_timeout(), b.poll_timeout()]
            .into_iter()
            .flatten()
            .min();
        let Some(next) = next else { break };
        assert!(next >= now && next <= end);
        now = next;
        a.handle_timeout(now);
        b.handle_timeout(now);
    }
    assert_eq!(now, end);
    let _ = a.handle_send(end, sa, 1, b"at the end of time");
    a.handle_restart(end, sa).unwrap();
    let fresh = b.stream(sb).unwrap().local_credentials().clone();
    a.handle_remote_credentials(end, sa, fresh).unwrap();
    a.handle_timeout(end);
    a.handle_close(end);
    assert_eq!(a.state(), ConnectionState::Closed);
}

#[test]
fn timers_name_what_is_due() {
    let start = t0();
    let (a, b, now) = connect(start);
    // Completed: consent checks come next, 4–6 s after selection.
    for x in [&a, &b] {
        let (timer, at) = x.next_timer().unwrap();
        assert_eq!(timer, Timer::Consent);
        let wait = at - now;
        assert!(wait >= Duration::from_secs(4) && wait <= Duration::from_secs(6));
    }
}

#[test]
fn api_misuse_is_refused_with_typed_errors() {
    let now = t0();
    let (mut a, s) = agent(true, 3, "192.0.2.1:5000");
    assert_eq!(a.add_stream(0), Err(AgentError::BadComponentCount(0)));
    assert_eq!(
        a.handle_gather(now, StreamId(9)),
        Err(AgentError::UnknownStream)
    );
    let mut c: Candidate = "candidate:1 2 udp 1 192.0.2.9 9 typ host".parse().unwrap();
    assert_eq!(
        a.handle_remote_candidate(now, s, c.clone()),
        Err(AgentError::UnknownComponent(2))
    );
    c.component = 1;
    // A TCP candidate without `tcptype` (RFC 6544 §4.5).
    c.transport = Transport::Tcp;
    assert_eq!(
        a.handle_remote_candidate(now, s, c.clone()),
        Err(AgentError::UnsupportedTransport(Transport::Tcp))
    );
    // A host name waits for the caller to resolve it.
    let mdns: Candidate = "candidate:1 1 udp 1 x.local 9 typ host".parse().unwrap();
    assert_eq!(a.handle_remote_candidate(now, s, mdns), Ok(()));
    assert!(std::iter::from_fn(|| a.poll_event()).any(|e| e
        == Event::ResolveHostname {
            stream: s,
            name: "x.local".into()
        }));
    a.handle_gather(now, s).unwrap();
    assert_eq!(a.handle_gather(now, s), Err(AgentError::GatheringStarted));
    // A base added after gathering waits for the next restart.
    let late: SocketAddr = "192.0.2.1:5001".parse().unwrap();
    assert_eq!(a.stream_mut(s).unwrap().add_base(1, late), Ok(()));
    assert!(
        !a.stream(s)
            .unwrap()
            .local_candidates()
            .any(|c| c.addr() == Some(late))
    );
    assert_eq!(
        a.stream_mut(s).unwrap().add_base(7, late),
        Err(AgentError::UnknownComponent(7))
    );
    assert_eq!(a.handle_send(now, s, 1, b"x"), Err(SendError::NotConnected));
    assert_eq!(
        a.handle_send(now, s, 3, b"x"),
        Err(SendError::Agent(AgentError::UnknownComponent(3)))
    );
    a.handle_close(now);
    assert_eq!(a.state(), ConnectionState::Closed);
    assert_eq!(
        a.handle_send(now, s, 1, b"x"),
        Err(SendError::Agent(AgentError::Closed))
    );
    assert_eq!(a.poll_timeout(), None);
}

#[test]
fn host_candidates_come_from_the_bases_with_rfc_priorities() {
    let now = t0();
    let config = AgentConfig::default();
    let mut a = Agent::new(config, ChaCha20Rng::seed_from_u64(4));
    let s = a.add_stream(2).unwrap();
    let mut view = a.stream_mut(s).unwrap();
    view.add_base(1, "[2001:db8::1]:5000".parse().unwrap())
        .unwrap();
    view.add_base(1, "192.0.2.1:5000".parse().unwrap()).unwrap();
    view.add_base(2, "192.0.2.1:5001".parse().unwrap()).unwrap();
    a.handle_gather(now, s).unwrap();
    let mut candidates = Vec::new();
    let mut done = Vec::new();
    while let Some(e) = a.poll_event() {
        match e {
            Event::NewLocalCandidate { candidate, .. } => candidates.push(candidate),
            Event::ComponentGatheringDone { component, .. } => done.push(component),
            Event::CandidateGatheringDone { .. } => done.push(0),
            _ => {}
        }
    }
    let lines: Vec<String> = candidates.iter().map(ToString::to_string).collect();
    let prio: Vec<u32> = candidates.iter().map(|c| c.priority).collect();
    // 126 << 24 | 65535 << 8 | 255 for the IPv6 base; the IPv4 base of component 1 is
    // its second (local preference 32767 − 2 × 1), that of component 2 its first.
    assert_eq!(prio, [2_130_706_431, 2_122_317_311, 2_122_317_822]);
    assert!(
        lines[0].ends_with("2001:db8::1 5000 typ host"),
        "{}",
        lines[0]
    );
    // Same type, base IP and transport: the two IPv4 candidates share a foundation.
    assert_eq!(candidates[1].foundation, candidates[2].foundation);
    assert_ne!(candidates[0].foundation, candidates[1].foundation);
    assert_eq!(done, [1, 2, 0], "no STUN server: gathering is done at once");
    assert_eq!(a.poll_transmit(), None);
}

#[test]
fn tie_breaker_and_credentials_come_from_the_rng() {
    let (a, s) = agent(true, 5, "192.0.2.1:5000");
    let (b, t) = agent(true, 5, "192.0.2.1:5000");
    let (c, _) = agent(true, 6, "192.0.2.1:5000");
    assert_eq!(a.tie_breaker(), b.tie_breaker());
    assert_ne!(a.tie_breaker(), c.tie_breaker());
    assert_eq!(
        a.stream(s).unwrap().local_credentials(),
        b.stream(t).unwrap().local_credentials()
    );
}

/// Hands everything `x` has to `y` at `t` (streams were created in the same order on
/// both sides, so ids match); whether anything moved. Each datagram goes to `log` with
/// its time and sender `from`.
fn pass(
    t: Instant,
    from: usize,
    x: &mut TestAgent,
    y: &mut TestAgent,
    log: &mut Vec<(Instant, usize, Transmit)>,
) -> bool {
    let mut moved = false;
    while let Some(e) = x.poll_event() {
        moved = true;
        if let Event::NewLocalCandidate { stream, candidate } = e {
            y.handle_remote_candidate(t, stream, candidate).unwrap();
        }
    }
    while let Some(d) = x.poll_transmit() {
        moved = true;
        y.handle_datagram(t, d.transport, d.source, d.destination, &d.payload);
        log.push((t, from, d));
    }
    moved
}

/// Two agents with two one-component streams each (ports 5000 and 5002 on both sides),
/// credentials exchanged and gathering started at `now`.
fn two_stream_agents(now: Instant) -> (TestAgent, TestAgent) {
    let mut agents = Vec::new();
    for (controlling, seed, ip) in [(true, 11, [192, 0, 2, 1]), (false, 12, [198, 51, 100, 2])] {
        let config = AgentConfig {
            controlling,
            ..AgentConfig::default()
        };
        let mut a: TestAgent = Agent::new(config, ChaCha20Rng::seed_from_u64(seed));
        for port in [5000u16, 5002] {
            let s = a.add_stream(1).unwrap();
            a.stream_mut(s)
                .unwrap()
                .add_base(1, (ip, port).into())
                .unwrap();
        }
        agents.push(a);
    }
    let (mut a, mut b) = (agents.remove(0), agents.remove(0));
    for s in [StreamId(0), StreamId(1)] {
        let ca = a.stream(s).unwrap().local_credentials().clone();
        let cb = b.stream(s).unwrap().local_credentials().clone();
        assert_ne!(
            ca.ufrag,
            a.stream(StreamId(1 - s.0))
                .unwrap()
                .local_credentials()
                .ufrag
        );
        a.handle_remote_credentials(now, s, cb).unwrap();
        b.handle_remote_credentials(now, s, ca).unwrap();
        a.handle_gather(now, s).unwrap();
        b.handle_gather(now, s).unwrap();
    }
    (a, b)
}

/// Runs two agents with zero latency from `t` until `done` holds or the next deadline
/// passes `limit`; returns the time reached. Every datagram either sent goes to `log`
/// with its time and sender (0 for `a`).
fn run(
    mut t: Instant,
    limit: Instant,
    a: &mut TestAgent,
    b: &mut TestAgent,
    log: &mut Vec<(Instant, usize, Transmit)>,
    done: impl Fn(&TestAgent, &TestAgent) -> bool,
) -> Instant {
    loop {
        while pass(t, 0, a, b, log) | pass(t, 1, b, a, log) {}
        if done(a, b) {
            return t;
        }
        let Some(next) = [a.poll_timeout(), b.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
        else {
            return t;
        };
        if next > limit {
            return limit;
        }
        assert!(next >= t, "deadlines never go back");
        t = next;
        a.handle_timeout(t);
        b.handle_timeout(t);
    }
}

#[test]
fn two_streams_connect_independently() {
    let now = t0();
    let (mut a, mut b) = two_stream_agents(now);
    let mut t = now;
    let mut log = Vec::new();
    while a.state() != ConnectionState::Completed || b.state() != ConnectionState::Completed {
        while pass(t, 0, &mut a, &mut b, &mut log) | pass(t, 1, &mut b, &mut a, &mut log) {}
        let next = [a.poll_timeout(), b.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
            .unwrap();
        assert!(next - now < Duration::from_secs(5), "completes quickly");
        t = next;
        a.handle_timeout(t);
        b.handle_timeout(t);
    }
    for (s, port) in [(StreamId(0), 5000), (StreamId(1), 5002)] {
        let pa = a.stream(s).unwrap().selected_pair(1).unwrap();
        let pb = b.stream(s).unwrap().selected_pair(1).unwrap();
        assert_eq!(pa.local.addr().unwrap().port(), port);
        assert_eq!(pa.remote.addr().unwrap().port(), port);
        assert_eq!(pb.remote.addr(), pa.local.addr());
    }
    // Per stream, A sent its first check and its nomination: four in all.
    assert_eq!(a.stats().checks_sent, 4);
}

/// Removing one of two connected streams at 10 s (on both sides, as after an offer
/// that drops its m-line): nothing more is sent for it, the other keeps its selected
/// pair, consent and data; the removed id is refused with a typed error. Started at the
/// earliest instant, with a spurious timeout at the removal instant.
#[test]
fn a_removed_stream_stops_and_the_other_carries_on() {
    let start = very_early();
    let (mut a, mut b) = two_stream_agents(start);
    let mut log = Vec::new();
    let both = |x: &TestAgent, y: &TestAgent| {
        x.state() == ConnectionState::Completed && y.state() == ConnectionState::Completed
    };
    let done = run(
        start,
        start + Duration::from_secs(5),
        &mut a,
        &mut b,
        &mut log,
        both,
    );
    // Four checks paced at Ta over both streams (zero latency): 150 ms.
    assert_eq!(done - start, Duration::from_millis(150));
    let ten = start + Duration::from_secs(10);
    let t = run(done, ten, &mut a, &mut b, &mut log, |_, _| false);
    assert_eq!(t, ten);
    let kept = |x: &TestAgent| {
        let p = x.stream(StreamId(1)).unwrap().selected_pair(1).unwrap();
        (p.id, p.local.addr().unwrap(), p.remote.addr().unwrap())
    };
    let (a_kept, b_kept) = (kept(&a), kept(&b));
    let (s0, s1) = (StreamId(0), StreamId(1));
    a.handle_remove_stream(ten, s0).unwrap();
    b.handle_remove_stream(ten, s0).unwrap();
    a.handle_timeout(ten);
    b.handle_timeout(ten);
    for x in [&mut a, &mut b] {
        let events: Vec<Event> = std::iter::from_fn(|| x.poll_event()).collect();
        assert_eq!(events, [Event::StreamRemoved { stream: s0 }]);
        assert!(x.stream(s0).is_none() && x.stream_mut(s0).is_none());
        assert_eq!(x.stream_count(), 1);
        assert_eq!(
            x.handle_remove_stream(ten, s0),
            Err(AgentError::StreamRemoved)
        );
        assert_eq!(x.handle_gather(ten, s0), Err(AgentError::StreamRemoved));
        assert_eq!(x.handle_restart(ten, s0), Err(AgentError::StreamRemoved));
        assert_eq!(
            x.handle_remote_end_of_candidates(ten, s0),
            Err(AgentError::StreamRemoved)
        );
        let c: Candidate = "candidate:1 1 udp 1 203.0.113.9 9 typ host"
            .parse()
            .unwrap();
        assert_eq!(
            x.handle_remote_candidate(ten, s0, c),
            Err(AgentError::StreamRemoved)
        );
        let base = "192.0.2.1:5000".parse().unwrap();
        assert_eq!(
            x.handle_base_removed(ten, s0, 1, base),
            Err(AgentError::StreamRemoved)
        );
        assert_eq!(
            x.handle_send(ten, s0, 1, b"x"),
            Err(SendError::Agent(AgentError::StreamRemoved))
        );
        assert_eq!(
            x.handle_remove_stream(ten, StreamId(7)),
            Err(AgentError::UnknownStream)
        );
        assert_eq!(x.state(), ConnectionState::Completed);
    }
    // A datagram for the removed stream's socket is not its data any more.
    let stray = b.handle_datagram(
        ten,
        TransportProtocol::Udp,
        "192.0.2.1:5000".parse().unwrap(),
        "198.51.100.2:5000".parse().unwrap(),
        b"late RTP",
    );
    assert_eq!(
        stray,
        Handled::NotIce(crate::NotIceReason::UnknownDestination)
    );
    let before = log.len();
    let end = ten + Duration::from_secs(60);
    let t = run(ten, end, &mut a, &mut b, &mut log, |_, _| false);
    assert_eq!(t, end);
    let after = &log[before..];
    assert!(
        after.iter().all(|(_, _, d)| d.source.port() == 5002),
        "nothing is sent for the removed stream"
    );
    // Stream 1's consent checks went on every 4–6 s, both ways: 10–15 per side.
    for from in [0, 1] {
        let n = after.iter().filter(|(_, f, _)| *f == from).count();
        assert!((20..=30).contains(&n), "{n} consent requests and answers");
    }
    assert_eq!((kept(&a), kept(&b)), (a_kept, b_kept));
    assert!(both(&a, &b));
    let d = a.handle_send(end, s1, 1, b"still flowing").unwrap();
    let r = b.handle_datagram(end, d.transport, d.source, d.destination, d.payload);
    assert!(matches!(r, Handled::Data { stream, data: b"still flowing", .. } if stream == s1));
    // Spurious and time-travelling timeouts change nothing.
    a.handle_timeout(start);
    a.handle_timeout(end);
    assert_eq!(a.poll_transmit(), None);
    assert_eq!(kept(&a), a_kept);
}

#[test]
fn candidates_of_another_generation_are_refused() {
    let now = t0();
    let (mut a, s) = agent(true, 21, "192.0.2.1:5000");
    let remote = Credentials::new("KDyD", "0123456789012345678901").unwrap();
    a.handle_remote_credentials(now, s, remote).unwrap();
    let line = "candidate:1 1 udp 1 203.0.113.9 9 typ host generation 0 ufrag KDyD";
    a.handle_remote_candidate(now, s, line.parse().unwrap())
        .unwrap();
    let old = "candidate:2 1 udp 1 203.0.113.9 10 typ host generation 0 ufrag OLD1";
    assert_eq!(
        a.handle_remote_candidate(now, s, old.parse().unwrap()),
        Err(AgentError::StaleCandidate("OLD1".into()))
    );
    assert_eq!(a.stream(s).unwrap().remote_candidates().count(), 1);
}

/// The transport is part of a path: the same addresses over TCP are another path than the
/// UDP pair's, so neither data nor a check arriving over TCP on a UDP base counts as the
/// pair's (RFC 8445 §6.1.2.4 with RFC 6544).
#[test]
fn a_datagram_over_another_transport_is_not_the_pairs() {
    let (mut a, _, now) = connect(t0());
    let sa = StreamId(0);
    let pair = a.stream(sa).unwrap().selected_pair(1).unwrap();
    let (Some(local), Some(remote)) = (pair.local.addr(), pair.remote.addr()) else {
        panic!("a selected pair of IP candidates");
    };
    let before = pair.traffic;
    let over_tcp = a.handle_datagram(now, TransportProtocol::Tcp, remote, local, b"data");
    assert_eq!(over_tcp, Handled::NotIce(NotIceReason::UnknownDestination));
    let over_udp = a.handle_datagram(now, TransportProtocol::Udp, remote, local, b"data");
    assert!(matches!(over_udp, Handled::Data { pair: Some(_), .. }));
    let after = a.stream(sa).unwrap().selected_pair(1).unwrap().traffic;
    assert_eq!(after.packets_received, before.packets_received + 1);
}
