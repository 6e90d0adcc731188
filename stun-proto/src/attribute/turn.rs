//! The TURN attributes of RFC 8656 §18 that are not addresses, and RFC 6062's CONNECTION-ID:
//! CHANNEL-NUMBER, LIFETIME, DATA, REQUESTED-ADDRESS-FAMILY, EVEN-PORT, REQUESTED-TRANSPORT,
//! DONT-FRAGMENT, RESERVATION-TOKEN, ADDITIONAL-ADDRESS-FAMILY, ICMP.

use std::time::Duration;

use bytes::BufMut;

use super::{
    AddressFamily, AttributeError, AttributeType, DecodeAttribute, encode_with, fixed,
    flag_attributes, integer_attributes,
};
use crate::header::TransactionId;

integer_attributes! {
    /// LIFETIME: an allocation's remaining lifetime in seconds (RFC 8656 §18.2).
    Lifetime(u32) = LIFETIME;
    /// CONNECTION-ID: a TCP connection a TURN server relays (RFC 6062 §6.2.1).
    ConnectionId(u32) = CONNECTION_ID;
}

flag_attributes! {
    /// DONT-FRAGMENT: set the DF bit towards the peer (RFC 8656 §18.9).
    DontFragment = DONT_FRAGMENT;
}

impl Lifetime {
    /// The lifetime as a duration.
    pub const fn as_duration(self) -> Duration {
        Duration::from_secs(self.0 as u64)
    }
}

/// CHANNEL-NUMBER: a channel in 0x4000..=0x4FFF, followed by two reserved bytes
/// (RFC 8656 §18.1). The range is checked by the TURN machines, which answer 400.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct ChannelNumber(pub u16);

impl<'a> DecodeAttribute<'a> for ChannelNumber {
    const TYPE: AttributeType = AttributeType::CHANNEL_NUMBER;

    fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, AttributeError> {
        let [hi, lo, _, _] = fixed(Self::TYPE, value)?;
        Ok(ChannelNumber(u16::from_be_bytes([hi, lo])))
    }
}

encode_with!(ChannelNumber, |this, out, tid| len = 4; {
    let mut out = out;
    out.put_u16(this.0);
    out.put_u16(0);
});

/// DATA: application data in a Send or Data indication (RFC 8656 §18.4).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Data<'a>(pub &'a [u8]);

impl<'a> DecodeAttribute<'a> for Data<'a> {
    const TYPE: AttributeType = AttributeType::DATA;

    fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, AttributeError> {
        Ok(Data(value))
    }
}

