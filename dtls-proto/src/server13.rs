//! The server's DTLS 1.3 transitions (RFC 9147 §5, RFC 8446 §4), entered when a ClientHello
//! offers DTLS 1.3 in supported_versions and the configuration speaks it.
//!
//! ```text
//! Client                                      Server
//! ClientHello + key_share       -------->
//!                               <--------     HelloRetryRequest + cookie   (stateless)
//! ClientHello + cookie          -------->
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
//! Return routability (RFC 9147 §5.1): with `Config::server_cookie` on, and whenever the
//! ClientHello has no share for the group we choose, the first ClientHello gets a
//! HelloRetryRequest and the server keeps nothing. Its cookie carries what the server needs
//! to rebuild the transcript when the second ClientHello brings it back, authenticated:
//!
//! ```text
//! cookie = hash_len (1) ‖ Hash(ClientHello1) ‖ requested group (2, 0 if none) ‖ MAC (32)
//! MAC    = HMAC-SHA-256(cookie secret, "dtls13 cookie" ‖ suite (2) ‖ group (2) ‖ Hash(CH1)
//!                       ‖ bound_to)
//! ```
//!
//! `bound_to` is empty in a per-peer server (the caller's routing binds the peer's address) and
//! the client's and our addresses in an [`Acceptor`](crate::Acceptor), which answers every
//! source on a socket. The HelloRetryRequest is encoded again from these, byte for byte, for
//! the transcript (message_hash(CH1) ‖ HelloRetryRequest ‖ ClientHello2, RFC 8446 §4.4.1).
//!
//! An acceptor sends the HelloRetryRequest itself ([`check_stateless`]) and hands the server
//! a ClientHello whose cookie it opened ([`RetryCookie`]); it chooses suite and group from a
//! copy of the server's preferences ([`Preferences`]), so the server repeats its choice.

use std::time::Instant;

use rand_core::CryptoRng;

use crate::cipher_suite::{CipherSuite, NamedGroup, ProtocolVersion};
use crate::config::Config;
use crate::crypto::{CryptoProvider, HashAlgorithm};
use crate::engine::Engine;
use crate::epoch::RecordNumber;
use crate::error::Error;
use crate::event::HandshakeComplete;
use crate::extensions::{Extensions, KeyShare, KeyShareEntry, SupportedVersions, UseSrtp};
use crate::fragment::Message;
use crate::handshake::HandshakeType;
use crate::handshake::authentication::{Certificate13, CertificateRequest13, EncryptedExtensions};
use crate::handshake::hello::{ClientHello, HELLO_RETRY_REQUEST_RANDOM, ServerHello};
use crate::handshake::shared::PeerCertificate;
use crate::handshake::tls13::{self, SIGNATURE_SCHEMES, Schedule};
use crate::initial_hello::{InitialHello, RetryCookie};
use crate::key_share;
use crate::record::DTLS_1_2;
use crate::srtp::SrtpProfile;

/// The MAC of a cookie.
const COOKIE_MAC_LEN: usize = 32;
/// The label that keeps DTLS 1.3 cookies apart from DTLS 1.2's under the same secret.
const COOKIE_LABEL: &[u8] = b"dtls13 cookie";

/// Server states after ServerHello, in protocol order.
#[allow(clippy::enum_variant_names)] // STYLE: states are named for what they wait for
pub enum State {
    /// Our flight sent; the client's Certificate expected.
    AwaitCertificate(Negotiated),
    /// The client's CertificateVerify expected.
    AwaitCertificateVerify(Authenticating),
    /// The client's Finished expected.
    AwaitFinished(Authenticating),
}

/// What the first ClientHello led to.
#[allow(clippy::large_enum_variant)] // transient: moved straight into the connection's phase
pub enum Accepted {
    /// A HelloRetryRequest went out; nothing is kept.
    Retried,
    /// Our flight went out.
    Next(State),
}

/// What the state machine returns after a message.
#[allow(clippy::large_enum_variant)] // transient
pub enum Step {
    /// Still handshaking.
    Next(State),
    /// Handshake complete (the ACK of the client's flight is sent).
    Done(Box<HandshakeComplete>),
}

/// Parameters chosen, secrets derived, our flight sent.
pub struct Negotiated {
    schedule: Schedule,
    group: NamedGroup,
    srtp: Option<SrtpProfile>,
}

