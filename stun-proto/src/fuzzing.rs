//! Entry points for the fuzz targets in `fuzz/` and for the corpus replay in `cargo test`.
//! Not part of the public API.

use crate::attribute::AnyAttribute;
use crate::{IntegrityKey, Message, MessageBuilder};

/// Parses `data` as a STUN message and exercises everything a receiver would: every attribute
/// decoded, integrity and fingerprint verified. Checks that the zero-copy views stay inside the
/// input and that a message's attributes can be written again by the builder.
pub fn message(data: &[u8]) {
    let Ok(message) = Message::parse(data) else {
        return;
    };
    let tid = message.transaction_id();
    let mut rebuilt = MessageBuilder::new_bytes(message.message_type(), tid);
    for raw in message.attributes() {
        assert!(
            raw.value.len() <= data.len(),
            "attribute value larger than the message"
        );
        let _ = AnyAttribute::decode(raw, &tid);
        if !matches!(
            raw.attribute_type,
            crate::AttributeType::MESSAGE_INTEGRITY
                | crate::AttributeType::MESSAGE_INTEGRITY_SHA256
                | crate::AttributeType::FINGERPRINT
        ) {
            assert!(
                rebuilt.add(&raw).is_ok(),
                "an attribute that parsed must be writable"
            );
        }
    }
    let _ = message.unknown_comprehension_required().count();
    let key = IntegrityKey::new(b"fuzz");
    let _ = message.verify_integrity(&key);
    let _ = message.verify_fingerprint();
    let _ = format!("{message:?}");
    let again = rebuilt.into_bytes();
    assert!(
        Message::parse(&again).is_ok(),
        "a rebuilt message must parse"
    );
}

/// Feeds `data`, cut into datagrams, to three Binding servers — single-address, RFC 5780 with
/// four addresses, and one requiring a short-term credential — and checks what a flood of
/// arbitrary input must not break: every datagram is either answered or counted as dropped,
/// the transmit queue never passes its bound, every answer is a well-formed STUN response
/// from one of the server's own addresses.
///
/// Format: each datagram is a one-byte header (bits 0–1: arrival address among the four,
/// bit 2: TCP, bits 3–7: client port offset) then a two-byte big-endian length and the bytes.
pub fn binding_server(data: &[u8]) {
    use std::net::SocketAddr;

    use crate::binding::server::Handled;
    use crate::binding::{Authentication, BindingServer, BindingServerConfig, ShortTermCredential};
    use crate::transmit::TransportProtocol;

    let primary: SocketAddr = ([192, 0, 2, 1], 3478).into();
    let alternate: SocketAddr = ([192, 0, 2, 2], 3479).into();
    let mut single = BindingServerConfig::new(primary);
    single.max_queued_transmits = 4;
    let mut rfc5780 = single.clone();
    rfc5780.alternate = Some(alternate);
    let mut secured = rfc5780.clone();
    secured.authentication = Authentication::ShortTerm(ShortTermCredential {
        username: "fuzz".into(),
        key: IntegrityKey::new(b"fuzz"),
    });
    let mut servers = [single, rfc5780, secured].map(BindingServer::new);
    // The fuzz harness is a driver, like an example: it supplies the one instant it needs.
    #[allow(clippy::disallowed_methods)]
    let now = std::time::Instant::now();
    let mut rest = data;
    let mut fed = 0u64;
    while let [header, hi, lo, tail @ ..] = rest {
        let len = usize::from(u16::from_be_bytes([*hi, *lo])).min(tail.len());
        let (datagram, next) = tail.split_at(len);
        rest = next;
        let arrival = server_address(primary, alternate, header & 3);
        let transport = if header & 4 != 0 {
            TransportProtocol::Tcp
        } else {
            TransportProtocol::Udp
        };
        let client: SocketAddr = ([198, 51, 100, 7], 50_000 + u16::from(header >> 3)).into();
        fed += 1;
        for server in &mut servers {
            let handled = server.handle_datagram(now, transport, client, arrival, datagram);
            assert!(server.queued_transmits() <= server.config().max_queued_transmits);
            if matches!(handled, Handled::Answered | Handled::Rejected(_)) {
                let answer = server.poll_transmit().expect("an answer was queued");
                let response = Message::parse(&answer.payload).expect("answers are STUN");
                assert!(response.class().is_response());
                // A single-address server answers from the address a request arrived on.
                let from_arrival = server.config().alternate.is_none() && answer.source == arrival;
                assert!(server.local_addresses().contains(&answer.source) || from_arrival);
            }
        }
    }
    for server in &servers {
        let s = server.stats();
        let accounted = s.success_responses
            + s.error_responses
            + s.dropped_malformed
            + s.dropped_bad_fingerprint
            + s.dropped_responses
            + s.indications
            + s.dropped_wrong_address
            + s.dropped_queue_full
            + s.dropped_no_magic_cookie;
        assert_eq!(accounted, fed, "every datagram answered or counted");
    }
}

