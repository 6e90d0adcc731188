//! Reassembly of handshake fragments (RFC 6347 §4.2.3).
//!
//! Messages may arrive fragmented, out of order, overlapping and duplicated. The [`Reassembler`]
//! keeps at most [`MAX_PENDING_MESSAGES`] messages ahead of the next expected `message_seq`,
//! each at most `max_message_len` bytes and tracked by at most [`MAX_RANGES`] disjoint byte
//! ranges; fragments beyond those bounds are dropped (and counted by the caller), never buffered.
//! Complete messages come out strictly in `message_seq` order.
//!
//! Fragmentation on the sending side lives with record writing in the engine (`engine.rs`).
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::handshake::{FragmentView, HandshakeType};

/// How many messages beyond the next expected one may be buffered.
pub const MAX_PENDING_MESSAGES: usize = 8;
/// How many disjoint received ranges one message may have.
pub const MAX_RANGES: usize = 32;

/// A complete handshake message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Type.
    pub msg_type: HandshakeType,
    /// message_seq.
    pub seq: u16,
    /// Epoch of the records that carried it (all fragments share it).
    pub epoch: u16,
    /// Body.
    pub body: Vec<u8>,
}

/// What happened to one fragment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FragmentOutcome {
    /// Stored (or a duplicate of stored bytes).
    Buffered,
    /// Belongs to a message already delivered: the peer retransmitted (RFC 6347 §4.2.4).
    Retransmission,
    /// Too far ahead of the next expected message.
    TooFarAhead,
    /// Disagrees with earlier fragments of the same message (type, length or epoch).
    Inconsistent,
    /// Message longer than the bound, or too many gaps.
    OverBound,
}

/// One handshake message being put together from its fragments.
#[derive(Debug)]
pub(crate) struct Partial {
    seq: u16,
    msg_type: HandshakeType,
    epoch: u16,
    body: Vec<u8>,
    /// The byte ranges received.
    ranges: Ranges,
}

/// Sorted, disjoint, non-adjacent `[start, end)` byte ranges, at most [`MAX_RANGES`], held
/// inline (a fragment's arrival allocates nothing). Offsets are `uint24` on the wire.
#[derive(Debug, Clone, Copy)]
struct Ranges {
    ranges: [(u32, u32); MAX_RANGES],
    len: usize,
}

impl Ranges {
    fn new() -> Self {
        Self {
            ranges: [(0, 0); MAX_RANGES],
            len: 0,
        }
    }

    fn as_slice(&self) -> &[(u32, u32)] {
        self.ranges.get(..self.len).unwrap_or_default()
    }

    /// Merges `[start, end)` in; false, and nothing changed, if that would take more than
    /// [`MAX_RANGES`] ranges.
    fn insert(&mut self, start: u32, end: u32) -> bool {
        if start == end {
            return true;
        }
        let mut out = Self::new();
        let mut push = |range| match out.ranges.get_mut(out.len) {
            Some(slot) => {
                *slot = range;
                out.len += 1;
                true
            }
            None => false,
        };
        let mut merged = (start, end);
        let mut placed = false;
        for &(s, e) in self.as_slice() {
            let fits = if e < merged.0 {
                push((s, e))
            } else if s > merged.1 {
                let before = placed || push(merged);
                placed = true;
                before && push((s, e))
            } else {
                merged = (merged.0.min(s), merged.1.max(e));
                true
            };
            if !fits {
                return false;
            }
        }
        if !placed && !push(merged) {
            return false;
        }
        *self = out;
        true
    }
}

impl Partial {
    /// An empty message shaped after its first fragment (the caller checked the length bound).
    fn new(epoch: u16, frag: &FragmentView<'_>) -> Self {
        Self {
            seq: frag.message_seq,
            msg_type: frag.msg_type,
            epoch,
            body: vec![0; frag.length as usize],
            ranges: Ranges::new(),
        }
    }

    /// True when `frag` (in a record of `epoch`) can belong to this message.
    fn is_consistent(&self, epoch: u16, frag: &FragmentView<'_>) -> bool {
        self.msg_type == frag.msg_type
            && self.body.len() == frag.length as usize
            && self.epoch == epoch
    }

