//! The client's DTLS 1.3 transitions (RFC 9147 §5, RFC 8446 §4; flights of RFC 9147 §5.6).
//!
//! ```text
//! Client                                      Server
//! ClientHello + key_share       -------->
//!                               <--------     HelloRetryRequest + cookie   (optional)
//! ClientHello + key_share + cookie  ---->
//!                                             ServerHello + key_share
//!                                             {EncryptedExtensions}
//!                                             {CertificateRequest}
//!                                             {Certificate}
//!                                             {CertificateVerify}
//!                               <--------     {Finished}
//! {Certificate}
//! {CertificateVerify}
//! {Finished}                    -------->
//!                               <--------     [ACK]
//! ```
//!
//! When the configuration also speaks DTLS 1.2, the ClientHello offers both (and carries
//! what a DTLS 1.2 server needs); a HelloVerifyRequest or a ServerHello that does not select
//! DTLS 1.3 hands the handshake to the DTLS 1.2 client (`client.rs`), which refuses a
//! ServerHello with the downgrade sentinel (RFC 8446 §4.1.3).
//!
//! `{}` is epoch 2, `[]` epoch 3. The client is connected once its Finished is sent; that last
//! flight stays on the retransmission timer until the server's ACK names one of its records
//! (the connection clears it). States are named for what they wait for, in that order.

use std::time::Instant;

use rand_core::CryptoRng;

use crate::cipher_suite::{CipherSuite, NamedGroup, ProtocolVersion};
use crate::client;
use crate::engine::Engine;
use crate::error::Error;
use crate::event::HandshakeComplete;
use crate::extensions::{Extensions, KeyShare, KeyShareEntry, SupportedVersions, UseSrtp};
use crate::fragment::Message;
use crate::handshake::HandshakeType;
use crate::handshake::authentication::{Certificate13, CertificateRequest13, EncryptedExtensions};
use crate::handshake::hello::{ClientHello, HELLO_RETRY_REQUEST_RANDOM, ServerHello};
use crate::handshake::shared::PeerCertificate;
use crate::handshake::tls13::{self, SIGNATURE_SCHEMES, Schedule};
use crate::key_share::OfferedShare;
use crate::record::DTLS_1_2;
use crate::srtp::SrtpProfile;

/// Client states, in protocol order.
#[allow(clippy::enum_variant_names)] // STYLE: states are named for what they wait for
pub enum State {
    /// ClientHello sent; ServerHello or HelloRetryRequest expected.
    AwaitServerHello(AwaitServerHello),
    /// Epoch 2 installed; EncryptedExtensions expected.
    AwaitEncryptedExtensions(Negotiated),
    /// CertificateRequest (or, without one, the server's Certificate) expected.
    AwaitCertificateRequest(Negotiated),
    /// The server's Certificate expected.
    AwaitCertificate(Negotiated),
    /// The server's CertificateVerify expected.
    AwaitCertificateVerify(Authenticating),
    /// The server's Finished expected.
    AwaitFinished(Authenticating),
}

/// What the state machine returns after a message.
#[allow(clippy::large_enum_variant)] // transient: moved straight into the connection's phase
pub enum Step {
    /// Still handshaking.
    Next(State),
    /// Handshake complete (our last flight is still on the timer until the server's ACK).
    Done(Box<HandshakeComplete>),
    /// The server answered in DTLS 1.2: the DTLS 1.2 client goes on.
    FellBack(client::State),
}

/// ClientHello sent.
pub struct AwaitServerHello {
    hello: ClientHello,
    /// The ClientHello also offered DTLS 1.2.
    offers_12: bool,
    shares: Vec<OfferedShare>,
    /// The suite a HelloRetryRequest chose (ServerHello must agree), once one came.
    retry_suite: Option<CipherSuite>,
}

