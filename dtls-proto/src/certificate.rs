//! Self-signed ECDSA P-256 certificates and their fingerprints (RFC 8122 §5, RFC 8827 §6.5).
//!
//! WebRTC authenticates DTLS with self-signed certificates whose SHA-256 fingerprint travels in
//! SDP (`a=fingerprint:sha-256 AB:CD:…`). [`DtlsCertificate::generate`] builds one from the
//! injected RNG with a validity window that starts at a caller-supplied unix time; the DER is
//! written by hand (a fixed X.509 v3 template, RFC 5280 §4.1). Peer certificates are read only
//! as far as the subject public key: [`peer_public_key`] walks the DER structure of RFC 5280
//! §4.1 field by field without allocating (the peer's certificate has already matched the
//! fingerprint from signalling, or been accepted by the application's verifier).

use std::fmt;
use std::str::FromStr;

use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::crypto::{CryptoProvider, EcdsaSigningKey, generate_signing_key};
use crate::error::{CertificateError, PeerRejected};
use crate::wire::Reader;

const OID_ECDSA_WITH_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_PRIME256V1: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];
/// Length of an uncompressed SEC1 P-256 point.
pub const P256_PUBLIC_KEY_LEN: usize = 65;

/// Our certificate and its private key.
///
/// The key is imported into the crypto provider once, when the certificate is generated or
/// wrapped, and shared (immutably, behind an `Arc`) by every connection configured with a clone:
/// signing then costs one signature, not a key import plus a signature. Signatures are made by
/// the provider that created or imported the certificate.
#[derive(Clone)]
pub struct DtlsCertificate {
    der: Vec<u8>,
    private_key: Vec<u8>,
    signer: Arc<dyn EcdsaSigningKey>,
}

impl fmt::Debug for DtlsCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DtlsCertificate")
            .field("fingerprint", &self.fingerprint().to_string())
            .finish_non_exhaustive()
    }
}

/// Parameters of a generated certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateParams {
    /// Start of validity, seconds since the unix epoch (the caller's wall clock).
    pub not_before_unix: u64,
    /// Length of validity in seconds.
    pub validity_secs: u64,
    /// Subject and issuer common name.
    pub common_name: String,
}

impl CertificateParams {
    /// Valid for 30 days from `not_before_unix`, named "WebRTC" like browsers do.
    pub fn new(not_before_unix: u64) -> Self {
        Self {
            not_before_unix,
            validity_secs: 30 * 24 * 3600,
            common_name: "WebRTC".to_owned(),
        }
    }
}

impl DtlsCertificate {
    /// Generates a key pair from `rng` and a self-signed certificate over it.
    pub fn generate(
        provider: &dyn CryptoProvider,
        rng: &mut dyn rand_core::CryptoRng,
        params: &CertificateParams,
    ) -> Result<Self, CertificateError> {
        let (private_key, signer) = generate_signing_key(provider, rng)?;
        let public_key = signer.public_key().to_vec();
        let mut serial = [0u8; 16];
        rng.fill_bytes(&mut serial);
        // Positive and minimally encoded: top bit clear, second-highest set.
        serial[0] = (serial[0] & 0x7f) | 0x40;

        let not_after = params
            .not_before_unix
            .checked_add(params.validity_secs)
            .ok_or(CertificateError::ValidityOutOfRange)?;
        let name = der(
            0x30,
            &der(
                0x31,
                &der(
                    0x30,
                    &[
                        der(0x06, OID_COMMON_NAME),
                        der(0x0c, params.common_name.as_bytes()),
                    ]
                    .concat(),
                ),
            ),
        );
        let sig_alg = der(0x30, &der(0x06, OID_ECDSA_WITH_SHA256));
        let spki = der(
            0x30,
            &[
                der(
                    0x30,
                    &[der(0x06, OID_EC_PUBLIC_KEY), der(0x06, OID_PRIME256V1)].concat(),
                ),
                der(0x03, &[&[0u8][..], &public_key].concat()),
            ]
            .concat(),
        );
        let validity = der(
            0x30,
            &[time(params.not_before_unix)?, time(not_after)?].concat(),
        );
        let tbs = der(
            0x30,
            &[
                der(0xa0, &der(0x02, &[2])),
                der(0x02, &serial),
                sig_alg.clone(),
                name.clone(),
                validity,
                name,
                spki,
            ]
            .concat(),
        );
        let signature = signer.sign(&tbs)?;
        let cert = der(
            0x30,
            &[tbs, sig_alg, der(0x03, &[&[0u8][..], &signature].concat())].concat(),
        );
        Ok(Self {
            der: cert,
            private_key,
            signer: Arc::from(signer),
        })
    }

