//! TURN scenarios: our clients and our server in memory on a virtual clock, driven from
//! deadline to deadline (each machine asked for its own), for hours of virtual time, with
//! loss, many clients, and two clients relaying to each other.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use stun_proto::turn::client::{Handled, RequestFailure, TurnClient, TurnClientConfig, TurnEvent};
use stun_proto::turn::server::{
    self, FiveTuple, PeerClass, ServerEvent, TurnServer, TurnServerConfig,
};
use stun_proto::{Message, Method, TransportProtocol};

const LISTEN: &str = "192.0.2.1:3478";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// One server and its clients, connected by a link that may drop datagrams.
struct World {
    now: Instant,
    server: TurnServer<ChaCha20Rng>,
    clients: Vec<TurnClient<ChaCha20Rng>>,
    events: Vec<Vec<TurnEvent>>,
    server_events: Vec<ServerEvent>,
    /// Data each client received: (peer, bytes).
    received: Vec<Vec<(SocketAddr, Vec<u8>)>>,
    /// Drops the n-th datagram on the client–server link when this says so.
    lose: fn(u64) -> bool,
    sent: u64,
    /// Requests each client sent, by method.
    requests: Vec<Vec<Method>>,
    /// FNV-1a over every datagram carried, in order: two runs with the same seeds must
    /// agree bit for bit (DESIGN.md).
    digest: u64,
}

impl World {
    fn new(pool: usize, clients: usize, configure: impl Fn(&mut TurnServerConfig)) -> Self {
        #[allow(clippy::disallowed_methods)] // one real instant to hang virtual time on
        let now = Instant::now();
        let relays = (0..pool)
            .map(|i| SocketAddr::from(([192, 0, 2, 1], 49152 + i as u16)))
            .collect();
        let mut config = TurnServerConfig::new("example.org", relays);
        // The clients talk to each other relay to relay, through this one server.
        config
            .peer_filter
            .allowed_classes
            .insert(PeerClass::OwnRelay);
        configure(&mut config);
        let mut server = TurnServer::new(now, config, ChaCha20Rng::seed_from_u64(1));
        server.add_user("alice", "secret").unwrap();
        let clients: Vec<_> = (0..clients)
            .map(|i| {
                let local = SocketAddr::from(([198, 51, 100, 7], 40000 + i as u16));
                let config = TurnClientConfig::new(
                    local,
                    addr(LISTEN),
                    TransportProtocol::Udp,
                    "alice",
                    "secret",
                );
                TurnClient::new(config, ChaCha20Rng::seed_from_u64(100 + i as u64))
            })
            .collect();
        let n = clients.len();
        Self {
            now,
            server,
            clients,
            events: vec![Vec::new(); n],
            server_events: Vec::new(),
            received: vec![Vec::new(); n],
            lose: |_| false,
            sent: 0,
            requests: vec![Vec::new(); n],
            digest: 0xcbf2_9ce4_8422_2325,
        }
    }

    fn tuple(&self, i: usize) -> FiveTuple {
        FiveTuple {
            transport: TransportProtocol::Udp,
            client: self.clients[i].local(),
            server: addr(LISTEN),
        }
    }

    /// Moves every queued datagram to its destination, at the current instant, until the
    /// machines have nothing more to say.
    fn settle(&mut self) {
        let mut queue: VecDeque<(usize, bool, Vec<u8>)> = VecDeque::new();
        loop {
            for i in 0..self.clients.len() {
                while let Some(t) = self.clients[i].poll_transmit() {
                    if let Ok(m) = Message::parse(&t.payload) {
                        if m.class() == stun_proto::Class::Request {
                            self.requests[i].push(m.method());
                        }
                    }
                    queue.push_back((i, true, t.payload.to_vec()));
                }
                while let Some(e) = self.clients[i].poll_event() {
                    self.events[i].push(e);
                }
            }
            while let Some(t) = self.server.poll_transmit() {
                let i = self.client_at(t.destination);
                queue.push_back((i, false, t.payload.to_vec()));
            }
            while let Some(e) = self.server.poll_event() {
                self.server_events.push(e);
            }
            let Some((i, to_server, bytes)) = queue.pop_front() else {
                return;
            };
            self.sent += 1;
            for byte in &bytes {
                self.digest = (self.digest ^ u64::from(*byte)).wrapping_mul(0x100_0000_01b3);
            }
            if (self.lose)(self.sent) {
                continue;
            }
            if to_server {
                let tuple = self.tuple(i);
                if let server::Handled::Relay(t) =
                    self.server.handle_client_datagram(self.now, tuple, &bytes)
                {
                    // Peers are other clients' relayed addresses: loop through the server.
                    let mut out = vec![0u8; t.payload.len() + 64];
                    let (relay, peer, data) = (t.destination, t.source, t.payload.to_vec());
                    if let server::Handled::Relay(back) = self
                        .server
                        .handle_peer_datagram_into(self.now, relay, peer, &data, &mut out)
                    {
                        let j = self.client_at(back.destination);
                        queue.push_back((j, false, back.payload.to_vec()));
                    }
                }
            } else {
                let now = self.now;
                let c = &mut self.clients[i];
                match c.handle_datagram(now, c.transport(), addr(LISTEN), c.local(), &bytes) {
                    Handled::Data { peer, data, .. } => {
                        self.received[i].push((peer, data.to_vec()))
                    }
                    Handled::Consumed | Handled::Dropped(_) => {}
                    other => panic!("client {i}: {other:?}"),
                }
            }
        }
    }

