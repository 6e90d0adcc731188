//! The server's relay paths (RFC 8656 §10.2 Send indications and §12.5 ChannelData from
//! clients, §10.3 Data indications and §12.5 ChannelData to them): each datagram routed by
//! 5-tuple or relayed address, checked against the permissions, and handed back borrowed
//! (from the input, or encoded into the caller's buffer) so relaying allocates nothing.

use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use rand_core::{CryptoRng, RngCore};

use super::allocation::Allocation;
use super::bandwidth::Direction;
use super::{DropReason, FiveTuple, Handled, TurnServer};
use crate::attribute::{Data, Icmp, XorPeerAddress};
use crate::builder::MessageBuilder;
use crate::header::{Class, MessageType, Method, TransactionId};
use crate::message::Message;
use crate::transmit::{Transmit, TransportProtocol};
use crate::turn::TransmitRef;
use crate::turn::channel_data::{ChannelData, encode_channel_data};

impl<R: RngCore + CryptoRng> TurnServer<R> {
    /// Reports an ICMP error the caller's relay socket `relay` received for a datagram it
    /// sent to `peer` (RFC 8656 §11.5): if the allocation has a permission for the peer, a
    /// Data indication with XOR-PEER-ADDRESS and ICMP (no DATA) is queued for the client,
    /// within the allocation's buffered-data bound.
    pub fn handle_peer_icmp(
        &mut self,
        now: Instant,
        relay: SocketAddr,
        peer: SocketAddr,
        icmp: Icmp,
    ) -> Result<(), DropReason> {
        let Some(&id) = self.by_relay.get(&relay) else {
            self.stats.dropped += 1;
            return Err(DropReason::NoAllocation);
        };
        let Some(allocation) = self.allocations.get(&id) else {
            self.stats.dropped += 1;
            return Err(DropReason::NoAllocation);
        };
        if !allocation.has_permission(now, peer.ip()) {
            self.stats.dropped += 1;
            return Err(DropReason::NoPermission);
        }
        let tuple = allocation.tuple;
        let message_type = MessageType::new(Method::DATA, Class::Indication);
        let mut b = MessageBuilder::new_bytes(message_type, TransactionId::random(&mut self.rng));
        if b.add(&XorPeerAddress(peer))
            .and_then(|b| b.add(&icmp))
            .is_err()
        {
            self.stats.dropped += 1;
            return Err(DropReason::Malformed);
        }
        let transmit = Transmit {
            transport: tuple.transport,
            source: tuple.server,
            destination: tuple.client,
            payload: b.into_bytes(),
        };
        if self.enqueue(transmit, Some(id)) {
            Ok(())
        } else {
            self.stats.dropped += 1;
            Err(DropReason::BufferFull)
        }
    }

