//! Local network changes: an interface (base) removed while connected.

use super::*;

/// The selections of peer `i`: when, and the (local, remote) addresses.
fn selections_of(sim: &Sim, i: usize) -> Vec<(Duration, SocketAddr, SocketAddr)> {
    sim.peers[i]
        .events
        .iter()
        .filter_map(|(t, e)| match e {
            Event::NewSelectedPair { local, remote, .. } => {
                Some((*t - sim.start, local.addr()?, remote.addr()?))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn an_interface_removal_fails_over_within_one_consent_interval() {
    let a = Peer::new(config(true), 501, &["192.0.2.1:5000", "192.0.2.2:5000"]);
    let b = Peer::new(config(false), 502, &["198.51.100.2:6000"]);
    let mut sim = Sim::new(a, b, 501);
    sim.start();
    assert!(sim.run_until(Duration::from_secs(5), |s| {
        s.both(ConnectionState::Completed)
    }));
    let (wifi, wired, b_host) = (
        addr("192.0.2.1:5000"),
        addr("192.0.2.2:5000"),
        addr("198.51.100.2:6000"),
    );
    assert_eq!(sim.selected(0), Some((wifi, b_host)));
    sim.run_until(Duration::from_secs(10), |_| false);
    // At 10 s A's first interface goes away: nothing reaches it any more.
    sim.peers[0].addrs.retain(|a| *a != wifi);
    let (now, s) = (sim.now, sim.peers[0].stream);
    assert_eq!(
        sim.peers[0].agent.handle_base_removed(now, s, 1, wifi),
        Ok(true)
    );
    sim.drain();
    assert!(sim.run_until(Duration::from_secs(15), |s| {
        s.selected(1) == Some((b_host, wired))
    }));
    // A's pair on the second interface had been stopped at the first selection (§8.1.2):
    // nothing valid is left, so A goes back to Connecting, checks it at 10 s (valid at
    // 10.02 s), nominates it at its next Ta slot and selects it on the answer at 10.07 s.
    // B gets the nomination at 10.06 s, below its selected pair: its consent check on the
    // old pair goes unanswered for the 500 ms RTO, so it switches at 10.56 s — well within
    // one consent interval (5 s).
    let ms = Duration::from_millis;
    assert_eq!(
        selections_of(&sim, 0),
        [(ms(70), wifi, b_host), (ms(10_070), wired, b_host)]
    );
    assert_eq!(
        selections_of(&sim, 1),
        [(ms(60), b_host, wifi), (ms(10_560), b_host, wired)]
    );
    let a_states: Vec<_> = sim.peers[0]
        .events
        .iter()
        .filter_map(|(t, e)| match e {
            Event::ComponentStateChanged { state, .. } if *t >= sim.start + ms(10_000) => {
                Some((*t - sim.start, *state))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        a_states,
        [
            (ms(10_000), ComponentState::Connecting),
            (ms(10_020), ComponentState::Connected),
            (ms(10_070), ComponentState::Ready)
        ]
    );
    sim.send_data(0, b"after failover from A").unwrap();
    sim.send_data(1, b"after failover from B").unwrap();
    let t = sim.elapsed() + Duration::from_millis(50);
    sim.run_until(t, |_| false);
    assert_eq!(
        sim.peers[1].data.last().unwrap().1,
        b"after failover from A"
    );
    assert_eq!(
        sim.peers[0].data.last().unwrap().1,
        b"after failover from B"
    );
    let t = sim.elapsed() + Duration::from_secs(60);
    sim.run_until(t, |_| false);
    assert!(sim.both(ConnectionState::Completed));
}

/// Whether `t` is a TURN Refresh with LIFETIME 0 (a deallocation, RFC 8656 §7.2).
fn is_dealloc(t: &Transmit) -> bool {
    stun_proto::Message::parse(&t.payload).is_ok_and(|m| {
        m.method() == stun_proto::Method::REFRESH
            && m.get::<stun_proto::attribute::Lifetime>()
                .and_then(Result::ok)
                .is_some_and(|l| l.0 == 0)
    })
}

#[test]
fn a_removed_stream_releases_its_turn_allocation_and_then_sends_nothing() {
    let turn = addr(TURN_SERVER);
    let mut sim = relay_world(config(true), config(false), 193, false);
    assert!(sim.run_until(Duration::from_secs(10), |s| {
        s.both(ConnectionState::Completed)
    }));
    sim.run_until(Duration::from_secs(10), |_| false);
    assert_eq!(sim.elapsed(), Duration::from_secs(10));
    // At 10 s the application removes the stream on both sides (its m-line went away).
    let now = sim.now;
    for p in &mut sim.peers {
        assert_eq!(p.agent.handle_remove_stream(now, p.stream), Ok(()));
    }
    let before = sim.log.len();
    sim.drain();
    sim.run_until(Duration::from_secs(70), |_| false);
    let after: Vec<_> = sim.log[before..]
        .iter()
        .map(|(t, from, d)| (*t, *from, d.source, d.destination, is_dealloc(d)))
        .collect();
    let ms = Duration::from_millis;
    let (host, server_side) = (addr("192.0.2.1:5000"), turn);
    // A's allocation is released at once, the server answers 10 ms later; then silence:
    // no check, consent, keepalive or refresh from either side for a minute.
    assert_eq!(
        after,
        [
            (ms(10_000), 0, host, server_side, true),
            (ms(10_010), 9, server_side, host, false),
        ]
    );
    for p in &sim.peers {
        assert_eq!(p.agent.poll_timeout(), None, "{:?}", p.agent.next_timer());
        // No component left anywhere: the W3C state is back to New.
        assert_eq!(p.agent.state(), ConnectionState::New);
        assert!(
            p.events
                .iter()
                .any(|(t, e)| *t == now && *e == Event::StreamRemoved { stream: p.stream })
        );
    }
    let (now, s) = (sim.now, sim.peers[0].stream);
    assert_eq!(
        sim.peers[0].agent.handle_send(now, s, 1, b"x"),
        Err(SendError::Agent(ice_proto::AgentError::StreamRemoved))
    );
}

#[test]
fn the_controlled_side_losing_its_interface_fails_over_within_one_consent_interval() {
    let a = Peer::new(config(true), 503, &["192.0.2.1:5000"]);
    let b = Peer::new(
        config(false),
        504,
        &["198.51.100.2:6000", "198.51.100.3:6000"],
    );
    let mut sim = Sim::new(a, b, 503);
    sim.start();
    assert!(sim.run_until(Duration::from_secs(5), |s| {
        s.both(ConnectionState::Completed)
    }));
    let (a_host, wifi, wired) = (
        addr("192.0.2.1:5000"),
        addr("198.51.100.2:6000"),
        addr("198.51.100.3:6000"),
    );
    assert_eq!(sim.selected(1), Some((wifi, a_host)));
    sim.run_until(Duration::from_secs(10), |_| false);
    // At 10 s B's (the controlled side's) first interface goes away.
    sim.peers[1].addrs.retain(|a| *a != wifi);
    let (now, s) = (sim.now, sim.peers[1].stream);
    assert_eq!(
        sim.peers[1].agent.handle_base_removed(now, s, 1, wifi),
        Ok(true)
    );
    let before = sim.log.len();
    sim.drain();
    assert!(sim.run_until(Duration::from_secs(15), |s| {
        s.selected(0) == Some((a_host, wired))
    }));
    // B's pair on its second interface was valid (B checked it at 50 ms): B selects it at
    // once and sends a consent check on it at 10 s. A gets it at 10.01 s on a pair below
    // its selected one and probes that pair with consent checks at 10.01, 10.51 and
    // 11.01 s (meanwhile checking the new pair: valid); none is answered, so at 11.51 s A
    // fails over to the new pair and nominates it. Well within one consent interval (5 s).
    let ms = Duration::from_millis;
    assert_eq!(
        selections_of(&sim, 1),
        [(ms(60), wifi, a_host), (ms(10_000), wired, a_host)]
    );
    assert_eq!(
        selections_of(&sim, 0),
        [(ms(70), a_host, wifi), (ms(11_510), a_host, wired)]
    );
    let probes: Vec<Duration> = sim.log[before..]
        .iter()
        .filter(|(_, from, t)| *from == 0 && t.destination == wifi)
        .map(|(t, _, _)| *t)
        .collect();
    assert_eq!(probes, [ms(10_010), ms(10_510), ms(11_010)]);
    sim.send_data(0, b"after failover from A").unwrap();
    sim.send_data(1, b"after failover from B").unwrap();
    let t = sim.elapsed() + Duration::from_millis(50);
    sim.run_until(t, |_| false);
    assert_eq!(
        sim.peers[1].data.last().unwrap(),
        &(sim.start + ms(11_520), b"after failover from A".to_vec())
    );
    assert_eq!(
        sim.peers[0].data.last().unwrap(),
        &(sim.start + ms(11_520), b"after failover from B".to_vec())
    );
    // B's nomination arrives and the call stays up, on the new pair, for a minute more.
    let t = sim.elapsed() + Duration::from_secs(60);
    sim.run_until(t, |_| false);
    assert!(sim.both(ConnectionState::Completed));
    assert_eq!(sim.selected(0), Some((a_host, wired)));
    assert_eq!(sim.selected(1), Some((wired, a_host)));
    assert_eq!(selections_of(&sim, 0).len(), 2);
    assert_eq!(selections_of(&sim, 1).len(), 2);
}

#[test]
fn a_late_check_on_a_lower_pair_does_not_move_a_working_call() {
    // B's check on its second interface is blocked until 3 s: its retransmission at 3.55 s
    // reaches A long after selection, on a pair below A's selected one. A probes its
    // selected pair, which answers: A stays (and B too).
    let a = Peer::new(config(true), 503, &["192.0.2.1:5000"]);
    let b = Peer::new(
        config(false),
        504,
        &["198.51.100.2:6000", "198.51.100.3:6000"],
    );
    let mut sim = Sim::new(a, b, 503);
    let (a_host, wifi, wired) = (
        addr("192.0.2.1:5000"),
        addr("198.51.100.2:6000"),
        addr("198.51.100.3:6000"),
    );
    sim.blocked = vec![wired];
    sim.start();
    sim.run_until(Duration::from_secs(3), |_| false);
    sim.blocked.clear();
    let before = sim.log.len();
    sim.run_until(Duration::from_secs(60), |_| false);
    let ms = Duration::from_millis;
    let late: Vec<Duration> = sim.log[before..]
        .iter()
        .filter(|(_, from, t)| *from == 1 && t.source == wired)
        .map(|(t, _, _)| *t)
        .take(1)
        .collect();
    assert_eq!(late, [ms(3_550)]);
    let probe: Vec<Duration> = sim.log[before..]
        .iter()
        .filter(|(t, from, d)| *from == 0 && d.destination == wifi && *t < ms(4_000))
        .map(|(t, _, _)| *t)
        .collect();
    assert_eq!(probe, [ms(3_560)], "one probe, answered");
    assert_eq!(selections_of(&sim, 0), [(ms(70), a_host, wifi)]);
    assert_eq!(selections_of(&sim, 1), [(ms(60), wifi, a_host)]);
    assert!(sim.both(ConnectionState::Completed));
}

#[test]
fn a_pair_abandoned_by_a_lost_probe_comes_back_by_renomination() {
    // As above, but A's selected path is cut from 3 s to 5 s: the probe the late check
    // starts at 3.56 s goes unanswered (3.56, 4.06, 4.56 s), so at 5.06 s A fails over to
    // the lower pair and nominates it. The abandoned pair is checked again at 5.08 s, answers
    // now that the path is back, and re-nomination returns A to it at 5.18 s. B, nominated
    // lower at 5.07 s, probed its selected pair, got an answer and never left it.
    let a = Peer::new(config(true), 503, &["192.0.2.1:5000"]);
    let b = Peer::new(
        config(false),
        504,
        &["198.51.100.2:6000", "198.51.100.3:6000"],
    );
    let mut sim = Sim::new(a, b, 503);
    let (a_host, wifi, wired) = (
        addr("192.0.2.1:5000"),
        addr("198.51.100.2:6000"),
        addr("198.51.100.3:6000"),
    );
    sim.blocked = vec![wired];
    sim.start();
    sim.run_until(Duration::from_secs(3), |_| false);
    sim.blocked = vec![wifi];
    let before = sim.log.len();
    sim.run_until(Duration::from_secs(5), |_| false);
    sim.blocked.clear();
    sim.run_until(Duration::from_secs(60), |_| false);
    let ms = Duration::from_millis;
    let to_wifi: Vec<Duration> = sim.log[before..]
        .iter()
        .filter(|(t, from, d)| *from == 0 && d.destination == wifi && *t < ms(5_100))
        .map(|(t, _, _)| *t)
        .collect();
    assert_eq!(to_wifi, [ms(3_560), ms(4_060), ms(4_560), ms(5_080)]);
    assert_eq!(
        selections_of(&sim, 0),
        [
            (ms(70), a_host, wifi),
            (ms(5_060), a_host, wired),
            (ms(5_180), a_host, wifi)
        ]
    );
    assert_eq!(selections_of(&sim, 1), [(ms(60), wifi, a_host)]);
    assert_eq!(sim.selected(0), Some((a_host, wifi)));
    assert!(sim.both(ConnectionState::Completed));
}
