//! Tests of nomination (§7.3.1.5, §8.1.1), cancelled checks (§7.3.1.4) and failover.

use super::*;

#[test]
fn use_candidate_during_a_check_nominates_on_its_success_7_3_1_5() {
    let (mut a, s) = agent(false);
    let now = t0();
    remote(
        &mut a,
        s,
        &format!("candidate:1 1 udp 2000 {} typ host", PEER.replace(':', " ")),
    );
    let first = transmits(&mut a).remove(0);
    // The controlling peer nominates while our check is in flight: §7.3.1.4 cancels it
    // and triggers a new one; §7.3.1.5 nominates the pair when a check succeeds.
    let req = request(8, Some(1), Some(DeclaredRole::Controlling(1)), true);
    a.handle_datagram(
        now + Duration::from_millis(5),
        TransportProtocol::Udp,
        addr(PEER),
        addr(BASE),
        &req,
    );
    let out = transmits(&mut a);
    assert_eq!(
        out.len(),
        1,
        "the answer; the triggered check waits for its Ta slot"
    );
    a.handle_timeout(now + Duration::from_millis(50));
    let second = transmits(&mut a).remove(0);
    assert_ne!(
        Message::parse(&second.payload).unwrap().transaction_id(),
        Message::parse(&first.payload).unwrap().transaction_id()
    );
    // The answer to the cancelled check still counts (§7.3.1.4).
    let ok = answer(&first, Class::Success, addr(BASE), None);
    a.handle_datagram(
        now + Duration::from_millis(60),
        TransportProtocol::Udp,
        addr(PEER),
        addr(BASE),
        &ok,
    );
    let ev = events(&mut a);
    assert!(
        ev.iter()
            .any(|e| matches!(e, Event::NewSelectedPair { .. })),
        "{ev:?}"
    );
    let view = a.stream(s).unwrap();
    assert_eq!(view.component_state(1), Some(ComponentState::Ready));
    assert_eq!(
        view.selected_pair(1).unwrap().remote.addr(),
        Some(addr(PEER))
    );
}

#[test]
fn a_late_failure_of_a_cancelled_check_keeps_the_selected_pair_7_3_1_4() {
    let (mut a, s) = agent(false);
    let now = t0();
    remote(
        &mut a,
        s,
        &format!("candidate:1 1 udp 2000 {} typ host", PEER.replace(':', " ")),
    );
    let first = transmits(&mut a).remove(0);
    // Nominated while the first check is in flight: it is cancelled, a second one goes.
    let req = request(8, Some(1), Some(DeclaredRole::Controlling(1)), true);
    a.handle_datagram(now, TransportProtocol::Udp, addr(PEER), addr(BASE), &req);
    transmits(&mut a);
    a.handle_timeout(now + Duration::from_millis(50));
    let second = transmits(&mut a).remove(0);
    let ok = answer(&second, Class::Success, addr(BASE), None);
    let t = now + Duration::from_millis(60);
    a.handle_datagram(t, TransportProtocol::Udp, addr(PEER), addr(BASE), &ok);
    let selected = |a: &TestAgent| {
        let p = a.stream(s).unwrap().selected_pair(1).unwrap();
        (p.valid, p.nominated, p.state)
    };
    assert_eq!(selected(&a), (true, true, PairStateKind::Succeeded));
    // A signed failure of the cancelled check arrives late: an error from another
    // address (non-symmetric, §7.2.5.2.1). The later success stands.
    let error = answer(&first, Class::Error, addr(BASE), Some(500));
    let other = addr("203.0.113.9:4001");
    a.handle_datagram(t, TransportProtocol::Udp, other, addr(BASE), &error);
    assert_eq!(selected(&a), (true, true, PairStateKind::Succeeded));
    assert_eq!(a.stats().stale_failures, 1);
    // The transaction is over: the same error from the right address matches nothing.
    a.handle_datagram(t, TransportProtocol::Udp, addr(PEER), addr(BASE), &error);
    assert_eq!(selected(&a), (true, true, PairStateKind::Succeeded));
    assert_eq!(
        a.stream(s).unwrap().component_state(1),
        Some(ComponentState::Ready)
    );
}

