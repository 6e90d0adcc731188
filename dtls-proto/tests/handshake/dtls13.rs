//! DTLS 1.3 between our client and our server (RFC 9147): every group (X25519MLKEM768,
//! X25519, P-256) through every provider, with and without the HelloRetryRequest cookie, a
//! HelloRetryRequest for another group, loss and reordering, a wrong fingerprint, forged
//! clear-text records.

use std::time::Duration;

use dtls_proto::crypto::providers;
use dtls_proto::{CipherSuite, Error, NamedGroup, ProtocolVersion, SrtpProfile};

use crate::sim::{CLIENT, Link, Pair, SERVER, Sim, pair, wrong_fingerprint};

const MINUTE: Duration = Duration::from_secs(60);
/// The random of a HelloRetryRequest (RFC 8446 §4.1.3), first bytes.
const HRR_RANDOM_START: [u8; 4] = [0xcf, 0x21, 0xad, 0x74];

pub fn pair13(p: &'static dyn dtls_proto::crypto::CryptoProvider) -> Pair {
    let pr = pair(p);
    Pair {
        client: pr.client.with_versions(&[ProtocolVersion::Dtls13]),
        server: pr.server.with_versions(&[ProtocolVersion::Dtls13]),
    }
}

/// The handshake type and random of the first clear-text handshake message of a datagram.
fn first_hello(datagram: &[u8]) -> Option<(u8, [u8; 4])> {
    (datagram.first() == Some(&22) && datagram.len() > 13 + 12 + 6).then(|| {
        let body = &datagram[25..];
        (datagram[13], [body[2], body[3], body[4], body[5]])
    })
}

#[test]
fn every_group_and_provider_with_and_without_cookie() {
    for p in providers() {
        for group in [
            NamedGroup::X25519MlKem768,
            NamedGroup::X25519,
            NamedGroup::Secp256r1,
        ] {
            for cookie in [true, false] {
                let mut pr = pair13(p);
                pr.client = pr.client.with_groups(&[group]);
                pr.server = pr.server.with_groups(&[group]).with_server_cookie(cookie);
                let mut sim = Sim::new(pr, Link::perfect(), 40);
                let case = format!("{} {group:?} cookie {cookie}", p.name());
                assert!(sim.connect(MINUTE), "{case}: {:?}", sim.events);
                let c = sim.connected_event(CLIENT).unwrap().clone();
                let s = sim.connected_event(SERVER).unwrap().clone();
                assert_eq!(c.version, ProtocolVersion::Dtls13, "{case}");
                assert_eq!(s.version, ProtocolVersion::Dtls13, "{case}");
                assert_eq!((c.group, s.group), (group, group), "{case}");
                assert_eq!(c.cipher_suite, CipherSuite::Aes128GcmSha256, "{case}");
                let (cs, ss) = (c.srtp.unwrap(), s.srtp.unwrap());
                assert_eq!(cs, ss, "{case}: both sides export the same SRTP keys");
                assert_eq!(cs.profile, SrtpProfile::AeadAes128Gcm);
                assert_eq!(
                    sim.nodes[CLIENT].export_keying_material(b"EXPERIMENTAL-x", Some(b"c"), 33),
                    sim.nodes[SERVER].export_keying_material(b"EXPERIMENTAL-x", Some(b"c"), 33),
                );
                // The server's first answer is a HelloRetryRequest exactly when cookies are on.
                let first = first_hello(&sim.sent[SERVER][0].1).unwrap();
                assert_eq!(first.0, 2, "{case}: a ServerHello-shaped message first");
                assert_eq!(first.1 == HRR_RANDOM_START, cookie, "{case}");

                sim.nodes[CLIENT].handle_send(sim.now, b"ping").unwrap();
                sim.nodes[SERVER].handle_send(sim.now, b"pong").unwrap();
                sim.run(MINUTE, |s| {
                    !s.application_data(CLIENT).is_empty() && !s.application_data(SERVER).is_empty()
                });
                assert_eq!(
                    sim.application_data(SERVER),
                    vec![b"ping".to_vec()],
                    "{case}"
                );
                assert_eq!(
                    sim.application_data(CLIENT),
                    vec![b"pong".to_vec()],
                    "{case}"
                );
                // The server's ACK ended the client's last flight; the server keeps no timer.
                assert_eq!(
                    sim.nodes[CLIENT].poll_timeout(),
                    None,
                    "{case}: client ACKed"
                );
                assert_eq!(sim.nodes[SERVER].poll_timeout(), None, "{case}");
            }
        }
    }
}