/// ServerHello accepted.
pub struct Negotiated {
    schedule: Schedule,
    group: NamedGroup,
    srtp: Option<SrtpProfile>,
    /// certificate_request_context, once the server asked for our certificate.
    request_context: Option<Vec<u8>>,
}

/// The server's certificate checked.
pub struct Authenticating {
    negotiated: Negotiated,
    peer: PeerCertificate,
}

/// Starts a DTLS 1.3 handshake: ClientHello with a key share for the first configured group.
pub fn start(engine: &mut Engine, rng: &mut dyn CryptoRng, now: Instant) -> Result<State, Error> {
    engine.enable_dtls13();
    let mut random = [0u8; 32];
    rng.fill_bytes(&mut random);
    let config = &engine.config;
    let group = config.groups.first().copied().ok_or(Error::NoCommonGroup)?;
    let share = OfferedShare::generate(config.provider, group, rng)?;
    let offers_12 = config.speaks(ProtocolVersion::Dtls12);
    let mut versions = vec![ProtocolVersion::Dtls13.id()];
    let mut groups: Vec<u16> = config.groups.iter().map(|g| g.id()).collect();
    if offers_12 {
        versions.push(ProtocolVersion::Dtls12.id());
        // What DTLS 1.2 needs listed (RFC 8422 §5.1.1: P-256 for the certificate).
        if !config.groups.contains(&NamedGroup::Secp256r1) {
            groups.push(NamedGroup::Secp256r1.id());
        }
    }
    let hello = ClientHello {
        version: DTLS_1_2,
        random,
        session_id: Vec::new(),
        cookie: Vec::new(),
        cipher_suites: config
            .cipher_suites
            .iter()
            .filter(|s| offers_12 || s.is_dtls13())
            .map(|s| s.id())
            .collect(),
        compression_methods: vec![0],
        extensions: Extensions {
            supported_versions: Some(SupportedVersions::Offered(versions)),
            supported_groups: Some(groups),
            // DTLS 1.2 only (RFC 7627, RFC 8422 §5.1.2, RFC 5746); a 1.3 server ignores them.
            ec_point_formats: offers_12.then(|| vec![crate::extensions::POINT_FORMAT_UNCOMPRESSED]),
            extended_master_secret: offers_12,
            renegotiation_info: offers_12.then(Vec::new),
            signature_algorithms: Some(SIGNATURE_SCHEMES.to_vec()),
            use_srtp: (!config.srtp_profiles.is_empty()).then(|| UseSrtp {
                profiles: config.srtp_profiles.iter().map(|p| p.id()).collect(),
                mki: Vec::new(),
            }),
            key_share: Some(KeyShare::Offered(vec![entry(&share)])),
            ..Extensions::default()
        },
    };
    send_hello(engine, &hello, now)?;
    Ok(State::AwaitServerHello(AwaitServerHello {
        hello,
        offers_12,
        shares: vec![share],
        retry_suite: None,
    }))
}

fn entry(share: &OfferedShare) -> KeyShareEntry {
    let mut key_exchange = Vec::new();
    share.encode(&mut key_exchange);
    KeyShareEntry {
        group: share.group().id(),
        key_exchange,
    }
}

fn send_hello(engine: &mut Engine, hello: &ClientHello, now: Instant) -> Result<(), Error> {
    engine.begin_flight();
    engine.push_handshake(HandshakeType::ClientHello, true, |_, o| hello.encode(o))?;
    engine.send_flight(now, true)
}