    /// Wraps an existing certificate and its raw 32-byte P-256 private scalar.
    pub fn from_der_and_private_key(
        provider: &dyn CryptoProvider,
        der: Vec<u8>,
        private_key: &[u8],
    ) -> Result<Self, CertificateError> {
        let signer = provider.ecdsa_p256_signing_key(private_key)?;
        if peer_public_key(&der)?[..] != *signer.public_key() {
            return Err(CertificateError::UnsupportedKey);
        }
        Ok(Self {
            der,
            private_key: private_key.to_vec(),
            signer: Arc::from(signer),
        })
    }

    /// The DER encoding.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The uncompressed SEC1 public key.
    pub fn public_key(&self) -> &[u8] {
        self.signer.public_key()
    }

    /// The imported signing key.
    pub fn signing_key(&self) -> &dyn EcdsaSigningKey {
        &*self.signer
    }

    /// The raw 32-byte P-256 private scalar, for persisting the certificate; keep it secret.
    pub fn private_key(&self) -> &[u8] {
        &self.private_key
    }

    /// The SHA-256 fingerprint for SDP.
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(&self.der)
    }
}

/// Extracts the uncompressed P-256 public key of a DER certificate.
///
/// RFC 5280 §4.1: `Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm,
/// signatureValue BIT STRING }` and `TBSCertificate ::= SEQUENCE { [0] version OPTIONAL,
/// serialNumber INTEGER, signature, issuer, validity, subject (each a SEQUENCE),
/// subjectPublicKeyInfo, [1] [2] unique ids and [3] extensions OPTIONAL }`. Every field's tag and
/// DER length are checked and nothing may trail; the contents of names, validity and extensions
/// are not interpreted. The key must be id-ecPublicKey and a 65-byte uncompressed point.
pub fn peer_public_key(der: &[u8]) -> Result<[u8; P256_PUBLIC_KEY_LEN], CertificateError> {
    let malformed = |_| CertificateError::MalformedDer;
    let mut outer = Reader::new(der);
    let mut cert = Reader::new(der_field(&mut outer, 0x30)?);
    outer.finish().map_err(malformed)?;
    let mut tbs = Reader::new(der_field(&mut cert, 0x30)?);
    der_field(&mut cert, 0x30)?; // signatureAlgorithm
    der_field(&mut cert, 0x03)?; // signatureValue
    cert.finish().map_err(malformed)?;

    if tbs.clone().u8() == Ok(0xa0) {
        der_field(&mut tbs, 0xa0)?; // version
    }
    der_field(&mut tbs, 0x02)?; // serialNumber
    for _signature_issuer_validity_subject in 0..4 {
        der_field(&mut tbs, 0x30)?;
    }
    let mut spki = Reader::new(der_field(&mut tbs, 0x30)?);
    for optional in [0x81, 0x82, 0xa3] {
        if tbs.clone().u8() == Ok(optional) {
            der_field(&mut tbs, optional)?;
        }
    }
    tbs.finish().map_err(malformed)?;

    let mut algorithm = Reader::new(der_field(&mut spki, 0x30)?);
    if der_field(&mut algorithm, 0x06)? != OID_EC_PUBLIC_KEY {
        return Err(CertificateError::UnsupportedKey);
    }
    let key = der_field(&mut spki, 0x03)?;
    spki.finish().map_err(malformed)?;
    // A BIT STRING starts with its count of unused bits, which must be 0 for a key.
    match key {
        [0, point @ ..] if point.len() == P256_PUBLIC_KEY_LEN && point[0] == 4 => {
            let mut out = [0u8; P256_PUBLIC_KEY_LEN];
            out.copy_from_slice(point);
            Ok(out)
        }
        _ => Err(CertificateError::UnsupportedKey),
    }
}