#[test]
fn a_cancelled_checks_late_success_does_not_swallow_the_nomination_7_3_1_4() {
    // Found by the matrix at 10% loss. A's check X is in flight when the peer's check
    // arrives on the pair: A answers and its triggered check Y replaces X (§7.3.1.4: X
    // is cancelled, its answer still counts). Y's success makes the pair valid and A
    // nominates it (check N, USE-CANDIDATE). X's answer, arriving late, used to set
    // the pair Succeeded over N, so that N's own answer matched no transaction, the
    // pair stayed "nominating" and the component never selected a pair.
    let (mut a, s) = agent(true);
    remote(
        &mut a,
        s,
        &format!("candidate:1 1 udp 2000 {} typ host", PEER.replace(':', " ")),
    );
    let x = transmits(&mut a).remove(0);
    let t = t0() + Duration::from_millis(10);
    let peer_check = request(1, Some(2000), Some(DeclaredRole::Controlled(1)), false);
    a.handle_datagram(t, TransportProtocol::Udp, addr(PEER), x.source, &peer_check);
    let mut out = transmits(&mut a);
    let t = t0() + Duration::from_millis(50);
    a.handle_timeout(t);
    out.extend(transmits(&mut a));
    let is_check =
        |m: &Transmit| Message::parse(&m.payload).is_ok_and(|m| m.class() == Class::Request);
    let y = out
        .into_iter()
        .find(|m| is_check(m) && m.payload != x.payload)
        .expect("the triggered check Y");
    let ok_y = answer(&y, Class::Success, y.source, None);
    a.handle_datagram(t, TransportProtocol::Udp, addr(PEER), y.source, &ok_y);
    let t = t + Duration::from_millis(50);
    a.handle_timeout(t);
    let n = transmits(&mut a)
        .into_iter()
        .find(|m| {
            Message::parse(&m.payload)
                .unwrap()
                .has(stun_proto::AttributeType::USE_CANDIDATE)
        })
        .expect("the nomination N left in the next Ta slot");
    // X's late answer, then N's.
    let ok_x = answer(&x, Class::Success, x.source, None);
    a.handle_datagram(t, TransportProtocol::Udp, addr(PEER), x.source, &ok_x);
    let ok_n = answer(&n, Class::Success, n.source, None);
    a.handle_datagram(t, TransportProtocol::Udp, addr(PEER), n.source, &ok_n);
    let selected = a.stream(s).unwrap().selected_pair(1).map(|p| p.nominated);
    assert_eq!(selected, Some(true));
}

