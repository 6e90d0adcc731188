//! Byte-level reading and writing shared by every wire type (RFC 5246 §4 presentation language).
//!
//! A [`Reader`] borrows the input and never panics: every accessor returns
//! [`DecodeError::Truncated`] when the input is too short. Writers append to a `Vec<u8>` and
//! length-prefixed vectors are written through closures that patch the prefix afterwards.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

/// Bytes that do not parse as the expected wire structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended before the structure did.
    #[error("input truncated")]
    Truncated,
    /// Bytes remain after the structure ended.
    #[error("trailing bytes after the structure")]
    TrailingBytes,
    /// A record carried a content type DTLS 1.2 does not define.
    #[error("unknown record content type {0}")]
    UnknownContentType(u8),
    /// A record or hello carried a version that is not DTLS 1.0 or 1.2.
    #[error("unsupported protocol version {0:#06x}")]
    UnsupportedVersion(u16),
    /// A record is longer than RFC 6347 allows.
    #[error("record of {0} bytes exceeds the maximum")]
    RecordTooLong(usize),
    /// A handshake fragment lies outside its message.
    #[error("handshake fragment out of the message bounds")]
    FragmentOutOfBounds,
    /// A handshake message type DTLS 1.2 does not define.
    #[error("unknown handshake message type {0}")]
    UnknownHandshakeType(u8),
    /// A length-prefixed vector is empty, odd or too long where the grammar forbids it.
    #[error("invalid length {len} for {field}")]
    InvalidLength {
        /// The field (`cipher_suites`, `ECPoint`, …).
        field: &'static str,
        /// Its length in bytes.
        len: usize,
    },
    /// A field holds a value the grammar forbids.
    #[error("invalid value {value} for {field}")]
    InvalidValue {
        /// The field.
        field: &'static str,
        /// The value found.
        value: u32,
    },
    /// A DTLS 1.3 record carries a connection ID, which we never negotiate (RFC 9147 §9).
    #[error("record carries a connection ID that was not negotiated")]
    UnexpectedConnectionId,
    /// The same extension appears twice in one hello.
    #[error("duplicate extension {0}")]
    DuplicateExtension(u16),
}

/// A cursor over borrowed bytes with big-endian accessors.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Starts reading at the beginning of `buf`.
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Bytes not read yet.
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// True when everything has been read.
    pub(crate) fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// Reads exactly `n` bytes.
    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let out = self
            .buf
            .get(self.pos..)
            .and_then(|rest| rest.get(..n))
            .ok_or(DecodeError::Truncated)?;
        self.pos += n;
        Ok(out)
    }

    /// Reads everything that is left.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let out = self.buf.get(self.pos..).unwrap_or_default();
        self.pos = self.buf.len();
        out
    }

    /// Reads a fixed-size array.
    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.bytes(N)?);
        Ok(out)
    }

    /// Reads an unsigned integer of `n` bytes (n ≤ 8), big-endian.
    fn uint(&mut self, n: usize) -> Result<u64, DecodeError> {
        Ok(self
            .bytes(n)?
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    }

    /// Reads a `uint8`.
    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        self.array::<1>().map(|[b]| b)
    }

    /// Reads a `uint16`.
    pub(crate) fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    /// Reads a `uint24`.
    pub(crate) fn u24(&mut self) -> Result<u32, DecodeError> {
        // Three bytes always fit in a u32; the fallback is unreachable.
        Ok(u32::try_from(self.uint(3)?).unwrap_or(u32::MAX))
    }

    /// Reads a `uint48`.
    pub(crate) fn u48(&mut self) -> Result<u64, DecodeError> {
        self.uint(6)
    }

    /// Reads a vector with a one-byte length prefix.
    pub(crate) fn vec8(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.u8()?;
        self.bytes(usize::from(n))
    }

    /// Reads a vector with a two-byte length prefix.
    pub(crate) fn vec16(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.u16()?;
        self.bytes(usize::from(n))
    }

    /// Reads a vector with a three-byte length prefix.
    pub(crate) fn vec24(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.u24()?;
        self.bytes(n as usize)
    }

    /// Fails with [`DecodeError::TrailingBytes`] unless everything has been read.
    pub(crate) fn finish(&self) -> Result<(), DecodeError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes)
        }
    }
}

/// Appends a `uint16`.
pub(crate) fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// Appends a `uint48` (the caller guarantees `v < 2^48`).
pub(crate) fn put_u48(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_be_bytes()[2..]);
}

/// Appends a vector with a one-byte length prefix; the body is truncated to 255 bytes.
pub(crate) fn put_vec8(out: &mut Vec<u8>, body: &[u8]) {
    let body = body.get(..0xff).unwrap_or(body);
    out.push(body.len() as u8);
    out.extend_from_slice(body);
}

/// Appends a vector with a two-byte length prefix; the body is truncated to 65535 bytes.
pub(crate) fn put_vec16(out: &mut Vec<u8>, body: &[u8]) {
    let body = body.get(..0xffff).unwrap_or(body);
    put_u16(out, body.len() as u16);
    out.extend_from_slice(body);
}

/// Appends a vector with a three-byte length prefix written by `f`.
pub(crate) fn with_len24(out: &mut Vec<u8>, f: impl FnOnce(&mut Vec<u8>)) {
    let at = out.len();
    out.extend_from_slice(&[0, 0, 0]);
    f(out);
    let [_, len @ ..] = ((out.len() - at - 3) as u32).to_be_bytes();
    if let Some(slot) = out.get_mut(at..at + 3) {
        slot.copy_from_slice(&len);
    }
}

/// Appends a vector with a two-byte length prefix written by `f`.
pub(crate) fn with_len16(out: &mut Vec<u8>, f: impl FnOnce(&mut Vec<u8>)) {
    let at = out.len();
    out.extend_from_slice(&[0, 0]);
    f(out);
    let len = ((out.len() - at - 2) as u16).to_be_bytes();
    if let Some(slot) = out.get_mut(at..at + 2) {
        slot.copy_from_slice(&len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_integers_and_vectors() {
        let data = [1, 0, 2, 0, 0, 3, 0, 0, 0, 0, 0, 4, 2, 9, 9, 0, 1, 7];
        let mut r = Reader::new(&data);
        assert_eq!(r.u8(), Ok(1));
        assert_eq!(r.u16(), Ok(2));
        assert_eq!(r.u24(), Ok(3));
        assert_eq!(r.u48(), Ok(4));
        assert_eq!(r.vec8(), Ok(&[9u8, 9][..]));
        assert_eq!(r.vec16(), Ok(&[7u8][..]));
        assert!(r.finish().is_ok());
        assert_eq!(r.u8(), Err(DecodeError::Truncated));
    }

    #[test]
    fn writes_length_prefixes() {
        let mut out = Vec::new();
        with_len24(&mut out, |o| with_len16(o, |o| put_vec8(o, &[5, 6])));
        assert_eq!(out, [0, 0, 5, 0, 3, 2, 5, 6]);
        let mut out = Vec::new();
        put_u48(&mut out, 0x0102_0304_0506);
        assert_eq!(out, [1, 2, 3, 4, 5, 6]);
    }
}
