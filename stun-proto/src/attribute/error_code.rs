//! Error reporting attributes: ERROR-CODE (RFC 8489 §14.8) with the reason phrases of
//! RFC 8489 §14.8 and RFC 8656 §19, UNKNOWN-ATTRIBUTES (RFC 8489 §14.13) and TURN's
//! ADDRESS-ERROR-CODE (RFC 8656 §18.12).

use bytes::BufMut;

use super::{
    AddressFamily, AttributeError, AttributeType, DecodeAttribute, EncodeAttribute, ListRepr,
    encode_with,
};
use crate::header::TransactionId;
use crate::wire::Reader;

/// The longest reason phrase, in bytes (RFC 8489 §14.8: fewer than 128 characters, 763 bytes).
const MAX_REASON_BYTES: usize = 763;

/// The reason phrase RFC 8489 §14.8 or RFC 8656 §19 gives a code; `""` for others.
pub const fn reason_phrase(code: u16) -> &'static str {
    match code {
        300 => "Try Alternate",
        400 => "Bad Request",
        401 => "Unauthenticated",
        403 => "Forbidden",
        405 => "Mobility Forbidden",
        420 => "Unknown Attribute",
        437 => "Allocation Mismatch",
        438 => "Stale Nonce",
        440 => "Address Family not Supported",
        441 => "Wrong Credentials",
        442 => "Unsupported Transport Protocol",
        443 => "Peer Address Family Mismatch",
        446 => "Connection Already Exists",
        447 => "Connection Timeout or Failure",
        486 => "Allocation Quota Reached",
        487 => "Role Conflict",
        500 => "Server Error",
        508 => "Insufficient Capacity",
        _ => "",
    }
}

/// Reads the class/number word and the reason that follows it.
fn read_code_and_reason<'a>(
    attribute: AttributeType,
    r: &mut Reader<'a>,
) -> Result<(u16, &'a str), AttributeError> {
    let bad_len = |len| AttributeError::BadLength {
        attribute,
        len,
        min: 4,
        max: 4 + MAX_REASON_BYTES,
    };
    let total = r.remaining() + 2;
    let (Some(class), Some(number)) = (r.u8(), r.u8()) else {
        return Err(bad_len(total));
    };
    let code = u16::from(class & 0x07) * 100 + u16::from(number);
    if !(3..=6).contains(&(class & 0x07)) || number > 99 {
        return Err(AttributeError::BadErrorCode { code });
    }
    let reason = r.bytes(r.remaining()).unwrap_or_default();
    if reason.len() > MAX_REASON_BYTES {
        return Err(bad_len(total));
    }
    let reason =
        std::str::from_utf8(reason).map_err(|_| AttributeError::InvalidUtf8 { attribute })?;
    Ok((code, reason))
}

fn check_code(code: u16, reason: &str) -> Result<(), AttributeError> {
    if !(300..=699).contains(&code) {
        return Err(AttributeError::BadErrorCode { code });
    }
    if reason.len() > MAX_REASON_BYTES {
        return Err(AttributeError::BadLength {
            attribute: AttributeType::ERROR_CODE,
            len: reason.len() + 4,
            min: 4,
            max: MAX_REASON_BYTES + 4,
        });
    }
    Ok(())
}

/// ERROR-CODE: a numeric code in 300..=699 and a reason phrase (RFC 8489 §14.8).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct ErrorCode<'a> {
    code: u16,
    reason: &'a str,
}

