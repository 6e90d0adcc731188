//! Cipher suites, key exchange groups and signature schemes this crate negotiates.
//!
//! - Suites: RFC 5289 (AES-GCM with ECDHE-ECDSA) and RFC 7905 (ChaCha20-Poly1305).
//! - Groups: RFC 8422 §5.1.1 (secp256r1) and RFC 8422 / RFC 7748 (x25519).
//! - Signatures: ecdsa_secp256r1_sha256 only (RFC 5246 §7.4.1.4.1, RFC 8422 §5.1.2).
//! - The hash and AEAD a suite names, which a [`CryptoProvider`](crate::crypto::CryptoProvider)
//!   implements (also exported from [`crypto`](crate::crypto)).

/// A cipher suite: the DTLS 1.2 ones (ECDHE with ECDSA authentication and an AEAD) and the
/// DTLS 1.3 ones (an AEAD and a hash; key exchange and signatures are negotiated apart).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CipherSuite {
    /// TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 (0xC02B), mandatory for WebRTC.
    EcdheEcdsaAes128GcmSha256,
    /// TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 (0xC02C).
    EcdheEcdsaAes256GcmSha384,
    /// TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 (0xCCA9).
    EcdheEcdsaChaCha20Poly1305Sha256,
    /// TLS_AES_128_GCM_SHA256 (0x1301), DTLS 1.3 (RFC 8446 §B.4).
    Aes128GcmSha256,
    /// TLS_AES_256_GCM_SHA384 (0x1302), DTLS 1.3.
    Aes256GcmSha384,
    /// TLS_CHACHA20_POLY1305_SHA256 (0x1303), DTLS 1.3.
    ChaCha20Poly1305Sha256,
}

impl CipherSuite {
    /// Every DTLS 1.3 suite, in our order of preference.
    pub const ALL_13: [Self; 3] = [
        Self::Aes128GcmSha256,
        Self::Aes256GcmSha384,
        Self::ChaCha20Poly1305Sha256,
    ];

    /// Every DTLS 1.2 suite, in our order of preference.
    pub const ALL: [Self; 3] = [
        Self::EcdheEcdsaAes128GcmSha256,
        Self::EcdheEcdsaAes256GcmSha384,
        Self::EcdheEcdsaChaCha20Poly1305Sha256,
    ];

    /// The IANA code point.
    pub fn id(self) -> u16 {
        match self {
            Self::EcdheEcdsaAes128GcmSha256 => 0xc02b,
            Self::EcdheEcdsaAes256GcmSha384 => 0xc02c,
            Self::EcdheEcdsaChaCha20Poly1305Sha256 => 0xcca9,
            Self::Aes128GcmSha256 => 0x1301,
            Self::Aes256GcmSha384 => 0x1302,
            Self::ChaCha20Poly1305Sha256 => 0x1303,
        }
    }

    /// The DTLS 1.2 suite with code point `id`, if we implement it.
    pub fn from_id(id: u16) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.id() == id)
    }

    /// The DTLS 1.3 suite with code point `id`, if we implement it.
    pub fn from_id_13(id: u16) -> Option<Self> {
        Self::ALL_13.into_iter().find(|s| s.id() == id)
    }

    /// True for the DTLS 1.3 suites.
    pub fn is_dtls13(self) -> bool {
        Self::ALL_13.contains(&self)
    }

    /// The OpenSSL name, handy for interop tests.
    pub fn openssl_name(self) -> &'static str {
        match self {
            Self::EcdheEcdsaAes128GcmSha256 => "ECDHE-ECDSA-AES128-GCM-SHA256",
            Self::EcdheEcdsaAes256GcmSha384 => "ECDHE-ECDSA-AES256-GCM-SHA384",
            Self::EcdheEcdsaChaCha20Poly1305Sha256 => "ECDHE-ECDSA-CHACHA20-POLY1305",
            Self::Aes128GcmSha256 => "TLS_AES_128_GCM_SHA256",
            Self::Aes256GcmSha384 => "TLS_AES_256_GCM_SHA384",
            Self::ChaCha20Poly1305Sha256 => "TLS_CHACHA20_POLY1305_SHA256",
        }
    }

    /// The record AEAD.
    pub fn aead(self) -> AeadAlgorithm {
        match self {
            Self::EcdheEcdsaAes128GcmSha256 | Self::Aes128GcmSha256 => AeadAlgorithm::Aes128Gcm,
            Self::EcdheEcdsaAes256GcmSha384 | Self::Aes256GcmSha384 => AeadAlgorithm::Aes256Gcm,
            Self::EcdheEcdsaChaCha20Poly1305Sha256 | Self::ChaCha20Poly1305Sha256 => {
                AeadAlgorithm::ChaCha20Poly1305
            }
        }
    }

    /// The PRF hash (RFC 5246 §5, RFC 5289 §3), or the HKDF and transcript hash of a DTLS 1.3
    /// suite.
    pub fn prf_hash(self) -> HashAlgorithm {
        match self {
            Self::EcdheEcdsaAes256GcmSha384 | Self::Aes256GcmSha384 => HashAlgorithm::Sha384,
            _ => HashAlgorithm::Sha256,
        }
    }
}

