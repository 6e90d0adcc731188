//! `turn-server`: a TURN server (RFC 8656) on real sockets, UDP and TCP, for a newcomer to
//! run and point a client at (coturn's `turnutils_uclient`, a browser, our own client).
//!
//! ```text
//! turn-server [--listen 0.0.0.0:3478] [--relay-ip IP ...] [--ports 49152-49251]
//!             [--realm example.org] --user NAME:PASSWORD [--user ...]
//!             [--allow-loopback-peers] [--allow-private-peers] [--no-tcp]
//!             [--strict-rfc8656] [--max-allocations N] [--max-allocations-per-user N]
//! ```
//!
//! Quotas: at most `--max-allocations` allocations at once (default 10,000; beyond, 508
//! Insufficient Capacity — the relay ports cap them too) and `--max-allocations-per-user`
//! per user (default 1,000; beyond, 486 Allocation Quota Reached). A client that exits
//! without a zero-lifetime Refresh holds its allocation for 10 minutes, and deployments
//! often give every call one user name: a small per-user quota turns a long-running server
//! away from everyone. Each refusal is printed with the running count.
//!
//! Two compatibility choices are on unless `--strict-rfc8656` turns them off, because
//! coturn's own test client needs them: channel numbers up to 0x7FFE (RFC 5766; RFC 8656
//! allows 0x4000–0x4FFF), and dual allocation asked for with coturn's draft-numbered
//! ADDITIONAL-ADDRESS-FAMILY (0x8032).
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

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use stun_proto::TransportProtocol;
use stun_proto::turn::server::{
    FiveTuple, PeerFilter, PeerHandled, ServerEvent, ServerHandled, TurnServer, TurnServerConfig,
};
use stun_proto::turn::{StreamFramer, TransmitRef};

/// What the command line asked for.
struct Options {
    listen: SocketAddr,
    relay_ips: Vec<IpAddr>,
    ports: (u16, u16),
    realm: String,
    users: Vec<(String, String)>,
    allow_loopback: bool,
    allow_private: bool,
    tcp: bool,
    strict: bool,
    max_allocations: usize,
    max_allocations_per_user: usize,
}

/// `--max-allocations`'s default: a cap on memory, above what the relay ports allow anyway.
const DEFAULT_MAX_ALLOCATIONS: usize = 10_000;
/// `--max-allocations-per-user`'s default (see the file's documentation).
const DEFAULT_MAX_ALLOCATIONS_PER_USER: usize = 1_000;

fn main() -> ExitCode {
    let options = match parse(std::env::args().skip(1).collect()) {
        Ok(options) => options,
        Err(e) => {
            eprintln!("turn-server: {e}");
            eprintln!(
                "usage: turn-server [--listen ADDR:PORT] [--relay-ip IP] [--ports LOW-HIGH] \
                 [--realm REALM] --user NAME:PASSWORD [--user ...] [--allow-loopback-peers] \
                 [--allow-private-peers] [--no-tcp] [--strict-rfc8656] [--max-allocations N] \
                 [--max-allocations-per-user N]"
            );
            return ExitCode::from(2);
        }
    };
    match serve(options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("turn-server: {e}");
            ExitCode::FAILURE
        }
    }
}

fn parse(args: Vec<String>) -> Result<Options, String> {
    let mut options = Options {
        listen: SocketAddr::from(([0, 0, 0, 0], 3478)),
        relay_ips: Vec::new(),
        ports: (49152, 49251),
        realm: "example.org".into(),
        users: Vec::new(),
        allow_loopback: false,
        allow_private: false,
        tcp: true,
        strict: false,
        max_allocations: DEFAULT_MAX_ALLOCATIONS,
        max_allocations_per_user: DEFAULT_MAX_ALLOCATIONS_PER_USER,
    };
    let mut args = args.into_iter();
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--listen" => options.listen = value()?.parse().map_err(|e| format!("{e}"))?,
            "--relay-ip" => options
                .relay_ips
                .push(value()?.parse().map_err(|e| format!("{e}"))?),
            "--ports" => {
                let v = value()?;
                let (low, high) = v.split_once('-').ok_or("--ports LOW-HIGH")?;
                let low = low.parse().map_err(|e| format!("{e}"))?;
                let high = high.parse().map_err(|e| format!("{e}"))?;
                options.ports = (low, high);
            }
            "--realm" => options.realm = value()?,
            "--user" => {
                let v = value()?;
                let (name, password) = v.split_once(':').ok_or("--user NAME:PASSWORD")?;
                options.users.push((name.into(), password.into()));
            }
            "--allow-loopback-peers" => options.allow_loopback = true,
            "--allow-private-peers" => options.allow_private = true,
            "--no-tcp" => options.tcp = false,
            "--strict-rfc8656" => options.strict = true,
            "--max-allocations" => {
                options.max_allocations = value()?
                    .parse()
                    .map_err(|e| format!("--max-allocations: {e}"))?;
            }
            "--max-allocations-per-user" => {
                options.max_allocations_per_user = value()?
                    .parse()
                    .map_err(|e| format!("--max-allocations-per-user: {e}"))?;
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if options.users.is_empty() {
        return Err("at least one --user is needed".into());
    }
    Ok(options)
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
    let listener = if options.tcp {
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
    config.peer_filter = PeerFilter {
        allow_loopback: options.allow_loopback,
        allow_private: options.allow_private,
        ..PeerFilter::default()
    };
    config.software = Some("stun-proto turn-server example".into());
    config.max_allocations = options.max_allocations;
    config.max_allocations_per_user = options.max_allocations_per_user;
    // coturn's test client binds channels up to 0x7FFE (RFC 5766) and asks for dual
    // allocations with the draft's attribute number.
    config.rfc5766_channel_numbers = !options.strict;
    config.coturn_dual_allocation = !options.strict;
    let rng = ChaCha20Rng::from_entropy();
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
            if let ServerHandled::Relay(t) = server.handle_client_datagram(now, tuple, &buf[..n]) {
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
                if let ServerHandled::Relay(t) = server.handle_client_datagram(now, tuple, &frame) {
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
            if let PeerHandled::Relay(t) =
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