impl<'a> ErrorCode<'a> {
    /// 300 Try Alternate.
    pub const TRY_ALTERNATE: u16 = 300;
    /// 400 Bad Request.
    pub const BAD_REQUEST: u16 = 400;
    /// 401 Unauthenticated.
    pub const UNAUTHENTICATED: u16 = 401;
    /// 403 Forbidden.
    pub const FORBIDDEN: u16 = 403;
    /// 420 Unknown Attribute.
    pub const UNKNOWN_ATTRIBUTE: u16 = 420;
    /// 437 Allocation Mismatch.
    pub const ALLOCATION_MISMATCH: u16 = 437;
    /// 438 Stale Nonce.
    pub const STALE_NONCE: u16 = 438;
    /// 440 Address Family not Supported.
    pub const ADDRESS_FAMILY_NOT_SUPPORTED: u16 = 440;
    /// 441 Wrong Credentials.
    pub const WRONG_CREDENTIALS: u16 = 441;
    /// 442 Unsupported Transport Protocol.
    pub const UNSUPPORTED_TRANSPORT: u16 = 442;
    /// 443 Peer Address Family Mismatch.
    pub const PEER_ADDRESS_FAMILY_MISMATCH: u16 = 443;
    /// 446 Connection Already Exists (RFC 6062 §6.3).
    pub const CONNECTION_ALREADY_EXISTS: u16 = 446;
    /// 447 Connection Timeout or Failure (RFC 6062 §6.3).
    pub const CONNECTION_TIMEOUT_OR_FAILURE: u16 = 447;
    /// 486 Allocation Quota Reached.
    pub const ALLOCATION_QUOTA_REACHED: u16 = 486;
    /// 487 Role Conflict.
    pub const ROLE_CONFLICT: u16 = 487;
    /// 500 Server Error.
    pub const SERVER_ERROR: u16 = 500;
    /// 508 Insufficient Capacity.
    pub const INSUFFICIENT_CAPACITY: u16 = 508;

    /// An error code with its standard reason phrase.
    pub fn new(code: u16) -> Result<ErrorCode<'static>, AttributeError> {
        ErrorCode::with_reason(code, reason_phrase(code))
    }

    /// An error code with a reason phrase of the caller's.
    pub fn with_reason(code: u16, reason: &'a str) -> Result<Self, AttributeError> {
        check_code(code, reason)?;
        Ok(ErrorCode { code, reason })
    }

    /// The code, class × 100 + number.
    pub const fn code(&self) -> u16 {
        self.code
    }

    /// The reason phrase.
    pub const fn reason(&self) -> &'a str {
        self.reason
    }
}

impl<'a> DecodeAttribute<'a> for ErrorCode<'a> {
    const TYPE: AttributeType = AttributeType::ERROR_CODE;

    fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, AttributeError> {
        let mut r = Reader::new(value);
        r.u16().ok_or(AttributeError::BadLength {
            attribute: Self::TYPE,
            len: value.len(),
            min: 4,
            max: 767,
        })?;
        let (code, reason) = read_code_and_reason(Self::TYPE, &mut r)?;
        Ok(ErrorCode { code, reason })
    }
}

encode_with!(ErrorCode<'_>, |this, out, tid| len = 4 + this.reason.len(); {
    let mut out = out;
    out.put_u16(0);
    out.put_u8((this.code / 100) as u8);
    out.put_u8((this.code % 100) as u8);
    out.put_slice(this.reason.as_bytes());
});

/// ADDRESS-ERROR-CODE: why a TURN server could not allocate for one address family
/// (RFC 8656 §18.12).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct AddressErrorCode<'a> {
    /// The family the error is about.
    pub family: AddressFamily,
    error: ErrorCode<'a>,
}

impl<'a> AddressErrorCode<'a> {
    /// An address error for `family`.
    pub const fn new(family: AddressFamily, error: ErrorCode<'a>) -> Self {
        Self { family, error }
    }

    /// The error code and reason.
    pub const fn error(&self) -> ErrorCode<'a> {
        self.error
    }
}

impl<'a> DecodeAttribute<'a> for AddressErrorCode<'a> {
    const TYPE: AttributeType = AttributeType::ADDRESS_ERROR_CODE;

    fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, AttributeError> {
        let mut r = Reader::new(value);
        let (Some(family), Some(_reserved)) = (r.u8(), r.u8()) else {
            return Err(AttributeError::BadLength {
                attribute: Self::TYPE,
                len: value.len(),
                min: 4,
                max: 767,
            });
        };
        let family = AddressFamily::from_byte(Self::TYPE, family)?;
        let (code, reason) = read_code_and_reason(Self::TYPE, &mut r)?;
        Ok(AddressErrorCode {
            family,
            error: ErrorCode { code, reason },
        })
    }
}

encode_with!(AddressErrorCode<'_>, |this, out, tid| len = 4 + this.error.reason.len(); {
    let mut out = out;
    out.put_u8(this.family.to_byte());
    out.put_u8(0);
    out.put_u8((this.error.code / 100) as u8);
    out.put_u8((this.error.code % 100) as u8);
    out.put_slice(this.error.reason.as_bytes());
});

/// UNKNOWN-ATTRIBUTES: the comprehension-required attributes a server did not understand,
/// sent with 420 (RFC 8489 §14.13).
#[derive(Clone, Copy, Debug)]
pub struct UnknownAttributes<'a>(ListRepr<'a, AttributeType>);

