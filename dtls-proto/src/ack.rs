//! The ACK message of DTLS 1.3 (RFC 9147 §7): the record numbers of the handshake records a
//! peer received, sent in its own content type (26) inside a protected record.
//!
//! ```text
//! struct { uint64 epoch; uint64 sequence_number; } RecordNumber;
//! struct { RecordNumber record_numbers<0..2^16-1>; } ACK;
//! ```
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::epoch::RecordNumber;
use crate::wire::DecodeError;
use crate::wire::{Reader, with_len16};

/// Bytes of one RecordNumber.
const RECORD_NUMBER_LEN: usize = 16;

/// An ACK borrowing the received bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckView<'a> {
    list: &'a [u8],
}

impl<'a> AckView<'a> {
    /// Parses an ACK; the list length must be a multiple of 16.
    pub fn parse(body: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let list = r.vec16()?;
        r.finish()?;
        if list.len() % RECORD_NUMBER_LEN != 0 {
            return Err(DecodeError::InvalidLength {
                field: "record_numbers",
                len: list.len(),
            });
        }
        Ok(Self { list })
    }

    /// The acknowledged record numbers, in the order sent.
    pub fn record_numbers(&self) -> impl Iterator<Item = RecordNumber> + use<'a> {
        let mut r = Reader::new(self.list);
        std::iter::from_fn(move || {
            let epoch = u64::from_be_bytes(r.array().ok()?);
            let sequence = u64::from_be_bytes(r.array().ok()?);
            Some(RecordNumber { epoch, sequence })
        })
    }

    /// Appends an ACK of `numbers` (at most 4095 of them fit the 16-bit length; the rest are
    /// left out, which RFC 9147 §7 allows: an ACK need not list every record).
    pub fn encode(numbers: &[RecordNumber], out: &mut Vec<u8>) {
        with_len16(out, |o| {
            for n in numbers.iter().take(0xffff / RECORD_NUMBER_LEN) {
                o.extend_from_slice(&n.epoch.to_be_bytes());
                o.extend_from_slice(&n.sequence.to_be_bytes());
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn round_trip_and_bounds() {
        let numbers = [
            RecordNumber {
                epoch: 2,
                sequence: 0,
            },
            RecordNumber {
                epoch: 2,
                sequence: 1,
            },
            RecordNumber {
                epoch: 3,
                sequence: 0x0000_ffff_ffff_ffff,
            },
        ];
        let mut out = Vec::new();
        AckView::encode(&numbers, &mut out);
        assert_eq!(out.len(), 2 + 48);
        assert_eq!(&out[..2], &[0, 48]);
        let ack = AckView::parse(&out).unwrap();
        assert_eq!(ack.record_numbers().collect::<Vec<_>>(), numbers);
        assert_eq!(AckView::parse(&[0, 0]).unwrap().record_numbers().count(), 0);
        assert!(AckView::parse(&[0, 15, 0]).is_err());
        let mut ragged = vec![0, 17];
        ragged.extend_from_slice(&[0; 17]);
        assert_eq!(
            AckView::parse(&ragged),
            Err(DecodeError::InvalidLength {
                field: "record_numbers",
                len: 17
            })
        );
        let many = vec![
            RecordNumber {
                epoch: 3,
                sequence: 1
            };
            5000
        ];
        let mut out = Vec::new();
        AckView::encode(&many, &mut out);
        assert_eq!(AckView::parse(&out).unwrap().record_numbers().count(), 4095);
    }

    proptest! {
        #[test]
        fn any_bytes_parse_or_fail_without_panic(data in proptest::collection::vec(any::<u8>(), 0..100)) {
            if let Ok(ack) = AckView::parse(&data) {
                prop_assert_eq!(ack.record_numbers().count() * 16 + 2, data.len());
            }
        }
    }
}
