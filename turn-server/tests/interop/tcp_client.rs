//! stun-proto's TURN client with an RFC 6062 TCP allocation over real sockets, against
//! coturn's `turnserver` and against our `turn-server`: the client's control connection
//! allocates, permits 127.0.0.1, Connects to a TCP echo peer and binds a data connection
//! to it (bytes go there and back raw), then a peer connects to the relayed address, the
//! client gets the ConnectionAttempt and binds a second data connection (bytes both ways).
//! The driver below is the caller's part: sockets, framing, and routing each transmit to the
//! connection its source address names.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use stun_proto::TransportProtocol;
use stun_proto::attribute::ConnectionId;
use stun_proto::turn::StreamFramer;
use stun_proto::turn::client::{Handled, RelayTransport, TurnClient, TurnClientConfig, TurnEvent};

use super::stun_common::{self, coturn_relay, spawn};
use super::{SECRETS, Server, common, free_port, require};

/// How long one step may wait: a hang guard, not a timing check (once in four CI runs the echo
/// through coturn went quiet for over 10 s on the loaded 2-core machine, then the test failed).
const PATIENCE: Duration = Duration::from_secs(30);

/// A TCP connection to the TURN server with its framer.
struct Stream {
    stream: TcpStream,
    framer: StreamFramer,
}

impl Stream {
    fn connect(server: SocketAddr) -> Self {
        let stream = TcpStream::connect(server).expect("connect to the TURN server");
        stream
            .set_read_timeout(Some(Duration::from_millis(20)))
            .expect("read timeout");
        Self {
            stream,
            framer: StreamFramer::default(),
        }
    }

    fn local(&self) -> SocketAddr {
        self.stream.local_addr().expect("local address")
    }

    /// The frames that arrived within the read timeout.
    fn frames(&mut self) -> Vec<Vec<u8>> {
        let mut buf = [0u8; 4096];
        match self.stream.read(&mut buf) {
            Ok(0) => panic!("the TURN server closed a connection"),
            Ok(n) => self.framer.push(&buf[..n]).expect("framing"),
            Err(_) => {}
        }
        let mut frames = Vec::new();
        while let Some(frame) = self.framer.next_frame().expect("in sync") {
            frames.push(frame.bytes().to_vec());
        }
        frames
    }
}

/// The client, its control connection and its data connections while they are bound.
struct Driver {
    client: TurnClient<ChaCha20Rng>,
    server: SocketAddr,
    control: Stream,
    binding: Vec<Stream>,
    events: Vec<TurnEvent>,
}

impl Driver {
    fn new(server: SocketAddr, username: &str, password: &str) -> Self {
        let control = Stream::connect(server);
        let mut config = TurnClientConfig::new(
            control.local(),
            server,
            TransportProtocol::Tcp,
            username,
            password,
        );
        config.relay_transport = RelayTransport::Tcp;
        Self {
            client: TurnClient::new(config, ChaCha20Rng::seed_from_u64(6062)),
            server,
            control,
            binding: Vec::new(),
            events: Vec::new(),
        }
    }

    /// Drives the client until an event `wanted` picks arrives; returns what it picked.
    fn until<T>(&mut self, what: &str, wanted: impl Fn(&TurnEvent) -> Option<T>) -> T {
        let give_up = Instant::now() + PATIENCE;
        loop {
            while let Some(t) = self.client.poll_transmit() {
                let stream = if t.source == self.control.local() {
                    &mut self.control
                } else {
                    self.binding
                        .iter_mut()
                        .find(|s| s.local() == t.source)
                        .expect("a transmit from a known connection")
                };
                stream.stream.write_all(&t.payload).expect("write");
            }
            while let Some(event) = self.client.poll_event() {
                if let Some(found) = wanted(&event) {
                    self.events.push(event);
                    return found;
                }
                self.events.push(event);
            }
            assert!(
                Instant::now() < give_up,
                "{what}: gave up; events {:?}",
                self.events
            );
            let streams = std::iter::once(&mut self.control).chain(self.binding.iter_mut());
            let mut frames = Vec::new();
            for stream in streams {
                let local = stream.local();
                frames.extend(stream.frames().into_iter().map(|f| (local, f)));
            }
            for (local, frame) in frames {
                let now = Instant::now();
                let handled = self.client.handle_datagram(
                    now,
                    TransportProtocol::Tcp,
                    self.server,
                    local,
                    &frame,
                );
                assert_eq!(handled, Handled::Consumed, "from {local}");
            }
            let now = Instant::now();
            if self.client.poll_timeout().is_some_and(|t| t <= now) {
                self.client.handle_timeout(now);
            }
        }
    }

