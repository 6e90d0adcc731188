//! ICE-TCP (RFC 6544) between two agents whose only bases are TCP, over an in-memory
//! "network" that behaves as the caller's sockets do: an active candidate's connection
//! leaves from a port of its own (the peer learns it as peer-reflexive), every stream is
//! RFC 4571 framed and cut with the crate's `Framer`.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use super::*;
use crate::candidate::{CandidateType, TcpType};
use crate::tcp::Framer;

/// One direction of every connection: the framer of what arrives, keyed by (receiver's
/// local address, sender's address) as the receiver's socket sees them.
#[derive(Default)]
struct Wire {
    framers: BTreeMap<(SocketAddr, SocketAddr), Framer>,
    /// The port A's active connection to B's passive candidate leaves from.
    ephemeral: BTreeMap<(SocketAddr, SocketAddr), SocketAddr>,
}

const A_BASE: &str = "192.0.2.1:7000";
const B_BASE: &str = "192.0.2.2:7000";

fn tcp_agent(controlling: bool, seed: u64, base: &str) -> (TestAgent, StreamId) {
    agent_with(controlling, seed, |s| {
        s.add_tcp_base(1, base.parse().unwrap())
    })
}

/// Moves `x`'s candidates and transmits to `y`; whether anything moved.
fn exchange(
    now: Instant,
    wire: &mut Wire,
    (x, x_base): (&mut TestAgent, SocketAddr),
    (y, sy, y_base): (&mut TestAgent, StreamId, SocketAddr),
) -> bool {
    let mut moved = false;
    while let Some(e) = x.poll_event() {
        moved = true;
        if let Event::NewLocalCandidate { candidate, .. } = e {
            y.handle_remote_candidate(now, sy, candidate).unwrap();
        }
    }
    while let Some(t) = x.poll_transmit() {
        moved = true;
        assert_eq!(t.transport, TransportProtocol::Tcp);
        assert_eq!(t.source, x_base, "the agent sends from its TCP base");
        // Where the stream arrives from, as `y`'s socket sees it: a connection `x` accepted
        // answers from its listening address; one `x` opened leaves from its own port.
        let accepted = wire.framers.contains_key(&(x_base, t.destination));
        let from = if accepted {
            x_base
        } else {
            let next = SocketAddr::new(x_base.ip(), 50_000 + wire.ephemeral.len() as u16);
            *wire
                .ephemeral
                .entry((x_base, t.destination))
                .or_insert(next)
        };
        let framer = wire.framers.entry((y_base, from)).or_default();
        framer.push(&t.payload);
        while let Some(frame) = framer.next_frame() {
            y.handle_datagram(now, TransportProtocol::Tcp, from, y_base, &frame);
        }
        // `x`'s own view of the connection, for answers coming back on it.
        wire.framers.entry((x_base, t.destination)).or_default();
        if from != x_base {
            wire.framers.entry((x_base, from)).or_default();
        }
    }
    moved
}

