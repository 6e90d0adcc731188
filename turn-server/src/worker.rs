//! One worker: a thread with its own mio event loop, its own [`TurnServer`] machine and
//! allocations, its own sockets — a UDP socket and a TCP listener on each listening address,
//! shared with the other workers through SO_REUSEPORT (the kernel spreads clients over them
//! by their addresses, so a client keeps its worker), and its own slice of the relay ports.
//! Nothing is shared with another worker but the signal pipe's writer and the metrics slots
//! (written by their worker only).
//!
//! The loop: wait for readiness or the machine's next deadline ([`TurnServer::poll_timeout`]);
//! drain each ready socket until it would block, feeding the machine
//! (`handle_client_datagram`, `handle_peer_datagram_into`, `handle_connection_closed`) and
//! sending what each call returns; then `handle_timeout` if due, then drain `poll_transmit`
//! and `poll_event`, then publish the counters.
//!
//! RFC 6062 TCP allocations (module `tcp_relay`): the machine's events open a listener on
//! each TCP allocation's relayed address and connections from it to peers; accepted and
//! established peer connections are reported to the machine; once a ConnectionBind binds a
//! client data connection to a peer connection, the loop copies raw bytes between them.

use std::collections::HashMap;
use std::io::{self, ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mio::net::{TcpListener, TcpStream, UdpSocket, UnixStream};
use mio::{Events, Interest, Poll, Registry, Token};
use rand_chacha::ChaCha20Rng;
use stun_proto::TransportProtocol;
use stun_proto::attribute::ConnectionId;
use stun_proto::binding::BindingServer;
use stun_proto::turn::server::{FiveTuple, Handled, ServerEvent, TurnServer};
use stun_proto::turn::{TransmitRef, is_channel_data};
use tracing::{debug, info, warn};

use crate::connection::{Connection, Received};
use crate::handoff::{Handoffs, Mailbox, Message};
use crate::metrics::{DriverCounters, WorkerMetrics, render};
use crate::tcp_relay::{LISTENER_BASE, PEER_BASE, Pumped, TcpRelays};

/// The signal pipe's token.
const SIGNAL: Token = Token(0);
/// The metrics listener's token.
const METRICS: Token = Token(1);
/// The token of the waker other workers' messages ring.
const WAKER: Token = Token(2);
/// The first token of the fixed sockets (listeners and relays).
const FIXED_BASE: usize = 3;
/// The first token of TCP client connections.
const CONNECTION_BASE: usize = 1 << 32;
/// The first token of metrics connections.
const METRICS_CONNECTION_BASE: usize = 1 << 40;
/// The most metrics requests served at once.
const MAX_METRICS_CONNECTIONS: usize = 8;
/// The longest metrics request read.
const MAX_METRICS_REQUEST: usize = 4096;
/// How often the loop wakes with nothing to do, to refresh the Unix time and the counters.
const HOUSEKEEPING: Duration = Duration::from_secs(1);

/// How often the wall clock is read again for shared-secret expiry.
const UNIX_TIME_REFRESH: Duration = Duration::from_secs(60);
/// The largest datagram read.
const MAX_DATAGRAM: usize = 65_536;

/// What a fixed token stands for.
#[derive(Clone, Copy, Debug)]
enum Fixed {
    Udp(usize),
    TcpListener(usize),
    Relay(usize),
}

/// A metrics HTTP connection: the request read so far, then the response left to write.
#[derive(Debug)]
struct MetricsConnection {
    stream: TcpStream,
    request: Vec<u8>,
    response: Option<Vec<u8>>,
}

/// The relay sockets, found by their address. A socket handed to another worker with its
/// reservation leaves a `None` (the tokens of the others stay), one adopted is appended.
#[derive(Debug)]
struct Relays {
    sockets: Vec<Option<UdpSocket>>,
    addresses: Vec<SocketAddr>,
    index: HashMap<SocketAddr, usize>,
    /// The token of the first relay socket.
    first_token: usize,
}

impl Relays {
    /// Takes the socket of `address` out, for another worker.
    fn give(&mut self, address: SocketAddr, registry: &Registry) -> Option<UdpSocket> {
        let i = self.index.remove(&address)?;
        let mut socket = self.sockets.get_mut(i)?.take()?;
        let _ = registry.deregister(&mut socket);
        Some(socket)
    }

    /// Adds the socket of `address`, which another worker gave.
    fn adopt(
        &mut self,
        mut socket: UdpSocket,
        address: SocketAddr,
        registry: &Registry,
    ) -> io::Result<()> {
        let i = self.sockets.len();
        registry.register(&mut socket, Token(self.first_token + i), Interest::READABLE)?;
        self.sockets.push(Some(socket));
        self.addresses.push(address);
        self.index.insert(address, i);
        Ok(())
    }

    /// Sends a relayed datagram to a peer from the relay socket `t.source`.
    fn send_to_peer(&self, t: TransmitRef<'_>, counters: &mut DriverCounters) {
        let sent = self
            .index
            .get(&t.source)
            .and_then(|&i| self.sockets.get(i))
            .and_then(Option::as_ref)
            .is_some_and(|socket| socket.send_to(t.payload, t.destination).is_ok());
        if sent {
            counters.to_peer.0 += 1;
            counters.to_peer.1 += t.payload.len() as u64;
        } else {
            counters.send_failures += 1;
        }
    }
}

/// The sockets a worker owns, apart from its machine (so both can be borrowed at once).
#[derive(Debug)]
struct Io {
    udp: Vec<UdpSocket>,
    /// Each UDP socket's address, and whether it serves TURN (or only RFC 5780 Binding).
    udp_addresses: Vec<(SocketAddr, bool)>,
    listeners: Vec<TcpListener>,
    /// Each listener's address, and whether it speaks TLS.
    listener_addresses: Vec<(SocketAddr, bool)>,
    relays: Relays,
    connections: Vec<Option<Connection>>,
    free_slots: Vec<usize>,
    by_tuple: HashMap<(SocketAddr, SocketAddr), usize>,
    limits: TcpLimits,
    counters: DriverCounters,
    /// RFC 6062: relayed-address listeners and peer connections.
    tcp: TcpRelays,
}

/// What a worker allows TCP and TLS client connections.
#[derive(Clone, Copy, Debug)]
pub struct TcpLimits {
    /// The most at once (`--max-tcp-connections`, this worker's share); more are closed.
    pub max_connections: usize,
    /// How long one may go without an allocation (or a bound RFC 6062 peer connection)
    /// after it was accepted (`--unallocated-timeout`): a TLS handshake that never
    /// completes, a half-open connection, one that sends nothing or only Binding requests
    /// holds a slot this long at most.
    pub unallocated: Duration,
}

impl Io {
    /// Sends to a client over its UDP 5-tuple or its TCP connection; `relayed` says whether
    /// it is relayed data (counted) or a response.
    fn send_to_client(&mut self, t: TransmitRef<'_>, relayed: bool) {
        let sent = match t.transport {
            TransportProtocol::Udp => self
                .udp_addresses
                .iter()
                .position(|(a, _)| *a == t.source)
                .and_then(|i| self.udp.get(i))
                .is_some_and(|socket| socket.send_to(t.payload, t.destination).is_ok()),
            _ => self
                .by_tuple
                .get(&(t.destination, t.source))
                .and_then(|&slot| self.connections.get_mut(slot))
                .and_then(Option::as_mut)
                .is_some_and(|c| c.send(t.payload)),
        };
        if !sent {
            self.counters.send_failures += 1;
        } else if relayed {
            self.counters.to_client.0 += 1;
            self.counters.to_client.1 += t.payload.len() as u64;
        }
    }
}

/// What a worker is built from.
#[derive(Debug)]
pub struct WorkerSockets {
    /// UDP sockets on the listening addresses, with their addresses and whether they serve
    /// TURN (else only RFC 5780's Binding requests).
    pub udp: Vec<(UdpSocket, SocketAddr, bool)>,
    /// TCP listeners, with their addresses and whether they speak TLS.
    pub listeners: Vec<(TcpListener, SocketAddr, bool)>,
    /// Relay sockets, with their addresses.
    pub relays: Vec<(UdpSocket, SocketAddr)>,
    /// The metrics listener (one worker has it).
    pub metrics: Option<TcpListener>,
    /// The read end of the signal pipe.
    pub signals: UnixStream,
}

/// One event-loop thread and everything it owns.
#[derive(Debug)]
pub struct Worker {
    index: usize,
    poll: Poll,
    server: TurnServer<ChaCha20Rng>,
    /// RFC 5780's Binding server, when the server has an alternate address.
    binding: Option<BindingServer>,
    io: Io,
    metrics_listener: Option<TcpListener>,
    metrics_connections: Vec<Option<MetricsConnection>>,
    /// Registered under [`SIGNAL`]: readable once SIGINT or SIGTERM arrived.
    _signals: UnixStream,
    published: Arc<[WorkerMetrics]>,
    tls: Option<Arc<rustls::ServerConfig>>,
    handoffs: Handoffs,
    buf: Vec<u8>,
    out: Vec<u8>,
}

impl Worker {
    /// A worker over `sockets` driving `server` (and `binding` for RFC 5780), publishing
    /// into `published[index]`; its TLS listeners use `tls`. Also returns its mailbox:
    /// every worker gets all of them ([`connect`](Self::connect)) before any runs.
    pub fn new(
        index: usize,
        server: TurnServer<ChaCha20Rng>,
        binding: Option<BindingServer>,
        sockets: WorkerSockets,
        limits: TcpLimits,
        published: Arc<[WorkerMetrics]>,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> io::Result<(Self, Mailbox)> {
        let poll = Poll::new()?;
        let registry = poll.registry();
        let WorkerSockets {
            udp,
            listeners,
            relays,
            metrics,
            mut signals,
        } = sockets;
        let (mut udp, udp_addresses): (Vec<_>, Vec<_>) = udp
            .into_iter()
            .map(|(socket, address, turn)| (socket, (address, turn)))
            .unzip();
        let (mut listeners, listener_addresses): (Vec<_>, Vec<_>) = listeners
            .into_iter()
            .map(|(listener, address, tls)| (listener, (address, tls)))
            .unzip();
        let (mut relays, relay_addresses): (Vec<_>, Vec<_>) = relays.into_iter().unzip();
        let (handoffs, mailbox) = Handoffs::new(index, registry, WAKER)?;
        let mut token = FIXED_BASE;
        for socket in &mut udp {
            registry.register(socket, Token(token), Interest::READABLE)?;
            token += 1;
        }
        for listener in &mut listeners {
            registry.register(listener, Token(token), Interest::READABLE)?;
            token += 1;
        }
        let first_relay_token = token;
        for socket in &mut relays {
            registry.register(socket, Token(token), Interest::READABLE)?;
            token += 1;
        }
        registry.register(&mut signals, SIGNAL, Interest::READABLE)?;
        let mut metrics_listener = metrics;
        if let Some(listener) = &mut metrics_listener {
            registry.register(listener, METRICS, Interest::READABLE)?;
        }
        let relay_index = relay_addresses
            .iter()
            .enumerate()
            .map(|(i, a)| (*a, i))
            .collect();
        let worker = Self {
            index,
            poll,
            server,
            binding,
            io: Io {
                udp,
                udp_addresses,
                listeners,
                listener_addresses,
                relays: Relays {
                    sockets: relays.into_iter().map(Some).collect(),
                    addresses: relay_addresses,
                    index: relay_index,
                    first_token: first_relay_token,
                },
                connections: Vec::new(),
                free_slots: Vec::new(),
                by_tuple: HashMap::new(),
                limits,
                counters: DriverCounters::default(),
                tcp: TcpRelays::default(),
            },
            metrics_listener,
            metrics_connections: Vec::new(),
            _signals: signals,
            published,
            tls,
            handoffs,
            buf: vec![0; MAX_DATAGRAM],
            out: vec![0; MAX_DATAGRAM + 64],
        };
        Ok((worker, mailbox))
    }

    /// Gives the worker every worker's mailbox, by index.
    pub fn connect(&mut self, mailboxes: Arc<[Mailbox]>) {
        self.handoffs.connect(mailboxes);
    }

    /// Runs the loop until SIGINT or SIGTERM.
    #[allow(clippy::disallowed_methods)] // the driver owns the clocks
    pub fn run(mut self) -> io::Result<()> {
        let span = tracing::info_span!("worker", id = self.index);
        let _entered = span.enter();
        let mut events = Events::with_capacity(1024);
        let mut unix_time_read = Instant::now();
        let mut swept = unix_time_read;
        self.server.handle_unix_time(unix_time_read, unix_time());
        loop {
            let now = Instant::now();
            let wait = self
                .server
                .poll_timeout()
                .map_or(HOUSEKEEPING, |at| at.saturating_duration_since(now))
                .min(HOUSEKEEPING);
            match self.poll.poll(&mut events, Some(wait)) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            let now = Instant::now();
            for event in &events {
                match event.token() {
                    SIGNAL => {
                        info!("signal received: shutting down");
                        self.shut_down();
                        return Ok(());
                    }
                    METRICS => self.accept_metrics(),
                    // Messages are read after every wake-up, below.
                    WAKER => {}
                    Token(t) if t >= METRICS_CONNECTION_BASE => {
                        self.serve_metrics(t - METRICS_CONNECTION_BASE);
                    }
                    Token(t) if t >= LISTENER_BASE => self.accept_peers(now, t - LISTENER_BASE),
                    Token(t) if t >= PEER_BASE => {
                        let slot = t - PEER_BASE;
                        if event.is_writable() {
                            self.peer_writable(now, slot);
                        }
                        if event.is_readable() || event.is_read_closed() || event.is_error() {
                            self.pump_from_peer(now, slot);
                        }
                    }
                    Token(t) if t >= CONNECTION_BASE => {
                        let slot = t - CONNECTION_BASE;
                        if event.is_readable() || event.is_read_closed() || event.is_error() {
                            self.read_connection(now, slot);
                        }
                        if event.is_writable() {
                            self.flush_connection(now, slot);
                        }
                    }
                    Token(t) => match self.fixed(t) {
                        Some(Fixed::Udp(i)) => self.read_udp(now, i),
                        Some(Fixed::TcpListener(i)) => self.accept(now, i),
                        Some(Fixed::Relay(i)) => self.read_relay(now, i),
                        None => {}
                    },
                }
            }
            self.serve_handoffs(now);
            if self.server.poll_timeout().is_some_and(|at| at <= now) {
                self.server.handle_timeout(now);
            }
            if now.saturating_duration_since(swept) >= HOUSEKEEPING {
                swept = now;
                self.close_unallocated(now);
            }
            if now.saturating_duration_since(unix_time_read) >= UNIX_TIME_REFRESH {
                unix_time_read = now;
                self.server.handle_unix_time(now, unix_time());
            }
            self.drain_machine();
            self.io.counters.peer_connections = self.io.tcp.len() as u64;
            if let Some(slot) = self.published.get(self.index) {
                slot.publish(
                    self.server.allocation_count(),
                    self.server.stats(),
                    &self.io.counters,
                );
            }
        }
    }

    fn fixed(&self, token: usize) -> Option<Fixed> {
        let i = token.checked_sub(FIXED_BASE)?;
        let (udp, tcp) = (self.io.udp.len(), self.io.listeners.len());
        if i < udp {
            Some(Fixed::Udp(i))
        } else if i < udp + tcp {
            Some(Fixed::TcpListener(i - udp))
        } else if i < udp + tcp + self.io.relays.sockets.len() {
            Some(Fixed::Relay(i - udp - tcp))
        } else {
            None
        }
    }

    /// Datagrams from clients on listening socket `i`.
    fn read_udp(&mut self, now: Instant, i: usize) {
        let Some(&(server, turn)) = self.io.udp_addresses.get(i) else {
            return;
        };
        loop {
            let received = self.io.udp.get(i).map(|s| s.recv_from(&mut self.buf));
            let (n, client) = match received {
                Some(Ok(r)) => r,
                // An ICMP error of an earlier send, or an interruption: read on.
                Some(Err(e)) if e.kind() != ErrorKind::WouldBlock => continue,
                _ => return,
            };
            let datagram = self.buf.get(..n).unwrap_or_default();
            // RFC 5780: Binding requests (message type 0x0001) and whatever reaches the other
            // three addresses go to the Binding server, which knows all four.
            let for_binding = !turn || datagram.get(..2) == Some(&[0x00, 0x01]);
            if let Some(binding) = self.binding.as_mut().filter(|_| for_binding) {
                binding.handle_datagram(now, TransportProtocol::Udp, client, server, datagram);
                while let Some(t) = binding.poll_transmit() {
                    let t = TransmitRef {
                        transport: t.transport,
                        source: t.source,
                        destination: t.destination,
                        payload: &t.payload,
                    };
                    self.io.send_to_client(t, false);
                }
                continue;
            }
            let tuple = FiveTuple {
                transport: TransportProtocol::Udp,
                client,
                server,
            };
            if self.handoffs.park(now, &self.server, tuple, datagram) {
                continue;
            }
            if let Handled::Relay(t) = self.server.handle_client_datagram(now, tuple, datagram) {
                self.io.relays.send_to_peer(t, &mut self.io.counters);
            }
        }
    }

    /// Datagrams from peers on relay socket `i`.
    fn read_relay(&mut self, now: Instant, i: usize) {
        let Some(&relay) = self.io.relays.addresses.get(i) else {
            return;
        };
        loop {
            let received = self
                .io
                .relays
                .sockets
                .get(i)
                .and_then(Option::as_ref)
                .map(|s| s.recv_from(&mut self.buf));
            let (n, peer) = match received {
                Some(Ok(r)) => r,
                // An ICMP error of an earlier send, or an interruption: read on.
                Some(Err(e)) if e.kind() != ErrorKind::WouldBlock => continue,
                _ => return,
            };
            let data = self.buf.get(..n).unwrap_or_default();
            if let Handled::Relay(t) =
                self.server
                    .handle_peer_datagram_into(now, relay, peer, data, &mut self.out)
            {
                self.io.send_to_client(t, true);
            }
        }
    }

    /// Accepts TCP clients on listener `i`.
    fn accept(&mut self, now: Instant, i: usize) {
        let Some(&(server, tls)) = self.io.listener_addresses.get(i) else {
            return;
        };
        loop {
            let accepted = match self.io.listeners.get(i).map(TcpListener::accept) {
                Some(Ok(a)) => a,
                Some(Err(e)) if e.kind() != ErrorKind::WouldBlock => {
                    // Out of descriptors or a connection reset before accept: try later.
                    warn!("accept on {server}: {e}");
                    return;
                }
                _ => return,
            };
            let (mut stream, client) = accepted;
            let open = self.io.by_tuple.len();
            if open >= self.io.limits.max_connections {
                self.io.counters.tcp_refused += 1;
                continue;
            }
            let _ = stream.set_nodelay(true);
            let session = match self.tls.as_ref().filter(|_| tls) {
                Some(config) => match rustls::ServerConnection::new(Arc::clone(config)) {
                    Ok(session) => Some(session),
                    Err(e) => {
                        warn!("TLS session for {client}: {e}");
                        continue;
                    }
                },
                None => None,
            };
            let slot = self
                .io
                .free_slots
                .pop()
                .unwrap_or(self.io.connections.len());
            let interest = Interest::READABLE | Interest::WRITABLE;
            if let Err(e) =
                self.poll
                    .registry()
                    .register(&mut stream, Token(CONNECTION_BASE + slot), interest)
            {
                warn!("register a TCP connection: {e}");
                self.io.free_slots.push(slot);
                continue;
            }
            let tuple = FiveTuple {
                transport: TransportProtocol::Tcp,
                client,
                server,
            };
            let connection = Connection::new(now, stream, tuple, session);
            if slot == self.io.connections.len() {
                self.io.connections.push(Some(connection));
            } else if let Some(place) = self.io.connections.get_mut(slot) {
                *place = Some(connection);
            }
            self.io.by_tuple.insert((client, server), slot);
            self.io.counters.tcp_connections = self.io.by_tuple.len() as u64;
            debug!(%client, "TCP connection");
        }
    }

    /// Reads what a TCP client sent, frame by frame, until the socket would block.
    fn read_connection(&mut self, now: Instant, slot: usize) {
        loop {
            let Io {
                connections,
                relays,
                counters,
                ..
            } = &mut self.io;
            let Some(Some(c)) = connections.get_mut(slot) else {
                return;
            };
            if c.draining {
                // Its peer is gone: only what is queued for the client still goes.
                return;
            }
            if c.bound.is_some() {
                return self.pump_from_client(now, slot);
            }
            match c.receive(&mut self.buf) {
                Received::Bytes => {}
                Received::WouldBlock => return,
                Received::Closed => return self.close(now, slot),
            }
            let tuple = c.tuple;
            let out_of_sync = loop {
                let frame = match c.framer.next_frame() {
                    Ok(Some(frame)) => frame,
                    Ok(None) => break false,
                    Err(_) => break true,
                };
                if self.handoffs.park(now, &self.server, tuple, frame.bytes()) {
                    continue;
                }
                if let Some(owner) = self.handoffs.connection_owner(frame.bytes()) {
                    if self.server.allocation_by_tuple(&tuple).is_none() {
                        let frame = frame.bytes().to_vec();
                        return self.send_connection(now, slot, owner, frame);
                    }
                }
                if let Handled::Relay(t) =
                    self.server
                        .handle_client_datagram(now, tuple, frame.bytes())
                {
                    relays.send_to_peer(t, counters);
                }
                if self.server.bound_connection(&tuple).is_some() {
                    // A ConnectionBind succeeded (RFC 6062 §5.4): what follows is raw, for
                    // the peer; `ConnectionBound` takes it from the framer.
                    return;
                }
            };
            if out_of_sync {
                return self.close(now, slot);
            }
        }
    }

    /// Hands client connection `slot` to worker `owner`, whose machine holds the peer
    /// connection its ConnectionBind `frame` names (module `handoff`).
    fn send_connection(&mut self, now: Instant, slot: usize, owner: usize, frame: Vec<u8>) {
        let Some(mut c) = self.io.connections.get_mut(slot).and_then(Option::take) else {
            return;
        };
        let _ = self.poll.registry().deregister(c.stream());
        self.io.by_tuple.remove(&(c.tuple.client, c.tuple.server));
        self.io.free_slots.push(slot);
        self.io.counters.tcp_connections = self.io.by_tuple.len() as u64;
        if let Err(c) = self
            .handoffs
            .send_connection(owner, Box::new(c), frame.clone())
        {
            // That worker has stopped: this machine answers (400, no such connection).
            if let Some(slot) = self.adopt_connection(*c) {
                let _ = self
                    .server
                    .handle_client_datagram(now, self.tuple_of(slot), &frame);
            }
            return;
        }
        debug!(worker = owner, "client data connection handed over");
    }

    /// Registers a connection another worker handed over; its slot.
    fn adopt_connection(&mut self, mut c: Connection) -> Option<usize> {
        let slot = self
            .io
            .free_slots
            .pop()
            .unwrap_or(self.io.connections.len());
        let interest = Interest::READABLE | Interest::WRITABLE;
        let token = Token(CONNECTION_BASE + slot);
        if let Err(e) = self.poll.registry().register(c.stream(), token, interest) {
            warn!("register a handed-over TCP connection: {e}");
            self.io.free_slots.push(slot);
            return None;
        }
        self.io
            .by_tuple
            .insert((c.tuple.client, c.tuple.server), slot);
        if slot == self.io.connections.len() {
            self.io.connections.push(Some(c));
        } else if let Some(place) = self.io.connections.get_mut(slot) {
            *place = Some(c);
        }
        self.io.counters.tcp_connections = self.io.by_tuple.len() as u64;
        Some(slot)
    }

    /// The 5-tuple of connection `slot`.
    fn tuple_of(&self, slot: usize) -> FiveTuple {
        match self.io.connections.get(slot) {
            Some(Some(c)) => c.tuple,
            _ => FiveTuple {
                transport: TransportProtocol::Tcp,
                client: SocketAddr::from(([0, 0, 0, 0], 0)),
                server: SocketAddr::from(([0, 0, 0, 0], 0)),
            },
        }
    }

    /// Writes what waits for a TCP client; a client data connection's peer, not read while
    /// the queue towards the client was full, is read again.
    fn flush_connection(&mut self, now: Instant, slot: usize) {
        let Some(Some(c)) = self.io.connections.get_mut(slot) else {
            return;
        };
        if c.flush().is_err() || (c.draining && c.is_flushed()) {
            return self.close(now, slot);
        }
        if let Some(peer) = c.bound.and_then(|cid| self.io.tcp.slot_of(cid)) {
            self.pump_from_peer(now, peer);
        }
    }

    /// Closes a TCP connection; its allocation goes with it (RFC 8656 §3.1).
    fn close(&mut self, now: Instant, slot: usize) {
        let Some(mut c) = self.io.connections.get_mut(slot).and_then(Option::take) else {
            return;
        };
        let _ = self.poll.registry().deregister(c.stream());
        self.io.by_tuple.remove(&(c.tuple.client, c.tuple.server));
        self.io.free_slots.push(slot);
        if let Some(peer) = c
            .bound
            .and_then(|cid| self.io.tcp.slot_of(cid))
            .and_then(|p| self.io.tcp.peer_mut(p))
        {
            peer.data = None;
        }
        self.io.counters.tcp_connections = self.io.by_tuple.len() as u64;
        self.server.handle_connection_closed(now, c.tuple);
        debug!(client = %c.tuple.client, "TCP connection closed");
    }

    /// Closes the client connections that hold no allocation and no bound peer connection
    /// [`TcpLimits::unallocated`] after they were accepted.
    fn close_unallocated(&mut self, now: Instant) {
        let stale: Vec<usize> = (self.io.connections.iter().enumerate())
            .filter_map(|(slot, c)| Some((slot, c.as_ref()?)))
            .filter(|(_, c)| {
                c.bound.is_none()
                    && now.saturating_duration_since(c.accepted_at) >= self.io.limits.unallocated
                    && self.server.allocation_by_tuple(&c.tuple).is_none()
            })
            .map(|(slot, _)| slot)
            .collect();
        for slot in stale {
            self.io.counters.tcp_unallocated_closed += 1;
            self.close(now, slot);
        }
    }

    /// Serves the other workers' messages (module `handoff`): gives the reservations they
    /// want, adopts those they give and hands their parked requests to the machine, and
    /// those that waited too long.
    fn serve_handoffs(&mut self, now: Instant) {
        while let Some(message) = self.handoffs.next_message() {
            match message {
                Message::Wanted { token, by } => {
                    let given = self
                        .server
                        .handle_reservation_export(now, token)
                        .and_then(|r| {
                            let socket = self.io.relays.give(r.address, self.poll.registry());
                            if socket.is_none() {
                                warn!(address = %r.address, "a reserved relay port has no socket");
                            }
                            socket.map(|s| (r, s))
                        });
                    self.handoffs.answer(by, token, given);
                }
                Message::Given { token, reservation } => {
                    if let Some((reservation, socket)) = reservation {
                        let address = reservation.address;
                        match self.io.relays.adopt(socket, address, self.poll.registry()) {
                            Ok(()) => {
                                self.server.handle_reservation_import(now, reservation);
                                self.io.counters.reservations_adopted += 1;
                                debug!(%address, "reservation handed over by another worker");
                            }
                            Err(e) => warn!(%address, "cannot adopt a relay port: {e}"),
                        }
                    }
                    for (tuple, request) in self.handoffs.unpark(token) {
                        let _ = self.server.handle_client_datagram(now, tuple, &request);
                    }
                }
                Message::Connection { connection, frame } => {
                    let Some(slot) = self.adopt_connection(*connection) else {
                        continue;
                    };
                    let tuple = self.tuple_of(slot);
                    let _ = self.server.handle_client_datagram(now, tuple, &frame);
                    // Frames that came with it, and bytes the socket holds.
                    if self.server.bound_connection(&tuple).is_none() {
                        self.read_connection(now, slot);
                    }
                }
            }
        }
        for (tuple, request) in self.handoffs.unpark_stale(now) {
            let _ = self.server.handle_client_datagram(now, tuple, &request);
        }
    }

    /// Sends the machine's queued datagrams and logs its events.
    fn drain_machine(&mut self) {
        while let Some(t) = self.server.poll_transmit() {
            // Responses, and data held behind them (RFC 8656 §12): ChannelData or a Data
            // indication (message type 0x0017) is relayed data, counted as such.
            let relayed = is_channel_data(&t.payload) || t.payload.get(..2) == Some(&[0x00, 0x17]);
            self.io.send_to_client(
                TransmitRef {
                    transport: t.transport,
                    source: t.source,
                    destination: t.destination,
                    payload: &t.payload,
                },
                relayed,
            );
        }
        while let Some(event) = self.server.poll_event() {
            match event {
                ServerEvent::AllocationCreated { .. } => {
                    // stun-proto logs these itself (target `turn`) with the allocation id.
                }
                ServerEvent::AllocationDeleted { id, .. } => {
                    self.io.tcp.stop_listening(self.poll.registry(), id);
                }
                ServerEvent::AcceptPeerConnections { id, relayed } => {
                    if let Err(e) = self.io.tcp.listen(self.poll.registry(), id, relayed) {
                        // Connect still works; peers cannot connect in.
                        warn!(%relayed, "cannot listen on a TCP relayed address: {e}");
                    }
                }
                ServerEvent::ConnectToPeer {
                    connection,
                    relayed,
                    peer,
                    ..
                } => {
                    let registry = self.poll.registry();
                    if let Err(e) = self.io.tcp.connect(registry, connection, relayed, peer) {
                        debug!(%peer, "TCP connection to a peer failed: {e}");
                        #[allow(clippy::disallowed_methods)] // the driver owns the clocks
                        let now = Instant::now();
                        self.server.handle_peer_connect_failed(now, connection);
                    }
                }
                ServerEvent::ConnectionBound {
                    connection, data, ..
                } => self.bind_data_connection(connection, data),
                ServerEvent::PeerConnectionClosed {
                    connection, data, ..
                } => {
                    self.io.tcp.remove(self.poll.registry(), connection);
                    let slot = data.and_then(|d| self.io.by_tuple.get(&(d.client, d.server)));
                    if let Some(&slot) = slot {
                        // What the peer sent before it closed still reaches the client.
                        let drained = match self.io.connections.get_mut(slot) {
                            Some(Some(c)) => {
                                c.draining = true;
                                c.flush().is_err() || c.is_flushed()
                            }
                            _ => true,
                        };
                        if drained {
                            #[allow(clippy::disallowed_methods)] // the driver owns the clocks
                            let now = Instant::now();
                            self.close(now, slot);
                        }
                    }
                }
                other => debug!(target: "turn", "{other:?}"),
            }
        }
    }

    /// Accepts peers on relayed-address listener `slot` (RFC 6062 §5.3): the machine says
    /// whether each may stay.
    fn accept_peers(&mut self, now: Instant, slot: usize) {
        loop {
            let Some(l) = self.io.tcp.listener(slot) else {
                return;
            };
            let relayed = l.relayed;
            let (stream, peer) = match l.listener.accept() {
                Ok(a) => a,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) => {
                    warn!(%relayed, "accept on a TCP relayed address: {e}");
                    return;
                }
            };
            match self
                .server
                .handle_peer_connection_accepted(now, relayed, peer)
            {
                Ok(connection) => {
                    let registry = self.poll.registry();
                    if let Err(e) = self.io.tcp.insert(registry, stream, connection, false) {
                        warn!("register a peer connection: {e}");
                        self.server.handle_peer_connection_closed(now, connection);
                    }
                }
                Err(e) => debug!(%peer, %relayed, "peer connection refused: {e}"),
            }
        }
    }

    /// A peer connection can be written to: a Connect's connection is established (or
    /// failed), or what waits for the peer can go, and the client side may be read again.
    fn peer_writable(&mut self, now: Instant, slot: usize) {
        if self.io.tcp.drained(self.poll.registry(), slot) {
            return;
        }
        let Some(peer) = self.io.tcp.peer_mut(slot) else {
            return;
        };
        let connection = peer.connection;
        if peer.connecting {
            let failed = peer.stream.take_error().ok().flatten().is_some()
                || peer.stream.peer_addr().is_err();
            if failed {
                self.server.handle_peer_connect_failed(now, connection);
                return;
            }
            peer.connecting = false;
            if !self.server.handle_peer_connected(now, connection) {
                self.io.tcp.remove(self.poll.registry(), connection);
            }
            return;
        }
        if peer.flush().is_err() {
            self.server.handle_peer_connection_closed(now, connection);
            return;
        }
        if let Some(data) = peer.data {
            self.pump_from_client(now, data);
        }
    }

    /// Copies what the peer of connection `slot` sent towards its client (module
    /// `tcp_relay`), and tells the machine if the peer closed.
    fn pump_from_peer(&mut self, now: Instant, slot: usize) {
        let Io {
            tcp,
            connections,
            counters,
            ..
        } = &mut self.io;
        if let Pumped::Closed(connection) =
            tcp.copy_from_peer(slot, connections, counters, &mut self.buf)
        {
            self.server.handle_peer_connection_closed(now, connection);
        }
    }

    /// Copies what client data connection `slot` sent to its peer (module `tcp_relay`), and
    /// closes it (the machine closes the peer side) if it closed.
    fn pump_from_client(&mut self, now: Instant, slot: usize) {
        let Io {
            tcp,
            connections,
            counters,
            ..
        } = &mut self.io;
        match tcp.copy_from_client(slot, connections, counters, &mut self.buf) {
            Pumped::Open => {}
            Pumped::Closed(connection) => {
                self.server.handle_peer_connection_closed(now, connection);
            }
            Pumped::ClientClosed => self.close(now, slot),
        }
    }

    /// A ConnectionBind succeeded (RFC 6062 §5.4): the client connection `data` and the
    /// peer connection `connection` are joined; what either side sent meanwhile moves on.
    #[allow(clippy::disallowed_methods)] // the driver owns the clocks
    fn bind_data_connection(&mut self, connection: ConnectionId, data: FiveTuple) {
        let now = Instant::now();
        let Some(&slot) = self.io.by_tuple.get(&(data.client, data.server)) else {
            self.server.handle_peer_connection_closed(now, connection);
            return;
        };
        let Io {
            tcp, connections, ..
        } = &mut self.io;
        match tcp.join(connection, slot, connections) {
            Some(peer) => {
                self.pump_from_peer(now, peer);
                self.pump_from_client(now, slot);
            }
            None => {
                self.server.handle_peer_connection_closed(now, connection);
                self.close(now, slot);
            }
        }
    }

    /// Accepts metrics clients (beyond the bound they are closed at once).
    fn accept_metrics(&mut self) {
        loop {
            let Some(Ok((mut stream, _))) = self.metrics_listener.as_ref().map(TcpListener::accept)
            else {
                return;
            };
            let slot = match self.metrics_connections.iter().position(Option::is_none) {
                Some(slot) => slot,
                None if self.metrics_connections.len() < MAX_METRICS_CONNECTIONS => {
                    self.metrics_connections.push(None);
                    self.metrics_connections.len() - 1
                }
                None => continue,
            };
            let token = Token(METRICS_CONNECTION_BASE + slot);
            let interest = Interest::READABLE | Interest::WRITABLE;
            if self
                .poll
                .registry()
                .register(&mut stream, token, interest)
                .is_ok()
            {
                if let Some(place) = self.metrics_connections.get_mut(slot) {
                    *place = Some(MetricsConnection {
                        stream,
                        request: Vec::new(),
                        response: None,
                    });
                }
            }
        }
    }

    /// Reads a metrics request; once its head is in, writes the exposition and closes.
    fn serve_metrics(&mut self, slot: usize) {
        let Some(Some(c)) = self.metrics_connections.get_mut(slot) else {
            return;
        };
        let done = loop {
            if c.response.is_none() {
                let mut chunk = [0u8; 1024];
                match c.stream.read(&mut chunk) {
                    Ok(0) => break true,
                    Ok(n) => c
                        .request
                        .extend_from_slice(chunk.get(..n).unwrap_or_default()),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break false,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(_) => break true,
                }
                if c.request.windows(4).any(|w| w == b"\r\n\r\n") {
                    c.response = Some(http_response(&c.request, &self.published));
                } else if c.request.len() > MAX_METRICS_REQUEST {
                    break true;
                }
                continue;
            }
            let Some(response) = c.response.as_mut() else {
                break true;
            };
            match c.stream.write(response) {
                Ok(n) if n > 0 && n < response.len() => {
                    response.drain(..n);
                }
                Ok(_) => break true,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break false,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => break true,
            }
        };
        if done {
            if let Some(mut c) = self
                .metrics_connections
                .get_mut(slot)
                .and_then(Option::take)
            {
                let _ = self.poll.registry().deregister(&mut c.stream);
            }
        }
    }

    /// Flushes what waits for TCP clients (once, without waiting) and logs the totals.
    fn shut_down(&mut self) {
        for c in self.io.connections.iter_mut().flatten() {
            let _ = c.flush();
        }
        let stats = self.server.stats();
        info!(
            allocations = self.server.allocation_count(),
            requests = stats.requests,
            to_peers = self.io.counters.to_peer.0,
            to_clients = self.io.counters.to_client.0,
            "stopped"
        );
    }
}

/// The answer to a metrics request: the exposition for `GET`, 405 for anything else.
fn http_response(request: &[u8], published: &[WorkerMetrics]) -> Vec<u8> {
    let (status, body) = if request.starts_with(b"GET ") {
        ("200 OK", render(published))
    } else {
        ("405 Method Not Allowed", String::new())
    };
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// The wall clock as a Unix time.
#[allow(clippy::disallowed_methods)] // the driver owns the clocks
fn unix_time() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}
