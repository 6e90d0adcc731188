//! Client ↔ server in memory, on a virtual clock, against every crypto provider compiled in.

mod acceptor;
mod dtls13;
mod key_update;
mod sim;
mod spoofing;
#[path = "../common/wire.rs"]
mod wire;

use std::time::Duration;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use dtls_proto::crypto::providers;
use dtls_proto::fuzzing;
use dtls_proto::{
    AlertDescription, CipherSuite, Dtls, Error, Event, NamedGroup, PeerVerifier, SrtpProfile,
};
use sim::{CLIENT, Link, SERVER, Sim, pair, wrong_fingerprint};

const MINUTE: Duration = Duration::from_secs(60);

fn connect(sim: &mut Sim) {
    assert!(
        sim.connect(MINUTE),
        "handshake did not complete: {:?}",
        sim.events
    );
}

#[test]
fn handshake_with_cookie_exports_equal_srtp_keys_and_carries_data() {
    for p in providers() {
        let mut sim = Sim::new(pair(p), Link::perfect(), 1);
        connect(&mut sim);
        let c = sim.connected_event(CLIENT).unwrap().clone();
        let s = sim.connected_event(SERVER).unwrap().clone();
        assert_eq!(
            c.cipher_suite,
            CipherSuite::EcdheEcdsaAes128GcmSha256,
            "{}",
            p.name()
        );
        assert_eq!(c.group, NamedGroup::X25519);
        let (cs, ss) = (c.srtp.unwrap(), s.srtp.unwrap());
        assert_eq!(cs, ss);
        assert_eq!(cs.profile, SrtpProfile::AeadAes128Gcm);
        assert_eq!(cs.material.len(), 56);
        assert_eq!(
            sim.nodes[CLIENT].export_keying_material(b"EXPERIMENTAL-test", Some(b"ctx"), 40),
            sim.nodes[SERVER].export_keying_material(b"EXPERIMENTAL-test", Some(b"ctx"), 40)
        );
        // The cookie round trip happened: the server's first datagram is a HelloVerifyRequest.
        assert_eq!(sim.sent[SERVER][0].1[13], 3, "HelloVerifyRequest first");

        sim.nodes[CLIENT].handle_send(sim.now, b"ping").unwrap();
        sim.nodes[SERVER].handle_send(sim.now, b"pong").unwrap();
        sim.run(MINUTE, |s| {
            !s.application_data(CLIENT).is_empty() && !s.application_data(SERVER).is_empty()
        });
        assert_eq!(sim.application_data(SERVER), vec![b"ping".to_vec()]);
        assert_eq!(sim.application_data(CLIENT), vec![b"pong".to_vec()]);
        assert_eq!(
            sim.nodes[CLIENT].poll_timeout(),
            None,
            "no timer after the handshake"
        );
        assert_eq!(sim.nodes[SERVER].poll_timeout(), None);
    }
}

#[test]
fn every_suite_group_and_srtp_profile() {
    for p in providers() {
        for suite in CipherSuite::ALL {
            for group in NamedGroup::ALL {
                for profile in SrtpProfile::ALL {
                    let mut pr = pair(p);
                    pr.client = pr
                        .client
                        .with_cipher_suites(&[suite])
                        .with_groups(&[group])
                        .with_srtp_profiles(&[profile]);
                    let mut sim = Sim::new(pr, Link::perfect(), 2);
                    connect(&mut sim);
                    let c = sim.connected_event(CLIENT).unwrap();
                    let s = sim.connected_event(SERVER).unwrap();
                    assert_eq!((c.cipher_suite, c.group), (suite, group), "{}", p.name());
                    assert_eq!(c.srtp.as_ref().unwrap().profile, profile);
                    assert_eq!(c.srtp, s.srtp);
                    sim.nodes[SERVER].handle_send(sim.now, b"data").unwrap();
                    sim.run(MINUTE, |s| !s.application_data(CLIENT).is_empty());
                    assert_eq!(sim.application_data(CLIENT), vec![b"data".to_vec()]);
                }
            }
        }
    }
}