encode_with!(Data<'_>, |this, out, tid| len = this.0.len(); { out.copy_from_slice(this.0) });

/// Declares the attributes that carry an address family byte and three reserved bytes.
macro_rules! family_attributes {
    ($($(#[$doc:meta])* $name:ident = $ty:ident;)*) => {$(
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
        pub struct $name(pub AddressFamily);

        impl<'a> DecodeAttribute<'a> for $name {
            const TYPE: AttributeType = AttributeType::$ty;

            fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, AttributeError> {
                let [family, ..] = fixed::<4>(Self::TYPE, value)?;
                AddressFamily::from_byte(Self::TYPE, family).map($name)
            }
        }

        encode_with!($name, |this, out, tid| len = 4; {
            let mut out = out;
            out.put_u8(this.0.to_byte());
            out.put_slice(&[0; 3]);
        });
    )*};
}

family_attributes! {
    /// REQUESTED-ADDRESS-FAMILY: the family of the relayed address wanted (RFC 8656 §18.6).
    RequestedAddressFamily = REQUESTED_ADDRESS_FAMILY;
    /// ADDITIONAL-ADDRESS-FAMILY: ask for an IPv6 relayed address as well (RFC 8656 §18.11).
    AdditionalAddressFamily = ADDITIONAL_ADDRESS_FAMILY;
}

/// EVEN-PORT: ask for an even relayed port, and with `reserve` the next one too
/// (RFC 8656 §18.7).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct EvenPort {
    /// The R bit: reserve the next higher port for a later allocation.
    pub reserve: bool,
}

impl<'a> DecodeAttribute<'a> for EvenPort {
    const TYPE: AttributeType = AttributeType::EVEN_PORT;

    fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, AttributeError> {
        let [flags] = fixed(Self::TYPE, value)?;
        Ok(EvenPort {
            reserve: flags & 0x80 != 0,
        })
    }
}

encode_with!(EvenPort, |this, out, tid| len = 1; {
    let mut out = out;
    out.put_u8(if this.reserve { 0x80 } else { 0 })
});

/// REQUESTED-TRANSPORT: the transport of the relayed address, as an IP protocol number
/// (RFC 8656 §18.8).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct RequestedTransport(pub u8);

impl RequestedTransport {
    /// UDP (protocol 17), the only transport RFC 8656 relays.
    pub const UDP: RequestedTransport = RequestedTransport(17);
    /// TCP (protocol 6), for RFC 6062 allocations.
    pub const TCP: RequestedTransport = RequestedTransport(6);
}

impl<'a> DecodeAttribute<'a> for RequestedTransport {
    const TYPE: AttributeType = AttributeType::REQUESTED_TRANSPORT;

    fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, AttributeError> {
        let [protocol, ..] = fixed::<4>(Self::TYPE, value)?;
        Ok(RequestedTransport(protocol))
    }
}

encode_with!(RequestedTransport, |this, out, tid| len = 4; {
    let mut out = out;
    out.put_u8(this.0);
    out.put_slice(&[0; 3]);
});

/// RESERVATION-TOKEN: names a relayed port reserved by an earlier EVEN-PORT (RFC 8656 §18.10).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct ReservationToken(pub [u8; 8]);

impl<'a> DecodeAttribute<'a> for ReservationToken {
    const TYPE: AttributeType = AttributeType::RESERVATION_TOKEN;

    fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, AttributeError> {
        fixed(Self::TYPE, value).map(ReservationToken)
    }
}

encode_with!(ReservationToken, |this, out, tid| len = 8; { out.copy_from_slice(&this.0) });

/// ICMP: an ICMP error a TURN server received for a peer (RFC 8656 §18.13). The type has
/// 7 bits and the code 9, after 16 reserved bits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Icmp {
    /// The ICMP (or ICMPv6) type, 0..=127.
    pub icmp_type: u8,
    /// The ICMP code, 0..=511.
    pub code: u16,
    /// The error data (the MTU for "packet too big", otherwise zero).
    pub error_data: u32,
}

impl<'a> DecodeAttribute<'a> for Icmp {
    const TYPE: AttributeType = AttributeType::ICMP;

    fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, AttributeError> {
        let [_, _, hi, lo, d0, d1, d2, d3] = fixed(Self::TYPE, value)?;
        let type_and_code = u16::from_be_bytes([hi, lo]);
        Ok(Icmp {
            icmp_type: (type_and_code >> 9) as u8,
            code: type_and_code & 0x01FF,
            error_data: u32::from_be_bytes([d0, d1, d2, d3]),
        })
    }
}

encode_with!(Icmp, |this, out, tid| len = 8; {
    let mut out = out;
    out.put_u16(0);
    out.put_u16((u16::from(this.icmp_type & 0x7F) << 9) | (this.code & 0x01FF));
    out.put_u32(this.error_data);
});

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attribute::EncodeAttribute;

    fn round_trip<T>(attr: T) -> T
    where
        T: EncodeAttribute + for<'a> DecodeAttribute<'a>,
    {
        let tid = TransactionId::from([7; 12]);
        let mut out = vec![0; attr.value_len()];
        attr.encode_value(&mut out, &tid);
        T::decode(&out, &tid).unwrap()
    }

    #[test]
    fn turn_attributes_round_trip() {
        assert_eq!(round_trip(ChannelNumber(0x4001)), ChannelNumber(0x4001));
        assert_eq!(
            round_trip(Lifetime(600)).as_duration(),
            Duration::from_secs(600)
        );
        assert_eq!(
            round_trip(EvenPort { reserve: true }),
            EvenPort { reserve: true }
        );
        assert_eq!(round_trip(RequestedTransport::UDP), RequestedTransport(17));
        let icmp = Icmp {
            icmp_type: 3,
            code: 4,
            error_data: 1400,
        };
        assert_eq!(round_trip(icmp), icmp);
        let family = RequestedAddressFamily(AddressFamily::Ipv6);
        assert_eq!(round_trip(family), family);
    }

    #[test]
    fn family_attributes_reject_unknown_families() {
        let tid = TransactionId::from([0; 12]);
        assert_eq!(
            AdditionalAddressFamily::decode(&[3, 0, 0, 0], &tid),
            Err(AttributeError::BadAddressFamily {
                attribute: AttributeType::ADDITIONAL_ADDRESS_FAMILY,
                family: 3
            })
        );
    }
}
