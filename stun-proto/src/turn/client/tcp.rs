//! The client side of RFC 6062 TCP allocations: an Allocate with REQUESTED-TRANSPORT TCP
//! over the caller's TCP or TLS control connection (§4.1), Connect to reach a peer (§4.3),
//! ConnectionAttempt indications for peers that connect in (§4.4), and ConnectionBind, sent
//! over a new data connection the caller opened to the server, after which that connection
//! carries raw bytes and the client is done with it.
//!
//! ```text
//! handle_connect(peer) ─► Connect ─success─► PeerConnected { connection } ─┐
//!                                  └─error──► ConnectFailed (446, 447, 403) │
//! ConnectionAttempt indication ─► ConnectionAttempt { peer, connection } ───┤
//!            caller opens a data connection from `local` to the server      │
//! handle_connection_bind(connection, local) ─► ConnectionBind over it ◄─────┘
//!     ├─success─► ConnectionBound: raw bytes on that connection from now on
//!     └─error───► ConnectionBindFailed
//! ```

use std::net::SocketAddr;
use std::time::Instant;

use rand_core::RngCore;

use super::request::RequestKind;
use super::{RelayTransport, RequestFailure, State, TurnClient, TurnClientError, TurnEvent};
use crate::attribute::{ConnectionId, XorPeerAddress};
use crate::message::Message;
use crate::transaction::TransportFailure;

impl<R: RngCore> TurnClient<R> {
    /// Asks the server to open a TCP connection from the relayed address to `peer`
    /// (Connect, RFC 6062 §4.3); [`TurnEvent::PeerConnected`] or
    /// [`TurnEvent::ConnectFailed`] follows.
    pub fn handle_connect(
        &mut self,
        now: Instant,
        peer: SocketAddr,
    ) -> Result<(), TurnClientError> {
        self.check_tcp_allocation()?;
        self.check_peer(peer.ip())?;
        self.start(now, RequestKind::Connect { peer }, 0)
    }

    /// Binds the caller's new data connection, from `local` to the server, to
    /// `connection` (ConnectionBind, RFC 6062 §4.4): the request is a transmit from `local`
    /// (write it to that connection), and what that connection reads goes to
    /// [`handle_datagram`](Self::handle_datagram) with `local` as destination until
    /// [`TurnEvent::ConnectionBound`] (then it is raw data) or
    /// [`TurnEvent::ConnectionBindFailed`].
    pub fn handle_connection_bind(
        &mut self,
        now: Instant,
        connection: ConnectionId,
        local: SocketAddr,
    ) -> Result<(), TurnClientError> {
        self.check_tcp_allocation()?;
        self.start(now, RequestKind::ConnectionBind { connection, local }, 0)
    }

    /// The data connection from `local` failed (closed, reset) before its ConnectionBind
    /// was answered: that request fails at once with [`TurnEvent::ConnectionBindFailed`]
    /// ([`RequestFailure::Transport`]). The control connection and the allocation are not
    /// touched, unlike [`handle_transport_error`](Self::handle_transport_error), which is
    /// for the control connection. Returns whether a ConnectionBind was in flight there.
    pub fn handle_data_connection_error(
        &mut self,
        now: Instant,
        local: SocketAddr,
        failure: TransportFailure,
    ) -> bool {
        let Some(index) = self
            .pending
            .iter()
            .position(|p| p.kind.local() == Some(local))
        else {
            return false;
        };
        let p = self.pending.swap_remove(index);
        self.transactions.handle_cancel(now, p.id);
        self.on_connection_failure(p.kind, RequestFailure::Transport(failure));
        true
    }

    /// Whether `local` is a data connection with a ConnectionBind in flight.
    pub(super) fn is_binding_from(&self, local: SocketAddr) -> bool {
        self.pending.iter().any(|p| p.kind.local() == Some(local))
    }

    /// A ConnectionAttempt indication (RFC 6062 §4.4): reported if well formed.
    pub(super) fn on_connection_attempt(&mut self, message: &Message<'_>) -> bool {
        let peer = message.get::<XorPeerAddress>().and_then(Result::ok);
        let connection = message.get::<ConnectionId>().and_then(Result::ok);
        let tcp = self.config.relay_transport == RelayTransport::Tcp;
        match (peer, connection) {
            (Some(XorPeerAddress(peer)), Some(connection)) if tcp => {
                self.events
                    .push_back(TurnEvent::ConnectionAttempt { peer, connection });
                true
            }
            _ => false,
        }
    }

    /// A Connect or ConnectionBind succeeded.
    pub(super) fn on_connection_success(&mut self, kind: RequestKind, message: &Message<'_>) {
        match kind {
            RequestKind::Connect { peer } => {
                let event = match message.get::<ConnectionId>().and_then(Result::ok) {
                    Some(connection) => TurnEvent::PeerConnected { peer, connection },
                    None => TurnEvent::ConnectFailed {
                        peer,
                        failure: RequestFailure::MalformedResponse,
                    },
                };
                self.events.push_back(event);
            }
            RequestKind::ConnectionBind { connection, local } => {
                self.events
                    .push_back(TurnEvent::ConnectionBound { connection, local });
            }
            _ => {}
        }
    }

    /// A Connect or ConnectionBind failed.
    pub(super) fn on_connection_failure(&mut self, kind: RequestKind, failure: RequestFailure) {
        let event = match kind {
            RequestKind::Connect { peer } => TurnEvent::ConnectFailed { peer, failure },
            RequestKind::ConnectionBind { connection, local } => TurnEvent::ConnectionBindFailed {
                connection,
                local,
                failure,
            },
            _ => return,
        };
        self.events.push_back(event);
    }

    /// Refuses Connect and ConnectionBind without a TCP allocation.
    fn check_tcp_allocation(&self) -> Result<(), TurnClientError> {
        if !matches!(self.state, State::Allocated { .. }) {
            return Err(TurnClientError::NotAllocated);
        }
        if self.config.relay_transport != RelayTransport::Tcp
            || !self.config.transport.is_reliable()
        {
            return Err(TurnClientError::NotTcpAllocation);
        }
        Ok(())
    }
}
