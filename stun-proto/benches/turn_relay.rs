//! The TURN relay hot paths, per packet of 160 bytes (a 20 ms Opus frame with headroom):
//! the server taking ChannelData from a client and naming the peer datagram (zero-copy),
//! the server wrapping a peer datagram as ChannelData for the client, and the client's
//! two directions. Target: under 100 ns per packet, nothing allocated (the allocation count
//! is checked in tests/alloc/main.rs). Results: docs/performance-turn.md.

// criterion_group! generates an undocumented public function; the fixture unwraps.
#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use stun_proto::TransportProtocol;
use stun_proto::turn::client::{Handled, TurnClient, TurnClientConfig};
use stun_proto::turn::server::{self, FiveTuple, TurnServer, TurnServerConfig};

/// A client and a server with an allocation and channel 0x4000 bound to the peer.
struct Fixture {
    now: Instant,
    client: TurnClient<ChaCha20Rng>,
    server: TurnServer<ChaCha20Rng>,
    tuple: FiveTuple,
    relayed: SocketAddr,
    peer: SocketAddr,
}

fn fixture() -> Fixture {
    #[allow(clippy::disallowed_methods)] // a benchmark needs one real instant
    let now = Instant::now();
    let listen: SocketAddr = "192.0.2.1:3478".parse().unwrap();
    let tuple = FiveTuple {
        transport: TransportProtocol::Udp,
        client: "198.51.100.7:50000".parse().unwrap(),
        server: listen,
    };
    let relays = vec!["192.0.2.1:49152".parse().unwrap()];
    let mut server = TurnServer::new(
        now,
        TurnServerConfig::new("example.org", relays),
        ChaCha20Rng::seed_from_u64(1),
    );
    server.add_user("alice", "secret").unwrap();
    let config = TurnClientConfig::new(tuple.client, listen, tuple.transport, "alice", "secret");
    let mut client = TurnClient::new(config, ChaCha20Rng::seed_from_u64(2));
    let peer: SocketAddr = "203.0.113.5:7000".parse().unwrap();
    client.handle_allocate(now).unwrap();
    let mut exchange = |client: &mut TurnClient<ChaCha20Rng>| {
        while let Some(t) = client.poll_transmit() {
            let _ = server.handle_client_datagram(now, tuple, &t.payload);
            while let Some(r) = server.poll_transmit() {
                let _ =
                    client.handle_datagram(now, r.transport, r.source, r.destination, &r.payload);
            }
        }
    };
    exchange(&mut client);
    client.handle_bind_channel(now, peer).unwrap();
    exchange(&mut client);
    assert_eq!(client.channel(peer), Some(0x4000));
    let relayed = client.allocation().unwrap().relayed;
    Fixture {
        now,
        client,
        server,
        tuple,
        relayed,
        peer,
    }
}

fn relay(c: &mut Criterion) {
    let Fixture {
        now,
        mut client,
        mut server,
        tuple,
        relayed,
        peer,
    } = fixture();
    let data = [0x5au8; 160];
    let mut channel_data = [0u8; 164];
    channel_data[..4].copy_from_slice(&[0x40, 0x00, 0x00, 160]);
    channel_data[4..].copy_from_slice(&data);
    let mut out = [0u8; 256];

    let mut g = c.benchmark_group("turn_relay_160B");
    g.throughput(Throughput::Elements(1));
    g.bench_function("server: client ChannelData -> peer datagram", |b| {
        b.iter(|| {
            let server::Handled::Relay(t) =
                server.handle_client_datagram(now, tuple, black_box(&channel_data))
            else {
                panic!("not relayed")
            };
            black_box(t.payload.len())
        })
    });
    g.bench_function("server: peer datagram -> client ChannelData", |b| {
        b.iter(|| {
            let server::Handled::Relay(t) =
                server.handle_peer_datagram_into(now, relayed, peer, black_box(&data), &mut out)
            else {
                panic!("not relayed")
            };
            black_box(t.payload.len())
        })
    });
    g.bench_function("client: send as ChannelData", |b| {
        b.iter(|| {
            let t = client
                .handle_send_into(now, peer, black_box(&data), &mut out)
                .unwrap();
            black_box(t.payload.len())
        })
    });
    g.bench_function("client: receive ChannelData", |b| {
        b.iter(|| {
            let Handled::Data { data, .. } = client.handle_datagram(
                now,
                tuple.transport,
                tuple.server,
                tuple.client,
                black_box(&channel_data),
            ) else {
                panic!("not data")
            };
            black_box(data.len())
        })
    });
    g.finish();

    // Before a channel is bound, data goes as Send and Data indications (RFC 8656 §10):
    // a STUN message to parse or build per packet.
    let other_peer: SocketAddr = "203.0.113.6:7000".parse().unwrap();
    let mut indication = [0u8; 256];
    let len = client
        .handle_send_into(now, other_peer, &data, &mut indication)
        .map(|t| t.payload.len());
    // No permission for the other peer yet: create it through the server.
    assert!(len.is_err());
    client
        .handle_create_permission(now, other_peer.ip())
        .unwrap();
    while let Some(t) = client.poll_transmit() {
        let _ = server.handle_client_datagram(now, tuple, &t.payload);
        while let Some(r) = server.poll_transmit() {
            let _ = client.handle_datagram(now, r.transport, r.source, r.destination, &r.payload);
        }
    }
    let len = client
        .handle_send_into(now, other_peer, &data, &mut indication)
        .unwrap()
        .payload
        .len();
    let send_indication = indication[..len].to_vec();
    let mut g = c.benchmark_group("turn_indications_160B");
    g.throughput(Throughput::Elements(1));
    g.bench_function("server: Send indication -> peer datagram", |b| {
        b.iter(|| {
            let server::Handled::Relay(t) =
                server.handle_client_datagram(now, tuple, black_box(&send_indication))
            else {
                panic!("not relayed")
            };
            black_box(t.payload.len())
        })
    });
    g.bench_function("server: peer datagram -> Data indication", |b| {
        b.iter(|| {
            let server::Handled::Relay(t) = server.handle_peer_datagram_into(
                now,
                relayed,
                other_peer,
                black_box(&data),
                &mut out,
            ) else {
                panic!("not relayed")
            };
            black_box(t.payload.len())
        })
    });
    g.bench_function("client: send as Send indication", |b| {
        b.iter(|| {
            let t = client
                .handle_send_into(now, other_peer, black_box(&data), &mut out)
                .unwrap();
            black_box(t.payload.len())
        })
    });
    g.finish();
}

