//! The client's transitions (RFC 6347 §4.2.4 flights, RFC 5246 §7.3 message order).
//!
//! ```text
//! Client                                   Server
//! ClientHello                 -------->                       flight 1
//!                             <--------   HelloVerifyRequest  flight 2 (optional)
//! ClientHello + cookie        -------->                       flight 3
//!                                         ServerHello         flight 4
//!                                         Certificate
//!                                         ServerKeyExchange
//!                                         CertificateRequest
//!                             <--------   ServerHelloDone
//! Certificate                                                 flight 5
//! ClientKeyExchange
//! CertificateVerify
//! [ChangeCipherSpec]
//! Finished                    -------->
//!                                         [ChangeCipherSpec]  flight 6
//!                             <--------   Finished
//! ```
//!
//! States are named for what they wait for and listed in that order. A server that skips
//! HelloVerifyRequest is fine: `AwaitServerHello` accepts either.

use std::time::Instant;

use rand_core::CryptoRng;

use crate::cipher_suite::{CipherSuite, ECDSA_SECP256R1_SHA256, NamedGroup};
use crate::engine::Engine;
use crate::error::Error;
use crate::event::HandshakeComplete;
use crate::extensions::{Extensions, POINT_FORMAT_UNCOMPRESSED, UseSrtp};
use crate::fragment::Message;
use crate::handshake::HandshakeType;
use crate::handshake::hello::{ClientHello, HelloVerifyRequest, ServerHello};
use crate::handshake::key_exchange::{
    CertificateRequest, ClientKeyExchange, ECDSA_SIGN, MAX_PARAMS_LEN, ServerKeyExchange,
};
use crate::handshake::shared::{self, PeerCertificate};
use crate::record::DTLS_1_2;
use crate::srtp::SrtpProfile;

/// How many HelloVerifyRequests we answer before we consider the server broken.
const MAX_COOKIE_ROUNDS: u8 = 4;

/// Client handshake states, in protocol order.
#[allow(clippy::enum_variant_names)] // STYLE: states are named for what they wait for
pub enum State {
    /// Flight 1 or 3 sent; HelloVerifyRequest or ServerHello expected.
    AwaitServerHello(AwaitServerHello),
    /// ServerHello accepted; the server's Certificate expected.
    AwaitCertificate(AwaitCertificate),
    /// The server's certificate verified; ServerKeyExchange expected.
    AwaitServerKeyExchange(AwaitServerKeyExchange),
    /// Key exchange parameters verified; CertificateRequest (or ServerHelloDone) expected.
    AwaitCertificateRequest(AwaitServerHelloDone),
    /// ServerHelloDone expected.
    AwaitServerHelloDone(AwaitServerHelloDone),
    /// Flight 5 sent; the server's Finished expected.
    AwaitFinished(AwaitFinished),
}

/// What the state machine returns after a message.
#[allow(clippy::large_enum_variant)] // transient: moved straight into the connection's phase
pub enum Step {
    /// Still handshaking.
    Next(State),
    /// Handshake complete.
    Done(Box<HandshakeComplete>),
}

/// Parameters agreed in ServerHello.
#[derive(Clone)]
pub struct Negotiated {
    client_random: [u8; 32],
    server_random: [u8; 32],
    suite: CipherSuite,
    srtp: Option<SrtpProfile>,
}

/// Waiting for HelloVerifyRequest or ServerHello.
pub struct AwaitServerHello {
    hello: ClientHello,
    hello_seq: u16,
    cookie_rounds: u8,
    /// Our ClientHello offered DTLS 1.3 too: a ServerHello with the downgrade sentinel is
    /// refused (RFC 8446 §4.1.3).
    offered_13: bool,
}

impl AwaitServerHello {
    /// A DTLS 1.3 ClientHello (message_seq `hello_seq`) that also offered DTLS 1.2, answered
    /// by a DTLS 1.2 server: the handshake goes on here.
    pub fn fall_back(hello: ClientHello, hello_seq: u16) -> Self {
        Self {
            hello,
            hello_seq,
            cookie_rounds: 0,
            offered_13: true,
        }
    }
}

/// Waiting for the server's Certificate.
pub struct AwaitCertificate {
    neg: Negotiated,
}

/// Waiting for ServerKeyExchange.
pub struct AwaitServerKeyExchange {
    neg: Negotiated,
    peer: PeerCertificate,
}

/// Waiting for CertificateRequest and/or ServerHelloDone.
pub struct AwaitServerHelloDone {
    neg: Negotiated,
    peer: PeerCertificate,
    group: NamedGroup,
    server_public: Vec<u8>,
    certificate_requested: bool,
}

