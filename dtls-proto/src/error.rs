//! Errors, one enum per layer, a variant per fault.
//!
//! - [`DecodeError`]: bytes that do not parse (records, handshake messages, extensions).
//! - [`CryptoError`]: a provider refused a key, a signature or a ciphertext.
//! - [`CertificateError`]: our certificate could not be built, or the peer's could not be read.
//! - [`Error`]: a fatal fault of a connection. It is reported once as
//!   [`Event::Failed`](crate::Event::Failed); where the protocol allows, the peer is told with a
//!   fatal alert chosen by [`Error::alert`], the only place that maps faults to alerts.
//!
//! Records that fail to parse, to authenticate or that are replayed are not errors: they are
//! counted in [`Stats`](crate::Stats) and dropped (RFC 6347 §4.1.2.7).

use crate::alert::AlertDescription;
use crate::handshake::HandshakeType;
pub use crate::wire::DecodeError;

/// A crypto provider refused an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// A private key is not a valid scalar for its group.
    #[error("invalid private key")]
    InvalidPrivateKey,
    /// A public key is not a valid point for its group.
    #[error("invalid public key")]
    InvalidPublicKey,
    /// The key exchange produced an all-zero secret (RFC 8422 §5.11 forbids it).
    #[error("key exchange produced a degenerate shared secret")]
    DegenerateSharedSecret,
    /// A signature is malformed or does not verify.
    #[error("signature verification failed")]
    BadSignature,
    /// Signing failed inside the provider.
    #[error("signing failed")]
    SigningFailed,
    /// An AEAD key has the wrong length.
    #[error("invalid AEAD key length")]
    InvalidKeyLength,
    /// An AEAD ciphertext failed authentication.
    #[error("AEAD authentication failed")]
    AeadOpenFailed,
    /// AEAD encryption failed inside the provider.
    #[error("AEAD encryption failed")]
    AeadSealFailed,
    /// The provider does not implement this algorithm.
    #[error("algorithm not supported by this provider")]
    Unsupported,
    /// The record-number mask (RFC 9147 §4.2.3) could not be computed inside the provider.
    #[error("record number mask failed")]
    RecordNumberMaskFailed,
}

/// Our certificate could not be built, or the peer's could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CertificateError {
    /// The DER does not parse as an X.509 certificate.
    #[error("certificate DER does not parse")]
    MalformedDer,
    /// The certificate's key is not an ECDSA P-256 key.
    #[error("certificate key is not ECDSA P-256")]
    UnsupportedKey,
    /// A fingerprint string is not `sha-256 AB:CD:…` (RFC 8122 §5); the string as given.
    #[error("malformed fingerprint {0:?}")]
    MalformedFingerprint(String),
    /// The validity window does not fit the certificate time encoding.
    #[error("certificate validity out of range")]
    ValidityOutOfRange,
    /// The provider refused the key.
    #[error("crypto: {0}")]
    Crypto(#[from] CryptoError),
}

/// Why a custom verifier rejected the peer's certificate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("peer certificate rejected: {reason}")]
pub struct PeerRejected {
    /// Human-readable reason from the verifier.
    pub reason: &'static str,
}

