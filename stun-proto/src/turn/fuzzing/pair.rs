//! A TURN client and a TURN server over a network the fuzzer controls (issue 21): the
//! fuzzer delivers, drops, duplicates and reorders what each side sent, forges datagrams
//! to the client as if from the server, lets a peer send to the relayed address, moves
//! time, and tells the client to allocate, permit, bind channels, send and close. After
//! every step the pair's invariants are checked (see [`pair`]).

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::chunk;
use crate::fuzzing::FuzzRng;
use crate::transmit::TransportProtocol;
use crate::turn::client::{Handled, TurnClient, TurnClientConfig};
use crate::turn::server::{self, FiveTuple, TurnServer, TurnServerConfig};

/// The most datagrams in flight one way; the oldest is lost beyond it.
const IN_FLIGHT: usize = 64;
/// The most TURN requests the client may have outstanding at once (allocation, refresh,
/// permissions and channels for the one peer, retransmitted or not).
const OUTSTANDING: usize = 16;

/// The authenticated state the client holds about the one peer: its allocation's relayed
/// address, whether the peer's permission is installed, the peer's channel. Only a
/// response carrying the right MESSAGE-INTEGRITY may change it.
type Authenticated = (Option<SocketAddr>, bool, Option<u16>);

/// Everything in flight, and what each side has sent.
struct Wire {
    to_server: Vec<Bytes>,
    to_client: Vec<Bytes>,
    /// What the server relayed toward the peer: (from which relayed address, bytes).
    to_peer: Vec<(SocketAddr, Bytes)>,
    /// Every payload the client asked to send to the peer.
    client_sent: HashSet<Vec<u8>>,
    /// Every payload the peer sent to a relayed address.
    peer_sent: HashSet<Vec<u8>>,
}

impl Wire {
    fn push(queue: &mut Vec<Bytes>, bytes: Bytes) {
        if queue.len() >= IN_FLIGHT {
            queue.remove(0);
        }
        queue.push(bytes);
    }
}

