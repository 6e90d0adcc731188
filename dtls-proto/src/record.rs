//! The DTLS 1.2 record layer (RFC 6347 §4.1), whose header DTLS 1.3 keeps for its clear-text
//! epoch 0 (RFC 9147 §4; protected DTLS 1.3 records are in `unified_header` and `epoch`).
//!
//! ```text
//! struct {
//!     ContentType type;            // 1 byte
//!     ProtocolVersion version;     // 2 bytes, {254, 253} for DTLS 1.2
//!     uint16 epoch;                // RFC 6347 §4.1
//!     uint48 sequence_number;      // per epoch, never reused
//!     uint16 length;
//!     opaque fragment[length];
//! } DTLSPlaintext / DTLSCiphertext;
//! ```
//!
//! Several records may share one datagram (§4.1.1). [`RecordView`] borrows one record;
//! [`Protection`] seals and opens AEAD records (RFC 5246 §6.2.3.3, RFC 5288 §3, RFC 7905 §2)
//! with the additional data of RFC 6347 §4.1.2.1 (the 64-bit epoch ‖ sequence number).

use crate::cipher_suite::CipherSuite;
use crate::crypto::{AeadKey, CryptoProvider, NONCE_LEN, TAG_LEN};
use crate::error::CryptoError;
use crate::wire::DecodeError;
use crate::wire::{Reader, put_u16, put_u48};

/// Record header length.
pub const HEADER_LEN: usize = 13;
/// DTLS 1.2 on the wire.
pub const DTLS_1_2: u16 = 0xfefd;
/// DTLS 1.0 on the wire (allowed in ClientHello records and HelloVerifyRequest).
pub const DTLS_1_0: u16 = 0xfeff;
/// Largest plaintext fragment (RFC 5246 §6.2.1).
pub const MAX_PLAINTEXT_LEN: usize = 1 << 14;
/// Largest protected fragment (RFC 5246 §6.2.3).
pub const MAX_CIPHERTEXT_LEN: usize = MAX_PLAINTEXT_LEN + 2048;
/// Largest 48-bit sequence number.
pub const MAX_SEQUENCE: u64 = (1 << 48) - 1;

/// The record content types of DTLS 1.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ContentType {
    /// change_cipher_spec (20).
    ChangeCipherSpec,
    /// alert (21).
    Alert,
    /// handshake (22).
    Handshake,
    /// application_data (23).
    ApplicationData,
    /// ack (26), DTLS 1.3 only and only inside protected records (RFC 9147 §7).
    Ack,
}

impl ContentType {
    /// The wire value.
    pub fn to_byte(self) -> u8 {
        match self {
            Self::ChangeCipherSpec => 20,
            Self::Alert => 21,
            Self::Handshake => 22,
            Self::ApplicationData => 23,
            Self::Ack => 26,
        }
    }

    /// Parses the content type inside a DTLS 1.3 protected record (RFC 9147 §4): alert,
    /// handshake, application data or ACK; ChangeCipherSpec does not exist in DTLS 1.3.
    pub fn from_inner_byte(v: u8) -> Option<Self> {
        match v {
            21 => Some(Self::Alert),
            22 => Some(Self::Handshake),
            23 => Some(Self::ApplicationData),
            26 => Some(Self::Ack),
            _ => None,
        }
    }

    /// Parses the content type of a record header with the DTLS 1.2 layout (every DTLS 1.2
    /// record, and DTLS 1.3's clear-text epoch 0, which never carries an ACK).
    pub fn from_byte(v: u8) -> Result<Self, DecodeError> {
        Ok(match v {
            20 => Self::ChangeCipherSpec,
            21 => Self::Alert,
            22 => Self::Handshake,
            23 => Self::ApplicationData,
            other => return Err(DecodeError::UnknownContentType(other)),
        })
    }
}

/// The fields of a record header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader {
    /// Content type.
    pub content_type: ContentType,
    /// Wire version (DTLS 1.0 or 1.2).
    pub version: u16,
    /// Epoch.
    pub epoch: u16,
    /// 48-bit sequence number.
    pub sequence: u64,
}

impl RecordHeader {
    /// The 64-bit `epoch ‖ sequence_number` used in nonces and additional data.
    pub fn epoch_sequence(&self) -> u64 {
        (u64::from(self.epoch) << 48) | self.sequence
    }

    /// Appends the header with a fragment length.
    pub fn encode(&self, len: usize, out: &mut Vec<u8>) {
        out.push(self.content_type.to_byte());
        put_u16(out, self.version);
        put_u16(out, self.epoch);
        put_u48(out, self.sequence);
        put_u16(out, len.min(0xffff) as u16);
    }
}

/// One record borrowed from a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordView<'a> {
    /// The header.
    pub header: RecordHeader,
    /// The fragment, plaintext or protected.
    pub fragment: &'a [u8],
}