/// A fatal fault of a DTLS connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A complete handshake message does not parse.
    #[error("malformed handshake message: {0}")]
    MalformedMessage(#[from] DecodeError),
    /// A handshake message arrived that the current state does not accept.
    #[error("unexpected handshake message {got} while waiting for {expected}")]
    UnexpectedMessage {
        /// What the state waits for.
        expected: &'static str,
        /// What arrived.
        got: HandshakeType,
    },
    /// A ChangeCipherSpec or application data record arrived out of order.
    #[error("unexpected {0} record")]
    UnexpectedRecord(&'static str),
    /// The peer does not speak DTLS 1.2.
    #[error("peer does not support DTLS 1.2 (offered {0:#06x})")]
    UnsupportedVersion(u16),
    /// No cipher suite is acceptable to both sides.
    #[error("no common cipher suite")]
    NoCommonCipherSuite,
    /// No key exchange group is acceptable to both sides.
    #[error("no common key exchange group")]
    NoCommonGroup,
    /// The peer does not accept ECDSA with SHA-256 signatures.
    #[error("no common signature algorithm")]
    NoCommonSignatureAlgorithm,
    /// SRTP profiles were configured but none was agreed (RFC 5764 §4.1.1).
    #[error("no common SRTP protection profile")]
    NoCommonSrtpProfile,
    /// The peer did not negotiate extended_master_secret, which this crate requires (RFC 7627 §5.2).
    #[error("peer did not negotiate extended_master_secret")]
    ExtendedMasterSecretMissing,
    /// The peer sent a parameter value we did not offer or cannot use.
    #[error("peer sent an illegal {parameter}: {value:#06x}")]
    IllegalParameter {
        /// Which parameter (`cipher suite`, `named group`, …).
        parameter: &'static str,
        /// The offending code point (for a list, the first entry that makes it illegal).
        value: u16,
    },
    /// The peer sent no certificate but mutual authentication is required.
    #[error("peer sent no certificate")]
    PeerCertificateMissing,
    /// The peer's certificate does not parse or has an unsupported key.
    #[error("bad peer certificate: {0}")]
    BadCertificate(#[from] CertificateError),
    /// The peer's certificate does not match the fingerprint from signalling (RFC 8122 §5).
    #[error("peer certificate fingerprint mismatch: expected {expected}, got {actual}")]
    FingerprintMismatch {
        /// The fingerprint the application expected.
        expected: String,
        /// The fingerprint of the certificate the peer presented.
        actual: String,
    },
    /// The custom verifier rejected the peer's certificate.
    #[error(transparent)]
    PeerRejected(#[from] PeerRejected),
    /// ServerKeyExchange or CertificateVerify signature does not verify.
    #[error("peer signature does not verify")]
    BadPeerSignature,
    /// The peer's Finished does not match the transcript.
    #[error("peer Finished verify_data mismatch")]
    FinishedMismatch,
    /// The peer tried to renegotiate, which this crate refuses (RFC 5746).
    #[error("renegotiation refused")]
    RenegotiationRefused,
    /// The peer's renegotiation_info is not empty on the initial handshake (RFC 5746 §3.4).
    #[error("invalid renegotiation_info")]
    BadRenegotiationInfo,
    /// The peer sent a fatal alert.
    #[error("peer sent fatal alert {0}")]
    AlertReceived(AlertDescription),
    /// The last flight was retransmitted the configured number of times without an answer.
    #[error("handshake timed out")]
    HandshakeTimeout,
    /// A handshake message is larger than the bound on one handshake's messages.
    #[error("handshake message of {len} bytes exceeds the bound of {max}")]
    HandshakeMessageTooLarge {
        /// The message's length.
        len: usize,
        /// The bound it exceeds.
        max: usize,
    },
    /// A crypto operation failed on our side.
    #[error("crypto: {0}")]
    Crypto(#[from] CryptoError),
    /// The 48-bit record sequence number space is exhausted (RFC 6347 §4.1).
    #[error("record sequence numbers exhausted")]
    SequenceNumberExhausted,
}

impl Error {
    /// The fatal alert that tells the peer about this fault, if one should be sent.
    pub fn alert(&self) -> Option<AlertDescription> {
        use AlertDescription as A;
        Some(match self {
            Self::MalformedMessage(_) => A::DecodeError,
            Self::UnexpectedMessage { .. } | Self::UnexpectedRecord(_) => A::UnexpectedMessage,
            Self::UnsupportedVersion(_) => A::ProtocolVersion,
            Self::NoCommonCipherSuite
            | Self::NoCommonGroup
            | Self::NoCommonSignatureAlgorithm
            | Self::NoCommonSrtpProfile
            | Self::ExtendedMasterSecretMissing => A::HandshakeFailure,
            Self::IllegalParameter { .. } => A::IllegalParameter,
            Self::PeerCertificateMissing => A::HandshakeFailure,
            Self::BadCertificate(_) => A::BadCertificate,
            Self::FingerprintMismatch { .. } | Self::PeerRejected(_) => A::BadCertificate,
            Self::BadPeerSignature | Self::FinishedMismatch => A::DecryptError,
            Self::RenegotiationRefused => A::NoRenegotiation,
            Self::BadRenegotiationInfo => A::HandshakeFailure,
            Self::HandshakeMessageTooLarge { .. } => A::RecordOverflow,
            Self::Crypto(_) | Self::SequenceNumberExhausted => A::InternalError,
            Self::AlertReceived(_) | Self::HandshakeTimeout => return None,
        })
    }
}

/// Why [`Dtls::handle_send`](crate::Dtls::handle_send) refused application data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The handshake has not completed yet.
    #[error("handshake not complete")]
    NotConnected,
    /// The connection is closed or failed.
    #[error("connection closed")]
    Closed,
    /// The data does not fit in one record within the configured MTU.
    #[error("application data of {len} bytes exceeds the record limit of {max}")]
    TooLarge {
        /// Bytes offered.
        len: usize,
        /// The largest payload that fits.
        max: usize,
    },
    /// The transmit queue is full; drain `poll_transmit` first.
    #[error("transmit queue full")]
    QueueFull,
    /// A KeyUpdate was asked of a DTLS 1.2 association (KeyUpdate is DTLS 1.3's, RFC 9147 §8).
    #[error("KeyUpdate needs DTLS 1.3")]
    KeyUpdateUnsupported,
    /// Record protection failed.
    #[error(transparent)]
    Fatal(#[from] Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_the_offending_value() {
        let cases: [(String, &str); 6] = [
            (
                Error::IllegalParameter {
                    parameter: "cipher suite",
                    value: 0x1301,
                }
                .to_string(),
                "peer sent an illegal cipher suite: 0x1301",
            ),
            (
                Error::UnexpectedMessage {
                    expected: "ServerHello",
                    got: HandshakeType::Finished,
                }
                .to_string(),
                "unexpected handshake message finished (20) while waiting for ServerHello",
            ),
            (
                Error::AlertReceived(AlertDescription::BadCertificate).to_string(),
                "peer sent fatal alert bad_certificate (42)",
            ),
            (
                Error::HandshakeMessageTooLarge {
                    len: 70_000,
                    max: 65_536,
                }
                .to_string(),
                "handshake message of 70000 bytes exceeds the bound of 65536",
            ),
            (
                DecodeError::InvalidLength {
                    field: "cipher_suites",
                    len: 3,
                }
                .to_string(),
                "invalid length 3 for cipher_suites",
            ),
            (
                CertificateError::MalformedFingerprint("sha-1 AB".into()).to_string(),
                "malformed fingerprint \"sha-1 AB\"",
            ),
        ];
        for (shown, expected) in cases {
            assert_eq!(shown, expected);
        }
    }
}
