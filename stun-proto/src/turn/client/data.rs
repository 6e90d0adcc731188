//! The client's data path (RFC 8656 §10.1 Send indications, §10.4 Data indications, §12.4
//! and §12.6 ChannelData, padded over TCP per §12.5): encoded into the caller's buffer and
//! decoded in place, so a packet costs no allocation. Data for a peer whose permission
//! (§9) or channel (§12) is still being asked for is held until the server confirms it:
//! the server would drop it, and the first ICE check through a relay would be lost.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use bytes::Bytes;
use rand_core::RngCore;

use super::{DropReason, Handled, MAX_HELD, MAX_QUEUED_TRANSMITS, SendError, State, TurnClient};
use crate::attribute::{Data, DontFragment, Icmp, XorPeerAddress};
use crate::builder::{BuildError, MessageBuilder};
use crate::header::{Class, MessageType, Method, TransactionId};
use crate::message::Message;
use crate::transaction;
use crate::transmit::{Transmit, TransportProtocol};
use crate::turn::TransmitRef;
use crate::turn::channel_data::{
    ChannelData, ChannelDataError, encode_channel_data, is_channel_data,
};

/// A datagram waiting for the permission or channel its peer needs.
#[derive(Clone, Debug)]
pub(super) struct Held {
    peer: SocketAddr,
    data: Bytes,
}

impl<R: RngCore> TurnClient<R> {
    /// Sends `data` to `peer` through the relay, queued for
    /// [`poll_transmit`](Self::poll_transmit): as ChannelData if a channel to the peer is
    /// bound, as a Send indication otherwise (RFC 8656 §10.1, §12.4). While the permission
    /// (or channel) for the peer is asked for and not confirmed, the data is held (up to 64
    /// datagrams) and queued, in order, when the success response arrives; it is dropped,
    /// and counted in [`TurnClientStats::dropped_held`](super::TurnClientStats::dropped_held), if the request fails.
    pub fn handle_send(
        &mut self,
        now: Instant,
        peer: SocketAddr,
        data: &[u8],
    ) -> Result<(), SendError> {
        if self.transmits.len() >= MAX_QUEUED_TRANSMITS {
            return Err(SendError::QueueFull(self.transmits.len()));
        }
        let waiting = self.held.iter().any(|h| h.peer.ip() == peer.ip());
        if waiting || self.is_pending(peer) {
            if !matches!(self.state, State::Allocated { .. }) {
                return Err(SendError::NotAllocated);
            }
            if self.held.len() >= MAX_HELD {
                return Err(SendError::QueueFull(self.held.len()));
            }
            self.held.push_back(Held {
                peer,
                data: Bytes::copy_from_slice(data),
            });
            self.stats.held += 1;
            return Ok(());
        }
        self.queue_encoded(now, peer, data)
    }

    /// Encodes `data` for `peer` into the buffer the queued transmit will own (one
    /// allocation).
    fn queue_encoded(
        &mut self,
        now: Instant,
        peer: SocketAddr,
        data: &[u8],
    ) -> Result<(), SendError> {
        let mut buf = bytes::BytesMut::zeroed(data.len() + 64);
        let sent = self.handle_send_into(now, peer, data, &mut buf)?;
        let (transport, source, destination, len) = (
            sent.transport,
            sent.source,
            sent.destination,
            sent.payload.len(),
        );
        buf.truncate(len);
        self.transmits.push_back(Transmit {
            transport,
            source,
            destination,
            payload: buf.freeze(),
        });
        Ok(())
    }

