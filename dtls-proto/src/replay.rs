//! The anti-replay window (RFC 6347 §4.1.2.6, RFC 9147 §4.5.1), one per epoch.
//!
//! A sliding bitmap of the last [`WINDOW`] sequence numbers received in one epoch. A record is
//! checked before it is decrypted and marked only after it authenticates, so forged records
//! cannot move the window.

/// Width of the window in records (the RFC's minimum is 32; 64 is its recommended default).
pub const WINDOW: u64 = 64;

/// Per-epoch replay state.
#[derive(Debug, Clone, Default)]
pub struct ReplayWindow {
    /// Highest sequence number marked, if any.
    highest: Option<u64>,
    /// Bit `i` set: `highest - i` was received.
    bitmap: u64,
}

impl ReplayWindow {
    /// An empty window.
    pub fn new() -> Self {
        Self::default()
    }

    /// The highest sequence number marked, if any (DTLS 1.3 rebuilds record numbers around
    /// it, RFC 9147 §4.2.2).
    pub fn highest(&self) -> Option<u64> {
        self.highest
    }

    /// True when `seq` is new and not older than the window.
    pub fn is_fresh(&self, seq: u64) -> bool {
        let Some(highest) = self.highest else {
            return true;
        };
        if seq > highest {
            return true;
        }
        let age = highest - seq;
        age < WINDOW && self.bitmap & (1 << age) == 0
    }

    /// Records that `seq` authenticated.
    pub fn mark(&mut self, seq: u64) {
        match self.highest {
            None => {
                self.highest = Some(seq);
                self.bitmap = 1;
            }
            Some(highest) if seq > highest => {
                let shift = seq - highest;
                self.bitmap = if shift >= WINDOW {
                    0
                } else {
                    self.bitmap << shift
                } | 1;
                self.highest = Some(seq);
            }
            Some(highest) => {
                let age = highest - seq;
                if age < WINDOW {
                    self.bitmap |= 1 << age;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn rejects_duplicates_and_old_records() {
        let mut w = ReplayWindow::new();
        assert!(w.is_fresh(5));
        w.mark(5);
        assert!(!w.is_fresh(5));
        assert!(w.is_fresh(3));
        w.mark(3);
        assert!(!w.is_fresh(3));
        w.mark(100);
        assert!(!w.is_fresh(36), "older than the window");
        assert!(w.is_fresh(37));
        assert!(!w.is_fresh(100));
        w.mark(37);
        assert!(!w.is_fresh(37));
        assert!(w.is_fresh(101));
    }

    #[test]
    fn far_jump_clears_the_bitmap() {
        let mut w = ReplayWindow::new();
        w.mark(0);
        w.mark(1_000);
        assert!(w.is_fresh(999));
        assert!(!w.is_fresh(0));
    }

    proptest! {
        #[test]
        fn replay_window_matches_a_model(seqs in proptest::collection::vec(0u64..300, 1..200)) {
            let mut w = ReplayWindow::new();
            let mut seen = HashSet::new();
            let mut highest = None::<u64>;
            for s in seqs {
                let too_old = highest.is_some_and(|h| h >= WINDOW && s <= h - WINDOW);
                let fresh = !seen.contains(&s) && !too_old;
                prop_assert_eq!(w.is_fresh(s), fresh, "seq {}", s);
                if fresh {
                    w.mark(s);
                    seen.insert(s);
                    highest = Some(highest.map_or(s, |h: u64| h.max(s)));
                }
            }
        }
    }
}