impl<'a> RecordView<'a> {
    /// Parses the first record of `buf` and returns it with the rest of the datagram.
    pub fn parse(buf: &'a [u8]) -> Result<(Self, &'a [u8]), DecodeError> {
        let mut r = Reader::new(buf);
        let content_type = ContentType::from_byte(r.u8()?)?;
        let version = r.u16()?;
        if version != DTLS_1_2 && version != DTLS_1_0 {
            return Err(DecodeError::UnsupportedVersion(version));
        }
        let epoch = r.u16()?;
        let sequence = r.u48()?;
        let fragment = r.vec16()?;
        if fragment.len() > MAX_CIPHERTEXT_LEN {
            return Err(DecodeError::RecordTooLong(fragment.len()));
        }
        let header = RecordHeader {
            content_type,
            version,
            epoch,
            sequence,
        };
        Ok((Self { header, fragment }, r.rest()))
    }
}

/// Iterates over the records of a datagram; stops at the first malformed one (the rest of the
/// datagram cannot be framed).
pub fn records(datagram: &[u8]) -> impl Iterator<Item = Result<RecordView<'_>, DecodeError>> {
    let mut rest = Some(datagram);
    std::iter::from_fn(move || {
        let buf = rest.take()?;
        if buf.is_empty() {
            return None;
        }
        match RecordView::parse(buf) {
            Ok((record, tail)) => {
                rest = Some(tail);
                Some(Ok(record))
            }
            Err(e) => Some(Err(e)),
        }
    })
}

/// AEAD protection of one direction of one epoch.
pub struct Protection {
    suite: CipherSuite,
    key: Box<dyn AeadKey>,
    /// The implicit IV from the key block: its first 4 bytes for GCM, all 12 for ChaCha20.
    iv: [u8; NONCE_LEN],
}

impl std::fmt::Debug for Protection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Protection")
            .field("suite", &self.suite)
            .finish_non_exhaustive()
    }
}

impl Protection {
    /// Keys a direction from its write key and implicit IV.
    pub fn new(
        provider: &dyn CryptoProvider,
        suite: CipherSuite,
        key: &[u8],
        iv: &[u8],
    ) -> Result<Self, CryptoError> {
        if iv.len() != suite.aead().fixed_iv_len() {
            return Err(CryptoError::InvalidKeyLength);
        }
        let mut fixed = [0u8; NONCE_LEN];
        fixed[..iv.len()].copy_from_slice(iv);
        Ok(Self {
            suite,
            key: provider.aead_key(suite.aead(), key)?,
            iv: fixed,
        })
    }

    /// Bytes a protected record adds to its plaintext.
    pub fn overhead(&self) -> usize {
        self.suite.aead().explicit_nonce_len() + TAG_LEN
    }

    fn nonce(&self, epoch_sequence: u64, explicit: Option<&[u8]>) -> [u8; NONCE_LEN] {
        let mut nonce = [0u8; NONCE_LEN];
        match explicit {
            // GCM: fixed IV (4) ‖ explicit nonce (8).
            Some(explicit) => {
                nonce[..4].copy_from_slice(&self.iv[..4]);
                nonce[4..].copy_from_slice(explicit);
            }
            // ChaCha20-Poly1305: IV XOR left-padded 64-bit sequence number.
            None => {
                nonce.copy_from_slice(&self.iv);
                for (n, s) in nonce[4..].iter_mut().zip(epoch_sequence.to_be_bytes()) {
                    *n ^= s;
                }
            }
        }
        nonce
    }

    fn aad(header: &RecordHeader, plaintext_len: usize) -> [u8; 13] {
        let mut aad = [0u8; 13];
        aad[..8].copy_from_slice(&header.epoch_sequence().to_be_bytes());
        aad[8] = header.content_type.to_byte();
        aad[9..11].copy_from_slice(&header.version.to_be_bytes());
        aad[11..].copy_from_slice(&(plaintext_len.min(0xffff) as u16).to_be_bytes());
        aad
    }

    /// Appends a protected record carrying the concatenation of `plaintext` to `out` (a
    /// handshake fragment goes as its header and a slice of the message body, never copied
    /// into a buffer of its own first).
    pub fn seal(
        &self,
        header: &RecordHeader,
        plaintext: &[&[u8]],
        out: &mut Vec<u8>,
    ) -> Result<(), CryptoError> {
        let plaintext_len = plaintext.iter().map(|p| p.len()).sum::<usize>();
        let explicit_len = self.suite.aead().explicit_nonce_len();
        let explicit = header.epoch_sequence().to_be_bytes();
        let explicit = (explicit_len > 0).then_some(&explicit[..]);
        let nonce = self.nonce(header.epoch_sequence(), explicit);
        let aad = Self::aad(header, plaintext_len);
        out.reserve(HEADER_LEN + explicit_len + plaintext_len + TAG_LEN);
        header.encode(explicit_len + plaintext_len + TAG_LEN, out);
        if let Some(explicit) = explicit {
            out.extend_from_slice(explicit);
        }
        let start = out.len();
        plaintext.iter().for_each(|p| out.extend_from_slice(p));
        match self.key.seal_detached(&nonce, &aad, &mut out[start..]) {
            Ok(tag) => {
                out.extend_from_slice(&tag);
                Ok(())
            }
            Err(e) => {
                // Never leave plaintext behind in the datagram.
                out.truncate(start - explicit_len - HEADER_LEN);
                Err(e)
            }
        }
    }