#[test]
fn a_selected_pair_whose_check_fails_is_selected_no_more_8_1_1() {
    // The controlling agent, two interfaces, one peer address: both pairs valid.
    let (wifi, wired) = (addr("192.0.2.1:5000"), addr("192.0.2.2:5000"));
    let mut a = Agent::new(
        AgentConfig {
            controlling: true,
            // Waits for the better pair instead of nominating the first valid one.
            nomination_wait: Duration::from_secs(1),
            ..AgentConfig::default()
        },
        ChaCha20Rng::seed_from_u64(7),
    );
    let s = a.add_stream(1).unwrap();
    let mut view = a.stream_mut(s).unwrap();
    view.set_local_credentials(Credentials::new("LOCL", LOCAL_PWD).unwrap())
        .unwrap();
    view.add_base(1, wifi).unwrap();
    view.add_base(1, wired).unwrap();
    let now = t0();
    a.handle_remote_credentials(now, s, Credentials::new("REMO", REMOTE_PWD).unwrap())
        .unwrap();
    a.handle_gather(now, s).unwrap();
    remote(
        &mut a,
        s,
        &format!("candidate:1 1 udp 2000 {} typ host", PEER.replace(':', " ")),
    );
    let high = transmits(&mut a).remove(0);
    let t = now + Duration::from_millis(50);
    a.handle_timeout(t);
    let low = transmits(&mut a).remove(0);
    assert_eq!((high.source, low.source), (wifi, wired));
    // The lower pair answers first (the agent waits for the better one), then the
    // higher: it is nominated, and selected on the nomination's answer.
    for check in [&low, &high] {
        let ok = answer(check, Class::Success, check.source, None);
        a.handle_datagram(t, TransportProtocol::Udp, addr(PEER), check.source, &ok);
    }
    let t = t + Duration::from_millis(50);
    a.handle_timeout(t);
    let nomination = transmits(&mut a).remove(0);
    let ok = answer(&nomination, Class::Success, wifi, None);
    a.handle_datagram(t, TransportProtocol::Udp, addr(PEER), wifi, &ok);
    let selected = |a: &TestAgent| {
        a.stream(s)
            .unwrap()
            .selected_pair(1)
            .map(|p| (p.local.addr(), p.valid, p.nominated))
    };
    assert_eq!(selected(&a), Some((Some(wifi), true, true)));
    // The first interface goes: the agent fails over to the other valid pair and
    // nominates it; the peer answers that nomination with an error.
    assert_eq!(a.handle_base_removed(t, s, 1, wifi), Ok(true));
    assert_eq!(selected(&a), Some((Some(wired), true, true)));
    let t = t + Duration::from_millis(50);
    a.handle_timeout(t);
    let nomination = transmits(&mut a)
        .into_iter()
        .find(|x| {
            x.source == wired
                && Message::parse(&x.payload)
                    .unwrap()
                    .has(stun_proto::AttributeType::USE_CANDIDATE)
        })
        .expect("the failover's nomination");
    let error = answer(&nomination, Class::Error, wired, Some(500));
    a.handle_datagram(t, TransportProtocol::Udp, addr(PEER), wired, &error);
    // The failed pair is selected no more: nothing valid is left, so the component
    // checks its remaining pairs again.
    assert_eq!(selected(&a), None);
    let view = a.stream(s).unwrap();
    assert_eq!(view.component_state(1), Some(ComponentState::Connecting));
    assert!(view.pairs().all(|p| !p.valid));
}

#[test]
fn the_401_to_an_unsigned_check_is_at_most_1_6_times_its_size() {
    // docs/hostile-input.md: the smallest check that draws an answer without our
    // password names our ufrag (USERNAME "LOCL:", 32 bytes); its 401 is 52 bytes.
    let (mut a, _) = agent(false);
    let mut b = MessageBuilder::new_bytes(MessageType::BINDING_REQUEST, [6; 12].into());
    b.add(&Username::new("LOCL:").unwrap()).unwrap();
    let bare = b.into_bytes();
    assert_eq!(bare.len(), 32);
    a.handle_datagram(t0(), TransportProtocol::Udp, addr(PEER), addr(BASE), &bare);
    let out = transmits(&mut a);
    let sizes: Vec<usize> = out.iter().map(|t| t.payload.len()).collect();
    assert_eq!(sizes, [52]);
}

