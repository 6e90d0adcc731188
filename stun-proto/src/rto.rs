//! Retransmission timeout estimation: RFC 6298 §2 smoothed RTT per server, and the RTO cache
//! of RFC 8489 §6.2.1 ("the value for RTO SHOULD be cached by a client after the completion of
//! the transaction, and used as the starting value for RTO for the next transaction to the
//! same server (based on equality of IP address)"; stale after 10 minutes without a
//! transaction).
//!
//! Karn's algorithm (RFC 6298 §3) is the caller's: only transactions answered before any
//! retransmission feed a sample, so an answer to a retransmit never skews the estimate.

use std::net::IpAddr;
use std::time::{Duration, Instant};

/// The RFC 6298 §2 estimator for one server: SRTT, RTTVAR, and the RTO derived from them.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct RttEstimator {
    srtt: Duration,
    rttvar: Duration,
    rto: Duration,
}

impl RttEstimator {
    /// The estimator after its first sample `r` (RFC 6298 §2.2): SRTT = R, RTTVAR = R/2,
    /// RTO = SRTT + max(G, 4·RTTVAR), clamped to `[min_rto, max_rto]`.
    pub fn new(r: Duration, min_rto: Duration, max_rto: Duration) -> Self {
        let mut e = Self {
            srtt: r,
            rttvar: r / 2,
            rto: Duration::ZERO,
        };
        e.update_rto(min_rto, max_rto);
        e
    }

    /// Folds in a later sample (RFC 6298 §2.3, alpha = 1/8, beta = 1/4).
    pub fn sample(&mut self, r: Duration, min_rto: Duration, max_rto: Duration) {
        let delta = self.srtt.abs_diff(r);
        self.rttvar = self.rttvar.saturating_mul(3).saturating_add(delta) / 4;
        self.srtt = self.srtt.saturating_mul(7).saturating_add(r) / 8;
        self.update_rto(min_rto, max_rto);
    }

    fn update_rto(&mut self, min_rto: Duration, max_rto: Duration) {
        // The clock granularity G is the caller's; with `Instant` it is below a millisecond.
        const GRANULARITY: Duration = Duration::from_millis(1);
        let rto = self
            .srtt
            .saturating_add(self.rttvar.saturating_mul(4).max(GRANULARITY));
        self.rto = rto.clamp(min_rto, max_rto.max(min_rto));
    }

    /// The smoothed round-trip time.
    pub const fn srtt(&self) -> Duration {
        self.srtt
    }

    /// The round-trip time variation.
    pub const fn rttvar(&self) -> Duration {
        self.rttvar
    }

    /// The retransmission timeout to start the next transaction with.
    pub const fn rto(&self) -> Duration {
        self.rto
    }
}

/// One server's cached estimate.
#[derive(Clone, Copy, Debug)]
struct Entry {
    server: IpAddr,
    /// The RFC 6298 state, once a valid sample came.
    estimator: Option<RttEstimator>,
    /// The RTO to start with: the estimator's, or a backed-off one (Karn).
    rto: Duration,
    last_used: Instant,
}

/// The bounded per-server RTO cache of RFC 8489 §6.2.1, keyed by IP address. When full, the
/// least recently used server is forgotten; entries unused for `lifetime` are stale.
#[derive(Clone, Debug)]
pub struct RtoCache {
    entries: Vec<Entry>,
    capacity: usize,
    lifetime: Duration,
}

impl RtoCache {
    /// An empty cache holding at most `capacity` servers, each for `lifetime` after its last
    /// transaction (the RFC's 10 minutes). It allocates as servers come, not up front: a
    /// client of one or two servers (an ICE agent gathering) holds one or two entries.
    pub fn new(capacity: usize, lifetime: Duration) -> Self {
        Self {
            entries: Vec::new(),
            capacity,
            lifetime,
        }
    }

    /// The RTO to start a transaction to `server` with, unless absent or stale at `now`.
    pub fn rto(&self, now: Instant, server: IpAddr) -> Option<Duration> {
        self.fresh(now, server).map(|e| e.rto)
    }

    /// The RFC 6298 estimator for `server`, if a valid sample came and it is not stale.
    pub fn estimator(&self, now: Instant, server: IpAddr) -> Option<&RttEstimator> {
        self.fresh(now, server).and_then(|e| e.estimator.as_ref())
    }

    fn fresh(&self, now: Instant, server: IpAddr) -> Option<&Entry> {
        self.entries
            .iter()
            .find(|e| e.server == server && !self.is_stale(e, now))
    }

    /// Notes that a transaction to `server` started or ended at `now`, keeping its entry
    /// fresh.
    pub fn touch(&mut self, now: Instant, server: IpAddr) {
        if let Some(e) = self.entries.iter_mut().find(|e| e.server == server) {
            e.last_used = e.last_used.max(now);
        }
    }

    /// Feeds an RTT sample for `server`, measured by a transaction that ended at `now`.
    pub fn sample(
        &mut self,
        now: Instant,
        server: IpAddr,
        rtt: Duration,
        min_rto: Duration,
        max_rto: Duration,
    ) {
        let fresh = self.fresh(now, server).is_some();
        let entry = self.entry(now, server);
        let estimator = match (fresh, entry.estimator) {
            (true, Some(mut e)) => {
                e.sample(rtt, min_rto, max_rto);
                e
            }
            _ => RttEstimator::new(rtt, min_rto, max_rto),
        };
        entry.estimator = Some(estimator);
        entry.rto = estimator.rto();
    }

