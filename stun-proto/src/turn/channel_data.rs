//! The ChannelData message (RFC 8656 §12.4, §12.5): a 4-byte header — channel number
//! (0x4000..=0x4FFF, §12; RFC 5766 allowed up to 0x7FFE) and data length — then the
//! application data. Over UDP the data need
//! not be padded; over TCP and TLS it is padded to a multiple of 4 bytes (§12.5), and the
//! padding is not counted in the length field.
//!
//! [`ChannelData`] is a borrowed view over received bytes; [`encode_channel_data`] writes one
//! into a caller's buffer. Neither allocates: this is the relay hot path.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::ops::RangeInclusive;

use thiserror::Error;

use crate::wire::padded;

/// The channel numbers a client may bind (RFC 8656 §12: 0x4000 through 0x4FFF).
pub const CHANNEL_NUMBERS: RangeInclusive<u16> = 0x4000..=0x4FFF;

/// The channel numbers RFC 5766 §11 allowed (0x4000 through 0x7FFE), which older clients
/// (coturn's `turnutils_uclient` among them) still use. The codec accepts every number whose
/// top bits are `01` (0x4000..=0x7FFF); which are valid is the machines' decision.
pub const RFC5766_CHANNEL_NUMBERS: RangeInclusive<u16> = 0x4000..=0x7FFE;

/// Every number the ChannelData format can carry: first two bits `01` (RFC 8656 §12).
const WIRE_CHANNEL_NUMBERS: RangeInclusive<u16> = 0x4000..=0x7FFF;

/// The length of the ChannelData header: channel number and length.
pub const CHANNEL_DATA_HEADER_LEN: usize = 4;

/// Why bytes are not a ChannelData message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ChannelDataError {
    /// Fewer than the 4 header bytes.
    #[error("{len} bytes is shorter than the 4-byte ChannelData header")]
    TruncatedHeader {
        /// The input length.
        len: usize,
    },
    /// The channel number's top two bits are not `01` (outside 0x4000..=0x7FFF).
    #[error("channel number {0:#06x} is outside 0x4000..=0x7FFF")]
    BadChannelNumber(u16),
    /// The length field promises more data than follows the header.
    #[error("ChannelData length {declared} exceeds the {available} bytes that follow")]
    LengthOverrun {
        /// The length field.
        declared: usize,
        /// The bytes after the header.
        available: usize,
    },
    /// More bytes follow the data than its padding to 4 accounts for (RFC 8656 §12.5: a
    /// datagram holds one ChannelData message).
    #[error("{extra} bytes follow the ChannelData data and its padding")]
    TrailingBytes {
        /// The extra bytes.
        extra: usize,
    },
    /// The caller's buffer cannot hold the message.
    #[error("buffer of {capacity} bytes cannot hold a {needed}-byte ChannelData message")]
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        capacity: usize,
    },
    /// The data is longer than the 16-bit length field.
    #[error("{len} bytes of data exceed the ChannelData length field")]
    DataTooLong {
        /// The data length.
        len: usize,
    },
}

/// A received ChannelData message, borrowing the datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelData<'a> {
    channel: u16,
    data: &'a [u8],
}

impl<'a> ChannelData<'a> {
    /// Parses one ChannelData message occupying `bytes`, with or without its padding.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ChannelDataError> {
        let Some((&[c0, c1, l0, l1], rest)) = bytes.split_first_chunk::<4>() else {
            return Err(ChannelDataError::TruncatedHeader { len: bytes.len() });
        };
        let channel = u16::from_be_bytes([c0, c1]);
        if !WIRE_CHANNEL_NUMBERS.contains(&channel) {
            return Err(ChannelDataError::BadChannelNumber(channel));
        }
        let declared = usize::from(u16::from_be_bytes([l0, l1]));
        let Some(data) = rest.get(..declared) else {
            return Err(ChannelDataError::LengthOverrun {
                declared,
                available: rest.len(),
            });
        };
        if rest.len() > padded(declared) {
            return Err(ChannelDataError::TrailingBytes {
                extra: rest.len() - padded(declared),
            });
        }
        Ok(Self { channel, data })
    }

    /// The channel number.
    pub const fn channel(&self) -> u16 {
        self.channel
    }

    /// The application data.
    pub const fn data(&self) -> &'a [u8] {
        self.data
    }
}