/// The client's certificate checked.
pub struct Authenticating {
    negotiated: Negotiated,
    peer: PeerCertificate,
}

/// True when `hello` offers DTLS 1.3 and `config` speaks it.
pub fn offers_13(config: &Config, hello: &ClientHello) -> bool {
    config.speaks(ProtocolVersion::Dtls13) && hello_offers_13(hello)
}

/// True when `hello` lists DTLS 1.3 in supported_versions.
pub(crate) fn hello_offers_13(hello: &ClientHello) -> bool {
    matches!(
        &hello.extensions.supported_versions,
        Some(SupportedVersions::Offered(v)) if v.contains(&ProtocolVersion::Dtls13.id())
    )
}

/// What a DTLS 1.3 server chooses from, in its order of preference: its configuration's
/// suites (the 1.3 ones count), groups and SRTP profiles, borrowed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Preferences<'a> {
    suites: &'a [CipherSuite],
    groups: &'a [NamedGroup],
    srtp_profiles: &'a [SrtpProfile],
}

impl<'a> Preferences<'a> {
    /// Those of `config`.
    pub fn of(config: &'a Config) -> Self {
        Self {
            suites: &config.cipher_suites,
            groups: &config.groups,
            srtp_profiles: &config.srtp_profiles,
        }
    }
}

/// An acceptor's copy of a server configuration's [`Preferences`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct OwnedPreferences {
    suites: Vec<CipherSuite>,
    groups: Vec<NamedGroup>,
    srtp_profiles: Vec<SrtpProfile>,
}

impl OwnedPreferences {
    /// A copy of the DTLS 1.3 part of `config`.
    pub fn of(config: &Config) -> Self {
        Self {
            suites: config
                .cipher_suites
                .iter()
                .copied()
                .filter(|s| s.is_dtls13())
                .collect(),
            groups: config.groups.clone(),
            srtp_profiles: config.srtp_profiles.clone(),
        }
    }

    /// Borrowed, for [`check_stateless`].
    pub fn borrow(&self) -> Preferences<'_> {
        Preferences {
            suites: &self.suites,
            groups: &self.groups,
            srtp_profiles: &self.srtp_profiles,
        }
    }
}

/// What the stateless check of a DTLS 1.3 ClientHello decided.
#[derive(Debug)]
pub(crate) enum Stateless {
    /// Send this HelloRetryRequest body; keep nothing.
    Retry(Vec<u8>),
    /// The cookie is ours and intact and the hello has the share we want: start the server.
    Verified(RetryCookie),
}

/// The acceptor's check of a DTLS 1.3 ClientHello (RFC 9147 §5.1): a valid cookie (bound to
/// `bound_to`) lets the hello through; without one, a HelloRetryRequest with a cookie is the
/// answer, asking for the share of our group when the hello lacks it (RFC 8446 §4.1.4).
pub(crate) fn check_stateless(
    provider: &dyn CryptoProvider,
    secret: &[u8; 32],
    preferences: Preferences<'_>,
    bound_to: &[u8],
    hello: &ClientHello,
    body: &[u8],
) -> Result<Stateless, Error> {
    let choice = choose(preferences, hello)?;
    let has_share = matches!(
        &hello.extensions.key_share,
        Some(KeyShare::Offered(shares)) if shares.iter().any(|s| s.group == choice.group.id())
    );
    let returned = hello
        .extensions
        .cookie
        .as_deref()
        .and_then(|c| open_cookie(provider, secret, choice.suite, c, bound_to));
    if let Some((hash, requested)) = returned {
        if !has_share {
            return Err(Error::IllegalParameter {
                parameter: "key_share group",
                value: choice.group.id(),
            });
        }
        return Ok(Stateless::Verified(RetryCookie {
            hash: hash.to_vec(),
            requested,
        }));
    }
    let requested = if has_share { 0 } else { choice.group.id() };
    let hash = hello_hash(provider, choice.suite.prf_hash(), body);
    let cookie = make_cookie(provider, secret, choice.suite, requested, &hash, bound_to);
    Ok(Stateless::Retry(retry_request(
        hello,
        choice.suite,
        requested,
        cookie,
    )))
}

