//! Writing STUN messages (RFC 8489 §5, §14): a builder that appends attributes with their
//! padding into a caller-supplied buffer, keeps the header's length field right, and computes
//! MESSAGE-INTEGRITY, MESSAGE-INTEGRITY-SHA256 and FINGERPRINT over what it wrote, in the only
//! order the RFC allows.

use bytes::{Bytes, BytesMut};
use thiserror::Error;

use crate::attribute::{AttributeType, EncodeAttribute, MessageIntegritySha256};
use crate::credentials::IntegrityKey;
use crate::fingerprint::fingerprint;
use crate::header::{Class, HEADER_LEN, MAGIC_COOKIE, MessageType, TransactionId};
use crate::message::Message;
use crate::wire::padded;

/// Why a message could not be built.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The caller's buffer is too small for the message so far.
    #[error("buffer of {capacity} bytes cannot hold {needed}")]
    BufferTooSmall {
        /// Bytes the message needs.
        needed: usize,
        /// Bytes the buffer has.
        capacity: usize,
    },
    /// The message would exceed the 16-bit length field.
    #[error("message of {len} bytes exceeds the STUN length field")]
    MessageTooLong {
        /// The length it would have.
        len: usize,
    },
    /// An attribute was added where RFC 8489 §14.5–§14.7 forbids it: anything after
    /// MESSAGE-INTEGRITY but MESSAGE-INTEGRITY-SHA256 and FINGERPRINT, anything after
    /// MESSAGE-INTEGRITY-SHA256 but FINGERPRINT, nothing after FINGERPRINT.
    #[error("{attribute} cannot follow {after}")]
    Misordered {
        /// The attribute being added.
        attribute: AttributeType,
        /// The attribute it cannot follow.
        after: AttributeType,
    },
    /// A MESSAGE-INTEGRITY-SHA256 truncation other than 16..=32 bytes in steps of 4.
    #[error("MESSAGE-INTEGRITY-SHA256 cannot be truncated to {0} bytes")]
    BadIntegrityLength(usize),
}

/// Storage a [`MessageBuilder`] writes into: a fixed `&mut [u8]` (no allocation) or a growable
/// [`BytesMut`].
pub trait EncodeBuffer {
    /// Makes the buffer at least `len` bytes long, or says it cannot.
    fn grow_to(&mut self, len: usize) -> Result<(), BuildError>;
    /// The writable bytes.
    fn bytes_mut(&mut self) -> &mut [u8];
}

impl EncodeBuffer for &mut [u8] {
    fn grow_to(&mut self, len: usize) -> Result<(), BuildError> {
        if len <= self.len() {
            Ok(())
        } else {
            Err(BuildError::BufferTooSmall {
                needed: len,
                capacity: self.len(),
            })
        }
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        self
    }
}

impl EncodeBuffer for BytesMut {
    fn grow_to(&mut self, len: usize) -> Result<(), BuildError> {
        if self.len() < len {
            self.resize(len, 0);
        }
        Ok(())
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        self
    }
}

/// Where the builder stands in the attribute order.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Stage {
    Attributes,
    After(AttributeType),
}

/// Builds one STUN message.
///
/// ```
/// use stun_proto::attribute::{Priority, Username};
/// use stun_proto::{IntegrityKey, Message, MessageBuilder, MessageType};
///
/// let key = IntegrityKey::short_term("VOkJxbRl1RmTxUk/WvJxBt")?;
/// let mut buf = [0u8; 128];
/// let mut b = MessageBuilder::new(&mut buf[..], MessageType::BINDING_REQUEST, [7; 12].into())?;
/// b.add(&Username::new("evtj:h6vY")?)?;
/// b.add(&Priority(0x6e0001ff))?;
/// b.add_message_integrity(&key)?;
/// b.add_fingerprint()?;
/// let bytes = b.finish();
///
/// let message = Message::parse(bytes)?;
/// message.verify_integrity(&key)?;
/// message.verify_fingerprint()?;
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct MessageBuilder<B> {
    buf: B,
    len: usize,
    transaction_id: TransactionId,
    stage: Stage,
    padding: u8,
}

