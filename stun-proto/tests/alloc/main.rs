//! Decoding and validating a message, and encoding one into a caller's buffer, allocate
//! nothing: checked with a counting global allocator around the hot path an ICE agent runs.

// The counting global allocator implements `GlobalAlloc`, which is unsafe; it only delegates.
#[allow(unsafe_code)]
#[path = "../common/counting_allocator.rs"]
mod counting_allocator;

use stun_proto::attribute::{DecodeAttribute, IceControlling, Priority, UseCandidate, Username};
use stun_proto::{IntegrityKey, Message, MessageBuilder, MessageType};

use counting_allocator::allocations_during;

#[test]
fn ice_check_encode_and_decode_allocate_nothing() {
    let key = IntegrityKey::short_term("remote-password-0123456789").unwrap();
    let mut buf = [0u8; 256];
    let mut len = 0;
    let encode = allocations_during(|| {
        let mut b = MessageBuilder::new(&mut buf[..], MessageType::BINDING_REQUEST, [9; 12].into())
            .unwrap();
        b.add(&Username::new("abcd:efgh").unwrap()).unwrap();
        b.add(&Priority(1_853_817_087)).unwrap();
        b.add(&IceControlling(0x1122_3344_5566_7788)).unwrap();
        b.add(&UseCandidate).unwrap();
        b.add_message_integrity(&key).unwrap();
        b.add_fingerprint().unwrap();
        len = b.finish().len();
    });
    assert_eq!(encode, 0, "encoding into a caller's buffer allocated");

    let mut seen = None;
    let decode = allocations_during(|| {
        let m = Message::parse(&buf[..len]).unwrap();
        m.verify_fingerprint().unwrap();
        m.verify_integrity(&key).unwrap();
        let user = m.get::<Username>().unwrap().unwrap();
        let priority = m.get::<Priority>().unwrap().unwrap();
        seen = Some((user.as_str().len(), priority.0, m.has(UseCandidate::TYPE)));
    });
    assert_eq!(decode, 0, "decoding and validating allocated");
    assert_eq!(seen, Some((9, 1_853_817_087, true)));
}

#[test]
fn turn_relay_paths_allocate_nothing() {
    use std::net::SocketAddr;

    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;
    use stun_proto::TransportProtocol;
    use stun_proto::turn::client::{Handled, TurnClient, TurnClientConfig};
    use stun_proto::turn::server::{self, FiveTuple, TurnServer, TurnServerConfig};

    // Set up (this allocates): an allocation with channel 0x4000 bound to the peer.
    #[allow(clippy::disallowed_methods)] // one real instant for the virtual clock
    let now = std::time::Instant::now();
    let listen: SocketAddr = "192.0.2.1:3478".parse().unwrap();
    let tuple = FiveTuple {
        transport: TransportProtocol::Udp,
        client: "198.51.100.7:50000".parse().unwrap(),
        server: listen,
    };
    let relays = vec!["192.0.2.1:49152".parse().unwrap()];
    let config = TurnServerConfig::new("example.org", relays);
    let mut server = TurnServer::new(now, config, ChaCha20Rng::seed_from_u64(1));
    server.add_user("alice", "secret").unwrap();
    let config = TurnClientConfig::new(tuple.client, listen, tuple.transport, "alice", "secret");
    let mut client = TurnClient::new(config, ChaCha20Rng::seed_from_u64(2));
    let peer: SocketAddr = "203.0.113.5:7000".parse().unwrap();
    client.handle_allocate(now).unwrap();
    for bind in [false, true] {
        if bind {
            client.handle_bind_channel(now, peer).unwrap();
        }
        while let Some(t) = client.poll_transmit() {
            let _ = server.handle_client_datagram(now, tuple, &t.payload);
            while let Some(r) = server.poll_transmit() {
                let _ =
                    client.handle_datagram(now, r.transport, r.source, r.destination, &r.payload);
            }
        }
    }
    assert_eq!(client.channel(peer), Some(0x4000));
    let relayed = client.allocation().unwrap().relayed;

    let data = [0x5au8; 160];
    let mut client_out = [0u8; 256];
    let mut server_out = [0u8; 256];
    let mut relayed_bytes = 0;
    let count = allocations_during(|| {
        for _ in 0..1000 {
            // Client → server → peer.
            let sent = client
                .handle_send_into(now, peer, &data, &mut client_out)
                .unwrap();
            let server::Handled::Relay(to_peer) =
                server.handle_client_datagram(now, tuple, sent.payload)
            else {
                panic!("not relayed to the peer");
            };
            relayed_bytes += to_peer.payload.len();
            // Peer → server → client.
            let server::Handled::Relay(to_client) =
                server.handle_peer_datagram_into(now, relayed, peer, &data, &mut server_out)
            else {
                panic!("not relayed to the client");
            };
            let Handled::Data { data: got, .. } = client.handle_datagram(
                now,
                to_client.transport,
                to_client.source,
                to_client.destination,
                to_client.payload,
            ) else {
                panic!("not data");
            };
            relayed_bytes += got.len();
        }
    });
    assert_eq!(count, 0, "the TURN relay paths allocated");
    assert_eq!(relayed_bytes, 2 * 1000 * 160);

    // The indication paths (before a channel is bound) allocate nothing either.
    let other: SocketAddr = "203.0.113.6:7000".parse().unwrap();
    client.handle_create_permission(now, other.ip()).unwrap();
    while let Some(t) = client.poll_transmit() {
        let _ = server.handle_client_datagram(now, tuple, &t.payload);
        while let Some(r) = server.poll_transmit() {
            let _ = client.handle_datagram(now, r.transport, r.source, r.destination, &r.payload);
        }
    }
    assert!(client.has_permission(other.ip()));
    let mut relayed_bytes = 0;
    let count = allocations_during(|| {
        for _ in 0..1000 {
            let sent = client
                .handle_send_into(now, other, &data, &mut client_out)
                .unwrap();
            let server::Handled::Relay(to_peer) =
                server.handle_client_datagram(now, tuple, sent.payload)
            else {
                panic!("Send indication not relayed");
            };
            relayed_bytes += to_peer.payload.len();
            let server::Handled::Relay(to_client) =
                server.handle_peer_datagram_into(now, relayed, other, &data, &mut server_out)
            else {
                panic!("Data indication not relayed");
            };
            let Handled::Data { data: got, .. } = client.handle_datagram(
                now,
                to_client.transport,
                to_client.source,
                to_client.destination,
                to_client.payload,
            ) else {
                panic!("not data");
            };
            relayed_bytes += got.len();
        }
    });
    assert_eq!(count, 0, "the TURN indication paths allocated");
    assert_eq!(relayed_bytes, 2 * 1000 * 160);
}
