//! RFC 6062 TCP allocations: Allocate, Connect, ConnectionAttempt, ConnectionBind, their
//! error codes and the 30 s deadlines, at exact virtual times.

use super::*;
use crate::attribute::ConnectionId;

/// The control connection of the TCP tests.
fn control() -> FiveTuple {
    FiveTuple {
        transport: TransportProtocol::Tcp,
        ..tuple()
    }
}

/// A new client data connection from another port.
fn data_tuple(port: u16) -> FiveTuple {
    FiveTuple {
        transport: TransportProtocol::Tcp,
        client: SocketAddr::new(addr(CLIENT).ip(), port),
        server: addr(LISTEN),
    }
}

fn tcp(b: &mut MessageBuilder<BytesMut>) {
    b.add(&RequestedTransport::TCP).unwrap();
}

fn events(s: &mut TurnServer<TestRng>) -> Vec<ServerEvent> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

/// A server allowing the documentation peers' range is the default; a TCP allocation on the
/// control connection. Returns the nonce and the relayed address.
fn tcp_allocation(s: &mut TurnServer<TestRng>, now: Instant) -> (String, SocketAddr) {
    let nonce = nonce_from(s, now, control());
    let response = exchange(
        s,
        now,
        control(),
        &Req::new(Method::ALLOCATE, &nonce).build(tcp),
    );
    assert_eq!(code(&response), 0);
    let relayed = relayed_of(&response);
    let events = events(s);
    assert!(
        events.contains(&ServerEvent::AcceptPeerConnections {
            id: s.allocation_by_tuple(&control()).unwrap(),
            relayed
        }),
        "{events:?}"
    );
    (nonce, relayed)
}

fn connect_request(nonce: &str, id: u8, peer: Option<SocketAddr>) -> Bytes {
    let mut req = Req::new(Method::CONNECT, nonce);
    req.id = [id; 12];
    req.build(|b| {
        if let Some(peer) = peer {
            b.add(&XorPeerAddress(peer)).unwrap();
        }
    })
}

fn bind_request(nonce: &str, user: (&'static str, &'static str), cid: Option<u32>) -> Bytes {
    let mut req = Req::new(Method::CONNECTION_BIND, nonce);
    req.id = [6; 12];
    req.user = user;
    req.build(|b| {
        if let Some(cid) = cid {
            b.add(&ConnectionId(cid)).unwrap();
        }
    })
}