    fn client_at(&self, address: SocketAddr) -> usize {
        self.clients
            .iter()
            .position(|c| c.local() == address)
            .expect("a datagram to a known client")
    }

    /// The earliest deadline of any machine.
    fn next_deadline(&self) -> Option<Instant> {
        let clients = self.clients.iter().filter_map(TurnClient::poll_timeout);
        clients.chain(self.server.poll_timeout()).min()
    }

    /// Runs every deadline up to `until` (inclusive), then stands at `until`.
    fn run_until(&mut self, until: Instant) {
        self.settle();
        while let Some(at) = self.next_deadline().filter(|at| *at <= until) {
            self.now = at;
            for c in &mut self.clients {
                if c.poll_timeout().is_some_and(|t| t <= at) {
                    c.handle_timeout(at);
                }
            }
            if self.server.poll_timeout().is_some_and(|t| t <= at) {
                self.server.handle_timeout(at);
            }
            self.settle();
        }
        self.now = until;
    }

    fn allocate_all(&mut self) {
        for c in &mut self.clients {
            c.handle_allocate(self.now).unwrap();
        }
        self.settle();
    }

    fn relayed(&self, i: usize) -> SocketAddr {
        self.clients[i].allocation().expect("allocated").relayed
    }
}

fn expired(events: &[TurnEvent]) -> bool {
    events.iter().any(|e| {
        matches!(
            e,
            TurnEvent::Expired
                | TurnEvent::PermissionExpired { .. }
                | TurnEvent::ChannelExpired { .. }
        )
    })
}

#[test]
fn two_clients_relay_to_each_other_for_two_hours() {
    // Nonces that outlive the test, so that every request below is sent once (the lossy
    // test runs with the default 10-minute nonces and their 438s).
    let mut w = World::new(4, 2, |c| {
        c.long_term.nonce_lifetime = Duration::from_secs(4 * 3600)
    });
    let start = w.now;
    w.allocate_all();
    let (a, b) = (w.relayed(0), w.relayed(1));
    let now = w.now;
    w.clients[0].handle_create_permission(now, b.ip()).unwrap();
    w.clients[1].handle_create_permission(now, a.ip()).unwrap();
    w.clients[0].handle_bind_channel(now, b).unwrap();
    w.settle();
    // Every 10 s each side sends to the other for two hours: A over its channel, B by Send
    // indications. Nothing may lapse in between.
    let end = start + Duration::from_secs(7200);
    let mut t = start;
    let mut sent = 0;
    while t < end {
        t += Duration::from_secs(10);
        w.run_until(t);
        w.clients[0].handle_send(t, b, b"from A").unwrap();
        w.clients[1].handle_send(t, a, b"from B").unwrap();
        sent += 1;
        w.settle();
    }
    assert!(
        !expired(&w.events[0]) && !expired(&w.events[1]),
        "{:?}",
        w.events
    );
    assert_eq!(w.received[1].len(), sent, "B got everything A sent");
    assert_eq!(w.received[0].len(), sent, "A got everything B sent");
    assert!(
        w.received[1]
            .iter()
            .all(|(peer, data)| *peer == a && data == b"from A")
    );
    assert!(
        w.received[0]
            .iter()
            .all(|(peer, data)| *peer == b && data == b"from B")
    );
    // Refreshes at 540 s intervals: 13 in 7200 s; permissions every 240 s: 30.
    let count = |i: usize, m: Method| w.requests[i].iter().filter(|r| **r == m).count();
    assert_eq!(count(1, Method::REFRESH), 13);
    assert_eq!(count(1, Method::CREATE_PERMISSION), 1 + 30);
    assert_eq!(count(0, Method::CHANNEL_BIND), 1 + 13);
    assert_eq!(w.server.allocation_count(), 2);
    // Closing both releases everything.
    for c in &mut w.clients {
        c.handle_close(end);
    }
    w.settle();
    assert_eq!(w.server.allocation_count(), 0);
    assert_eq!(w.server.free_relay_addresses(), 4);
}