    /// Copies the fragment's bytes in; [`FragmentOutcome::OverBound`] when they fall outside
    /// the message or would need more than [`MAX_RANGES`] gaps.
    fn fill(&mut self, frag: &FragmentView<'_>) -> FragmentOutcome {
        // FragmentView::parse guarantees offset + len <= length; checked again, not trusted.
        let start = frag.offset as usize;
        let end = start.saturating_add(frag.body.len());
        // Both fit a u32: the body's length came from a uint24.
        if end > self.body.len() || !self.ranges.insert(start as u32, end as u32) {
            return FragmentOutcome::OverBound;
        }
        if let Some(slot) = self.body.get_mut(start..end) {
            slot.copy_from_slice(frag.body);
        }
        FragmentOutcome::Buffered
    }

    fn is_complete(&self) -> bool {
        self.body.is_empty() || self.ranges.as_slice() == [(0, self.body.len() as u32)]
    }

    /// Bytes held for this message.
    fn buffered_len(&self) -> usize {
        self.body.len()
    }

    fn into_message(self) -> Message {
        Message {
            msg_type: self.msg_type,
            seq: self.seq,
            epoch: self.epoch,
            body: self.body,
        }
    }
}

/// Buffers fragments and releases complete messages in order.
#[derive(Debug)]
pub struct Reassembler {
    next_seq: u16,
    pending: Vec<Partial>,
    max_message_len: usize,
}

impl Reassembler {
    /// An empty reassembler expecting `message_seq` 0.
    pub fn new(max_message_len: usize) -> Self {
        Self {
            next_seq: 0,
            pending: Vec::new(),
            max_message_len,
        }
    }

    /// The next `message_seq` to be delivered.
    pub fn next_seq(&self) -> u16 {
        self.next_seq
    }

    /// Skips ahead to `seq`, dropping anything buffered before it.
    pub fn set_next_seq(&mut self, seq: u16) {
        self.next_seq = seq;
        self.pending.retain(|p| p.seq >= seq);
    }

    /// Takes back the delivery of message `seq`, which the handshake refused as not genuine:
    /// the next message expected is `seq` again, so the genuine one can still arrive, and what
    /// was buffered beyond it (quite possibly forged alongside) is dropped — the peer's
    /// retransmission brings the genuine messages back.
    pub fn refuse(&mut self, seq: u16) {
        self.next_seq = seq;
        self.pending.clear();
    }

    /// Offers one fragment that arrived in a record of `epoch`.
    pub fn insert(&mut self, epoch: u16, frag: &FragmentView<'_>) -> FragmentOutcome {
        if frag.message_seq < self.next_seq {
            return FragmentOutcome::Retransmission;
        }
        if usize::from(frag.message_seq - self.next_seq) >= MAX_PENDING_MESSAGES {
            return FragmentOutcome::TooFarAhead;
        }
        if frag.length as usize > self.max_message_len {
            return FragmentOutcome::OverBound;
        }
        if let Some(p) = self.pending.iter_mut().find(|p| p.seq == frag.message_seq) {
            if !p.is_consistent(epoch, frag) {
                return FragmentOutcome::Inconsistent;
            }
            return p.fill(frag);
        }
        let mut p = Partial::new(epoch, frag);
        let outcome = p.fill(frag);
        if outcome == FragmentOutcome::Buffered {
            self.pending.push(p);
        }
        outcome
    }

    /// The next message if it is complete.
    pub fn pop(&mut self) -> Option<Message> {
        let i = self
            .pending
            .iter()
            .position(|p| p.seq == self.next_seq && p.is_complete())?;
        let p = self.pending.swap_remove(i);
        self.next_seq = self.next_seq.wrapping_add(1);
        Some(p.into_message())
    }
}

/// Puts together the ClientHello that opens a handshake, before any other state exists
/// (RFC 6347 §4.2.3 applies to it like to every message; §4.2.1 leaves the server free to keep
/// nothing else until the cookie returns).
///
/// Browsers fragment their first flight: Chromium's ClientHello with a hybrid post-quantum key
/// share is about 1.4 KB and leaves in two records. One message is held at a time, at most
/// `max_len` bytes; a fragment of a different ClientHello (a new `message_seq` or length, as
/// after a HelloVerifyRequest) replaces it.
#[derive(Debug)]
pub struct HelloAssembler {
    partial: Option<Partial>,
    max_len: usize,
}

