//! Entry points for `cargo fuzz` targets, the corpus replay test and the scenario tests that
//! look inside datagrams. Not a stable API: the wire types behind it are private to the crate.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rand_core::{CryptoRng, RngCore};

use crate::ack::AckView;
use crate::certificate::{CertificateParams, DtlsCertificate, PeerVerifier, VerifyPeer};
use crate::cipher_suite::{CipherSuite, ProtocolVersion};
use crate::config::Config;
use crate::connection::Dtls;
use crate::crypto::{AeadAlgorithm, HashAlgorithm};
use crate::crypto::{CryptoProvider, RustCrypto, providers};
use crate::epoch::{EPOCH_APPLICATION, EPOCH_HANDSHAKE, EpochKeys, ReadEpochs, WriteEpoch};
use crate::error::{CryptoError, PeerRejected};
use crate::handshake::FragmentView;
use crate::handshake::authentication::{Certificate13, CertificateRequest13, EncryptedExtensions};
use crate::handshake::hello::{ClientHello, HelloVerifyRequest, ServerHello};
use crate::handshake::key_exchange::{
    CertificateMsg, CertificateRequest, CertificateVerify, ClientKeyExchange, ServerKeyExchange,
};
use crate::key_schedule::{HandshakeSecret, Hkdf, TrafficSecrets};
use crate::record::{ContentType, DTLS_1_2, Protection, RecordHeader, RecordView, records};
use crate::unified_header::{WireRecord, wire_records};

/// A deterministic, *not* cryptographically secure generator for fuzzing only (xorshift).
#[derive(Debug, Clone)]
pub struct FuzzRng(u64);

impl FuzzRng {
    /// Seeds the generator (zero is replaced by a constant).
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }
}

impl RngCore for FuzzRng {
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }
    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

// Fuzzing only: the marker lets the machines accept this generator.
impl CryptoRng for FuzzRng {}

/// Parses every record of a datagram and every handshake fragment inside.
pub fn record_layer(data: &[u8]) {
    for record in records(data).flatten() {
        let mut rest = record.fragment;
        while let Ok((frag, tail)) = FragmentView::parse(rest) {
            let _ = frag.is_complete();
            rest = tail;
        }
    }
}

/// The DTLS 1.3 traffic secrets [`record_layer_13`] reads and writes with: the key schedule
/// run from a fixed shared secret and fixed transcript hashes, handshake then application.
fn fixed_traffic_secrets(hkdf: Hkdf) -> [TrafficSecrets; 2] {
    let handshake = HandshakeSecret::new(hkdf, &[0x5a; 32]);
    let hash_len = hkdf.hash().output_len();
    let hello_hash = [0x11; 48];
    let finished_hash = [0x22; 48];
    [
        handshake.traffic_secrets(&hello_hash[..hash_len]),
        handshake
            .master_secret()
            .traffic_secrets(&finished_hash[..hash_len]),
    ]
}

/// The AEAD and hash [`record_layer_13`] uses for a selector byte: the three DTLS 1.3 suites.
fn suite_13(selector: u8) -> (AeadAlgorithm, HashAlgorithm) {
    match selector % 3 {
        0 => (AeadAlgorithm::Aes128Gcm, HashAlgorithm::Sha256),
        1 => (AeadAlgorithm::Aes256Gcm, HashAlgorithm::Sha384),
        _ => (AeadAlgorithm::ChaCha20Poly1305, HashAlgorithm::Sha256),
    }
}

