//! RFC 6062 TCP allocations on the server: an allocation whose REQUESTED-TRANSPORT is TCP
//! (§5.1, over a TCP or TLS control connection) relays TCP connections between its client
//! and peers. The caller owns every socket; the machine keeps the table of peer data
//! connections, their states and deadlines, and the messages on the control connection.
//!
//! ```text
//! Connect (§5.2) ─► ServerEvent::ConnectToPeer ─► caller connects from the relayed address
//!     ├─ handle_peer_connected ─► success + CONNECTION-ID ─┐
//!     └─ handle_peer_connect_failed, or 30 s ─► 447         │
//! caller accepts on the relayed address (§5.3) ─► handle_peer_connection_accepted
//!     ─► permission? ─► ConnectionAttempt (CONNECTION-ID, XOR-PEER-ADDRESS) ─┤
//!                                                    AwaitBind (30 s, else closed)
//! ConnectionBind on a new client connection (§5.4) ─► success ─► ServerEvent::ConnectionBound
//!     ─► the caller relays raw bytes between the two connections until one closes (§5.5)
//! ```
//!
//! Every removal of a peer data connection, whatever its cause, is one
//! [`ServerEvent::PeerConnectionClosed`]: the caller closes what it still holds of it.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand_core::{CryptoRng, RngCore};

use super::allocation::AllocationId;
use super::requests::Signer;
use super::{FiveTuple, ServerEvent, TurnServer};
use crate::attribute::{ConnectionId, ErrorCode, XorPeerAddress};
use crate::builder::MessageBuilder;
use crate::header::{Class, MessageType, Method, TransactionId};
use crate::message::Message;
use crate::time::saturating_add;
use crate::transmit::Transmit;

/// How long the server waits for its connection to a peer (RFC 6062 §5.2: at least 30 s),
/// then answers 447.
pub const PEER_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a peer data connection waits for its ConnectionBind before it is closed
/// (RFC 6062 §5.2, §5.3).
pub const CONNECTION_BIND_TIMEOUT: Duration = Duration::from_secs(30);

/// Why [`TurnServer::handle_peer_connection_accepted`] refused a peer's connection: the
/// caller closes it at once (RFC 6062 §5.3), nothing is sent to the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PeerConnectionError {
    /// No TCP allocation has that relayed address.
    #[error("no TCP allocation on the relayed address")]
    NoAllocation,
    /// The allocation has no permission for the peer's IP address (RFC 6062 §5.3).
    #[error("no permission for the peer")]
    NoPermission,
    /// The peer filter denies the peer.
    #[error("peer denied by the filter")]
    PeerDenied,
    /// The allocation already has a connection with that peer address.
    #[error("a connection with that peer exists")]
    AlreadyExists,
    /// The connection table is full ([`TurnServerConfig::max_peer_connections`]).
    ///
    /// [`TurnServerConfig::max_peer_connections`]: super::TurnServerConfig::max_peer_connections
    #[error("connection table full")]
    TableFull,
}

/// Why a peer data connection was removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PeerConnectionClose {
    /// The caller's connection to the peer failed ([`TurnServer::handle_peer_connect_failed`]):
    /// 447 was sent.
    ConnectFailed,
    /// The connection to the peer did not complete in [`PEER_CONNECT_TIMEOUT`]: 447 was
    /// sent, the caller abandons its attempt.
    ConnectTimeout,
    /// No ConnectionBind came in [`CONNECTION_BIND_TIMEOUT`].
    BindTimeout,
    /// The peer side closed ([`TurnServer::handle_peer_connection_closed`]).
    PeerClosed,
    /// The client data connection closed ([`TurnServer::handle_connection_closed`]).
    ClientClosed,
    /// The allocation ended (RFC 6062 §5.5).
    AllocationDeleted,
}

/// Where a peer data connection stands, in protocol order.
#[derive(Clone, Debug)]
enum ConnectionState {
    /// A Connect asked for it; the caller is connecting (§5.2). The answer waits here.
    AwaitConnected(Box<PendingConnect>),
    /// Established (Connect answered, or ConnectionAttempt sent); waits for a ConnectionBind.
    AwaitBind,
    /// Bound to a client data connection: the caller relays raw bytes (§5.4).
    Bound(FiveTuple),
}