/// Drives the pair with a sequence of one-byte opcodes, each followed by a two-byte length
/// and that many bytes; `op % 12` is the operation and `op / 12` picks a datagram in flight
/// (or what to do): 0 deliver one to the server; 1 deliver one to the client; 2 and 3 lose
/// one of them; 4 and 5 duplicate one; 6 swap two toward the client; 7 time moves on
/// (the bytes' length × 100 ms); 8 a client command (allocate, permit the peer, bind its
/// channel, send the bytes to it, close); 9 the peer sends the bytes to the relayed
/// address; 10 deliver one datagram to the peer; 11 a forged datagram, the bytes, to the
/// client from the server's address.
///
/// After every step: data the client gets from the server was sent by the peer, and data
/// the peer gets was sent by the client; a forged datagram changes none of the client's
/// authenticated state (allocation, permission, channel); both machines' deadlines are not
/// in the past after `handle_timeout`; the client's outstanding requests and the server's
/// queue stay within their bounds.
pub fn pair(data: &[u8]) {
    // The fuzz harness is a driver, like an example: it supplies the one instant it needs.
    #[allow(clippy::disallowed_methods)]
    let mut now = Instant::now();
    let listen: SocketAddr = ([192, 0, 2, 1], 3478).into();
    let relays: Vec<SocketAddr> = vec![([192, 0, 2, 1], 50_000).into()];
    let peer: SocketAddr = ([203, 0, 113, 5], 7000).into();
    let tuple = FiveTuple {
        transport: TransportProtocol::Udp,
        client: ([198, 51, 100, 7], 40_000).into(),
        server: listen,
    };
    let mut config = TurnServerConfig::new("fuzz.example", relays.clone());
    config.max_queued_transmits = 32;
    let mut server = TurnServer::new(now, config, FuzzRng(11));
    if server.add_user("alice", "secret").is_err() {
        return;
    }
    let config = TurnClientConfig::new(
        tuple.client,
        listen,
        TransportProtocol::Udp,
        "alice",
        "secret",
    );
    let mut client = TurnClient::new(config, FuzzRng(12));
    let authenticated = |c: &TurnClient<FuzzRng>| -> Authenticated {
        (
            c.allocation().map(|a| a.relayed),
            c.has_permission(peer.ip()),
            c.channel(peer),
        )
    };
    let mut wire = Wire {
        to_server: Vec::new(),
        to_client: Vec::new(),
        to_peer: Vec::new(),
        client_sent: HashSet::new(),
        peer_sent: HashSet::new(),
    };
    let mut data = data;
    while let Some((&op, rest)) = data.split_first() {
        data = rest;
        let bytes = chunk(&mut data);
        let pick = usize::from(op / 12);
        match op % 12 {
            0 => {
                if let Some(d) = take(&mut wire.to_server, pick) {
                    if let server::Handled::Relay(t) = server.handle_client_datagram(now, tuple, &d)
                    {
                        assert!(relays.contains(&t.source), "relayed from a relay address");
                        let payload = Bytes::copy_from_slice(t.payload);
                        if wire.to_peer.len() < IN_FLIGHT {
                            wire.to_peer.push((t.source, payload));
                        }
                    }
                }
            }
            1 => {
                if let Some(d) = take(&mut wire.to_client, pick) {
                    if let Handled::Data {
                        peer: from, data, ..
                    } =
                        client.handle_datagram(now, client.transport(), listen, client.local(), &d)
                    {
                        assert_eq!(from, peer, "data from the one peer");
                        assert!(wire.peer_sent.contains(data), "data the peer sent");
                    }
                }
            }
            2 => drop(take(&mut wire.to_server, pick)),
            3 => drop(take(&mut wire.to_client, pick)),
            4 => duplicate(&mut wire.to_server, pick),
            5 => duplicate(&mut wire.to_client, pick),
            6 => {
                let n = wire.to_client.len();
                if n >= 2 {
                    wire.to_client.swap(pick % n, (pick / n) % n);
                }
            }
            7 => {
                now += Duration::from_millis(100 * bytes.len() as u64);
                client.handle_timeout(now);
                server.handle_timeout(now);
                for next in [client.poll_timeout(), server.poll_timeout()] {
                    assert!(
                        next.is_none_or(|t| t > now),
                        "a deadline at or before now survived handle_timeout"
                    );
                }
            }
            8 => command(&mut client, &mut wire, now, pick, peer, bytes),
            9 => {
                let relay = client.allocation().map_or(relays[0], |a| a.relayed);
                wire.peer_sent.insert(bytes.to_vec());
                let _ = server.handle_peer_datagram(now, relay, peer, bytes);
            }
            10 => {
                if !wire.to_peer.is_empty() {
                    let (_, d) = wire.to_peer.remove(pick % wire.to_peer.len());
                    assert!(
                        wire.client_sent.contains(d.as_ref()),
                        "data the client sent"
                    );
                }
            }
            _ => {
                let before = authenticated(&client);
                let _ =
                    client.handle_datagram(now, client.transport(), listen, client.local(), bytes);
                assert_eq!(
                    authenticated(&client),
                    before,
                    "a forged datagram changed the client's authenticated state"
                );
            }
        }
        while let Some(t) = client.poll_transmit() {
            assert_eq!((t.source, t.destination), (tuple.client, listen));
            Wire::push(&mut wire.to_server, t.payload);
        }
        let mut queued = 0;
        while let Some(t) = server.poll_transmit() {
            queued += 1;
            assert!(queued <= 32 + 1, "the server's queue passed its bound");
            assert_eq!((t.source, t.destination), (listen, tuple.client));
            Wire::push(&mut wire.to_client, t.payload);
        }
        assert!(client.outstanding_requests() <= OUTSTANDING);
        while client.poll_event().is_some() {}
        while server.poll_event().is_some() {}
    }
}

/// Removes datagram `pick` (modulo the count) from `queue`.
fn take(queue: &mut Vec<Bytes>, pick: usize) -> Option<Bytes> {
    (!queue.is_empty()).then(|| queue.remove(pick % queue.len()))
}

/// Sends datagram `pick` of `queue` twice.
fn duplicate(queue: &mut Vec<Bytes>, pick: usize) {
    if let Some(d) = queue.get(pick % queue.len().max(1)).cloned() {
        Wire::push(queue, d);
    }
}

/// A client command, `pick % 5`: allocate, permit the peer, bind its channel, send
/// `bytes` to it, close.
fn command(
    client: &mut TurnClient<FuzzRng>,
    wire: &mut Wire,
    now: Instant,
    pick: usize,
    peer: SocketAddr,
    bytes: &[u8],
) {
    match pick % 5 {
        0 => drop(client.handle_allocate(now)),
        1 => drop(client.handle_create_permission(now, peer.ip())),
        2 => drop(client.handle_bind_channel(now, peer)),
        3 => {
            if client.handle_send(now, peer, bytes).is_ok() {
                wire.client_sent.insert(bytes.to_vec());
            }
        }
        _ => client.handle_close(now),
    }
}
