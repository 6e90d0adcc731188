//! `turn-server`: a TURN server (RFC 8656) on real sockets, UDP and TCP, for a newcomer to
//! run and point a client at (coturn's `turnutils_uclient`, a browser, our own client).
//!
//! ```text
//! turn-server [--listen 0.0.0.0:3478] [--relay-ip IP ...] [--ports 49152-49251]
//!             [--realm example.org] --user NAME:PASSWORD [--user ...]
//!             [--allow-loopback-peers] [--allow-private-peers] [--no-tcp]
//!             [--strict-rfc8656] [--max-allocations N] [--max-allocations-per-user N]
//! ```
//! `--help` describes each option and its default; a bad value exits 2 naming the option and
//! the value (clap, as `harness matrix` and `harness peer` do).
//!
//! Quotas: at most `--max-allocations` allocations at once (default 10,000; beyond, 508
//! Insufficient Capacity — the relay ports cap them too) and `--max-allocations-per-user`
//! per user (default 1,000; beyond, 486 Allocation Quota Reached). A client that exits
//! without a zero-lifetime Refresh holds its allocation for 10 minutes, and deployments
//! often give every call one user name: a small per-user quota turns a long-running server
//! away from everyone. Each refusal is printed with the running count.
//!
//! Two compatibility choices are on unless `--strict-rfc8656` turns them off, because
//! coturn's own test client needs them: channel numbers up to 0x7FFF (RFC 5766's and the
//! 0x7FFF it reserved, as coturn; RFC 8656 allows 0x4000–0x4FFF), and dual allocation asked
//! for with coturn's draft-numbered ADDITIONAL-ADDRESS-FAMILY (0x8032).
//!
//! All protocol logic is in [`stun_proto::turn::server::TurnServer`]; this file only moves
//! bytes: one UDP socket and one TCP listener on the listening address, and one UDP socket
//! per relay port on each relay IP (repeat `--relay-ip` for IPv4 and IPv6 relaying), all
//! non-blocking, polled in one loop.

// An example drives the sans-IO machine with real sockets and real time, which the crate's
// clippy rules forbid inside the machines themselves.
#![allow(clippy::disallowed_methods)]

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use stun_proto::TransportProtocol;
use stun_proto::turn::server::{
    FiveTuple, Handled, PeerClass, ServerEvent, TurnServer, TurnServerConfig,
};
use stun_proto::turn::{StreamFramer, TransmitRef};

/// A TURN server (RFC 8656) on real UDP and TCP sockets.
#[derive(Debug, Parser)]
#[command(name = "turn-server", version)]
struct Options {
    /// The address the UDP socket and the TCP listener are bound to.
    #[arg(long, value_name = "ADDR:PORT", default_value = "0.0.0.0:3478")]
    listen: SocketAddr,
    /// An address relayed transport addresses are allocated on; repeat it for IPv4 and IPv6
    /// relaying [default: the --listen address's IP].
    #[arg(long = "relay-ip", value_name = "IP")]
    relay_ips: Vec<IpAddr>,
    /// The relay ports on each relay IP, LOW-HIGH.
    #[arg(long, value_name = "LOW-HIGH", default_value = "49152-49251", value_parser = port_range)]
    ports: (u16, u16),
    /// The realm of the long-term credentials.
    #[arg(long, default_value = "example.org")]
    realm: String,
    /// A user and its password (long-term credentials); repeat it for more users.
    #[arg(long = "user", value_name = "NAME:PASSWORD", required = true, value_parser = user)]
    users: Vec<(String, String)>,
    /// Relay to peers on loopback addresses (refused by default).
    #[arg(long = "allow-loopback-peers")]
    allow_loopback: bool,
    /// Relay to peers on private addresses (refused by default).
    #[arg(long = "allow-private-peers")]
    allow_private: bool,
    /// Do not listen on TCP.
    #[arg(long)]
    no_tcp: bool,
    /// Turn off the compatibility choices coturn's test client needs: channel numbers up to
    /// 0x7FFF and coturn's draft-numbered ADDITIONAL-ADDRESS-FAMILY.
    #[arg(long = "strict-rfc8656")]
    strict: bool,
    /// The most allocations at once (beyond: 508 Insufficient Capacity).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_ALLOCATIONS)]
    max_allocations: usize,
    /// The most allocations of one user (beyond: 486 Allocation Quota Reached).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_ALLOCATIONS_PER_USER)]
    max_allocations_per_user: usize,
}

/// `--max-allocations`'s default: a cap on memory, above what the relay ports allow anyway.
const DEFAULT_MAX_ALLOCATIONS: usize = 10_000;
/// `--max-allocations-per-user`'s default (see the file's documentation).
const DEFAULT_MAX_ALLOCATIONS_PER_USER: usize = 1_000;