#[test]
fn a_signalled_candidate_displaces_a_learnt_one_that_never_worked() {
    let config = AgentConfig {
        max_candidates: 4,
        ..AgentConfig::default()
    };
    let (mut a, s) = agent_with(config, 1);
    let now = t0();
    let source = |i: u8| SocketAddr::from(([198, 51, 100, i], 4000));
    // Signed checks from five sources (a replay from spoofed addresses, say): four are
    // learnt peer-reflexive, the fifth finds the table full. The first one's pair works.
    for i in 1..=5 {
        let req = request(i, Some(1_000), Some(DeclaredRole::Controlling(1)), false);
        a.handle_datagram(now, TransportProtocol::Udp, source(i), addr(BASE), &req);
        let out = transmits(&mut a);
        if i == 1 {
            let check = out
                .iter()
                .find(|x| Message::parse(&x.payload).unwrap().class() == Class::Request)
                .expect("the triggered check");
            let ok = answer(check, Class::Success, addr(BASE), None);
            a.handle_datagram(now, TransportProtocol::Udp, source(1), addr(BASE), &ok);
        }
    }
    let ev = events(&mut a);
    assert!(ev.contains(&Event::Problem(Problem::CandidateLimitReached {
        stream: s
    })));
    let remotes = |a: &TestAgent| -> Vec<SocketAddr> {
        a.stream(s)
            .unwrap()
            .remote_candidates()
            .filter_map(|c| c.addr())
            .collect()
    };
    assert_eq!(remotes(&a), [1, 2, 3, 4].map(source));
    // The peer trickles its real candidates: each displaces the oldest learnt one that
    // never worked (not the first, whose pair succeeded), and is paired.
    let trickle = |a: &mut TestAgent, port: u16| {
        a.handle_remote_candidate(
            now,
            s,
            format!("candidate:7 1 udp 2130706431 203.0.113.9 {port} typ host")
                .parse()
                .unwrap(),
        )
    };
    assert_eq!(trickle(&mut a, 4000), Ok(()));
    assert!(
        events(&mut a).contains(&Event::Problem(Problem::PeerReflexiveCandidateEvicted {
            stream: s,
            address: source(2),
        }))
    );
    assert_eq!(remotes(&a), [source(1), source(3), source(4), addr(PEER)]);
    let view = a.stream(s).unwrap();
    assert!(view.pairs().any(|p| p.remote.addr() == Some(addr(PEER))));
    assert!(view.pairs().all(|p| p.remote.addr() != Some(source(2))));
    assert!(
        view.pairs()
            .any(|p| p.remote.addr() == Some(source(1)) && p.valid),
        "the pair that works keeps its candidate"
    );
    assert_eq!(trickle(&mut a, 4001), Ok(()));
    assert_eq!(trickle(&mut a, 4002), Ok(()));
    // Only the candidate that worked is left of the learnt ones: the table is full.
    assert_eq!(
        trickle(&mut a, 4003),
        Err(crate::AgentError::TooManyCandidates)
    );
    assert_eq!(remotes(&a)[0], source(1));
    assert_eq!(remotes(&a).len(), 4);
}

#[test]
fn a_second_component_waits_frozen_for_the_first_6_1_2_6() {
    let config = AgentConfig {
        controlling: true,
        ..AgentConfig::default()
    };
    let (mut a, s) = agent_with(config, 2);
    let now = t0();
    // The peer's two host candidates share a foundation, as ours do.
    remote(
        &mut a,
        s,
        "candidate:9 1 udp 2130706431 203.0.113.9 4000 typ host",
    );
    remote(
        &mut a,
        s,
        "candidate:9 2 udp 2130706430 203.0.113.9 4001 typ host",
    );
    assert_eq!(
        pair_states(&a, s),
        [(1, PairStateKind::InProgress), (2, PairStateKind::Frozen)]
    );
    let check = transmits(&mut a).remove(0);
    // Nothing to do at the next slot: component 2's pair stays Frozen while its
    // foundation is In-Progress.
    a.handle_timeout(now + Duration::from_millis(50));
    assert!(transmits(&mut a).is_empty());
    assert_eq!(pair_states(&a, s)[1], (2, PairStateKind::Frozen));
    // Component 1 succeeds: component 2's pair is unfrozen (§7.2.5.3.3).
    let ok = answer(&check, Class::Success, addr(BASE), None);
    a.handle_datagram(
        now + Duration::from_millis(60),
        TransportProtocol::Udp,
        addr(PEER),
        addr(BASE),
        &ok,
    );
    let states = pair_states(&a, s);
    assert!(
        states.contains(&(2, PairStateKind::Waiting))
            || states.contains(&(2, PairStateKind::InProgress)),
        "{states:?}"
    );
}

