//! Is this datagram STUN? A cheap check for callers that share one socket between STUN, DTLS,
//! RTP/RTCP and TURN ChannelData (RFC 7983 §7, RFC 8489 §5).

use crate::header::{HEADER_LEN, MAGIC_COOKIE};

/// Whether `datagram` looks like an RFC 5389/8489 STUN message: first byte 0..=3 (RFC 7983),
/// the magic cookie, and a length field that is a multiple of four and matches the datagram.
///
/// This reads six bytes and never parses attributes; [`Message::parse`](crate::Message::parse)
/// does the full validation. Classic RFC 3489 messages (no magic cookie) answer `false`: they
/// cannot be told apart from other traffic this cheaply.
pub fn is_stun(datagram: &[u8]) -> bool {
    let Some(&[first, _, len_hi, len_lo, c0, c1, c2, c3]) = datagram.first_chunk::<8>() else {
        return false;
    };
    let length = usize::from(u16::from_be_bytes([len_hi, len_lo]));
    first < 4
        && u32::from_be_bytes([c0, c1, c2, c3]) == MAGIC_COOKIE
        && length % 4 == 0
        && datagram.len() == HEADER_LEN + length
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demux_follows_rfc_7983_first_byte_ranges() {
        let mut stun = [0u8; 20];
        stun[4..8].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
        assert!(is_stun(&stun));
        // DTLS (20..=63), RTP (128..=191) and TURN channels (64..=79) are not STUN.
        for first in [20, 22, 64, 128, 191] {
            stun[0] = first;
            assert!(!is_stun(&stun), "first byte {first}");
        }
        stun[0] = 0;
        assert!(!is_stun(&stun[..19]), "truncated");
        stun[3] = 4;
        assert!(!is_stun(&stun), "length field says 4 more bytes");
        assert!(!is_stun(&[0; 20]), "no magic cookie");
    }
}