/// Waiting for the server's Finished.
pub struct AwaitFinished {
    neg: Negotiated,
    peer: PeerCertificate,
    group: NamedGroup,
}

/// Sends flight 1.
pub fn start(engine: &mut Engine, rng: &mut dyn CryptoRng, now: Instant) -> Result<State, Error> {
    let mut random = [0u8; 32];
    rng.fill_bytes(&mut random);
    let config = &engine.config;
    let hello = ClientHello {
        version: DTLS_1_2,
        random,
        session_id: Vec::new(),
        cookie: Vec::new(),
        cipher_suites: config
            .cipher_suites
            .iter()
            .filter(|s| !s.is_dtls13())
            .map(|s| s.id())
            .collect(),
        compression_methods: vec![0],
        extensions: Extensions {
            supported_groups: Some(advertised_groups(&config.groups)),
            ec_point_formats: Some(vec![POINT_FORMAT_UNCOMPRESSED]),
            signature_algorithms: Some(vec![ECDSA_SECP256R1_SHA256]),
            use_srtp: (!config.srtp_profiles.is_empty()).then(|| UseSrtp {
                profiles: config.srtp_profiles.iter().map(|p| p.id()).collect(),
                mki: Vec::new(),
            }),
            extended_master_secret: true,
            renegotiation_info: Some(Vec::new()),
            ..Extensions::default()
        },
    };
    let hello_seq = send_hello(engine, &hello, now)?;
    Ok(State::AwaitServerHello(AwaitServerHello {
        hello,
        hello_seq,
        cookie_rounds: 0,
        offered_13: false,
    }))
}

/// The configured groups, plus secp256r1 at the end when missing: RFC 8422 §5.1.1 makes
/// supported_groups also govern the curves of ECDSA certificates, and OpenSSL refuses an
/// ECDSA P-256 certificate to a client that does not list secp256r1.
fn advertised_groups(groups: &[NamedGroup]) -> Vec<u16> {
    let mut ids: Vec<u16> = groups
        .iter()
        .filter(|g| g.is_ecdhe())
        .map(|g| g.id())
        .collect();
    if !groups.contains(&NamedGroup::Secp256r1) {
        ids.push(NamedGroup::Secp256r1.id());
    }
    ids
}

/// True for the groups [`advertised_groups`] lists.
fn is_advertised(groups: &[NamedGroup], group: NamedGroup) -> bool {
    group == NamedGroup::Secp256r1 || groups.contains(&group)
}

fn send_hello(engine: &mut Engine, hello: &ClientHello, now: Instant) -> Result<u16, Error> {
    engine.begin_flight();
    // The transcript starts with the ClientHello the server answers with ServerHello.
    let seq = engine.push_handshake(HandshakeType::ClientHello, false, |_, o| hello.encode(o))?;
    engine.send_flight(now, true)?;
    Ok(seq)
}

impl State {
    /// Whether `msg` is what this state waits for, by type and epoch (the connection checks
    /// that it is well formed too). Clear-text messages are unauthenticated: anything else
    /// is dropped before it can end the handshake (RFC 6347 §4.1.2.7), and only a message
    /// admitted here reaches [`handle_message`](Self::handle_message).
    pub fn waits_for(&self, msg: &Message) -> bool {
        use HandshakeType as T;
        let clear = msg.epoch == 0;
        match self {
            Self::AwaitServerHello(_) => {
                clear && matches!(msg.msg_type, T::HelloVerifyRequest | T::ServerHello)
            }
            Self::AwaitCertificate(_) => clear && msg.msg_type == T::Certificate,
            Self::AwaitServerKeyExchange(_) => clear && msg.msg_type == T::ServerKeyExchange,
            Self::AwaitCertificateRequest(_) => {
                clear && matches!(msg.msg_type, T::CertificateRequest | T::ServerHelloDone)
            }
            Self::AwaitServerHelloDone(_) => clear && msg.msg_type == T::ServerHelloDone,
            // Under epoch 1 protection: authenticated by the record layer.
            Self::AwaitFinished(_) => msg.epoch == 1 && msg.msg_type == T::Finished,
        }
    }

    /// Handles one complete message in order, one [`waits_for`](Self::waits_for) accepted.
    pub fn handle_message(
        self,
        engine: &mut Engine,
        rng: &mut dyn CryptoRng,
        now: Instant,
        msg: Message,
    ) -> Result<Step, Error> {
        if msg.msg_type != HandshakeType::Finished {
            shared::expect_epoch(&msg, 0, "a clear-text handshake message")?;
        }
        match self {
            Self::AwaitServerHello(s) => s.handle(engine, now, msg),
            Self::AwaitCertificate(s) => s.handle(engine, msg),
            Self::AwaitServerKeyExchange(s) => s.handle(engine, msg),
            Self::AwaitCertificateRequest(s) => s.handle_request(engine, rng, now, msg),
            Self::AwaitServerHelloDone(s) => s.handle_done(engine, rng, now, msg),
            Self::AwaitFinished(s) => s.handle(engine, msg),
        }
    }
}