    /// Opens a data connection and binds it to `connection`; returns it raw, with what
    /// came after the ConnectionBind success.
    fn bind(&mut self, connection: ConnectionId) -> (TcpStream, Vec<u8>) {
        let data = Stream::connect(self.server);
        let local = data.local();
        self.binding.push(data);
        self.client
            .handle_connection_bind(Instant::now(), connection, local)
            .expect("ConnectionBind");
        self.until("ConnectionBind", |e| match e {
            TurnEvent::ConnectionBound { local: l, .. } if *l == local => Some(()),
            TurnEvent::ConnectionBindFailed { failure, .. } => {
                panic!("ConnectionBind failed: {failure}")
            }
            _ => None,
        });
        let index = self
            .binding
            .iter()
            .position(|s| s.local() == local)
            .expect("the data connection");
        let mut data = self.binding.swap_remove(index);
        let early = data.framer.take_buffered();
        (data.stream, early)
    }
}

/// Reads exactly `len` bytes, `early` first.
fn read_exactly(stream: &mut TcpStream, mut early: Vec<u8>, len: usize) -> Vec<u8> {
    stream
        .set_read_timeout(Some(PATIENCE))
        .expect("read timeout");
    let mut buf = [0u8; 1024];
    while early.len() < len {
        let n = stream.read(&mut buf).expect("read relayed bytes");
        assert!(n > 0, "closed after {} bytes", early.len());
        early.extend_from_slice(&buf[..n]);
    }
    early
}

