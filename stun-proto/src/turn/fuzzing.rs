//! Entry points for the TURN fuzz targets in `fuzz/` (`turn_server`, `turn_framer`,
//! `turn_client`, `turn_pair`) and for the corpus replay in `cargo test`. Not part of the
//! public API.
//!
//! The server target can reach past authentication: an opcode asks the entry point to sign
//! the fuzzer's attributes as a known user with the last nonce the server handed out, so
//! Allocate, Refresh, CreatePermission and ChannelBind are explored, not only the 401, and
//! RFC 6062's Connect and ConnectionBind, with the caller's side of TCP allocations (peer
//! connections established, failed, accepted, closed; data connections closed).

// A driver of the machines, like an example: it may index its own fixed tables.
#![allow(clippy::indexing_slicing)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

mod pair;
pub use pair::pair;

use bytes::BytesMut;

use super::client::{TurnClient, TurnClientConfig};
use super::framing::{Frame, StreamFramer};
use super::server::{FiveTuple, Handled, PeerFilter, ServerEvent, TurnServer, TurnServerConfig};
use super::{ChannelData, is_channel_data};
use crate::attribute::{
    AttributeType, ConnectionId, Nonce, PasswordAlgorithm, RawAttribute, Realm, Username,
};
use crate::credentials::IntegrityKey;
use crate::fuzzing::FuzzRng;
use crate::header::{Class, MessageType, Method};
use crate::message::Message;
use crate::transmit::TransportProtocol;
use crate::{MessageBuilder, TransactionId};

/// Reads a two-byte length and that many bytes (fewer at the end of the input).
fn chunk<'a>(data: &mut &'a [u8]) -> &'a [u8] {
    let Some((&[hi, lo], rest)) = data.split_first_chunk::<2>() else {
        *data = &[];
        return &[];
    };
    let len = usize::from(u16::from_be_bytes([hi, lo])).min(rest.len());
    let (head, tail) = rest.split_at(len);
    *data = tail;
    head
}

