//! DTLS 1.3 epochs: the traffic keys of one direction of one epoch, records sealed and opened
//! under them, and the read epochs a receiver keeps, each with its own replay window
//! (RFC 9147 §4, §4.2.1–§4.2.3, §4.5.1, §4.5.3; RFC 8446 §5.2–§5.4, §7.3).
//!
//! Sending a record (RFC 9147 §4, §4.2.3):
//!
//! ```text
//! inner   = content ‖ content type ‖ zeros          (DTLSInnerPlaintext, no padding here)
//! nonce   = iv XOR 64-bit sequence number           (RFC 8446 §5.3; the epoch is not in it)
//! sealed  = AEAD(key, nonce, aad = header with the sequence number in clear, inner)
//! header.sequence_number XOR= Mask(sn_key, sealed[0..16])
//! ```
//!
//! Receiving reverses it: the epoch comes from the header's two bits (the newest read epoch
//! with those bits), the sequence number from its decrypted low bits and the epoch's highest
//! authenticated number (§4.2.2), then the replay window of that epoch is asked, the record
//! opened, and only then the window moves. Epoch 0 has no keys and no window (records.rs and
//! docs/dtls.md, "Clear text during the handshake"): DTLS 1.3 uses epochs 0 (ClientHello,
//! ServerHello, HelloRetryRequest), 2 (the rest of the handshake) and 3 onwards (application
//! data; each KeyUpdate adds one). Epoch 1 is early data, which WebRTC never sends.

use std::collections::VecDeque;

use crate::crypto::{
    AeadAlgorithm, AeadKey, Digest, NONCE_LEN, RecordNumberKey, SAMPLE_LEN, TAG_LEN,
};
use crate::error::CryptoError;
use crate::key_schedule::{Hkdf, Prk};
use crate::record::{ContentType, MAX_PLAINTEXT_LEN, MAX_SEQUENCE};
use crate::replay::ReplayWindow;
use crate::unified_header::{self, CiphertextView, HEADER_LEN};

/// The epoch of the encrypted handshake messages (RFC 9147 §6.1).
pub const EPOCH_HANDSHAKE: u64 = 2;
/// The first epoch of application data (RFC 9147 §6.1).
pub const EPOCH_APPLICATION: u64 = 3;
/// Read epochs kept at once: the handshake epoch while its retransmissions can still arrive,
/// the application epoch, and the one a KeyUpdate moves to. Up to four consecutive epochs
/// have distinct low bits, so a header's two bits name one of them.
pub const MAX_READ_EPOCHS: usize = 3;
/// Records of a read epoch that may fail authentication before it refuses to try more
/// (RFC 9147 §4.5.3: 2^36 for AES-GCM and ChaCha20-Poly1305).
pub const INTEGRITY_LIMIT: u64 = 1 << 36;
/// What a protected record adds to its content: our header, the content type and the tag.
pub const RECORD_OVERHEAD: usize = HEADER_LEN + 1 + TAG_LEN;

/// A record number (RFC 9147 §4): the epoch and the sequence number within it; what ACKs list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecordNumber {
    /// The epoch.
    pub epoch: u64,
    /// The sequence number within the epoch (at most 2^48 - 1).
    pub sequence: u64,
}

