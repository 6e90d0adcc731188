//! The 20-byte STUN header: message type (method and class), length, magic cookie and
//! transaction id (RFC 8489 §5), and the classic RFC 3489 header whose 128-bit transaction id
//! has no magic cookie (RFC 8489 §5, last paragraphs; RFC 3489 §11.1).

use std::fmt;

use rand_core::RngCore;

/// The fixed value of header bytes 4..8 in every RFC 5389/8489 message (RFC 8489 §5).
pub const MAGIC_COOKIE: u32 = 0x2112_A442;

/// The size of the STUN header in bytes.
pub const HEADER_LEN: usize = 20;

/// A STUN method: the 12-bit operation a message belongs to (Binding, Allocate, …).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Method(u16);

macro_rules! methods {
    ($($(#[$doc:meta])* $name:ident = $value:literal, $text:literal;)*) => {
        impl Method {
            $($(#[$doc])* pub const $name: Method = Method($value);)*

            /// The method's name as the RFCs spell it, if it is one we know.
            pub const fn name(self) -> Option<&'static str> {
                match self.0 {
                    $($value => Some($text),)*
                    _ => None,
                }
            }
        }
    };
}

methods! {
    /// Binding (RFC 8489 §18.2).
    BINDING = 0x001, "Binding";
    /// SharedSecret, the obsolete TLS username/password exchange of RFC 3489 §8.
    SHARED_SECRET = 0x002, "SharedSecret";
    /// Allocate (RFC 8656 §7).
    ALLOCATE = 0x003, "Allocate";
    /// Refresh (RFC 8656 §8).
    REFRESH = 0x004, "Refresh";
    /// Send indication (RFC 8656 §10).
    SEND = 0x006, "Send";
    /// Data indication (RFC 8656 §10).
    DATA = 0x007, "Data";
    /// CreatePermission (RFC 8656 §9).
    CREATE_PERMISSION = 0x008, "CreatePermission";
    /// ChannelBind (RFC 8656 §11).
    CHANNEL_BIND = 0x009, "ChannelBind";
    /// Connect (RFC 6062 §4.3).
    CONNECT = 0x00A, "Connect";
    /// ConnectionBind (RFC 6062 §4.4).
    CONNECTION_BIND = 0x00B, "ConnectionBind";
    /// ConnectionAttempt (RFC 6062 §4.5).
    CONNECTION_ATTEMPT = 0x00C, "ConnectionAttempt";
}

impl Method {
    /// A method from its 12-bit number; `None` if the number needs more than 12 bits.
    pub const fn new(value: u16) -> Option<Method> {
        if value <= 0x0FFF {
            Some(Method(value))
        } else {
            None
        }
    }

    /// The 12-bit method number.
    pub const fn value(self) -> u16 {
        self.0
    }

    /// Whether the method is one of TURN's (RFC 8656 §18): Allocate, Refresh, Send, Data,
    /// CreatePermission or ChannelBind. RFC 3489 had none of them, so a message of one of
    /// these methods without the magic cookie is no STUN a server answers.
    pub const fn is_turn(self) -> bool {
        matches!(self.0, 0x003 | 0x004 | 0x006..=0x009)
    }
}

impl fmt::Debug for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "Method({:#05x})", self.0),
        }
    }
}

/// The class of a message (RFC 8489 §5). Two bits on the wire, so this enum is complete.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Class {
    /// A request, answered by a success or error response.
    Request,
    /// An indication: no response.
    Indication,
    /// A success response.
    Success,
    /// An error response.
    Error,
}

impl Class {
    const fn bits(self) -> u16 {
        match self {
            Class::Request => 0b00,
            Class::Indication => 0b01,
            Class::Success => 0b10,
            Class::Error => 0b11,
        }
    }

    /// Whether this class is a response (success or error).
    pub const fn is_response(self) -> bool {
        matches!(self, Class::Success | Class::Error)
    }
}

/// The 14-bit message type: a method and a class interleaved (RFC 8489 §5, Figure 3).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct MessageType {
    method: Method,
    class: Class,
}

impl MessageType {
    /// Binding request.
    pub const BINDING_REQUEST: MessageType = MessageType::new(Method::BINDING, Class::Request);
    /// Binding success response.
    pub const BINDING_SUCCESS: MessageType = MessageType::new(Method::BINDING, Class::Success);
    /// Binding error response.
    pub const BINDING_ERROR: MessageType = MessageType::new(Method::BINDING, Class::Error);
    /// Binding indication (keepalives, RFC 8489 §6.3.2).
    pub const BINDING_INDICATION: MessageType =
        MessageType::new(Method::BINDING, Class::Indication);