#[test]
fn allocations_come_up_and_stay_up_over_a_lossy_link() {
    let mut w = World::new(4, 2, |_| {});
    // Every third datagram on the client–server link is lost, both ways.
    w.lose = |n| n % 3 == 0;
    let start = w.now;
    w.allocate_all();
    w.run_until(start + Duration::from_secs(60));
    assert!(
        w.clients.iter().all(|c| c.allocation().is_some()),
        "{:?}",
        w.events
    );
    w.run_until(start + Duration::from_secs(3 * 3600));
    for (i, events) in w.events.iter().enumerate() {
        assert!(!expired(events), "client {i}: {events:?}");
        // 3 h / 540 s: 19 refreshes at least, each through losses and, every other time,
        // a 438 for the 10-minute nonce. (Before refreshing requests had their starting RTO
        // capped, the RTO cache backed off to 64 s here and the allocation expired.)
        let refreshed = events
            .iter()
            .filter(|e| matches!(e, TurnEvent::Refreshed { .. }))
            .count();
        assert!(refreshed >= 19, "client {i}: {refreshed} refreshes");
    }
    assert_eq!(w.server.allocation_count(), 2);
}

#[test]
fn same_seeds_same_datagrams_bit_for_bit() {
    let run = || {
        let mut w = World::new(4, 2, |_| {});
        w.lose = |n| n % 5 == 0;
        let start = w.now;
        w.allocate_all();
        w.run_until(start + Duration::from_secs(10));
        let (a, b) = (w.relayed(0), w.relayed(1));
        let now = w.now;
        w.clients[0].handle_bind_channel(now, b).unwrap();
        w.clients[1].handle_create_permission(now, a.ip()).unwrap();
        w.run_until(start + Duration::from_secs(30));
        for i in 0..100u64 {
            let t = start + Duration::from_secs(30 + 20 * i);
            w.run_until(t);
            w.clients[0].handle_send(t, b, &i.to_be_bytes()).unwrap();
            w.clients[1].handle_send(t, a, &i.to_le_bytes()).unwrap();
            w.settle();
        }
        (w.digest, w.sent, w.received, w.server_events)
    };
    let (first, second) = (run(), run());
    assert!(first.1 > 400, "{} datagrams", first.1);
    // Every fifth datagram is lost, data crosses two legs: about 64 of 100 arrive.
    assert!(
        first.2.iter().all(|r| r.len() >= 40),
        "{:?}",
        first.2.iter().map(Vec::len)
    );
    assert_eq!(first, second);
}

#[test]
fn a_full_pool_answers_508_and_frees_addresses_as_allocations_end() {
    let mut w = World::new(3, 5, |_| {});
    let start = w.now;
    w.allocate_all();
    let allocated = w
        .clients
        .iter()
        .filter(|c| c.allocation().is_some())
        .count();
    assert_eq!(allocated, 3);
    let failed: Vec<_> = w
        .events
        .iter()
        .flatten()
        .filter_map(|e| match e {
            TurnEvent::AllocationFailed(RequestFailure::ErrorResponse { code, .. }) => Some(*code),
            _ => None,
        })
        .collect();
    assert_eq!(failed, vec![508, 508]);
    // The allocated clients vanish without a word: the server expires them at exactly 600 s.
    w.clients.truncate(0);
    w.run_until(start + Duration::from_secs(600) - Duration::from_millis(1));
    assert_eq!(w.server.allocation_count(), 3);
    w.run_until(start + Duration::from_secs(600));
    assert_eq!(w.server.allocation_count(), 0);
    assert_eq!(w.server.free_relay_addresses(), 3);
    let expired = w
        .server_events
        .iter()
        .filter(|e| matches!(e, ServerEvent::AllocationDeleted { .. }))
        .count();
    assert_eq!(expired, 3);
}