impl State {
    /// Whether `msg` is what this state waits for, by type and epoch, and well formed. Only
    /// ServerHello and HelloRetryRequest arrive in clear text; the rest must come under epoch
    /// 2, which authenticates it.
    pub fn admits(&self, msg: &Message) -> bool {
        use HandshakeType as T;
        let waits = match self {
            Self::AwaitServerHello(s) => {
                msg.epoch == 0
                    && (msg.msg_type == T::ServerHello
                        || (s.offers_12 && msg.msg_type == T::HelloVerifyRequest))
            }
            Self::AwaitEncryptedExtensions(_) => {
                msg.epoch == 2 && msg.msg_type == T::EncryptedExtensions
            }
            Self::AwaitCertificateRequest(_) => {
                msg.epoch == 2 && matches!(msg.msg_type, T::CertificateRequest | T::Certificate)
            }
            Self::AwaitCertificate(_) => msg.epoch == 2 && msg.msg_type == T::Certificate,
            Self::AwaitCertificateVerify(_) => {
                msg.epoch == 2 && msg.msg_type == T::CertificateVerify
            }
            Self::AwaitFinished(_) => msg.epoch == 2 && msg.msg_type == T::Finished,
        };
        waits && is_well_formed(msg)
    }

    /// Handles one complete message that [`admits`](Self::admits) accepted.
    pub fn handle_message(
        self,
        engine: &mut Engine,
        rng: &mut dyn CryptoRng,
        now: Instant,
        msg: Message,
    ) -> Result<Step, Error> {
        match self {
            Self::AwaitServerHello(s) => s.handle(engine, rng, now, msg),
            Self::AwaitEncryptedExtensions(n) => n.handle_encrypted_extensions(engine, msg),
            Self::AwaitCertificateRequest(n) => {
                if msg.msg_type == HandshakeType::CertificateRequest {
                    n.handle_request(engine, msg)
                } else {
                    n.handle_certificate(engine, msg)
                }
            }
            Self::AwaitCertificate(n) => n.handle_certificate(engine, msg),
            Self::AwaitCertificateVerify(a) => a.handle_certificate_verify(engine, msg),
            Self::AwaitFinished(a) => a.handle_finished(engine, now, msg),
        }
    }
}

/// The structure check of a DTLS 1.3 message before it is admitted.
pub(crate) fn is_well_formed(msg: &Message) -> bool {
    use crate::handshake::key_exchange::CertificateVerify;
    let body = &msg.body[..];
    match msg.msg_type {
        HandshakeType::ServerHello => ServerHello::parse(body).is_ok(),
        HandshakeType::HelloVerifyRequest => {
            crate::handshake::hello::HelloVerifyRequest::parse(body).is_ok()
        }
        HandshakeType::EncryptedExtensions => EncryptedExtensions::parse(body).is_ok(),
        HandshakeType::CertificateRequest => CertificateRequest13::parse(body).is_ok(),
        HandshakeType::Certificate => Certificate13::parse(body).is_ok(),
        HandshakeType::CertificateVerify => CertificateVerify::parse(body).is_ok(),
        HandshakeType::Finished => !body.is_empty(),
        _ => false,
    }
}

fn selected_13(ext: &Extensions) -> Result<(), Error> {
    match ext.supported_versions {
        Some(SupportedVersions::Selected(v)) if v == ProtocolVersion::Dtls13.id() => Ok(()),
        Some(SupportedVersions::Selected(v)) => Err(Error::UnsupportedVersion(v)),
        _ => Err(Error::UnsupportedVersion(DTLS_1_2)),
    }
}

impl AwaitServerHello {
    fn suite(&self, engine: &Engine, id: u16) -> Result<CipherSuite, Error> {
        CipherSuite::from_id_13(id)
            .filter(|s| engine.config.cipher_suites.contains(s))
            .filter(|s| self.retry_suite.is_none_or(|r| r == *s))
            .ok_or(Error::IllegalParameter {
                parameter: "cipher_suite",
                value: id,
            })
    }

