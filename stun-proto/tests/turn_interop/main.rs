//! TURN interop against coturn, started by the tests on loopback (non-default ports):
//!
//! 1. our [`TurnClient`] against coturn's `turnserver` (long-term credentials, a static user,
//!    loopback peers allowed): allocate, permission, data through a Send indication and
//!    through ChannelData to an echo peer and back, refresh, deallocate — over UDP and TCP;
//! 2. our `turn-server` example against coturn's own test clients, `turnutils_uclient` with
//!    `turnutils_peer`: allocations succeed and data is relayed;
//! 3. our client against our example over real sockets, UDP and TCP, as in 1.
//!
//! A missing binary skips the test with a message, unless `CI=true`, where it fails.

// These tests drive the sans-IO machines over real sockets and real time, and run processes.
#![allow(clippy::disallowed_methods)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[path = "../common/mod.rs"]
mod common;
use common::{Running, example, require};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use stun_proto::TransportProtocol;
use stun_proto::attribute::EvenPort;
use stun_proto::turn::StreamFramer;
use stun_proto::turn::client::{
    AllocationFamily, Handled, RequestFailure, TurnClient, TurnClientConfig, TurnEvent,
};

/// How long any one step may wait for the other side.
const PATIENCE: Duration = Duration::from_secs(15);

/// A port free for both UDP and TCP on 127.0.0.1, with the `span` ports above it free for UDP.
fn free_port(span: u16) -> u16 {
    for _ in 0..200 {
        let probe = UdpSocket::bind("127.0.0.1:0").expect("bind a probe socket");
        let port = probe.local_addr().expect("probe address").port();
        drop(probe);
        if port > u16::MAX - span - 1 {
            continue;
        }
        let udp_free = (port..=port + span).all(|p| UdpSocket::bind(("127.0.0.1", p)).is_ok());
        let tcp_free = std::net::TcpListener::bind(("127.0.0.1", port)).is_ok();
        if udp_free && tcp_free {
            return port;
        }
    }
    panic!("no free port range on loopback");
}

/// coturn as a TURN server on 127.0.0.1:`port` (UDP and TCP), user alice/secret, relaying
/// from ports `port+1..=port+40`.
fn start_turnserver(turnserver: &Path, port: u16) -> Running {
    start_turnserver_with(turnserver, port, &[])
}

/// [`start_turnserver`] with more arguments.
fn start_turnserver_with(turnserver: &Path, port: u16, extra: &[&str]) -> Running {
    let pidfile = std::env::temp_dir().join(format!("turn-interop-{port}.pid"));
    let mut coturn = common::coturn_relay(turnserver, port);
    coturn
        .args(["--lt-cred-mech", "--user", "alice:secret"])
        .args(["--realm", "example.org", "--fingerprint"])
        .args(extra)
        .arg("--pidfile")
        .arg(&pidfile);
    common::spawn(coturn)
}

/// A UDP peer that echoes every datagram to its sender, until dropped.
struct EchoPeer {
    address: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl EchoPeer {
    fn start() -> Self {
        Self::start_on("127.0.0.1:0")
    }

    fn start_on(address: &str) -> Self {
        let socket = UdpSocket::bind(address).expect("bind the echo peer");
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("read timeout");
        let address = socket.local_addr().expect("echo address");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !flag.load(Ordering::Relaxed) {
                if let Ok((n, from)) = socket.recv_from(&mut buf) {
                    let _ = socket.send_to(&buf[..n], from);
                }
            }
        });
        Self { address, stop }
    }
}

impl Drop for EchoPeer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The client's way to the server: a UDP socket, or a TCP stream with its framer.
enum Link {
    Udp(UdpSocket),
    Tcp(TcpStream, StreamFramer),
}

impl Link {
    fn connect(transport: TransportProtocol, server: SocketAddr) -> Self {
        match transport {
            TransportProtocol::Udp => Link::Udp(UdpSocket::bind("127.0.0.1:0").expect("bind")),
            _ => {
                let start = Instant::now();
                loop {
                    match TcpStream::connect(server) {
                        Ok(stream) => return Link::Tcp(stream, StreamFramer::default()),
                        Err(e) if start.elapsed() > PATIENCE => panic!("connect {server}: {e}"),
                        Err(_) => std::thread::sleep(Duration::from_millis(50)),
                    }
                }
            }
        }
    }

