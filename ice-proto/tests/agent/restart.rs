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
    // B's new candidates reached A at 2.00 s, before B's credentials (RFC 8838 §8: the
    // pairs wait); A checks from 2.05 s; B selects at 2.11 s, A at 2.12 s.
    assert_eq!(selected_at(1), Some(ms(2_110)));
    assert_eq!(selected_at(0), Some(ms(2_120)));
    let (a_local, a_remote) = sim.selected(0).unwrap();
    assert_eq!(sim.selected(1), Some((a_remote, a_local)));
}