/// An ECDHE group (RFC 8422 §5.1.1 NamedCurve).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NamedGroup {
    /// secp256r1 (23).
    Secp256r1,
    /// x25519 (29).
    X25519,
    /// X25519MLKEM768 (0x11EC), the hybrid of ML-KEM-768 and X25519
    /// (draft-ietf-tls-ecdhe-mlkem); DTLS 1.3 only: DTLS 1.2's ECDHE has no place for a KEM.
    X25519MlKem768,
}

impl NamedGroup {
    /// Every ECDHE group, in our order of preference: what DTLS 1.2 can negotiate.
    pub const ALL: [Self; 2] = [Self::X25519, Self::Secp256r1];
    /// Every group DTLS 1.3 can negotiate, in our order of preference.
    pub const ALL_13: [Self; 3] = [Self::X25519MlKem768, Self::X25519, Self::Secp256r1];

    /// The IANA code point.
    pub fn id(self) -> u16 {
        match self {
            Self::Secp256r1 => 23,
            Self::X25519 => 29,
            Self::X25519MlKem768 => 0x11ec,
        }
    }

    /// The ECDHE group with code point `id`, if we implement it (DTLS 1.2's groups).
    pub fn from_id(id: u16) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.id() == id)
    }

    /// True for the elliptic-curve groups, which DTLS 1.2 can use.
    pub fn is_ecdhe(self) -> bool {
        !matches!(self, Self::X25519MlKem768)
    }

    /// The length of a private key in bytes.
    pub fn private_key_len(self) -> usize {
        32
    }

    /// The OpenSSL name, handy for interop tests.
    pub fn openssl_name(self) -> &'static str {
        match self {
            Self::Secp256r1 => "P-256",
            Self::X25519 => "X25519",
            Self::X25519MlKem768 => "X25519MLKEM768",
        }
    }
}

/// A protocol version we speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProtocolVersion {
    /// DTLS 1.2 (RFC 6347), 0xFEFD on the wire.
    Dtls12,
    /// DTLS 1.3 (RFC 9147), 0xFEFC on the wire.
    Dtls13,
}

impl ProtocolVersion {
    /// The wire value.
    pub fn id(self) -> u16 {
        match self {
            Self::Dtls12 => 0xfefd,
            Self::Dtls13 => 0xfefc,
        }
    }
}

/// The last 8 bytes of a ServerHello.random from a server that speaks DTLS 1.3 but negotiated
/// DTLS 1.2 (RFC 8446 §4.1.3, "DOWNGRD" and 01): a client that offered 1.3 must refuse it.
pub const DOWNGRADE_SENTINEL_12: [u8; 8] = *b"DOWNGRD\x01";

/// ecdsa_secp256r1_sha256 (RFC 5246 SignatureAndHashAlgorithm {sha256(4), ecdsa(3)}).
pub const ECDSA_SECP256R1_SHA256: u16 = 0x0403;

/// TLS_EMPTY_RENEGOTIATION_INFO_SCSV (RFC 5746 §3.3).
pub const EMPTY_RENEGOTIATION_INFO_SCSV: u16 = 0x00ff;

/// A hash function used by the PRF, transcripts and fingerprints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HashAlgorithm {
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
}

impl HashAlgorithm {
    /// Digest length in bytes.
    pub fn output_len(self) -> usize {
        match self {
            Self::Sha256 => 32,
            Self::Sha384 => 48,
        }
    }
}

/// A record AEAD.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AeadAlgorithm {
    /// AES-128-GCM (RFC 5288).
    Aes128Gcm,
    /// AES-256-GCM (RFC 5288).
    Aes256Gcm,
    /// ChaCha20-Poly1305 (RFC 7905).
    ChaCha20Poly1305,
}

impl AeadAlgorithm {
    /// Key length in bytes.
    pub fn key_len(self) -> usize {
        match self {
            Self::Aes128Gcm => 16,
            Self::Aes256Gcm | Self::ChaCha20Poly1305 => 32,
        }
    }

    /// Implicit IV length from the key block (RFC 5288 §3: 4 for GCM; RFC 7905 §2: 12).
    pub fn fixed_iv_len(self) -> usize {
        match self {
            Self::Aes128Gcm | Self::Aes256Gcm => 4,
            Self::ChaCha20Poly1305 => 12,
        }
    }

    /// Explicit nonce bytes carried in each record (8 for GCM, none for ChaCha20-Poly1305).
    pub fn explicit_nonce_len(self) -> usize {
        match self {
            Self::Aes128Gcm | Self::Aes256Gcm => 8,
            Self::ChaCha20Poly1305 => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_points_round_trip() {
        for s in CipherSuite::ALL {
            assert_eq!(CipherSuite::from_id(s.id()), Some(s));
        }
        for g in NamedGroup::ALL {
            assert_eq!(NamedGroup::from_id(g.id()), Some(g));
        }
        assert_eq!(CipherSuite::from_id(0x002f), None);
        assert_eq!(CipherSuite::EcdheEcdsaAes128GcmSha256.id(), 0xc02b);
    }
}