    fn local(&self) -> SocketAddr {
        match self {
            Link::Udp(s) => s.local_addr(),
            Link::Tcp(s, _) => s.local_addr(),
        }
        .expect("local address")
    }

    fn send(&mut self, to: SocketAddr, bytes: &[u8]) {
        match self {
            Link::Udp(s) => {
                s.send_to(bytes, to).expect("send");
            }
            Link::Tcp(s, _) => s.write_all(bytes).expect("write"),
        }
    }

    /// Waits up to `wait` for input; returns the datagrams or frames that arrived.
    fn recv(&mut self, wait: Duration) -> Vec<Vec<u8>> {
        let wait = wait.max(Duration::from_millis(1));
        let mut buf = [0u8; 4096];
        match self {
            Link::Udp(s) => {
                s.set_read_timeout(Some(wait)).expect("read timeout");
                match s.recv_from(&mut buf) {
                    Ok((n, _)) => vec![buf[..n].to_vec()],
                    Err(_) => Vec::new(),
                }
            }
            Link::Tcp(s, framer) => {
                s.set_read_timeout(Some(wait)).expect("read timeout");
                match s.read(&mut buf) {
                    Ok(0) => panic!("the server closed the TCP connection"),
                    Ok(n) => framer.push(&buf[..n]).expect("framing"),
                    Err(_) => {}
                }
                let mut frames = Vec::new();
                while let Some(frame) = framer.next_frame().expect("in sync") {
                    frames.push(frame.bytes().to_vec());
                }
                frames
            }
        }
    }
}

/// Our client over a real link, on a clock that can be moved forward (to reach refresh
/// times without waiting minutes).
struct Session {
    client: TurnClient<ChaCha20Rng>,
    link: Link,
    server: SocketAddr,
    skipped: Duration,
    /// Move the clock to the next deadline when it is more than a second away and no request
    /// is in flight.
    fast_forward: bool,
    received: Vec<(SocketAddr, Vec<u8>, Option<u16>)>,
    events: Vec<TurnEvent>,
}

impl Session {
    fn new(transport: TransportProtocol, server: SocketAddr) -> Self {
        Self::configured(transport, server, |_| {})
    }

    fn configured(
        transport: TransportProtocol,
        server: SocketAddr,
        configure: impl FnOnce(&mut TurnClientConfig),
    ) -> Self {
        let link = Link::connect(transport, server);
        let mut config = TurnClientConfig::new(link.local(), server, transport, "alice", "secret");
        configure(&mut config);
        Self {
            client: TurnClient::new(config, ChaCha20Rng::seed_from_u64(7)),
            link,
            server,
            skipped: Duration::ZERO,
            fast_forward: false,
            received: Vec::new(),
            events: Vec::new(),
        }
    }

    fn now(&self) -> Instant {
        Instant::now() + self.skipped
    }

    /// Runs the client until `done` holds, or panics after `PATIENCE`.
    fn run_until(&mut self, what: &str, mut done: impl FnMut(&Self) -> bool) {
        let give_up = Instant::now() + PATIENCE;
        loop {
            while let Some(t) = self.client.poll_transmit() {
                self.link.send(t.destination, &t.payload);
            }
            while let Some(event) = self.client.poll_event() {
                self.events.push(event);
            }
            if done(self) {
                return;
            }
            assert!(
                Instant::now() < give_up,
                "{what}: gave up; events so far {:?}",
                self.events
            );
            if self.fast_forward && self.client.outstanding_requests() == 0 {
                if let Some(t) = self.client.poll_timeout() {
                    let ahead = t.saturating_duration_since(self.now());
                    if ahead > Duration::from_secs(1) {
                        self.skipped += ahead;
                    }
                }
            }
            let wait = self
                .client
                .poll_timeout()
                .map_or(Duration::from_millis(50), |t| {
                    t.saturating_duration_since(self.now())
                })
                .min(Duration::from_millis(50));
            for frame in self.link.recv(wait) {
                let now = self.now();
                let c = &mut self.client;
                match c.handle_datagram(now, c.transport(), self.server, c.local(), &frame) {
                    Handled::Data {
                        peer,
                        data,
                        channel,
                    } => self.received.push((peer, data.to_vec(), channel)),
                    Handled::Consumed => {}
                    other => panic!("unexpected input from the server: {other:?}"),
                }
            }
            let now = self.now();
            if self.client.poll_timeout().is_some_and(|t| t <= now) {
                self.client.handle_timeout(now);
            }
        }
    }