/// One of RFC 5780's four server addresses.
fn server_address(
    primary: std::net::SocketAddr,
    alternate: std::net::SocketAddr,
    which: u8,
) -> std::net::SocketAddr {
    let ip = if which & 1 == 0 {
        primary.ip()
    } else {
        alternate.ip()
    };
    let port = if which & 2 == 0 {
        primary.port()
    } else {
        alternate.port()
    };
    std::net::SocketAddr::new(ip, port)
}

/// Drives the client machines — a [`BindingClient`](crate::binding::BindingClient) and an
/// RFC 5780 [`NatDiscovery`](crate::nat_behavior::NatDiscovery) — with a sequence of
/// arbitrary datagrams and time steps, checking that nothing panics, that deadlines never go
/// backwards past `now`, and that the machines stay within their bounds.
///
/// Format: a sequence of one-byte opcodes. `0..=63`: advance the clock by that many × 100 ms
/// and call `handle_timeout`; `64..=127`: start a query (low bits pick options);
/// `128..=255`: a datagram follows (two-byte length, bytes), delivered from a source the low
/// bits pick (the server, its other address, or a stranger).
pub fn stun_clients(data: &[u8]) {
    use std::net::SocketAddr;
    use std::time::Duration;

    use crate::attribute::ChangeRequest;
    use crate::binding::{BindingClient, BindingOptions};
    use crate::nat_behavior::{NatDiscovery, NatDiscoveryConfig};
    use crate::transaction::TransactionConfig;
    use crate::transmit::TransportProtocol;

    let local: SocketAddr = ([10, 0, 0, 2], 40_000).into();
    let server: SocketAddr = ([192, 0, 2, 1], 3478).into();
    let sources: [SocketAddr; 4] = [
        server,
        ([192, 0, 2, 2], 3479).into(),
        ([192, 0, 2, 2], 3478).into(),
        ([203, 0, 113, 9], 1).into(),
    ];
    let config = TransactionConfig {
        max_outstanding: 8,
        ..TransactionConfig::default()
    };
    // The fuzz harness is a driver, like an example: it supplies the one instant it needs.
    #[allow(clippy::disallowed_methods)]
    let mut now = std::time::Instant::now();
    let mut client = BindingClient::new(local, TransportProtocol::Udp, config.clone(), FuzzRng(1));
    let mut nat_config = NatDiscoveryConfig::new(local, server);
    nat_config.transactions = config;
    let mut nat = NatDiscovery::new(nat_config, FuzzRng(2));
    let _ = nat.handle_start(now);
    let mut rest = data;
    while let [op, tail @ ..] = rest {
        rest = tail;
        match *op {
            0..=63 => {
                now += Duration::from_millis(100 * u64::from(*op));
                client.handle_timeout(now);
                nat.handle_timeout(now);
            }
            64..=127 => {
                let options = BindingOptions {
                    change_request: (op & 1 != 0).then_some(ChangeRequest {
                        change_ip: op & 2 != 0,
                        change_port: op & 4 != 0,
                    }),
                    padding: (op & 8 != 0).then_some(u16::from(op & 0x30)),
                    classic: op & 0x40 != 0 && op & 1 == 0,
                };
                let _ = client.handle_query(now, server, options);
            }
            _ => {
                let [hi, lo, tail @ ..] = rest else {
                    return;
                };
                let len = usize::from(u16::from_be_bytes([*hi, *lo])).min(tail.len());
                let (datagram, next) = tail.split_at(len);
                rest = next;
                let from = sources[usize::from(op & 3)];
                let udp = TransportProtocol::Udp;
                client.handle_datagram(now, udp, from, local, datagram);
                nat.handle_datagram(now, udp, from, local, datagram);
            }
        }
        while let Some(t) = client.poll_transmit() {
            assert_eq!(t.source, local);
        }
        while client.poll_event().is_some() {}
        while nat.poll_transmit().is_some() {}
        while nat.poll_event().is_some() {}
        assert!(client.outstanding() <= 8);
        if *op < 64 {
            // Right after `handle_timeout(now)` nothing may still be due at or before `now`:
            // a caller would spin.
            for deadline in [client.poll_timeout(), nat.poll_timeout()]
                .into_iter()
                .flatten()
            {
                assert!(deadline > now, "a deadline not after handle_timeout's now");
            }
        }
    }
}

/// A counter-based RNG for the fuzz entry points: fuzzing needs determinism, not secrecy. It is
/// declared cryptographic only so that machines which demand a CSPRNG accept it here.
pub(crate) struct FuzzRng(pub(crate) u64);

impl rand_core::RngCore for FuzzRng {
    fn next_u32(&mut self) -> u32 {
        self.next_u64() as u32
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        rand_core::impls::fill_bytes_via_next(self, dest)
    }
}

impl rand_core::CryptoRng for FuzzRng {}