#[test]
fn a_hello_retry_request_asks_for_the_server_s_group() {
    for p in providers() {
        let mut pr = pair13(p);
        // The client's share is for P-256; the server only takes X25519MLKEM768.
        pr.client = pr
            .client
            .with_groups(&[NamedGroup::Secp256r1, NamedGroup::X25519MlKem768]);
        pr.server = pr
            .server
            .with_groups(&[NamedGroup::X25519MlKem768])
            .with_server_cookie(false);
        let mut sim = Sim::new(pr, Link::perfect(), 41);
        assert!(sim.connect(MINUTE), "{}: {:?}", p.name(), sim.events);
        assert_eq!(
            sim.connected_event(CLIENT).unwrap().group,
            NamedGroup::X25519MlKem768
        );
        let first = first_hello(&sim.sent[SERVER][0].1).unwrap();
        assert_eq!(
            first.1, HRR_RANDOM_START,
            "a HelloRetryRequest although cookies are off"
        );
        // Two ClientHellos: the second after the HelloRetryRequest.
        let hellos = sim.sent[CLIENT]
            .iter()
            .filter(|(_, d)| first_hello(d).is_some_and(|(t, _)| t == 1))
            .count();
        assert_eq!(hellos, 2);
    }
}

#[test]
fn no_common_group_fails_with_a_typed_error() {
    let p = providers()[0];
    let mut pr = pair13(p);
    pr.client = pr.client.with_groups(&[NamedGroup::Secp256r1]);
    pr.server = pr.server.with_groups(&[NamedGroup::X25519]);
    let mut sim = Sim::new(pr, Link::perfect(), 42);
    sim.run(MINUTE, |s| s.failure(SERVER).is_some());
    assert_eq!(sim.failure(SERVER), Some(&Error::NoCommonGroup));
}

#[test]
fn survives_thirty_percent_loss_reordering_and_duplication() {
    for p in providers() {
        for seed in 0..6 {
            let mut pr = pair13(p);
            pr.server = pr.server.with_server_cookie(seed % 2 == 0);
            let mut sim = Sim::new(pr, Link::hostile(0.3), 100 + seed);
            assert!(
                sim.connect(Duration::from_secs(600)),
                "{} seed {seed}: {:?}",
                p.name(),
                sim.events
            );
            let c = sim.connected_event(CLIENT).unwrap().srtp.clone();
            let s = sim.connected_event(SERVER).unwrap().srtp.clone();
            assert_eq!(c, s, "seed {seed}");
            // The client's last flight stops once an ACK gets through.
            sim.run(Duration::from_secs(600), |s| {
                s.nodes[CLIENT].poll_timeout().is_none()
            });
            assert_eq!(
                sim.nodes[CLIENT].poll_timeout(),
                None,
                "seed {seed}: never ACKed"
            );
        }
    }
}

#[test]
fn wrong_fingerprint_fails_with_a_typed_error() {
    let p = providers()[0];
    let mut pr = pair13(p);
    pr.client.peer_verifier = dtls_proto::PeerVerifier::Fingerprint(wrong_fingerprint());
    let mut sim = Sim::new(pr, Link::perfect(), 43);
    sim.run(MINUTE, |s| s.failure(CLIENT).is_some());
    assert!(
        matches!(sim.failure(CLIENT), Some(Error::FingerprintMismatch { .. })),
        "{:?}",
        sim.events
    );
    assert!(!sim.nodes[SERVER].is_connected());
    // The other way round: the server rejects the client's certificate.
    let mut pr = pair13(p);
    pr.server.peer_verifier = dtls_proto::PeerVerifier::Fingerprint(wrong_fingerprint());
    let mut sim = Sim::new(pr, Link::perfect(), 44);
    sim.run(MINUTE, |s| s.failure(SERVER).is_some());
    assert!(matches!(
        sim.failure(SERVER),
        Some(Error::FingerprintMismatch { .. })
    ));
}

#[test]
fn a_dtls13_only_client_and_a_dtls12_only_server_do_not_connect() {
    // No common version: the first thing the 1.2 server misses in a 1.3-only ClientHello is
    // extended_master_secret (it has no 1.2 suite either).
    let p = providers()[0];
    let pr = pair(p);
    let pr = Pair {
        client: pr.client.with_versions(&[ProtocolVersion::Dtls13]),
        server: pr.server.with_server_cookie(false),
    };
    let mut sim = Sim::new(pr, Link::perfect(), 45);
    sim.run(MINUTE, |s| s.failure(SERVER).is_some());
    assert_eq!(
        sim.failure(SERVER),
        Some(&Error::ExtendedMasterSecretMissing)
    );
    // With its cookie exchange on, the 1.2 server first sends a HelloVerifyRequest, which a
    // 1.3-only client drops (clear text it does not wait for): the client times out.
    let pr = pair(p);
    let pr = Pair {
        client: pr.client.with_versions(&[ProtocolVersion::Dtls13]),
        server: pr.server,
    };
    let mut sim = Sim::new(pr, Link::perfect(), 45);
    sim.run(Duration::from_secs(3600), |s| s.failure(CLIENT).is_some());
    assert_eq!(sim.failure(CLIENT), Some(&Error::HandshakeTimeout));
    assert!(sim.nodes[CLIENT].stats().handshake_messages_dropped >= 1);
    // And a 1.2-only client to a 1.3-only server: protocol_version.
    let pr = pair(p);
    let pr = Pair {
        client: pr.client,
        server: pr.server.with_versions(&[ProtocolVersion::Dtls13]),
    };
    let mut sim = Sim::new(pr, Link::perfect(), 46);
    sim.run(MINUTE, |s| {
        s.failure(SERVER).is_some() && s.failure(CLIENT).is_some()
    });
    assert_eq!(
        sim.failure(SERVER),
        Some(&Error::UnsupportedVersion(0xfefd))
    );
    assert_eq!(
        sim.failure(CLIENT),
        Some(&Error::AlertReceived(
            dtls_proto::AlertDescription::ProtocolVersion
        ))
    );
}