    fn has_event(&self, f: impl Fn(&TurnEvent) -> bool) -> bool {
        self.events.iter().any(f)
    }
}

/// The whole life of an allocation on coturn, over `transport`.
fn allocation_lifecycle(transport: TransportProtocol) {
    let Some(turnserver) = require("turnserver", "coturn") else {
        return;
    };
    let port = free_port(40);
    let _server = start_turnserver(&turnserver, port);
    lifecycle(transport, port);
}

/// Our client through the whole life of an allocation on the TURN server at
/// 127.0.0.1:`port`, which relays from ports `port+1..=port+40`.
fn lifecycle(transport: TransportProtocol, port: u16) {
    let server: SocketAddr = ([127, 0, 0, 1], port).into();
    let echo = EchoPeer::start();
    let mut s = Session::new(transport, server);

    let now = s.now();
    s.client.handle_allocate(now).expect("allocate");
    s.run_until("allocate", |s| s.client.allocation().is_some());
    let allocation = *s.client.allocation().expect("allocated");
    eprintln!("{transport:?}: allocated {allocation:?}");
    assert_eq!(allocation.relayed.ip(), server.ip());
    assert!((port + 1..=port + 40).contains(&allocation.relayed.port()));
    assert_eq!(allocation.mapped, Some(s.link.local()));

    let now = s.now();
    s.client
        .handle_create_permission(now, echo.address.ip())
        .expect("permission");
    s.run_until("permission", |s| {
        s.has_event(|e| matches!(e, TurnEvent::PermissionCreated { .. }))
    });

    // Through a Send indication, back through a Data indication.
    let now = s.now();
    s.client
        .handle_send(now, echo.address, b"via an indication")
        .expect("send");
    s.run_until("echo through indications", |s| !s.received.is_empty());
    assert_eq!(
        s.received.remove(0),
        (echo.address, b"via an indication".to_vec(), None)
    );

    // Through ChannelData both ways.
    let now = s.now();
    let channel = s
        .client
        .handle_bind_channel(now, echo.address)
        .expect("bind");
    s.run_until("channel bind", |s| {
        s.has_event(|e| matches!(e, TurnEvent::ChannelBound { .. }))
    });
    let now = s.now();
    s.client
        .handle_send(now, echo.address, b"via channel data!")
        .expect("send");
    s.run_until("echo through the channel", |s| !s.received.is_empty());
    assert_eq!(
        s.received.remove(0),
        (echo.address, b"via channel data!".to_vec(), Some(channel))
    );
    assert_eq!(s.client.stats().sent_channel_data, 1);
    assert_eq!(s.client.stats().sent_indications, 1);

    // Jump from deadline to deadline: the permission is refreshed at 240 s and 480 s, the
    // allocation and the channel at 540 s, all answered by coturn.
    s.fast_forward = true;
    let start = s.now();
    s.run_until("refresh", |s| {
        s.has_event(|e| matches!(e, TurnEvent::Refreshed { .. }))
    });
    s.fast_forward = false;
    let elapsed = s.now().duration_since(start).as_secs();
    assert!(
        (539..=541).contains(&elapsed),
        "refreshed after {elapsed} s"
    );
    assert!(!s.has_event(|e| matches!(
        e,
        TurnEvent::Expired | TurnEvent::PermissionExpired { .. } | TurnEvent::ChannelExpired { .. }
    )));
    let now = s.now();
    s.client
        .handle_send(now, echo.address, b"after refresh")
        .expect("send");
    s.run_until("echo after refresh", |s| !s.received.is_empty());
    assert_eq!(s.received.remove(0).1, b"after refresh".to_vec());

    let now = s.now();
    s.client.handle_close(now);
    s.run_until("deallocate", |s| s.client.is_closed());
    assert!(s.has_event(|e| matches!(e, TurnEvent::Deallocated)));
    eprintln!("{transport:?}: events {:?}", s.events);
}