#[test]
fn the_check_list_is_bounded_6_1_2_5() {
    let config = AgentConfig {
        max_pairs: 10,
        ..AgentConfig::default()
    };
    let (mut a, s) = agent_with(config, 1);
    for i in 0..15 {
        remote(
            &mut a,
            s,
            &format!(
                "candidate:{i} 1 udp {} 203.0.113.9 {} typ host",
                1000 + i,
                4000 + i
            ),
        );
    }
    let view = a.stream(s).unwrap();
    assert_eq!(view.pairs().count(), 10);
    assert_eq!(view.dropped_pairs(), 5);
    // The best are kept (the highest remote priorities), and the pair whose check is
    // already in flight (the first one).
    let mut kept: Vec<u32> = view.pairs().map(|p| p.remote.priority).collect();
    kept.sort_unstable();
    assert_eq!(
        kept,
        [1000, 1006, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014]
    );
    let ev = events(&mut a);
    assert!(ev.iter().any(|e| matches!(
        e,
        Event::Problem(crate::event::Problem::PairLimitReached { .. })
    )));
}

#[test]
fn an_icmp_error_fails_the_check_at_once_7_2_5_2_2() {
    let (mut a, s) = agent(true);
    let now = t0();
    remote(
        &mut a,
        s,
        &format!("candidate:1 1 udp 2000 {} typ host", PEER.replace(':', " ")),
    );
    assert_eq!(pair_states(&a, s), [(1, PairStateKind::InProgress)]);
    // Another path: nothing changes.
    a.handle_transport_error(now, addr(BASE), addr("203.0.113.9:4001"));
    assert_eq!(pair_states(&a, s), [(1, PairStateKind::InProgress)]);
    a.handle_transport_error(now + Duration::from_millis(1), addr(BASE), addr(PEER));
    assert_eq!(pair_states(&a, s), [(1, PairStateKind::Failed)]);
    a.handle_remote_end_of_candidates(now, s).unwrap();
    // Every pair failed, but the ICE PAC timer (RFC 8863 §4) started with the remote
    // credentials at t0 runs until 39.5 s: only then does the component fail.
    let state = |a: &TestAgent| a.stream(s).unwrap().component_state(1);
    assert_eq!(state(&a), Some(ComponentState::Connecting));
    let pac = now + Duration::from_millis(39_500);
    assert_eq!(a.next_timer(), Some((crate::Timer::Patience, pac)));
    a.handle_timeout(pac - Duration::from_millis(1));
    assert_eq!(state(&a), Some(ComponentState::Connecting));
    a.handle_timeout(pac);
    assert_eq!(state(&a), Some(ComponentState::Failed));
}

#[test]
fn an_icmp_error_fails_no_valid_pair() {
    // The error is unauthenticated: a pair an authenticated answer made valid stays
    // valid, even with a check in flight on its path.
    let (mut a, s) = agent(true);
    let now = t0();
    remote(
        &mut a,
        s,
        &format!("candidate:1 1 udp 2000 {} typ host", PEER.replace(':', " ")),
    );
    let check = transmits(&mut a).remove(0);
    let ok = answer(&check, Class::Success, addr(BASE), None);
    a.handle_datagram(now, TransportProtocol::Udp, addr(PEER), addr(BASE), &ok);
    // Valid: the nomination goes at the next Ta slot.
    a.handle_timeout(now + Duration::from_millis(50));
    let nomination = transmits(&mut a).remove(0);
    assert!(
        Message::parse(&nomination.payload)
            .unwrap()
            .has(stun_proto::AttributeType::USE_CANDIDATE)
    );
    let pair = |a: &TestAgent| {
        let p = a.stream(s).unwrap().pairs().next().unwrap();
        (p.state, p.valid)
    };
    assert_eq!(pair(&a), (PairStateKind::InProgress, true));
    a.handle_transport_error(now + Duration::from_millis(60), addr(BASE), addr(PEER));
    assert_eq!(pair(&a), (PairStateKind::InProgress, true));
}