const BOTH: [ProtocolVersion; 2] = [ProtocolVersion::Dtls13, ProtocolVersion::Dtls12];

/// The random of the first ServerHello (not HelloRetryRequest) a side sent.
fn server_hello_random(sent: &[(std::time::Instant, bytes::Bytes)]) -> Option<[u8; 32]> {
    sent.iter().find_map(|(_, d)| {
        let (t, start) = first_hello(d)?;
        (t == 2 && start != HRR_RANDOM_START).then(|| d[27..59].try_into().unwrap())
    })
}

#[test]
fn version_negotiation_both_ways() {
    let v12 = [ProtocolVersion::Dtls12];
    let v12_then_13 = [ProtocolVersion::Dtls12, ProtocolVersion::Dtls13];
    for p in providers() {
        for cookie in [true, false] {
            let cases: [(
                &[ProtocolVersion],
                &[ProtocolVersion],
                ProtocolVersion,
                bool,
            ); 4] = [
                (&BOTH, &BOTH, ProtocolVersion::Dtls13, false),
                (&BOTH, &v12, ProtocolVersion::Dtls12, false),
                (&v12, &BOTH, ProtocolVersion::Dtls12, true),
                (&v12_then_13, &BOTH, ProtocolVersion::Dtls13, false),
            ];
            for (client, server, expected, sentinel) in cases {
                let pr = pair(p);
                let pr = Pair {
                    client: pr.client.with_versions(client),
                    server: pr.server.with_versions(server).with_server_cookie(cookie),
                };
                let mut sim = Sim::new(pr, Link::perfect(), 47);
                let case = format!(
                    "{} cookie {cookie}: client {client:?} server {server:?}",
                    p.name()
                );
                assert!(sim.connect(MINUTE), "{case}: {:?}", sim.events);
                for side in [CLIENT, SERVER] {
                    let version = sim.connected_event(side).unwrap().version;
                    assert_eq!(version, expected, "{case}");
                }
                let c = sim.connected_event(CLIENT).unwrap().srtp.clone();
                assert_eq!(
                    c,
                    sim.connected_event(SERVER).unwrap().srtp.clone(),
                    "{case}"
                );
                sim.nodes[CLIENT].handle_send(sim.now, b"ping").unwrap();
                sim.run(MINUTE, |s| !s.application_data(SERVER).is_empty());
                assert_eq!(
                    sim.application_data(SERVER),
                    vec![b"ping".to_vec()],
                    "{case}"
                );
                // A server that speaks 1.3 but settles for 1.2 says so in its random.
                if expected == ProtocolVersion::Dtls12 {
                    let random = server_hello_random(&sim.sent[SERVER]).unwrap();
                    assert_eq!(&random[24..] == b"DOWNGRD\x01", sentinel, "{case}");
                }
            }
        }
    }
}

#[test]
fn a_stripped_dtls13_offer_is_caught_by_the_downgrade_sentinel() {
    // An attacker rewrites the client's supported_versions from [1.3, 1.2] to [1.2, 1.2]:
    // the server, which speaks both, answers in 1.2 with the sentinel, and the client, which
    // offered 1.3, refuses (RFC 8446 §4.1.3).
    let p = providers()[0];
    let mut pr = pair(p);
    pr.client = pr
        .client
        .with_versions(&BOTH)
        .with_groups(&[NamedGroup::X25519]);
    pr.server = pr.server.with_versions(&BOTH);
    let offer = [0x00, 0x2b, 0x00, 0x05, 0x04, 0xfe, 0xfc, 0xfe, 0xfd];
    let stripped = [0x00, 0x2b, 0x00, 0x05, 0x04, 0xfe, 0xfd, 0xfe, 0xfd];
    let rewrites = std::rc::Rc::new(std::cell::Cell::new(0));
    let counted = rewrites.clone();
    let mut sim = Sim::new(pr, Link::perfect(), 48).with_rewrite(move |from, _, datagram| {
        let mut d = datagram.to_vec();
        if from == CLIENT {
            if let Some(at) = d.windows(offer.len()).position(|w| w == offer) {
                d[at..at + offer.len()].copy_from_slice(&stripped);
                counted.set(counted.get() + 1);
            }
        }
        vec![d]
    });
    sim.run(MINUTE, |s| s.failure(CLIENT).is_some());
    assert!(rewrites.get() >= 1, "the offer was found and stripped");
    assert!(
        matches!(
            sim.failure(CLIENT),
            Some(Error::IllegalParameter { parameter, .. }) if parameter.contains("downgrade")
        ),
        "{:?}",
        sim.events
    );
    assert!(!sim.nodes[SERVER].is_connected());
}
