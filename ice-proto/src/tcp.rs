//! ICE-TCP (RFC 6544): TCP host candidates, which pairs they form, and RFC 4571 framing.
//!
//! The caller owns the sockets. For each component it may add a TCP base
//! ([`StreamMut::add_tcp_base`](crate::StreamMut::add_tcp_base)): the address its listening
//! socket is bound to. The agent then offers two host candidates there (§4.5): a passive one
//! at the listening address, and an active one at port 9 (the discard port, as §4.5 says an
//! active candidate's port is written) whose connections the caller opens from any port.
//!
//! The contract, per connection (docs/ice.md):
//! - A [`Transmit`](crate::Transmit) over TCP whose source is a TCP base goes on the
//!   connection from that base to its destination; if there is none, the caller opens one
//!   (an active candidate's connection) and sends once it is up. Its payload is ready for the
//!   stream: RFC 4571's two-byte length comes first.
//! - What the caller reads from an ICE-TCP connection it cuts with a [`Framer`] and hands to
//!   [`Agent::handle_datagram`](crate::Agent::handle_datagram) frame by frame (the payload
//!   without its length), with the transport TCP, the peer's address as source and the TCP
//!   base as destination — also for connections it opened, whatever local port the system
//!   picked. A connection the peer opened to the listening socket is a new path: the check
//!   that comes on it makes a peer-reflexive candidate (§7.2, RFC 8445 §7.3.1.3).
//!
//! Pairs (§6.2): a local active candidate with a remote passive one (the agent checks it,
//! over a connection the caller opens); a local passive candidate with a remote active one is
//! not formed from signalling, since only the peer can connect: it appears as
//! peer-reflexive when the peer's check arrives. Simultaneous-open candidates are neither
//! offered nor paired. A check over TCP is sent once and given the whole retransmission
//! budget of a UDP check to be answered (RFC 8489 §6.2.2: a reliable transport is not
//! retransmitted over).

use std::net::SocketAddr;

use crate::candidate::{Candidate, CandidateType, TcpType, Transport, foundation, priority};
use crate::context::Ctx;
use crate::stream::Stream;

/// The type preference of a TCP host candidate: below every UDP candidate but relayed ones,
/// as browsers rank them (RFC 6544 §4.2 leaves it to the agent; UDP is preferred).
pub const TCP_HOST_TYPE_PREFERENCE: u32 = 90;

/// The port an active candidate is written with (§4.5).
pub const ACTIVE_PORT: u16 = 9;

/// RFC 6544 §4.2: the local preference of a TCP candidate, `2^13 × direction preference +
/// other preference`, with active above passive for a host that is not behind a NAT, and
/// the base's own rank (its UDP local preference, scaled to 13 bits) as the rest.
pub fn tcp_local_preference(tcp_type: TcpType, base_preference: u16) -> u16 {
    let direction: u16 = match tcp_type {
        TcpType::Active => 6,
        TcpType::Passive => 4,
        TcpType::SimultaneousOpen => 2,
    };
    (direction << 13) | (base_preference >> 3)
}

impl Candidate {
    /// A TCP host candidate (RFC 6544 §4.5) of `tcp_type` on `base`, whose UDP local
    /// preference would be `base_preference`.
    pub fn tcp_host(
        component: u16,
        base: SocketAddr,
        tcp_type: TcpType,
        base_preference: u16,
    ) -> Self {
        let port = match tcp_type {
            TcpType::Active => ACTIVE_PORT,
            TcpType::Passive | TcpType::SimultaneousOpen => base.port(),
        };
        let local_preference = tcp_local_preference(tcp_type, base_preference);
        let mut candidate = Candidate::new(
            CandidateType::Host,
            component,
            SocketAddr::new(base.ip(), port),
            base,
            None,
            local_preference,
        );
        candidate.transport = Transport::Tcp;
        candidate.tcp_type = Some(tcp_type);
        candidate.foundation = foundation(CandidateType::Host, base.ip(), None, Transport::Tcp);
        candidate.priority = priority(TCP_HOST_TYPE_PREFERENCE, local_preference, component);
        candidate
    }
}

/// Whether a local and a remote candidate form a pair (§6.2): the same transport, and over
/// TCP an active local candidate with a passive remote one, or a passive local candidate
/// with an active remote one the peer connected from (learnt, never signalled).
pub(crate) fn pairable(local: &Candidate, remote: &Candidate, remote_learnt: bool) -> bool {
    if local.transport != remote.transport {
        return false;
    }
    match (local.tcp_type, remote.tcp_type) {
        (None, None) => true,
        (Some(TcpType::Active), Some(TcpType::Passive)) => true,
        (Some(TcpType::Passive), Some(TcpType::Active)) => remote_learnt,
        _ => false,
    }
}

impl Stream {
    /// The TCP host candidates of every TCP base (§4.5): passive at the base, active at
    /// port 9.
    pub(crate) fn add_tcp_hosts<R>(&mut self, ctx: &mut Ctx<'_, R>) {
        let bases: Vec<(u16, usize, SocketAddr)> = (self.components.iter())
            .flat_map(|c| c.tcp_bases.iter().enumerate().map(|(i, b)| (c.id, i, *b)))
            .collect();
        for (component, index, base) in bases {
            let rank = crate::candidate::local_preference(base.ip(), index);
            for tcp_type in [TcpType::Active, TcpType::Passive] {
                let candidate = Candidate::tcp_host(component, base, tcp_type, rank);
                let addr = candidate.addr().unwrap_or(base);
                self.add_local(ctx, candidate, addr, base);
            }
        }
    }
}