#[test]
fn a_signalled_candidate_replaces_the_peer_reflexive_one_learnt_first() {
    let (mut a, s) = agent(false);
    let now = t0();
    let req = request(9, Some(1_000), Some(DeclaredRole::Controlling(1)), false);
    a.handle_datagram(now, TransportProtocol::Udp, addr(PEER), addr(BASE), &req);
    let before = a.stream(s).unwrap().pairs().next().unwrap().priority;
    // Trickled late: the same address as a host candidate.
    remote(
        &mut a,
        s,
        &format!(
            "candidate:7 1 udp 2130706431 {} typ host",
            PEER.replace(':', " ")
        ),
    );
    let view = a.stream(s).unwrap();
    let remotes: Vec<_> = view.remote_candidates().collect();
    assert_eq!(remotes.len(), 1, "no second candidate at the same address");
    assert_eq!(remotes[0].kind, CandidateType::Host);
    assert_eq!(remotes[0].foundation, "7");
    let pairs: Vec<_> = view.pairs().collect();
    assert_eq!(pairs.len(), 1);
    assert!(
        pairs[0].priority > before,
        "re-ranked with the signalled priority"
    );
    assert_eq!(
        pairs[0].priority,
        crate::pair_priority(2_130_706_431, crate::candidate::priority(126, 32_767, 1))
    );
}

/// A controlled agent with two valid pairs to one peer, ranked high and low (its checks of
/// both answered): the agent, its stream, the instant, and the low and high remote addresses.
fn controlled_with_two_valid_pairs() -> (TestAgent, StreamId, Instant, SocketAddr, SocketAddr) {
    let (mut a, s) = agent(false);
    let (low, high) = (addr("203.0.113.9:4001"), addr("203.0.113.9:4000"));
    remote(
        &mut a,
        s,
        "candidate:1 1 udp 2130706431 203.0.113.9 4000 typ host",
    );
    remote(
        &mut a,
        s,
        "candidate:2 1 udp 1000 203.0.113.9 4001 typ host",
    );
    let mut t = t0();
    let mut answered = 0;
    while answered < 2 {
        for check in transmits(&mut a) {
            let ok = answer(&check, Class::Success, addr(BASE), None);
            a.handle_datagram(
                t,
                TransportProtocol::Udp,
                check.destination,
                addr(BASE),
                &ok,
            );
            answered += 1;
        }
        t += Duration::from_millis(50);
        a.handle_timeout(t);
    }
    assert!(a.stream(s).unwrap().pairs().all(|p| p.valid));
    (a, s, t, low, high)
}