/// Reads one DER field with tag `tag` and returns its contents (X.690 §8.1: definite lengths,
/// the long form only from 128 bytes on and without leading zeros, at most 3 length bytes).
fn der_field<'a>(r: &mut Reader<'a>, tag: u8) -> Result<&'a [u8], CertificateError> {
    let malformed = |_| CertificateError::MalformedDer;
    if r.u8().map_err(malformed)? != tag {
        return Err(CertificateError::MalformedDer);
    }
    let first = r.u8().map_err(malformed)?;
    let len = match first {
        0..=0x7f => usize::from(first),
        0x81..=0x83 => {
            let n = usize::from(first & 0x7f);
            let bytes = r.bytes(n).map_err(malformed)?;
            let len = bytes
                .iter()
                .fold(0usize, |acc, b| acc << 8 | usize::from(*b));
            if bytes.first() == Some(&0) || len < 0x80 {
                return Err(CertificateError::MalformedDer);
            }
            len
        }
        _ => return Err(CertificateError::MalformedDer),
    };
    r.bytes(len).map_err(malformed)
}

/// A certificate fingerprint as carried in SDP (RFC 8122 §5); SHA-256 only.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint {
    sha256: [u8; 32],
}

impl Fingerprint {
    /// The SHA-256 fingerprint of a DER certificate.
    pub fn of(der: &[u8]) -> Self {
        Self {
            sha256: Sha256::digest(der).into(),
        }
    }

    /// The digest bytes.
    pub fn bytes(&self) -> &[u8; 32] {
        &self.sha256
    }
}

impl From<[u8; 32]> for Fingerprint {
    fn from(sha256: [u8; 32]) -> Self {
        Self { sha256 }
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sha-256 ")?;
        for (i, b) in self.sha256.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Fingerprint {
    type Err = CertificateError;

    /// Parses `sha-256 AB:CD:…` (hash name case-insensitive, hex either case).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let malformed = || CertificateError::MalformedFingerprint(s.to_owned());
        let (alg, hex) = s.trim().split_once(' ').ok_or_else(malformed)?;
        if !alg.eq_ignore_ascii_case("sha-256") {
            return Err(malformed());
        }
        let mut out = [0u8; 32];
        let mut n = 0;
        for part in hex.trim().split(':') {
            if part.len() != 2 || n == out.len() {
                return Err(malformed());
            }
            out[n] = u8::from_str_radix(part, 16).map_err(|_| malformed())?;
            n += 1;
        }
        if n != out.len() {
            return Err(malformed());
        }
        Ok(Self { sha256: out })
    }
}

/// Decides whether a peer certificate is acceptable.
pub trait VerifyPeer: Send + Sync {
    /// Accepts or rejects the peer's chain (end entity first, DER).
    fn verify(&self, chain: &[Vec<u8>]) -> Result<(), PeerRejected>;
}

/// How the peer's certificate is checked.
#[non_exhaustive]
pub enum PeerVerifier {
    /// The end-entity certificate must hash to this fingerprint (from SDP).
    Fingerprint(Fingerprint),
    /// The end-entity certificate must hash to one of these fingerprints.
    AnyFingerprint(Vec<Fingerprint>),
    /// An application-defined check.
    Custom(Box<dyn VerifyPeer>),
}

impl fmt::Debug for PeerVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Fingerprint(fp) => f.debug_tuple("Fingerprint").field(fp).finish(),
            Self::AnyFingerprint(fps) => f.debug_tuple("AnyFingerprint").field(fps).finish(),
            Self::Custom(_) => f.write_str("Custom(..)"),
        }
    }
}

/// Appends a DER TLV.
fn der(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = body.len();
    if len < 0x80 {
        out.push(len as u8);
    } else if len <= 0xff {
        out.extend_from_slice(&[0x81, len as u8]);
    } else {
        out.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]);
    }
    out.extend_from_slice(body);
    out
}