/// Drives a [`TurnServer`] (two relay addresses per family, loopback allowed, small
/// bounds) with a sequence of operations, checking its invariants: every datagram is
/// relayed, answered, dropped or handed back; relayed data goes from one of the server's
/// relay addresses; answers are well-formed STUN from the listening address; the queues
/// stay bounded; deadlines are never in the past after `handle_timeout`.
///
/// Format: a sequence of one-byte opcodes, each followed by a two-byte length and bytes.
/// `op % 8`: 0–1 a client datagram over the UDP or TCP 5-tuple; 2 the same, over a second
/// UDP 5-tuple; 3 a peer datagram to a relay address (`op / 8` picks address and peer), 6
/// the same queued, after an ICMP error built from its first three bytes; 4 a
/// signed request whose attributes are the bytes read as (type u16, length u8, value)
/// records, whose method `op / 8 % 6` picks (Allocate, Refresh, CreatePermission,
/// ChannelBind, Connect, ConnectionBind — the last with the latest CONNECTION-ID unless
/// the records carry one) and whose 5-tuple `op / 48` picks (the first UDP one, or the TCP
/// one); 7 the same from the second UDP 5-tuple or a second TCP one (a data connection);
/// 5 with `op / 8` = 0 time moves on `len` seconds, else the caller's side of RFC 6062 for
/// the latest connection: 1 connected, 2 connect failed, 3 a peer (`len` picks relay
/// address and peer) accepted, 4 peer closed, 5 the data connection closed.
pub fn server(data: &[u8]) {
    // The fuzz harness is a driver, like an example: it supplies the one instant it needs.
    #[allow(clippy::disallowed_methods)]
    let start = Instant::now();
    let mut now = start;
    let listen: SocketAddr = ([192, 0, 2, 1], 3478).into();
    let relays: Vec<SocketAddr> = vec![
        ([192, 0, 2, 1], 50_000).into(),
        ([192, 0, 2, 1], 50_001).into(),
        "[2001:db8::1]:50000".parse().unwrap_or(listen),
        "[2001:db8::1]:50001".parse().unwrap_or(listen),
    ];
    let peers: [SocketAddr; 4] = [
        ([203, 0, 113, 5], 7000).into(),
        ([127, 0, 0, 1], 7001).into(),
        ([10, 0, 0, 1], 7002).into(),
        "[2001:db8::9]:7003".parse().unwrap_or(listen),
    ];
    let mut config = TurnServerConfig::new("fuzz.example", relays.clone());
    config.peer_filter = PeerFilter::allowing_loopback();
    config.max_permissions = 4;
    config.max_channels = 4;
    config.max_buffered_per_allocation = 1024;
    config.max_queued_transmits = 32;
    config.rfc5766_channel_numbers = true;
    let mut server = TurnServer::new(now, config, FuzzRng(7));
    let _ = server.add_user("alice", "secret");
    let key = IntegrityKey::long_term("alice", "fuzz.example", "secret", PasswordAlgorithm::Md5);
    let tuples = [
        FiveTuple {
            transport: TransportProtocol::Udp,
            client: ([198, 51, 100, 7], 50_000).into(),
            server: listen,
        },
        FiveTuple {
            transport: TransportProtocol::Tcp,
            client: ([198, 51, 100, 7], 50_001).into(),
            server: listen,
        },
        FiveTuple {
            transport: TransportProtocol::Udp,
            client: ([198, 51, 100, 8], 50_000).into(),
            server: listen,
        },
        FiveTuple {
            transport: TransportProtocol::Tcp,
            client: ([198, 51, 100, 7], 50_002).into(),
            server: listen,
        },
    ];
    let mut connection: Option<ConnectionId> = None;
    let mut nonce = String::from("obMatJos2");
    let mut out = [0u8; 2048];
    let mut counter = 0u8;
    let mut data = data;
    while let Some((&op, rest)) = data.split_first() {
        data = rest;
        let bytes = chunk(&mut data);
        let selector = usize::from(op / 8);
        match op % 8 {
            0..=2 => {
                let tuple = tuples[usize::from(op % 8)];
                match server.handle_client_datagram(now, tuple, bytes) {
                    Handled::Relay(t) => {
                        assert!(relays.contains(&t.source), "relayed from a relay address");
                        assert!(t.payload.len() <= bytes.len());
                    }
                    Handled::NotTurn => assert!(!is_channel_data(bytes)),
                    _ => {}
                }
            }
            3 | 6 => {
                let relay = relays[selector % relays.len()];
                let peer = peers[(selector / 4) % peers.len()];
                if op % 8 == 3 {
                    if let Handled::Relay(t) =
                        server.handle_peer_datagram_into(now, relay, peer, bytes, &mut out)
                    {
                        assert_eq!(t.source, listen);
                        let framed = is_channel_data(t.payload)
                            && ChannelData::parse(t.payload).is_ok_and(|c| c.data() == bytes);
                        assert!(framed || Message::parse(t.payload).is_ok());
                    }
                } else if let Some((&[t, c0, c1], _)) = bytes.split_first_chunk::<3>() {
                    // An ICMP error for the peer, when the bytes start with one.
                    let icmp = crate::attribute::Icmp {
                        icmp_type: t & 0x7F,
                        code: u16::from_be_bytes([c0, c1]) & 0x01FF,
                        error_data: bytes.len() as u32,
                    };
                    let _ = server.handle_peer_icmp(now, relay, peer, icmp);
                    let _ = server.handle_peer_datagram(now, relay, peer, bytes);
                } else {
                    let _ = server.handle_peer_datagram(now, relay, peer, bytes);
                }
            }
            4 | 7 => {
                let Ok(key) = &key else { continue };
                let method = [
                    Method::ALLOCATE,
                    Method::REFRESH,
                    Method::CREATE_PERMISSION,
                    Method::CHANNEL_BIND,
                    Method::CONNECT,
                    Method::CONNECTION_BIND,
                ][selector % 6];
                counter = counter.wrapping_add(1);
                let id = connection.filter(|_| method == Method::CONNECTION_BIND);
                let request = signed(method, [counter; 12].into(), bytes, &nonce, key, id);
                let tuple = match (op % 8, selector / 6 % 2) {
                    (4, 0) => tuples[0],
                    (4, _) => tuples[1],
                    (_, 0) => tuples[2],
                    _ => tuples[3],
                };
                let _ = server.handle_client_datagram(now, tuple, &request);
            }
            5 if selector > 0 => {
                let relay = relays[bytes.len() % relays.len()];
                let peer = peers[(bytes.len() / 4) % peers.len()];
                match (selector, connection) {
                    (1, Some(c)) => {
                        let _ = server.handle_peer_connected(now, c);
                    }
                    (2, Some(c)) => {
                        let _ = server.handle_peer_connect_failed(now, c);
                    }
                    (3, _) => {
                        if let Ok(c) = server.handle_peer_connection_accepted(now, relay, peer) {
                            connection = Some(c);
                        }
                    }
                    (4, Some(c)) => {
                        let _ = server.handle_peer_connection_closed(now, c);
                    }
                    _ => {
                        let _ = server.handle_connection_closed(now, tuples[3]);
                    }
                }
            }
            _ => {
                now += Duration::from_secs(bytes.len() as u64);
                server.handle_timeout(now);
                if let Some(next) = server.poll_timeout() {
                    assert!(
                        next > now,
                        "a deadline at or before now survived handle_timeout"
                    );
                }
            }
        }
        let mut queued = 0;
        while let Some(t) = server.poll_transmit() {
            queued += 1;
            assert!(queued <= 32 + 1, "the transmit queue passed its bound");
            assert_eq!(t.source, listen);
            if let Ok(m) = Message::parse(&t.payload) {
                if let Some(Ok(n)) = m.get::<Nonce>() {
                    nonce = n.as_str().to_owned();
                }
            } else {
                assert!(
                    is_channel_data(&t.payload),
                    "queued bytes are STUN or ChannelData"
                );
            }
        }
        while let Some(event) = server.poll_event() {
            match event {
                ServerEvent::ConnectToPeer {
                    connection: c,
                    relayed,
                    ..
                } => {
                    assert!(relays.contains(&relayed), "connects from a relay address");
                    connection = Some(c);
                }
                ServerEvent::ConnectionBound { data, .. } => {
                    assert!(data.transport.is_reliable(), "data connections are streams");
                    assert!(server.allocation_by_tuple(&data).is_none(), "no allocation");
                }
                _ => {}
            }
        }
        assert!(server.peer_connection_count() <= 4096);
    }
}