/// Our `turn-server` example on 127.0.0.1:`port`, user alice/secret, loopback peers
/// allowed, relaying from ports `port+1..=port+span`; returns once it says it listens.
fn start_example(port: u16, span: u16, args: &[&str]) -> Running {
    let mut server = Command::new(example("turn-server"))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--ports", &format!("{}-{}", port + 1, port + span)])
        .args(["--user", "alice:secret", "--allow-loopback-peers"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the turn-server example");
    let mut stdout = std::io::BufReader::new(server.stdout.take().expect("piped stdout"));
    let mut ready = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut ready).expect("the example's first line");
    assert!(ready.contains("listening"), "{ready}");
    // Keep reading what the example logs, so that its writes never fail.
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    Running(server)
}

/// Reads `name=<number>` from the last line of `output` that has it.
fn figure(output: &str, name: &str) -> Option<u64> {
    output.lines().rev().find_map(|line| {
        let rest = line.split(&format!("{name}=")).nth(1)?;
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    })
}

/// Our `turn-server` example on 127.0.0.1, `turnutils_peer` as the peer, and
/// `turnutils_uclient` with `flags`: every message sent comes back through the relay.
fn uclient_through_our_server(flags: &[&str]) {
    uclient_through_our_server_with(flags, &[], "127.0.0.1");
}

/// [`uclient_through_our_server`] with more arguments for the example, and the peer on
/// `peer_ip`.
fn uclient_through_our_server_with(flags: &[&str], server_args: &[&str], peer_ip: &str) {
    let (Some(uclient), Some(peer)) = (
        require("turnutils_uclient", "coturn"),
        require("turnutils_peer", "coturn"),
    ) else {
        return;
    };
    let port = free_port(60);
    let _server = start_example(port, 50, server_args);
    let peer_port = port + 55;
    let _peer = Running(
        Command::new(peer)
            .args(["-L", peer_ip, "-p", &peer_port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start turnutils_peer"),
    );
    std::thread::sleep(Duration::from_millis(300));
    let (messages, clients) = (20u64, 2u64);
    let mut child = Command::new(uclient)
        .args(flags)
        .args(["-u", "alice", "-w", "secret", "-p", &port.to_string()])
        .args(["-e", peer_ip, "-r", &peer_port.to_string()])
        .args([
            "-n",
            &messages.to_string(),
            "-m",
            &clients.to_string(),
            "-l",
            "200",
        ])
        .arg("127.0.0.1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start turnutils_uclient");
    let give_up = Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("uclient status").is_none() {
        if Instant::now() > give_up {
            let _ = child.kill();
            panic!("turnutils_uclient {flags:?} did not finish in 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().expect("uclient output");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("tot_send_msgs=") || l.contains("Total lost") || l.contains("error"))
        .collect();
    eprintln!("turnutils_uclient {flags:?}:\n{}", summary.join("\n"));
    let sent = figure(&text, "tot_send_msgs").expect("uclient reports what it sent");
    let received = figure(&text, "tot_recv_msgs").expect("uclient reports what it received");
    assert_eq!(sent, messages * clients, "{text}");
    assert_eq!(
        received, sent,
        "every message came back through the relay: {text}"
    );
    assert!(text.contains("Total lost packets 0 "), "{text}");
    assert!(!text.contains("error 4"), "an error response: {text}");
}

#[test]
fn uclient_through_our_server_over_udp_with_channels() {
    uclient_through_our_server(&[]);
}

#[test]
fn uclient_through_our_server_over_udp_with_send_indications() {
    uclient_through_our_server(&["-s"]);
}

#[test]
fn uclient_through_our_server_with_ipv6_relayed_addresses() {
    // An IPv6 peer: the allocations get IPv6 relayed addresses from the ::1 relay sockets.
    uclient_through_our_server_with(
        &["-x"],
        &["--relay-ip", "127.0.0.1", "--relay-ip", "::1"],
        "::1",
    );
}

#[test]
fn uclient_through_our_server_with_dual_allocations() {
    // coturn's client asks with ADDITIONAL-ADDRESS-FAMILY numbered 0x8032, which the
    // example accepts (`coturn_dual_allocation`).
    uclient_through_our_server_with(
        &["-Z"],
        &["--relay-ip", "127.0.0.1", "--relay-ip", "::1"],
        "127.0.0.1",
    );
}

#[test]
fn uclient_through_our_server_over_tcp() {
    uclient_through_our_server(&["-t"]);
}

/// EVEN-PORT with a reservation redeemed by a second client, a 438 after coturn's
/// one-second nonces go stale, an IPv6 allocation and a dual-stack one relaying to an IPv6
/// peer.
#[test]
fn our_client_against_coturn_even_port_stale_nonce_and_dual_stack() {
    let Some(turnserver) = require("turnserver", "coturn") else {
        return;
    };
    let port = free_port(40);
    let _server =
        start_turnserver_with(&turnserver, port, &["--relay-ip", "::1", "--stale-nonce=1"]);
    let server: SocketAddr = ([127, 0, 0, 1], port).into();

    // EVEN-PORT with the R bit, then the reserved port through RESERVATION-TOKEN.
    let mut even = Session::configured(TransportProtocol::Udp, server, |c| {
        c.even_port = Some(EvenPort { reserve: true });
    });
    let now = even.now();
    even.client.handle_allocate(now).expect("allocate");
    even.run_until("allocate with EVEN-PORT", |s| {
        s.client.allocation().is_some()
    });
    let first = *even.client.allocation().expect("allocated");
    eprintln!("EVEN-PORT: {first:?}");
    assert_eq!(first.relayed.port() % 2, 0, "an even port");
    let token = first.reservation_token.expect("a reservation token");
    let mut reserved = Session::configured(TransportProtocol::Udp, server, |c| {
        c.reservation_token = Some(token);
    });
    let now = reserved.now();
    reserved.client.handle_allocate(now).expect("allocate");
    reserved.run_until("allocate with the token", |s| {
        s.client.allocation().is_some()
    });
    let second = reserved.client.allocation().expect("allocated").relayed;
    eprintln!("RESERVATION-TOKEN: relayed {second}");
    assert_eq!(
        second,
        SocketAddr::new(first.relayed.ip(), first.relayed.port() + 1)
    );

    // coturn's nonces now last one second: the next request meets a 438 and is sent again.
    std::thread::sleep(Duration::from_millis(2500));
    let echo = EchoPeer::start();
    let now = even.now();
    even.client
        .handle_create_permission(now, echo.address.ip())
        .expect("permission");
    even.run_until("permission after a stale nonce", |s| {
        s.has_event(|e| matches!(e, TurnEvent::PermissionCreated { .. }))
    });
    assert!(even.client.stats().stale_nonces >= 1, "coturn answered 438");
    let now = even.now();
    even.client
        .handle_send(now, echo.address, b"fresh nonce")
        .expect("send");
    even.run_until("echo", |s| !s.received.is_empty());

    // REQUESTED-ADDRESS-FAMILY IPv6: an IPv6 relayed address, relaying to an IPv6 peer.
    let mut v6 = Session::configured(TransportProtocol::Udp, server, |c| {
        c.address_family = AllocationFamily::Ipv6;
    });
    let now = v6.now();
    v6.client.handle_allocate(now).expect("allocate");
    v6.run_until("IPv6 allocate", |s| s.client.allocation().is_some());
    let allocation = *v6.client.allocation().expect("allocated");
    eprintln!("IPv6: {allocation:?}");
    assert!(allocation.relayed.is_ipv6(), "{allocation:?}");
    let echo6 = EchoPeer::start_on("[::1]:0");
    let now = v6.now();
    v6.client
        .handle_create_permission(now, echo6.address.ip())
        .expect("permission");
    v6.run_until("IPv6 permission", |s| {
        s.has_event(|e| matches!(e, TurnEvent::PermissionCreated { .. }))
    });
    let now = v6.now();
    v6.client
        .handle_send(now, echo6.address, b"over IPv6")
        .expect("send");
    v6.run_until("echo over IPv6", |s| !s.received.is_empty());
    assert_eq!(
        v6.received.remove(0),
        (echo6.address, b"over IPv6".to_vec(), None)
    );

    // ADDITIONAL-ADDRESS-FAMILY: coturn 4.6.1 knows it only under the draft's number
    // (0x8032); with `coturn_dual_allocation` the client sends both numbers and gets an
    // IPv4 and an IPv6 relayed address, and data to an IPv6 peer leaves by the IPv6 one.
    let mut dual = Session::configured(TransportProtocol::Udp, server, |c| {
        c.address_family = AllocationFamily::Both;
        c.coturn_dual_allocation = true;
    });
    let now = dual.now();
    dual.client.handle_allocate(now).expect("allocate");
    dual.run_until("dual-stack allocate", |s| s.client.allocation().is_some());
    let allocation = *dual.client.allocation().expect("allocated");
    eprintln!("dual stack: {allocation:?}");
    let additional = allocation
        .additional_relayed
        .expect("an IPv6 relayed address");
    assert!(allocation.relayed.is_ipv4() && additional.is_ipv6());
    let now = dual.now();
    dual.client
        .handle_create_permission(now, echo6.address.ip())
        .expect("permission");
    dual.run_until("IPv6 permission on the dual allocation", |s| {
        s.has_event(|e| matches!(e, TurnEvent::PermissionCreated { .. }))
    });
    let now = dual.now();
    dual.client
        .handle_send(now, echo6.address, b"dual, over IPv6")
        .expect("send");
    dual.run_until("echo over the IPv6 relayed address", |s| {
        !s.received.is_empty()
    });
    assert_eq!(dual.received.remove(0).1, b"dual, over IPv6".to_vec());
}

#[test]
fn our_client_against_our_example_over_udp() {
    let port = free_port(40);
    let _server = start_example(port, 40, &[]);
    lifecycle(TransportProtocol::Udp, port);
}

#[test]
fn our_client_against_our_example_over_tcp() {
    let port = free_port(40);
    let _server = start_example(port, 40, &[]);
    lifecycle(TransportProtocol::Tcp, port);
}

#[test]
fn our_client_against_coturn_over_udp() {
    allocation_lifecycle(TransportProtocol::Udp);
}

#[test]
fn our_client_against_coturn_over_tcp() {
    allocation_lifecycle(TransportProtocol::Tcp);
}

/// Allocates from a new socket as alice on our example at 127.0.0.1:`port`; the error code
/// of a refusal, or 0.
fn allocate_once(port: u16) -> (Session, u16) {
    let server: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut s = Session::new(TransportProtocol::Udp, server);
    let now = s.now();
    s.client.handle_allocate(now).expect("allocate");
    s.run_until("an answer to Allocate", |s| {
        s.client.allocation().is_some() || s.client.is_closed()
    });
    let code = s
        .events
        .iter()
        .find_map(|e| match e {
            TurnEvent::AllocationFailed(RequestFailure::ErrorResponse { code, .. }) => Some(*code),
            _ => None,
        })
        .unwrap_or(0);
    (s, code)
}

/// The example's quotas (issue 14): by default one user holds far more than 10 allocations
/// at once (clients that exit without deallocating hold theirs 10 minutes);
/// `--max-allocations-per-user` refuses beyond it with 486 and `--max-allocations` beyond
/// the total with 508.
#[test]
fn our_example_s_allocation_quotas_are_options_with_roomy_defaults() {
    let port = free_port(20);
    let server = start_example(port, 20, &[]);
    let held: Vec<_> = (0..12).map(|_| allocate_once(port)).collect();
    let codes: Vec<u16> = held.iter().map(|(_, code)| *code).collect();
    assert_eq!(codes, [0; 12], "twelve allocations for one user by default");
    drop(server);

    let port = free_port(20);
    let _server = start_example(port, 20, &["--max-allocations-per-user", "2"]);
    let held: Vec<_> = (0..3).map(|_| allocate_once(port)).collect();
    let codes: Vec<u16> = held.iter().map(|(_, code)| *code).collect();
    assert_eq!(codes, [0, 0, 486]);

    let port = free_port(20);
    let _server = start_example(port, 20, &["--max-allocations", "1"]);
    let held: Vec<_> = (0..2).map(|_| allocate_once(port)).collect();
    let codes: Vec<u16> = held.iter().map(|(_, code)| *code).collect();
    assert_eq!(codes, [0, 508]);
}