/// A Connect waiting for the caller's connection to the peer.
#[derive(Clone, Debug)]
struct PendingConnect {
    control: FiveTuple,
    transaction_id: TransactionId,
    signer: Signer,
}

/// One peer data connection.
#[derive(Clone, Debug)]
struct PeerConnection {
    allocation: AllocationId,
    peer: SocketAddr,
    state: ConnectionState,
    /// The connect or bind deadline; none once bound.
    deadline: Option<Instant>,
}

/// The table of peer data connections, keyed by CONNECTION-ID, with their deadlines and the
/// client data connections that are bound.
#[derive(Debug, Default)]
pub(super) struct PeerConnections {
    table: HashMap<u32, PeerConnection>,
    by_data: HashMap<FiveTuple, u32>,
    deadlines: BTreeSet<(Instant, u32)>,
}

impl PeerConnections {
    /// The earliest connect or bind deadline.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.first().map(|(at, _)| *at)
    }

    /// How many peer data connections exist, in any state.
    pub(super) fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether allocation `id` has a connection with `peer`.
    fn has_peer(&self, id: AllocationId, peer: SocketAddr) -> bool {
        self.table
            .values()
            .any(|c| c.allocation == id && c.peer == peer)
    }

    /// How many connections allocation `id` has.
    fn count_of(&self, id: AllocationId) -> usize {
        self.table.values().filter(|c| c.allocation == id).count()
    }

    fn insert(&mut self, cid: u32, connection: PeerConnection) {
        if let Some(at) = connection.deadline {
            self.deadlines.insert((at, cid));
        }
        self.table.insert(cid, connection);
    }

    fn remove(&mut self, cid: u32) -> Option<PeerConnection> {
        let connection = self.table.remove(&cid)?;
        if let Some(at) = connection.deadline {
            self.deadlines.remove(&(at, cid));
        }
        if let ConnectionState::Bound(data) = connection.state {
            self.by_data.remove(&data);
        }
        if self.table.is_empty() {
            self.table.shrink_to(0);
            self.by_data.shrink_to(0);
        }
        Some(connection)
    }

    fn set_deadline(&mut self, cid: u32, at: Option<Instant>) {
        if let Some(c) = self.table.get_mut(&cid) {
            if let Some(old) = c.deadline.take() {
                self.deadlines.remove(&(old, cid));
            }
            c.deadline = at;
            if let Some(at) = at {
                self.deadlines.insert((at, cid));
            }
        }
    }

    /// The connections of allocation `id`.
    fn of_allocation(&self, id: AllocationId) -> Vec<u32> {
        self.table
            .iter()
            .filter(|(_, c)| c.allocation == id)
            .map(|(cid, _)| *cid)
            .collect()
    }
}

/// A refusal of Connect or ConnectionBind: the error code.
pub(super) type Code = u16;

impl<R: RngCore + CryptoRng> TurnServer<R> {
    /// The caller's TCP connection from the relayed address to the peer of
    /// [`ServerEvent::ConnectToPeer`] `connection` is established: the Connect success with
    /// its CONNECTION-ID goes to the client, and the connection waits 30 s for its
    /// ConnectionBind (RFC 6062 §5.2). Buffer what the peer sends until then. Returns
    /// whether the connection was awaited (false: unknown, or already timed out — close it).
    pub fn handle_peer_connected(&mut self, now: Instant, connection: ConnectionId) -> bool {
        let cid = connection.0;
        let Some(c) = self.peer_connections.table.get_mut(&cid) else {
            return false;
        };
        let ConnectionState::AwaitConnected(pending) =
            std::mem::replace(&mut c.state, ConnectionState::AwaitBind)
        else {
            return false;
        };
        self.peer_connections
            .set_deadline(cid, Some(saturating_add(now, CONNECTION_BIND_TIMEOUT)));
        let message_type = MessageType::new(Method::CONNECT, Class::Success);
        let mut b = MessageBuilder::new_bytes(message_type, pending.transaction_id);
        if b.add(&connection).is_ok() {
            self.finish(pending.control, b, Some(&pending.signer));
        }
        true
    }

