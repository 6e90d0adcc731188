//! Address attributes: MAPPED-ADDRESS and its RFC 3489 / RFC 5780 siblings, which carry a plain
//! address (RFC 8489 §14.1), and XOR-MAPPED-ADDRESS, XOR-PEER-ADDRESS and XOR-RELAYED-ADDRESS,
//! whose address is XORed with the magic cookie and transaction id (RFC 8489 §14.2).
//!
//! Wire format: one reserved byte (ignored on receipt), the family (0x01 IPv4, 0x02 IPv6), the
//! port, then 4 or 16 address bytes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use bytes::BufMut;

use super::{AttributeError, AttributeType, DecodeAttribute, encode_with};
use crate::header::{MAGIC_COOKIE, TransactionId};
use crate::wire::Reader;

/// An IP address family as TURN and the address attributes number it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum AddressFamily {
    /// IPv4, 0x01.
    Ipv4,
    /// IPv6, 0x02.
    Ipv6,
}

impl AddressFamily {
    /// The family byte on the wire.
    pub const fn to_byte(self) -> u8 {
        match self {
            AddressFamily::Ipv4 => 0x01,
            AddressFamily::Ipv6 => 0x02,
        }
    }

    /// The family of an IP address.
    pub const fn of(ip: &IpAddr) -> Self {
        match ip {
            IpAddr::V4(_) => AddressFamily::Ipv4,
            IpAddr::V6(_) => AddressFamily::Ipv6,
        }
    }

    pub(crate) fn from_byte(attribute: AttributeType, family: u8) -> Result<Self, AttributeError> {
        match family {
            0x01 => Ok(AddressFamily::Ipv4),
            0x02 => Ok(AddressFamily::Ipv6),
            _ => Err(AttributeError::BadAddressFamily { attribute, family }),
        }
    }
}

fn encoded_len(addr: &SocketAddr) -> usize {
    match addr {
        SocketAddr::V4(_) => 8,
        SocketAddr::V6(_) => 20,
    }
}

/// The 16 bytes an address is XORed with: the magic cookie, then the transaction id.
fn xor_key(tid: &TransactionId) -> [u8; 16] {
    let mut key = [0; 16];
    let (cookie, id) = key.split_at_mut(4);
    cookie.copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
    id.copy_from_slice(tid.as_bytes());
    key
}

/// XORs (or un-XORs: it is its own inverse) an address as RFC 8489 §14.2 describes.
fn xor(addr: SocketAddr, tid: &TransactionId) -> SocketAddr {
    let port = addr.port() ^ (MAGIC_COOKIE >> 16) as u16;
    let ip = match addr.ip() {
        IpAddr::V4(ip) => IpAddr::V4(Ipv4Addr::from(u32::from(ip) ^ MAGIC_COOKIE)),
        IpAddr::V6(ip) => IpAddr::V6(Ipv6Addr::from(
            u128::from(ip) ^ u128::from_be_bytes(xor_key(tid)),
        )),
    };
    SocketAddr::new(ip, port)
}

fn decode_plain(attribute: AttributeType, value: &[u8]) -> Result<SocketAddr, AttributeError> {
    let bad_len = |min, max| AttributeError::BadLength {
        attribute,
        len: value.len(),
        min,
        max,
    };
    let mut r = Reader::new(value);
    let (Some(_reserved), Some(family), Some(port)) = (r.u8(), r.u8(), r.u16()) else {
        return Err(bad_len(8, 20));
    };
    let ip = match AddressFamily::from_byte(attribute, family)? {
        AddressFamily::Ipv4 => r
            .array::<4>()
            .map(IpAddr::from)
            .filter(|_| r.remaining() == 0),
        AddressFamily::Ipv6 => r
            .array::<16>()
            .map(IpAddr::from)
            .filter(|_| r.remaining() == 0),
    };
    match (ip, family) {
        (Some(ip), _) => Ok(SocketAddr::new(ip, port)),
        (None, 0x01) => Err(bad_len(8, 8)),
        (None, _) => Err(bad_len(20, 20)),
    }
}

fn encode_plain(addr: &SocketAddr, mut out: &mut [u8]) {
    out.put_u8(0);
    out.put_u8(AddressFamily::of(&addr.ip()).to_byte());
    out.put_u16(addr.port());
    match addr.ip() {
        IpAddr::V4(ip) => out.put_slice(&ip.octets()),
        IpAddr::V6(ip) => out.put_slice(&ip.octets()),
    }
}

