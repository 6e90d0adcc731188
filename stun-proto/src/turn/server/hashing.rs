//! The hash the server's routing tables use: a seeded multiply-fold hash (the construction
//! of foldhash and ahash's fallback), several times faster than std's SipHash on the small
//! keys of the relay path (a 5-tuple, a socket address, an allocation id), and keyed with
//! 128 bits from the server's RNG so that a client choosing its ports cannot aim for
//! collisions it can predict.

use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;

use rand_core::RngCore;

/// Builds [`FoldHasher`]s with the server's seed.
#[derive(Clone, Copy, Debug)]
pub(super) struct FoldHash {
    seed: [u64; 2],
}

impl FoldHash {
    pub(super) fn new<R: RngCore>(rng: &mut R) -> Self {
        Self {
            seed: [rng.next_u64(), rng.next_u64() | 1],
        }
    }
}

impl BuildHasher for FoldHash {
    type Hasher = FoldHasher;

    fn build_hasher(&self) -> FoldHasher {
        FoldHasher {
            state: self.seed[0],
            multiplier: self.seed[1],
        }
    }
}

/// The full 128-bit product of two words, folded to 64 bits.
const fn fold_multiply(a: u64, b: u64) -> u64 {
    let full = (a as u128).wrapping_mul(b as u128);
    (full as u64) ^ ((full >> 64) as u64)
}

/// One hash computation.
#[derive(Clone, Copy, Debug)]
pub(super) struct FoldHasher {
    state: u64,
    multiplier: u64,
}

impl Hasher for FoldHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word.iter_mut().zip(rest).for_each(|(w, r)| *w = *r);
            self.write_u64(u64::from_le_bytes(word) ^ ((rest.len() as u64) << 59));
        }
    }

    fn write_u64(&mut self, word: u64) {
        self.state = fold_multiply(self.state ^ word, self.multiplier ^ 0x9E37_79B9_7F4A_7C15);
    }

    fn write_u32(&mut self, word: u32) {
        self.write_u64(u64::from(word));
    }

    fn write_u16(&mut self, word: u16) {
        self.write_u64(u64::from(word));
    }

    fn write_u8(&mut self, byte: u8) {
        self.write_u64(u64::from(byte));
    }

    fn write_usize(&mut self, word: usize) {
        self.write_u64(word as u64);
    }

    fn finish(&self) -> u64 {
        fold_multiply(self.state, self.multiplier).rotate_left(23)
    }
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
        let a = FoldHash::new(&mut TestRng::new(1));
        let b = FoldHash::new(&mut TestRng::new(2));
        let key: SocketAddr = "192.0.2.1:3478".parse().unwrap();
        assert_eq!(a.hash_one(key), a.hash_one(key));
        assert_ne!(a.hash_one(key), b.hash_one(key));
        let other: SocketAddr = "192.0.2.1:3479".parse().unwrap();
        assert_ne!(a.hash_one(key), a.hash_one(other));
        assert_ne!(a.hash_one(&b"abc"[..]), a.hash_one(&b"abd"[..]));
    }
}
