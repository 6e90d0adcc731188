//! Trickle ICE (RFC 8838): candidates that arrive late, check lists that empty and refill,
//! end-of-candidates from both sides; and ICE PAC (RFC 8863).

use super::*;

/// When peer `i` first reported `state` (time since the start).
fn first_state(sim: &Sim, i: usize, state: ConnectionState) -> Option<Duration> {
    sim.peers[i]
        .first(|e| *e == Event::ConnectionStateChanged(state))
        .map(|t| t - sim.start)
}

/// The times (since the start) at which peer `i` reported an event matching `pred`.
fn times(sim: &Sim, i: usize, pred: impl Fn(&Event) -> bool) -> Vec<Duration> {
    sim.peers[i]
        .events
        .iter()
        .filter(|(_, e)| pred(e))
        .map(|(t, _)| *t - sim.start)
        .collect()
}

#[test]
fn trickle_with_candidates_arriving_2_s_late_connects() {
    // Credentials at 0; every candidate and the end-of-candidates take 2 s to arrive, both
    // ways (RFC 8838 §11–§12: pairs are formed and checked as candidates come). Until 2 s both check lists
    // are empty: nothing is sent and nothing fails.
    let mut sim = host_pair(301);
    sim.signal_delay = [Some(Duration::from_secs(2)); 2];
    sim.start();
    assert!(sim.run_until(Duration::from_secs(10), |s| {
        s.both(ConnectionState::Completed)
    }));
    let ms = Duration::from_millis;
    // Both sides signalled end-of-candidates at 0 (host candidates only: gathering is done).
    for i in 0..2 {
        let done = times(&sim, i, |e| {
            matches!(e, Event::CandidateGatheringDone { .. })
        });
        assert_eq!(done, [ms(0)]);
        assert_eq!(
            first_state(&sim, i, ConnectionState::Checking),
            Some(ms(2_000))
        );
        assert_eq!(
            first_state(&sim, i, ConnectionState::Connected),
            Some(ms(2_020))
        );
        assert_eq!(first_state(&sim, i, ConnectionState::Failed), None);
    }
    let first_datagram = sim.log.iter().map(|(t, _, _)| *t).min();
    assert_eq!(first_datagram, Some(ms(2_000)));
    // B selects on A's nomination (sent at the 2.05 s slot), A on its answer.
    assert_eq!(
        first_state(&sim, 1, ConnectionState::Completed),
        Some(ms(2_060))
    );
    assert_eq!(
        first_state(&sim, 0, ConnectionState::Completed),
        Some(ms(2_070))
    );
    let (a_local, a_remote) = sim.selected(0).unwrap();
    assert_eq!(sim.selected(1), Some((a_remote, a_local)));
}

#[test]
fn a_check_list_that_empties_and_refills_does_not_fail_early() {
    // B's first candidate (198.51.100.2, unreachable) arrives at once; A's check on it
    // fails at 20.5 s and A's check list has nothing left to check. B's working candidate
    // and end-of-candidates come at 25 s — and A's candidates reach B only then too, so no
    // peer-reflexive candidate refills the list sooner. Without B's end-of-candidates A
    // must not fail (RFC 8838 §14), and it connects once the list refills.
    let a = Peer::new(config(true), 311, &["192.0.2.1:5000"]);
    let b = Peer::new(
        config(false),
        312,
        &["198.51.100.2:6000", "198.51.100.3:6000"],
    );
    let mut sim = Sim::new(a, b, 311);
    sim.blocked = vec![addr("198.51.100.2:6000")];
    sim.signal_delay = [None, None];
    sim.start();
    sim.release_signals(1, Some(1));
    sim.run_until(Duration::from_secs(25), |_| false);
    {
        let p = &sim.peers[0];
        let view = p.agent.stream(p.stream).unwrap();
        let states: Vec<_> = view.pairs().map(|p| p.state).collect();
        assert_eq!(
            states,
            [ice_proto::PairStateKind::Failed],
            "the list is exhausted"
        );
        assert_eq!(p.agent.state(), ConnectionState::Checking);
    }
    sim.release_signals(0, None);
    sim.release_signals(1, None);
    assert!(sim.run_until(Duration::from_secs(40), |s| {
        s.both(ConnectionState::Completed)
    }));
    let ms = Duration::from_millis;
    assert_eq!(
        first_state(&sim, 0, ConnectionState::Connected),
        Some(ms(25_020))
    );
    assert_eq!(
        first_state(&sim, 0, ConnectionState::Completed),
        Some(ms(25_070))
    );
    assert_eq!(
        first_state(&sim, 1, ConnectionState::Completed),
        Some(ms(25_070))
    );
    assert_eq!(
        sim.selected(0),
        Some((addr("192.0.2.1:5000"), addr("198.51.100.3:6000")))
    );
    for i in 0..2 {
        assert_eq!(first_state(&sim, i, ConnectionState::Failed), None);
    }
}