/// Sends a Connect to `peer`; returns the CONNECTION-ID the machine asked the caller to
/// connect for.
fn connect(s: &mut TurnServer<TestRng>, now: Instant, nonce: &str, peer: SocketAddr) -> u32 {
    let request = connect_request(nonce, 5, Some(peer));
    assert_eq!(
        s.handle_client_datagram(now, control(), &request),
        Handled::Answered
    );
    assert!(
        s.poll_transmit().is_none(),
        "the answer waits for the connection"
    );
    match events(s).as_slice() {
        [
            ServerEvent::ConnectToPeer {
                connection,
                peer: p,
                ..
            },
        ] => {
            assert_eq!(*p, peer);
            connection.0
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_tcp_allocation_needs_a_stream_and_no_udp_only_attributes() {
    let now = t0();
    let mut s = server(now);
    // Over UDP: 400 (RFC 6062 §5.1).
    let nonce = nonce(&mut s, now);
    let over_udp = exchange(
        &mut s,
        now,
        tuple(),
        &Req::new(Method::ALLOCATE, &nonce).build(tcp),
    );
    assert_eq!(code(&over_udp), 400);
    // DONT-FRAGMENT, EVEN-PORT, RESERVATION-TOKEN: 400.
    let nonce = nonce_from(&mut s, now, control());
    for attribute in 0..3 {
        let request = Req::new(Method::ALLOCATE, &nonce).build(|b| {
            tcp(b);
            match attribute {
                0 => b.add(&DontFragment).unwrap(),
                1 => b.add(&EvenPort { reserve: false }).unwrap(),
                _ => b.add(&ReservationToken([1; 8])).unwrap(),
            };
        });
        assert_eq!(code(&exchange(&mut s, now, control(), &request)), 400);
    }
    // Neither UDP nor TCP: 442.
    let sctp = Req::new(Method::ALLOCATE, &nonce).build(|b| {
        b.add(&RequestedTransport(132)).unwrap();
    });
    assert_eq!(code(&exchange(&mut s, now, control(), &sctp)), 442);
    assert_eq!(s.allocation_count(), 0);
    // A driver that opens no TCP relay sockets turns TCP allocations off: 442.
    let mut off = server_with(now, |c| c.tcp_allocations = false);
    let nonce_off = nonce_from(&mut off, now, control());
    let refused = Req::new(Method::ALLOCATE, &nonce_off).build(tcp);
    assert_eq!(code(&exchange(&mut off, now, control(), &refused)), 442);
    tcp_allocation(&mut s, now);
    assert_eq!(s.allocation_count(), 1);
}

#[test]
fn connect_then_connection_bind_relays_a_peer_connection() {
    let now = t0();
    let mut s = server(now);
    let (nonce, relayed) = tcp_allocation(&mut s, now);
    let peer = addr(PEER);
    let cid = connect(&mut s, now, &nonce, peer);
    // Another Connect to the same peer while connecting: 446.
    let again = exchange(
        &mut s,
        now,
        control(),
        &connect_request(&nonce, 7, Some(peer)),
    );
    assert_eq!(code(&again), 446);
    // Connected: the success carries the CONNECTION-ID, signed.
    let t1 = now + Duration::from_millis(20);
    assert!(s.handle_peer_connected(t1, ConnectionId(cid)));
    let success = s.poll_transmit().expect("the Connect success");
    let m = Message::parse(&success.payload).unwrap();
    assert_eq!(
        m.message_type(),
        MessageType::new(Method::CONNECT, Class::Success)
    );
    assert_eq!(m.transaction_id(), [5; 12].into());
    assert_eq!(m.get::<ConnectionId>().unwrap().unwrap(), ConnectionId(cid));
    assert!(m.verify_integrity(&key("alice", "secret")).is_ok());
    assert!(!s.handle_peer_connected(t1, ConnectionId(cid)), "once");
    // ConnectionBind on a new connection. Naming a live connection, it carries the nonce
    // of the control connection (coturn's client reuses it): its own nonce is stale there.
    let data = data_tuple(50001);
    let data_nonce = nonce_from(&mut s, t1, data);
    let own_nonce = bind_request(&data_nonce, ("alice", "secret"), Some(cid));
    assert_eq!(code(&exchange(&mut s, t1, data, &own_nonce)), 438);
    // On the control connection: 400. Unknown id: 400. Another user: 441.
    let on_control = bind_request(&nonce, ("alice", "secret"), Some(cid));
    assert_eq!(code(&exchange(&mut s, t1, control(), &on_control)), 400);
    let unknown = bind_request(&data_nonce, ("alice", "secret"), Some(cid ^ 1));
    assert_eq!(code(&exchange(&mut s, t1, data, &unknown)), 400);
    let missing = bind_request(&data_nonce, ("alice", "secret"), None);
    assert_eq!(code(&exchange(&mut s, t1, data, &missing)), 400);
    let bob = bind_request(&nonce, ("bob", "hunter2"), Some(cid));
    assert_eq!(code(&exchange(&mut s, t1, data, &bob)), 441);
    let bind = bind_request(&nonce, ("alice", "secret"), Some(cid));
    let response = exchange(&mut s, t1, data, &bind);
    assert_eq!(code(&response), 0);
    assert_eq!(
        events(&mut s),
        [ServerEvent::ConnectionBound {
            connection: ConnectionId(cid),
            data,
            peer
        }]
    );
    assert_eq!(s.bound_connection(&data), Some(ConnectionId(cid)));
    // Bound: no deadline; a second bind of the same id is 400.
    assert_eq!(s.next_timer().map(|(t, _)| t), Some(Timer::Allocation));
    let data2 = data_tuple(50002);
    let twice = bind_request(&nonce, ("alice", "secret"), Some(cid));
    assert_eq!(code(&exchange(&mut s, t1, data2, &twice)), 400);
    // The client data connection closes: the peer connection goes with it (§5.5).
    assert!(s.handle_connection_closed(t1, data));
    let id = s.allocation_by_tuple(&control()).unwrap();
    assert_eq!(
        events(&mut s),
        [ServerEvent::PeerConnectionClosed {
            connection: ConnectionId(cid),
            id,
            peer,
            data: Some(data),
            reason: PeerConnectionClose::ClientClosed
        }]
    );
    assert_eq!((s.peer_connection_count(), s.allocation_count()), (0, 1));
    let _ = relayed;
}

#[test]
fn a_failed_or_slow_connection_to_the_peer_is_447() {
    let now = t0();
    let mut s = server(now);
    let (nonce, _) = tcp_allocation(&mut s, now);
    let cid = connect(&mut s, now, &nonce, addr(PEER));
    assert!(s.handle_peer_connect_failed(now, ConnectionId(cid)));
    let answer = s.poll_transmit().unwrap();
    assert_eq!(code(&answer.payload), 447);
    assert!(matches!(
        events(&mut s).as_slice(),
        [ServerEvent::PeerConnectionClosed {
            reason: PeerConnectionClose::ConnectFailed,
            data: None,
            ..
        }]
    ));
    // No answer from the caller: 447 at exactly 30 s.
    let cid = connect(&mut s, now, &nonce, addr(PEER));
    let deadline = now + PEER_CONNECT_TIMEOUT;
    assert_eq!(s.next_timer(), Some((Timer::PeerConnection, deadline)));
    s.handle_timeout(deadline - Duration::from_millis(1));
    assert!(s.poll_transmit().is_none());
    s.handle_timeout(deadline);
    assert_eq!(code(&s.poll_transmit().unwrap().payload), 447);
    assert!(matches!(
        events(&mut s).as_slice(),
        [ServerEvent::PeerConnectionClosed {
            reason: PeerConnectionClose::ConnectTimeout,
            ..
        }]
    ));
    assert!(
        !s.handle_peer_connected(deadline, ConnectionId(cid)),
        "too late"
    );
    s.handle_timeout(deadline); // spurious: harmless
    assert_eq!(s.peer_connection_count(), 0);
}

#[test]
fn connect_error_paths() {
    let now = t0();
    let mut s = server(now);
    // On a UDP allocation: 400.
    let (udp_nonce, _) = allocate(&mut s, now);
    let mut req = Req::new(Method::CONNECT, &udp_nonce);
    req.id = [8; 12];
    let request = req.build(|b| {
        b.add(&XorPeerAddress(addr(PEER))).unwrap();
    });
    assert_eq!(code(&exchange(&mut s, now, tuple(), &request)), 400);
    let (nonce, _) = tcp_allocation(&mut s, now);
    // No XOR-PEER-ADDRESS: 400; a denied peer: 403; the other family: 443.
    assert_eq!(
        code(&exchange(
            &mut s,
            now,
            control(),
            &connect_request(&nonce, 9, None)
        )),
        400
    );
    let denied = connect_request(&nonce, 9, Some(addr("127.0.0.1:80")));
    assert_eq!(code(&exchange(&mut s, now, control(), &denied)), 403);
    let v6 = connect_request(&nonce, 9, Some(addr("[2001:db8::9]:80")));
    assert_eq!(code(&exchange(&mut s, now, control(), &v6)), 443);
    // No allocation on this connection: 437.
    let other = FiveTuple {
        client: addr("198.51.100.7:50009"),
        ..control()
    };
    let other_nonce = nonce_from(&mut s, now, other);
    let orphan = connect_request(&other_nonce, 9, Some(addr(PEER)));
    assert_eq!(code(&exchange(&mut s, now, other, &orphan)), 437);
    // A TCP allocation takes no channels.
    let mut req = Req::new(Method::CHANNEL_BIND, &nonce);
    req.id = [3; 12];
    let request = req.build(|b| {
        b.add(&ChannelNumber(0x4000)).unwrap();
        b.add(&XorPeerAddress(addr(PEER))).unwrap();
    });
    assert_eq!(code(&exchange(&mut s, now, control(), &request)), 400);
    assert_eq!(s.peer_connection_count(), 0);
}

#[test]
fn a_peer_connection_needs_a_permission_and_a_bind_within_30_s() {
    let now = t0();
    let mut s = server(now);
    let (nonce, relayed) = tcp_allocation(&mut s, now);
    let peer = addr(PEER);
    // Without a permission the caller closes it; nothing goes to the client (§5.3).
    assert_eq!(
        s.handle_peer_connection_accepted(now, relayed, peer),
        Err(PeerConnectionError::NoPermission)
    );
    assert_eq!(
        s.handle_peer_connection_accepted(now, addr("192.0.2.1:1"), peer),
        Err(PeerConnectionError::NoAllocation)
    );
    assert!(s.poll_transmit().is_none());
    let mut req = Req::new(Method::CREATE_PERMISSION, &nonce);
    req.id = [2; 12];
    let permit = req.build(|b| {
        b.add(&XorPeerAddress(peer)).unwrap();
    });
    assert_eq!(code(&exchange(&mut s, now, control(), &permit)), 0);
    events(&mut s);
    let cid = s
        .handle_peer_connection_accepted(now, relayed, peer)
        .unwrap();
    assert_eq!(
        s.handle_peer_connection_accepted(now, relayed, peer),
        Err(PeerConnectionError::AlreadyExists)
    );
    let attempt = s.poll_transmit().expect("ConnectionAttempt");
    assert_eq!(
        (attempt.source, attempt.destination),
        (control().server, control().client)
    );
    let m = Message::parse(&attempt.payload).unwrap();
    assert_eq!(
        m.message_type(),
        MessageType::new(Method::CONNECTION_ATTEMPT, Class::Indication)
    );
    assert_eq!(m.get::<ConnectionId>().unwrap().unwrap(), cid);
    assert_eq!(m.get::<XorPeerAddress>().unwrap().unwrap().0, peer);
    // No ConnectionBind: closed at exactly 30 s.
    let deadline = now + CONNECTION_BIND_TIMEOUT;
    s.handle_timeout(deadline - Duration::from_millis(1));
    assert_eq!(s.peer_connection_count(), 1);
    s.handle_timeout(deadline);
    assert!(matches!(
        events(&mut s).as_slice(),
        [ServerEvent::PeerConnectionClosed {
            reason: PeerConnectionClose::BindTimeout,
            ..
        }]
    ));
    let data = data_tuple(50003);
    let data_nonce = nonce_from(&mut s, deadline, data);
    let late = bind_request(&data_nonce, ("alice", "secret"), Some(cid.0));
    assert_eq!(code(&exchange(&mut s, deadline, data, &late)), 400);
}

#[test]
fn the_allocation_takes_its_connections_with_it() {
    let now = t0();
    let mut s = server(now);
    let (nonce, _) = tcp_allocation(&mut s, now);
    let cid = connect(&mut s, now, &nonce, addr(PEER));
    assert!(s.handle_peer_connected(now, ConnectionId(cid)));
    s.poll_transmit();
    let mut req = Req::new(Method::REFRESH, &nonce);
    req.id = [4; 12];
    let request = req.build(|b| {
        b.add(&Lifetime(0)).unwrap();
    });
    assert_eq!(code(&exchange(&mut s, now, control(), &request)), 0);
    let events = events(&mut s);
    assert!(
        events.iter().any(|e| matches!(
            e,
            ServerEvent::PeerConnectionClosed {
                reason: PeerConnectionClose::AllocationDeleted,
                ..
            }
        )),
        "{events:?}"
    );
    assert_eq!(s.peer_connection_count(), 0);
    assert_eq!(s.next_timer(), None);
}

#[test]
fn connection_ids_carry_the_configured_tag() {
    let now = t0();
    let mut s = server_with(now, |c| c.connection_tag = Some(0xA5));
    let (nonce, _) = tcp_allocation(&mut s, now);
    let cid = connect(&mut s, now, &nonce, addr(PEER));
    assert_eq!(connection_tag(ConnectionId(cid)), 0xA5);
    let bind = bind_request("n", ("alice", "secret"), Some(cid));
    assert_eq!(connection_bind_id(&bind), Some(ConnectionId(cid)));
    assert_eq!(connection_bind_id(&connect_request("n", 1, None)), None);
}

#[test]
fn very_early_and_very_late_timestamps_are_harmless() {
    for now in [very_early(), very_late()] {
        let mut s = server(now);
        let (nonce, relayed) = tcp_allocation(&mut s, now);
        let cid = connect(&mut s, now, &nonce, addr(PEER));
        // Very late, the 30 s deadline saturates to `now` itself and may already be due.
        s.handle_timeout(now);
        let _ = s.handle_peer_connected(now, ConnectionId(cid));
        let _ = s.handle_peer_connection_accepted(now, relayed, addr(PEER));
        if let Some(at) = s.poll_timeout() {
            s.handle_timeout(at);
        }
    }
}
