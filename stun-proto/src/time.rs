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
    saturating(at, d, Instant::checked_add)
}

/// `at - d`, or the earliest instant the platform represents when that is before it.
///
/// ```
/// use std::time::{Duration, Instant};
/// use stun_proto::time::saturating_sub;
///
/// let now = Instant::now();
/// let start = saturating_sub(now, Duration::MAX);
/// assert!(start.checked_sub(Duration::from_nanos(1)).is_none());
/// assert_eq!(saturating_sub(start, Duration::from_secs(1)), start);
/// ```
pub fn saturating_sub(at: Instant, d: Duration) -> Instant {
    saturating(at, d, Instant::checked_sub)
}

/// `step(at, d)`, or as far as `step` goes: past the end, walk up to it, halving the step
/// whenever it overshoots (at most about two steps for each of the ~94 bits of a
/// `Duration`'s nanoseconds).
fn saturating(
    at: Instant,
    d: Duration,
    step: impl Fn(&Instant, Duration) -> Option<Instant>,
) -> Instant {
    if let Some(t) = step(&at, d) {
        return t;
    }
    let (mut t, mut stride) = (at, d);
    while !stride.is_zero() {
        match step(&t, stride) {
            Some(next) => t = next,
            None => stride /= 2,
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
