//! STUN attributes: the type registry, the decode/encode traits, and one module per family of
//! attributes (RFC 8489 §14, RFC 5780 §7, RFC 3489 §11.2, RFC 8445 §16.1, RFC 8656 §18,
//! RFC 6062 §6.2).
//!
//! Every typed attribute implements [`DecodeAttribute`], which borrows its value from the
//! received message, and all but the three integrity attributes implement [`EncodeAttribute`];
//! MESSAGE-INTEGRITY, MESSAGE-INTEGRITY-SHA256 and FINGERPRINT are computed by the
//! [`MessageBuilder`](crate::MessageBuilder) itself, so a caller can never write a wrong one.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::fmt;

use thiserror::Error;

use crate::header::TransactionId;

mod address;
mod auth;
mod error_code;
mod ice;
mod nat_behavior;
mod text;
mod turn;

pub use address::{
    AddressFamily, AlternateServer, ChangedAddress, MappedAddress, OtherAddress, ReflectedFrom,
    ResponseAddress, ResponseOrigin, SourceAddress, XorMappedAddress, XorPeerAddress,
    XorRelayedAddress,
};
pub use auth::{
    Fingerprint, MessageIntegrity, MessageIntegritySha256, PasswordAlgorithm, PasswordAlgorithms,
    Userhash,
};
pub use error_code::{AddressErrorCode, ErrorCode, UnknownAttributes};
pub use ice::{IceControlled, IceControlling, Priority, UseCandidate};
pub use nat_behavior::{ChangeRequest, Padding, ResponsePort};
pub use text::{AlternateDomain, Nonce, Realm, Software, Username};
pub use turn::{
    AdditionalAddressFamily, ChannelNumber, ConnectionId, Data, DontFragment, EvenPort, Icmp,
    Lifetime, RequestedAddressFamily, RequestedTransport, ReservationToken,
};

/// A 16-bit attribute type.
///
/// Types below 0x8000 are comprehension-required: a receiver that does not know one must reject
/// the message (RFC 8489 §14, 420 Unknown Attribute).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AttributeType(u16);

