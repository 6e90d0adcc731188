//! Interop with dimpl (crates.io `dimpl` 0.9.0), an independent DTLS 1.2/1.3 implementation
//! (DESIGN testing layer 4): both are sans-IO, so they meet in one process over an in-memory,
//! seeded link on a virtual clock (`link.rs`).
//!
//! Our client against dimpl's server and dimpl's client against our server, in DTLS 1.3 (RFC
//! 9147) for every cipher suite and every group the two share (dimpl 0.9 has X25519 and P-256,
//! not X25519MLKEM768), and DTLS 1.2 when either side only speaks 1.2. Each case checks the
//! negotiated version, suite and group, the certificate fingerprints both ways, equal DTLS-SRTP
//! keying material (RFC 5764 §4.2) and application data both ways. Lost, duplicated and
//! reordered datagrams are recovered by the two machines' own retransmission rules. dimpl's
//! certificates come from its own generator (rcgen), so our X.509 parser meets a certificate we
//! did not encode.

mod link;
#[path = "../common/wire.rs"]
mod wire;

use std::time::Duration;

use dimpl::crypto::{Dtls13CipherSuite, NamedGroup as TheirGroup};
use dtls_proto::crypto::{CryptoProvider, providers};
use dtls_proto::{
    CertificateParams, CipherSuite, Config, Dtls, DtlsCertificate, Error, Fingerprint, NamedGroup,
    PeerVerifier, ProtocolVersion, SrtpProfile,
};
use link::{Impairments, Link, OURS, THEIRS, origin, their_config};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const MINUTE: Duration = Duration::from_secs(60);

/// The two groups both implementations have.
const SHARED_GROUPS: [(NamedGroup, TheirGroup); 2] = [
    (NamedGroup::X25519, TheirGroup::X25519),
    (NamedGroup::Secp256r1, TheirGroup::Secp256r1),
];

const ALL_THEIR_SUITES: [Dtls13CipherSuite; 3] = [
    Dtls13CipherSuite::AES_128_GCM_SHA256,
    Dtls13CipherSuite::AES_256_GCM_SHA384,
    Dtls13CipherSuite::CHACHA20_POLY1305_SHA256,
];

fn their_suite(suite: CipherSuite) -> Dtls13CipherSuite {
    match suite {
        CipherSuite::Aes128GcmSha256 => Dtls13CipherSuite::AES_128_GCM_SHA256,
        CipherSuite::Aes256GcmSha384 => Dtls13CipherSuite::AES_256_GCM_SHA384,
        CipherSuite::ChaCha20Poly1305Sha256 => Dtls13CipherSuite::CHACHA20_POLY1305_SHA256,
        other => panic!("{other:?} is not a DTLS 1.3 suite"),
    }
}

fn our_profile(profile: dimpl::SrtpProfile) -> SrtpProfile {
    match profile {
        dimpl::SrtpProfile::AES128_CM_SHA1_80 => SrtpProfile::Aes128CmHmacSha1_80,
        dimpl::SrtpProfile::AEAD_AES_128_GCM => SrtpProfile::AeadAes128Gcm,
        dimpl::SrtpProfile::AEAD_AES_256_GCM => SrtpProfile::AeadAes256Gcm,
        other => panic!("dimpl negotiated {other:?}, which we do not offer"),
    }
}

/// Both certificates: ours from this crate, theirs from dimpl's generator.
struct Certificates {
    ours: DtlsCertificate,
    theirs: dimpl::DtlsCertificate,
}

impl Certificates {
    fn new(provider: &'static dyn CryptoProvider, seed: u64) -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        Self {
            ours: DtlsCertificate::generate(
                provider,
                &mut rng,
                &CertificateParams::new(1_700_000_000),
            )
            .unwrap(),
            theirs: dimpl::certificate::generate_self_signed_certificate().unwrap(),
        }
    }

    fn their_fingerprint(&self) -> Fingerprint {
        Fingerprint::of(&self.theirs.certificate)
    }

    /// Our config, pinned to dimpl's certificate.
    fn our_config(&self, provider: &'static dyn CryptoProvider) -> Config {
        Config::new(
            provider,
            self.ours.clone(),
            PeerVerifier::Fingerprint(self.their_fingerprint()),
        )
    }
}