    /// The caller's TCP connection to the peer of [`ServerEvent::ConnectToPeer`]
    /// `connection` failed: the client gets 447 Connection Timeout or Failure (RFC 6062
    /// §5.2) and the connection is forgotten. Returns whether it was awaited.
    pub fn handle_peer_connect_failed(&mut self, now: Instant, connection: ConnectionId) -> bool {
        let _ = now;
        let awaited = matches!(
            self.peer_connections.table.get(&connection.0),
            Some(PeerConnection {
                state: ConnectionState::AwaitConnected(_),
                ..
            })
        );
        if awaited {
            self.close_peer_connection(connection.0, PeerConnectionClose::ConnectFailed);
        }
        awaited
    }

    /// A peer connected to the relayed address `relayed` of a TCP allocation, from `peer`,
    /// and the caller accepted it (RFC 6062 §5.3). If the allocation has a permission for
    /// the peer, a ConnectionAttempt indication goes to the client and the connection waits
    /// 30 s for its ConnectionBind; buffer what the peer sends until then. On an error the
    /// caller closes the connection: nothing was sent and nothing changed.
    pub fn handle_peer_connection_accepted(
        &mut self,
        now: Instant,
        relayed: SocketAddr,
        peer: SocketAddr,
    ) -> Result<ConnectionId, PeerConnectionError> {
        let id = *self
            .by_relay
            .get(&relayed)
            .ok_or(PeerConnectionError::NoAllocation)?;
        let allocation = self
            .allocations
            .get(&id)
            .filter(|a| a.tcp)
            .ok_or(PeerConnectionError::NoAllocation)?;
        if !allocation.has_permission(now, peer.ip()) {
            return Err(PeerConnectionError::NoPermission);
        }
        if !self.is_peer_allowed(peer) {
            return Err(PeerConnectionError::PeerDenied);
        }
        if self.peer_connections.has_peer(id, peer) {
            return Err(PeerConnectionError::AlreadyExists);
        }
        let control = allocation.tuple;
        if !self.peer_connection_fits(id) {
            return Err(PeerConnectionError::TableFull);
        }
        let cid = self
            .new_connection_id()
            .ok_or(PeerConnectionError::TableFull)?;
        let message_type = MessageType::new(Method::CONNECTION_ATTEMPT, Class::Indication);
        let mut b = MessageBuilder::new_bytes(message_type, TransactionId::random(&mut self.rng));
        let built = b
            .add(&ConnectionId(cid))
            .and_then(|b| b.add(&XorPeerAddress(peer)))
            .and_then(|b| b.add_fingerprint())
            .is_ok();
        let transmit = Transmit {
            transport: control.transport,
            source: control.server,
            destination: control.client,
            payload: b.into_bytes(),
        };
        if !built || !self.enqueue(transmit, Some(id)) {
            self.stats.dropped += 1;
            return Err(PeerConnectionError::TableFull);
        }
        self.peer_connections.insert(
            cid,
            PeerConnection {
                allocation: id,
                peer,
                state: ConnectionState::AwaitBind,
                deadline: Some(saturating_add(now, CONNECTION_BIND_TIMEOUT)),
            },
        );
        Ok(ConnectionId(cid))
    }

    /// The peer side of `connection` closed (or the caller gave up on it): the connection is
    /// forgotten, with [`ServerEvent::PeerConnectionClosed`] naming the client data
    /// connection to close, if one was bound (RFC 6062 §5.5). Returns whether it existed.
    pub fn handle_peer_connection_closed(
        &mut self,
        now: Instant,
        connection: ConnectionId,
    ) -> bool {
        let _ = now;
        self.close_peer_connection(connection.0, PeerConnectionClose::PeerClosed)
    }

    /// How many peer data connections exist (connecting, waiting for ConnectionBind, or
    /// bound).
    pub fn peer_connection_count(&self) -> usize {
        self.peer_connections.len()
    }

    /// The peer data connection bound to the client data connection `data`, if any.
    pub fn bound_connection(&self, data: &FiveTuple) -> Option<ConnectionId> {
        self.peer_connections
            .by_data
            .get(data)
            .map(|cid| ConnectionId(*cid))
    }

