//! The DTLS 1.3 record header (RFC 9147 §4) and how a receiver rebuilds a record number from
//! its low bits (§4.2.2).
//!
//! ```text
//!  0 1 2 3 4 5 6 7
//! +-+-+-+-+-+-+-+-+
//! |0|0|1|C|S|L|E E|   C: connection ID present, S: 16-bit (1) or 8-bit (0) sequence number,
//! +-+-+-+-+-+-+-+-+   L: length present, E: low two bits of the epoch
//! | Connection ID |   (only if negotiated; we never negotiate one)
//! | 8 or 16 bit   |
//! |Sequence Number|   (encrypted, §4.2.3)
//! | 16 bit Length |   (if L; otherwise the record runs to the end of the datagram)
//! +-+-+-+-+-+-+-+-+
//! ```
//!
//! Epoch 0 keeps the 13-byte DTLSPlaintext header of DTLS 1.2 ([`RecordView`]); protected
//! records use this one. Both can share a datagram, told apart by the first byte: content
//! types are 20–26, a unified header starts 001xxxxx (32–63, RFC 9147 §4.1).
//!
//! We always write S=1 and L=1: a 16-bit number survives a reordering of up to 2^15 records
//! (an 8-bit one only 128) and the length lets records be packed in one datagram. That is a
//! 5-byte header.

use crate::record::{MAX_PLAINTEXT_LEN, RecordView};
use crate::wire::DecodeError;
use crate::wire::Reader;

/// Length of the header we write (flags, 16-bit sequence number, length).
pub const HEADER_LEN: usize = 5;
/// Largest encrypted_record (RFC 9147 §4: 2^14 + 256).
pub const MAX_ENCRYPTED_RECORD_LEN: usize = MAX_PLAINTEXT_LEN + 256;

/// The three fixed bits `001` of a unified header's first byte.
const FIXED_BITS: u8 = 0b0010_0000;
const FIXED_MASK: u8 = 0b1110_0000;
const CID_BIT: u8 = 0b0001_0000;
const SEQ16_BIT: u8 = 0b0000_1000;
const LENGTH_BIT: u8 = 0b0000_0100;
const EPOCH_BITS: u8 = 0b0000_0011;

/// True when `first` starts a unified header.
pub fn is_unified_header(first: u8) -> bool {
    first & FIXED_MASK == FIXED_BITS
}

/// A protected DTLS 1.3 record borrowed from a datagram, its sequence number still encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CiphertextView<'a> {
    /// The header bytes as received.
    pub header: &'a [u8],
    /// The AEAD output: ciphertext of the inner plaintext, then the tag.
    pub encrypted_record: &'a [u8],
}

impl<'a> CiphertextView<'a> {
    /// Parses the first record of `buf` and returns it with the rest of the datagram.
    pub fn parse(buf: &'a [u8]) -> Result<(Self, &'a [u8]), DecodeError> {
        let mut r = Reader::new(buf);
        let flags = r.u8()?;
        if !is_unified_header(flags) {
            return Err(DecodeError::UnknownContentType(flags));
        }
        if flags & CID_BIT != 0 {
            // Without a negotiated connection ID its length is unknown: nothing after this
            // byte can be framed.
            return Err(DecodeError::UnexpectedConnectionId);
        }
        r.bytes(if flags & SEQ16_BIT != 0 { 2 } else { 1 })?;
        let encrypted_record = if flags & LENGTH_BIT != 0 {
            r.vec16()?
        } else {
            r.rest()
        };
        if encrypted_record.len() > MAX_ENCRYPTED_RECORD_LEN {
            return Err(DecodeError::RecordTooLong(encrypted_record.len()));
        }
        let header_len = buf.len() - r.remaining() - encrypted_record.len();
        let view = Self {
            header: &buf[..header_len],
            encrypted_record,
        };
        Ok((view, r.rest()))
    }

    /// The low two bits of the epoch.
    pub fn epoch_bits(&self) -> u8 {
        self.header[0] & EPOCH_BITS
    }