#[test]
fn server_without_cookie_exchange() {
    for p in providers() {
        let mut pr = pair(p);
        pr.server = pr.server.with_server_cookie(false);
        let mut sim = Sim::new(pr, Link::perfect(), 3);
        connect(&mut sim);
        assert_eq!(sim.sent[SERVER][0].1[13], 2, "ServerHello first");
    }
}

#[test]
fn no_srtp_when_not_configured() {
    for p in providers() {
        let mut pr = pair(p);
        pr.client = pr.client.with_srtp_profiles(&[]);
        pr.server = pr.server.with_srtp_profiles(&[]);
        let mut sim = Sim::new(pr, Link::perfect(), 3);
        connect(&mut sim);
        assert_eq!(sim.connected_event(CLIENT).unwrap().srtp, None);
    }
}

#[test]
fn survives_thirty_percent_loss_reordering_and_duplication() {
    for p in providers() {
        let mut retransmits = 0;
        for seed in 0..16 {
            // Half the runs also fragment every flight (MTU 250), so fragments are lost,
            // duplicated and reordered too.
            let mtu = if seed % 2 == 0 { 1200 } else { 250 };
            let mut pr = pair(p);
            pr.client = pr
                .client
                .with_retransmit(Duration::from_millis(100), Duration::from_secs(2))
                .with_max_retransmits(30)
                .with_mtu(mtu);
            pr.server = pr
                .server
                .with_retransmit(Duration::from_millis(100), Duration::from_secs(2))
                .with_max_retransmits(30)
                .with_mtu(mtu);
            let mut sim = Sim::new(pr, Link::hostile(0.3), 1000 + seed);
            assert!(
                sim.connect(Duration::from_secs(600)),
                "{} seed {seed} mtu {mtu}: {:?} {:?}",
                p.name(),
                sim.events,
                sim.nodes
            );
            assert_eq!(
                sim.connected_event(CLIENT).unwrap().srtp,
                sim.connected_event(SERVER).unwrap().srtp
            );
            retransmits += sim
                .nodes
                .iter()
                .map(|n| n.stats().flight_retransmits)
                .sum::<u64>();
        }
        // The link really lost flights: recovery went through retransmission.
        assert!(
            retransmits >= 16,
            "{}: {retransmits} retransmissions",
            p.name()
        );
    }
}

#[test]
fn small_mtu_forces_fragmentation() {
    // Every MTU from 200 to 420 in steps of 11, both groups (their key shares differ in size),
    // so every way a flight can straddle datagram boundaries is met.
    for p in providers() {
        for (mtu, group) in (200..=420)
            .step_by(11)
            .flat_map(|m| NamedGroup::ALL.map(|g| (m, g)))
        {
            small_mtu_case(p, mtu, group);
        }
    }
}

fn small_mtu_case(
    p: &'static dyn dtls_proto::crypto::CryptoProvider,
    mtu: usize,
    group: NamedGroup,
) {
    let mut pr = pair(p);
    pr.client = pr.client.with_mtu(mtu).with_groups(&[group]);
    pr.server = pr.server.with_mtu(mtu);
    let mut sim = Sim::new(pr, Link::hostile(0.0), 4);
    connect(&mut sim);
    for side in [CLIENT, SERVER] {
        for (_, d) in &sim.sent[side] {
            assert!(
                d.len() <= mtu,
                "{} MTU {mtu} {group:?}: datagram of {} bytes",
                p.name(),
                d.len()
            );
        }
    }
    // Below ~330 bytes the server's Certificate (about 300 bytes) cannot fit one record.
    if mtu < 300 {
        let fragmented = sim.sent[SERVER].iter().any(|(_, d)| {
            fuzzing::clear_handshake_fragments(d)
                .iter()
                .any(|f| f.msg_type == 11 && f.offset > 0)
        });
        assert!(
            fragmented,
            "MTU {mtu}: a Certificate fragment with a non-zero offset"
        );
    }
}