    /// A message type from its method and class.
    pub const fn new(method: Method, class: Class) -> Self {
        Self { method, class }
    }

    /// Decodes the first two header bytes; `None` if either of the top two bits is set.
    pub const fn from_bits(bits: u16) -> Option<Self> {
        if bits & 0xC000 != 0 {
            return None;
        }
        let class = match ((bits >> 7) & 0b10) | ((bits >> 4) & 0b01) {
            0b00 => Class::Request,
            0b01 => Class::Indication,
            0b10 => Class::Success,
            _ => Class::Error,
        };
        let method = (bits & 0x000F) | ((bits >> 1) & 0x0070) | ((bits >> 2) & 0x0F80);
        Some(Self {
            method: Method(method),
            class,
        })
    }

    /// Encodes as the first two header bytes: M11..M7 C1 M6..M4 C0 M3..M0.
    pub const fn to_bits(self) -> u16 {
        let m = self.method.0;
        let c = self.class.bits();
        (m & 0x000F)
            | ((m & 0x0070) << 1)
            | ((m & 0x0F80) << 2)
            | ((c & 0b01) << 4)
            | ((c & 0b10) << 7)
    }

    /// The method.
    pub const fn method(self) -> Method {
        self.method
    }

    /// The class.
    pub const fn class(self) -> Class {
        self.class
    }

    /// The same method with another class: the type of the response to a request.
    pub const fn with_class(self, class: Class) -> Self {
        Self {
            method: self.method,
            class,
        }
    }
}

impl fmt::Debug for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {:?}", self.method, self.class)
    }
}

/// The 96-bit transaction id of an RFC 5389/8489 message (RFC 8489 §5).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TransactionId([u8; 12]);

impl TransactionId {
    /// A new id drawn from the caller's RNG (RFC 8489 §6: "uniformly and randomly chosen";
    /// use a cryptographically secure RNG where ids must not be guessable).
    pub fn random<R: RngCore + ?Sized>(rng: &mut R) -> Self {
        let mut id = [0; 12];
        rng.fill_bytes(&mut id);
        Self(id)
    }

    /// The id's bytes.
    pub const fn as_bytes(&self) -> &[u8; 12] {
        &self.0
    }
}

impl From<[u8; 12]> for TransactionId {
    fn from(bytes: [u8; 12]) -> Self {
        Self(bytes)
    }
}

impl fmt::Debug for TransactionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TransactionId(")?;
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        f.write_str(")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_type_bits_match_rfc_8489_figure_3() {
        // The RFC's examples: Binding request 0x0001, success 0x0101, error 0x0111,
        // indication 0x0011; TURN's Send indication 0x0016 and Allocate error 0x0113.
        let cases = [
            (MessageType::BINDING_REQUEST, 0x0001),
            (MessageType::BINDING_SUCCESS, 0x0101),
            (MessageType::BINDING_ERROR, 0x0111),
            (MessageType::BINDING_INDICATION, 0x0011),
            (MessageType::new(Method::SEND, Class::Indication), 0x0016),
            (MessageType::new(Method::ALLOCATE, Class::Error), 0x0113),
            (MessageType::new(Method(0xFFF), Class::Error), 0x3FFF),
        ];
        for (ty, bits) in cases {
            assert_eq!(ty.to_bits(), bits, "{ty:?}");
            assert_eq!(MessageType::from_bits(bits), Some(ty), "{bits:#06x}");
        }
    }

    #[test]
    fn every_14_bit_type_round_trips_and_top_bits_are_rejected() {
        for bits in 0..=0x3FFF_u16 {
            let ty = MessageType::from_bits(bits).map(MessageType::to_bits);
            assert_eq!(ty, Some(bits));
        }
        assert_eq!(MessageType::from_bits(0x4001), None);
        assert_eq!(MessageType::from_bits(0x8001), None);
    }

    #[test]
    fn methods_are_twelve_bits() {
        assert_eq!(Method::new(0x1000), None);
        assert_eq!(Method::new(0x0FFF).map(Method::value), Some(0x0FFF));
        assert_eq!(Method::ALLOCATE.to_string(), "Allocate");
        assert_eq!(Method(0x123).to_string(), "Method(0x123)");
    }
}