impl<'a> UnknownAttributes<'a> {
    /// The attribute listing `types`.
    pub const fn new(types: &'a [AttributeType]) -> Self {
        UnknownAttributes(ListRepr::Items(types))
    }

    /// The attribute types, in order.
    pub fn iter(&self) -> impl Iterator<Item = AttributeType> + 'a {
        let (wire, items) = match self.0 {
            ListRepr::Wire(bytes) => (bytes, &[][..]),
            ListRepr::Items(items) => (&[][..], items),
        };
        wire.chunks_exact(2)
            .map(|b| AttributeType::new(b.iter().fold(0, |acc, &x| acc << 8 | u16::from(x))))
            .chain(items.iter().copied())
    }
}

impl PartialEq for UnknownAttributes<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for UnknownAttributes<'_> {}

impl<'a> DecodeAttribute<'a> for UnknownAttributes<'a> {
    const TYPE: AttributeType = AttributeType::UNKNOWN_ATTRIBUTES;

    fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, AttributeError> {
        if value.len() % 2 != 0 {
            return Err(AttributeError::TruncatedList {
                attribute: Self::TYPE,
            });
        }
        Ok(UnknownAttributes(ListRepr::Wire(value)))
    }
}

impl EncodeAttribute for UnknownAttributes<'_> {
    fn attribute_type(&self) -> AttributeType {
        Self::TYPE
    }

    fn value_len(&self) -> usize {
        match self.0 {
            ListRepr::Wire(bytes) => bytes.len(),
            ListRepr::Items(items) => 2 * items.len(),
        }
    }

    fn encode_value(&self, mut out: &mut [u8], _: &TransactionId) {
        self.iter().for_each(|t| out.put_u16(t.value()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(attr: &impl EncodeAttribute) -> Vec<u8> {
        let mut out = vec![0; attr.value_len()];
        attr.encode_value(&mut out, &TransactionId::from([0; 12]));
        out
    }

    #[test]
    fn error_code_splits_class_and_number() {
        let tid = TransactionId::from([0; 12]);
        let stale = ErrorCode::new(438).unwrap();
        let wire = encode(&stale);
        assert_eq!(&wire[..4], [0, 0, 4, 38]);
        assert_eq!(&wire[4..], b"Stale Nonce");
        assert_eq!(ErrorCode::decode(&wire, &tid), Ok(stale));
        assert_eq!(
            ErrorCode::new(299),
            Err(AttributeError::BadErrorCode { code: 299 })
        );
        assert_eq!(
            ErrorCode::new(700),
            Err(AttributeError::BadErrorCode { code: 700 })
        );
        assert_eq!(
            ErrorCode::decode(&[0, 0, 2, 0], &tid),
            Err(AttributeError::BadErrorCode { code: 200 })
        );
        assert_eq!(
            ErrorCode::decode(&[0, 0, 4, 100], &tid),
            Err(AttributeError::BadErrorCode { code: 500 })
        );
        assert!(matches!(
            ErrorCode::decode(&[0, 0, 4], &tid),
            Err(AttributeError::BadLength { .. })
        ));
    }

    #[test]
    fn address_error_code_carries_its_family() {
        let tid = TransactionId::from([0; 12]);
        let attr = AddressErrorCode::new(AddressFamily::Ipv6, ErrorCode::new(440).unwrap());
        let wire = encode(&attr);
        assert_eq!(&wire[..4], [2, 0, 4, 40]);
        assert_eq!(AddressErrorCode::decode(&wire, &tid), Ok(attr));
    }

    #[test]
    fn unknown_attributes_lists_types() {
        let tid = TransactionId::from([0; 12]);
        let types = [AttributeType::new(0x0031), AttributeType::new(0x7000)];
        let wire = encode(&UnknownAttributes::new(&types));
        assert_eq!(wire, [0x00, 0x31, 0x70, 0x00]);
        let decoded = UnknownAttributes::decode(&wire, &tid).unwrap();
        assert_eq!(decoded, UnknownAttributes::new(&types));
        assert_eq!(
            UnknownAttributes::decode(&wire[..3], &tid),
            Err(AttributeError::TruncatedList {
                attribute: AttributeType::UNKNOWN_ATTRIBUTES
            })
        );
    }
}
