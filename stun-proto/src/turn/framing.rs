//! Framing STUN and ChannelData messages out of a byte stream: TURN over TCP or TLS (RFC 8656
//! §3.1, §12.5; RFC 8489 §6.2.2). The first two bits of every message tell the two apart
//! (`00` STUN, `01` ChannelData: §12); a STUN message is 20 bytes plus its length field, a
//! ChannelData message 4 bytes plus its length field padded to a multiple of 4 (§12.5).
//!
//! [`StreamFramer`] is sans-IO: the caller pushes the bytes it read, then takes whole frames
//! out, borrowed from the framer's buffer. The buffer is bounded; a stream that starts a
//! message with `10` or `11` has lost its framing and must be closed (there is no way to
//! resynchronise a TCP stream).
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use thiserror::Error;

use super::channel_data::CHANNEL_DATA_HEADER_LEN;
use crate::header::HEADER_LEN;
use crate::wire::padded;

/// The largest frame: a STUN header and a 65,535-byte body, or a ChannelData header, 65,535
/// bytes of data and 1 byte of padding.
pub const MAX_FRAME_LEN: usize = HEADER_LEN + 0xFFFF;

/// A whole message taken from the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Frame<'a> {
    /// A STUN message, to parse with [`Message::parse`](crate::Message::parse) (or to hand to
    /// a TURN machine as one datagram).
    Stun(&'a [u8]),
    /// A ChannelData message without its padding, to parse with
    /// [`ChannelData::parse`](super::ChannelData::parse) (or to hand to a TURN machine).
    ChannelData(&'a [u8]),
}

impl<'a> Frame<'a> {
    /// The frame's bytes, as a TURN machine takes them.
    pub const fn bytes(&self) -> &'a [u8] {
        match self {
            Frame::Stun(b) | Frame::ChannelData(b) => b,
        }
    }
}

/// Why the stream cannot be framed. Both are fatal for the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum FramingError {
    /// A message starts with a first byte whose top two bits are `10` or `11`: neither STUN
    /// nor ChannelData. The stream has lost its framing.
    #[error("first byte {0:#04x} starts neither STUN nor ChannelData: stream out of sync")]
    NotTurn(u8),
    /// Pushing these bytes would buffer more than the framer's bound.
    #[error("{buffered} bytes buffered plus {pushed} pushed exceed the {limit}-byte bound")]
    BufferFull {
        /// Bytes already buffered.
        buffered: usize,
        /// Bytes being pushed.
        pushed: usize,
        /// The bound.
        limit: usize,
    },
}

/// Splits a TURN byte stream into STUN and ChannelData frames, buffering at most a bounded
/// number of bytes.
///
/// ```
/// use stun_proto::turn::framing::{Frame, StreamFramer};
///
/// let mut framer = StreamFramer::new(StreamFramer::DEFAULT_LIMIT);
/// // A 3-byte ChannelData message padded to 4, split across two reads.
/// framer.push(&[0x40, 0x00, 0x00, 0x03, b'a'])?;
/// assert_eq!(framer.next_frame()?, None);
/// framer.push(&[b'b', b'c', 0])?;
/// assert_eq!(framer.next_frame()?, Some(Frame::ChannelData(&[0x40, 0, 0, 3, b'a', b'b', b'c'])));
/// assert_eq!(framer.next_frame()?, None);
/// # Ok::<_, stun_proto::turn::framing::FramingError>(())
/// ```
#[derive(Debug, Clone)]
pub struct StreamFramer {
    buf: Vec<u8>,
    start: usize,
    limit: usize,
}

impl StreamFramer {
    /// A bound that holds the largest frame twice over: room for one whole frame and the
    /// start of the next.
    pub const DEFAULT_LIMIT: usize = 2 * (MAX_FRAME_LEN + 4);

    /// A framer that buffers at most `limit` bytes (at least [`MAX_FRAME_LEN`] + 4 is needed
    /// to accept every frame).
    pub fn new(limit: usize) -> Self {
        Self {
            buf: Vec::new(),
            start: 0,
            limit,
        }
    }

    /// Appends bytes read from the stream.
    pub fn push(&mut self, bytes: &[u8]) -> Result<(), FramingError> {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let buffered = self.buf.len();
        if buffered + bytes.len() > self.limit {
            return Err(FramingError::BufferFull {
                buffered,
                pushed: bytes.len(),
                limit: self.limit,
            });
        }
        self.buf.extend_from_slice(bytes);
        Ok(())
    }