/// Seals `content` as one DTLS 1.3 record of the client's epoch `epoch` (2 or 3) under the
/// fixed secrets of [`record_layer_13`] for `selector`, numbered `sequence`: seeds for the
/// corpus that the receiver there opens.
pub fn seal_record_13(
    selector: u8,
    epoch: u64,
    sequence: u64,
    content_type: u8,
    content: &[u8],
) -> Option<Vec<u8>> {
    let (aead, hash) = suite_13(selector);
    let hkdf = Hkdf::dtls13(&RustCrypto, hash);
    let secrets = fixed_traffic_secrets(hkdf);
    let stage = usize::from(epoch != EPOCH_HANDSHAKE);
    let keys = EpochKeys::derive(&hkdf, aead, &secrets.get(stage)?.client).ok()?;
    let mut writer = WriteEpoch::new(epoch, keys);
    let mut out = Vec::new();
    for _ in 0..=sequence {
        out.clear();
        writer
            .seal(
                ContentType::from_inner_byte(content_type)?,
                &[content],
                &mut out,
            )
            .ok()?;
    }
    Some(out)
}

/// DTLS 1.3 records (RFC 9147 §4): `data[1..]` as one datagram, framed and opened by a server
/// that holds the client's read keys of epochs 2 and 3 (fixed secrets, the suite chosen by
/// `data[0]`); then the same bytes, sealed by the client's writer in epoch 3 and, after a
/// KeyUpdate, in epoch 4, must open to themselves at a fresh receiver, once: a replay is
/// refused. Panics when that breaks. Returns how many records of the datagram opened.
pub fn record_layer_13(data: &[u8]) -> usize {
    let Some((&selector, datagram)) = data.split_first() else {
        return 0;
    };
    let (aead, hash) = suite_13(selector);
    let hkdf = Hkdf::dtls13(&RustCrypto, hash);
    let [handshake, application] = fixed_traffic_secrets(hkdf);
    let derive = |secret| EpochKeys::derive(&hkdf, aead, secret);
    let mut reader = ReadEpochs::new();
    for (epoch, secrets) in [
        (EPOCH_HANDSHAKE, &handshake),
        (EPOCH_APPLICATION, &application),
    ] {
        let Ok(keys) = derive(&secrets.client) else {
            return 0;
        };
        reader.install(epoch, keys);
    }
    let mut plaintext = Vec::new();
    let mut opened = 0;
    for record in wire_records(datagram).map_while(Result::ok) {
        match record {
            WireRecord::Plaintext(r) => record_layer(r.fragment),
            WireRecord::Ciphertext(c) => match reader.open(&c, &mut plaintext) {
                Ok(_) => opened += 1,
                Err(_) => assert!(
                    plaintext.is_empty(),
                    "plaintext left behind by a dropped record"
                ),
            },
        }
    }
    // The round trip, across a KeyUpdate (RFC 9147 §8): epoch 3, then epoch 4 under the next
    // traffic secret, whose low bits (0) wrap around.
    let next = hkdf.next_traffic_secret(&application.client);
    let mut fresh = ReadEpochs::new();
    let content = datagram
        .get(..datagram.len().min(1 << 14))
        .unwrap_or_default();
    for (epoch, secret) in [
        (EPOCH_APPLICATION, &application.client),
        (EPOCH_APPLICATION + 1, &next),
    ] {
        let (Ok(write_keys), Ok(read_keys)) = (derive(secret), derive(secret)) else {
            return opened;
        };
        fresh.install(epoch, read_keys);
        let mut writer = WriteEpoch::new(epoch, write_keys);
        let mut sealed = Vec::new();
        // A few records first, so that the one checked is not always number 0.
        for _ in 0..=datagram.len() % 8 {
            sealed.clear();
            if writer
                .seal(ContentType::ApplicationData, &[content], &mut sealed)
                .is_err()
            {
                return opened;
            }
        }
        let Some(Ok(WireRecord::Ciphertext(view))) = wire_records(&sealed).next() else {
            panic!("a sealed record does not frame");
        };
        let round_trip = fresh
            .open(&view, &mut plaintext)
            .unwrap_or_else(|e| panic!("a sealed record did not open: {e}"));
        assert_eq!(round_trip.number.epoch, epoch);
        assert_eq!(round_trip.content_type, ContentType::ApplicationData);
        assert_eq!(plaintext, content, "a sealed record opened to other bytes");
        assert!(
            fresh.open(&view, &mut plaintext).is_err(),
            "a record opened twice"
        );
    }
    opened
}