/// Why a protected record was dropped. Each is counted by the caller; none is fatal, since
/// an attacker can send any of them (RFC 9147 §4.5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RecordDropped {
    /// No read epoch has these low bits.
    #[error("no read keys for an epoch with low bits {0}")]
    UnknownEpoch(u8),
    /// The encrypted record is shorter than the 16-byte sample (and than any AEAD output).
    #[error("encrypted record of {0} bytes is too short")]
    TooShort(usize),
    /// The replay window of the epoch already saw this number, or it is older than the window.
    #[error("record {0:?} replayed or too old")]
    Replayed(RecordNumber),
    /// The epoch met its integrity limit; it opens nothing more.
    #[error("epoch {0} reached its integrity limit")]
    IntegrityLimitReached(u64),
    /// The AEAD did not authenticate the record.
    #[error("record {0:?} failed authentication")]
    FailedAuthentication(RecordNumber),
    /// The inner plaintext is all zeros: no content type (RFC 8446 §5.4).
    #[error("record {0:?} has no content type")]
    MissingContentType(RecordNumber),
    /// The inner content type is not one DTLS 1.3 defines.
    #[error("unknown inner content type {0}")]
    UnknownContentType(u8),
    /// The content is longer than 2^14 bytes (RFC 8446 §5.4).
    #[error("record content of {0} bytes exceeds 2^14")]
    TooLong(usize),
    /// The provider could not compute the record-number mask.
    #[error("crypto: {0}")]
    Crypto(#[from] CryptoError),
}

/// Why a record could not be sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The epoch has sent 2^48 records (RFC 9147 §4.2.1: a KeyUpdate must come first).
    #[error("record sequence numbers of the epoch exhausted")]
    SequenceNumberExhausted,
    /// The content does not fit one record.
    #[error("record content of {0} bytes exceeds 2^14")]
    PlaintextTooLong(usize),
    /// The provider refused.
    #[error("crypto: {0}")]
    Crypto(#[from] CryptoError),
}

/// The keys of one direction of one epoch (RFC 8446 §7.3, RFC 9147 §4.2.3).
pub struct EpochKeys {
    key: Box<dyn AeadKey>,
    iv: [u8; NONCE_LEN],
    sn: Box<dyn RecordNumberKey>,
}

impl EpochKeys {
    /// Derives `key`, `iv` and `sn_key` from a traffic secret, keyed into the HMAC once.
    pub fn derive(hkdf: &Hkdf, aead: AeadAlgorithm, secret: &Digest) -> Result<Self, CryptoError> {
        Self::from_prk(&hkdf.prk(secret), aead)
    }

    /// Derives `key`, `iv` and `sn_key` from a traffic secret already keyed into the HMAC.
    pub fn from_prk(prk: &Prk, aead: AeadAlgorithm) -> Result<Self, CryptoError> {
        let provider = prk.hkdf().provider();
        let mut key = [0u8; 32];
        let key = &mut key[..aead.key_len()];
        let mut iv = [0u8; NONCE_LEN];
        prk.expand_label(b"iv", &[], &mut iv);
        let mut sn_key = [0u8; 32];
        let sn_key = &mut sn_key[..aead.key_len()];
        prk.expand_label(b"sn", &[], sn_key);
        prk.expand_label(b"key", &[], key);
        Ok(Self {
            key: provider.aead_key(aead, key)?,
            iv,
            sn: provider.record_number_key(aead, sn_key)?,
        })
    }

    /// The per-record nonce: the IV XOR the left-padded sequence number (RFC 8446 §5.3).
    fn nonce(&self, sequence: u64) -> [u8; NONCE_LEN] {
        let mut nonce = self.iv;
        for (n, s) in nonce[NONCE_LEN - 8..]
            .iter_mut()
            .zip(sequence.to_be_bytes())
        {
            *n ^= s;
        }
        nonce
    }

    /// The record-number mask for an encrypted record (at least [`SAMPLE_LEN`] bytes).
    fn mask(&self, encrypted_record: &[u8]) -> Result<[u8; 2], RecordDropped> {
        let sample: &[u8; SAMPLE_LEN] = encrypted_record
            .get(..SAMPLE_LEN)
            .and_then(|s| s.try_into().ok())
            .ok_or(RecordDropped::TooShort(encrypted_record.len()))?;
        Ok(self.sn.mask(sample)?)
    }
}

impl std::fmt::Debug for EpochKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EpochKeys { .. }")
    }
}

/// The epoch we write in, with its next sequence number.
#[derive(Debug)]
pub struct WriteEpoch {
    epoch: u64,
    next_sequence: u64,
    keys: EpochKeys,
}