/// What [`HelloAssembler::insert`] made of a fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HelloFragment {
    /// The ClientHello is complete: here it is, body and sequence number.
    Complete(Message),
    /// Stored; more fragments are needed.
    Buffered,
    /// Dropped: not a ClientHello fragment, or beyond the bounds.
    Dropped(FragmentOutcome),
}

impl HelloAssembler {
    /// An empty assembler for ClientHellos of at most `max_len` bytes.
    pub fn new(max_len: usize) -> Self {
        Self {
            partial: None,
            max_len,
        }
    }

    /// Offers one epoch-0 handshake fragment.
    pub fn insert(&mut self, frag: &FragmentView<'_>) -> HelloFragment {
        if frag.msg_type != HandshakeType::ClientHello {
            return HelloFragment::Dropped(FragmentOutcome::Inconsistent);
        }
        if frag.length as usize > self.max_len {
            return HelloFragment::Dropped(FragmentOutcome::OverBound);
        }
        let same = self
            .partial
            .as_ref()
            .is_some_and(|p| p.seq == frag.message_seq && p.is_consistent(0, frag));
        let partial = match &mut self.partial {
            Some(p) if same => p,
            slot => slot.insert(Partial::new(0, frag)),
        };
        match partial.fill(frag) {
            FragmentOutcome::Buffered if partial.is_complete() => {
                self.partial.take().map_or(HelloFragment::Buffered, |p| {
                    HelloFragment::Complete(p.into_message())
                })
            }
            FragmentOutcome::Buffered => HelloFragment::Buffered,
            other => {
                self.partial = None;
                HelloFragment::Dropped(other)
            }
        }
    }

    /// Bytes held for an incomplete ClientHello.
    pub fn buffered_len(&self) -> usize {
        self.partial.as_ref().map_or(0, Partial::buffered_len)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::handshake::encode_fragment;

    fn frag(seq: u16, len: u32, offset: u32, body: &[u8]) -> FragmentView<'_> {
        FragmentView {
            msg_type: HandshakeType::Certificate,
            length: len,
            message_seq: seq,
            offset,
            body,
        }
    }

    #[test]
    fn out_of_order_and_overlapping_fragments() {
        let msg: Vec<u8> = (0..100).collect();
        let mut r = Reassembler::new(1000);
        assert_eq!(
            r.insert(0, &frag(0, 100, 60, &msg[60..])),
            FragmentOutcome::Buffered
        );
        assert_eq!(r.pop(), None);
        assert_eq!(
            r.insert(0, &frag(0, 100, 10, &msg[10..70])),
            FragmentOutcome::Buffered
        );
        assert_eq!(
            r.insert(0, &frag(0, 100, 10, &msg[10..70])),
            FragmentOutcome::Buffered
        );
        assert_eq!(r.pop(), None);
        assert_eq!(
            r.insert(0, &frag(0, 100, 0, &msg[..15])),
            FragmentOutcome::Buffered
        );
        let m = r.pop().unwrap();
        assert_eq!(m.body, msg);
        assert_eq!(r.next_seq(), 1);
        assert_eq!(
            r.insert(0, &frag(0, 100, 0, &msg)),
            FragmentOutcome::Retransmission
        );
    }

    #[test]
    fn later_messages_wait_for_earlier_ones() {
        let mut r = Reassembler::new(1000);
        assert_eq!(r.insert(0, &frag(1, 1, 0, &[1])), FragmentOutcome::Buffered);
        assert_eq!(r.pop(), None);
        assert_eq!(r.insert(0, &frag(0, 1, 0, &[0])), FragmentOutcome::Buffered);
        assert_eq!(r.pop().unwrap().body, [0]);
        assert_eq!(r.pop().unwrap().body, [1]);
        assert_eq!(r.pop(), None);
    }