/// DTLS 1.3 key shares (RFC 8446 §4.2.8): `data[1..]` as a client's share of the group chosen
/// by `data[0]` (X25519MLKEM768, X25519, P-256) answered by a server, and as a server's answer
/// to a fresh client share. Whatever the bytes, nothing panics; a share a server accepts
/// gives the client that made it the same secret (checked on a genuine share made first).
pub fn key_share(data: &[u8]) {
    let Some((&selector, share)) = data.split_first() else {
        return;
    };
    let group = crate::cipher_suite::NamedGroup::ALL_13[usize::from(selector) % 3];
    let mut rng = FuzzRng::new(u64::from(selector) + 1);
    let _ = crate::key_share::respond(&RustCrypto, group, share, &mut rng);
    let Ok(offer) = crate::key_share::OfferedShare::generate(&RustCrypto, group, &mut rng) else {
        return;
    };
    let _ = offer.complete(share);
    let mut genuine = Vec::new();
    offer.encode(&mut genuine);
    if let Ok((answer, secret)) = crate::key_share::respond(&RustCrypto, group, &genuine, &mut rng)
    {
        assert_eq!(
            offer.complete(&answer).ok(),
            Some(secret),
            "the two sides disagree"
        );
    }
}

/// One clear-text handshake fragment as it crossed the wire (RFC 6347 §4.2.2), for tests that
/// check how flights were cut into records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WireFragment<'a> {
    /// The handshake type's wire value (1 ClientHello, 11 Certificate, 16 ClientKeyExchange…).
    pub msg_type: u8,
    /// The length of the whole message body.
    pub length: u32,
    /// Where this fragment starts in the body.
    pub offset: u32,
    /// The fragment's bytes.
    pub body: &'a [u8],
}

/// The handshake fragments of a datagram's epoch-0 handshake records, in order; parsing stops
/// at the first record or fragment that does not parse.
pub fn clear_handshake_fragments(datagram: &[u8]) -> Vec<WireFragment<'_>> {
    let mut out = Vec::new();
    for record in records(datagram).map_while(Result::ok) {
        if record.header.content_type != ContentType::Handshake || record.header.epoch != 0 {
            continue;
        }
        let mut rest = record.fragment;
        while let Ok((frag, tail)) = FragmentView::parse(rest) {
            out.push(WireFragment {
                msg_type: frag.msg_type.to_byte(),
                length: frag.length,
                offset: frag.offset,
                body: frag.body,
            });
            rest = tail;
        }
    }
    out
}

/// One direction's AEAD record protection (RFC 6347 §4.1.2.1), for the benchmark that sets it
/// against the provider's raw AEAD on the same bytes.
#[derive(Debug)]
pub struct RecordProtection(Protection);

impl RecordProtection {
    /// Keys one direction of `suite` from its write key and implicit IV.
    pub fn new(
        provider: &dyn CryptoProvider,
        suite: CipherSuite,
        key: &[u8],
        iv: &[u8],
    ) -> Result<Self, CryptoError> {
        Protection::new(provider, suite, key, iv).map(Self)
    }

    /// Appends an epoch-1 application_data record numbered `sequence` carrying `plaintext`.
    pub fn seal(
        &self,
        sequence: u64,
        plaintext: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), CryptoError> {
        let header = RecordHeader {
            content_type: ContentType::ApplicationData,
            version: DTLS_1_2,
            epoch: 1,
            sequence,
        };
        self.0.seal(&header, &[plaintext], out)
    }

    /// The plaintext of the first record of `datagram`; `None` when it does not parse or
    /// authenticate.
    pub fn open(&self, datagram: &[u8]) -> Option<Vec<u8>> {
        let (record, _) = RecordView::parse(datagram).ok()?;
        let mut plaintext = Vec::new();
        self.0.open(&record, &mut plaintext).ok()?;
        Some(plaintext)
    }
}