/// What the server chose from a ClientHello.
struct Choice {
    suite: CipherSuite,
    group: NamedGroup,
    srtp: Option<SrtpProfile>,
}

fn choose(config: Preferences<'_>, hello: &ClientHello) -> Result<Choice, Error> {
    let ext = &hello.extensions;
    let suite = config
        .suites
        .iter()
        .copied()
        .filter(|s| s.is_dtls13())
        .find(|s| hello.cipher_suites.contains(&s.id()))
        .ok_or(Error::NoCommonCipherSuite)?;
    if !ext
        .signature_algorithms
        .as_ref()
        .is_some_and(|algs| SIGNATURE_SCHEMES.iter().any(|s| algs.contains(s)))
    {
        return Err(Error::NoCommonSignatureAlgorithm);
    }
    let offered = ext.supported_groups.as_deref().unwrap_or_default();
    let shares: &[KeyShareEntry] = match &ext.key_share {
        Some(KeyShare::Offered(shares)) => shares,
        _ => &[],
    };
    let ours = || {
        config
            .groups
            .iter()
            .copied()
            .filter(|g| offered.contains(&g.id()))
    };
    // Our most preferred group the client sent a share for, else our most preferred one it
    // supports (a HelloRetryRequest then asks for its share).
    let group = ours()
        .find(|g| shares.iter().any(|s| s.group == g.id()))
        .or_else(|| ours().next())
        .ok_or(Error::NoCommonGroup)?;
    let srtp = if config.srtp_profiles.is_empty() {
        None
    } else {
        let theirs = ext
            .use_srtp
            .as_ref()
            .map(|u| &u.profiles[..])
            .unwrap_or_default();
        Some(
            config
                .srtp_profiles
                .iter()
                .copied()
                .find(|p| theirs.contains(&p.id()))
                .ok_or(Error::NoCommonSrtpProfile)?,
        )
    };
    Ok(Choice { suite, group, srtp })
}

/// The hash of a ClientHello in the TLS 1.3 transcript form (type, 24-bit length, body).
fn hello_hash(
    provider: &dyn CryptoProvider,
    alg: HashAlgorithm,
    body: &[u8],
) -> crate::crypto::Digest {
    let len = u32::try_from(body.len()).unwrap_or(u32::MAX).to_be_bytes();
    provider.hash(
        alg,
        &[&[HandshakeType::ClientHello.to_byte()], &len[1..], body],
    )
}

fn cookie_mac(
    provider: &dyn CryptoProvider,
    secret: &[u8; 32],
    suite: CipherSuite,
    group: u16,
    hash: &[u8],
    bound_to: &[u8],
) -> crate::crypto::Digest {
    // The hash's length follows from the suite, so `bound_to` at the end is unambiguous.
    provider.hmac(
        HashAlgorithm::Sha256,
        secret,
        &[
            COOKIE_LABEL,
            &suite.id().to_be_bytes(),
            &group.to_be_bytes(),
            hash,
            bound_to,
        ],
    )
}

/// The cookie of a HelloRetryRequest for `hash` = Hash(ClientHello1).
fn make_cookie(
    provider: &dyn CryptoProvider,
    secret: &[u8; 32],
    suite: CipherSuite,
    group: u16,
    hash: &[u8],
    bound_to: &[u8],
) -> Vec<u8> {
    let mac = cookie_mac(provider, secret, suite, group, hash, bound_to);
    let mut cookie = Vec::with_capacity(1 + hash.len() + 2 + COOKIE_MAC_LEN);
    // A digest is at most 48 bytes.
    cookie.push(hash.len() as u8);
    cookie.extend_from_slice(hash);
    cookie.extend_from_slice(&group.to_be_bytes());
    cookie.extend_from_slice(&mac);
    cookie
}

/// Hash(ClientHello1) and the requested group from a cookie we made for `suite`, if it is
/// ours and intact (compared in constant time).
fn open_cookie<'c>(
    provider: &dyn CryptoProvider,
    secret: &[u8; 32],
    suite: CipherSuite,
    cookie: &'c [u8],
    bound_to: &[u8],
) -> Option<(&'c [u8], u16)> {
    let (&hash_len, rest) = cookie.split_first()?;
    let hash_len = usize::from(hash_len);
    if hash_len != suite.prf_hash().output_len() || rest.len() != hash_len + 2 + COOKIE_MAC_LEN {
        return None;
    }
    let (hash, rest) = rest.split_at(hash_len);
    let (group, mac) = rest.split_at(2);
    let group = u16::from_be_bytes([group[0], group[1]]);
    let expected = cookie_mac(provider, secret, suite, group, hash, bound_to);
    let differs = expected
        .iter()
        .zip(mac)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        != 0;
    (!differs).then_some((hash, group))
}