impl<B: EncodeBuffer> MessageBuilder<B> {
    /// Starts an RFC 5389/8489 message in `buf` (written from its first byte).
    pub fn new(
        buf: B,
        message_type: MessageType,
        transaction_id: TransactionId,
    ) -> Result<Self, BuildError> {
        let mut cookie_and_id = [0; 16];
        cookie_and_id[..4].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
        cookie_and_id[4..].copy_from_slice(transaction_id.as_bytes());
        Self::with_header(buf, message_type, cookie_and_id)
    }

    /// Starts a classic RFC 3489 message with a 128-bit transaction id and no magic cookie.
    pub fn new_rfc3489(
        buf: B,
        message_type: MessageType,
        transaction_id: [u8; 16],
    ) -> Result<Self, BuildError> {
        Self::with_header(buf, message_type, transaction_id)
    }

    /// Starts the response to `request` with class `class`: same method, and the request's
    /// cookie field and transaction id copied, so classic RFC 3489 requests get classic answers.
    pub fn response_to(buf: B, request: &Message<'_>, class: Class) -> Result<Self, BuildError> {
        let message_type = request.message_type().with_class(class);
        Self::with_header(buf, message_type, request.rfc3489_transaction_id())
    }

    fn with_header(
        mut buf: B,
        message_type: MessageType,
        cookie_and_id: [u8; 16],
    ) -> Result<Self, BuildError> {
        buf.grow_to(HEADER_LEN)?;
        let header = &mut buf.bytes_mut()[..HEADER_LEN];
        header[..2].copy_from_slice(&message_type.to_bits().to_be_bytes());
        header[2..4].fill(0);
        header[4..].copy_from_slice(&cookie_and_id);
        let mut id = [0; 12];
        id.copy_from_slice(&cookie_and_id[4..]);
        Ok(Self {
            buf,
            len: HEADER_LEN,
            transaction_id: id.into(),
            stage: Stage::Attributes,
            padding: 0,
        })
    }

    /// Appends a typed attribute.
    pub fn add<A: EncodeAttribute + ?Sized>(
        &mut self,
        attribute: &A,
    ) -> Result<&mut Self, BuildError> {
        let attribute_type = attribute.attribute_type();
        if let Stage::After(after) = self.stage {
            return Err(BuildError::Misordered {
                attribute: attribute_type,
                after,
            });
        }
        let tid = self.transaction_id;
        self.append(attribute_type, attribute.value_len(), |out| {
            attribute.encode_value(out, &tid)
        })?;
        Ok(self)
    }

    /// Appends MESSAGE-INTEGRITY: HMAC-SHA1 of everything so far (RFC 8489 §14.5).
    pub fn add_message_integrity(&mut self, key: &IntegrityKey) -> Result<&mut Self, BuildError> {
        const TYPE: AttributeType = AttributeType::MESSAGE_INTEGRITY;
        if let Stage::After(after) = self.stage {
            return Err(BuildError::Misordered {
                attribute: TYPE,
                after,
            });
        }
        self.append_mac(TYPE, 20, key)
    }

    /// Appends a full-length (32-byte) MESSAGE-INTEGRITY-SHA256 (RFC 8489 §14.6).
    pub fn add_message_integrity_sha256(
        &mut self,
        key: &IntegrityKey,
    ) -> Result<&mut Self, BuildError> {
        self.add_message_integrity_sha256_truncated(key, 32)
    }

    /// Appends MESSAGE-INTEGRITY-SHA256 truncated to `len` bytes (16..=32, a multiple of 4).
    pub fn add_message_integrity_sha256_truncated(
        &mut self,
        key: &IntegrityKey,
        len: usize,
    ) -> Result<&mut Self, BuildError> {
        const TYPE: AttributeType = AttributeType::MESSAGE_INTEGRITY_SHA256;
        if !MessageIntegritySha256::is_valid_len(len) {
            return Err(BuildError::BadIntegrityLength(len));
        }
        match self.stage {
            Stage::Attributes | Stage::After(AttributeType::MESSAGE_INTEGRITY) => {}
            Stage::After(after) => {
                return Err(BuildError::Misordered {
                    attribute: TYPE,
                    after,
                });
            }
        }
        self.append_mac(TYPE, len, key)
    }