/// One direction of a DTLS 1.3 epoch (RFC 9147 §4): a writer and a reader keyed from the same
/// traffic secret, for the benchmark that sets 1.3 record protection (record number
/// encryption included) against the provider's raw AEAD.
#[derive(Debug)]
pub struct RecordProtection13 {
    writer: WriteEpoch,
    reader: ReadEpochs,
    plaintext: Vec<u8>,
}

impl RecordProtection13 {
    /// Keys epoch 3 for `aead` from a 32-byte traffic secret (SHA-256 schedule).
    pub fn new(
        provider: &'static dyn CryptoProvider,
        aead: AeadAlgorithm,
        secret: &[u8; 32],
    ) -> Result<Self, CryptoError> {
        let hkdf = Hkdf::dtls13(provider, HashAlgorithm::Sha256);
        let secret = crate::crypto::Digest::new(secret);
        let mut reader = ReadEpochs::new();
        reader.install(EPOCH_APPLICATION, EpochKeys::derive(&hkdf, aead, &secret)?);
        Ok(Self {
            writer: WriteEpoch::new(EPOCH_APPLICATION, EpochKeys::derive(&hkdf, aead, &secret)?),
            reader,
            plaintext: Vec::with_capacity(1 << 14),
        })
    }

    /// Appends the next application_data record carrying `plaintext`; `false` when the
    /// epoch cannot seal it.
    pub fn seal(&mut self, plaintext: &[u8], out: &mut Vec<u8>) -> bool {
        self.writer
            .seal(ContentType::ApplicationData, &[plaintext], out)
            .is_ok()
    }

    /// The plaintext of the first record of `datagram` (each record opens once: the replay
    /// window sees to it); `None` when it does not parse, authenticate or is replayed.
    pub fn open(&mut self, datagram: &[u8]) -> Option<&[u8]> {
        let Some(Ok(WireRecord::Ciphertext(view))) = wire_records(datagram).next() else {
            return None;
        };
        self.reader.open(&view, &mut self.plaintext).ok()?;
        Some(&self.plaintext)
    }
}

/// Parses `data[1..]` as the handshake body selected by `data[0]` (DTLS 1.2 messages, the
/// peer certificate's key, then the DTLS 1.3 EncryptedExtensions, CertificateRequest,
/// Certificate and ACK).
pub fn handshake_message(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    match selector % 13 {
        0 => drop(ClientHello::parse(body)),
        1 => drop(ServerHello::parse(body)),
        2 => drop(HelloVerifyRequest::parse(body)),
        3 => drop(CertificateMsg::parse(body)),
        4 => drop(ServerKeyExchange::parse(body)),
        5 => drop(CertificateRequest::parse(body)),
        6 => drop(ClientKeyExchange::parse(body)),
        7 => drop(CertificateVerify::parse(body)),
        8 => drop(crate::certificate::peer_public_key(body)),
        // DTLS 1.3.
        9 => drop(EncryptedExtensions::parse(body)),
        10 => drop(CertificateRequest13::parse(body)),
        11 => {
            if let Ok(c) = Certificate13::parse(body) {
                c.chain().for_each(drop);
            }
        }
        _ => {
            if let Ok(ack) = AckView::parse(body) {
                ack.record_numbers().for_each(drop);
            }
        }
    }
}

/// Accepts any certificate, so fuzzed handshakes get past authentication.
struct AcceptAny;

impl VerifyPeer for AcceptAny {
    fn verify(&self, _chain: &[Vec<u8>]) -> Result<(), PeerRejected> {
        Ok(())
    }
}