/// One handshake to run: who plays which role, with what.
struct Case {
    provider: &'static dyn CryptoProvider,
    our_versions: &'static [ProtocolVersion],
    our_suites: Vec<CipherSuite>,
    our_groups: Vec<NamedGroup>,
    their_version: TheirVersion,
    their_groups: Vec<TheirGroup>,
    their_suites: Vec<Dtls13CipherSuite>,
    impairments: Impairments,
    /// Records dimpl seals under one key before its KeyUpdate.
    their_aead_limit: Option<u64>,
    seed: u64,
}

#[derive(Debug, Clone, Copy)]
enum TheirVersion {
    Dtls12,
    Dtls13,
    Auto,
}

impl Case {
    fn dtls13(provider: &'static dyn CryptoProvider, seed: u64) -> Self {
        Self {
            provider,
            our_versions: &[ProtocolVersion::Dtls13, ProtocolVersion::Dtls12],
            our_suites: CipherSuite::ALL_13
                .iter()
                .chain(&CipherSuite::ALL)
                .copied()
                .collect(),
            our_groups: NamedGroup::ALL_13.to_vec(),
            their_version: TheirVersion::Dtls13,
            their_groups: vec![TheirGroup::X25519, TheirGroup::Secp256r1],
            their_suites: ALL_THEIR_SUITES.to_vec(),
            impairments: Impairments::perfect(),
            their_aead_limit: None,
            seed,
        }
    }

    fn with_suite(mut self, suite: CipherSuite) -> Self {
        self.our_suites = vec![suite];
        self.their_suites = vec![their_suite(suite)];
        self
    }

    fn with_group(mut self, ours: NamedGroup, theirs: TheirGroup) -> Self {
        self.our_groups = vec![ours];
        self.their_groups = vec![theirs];
        self
    }

    fn their_dtls(&self, certs: &Certificates, client: bool) -> dimpl::Dtls {
        let config = their_config(
            self.seed,
            &self.their_groups,
            &self.their_suites,
            self.their_aead_limit,
        );
        let cert = certs.theirs.clone();
        let now = origin();
        let mut dtls = match self.their_version {
            TheirVersion::Dtls12 => dimpl::Dtls::new_12(config, cert, now),
            TheirVersion::Dtls13 => dimpl::Dtls::new_13(config, cert, now),
            TheirVersion::Auto => dimpl::Dtls::new_auto(config, cert, now),
        };
        dtls.set_active(client);
        dtls
    }

    fn our_config(&self, certs: &Certificates) -> Config {
        certs
            .our_config(self.provider)
            .with_versions(self.our_versions)
            .with_cipher_suites(&self.our_suites)
            .with_groups(&self.our_groups)
    }

    /// Our client against dimpl's server.
    fn our_client(&self) -> (Link, Certificates) {
        let certs = Certificates::new(self.provider, self.seed);
        let now = origin();
        let rng = ChaCha20Rng::seed_from_u64(self.seed);
        let ours = Dtls::client(self.our_config(&certs), rng, now).unwrap();
        let theirs = self.their_dtls(&certs, false);
        let link = Link::new(now, ours, theirs, self.impairments, self.seed ^ 0x5eed);
        (link, certs)
    }

    /// dimpl's client against our server.
    fn our_server(&self) -> (Link, Certificates) {
        let certs = Certificates::new(self.provider, self.seed);
        let now = origin();
        let rng = ChaCha20Rng::seed_from_u64(self.seed);
        let ours = Dtls::server(self.our_config(&certs), rng);
        let theirs = self.their_dtls(&certs, true);
        let link = Link::new(now, ours, theirs, self.impairments, self.seed ^ 0x5eed);
        (link, certs)
    }
}

/// What a completed case must show on both sides.
struct Expect {
    version: ProtocolVersion,
    suite: Option<CipherSuite>,
    group: Option<NamedGroup>,
}