    /// Authenticates and decrypts a protected record into `buf` (its previous contents are
    /// dropped; its capacity is reused).
    pub fn open(&self, record: &RecordView<'_>, buf: &mut Vec<u8>) -> Result<(), CryptoError> {
        let explicit_len = self.suite.aead().explicit_nonce_len();
        if record.fragment.len() < explicit_len + TAG_LEN {
            return Err(CryptoError::AeadOpenFailed);
        }
        let (explicit, body) = record.fragment.split_at(explicit_len);
        let nonce = self.nonce(
            record.header.epoch_sequence(),
            (explicit_len > 0).then_some(explicit),
        );
        let aad = Self::aad(&record.header, body.len() - TAG_LEN);
        buf.clear();
        buf.extend_from_slice(body);
        let opened = self.key.open_in_place(&nonce, &aad, buf);
        if opened.is_err() || buf.len() > MAX_PLAINTEXT_LEN {
            // Nothing unauthenticated is left behind.
            buf.clear();
            return Err(CryptoError::AeadOpenFailed);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::crypto::providers;

    fn header(content_type: ContentType, epoch: u16, sequence: u64) -> RecordHeader {
        RecordHeader {
            content_type,
            version: DTLS_1_2,
            epoch,
            sequence,
        }
    }

    #[test]
    fn parses_several_records_per_datagram() {
        let mut dgram = Vec::new();
        header(ContentType::Handshake, 0, 1).encode(2, &mut dgram);
        dgram.extend_from_slice(&[1, 2]);
        header(ContentType::Alert, 1, 0x0102_0304_0506).encode(0, &mut dgram);
        let recs: Vec<_> = records(&dgram).collect();
        assert_eq!(recs.len(), 2);
        let first = recs[0].unwrap();
        assert_eq!(first.fragment, &[1, 2]);
        let second = recs[1].unwrap();
        assert_eq!(second.header.sequence, 0x0102_0304_0506);
        assert_eq!(second.header.epoch_sequence(), 0x0001_0102_0304_0506);
    }

    #[test]
    fn rejects_bad_headers() {
        assert_eq!(
            RecordView::parse(&[99; 13]).unwrap_err(),
            DecodeError::UnknownContentType(99)
        );
        let mut bad_version = Vec::new();
        header(ContentType::Handshake, 0, 0).encode(0, &mut bad_version);
        bad_version[1..3].copy_from_slice(&0x0303u16.to_be_bytes());
        assert_eq!(
            RecordView::parse(&bad_version).unwrap_err(),
            DecodeError::UnsupportedVersion(0x0303)
        );
        let mut short = Vec::new();
        header(ContentType::Handshake, 0, 0).encode(5, &mut short);
        assert_eq!(
            RecordView::parse(&short).unwrap_err(),
            DecodeError::Truncated
        );
    }

    #[test]
    fn seal_open_round_trip_and_tamper_detection() {
        for p in providers() {
            for suite in CipherSuite::ALL {
                let aead = suite.aead();
                let key = vec![7u8; aead.key_len()];
                let iv = vec![9u8; aead.fixed_iv_len()];
                let prot = Protection::new(p, suite, &key, &iv).unwrap();
                let h = header(ContentType::ApplicationData, 1, 42);
                let mut out = Vec::new();
                prot.seal(&h, &[b"hel", b"lo"], &mut out).unwrap();
                assert_eq!(out.len(), HEADER_LEN + 5 + prot.overhead());
                let (view, rest) = RecordView::parse(&out).unwrap();
                assert!(rest.is_empty());
                let mut plain = vec![9; 3];
                prot.open(&view, &mut plain).unwrap();
                assert_eq!(plain, b"hello");
                for i in HEADER_LEN..out.len() {
                    let mut bad = out.clone();
                    bad[i] ^= 1;
                    let (view, _) = RecordView::parse(&bad).unwrap();
                    assert!(
                        prot.open(&view, &mut plain).is_err(),
                        "{} {suite:?} byte {i}",
                        p.name()
                    );
                    assert!(plain.is_empty());
                }
                // The sequence number is authenticated.
                let mut bad = out.clone();
                bad[10] ^= 1;
                let (view, _) = RecordView::parse(&bad).unwrap();
                assert!(prot.open(&view, &mut plain).is_err());
            }
        }
    }

    proptest! {
        #[test]
        fn record_header_round_trips(epoch in any::<u16>(), seq in 0u64..(1 << 48), body in proptest::collection::vec(any::<u8>(), 0..64)) {
            let header = RecordHeader { content_type: ContentType::ApplicationData, version: DTLS_1_2, epoch, sequence: seq };
            let mut out = Vec::new();
            header.encode(body.len(), &mut out);
            out.extend_from_slice(&body);
            let (view, rest) = RecordView::parse(&out).unwrap();
            prop_assert!(rest.is_empty());
            prop_assert_eq!(view.header, header);
            prop_assert_eq!(view.fragment, &body[..]);
        }
    }
}