impl AwaitServerHello {
    fn handle(mut self, engine: &mut Engine, now: Instant, msg: Message) -> Result<Step, Error> {
        match msg.msg_type {
            HandshakeType::HelloVerifyRequest => {
                let hvr = HelloVerifyRequest::parse(&msg.body)?;
                self.cookie_rounds += 1;
                if self.cookie_rounds > MAX_COOKIE_ROUNDS {
                    return Err(Error::UnexpectedMessage {
                        expected: "ServerHello after cookie exchange",
                        got: msg.msg_type,
                    });
                }
                // Same random and parameters, now with the cookie (RFC 6347 §4.2.1).
                self.hello.cookie = hvr.cookie;
                self.hello_seq = send_hello(engine, &self.hello, now)?;
                Ok(Step::Next(State::AwaitServerHello(self)))
            }
            HandshakeType::ServerHello => {
                let sh = ServerHello::parse(&msg.body)?;
                let neg = self.negotiate(engine, &sh)?;
                engine.transcript_reset();
                engine.transcript_push_encoded(
                    HandshakeType::ClientHello,
                    self.hello_seq,
                    |o| self.hello.encode(o),
                )?;
                engine.transcript_push_received(&msg)?;
                Ok(Step::Next(State::AwaitCertificate(AwaitCertificate {
                    neg,
                })))
            }
            _ => Err(Error::UnexpectedMessage {
                expected: "ServerHello",
                got: msg.msg_type,
            }),
        }
    }

    /// Checks ServerHello against what we offered (RFC 5246 §7.4.1.3, RFC 7627 §5.2,
    /// RFC 5764 §4.1.1, RFC 5746 §3.4).
    fn negotiate(&self, engine: &Engine, sh: &ServerHello) -> Result<Negotiated, Error> {
        if sh.version != DTLS_1_2 {
            return Err(Error::UnsupportedVersion(sh.version));
        }
        if self.offered_13 && sh.random[24..] == crate::cipher_suite::DOWNGRADE_SENTINEL_12 {
            return Err(Error::IllegalParameter {
                parameter: "ServerHello.random (DTLS 1.2 downgrade sentinel)",
                value: u16::from_be_bytes([sh.random[30], sh.random[31]]),
            });
        }
        let suite = CipherSuite::from_id(sh.cipher_suite)
            .filter(|s| engine.config.cipher_suites.contains(s))
            .ok_or(Error::IllegalParameter {
                parameter: "cipher suite",
                value: sh.cipher_suite,
            })?;
        if sh.compression_method != 0 {
            return Err(Error::IllegalParameter {
                parameter: "compression method",
                value: sh.compression_method.into(),
            });
        }
        let ext = &sh.extensions;
        shared::check_secure_hello(ext)?;
        let srtp = match (&ext.use_srtp, engine.config.srtp_profiles.is_empty()) {
            (_, true) => None,
            (None, false) => return Err(Error::NoCommonSrtpProfile),
            (Some(u), false) => match u.profiles.as_slice() {
                [one] => Some(
                    SrtpProfile::from_id(*one)
                        .filter(|p| engine.config.srtp_profiles.contains(p))
                        .ok_or(Error::IllegalParameter {
                            parameter: "SRTP profile",
                            value: *one,
                        })?,
                ),
                // RFC 5764 §4.1.1: the server answers with exactly one profile.
                many => {
                    return Err(Error::IllegalParameter {
                        parameter: "number of SRTP profiles",
                        value: u16::try_from(many.len()).unwrap_or(u16::MAX),
                    });
                }
            },
        };
        Ok(Negotiated {
            client_random: self.hello.random,
            server_random: sh.random,
            suite,
            srtp,
        })
    }
}

impl AwaitCertificate {
    fn handle(self, engine: &mut Engine, msg: Message) -> Result<Step, Error> {
        shared::expect_type(&msg, HandshakeType::Certificate, "Certificate")?;
        let peer = shared::verify_peer_certificate(engine, &msg.body)?;
        engine.transcript_push_received(&msg)?;
        Ok(Step::Next(State::AwaitServerKeyExchange(
            AwaitServerKeyExchange {
                neg: self.neg,
                peer,
            },
        )))
    }
}