impl WriteEpoch {
    /// Starts writing `epoch` from sequence number 0.
    pub fn new(epoch: u64, keys: EpochKeys) -> Self {
        Self {
            epoch,
            next_sequence: 0,
            keys,
        }
    }

    /// Appends one protected record carrying the concatenation of `content` to `out` and
    /// returns its number. On failure `out` is left as it was.
    pub fn seal(
        &mut self,
        content_type: ContentType,
        content: &[&[u8]],
        out: &mut Vec<u8>,
    ) -> Result<RecordNumber, SealError> {
        let sequence = self.next_sequence;
        if sequence > MAX_SEQUENCE {
            return Err(SealError::SequenceNumberExhausted);
        }
        let content_len: usize = content.iter().map(|c| c.len()).sum();
        if content_len > MAX_PLAINTEXT_LEN {
            return Err(SealError::PlaintextTooLong(content_len));
        }
        let start = out.len();
        out.reserve(RECORD_OVERHEAD + content_len);
        unified_header::encode_header(self.epoch, sequence, content_len + 1 + TAG_LEN, out);
        let mut aad = [0u8; HEADER_LEN];
        aad.copy_from_slice(&out[start..]);
        let body = start + HEADER_LEN;
        content.iter().for_each(|c| out.extend_from_slice(c));
        out.push(content_type.to_byte());
        let nonce = self.keys.nonce(sequence);
        let sealed = self
            .keys
            .key
            .seal_detached(&nonce, &aad, &mut out[body..])
            .map_err(SealError::from)
            .and_then(|tag| {
                out.extend_from_slice(&tag);
                self.keys
                    .mask(&out[body..])
                    .map_err(|e: RecordDropped| match e {
                        RecordDropped::Crypto(c) => SealError::Crypto(c),
                        // The record holds a 16-byte tag at least: the sample is always there.
                        _ => SealError::Crypto(CryptoError::RecordNumberMaskFailed),
                    })
            });
        match sealed {
            Ok(mask) => {
                out[start + 1] ^= mask[0];
                out[start + 2] ^= mask[1];
                self.next_sequence += 1;
                Ok(RecordNumber {
                    epoch: self.epoch,
                    sequence,
                })
            }
            Err(e) => {
                // Never leave plaintext behind in the datagram.
                out.truncate(start);
                Err(e)
            }
        }
    }
}

/// A protected record opened: its number and inner content type; the content is in the
/// caller's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opened {
    /// The record number, as ACKs list it.
    pub number: RecordNumber,
    /// The inner content type.
    pub content_type: ContentType,
}

/// One read epoch: its keys, replay window and failed decryptions.
#[derive(Debug)]
struct ReadEpoch {
    epoch: u64,
    keys: EpochKeys,
    replay: ReplayWindow,
    failed_authentications: u64,
}

/// The epochs we can read, at most [`MAX_READ_EPOCHS`], oldest first.
#[derive(Debug, Default)]
pub struct ReadEpochs {
    epochs: VecDeque<ReadEpoch>,
}

impl ReadEpochs {
    /// No read keys yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Installs the read keys of `epoch` with a fresh replay window. Installing an epoch
    /// again replaces it; beyond [`MAX_READ_EPOCHS`] the oldest is forgotten.
    pub fn install(&mut self, epoch: u64, keys: EpochKeys) {
        self.epochs.retain(|e| e.epoch != epoch);
        if self.epochs.len() >= MAX_READ_EPOCHS {
            self.epochs.pop_front();
        }
        let at = self.epochs.partition_point(|e| e.epoch < epoch);
        self.epochs.insert(
            at,
            ReadEpoch {
                epoch,
                keys,
                replay: ReplayWindow::new(),
                failed_authentications: 0,
            },
        );
    }