/// UTCTime until 2049, GeneralizedTime from 2050 (RFC 5280 §4.1.2.5).
fn time(unix: u64) -> Result<Vec<u8>, CertificateError> {
    let days = i64::try_from(unix / 86_400).map_err(|_| CertificateError::ValidityOutOfRange)?;
    let secs = unix % 86_400;
    let (y, m, d) = civil_from_days(days);
    if y > 9999 {
        return Err(CertificateError::ValidityOutOfRange);
    }
    let hms = format!(
        "{:02}{:02}{:02}{:02}{:02}Z",
        m,
        d,
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    );
    Ok(if y < 2050 {
        der(0x17, format!("{:02}{hms}", y % 100).as_bytes())
    } else {
        der(0x18, format!("{y:04}{hms}").as_bytes())
    })
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{RustCrypto, providers};
    use rand_core::SeedableRng;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(time(0).unwrap(), der(0x17, b"700101000000Z"));
        assert_eq!(time(2_524_608_000).unwrap(), der(0x18, b"20500101000000Z"));
    }

    #[test]
    fn generated_certificate_parses_and_fingerprints() {
        for p in providers() {
            let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
            let cert =
                DtlsCertificate::generate(p, &mut rng, &CertificateParams::new(1_700_000_000))
                    .unwrap();
            assert_eq!(peer_public_key(cert.der()).unwrap(), cert.public_key());
            // A full X.509 parser reads what we wrote, and the self-signature verifies.
            use x509_cert::der::{Decode, Encode};
            let parsed = x509_cert::Certificate::from_der(cert.der()).unwrap();
            assert_eq!(parsed.tbs_certificate.version, x509_cert::Version::V3);
            let tbs = parsed.tbs_certificate.to_der().unwrap();
            let sig = parsed.signature.as_bytes().unwrap();
            p.ecdsa_p256_sha256_verify(cert.public_key(), &tbs, sig)
                .unwrap();
            let fp = cert.fingerprint();
            let text = fp.to_string();
            assert!(text.starts_with("sha-256 "));
            assert_eq!(text.len(), 8 + 32 * 3 - 1);
            assert_eq!(text.parse::<Fingerprint>().unwrap(), fp);
            assert_eq!(text.to_lowercase().parse::<Fingerprint>().unwrap(), fp);
        }
    }

    #[test]
    fn key_generation_is_reproducible_from_the_seed() {
        for p in providers() {
            let gen_key = |seed| {
                let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
                DtlsCertificate::generate(p, &mut rng, &CertificateParams::new(0))
                    .unwrap()
                    .public_key()
                    .to_vec()
            };
            assert_eq!(gen_key(5), gen_key(5));
            assert_ne!(gen_key(5), gen_key(6));
        }
    }

    #[test]
    fn malformed_fingerprints_are_rejected() {
        for bad in ["", "sha-1 AB", "sha-256 AB:CD", "sha-256 ZZ", "sha-256"] {
            assert_eq!(
                bad.parse::<Fingerprint>(),
                Err(CertificateError::MalformedFingerprint(bad.to_owned())),
                "{bad}"
            );
        }
        assert_eq!(
            peer_public_key(&[0x30, 0]),
            Err(CertificateError::MalformedDer)
        );
    }

    #[test]
    fn peer_public_key_walks_the_der_strictly() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(3);
        let cert =
            DtlsCertificate::generate(&RustCrypto, &mut rng, &CertificateParams::new(0)).unwrap();
        let der = cert.der();
        assert_eq!(peer_public_key(der).unwrap(), cert.public_key());
        // Trailing bytes, a truncation, a wrong outer tag.
        let trailing = [der, &[0]].concat();
        assert_eq!(
            peer_public_key(&trailing),
            Err(CertificateError::MalformedDer)
        );
        assert_eq!(
            peer_public_key(&der[..der.len() - 1]),
            Err(CertificateError::MalformedDer)
        );
        let mut wrong_tag = der.to_vec();
        wrong_tag[0] = 0x31;
        assert_eq!(
            peer_public_key(&wrong_tag),
            Err(CertificateError::MalformedDer)
        );
        // A non-minimal length (X.690 §10.1): 0x81 0x05 for a 5-byte field.
        assert_eq!(
            der_field(&mut Reader::new(&[0x30, 0x81, 5, 1, 2, 3, 4, 5]), 0x30),
            Err(CertificateError::MalformedDer)
        );
        assert_eq!(
            der_field(&mut Reader::new(&[0x30, 0x81, 0x80]), 0x30),
            Err(CertificateError::MalformedDer)
        );
        // Another key algorithm (the OID's last byte changed).
        let oid_at = der
            .windows(OID_EC_PUBLIC_KEY.len())
            .position(|w| w == OID_EC_PUBLIC_KEY)
            .unwrap();
        let mut other_key = der.to_vec();
        other_key[oid_at + OID_EC_PUBLIC_KEY.len() - 1] ^= 1;
        assert_eq!(
            peer_public_key(&other_key),
            Err(CertificateError::UnsupportedKey)
        );
    }
}