    /// Appends FINGERPRINT, which ends the message (RFC 8489 §14.7).
    pub fn add_fingerprint(&mut self) -> Result<&mut Self, BuildError> {
        const TYPE: AttributeType = AttributeType::FINGERPRINT;
        if self.stage == Stage::After(TYPE) {
            return Err(BuildError::Misordered {
                attribute: TYPE,
                after: TYPE,
            });
        }
        let covered = self.len;
        self.set_length(covered + 8)?;
        let crc = fingerprint(&self.buf.bytes_mut()[..covered]);
        self.append(TYPE, 4, |out| out.copy_from_slice(&crc.to_be_bytes()))?;
        self.stage = Stage::After(TYPE);
        Ok(self)
    }

    /// Sets the byte attribute values are padded with from now on: zero unless set. RFC 8489
    /// §14 lets padding take any value (receivers ignore it); the RFC 5769 vectors use spaces.
    pub fn set_padding(&mut self, byte: u8) {
        self.padding = byte;
    }

    /// The message's length so far (never zero: the header is written first).
    #[allow(clippy::len_without_is_empty)] // a message always has its 20-byte header
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Appends an integrity attribute whose value is a MAC over the message so far, with the
    /// header length already counting the attribute.
    fn append_mac(
        &mut self,
        attribute_type: AttributeType,
        value_len: usize,
        key: &IntegrityKey,
    ) -> Result<&mut Self, BuildError> {
        let covered = self.len;
        let length = self.set_length(covered + 4 + value_len)?;
        let covered = &self.buf.bytes_mut()[..covered];
        let mut value = [0; 32];
        if attribute_type == AttributeType::MESSAGE_INTEGRITY {
            value[..20].copy_from_slice(&key.sha1_tag(covered, length));
        } else {
            value = key.sha256_tag(covered, length);
        }
        self.append(attribute_type, value_len, |out| {
            out.copy_from_slice(&value[..value_len])
        })?;
        self.stage = Stage::After(attribute_type);
        Ok(self)
    }

    /// Writes an attribute header, its value and zero padding, and fixes the length field.
    fn append(
        &mut self,
        attribute_type: AttributeType,
        value_len: usize,
        write: impl FnOnce(&mut [u8]),
    ) -> Result<(), BuildError> {
        let start = self.len;
        let end = start + 4 + padded(value_len);
        let wire_len =
            u16::try_from(value_len).map_err(|_| BuildError::MessageTooLong { len: end })?;
        self.set_length(end)?;
        self.buf.grow_to(end)?;
        let out = &mut self.buf.bytes_mut()[start..end];
        out[..2].copy_from_slice(&attribute_type.value().to_be_bytes());
        out[2..4].copy_from_slice(&wire_len.to_be_bytes());
        let (value, padding) = out[4..].split_at_mut(value_len);
        write(value);
        padding.fill(self.padding);
        self.len = end;
        Ok(())
    }

    /// Sets the header's length field so that the message ends at `end`; returns the field.
    fn set_length(&mut self, end: usize) -> Result<u16, BuildError> {
        let length =
            u16::try_from(end - HEADER_LEN).map_err(|_| BuildError::MessageTooLong { len: end })?;
        self.buf.bytes_mut()[2..4].copy_from_slice(&length.to_be_bytes());
        Ok(length)
    }
}

impl<'b> MessageBuilder<&'b mut [u8]> {
    /// The finished message: the leading bytes of the caller's buffer.
    pub fn finish(self) -> &'b [u8] {
        let MessageBuilder { buf, len, .. } = self;
        let buf: &'b [u8] = buf;
        &buf[..len]
    }
}

impl MessageBuilder<BytesMut> {
    /// Starts a message in a new growable buffer.
    pub fn new_bytes(message_type: MessageType, transaction_id: TransactionId) -> Self {
        // unwrap: a growable buffer always has room for a header.
        Self::new(BytesMut::with_capacity(128), message_type, transaction_id)
            .expect("BytesMut grows")
    }

    /// The finished message.
    pub fn into_bytes(self) -> Bytes {
        let mut buf = self.buf;
        buf.truncate(self.len);
        buf.freeze()
    }
}
