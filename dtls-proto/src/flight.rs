//! Flights and their retransmission timer (RFC 6347 §4.2.4).
//!
//! A flight is the group of messages one side sends before it waits for the other. The last
//! flight sent is kept whole so it can be sent again when the timer fires or when the peer
//! retransmits its own previous flight (§4.2.4: "the implementation retransmits"). Its message
//! bodies are encoded back to back into one buffer that every flight of the association reuses.
//! The timer
//! starts at the configured initial value and doubles on each expiry up to the maximum
//! (§4.2.4.1); after `max_retransmits` expiries the handshake fails.

use std::ops::Range;
use std::time::{Duration, Instant};

use crate::handshake::HandshakeType;

/// Room reserved for the message bodies of a flight: a server's flight 4 with its certificate
/// is about 700 bytes.
const BODIES_CAPACITY: usize = 2048;
/// Room reserved for the entries of a flight (flight 5 has five).
const ITEMS_CAPACITY: usize = 8;

/// One entry of a flight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlightItem {
    /// A handshake message (its body, without the DTLS handshake header, in [`Flight::body`]).
    Handshake {
        /// Epoch to send it in.
        epoch: u16,
        /// Type.
        msg_type: HandshakeType,
        /// message_seq.
        seq: u16,
        /// Where its body lies in the flight's buffer.
        body: Range<usize>,
    },
    /// ChangeCipherSpec (sent in epoch 0; switches our write epoch to 1).
    ChangeCipherSpec,
    /// A DTLS 1.3 ACK (RFC 9147 §7), its body in [`Flight::body`].
    Ack {
        /// Epoch to send it in.
        epoch: u16,
        /// Where its body lies in the flight's buffer.
        body: Range<usize>,
    },
}

/// The messages of the flight being built or last sent.
#[derive(Debug, Default)]
pub struct Flight {
    items: Vec<FlightItem>,
    bodies: Vec<u8>,
    /// The epoch DTLS 1.3 handshake messages pushed from now on go in.
    epoch: Option<u16>,
}

impl Flight {
    /// An empty flight with room for the largest one of a handshake.
    pub fn new() -> Self {
        Self {
            items: Vec::with_capacity(ITEMS_CAPACITY),
            bodies: Vec::with_capacity(BODIES_CAPACITY),
            epoch: None,
        }
    }

    /// Forgets every message, keeping the buffers.
    pub fn clear(&mut self) {
        self.items.clear();
        self.bodies.clear();
        self.epoch = None;
    }

    /// DTLS 1.3: the handshake messages pushed from now on go in `epoch` (a flight starts in
    /// epoch 0, and the server's moves to 2 after ServerHello).
    pub fn set_epoch(&mut self, epoch: u16) {
        self.epoch = Some(epoch);
    }

    /// Adds a DTLS 1.3 ACK whose body `encode` appends, in `epoch`.
    pub fn push_ack(&mut self, epoch: u16, encode: impl FnOnce(&mut Vec<u8>)) {
        let start = self.bodies.len();
        encode(&mut self.bodies);
        self.items.push(FlightItem::Ack {
            epoch,
            body: start..self.bodies.len(),
        });
    }

    /// True when nothing would be sent.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The entries in sending order.
    pub fn items(&self) -> &[FlightItem] {
        &self.items
    }

    /// The body of a handshake entry (empty for a range outside the buffer).
    pub fn body(&self, range: &Range<usize>) -> &[u8] {
        self.bodies.get(range.clone()).unwrap_or_default()
    }

    /// Adds a handshake message whose body `encode` appends, in epoch 1 once a
    /// ChangeCipherSpec precedes it; returns the body.
    pub fn push_handshake(
        &mut self,
        msg_type: HandshakeType,
        seq: u16,
        encode: impl FnOnce(&mut Vec<u8>),
    ) -> &[u8] {
        let start = self.bodies.len();
        encode(&mut self.bodies);
        let epoch = self
            .epoch
            .unwrap_or_else(|| u16::from(self.items.contains(&FlightItem::ChangeCipherSpec)));
        let body = start..self.bodies.len();
        self.items.push(FlightItem::Handshake {
            epoch,
            msg_type,
            seq,
            body: body.clone(),
        });
        self.body(&body)
    }

    /// Adds ChangeCipherSpec.
    pub fn push_change_cipher_spec(&mut self) {
        self.items.push(FlightItem::ChangeCipherSpec);
    }

    /// Every byte of the message bodies (what the datagrams will carry, headers aside).
    pub fn bodies_len(&self) -> usize {
        self.bodies.len()
    }
}

/// The retransmission timer of the current flight (RFC 6347 §4.2.4.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetransmitTimer {
    initial: Duration,
    max: Duration,
    current: Duration,
    deadline: Option<Instant>,
    expiries: u32,
}

impl RetransmitTimer {
    /// A stopped timer.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max: max.max(initial),
            current: initial,
            deadline: None,
            expiries: 0,
        }
    }

    /// Arms the timer for a newly sent flight.
    pub fn start(&mut self, now: Instant) {
        self.current = self.initial;
        self.expiries = 0;
        self.deadline = now.checked_add(self.current);
    }

    /// Disarms the timer.
    pub fn stop(&mut self) {
        self.deadline = None;
    }

    /// When the timer fires, if armed.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// True when armed and `now` has reached the deadline.
    pub fn is_expired(&self, now: Instant) -> bool {
        self.deadline.is_some_and(|d| now >= d)
    }

    /// How many times the timer fired for the current flight.
    pub fn expiries(&self) -> u32 {
        self.expiries
    }

    /// Records an expiry at `now`: doubles the interval (capped) and re-arms.
    pub fn on_expired(&mut self, now: Instant) {
        self.expiries += 1;
        self.current = self.current.saturating_mul(2).min(self.max);
        self.deadline = now.checked_add(self.current);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_maximum() {
        let t0 = crate::test_instant();
        let mut t = RetransmitTimer::new(Duration::from_millis(100), Duration::from_millis(350));
        assert_eq!(t.deadline(), None);
        assert!(!t.is_expired(t0));
        t.start(t0);
        assert_eq!(t.deadline(), Some(t0 + Duration::from_millis(100)));
        assert!(!t.is_expired(t0 + Duration::from_millis(99)));
        let t1 = t0 + Duration::from_millis(100);
        assert!(t.is_expired(t1));
        t.on_expired(t1);
        assert_eq!(t.deadline(), Some(t1 + Duration::from_millis(200)));
        let t2 = t1 + Duration::from_millis(200);
        t.on_expired(t2);
        assert_eq!(t.deadline(), Some(t2 + Duration::from_millis(350)));
        assert_eq!(t.expiries(), 2);
        t.start(t2);
        assert_eq!(t.deadline(), Some(t2 + Duration::from_millis(100)));
        t.stop();
        assert_eq!(t.deadline(), None);
    }
}