/// Connects, then checks version, suite, group, fingerprints both ways, SRTP keys and data.
fn check(name: &str, link: &mut Link, certs: &Certificates, expect: Expect) {
    assert!(
        link.connect(MINUTE),
        "{name}: no handshake; ours {:?}, theirs {:?}",
        link.our_events,
        link.theirs.report
    );
    let done = link.connected_event().unwrap().clone();
    assert_eq!(done.version, expect.version, "{name}");
    let their_version = match expect.version {
        ProtocolVersion::Dtls13 => dimpl::ProtocolVersion::DTLS1_3,
        _ => dimpl::ProtocolVersion::DTLS1_2,
    };
    assert_eq!(
        link.theirs.dtls.protocol_version(),
        Some(their_version),
        "{name}"
    );
    assert_eq!(
        done.cipher_suite.is_dtls13(),
        expect.version == ProtocolVersion::Dtls13,
        "{name}: {:?}",
        done.cipher_suite
    );
    if let Some(suite) = expect.suite {
        assert_eq!(done.cipher_suite, suite, "{name}");
    }
    if let Some(group) = expect.group {
        assert_eq!(done.group, group, "{name}");
    }
    // Fingerprints: we verified theirs (the verifier is pinned to it); they saw our certificate.
    assert_eq!(done.peer_fingerprint, certs.their_fingerprint(), "{name}");
    assert_eq!(done.peer_certificate, certs.theirs.certificate, "{name}");
    let seen = link.theirs.report.peer_certificate.as_deref().unwrap();
    assert_eq!(Fingerprint::of(seen), certs.ours.fingerprint(), "{name}");
    // The same SRTP keys on both sides (RFC 5764 §4.2).
    let ours = done.srtp.clone().unwrap();
    let (material, profile) = link.theirs.report.keying_material.clone().unwrap();
    assert_eq!(ours.profile, our_profile(profile), "{name}");
    assert_eq!(ours.material, material, "{name}: SRTP keying material");
    assert_eq!(ours.material.len(), ours.profile.keying_material_len());
    // Application data both ways, over a clean link: DTLS does not retransmit application
    // data, so a lost record is lost for good whatever the implementation.
    link.wire.impairments = Impairments::perfect();
    assert!(
        link.exchange(b"ping from us", b"pong from dimpl", MINUTE),
        "{name}: no data; ours {:?}, theirs {:?}",
        link.our_events,
        link.theirs.report
    );
    assert_eq!(
        link.our_application_data(),
        vec![b"pong from dimpl".to_vec()],
        "{name}"
    );
    assert_eq!(
        link.theirs.report.application_data,
        vec![b"ping from us".to_vec()],
        "{name}"
    );
}

#[test]
fn dtls13_our_client_and_their_server_for_every_suite_and_group() {
    every_suite_and_group(1, "our client");
}

#[test]
fn dtls13_their_client_and_our_server_for_every_suite_and_group() {
    every_suite_and_group(2, "our server");
}

/// DTLS 1.3 with each shared suite and group, through every provider, we in `role`.
fn every_suite_and_group(seed: u64, role: &str) {
    for p in providers() {
        for suite in CipherSuite::ALL_13 {
            for (ours, theirs) in SHARED_GROUPS {
                let case = Case::dtls13(p, seed)
                    .with_suite(suite)
                    .with_group(ours, theirs);
                let (mut link, certs) = match role {
                    "our client" => case.our_client(),
                    _ => case.our_server(),
                };
                let name = format!("{} {suite:?} {ours:?}: {role}", p.name());
                let expect = Expect {
                    version: ProtocolVersion::Dtls13,
                    suite: Some(suite),
                    group: Some(ours),
                };
                check(&name, &mut link, &certs, expect);
            }
        }
    }
}

/// Both sides with their defaults: we put X25519MLKEM768 first (with its key share), which
/// dimpl lacks, so it must pick X25519 from our list (RFC 8446 §4.2.8: a HelloRetryRequest
/// when our share is for a group it does not take).
#[test]
fn dtls13_defaults_settle_on_x25519_without_the_hybrid_group() {
    for p in providers() {
        for (role, seed) in [("our client", 3), ("our server", 4)] {
            let case = Case::dtls13(p, seed);
            let (mut link, certs) = match role {
                "our client" => case.our_client(),
                _ => case.our_server(),
            };
            let expect = Expect {
                version: ProtocolVersion::Dtls13,
                suite: Some(CipherSuite::Aes128GcmSha256),
                group: Some(NamedGroup::X25519),
            };
            check(&format!("{} {role}", p.name()), &mut link, &certs, expect);
        }
    }
}

