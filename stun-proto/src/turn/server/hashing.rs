//! The hash the server's routing tables use: the `foldhash` crate (a multiply-fold hash, several
//! times faster than std's SipHash on the small keys of the relay path: a 5-tuple, a socket
//! address, an allocation id), keyed with 64 bits from the server's RNG so that a client
//! choosing its ports cannot aim for collisions it can predict, while a seeded run stays
//! reproducible.

use std::net::SocketAddr;

use foldhash::fast::FixedState;
use rand_core::RngCore;

/// The hasher builder of the routing tables.
pub(super) type FoldHash = FixedState;

/// A hasher builder keyed from the server's RNG.
pub(super) fn seeded<R: RngCore>(rng: &mut R) -> FoldHash {
    FixedState::with_seed(rng.next_u64())
}

/// A socket address as two words: the IP's 128 bits folded, and the port and family.
pub(super) fn address_words(address: &SocketAddr) -> (u64, u64) {
    match address {
        SocketAddr::V4(a) => (u64::from(a.ip().to_bits()), u64::from(a.port()) | 4 << 16),
        SocketAddr::V6(a) => {
            let ip = a.ip().to_bits();
            (
                (ip as u64) ^ ((ip >> 64) as u64).rotate_left(32),
                u64::from(a.port()) | 6 << 16,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use std::hash::BuildHasher;

    use super::*;
    use crate::test_support::TestRng;

    #[test]
    fn equal_keys_hash_equal_and_seeds_differ() {
        let a = seeded(&mut TestRng::new(1));
        let b = seeded(&mut TestRng::new(2));
        let key: SocketAddr = "192.0.2.1:3478".parse().unwrap();
        assert_eq!(a.hash_one(key), a.hash_one(key));
        assert_ne!(a.hash_one(key), b.hash_one(key));
        let other: SocketAddr = "192.0.2.1:3479".parse().unwrap();
        assert_ne!(a.hash_one(key), a.hash_one(other));
        assert_ne!(a.hash_one(&b"abc"[..]), a.hash_one(&b"abd"[..]));
    }
}