    /// The encrypted sequence number: its one or two bytes.
    pub fn sequence_bytes(&self) -> &'a [u8] {
        let len = if self.header[0] & SEQ16_BIT != 0 {
            2
        } else {
            1
        };
        &self.header[1..1 + len]
    }
}

/// One record of a DTLS 1.3 datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireRecord<'a> {
    /// An epoch-0 record with the DTLSPlaintext header.
    Plaintext(RecordView<'a>),
    /// A protected record with a unified header.
    Ciphertext(CiphertextView<'a>),
}

/// Iterates over the records of a DTLS 1.3 datagram; stops at the first malformed one (the
/// rest of the datagram cannot be framed).
pub fn wire_records(datagram: &[u8]) -> impl Iterator<Item = Result<WireRecord<'_>, DecodeError>> {
    let mut rest = Some(datagram);
    std::iter::from_fn(move || {
        let buf = rest.take()?;
        let first = *buf.first()?;
        let parsed = if is_unified_header(first) {
            CiphertextView::parse(buf).map(|(r, tail)| (WireRecord::Ciphertext(r), tail))
        } else {
            RecordView::parse(buf).map(|(r, tail)| (WireRecord::Plaintext(r), tail))
        };
        match parsed {
            Ok((record, tail)) => {
                rest = Some(tail);
                Some(Ok(record))
            }
            Err(e) => Some(Err(e)),
        }
    })
}

/// Appends the header we write: S=1, L=1, the epoch's low bits, the low 16 bits of the
/// sequence number (in clear; the caller encrypts them once the record is sealed) and the
/// length of the encrypted record.
pub fn encode_header(epoch: u64, sequence: u64, encrypted_len: usize, out: &mut Vec<u8>) {
    // Both casts keep exactly the low bits the header carries.
    out.push(FIXED_BITS | SEQ16_BIT | LENGTH_BIT | (epoch as u8 & EPOCH_BITS));
    out.extend_from_slice(&(sequence as u16).to_be_bytes());
    out.extend_from_slice(
        &u16::try_from(encrypted_len)
            .unwrap_or(u16::MAX)
            .to_be_bytes(),
    );
}