#[test]
fn no_failure_before_the_pac_timer_while_no_candidate_came_8863() {
    // Both sides signal end-of-candidates but no candidate gets through the signalling:
    // both check lists are empty from 0, with both end-of-candidates received — failure
    // would be immediate without ICE PAC. At 30 s B learns A's candidate and checks it; A
    // learns B peer-reflexive from that check (RFC 8863 §2's case) and the agents connect,
    // before the 39.5 s PAC timer, so neither has failed meanwhile. Meanwhile the overall
    // state says there is no path now (Disconnected, issue 15): not a failure.
    let mut sim = host_pair(321);
    sim.signal_candidates = false;
    sim.start();
    sim.run_until(Duration::from_secs(30), |_| false);
    for i in 0..2 {
        assert_eq!(sim.peers[i].agent.state(), ConnectionState::Disconnected);
        assert_eq!(
            sim.peers[i].agent.next_timer().map(|(t, _)| t),
            Some(ice_proto::Timer::Patience)
        );
    }
    let a_candidate = {
        let p = &sim.peers[0];
        let view = p.agent.stream(p.stream).unwrap();
        view.local_candidates().next().unwrap().clone()
    };
    let (now, p) = (sim.now, &mut sim.peers[1]);
    p.agent
        .handle_remote_candidate(now, p.stream, a_candidate)
        .unwrap();
    assert!(sim.run_until(Duration::from_secs(40), |s| {
        s.both(ConnectionState::Completed)
    }));
    let ms = Duration::from_millis;
    let prflx = times(&sim, 0, |e| {
        matches!(e, Event::NewPeerReflexiveRemoteCandidate { .. })
    });
    assert_eq!(prflx, [ms(30_010)]);
    assert_eq!(
        first_state(&sim, 1, ConnectionState::Completed),
        Some(ms(30_070))
    );
    assert_eq!(
        first_state(&sim, 0, ConnectionState::Completed),
        Some(ms(30_080))
    );
    for i in 0..2 {
        assert_eq!(first_state(&sim, i, ConnectionState::Failed), None);
    }
}

#[test]
fn with_nothing_to_check_the_failure_comes_when_the_pac_timer_expires_8863() {
    // The same start, and nothing ever arrives: both fail at 39.5 s exactly (the PAC timer
    // started with the credentials at 0), with the reason that checks failed.
    let mut sim = host_pair(331);
    sim.signal_candidates = false;
    sim.start();
    assert!(sim.run_until(Duration::from_secs(60), |s| {
        s.both(ConnectionState::Failed)
    }));
    for i in 0..2 {
        let failed = times(&sim, i, |e| {
            matches!(
                e,
                Event::ComponentStateChanged {
                    state: ComponentState::Failed,
                    reason: Some(FailureReason::ChecksFailed),
                    ..
                }
            )
        });
        assert_eq!(failed, [Duration::from_millis(39_500)]);
    }
}