fn main() -> ExitCode {
    let options = Options::parse();
    // RUST_LOG=turn=info prints each allocation created and deleted (with its id, client and
    // relayed address) when stun-proto is built with its `tracing` feature
    // (`cargo run -p stun-proto --features tracing --example turn-server -- …`).
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    match serve(options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("turn-server: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Why a value of the command line was refused.
#[derive(Debug, thiserror::Error)]
enum ValueError {
    /// `--ports` without a dash.
    #[error("expected LOW-HIGH")]
    NoDash,
    /// A port that is not a number from 0 to 65535.
    #[error("a port: {0}")]
    Port(#[from] std::num::ParseIntError),
    /// `--ports` with LOW above HIGH: no relay port at all.
    #[error("LOW must not be above HIGH")]
    Reversed,
    /// `--user` without a colon.
    #[error("expected NAME:PASSWORD")]
    NoColon,
}

/// `LOW-HIGH`, LOW ≤ HIGH.
fn port_range(value: &str) -> Result<(u16, u16), ValueError> {
    let (low, high) = value.split_once('-').ok_or(ValueError::NoDash)?;
    let (low, high) = (low.parse()?, high.parse()?);
    if low > high {
        return Err(ValueError::Reversed);
    }
    Ok((low, high))
}

/// `NAME:PASSWORD` (the password may hold colons).
fn user(value: &str) -> Result<(String, String), ValueError> {
    let (name, password) = value.split_once(':').ok_or(ValueError::NoColon)?;
    Ok((name.into(), password.into()))
}

/// A TCP client connection: its stream, the frames it sent so far, what waits to be written.
struct Connection {
    stream: TcpStream,
    framer: StreamFramer,
    pending: Vec<u8>,
}

/// The sockets the machine's transmits go out of.
struct Sockets {
    udp: UdpSocket,
    relays: HashMap<SocketAddr, UdpSocket>,
    connections: HashMap<SocketAddr, Connection>,
}

impl Sockets {
    /// Sends to a client over its UDP 5-tuple or its TCP connection.
    fn send_to_client(&mut self, t: TransmitRef<'_>) {
        match t.transport {
            TransportProtocol::Udp => {
                let _ = self.udp.send_to(t.payload, t.destination);
            }
            _ => {
                if let Some(c) = self.connections.get_mut(&t.destination) {
                    c.pending.extend_from_slice(t.payload);
                }
            }
        }
    }

    /// Sends to a peer from the relay socket `t.source`.
    fn send_to_peer(&self, t: TransmitRef<'_>) {
        if let Some(socket) = self.relays.get(&t.source) {
            let _ = socket.send_to(t.payload, t.destination);
        }
    }
}

fn serve(mut options: Options) -> std::io::Result<()> {
    let udp = UdpSocket::bind(options.listen)?;
    udp.set_nonblocking(true)?;
    let listen = udp.local_addr()?;
    let listener = if !options.no_tcp {
        let listener = TcpListener::bind(listen)?;
        listener.set_nonblocking(true)?;
        Some(listener)
    } else {
        None
    };
    if options.relay_ips.is_empty() {
        options.relay_ips.push(listen.ip());
    }
    let mut relays = HashMap::new();
    for ip in &options.relay_ips {
        for port in options.ports.0..=options.ports.1 {
            if let Ok(socket) = UdpSocket::bind((*ip, port)) {
                socket.set_nonblocking(true)?;
                relays.insert(socket.local_addr()?, socket);
            }
        }
    }
    let relay_ips: Vec<String> = options.relay_ips.iter().map(ToString::to_string).collect();
    let relay_ips = relay_ips.join(", ");
    let mut config = TurnServerConfig::new(options.realm, relays.keys().copied().collect());
    // Two clients of a demo server (two browsers forcing relay) talk relay to relay.
    for (allow, class) in [
        (options.allow_loopback, PeerClass::Loopback),
        (options.allow_private, PeerClass::Private),
        (true, PeerClass::OwnRelay),
    ] {
        if allow {
            config.peer_filter.allowed_classes.insert(class);
        }
    }
    config.software = Some("stun-proto turn-server example".into());
    config.max_allocations = options.max_allocations;
    config.max_allocations_per_user = options.max_allocations_per_user;
    // coturn's test client binds channels up to 0x7FFF (RFC 5766's, and 0x7FFF) and asks
    // for dual allocations with the draft's attribute number.
    config.rfc5766_channel_numbers = !options.strict;
    config.coturn_dual_allocation = !options.strict;
    // RFC 6062 needs listeners on relayed addresses and connections to peers, which this
    // example does not open (the turn-server binary does): TCP allocations get 442.
    config.tcp_allocations = false;
    let rng = ChaCha20Rng::from_os_rng();
    let mut server = TurnServer::new(Instant::now(), config, rng);
    for (name, password) in &options.users {
        server
            .add_user(name, password)
            .map_err(|e| std::io::Error::new(ErrorKind::InvalidInput, e))?;
    }
    println!(
        "turn-server listening on {listen} (udp{}), {} relay addresses on {relay_ips}",
        if listener.is_some() { ", tcp" } else { "" },
        relays.len()
    );
    let mut sockets = Sockets {
        udp,
        relays,
        connections: HashMap::new(),
    };
    let mut buf = vec![0u8; 65_536];
    let mut out = vec![0u8; 65_600];
    let mut refused = (0, 0);
    loop {
        let mut busy = false;
        let now = Instant::now();

        // Datagrams from clients.
        while let Ok((n, from)) = sockets.udp.recv_from(&mut buf) {
            busy = true;
            let tuple = FiveTuple {
                transport: TransportProtocol::Udp,
                client: from,
                server: listen,
            };
            if let Handled::Relay(t) = server.handle_client_datagram(now, tuple, &buf[..n]) {
                sockets.send_to_peer(t);
            }
        }

        // TCP clients: accept, read and frame, write what is pending.
        if let Some(listener) = &listener {
            while let Ok((stream, from)) = listener.accept() {
                stream.set_nonblocking(true)?;
                let _ = stream.set_nodelay(true);
                let connection = Connection {
                    stream,
                    framer: StreamFramer::default(),
                    pending: Vec::new(),
                };
                sockets.connections.insert(from, connection);
            }
        }
        let mut closed = Vec::new();
        let clients: Vec<SocketAddr> = sockets.connections.keys().copied().collect();
        for client in clients {
            let tuple = FiveTuple {
                transport: TransportProtocol::Tcp,
                client,
                server: listen,
            };
            let Some(c) = sockets.connections.get_mut(&client) else {
                continue;
            };
            match c.stream.read(&mut buf) {
                Ok(0) => closed.push(client),
                Ok(n) => {
                    busy = true;
                    if c.framer.push(&buf[..n]).is_err() {
                        closed.push(client);
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(_) => closed.push(client),
            }
            let mut frames = Vec::new();
            loop {
                match c.framer.next_frame() {
                    Ok(Some(frame)) => frames.push(frame.bytes().to_vec()),
                    Ok(None) => break,
                    Err(_) => {
                        closed.push(client);
                        break;
                    }
                }
            }
            for frame in frames {
                if let Handled::Relay(t) = server.handle_client_datagram(now, tuple, &frame) {
                    sockets.send_to_peer(t);
                }
            }
        }
        for client in closed {
            sockets.connections.remove(&client);
            let tuple = FiveTuple {
                transport: TransportProtocol::Tcp,
                client,
                server: listen,
            };
            server.handle_connection_closed(now, tuple);
        }

        // Datagrams from peers, on the relay sockets.
        let mut from_peers = Vec::new();
        for (relay, socket) in &sockets.relays {
            while let Ok((n, from)) = socket.recv_from(&mut buf) {
                from_peers.push((*relay, from, buf[..n].to_vec()));
            }
        }
        for (relay, peer, data) in from_peers {
            busy = true;
            if let Handled::Relay(t) =
                server.handle_peer_datagram_into(now, relay, peer, &data, &mut out)
            {
                sockets.send_to_client(t);
            }
        }

        if server.poll_timeout().is_some_and(|t| t <= now) {
            server.handle_timeout(now);
        }
        while let Some(t) = server.poll_transmit() {
            sockets.send_to_client(TransmitRef {
                transport: t.transport,
                source: t.source,
                destination: t.destination,
                payload: &t.payload,
            });
        }
        while let Some(event) = server.poll_event() {
            match event {
                ServerEvent::AllocationCreated {
                    id,
                    tuple,
                    username,
                    relayed,
                    ..
                } => println!(
                    "allocation {} for {username} from {:?} {}: relayed {relayed}",
                    id.value(),
                    tuple.transport,
                    tuple.client
                ),
                ServerEvent::AllocationDeleted { id, reason } => {
                    println!("allocation {} deleted: {reason:?}", id.value())
                }
                other => println!("{other:?}"),
            }
        }
        let stats = server.stats();
        let now_refused = (stats.refused_user_quota, stats.refused_total_quota);
        if now_refused != refused {
            refused = now_refused;
            println!(
                "allocations refused: {} by the per-user quota (486), {} by the total cap (508)",
                refused.0, refused.1
            );
        }
        for c in sockets.connections.values_mut() {
            if c.pending.is_empty() {
                continue;
            }
            match c.stream.write(&c.pending) {
                Ok(n) => {
                    c.pending.drain(..n);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(_) => c.pending.clear(),
            }
        }
        if !busy {
            std::thread::sleep(Duration::from_micros(500));
        }
    }
}