#[test]
fn tampered_records_are_discarded_and_replays_rejected() {
    for p in providers() {
        let mut sim = Sim::new(pair(p), Link::perfect(), 5);
        connect(&mut sim);
        sim.nodes[CLIENT].handle_send(sim.now, b"secret").unwrap();
        let datagram = sim.nodes[CLIENT].poll_transmit().unwrap().payload.to_vec();
        for i in 0..datagram.len() {
            let mut bad = datagram.clone();
            bad[i] ^= 0x40;
            sim.inject(SERVER, &bad);
        }
        assert!(sim.application_data(SERVER).is_empty(), "{}", p.name());
        assert!(sim.nodes[SERVER].is_connected());
        assert!(sim.nodes[SERVER].stats().records_failed_authentication >= 10);
        sim.inject(SERVER, &datagram);
        sim.inject(SERVER, &datagram);
        assert_eq!(sim.application_data(SERVER), vec![b"secret".to_vec()]);
        assert_eq!(sim.nodes[SERVER].stats().records_replayed, 1);
    }
}

#[test]
fn wrong_fingerprint_fails_with_a_typed_error() {
    for p in providers() {
        let mut pr = pair(p);
        pr.client.peer_verifier = PeerVerifier::Fingerprint(wrong_fingerprint());
        let mut sim = Sim::new(pr, Link::perfect(), 6);
        sim.run(MINUTE, |s| s.nodes.iter().all(|n| n.is_failed()));
        assert!(
            matches!(sim.failure(CLIENT), Some(Error::FingerprintMismatch { .. })),
            "{}: {:?}",
            p.name(),
            sim.events[CLIENT]
        );
        assert_eq!(
            sim.failure(SERVER),
            Some(&Error::AlertReceived(AlertDescription::BadCertificate))
        );

        let mut pr = pair(p);
        pr.server.peer_verifier = PeerVerifier::Fingerprint(wrong_fingerprint());
        let mut sim = Sim::new(pr, Link::perfect(), 6);
        sim.run(MINUTE, |s| s.nodes.iter().all(|n| n.is_failed()));
        let Some(Error::FingerprintMismatch { expected, actual }) = sim.failure(SERVER) else {
            panic!("{:?}", sim.events[SERVER]);
        };
        assert_eq!(expected, &wrong_fingerprint().to_string());
        assert!(actual.starts_with("sha-256 "));
        assert!(!sim.nodes[CLIENT].is_connected());
    }
}

struct RejectAll;

impl dtls_proto::VerifyPeer for RejectAll {
    fn verify(&self, _chain: &[Vec<u8>]) -> Result<(), dtls_proto::PeerRejected> {
        Err(dtls_proto::PeerRejected {
            reason: "not on the allow list",
        })
    }
}

#[test]
fn custom_verifier_is_consulted() {
    for p in providers() {
        let mut pr = pair(p);
        pr.client.peer_verifier = PeerVerifier::Custom(Box::new(RejectAll));
        let mut sim = Sim::new(pr, Link::perfect(), 7);
        sim.run(MINUTE, |s| s.nodes[CLIENT].is_failed());
        assert!(matches!(sim.failure(CLIENT), Some(Error::PeerRejected(_))));
    }
}