/// The control path: an authenticated request answered (long-term credential check, HMAC
/// over request and response, FINGERPRINT), as a server's capacity for refreshes and
/// permissions.
fn control(c: &mut Criterion) {
    use stun_proto::attribute::{Lifetime, Nonce, Realm, Username, XorPeerAddress};
    use stun_proto::{IntegrityKey, Message, MessageBuilder, MessageType, Method};

    let Fixture {
        now,
        mut server,
        tuple,
        ..
    } = fixture();
    // A nonce for the client, from a 401 to an unsigned request.
    let probe = MessageBuilder::new_bytes(
        MessageType::new(Method::REFRESH, stun_proto::Class::Request),
        [1; 12].into(),
    )
    .into_bytes();
    let _ = server.handle_client_datagram(now, tuple, &probe);
    let challenge = server.poll_transmit().unwrap();
    let challenge = Message::parse(&challenge.payload).unwrap();
    let nonce = challenge
        .get::<Nonce>()
        .unwrap()
        .unwrap()
        .as_str()
        .to_owned();
    let key = IntegrityKey::long_term(
        "alice",
        "example.org",
        "secret",
        stun_proto::attribute::PasswordAlgorithm::Md5,
    )
    .unwrap();
    let signed = |method: Method, add: &dyn Fn(&mut MessageBuilder<bytes::BytesMut>)| {
        let mut b = MessageBuilder::new_bytes(
            MessageType::new(method, stun_proto::Class::Request),
            [2; 12].into(),
        );
        add(&mut b);
        b.add(&Username::new("alice").unwrap()).unwrap();
        b.add(&Realm::new("example.org").unwrap()).unwrap();
        b.add(&Nonce::new(&nonce).unwrap()).unwrap();
        b.add_message_integrity(&key).unwrap();
        b.add_fingerprint().unwrap();
        b.into_bytes()
    };
    let refresh = signed(Method::REFRESH, &|b| {
        b.add(&Lifetime(600)).unwrap();
    });
    let permission = signed(Method::CREATE_PERMISSION, &|b| {
        b.add(&XorPeerAddress("203.0.113.9:1".parse().unwrap()))
            .unwrap();
    });
    let mut g = c.benchmark_group("turn_control");
    g.throughput(Throughput::Elements(1));
    for (name, request) in [("Refresh", &refresh), ("CreatePermission", &permission)] {
        let _ = server.handle_client_datagram(now, tuple, request);
        let answer = server.poll_transmit().unwrap();
        let class = Message::parse(&answer.payload).unwrap().class();
        assert_eq!(class, stun_proto::Class::Success, "{name} must succeed");
        g.bench_function(format!("server: authenticated {name} answered"), |b| {
            b.iter(|| {
                let _ = server.handle_client_datagram(now, tuple, black_box(request));
                let answer = server.poll_transmit().unwrap();
                while server.poll_event().is_some() {}
                black_box(answer.payload.len())
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = relay, control
}
criterion_main!(benches);