/// The most bytes a [`Framer`] holds: one frame of the largest length RFC 4571's 16 bits
/// allow, with its length.
pub const MAX_FRAME: usize = 2 + u16::MAX as usize;

/// Writes `payload` with RFC 4571's length before it into `out` (cleared first); a payload
/// longer than 65 535 bytes cannot be framed and leaves `out` empty.
pub fn frame_into(payload: &[u8], out: &mut Vec<u8>) -> bool {
    out.clear();
    let Ok(len) = u16::try_from(payload.len()) else {
        return false;
    };
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(payload);
    true
}

/// Cuts an RFC 4571 stream (a two-byte length, then that many bytes, over and over) into
/// frames. It holds at most one partial frame plus what one `push` brought, so a peer that
/// sends a huge length or garbage costs bounded memory: the length is 16 bits, at most
/// [`MAX_FRAME`] bytes wait for the rest of a frame.
///
/// ```
/// use ice_proto::tcp::Framer;
/// let mut framer = Framer::default();
/// framer.push(&[0, 3, b'a', b'b']);
/// assert_eq!(framer.next_frame(), None); // one byte short
/// framer.push(&[b'c', 0, 0]);
/// assert_eq!(framer.next_frame().as_deref(), Some(&b"abc"[..]));
/// assert_eq!(framer.next_frame().as_deref(), Some(&b""[..]));
/// assert_eq!(framer.next_frame(), None);
/// ```
#[derive(Debug, Default)]
pub struct Framer {
    buffer: Vec<u8>,
    /// Where the next frame starts in `buffer`.
    start: usize,
}

impl Framer {
    /// Appends bytes read from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 {
            self.buffer.drain(..self.start);
            self.start = 0;
        }
        self.buffer.extend_from_slice(bytes);
    }

    /// The next whole frame's payload, if one has arrived.
    pub fn next_frame(&mut self) -> Option<Vec<u8>> {
        let rest = self.buffer.get(self.start..)?;
        let len = usize::from(u16::from_be_bytes([*rest.first()?, *rest.get(1)?]));
        let frame = rest.get(2..2 + len)?.to_vec();
        self.start += 2 + len;
        if self.start == self.buffer.len() {
            self.buffer.clear();
            self.start = 0;
        }
        Some(frame)
    }

    /// Bytes held that are not a whole frame yet.
    pub fn pending(&self) -> usize {
        self.buffer.len() - self.start
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities_follow_rfc_6544_and_stay_below_udp_host_and_srflx() {
        let base: SocketAddr = "192.0.2.1:7000".parse().unwrap();
        let rank = crate::candidate::local_preference(base.ip(), 0);
        let active = Candidate::tcp_host(1, base, TcpType::Active, rank);
        let passive = Candidate::tcp_host(1, base, TcpType::Passive, rank);
        assert_eq!(active.port, ACTIVE_PORT);
        assert_eq!(passive.port, 7000);
        assert_eq!(
            (active.priority >> 8) & 0xffff,
            u32::from(6u16 << 13 | rank >> 3)
        );
        assert!(active.priority > passive.priority);
        let udp_host = Candidate::new(CandidateType::Host, 1, base, base, None, rank);
        let srflx = Candidate::new(CandidateType::ServerReflexive, 1, base, base, None, 0);
        assert!(udp_host.priority > active.priority && srflx.priority > active.priority);
        assert_eq!(active.foundation, passive.foundation);
        assert_ne!(active.foundation, udp_host.foundation);
    }

    #[test]
    fn only_active_to_passive_pairs_form_from_signalling() {
        let base: SocketAddr = "192.0.2.1:7000".parse().unwrap();
        let c = |t| Candidate::tcp_host(1, base, t, 100);
        let udp = Candidate::new(CandidateType::Host, 1, base, base, None, 100);
        assert!(pairable(&c(TcpType::Active), &c(TcpType::Passive), false));
        assert!(!pairable(&c(TcpType::Passive), &c(TcpType::Active), false));
        assert!(pairable(&c(TcpType::Passive), &c(TcpType::Active), true));
        assert!(!pairable(&c(TcpType::Active), &c(TcpType::Active), false));
        assert!(!pairable(&udp, &c(TcpType::Passive), false));
        assert!(pairable(&udp, &udp, false));
    }

    #[test]
    fn a_framer_holds_one_partial_frame_whatever_the_length_says() {
        let mut framer = Framer::default();
        // A length of 65 535 and only garbage after it: nothing comes out, and what waits
        // is what was pushed.
        framer.push(&[0xff, 0xff]);
        framer.push(&[0x55; 1000]);
        assert_eq!(framer.next_frame(), None);
        assert_eq!(framer.pending(), 1002);
        let mut out = Vec::new();
        assert!(frame_into(b"hello", &mut out));
        assert_eq!(out, [0, 5, b'h', b'e', b'l', b'l', b'o']);
        assert!(!frame_into(&vec![0; 70_000], &mut out));
        assert!(out.is_empty());
    }
}