    /// Decrypts the record number, checks the replay window, authenticates and decrypts into
    /// `plaintext` (its capacity reused; cleared on failure) and strips the padding.
    pub fn open(
        &mut self,
        record: &CiphertextView<'_>,
        plaintext: &mut Vec<u8>,
    ) -> Result<Opened, RecordDropped> {
        plaintext.clear();
        let bits = record.epoch_bits();
        // The newest epoch with these bits: the current one, else the latest before it.
        let read = self
            .epochs
            .iter_mut()
            .rev()
            .find(|e| e.epoch & 3 == u64::from(bits))
            .ok_or(RecordDropped::UnknownEpoch(bits))?;
        let mask = read.keys.mask(record.encrypted_record)?;
        let encrypted = record.sequence_bytes();
        let mut low = 0u64;
        for (b, m) in encrypted.iter().zip(mask) {
            low = (low << 8) | u64::from(b ^ m);
        }
        let expected = read.replay.highest().map_or(0, |h| h + 1);
        let sequence = unified_header::reconstruct_sequence(
            low,
            8 * encrypted.len() as u32,
            expected,
            MAX_SEQUENCE,
        );
        let number = RecordNumber {
            epoch: read.epoch,
            sequence,
        };
        if !read.replay.is_fresh(sequence) {
            return Err(RecordDropped::Replayed(number));
        }
        if read.failed_authentications >= INTEGRITY_LIMIT {
            return Err(RecordDropped::IntegrityLimitReached(read.epoch));
        }
        // The additional data is the header as sent, with the sequence number in clear.
        let mut aad = [0u8; HEADER_LEN];
        let aad = &mut aad[..record.header.len().min(HEADER_LEN)];
        aad.copy_from_slice(&record.header[..aad.len()]);
        for (a, m) in aad[1..1 + encrypted.len()].iter_mut().zip(mask) {
            *a ^= m;
        }
        plaintext.extend_from_slice(record.encrypted_record);
        let nonce = read.keys.nonce(sequence);
        if read.keys.key.open_in_place(&nonce, aad, plaintext).is_err() {
            plaintext.clear();
            read.failed_authentications += 1;
            return Err(RecordDropped::FailedAuthentication(number));
        }
        // Authentic: a replay of it is refused from now on, whatever its content.
        read.replay.mark(sequence);
        let Some(type_at) = plaintext.iter().rposition(|&b| b != 0) else {
            plaintext.clear();
            return Err(RecordDropped::MissingContentType(number));
        };
        let type_byte = plaintext[type_at];
        plaintext.truncate(type_at);
        let content_type = match ContentType::from_inner_byte(type_byte) {
            Some(t) if plaintext.len() <= MAX_PLAINTEXT_LEN => t,
            Some(_) => {
                let len = plaintext.len();
                plaintext.clear();
                return Err(RecordDropped::TooLong(len));
            }
            None => {
                plaintext.clear();
                return Err(RecordDropped::UnknownContentType(type_byte));
            }
        };
        Ok(Opened {
            number,
            content_type,
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::crypto::{CryptoProvider, HashAlgorithm, providers};
    use crate::unified_header::{WireRecord, wire_records};

    const AEADS: [AeadAlgorithm; 3] = [
        AeadAlgorithm::Aes128Gcm,
        AeadAlgorithm::Aes256Gcm,
        AeadAlgorithm::ChaCha20Poly1305,
    ];

    fn keys(p: &'static dyn CryptoProvider, aead: AeadAlgorithm, secret: u8) -> EpochKeys {
        let hkdf = Hkdf::dtls13(p, HashAlgorithm::Sha256);
        EpochKeys::derive(&hkdf, aead, &Digest::new(&[secret; 32])).unwrap()
    }

    fn ciphertext(datagram: &[u8]) -> CiphertextView<'_> {
        match wire_records(datagram).next() {
            Some(Ok(WireRecord::Ciphertext(c))) => c,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn seal_open_round_trip_with_encrypted_record_numbers() {
        for p in providers() {
            for aead in AEADS {
                let mut writer = WriteEpoch::new(EPOCH_HANDSHAKE, keys(p, aead, 1));
                let mut reader = ReadEpochs::new();
                reader.install(EPOCH_HANDSHAKE, keys(p, aead, 1));
                let mut plain = Vec::new();
                for sequence in 0..300u64 {
                    let mut out = vec![0xee];
                    let content = sequence.to_be_bytes();
                    let number = writer
                        .seal(ContentType::Handshake, &[b"ab", &content], &mut out)
                        .unwrap();
                    assert_eq!(number, RecordNumber { epoch: 2, sequence });
                    assert_eq!(out.len(), 1 + RECORD_OVERHEAD + 10);
                    assert_eq!(out[1] & 0xe3, 0x22, "fixed bits and epoch bits 2");
                    let opened = reader.open(&ciphertext(&out[1..]), &mut plain).unwrap();
                    assert_eq!(opened.number, number);
                    assert_eq!(opened.content_type, ContentType::Handshake);
                    assert_eq!(&plain[..2], b"ab");
                    assert_eq!(&plain[2..], &content);
                }
            }
        }
    }

    #[test]
    fn record_numbers_are_encrypted_on_the_wire() {
        let p = providers()[0];
        let mut writer = WriteEpoch::new(EPOCH_APPLICATION, keys(p, AeadAlgorithm::Aes128Gcm, 2));
        let clear_numbers = (0..64)
            .filter(|_| {
                let mut out = Vec::new();
                let n = writer
                    .seal(ContentType::ApplicationData, &[b"x"], &mut out)
                    .unwrap();
                out[1..3] == (n.sequence as u16).to_be_bytes()
            })
            .count();
        // A chance hit is 2^-16 per record.
        assert!(clear_numbers <= 1, "{clear_numbers} of 64 sent in clear");
    }

    #[test]
    fn tampering_anywhere_fails_and_leaves_no_plaintext() {
        for p in providers() {
            for aead in AEADS {
                let mut writer = WriteEpoch::new(EPOCH_APPLICATION, keys(p, aead, 3));
                let mut out = Vec::new();
                writer
                    .seal(ContentType::ApplicationData, &[b"hello"], &mut out)
                    .unwrap();
                for i in 0..out.len() {
                    if i == 0 {
                        continue; // another epoch's bits or header form: tested below
                    }
                    let mut bad = out.clone();
                    bad[i] ^= 0x01;
                    let mut reader = ReadEpochs::new();
                    reader.install(EPOCH_APPLICATION, keys(p, aead, 3));
                    let mut plain = vec![1, 2, 3];
                    let Ok((view, _)) = CiphertextView::parse(&bad) else {
                        continue; // the length byte now frames nothing
                    };
                    let err = reader.open(&view, &mut plain).unwrap_err();
                    assert!(
                        matches!(
                            err,
                            RecordDropped::FailedAuthentication(_) | RecordDropped::TooShort(_)
                        ),
                        "{} {aead:?} byte {i}: {err:?}",
                        p.name()
                    );
                    assert!(plain.is_empty());
                }
                // Wrong keys: refused.
                let mut other = ReadEpochs::new();
                other.install(EPOCH_APPLICATION, keys(p, aead, 4));
                let mut plain = Vec::new();
                assert!(matches!(
                    other.open(&ciphertext(&out), &mut plain),
                    Err(RecordDropped::FailedAuthentication(_))
                ));
            }
        }
    }

    #[test]
    fn replays_are_refused_per_epoch_and_forgeries_do_not_move_the_window() {
        let p = providers()[0];
        let aead = AeadAlgorithm::Aes128Gcm;
        let mut hs = WriteEpoch::new(EPOCH_HANDSHAKE, keys(p, aead, 5));
        let mut app = WriteEpoch::new(EPOCH_APPLICATION, keys(p, aead, 6));
        let mut reader = ReadEpochs::new();
        reader.install(EPOCH_HANDSHAKE, keys(p, aead, 5));
        reader.install(EPOCH_APPLICATION, keys(p, aead, 6));
        let mut plain = Vec::new();
        let seal = |w: &mut WriteEpoch| {
            let mut out = Vec::new();
            w.seal(ContentType::Handshake, &[b"m"], &mut out).unwrap();
            out
        };
        let hs0 = seal(&mut hs);
        let app0 = seal(&mut app);
        // Both epochs start at sequence 0, each with its own window.
        assert_eq!(
            reader
                .open(&ciphertext(&hs0), &mut plain)
                .unwrap()
                .number
                .epoch,
            2
        );
        assert_eq!(
            reader
                .open(&ciphertext(&app0), &mut plain)
                .unwrap()
                .number
                .epoch,
            3
        );
        let replay = RecordNumber {
            epoch: 2,
            sequence: 0,
        };
        assert_eq!(
            reader.open(&ciphertext(&hs0), &mut plain),
            Err(RecordDropped::Replayed(replay))
        );
        // A forged record that would claim a far sequence number does not authenticate and
        // leaves the window where it was: the genuine next record still opens.
        let hs1 = seal(&mut hs);
        let mut forged = hs1.clone();
        forged[HEADER_LEN] ^= 0xff;
        assert!(reader.open(&ciphertext(&forged), &mut plain).is_err());
        assert_eq!(
            reader
                .open(&ciphertext(&hs1), &mut plain)
                .unwrap()
                .number
                .sequence,
            1
        );
        // Out of order within the window is fine.
        let later: Vec<_> = (0..5).map(|_| seal(&mut app)).collect();
        for i in [4, 0, 3, 1, 2] {
            let seq = reader
                .open(&ciphertext(&later[i]), &mut plain)
                .unwrap()
                .number
                .sequence;
            assert_eq!(seq, i as u64 + 1);
        }
    }

    #[test]
    fn epochs_are_found_by_their_low_bits_and_bounded() {
        let p = providers()[0];
        let aead = AeadAlgorithm::ChaCha20Poly1305;
        let mut reader = ReadEpochs::new();
        for epoch in 2..=5 {
            reader.install(epoch, keys(p, aead, epoch as u8));
        }
        let held: Vec<u64> = reader.epochs.iter().map(|e| e.epoch).collect();
        assert_eq!(held, [3, 4, 5], "the oldest is forgotten beyond the bound");
        let mut plain = Vec::new();
        // Epoch 4's low bits are 0, epoch 5's are 1.
        for epoch in [4u64, 5, 3] {
            let mut w = WriteEpoch::new(epoch, keys(p, aead, epoch as u8));
            let mut out = Vec::new();
            w.seal(ContentType::ApplicationData, &[b"k"], &mut out)
                .unwrap();
            assert_eq!(
                reader
                    .open(&ciphertext(&out), &mut plain)
                    .unwrap()
                    .number
                    .epoch,
                epoch
            );
        }
        // Epoch 2's bits now name nothing.
        let mut w = WriteEpoch::new(2, keys(p, aead, 2));
        let mut out = Vec::new();
        w.seal(ContentType::ApplicationData, &[b"k"], &mut out)
            .unwrap();
        assert_eq!(
            reader.open(&ciphertext(&out), &mut plain),
            Err(RecordDropped::UnknownEpoch(2))
        );
    }

    #[test]
    fn inner_plaintext_rules() {
        // Build records by hand with the writer's keys to produce what the writer never
        // sends: padding, no content type, an unknown type, an overlong content.
        let p = providers()[0];
        let aead = AeadAlgorithm::Aes128Gcm;
        let raw = |inner: &[u8]| {
            let k = keys(p, aead, 7);
            let mut out = Vec::new();
            unified_header::encode_header(3, 0, inner.len() + TAG_LEN, &mut out);
            let aad: [u8; HEADER_LEN] = out[..].try_into().unwrap();
            out.extend_from_slice(inner);
            let tag = k
                .key
                .seal_detached(&k.nonce(0), &aad, &mut out[HEADER_LEN..])
                .unwrap();
            out.extend_from_slice(&tag);
            let mask = k.mask(&out[HEADER_LEN..]).unwrap();
            out[1] ^= mask[0];
            out[2] ^= mask[1];
            out
        };
        let open = |record: Vec<u8>| {
            let mut reader = ReadEpochs::new();
            reader.install(3, keys(p, aead, 7));
            let mut plain = Vec::new();
            reader
                .open(&ciphertext(&record), &mut plain)
                .map(|o| (o.content_type, plain))
        };
        let n = RecordNumber {
            epoch: 3,
            sequence: 0,
        };
        assert_eq!(
            open(raw(b"hi\x17\0\0\0\0")),
            Ok((ContentType::ApplicationData, b"hi".to_vec()))
        );
        assert_eq!(open(raw(b"\x1a")), Ok((ContentType::Ack, Vec::new())));
        assert_eq!(
            open(raw(&[0; 8])),
            Err(RecordDropped::MissingContentType(n))
        );
        assert_eq!(
            open(raw(b"x\x14")),
            Err(RecordDropped::UnknownContentType(20))
        );
        let mut long = vec![1u8; MAX_PLAINTEXT_LEN + 1];
        long.push(23);
        assert_eq!(
            open(raw(&long)),
            Err(RecordDropped::TooLong(MAX_PLAINTEXT_LEN + 1))
        );
        // Shorter than the sample: dropped before any crypto.
        let mut short = Vec::new();
        unified_header::encode_header(3, 0, 15, &mut short);
        short.extend_from_slice(&[0; 15]);
        assert_eq!(open(short), Err(RecordDropped::TooShort(15)));
    }

    #[test]
    fn sealing_refuses_what_cannot_be_sent() {
        let p = providers()[0];
        let mut w = WriteEpoch::new(3, keys(p, AeadAlgorithm::Aes128Gcm, 8));
        let mut out = vec![7];
        let big = vec![0u8; MAX_PLAINTEXT_LEN + 1];
        assert_eq!(
            w.seal(ContentType::ApplicationData, &[&big], &mut out),
            Err(SealError::PlaintextTooLong(MAX_PLAINTEXT_LEN + 1))
        );
        w.next_sequence = MAX_SEQUENCE;
        assert!(
            w.seal(ContentType::ApplicationData, &[b"last"], &mut out)
                .is_ok()
        );
        assert_eq!(
            w.seal(ContentType::ApplicationData, &[b"one more"], &mut out),
            Err(SealError::SequenceNumberExhausted)
        );
        assert_eq!(out.len(), 1 + RECORD_OVERHEAD + 4);
    }

    #[test]
    fn the_integrity_limit_stops_an_epoch() {
        let p = providers()[0];
        let aead = AeadAlgorithm::Aes128Gcm;
        let mut reader = ReadEpochs::new();
        reader.install(3, keys(p, aead, 9));
        reader.epochs[0].failed_authentications = INTEGRITY_LIMIT;
        let mut w = WriteEpoch::new(3, keys(p, aead, 9));
        let mut out = Vec::new();
        w.seal(ContentType::ApplicationData, &[b"late"], &mut out)
            .unwrap();
        let mut plain = Vec::new();
        assert_eq!(
            reader.open(&ciphertext(&out), &mut plain),
            Err(RecordDropped::IntegrityLimitReached(3))
        );
    }

    proptest! {
        #[test]
        fn any_record_bytes_are_dropped_or_opened_never_a_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..96),
        ) {
            let p = providers()[0];
            let mut reader = ReadEpochs::new();
            for epoch in 2..=4 {
                reader.install(epoch, keys(p, AeadAlgorithm::Aes128Gcm, 1));
            }
            let mut plain = Vec::new();
            for record in wire_records(&bytes) {
                if let Ok(WireRecord::Ciphertext(c)) = record {
                    // Random bytes do not authenticate.
                    prop_assert!(reader.open(&c, &mut plain).is_err());
                    prop_assert!(plain.is_empty());
                }
            }
        }
    }
}