    /// ChannelData from a client (RFC 8656 §12.5): relayed to the bound peer, borrowed.
    pub(super) fn relay_channel_data<'a>(
        &mut self,
        now: Instant,
        tuple: FiveTuple,
        datagram: &'a [u8],
    ) -> Handled<'a> {
        let Ok(channel_data) = ChannelData::parse(datagram) else {
            return self.drop(DropReason::Malformed);
        };
        let Some(allocation) = self.client_allocation(tuple) else {
            return self.drop(DropReason::NoAllocation);
        };
        if allocation.tcp {
            return self.drop(DropReason::Unexpected);
        }
        let Some(peer) = allocation.channel_peer(now, channel_data.channel()) else {
            return self.drop(DropReason::UnknownChannel);
        };
        let Some(relay) = allocation.relay_for(peer.ip()) else {
            return self.drop(DropReason::PeerDenied);
        };
        if !allocation.bandwidth_allows(now, Direction::ToPeer, channel_data.data().len()) {
            return self.drop(DropReason::BandwidthExceeded);
        }
        self.stats.relayed_to_peers += 1;
        Handled::Relay(TransmitRef {
            transport: TransportProtocol::Udp,
            source: relay,
            destination: peer,
            payload: channel_data.data(),
        })
    }

    /// A Send indication (RFC 8656 §10.2): relayed if the peer has a permission.
    pub(super) fn relay_send_indication<'a>(
        &mut self,
        now: Instant,
        tuple: FiveTuple,
        message: &Message<'a>,
    ) -> Handled<'a> {
        let peer = message.get::<XorPeerAddress>().and_then(Result::ok);
        let data = message.get::<Data<'a>>().and_then(Result::ok);
        let (Some(XorPeerAddress(peer)), Some(Data(data))) = (peer, data) else {
            return self.drop(DropReason::Malformed);
        };
        let Some(allocation) = self.client_allocation(tuple) else {
            return self.drop(DropReason::NoAllocation);
        };
        let allocation = &*allocation;
        if allocation.tcp {
            // RFC 6062: a TCP allocation relays connections, not datagrams.
            return self.drop(DropReason::Unexpected);
        }
        if !allocation.has_permission(now, peer.ip()) {
            return self.drop(DropReason::NoPermission);
        }
        let relay = allocation.relay_for(peer.ip());
        let Some(relay) = relay.filter(|_| self.is_peer_allowed(peer)) else {
            return self.drop(DropReason::PeerDenied);
        };
        let within = self
            .by_tuple
            .get(&tuple)
            .and_then(|id| self.allocations.get_mut(id))
            .is_some_and(|a| a.bandwidth_allows(now, Direction::ToPeer, data.len()));
        if !within {
            return self.drop(DropReason::BandwidthExceeded);
        }
        self.stats.relayed_to_peers += 1;
        Handled::Relay(TransmitRef {
            transport: TransportProtocol::Udp,
            source: relay,
            destination: peer,
            payload: data,
        })
    }

    /// Offers a datagram a peer sent to the relayed address `relay`, and encodes what the
    /// client must get into `out` (ChannelData if a channel is bound, else a Data
    /// indication): the zero-allocation path. `out` needs `data.len() + 4` bytes (+3 over
    /// TCP) for ChannelData, `data.len() + 56` for an indication.
    ///
    /// While a response to that client waits in [`poll_transmit`](Self::poll_transmit)'s
    /// queue, the data is queued behind it instead ([`Handled::Queued`]): the client
    /// must see its ChannelBind or CreatePermission succeed before data that depends on it
    /// (RFC 8656 §9, §12; libnice drops ChannelData on a channel it has not seen
    /// confirmed), whatever order the caller serves its sockets in.
    pub fn handle_peer_datagram_into<'b>(
        &mut self,
        now: Instant,
        relay: SocketAddr,
        peer: SocketAddr,
        data: &[u8],
        out: &'b mut [u8],
    ) -> Handled<'b> {
        let Some(allocation) = self
            .by_relay
            .get(&relay)
            .and_then(|id| self.allocations.get_mut(id))
            .filter(|a| !a.tcp)
        else {
            self.stats.dropped += 1;
            return Handled::Dropped(DropReason::NoAllocation);
        };
        if !allocation.has_permission(now, peer.ip()) {
            self.stats.dropped += 1;
            return Handled::Dropped(DropReason::NoPermission);
        }
        if !allocation.bandwidth_allows(now, Direction::ToClient, data.len()) {
            self.stats.dropped += 1;
            self.stats.over_bandwidth += 1;
            return Handled::Dropped(DropReason::BandwidthExceeded);
        }
        let tuple = allocation.tuple;
        let id = self.by_relay.get(&relay).copied();
        let encoded = match allocation.channel_for_peer(now, peer) {
            Some(channel) => {
                let pad = tuple.transport.is_reliable();
                encode_channel_data(channel, data, pad, out)
                    .ok()
                    .and_then(|n| out.get(..n))
            }
            None => encode_data_indication(out, TransactionId::random(&mut self.rng), peer, data),
        };
        let Some(payload) = encoded else {
            self.stats.dropped += 1;
            return Handled::Dropped(DropReason::BufferTooSmall);
        };
        if self.has_queued_for(&tuple) {
            let transmit = Transmit {
                transport: tuple.transport,
                source: tuple.server,
                destination: tuple.client,
                payload: Bytes::copy_from_slice(payload),
            };
            if !self.enqueue(transmit, id) {
                self.stats.dropped += 1;
                return Handled::Dropped(DropReason::BufferFull);
            }
            self.stats.relayed_to_clients += 1;
            self.stats.held_behind_responses += 1;
            return Handled::Queued;
        }
        self.stats.relayed_to_clients += 1;
        Handled::Relay(TransmitRef {
            transport: tuple.transport,
            source: tuple.server,
            destination: tuple.client,
            payload,
        })
    }

    /// Like [`handle_peer_datagram_into`](Self::handle_peer_datagram_into), but queues the
    /// result for [`poll_transmit`](Self::poll_transmit), within the allocation's
    /// buffered-data bound.
    pub fn handle_peer_datagram(
        &mut self,
        now: Instant,
        relay: SocketAddr,
        peer: SocketAddr,
        data: &[u8],
    ) -> Result<(), DropReason> {
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.resize(data.len() + 64, 0);
        let result = match self.handle_peer_datagram_into(now, relay, peer, data, &mut scratch) {
            Handled::Relay(t) => {
                let transmit = Transmit {
                    transport: t.transport,
                    source: t.source,
                    destination: t.destination,
                    payload: Bytes::copy_from_slice(t.payload),
                };
                let id = self.by_relay.get(&relay).copied();
                if self.enqueue(transmit, id) {
                    Ok(())
                } else {
                    self.stats.relayed_to_clients -= 1;
                    self.stats.dropped += 1;
                    Err(DropReason::BufferFull)
                }
            }
            Handled::Dropped(reason) => Err(reason),
            // Queued (a peer's datagram is never answered nor the caller's).
            _ => Ok(()),
        };
        self.scratch = scratch;
        result
    }
}

impl<R> TurnServer<R> {
    /// The allocation of the client at `tuple`, if it has one.
    fn client_allocation(&mut self, tuple: FiveTuple) -> Option<&mut Allocation> {
        let id = self.by_tuple.get(&tuple)?;
        self.allocations.get_mut(id)
    }

    /// Whether something for the client of `tuple` waits in the transmit queue.
    fn has_queued_for(&self, tuple: &FiveTuple) -> bool {
        self.transmits.iter().any(|(t, _)| {
            t.destination == tuple.client
                && t.source == tuple.server
                && t.transport == tuple.transport
        })
    }
}

/// Writes a Data indication (RFC 8656 §10.3) into `out`.
pub(super) fn encode_data_indication<'b>(
    out: &'b mut [u8],
    id: TransactionId,
    peer: SocketAddr,
    data: &[u8],
) -> Option<&'b [u8]> {
    let message_type = MessageType::new(Method::DATA, Class::Indication);
    let mut b = MessageBuilder::new(out, message_type, id).ok()?;
    b.add(&XorPeerAddress(peer)).ok()?;
    b.add(&Data(data)).ok()?;
    Some(b.finish())
}
