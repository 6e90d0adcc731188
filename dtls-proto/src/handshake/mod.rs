//! Handshake messages (RFC 5246 §7.4 with the DTLS header of RFC 6347 §4.2.2).
//!
//! ```text
//! struct {
//!     HandshakeType msg_type;      // 1 byte
//!     uint24 length;               // of the whole message body
//!     uint16 message_seq;          // RFC 6347 §4.2.2
//!     uint24 fragment_offset;
//!     uint24 fragment_length;
//!     opaque body[fragment_length];
//! } Handshake;
//! ```
//!
//! [`FragmentView`] borrows one fragment from a record; the message bodies live in [`hello`] and
//! [`key_exchange`], each a representation with `parse` and `encode`.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::wire::DecodeError;
use crate::wire::Reader;

pub mod authentication;
pub mod hello;
pub mod key_exchange;
pub(crate) mod shared;
pub(crate) mod tls13;

/// Length of the DTLS handshake header.
pub const HEADER_LEN: usize = 12;

/// The handshake message types of DTLS 1.2 and 1.3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandshakeType {
    /// hello_request (0), only ever used to start renegotiation, which we refuse.
    HelloRequest,
    /// client_hello (1).
    ClientHello,
    /// server_hello (2).
    ServerHello,
    /// hello_verify_request (3, RFC 6347 §4.2.1).
    HelloVerifyRequest,
    /// new_session_ticket (4, DTLS 1.3 after the handshake, RFC 8446 §4.6.1): acknowledged
    /// and ignored, we never resume.
    NewSessionTicket,
    /// encrypted_extensions (8, DTLS 1.3, RFC 8446 §4.3.1).
    EncryptedExtensions,
    /// certificate (11).
    Certificate,
    /// server_key_exchange (12).
    ServerKeyExchange,
    /// certificate_request (13).
    CertificateRequest,
    /// server_hello_done (14).
    ServerHelloDone,
    /// certificate_verify (15).
    CertificateVerify,
    /// client_key_exchange (16).
    ClientKeyExchange,
    /// finished (20).
    Finished,
    /// key_update (24, DTLS 1.3 after the handshake, RFC 8446 §4.6.3, RFC 9147 §8).
    KeyUpdate,
}

impl HandshakeType {
    /// The wire value.
    pub fn to_byte(self) -> u8 {
        match self {
            Self::HelloRequest => 0,
            Self::ClientHello => 1,
            Self::ServerHello => 2,
            Self::HelloVerifyRequest => 3,
            Self::NewSessionTicket => 4,
            Self::EncryptedExtensions => 8,
            Self::Certificate => 11,
            Self::ServerKeyExchange => 12,
            Self::CertificateRequest => 13,
            Self::ServerHelloDone => 14,
            Self::CertificateVerify => 15,
            Self::ClientKeyExchange => 16,
            Self::Finished => 20,
            Self::KeyUpdate => 24,
        }
    }

    /// Parses a wire value.
    pub fn from_byte(v: u8) -> Result<Self, DecodeError> {
        Ok(match v {
            0 => Self::HelloRequest,
            1 => Self::ClientHello,
            2 => Self::ServerHello,
            3 => Self::HelloVerifyRequest,
            4 => Self::NewSessionTicket,
            8 => Self::EncryptedExtensions,
            11 => Self::Certificate,
            12 => Self::ServerKeyExchange,
            13 => Self::CertificateRequest,
            14 => Self::ServerHelloDone,
            15 => Self::CertificateVerify,
            16 => Self::ClientKeyExchange,
            20 => Self::Finished,
            24 => Self::KeyUpdate,
            other => return Err(DecodeError::UnknownHandshakeType(other)),
        })
    }
}

/// The RFC name and the code, e.g. `server_hello (2)`.
impl std::fmt::Display for HandshakeType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self {
            Self::HelloRequest => "hello_request",
            Self::ClientHello => "client_hello",
            Self::ServerHello => "server_hello",
            Self::HelloVerifyRequest => "hello_verify_request",
            Self::NewSessionTicket => "new_session_ticket",
            Self::EncryptedExtensions => "encrypted_extensions",
            Self::Certificate => "certificate",
            Self::ServerKeyExchange => "server_key_exchange",
            Self::CertificateRequest => "certificate_request",
            Self::ServerHelloDone => "server_hello_done",
            Self::CertificateVerify => "certificate_verify",
            Self::ClientKeyExchange => "client_key_exchange",
            Self::Finished => "finished",
            Self::KeyUpdate => "key_update",
        };
        write!(f, "{name} ({})", self.to_byte())
    }
}

