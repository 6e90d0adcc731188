//! Deadline arithmetic that cannot panic. DESIGN.md: no input panics a machine, time
//! included — and `Instant + Duration` panics past the last instant the platform
//! represents, which a caller's `now` may be close to. Every deadline the machines of this
//! workspace compute (`now` plus a timeout, a lifetime, a retransmission interval) goes
//! through [`saturating_add`]; `Instant − Duration` is `checked_sub` where it is needed.

use std::time::{Duration, Instant};

/// `at + d`, or the last instant the platform represents when that is past it: a deadline
/// beyond the end of time is due at the end of time.
///
/// ```
/// use std::time::{Duration, Instant};
/// use stun_proto::time::saturating_add;
///
/// let now = Instant::now();
/// assert_eq!(saturating_add(now, Duration::from_secs(1)), now + Duration::from_secs(1));
/// let end = saturating_add(now, Duration::MAX);
/// assert!(end.checked_add(Duration::from_nanos(1)).is_none());
/// assert_eq!(saturating_add(end, Duration::from_secs(1)), end);
/// ```
pub fn saturating_add(at: Instant, d: Duration) -> Instant {
    if let Some(t) = at.checked_add(d) {
        return t;
    }
    // Past the end: walk up to it, halving the step whenever it overshoots (at most about
    // two steps for each of the ~94 bits of a `Duration`'s nanoseconds).
    let (mut t, mut step) = (at, d);
    while !step.is_zero() {
        match t.checked_add(step) {
            Some(later) => t = later,
            None => step /= 2,
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{t0, very_early, very_late};

    #[test]
    fn saturates_at_the_last_representable_instant() {
        let now = t0();
        let second = Duration::from_secs(1);
        assert_eq!(saturating_add(now, second), now + second);
        assert_eq!(saturating_add(now, Duration::ZERO), now);
        let end = saturating_add(now, Duration::MAX);
        assert_eq!(end, very_late());
        assert_eq!(saturating_add(end, second), end);
        let almost = end.checked_sub(Duration::from_millis(500)).unwrap();
        assert_eq!(saturating_add(almost, second), end);
        assert_eq!(
            saturating_add(almost, Duration::from_millis(499)),
            end - Duration::from_millis(1)
        );
        // From the earliest instant too (the span may exceed a `Duration`).
        let start = very_early();
        assert_eq!(saturating_add(start, second), start + second);
        assert!(saturating_add(start, Duration::MAX) > start);
    }
}