/// Whether `bytes` starts like a ChannelData message: first two bits `01` (RFC 8656 §12;
/// RFC 7983 §7 names 64..=79 for RFC 8656's channels, RFC 5766 clients use up to 127).
pub fn is_channel_data(bytes: &[u8]) -> bool {
    matches!(bytes.first(), Some(0x40..=0x7F))
}

/// The length of a ChannelData message carrying `data_len` bytes, padded to 4 if `pad`.
pub const fn channel_data_len(data_len: usize, pad: bool) -> usize {
    CHANNEL_DATA_HEADER_LEN + if pad { padded(data_len) } else { data_len }
}

/// Writes a ChannelData message for `channel` carrying `data` into `out` and returns its
/// length. `pad` adds the zero padding to 4 bytes that TCP and TLS need (RFC 8656 §12.5).
pub fn encode_channel_data(
    channel: u16,
    data: &[u8],
    pad: bool,
    out: &mut [u8],
) -> Result<usize, ChannelDataError> {
    if !WIRE_CHANNEL_NUMBERS.contains(&channel) {
        return Err(ChannelDataError::BadChannelNumber(channel));
    }
    let wire_len =
        u16::try_from(data.len()).map_err(|_| ChannelDataError::DataTooLong { len: data.len() })?;
    let needed = channel_data_len(data.len(), pad);
    let capacity = out.len();
    let Some(message) = out.get_mut(..needed) else {
        return Err(ChannelDataError::BufferTooSmall { needed, capacity });
    };
    let (header, body) = message.split_at_mut(CHANNEL_DATA_HEADER_LEN);
    header.copy_from_slice(&[
        channel.to_be_bytes()[0],
        channel.to_be_bytes()[1],
        wire_len.to_be_bytes()[0],
        wire_len.to_be_bytes()[1],
    ]);
    let (payload, padding) = body.split_at_mut(data.len());
    payload.copy_from_slice(data);
    padding.fill(0);
    Ok(needed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_and_without_padding() {
        let mut buf = [0xffu8; 16];
        let n = encode_channel_data(0x4001, b"hello", false, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"\x40\x01\x00\x05hello");
        let cd = ChannelData::parse(&buf[..n]).unwrap();
        assert_eq!((cd.channel(), cd.data()), (0x4001, &b"hello"[..]));

        let n = encode_channel_data(0x4FFF, b"hello", true, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"\x4f\xff\x00\x05hello\0\0\0");
        assert_eq!(ChannelData::parse(&buf[..n]).unwrap().data(), b"hello");
    }

    #[test]
    fn rejects_what_rfc_8656_section_12_forbids() {
        assert_eq!(
            ChannelData::parse(&[0x40, 0]),
            Err(ChannelDataError::TruncatedHeader { len: 2 })
        );
        assert_eq!(
            ChannelData::parse(&[0x80, 0, 0, 0]),
            Err(ChannelDataError::BadChannelNumber(0x8000))
        );
        // RFC 5766's numbers parse; the machines decide whether they are bound.
        assert_eq!(
            ChannelData::parse(&[0x79, 0x57, 0, 0]).unwrap().channel(),
            0x7957
        );
        assert_eq!(
            ChannelData::parse(&[0x40, 0, 0, 5, 1, 2]),
            Err(ChannelDataError::LengthOverrun {
                declared: 5,
                available: 2
            })
        );
        assert_eq!(
            ChannelData::parse(&[0x40, 0, 0, 1, 1, 0, 0, 0, 9]),
            Err(ChannelDataError::TrailingBytes { extra: 1 })
        );
        let mut small = [0u8; 6];
        assert_eq!(
            encode_channel_data(0x4000, b"abc", false, &mut small),
            Err(ChannelDataError::BufferTooSmall {
                needed: 7,
                capacity: 6
            })
        );
        assert_eq!(
            encode_channel_data(0x3FFF, b"", false, &mut small),
            Err(ChannelDataError::BadChannelNumber(0x3FFF))
        );
        assert_eq!(
            encode_channel_data(0x4000, &[0; 70_000], false, &mut small),
            Err(ChannelDataError::DataTooLong { len: 70_000 })
        );
    }

    #[test]
    fn empty_data_is_allowed() {
        let cd = ChannelData::parse(&[0x40, 0x00, 0, 0]).unwrap();
        assert!(cd.data().is_empty());
        assert!(is_channel_data(&[0x40]) && !is_channel_data(&[0x00]) && !is_channel_data(&[]));
    }
}
