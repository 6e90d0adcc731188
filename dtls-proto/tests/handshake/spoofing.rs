//! An off-path attacker who knows the 5-tuple injects clear-text records into a handshake:
//! every handshake message type and the alerts that end an association, into every state of
//! both roles. None of them may end the handshake (RFC 6347 §4.1.2.7): invalid records are
//! discarded, clear-text alerts are believed only when the peer then stays silent.

use std::time::Duration;

use dtls_proto::crypto::providers;

use crate::sim::{CLIENT, Link, SERVER, Sim, pair};

/// Every handshake type of DTLS 1.2, by wire value.
const TYPES: [u8; 11] = [0, 1, 2, 3, 11, 12, 13, 14, 15, 16, 20];

/// One datagram of clear-text handshake records of `msg_type` with message_seq 0 to 7, each a
/// whole message of junk; the first record numbered 2^48-1, as if to push a replay window.
fn forged_messages(msg_type: u8) -> Vec<u8> {
    let mut datagram = Vec::new();
    for seq in 0u16..8 {
        let body = [seq as u8 ^ 0x5a; 48];
        let mut fragment = vec![msg_type, 0, 0, body.len() as u8];
        fragment.extend_from_slice(&seq.to_be_bytes());
        fragment.extend_from_slice(&[0, 0, 0, 0, 0, body.len() as u8]);
        fragment.extend_from_slice(&body);
        let record_seq: u64 = if seq == 0 {
            (1 << 48) - 1
        } else {
            1000 + u64::from(seq)
        };
        datagram.extend_from_slice(&[22, 0xfe, 0xfd, 0, 0]);
        datagram.extend_from_slice(&record_seq.to_be_bytes()[2..]);
        datagram.extend_from_slice(&(fragment.len() as u16).to_be_bytes());
        datagram.extend_from_slice(&fragment);
    }
    datagram
}

/// A clear-text alert record.
fn forged_alert(level: u8, description: u8) -> Vec<u8> {
    // Content type, version, epoch 0 and record number 9, length 2; then the alert.
    let mut record = vec![21, 0xfe, 0xfd];
    record.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 9, 0, 2]);
    record.extend_from_slice(&[level, description]);
    record
}

fn forgeries() -> Vec<(String, Vec<u8>)> {
    let mut all: Vec<(String, Vec<u8>)> = TYPES
        .iter()
        .map(|&t| (format!("handshake type {t}"), forged_messages(t)))
        .collect();
    all.push(("fatal handshake_failure".into(), forged_alert(2, 40)));
    all.push(("fatal bad_certificate".into(), forged_alert(2, 42)));
    all.push(("warning close_notify".into(), forged_alert(1, 0)));
    all.push(("fatal close_notify".into(), forged_alert(2, 0)));
    all
}

#[test]
fn no_injected_clear_text_record_ends_a_handshake() {
    let p = providers()[0];
    let mut runs = 0;
    for target in [CLIENT, SERVER] {
        // The target receives 2 to 3 flights; a forgery lands just before each of them.
        for point in 0..3 {
            for (what, forgery) in forgeries() {
                let sender = 1 - target;
                let mut delivered = 0;
                let mut sim = Sim::new(pair(p), Link::perfect(), 30).with_rewrite(
                    move |from, _, datagram| {
                        if from != sender {
                            return vec![datagram.to_vec()];
                        }
                        delivered += 1;
                        if delivered - 1 == point {
                            vec![forgery.clone(), datagram.to_vec()]
                        } else {
                            vec![datagram.to_vec()]
                        }
                    },
                );
                let done = sim.connect(Duration::from_secs(60));
                let side = if target == CLIENT { "client" } else { "server" };
                assert!(
                    done,
                    "{what} injected into the {side} before flight {point} ended the handshake: \
                     {:?} {:?}",
                    sim.events[target],
                    sim.nodes[target].stats()
                );
                assert_eq!(
                    sim.application_data(target),
                    Vec::<Vec<u8>>::new(),
                    "nothing forged reaches the application"
                );
                runs += 1;
            }
        }
    }
    assert_eq!(runs, 2 * 3 * (TYPES.len() + 4));
}

#[test]
fn a_genuine_clear_text_alert_still_ends_the_handshake_when_the_peer_goes_silent() {
    // The server rejects the client's certificate (a wrong fingerprint) with a clear-text
    // bad_certificate alert and stops: the client believes the alert at its next timer.
    let p = providers()[0];
    let mut pr = pair(p);
    pr.server = pr.server.with_server_cookie(false);
    pr.server.peer_verifier =
        dtls_proto::PeerVerifier::Fingerprint(crate::sim::wrong_fingerprint());
    let mut sim = Sim::new(pr, Link::perfect(), 31);
    sim.run(Duration::from_secs(60), |s| {
        s.failure(CLIENT).is_some() && s.failure(SERVER).is_some()
    });
    assert!(matches!(
        sim.failure(CLIENT),
        Some(dtls_proto::Error::AlertReceived(
            dtls_proto::AlertDescription::BadCertificate
        ))
    ));
    assert_eq!(sim.nodes[CLIENT].stats().alerts_ignored, 1);
}

/// The handshake types of DTLS 1.3 (with HelloVerifyRequest and the 1.2-only ones, which a
/// 1.3 endpoint must drop as well).
const TYPES_13: [u8; 12] = [0, 1, 2, 3, 8, 11, 12, 13, 14, 15, 16, 20];

#[test]
fn no_injected_clear_text_record_ends_a_dtls13_handshake() {
    // DTLS 1.3 authenticates everything after ServerHello (epoch 2): clear-text messages of
    // those types are dropped by type and epoch, clear-text alerts held as in DTLS 1.2.
    let p = providers()[0];
    let mut forgeries: Vec<(String, Vec<u8>)> = TYPES_13
        .iter()
        .map(|&t| (format!("handshake type {t}"), forged_messages(t)))
        .collect();
    forgeries.push(("fatal handshake_failure".into(), forged_alert(2, 40)));
    forgeries.push(("fatal close_notify".into(), forged_alert(2, 0)));
    let mut runs = 0;
    for target in [CLIENT, SERVER] {
        // Cookies on: the client receives the HelloRetryRequest, the server flight and the
        // ACK; the server both ClientHellos and the client's flight.
        for point in 0..3 {
            for (what, forgery) in &forgeries {
                let sender = 1 - target;
                let mut delivered = 0;
                let forgery = forgery.clone();
                let mut sim = Sim::new(crate::dtls13::pair13(p), Link::perfect(), 32).with_rewrite(
                    move |from, _, datagram| {
                        if from != sender {
                            return vec![datagram.to_vec()];
                        }
                        delivered += 1;
                        if delivered - 1 == point {
                            vec![forgery.clone(), datagram.to_vec()]
                        } else {
                            vec![datagram.to_vec()]
                        }
                    },
                );
                let done = sim.connect(Duration::from_secs(60));
                let side = if target == CLIENT { "client" } else { "server" };
                assert!(
                    done,
                    "{what} injected into the DTLS 1.3 {side} before flight {point} ended the \
                     handshake: {:?} {:?}",
                    sim.events[target],
                    sim.nodes[target].stats()
                );
                let version = sim.connected_event(target).unwrap().version;
                assert_eq!(version, dtls_proto::ProtocolVersion::Dtls13);
                assert_eq!(sim.application_data(target), Vec::<Vec<u8>>::new());
                runs += 1;
            }
        }
    }
    assert_eq!(runs, 2 * 3 * (TYPES_13.len() + 2));
}