macro_rules! attribute_types {
    ($($(#[$doc:meta])* $name:ident = $value:literal, $text:literal;)*) => {
        impl AttributeType {
            $($(#[$doc])* pub const $name: AttributeType = AttributeType($value);)*

            /// The attribute's name as the RFCs spell it, if this crate knows it.
            pub const fn name(self) -> Option<&'static str> {
                match self.0 {
                    $($value => Some($text),)*
                    _ => None,
                }
            }
        }
    };
}

attribute_types! {
    /// MAPPED-ADDRESS (RFC 8489 §14.1).
    MAPPED_ADDRESS = 0x0001, "MAPPED-ADDRESS";
    /// RESPONSE-ADDRESS (RFC 3489 §11.2.2).
    RESPONSE_ADDRESS = 0x0002, "RESPONSE-ADDRESS";
    /// CHANGE-REQUEST (RFC 5780 §7.2).
    CHANGE_REQUEST = 0x0003, "CHANGE-REQUEST";
    /// SOURCE-ADDRESS (RFC 3489 §11.2.5).
    SOURCE_ADDRESS = 0x0004, "SOURCE-ADDRESS";
    /// CHANGED-ADDRESS (RFC 3489 §11.2.3).
    CHANGED_ADDRESS = 0x0005, "CHANGED-ADDRESS";
    /// USERNAME (RFC 8489 §14.3).
    USERNAME = 0x0006, "USERNAME";
    /// MESSAGE-INTEGRITY (RFC 8489 §14.5).
    MESSAGE_INTEGRITY = 0x0008, "MESSAGE-INTEGRITY";
    /// ERROR-CODE (RFC 8489 §14.8).
    ERROR_CODE = 0x0009, "ERROR-CODE";
    /// UNKNOWN-ATTRIBUTES (RFC 8489 §14.13).
    UNKNOWN_ATTRIBUTES = 0x000A, "UNKNOWN-ATTRIBUTES";
    /// REFLECTED-FROM (RFC 3489 §11.2.11).
    REFLECTED_FROM = 0x000B, "REFLECTED-FROM";
    /// CHANNEL-NUMBER (RFC 8656 §18.1).
    CHANNEL_NUMBER = 0x000C, "CHANNEL-NUMBER";
    /// LIFETIME (RFC 8656 §18.2).
    LIFETIME = 0x000D, "LIFETIME";
    /// XOR-PEER-ADDRESS (RFC 8656 §18.3).
    XOR_PEER_ADDRESS = 0x0012, "XOR-PEER-ADDRESS";
    /// DATA (RFC 8656 §18.4).
    DATA = 0x0013, "DATA";
    /// REALM (RFC 8489 §14.9).
    REALM = 0x0014, "REALM";
    /// NONCE (RFC 8489 §14.10).
    NONCE = 0x0015, "NONCE";
    /// XOR-RELAYED-ADDRESS (RFC 8656 §18.5).
    XOR_RELAYED_ADDRESS = 0x0016, "XOR-RELAYED-ADDRESS";
    /// REQUESTED-ADDRESS-FAMILY (RFC 8656 §18.6).
    REQUESTED_ADDRESS_FAMILY = 0x0017, "REQUESTED-ADDRESS-FAMILY";
    /// EVEN-PORT (RFC 8656 §18.7).
    EVEN_PORT = 0x0018, "EVEN-PORT";
    /// REQUESTED-TRANSPORT (RFC 8656 §18.8).
    REQUESTED_TRANSPORT = 0x0019, "REQUESTED-TRANSPORT";
    /// DONT-FRAGMENT (RFC 8656 §18.9).
    DONT_FRAGMENT = 0x001A, "DONT-FRAGMENT";
    /// MESSAGE-INTEGRITY-SHA256 (RFC 8489 §14.6).
    MESSAGE_INTEGRITY_SHA256 = 0x001C, "MESSAGE-INTEGRITY-SHA256";
    /// PASSWORD-ALGORITHM (RFC 8489 §14.12).
    PASSWORD_ALGORITHM = 0x001D, "PASSWORD-ALGORITHM";
    /// USERHASH (RFC 8489 §14.4).
    USERHASH = 0x001E, "USERHASH";
    /// XOR-MAPPED-ADDRESS (RFC 8489 §14.2).
    XOR_MAPPED_ADDRESS = 0x0020, "XOR-MAPPED-ADDRESS";
    /// RESERVATION-TOKEN (RFC 8656 §18.10).
    RESERVATION_TOKEN = 0x0022, "RESERVATION-TOKEN";
    /// PRIORITY (RFC 8445 §16.1).
    PRIORITY = 0x0024, "PRIORITY";
    /// USE-CANDIDATE (RFC 8445 §16.1).
    USE_CANDIDATE = 0x0025, "USE-CANDIDATE";
    /// PADDING (RFC 5780 §7.6).
    PADDING = 0x0026, "PADDING";
    /// RESPONSE-PORT (RFC 5780 §7.5).
    RESPONSE_PORT = 0x0027, "RESPONSE-PORT";
    /// CONNECTION-ID (RFC 6062 §6.2.1).
    CONNECTION_ID = 0x002A, "CONNECTION-ID";
    /// ADDITIONAL-ADDRESS-FAMILY (RFC 8656 §18.11).
    ADDITIONAL_ADDRESS_FAMILY = 0x8000, "ADDITIONAL-ADDRESS-FAMILY";
    /// ADDRESS-ERROR-CODE (RFC 8656 §18.12).
    ADDRESS_ERROR_CODE = 0x8001, "ADDRESS-ERROR-CODE";
    /// PASSWORD-ALGORITHMS (RFC 8489 §14.11).
    PASSWORD_ALGORITHMS = 0x8002, "PASSWORD-ALGORITHMS";
    /// ALTERNATE-DOMAIN (RFC 8489 §14.16).
    ALTERNATE_DOMAIN = 0x8003, "ALTERNATE-DOMAIN";
    /// ICMP (RFC 8656 §18.13).
    ICMP = 0x8004, "ICMP";
    /// SOFTWARE (RFC 8489 §14.14).
    SOFTWARE = 0x8022, "SOFTWARE";
    /// ALTERNATE-SERVER (RFC 8489 §14.15).
    ALTERNATE_SERVER = 0x8023, "ALTERNATE-SERVER";
    /// FINGERPRINT (RFC 8489 §14.7).
    FINGERPRINT = 0x8028, "FINGERPRINT";
    /// ICE-CONTROLLED (RFC 8445 §16.1).
    ICE_CONTROLLED = 0x8029, "ICE-CONTROLLED";
    /// ICE-CONTROLLING (RFC 8445 §16.1).
    ICE_CONTROLLING = 0x802A, "ICE-CONTROLLING";
    /// RESPONSE-ORIGIN (RFC 5780 §7.3).
    RESPONSE_ORIGIN = 0x802B, "RESPONSE-ORIGIN";
    /// OTHER-ADDRESS (RFC 5780 §7.4).
    OTHER_ADDRESS = 0x802C, "OTHER-ADDRESS";
}

impl AttributeType {
    /// An attribute type from its number.
    pub const fn new(value: u16) -> Self {
        Self(value)
    }

    /// The 16-bit number.
    pub const fn value(self) -> u16 {
        self.0
    }

    /// Whether a receiver that does not understand the attribute must reject the message.
    pub const fn is_comprehension_required(self) -> bool {
        self.0 < 0x8000
    }

    /// Whether this crate decodes the attribute.
    pub const fn is_known(self) -> bool {
        self.name().is_some()
    }
}

impl fmt::Debug for AttributeType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for AttributeType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "attribute {:#06x}", self.0),
        }
    }
}