/// The certificate every fuzz run with `provider` uses, generated once per provider.
fn certificate(provider: &'static dyn CryptoProvider) -> Option<DtlsCertificate> {
    static CERTS: OnceLock<Vec<(&'static str, DtlsCertificate)>> = OnceLock::new();
    CERTS
        .get_or_init(|| {
            providers()
                .into_iter()
                .filter_map(|p| {
                    let mut rng = FuzzRng::new(42);
                    DtlsCertificate::generate(p, &mut rng, &CertificateParams::new(0))
                        .ok()
                        .map(|c| (p.name(), c))
                })
                .collect()
        })
        .iter()
        .find(|(name, _)| *name == provider.name())
        .map(|(_, c)| c.clone())
}

/// The versions the client and the server of [`server_datagrams`] and [`pair`] speak, from
/// bits 1–2 of the first input byte: DTLS 1.2 both (0, what the older seeds use), DTLS 1.3
/// both (1), both versions on both sides (2), a client speaking both against a 1.2-only
/// server (3).
fn versions(selector: u8) -> (&'static [ProtocolVersion], &'static [ProtocolVersion]) {
    const V12: &[ProtocolVersion] = &[ProtocolVersion::Dtls12];
    const V13: &[ProtocolVersion] = &[ProtocolVersion::Dtls13];
    const BOTH: &[ProtocolVersion] = &[ProtocolVersion::Dtls13, ProtocolVersion::Dtls12];
    match (selector >> 1) & 3 {
        0 => (V12, V12),
        1 => (V13, V13),
        2 => (BOTH, BOTH),
        _ => (BOTH, V12),
    }
}

/// Encodes datagrams in the [`server_datagrams`] input format.
pub fn encode_datagrams(cookie: bool, datagrams: &[&[u8]]) -> Vec<u8> {
    let mut out = vec![u8::from(cookie)];
    for d in datagrams {
        let d = &d[..d.len().min(0xffff)];
        out.extend_from_slice(&(d.len() as u16).to_be_bytes());
        out.extend_from_slice(d);
    }
    out
}

/// A server (cookie on or off by bit 0 of `data[0]`, versions by its bits 1–2, see
/// `versions`) fed the datagrams of `data`, each prefixed by a
/// 2-byte length, with a time step between them; then the client role gets the same input.
/// Uses the RustCrypto provider.
pub fn server_datagrams(data: &[u8], origin: Instant) {
    server_datagrams_with(&RustCrypto, data, origin);
}

/// [`server_datagrams`] with a chosen crypto provider.
pub fn server_datagrams_with(provider: &'static dyn CryptoProvider, data: &[u8], origin: Instant) {
    let Some(cert) = certificate(provider) else {
        return;
    };
    let verifier = || PeerVerifier::Custom(Box::new(AcceptAny));
    let cookie = data.first().is_some_and(|b| b & 1 == 1);
    let (client_versions, server_versions) = versions(data.first().copied().unwrap_or(0));
    let server_cfg = Config::new(provider, cert.clone(), verifier())
        .with_server_cookie(cookie)
        .with_versions(server_versions);
    let mut server = Dtls::server(server_cfg, FuzzRng::new(1));
    let client_cfg = Config::new(provider, cert, verifier()).with_versions(client_versions);
    let Ok(mut client) = Dtls::client(client_cfg, FuzzRng::new(2), origin) else {
        return;
    };
    let mut now = origin;
    let mut rest = data.get(1..).unwrap_or_default();
    while rest.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        let take = len.min(rest.len() - 2);
        let datagram = &rest[2..2 + take];
        rest = &rest[2 + take..];
        now += Duration::from_millis(u64::from(len as u8) * 10);
        for dtls in [&mut server, &mut client] {
            dtls.handle_datagram(now, datagram);
            dtls.handle_timeout(now);
            while dtls.poll_transmit().is_some() {}
            while dtls.poll_event().is_some() {}
            let _ = dtls.poll_timeout();
        }
    }
}

