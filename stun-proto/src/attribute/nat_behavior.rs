//! The RFC 5780 NAT behaviour discovery attributes that are not addresses: CHANGE-REQUEST
//! (§7.2), RESPONSE-PORT (§7.5) and PADDING (§7.6). RESPONSE-ORIGIN and OTHER-ADDRESS live with
//! the other address attributes.

use bytes::BufMut;

use super::{AttributeError, AttributeType, DecodeAttribute, encode_with, fixed};
use crate::header::TransactionId;

/// CHANGE-REQUEST: ask the server to answer from its other IP address and/or port
/// (RFC 5780 §7.2, the flags of RFC 3489 §11.2.4).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct ChangeRequest {
    /// The "A" flag: answer from the other IP address.
    pub change_ip: bool,
    /// The "B" flag: answer from the other port.
    pub change_port: bool,
}

impl ChangeRequest {
    const CHANGE_IP: u32 = 0x04;
    const CHANGE_PORT: u32 = 0x02;
}

impl<'a> DecodeAttribute<'a> for ChangeRequest {
    const TYPE: AttributeType = AttributeType::CHANGE_REQUEST;

    fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, AttributeError> {
        let flags = u32::from_be_bytes(fixed(Self::TYPE, value)?);
        Ok(ChangeRequest {
            change_ip: flags & Self::CHANGE_IP != 0,
            change_port: flags & Self::CHANGE_PORT != 0,
        })
    }
}

encode_with!(ChangeRequest, |this, out, tid| len = 4; {
    let mut out = out;
    let ip = if this.change_ip { ChangeRequest::CHANGE_IP } else { 0 };
    let port = if this.change_port { ChangeRequest::CHANGE_PORT } else { 0 };
    out.put_u32(ip | port);
});

/// RESPONSE-PORT: the port the server should send the response to (RFC 5780 §7.5).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct ResponsePort(pub u16);

impl<'a> DecodeAttribute<'a> for ResponsePort {
    const TYPE: AttributeType = AttributeType::RESPONSE_PORT;

    fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, AttributeError> {
        let [hi, lo, _, _] = fixed(Self::TYPE, value)?;
        Ok(ResponsePort(u16::from_be_bytes([hi, lo])))
    }
}

encode_with!(ResponsePort, |this, out, tid| len = 4; {
    let mut out = out;
    out.put_u16(this.0);
    out.put_u16(0);
});

/// PADDING: filler that makes a message larger, to probe fragmentation (RFC 5780 §7.6).
/// Only its length matters; it is written as zeros.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Padding {
    /// The value's length in bytes.
    pub len: u16,
}

impl<'a> DecodeAttribute<'a> for Padding {
    const TYPE: AttributeType = AttributeType::PADDING;

    fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, AttributeError> {
        // A value longer than 65535 bytes cannot stand in a STUN message.
        let len = u16::try_from(value.len()).unwrap_or(u16::MAX);
        Ok(Padding { len })
    }
}

encode_with!(Padding, |this, out, tid| len = usize::from(this.len); { out.fill(0) });

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_request_flags_are_bits_a_and_b() {
        let tid = TransactionId::from([0; 12]);
        let both = ChangeRequest {
            change_ip: true,
            change_port: true,
        };
        assert_eq!(ChangeRequest::decode(&[0, 0, 0, 6], &tid), Ok(both));
        assert_eq!(
            ChangeRequest::decode(&[0, 0, 0, 2], &tid),
            Ok(ChangeRequest {
                change_ip: false,
                change_port: true
            })
        );
        assert_eq!(
            ResponsePort::decode(&[0x0d, 0x96, 0xff, 0xff], &tid),
            Ok(ResponsePort(3478))
        );
    }
}
