//! The acceptor: ClientHellos from many sources before any association exists.

use std::net::SocketAddr;

use dtls_proto::crypto::providers;
use dtls_proto::{Accept, Acceptor, AcceptorConfig, Dtls};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use crate::refragment;
use crate::sim::{origin, pair};

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