#[test]
fn retransmit_timer_doubles_in_virtual_time_then_gives_up() {
    for p in providers() {
        let mut pr = pair(p);
        pr.client = pr
            .client
            .with_retransmit(Duration::from_secs(1), Duration::from_secs(4))
            .with_max_retransmits(4);
        // Nothing reaches the server.
        let mut sim = Sim::new(pr, Link::perfect(), 8).with_filter(|from, _, _| from == CLIENT);
        let t0 = sim.now;
        sim.run(MINUTE, |s| s.nodes[CLIENT].is_failed());
        let times: Vec<Duration> = sim.sent[CLIENT].iter().map(|(t, _)| *t - t0).collect();
        let secs = |s: u64| Duration::from_secs(s);
        // Initial send, then 1 s, doubling to the 4 s cap: 1, 3, 7, 11.
        assert_eq!(
            times,
            [secs(0), secs(1), secs(3), secs(7), secs(11)],
            "{}",
            p.name()
        );
        assert_eq!(
            sim.now - t0,
            secs(15),
            "gives up when the fifth timer expires"
        );
        assert_eq!(sim.failure(CLIENT), Some(&Error::HandshakeTimeout));
        assert_eq!(sim.nodes[CLIENT].poll_timeout(), None);
        // Retransmissions are the same ClientHello with fresh record sequence numbers.
        assert_eq!(sim.sent[CLIENT][0].1[13..], sim.sent[CLIENT][1].1[13..]);
        assert_ne!(sim.sent[CLIENT][0].1[..13], sim.sent[CLIENT][1].1[..13]);
    }
}

#[test]
fn early_or_late_timeouts_are_harmless() {
    for p in providers() {
        let mut sim = Sim::new(pair(p), Link::perfect(), 9);
        let t0 = sim.now;
        let _ = sim.nodes[CLIENT].poll_transmit();
        let deadline = sim.nodes[CLIENT].poll_timeout().unwrap();
        assert_eq!(deadline, t0 + Duration::from_secs(1));
        sim.nodes[CLIENT].handle_timeout(t0);
        sim.nodes[CLIENT].handle_timeout(deadline - Duration::from_millis(1));
        // Time that goes backwards (a very early timestamp) is harmless too.
        if let Some(early) = t0.checked_sub(Duration::from_secs(3600)) {
            sim.nodes[CLIENT].handle_timeout(early);
            sim.nodes[CLIENT].handle_datagram(early, &[22, 0xfe, 0xfd]);
        }
        assert!(
            sim.nodes[CLIENT].poll_transmit().is_none(),
            "early: nothing sent"
        );
        assert_eq!(sim.nodes[CLIENT].poll_timeout(), Some(deadline));
        sim.nodes[CLIENT].handle_timeout(deadline + Duration::from_secs(5));
        assert!(
            sim.nodes[CLIENT].poll_transmit().is_some(),
            "late: one retransmission"
        );
        assert!(sim.nodes[CLIENT].poll_transmit().is_none());
        assert_eq!(
            sim.nodes[CLIENT].poll_timeout(),
            Some(deadline + Duration::from_secs(7))
        );
        // The server has no timer before it has state.
        assert_eq!(sim.nodes[SERVER].poll_timeout(), None);
    }
}

#[test]
fn lost_final_flight_is_resent_when_the_client_retransmits() {
    for p in providers() {
        // Drop the server's first copy of flight 6 (its last datagram before connecting).
        let mut dropped = false;
        let mut sim = Sim::new(pair(p), Link::perfect(), 10).with_filter(move |from, _, d| {
            // Flight 6 is the first protected handshake record the server sends: CCS then epoch 1.
            if from == SERVER && !dropped && d[0] == 20 {
                dropped = true;
                return true;
            }
            false
        });
        let t0 = sim.now;
        connect(&mut sim);
        assert!(
            sim.now - t0 >= Duration::from_secs(1),
            "recovered by the client's timer"
        );
        assert!(
            sim.nodes[SERVER].stats().flight_retransmits >= 1,
            "{}",
            p.name()
        );
    }
}

#[test]
fn close_notify_reaches_the_peer() {
    for p in providers() {
        let mut sim = Sim::new(pair(p), Link::perfect(), 11);
        connect(&mut sim);
        sim.nodes[CLIENT].handle_close(sim.now);
        sim.run(MINUTE, |s| s.nodes[SERVER].is_closed());
        assert!(
            sim.events[SERVER].contains(&Event::PeerClosed),
            "{}",
            p.name()
        );
        assert!(sim.nodes[CLIENT].is_closed());
        assert!(sim.nodes[CLIENT].handle_send(sim.now, b"x").is_err());
    }
}