/// Declares address attributes: a newtype over `SocketAddr` per attribute type, all sharing
/// one wire format; `xor` ones are XORed with the cookie and transaction id.
macro_rules! address_attributes {
    ($($(#[$doc:meta])* $name:ident = $ty:ident, $mode:ident;)*) => {$(
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
        pub struct $name(pub SocketAddr);

        impl<'a> DecodeAttribute<'a> for $name {
            const TYPE: AttributeType = AttributeType::$ty;

            #[allow(unused_variables)] // plain addresses ignore the transaction id
            fn decode(value: &'a [u8], tid: &TransactionId) -> Result<Self, AttributeError> {
                let addr = decode_plain(Self::TYPE, value)?;
                Ok($name(address_attributes!(@apply $mode, addr, tid)))
            }
        }

        encode_with!($name, |this, out, tid| len = encoded_len(&this.0); {
            encode_plain(&address_attributes!(@apply $mode, this.0, tid), out)
        });
    )*};
    (@apply plain, $addr:expr, $tid:expr) => { $addr };
    (@apply xor, $addr:expr, $tid:expr) => { xor($addr, $tid) };
}

address_attributes! {
    /// MAPPED-ADDRESS: the reflexive address, in the clear, as RFC 3489 servers send it
    /// (RFC 8489 §14.1).
    MappedAddress = MAPPED_ADDRESS, plain;
    /// XOR-MAPPED-ADDRESS: the reflexive address, obfuscated against NATs that rewrite
    /// addresses in payloads (RFC 8489 §14.2).
    XorMappedAddress = XOR_MAPPED_ADDRESS, xor;
    /// XOR-PEER-ADDRESS: a peer's address as the TURN server sees it (RFC 8656 §18.3).
    XorPeerAddress = XOR_PEER_ADDRESS, xor;
    /// XOR-RELAYED-ADDRESS: the relayed transport address of an allocation (RFC 8656 §18.5).
    XorRelayedAddress = XOR_RELAYED_ADDRESS, xor;
    /// ALTERNATE-SERVER: where a client should retry (RFC 8489 §14.15).
    AlternateServer = ALTERNATE_SERVER, plain;
    /// RESPONSE-ORIGIN: the address the response was sent from (RFC 5780 §7.3).
    ResponseOrigin = RESPONSE_ORIGIN, plain;
    /// OTHER-ADDRESS: the server's alternate address and port (RFC 5780 §7.4).
    OtherAddress = OTHER_ADDRESS, plain;
    /// RESPONSE-ADDRESS: where an RFC 3489 server should send the response (RFC 3489 §11.2.2).
    ResponseAddress = RESPONSE_ADDRESS, plain;
    /// SOURCE-ADDRESS: the address an RFC 3489 server sent from (RFC 3489 §11.2.5).
    SourceAddress = SOURCE_ADDRESS, plain;
    /// CHANGED-ADDRESS: an RFC 3489 server's alternate address (RFC 3489 §11.2.3).
    ChangedAddress = CHANGED_ADDRESS, plain;
    /// REFLECTED-FROM: whom an RFC 3489 server reflected a request for (RFC 3489 §11.2.11).
    ReflectedFrom = REFLECTED_FROM, plain;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attribute::EncodeAttribute;

    const TID: [u8; 12] = [
        0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
    ];

    fn encode(attr: &impl EncodeAttribute) -> Vec<u8> {
        let mut out = vec![0; attr.value_len()];
        attr.encode_value(&mut out, &TID.into());
        out
    }

    #[test]
    fn xor_mapped_address_matches_rfc_5769_ipv4_and_ipv6() {
        let v4: SocketAddr = "192.0.2.1:32853".parse().unwrap();
        let wire = [0x00, 0x01, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43];
        assert_eq!(encode(&XorMappedAddress(v4)), wire);
        assert_eq!(
            XorMappedAddress::decode(&wire, &TID.into()),
            Ok(XorMappedAddress(v4))
        );

        let v6: SocketAddr = "[2001:db8:1234:5678:11:2233:4455:6677]:32853"
            .parse()
            .unwrap();
        let wire = [
            0x00, 0x02, 0xa1, 0x47, 0x01, 0x13, 0xa9, 0xfa, 0xa5, 0xd3, 0xf1, 0x79, 0xbc, 0x25,
            0xf4, 0xb5, 0xbe, 0xd2, 0xb9, 0xd9,
        ];
        assert_eq!(encode(&XorMappedAddress(v6)), wire);
        assert_eq!(
            XorMappedAddress::decode(&wire, &TID.into()),
            Ok(XorMappedAddress(v6))
        );
    }

    #[test]
    fn plain_addresses_are_not_xored_and_ignore_the_reserved_byte() {
        let addr: SocketAddr = "10.0.0.1:3478".parse().unwrap();
        let wire = encode(&MappedAddress(addr));
        assert_eq!(wire, [0, 1, 0x0d, 0x96, 10, 0, 0, 1]);
        let mut liberal = wire.clone();
        liberal[0] = 0xff;
        assert_eq!(
            MappedAddress::decode(&liberal, &TID.into()),
            Ok(MappedAddress(addr))
        );
    }

    #[test]
    fn malformed_addresses_name_their_fault() {
        let tid = TID.into();
        assert_eq!(
            MappedAddress::decode(&[0, 3, 0, 1, 1, 2, 3, 4], &tid),
            Err(AttributeError::BadAddressFamily {
                attribute: AttributeType::MAPPED_ADDRESS,
                family: 3
            })
        );
        assert!(matches!(
            XorMappedAddress::decode(&[0, 1, 0, 1, 1, 2, 3], &tid),
            Err(AttributeError::BadLength {
                len: 7,
                min: 8,
                max: 8,
                ..
            })
        ));
        assert!(matches!(
            XorMappedAddress::decode(&[0, 2, 0, 1, 1, 2, 3, 4], &tid),
            Err(AttributeError::BadLength {
                len: 8,
                min: 20,
                max: 20,
                ..
            })
        ));
        assert!(matches!(
            XorPeerAddress::decode(&[0, 1], &tid),
            Err(AttributeError::BadLength { len: 2, .. })
        ));
    }
}