/// dimpl's auto-sensing modes (its server reads supported_versions; its client sends a hello
/// for either version) settle on 1.3 with us.
#[test]
fn dtls13_is_chosen_by_their_auto_sensing_client_and_server() {
    for p in providers() {
        let mut case = Case::dtls13(p, 5);
        case.their_version = TheirVersion::Auto;
        for (mut link, certs) in [case.our_client(), case.our_server()] {
            let expect = Expect {
                version: ProtocolVersion::Dtls13,
                suite: None,
                group: Some(NamedGroup::X25519),
            };
            let name = format!("{} auto, our client {}", p.name(), link.ours.is_client());
            check(&name, &mut link, &certs, expect);
        }
    }
}

/// We offer 1.3 and 1.2; a dimpl that only speaks 1.2 gets 1.2, in both roles (RFC 9147 §5.3:
/// a 1.3 client negotiates 1.2 with a 1.2 server).
#[test]
fn dtls12_fallback_with_their_dtls12_only_client_and_server() {
    for p in providers() {
        let mut case = Case::dtls13(p, 6);
        case.their_version = TheirVersion::Dtls12;
        for (mut link, certs) in [case.our_client(), case.our_server()] {
            let expect = Expect {
                version: ProtocolVersion::Dtls12,
                suite: None,
                group: None,
            };
            let name = format!("{} 1.2, our client {}", p.name(), link.ours.is_client());
            check(&name, &mut link, &certs, expect);
        }
    }
}

/// We speak only 1.2; dimpl's auto-sensing client and server fall back to it.
#[test]
fn dtls12_when_we_only_speak_dtls12_and_they_auto_sense() {
    for p in providers() {
        let mut case = Case::dtls13(p, 7);
        case.our_versions = &[ProtocolVersion::Dtls12];
        case.our_suites = CipherSuite::ALL.to_vec();
        case.their_version = TheirVersion::Auto;
        for (mut link, certs) in [case.our_client(), case.our_server()] {
            let expect = Expect {
                version: ProtocolVersion::Dtls12,
                suite: None,
                group: Some(NamedGroup::X25519),
            };
            let name = format!("{} we 1.2, our client {}", p.name(), link.ours.is_client());
            check(&name, &mut link, &certs, expect);
        }
    }
}

/// Loss, duplication and reordering on both directions of the link: each side recovers with
/// its own retransmission timers and the ACKs of RFC 9147 §7, whatever the other is.
#[test]
fn dtls13_over_a_lossy_reordering_link_in_both_roles() {
    let p = providers()[0];
    for seed in 10..22 {
        let mut case = Case::dtls13(p, seed);
        case.impairments = Impairments::hostile(0.15);
        for (mut link, certs) in [case.our_client(), case.our_server()] {
            let expect = Expect {
                version: ProtocolVersion::Dtls13,
                suite: None,
                group: Some(NamedGroup::X25519),
            };
            let name = format!("seed {seed}, our client {}", link.ours.is_client());
            check(&name, &mut link, &certs, expect);
        }
    }
}

/// Lost first flights, recovered by retransmission timers alone. Our client: its first two
/// ClientHellos and dimpl's first two answers are lost. Our server: dimpl's first ClientHello
/// and the first datagram of our ServerHello flight (our first datagram is the stateless
/// HelloRetryRequest) are lost, so our server must resend its flight.
#[test]
fn dtls13_lost_first_flights_are_retransmitted_in_both_roles() {
    let p = providers()[0];
    let case = Case::dtls13(p, 30);
    for (link, certs) in [case.our_client(), case.our_server()] {
        let client = link.ours.is_client();
        let mut link = link.with_filter(move |from, index, _| match (client, from) {
            (true, _) => index < 2,
            (false, OURS) => index == 1,
            (false, _) => index == 0,
        });
        let expect = Expect {
            version: ProtocolVersion::Dtls13,
            suite: None,
            group: Some(NamedGroup::X25519),
        };
        let name = format!("our client {client}");
        check(&name, &mut link, &certs, expect);
        assert!(link.ours.stats().flight_retransmits > 0, "{name}");
    }
}