#[test]
fn forged_cleartext_alert_after_handshake_is_ignored() {
    for p in providers() {
        let mut sim = Sim::new(pair(p), Link::perfect(), 12);
        connect(&mut sim);
        // Epoch 0 fatal alert, sequence 1000: unauthenticated.
        let forged = [21, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0x03, 0xe8, 0, 2, 2, 40];
        sim.inject(CLIENT, &forged);
        assert!(sim.nodes[CLIENT].is_connected(), "{}", p.name());
        assert_eq!(sim.nodes[CLIENT].stats().alerts_ignored, 1);

        // A stateless server ignores alerts as well.
        let mut pr = pair(p);
        pr.server = pr.server.with_server_cookie(true);
        let mut server = dtls_proto::Dtls::server(
            pr.server,
            <rand_chacha::ChaCha20Rng as rand_core::SeedableRng>::seed_from_u64(4),
        );
        server.handle_datagram(sim.now, &forged);
        assert!(!server.is_failed());
        assert_eq!(server.stats().alerts_ignored, 1);
    }
}

#[test]
fn non_dtls_input_is_handed_back() {
    for p in providers() {
        let mut sim = Sim::new(pair(p), Link::perfect(), 13);
        assert_eq!(
            sim.nodes[SERVER].handle_datagram(sim.now, &[0x80, 0, 0]),
            dtls_proto::Handled::NotDtls(dtls_proto::PacketKind::Rtp)
        );
    }
}

#[test]
fn same_seed_same_bytes_with_rustcrypto() {
    let run = || {
        let mut sim = Sim::new(
            pair(&dtls_proto::crypto::RustCrypto),
            Link::hostile(0.2),
            77,
        );
        connect(&mut sim);
        sim.sent
    };
    let (a, b) = (run(), run());
    let bytes = |s: &[Vec<(std::time::Instant, bytes::Bytes)>; 2]| {
        s.iter()
            .map(|v| v.iter().map(|(_, d)| d.clone()).collect::<Vec<_>>())
            .collect::<Vec<_>>()
    };
    assert_eq!(bytes(&a), bytes(&b));
}

/// The first ClientKeyExchange public share in a side's datagrams.
fn client_key_share(sent: &[(std::time::Instant, bytes::Bytes)]) -> Option<Vec<u8>> {
    sent.iter().find_map(|(_, d)| {
        fuzzing::clear_handshake_fragments(d)
            .iter()
            .find_map(|f| (f.msg_type == 16).then(|| f.body.to_vec()))
    })
}

#[test]
fn reproducibility_per_provider() {
    for p in providers() {
        let run = || {
            let mut sim = Sim::new(pair(p), Link::perfect(), 31);
            connect(&mut sim);
            sim.sent
        };
        let (a, b) = (run(), run());
        // Randoms and ephemeral keys come from the injected RNG with every provider.
        assert_eq!(a[CLIENT][0].1, b[CLIENT][0].1, "{}: ClientHello", p.name());
        assert_eq!(client_key_share(&a[CLIENT]), client_key_share(&b[CLIENT]));
        assert!(client_key_share(&a[CLIENT]).is_some());
        // ServerKeyExchange carries an ECDSA signature: RFC 6979 with RustCrypto, AWS-LC's own
        // nonce with aws-lc.
        let server_flight_equal = a[SERVER][1].1 == b[SERVER][1].1;
        assert_eq!(
            server_flight_equal,
            p.name() == "rustcrypto",
            "{}",
            p.name()
        );
    }
}