/// One handshake fragment borrowed from a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FragmentView<'a> {
    /// The message type.
    pub msg_type: HandshakeType,
    /// Length of the whole message body.
    pub length: u32,
    /// The message sequence number.
    pub message_seq: u16,
    /// Where this fragment starts in the body.
    pub offset: u32,
    /// The fragment bytes.
    pub body: &'a [u8],
}

impl<'a> FragmentView<'a> {
    /// Parses the first fragment of a handshake record and returns the rest of the record.
    pub fn parse(buf: &'a [u8]) -> Result<(Self, &'a [u8]), DecodeError> {
        let mut r = Reader::new(buf);
        let msg_type = HandshakeType::from_byte(r.u8()?)?;
        let length = r.u24()?;
        let message_seq = r.u16()?;
        let offset = r.u24()?;
        let fragment_length = r.u24()?;
        let body = r.bytes(fragment_length as usize)?;
        if u64::from(offset) + u64::from(fragment_length) > u64::from(length) {
            return Err(DecodeError::FragmentOutOfBounds);
        }
        Ok((
            Self {
                msg_type,
                length,
                message_seq,
                offset,
                body,
            },
            r.rest(),
        ))
    }

    /// True when this fragment is the whole message.
    pub fn is_complete(&self) -> bool {
        self.offset == 0 && self.body.len() == self.length as usize
    }
}

/// The header of a fragment of `fragment_len` bytes at `offset` of a `total_len`-byte message.
pub fn fragment_header(
    msg_type: HandshakeType,
    message_seq: u16,
    total_len: usize,
    offset: usize,
    fragment_len: usize,
) -> [u8; HEADER_LEN] {
    // uint24 fields: the callers' lengths are below 2^24 (messages are bounded far below).
    let [_, l0, l1, l2] = (total_len as u32).to_be_bytes();
    let [s0, s1] = message_seq.to_be_bytes();
    let [_, o0, o1, o2] = (offset as u32).to_be_bytes();
    let [_, f0, f1, f2] = (fragment_len as u32).to_be_bytes();
    [
        msg_type.to_byte(),
        l0,
        l1,
        l2,
        s0,
        s1,
        o0,
        o1,
        o2,
        f0,
        f1,
        f2,
    ]
}

/// Appends a fragment header and body (the tests' way to forge fragments; the engine writes
/// the header with [`fragment_header`] and the body from the flight's buffer).
#[cfg(test)]
pub fn encode_fragment(
    msg_type: HandshakeType,
    message_seq: u16,
    total_len: usize,
    offset: usize,
    body: &[u8],
    out: &mut Vec<u8>,
) {
    out.extend_from_slice(&fragment_header(
        msg_type,
        message_seq,
        total_len,
        offset,
        body.len(),
    ));
    out.extend_from_slice(body);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragment_round_trip_and_bounds() {
        let mut out = Vec::new();
        encode_fragment(HandshakeType::Certificate, 3, 10, 4, &[1, 2, 3], &mut out);
        let (f, rest) = FragmentView::parse(&out).unwrap();
        assert!(rest.is_empty());
        assert_eq!(f.msg_type, HandshakeType::Certificate);
        assert_eq!((f.length, f.message_seq, f.offset), (10, 3, 4));
        assert_eq!(f.body, &[1, 2, 3]);
        assert_eq!(f.msg_type.to_string(), "certificate (11)");
        assert!(!f.is_complete());

        let mut bad = Vec::new();
        encode_fragment(HandshakeType::Finished, 0, 2, 1, &[1, 2], &mut bad);
        assert_eq!(
            FragmentView::parse(&bad).unwrap_err(),
            DecodeError::FragmentOutOfBounds
        );
    }
}