/// An [`Acceptor`](crate::Acceptor) (cookies on or off by bit 0 of `data[0]`, built
/// [`with_dtls13`](crate::Acceptor::with_dtls13) from a server configuration whose versions
/// bits 1–2 choose, see `versions`) fed the datagrams of `data` in the encoding of
/// [`server_datagrams`], from one of two sources (the low bit of each length); a hello it
/// accepts starts a server with [`Dtls::accept`], which gets that source's later datagrams.
/// Panics when the acceptor holds more than its bounds allow or answers anyone but the
/// source.
pub fn acceptor_datagrams(data: &[u8], origin: Instant) {
    use crate::acceptor::{Accept, Acceptor, AcceptorConfig};
    use std::net::SocketAddr;

    let provider: &'static dyn CryptoProvider = &RustCrypto;
    let Some(cert) = certificate(provider) else {
        return;
    };
    let cookies = data.first().is_some_and(|b| b & 1 == 1);
    let (_, server_versions) = versions(data.first().copied().unwrap_or(0));
    let server_cfg = || {
        Config::new(
            provider,
            cert.clone(),
            PeerVerifier::Custom(Box::new(AcceptAny)),
        )
        .with_versions(server_versions)
    };
    let config = AcceptorConfig {
        cookies,
        max_pending: 2,
        max_client_hello_len: 4096,
    };
    let mut acceptor =
        Acceptor::new(provider, &mut FuzzRng::new(5), config).with_dtls13(&server_cfg());
    let local = SocketAddr::from(([192, 0, 2, 1], 443));
    let sources = [
        SocketAddr::from(([198, 51, 100, 1], 5000)),
        SocketAddr::from(([198, 51, 100, 2], 5000)),
    ];
    let mut servers: [Option<Dtls<FuzzRng>>; 2] = [None, None];
    let mut now = origin;
    let mut rest = data.get(1..).unwrap_or_default();
    while rest.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        let take = len.min(rest.len() - 2);
        let datagram = &rest[2..2 + take];
        rest = &rest[2 + take..];
        now += Duration::from_millis(u64::from(len as u8) * 10);
        let from = len & 1;
        if let Some(server) = &mut servers[from] {
            server.handle_datagram(now, datagram);
            server.handle_timeout(now);
            while server.poll_transmit().is_some() {}
            while server.poll_event().is_some() {}
            continue;
        }
        if let Accept::Hello(hello) = acceptor.handle_datagram(now, sources[from], local, datagram)
        {
            let mut server = Dtls::accept(server_cfg(), FuzzRng::new(6), now, hello);
            while server.poll_transmit().is_some() {}
            while server.poll_event().is_some() {}
            servers[from] = Some(server);
        }
        while let Some(t) = acceptor.poll_transmit() {
            assert_eq!(t.source, local, "answered from another address");
            assert_eq!(t.destination, sources[from], "answered someone else");
        }
        assert!(
            acceptor.pending_len() <= config.max_pending,
            "pending over its bound"
        );
        assert!(
            acceptor.buffered_len() <= config.max_pending * config.max_client_hello_len,
            "buffered over its bound"
        );
    }
}