/// An attribute as it stands in a received message: its type and its unpadded value.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct RawAttribute<'a> {
    /// The attribute type.
    pub attribute_type: AttributeType,
    /// The value, without padding.
    pub value: &'a [u8],
}

impl<'a> RawAttribute<'a> {
    /// Decodes the value as the typed attribute `A`.
    ///
    /// `transaction_id` is needed by the XOR-address attributes and ignored by the rest.
    pub fn decode<A: DecodeAttribute<'a>>(
        &self,
        transaction_id: &TransactionId,
    ) -> Result<A, AttributeError> {
        if self.attribute_type != A::TYPE {
            return Err(AttributeError::WrongType {
                expected: A::TYPE,
                found: self.attribute_type,
            });
        }
        A::decode(self.value, transaction_id)
    }
}

impl EncodeAttribute for RawAttribute<'_> {
    fn attribute_type(&self) -> AttributeType {
        self.attribute_type
    }

    fn value_len(&self) -> usize {
        self.value.len()
    }

    fn encode_value(&self, out: &mut [u8], _: &TransactionId) {
        out.copy_from_slice(self.value);
    }
}

/// A typed attribute that can be read from a received message, borrowing from it.
pub trait DecodeAttribute<'a>: Sized {
    /// The attribute type this decodes.
    const TYPE: AttributeType;

    /// Decodes the unpadded value. `transaction_id` is the message's, for XOR addresses.
    fn decode(value: &'a [u8], transaction_id: &TransactionId) -> Result<Self, AttributeError>;
}

/// A typed attribute that can be written by the [`MessageBuilder`](crate::MessageBuilder).
///
/// Values are validated when the attribute is constructed, so encoding cannot fail.
pub trait EncodeAttribute {
    /// The attribute type to write.
    fn attribute_type(&self) -> AttributeType;

    /// The length of the value in bytes, without padding.
    fn value_len(&self) -> usize;

    /// Writes the value into `out`, which is exactly [`value_len`](Self::value_len) bytes long.
    fn encode_value(&self, out: &mut [u8], transaction_id: &TransactionId);
}

/// Why an attribute's value could not be decoded, or a value could not become an attribute.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum AttributeError {
    /// The value is shorter or longer than the attribute's format allows.
    #[error("{attribute}: value of {len} bytes, expected {min}..={max}")]
    BadLength {
        /// The attribute.
        attribute: AttributeType,
        /// The length found.
        len: usize,
        /// The smallest length allowed.
        min: usize,
        /// The largest length allowed.
        max: usize,
    },
    /// An address attribute names a family other than IPv4 (0x01) or IPv6 (0x02).
    #[error("{attribute}: unknown address family {family:#04x}")]
    BadAddressFamily {
        /// The attribute.
        attribute: AttributeType,
        /// The family byte found.
        family: u8,
    },
    /// A text attribute is not UTF-8.
    #[error("{attribute}: value is not UTF-8")]
    InvalidUtf8 {
        /// The attribute.
        attribute: AttributeType,
    },
    /// A text attribute has more characters than its RFC allows.
    #[error("{attribute}: {count} characters, at most {max} allowed")]
    TooManyCharacters {
        /// The attribute.
        attribute: AttributeType,
        /// How many characters it has.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// An ERROR-CODE or ADDRESS-ERROR-CODE outside 300..=699 (class 3 to 6, number 0 to 99).
    #[error("error code {code} is outside 300..=699")]
    BadErrorCode {
        /// The code found (class × 100 + number).
        code: u16,
    },
    /// A list attribute (UNKNOWN-ATTRIBUTES, PASSWORD-ALGORITHMS) is cut inside an entry.
    #[error("{attribute}: truncated list entry")]
    TruncatedList {
        /// The attribute.
        attribute: AttributeType,
    },
    /// [`RawAttribute::decode`] was asked for another type than the raw attribute has.
    #[error("expected {expected}, found {found}")]
    WrongType {
        /// The type asked for.
        expected: AttributeType,
        /// The type the raw attribute has.
        found: AttributeType,
    },
}