/// The HelloRetryRequest body: the same bytes when the cookie comes back.
fn retry_request(hello: &ClientHello, suite: CipherSuite, group: u16, cookie: Vec<u8>) -> Vec<u8> {
    let hrr = ServerHello {
        version: DTLS_1_2,
        random: HELLO_RETRY_REQUEST_RANDOM,
        session_id: hello.session_id.clone(),
        cipher_suite: suite.id(),
        compression_method: 0,
        extensions: Extensions {
            supported_versions: Some(SupportedVersions::Selected(ProtocolVersion::Dtls13.id())),
            key_share: (group != 0).then_some(KeyShare::Requested(group)),
            cookie: Some(cookie),
            ..Extensions::default()
        },
    };
    let mut body = Vec::with_capacity(128);
    hrr.encode(&mut body);
    body
}

/// Handles the first ClientHello (or the second, with a cookie) of a DTLS 1.3 handshake.
pub fn handle_client_hello(
    cookie_secret: &[u8; 32],
    engine: &mut Engine,
    rng: &mut dyn CryptoRng,
    now: Instant,
    initial: InitialHello<'_>,
) -> Result<Accepted, Error> {
    let InitialHello {
        record_seq,
        message_seq,
        hello,
        body,
        retry,
        ..
    } = initial;
    let choice = choose(Preferences::of(&engine.config), hello)?;
    let share = match &hello.extensions.key_share {
        Some(KeyShare::Offered(shares)) => shares.iter().find(|s| s.group == choice.group.id()),
        _ => None,
    };
    let provider = engine.config.provider;
    // An acceptor opened the cookie already (under its own secret); else it must be ours.
    let returned = match retry {
        Some(r) => Some((&r.hash[..], r.requested)),
        None => hello
            .extensions
            .cookie
            .as_deref()
            .and_then(|c| open_cookie(provider, cookie_secret, choice.suite, c, &[])),
    };
    let Some(share) = share.filter(|_| returned.is_some() || !engine.config.server_cookie) else {
        if returned.is_some() {
            // The cookie came back and still no share for the group: the client ignored our
            // request (RFC 8446 §4.1.4).
            return Err(Error::IllegalParameter {
                parameter: "key_share group",
                value: choice.group.id(),
            });
        }
        let hash = hello_hash(provider, choice.suite.prf_hash(), body);
        let requested = if share.is_some() {
            0
        } else {
            choice.group.id()
        };
        let cookie = make_cookie(provider, cookie_secret, choice.suite, requested, &hash, &[]);
        let hrr = retry_request(hello, choice.suite, requested, cookie);
        engine.send_stateless(record_seq, HandshakeType::ServerHello, message_seq, &hrr);
        return Ok(Accepted::Retried);
    };
    engine.enable_dtls13();
    engine.reassembler.set_next_seq(message_seq.wrapping_add(1));
    engine.set_next_message_seq(message_seq);
    engine.continue_epoch0_at(record_seq);
    if let (Some((hash, requested)), Some(cookie)) = (returned, &hello.extensions.cookie) {
        // message_hash(CH1) ‖ HelloRetryRequest (message_seq 0) ‖ ClientHello2.
        engine.transcript_start_with_message_hash(hash);
        let hrr = retry_request(hello, choice.suite, requested, cookie.clone());
        engine.transcript_push(HandshakeType::ServerHello, 0, &hrr)?;
    }
    engine.transcript_push(HandshakeType::ClientHello, message_seq, body)?;
    let (server_share, shared) = key_share::respond(
        engine.config.provider,
        choice.group,
        &share.key_exchange,
        rng,
    )?;
    let mut random = [0u8; 32];
    rng.fill_bytes(&mut random);
    let sh = ServerHello {
        version: DTLS_1_2,
        random,
        session_id: hello.session_id.clone(),
        cipher_suite: choice.suite.id(),
        compression_method: 0,
        extensions: Extensions {
            supported_versions: Some(SupportedVersions::Selected(ProtocolVersion::Dtls13.id())),
            key_share: Some(KeyShare::Selected(KeyShareEntry {
                group: choice.group.id(),
                key_exchange: server_share,
            })),
            ..Extensions::default()
        },
    };
    engine.begin_flight();
    engine.push_handshake(HandshakeType::ServerHello, true, |_, o| sh.encode(o))?;
    let schedule = Schedule::after_server_hello(engine, choice.suite, &shared)?;
    engine.set_flight_epoch(2);
    let ee = EncryptedExtensions(Extensions {
        use_srtp: choice.srtp.map(|p| UseSrtp {
            profiles: vec![p.id()],
            mki: Vec::new(),
        }),
        ..Extensions::default()
    });
    engine.push_handshake(HandshakeType::EncryptedExtensions, true, |_, o| {
        ee.encode(o)
    })?;
    engine.push_handshake(HandshakeType::CertificateRequest, true, |_, o| {
        CertificateRequest13::encode(&SIGNATURE_SCHEMES, o)
    })?;
    engine.push_handshake(HandshakeType::Certificate, true, |config, o| {
        Certificate13::encode(&[], &[config.certificate.der()], o)
    })?;
    let verify = tls13::certificate_verify(engine, choice.suite)?;
    engine.push_handshake(HandshakeType::CertificateVerify, true, |_, o| {
        o.extend_from_slice(&verify)
    })?;
    let finished = schedule.verify_data(engine, false);
    engine.push_handshake(HandshakeType::Finished, true, |_, o| {
        o.extend_from_slice(&finished)
    })?;
    schedule.enter_application(engine)?;
    engine.send_flight(now, true)?;
    Ok(Accepted::Next(State::AwaitCertificate(Negotiated {
        schedule,
        group: choice.group,
        srtp: choice.srtp,
    })))
}

