//! Entry points for `cargo fuzz` targets and the corpus replay test. Not a stable API.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rand_core::{CryptoRng, RngCore};

use crate::certificate::{CertificateParams, DtlsCertificate, PeerVerifier, VerifyPeer};
use crate::config::Config;
use crate::connection::Dtls;
use crate::crypto::{CryptoProvider, RustCrypto, providers};
use crate::error::PeerRejected;
use crate::handshake::FragmentView;
use crate::handshake::hello::{ClientHello, HelloVerifyRequest, ServerHello};
use crate::handshake::key_exchange::{
    CertificateMsg, CertificateRequest, CertificateVerify, ClientKeyExchange, ServerKeyExchange,
};
use crate::record::records;

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
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
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

/// Parses `data[1..]` as the handshake body selected by `data[0]`.
pub fn handshake_message(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    match selector % 9 {
        0 => drop(ClientHello::parse(body)),
        1 => drop(ServerHello::parse(body)),
        2 => drop(HelloVerifyRequest::parse(body)),
        3 => drop(CertificateMsg::parse(body)),
        4 => drop(ServerKeyExchange::parse(body)),
        5 => drop(CertificateRequest::parse(body)),
        6 => drop(ClientKeyExchange::parse(body)),
        7 => drop(CertificateVerify::parse(body)),
        _ => drop(crate::certificate::peer_public_key(body)),
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

/// A server (cookie on or off by `data[0]`) fed the datagrams of `data`, each prefixed by a
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
    let server_cfg = Config::new(provider, cert.clone(), verifier()).with_server_cookie(cookie);
    let mut server = Dtls::server(server_cfg, FuzzRng::new(1));
    let client_cfg = Config::new(provider, cert, verifier());
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