/// A list attribute's contents: the received bytes, or the items a sender wants written.
#[derive(Clone, Copy, Debug)]
pub(crate) enum ListRepr<'a, T> {
    Wire(&'a [u8]),
    Items(&'a [T]),
}

/// Reads a value that must be exactly `N` bytes long.
pub(crate) fn fixed<const N: usize>(
    attribute: AttributeType,
    value: &[u8],
) -> Result<[u8; N], AttributeError> {
    value.try_into().map_err(|_| AttributeError::BadLength {
        attribute,
        len: value.len(),
        min: N,
        max: N,
    })
}

/// Every attribute this crate knows, decoded: what [`Message`](crate::Message)'s `Debug`
/// prints and what the fuzz targets exercise.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
#[allow(missing_docs)] // each variant is named after the attribute type it holds
pub enum AnyAttribute<'a> {
    MappedAddress(MappedAddress),
    XorMappedAddress(XorMappedAddress),
    Username(Username<'a>),
    Userhash(Userhash),
    MessageIntegrity(MessageIntegrity),
    MessageIntegritySha256(MessageIntegritySha256<'a>),
    Fingerprint(Fingerprint),
    ErrorCode(ErrorCode<'a>),
    Realm(Realm<'a>),
    Nonce(Nonce<'a>),
    PasswordAlgorithms(PasswordAlgorithms<'a>),
    PasswordAlgorithm(PasswordAlgorithm),
    UnknownAttributes(UnknownAttributes<'a>),
    Software(Software<'a>),
    AlternateServer(AlternateServer),
    AlternateDomain(AlternateDomain<'a>),
    ChangeRequest(ChangeRequest),
    ResponseOrigin(ResponseOrigin),
    OtherAddress(OtherAddress),
    ResponsePort(ResponsePort),
    Padding(Padding),
    ResponseAddress(ResponseAddress),
    SourceAddress(SourceAddress),
    ChangedAddress(ChangedAddress),
    ReflectedFrom(ReflectedFrom),
    Priority(Priority),
    UseCandidate(UseCandidate),
    IceControlled(IceControlled),
    IceControlling(IceControlling),
    ChannelNumber(ChannelNumber),
    Lifetime(Lifetime),
    XorPeerAddress(XorPeerAddress),
    Data(Data<'a>),
    XorRelayedAddress(XorRelayedAddress),
    RequestedAddressFamily(RequestedAddressFamily),
    EvenPort(EvenPort),
    RequestedTransport(RequestedTransport),
    DontFragment(DontFragment),
    ReservationToken(ReservationToken),
    AdditionalAddressFamily(AdditionalAddressFamily),
    AddressErrorCode(AddressErrorCode<'a>),
    Icmp(Icmp),
    ConnectionId(ConnectionId),
    /// An attribute this crate does not know, kept as it is.
    Unknown(RawAttribute<'a>),
}

macro_rules! decode_any {
    ($raw:expr, $tid:expr, $($variant:ident),*) => {
        match $raw.attribute_type {
            $(t if t == $variant::TYPE => $variant::decode($raw.value, $tid).map(AnyAttribute::$variant),)*
            _ => Ok(AnyAttribute::Unknown($raw)),
        }
    };
}

impl<'a> AnyAttribute<'a> {
    /// Decodes a raw attribute as whichever typed attribute its type names.
    pub fn decode(
        raw: RawAttribute<'a>,
        transaction_id: &TransactionId,
    ) -> Result<Self, AttributeError> {
        decode_any!(
            raw,
            transaction_id,
            MappedAddress,
            XorMappedAddress,
            Username,
            Userhash,
            MessageIntegrity,
            MessageIntegritySha256,
            Fingerprint,
            ErrorCode,
            Realm,
            Nonce,
            PasswordAlgorithms,
            PasswordAlgorithm,
            UnknownAttributes,
            Software,
            AlternateServer,
            AlternateDomain,
            ChangeRequest,
            ResponseOrigin,
            OtherAddress,
            ResponsePort,
            Padding,
            ResponseAddress,
            SourceAddress,
            ChangedAddress,
            ReflectedFrom,
            Priority,
            UseCandidate,
            IceControlled,
            IceControlling,
            ChannelNumber,
            Lifetime,
            XorPeerAddress,
            Data,
            XorRelayedAddress,
            RequestedAddressFamily,
            EvenPort,
            RequestedTransport,
            DontFragment,
            ReservationToken,
            AdditionalAddressFamily,
            AddressErrorCode,
            Icmp,
            ConnectionId
        )
    }
}

/// Implements [`EncodeAttribute`] for a type whose wire type is its [`DecodeAttribute::TYPE`].
macro_rules! encode_with {
    ($ty:ty, |$this:ident, $out:ident, $tid:ident| len = $len:expr; $body:block) => {
        impl $crate::attribute::EncodeAttribute for $ty {
            fn attribute_type(&self) -> $crate::attribute::AttributeType {
                <Self as $crate::attribute::DecodeAttribute<'_>>::TYPE
            }

            #[allow(unused_variables)]
            fn value_len(&self) -> usize {
                let $this = self;
                $len
            }

            #[allow(unused_variables)]
            fn encode_value(&self, $out: &mut [u8], $tid: &$crate::header::TransactionId) {
                let $this = self;
                $body
            }
        }
    };
}
pub(crate) use encode_with;

/// Implements `DecodeAttribute` for `$name` (attribute type `$ty`), whose value has a fixed
/// length, turned into the attribute by `$from`.
macro_rules! decode_fixed {
    ($name:ident = $ty:ident, $from:expr) => {
        impl<'a> $crate::attribute::DecodeAttribute<'a> for $name {
            const TYPE: $crate::attribute::AttributeType = $crate::attribute::AttributeType::$ty;

            fn decode(
                value: &'a [u8],
                _: &$crate::header::TransactionId,
            ) -> Result<Self, $crate::attribute::AttributeError> {
                $crate::attribute::fixed(Self::TYPE, value).map($from)
            }
        }
    };
}
pub(crate) use decode_fixed;

/// Declares attributes whose value is one big-endian integer.
macro_rules! integer_attributes {
    ($($(#[$doc:meta])* $name:ident($int:ty) = $ty:ident;)*) => {$(
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
        pub struct $name(pub $int);

        $crate::attribute::decode_fixed!($name = $ty, |b| $name(<$int>::from_be_bytes(b)));

        $crate::attribute::encode_with!($name, |this, out, tid| len = size_of::<$int>(); {
            out.copy_from_slice(&this.0.to_be_bytes())
        });
    )*};
}
pub(crate) use integer_attributes;

/// Declares attributes that carry no value: their presence is the message.
macro_rules! flag_attributes {
    ($($(#[$doc:meta])* $name:ident = $ty:ident;)*) => {$(
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
        pub struct $name;

        $crate::attribute::decode_fixed!($name = $ty, |_: [u8; 0]| $name);

        $crate::attribute::encode_with!($name, |this, out, tid| len = 0; {});
    )*};
}
pub(crate) use flag_attributes;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comprehension_ranges_follow_rfc_8489_section_14() {
        assert!(AttributeType::USERNAME.is_comprehension_required());
        assert!(!AttributeType::SOFTWARE.is_comprehension_required());
        assert!(AttributeType::new(0x7FFF).is_comprehension_required());
        assert!(!AttributeType::new(0x7FFF).is_known());
        assert_eq!(AttributeType::new(0x7FFF).to_string(), "attribute 0x7fff");
        assert_eq!(
            AttributeType::XOR_MAPPED_ADDRESS.to_string(),
            "XOR-MAPPED-ADDRESS"
        );
    }

    #[test]
    fn decoding_as_the_wrong_type_is_an_error() {
        let raw = RawAttribute {
            attribute_type: AttributeType::PRIORITY,
            value: &[0, 0, 0, 1],
        };
        let tid = TransactionId::from([0; 12]);
        assert_eq!(raw.decode::<Priority>(&tid), Ok(Priority(1)));
        assert_eq!(
            raw.decode::<Lifetime>(&tid),
            Err(AttributeError::WrongType {
                expected: AttributeType::LIFETIME,
                found: AttributeType::PRIORITY
            })
        );
    }
}