#[test]
fn old_fragments_trigger_at_most_one_resend_per_half_timeout() {
    for p in providers() {
        let mut sim = Sim::new(pair(p), Link::perfect(), 14);
        connect(&mut sim);
        // The first record of the client's flight 5 (its Certificate) again, as a retransmission
        // would carry it: fresh record sequence numbers, ten times at one instant.
        let (_, first) = sim.sent[CLIENT]
            .iter()
            .find(|(_, d)| d[0] == 22 && d[13] == 11)
            .unwrap();
        let record_len = 13 + usize::from(u16::from_be_bytes([first[11], first[12]]));
        let resent = |seq: u64| {
            let mut d = first[..record_len].to_vec();
            d[5..11].copy_from_slice(&seq.to_be_bytes()[2..]);
            d
        };
        let before = sim.nodes[SERVER].stats();
        for i in 0..10 {
            sim.nodes[SERVER].handle_datagram(sim.now, &resent(1000 + i));
        }
        let after = sim.nodes[SERVER].stats();
        let resends = after.flight_retransmits - before.flight_retransmits;
        assert_eq!(resends, 1, "{}", p.name());
        let suppressed = after.retransmits_suppressed - before.retransmits_suppressed;
        assert_eq!(suppressed, 9);
        // The exact same datagram again within half a timeout triggers nothing either (clear-text
        // records have no replay window, which a forged record number could shift: the rate
        // limit is what bounds replays).
        sim.nodes[SERVER].handle_datagram(sim.now + Duration::from_millis(400), &resent(1000));
        assert_eq!(
            sim.nodes[SERVER].stats().flight_retransmits,
            after.flight_retransmits
        );
        // Half the initial timeout later, another request is honoured.
        let later = sim.now + Duration::from_millis(500);
        sim.nodes[SERVER].handle_datagram(later, &resent(2000));
        let resends = sim.nodes[SERVER].stats().flight_retransmits - before.flight_retransmits;
        assert_eq!(resends, 2);
    }
}

/// Splits a datagram holding one whole handshake message in one epoch-0 record into one
/// record per `(start, end)` range of the message body, in the order given (RFC 6347 §4.2.3).
fn refragment(datagram: &[u8], ranges: &[(usize, usize)]) -> Vec<Vec<u8>> {
    const RECORD_HEADER: usize = 13;
    const HANDSHAKE_HEADER: usize = 12;
    let header = &datagram[..RECORD_HEADER];
    let handshake = &datagram[RECORD_HEADER..];
    let body = &handshake[HANDSHAKE_HEADER..];
    ranges
        .iter()
        .map(|&(start, end)| {
            let piece = &body[start..end];
            let mut fragment = handshake[..6].to_vec(); // type, length, message_seq
            fragment.extend_from_slice(&(start as u32).to_be_bytes()[1..]);
            fragment.extend_from_slice(&(piece.len() as u32).to_be_bytes()[1..]);
            fragment.extend_from_slice(piece);
            let mut record = header[..11].to_vec();
            record.extend_from_slice(&(fragment.len() as u16).to_be_bytes());
            record.extend_from_slice(&fragment);
            record
        })
        .collect()
}

/// True for a datagram that is one ClientHello record.
fn is_client_hello(datagram: &[u8]) -> bool {
    datagram.first() == Some(&22) && datagram.get(13) == Some(&1)
}

#[test]
fn fragmented_client_hello_completes_the_handshake_with_and_without_cookies() {
    // Browsers send their first flight in several records (Chromium's ClientHello with a
    // post-quantum key share is 1413 bytes in two); the server reassembles it before it has any
    // state, on the cookie path and without it.
    type Split = fn(usize) -> Vec<(usize, usize)>;
    let splits: [(&str, Split); 3] = [
        ("two fragments", |n| vec![(0, n * 5 / 6), (n * 5 / 6, n)]),
        ("three, out of order, one duplicated", |n| {
            let (a, b) = (n / 3, 2 * n / 3);
            vec![(a, b), (b, n), (a, b), (0, a)]
        }),
        ("overlapping", |n| {
            vec![(n / 2, n), (n / 4, n / 2 + 20), (0, n / 2 + 10)]
        }),
    ];
    for p in providers() {
        for cookies in [true, false] {
            for (name, split) in splits {
                let mut pr = pair(p);
                pr.server = pr.server.with_server_cookie(cookies);
                let mut sim =
                    Sim::new(pr, Link::perfect(), 20).with_rewrite(move |from, _, datagram| {
                        if from == CLIENT && is_client_hello(datagram) {
                            let body_len = datagram.len() - 25;
                            refragment(datagram, &split(body_len))
                        } else {
                            vec![datagram.to_vec()]
                        }
                    });
                assert!(
                    sim.connect(MINUTE),
                    "{} cookies={cookies} {name}: {:?} {:?}",
                    p.name(),
                    sim.events,
                    sim.nodes[SERVER].stats()
                );
                assert_eq!(sim.nodes[SERVER].stats().fragments_dropped, 0, "{name}");
                assert_eq!(
                    sim.nodes[SERVER].stats().flight_retransmits,
                    0,
                    "{name}: no flight was lost"
                );
            }
        }
    }
}