/// The record number closest to `expected` (one more than the highest authenticated in the
/// epoch) whose low `bits` bits are `low` (RFC 9147 §4.2.2; the algorithm of RFC 9000
/// Appendix A.3), never beyond `max`.
pub fn reconstruct_sequence(low: u64, bits: u32, expected: u64, max: u64) -> u64 {
    let window = 1u64 << bits;
    let half = window / 2;
    let mask = window - 1;
    let candidate = (expected & !mask) | (low & mask);
    if candidate.saturating_add(half) <= expected && candidate.saturating_add(window) <= max {
        candidate + window
    } else if candidate > expected.saturating_add(half) && candidate >= window {
        candidate - window
    } else {
        candidate
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::record::{ContentType, DTLS_1_2, MAX_SEQUENCE, RecordHeader};

    #[test]
    fn parses_the_header_forms() {
        // S=1, L=1, epoch bits 3.
        let mut dgram = Vec::new();
        encode_header(7, 0x1234_5678, 17, &mut dgram);
        assert_eq!(dgram, [0x2f, 0x56, 0x78, 0, 17]);
        dgram.extend_from_slice(&[9; 17]);
        // S=0, L=0, epoch bits 2: one sequence byte, the record runs to the end.
        dgram.extend_from_slice(&[0x22, 0xaa]);
        dgram.extend_from_slice(&[8; 20]);
        let records: Vec<_> = wire_records(&dgram).map(Result::unwrap).collect();
        let [WireRecord::Ciphertext(a), WireRecord::Ciphertext(b)] = records[..] else {
            panic!("{records:?}");
        };
        assert_eq!((a.epoch_bits(), a.sequence_bytes()), (3, &[0x56, 0x78][..]));
        assert_eq!(a.header, &[0x2f, 0x56, 0x78, 0, 17]);
        assert_eq!(a.encrypted_record, &[9; 17]);
        assert_eq!((b.epoch_bits(), b.sequence_bytes()), (2, &[0xaa][..]));
        assert_eq!(b.header, &[0x22, 0xaa]);
        assert_eq!(b.encrypted_record, &[8; 20]);
    }

    #[test]
    fn plaintext_and_ciphertext_records_share_a_datagram() {
        let mut dgram = Vec::new();
        RecordHeader {
            content_type: ContentType::Handshake,
            version: DTLS_1_2,
            epoch: 0,
            sequence: 4,
        }
        .encode(3, &mut dgram);
        dgram.extend_from_slice(&[1, 2, 3]);
        encode_header(2, 0, 16, &mut dgram);
        dgram.extend_from_slice(&[0; 16]);
        let records: Vec<_> = wire_records(&dgram).map(Result::unwrap).collect();
        assert!(matches!(records[0], WireRecord::Plaintext(r) if r.fragment == [1, 2, 3]));
        assert!(matches!(records[1], WireRecord::Ciphertext(c) if c.epoch_bits() == 2));
        assert_eq!(records.len(), 2);
    }

    #[test]
    fn rejects_connection_ids_truncation_and_oversize() {
        assert_eq!(
            CiphertextView::parse(&[0x3c, 0, 0, 0, 0]).unwrap_err(),
            DecodeError::UnexpectedConnectionId
        );
        assert_eq!(
            CiphertextView::parse(&[0x2c, 0, 0, 0, 5, 1]).unwrap_err(),
            DecodeError::Truncated
        );
        assert_eq!(
            CiphertextView::parse(&[0x28, 0]).unwrap_err(),
            DecodeError::Truncated
        );
        let mut big = Vec::new();
        encode_header(2, 0, MAX_ENCRYPTED_RECORD_LEN + 1, &mut big);
        big.resize(HEADER_LEN + MAX_ENCRYPTED_RECORD_LEN + 1, 0);
        assert_eq!(
            CiphertextView::parse(&big).unwrap_err(),
            DecodeError::RecordTooLong(MAX_ENCRYPTED_RECORD_LEN + 1)
        );
        // A malformed record ends the iteration after one error.
        let bad = [0x3c, 1, 2];
        assert_eq!(wire_records(&bad).count(), 1);
    }

    #[test]
    fn reconstruction_picks_the_closest_number() {
        // RFC 9000 Appendix A.3's example: highest 0xa82f30ea, 16 bits 0x9b32.
        assert_eq!(
            reconstruct_sequence(0x9b32, 16, 0xa82f_30eb, MAX_SEQUENCE),
            0xa82f_9b32
        );
        assert_eq!(reconstruct_sequence(5, 8, 0, MAX_SEQUENCE), 5);
        // Just past a wrap of the low bits, and just before one.
        assert_eq!(reconstruct_sequence(0x01, 8, 0x1fe, MAX_SEQUENCE), 0x201);
        assert_eq!(reconstruct_sequence(0xfe, 8, 0x201, MAX_SEQUENCE), 0x1fe);
        // Never below zero, never beyond the largest number.
        assert_eq!(reconstruct_sequence(0xff, 8, 1, MAX_SEQUENCE), 0xff);
        assert_eq!(
            reconstruct_sequence(0x00, 8, MAX_SEQUENCE, MAX_SEQUENCE),
            MAX_SEQUENCE - 0xff
        );
    }

    proptest! {
        #[test]
        fn reconstruction_recovers_numbers_within_half_a_window(
            expected in 0u64..(1 << 40),
            delta in (1 - (1i64 << 15))..=(1i64 << 15),
        ) {
            let actual = expected as i64 + delta;
            prop_assume!(actual >= 0);
            let actual = actual as u64;
            prop_assert_eq!(
                reconstruct_sequence(actual & 0xffff, 16, expected, MAX_SEQUENCE),
                actual
            );
        }

        #[test]
        fn any_bytes_parse_or_fail_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            for record in wire_records(&bytes) {
                if let Ok(WireRecord::Ciphertext(c)) = record {
                    prop_assert!(c.epoch_bits() < 4);
                    prop_assert!(!c.sequence_bytes().is_empty());
                }
            }
        }
    }
}
