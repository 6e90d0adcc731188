//! The acceptor: ClientHellos from many sources before any association exists.

use std::net::SocketAddr;

use dtls_proto::crypto::providers;
use dtls_proto::{Accept, Acceptor, AcceptorConfig, Dtls, NamedGroup, ProtocolVersion};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use crate::dtls13::pair13;
use crate::refragment;
use crate::sim::{origin, pair};

/// The handshake type and the first bytes of the random of a clear-text hello record.
fn hello_kind(datagram: &[u8]) -> (u8, [u8; 4]) {
    (
        datagram[13],
        [datagram[27], datagram[28], datagram[29], datagram[30]],
    )
}

/// The random of a HelloRetryRequest (RFC 8446 §4.1.3), first bytes.
const HRR_RANDOM_START: [u8; 4] = [0xcf, 0x21, 0xad, 0x74];

/// Our local address every datagram arrives on but where a test says otherwise.
fn local() -> SocketAddr {
    SocketAddr::from(([192, 0, 2, 1], 443))
}

fn source(i: u32) -> SocketAddr {
    SocketAddr::from(([10, (i >> 16) as u8, (i >> 8) as u8, i as u8], 5000))
}

/// A ClientHello first fragment claiming a 1413-byte message, as a flood source sends it.
fn partial_hello(claimed: u32) -> Vec<u8> {
    let body = [0u8; 100];
    let mut fragment = vec![1];
    fragment.extend_from_slice(&claimed.to_be_bytes()[1..]);
    fragment.extend_from_slice(&[0, 0, 0, 0, 0]); // message_seq 0, offset 0
    fragment.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    fragment.extend_from_slice(&body);
    let mut record = vec![22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0];
    record.extend_from_slice(&(fragment.len() as u16).to_be_bytes());
    record.extend_from_slice(&fragment);
    record
}

#[test]
fn a_flood_of_partial_client_hellos_stays_within_the_table_bound() {
    let now = origin();
    let p = providers()[0];
    let config = AcceptorConfig::default();
    let mut acceptor = Acceptor::new(p, &mut ChaCha20Rng::seed_from_u64(1), config);
    let flood = 100_000;
    let datagram = partial_hello(1413);
    for i in 0..flood {
        assert_eq!(
            acceptor.handle_datagram(now, source(i), local(), &datagram),
            Accept::Pending
        );
    }
    // The stated bound: 1024 sources of at most 8 KiB (here 1413 bytes each).
    assert_eq!(acceptor.pending_len(), config.max_pending);
    assert_eq!(acceptor.buffered_len(), config.max_pending * 1413);
    assert!(acceptor.buffered_len() <= config.max_pending * config.max_client_hello_len);
    let stats = acceptor.stats();
    assert_eq!(stats.pending_evicted, u64::from(flood) - 1024);
    assert_eq!(
        acceptor.poll_transmit(),
        None,
        "nothing is answered to fragments"
    );

    // A claimed length over the bound is not even buffered.
    let huge = partial_hello(9000);
    assert_eq!(
        acceptor.handle_datagram(now, source(flood + 1), local(), &huge),
        Accept::Dropped
    );
    assert_eq!(acceptor.stats().fragments_dropped, 1);
}

#[test]
fn a_fragmented_client_hello_passes_the_stateless_cookie_check_and_connects() {
    for p in providers() {
        let now = origin();
        let pr = pair(p);
        let mut client = Dtls::client(pr.client, ChaCha20Rng::seed_from_u64(5), now).unwrap();
        let mut acceptor = Acceptor::new(
            p,
            &mut ChaCha20Rng::seed_from_u64(6),
            AcceptorConfig::default(),
        );
        let from = source(7);
        let fragmented = |datagram: &[u8]| {
            let n = datagram.len() - 25;
            refragment(datagram, &[(n / 2, n), (0, n / 2)])
        };

        // Flight 1 in two fragments: answered with a HelloVerifyRequest, nothing kept.
        let hello = client.poll_transmit().unwrap().payload;
        let pieces = fragmented(&hello);
        assert_eq!(
            acceptor.handle_datagram(now, from, local(), &pieces[0]),
            Accept::Pending
        );
        assert_eq!(
            acceptor.handle_datagram(now, from, local(), &pieces[1]),
            Accept::VerifyRequested
        );
        assert_eq!(acceptor.pending_len(), 0);
        let hvr = acceptor.poll_transmit().unwrap();
        assert_eq!(hvr.destination, from);

        // The cookie is bound to the address: the same hello from elsewhere is asked again.
        client.handle_datagram(now, &hvr.payload);
        let with_cookie = client.poll_transmit().unwrap().payload;
        let elsewhere = source(8);
        assert_eq!(
            acceptor.handle_datagram(now, elsewhere, local(), &with_cookie),
            Accept::VerifyRequested
        );
        assert_eq!(acceptor.poll_transmit().unwrap().destination, elsewhere);
        // And so is it to our other local address: the cookie opens one port only.
        let other_port = SocketAddr::from(([192, 0, 2, 1], 444));
        assert_eq!(
            acceptor.handle_datagram(now, from, other_port, &with_cookie),
            Accept::VerifyRequested
        );
        let hvr = acceptor.poll_transmit().unwrap();
        assert_eq!((hvr.source, hvr.destination), (other_port, from));

        // From the right address, fragmented again: accepted, and the association completes.
        let pieces = fragmented(&with_cookie);
        assert_eq!(
            acceptor.handle_datagram(now, from, local(), &pieces[0]),
            Accept::Pending
        );
        let Accept::Hello(accepted) = acceptor.handle_datagram(now, from, local(), &pieces[1])
        else {
            panic!("{:?}", acceptor.stats());
        };
        assert_eq!((accepted.source, accepted.destination), (from, local()));
        let mut server = Dtls::accept(pr.server, ChaCha20Rng::seed_from_u64(9), now, accepted);
        for _ in 0..10 {
            while let Some(t) = server.poll_transmit() {
                client.handle_datagram(now, &t.payload);
            }
            while let Some(t) = client.poll_transmit() {
                server.handle_datagram(now, &t.payload);
            }
        }
        assert!(
            client.is_connected() && server.is_connected(),
            "{}",
            p.name()
        );
        assert_eq!(acceptor.stats().accepted, 1);
        assert_eq!(acceptor.stats().verify_requests, 3);
    }
}