#[test]
fn client_hello_fragments_beyond_the_bound_are_dropped_and_counted() {
    let p = providers()[0];
    let mut pr = pair(p);
    pr.server = pr
        .server
        .with_server_cookie(false)
        .with_max_client_hello_len(64);
    let mut sim = Sim::new(pr, Link::perfect(), 21).with_rewrite(|from, _, datagram| {
        if from == CLIENT && is_client_hello(datagram) {
            let n = datagram.len() - 25;
            refragment(datagram, &[(0, n / 2), (n / 2, n)])
        } else {
            vec![datagram.to_vec()]
        }
    });
    assert!(!sim.connect(Duration::from_secs(3)));
    assert!(sim.nodes[SERVER].stats().fragments_dropped >= 2);
    assert!(sim.sent[SERVER].is_empty(), "nothing answered");
}

/// Chromium 156's default ClientHello as it left the browser in a WebRTC call (captured on
/// loopback): 1413 bytes with DTLS 1.3 in supported_versions and an X25519MLKEM768 key share,
/// in two records (fragment 0+1175 and 1175+238).
fn chromium_client_hello() -> Vec<Vec<u8>> {
    include_str!("chromium156-client-hello.hex")
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            (0..l.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&l[i..i + 2], 16).unwrap())
                .collect()
        })
        .collect()
}

/// The body of the first handshake message of `msg_type` in `datagrams` (whole messages).
fn handshake_body(datagrams: &[bytes::Bytes], msg_type: u8) -> Option<Vec<u8>> {
    for d in datagrams {
        let mut rest = &d[..];
        while rest.len() >= 13 {
            let len = u16::from_be_bytes([rest[11], rest[12]]) as usize;
            let record = &rest[13..13 + len];
            if rest[0] == 22 && record[0] == msg_type {
                return Some(record[12..].to_vec());
            }
            rest = &rest[13 + len..];
        }
    }
    None
}

#[test]
fn chromium_s_fragmented_post_quantum_client_hello_gets_a_dtls_1_2_answer() {
    let fragments = chromium_client_hello();
    assert_eq!(fragments.len(), 2);
    for p in providers() {
        for order in [[0, 1], [1, 0]] {
            let now = sim::origin();
            let server_config = pair(p).server.with_server_cookie(false);
            let mut server = Dtls::server(server_config, ChaCha20Rng::seed_from_u64(4));
            server.handle_datagram(now, &fragments[order[0]]);
            assert_eq!(
                server.poll_transmit(),
                None,
                "half a ClientHello is not answered"
            );
            server.handle_datagram(now, &fragments[order[1]]);
            let flight: Vec<_> = std::iter::from_fn(|| server.poll_transmit())
                .map(|t| t.payload)
                .collect();
            assert_eq!(server.stats().fragments_dropped, 0);
            let hello = handshake_body(&flight, 2).expect("a ServerHello");
            assert_eq!(&hello[..2], &[0xfe, 0xfd], "DTLS 1.2");
            // X25519 from the classical shares Chromium also offers (hybrid groups are not ours).
            let key_exchange = handshake_body(&flight, 12).expect("a ServerKeyExchange");
            assert_eq!(&key_exchange[..3], &[3, 0, 0x1d], "named_curve x25519");
            assert!(server.poll_event().is_none(), "{}", p.name());
        }
    }
}
