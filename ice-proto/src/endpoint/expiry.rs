//! The endpoint's deadlines: one consent expiry per session, in a heap keyed by instant, so
//! that the earliest is read in O(1) and each due one is taken in O(log n) — not a scan of
//! every session. A session whose consent is refreshed keeps its heap entry: when the entry
//! comes due, the session's later deadline goes back into the heap instead (lazy update),
//! so a check costs no heap operation and the heap never holds more than one entry per
//! session.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

use super::session::SessionId;

/// The deadlines of the sessions.
#[derive(Debug, Default)]
pub(super) struct Expiries {
    heap: BinaryHeap<Reverse<(Instant, SessionId)>>,
}

impl Expiries {
    /// Watches `session` until `at`.
    pub fn push(&mut self, at: Instant, session: SessionId) {
        self.heap.push(Reverse((at, session)));
    }

    /// The earliest deadline.
    pub fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// The next entry due at `now`, taken out.
    pub fn pop_due(&mut self, now: Instant) -> Option<(Instant, SessionId)> {
        if self.next()? > now {
            return None;
        }
        self.heap.pop().map(|Reverse(entry)| entry)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_earliest_comes_first_and_only_when_due() {
        let t0 = crate::test_support::t0();
        let at = |s| t0 + Duration::from_secs(s);
        let mut e = Expiries::default();
        e.push(at(30), SessionId::new(1, 0));
        e.push(at(10), SessionId::new(2, 0));
        assert_eq!(e.next(), Some(at(10)));
        assert_eq!(e.pop_due(at(9)), None);
        assert_eq!(e.pop_due(at(10)), Some((at(10), SessionId::new(2, 0))));
        assert_eq!(e.pop_due(at(29)), None);
        assert_eq!(e.pop_due(at(30)), Some((at(30), SessionId::new(1, 0))));
        assert_eq!(e.next(), None);
    }
}