/// A request of `method` carrying `records` as raw attributes, signed as alice.
fn signed(
    method: Method,
    id: TransactionId,
    mut records: &[u8],
    nonce: &str,
    key: &IntegrityKey,
    connection: Option<ConnectionId>,
) -> bytes::Bytes {
    let mut b = MessageBuilder::new_bytes(MessageType::new(method, Class::Request), id);
    let mut has_connection_id = false;
    while let Some((&[t0, t1, len], rest)) = records.split_first_chunk::<3>() {
        let len = usize::from(len).min(rest.len());
        let (value, tail) = rest.split_at(len);
        records = tail;
        let attribute_type = AttributeType::new(u16::from_be_bytes([t0, t1]));
        has_connection_id |= attribute_type == AttributeType::CONNECTION_ID;
        if matches!(
            attribute_type,
            AttributeType::MESSAGE_INTEGRITY
                | AttributeType::MESSAGE_INTEGRITY_SHA256
                | AttributeType::FINGERPRINT
        ) {
            continue;
        }
        let _ = b.add(&RawAttribute {
            attribute_type,
            value,
        });
    }
    if let Some(connection) = connection.filter(|_| !has_connection_id) {
        let _ = b.add(&connection);
    }
    if let (Ok(user), Ok(realm), Ok(nonce)) = (
        Username::new("alice"),
        Realm::new("fuzz.example"),
        Nonce::new(nonce),
    ) {
        let _ = b
            .add(&user)
            .and_then(|b| b.add(&realm))
            .and_then(|b| b.add(&nonce));
    }
    let _ = b.add_message_integrity(key);
    b.into_bytes()
}

/// Splits `data` into a stream cut at fuzzer-chosen points and frames it, checking that
/// every frame is a whole message of the kind its first bits say, that the framer never
/// buffers past its bound, and that an error ends the stream.
///
/// Format: the first byte is the cut length (1..=256); the rest is the stream.
pub fn framer(data: &[u8]) {
    let Some((&cut, stream)) = data.split_first() else {
        return;
    };
    let cut = usize::from(cut) + 1;
    let mut framer = StreamFramer::new(4096);
    for piece in stream.chunks(cut) {
        if framer.push(piece).is_err() {
            assert!(framer.buffered() + piece.len() > 4096);
            return;
        }
        loop {
            match framer.next_frame() {
                Ok(Some(Frame::Stun(bytes))) => {
                    assert!(bytes.len() >= 20);
                    assert_eq!(bytes.first().map(|b| b >> 6), Some(0));
                    let _ = Message::parse(bytes);
                }
                Ok(Some(Frame::ChannelData(bytes))) => {
                    let parsed = ChannelData::parse(bytes);
                    assert!(parsed.is_ok(), "a ChannelData frame parses: {parsed:?}");
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
        assert!(framer.buffered() <= 4096);
    }
}

/// Drives a [`TurnClient`] (allocating, UDP) with arbitrary datagrams from the server or a
/// stranger and time steps, checking that nothing panics and that what is not from the
/// server is handed back untouched.
///
/// Format: one-byte opcodes; `0..=127`: time moves on that many × 250 ms; `128..=255`: a
/// datagram follows (two-byte length, bytes), from the server if bit 0 is clear.
pub fn client(data: &[u8]) {
    #[allow(clippy::disallowed_methods)]
    let mut now = Instant::now();
    let server: SocketAddr = ([192, 0, 2, 1], 3478).into();
    let stranger: SocketAddr = ([203, 0, 113, 9], 1).into();
    let config = TurnClientConfig::new(
        ([10, 0, 0, 2], 40_000).into(),
        server,
        TransportProtocol::Udp,
        "alice",
        "secret",
    );
    let mut client = TurnClient::new(config, FuzzRng(3));
    let _ = client.handle_allocate(now);
    let mut data = data;
    while let Some((&op, rest)) = data.split_first() {
        data = rest;
        if op < 128 {
            now += Duration::from_millis(250 * u64::from(op));
            client.handle_timeout(now);
        } else {
            let bytes = chunk(&mut data);
            let from = if op & 1 == 0 { server } else { stranger };
            let handled =
                client.handle_datagram(now, client.transport(), from, client.local(), bytes);
            if from == stranger {
                assert_eq!(handled, super::client::Handled::NotTurn(bytes));
            }
        }
        let mut buf = BytesMut::zeroed(64);
        let _ = client.handle_send_into(now, stranger, b"x", &mut buf);
        while client.poll_transmit().is_some() {}
        while client.poll_event().is_some() {}
    }
}
