//! Sans-IO STUN: the wire format of RFC 8489 (with RFC 5389 and classic RFC 3489
//! compatibility), every attribute of STUN, ICE, TURN and NAT behaviour discovery, and
//! short-term and long-term credentials.
//!
//! # What this crate is for
//! The foundation of the NAT-traversal core: ICE agents, STUN and TURN clients and servers
//! parse and write their messages here. Parsing borrows the datagram ([`Message`] is a
//! zero-copy view) and allocates nothing; writing goes into a buffer of the caller's
//! ([`MessageBuilder`] over `&mut [u8]`) or a growable [`bytes::BytesMut`].
//!
//! # A round trip
//! ```
//! use stun_proto::attribute::{IceControlling, Priority, UseCandidate, Username, XorMappedAddress};
//! use stun_proto::{Class, IntegrityKey, Message, MessageBuilder, MessageType, TransactionId};
//!
//! // An ICE connectivity check, as the controlling agent sends it (RFC 8445 §7.1).
//! let key = IntegrityKey::short_term("remote-ice-password")?;
//! let tid = TransactionId::from([0x5a; 12]);
//! let mut b = MessageBuilder::new_bytes(MessageType::BINDING_REQUEST, tid);
//! b.add(&Username::new("remoteufrag:localufrag")?)?
//!     .add(&Priority(1_853_817_087))?
//!     .add(&IceControlling(0x0123_4567_89ab_cdef))?
//!     .add(&UseCandidate)?
//!     .add_message_integrity(&key)?
//!     .add_fingerprint()?;
//! let request = b.into_bytes();
//!
//! // The other agent checks it and answers with the address it saw.
//! let check = Message::parse(&request)?;
//! check.verify_fingerprint()?;
//! check.verify_integrity(&key)?;
//! assert_eq!(check.get::<Priority>().transpose()?, Some(Priority(1_853_817_087)));
//! assert!(check.has(UseCandidate::TYPE));
//!
//! let mut buf = [0u8; 512];
//! let mut answer = MessageBuilder::response_to(&mut buf[..], &check, Class::Success)?;
//! answer.add(&XorMappedAddress("192.0.2.1:32853".parse()?))?
//!     .add_message_integrity(&key)?
//!     .add_fingerprint()?;
//! let response = Message::parse(answer.finish())?;
//! assert_eq!(response.transaction_id(), tid);
//! # use stun_proto::attribute::DecodeAttribute;
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! ```
//!
//! # Error policy
//! Nothing here panics on input. [`Message::parse`] returns a [`ParseError`] naming the
//! framing fault; typed attribute access returns an [`AttributeError`]; verification returns
//! [`IntegrityError`] or [`FingerprintError`]. None of them is fatal to anything: a receiver
//! drops the datagram (or answers 400/401/420, which the server machines decide). Building
//! returns a [`BuildError`] only for a too-small buffer, an over-long message or an attribute
//! order the RFC forbids.
//!
//! # Compliance
//! RFC 8489 §5, §14 (all attributes), §9 (credentials: OpaqueString, MD5 and SHA-256 keys,
//! USERHASH), §14.5–§14.7 ordering; RFC 5780 §7; RFC 3489 §11 compatibility; RFC 8445 §16.1;
//! RFC 8656 §18 (and the TURN machines, RFC 8656 §5–§12); RFC 6062 §4–§6 (TCP allocations);
//! RFC 7983 demultiplexing. Section by section, with the test that
//! proves each: `docs/compliance.md` at the repository root.
//!
//! # The machines
//! On the codec stand the sans-IO machines: [`transaction`] (RFC 8489 §6.2 retransmission with
//! RFC 6298 RTO estimation), [`binding`] (Binding client and server, RFC 5780 server
//! behaviour), [`long_term`] (the long-term credential server helper) and [`nat_behavior`]
//! (RFC 5780 NAT behaviour discovery and the classic RFC 3489 NAT type).
//!
//! # Out of scope here
//! DNS SRV discovery of servers (callers resolve). RFC 3489's own MESSAGE-INTEGRITY (which padded the HMAC input to
//! 64 bytes) is not implemented: classic clients without a TLS shared secret never send it.

#![forbid(unsafe_code)]

pub mod attribute;
mod builder;
mod credentials;
mod demux;
mod fingerprint;
mod header;
mod hmac_sha1;
mod message;
mod wire;

// Transactions, Binding, long-term credentials and NAT behaviour discovery (issue 3).
pub mod backoff;
pub mod binding;
pub mod long_term;
pub mod nat_behavior;
mod rto;
pub mod shared_secret;
#[cfg(test)]
mod test_support;
pub mod time;
pub mod transaction;
mod transmit;

// TURN client and server (issue 4).
pub mod turn;

#[doc(hidden)]
pub mod fuzzing;

pub use attribute::{AttributeError, AttributeType, RawAttribute};
pub use builder::{BuildError, EncodeBuffer, MessageBuilder};
pub use credentials::{CredentialError, IntegrityKey, opaque_string};
pub use demux::is_stun;
pub use fingerprint::FINGERPRINT_XOR;
pub use header::{Class, HEADER_LEN, MAGIC_COOKIE, MessageType, Method, TransactionId};
pub use message::{
    Attributes, FingerprintError, IntegrityAlgorithm, IntegrityError, Message, ParseError,
};
/// The RNG traits the machines take (`RngCore`, `CryptoRng`, `SeedableRng`), at the version
/// this crate was built with, so that a caller's generator matches them.
pub use rand_core;
pub use rto::{RtoCache, RttEstimator};
pub use transmit::{Transmit, TransmitRef, TransportProtocol};

#[cfg(test)]
mod test_vectors;