#[test]
fn tcp_only_agents_connect_active_to_passive_and_carry_data() {
    let (a_base, b_base): (SocketAddr, SocketAddr) =
        (A_BASE.parse().unwrap(), B_BASE.parse().unwrap());
    let (mut a, sa) = tcp_agent(true, 1, A_BASE);
    let (mut b, sb) = tcp_agent(false, 2, B_BASE);
    let mut now = t0();
    let ca = a.stream(sa).unwrap().local_credentials().clone();
    let cb = b.stream(sb).unwrap().local_credentials().clone();
    a.handle_remote_credentials(now, sa, cb).unwrap();
    b.handle_remote_credentials(now, sb, ca).unwrap();
    a.handle_gather(now, sa).unwrap();
    b.handle_gather(now, sb).unwrap();
    // Each offers an active candidate at port 9 and a passive one at its base (§4.5).
    let offered: Vec<(u16, Option<TcpType>)> = (a.stream(sa).unwrap().local_candidates())
        .map(|c| (c.port, c.tcp_type))
        .collect();
    assert_eq!(
        offered,
        [(9, Some(TcpType::Active)), (7000, Some(TcpType::Passive))]
    );
    let mut wire = Wire::default();
    for _ in 0..200 {
        while exchange(now, &mut wire, (&mut a, a_base), (&mut b, sb, b_base))
            | exchange(now, &mut wire, (&mut b, b_base), (&mut a, sa, a_base))
        {}
        if a.state() == ConnectionState::Completed && b.state() == ConnectionState::Completed {
            break;
        }
        now = [a.poll_timeout(), b.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
            .unwrap();
        a.handle_timeout(now);
        b.handle_timeout(now);
    }
    assert_eq!(a.state(), ConnectionState::Completed);
    assert_eq!(b.state(), ConnectionState::Completed);
    // Data both ways on the selected pairs, framed for the stream.
    let t = a.handle_send(now, sa, 1, b"over tcp").unwrap();
    assert_eq!(
        (t.transport, &t.payload[..2]),
        (TransportProtocol::Tcp, &[0, 8][..])
    );
    let (destination, payload) = (t.destination, t.payload.to_vec());
    let mut framer = Framer::default();
    framer.push(&payload);
    let frame = framer.next_frame().unwrap();
    let from = wire
        .ephemeral
        .get(&(a_base, destination))
        .copied()
        .unwrap_or(a_base);
    match b.handle_datagram(now, TransportProtocol::Tcp, from, b_base, &frame) {
        Handled::Data { data, .. } => assert_eq!(data, b"over tcp"),
        other => panic!("{other:?}"),
    }
    // The selected connection: one side's active candidate to the other's passive one,
    // which knows the connecting side as a peer-reflexive active candidate at the port
    // its connection came from (RFC 6544 §7.2).
    for (agent, s) in [(&a, sa), (&b, sb)] {
        let pair = agent
            .stream(s)
            .unwrap()
            .pairs()
            .find(|p| p.nominated)
            .unwrap();
        match pair.local.tcp_type {
            Some(TcpType::Active) => assert_eq!(pair.remote.tcp_type, Some(TcpType::Passive)),
            Some(TcpType::Passive) => {
                assert_eq!(pair.remote.kind, CandidateType::PeerReflexive);
                assert_eq!(pair.remote.tcp_type, Some(TcpType::Active));
                assert!(pair.remote.port >= 50_000, "{}", pair.remote.port);
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(b.handle_send(now, sb, 1, b"back").is_ok());
}

#[test]
fn a_tcp_check_is_sent_once_and_fails_at_its_deadline() {
    let (mut a, sa) = tcp_agent(true, 3, A_BASE);
    let now = t0();
    let remote = Credentials::random(&mut ChaCha20Rng::seed_from_u64(9));
    a.handle_remote_credentials(now, sa, remote).unwrap();
    a.handle_gather(now, sa).unwrap();
    let passive: Candidate = "candidate:1 1 tcp 1518280447 192.0.2.9 7000 typ host tcptype passive"
        .parse()
        .unwrap();
    a.handle_remote_candidate(now, sa, passive).unwrap();
    // An active remote candidate forms no pair: only the peer can connect from it.
    let active: Candidate = "candidate:2 1 tcp 1518280447 192.0.2.9 9 typ host tcptype active"
        .parse()
        .unwrap();
    a.handle_remote_candidate(now, sa, active).unwrap();
    assert_eq!(a.stream(sa).unwrap().pairs().count(), 1);
    let mut sent = 0;
    let mut at = now;
    while let Some(next) = a.poll_timeout() {
        if next > now + Duration::from_secs(120) {
            break;
        }
        at = next;
        a.handle_timeout(at);
        sent += std::iter::from_fn(|| a.poll_transmit()).count();
    }
    assert_eq!(sent, 1, "one check, no retransmission over TCP");
    let pair = a.stream(sa).unwrap().pairs().next().unwrap();
    assert_eq!(pair.state, crate::PairStateKind::Failed);
    // It failed after what seven UDP sends and their last wait would have taken.
    assert!(at - now >= Duration::from_secs(10), "{:?}", at - now);
}

/// Issue 15: checks over UDP and over TCP are paced apart (`connectivity::Pacer`): a TCP
/// check that took its Ta slot does not hold back a UDP pair formed a moment later, and TCP
/// checks still leave one per Ta among themselves.
#[test]
fn tcp_and_udp_checks_are_paced_apart() {
    let udp_base: SocketAddr = "192.0.2.1:5000".parse().unwrap();
    let (mut a, s) = agent_with(true, 5, |st| {
        st.add_base(1, udp_base)?;
        st.add_tcp_base(1, A_BASE.parse().unwrap())
    });
    let now = t0();
    let ms = |n| now + Duration::from_millis(n);
    let remote = Credentials::random(&mut ChaCha20Rng::seed_from_u64(9));
    a.handle_remote_credentials(now, s, remote).unwrap();
    a.handle_gather(now, s).unwrap();
    let sent = |a: &mut TestAgent| -> Vec<(TransportProtocol, SocketAddr)> {
        std::iter::from_fn(|| a.poll_transmit())
            .map(|t| (t.transport, t.destination))
            .collect()
    };
    let passive = |foundation: u32, port: u16| -> Candidate {
        format!("candidate:{foundation} 1 tcp 1518280447 192.0.2.9 {port} typ host tcptype passive")
            .parse()
            .unwrap()
    };
    let at = |port: u16| SocketAddr::new("192.0.2.9".parse().unwrap(), port);
    a.handle_remote_candidate(now, s, passive(1, 7000)).unwrap();
    assert_eq!(sent(&mut a), [(TransportProtocol::Tcp, at(7000))]);
    let udp: Candidate = "candidate:2 1 udp 2130706431 192.0.2.9 5000 typ host"
        .parse()
        .unwrap();
    a.handle_remote_candidate(ms(10), s, udp).unwrap();
    assert_eq!(
        sent(&mut a),
        [(TransportProtocol::Udp, at(5000))],
        "the UDP check does not wait for the TCP check's slot"
    );
    a.handle_remote_candidate(ms(20), s, passive(3, 7001))
        .unwrap();
    assert_eq!(
        sent(&mut a),
        [],
        "a second TCP check waits for its lane's slot"
    );
    assert_eq!(a.poll_timeout(), Some(ms(50)));
    a.handle_timeout(ms(50));
    assert_eq!(sent(&mut a), [(TransportProtocol::Tcp, at(7001))]);
}

#[test]
fn a_tcp_candidate_without_a_usable_tcptype_is_refused() {
    let (mut a, s) = tcp_agent(true, 4, A_BASE);
    let so: Candidate = "candidate:1 1 tcp 1 192.0.2.9 7000 typ host tcptype so"
        .parse()
        .unwrap();
    assert_eq!(
        a.handle_remote_candidate(t0(), s, so),
        Err(AgentError::UnsupportedTransport(Transport::Tcp))
    );
}
