//! The sockets of RFC 6062 TCP allocations: a TCP listener on each relayed address of a TCP
//! allocation (peers connect to it, §5.3), the connections to and from peers (opened from
//! the relayed address for a Connect, §5.2), and the bytes between a peer connection and
//! its client data connection. The machine decides (`ServerEvent::AcceptPeerConnections`,
//! `ConnectToPeer`, `ConnectionBound`, `PeerConnectionClosed`); this module only holds the
//! sockets and the bytes in flight, each direction bounded by [`MAX_IN_FLIGHT`]: a side
//! whose other side's queue is full is not read until it drains (TCP's own flow control
//! then slows the sender, as RFC 6062 §5.2 asks of the receive window).

use std::collections::HashMap;
use std::io::{self, ErrorKind, Read, Write};
use std::net::SocketAddr;

use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Registry, Token};
use socket2::{Domain, Protocol, Socket, Type};
use stun_proto::attribute::ConnectionId;
use stun_proto::turn::server::AllocationId;

use crate::connection::Connection;
use crate::metrics::DriverCounters;

/// The first token of peer connections.
pub const PEER_BASE: usize = 1 << 34;
/// The first token of relayed-address listeners.
pub const LISTENER_BASE: usize = 1 << 36;
/// The most bytes held for one side of a relayed connection.
pub const MAX_IN_FLIGHT: usize = 256 * 1024;

/// What copying found, for the worker to tell the machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pumped {
    /// Both sides open; nothing more to read for now (or no room to put it).
    Open,
    /// The peer side of this connection closed or failed, or the client side could not
    /// take what it sent.
    Closed(ConnectionId),
    /// The client data connection closed or failed.
    ClientClosed,
}

/// One peer data connection's socket.
#[derive(Debug)]
pub struct PeerStream {
    /// The socket.
    pub stream: TcpStream,
    /// Its CONNECTION-ID.
    pub connection: ConnectionId,
    /// Still connecting (a Connect's connection, until writable).
    pub connecting: bool,
    /// Bytes for the peer not yet written.
    pub to_peer: Vec<u8>,
    /// Bytes from the peer, held until a client data connection is bound (§5.2, §5.3).
    pub early: Vec<u8>,
    /// The slot of the client data connection, once bound.
    pub data: Option<usize>,
    /// Its client side closed: nothing more is read, and it closes once `to_peer` is
    /// written.
    pub draining: bool,
}