#[test]
fn a_thousand_allocations_expire_on_time_and_the_server_forgets_them() {
    let mut w = World::new(1000, 1000, |c| c.max_allocations_per_user = 1000);
    let start = w.now;
    w.allocate_all();
    assert_eq!(w.server.allocation_count(), 1000);
    assert_eq!(
        w.server.poll_timeout(),
        Some(start + Duration::from_secs(600))
    );
    w.clients.truncate(0);
    w.run_until(start + Duration::from_secs(600));
    assert_eq!(w.server.allocation_count(), 0);
    assert_eq!(w.server.poll_timeout(), None);
}

proptest::proptest! {
    /// Any sequence of STUN and ChannelData messages, cut anywhere, comes out of the TCP
    /// framer as the same messages (ChannelData without its padding, RFC 8656 §12.5).
    #[test]
    fn the_stream_framer_recovers_any_message_sequence_cut_anywhere(
        messages in proptest::collection::vec(
            (proptest::bool::ANY, 0x4000u16..=0x7FFF, proptest::collection::vec(proptest::num::u8::ANY, 0..300)),
            0..20,
        ),
        cuts in proptest::collection::vec(1usize..64, 1..50),
    ) {
        use stun_proto::turn::{Frame, StreamFramer, encode_channel_data};
        let mut stream = Vec::new();
        let mut expected = Vec::new();
        for (i, (stun, channel, data)) in messages.iter().enumerate() {
            if *stun {
                let mut b = stun_proto::MessageBuilder::new_bytes(
                    stun_proto::MessageType::BINDING_INDICATION,
                    [i as u8; 12].into(),
                );
                b.add(&stun_proto::attribute::Data(data)).unwrap();
                let bytes = b.into_bytes();
                stream.extend_from_slice(&bytes);
                expected.push((true, bytes.to_vec()));
            } else {
                let mut buf = vec![0u8; data.len() + 8];
                let n = encode_channel_data(*channel, data, true, &mut buf).unwrap();
                stream.extend_from_slice(&buf[..n]);
                let mut unpadded = buf[..4].to_vec();
                unpadded.extend_from_slice(data);
                expected.push((false, unpadded));
            }
        }
        let mut framer = StreamFramer::default();
        let mut got = Vec::new();
        let mut rest = &stream[..];
        let mut cut = cuts.iter().cycle();
        while !rest.is_empty() {
            let n = (*cut.next().unwrap()).min(rest.len());
            framer.push(&rest[..n]).unwrap();
            rest = &rest[n..];
            while let Some(frame) = framer.next_frame().unwrap() {
                got.push(match frame {
                    Frame::Stun(b) => (true, b.to_vec()),
                    Frame::ChannelData(b) => (false, b.to_vec()),
                    _ => unreachable!("only two kinds of frame"),
                });
            }
        }
        proptest::prop_assert_eq!(got, expected);
        proptest::prop_assert_eq!(framer.buffered(), 0);
    }
}

/// An RFC 6062 TCP allocation between our client and our server, both machines driven by
/// hand: the "caller" below stands in for the sockets (the control connection, each data
/// connection, and the server's connections to peers).
mod tcp_allocations {
    use super::*;
    use stun_proto::attribute::ConnectionId;
    use stun_proto::transaction::TransportFailure;
    use stun_proto::turn::client::{RelayTransport, SendError, TurnClientError};

    const CONTROL: &str = "198.51.100.7:40000";

    struct Pair {
        now: Instant,
        server: TurnServer<ChaCha20Rng>,
        client: TurnClient<ChaCha20Rng>,
        server_events: Vec<ServerEvent>,
    }

    impl Pair {
        fn new() -> Self {
            #[allow(clippy::disallowed_methods)] // one real instant to hang virtual time on
            let now = Instant::now();
            let relays = vec![addr("192.0.2.1:49152")];
            let mut server = TurnServer::new(
                now,
                TurnServerConfig::new("example.org", relays),
                ChaCha20Rng::seed_from_u64(1),
            );
            server.add_user("alice", "secret").unwrap();
            let mut config = TurnClientConfig::new(
                addr(CONTROL),
                addr(LISTEN),
                TransportProtocol::Tcp,
                "alice",
                "secret",
            );
            config.relay_transport = RelayTransport::Tcp;
            let client = TurnClient::new(config, ChaCha20Rng::seed_from_u64(2));
            Self {
                now,
                server,
                client,
                server_events: Vec::new(),
            }
        }