#[test]
fn the_controlled_agent_selects_the_best_nominated_pair_8_1_1() {
    // A peer nominating several pairs (aggressive nomination of RFC 5245): the controlled
    // agent selects the highest-priority nominated valid pair, and switches up.
    let (mut a, s, t, low, high) = controlled_with_two_valid_pairs();
    while a.poll_event().is_some() {}
    let nominate = |a: &mut TestAgent, from: SocketAddr, tid: u8| {
        let req = request(tid, Some(1), Some(DeclaredRole::Controlling(1)), true);
        a.handle_datagram(t, TransportProtocol::Udp, from, addr(BASE), &req);
        std::iter::from_fn(|| a.poll_event())
            .filter_map(|e| match e {
                Event::NewSelectedPair { remote, .. } => remote.addr(),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(nominate(&mut a, low, 20), [low]);
    assert_eq!(nominate(&mut a, high, 21), [high]);
    // A lower nomination afterwards changes nothing while the selected pair works: the
    // agent probes it with a consent check at once, and its answer keeps it.
    while !transmits(&mut a).is_empty() {}
    assert_eq!(nominate(&mut a, low, 22), []);
    let out = transmits(&mut a);
    let probe = out
        .iter()
        .find(|x| {
            x.destination == high && Message::parse(&x.payload).unwrap().class() == Class::Request
        })
        .expect("a consent check on the selected pair");
    let ok = answer(probe, Class::Success, addr(BASE), None);
    a.handle_datagram(t, TransportProtocol::Udp, high, addr(BASE), &ok);
    a.handle_timeout(t + Duration::from_secs(1));
    let selected = |a: &TestAgent| a.stream(s).unwrap().selected_pair(1).unwrap().remote.addr();
    assert_eq!(selected(&a), Some(high));
    assert!(
        events(&mut a)
            .iter()
            .all(|e| !matches!(e, Event::NewSelectedPair { .. }))
    );
    // Nominated low again with the selected pair silent: after the probe's RTO (500 ms)
    // the selected pair is taken as failed and the nominated one selected (a failover).
    let t2 = t + Duration::from_secs(2);
    let req = request(23, Some(1), Some(DeclaredRole::Controlling(1)), true);
    a.handle_datagram(t2, TransportProtocol::Udp, low, addr(BASE), &req);
    assert_eq!(
        a.next_timer(),
        Some((crate::Timer::Failover, t2 + Duration::from_millis(500)))
    );
    a.handle_timeout(t2 + Duration::from_millis(499));
    assert_eq!(selected(&a), Some(high));
    a.handle_timeout(t2 + Duration::from_millis(500));
    assert_eq!(selected(&a), Some(low));
}

#[test]
fn the_selected_pair_nominated_again_ends_the_probe_a_lower_nomination_started() {
    // The peer (controlling) fails over to a lower pair and comes back: a nomination of the
    // lower pair, then of the selected pair again. The probe the first one started must not
    // then move this side down when its consent check goes unanswered: the peer sends on
    // the selected pair (seen in the matrix at 10% loss, `open ↔ open`, seed 104).
    let (mut a, s, t, low, high) = controlled_with_two_valid_pairs();
    let nominate = |a: &mut TestAgent, at, from: SocketAddr, tid: u8| {
        let req = request(tid, Some(1), Some(DeclaredRole::Controlling(1)), true);
        a.handle_datagram(at, TransportProtocol::Udp, from, addr(BASE), &req);
    };
    nominate(&mut a, t, high, 30);
    let selected = |a: &TestAgent| a.stream(s).unwrap().selected_pair(1).unwrap().remote.addr();
    assert_eq!(selected(&a), Some(high));
    while !transmits(&mut a).is_empty() {}
    // The lower nomination: a probe (a consent check on the selected pair) goes at once.
    let ms = Duration::from_millis;
    nominate(&mut a, t + ms(200), low, 31);
    assert!(
        transmits(&mut a).iter().any(|x| x.destination == high),
        "the probe's consent check"
    );
    assert_eq!(a.next_timer(), Some((crate::Timer::Failover, t + ms(700))));
    // The peer nominates the selected pair again before the probe's deadline; the probe's
    // answer never comes. Past the deadline the selected pair stays.
    nominate(&mut a, t + ms(300), high, 32);
    assert!(
        !matches!(a.next_timer(), Some((crate::Timer::Failover, _))),
        "the probe ended"
    );
    a.handle_timeout(t + ms(800));
    assert_eq!(selected(&a), Some(high));
}

#[test]
fn an_unanswered_nomination_of_a_valid_pair_goes_again_before_the_pair_fails() {
    // Every answer to A's nomination is lost (a lossy path: the peer may have selected the
    // pair on the request). The pair stays valid and the nomination goes out again, as a
    // new transaction, three transactions in all; only then does the pair fail.
    let (mut a, s) = agent(true);
    remote(
        &mut a,
        s,
        &format!("candidate:1 1 udp 2000 {} typ host", PEER.replace(':', " ")),
    );
    let check = transmits(&mut a).remove(0);
    let ok = answer(&check, Class::Success, check.source, None);
    let mut now = t0();
    a.handle_datagram(now, TransportProtocol::Udp, addr(PEER), check.source, &ok);
    let valid = |a: &TestAgent| a.stream(s).unwrap().pairs().next().unwrap().valid;
    let mut nominations = Vec::new();
    while now < t0() + Duration::from_secs(120) && valid(&a) {
        now = a.poll_timeout().unwrap_or(now + Duration::from_secs(1));
        a.handle_timeout(now);
        for t in transmits(&mut a) {
            let m = Message::parse(&t.payload).unwrap();
            if m.has(stun_proto::AttributeType::USE_CANDIDATE)
                && !nominations.contains(&m.transaction_id())
            {
                nominations.push(m.transaction_id());
                assert!(valid(&a), "still valid when nominated again");
            }
        }
    }
    assert_eq!(nominations.len(), 3, "three nomination transactions");
    assert!(!valid(&a), "then the pair failed");
    assert_eq!(a.stream(s).unwrap().selected_pair(1), None);
}