    fn handle(
        self,
        engine: &mut Engine,
        rng: &mut dyn CryptoRng,
        now: Instant,
        msg: Message,
    ) -> Result<Step, Error> {
        if self.offers_12 && self.retry_suite.is_none() && !selects_13(&msg) {
            return self.fall_back(engine, rng, now, msg);
        }
        let sh = ServerHello::parse(&msg.body)?;
        selected_13(&sh.extensions)?;
        let suite = self.suite(engine, sh.cipher_suite)?;
        if sh.random == HELLO_RETRY_REQUEST_RANDOM {
            return self.handle_retry(engine, rng, now, suite, &sh, &msg);
        }
        let Some(KeyShare::Selected(answer)) = &sh.extensions.key_share else {
            return Err(Error::IllegalParameter {
                parameter: "key_share",
                value: 0,
            });
        };
        let share = self
            .shares
            .iter()
            .find(|s| s.group().id() == answer.group)
            .ok_or(Error::IllegalParameter {
                parameter: "key_share group",
                value: answer.group,
            })?;
        let shared = share.complete(&answer.key_exchange)?;
        engine.transcript_push_received(&msg)?;
        let schedule = Schedule::after_server_hello(engine, suite, &shared)?;
        Ok(Step::Next(State::AwaitEncryptedExtensions(Negotiated {
            schedule,
            group: share.group(),
            srtp: None,
            request_context: None,
        })))
    }

    /// HelloRetryRequest (RFC 8446 §4.1.4): the transcript restarts from the hash of our
    /// first ClientHello, and a second one goes out with the cookie and, when asked, a share
    /// for another group.
    fn handle_retry(
        mut self,
        engine: &mut Engine,
        rng: &mut dyn CryptoRng,
        now: Instant,
        suite: CipherSuite,
        hrr: &ServerHello,
        msg: &Message,
    ) -> Result<Step, Error> {
        if self.retry_suite.is_some() {
            return Err(Error::UnexpectedMessage {
                expected: "ServerHello after HelloRetryRequest",
                got: HandshakeType::ServerHello,
            });
        }
        let requested = match &hrr.extensions.key_share {
            Some(KeyShare::Requested(id)) => {
                let group = engine
                    .config
                    .groups
                    .iter()
                    .copied()
                    .find(|g| g.id() == *id)
                    .filter(|g| self.shares.iter().all(|s| s.group() != *g))
                    .ok_or(Error::IllegalParameter {
                        parameter: "key_share group",
                        value: *id,
                    })?;
                Some(group)
            }
            None => None,
            Some(_) => {
                return Err(Error::IllegalParameter {
                    parameter: "key_share",
                    value: 0,
                });
            }
        };
        if requested.is_none() && hrr.extensions.cookie.is_none() {
            // A HelloRetryRequest that would not change the ClientHello (RFC 8446 §4.1.4).
            return Err(Error::IllegalParameter {
                parameter: "HelloRetryRequest",
                value: 0,
            });
        }
        engine.transcript_message_hash(suite.prf_hash());
        engine.transcript_push_received(msg)?;
        if let Some(group) = requested {
            let share = OfferedShare::generate(engine.config.provider, group, rng)?;
            self.hello.extensions.key_share = Some(KeyShare::Offered(vec![entry(&share)]));
            self.shares = vec![share];
        }
        self.hello.extensions.cookie = hrr.extensions.cookie.clone();
        send_hello(engine, &self.hello, now)?;
        self.retry_suite = Some(suite);
        Ok(Step::Next(State::AwaitServerHello(self)))
    }
}

/// True for a ServerHello (or HelloRetryRequest) that selects DTLS 1.3.
fn selects_13(msg: &Message) -> bool {
    msg.msg_type == HandshakeType::ServerHello
        && ServerHello::parse(&msg.body).is_ok_and(|sh| selected_13(&sh.extensions).is_ok())
}

