//! Links: what happens to a datagram between a node and its network, one direction at a time —
//! latency, jitter (which reorders), loss, duplication and an MTU.

use std::time::Duration;

use rand_core::RngCore;

/// One direction of a link.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Path {
    /// The fixed one-way delay.
    pub latency: Duration,
    /// Extra delay drawn uniformly from `0..=jitter` per datagram; datagrams sent close together
    /// can arrive out of order.
    pub jitter: Duration,
    /// The probability a datagram is lost, 0.0..=1.0.
    pub loss: f64,
    /// The probability a datagram arrives twice.
    pub duplicate: f64,
    /// The largest IP packet (payload + 28 bytes of IPv4/UDP headers, 48 for IPv6) that
    /// passes; larger ones are dropped.
    pub mtu: usize,
}

impl Path {
    /// A path with `latency` and nothing else in the way (MTU 1500).
    pub const fn with_latency(latency: Duration) -> Self {
        Self {
            latency,
            jitter: Duration::ZERO,
            loss: 0.0,
            duplicate: 0.0,
            mtu: 1500,
        }
    }

    /// What becomes of one datagram of `ip_size` bytes: the delays of the copies that arrive
    /// (none if it was lost or too big, two if duplicated).
    pub(crate) fn traverse(
        &self,
        rng: &mut dyn RngCore,
        ip_size: usize,
    ) -> Result<Vec<Duration>, LinkDrop> {
        if ip_size > self.mtu {
            return Err(LinkDrop::TooBig);
        }
        if chance(rng, self.loss) {
            return Err(LinkDrop::Lost);
        }
        let copies = if chance(rng, self.duplicate) { 2 } else { 1 };
        Ok((0..copies)
            .map(|_| self.latency + self.jitter.mul_f64(unit(rng)))
            .collect())
    }
}

impl Default for Path {
    fn default() -> Self {
        Self::with_latency(Duration::from_millis(5))
    }
}

/// Both directions of a node's (or a NAT's) attachment to its network.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Link {
    /// From the node into the network.
    pub up: Path,
    /// From the network to the node.
    pub down: Path,
}

impl Link {
    /// The same path both ways.
    pub const fn symmetric(path: Path) -> Self {
        Self {
            up: path,
            down: path,
        }
    }
}

/// Why a link dropped a datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkDrop {
    /// Random loss.
    Lost,
    /// Larger than the MTU.
    TooBig,
}

/// A uniform draw in 0.0..1.0 from the world's RNG.
fn unit(rng: &mut dyn RngCore) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

fn chance(rng: &mut dyn RngCore, probability: f64) -> bool {
    probability > 0.0 && unit(rng) < probability
}

#[cfg(test)]
mod tests {
    use rand_chacha::ChaCha8Rng;
    use rand_core::SeedableRng;

    use super::*;

    #[test]
    fn loss_and_duplication_follow_their_probabilities() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let path = Path {
            loss: 0.1,
            duplicate: 0.05,
            ..Path::with_latency(Duration::from_millis(10))
        };
        let (mut lost, mut doubled) = (0, 0);
        for _ in 0..10_000 {
            match path.traverse(&mut rng, 100) {
                Err(LinkDrop::Lost) => lost += 1,
                Ok(copies) if copies.len() == 2 => doubled += 1,
                Ok(copies) => assert_eq!(copies, [Duration::from_millis(10)]),
                Err(LinkDrop::TooBig) => unreachable!("100 bytes fit"),
            }
        }
        assert!((900..1100).contains(&lost), "lost {lost} of 10000 at 10%");
        assert!(
            (350..600).contains(&doubled),
            "duplicated {doubled} of ~9000 at 5%"
        );
    }

    #[test]
    fn jitter_stays_within_bounds_and_mtu_drops_big_packets() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let path = Path {
            jitter: Duration::from_millis(20),
            mtu: 576,
            ..Path::with_latency(Duration::from_millis(30))
        };
        for _ in 0..1000 {
            let d = path.traverse(&mut rng, 576).unwrap()[0];
            assert!(
                d >= Duration::from_millis(30) && d <= Duration::from_millis(50),
                "{d:?}"
            );
        }
        assert_eq!(path.traverse(&mut rng, 577), Err(LinkDrop::TooBig));
    }
}
