//! DTLS 1.3 after the handshake: KeyUpdate (RFC 9147 §8, RFC 8446 §4.6.3 and §7.2), the ACKs
//! of post-handshake messages (RFC 9147 §7) and NewSessionTicket, which we acknowledge and
//! ignore (RFC 8446 §4.6.1: we never resume).
//!
//! ```text
//! sender                                         receiver
//! KeyUpdate(update_requested?) in epoch N  ──►   read epoch N+1 installed (N still read)
//!                                          ◄──   ACK naming the KeyUpdate's record
//! write epoch N+1 installed, only now (§8)       if update_requested: its own
//!                                                KeyUpdate(update_not_requested), the same way
//! ```
//!
//! One KeyUpdate of ours is in flight at a time, retransmitted on the handshake timer until
//! ACKed (§8: "MUST NOT send records with the new keys until the KeyUpdate has been
//! acknowledged"). A request that comes while a flight of ours still waits for its ACK (the
//! client's last handshake flight, or an earlier KeyUpdate) is held and sent when it is
//! ACKed. Every handshake record received after the handshake is ACKed at once, in one ACK
//! record per datagram; a retransmitted KeyUpdate is ACKed again but changes no key.

use crate::crypto::{AeadAlgorithm, Digest};
use crate::epoch::{EPOCH_APPLICATION, EpochKeys, RecordNumber};
use crate::error::CryptoError;
use crate::key_schedule::Hkdf;
use crate::wire::DecodeError;

/// Record numbers waiting for our ACK (a datagram carries a few records; the ACK goes out at
/// its end).
pub const MAX_PENDING_ACKS: usize = 32;

/// The body of a KeyUpdate (RFC 8446 §4.6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyUpdateRequest {
    /// update_not_requested (0).
    NotRequested,
    /// update_requested (1): the receiver must update its sending keys too.
    Requested,
}

impl KeyUpdateRequest {
    /// Parses a KeyUpdate body: exactly one byte, 0 or 1.
    pub fn parse(body: &[u8]) -> Result<Self, DecodeError> {
        match body {
            [0] => Ok(Self::NotRequested),
            [1] => Ok(Self::Requested),
            [other] => Err(DecodeError::InvalidValue {
                field: "key_update.request_update",
                value: u32::from(*other),
            }),
            _ => Err(DecodeError::InvalidLength {
                field: "key_update",
                len: body.len(),
            }),
        }
    }

    /// The wire value.
    pub fn to_byte(self) -> u8 {
        match self {
            Self::NotRequested => 0,
            Self::Requested => 1,
        }
    }
}

/// The application traffic secrets of both directions and the epochs they key (RFC 8446
/// §7.2: each KeyUpdate moves one direction to `HKDF-Expand-Label(secret, "traffic upd", "",
/// Hash.length)` and to the next epoch, RFC 9147 §6.1).
pub struct ApplicationSecrets {
    hkdf: Hkdf,
    aead: AeadAlgorithm,
    write: Digest,
    read: Digest,
    write_epoch: u64,
    read_epoch: u64,
}

impl ApplicationSecrets {
    /// The secrets of epoch 3, ours and the peer's.
    pub fn new(hkdf: Hkdf, aead: AeadAlgorithm, write: Digest, read: Digest) -> Self {
        Self {
            hkdf,
            aead,
            write,
            read,
            write_epoch: EPOCH_APPLICATION,
            read_epoch: EPOCH_APPLICATION,
        }
    }

    /// Moves our direction to the next epoch; its number and keys.
    pub fn next_write(&mut self) -> Result<(u64, EpochKeys), CryptoError> {
        let secret = self.hkdf.next_traffic_secret(&self.write);
        let keys = EpochKeys::derive(&self.hkdf, self.aead, &secret)?;
        self.write = secret;
        self.write_epoch += 1;
        Ok((self.write_epoch, keys))
    }

    /// Moves the peer's direction to the next epoch; its number and keys.
    pub fn next_read(&mut self) -> Result<(u64, EpochKeys), CryptoError> {
        let secret = self.hkdf.next_traffic_secret(&self.read);
        let keys = EpochKeys::derive(&self.hkdf, self.aead, &secret)?;
        self.read = secret;
        self.read_epoch += 1;
        Ok((self.read_epoch, keys))
    }

    /// The epoch we write application data in.
    pub fn write_epoch(&self) -> u64 {
        self.write_epoch
    }

    /// The newest epoch the peer writes in.
    pub fn read_epoch(&self) -> u64 {
        self.read_epoch
    }
}