/// A DTLS client and server over a network the input controls, checked after every step.
/// `data[0]` chooses the server's cookie exchange (bit 0) and the versions (bits 1–2).
///
/// Each input byte is an operation (the byte's low 3 bits) with arguments from the following
/// bytes: deliver the next datagram in a direction, drop it, duplicate it, reorder the two
/// first, flip one of its bits, inject a forged datagram, advance time, send application data,
/// start a KeyUpdate.
/// After every step: a side that reports connected has the other's certificate fingerprint,
/// two connected sides export equal keying material, every application datagram received was
/// sent by the other side, and `poll_timeout` is never in the past after `handle_timeout`.
/// Panics when an invariant breaks (that is what the fuzzer looks for).
pub fn pair(data: &[u8], origin: Instant) -> PairRun {
    let mut run = PairRun::default();
    let provider: &'static dyn CryptoProvider = &RustCrypto;
    let Some(cert) = certificate(provider) else {
        return run;
    };
    // Both sides use the one fuzz certificate: each pins the other's (equal) fingerprint.
    let fingerprint = cert.fingerprint();
    let verifier = || PeerVerifier::Fingerprint(fingerprint);
    let cookie = data.first().is_some_and(|b| b & 1 == 1);
    let (client_versions, server_versions) = versions(data.first().copied().unwrap_or(0));
    let server_cfg = Config::new(provider, cert.clone(), verifier())
        .with_server_cookie(cookie)
        .with_versions(server_versions);
    let client_cfg = Config::new(provider, cert, verifier()).with_versions(client_versions);
    let Ok(client) = Dtls::client(client_cfg, FuzzRng::new(3), origin) else {
        return run;
    };
    let mut sides = [client, Dtls::server(server_cfg, FuzzRng::new(4))];
    let mut wire: [std::collections::VecDeque<Vec<u8>>; 2] = Default::default();
    let mut sent: [Vec<Vec<u8>>; 2] = Default::default();
    let mut now = origin;
    let mut input = data.get(1..).unwrap_or_default().iter().copied();
    while let Some(op) = input.next() {
        let from = usize::from(op >> 7);
        let to = 1 - from;
        match op & 7 {
            0 | 1 => {
                if let Some(d) = wire[from].pop_front() {
                    sides[to].handle_datagram(now, &d);
                }
            }
            2 => drop(wire[from].pop_front()),
            3 => {
                if let Some(d) = wire[from].front().cloned() {
                    wire[from].push_back(d);
                }
            }
            4 => {
                if wire[from].len() >= 2 {
                    wire[from].swap(0, 1);
                }
            }
            5 => {
                let at = usize::from(input.next().unwrap_or(0));
                if let Some(d) = wire[from].front_mut() {
                    if !d.is_empty() {
                        let i = at % d.len();
                        d[i] ^= 1 << (at % 8);
                    }
                }
            }
            6 => {
                let len = usize::from(input.next().unwrap_or(0) % 64);
                let forged: Vec<u8> = input.by_ref().take(len).collect();
                sides[to].handle_datagram(now, &forged);
            }
            _ => {
                let step = input.next().unwrap_or(0);
                if step < 16 {
                    let payload = vec![step; usize::from(step) + 1];
                    if sides[from].handle_send(now, &payload).is_ok() {
                        sent[from].push(payload);
                    }
                } else if step < 18 {
                    // A DTLS 1.3 KeyUpdate, asking the peer to update too when 17.
                    let _ = sides[from].handle_key_update(now, step == 17);
                } else {
                    now += Duration::from_millis(u64::from(step) * 20);
                    for side in &mut sides {
                        side.handle_timeout(now);
                        assert!(
                            side.poll_timeout().is_none_or(|t| t > now),
                            "poll_timeout in the past after handle_timeout"
                        );
                    }
                }
            }
        }
        for (i, side) in sides.iter_mut().enumerate() {
            while let Some(t) = side.poll_transmit() {
                if wire[i].len() < 64 {
                    wire[i].push_back(t.payload.to_vec());
                }
            }
            while let Some(event) = side.poll_event() {
                match event {
                    crate::event::Event::Connected(done) => {
                        assert_eq!(done.peer_fingerprint, fingerprint, "unauthenticated peer");
                    }
                    crate::event::Event::ApplicationData(d) => {
                        assert!(sent[1 - i].contains(&d), "application data nobody sent");
                        run.data_received[i] += 1;
                    }
                    _ => {}
                }
            }
        }
        if sides.iter().all(Dtls::is_connected) {
            let label = b"EXTRACTOR-dtls_srtp";
            assert_eq!(
                sides[0].export_keying_material(label, None, 60),
                sides[1].export_keying_material(label, None, 60),
                "both sides connected with different keys"
            );
            run.both_connected = true;
        }
    }
    run.application_epochs = [sides[0].application_epochs(), sides[1].application_epochs()];
    run
}

/// What a [`pair`] run reached, for tests of the seed inputs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PairRun {
    /// Both sides were connected at some step.
    pub both_connected: bool,
    /// Application datagrams received by the client and by the server.
    pub data_received: [usize; 2],
    /// DTLS 1.3: each side's `(write, read)` application epochs at the end.
    pub application_epochs: [Option<(u64, u64)>; 2],
}
