//! ICE restarts started by one side (RFC 8445 §9): the other detects them from the new
//! credentials.

use super::*;

#[test]
fn a_remote_restart_is_detected_from_new_credentials_9() {
    let mut sim = host_pair(601);
    sim.start();
    assert!(sim.run_until(Duration::from_secs(5), |s| {
        s.both(ConnectionState::Completed)
    }));
    sim.run_until(Duration::from_secs(2), |_| false);
    // Only A restarts; its offer carries new credentials (and its candidates trickle).
    let now = sim.now;
    let creds = |sim: &Sim, i: usize| {
        let p: &Peer = &sim.peers[i];
        p.agent
            .stream(p.stream)
            .unwrap()
            .local_credentials()
            .clone()
    };
    let b_before = creds(&sim, 1);
    let (a, s) = (&mut sim.peers[0].agent, sim.peers[0].stream);
    a.handle_restart(now, s).unwrap();
    let a_new = creds(&sim, 0);
    let (b, t) = (&mut sim.peers[1].agent, sim.peers[1].stream);
    b.handle_remote_credentials(now, t, a_new).unwrap();
    sim.drain();
    // B saw new remote credentials: it restarted too, with new credentials of its own.
    let b_new = creds(&sim, 1);
    assert_ne!(b_new, b_before);
    let remote_restarts = sim.peers[1]
        .events
        .iter()
        .filter(|(_, e)| matches!(e, Event::RemoteRestart { .. }))
        .count();
    assert_eq!(remote_restarts, 1);
    // Data still flows on the old pair meanwhile.
    sim.send_data(1, b"during the restart").unwrap();
    // B's answer reaches A 50 ms later.
    sim.run_until(Duration::from_millis(2_050), |_| false);
    let (now, a, s) = (sim.now, &mut sim.peers[0].agent, sim.peers[0].stream);
    a.handle_remote_credentials(now, s, b_new).unwrap();
    assert!(sim.run_until(Duration::from_secs(5), |s| {
        s.both(ConnectionState::Completed) && s.selections(0) == 2 && s.selections(1) == 2
    }));
    assert_eq!(sim.peers[0].data.last().unwrap().1, b"during the restart");
    // A did not restart a second time: it had no remote credentials after its own restart.
    assert!(
        !sim.peers[0]
            .events
            .iter()
            .any(|(_, e)| matches!(e, Event::RemoteRestart { .. }))
    );
    let ms = Duration::from_millis;
    let selected_at = |i: usize| {
        sim.peers[i]
            .events
            .iter()
            .filter(|(_, e)| matches!(e, Event::NewSelectedPair { .. }))
            .map(|(t, _)| *t - sim.start)
            .nth(1)
    };
    // B's new candidates reached A at 2.00 s, before B's credentials (RFC 8838 §11: the
    // pairs wait); A checks from 2.05 s; B selects at 2.11 s, A at 2.12 s.
    assert_eq!(selected_at(1), Some(ms(2_110)));
    assert_eq!(selected_at(0), Some(ms(2_120)));
    let (a_local, a_remote) = sim.selected(0).unwrap();
    assert_eq!(sim.selected(1), Some((a_remote, a_local)));
}

#[test]
fn a_restart_under_traffic_loses_no_datagram_handed_to_a_working_pair_9() {
    // A 50-packet-per-second stream each way (every 20 ms) runs from 1 s to 4 s. At 2 s A
    // moves to a new interface (make-before-break: the old socket still works) and both
    // sides restart. Every datagram `send` accepted went out on a pair that works — the old
    // one until the new one is selected, then the new one — and all arrive.
    let mut sim = host_pair(611);
    sim.start();
    assert!(sim.run_until(Duration::from_secs(1), |s| {
        s.both(ConnectionState::Completed)
    }));
    sim.run_until(Duration::from_secs(1), |_| false);
    let mut restarted = false;
    for tick in 0..150u32 {
        let at = Duration::from_secs(1) + Duration::from_millis(20) * tick;
        sim.run_until(at, |_| false);
        if !restarted && at >= Duration::from_secs(2) {
            let (old, new) = (addr("192.0.2.1:5000"), addr("192.0.2.9:5000"));
            sim.peers[0].addrs.push(new);
            let s = sim.peers[0].stream;
            let mut view = sim.peers[0].agent.stream_mut(s).unwrap();
            view.add_base(1, new).unwrap();
            assert!(view.remove_base(1, old));
            sim.restart();
            restarted = true;
        }
        for i in 0..2 {
            let payload = format!("{i}:{tick}");
            // `send` accepted every datagram (it returns an error otherwise).
            sim.send_data(i, payload.as_bytes()).unwrap();
        }
    }
    sim.run_until(Duration::from_secs(5), |_| false);
    assert!(sim.both(ConnectionState::Completed));
    assert_eq!(sim.selections(0), 2);
    assert_eq!(sim.selections(1), 2);
    // A's data left from the old interface until a new pair was valid (§12: before
    // nomination data may use the best valid pair), then from the new one — one switch,
    // after the restart and no later than the new selection.
    let selected = sim.peers[0]
        .events
        .iter()
        .filter(|(_, e)| matches!(e, Event::NewSelectedPair { .. }))
        .map(|(t, _)| *t - sim.start)
        .nth(1)
        .unwrap();
    let a_data: Vec<(Duration, SocketAddr)> = sim
        .log
        .iter()
        .filter(|(_, from, t)| *from == 0 && t.payload.starts_with(b"0:"))
        .map(|(t, _, x)| (*t, x.source))
        .collect();
    assert_eq!(a_data.len(), 150);
    let moved = a_data
        .iter()
        .position(|(_, source)| *source == addr("192.0.2.9:5000"))
        .unwrap();
    assert!(
        a_data[..moved]
            .iter()
            .all(|(_, x)| *x == addr("192.0.2.1:5000"))
    );
    assert!(
        a_data[moved..]
            .iter()
            .all(|(_, x)| *x == addr("192.0.2.9:5000"))
    );
    let ms = Duration::from_millis;
    assert_eq!(a_data[moved].0, ms(2_020));
    assert_eq!(selected, ms(2_070));
    for i in 0..2 {
        let got: Vec<String> = sim.peers[1 - i]
            .data
            .iter()
            .map(|(_, d)| String::from_utf8_lossy(d).into_owned())
            .collect();
        let want: Vec<String> = (0..150).map(|tick| format!("{i}:{tick}")).collect();
        assert_eq!(got, want, "everything peer {i} sent arrived, in order");
    }
}