    /// Encodes `data` for `peer` into `out` (ChannelData when a channel is bound, a Send
    /// indication otherwise) and returns the datagram to send now: the zero-allocation path.
    /// `out` needs `data.len() + 4` bytes (plus padding over TCP) for ChannelData,
    /// `data.len() + 36` (or 56 for IPv6 peers) for an indication.
    pub fn handle_send_into<'b>(
        &mut self,
        now: Instant,
        peer: SocketAddr,
        data: &[u8],
        out: &'b mut [u8],
    ) -> Result<TransmitRef<'b>, SendError> {
        let _ = now;
        if !matches!(self.state, State::Allocated { .. }) {
            return Err(SendError::NotAllocated);
        }
        if self.config.relay_transport == super::RelayTransport::Tcp {
            return Err(SendError::TcpAllocation);
        }
        let transport = self.config.transport;
        let channel = self
            .peers
            .channel_for_peer(peer)
            .filter(|c| c.lease.is_installed())
            .map(|c| c.number);
        let payload: &'b [u8] = if let Some(channel) = channel {
            let pad = transport.is_reliable();
            let n = encode_channel_data(channel, data, pad, out).map_err(|e| match e {
                ChannelDataError::DataTooLong { .. } => SendError::TooLong {
                    len: data.len(),
                    reason: "ChannelData length field",
                },
                _ => SendError::TooLong {
                    len: data.len(),
                    reason: "caller's buffer",
                },
            })?;
            self.stats.sent_channel_data += 1;
            out.get(..n).unwrap_or_default()
        } else if self.has_permission(peer.ip()) {
            let id = TransactionId::random(&mut self.rng);
            let send = MessageType::new(Method::SEND, Class::Indication);
            let encoded =
                encode_send_indication(out, send, id, peer, data, self.config.dont_fragment);
            let payload = encoded.map_err(|e| SendError::TooLong {
                len: data.len(),
                reason: match e {
                    BuildError::BufferTooSmall { .. } => "caller's buffer",
                    _ => "STUN length field",
                },
            })?;
            self.stats.sent_indications += 1;
            payload
        } else if self.is_pending(peer) {
            return Err(SendError::PermissionPending(peer.ip()));
        } else {
            return Err(SendError::NoPermission(peer.ip()));
        };
        Ok(TransmitRef {
            transport,
            source: self.config.local,
            destination: self.server,
            payload,
        })
    }

    /// Offers a datagram (or, over TCP, one frame from the
    /// [`StreamFramer`](crate::turn::StreamFramer)) received over `transport` from `source`
    /// on local address `destination`: the client's only if it came from its server over
    /// its transport to its local address.
    pub fn handle_datagram<'a>(
        &mut self,
        now: Instant,
        transport: TransportProtocol,
        source: SocketAddr,
        destination: SocketAddr,
        datagram: &'a [u8],
    ) -> Handled<'a> {
        let config = &self.config;
        let ours = destination == config.local || self.is_binding_from(destination);
        if source != self.server || !ours || transport != config.transport {
            return Handled::NotTurn(datagram);
        }
        if is_channel_data(datagram) {
            let incoming = match ChannelData::parse(datagram) {
                Ok(cd) => match self.peers.bound_channel(cd.channel()) {
                    Some(c) => Handled::Data {
                        peer: c.peer,
                        data: cd.data(),
                        channel: Some(c.number),
                    },
                    None => Handled::Dropped(DropReason::UnknownChannel(cd.channel())),
                },
                Err(e) => Handled::Dropped(DropReason::MalformedChannelData(e)),
            };
            self.count(&incoming);
            return incoming;
        }
        let Ok(message) = Message::parse(datagram) else {
            return Handled::NotTurn(datagram);
        };
        let incoming = match (message.class(), message.method()) {
            (Class::Indication, Method::DATA) => {
                let peer = message.get::<XorPeerAddress>().and_then(Result::ok);
                let data = message.get::<Data<'a>>().and_then(Result::ok);
                let icmp = message.get::<Icmp>().and_then(Result::ok);
                match (peer, data, icmp) {
                    (Some(peer), Some(data), _) => Handled::Data {
                        peer: peer.0,
                        data: data.0,
                        channel: None,
                    },
                    (Some(peer), None, Some(icmp)) => Handled::Icmp { peer: peer.0, icmp },
                    _ => Handled::Dropped(DropReason::MalformedIndication),
                }
            }
            (Class::Indication, Method::CONNECTION_ATTEMPT) => {
                if self.on_connection_attempt(&message) {
                    Handled::Consumed
                } else {
                    Handled::Dropped(DropReason::MalformedIndication)
                }
            }
            (Class::Success | Class::Error, _)
                if message.has_fingerprint() && message.verify_fingerprint().is_err() =>
            {
                let reason = transaction::DropReason::BadFingerprint;
                Handled::Dropped(DropReason::Transaction(reason))
            }
            (Class::Success | Class::Error, _) => {
                match (self.transactions).handle_response(
                    now,
                    transport,
                    source,
                    destination,
                    &message,
                ) {
                    transaction::Handled::Response(_) => {
                        self.pump(now);
                        Handled::Consumed
                    }
                    // Not one of ours: one server is often the STUN server of the same
                    // socket too, and its Binding answers belong to the caller.
                    transaction::Handled::Dropped(transaction::DropReason::UnknownTransaction) => {
                        Handled::NotTurn(datagram)
                    }
                    transaction::Handled::Dropped(reason) => {
                        Handled::Dropped(DropReason::Transaction(reason))
                    }
                }
            }
            // Requests and other indications from the server's address are not TURN's.
            _ => Handled::NotTurn(datagram),
        };
        self.count(&incoming);
        incoming
    }

    /// Whether data to `peer` waits for a permission or channel asked for and not
    /// confirmed: neither is installed, and one of them is requested.
    fn is_pending(&self, peer: SocketAddr) -> bool {
        let installed_channel = self
            .peers
            .channel_for_peer(peer)
            .is_some_and(|c| c.lease.is_installed());
        let requested = self.peers.permission(peer.ip()).is_some()
            || self.peers.channel_for_peer(peer).is_some();
        requested && !installed_channel && !self.has_permission(peer.ip())
    }

    /// Sends the held datagrams whose permission or channel is now confirmed, in order, and
    /// drops those whose request failed or was forgotten; the rest keep waiting.
    pub(super) fn flush_held(&mut self, now: Instant) {
        if self.held.is_empty() {
            return;
        }
        // A peer that had to wait keeps its order: once one of its datagrams waits, the
        // later ones wait behind it.
        let mut still_waiting: Vec<IpAddr> = Vec::new();
        for held in std::mem::take(&mut self.held) {
            let peer = held.peer;
            if still_waiting.contains(&peer.ip()) || self.is_pending(peer) {
                still_waiting.push(peer.ip());
                self.held.push_back(held);
                continue;
            }
            if self.transmits.len() >= MAX_QUEUED_TRANSMITS
                || self.queue_encoded(now, peer, &held.data).is_err()
            {
                self.stats.dropped_held += 1;
            }
        }
    }

    pub(super) fn count(&mut self, incoming: &Handled<'_>) {
        match incoming {
            Handled::Data { .. } => self.stats.received_data += 1,
            Handled::Dropped(_) => self.stats.ignored += 1,
            _ => {}
        }
    }
}

/// Writes a Send indication (RFC 8656 §10.1) into `out`.
pub(super) fn encode_send_indication<'b>(
    out: &'b mut [u8],
    message_type: MessageType,
    id: TransactionId,
    peer: SocketAddr,
    data: &[u8],
    dont_fragment: bool,
) -> Result<&'b [u8], BuildError> {
    let mut b = MessageBuilder::new(out, message_type, id)?;
    b.add(&XorPeerAddress(peer))?;
    if dont_fragment {
        b.add(&DontFragment)?;
    }
    b.add(&Data(data))?;
    Ok(b.finish())
}