/// A TCP peer that echoes what one connection sends.
fn echo_peer() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the echo peer");
    let address = listener.local_addr().expect("echo address");
    std::thread::spawn(move || {
        if let Ok((mut stream, _)) = listener.accept() {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stream.read(&mut buf) {
                if n == 0 || stream.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    });
    address
}

/// The whole RFC 6062 exchange through the TURN server at `server`; returns the driver
/// (whose control connection keeps the allocation, and so its connections, alive) and the
/// data connection bound to the echo peer, for more.
fn tcp_allocation_through(server: SocketAddr) -> (Driver, TcpStream) {
    let expiry = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    let (username, password) = common::rest_credentials(SECRETS[0], "alice", expiry);
    let mut driver = Driver::new(server, &username, &password);
    driver.client.handle_allocate(Instant::now()).unwrap();
    let relayed = driver.until("Allocate", |e| match e {
        TurnEvent::Allocated(a) => Some(a.relayed),
        TurnEvent::AllocationFailed(f) => panic!("Allocate failed: {f}"),
        _ => None,
    });
    let loopback = "127.0.0.1".parse().unwrap();
    driver
        .client
        .handle_create_permission(Instant::now(), loopback)
        .unwrap();
    driver.until("CreatePermission", |e| {
        matches!(e, TurnEvent::PermissionCreated { .. }).then_some(())
    });

    // Connect to the echo peer (§4.3), bind, and the bytes come back raw.
    let echo = echo_peer();
    driver.client.handle_connect(Instant::now(), echo).unwrap();
    let connection = driver.until("Connect", |e| match e {
        TurnEvent::PeerConnected { peer, connection } if *peer == echo => Some(*connection),
        TurnEvent::ConnectFailed { failure, .. } => panic!("Connect failed: {failure}"),
        _ => None,
    });
    let (mut data, early) = driver.bind(connection);
    let message = b"through the relay and back, as raw TCP bytes";
    data.write_all(message).unwrap();
    assert_eq!(read_exactly(&mut data, early, message.len()), message);

    // A peer connects to the relayed address (§4.4): ConnectionAttempt, bind, both ways.
    let mut peer = TcpStream::connect(relayed).expect("connect to the relayed address");
    let peer_address = peer.local_addr().unwrap();
    let offered = driver.until("ConnectionAttempt", |e| match e {
        TurnEvent::ConnectionAttempt { peer, connection } if *peer == peer_address => {
            Some(*connection)
        }
        _ => None,
    });
    let (mut inbound, early) = driver.bind(offered);
    peer.write_all(b"ping from the peer").unwrap();
    assert_eq!(read_exactly(&mut inbound, early, 18), b"ping from the peer");
    inbound.write_all(b"pong").unwrap();
    assert_eq!(read_exactly(&mut peer, Vec::new(), 4), b"pong");
    // The first connection still works.
    data.write_all(b"again").unwrap();
    assert_eq!(read_exactly(&mut data, Vec::new(), 5), b"again");
    (driver, data)
}

/// Writes `total` bytes of a known pattern on a thread while reading the echo, slowly (a
/// pause after each read): every byte comes back, in order. That is far more than the relay
/// holds in flight (256 KiB each way), and the slow reader fills the relay's queue towards
/// it, so its flow control is exercised: a side it stopped reading is read again once the
/// other drains.
fn bulk_echo(data: TcpStream, total: usize) {
    let pattern = |i: usize| (i % 251) as u8;
    let mut writer = data.try_clone().expect("clone the data connection");
    let sender = std::thread::spawn(move || {
        let chunk: Vec<u8> = (0..65_536).map(pattern).collect();
        let mut sent = 0;
        while sent < total {
            let n = chunk.len().min(total - sent);
            // The pattern's period divides nothing here: write from the right offset.
            let offset = sent % 251;
            let block: Vec<u8> = (0..n).map(|i| pattern(offset + i)).collect();
            writer.write_all(&block).expect("write bulk data");
            sent += n;
        }
    });
    let mut reader = data;
    reader
        .set_read_timeout(Some(PATIENCE))
        .expect("read timeout");
    let mut buf = vec![0u8; 65_536];
    let mut received = 0;
    while received < total {
        let n = reader.read(&mut buf).expect("read the echo");
        assert!(n > 0, "closed after {received} of {total} bytes");
        for (i, b) in buf[..n].iter().enumerate() {
            assert_eq!(*b, pattern(received + i), "byte {}", received + i);
        }
        received += n;
        std::thread::sleep(Duration::from_millis(2));
    }
    sender.join().expect("the writer");
}

/// A TCP peer that sends `total` bytes of the pattern as fast as it can, then closes.
fn burst_peer(total: usize) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the burst peer");
    let address = listener.local_addr().expect("burst address");
    std::thread::spawn(move || {
        if let Ok((mut stream, _)) = listener.accept() {
            let block: Vec<u8> = (0..total).map(|i| (i % 251) as u8).collect();
            let _ = stream.write_all(&block);
        }
    });
    address
}

/// A TCP peer that counts what it receives until the sender closes; the count comes out
/// of the channel.
fn sink_peer() -> (SocketAddr, std::sync::mpsc::Receiver<usize>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the sink peer");
    let address = listener.local_addr().expect("sink address");
    let (counted, count) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        if let Ok((mut stream, _)) = listener.accept() {
            let mut buf = [0u8; 65_536];
            let mut total = 0;
            while let Ok(n) = stream.read(&mut buf) {
                if n == 0 {
                    break;
                }
                total += n;
            }
            let _ = counted.send(total);
        }
    });
    (address, count)
}