impl std::fmt::Debug for ApplicationSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApplicationSecrets")
            .field("write_epoch", &self.write_epoch)
            .field("read_epoch", &self.read_epoch)
            .finish_non_exhaustive()
    }
}

/// Our KeyUpdates and the ACKs we owe, after the handshake.
#[derive(Debug, Default)]
pub struct PostHandshake {
    /// Our KeyUpdate is out and not yet ACKed.
    in_flight: bool,
    /// A KeyUpdate to send once our current flight is ACKed.
    queued: Option<KeyUpdateRequest>,
    /// Handshake records received since the last ACK we sent.
    to_ack: Vec<RecordNumber>,
}

impl PostHandshake {
    /// True while our KeyUpdate waits for its ACK.
    pub fn is_in_flight(&self) -> bool {
        self.in_flight
    }

    /// Our KeyUpdate went out.
    pub fn on_sent(&mut self) {
        self.in_flight = true;
    }

    /// Our KeyUpdate was ACKed: true when the write keys must move now.
    pub fn on_acknowledged(&mut self) -> bool {
        std::mem::take(&mut self.in_flight)
    }

    /// Holds a KeyUpdate until our flight is ACKed; a request for the peer to update wins
    /// over one without.
    pub fn queue(&mut self, request: KeyUpdateRequest) {
        self.queued = match (self.queued, request) {
            (Some(KeyUpdateRequest::Requested), _) => Some(KeyUpdateRequest::Requested),
            _ => Some(request),
        };
    }

    /// The held KeyUpdate, if any.
    pub fn take_queued(&mut self) -> Option<KeyUpdateRequest> {
        self.queued.take()
    }

    /// A handshake record arrived after the handshake: it will be ACKed.
    pub fn note_received(&mut self, number: RecordNumber) {
        if self.to_ack.len() < MAX_PENDING_ACKS && !self.to_ack.contains(&number) {
            self.to_ack.push(number);
        }
    }

    /// The record numbers to ACK now (emptied).
    pub fn take_acks(&mut self) -> Vec<RecordNumber> {
        std::mem::take(&mut self.to_ack)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{HashAlgorithm, providers};

    #[test]
    fn the_request_is_one_byte_zero_or_one() {
        assert_eq!(
            KeyUpdateRequest::parse(&[0]),
            Ok(KeyUpdateRequest::NotRequested)
        );
        assert_eq!(
            KeyUpdateRequest::parse(&[1]),
            Ok(KeyUpdateRequest::Requested)
        );
        for bad in [&[2][..], &[], &[0, 0]] {
            assert!(KeyUpdateRequest::parse(bad).is_err(), "{bad:?}");
        }
        for r in [KeyUpdateRequest::NotRequested, KeyUpdateRequest::Requested] {
            assert_eq!(KeyUpdateRequest::parse(&[r.to_byte()]), Ok(r));
        }
    }

    /// Each direction moves on its own, one epoch and one "traffic upd" step at a time, and
    /// both sides of a connection agree (our write chain is the peer's read chain).
    #[test]
    fn each_direction_steps_its_own_epoch_and_secret() {
        for p in providers() {
            let hkdf = Hkdf::dtls13(p, HashAlgorithm::Sha256);
            let (a, b) = (Digest::new(&[1; 32]), Digest::new(&[2; 32]));
            let mut ours = ApplicationSecrets::new(hkdf, AeadAlgorithm::Aes128Gcm, a, b);
            let mut theirs = ApplicationSecrets::new(hkdf, AeadAlgorithm::Aes128Gcm, b, a);
            let (epoch, _) = ours.next_write().unwrap();
            assert_eq!((epoch, ours.write_epoch(), ours.read_epoch()), (4, 4, 3));
            theirs.next_read().unwrap();
            assert_eq!(ours.write, theirs.read);
            assert_eq!(ours.write, hkdf.next_traffic_secret(&a));
            ours.next_write().unwrap();
            assert_ne!(ours.write, theirs.read);
            assert_eq!(ours.write_epoch(), 5);
        }
    }

    #[test]
    fn acks_are_bounded_and_deduplicated() {
        let mut post = PostHandshake::default();
        for sequence in 0..100 {
            let n = RecordNumber { epoch: 3, sequence };
            post.note_received(n);
            post.note_received(n);
        }
        assert_eq!(post.take_acks().len(), MAX_PENDING_ACKS);
        assert!(post.take_acks().is_empty());
        post.queue(KeyUpdateRequest::Requested);
        post.queue(KeyUpdateRequest::NotRequested);
        assert_eq!(post.take_queued(), Some(KeyUpdateRequest::Requested));
        assert_eq!(post.take_queued(), None);
    }
}