impl State {
    /// Whether `msg` is what this state waits for: everything the server reads after its
    /// flight comes under epoch 2.
    pub fn admits(&self, msg: &Message) -> bool {
        use HandshakeType as T;
        let want = match self {
            Self::AwaitCertificate(_) => T::Certificate,
            Self::AwaitCertificateVerify(_) => T::CertificateVerify,
            Self::AwaitFinished(_) => T::Finished,
        };
        msg.epoch == 2 && msg.msg_type == want && crate::client13::is_well_formed(msg)
    }

    /// Handles one complete message that [`admits`](Self::admits) accepted. `received` are
    /// the numbers of the handshake records the client's flight came in, for the ACK.
    pub fn handle_message(
        self,
        engine: &mut Engine,
        now: Instant,
        msg: Message,
        received: &[RecordNumber],
    ) -> Result<Step, Error> {
        match self {
            Self::AwaitCertificate(n) => {
                let cert = Certificate13::parse(&msg.body)?;
                if !cert.context.is_empty() {
                    return Err(Error::IllegalParameter {
                        parameter: "certificate_request_context",
                        value: u16::try_from(cert.context.len()).unwrap_or(u16::MAX),
                    });
                }
                let peer = tls13::verify_peer_certificate(engine, &msg.body)?;
                engine.transcript_push_received(&msg)?;
                Ok(Step::Next(State::AwaitCertificateVerify(Authenticating {
                    negotiated: n,
                    peer,
                })))
            }
            Self::AwaitCertificateVerify(a) => {
                let suite = a.negotiated.schedule.suite();
                tls13::check_certificate_verify(engine, suite, &a.peer, &msg)?;
                engine.transcript_push_received(&msg)?;
                Ok(Step::Next(State::AwaitFinished(a)))
            }
            Self::AwaitFinished(a) => {
                let Authenticating { negotiated, peer } = a;
                negotiated.schedule.check_finished(engine, &msg, true)?;
                // The client's flight gets no answer but this ACK (RFC 9147 §7); it is sent
                // again whenever the client repeats its flight.
                engine.begin_flight();
                engine.push_ack(3, received);
                engine.send_flight(now, false)?;
                let done = tls13::completion(engine, negotiated.group, negotiated.srtp, peer)?;
                Ok(Step::Done(Box::new(done)))
            }
        }
    }
}
