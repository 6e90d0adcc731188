//! HMAC-SHA1 (RFC 2104) for MESSAGE-INTEGRITY (RFC 8489 §14.5), written straight over SHA-1's
//! compression function (FIPS 180-4 §6.1) with both keyed states precomputed.
//!
//! Why not the `hmac` crate: a message costs three compressions whoever computes it (two for
//! the inner hash of an ICE check's ~60 covered bytes, one for the outer hash), and the
//! generic `Hmac<Sha1>` adds a 150-byte state to clone, a block buffer every input is copied
//! through, and, for STUN, a separate update for the patched length field. Here the state is
//! two 20-byte chaining values, the length field is patched in the block being compressed, and
//! nothing else happens. Tests check the result against the `hmac` crate.

use sha1::digest::core_api::Block;
use sha1::{Digest, Sha1, Sha1Core};

/// SHA-1's block size, the width of an HMAC key (RFC 2104 §2).
const BLOCK: usize = 64;
/// The SHA-1 digest size.
const TAG_LEN: usize = 20;
/// SHA-1's initial chaining value (FIPS 180-4 §5.3.1).
const INITIAL: [u32; 5] = [
    0x6745_2301,
    0xEFCD_AB89,
    0x98BA_DCFE,
    0x1032_5476,
    0xC3D2_E1F0,
];
/// Offset of the STUN header's length field, which the MAC reads as a caller-given value.
const LENGTH_FIELD: usize = 2;

/// An HMAC-SHA1 key: the chaining values after the inner (`key ^ ipad`) and outer
/// (`key ^ opad`) key blocks.
#[derive(Clone)]
pub(crate) struct HmacSha1 {
    inner: [u32; 5],
    outer: [u32; 5],
}

impl HmacSha1 {
    /// Precomputes the key (RFC 2104 §2: hashed first when longer than a block).
    pub(crate) fn new(key: &[u8]) -> Self {
        let mut padded = Block::<Sha1Core>::default();
        if key.len() > BLOCK {
            padded[..TAG_LEN].copy_from_slice(&Sha1::digest(key));
        } else {
            padded[..key.len()].copy_from_slice(key);
        }
        let keyed = |pad: u8| {
            let mut state = INITIAL;
            let mut block = padded;
            block.iter_mut().for_each(|b| *b ^= pad);
            sha1::compress(&mut state, &[block]);
            state
        };
        Self {
            inner: keyed(0x36),
            outer: keyed(0x5c),
        }
    }

    /// The HMAC of `covered` read as if bytes 2..4 (a STUN header's length field) held
    /// `length`.
    pub(crate) fn tag_with_length(&self, covered: &[u8], length: u16) -> [u8; TAG_LEN] {
        let mut state = self.inner;
        let mut block = Block::<Sha1Core>::default();
        let mut chunks = covered.chunks_exact(BLOCK);
        for (index, chunk) in chunks.by_ref().enumerate() {
            block.copy_from_slice(chunk);
            if index == 0 {
                patch_length(&mut block, BLOCK, length);
            }
            sha1::compress(&mut state, std::slice::from_ref(&block));
        }
        let rest = chunks.remainder();
        // The last message bytes, 0x80, zeros and the length in bits (FIPS 180-4 §5.1.1): one
        // block, or two when the 9 bytes of padding do not fit after the message's end.
        let mut last = [Block::<Sha1Core>::default(), Block::<Sha1Core>::default()];
        last[0][..rest.len()].copy_from_slice(rest);
        if covered.len() < BLOCK {
            patch_length(&mut last[0], rest.len(), length);
        }
        // The key block came first: the inner hash reads BLOCK + covered.len() bytes.
        let blocks = pad(&mut last, rest.len(), BLOCK + covered.len());
        sha1::compress(&mut state, blocks);

        let mut outer = self.outer;
        let mut last = [Block::<Sha1Core>::default(), Block::<Sha1Core>::default()];
        last[0][..TAG_LEN].copy_from_slice(&digest(state));
        sha1::compress(&mut outer, pad(&mut last, TAG_LEN, BLOCK + TAG_LEN));
        digest(outer)
    }
}

/// Writes `length` over the length field of the message's first block, if its `filled`
/// bytes reach that far.
fn patch_length(block: &mut Block<Sha1Core>, filled: usize, length: u16) {
    if filled >= LENGTH_FIELD + 2 {
        block[LENGTH_FIELD..LENGTH_FIELD + 2].copy_from_slice(&length.to_be_bytes());
    }
}

/// Pads `last`, whose first block holds `used` message bytes, for a message of `total` bytes
/// (FIPS 180-4 §5.1.1); returns the blocks to compress, both only when the padding needs the
/// second (so that they go to the compression function in one call).
fn pad(last: &mut [Block<Sha1Core>; 2], used: usize, total: usize) -> &[Block<Sha1Core>] {
    let bits = (total as u64 * 8).to_be_bytes();
    last[0][used] = 0x80;
    if used >= BLOCK - 8 {
        last[1][BLOCK - 8..].copy_from_slice(&bits);
        &last[..]
    } else {
        last[0][BLOCK - 8..].copy_from_slice(&bits);
        &last[..1]
    }
}

/// The digest of a final chaining value.
fn digest(state: [u32; 5]) -> [u8; TAG_LEN] {
    let mut out = [0; TAG_LEN];
    out.chunks_exact_mut(4)
        .zip(state)
        .for_each(|(o, word)| o.copy_from_slice(&word.to_be_bytes()));
    out
}

#[cfg(test)]
mod tests {
    use hmac::digest::KeyInit;
    use hmac::{Hmac, Mac};

    use super::*;

    fn reference(key: &[u8], covered: &[u8], length: u16) -> [u8; TAG_LEN] {
        let mut mac = <Hmac<Sha1> as KeyInit>::new_from_slice(key).unwrap();
        let mut patched = covered.to_vec();
        if let Some(field) = patched.get_mut(2..4) {
            field.copy_from_slice(&length.to_be_bytes());
        }
        mac.update(&patched);
        mac.finalize().into_bytes().into()
    }

    #[test]
    fn matches_the_hmac_crate_across_key_and_message_lengths() {
        for key_len in [0, 1, 20, 63, 64, 65, 200] {
            let key: Vec<u8> = (0..key_len).map(|i| i as u8 ^ 0xa5).collect();
            let hmac = HmacSha1::new(&key);
            // Every padding case: a partial last block with and without room for the bit
            // length, whole blocks, and the length field in a full first block.
            for len in (0..=200).chain([1000, 4096]) {
                let covered: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
                assert_eq!(
                    hmac.tag_with_length(&covered, 0xbeef),
                    reference(&key, &covered, 0xbeef),
                    "key {key_len} bytes, message {len} bytes"
                );
            }
        }
    }
}