impl AwaitServerKeyExchange {
    fn handle(self, engine: &mut Engine, msg: Message) -> Result<Step, Error> {
        shared::expect_type(&msg, HandshakeType::ServerKeyExchange, "ServerKeyExchange")?;
        let ske = ServerKeyExchange::parse(&msg.body)?;
        let group = NamedGroup::from_id(ske.group)
            .filter(|g| is_advertised(&engine.config.groups, *g))
            .ok_or(Error::IllegalParameter {
                parameter: "named group",
                value: ske.group,
            })?;
        let mut signed = [0u8; 64 + MAX_PARAMS_LEN];
        let signed_len = ServerKeyExchange::signed_message(
            &self.neg.client_random,
            &self.neg.server_random,
            ske.group,
            ske.public,
            &mut signed,
        );
        shared::verify_signature(
            engine,
            &self.peer,
            ske.signature_scheme,
            &signed[..signed_len],
            ske.signature,
        )?;
        engine.transcript_push_received(&msg)?;
        Ok(Step::Next(State::AwaitCertificateRequest(
            AwaitServerHelloDone {
                neg: self.neg,
                peer: self.peer,
                group,
                server_public: ske.public.to_vec(),
                certificate_requested: false,
            },
        )))
    }
}

impl AwaitServerHelloDone {
    fn handle_request(
        mut self,
        engine: &mut Engine,
        rng: &mut dyn CryptoRng,
        now: Instant,
        msg: Message,
    ) -> Result<Step, Error> {
        if msg.msg_type == HandshakeType::ServerHelloDone {
            return self.handle_done(engine, rng, now, msg);
        }
        shared::expect_type(
            &msg,
            HandshakeType::CertificateRequest,
            "CertificateRequest",
        )?;
        let cr = CertificateRequest::parse(&msg.body)?;
        if !cr.certificate_types.contains(&ECDSA_SIGN) || !cr.accepts_scheme(ECDSA_SECP256R1_SHA256)
        {
            return Err(Error::NoCommonSignatureAlgorithm);
        }
        engine.transcript_push_received(&msg)?;
        self.certificate_requested = true;
        Ok(Step::Next(State::AwaitServerHelloDone(self)))
    }

    /// ServerHelloDone: compute the key exchange and send flight 5.
    fn handle_done(
        self,
        engine: &mut Engine,
        rng: &mut dyn CryptoRng,
        now: Instant,
        msg: Message,
    ) -> Result<Step, Error> {
        shared::expect_type(&msg, HandshakeType::ServerHelloDone, "ServerHelloDone")?;
        if !msg.body.is_empty() {
            return Err(Error::MalformedMessage(
                crate::wire::DecodeError::TrailingBytes,
            ));
        }
        engine.transcript_push_received(&msg)?;

        let ephemeral = shared::ephemeral(engine, self.group, rng)?;
        let pre_master = ephemeral.agree(&self.server_public)?;
        let public = ephemeral.public_key();

        engine.begin_flight();
        if self.certificate_requested {
            engine.push_handshake(HandshakeType::Certificate, true, shared::encode_certificate)?;
        }
        engine.push_handshake(HandshakeType::ClientKeyExchange, true, |_, o| {
            ClientKeyExchange { public }.encode(o)
        })?;
        engine.derive_session(
            self.neg.suite,
            &pre_master,
            self.neg.client_random,
            self.neg.server_random,
        )?;
        if self.certificate_requested {
            let signature = shared::sign_transcript(engine)?;
            engine.push_handshake(HandshakeType::CertificateVerify, true, |_, o| {
                shared::encode_certificate_verify(&signature, o)
            })?;
        }
        engine.push_change_cipher_spec();
        let finished = engine
            .verify_data(true)
            .ok_or(Error::UnexpectedRecord("Finished before key exchange"))?;
        engine.push_handshake(HandshakeType::Finished, true, |_, o| {
            o.extend_from_slice(&finished)
        })?;
        engine.send_flight(now, true)?;
        Ok(Step::Next(State::AwaitFinished(AwaitFinished {
            neg: self.neg,
            peer: self.peer,
            group: self.group,
        })))
    }
}

impl AwaitFinished {
    fn handle(self, engine: &mut Engine, msg: Message) -> Result<Step, Error> {
        shared::expect_type(&msg, HandshakeType::Finished, "Finished")?;
        shared::check_finished(engine, &msg, false)?;
        engine.transcript_push_received(&msg)?;
        // Flight 6 is final: nothing of ours needs resending any more.
        engine.clear_flight();
        let done = shared::completion(engine, self.group, self.neg.srtp, self.peer)?;
        Ok(Step::Done(Box::new(done)))
    }
}
