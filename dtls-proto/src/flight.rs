//! Flights and their retransmission timer (RFC 6347 §4.2.4).
//!
//! A flight is the group of messages one side sends before it waits for the other. The last
//! flight sent is kept whole so it can be sent again when the timer fires or when the peer
//! retransmits its own previous flight (§4.2.4: "the implementation retransmits"). The timer
//! starts at the configured initial value and doubles on each expiry up to the maximum
//! (§4.2.4.1); after `max_retransmits` expiries the handshake fails.

use std::time::{Duration, Instant};

use crate::handshake::HandshakeType;

/// One entry of a flight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlightItem {
    /// A handshake message (body without the DTLS handshake header).
    Handshake {
        /// Epoch to send it in.
        epoch: u16,
        /// Type.
        msg_type: HandshakeType,
        /// message_seq.
        seq: u16,
        /// Body.
        body: Vec<u8>,
    },
    /// ChangeCipherSpec (sent in epoch 0; switches our write epoch to 1).
    ChangeCipherSpec,
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