/// A certificate that does not match the fingerprint we were given ends our side of the
/// handshake with FingerprintMismatch, in both roles.
#[test]
fn dtls13_a_wrong_fingerprint_fails_in_both_roles() {
    let p = providers()[0];
    let case = Case::dtls13(p, 40);
    for role in ["our client", "our server"] {
        let certs = Certificates::new(p, 40);
        let config = Config::new(
            p,
            certs.ours.clone(),
            PeerVerifier::Fingerprint(Fingerprint::from([0xab; 32])),
        )
        .with_versions(case.our_versions);
        let now = origin();
        let rng = ChaCha20Rng::seed_from_u64(40);
        let (ours, theirs) = if role == "our client" {
            (
                Dtls::client(config, rng, now).unwrap(),
                case.their_dtls(&certs, false),
            )
        } else {
            (Dtls::server(config, rng), case.their_dtls(&certs, true))
        };
        let mut link = Link::new(now, ours, theirs, Impairments::perfect(), 41);
        assert!(!link.connect(MINUTE), "{role}");
        assert!(
            matches!(link.our_failure(), Some(Error::FingerprintMismatch { .. })),
            "{role}: {:?}",
            link.our_events
        );
        assert!(!link.ours.is_connected(), "{role}");
        assert!(
            link.sent[THEIRS].len() < 20,
            "{role}: the failure ended the exchange"
        );
    }
}

/// Our close_notify reaches dimpl (RFC 9147 §5.10 via RFC 8446 §6.1).
#[test]
fn dtls13_our_close_notify_reaches_them() {
    let p = providers()[0];
    let (mut link, _) = Case::dtls13(p, 50).our_client();
    assert!(link.connect(MINUTE));
    link.ours.handle_close(link.now);
    assert!(link.run(MINUTE, |l| l.theirs.report.close_notify));
}

/// Our KeyUpdate asking dimpl to update too (RFC 9147 §8): dimpl ACKs it and we move to
/// epoch 4; dimpl answers with its own before its next application data (RFC 8446 §4.6.3
/// allows that late), which we follow; data flows in the new epochs.
#[test]
fn dtls13_our_key_update_is_followed_by_them_in_both_roles() {
    let p = providers()[0];
    let case = Case::dtls13(p, 80);
    for (mut link, certs) in [case.our_client(), case.our_server()] {
        let name = format!("our client {}", link.ours.is_client());
        let expect = Expect {
            version: ProtocolVersion::Dtls13,
            suite: None,
            group: Some(NamedGroup::X25519),
        };
        check(&name, &mut link, &certs, expect);
        // After the data exchange every handshake flight is ACKed.
        assert_eq!(link.ours.poll_timeout(), None, "{name}");
        link.ours.handle_key_update(link.now, true).unwrap();
        assert!(
            link.run(MINUTE, |l| l.ours.application_epochs() == Some((4, 3))),
            "{name}: {:?} {:?}",
            link.ours.application_epochs(),
            link.theirs.report
        );
        assert_eq!(
            link.ours.poll_timeout(),
            None,
            "{name}: the ACK ended our flight"
        );
        assert!(link.exchange_many(5, MINUTE), "{name}");
        assert_eq!(link.ours.application_epochs(), Some((4, 4)), "{name}");
        assert!(link.theirs.report.error.is_none(), "{name}");
        assert_eq!(link.ours.stats().records_failed_authentication, 0);
    }
}

/// dimpl sends a KeyUpdate asking for ours each time it has sealed a few records under one
/// key (its AEAD limit set low): we follow every one, in both roles, and no message is lost.
#[test]
fn dtls13_their_key_updates_are_followed_in_both_roles() {
    let p = providers()[0];
    let mut case = Case::dtls13(p, 81);
    case.their_aead_limit = Some(8);
    for (mut link, certs) in [case.our_client(), case.our_server()] {
        let name = format!("our client {}", link.ours.is_client());
        let expect = Expect {
            version: ProtocolVersion::Dtls13,
            suite: None,
            group: Some(NamedGroup::X25519),
        };
        check(&name, &mut link, &certs, expect);
        assert!(
            link.exchange_many(40, MINUTE),
            "{name}: {:?}",
            link.theirs.report
        );
        let (write, read) = link.ours.application_epochs().unwrap();
        assert!(write > 4 && read > 4, "{name}: epochs {write} {read}");
        assert_eq!(link.our_application_data().len(), 41, "{name}");
        assert_eq!(link.theirs.report.application_data.len(), 41, "{name}");
        assert!(link.theirs.report.error.is_none(), "{name}");
    }
}