#[test]
fn what_is_not_a_client_hello_is_dropped_or_returned() {
    let now = origin();
    let p = providers()[0];
    let mut acceptor = Acceptor::new(
        p,
        &mut ChaCha20Rng::seed_from_u64(1),
        AcceptorConfig::default(),
    );
    let stun = [0u8, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42];
    assert!(matches!(
        acceptor.handle_datagram(now, source(1), local(), &stun),
        Accept::NotDtls(_)
    ));
    // An alert, an epoch-1 record, a ServerHello fragment and a truncated record.
    let alert = [21, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 40];
    let mut epoch1 = partial_hello(200);
    epoch1[4] = 1;
    let mut server_hello = partial_hello(200);
    server_hello[13] = 2;
    for datagram in [
        &alert[..],
        &epoch1,
        &server_hello,
        &partial_hello(200)[..20],
    ] {
        assert_eq!(
            acceptor.handle_datagram(now, source(1), local(), datagram),
            Accept::Dropped
        );
    }
    assert_eq!(acceptor.pending_len(), 0);
    let stats = acceptor.stats();
    assert_eq!(stats.records_dropped, 3);
    assert_eq!(stats.fragments_dropped, 1);
}

/// DTLS 1.3 through the acceptor (RFC 9147 §5.1): the first ClientHello, fragmented, gets a
/// HelloRetryRequest with a cookie and nothing is kept; the cookie opens for the same client
/// address and local address only; the retried hello starts the server, whose transcript
/// continues from the acceptor's HelloRetryRequest, and the handshake completes in 1.3. The
/// client's share is for P-256 and the server takes X25519MLKEM768 only, so the same
/// HelloRetryRequest also asks for that share (RFC 8446 §4.1.4).
#[test]
fn a_dtls13_client_hello_gets_a_stateless_hello_retry_request_then_connects() {
    for p in providers() {
        let now = origin();
        let mut pr = pair13(p);
        pr.client = pr
            .client
            .with_groups(&[NamedGroup::Secp256r1, NamedGroup::X25519MlKem768]);
        pr.server = pr
            .server
            .with_versions(&[ProtocolVersion::Dtls13, ProtocolVersion::Dtls12])
            .with_groups(&[NamedGroup::X25519MlKem768]);
        let client_groups = [NamedGroup::Secp256r1, NamedGroup::X25519MlKem768];
        let twin_client = || {
            let config = pair13(p).client.with_groups(&client_groups);
            Dtls::client(config, ChaCha20Rng::seed_from_u64(5), now).unwrap()
        };
        let mut client = Dtls::client(pr.client, ChaCha20Rng::seed_from_u64(5), now).unwrap();
        let mut acceptor = Acceptor::new(
            p,
            &mut ChaCha20Rng::seed_from_u64(6),
            AcceptorConfig::default(),
        )
        .with_dtls13(&pr.server);
        let from = source(7);
        let fragmented = |datagram: &[u8]| {
            let n = datagram.len() - 25;
            refragment(datagram, &[(n / 2, n), (0, n / 2)])
        };

        let hello = client.poll_transmit().unwrap().payload;
        let pieces = fragmented(&hello);
        assert_eq!(
            acceptor.handle_datagram(now, from, local(), &pieces[0]),
            Accept::Pending
        );
        assert_eq!(
            acceptor.handle_datagram(now, from, local(), &pieces[1]),
            Accept::RetryRequested
        );
        assert_eq!(acceptor.pending_len(), 0, "nothing kept");
        let hrr = acceptor.poll_transmit().unwrap();
        assert_eq!((hrr.source, hrr.destination), (local(), from));
        assert_eq!(hello_kind(&hrr.payload), (2, HRR_RANDOM_START));

        // A lost HelloRetryRequest costs nothing: the retransmitted hello gets the same one.
        assert_eq!(
            acceptor.handle_datagram(now, from, local(), &hello),
            Accept::RetryRequested
        );
        assert_eq!(acceptor.poll_transmit().unwrap().payload, hrr.payload);

        client.handle_datagram(now, &hrr.payload);
        let retried = client.poll_transmit().unwrap().payload;
        // The cookie is bound to both addresses.
        let elsewhere = source(8);
        assert_eq!(
            acceptor.handle_datagram(now, elsewhere, local(), &retried),
            Accept::RetryRequested
        );
        assert_eq!(acceptor.poll_transmit().unwrap().destination, elsewhere);
        let other_port = SocketAddr::from(([192, 0, 2, 1], 444));
        assert_eq!(
            acceptor.handle_datagram(now, from, other_port, &retried),
            Accept::RetryRequested
        );
        acceptor.poll_transmit().unwrap();
        // A cookie altered in flight does not open. The HelloRetryRequest ends with the cookie
        // and then the key_share extension naming X25519MLKEM768 (6 bytes): flip the cookie's
        // last byte, and hand the result to a second client built as the first.
        let n = hrr.payload.len();
        assert_eq!(&hrr.payload[n - 6..], &[0x00, 0x33, 0x00, 0x02, 0x11, 0xec]);
        let mut forged = hrr.payload.to_vec();
        forged[n - 7] ^= 1;
        let mut twin = twin_client();
        twin.poll_transmit().unwrap();
        twin.handle_datagram(now, &forged);
        let forged_hello = twin.poll_transmit().unwrap().payload;
        assert_eq!(
            acceptor.handle_datagram(now, from, local(), &forged_hello),
            Accept::RetryRequested
        );
        acceptor.poll_transmit().unwrap();

        let Accept::Hello(accepted) = acceptor.handle_datagram(now, from, local(), &retried) else {
            panic!("{:?}", acceptor.stats());
        };
        let mut server = Dtls::accept(pr.server, ChaCha20Rng::seed_from_u64(9), now, accepted);
        for _ in 0..10 {
            while let Some(t) = server.poll_transmit() {
                client.handle_datagram(now, &t.payload);
            }
            while let Some(t) = client.poll_transmit() {
                server.handle_datagram(now, &t.payload);
            }
        }
        assert!(
            client.is_connected() && server.is_connected(),
            "{}: {:?} {:?}",
            p.name(),
            client,
            server
        );
        let done = std::iter::from_fn(|| server.poll_event())
            .find_map(|e| match e {
                dtls_proto::Event::Connected(done) => Some(done),
                _ => None,
            })
            .unwrap();
        assert_eq!(done.version, ProtocolVersion::Dtls13);
        assert_eq!(done.group, NamedGroup::X25519MlKem768);
        let stats = acceptor.stats();
        assert_eq!((stats.accepted, stats.retry_requests), (1, 5));
        assert_eq!(stats.verify_requests, 0);
    }
}