    /// Keeps the backed-off `rto` of a transaction that was answered only after a
    /// retransmission (Karn's algorithm, RFC 6298 §5: the backed-off value stays until a
    /// valid sample), so a server slower than the initial RTO is measured next time.
    pub fn back_off(&mut self, now: Instant, server: IpAddr, rto: Duration, max_rto: Duration) {
        let fresh = self.fresh(now, server).is_some();
        let entry = self.entry(now, server);
        let current = if fresh { entry.rto } else { Duration::ZERO };
        entry.rto = current.max(rto).min(max_rto);
    }

    /// The entry for `server`, made or recycled (least recently used first), touched at `now`.
    fn entry(&mut self, now: Instant, server: IpAddr) -> &mut Entry {
        let blank = Entry {
            server,
            estimator: None,
            rto: Duration::ZERO,
            last_used: now,
        };
        let index = match self.entries.iter().position(|e| e.server == server) {
            Some(i) => i,
            None if self.entries.len() < self.capacity.max(1) => {
                self.entries.push(blank);
                self.entries.len() - 1
            }
            None => {
                let oldest = self
                    .entries
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, e)| e.last_used)
                    .map_or(0, |(i, _)| i);
                if let Some(e) = self.entries.get_mut(oldest) {
                    *e = blank;
                }
                oldest
            }
        };
        // `index` was found or pushed above, so it is in bounds.
        let entry = &mut self.entries[index];
        entry.last_used = entry.last_used.max(now);
        entry
    }

    /// How many servers are cached (stale ones included until replaced).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no server is cached.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn is_stale(&self, e: &Entry, now: Instant) -> bool {
        now.saturating_duration_since(e.last_used) > self.lifetime
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(60);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn first_and_later_samples_follow_rfc_6298() {
        let mut e = RttEstimator::new(ms(200), MIN, MAX);
        assert_eq!((e.srtt(), e.rttvar(), e.rto()), (ms(200), ms(100), ms(600)));
        // R' = 120: RTTVAR = 3/4·100 + 1/4·80 = 95; SRTT = 7/8·200 + 1/8·120 = 190;
        // RTO = 190 + 4·95 = 570.
        e.sample(ms(120), MIN, MAX);
        assert_eq!((e.srtt(), e.rttvar(), e.rto()), (ms(190), ms(95), ms(570)));
    }

    #[test]
    fn rto_is_clamped() {
        assert_eq!(RttEstimator::new(ms(1), MIN, MAX).rto(), MIN);
        assert_eq!(RttEstimator::new(ms(50_000), MIN, MAX).rto(), MAX);
    }

    #[test]
    fn cache_is_per_ip_bounded_and_goes_stale_after_its_lifetime() {
        let t0 = crate::test_support::t0();
        let mut cache = RtoCache::new(2, Duration::from_secs(600));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let c: IpAddr = "192.0.2.3".parse().unwrap();
        cache.sample(t0, a, ms(100), MIN, MAX);
        cache.sample(t0 + ms(1), b, ms(200), MIN, MAX);
        assert_eq!(cache.rto(t0, a), Some(ms(300)));
        assert_eq!(
            cache.estimator(t0, a).map(RttEstimator::srtt),
            Some(ms(100))
        );
        // A third server evicts the least recently used (a).
        cache.sample(t0 + ms(2), c, ms(300), MIN, MAX);
        assert_eq!(cache.len(), 2);
        assert!(cache.rto(t0 + ms(2), a).is_none());
        assert!(cache.rto(t0 + ms(2), b).is_some());
        // Ten minutes without a transaction: stale; one more second is still fine if touched.
        let later = t0 + Duration::from_secs(600) + ms(2);
        assert!(cache.rto(later, c).is_some());
        assert!(cache.rto(later + ms(1), c).is_none());
        cache.touch(later, c);
        assert!(cache.rto(later + ms(1), c).is_some());
    }
}

#[cfg(test)]
mod back_off_tests {
    use super::*;

    #[test]
    fn a_backed_off_rto_is_kept_until_a_valid_sample() {
        let t0 = crate::test_support::t0();
        let ms = Duration::from_millis;
        let (min, max) = (ms(500), Duration::from_secs(60));
        let server: IpAddr = "192.0.2.1".parse().unwrap();
        let mut cache = RtoCache::new(4, Duration::from_secs(600));
        cache.back_off(t0, server, ms(1000), max);
        assert_eq!(cache.rto(t0, server), Some(ms(1000)));
        assert!(cache.estimator(t0, server).is_none());
        // A smaller backed-off value does not lower it; a sample replaces it.
        cache.back_off(t0, server, ms(800), max);
        assert_eq!(cache.rto(t0, server), Some(ms(1000)));
        cache.sample(t0, server, ms(600), min, max);
        assert_eq!(cache.rto(t0, server), Some(ms(1800)));
        cache.back_off(t0, server, ms(120_000), max);
        assert_eq!(cache.rto(t0, server), Some(max), "capped");
    }
}