    /// Connect (RFC 6062 §5.2), authenticated: the caller is asked to connect; the answer
    /// waits for it.
    pub(super) fn connect(
        &mut self,
        now: Instant,
        tuple: FiveTuple,
        transaction_id: TransactionId,
        peer: Option<SocketAddr>,
        signer: &Signer,
    ) -> Result<(), Code> {
        let id = self
            .by_tuple
            .get(&tuple)
            .copied()
            .ok_or(ErrorCode::ALLOCATION_MISMATCH)?;
        let allocation = self
            .allocations
            .get(&id)
            .ok_or(ErrorCode::ALLOCATION_MISMATCH)?;
        if allocation.username != signer.username {
            return Err(ErrorCode::WRONG_CREDENTIALS);
        }
        if !allocation.tcp {
            return Err(ErrorCode::BAD_REQUEST);
        }
        let peer = peer.ok_or(ErrorCode::BAD_REQUEST)?;
        let relayed = allocation
            .relay_for(peer.ip())
            .ok_or(ErrorCode::PEER_ADDRESS_FAMILY_MISMATCH)?;
        if !self.config.peer_filter.is_allowed(peer.ip()) || !self.is_peer_allowed(peer) {
            return Err(ErrorCode::FORBIDDEN);
        }
        if self.peer_connections.has_peer(id, peer) {
            return Err(ErrorCode::CONNECTION_ALREADY_EXISTS);
        }
        if !self.peer_connection_fits(id) {
            return Err(ErrorCode::INSUFFICIENT_CAPACITY);
        }
        let cid = self
            .new_connection_id()
            .ok_or(ErrorCode::INSUFFICIENT_CAPACITY)?;
        self.peer_connections.insert(
            cid,
            PeerConnection {
                allocation: id,
                peer,
                state: ConnectionState::AwaitConnected(Box::new(PendingConnect {
                    control: tuple,
                    transaction_id,
                    signer: signer.clone(),
                })),
                deadline: Some(saturating_add(now, PEER_CONNECT_TIMEOUT)),
            },
        );
        self.push_event(ServerEvent::ConnectToPeer {
            connection: ConnectionId(cid),
            id,
            relayed,
            peer,
        });
        Ok(())
    }

    /// ConnectionBind (RFC 6062 §5.4), authenticated: `tuple` becomes the client data
    /// connection of `connection`, with [`ServerEvent::ConnectionBound`]; the caller
    /// queues the success.
    pub(super) fn connection_bind(
        &mut self,
        tuple: FiveTuple,
        connection: Option<ConnectionId>,
        signer: &Signer,
    ) -> Result<(), Code> {
        if !tuple.transport.is_reliable()
            || self.by_tuple.contains_key(&tuple)
            || self.peer_connections.by_data.contains_key(&tuple)
        {
            return Err(ErrorCode::BAD_REQUEST);
        }
        let cid = connection.ok_or(ErrorCode::BAD_REQUEST)?.0;
        let c = self
            .peer_connections
            .table
            .get(&cid)
            .filter(|c| matches!(c.state, ConnectionState::AwaitBind))
            .ok_or(ErrorCode::BAD_REQUEST)?;
        let owner = self
            .allocations
            .get(&c.allocation)
            .map(|a| a.username.as_str());
        if owner != Some(signer.username.as_str()) {
            return Err(ErrorCode::WRONG_CREDENTIALS);
        }
        let peer = c.peer;
        if let Some(c) = self.peer_connections.table.get_mut(&cid) {
            c.state = ConnectionState::Bound(tuple);
        }
        self.peer_connections.set_deadline(cid, None);
        self.peer_connections.by_data.insert(tuple, cid);
        self.push_event(ServerEvent::ConnectionBound {
            connection: ConnectionId(cid),
            data: tuple,
            peer,
        });
        Ok(())
    }

    /// For a ConnectionBind naming a connection waiting for it, the client address of its
    /// allocation's control connection (whose nonce the request carries).
    pub(super) fn control_client(&self, message: &Message<'_>) -> Option<SocketAddr> {
        if message.method() != Method::CONNECTION_BIND {
            return None;
        }
        let ConnectionId(cid) = message.get::<ConnectionId>()?.ok()?;
        let c = self.peer_connections.table.get(&cid)?;
        self.allocations.get(&c.allocation).map(|a| a.tuple.client)
    }

