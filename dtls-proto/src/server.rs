//! The server's transitions (RFC 6347 §4.2.1 cookie exchange, RFC 5246 §7.3 message order).
//!
//! ```text
//! AwaitClientHello --ClientHello without valid cookie--> HelloVerifyRequest, no state kept
//! AwaitClientHello --ClientHello (cookie ok or cookies off)--> flight 4:
//!     ServerHello, Certificate, ServerKeyExchange, CertificateRequest, ServerHelloDone
//! AwaitCertificate --Certificate--> AwaitClientKeyExchange --ClientKeyExchange-->
//! AwaitCertificateVerify --CertificateVerify--> AwaitFinished --Finished--> flight 6:
//!     [ChangeCipherSpec], Finished; handshake complete
//! ```
//!
//! Until a ClientHello returns with a valid cookie the server keeps nothing but its cookie
//! secret: the HelloVerifyRequest reuses the ClientHello's record and message sequence numbers
//! and is not retransmitted (the client's timer drives that exchange). The cookie is an
//! HMAC-SHA-256 over the ClientHello without its cookie, keyed by a secret drawn from the
//! injected RNG; a server endpoint is per peer, so the caller's routing by address binds the
//! cookie to the peer's address.

use std::time::Instant;

use rand_core::CryptoRng;

use crate::cipher_suite::{
    CipherSuite, ECDSA_SECP256R1_SHA256, EMPTY_RENEGOTIATION_INFO_SCSV, NamedGroup,
};
use crate::crypto::{CryptoProvider, Digest, EcdhKey, HashAlgorithm};
use crate::engine::Engine;
use crate::error::Error;
use crate::event::HandshakeComplete;
use crate::extensions::{Extensions, POINT_FORMAT_UNCOMPRESSED, UseSrtp};
use crate::fragment::{HelloAssembler, Message};
use crate::handshake::HandshakeType;
use crate::handshake::hello::{ClientHello, HelloVerifyRequest, ServerHello, is_dtls_1_2_or_later};
use crate::handshake::key_exchange::{
    CertificateRequest, CertificateVerify, ClientKeyExchange, ECDSA_SIGN, MAX_PARAMS_LEN,
    ServerKeyExchange,
};
use crate::handshake::shared::{self, PeerCertificate};
use crate::initial_hello::InitialHello;
use crate::record::DTLS_1_2;
use crate::srtp::SrtpProfile;

/// Server handshake states, in protocol order.
#[allow(clippy::enum_variant_names)] // STYLE: states are named for what they wait for
pub enum State {
    /// Stateless: waiting for a ClientHello (with a valid cookie when cookies are on).
    AwaitClientHello(AwaitClientHello),
    /// Flight 4 sent; the client's Certificate expected.
    AwaitCertificate(Negotiated),
    /// ClientKeyExchange expected.
    AwaitClientKeyExchange(Authenticated),
    /// CertificateVerify expected.
    AwaitCertificateVerify(Authenticated),
    /// The client's Finished expected.
    AwaitFinished(Authenticated),
}

/// What the state machine returns after a message.
#[allow(clippy::large_enum_variant)] // transient: moved straight into the connection's phase
pub enum Step {
    /// Still handshaking.
    Next(State),
    /// Handshake complete.
    Done(Box<HandshakeComplete>),
}

/// The initial state: nothing but the cookie secret and the fragments of one ClientHello.
pub struct AwaitClientHello {
    cookie_secret: [u8; 32],
    /// The ClientHello being reassembled (bounded by `Config::max_client_hello_len`).
    pub assembler: HelloAssembler,
}

/// Parameters chosen from the ClientHello, with our ephemeral key.
pub struct Negotiated {
    client_random: [u8; 32],
    server_random: [u8; 32],
    suite: CipherSuite,
    group: NamedGroup,
    srtp: Option<SrtpProfile>,
    ephemeral: Box<dyn EcdhKey>,
}

/// Negotiated, plus the client's verified certificate.
pub struct Authenticated {
    neg: Negotiated,
    peer: PeerCertificate,
}

/// The initial state, with a cookie secret drawn from `rng`.
pub fn start(rng: &mut dyn CryptoRng, max_client_hello_len: usize) -> State {
    let mut cookie_secret = [0u8; 32];
    rng.fill_bytes(&mut cookie_secret);
    State::AwaitClientHello(AwaitClientHello {
        cookie_secret,
        assembler: HelloAssembler::new(max_client_hello_len),
    })
}