/// Connects to `peer` and binds a data connection to it.
fn connect_and_bind(driver: &mut Driver, peer: SocketAddr) -> (TcpStream, Vec<u8>) {
    driver.client.handle_connect(Instant::now(), peer).unwrap();
    let connection = driver.until("Connect", |e| match e {
        TurnEvent::PeerConnected {
            peer: p,
            connection,
        } if *p == peer => Some(*connection),
        TurnEvent::ConnectFailed { failure, .. } => panic!("Connect failed: {failure}"),
        _ => None,
    });
    driver.bind(connection)
}

/// A side that closes right after sending a lot: everything it sent still reaches the
/// other side, then the close (RFC 6062 §5.5), both ways, through a slow reader.
fn closes_after_the_data(driver: &mut Driver) {
    const TOTAL: usize = 4 << 20;
    let (mut data, early) = connect_and_bind(driver, burst_peer(TOTAL));
    data.set_read_timeout(Some(PATIENCE)).expect("read timeout");
    let mut received = early.len();
    let mut buf = vec![0u8; 65_536];
    loop {
        let n = data.read(&mut buf).expect("read the burst");
        if n == 0 {
            break;
        }
        received += n;
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(received, TOTAL, "every byte before the peer's close");
    let (sink, count) = sink_peer();
    let (mut data, _) = connect_and_bind(driver, sink);
    let block: Vec<u8> = (0..TOTAL).map(|i| (i % 251) as u8).collect();
    data.write_all(&block).expect("write the burst");
    data.shutdown(std::net::Shutdown::Write)
        .expect("close our side");
    let counted = count
        .recv_timeout(PATIENCE)
        .expect("the sink saw the close");
    assert_eq!(counted, TOTAL, "every byte before the client's close");
}

#[test]
fn our_client_tcp_allocation_through_our_server() {
    let port = free_port(super::SPAN);
    // Connections that hold an allocation (the control connection) or a bound peer
    // connection (the data connection) outlive the unallocated timeout.
    let server = Server::start(port, 2, &["--unallocated-timeout".into(), "1".into()]);
    let (mut driver, data) = tcp_allocation_through(SocketAddr::from(([127, 0, 0, 1], port)));
    std::thread::sleep(Duration::from_millis(2_500));
    const BULK: usize = 8 << 20;
    bulk_echo(data, BULK);
    assert_eq!(server.metric("turn_tcp_unallocated_closed_total"), 0);
    closes_after_the_data(&mut driver);
    drop(driver);
    assert!(server.metric("turn_tcp_relayed_bytes_total{direction=\"to_peer\"}") > BULK as u64);
    assert!(server.metric("turn_tcp_relayed_bytes_total{direction=\"to_client\"}") > BULK as u64);
    let (clean, log) = server.terminate();
    assert!(clean, "{log}");
}

/// coturn's `turnserver` on 127.0.0.1:`port` with the first shared secret, loopback peers
/// allowed, relaying from the ports above.
fn start_coturn(turnserver: &Path, port: u16) -> stun_common::Running {
    let mut coturn = coturn_relay(turnserver, port);
    coturn
        .args(["--use-auth-secret", "--static-auth-secret", SECRETS[0]])
        .args(["--realm", "interop.test", "--fingerprint"]);
    spawn(coturn)
}

#[test]
fn our_client_tcp_allocation_through_coturn() {
    let Some(turnserver) = require("turnserver", "coturn") else {
        return;
    };
    let port = free_port(super::SPAN);
    let _coturn = start_coturn(&turnserver, port);
    let server = SocketAddr::from(([127, 0, 0, 1], port));
    let give_up = Instant::now() + PATIENCE;
    while TcpStream::connect(server).is_err() {
        assert!(Instant::now() < give_up, "coturn did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (driver, data) = tcp_allocation_through(server);
    bulk_echo(data, 1 << 20);
    drop(driver);
}