    /// The next whole frame, if one is buffered. After an error the stream is unusable.
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>, FramingError> {
        let rest = self.buf.get(self.start..).unwrap_or_default();
        let Some(&[b0, _, l0, l1]) = rest.first_chunk::<4>() else {
            return Ok(None);
        };
        let length = usize::from(u16::from_be_bytes([l0, l1]));
        let (frame_len, consumed, stun) = match b0 >> 6 {
            0b00 => (HEADER_LEN + length, HEADER_LEN + length, true),
            0b01 => (
                CHANNEL_DATA_HEADER_LEN + length,
                CHANNEL_DATA_HEADER_LEN + padded(length),
                false,
            ),
            _ => return Err(FramingError::NotTurn(b0)),
        };
        if rest.len() < consumed {
            return Ok(None);
        }
        let start = self.start;
        self.start += consumed;
        let frame = self.buf.get(start..start + frame_len).unwrap_or_default();
        Ok(Some(if stun {
            Frame::Stun(frame)
        } else {
            Frame::ChannelData(frame)
        }))
    }

    /// Bytes buffered and not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Takes the bytes buffered and not yet returned as frames, leaving the framer empty:
    /// once a ConnectionBind succeeds on an RFC 6062 client data connection, what follows
    /// it on the stream is raw data for the peer, not TURN frames.
    pub fn take_buffered(&mut self) -> Vec<u8> {
        let mut rest = std::mem::take(&mut self.buf);
        rest.drain(..self.start.min(rest.len()));
        self.start = 0;
        rest
    }
}

impl Default for StreamFramer {
    fn default() -> Self {
        Self::new(Self::DEFAULT_LIMIT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MessageBuilder, MessageType};

    #[test]
    fn what_follows_the_last_frame_is_taken_raw() {
        let mut framer = StreamFramer::default();
        let mut bytes = stun().to_vec();
        bytes.extend_from_slice(b"raw peer data");
        framer.push(&bytes).unwrap();
        assert!(matches!(framer.next_frame(), Ok(Some(Frame::Stun(_)))));
        assert_eq!(framer.take_buffered(), b"raw peer data");
        assert_eq!(framer.buffered(), 0);
        assert_eq!(framer.next_frame(), Ok(None));
    }

    fn stun() -> bytes::Bytes {
        let mut b = MessageBuilder::new_bytes(MessageType::BINDING_REQUEST, [3; 12].into());
        b.add_fingerprint().unwrap();
        b.into_bytes()
    }

    #[test]
    fn splits_stun_and_padded_channel_data_fed_byte_by_byte() {
        let stun = stun();
        let mut stream = stun.to_vec();
        stream.extend_from_slice(&[0x40, 0x01, 0x00, 0x01, 0xAA, 0, 0, 0]);
        stream.extend_from_slice(&stun);
        stream.extend_from_slice(&[0x4F, 0xFF, 0x00, 0x00]);
        let mut framer = StreamFramer::default();
        let mut frames = Vec::new();
        for byte in &stream {
            framer.push(std::slice::from_ref(byte)).unwrap();
            while let Some(frame) = framer.next_frame().unwrap() {
                frames.push(match frame {
                    Frame::Stun(b) => (true, b.to_vec()),
                    Frame::ChannelData(b) => (false, b.to_vec()),
                });
            }
        }
        assert_eq!(
            frames,
            vec![
                (true, stun.to_vec()),
                (false, vec![0x40, 0x01, 0x00, 0x01, 0xAA]),
                (true, stun.to_vec()),
                (false, vec![0x4F, 0xFF, 0, 0]),
            ]
        );
        assert_eq!(framer.buffered(), 0);
    }

    #[test]
    fn many_frames_in_one_push() {
        let mut framer = StreamFramer::default();
        let mut stream = Vec::new();
        for i in 0..10u8 {
            stream.extend_from_slice(&[0x40, i, 0, 2, i, i, 0, 0]);
        }
        framer.push(&stream).unwrap();
        let mut n = 0;
        while let Some(Frame::ChannelData(b)) = framer.next_frame().unwrap() {
            assert_eq!(b, [0x40, n, 0, 2, n, n]);
            n += 1;
        }
        assert_eq!(n, 10);
    }

    #[test]
    fn out_of_sync_stream_and_full_buffer_are_errors() {
        let mut framer = StreamFramer::new(8);
        framer.push(&[0x80, 0, 0, 0]).unwrap();
        assert_eq!(framer.next_frame(), Err(FramingError::NotTurn(0x80)));
        let mut framer = StreamFramer::new(8);
        framer.push(&[0x40, 0, 0, 4, 1]).unwrap();
        assert_eq!(
            framer.push(&[2, 3, 4, 5]),
            Err(FramingError::BufferFull {
                buffered: 5,
                pushed: 4,
                limit: 8
            })
        );
        // What was buffered is still there.
        framer.push(&[2, 3, 4]).unwrap();
        assert_eq!(
            framer.next_frame(),
            Ok(Some(Frame::ChannelData(&[0x40, 0, 0, 4, 1, 2, 3, 4])))
        );
    }
}