    #[test]
    fn bounds_are_enforced() {
        let mut r = Reassembler::new(10);
        assert_eq!(
            r.insert(0, &frag(0, 11, 0, &[0])),
            FragmentOutcome::OverBound
        );
        assert_eq!(
            r.insert(0, &frag(MAX_PENDING_MESSAGES as u16, 1, 0, &[0])),
            FragmentOutcome::TooFarAhead
        );
        assert_eq!(r.insert(0, &frag(0, 5, 0, &[0])), FragmentOutcome::Buffered);
        assert_eq!(
            r.insert(0, &frag(0, 6, 0, &[0])),
            FragmentOutcome::Inconsistent
        );
        assert_eq!(
            r.insert(1, &frag(0, 5, 1, &[0])),
            FragmentOutcome::Inconsistent
        );
        let mut r = Reassembler::new(1000);
        for i in 0..MAX_RANGES as u32 {
            assert_eq!(
                r.insert(0, &frag(0, 1000, i * 2, &[0])),
                FragmentOutcome::Buffered
            );
        }
        assert_eq!(
            r.insert(0, &frag(0, 1000, 500, &[0])),
            FragmentOutcome::OverBound
        );
    }

    #[test]
    fn empty_messages_complete_at_once() {
        let mut r = Reassembler::new(10);
        let f = FragmentView {
            msg_type: HandshakeType::ServerHelloDone,
            length: 0,
            message_seq: 0,
            offset: 0,
            body: &[],
        };
        assert_eq!(r.insert(0, &f), FragmentOutcome::Buffered);
        assert_eq!(r.pop().unwrap().msg_type, HandshakeType::ServerHelloDone);
    }

    fn hello(seq: u16, len: u32, offset: u32, body: &[u8]) -> FragmentView<'_> {
        FragmentView {
            msg_type: HandshakeType::ClientHello,
            ..frag(seq, len, offset, body)
        }
    }

    #[test]
    fn hello_assembler_completes_out_of_order_and_replaces_a_new_hello() {
        let msg: Vec<u8> = (0..=255).collect();
        let mut a = HelloAssembler::new(1000);
        assert_eq!(
            a.insert(&hello(0, 256, 200, &msg[200..])),
            HelloFragment::Buffered
        );
        assert_eq!(
            a.insert(&hello(0, 256, 200, &msg[200..])),
            HelloFragment::Buffered
        );
        assert_eq!(a.buffered_len(), 256);
        // A fragment of another ClientHello (after a HelloVerifyRequest) starts over.
        assert_eq!(
            a.insert(&hello(1, 256, 0, &msg[..100])),
            HelloFragment::Buffered
        );
        assert_eq!(
            a.insert(&hello(1, 256, 200, &msg[200..])),
            HelloFragment::Buffered
        );
        let HelloFragment::Complete(m) = a.insert(&hello(1, 256, 90, &msg[90..210])) else {
            panic!("incomplete");
        };
        assert_eq!((m.seq, m.body), (1, msg));
        assert_eq!(a.buffered_len(), 0);
    }

    #[test]
    fn hello_assembler_drops_what_is_not_a_bounded_client_hello() {
        let mut a = HelloAssembler::new(100);
        assert_eq!(
            a.insert(&frag(0, 10, 0, &[0; 10])),
            HelloFragment::Dropped(FragmentOutcome::Inconsistent)
        );
        assert_eq!(
            a.insert(&hello(0, 101, 0, &[0])),
            HelloFragment::Dropped(FragmentOutcome::OverBound)
        );
        assert_eq!(a.buffered_len(), 0);
    }

    proptest! {
        #[test]
        fn any_fragmentation_in_any_order_reassembles(
            body in proptest::collection::vec(any::<u8>(), 1..600),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..12),
            order in any::<prop::sample::Index>(),
            dup in any::<prop::sample::Index>(),
        ) {
            let mut points: Vec<usize> = cuts.iter().map(|c| c.index(body.len())).collect();
            points.push(0);
            points.push(body.len());
            points.sort_unstable();
            points.dedup();
            let mut frags: Vec<Vec<u8>> = points.windows(2).map(|w| {
                let mut out = Vec::new();
                encode_fragment(HandshakeType::Certificate, 0, body.len(), w[0], &body[w[0]..w[1]], &mut out);
                out
            }).collect();
            let n = frags.len();
            frags.rotate_left(order.index(n));
            let extra = frags[dup.index(n)].clone();
            frags.insert(dup.index(n), extra);
            let mut r = Reassembler::new(4096);
            for f in &frags {
                let (view, _) = FragmentView::parse(f).unwrap();
                r.insert(0, &view);
            }
            let msg = r.pop().unwrap();
            prop_assert_eq!(msg.body, body);
            prop_assert!(r.pop().is_none());
        }
    }
}
