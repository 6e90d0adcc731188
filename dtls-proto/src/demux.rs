//! Demultiplexing by first byte (RFC 7983 §7, updating RFC 5764 §5.1.2).
//!
//! ```text
//!              +----------------+
//!              |        [0..3] -+--> STUN
//!              |      [16..19] -+--> ZRTP
//!  packet -->  |      [20..63] -+--> DTLS
//!              |      [64..79] -+--> TURN channel
//!              |    [128..191] -+--> RTP/RTCP
//!              +----------------+
//! ```

/// What a datagram on a WebRTC 5-tuple carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PacketKind {
    /// STUN (first byte 0–3).
    Stun,
    /// ZRTP (16–19).
    Zrtp,
    /// DTLS (20–63).
    Dtls,
    /// TURN ChannelData (64–79).
    TurnChannel,
    /// RTP or RTCP (128–191).
    Rtp,
    /// Empty or a first byte no protocol claims; RFC 7983 says drop it.
    Unknown,
}

/// Classifies a datagram by its first byte.
pub fn classify(datagram: &[u8]) -> PacketKind {
    match datagram.first() {
        Some(0..=3) => PacketKind::Stun,
        Some(16..=19) => PacketKind::Zrtp,
        Some(20..=63) => PacketKind::Dtls,
        Some(64..=79) => PacketKind::TurnChannel,
        Some(128..=191) => PacketKind::Rtp,
        _ => PacketKind::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_boundary() {
        let cases = [
            (0, PacketKind::Stun),
            (3, PacketKind::Stun),
            (4, PacketKind::Unknown),
            (16, PacketKind::Zrtp),
            (19, PacketKind::Zrtp),
            (20, PacketKind::Dtls),
            (63, PacketKind::Dtls),
            (64, PacketKind::TurnChannel),
            (79, PacketKind::TurnChannel),
            (80, PacketKind::Unknown),
            (128, PacketKind::Rtp),
            (191, PacketKind::Rtp),
            (192, PacketKind::Unknown),
        ];
        for (b, kind) in cases {
            assert_eq!(classify(&[b, 0, 0]), kind, "first byte {b}");
        }
        assert_eq!(classify(&[]), PacketKind::Unknown);
    }
}