        /// Carries every transmit both ways (each over the connection of its local
        /// address) until both machines are quiet; returns the client's events.
        fn run(&mut self) -> Vec<TurnEvent> {
            let mut events = Vec::new();
            loop {
                let mut moved = false;
                while let Some(t) = self.client.poll_transmit() {
                    moved = true;
                    let tuple = FiveTuple {
                        transport: TransportProtocol::Tcp,
                        client: t.source,
                        server: t.destination,
                    };
                    self.server
                        .handle_client_datagram(self.now, tuple, &t.payload);
                }
                while let Some(t) = self.server.poll_transmit() {
                    moved = true;
                    let handled = self.client.handle_datagram(
                        self.now,
                        t.transport,
                        t.source,
                        t.destination,
                        &t.payload,
                    );
                    assert_eq!(handled, Handled::Consumed);
                }
                self.server_events
                    .extend(std::iter::from_fn(|| self.server.poll_event()));
                events.extend(std::iter::from_fn(|| self.client.poll_event()));
                if !moved {
                    return events;
                }
            }
        }

        /// The connection the server asks its caller to open, taken from its events.
        fn connect_to_peer(&mut self) -> ConnectionId {
            let position = self
                .server_events
                .iter()
                .position(|e| matches!(e, ServerEvent::ConnectToPeer { .. }))
                .expect("ConnectToPeer");
            match self.server_events.remove(position) {
                ServerEvent::ConnectToPeer { connection, .. } => connection,
                _ => unreachable!(),
            }
        }
    }