/// Room for the cookie parameters of a ClientHello (a browser's take about 100 bytes).
const COOKIE_INPUT_CAPACITY: usize = 256;

/// The cookie for `hello` (RFC 6347 §4.2.1): HMAC-SHA-256 under `secret` over `bound_to` (the
/// client's address, where one server answers many) and the parameters the client must repeat
/// (version, random, session_id, cipher_suites, compression_methods), not its extensions.
pub(crate) fn cookie(
    provider: &dyn CryptoProvider,
    secret: &[u8; 32],
    bound_to: &[u8],
    hello: &ClientHello,
) -> Digest {
    let mut body = Vec::with_capacity(COOKIE_INPUT_CAPACITY);
    hello.encode_cookie_parameters(&mut body);
    provider.hmac(HashAlgorithm::Sha256, secret, &[bound_to, &body])
}

/// True when `hello` carries `expected`, compared in constant time.
pub(crate) fn cookie_matches(hello: &ClientHello, expected: &[u8]) -> bool {
    hello.cookie.len() == expected.len()
        && hello
            .cookie
            .iter()
            .zip(expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

impl AwaitClientHello {
    /// The secret cookies are made under (DTLS 1.3's HelloRetryRequest uses it too).
    pub fn cookie_secret(&self) -> &[u8; 32] {
        &self.cookie_secret
    }

    /// Handles a parsed ClientHello that arrived whole in one record. Returns the next state,
    /// or `self` when a HelloVerifyRequest was sent.
    pub fn handle_client_hello(
        self,
        engine: &mut Engine,
        rng: &mut dyn CryptoRng,
        now: Instant,
        initial: InitialHello<'_>,
    ) -> Result<State, Error> {
        let InitialHello {
            record_seq,
            message_seq,
            hello,
            body,
            cookie_verified,
            ..
        } = initial;
        if engine.config.server_cookie && !cookie_verified {
            let expected = cookie(engine.config.provider, &self.cookie_secret, &[], hello);
            if !cookie_matches(hello, &expected) {
                let mut hvr = Vec::with_capacity(3 + expected.len());
                HelloVerifyRequest::new(expected.to_vec()).encode(&mut hvr);
                engine.send_stateless(
                    record_seq,
                    HandshakeType::HelloVerifyRequest,
                    message_seq,
                    &hvr,
                );
                return Ok(State::AwaitClientHello(self));
            }
        }
        let neg = negotiate(engine, rng, hello)?;

        engine.reassembler.set_next_seq(message_seq.wrapping_add(1));
        engine.set_next_message_seq(message_seq);
        engine.continue_epoch0_at(record_seq);
        engine.transcript_reset();
        engine.transcript_push(HandshakeType::ClientHello, message_seq, body)?;
        send_flight_4(engine, now, hello, &neg)?;
        Ok(State::AwaitCertificate(neg))
    }
}

/// Chooses suite, group and SRTP profile with the server's preference (RFC 5246 §7.4.1.3,
/// RFC 8422 §5.1, RFC 5764 §4.1.1) and enforces extended_master_secret (RFC 7627 §5.2).
fn negotiate(
    engine: &Engine,
    rng: &mut dyn CryptoRng,
    hello: &ClientHello,
) -> Result<Negotiated, Error> {
    let config = &engine.config;
    if !is_dtls_1_2_or_later(hello.version) {
        return Err(Error::UnsupportedVersion(hello.version));
    }
    if !hello.compression_methods.contains(&0) {
        // RFC 5246 §7.4.1.2: the list must include the null method.
        return Err(Error::IllegalParameter {
            parameter: "compression methods without null",
            value: hello
                .compression_methods
                .first()
                .copied()
                .unwrap_or(0)
                .into(),
        });
    }
    let ext = &hello.extensions;
    shared::check_secure_hello(ext)?;
    let suite = config
        .cipher_suites
        .iter()
        .copied()
        .filter(|s| !s.is_dtls13())
        .find(|s| hello.cipher_suites.contains(&s.id()))
        .ok_or(Error::NoCommonCipherSuite)?;
    // No supported_groups means secp256r1 only (RFC 8422 §4).
    let offered = |g: &NamedGroup| match &ext.supported_groups {
        Some(ids) => ids.contains(&g.id()),
        None => *g == NamedGroup::Secp256r1,
    };
    let group = config
        .groups
        .iter()
        .copied()
        .filter(|g| g.is_ecdhe())
        .find(offered)
        .ok_or(Error::NoCommonGroup)?;
    if let Some(formats) = &ext.ec_point_formats {
        if !formats.contains(&POINT_FORMAT_UNCOMPRESSED) {
            // RFC 8422 §5.1.2: uncompressed must be supported.
            return Err(Error::IllegalParameter {
                parameter: "ec_point_formats without uncompressed",
                value: formats.first().copied().unwrap_or(0).into(),
            });
        }
    }
    if !ext
        .signature_algorithms
        .as_ref()
        .is_some_and(|a| a.contains(&ECDSA_SECP256R1_SHA256))
    {
        return Err(Error::NoCommonSignatureAlgorithm);
    }
    let srtp = if config.srtp_profiles.is_empty() {
        None
    } else {
        let offered = ext.use_srtp.as_ref().ok_or(Error::NoCommonSrtpProfile)?;
        Some(
            config
                .srtp_profiles
                .iter()
                .copied()
                .find(|p| offered.profiles.contains(&p.id()))
                .ok_or(Error::NoCommonSrtpProfile)?,
        )
    };
    let mut server_random = [0u8; 32];
    rng.fill_bytes(&mut server_random);
    if config.speaks(crate::cipher_suite::ProtocolVersion::Dtls13) {
        // We speak DTLS 1.3 and settle for 1.2: say so where a 1.3 client looks (RFC 8446
        // §4.1.3), so that a ClientHello stripped of its 1.3 offer is caught.
        server_random[24..].copy_from_slice(&crate::cipher_suite::DOWNGRADE_SENTINEL_12);
    }
    let ephemeral = shared::ephemeral(engine, group, rng)?;
    Ok(Negotiated {
        client_random: hello.random,
        server_random,
        suite,
        group,
        srtp,
        ephemeral,
    })
}

/// ServerHello, Certificate, ServerKeyExchange, CertificateRequest, ServerHelloDone.
fn send_flight_4(
    engine: &mut Engine,
    now: Instant,
    hello: &ClientHello,
    neg: &Negotiated,
) -> Result<(), Error> {
    let client_signalled_ri = hello.extensions.renegotiation_info.is_some()
        || hello.cipher_suites.contains(&EMPTY_RENEGOTIATION_INFO_SCSV);
    let sh = ServerHello {
        version: DTLS_1_2,
        random: neg.server_random,
        session_id: Vec::new(),
        cipher_suite: neg.suite.id(),
        compression_method: 0,
        extensions: Extensions {
            supported_groups: None,
            ec_point_formats: hello
                .extensions
                .ec_point_formats
                .is_some()
                .then(|| vec![POINT_FORMAT_UNCOMPRESSED]),
            signature_algorithms: None,
            use_srtp: neg.srtp.map(|p| UseSrtp {
                profiles: vec![p.id()],
                mki: Vec::new(),
            }),
            extended_master_secret: true,
            renegotiation_info: client_signalled_ri.then(Vec::new),
            ..Extensions::default()
        },
    };
    let public = neg.ephemeral.public_key();
    let mut signed = [0u8; 64 + MAX_PARAMS_LEN];
    let signed_len = ServerKeyExchange::signed_message(
        &neg.client_random,
        &neg.server_random,
        neg.group.id(),
        public,
        &mut signed,
    );
    let signature = shared::sign(engine, &signed[..signed_len])?;

    engine.begin_flight();
    engine.push_handshake(HandshakeType::ServerHello, true, |_, o| sh.encode(o))?;
    engine.push_handshake(HandshakeType::Certificate, true, shared::encode_certificate)?;
    engine.push_handshake(HandshakeType::ServerKeyExchange, true, |_, o| {
        ServerKeyExchange {
            group: neg.group.id(),
            public,
            signature_scheme: ECDSA_SECP256R1_SHA256,
            signature: &signature,
        }
        .encode(o)
    })?;
    engine.push_handshake(HandshakeType::CertificateRequest, true, |_, o| {
        CertificateRequest::encode(&[ECDSA_SIGN], &[ECDSA_SECP256R1_SHA256], o)
    })?;
    engine.push_handshake(HandshakeType::ServerHelloDone, true, |_, _| {})?;
    engine.send_flight(now, true)
}

impl State {
    /// Whether `msg` is what this state waits for, by type and epoch (the connection checks
    /// that it is well formed too). Clear-text messages are unauthenticated: anything else —
    /// a Finished mid-handshake, a second ClientHello, a ClientKeyExchange without the
    /// Certificate WebRTC requires, junk — is dropped before it can end the handshake (RFC
    /// 6347 §4.1.2.7).
    pub fn waits_for(&self, msg: &Message) -> bool {
        let clear = msg.epoch == 0;
        match self {
            Self::AwaitClientHello(_) => false,
            Self::AwaitCertificate(_) => clear && msg.msg_type == HandshakeType::Certificate,
            Self::AwaitClientKeyExchange(_) => {
                clear && msg.msg_type == HandshakeType::ClientKeyExchange
            }
            Self::AwaitCertificateVerify(_) => {
                clear && msg.msg_type == HandshakeType::CertificateVerify
            }
            Self::AwaitFinished(_) => msg.epoch == 1 && msg.msg_type == HandshakeType::Finished,
        }
    }

    /// Handles one complete message in order, one [`waits_for`](Self::waits_for) accepted (not the
    /// initial ClientHello, see [`AwaitClientHello::handle_client_hello`]).
    pub fn handle_message(
        self,
        engine: &mut Engine,
        now: Instant,
        msg: Message,
    ) -> Result<Step, Error> {
        if msg.msg_type != HandshakeType::Finished {
            shared::expect_epoch(&msg, 0, "a clear-text handshake message")?;
        }
        match self {
            Self::AwaitClientHello(_) => Err(Error::UnexpectedMessage {
                expected: "ClientHello",
                got: msg.msg_type,
            }),
            Self::AwaitCertificate(neg) => {
                if msg.msg_type == HandshakeType::ClientKeyExchange {
                    return Err(Error::PeerCertificateMissing);
                }
                shared::expect_type(&msg, HandshakeType::Certificate, "Certificate")?;
                let peer = shared::verify_peer_certificate(engine, &msg.body)?;
                engine.transcript_push_received(&msg)?;
                Ok(Step::Next(Self::AwaitClientKeyExchange(Authenticated {
                    neg,
                    peer,
                })))
            }
            Self::AwaitClientKeyExchange(auth) => {
                shared::expect_type(&msg, HandshakeType::ClientKeyExchange, "ClientKeyExchange")?;
                let cke = ClientKeyExchange::parse(&msg.body)?;
                let neg = &auth.neg;
                let pre_master = neg.ephemeral.agree(cke.public)?;
                engine.transcript_push_received(&msg)?;
                engine.derive_session(
                    neg.suite,
                    &pre_master,
                    neg.client_random,
                    neg.server_random,
                )?;
                Ok(Step::Next(Self::AwaitCertificateVerify(auth)))
            }
            Self::AwaitCertificateVerify(auth) => {
                shared::expect_type(&msg, HandshakeType::CertificateVerify, "CertificateVerify")?;
                let cv = CertificateVerify::parse(&msg.body)?;
                shared::verify_signature(
                    engine,
                    &auth.peer,
                    cv.signature_scheme,
                    engine.transcript(),
                    cv.signature,
                )?;
                engine.transcript_push_received(&msg)?;
                Ok(Step::Next(Self::AwaitFinished(auth)))
            }
            Self::AwaitFinished(auth) => {
                shared::expect_type(&msg, HandshakeType::Finished, "Finished")?;
                shared::check_finished(engine, &msg, true)?;
                engine.transcript_push_received(&msg)?;
                engine.begin_flight();
                engine.push_change_cipher_spec();
                let finished = engine
                    .verify_data(false)
                    .ok_or(Error::UnexpectedRecord("Finished before key exchange"))?;
                engine.push_handshake(HandshakeType::Finished, true, |_, o| {
                    o.extend_from_slice(&finished)
                })?;
                // Final flight: resent only when the client retransmits flight 5.
                engine.send_flight(now, false)?;
                let done = shared::completion(engine, auth.neg.group, auth.neg.srtp, auth.peer)?;
                Ok(Step::Done(Box::new(done)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    use super::*;
    use crate::certificate::{CertificateParams, DtlsCertificate, Fingerprint, PeerVerifier};
    use crate::crypto::providers;
    use crate::event::Event;
    use crate::{Config, Dtls};

    /// A ClientHello datagram (epoch 0, record sequence 0) with `mutate` applied.
    fn client_hello_datagram(mutate: impl FnOnce(&mut ClientHello)) -> Vec<u8> {
        let mut hello = ClientHello {
            version: DTLS_1_2,
            random: [1; 32],
            session_id: vec![],
            cookie: vec![],
            cipher_suites: vec![0xc02b],
            compression_methods: vec![0],
            extensions: Extensions {
                supported_groups: Some(vec![29, 23]),
                ec_point_formats: Some(vec![0]),
                signature_algorithms: Some(vec![0x0403]),
                use_srtp: Some(UseSrtp {
                    profiles: vec![7],
                    mki: vec![],
                }),
                extended_master_secret: true,
                renegotiation_info: Some(vec![]),
                ..Extensions::default()
            },
        };
        mutate(&mut hello);
        let mut body = Vec::new();
        hello.encode(&mut body);
        crate::engine::stateless_record(0, HandshakeType::ClientHello, 0, &body)
    }

    #[test]
    fn server_refuses_client_hellos_it_must_not_accept() {
        type Mutation = fn(&mut ClientHello);
        let cases: [(Mutation, Error); 7] = [
            (
                |h| h.extensions.extended_master_secret = false,
                Error::ExtendedMasterSecretMissing,
            ),
            (
                |h| h.extensions.renegotiation_info = Some(vec![1]),
                Error::BadRenegotiationInfo,
            ),
            (
                |h| h.cipher_suites = vec![0x002f],
                Error::NoCommonCipherSuite,
            ),
            (|h| h.version = 0xfeff, Error::UnsupportedVersion(0xfeff)),
            (
                |h| h.extensions.supported_groups = Some(vec![24]),
                Error::NoCommonGroup,
            ),
            (|h| h.extensions.use_srtp = None, Error::NoCommonSrtpProfile),
            (
                |h| h.extensions.signature_algorithms = Some(vec![0x0401]),
                Error::NoCommonSignatureAlgorithm,
            ),
        ];
        for p in providers() {
            let server_with = |datagram: &[u8]| {
                let mut rng = ChaCha20Rng::seed_from_u64(1);
                let params = CertificateParams::new(0);
                let cert = DtlsCertificate::generate(p, &mut rng, &params).unwrap();
                let config = Config::new(
                    p,
                    cert,
                    PeerVerifier::Fingerprint(Fingerprint::from([0; 32])),
                )
                .with_server_cookie(false);
                let mut server = Dtls::server(config, ChaCha20Rng::seed_from_u64(3));
                server.handle_datagram(crate::test_instant(), datagram);
                server
            };
            // The unmodified hello is accepted: flight 4 goes out.
            let mut ok = server_with(&client_hello_datagram(|_| {}));
            assert!(!ok.is_failed(), "{}", p.name());
            assert_eq!(ok.poll_transmit().unwrap().payload[13], 2, "ServerHello");
            for (mutate, expected) in cases.iter().cloned() {
                let mut server = server_with(&client_hello_datagram(mutate));
                assert_eq!(
                    server.poll_event(),
                    Some(Event::Failed(expected.clone())),
                    "{}",
                    p.name()
                );
                // A fatal alert tells the client why.
                let alert = server.poll_transmit().unwrap().payload;
                assert_eq!((alert[0], alert[13]), (21, 2), "{expected:?}");
                assert_eq!(alert[14], expected.alert().unwrap().to_byte());
            }
        }
    }

    /// RFC 6347 §4.2.1 binds the retried ClientHello to version, random, session_id,
    /// cipher_suites and compression_method; a client that changes its extensions in between
    /// (one that offered DTLS 1.3 and continues in 1.2) still passes the cookie check.
    #[test]
    fn the_cookie_binds_the_parameters_the_client_must_repeat_not_its_extensions() {
        let p = providers()[0];
        let secret = [7u8; 32];
        let hello = |mutate: fn(&mut ClientHello)| {
            let datagram = client_hello_datagram(mutate);
            ClientHello::parse(&datagram[25..]).unwrap()
        };
        let c = |bound_to: &[u8], h: &ClientHello| cookie(p, &secret, bound_to, h).to_vec();
        let first = c(&[], &hello(|_| {}));
        let same: [fn(&mut ClientHello); 3] = [
            |h| h.extensions.supported_groups = Some(vec![23]),
            |h| h.extensions.use_srtp = None,
            |h| h.cookie = vec![9; 32],
        ];
        for mutate in same {
            assert_eq!(c(&[], &hello(mutate)), first);
        }
        let other: [fn(&mut ClientHello); 5] = [
            |h| h.version = 0xfeff,
            |h| h.random[31] ^= 1,
            |h| h.session_id = vec![1],
            |h| h.cipher_suites.push(0xc02c),
            |h| h.compression_methods = vec![0, 1],
        ];
        for mutate in other {
            assert_ne!(c(&[], &hello(mutate)), first);
        }
        assert_ne!(c(b"elsewhere", &hello(|_| {})), first);
    }
}