impl AwaitServerHello {
    /// A DTLS 1.2 answer: the DTLS 1.2 client takes over our ClientHello (message_seq 0,
    /// never retried: a HelloRetryRequest is DTLS 1.3) and handles the answer.
    fn fall_back(
        self,
        engine: &mut Engine,
        rng: &mut dyn CryptoRng,
        now: Instant,
        msg: Message,
    ) -> Result<Step, Error> {
        engine.disable_dtls13();
        let state =
            client::State::AwaitServerHello(client::AwaitServerHello::fall_back(self.hello, 0));
        Ok(match state.handle_message(engine, rng, now, msg)? {
            client::Step::Next(next) => Step::FellBack(next),
            client::Step::Done(done) => Step::Done(done),
        })
    }
}

impl Negotiated {
    fn handle_encrypted_extensions(
        mut self,
        engine: &mut Engine,
        msg: Message,
    ) -> Result<Step, Error> {
        let ee = EncryptedExtensions::parse(&msg.body)?;
        let offered = &engine.config.srtp_profiles;
        if !offered.is_empty() {
            let chosen =
                ee.0.use_srtp
                    .as_ref()
                    .and_then(|u| match u.profiles[..] {
                        [one] => SrtpProfile::from_id(one).filter(|p| offered.contains(p)),
                        _ => None,
                    })
                    .ok_or(Error::NoCommonSrtpProfile)?;
            self.srtp = Some(chosen);
        }
        engine.transcript_push_received(&msg)?;
        Ok(Step::Next(State::AwaitCertificateRequest(self)))
    }

    fn handle_request(mut self, engine: &mut Engine, msg: Message) -> Result<Step, Error> {
        let request = CertificateRequest13::parse(&msg.body)?;
        if !SIGNATURE_SCHEMES.iter().any(|s| request.accepts_scheme(*s)) {
            return Err(Error::NoCommonSignatureAlgorithm);
        }
        self.request_context = Some(request.context.to_vec());
        engine.transcript_push_received(&msg)?;
        Ok(Step::Next(State::AwaitCertificate(self)))
    }

    fn handle_certificate(self, engine: &mut Engine, msg: Message) -> Result<Step, Error> {
        let peer = tls13::verify_peer_certificate(engine, &msg.body)?;
        engine.transcript_push_received(&msg)?;
        Ok(Step::Next(State::AwaitCertificateVerify(Authenticating {
            negotiated: self,
            peer,
        })))
    }
}

impl Authenticating {
    fn handle_certificate_verify(self, engine: &mut Engine, msg: Message) -> Result<Step, Error> {
        let suite = self.negotiated.schedule.suite();
        tls13::check_certificate_verify(engine, suite, &self.peer, &msg)?;
        engine.transcript_push_received(&msg)?;
        Ok(Step::Next(State::AwaitFinished(self)))
    }

    /// The server's Finished: application keys, then our last flight (Certificate and
    /// CertificateVerify when asked, Finished) in epoch 2, kept on the timer until ACKed.
    fn handle_finished(
        self,
        engine: &mut Engine,
        now: Instant,
        msg: Message,
    ) -> Result<Step, Error> {
        let Self { negotiated, peer } = self;
        let schedule = &negotiated.schedule;
        schedule.check_finished(engine, &msg, false)?;
        engine.transcript_push_received(&msg)?;
        schedule.enter_application(engine)?;
        engine.begin_flight();
        engine.set_flight_epoch(2);
        if let Some(context) = &negotiated.request_context {
            engine.push_handshake(HandshakeType::Certificate, true, |config, o| {
                Certificate13::encode(context, &[config.certificate.der()], o)
            })?;
            let verify = tls13::certificate_verify(engine, schedule.suite())?;
            engine.push_handshake(HandshakeType::CertificateVerify, true, |_, o| {
                o.extend_from_slice(&verify)
            })?;
        }
        let finished = schedule.verify_data(engine, true);
        engine.push_handshake(HandshakeType::Finished, true, |_, o| {
            o.extend_from_slice(&finished)
        })?;
        engine.send_flight(now, true)?;
        let done = tls13::completion(engine, negotiated.group, negotiated.srtp, peer)?;
        Ok(Step::Done(Box::new(done)))
    }
}