    fn failure_code(failure: &RequestFailure) -> u16 {
        match failure {
            RequestFailure::ErrorResponse { code, .. } => *code,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn connect_connection_attempt_and_connection_bind_between_our_client_and_server() {
        let mut pair = Pair::new();
        let now = pair.now;
        pair.client.handle_allocate(now).unwrap();
        let events = pair.run();
        let Some(TurnEvent::Allocated(allocation)) = events.first() else {
            panic!("{events:?}");
        };
        let relayed = allocation.relayed;
        assert!(
            pair.server_events
                .contains(&ServerEvent::AcceptPeerConnections {
                    id: pair
                        .server
                        .allocation_by_tuple(&FiveTuple {
                            transport: TransportProtocol::Tcp,
                            client: addr(CONTROL),
                            server: addr(LISTEN),
                        })
                        .unwrap(),
                    relayed
                })
        );
        // A TCP allocation takes no channels and sends no datagrams.
        let peer = addr("203.0.113.5:7000");
        assert_eq!(
            pair.client.handle_bind_channel(now, peer),
            Err(TurnClientError::TcpAllocation)
        );
        assert_eq!(
            pair.client.handle_send(now, peer, b"x"),
            Err(SendError::TcpAllocation)
        );

        // Connect (§4.3): the server's caller connects, the client learns the id.
        pair.client.handle_connect(now, peer).unwrap();
        assert!(pair.run().is_empty(), "the answer waits for the connection");
        let connection = pair.connect_to_peer();
        assert!(pair.server.handle_peer_connected(now, connection));
        assert_eq!(pair.run(), [TurnEvent::PeerConnected { peer, connection }]);
        // A second Connect to that peer: 446.
        pair.client.handle_connect(now, peer).unwrap();
        match pair.run().as_slice() {
            [TurnEvent::ConnectFailed { peer: p, failure }] => {
                assert_eq!((*p, failure_code(failure)), (peer, 446));
            }
            other => panic!("{other:?}"),
        }
        // ConnectionBind over a new data connection (§4.4).
        let data = addr("198.51.100.7:40001");
        pair.client
            .handle_connection_bind(now, connection, data)
            .unwrap();
        assert_eq!(
            pair.run(),
            [TurnEvent::ConnectionBound {
                connection,
                local: data
            }]
        );
        let data_tuple = FiveTuple {
            transport: TransportProtocol::Tcp,
            client: data,
            server: addr(LISTEN),
        };
        assert_eq!(pair.server.bound_connection(&data_tuple), Some(connection));
        // What the data connection carries now is raw: not the client's.
        assert!(matches!(
            pair.client
                .handle_datagram(now, TransportProtocol::Tcp, addr(LISTEN), data, b"raw"),
            Handled::NotTurn(_)
        ));

        // A peer that connects in needs a permission (§5.3), then is announced.
        let inbound = addr("203.0.113.9:5555");
        pair.client
            .handle_create_permission(now, inbound.ip())
            .unwrap();
        pair.run();
        let offered = pair
            .server
            .handle_peer_connection_accepted(now, relayed, inbound)
            .unwrap();
        assert_eq!(
            pair.run(),
            [TurnEvent::ConnectionAttempt {
                peer: inbound,
                connection: offered
            }]
        );
        let data2 = addr("198.51.100.7:40002");
        pair.client
            .handle_connection_bind(now, offered, data2)
            .unwrap();
        assert_eq!(
            pair.run(),
            [TurnEvent::ConnectionBound {
                connection: offered,
                local: data2
            }]
        );

        // The server could not connect: 447.
        let unreachable = addr("203.0.113.77:9");
        pair.client.handle_connect(now, unreachable).unwrap();
        pair.run();
        let failed = pair.connect_to_peer();
        assert!(pair.server.handle_peer_connect_failed(now, failed));
        match pair.run().as_slice() {
            [TurnEvent::ConnectFailed { peer: p, failure }] => {
                assert_eq!((*p, failure_code(failure)), (unreachable, 447));
            }
            other => panic!("{other:?}"),
        }
        // Binding a connection the server does not have: 400.
        let data3 = addr("198.51.100.7:40003");
        pair.client
            .handle_connection_bind(now, failed, data3)
            .unwrap();
        match pair.run().as_slice() {
            [
                TurnEvent::ConnectionBindFailed {
                    connection: c,
                    local,
                    failure,
                },
            ] => {
                assert_eq!((*c, *local, failure_code(failure)), (failed, data3, 400));
            }
            other => panic!("{other:?}"),
        }
        // A data connection lost before its answer fails its bind alone.
        let data4 = addr("198.51.100.7:40004");
        pair.client
            .handle_connection_bind(now, offered, data4)
            .unwrap();
        assert!(pair.client.handle_data_connection_error(
            now,
            data4,
            TransportFailure::ConnectionLost
        ));
        assert!(!pair.client.handle_data_connection_error(
            now,
            data4,
            TransportFailure::ConnectionLost
        ));
        assert_eq!(
            pair.client.poll_event(),
            Some(TurnEvent::ConnectionBindFailed {
                connection: offered,
                local: data4,
                failure: RequestFailure::Transport(TransportFailure::ConnectionLost)
            })
        );
        assert!(pair.client.allocation().is_some() && !pair.client.is_closed());
        assert_eq!(pair.client.outstanding_requests(), 0);
        assert_eq!(pair.server.peer_connection_count(), 2);
        // The control connection closes: the allocation and both connections go.
        pair.server.handle_connection_closed(
            now,
            FiveTuple {
                transport: TransportProtocol::Tcp,
                client: addr(CONTROL),
                server: addr(LISTEN),
            },
        );
        assert_eq!(pair.server.peer_connection_count(), 0);
    }

    #[test]
    fn connect_needs_a_tcp_allocation() {
        let mut config = TurnClientConfig::new(
            addr(CONTROL),
            addr(LISTEN),
            TransportProtocol::Udp,
            "alice",
            "secret",
        );
        let mut client = TurnClient::new(config.clone(), ChaCha20Rng::seed_from_u64(2));
        #[allow(clippy::disallowed_methods)] // one real instant to hang virtual time on
        let now = Instant::now();
        let peer = addr("203.0.113.5:7000");
        assert_eq!(
            client.handle_connect(now, peer),
            Err(TurnClientError::NotAllocated)
        );
        // Over UDP our server refuses a TCP allocation (RFC 6062 §5.1: 400).
        config.relay_transport = RelayTransport::Tcp;
        let mut pair = Pair::new();
        pair.client = TurnClient::new(config, ChaCha20Rng::seed_from_u64(3));
        pair.client.handle_allocate(now).unwrap();
        let mut events = Vec::new();
        for _ in 0..4 {
            while let Some(t) = pair.client.poll_transmit() {
                let tuple = FiveTuple {
                    transport: TransportProtocol::Udp,
                    client: t.source,
                    server: t.destination,
                };
                pair.server.handle_client_datagram(now, tuple, &t.payload);
            }
            while let Some(t) = pair.server.poll_transmit() {
                pair.client
                    .handle_datagram(now, t.transport, t.source, t.destination, &t.payload);
            }
            events.extend(std::iter::from_fn(|| pair.client.poll_event()));
        }
        match events.as_slice() {
            [TurnEvent::AllocationFailed(failure)] => assert_eq!(failure_code(failure), 400),
            other => panic!("{other:?}"),
        }
    }
}