impl PeerStream {
    /// Writes what waits for the peer until the socket would block.
    pub fn flush(&mut self) -> io::Result<()> {
        while !self.to_peer.is_empty() {
            match self.stream.write(&self.to_peer) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.to_peer.drain(..n);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Reads from the peer into `buf`: `Some(n)` (0 at the end), `None` if it would block.
    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        loop {
            match self.stream.read(buf) {
                Ok(n) => return Ok(Some(n)),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(None),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// A listener on a TCP allocation's relayed address.
#[derive(Debug)]
pub struct RelayListener {
    /// The socket.
    pub listener: TcpListener,
    /// The relayed address.
    pub relayed: SocketAddr,
    id: AllocationId,
}

/// Every TCP relay socket of a worker.
#[derive(Debug, Default)]
pub struct TcpRelays {
    peers: Vec<Option<PeerStream>>,
    free_peers: Vec<usize>,
    by_connection: HashMap<ConnectionId, usize>,
    listeners: Vec<Option<RelayListener>>,
    free_listeners: Vec<usize>,
}

impl TcpRelays {
    /// Listens on `relayed` for allocation `id`'s peers.
    pub fn listen(
        &mut self,
        registry: &Registry,
        id: AllocationId,
        relayed: SocketAddr,
    ) -> io::Result<()> {
        let socket = relay_socket(relayed)?;
        socket.listen(128)?;
        let mut listener = TcpListener::from_std(socket.into());
        let slot = self.free_listeners.pop().unwrap_or(self.listeners.len());
        registry.register(
            &mut listener,
            Token(LISTENER_BASE + slot),
            Interest::READABLE,
        )?;
        let entry = RelayListener {
            listener,
            relayed,
            id,
        };
        match self.listeners.get_mut(slot) {
            Some(place) => *place = Some(entry),
            None => self.listeners.push(Some(entry)),
        }
        Ok(())
    }

    /// Stops listening for allocation `id`.
    pub fn stop_listening(&mut self, registry: &Registry, id: AllocationId) {
        for (slot, place) in self.listeners.iter_mut().enumerate() {
            if place.as_ref().is_some_and(|l| l.id == id) {
                if let Some(mut l) = place.take() {
                    let _ = registry.deregister(&mut l.listener);
                }
                self.free_listeners.push(slot);
            }
        }
    }

    /// The listener in `slot`.
    pub fn listener(&self, slot: usize) -> Option<&RelayListener> {
        self.listeners.get(slot).and_then(Option::as_ref)
    }

    /// Opens a connection from `relayed` to `peer` for `connection` (non-blocking; it is
    /// established once writable). The relayed address is the source (RFC 6062 §5.2); if
    /// it cannot be bound, its IP with any port.
    pub fn connect(
        &mut self,
        registry: &Registry,
        connection: ConnectionId,
        relayed: SocketAddr,
        peer: SocketAddr,
    ) -> io::Result<()> {
        let socket = match relay_socket(relayed) {
            Ok(s) => s,
            Err(_) => relay_socket(SocketAddr::new(relayed.ip(), 0))?,
        };
        match socket.connect(&peer.into()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc_einprogress()) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        let stream = TcpStream::from_std(socket.into());
        self.insert(registry, stream, connection, true)
    }

    /// Adds a peer connection (accepted, or connecting).
    pub fn insert(
        &mut self,
        registry: &Registry,
        mut stream: TcpStream,
        connection: ConnectionId,
        connecting: bool,
    ) -> io::Result<()> {
        let _ = stream.set_nodelay(true);
        let slot = self.free_peers.pop().unwrap_or(self.peers.len());
        let interest = Interest::READABLE | Interest::WRITABLE;
        if let Err(e) = registry.register(&mut stream, Token(PEER_BASE + slot), interest) {
            self.free_peers.push(slot);
            return Err(e);
        }
        let peer = PeerStream {
            stream,
            connection,
            connecting,
            to_peer: Vec::new(),
            early: Vec::new(),
            data: None,
            draining: false,
        };
        match self.peers.get_mut(slot) {
            Some(place) => *place = Some(peer),
            None => self.peers.push(Some(peer)),
        }
        self.by_connection.insert(connection, slot);
        Ok(())
    }

    /// The peer connection in `slot`.
    pub fn peer_mut(&mut self, slot: usize) -> Option<&mut PeerStream> {
        self.peers.get_mut(slot).and_then(Option::as_mut)
    }

    /// The slot of `connection`'s peer socket.
    pub fn slot_of(&self, connection: ConnectionId) -> Option<usize> {
        self.by_connection.get(&connection).copied()
    }

    /// Closes `connection`'s peer socket once what waits for the peer is written (RFC 6062
    /// §5.5 closes the other side; what the client sent first still arrives): at once if
    /// the socket takes it all, else the socket drains first
    /// ([`drained`](Self::drained)). The connection id is forgotten either way.
    pub fn remove(&mut self, registry: &Registry, connection: ConnectionId) {
        let Some(slot) = self.by_connection.remove(&connection) else {
            return;
        };
        let drained = self.peer_mut(slot).is_none_or(|peer| {
            peer.data = None;
            peer.draining = true;
            peer.flush().is_err() || peer.to_peer.is_empty()
        });
        if drained {
            self.close_slot(registry, slot);
        }
    }

    /// The draining peer socket in `slot` can be written to: writes what waits, and closes
    /// it once nothing does (or the write failed). Whether `slot` was draining.
    pub fn drained(&mut self, registry: &Registry, slot: usize) -> bool {
        let Some(peer) = self.peer_mut(slot).filter(|p| p.draining) else {
            return false;
        };
        if peer.flush().is_err() || peer.to_peer.is_empty() {
            self.close_slot(registry, slot);
        }
        true
    }

    /// Closes the peer socket in `slot`.
    fn close_slot(&mut self, registry: &Registry, slot: usize) {
        if let Some(mut peer) = self.peers.get_mut(slot).and_then(Option::take) {
            let _ = registry.deregister(&mut peer.stream);
            self.free_peers.push(slot);
        }
    }

    /// How many peer connections are open.
    pub fn len(&self) -> usize {
        self.by_connection.len()
    }

    /// Copies what the peer in `slot` sent to its client data connection (of
    /// `connections`), or holds it until one is bound, within [`MAX_IN_FLIGHT`]; `buf` is
    /// scratch.
    pub fn copy_from_peer(
        &mut self,
        slot: usize,
        connections: &mut [Option<Connection>],
        counters: &mut DriverCounters,
        buf: &mut [u8],
    ) -> Pumped {
        let Some(peer) = self.peer_mut(slot) else {
            return Pumped::Open;
        };
        if peer.connecting || peer.draining {
            return Pumped::Open;
        }
        loop {
            let mut client = peer
                .data
                .and_then(|d| connections.get_mut(d))
                .and_then(Option::as_mut);
            let room = match &client {
                Some(c) => c.room(),
                None => MAX_IN_FLIGHT.saturating_sub(peer.early.len()),
            };
            let Some(buf) = buf.get_mut(..room.min(buf.len())).filter(|b| !b.is_empty()) else {
                return Pumped::Open;
            };
            let n = match peer.read(buf) {
                Ok(Some(0)) | Err(_) => return Pumped::Closed(peer.connection),
                Ok(Some(n)) => n,
                Ok(None) => return Pumped::Open,
            };
            let bytes = buf.get(..n).unwrap_or_default();
            match client.as_mut() {
                Some(c) => {
                    counters.tcp_relayed.1 += n as u64;
                    if !c.send(bytes) {
                        return Pumped::Closed(peer.connection);
                    }
                }
                None => peer.early.extend_from_slice(bytes),
            }
        }
    }

    /// Copies what client data connection `slot` (of `connections`) sent to its peer,
    /// within [`MAX_IN_FLIGHT`]; `buf` is scratch.
    pub fn copy_from_client(
        &mut self,
        slot: usize,
        connections: &mut [Option<Connection>],
        counters: &mut DriverCounters,
        buf: &mut [u8],
    ) -> Pumped {
        let Some(Some(c)) = connections.get_mut(slot) else {
            return Pumped::Open;
        };
        let Some(peer) = c
            .bound
            .and_then(|cid| self.slot_of(cid))
            .and_then(|p| self.peer_mut(p))
        else {
            return Pumped::ClientClosed;
        };
        loop {
            let room = MAX_IN_FLIGHT.saturating_sub(peer.to_peer.len());
            let Some(buf) = buf.get_mut(..room.min(buf.len())).filter(|b| !b.is_empty()) else {
                return Pumped::Open;
            };
            match c.read_raw(buf) {
                Ok(Some(0)) | Err(_) => return Pumped::ClientClosed,
                Ok(Some(n)) => {
                    counters.tcp_relayed.0 += n as u64;
                    peer.to_peer
                        .extend_from_slice(buf.get(..n).unwrap_or_default());
                    if peer.flush().is_err() {
                        return Pumped::Closed(peer.connection);
                    }
                }
                Ok(None) => return Pumped::Open,
            }
        }
    }

    /// Joins client data connection `slot` (of `connections`) and the peer of `connection`
    /// (RFC 6062 §5.4): what the client's framer holds past the ConnectionBind goes to the
    /// peer, what the peer sent before goes to the client. The peer's slot, for the worker
    /// to copy on; `None` if either side is gone or failed (close both).
    pub fn join(
        &mut self,
        connection: ConnectionId,
        slot: usize,
        connections: &mut [Option<Connection>],
    ) -> Option<usize> {
        let peer_slot = self.slot_of(connection)?;
        let peer = self.peer_mut(peer_slot)?;
        let c = connections.get_mut(slot)?.as_mut()?;
        c.bound = Some(connection);
        peer.data = Some(slot);
        peer.to_peer.extend(c.framer.take_buffered());
        let early = std::mem::take(&mut peer.early);
        (c.send(&early) && peer.flush().is_ok()).then_some(peer_slot)
    }
}

/// A non-blocking TCP socket bound to `address` with SO_REUSEADDR and SO_REUSEPORT, so that
/// a relayed address both listens and connects out (RFC 6062 §5.2: connections to peers
/// come from the relayed address).
fn relay_socket(address: SocketAddr) -> io::Result<Socket> {
    let socket = Socket::new(
        Domain::for_address(address),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    if address.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&address.into())?;
    Ok(socket)
}

/// EINPROGRESS: a non-blocking connect under way (115 on Linux, 36 on the BSDs and macOS).
const fn libc_einprogress() -> i32 {
    if cfg!(target_os = "linux") { 115 } else { 36 }
}
