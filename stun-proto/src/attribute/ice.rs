//! The ICE attributes of RFC 8445 §16.1: PRIORITY, USE-CANDIDATE, ICE-CONTROLLED and
//! ICE-CONTROLLING (the last two carry the agent's 64-bit tie-breaker).

use super::{flag_attributes, integer_attributes};

integer_attributes! {
    /// PRIORITY: the priority a peer-reflexive candidate learnt from this check would get.
    Priority(u32) = PRIORITY;
    /// ICE-CONTROLLED: the sender thinks it is controlled; the value is its tie-breaker.
    IceControlled(u64) = ICE_CONTROLLED;
    /// ICE-CONTROLLING: the sender thinks it is controlling; the value is its tie-breaker.
    IceControlling(u64) = ICE_CONTROLLING;
}

flag_attributes! {
    /// USE-CANDIDATE: the controlling agent nominates this pair.
    UseCandidate = USE_CANDIDATE;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attribute::{AttributeError, DecodeAttribute};
    use crate::header::TransactionId;

    #[test]
    fn ice_attributes_have_fixed_sizes() {
        let tid = TransactionId::from([0; 12]);
        assert_eq!(
            Priority::decode(&[0x6e, 0, 1, 0xff], &tid),
            Ok(Priority(0x6e0001ff))
        );
        assert_eq!(
            IceControlled::decode(&[0x93, 0x2f, 0xf9, 0xb1, 0x51, 0x26, 0x3b, 0x36], &tid),
            Ok(IceControlled(0x932f_f9b1_5126_3b36))
        );
        assert_eq!(UseCandidate::decode(&[], &tid), Ok(UseCandidate));
        assert!(matches!(
            UseCandidate::decode(&[0], &tid),
            Err(AttributeError::BadLength {
                len: 1,
                min: 0,
                max: 0,
                ..
            })
        ));
        assert!(matches!(
            Priority::decode(&[1, 2, 3], &tid),
            Err(AttributeError::BadLength {
                len: 3,
                min: 4,
                max: 4,
                ..
            })
        ));
    }
}