/// A DTLS 1.3 hello with nothing in common with the server is dropped statelessly and
/// counted; a 1.2 hello to the same acceptor still gets a HelloVerifyRequest, and an acceptor
/// not built with_dtls13 answers a 1.3 hello with one too (the client may go on in 1.2).
#[test]
fn the_dtls13_acceptor_refuses_statelessly_and_still_speaks_dtls12() {
    let now = origin();
    let p = providers()[0];
    let mut pr = pair13(p);
    pr.server = pr.server.with_groups(&[NamedGroup::X25519MlKem768]);
    let client_cfg = pr.client.with_groups(&[NamedGroup::Secp256r1]);
    let mut acceptor = Acceptor::new(
        p,
        &mut ChaCha20Rng::seed_from_u64(1),
        AcceptorConfig::default(),
    )
    .with_dtls13(&pr.server);
    let mut client = Dtls::client(client_cfg, ChaCha20Rng::seed_from_u64(2), now).unwrap();
    let hello = client.poll_transmit().unwrap().payload;
    assert_eq!(
        acceptor.handle_datagram(now, source(1), local(), &hello),
        Accept::Dropped
    );
    assert_eq!(acceptor.stats().hellos_refused, 1);
    assert_eq!(acceptor.poll_transmit(), None);

    let pr12 = pair(p);
    let mut client12 = Dtls::client(pr12.client, ChaCha20Rng::seed_from_u64(3), now).unwrap();
    let hello12 = client12.poll_transmit().unwrap().payload;
    assert_eq!(
        acceptor.handle_datagram(now, source(2), local(), &hello12),
        Accept::VerifyRequested
    );
    assert_eq!(hello_kind(&acceptor.poll_transmit().unwrap().payload).0, 3);

    let mut plain = Acceptor::new(
        p,
        &mut ChaCha20Rng::seed_from_u64(1),
        AcceptorConfig::default(),
    );
    let mut client13 = Dtls::client(pair13(p).client, ChaCha20Rng::seed_from_u64(4), now).unwrap();
    let hello13 = client13.poll_transmit().unwrap().payload;
    assert_eq!(
        plain.handle_datagram(now, source(3), local(), &hello13),
        Accept::VerifyRequested
    );
}