    /// Closes the connections whose connect or bind deadline has come.
    pub(super) fn expire_peer_connections(&mut self, now: Instant) {
        while let Some(&(at, cid)) = self.peer_connections.deadlines.first() {
            if at > now {
                break;
            }
            let reason = match self.peer_connections.table.get(&cid).map(|c| &c.state) {
                Some(ConnectionState::AwaitConnected(_)) => PeerConnectionClose::ConnectTimeout,
                _ => PeerConnectionClose::BindTimeout,
            };
            if !self.close_peer_connection(cid, reason) {
                // Not in the table: a stale deadline.
                self.peer_connections.deadlines.remove(&(at, cid));
            }
        }
    }

    /// Closes every connection of allocation `id`, which is being deleted (§5.5).
    pub(super) fn close_peer_connections_of(&mut self, id: AllocationId) {
        if self.peer_connections.len() == 0 {
            return;
        }
        for cid in self.peer_connections.of_allocation(id) {
            self.close_peer_connection(cid, PeerConnectionClose::AllocationDeleted);
        }
    }

    /// The client data connection `tuple` closed: its peer connection goes too (§5.5).
    pub(super) fn data_connection_closed(&mut self, tuple: FiveTuple) -> bool {
        match self.peer_connections.by_data.get(&tuple).copied() {
            Some(cid) => self.close_peer_connection(cid, PeerConnectionClose::ClientClosed),
            None => false,
        }
    }

    /// Removes connection `cid`, answering 447 if its Connect still waited, and tells the
    /// caller.
    fn close_peer_connection(&mut self, cid: u32, reason: PeerConnectionClose) -> bool {
        let Some(c) = self.peer_connections.remove(cid) else {
            return false;
        };
        let data = match c.state {
            ConnectionState::AwaitConnected(pending) => {
                let message_type = MessageType::new(Method::CONNECT, Class::Error);
                let mut b = MessageBuilder::new_bytes(message_type, pending.transaction_id);
                if let Ok(code) = ErrorCode::new(ErrorCode::CONNECTION_TIMEOUT_OR_FAILURE) {
                    if b.add(&code).is_ok() {
                        self.stats.errors += 1;
                        self.finish(pending.control, b, Some(&pending.signer));
                    }
                }
                None
            }
            ConnectionState::AwaitBind => None,
            ConnectionState::Bound(data) => Some(data),
        };
        self.push_event(ServerEvent::PeerConnectionClosed {
            connection: ConnectionId(cid),
            id: c.allocation,
            peer: c.peer,
            data,
            reason,
        });
        true
    }

    /// Whether allocation `id` may have one more connection.
    fn peer_connection_fits(&self, id: AllocationId) -> bool {
        self.peer_connections.len() < self.config.max_peer_connections
            && self.peer_connections.count_of(id) < self.config.max_permissions
    }

    /// A fresh CONNECTION-ID: random, not zero, not in use, its top byte
    /// [`TurnServerConfig::connection_tag`](super::TurnServerConfig::connection_tag) if set.
    fn new_connection_id(&mut self) -> Option<u32> {
        for _ in 0..16 {
            let mut cid = self.rng.next_u32();
            if let Some(tag) = self.config.connection_tag {
                cid = (cid & 0x00FF_FFFF) | u32::from(tag) << 24;
            }
            if cid != 0 && !self.peer_connections.table.contains_key(&cid) {
                return Some(cid);
            }
        }
        None
    }
}

/// The top byte of a CONNECTION-ID: the [`TurnServerConfig::connection_tag`] of the
/// machine that made it. A driver running several machines reads it from a ConnectionBind
/// ([`connection_bind_id`]) to hand the new client connection to that machine.
///
/// [`TurnServerConfig::connection_tag`]: super::TurnServerConfig::connection_tag
pub const fn connection_tag(connection: ConnectionId) -> u8 {
    (connection.0 >> 24) as u8
}

/// The CONNECTION-ID of `frame` if it is a ConnectionBind request (type 0x000B); nothing else
/// is parsed.
pub fn connection_bind_id(frame: &[u8]) -> Option<ConnectionId> {
    if frame.get(..2) != Some(&[0x00, 0x0B]) {
        return None;
    }
    Message::parse(frame).ok()?.get::<ConnectionId>()?.ok()
}
