//! The codec's cost as a multiple of its cryptographic floor, measured so that machine load
//! cannot skew it: floor, decode + validate and encode run in alternating short batches, and
//! each ratio is the median of per-round ratios. Complements `benches/codec.rs` (absolute
//! times); results in docs/performance.md.

// A benchmark reads the wall clock; the sans-IO rule is for the protocol crates' code.
#![allow(clippy::disallowed_methods)]

use std::hint::black_box;
use std::time::Instant;

use crc::{CRC_32_ISO_HDLC, Crc, Table};
use hmac::{Hmac, Mac};
use sha1::Sha1;
use stun_proto::attribute::{DecodeAttribute, IceControlling, Priority, UseCandidate, Username};
use stun_proto::{IntegrityKey, Message};

mod common;
use common::{PASSWORD, ice_request};

const BATCH: u32 = 2_000;
const ROUNDS: usize = 301;

/// Nanoseconds per call of `f`, over one batch.
fn batch(mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..BATCH {
        f();
    }
    start.elapsed().as_nanos() as f64 / f64::from(BATCH)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let key = IntegrityKey::short_term(PASSWORD).unwrap();
    let mut buf = [0u8; 256];
    let len = ice_request(&mut buf, &key);
    let message = &buf[..len];
    let (mi_offset, fp_offset) = (len - 32, len - 8);
    let keyed = <Hmac<Sha1> as hmac::digest::KeyInit>::new_from_slice(PASSWORD.as_bytes()).unwrap();
    let crc16 = Crc::<u32, Table<16>>::new(&CRC_32_ISO_HDLC);

    let mut floor = || {
        let mut mac = keyed.clone();
        mac.update(black_box(&message[..mi_offset]));
        black_box((
            mac.finalize().into_bytes(),
            crc16.checksum(black_box(&message[..fp_offset])),
        ));
    };
    let mut decode = || {
        let m = Message::parse(black_box(message)).unwrap();
        m.verify_fingerprint().unwrap();
        m.verify_integrity(&key).unwrap();
        let user = m.get::<Username>().unwrap().unwrap();
        let priority = m.get::<Priority>().unwrap().unwrap();
        let role = m.get::<IceControlling>().unwrap().unwrap();
        black_box((user, priority, role, m.has(UseCandidate::TYPE)));
    };
    let mut out = [0u8; 256];
    let mut encode = || {
        black_box(ice_request(black_box(&mut out), &key));
    };

    // Where decode + validate spends its time, piece by piece.
    let parsed = Message::parse(message).unwrap();
    let mut parse = || {
        black_box(Message::parse(black_box(message)).unwrap());
    };
    let mut fingerprint = || black_box(&parsed).verify_fingerprint().unwrap();
    let mut integrity = || {
        black_box(black_box(&parsed).verify_integrity(&key).unwrap());
    };
    let mut lookups = || {
        let m = black_box(&parsed);
        let user = m.get::<Username>().unwrap().unwrap();
        let priority = m.get::<Priority>().unwrap().unwrap();
        let role = m.get::<IceControlling>().unwrap().unwrap();
        black_box((user, priority, role, m.has(UseCandidate::TYPE)));
    };
    let mut hmac_only = || {
        let mut mac = keyed.clone();
        mac.update(black_box(&message[..mi_offset]));
        black_box(mac.finalize().into_bytes());
    };
    let pieces: [(&str, &mut dyn FnMut()); 5] = [
        ("parse", &mut parse),
        ("verify FINGERPRINT", &mut fingerprint),
        ("verify MESSAGE-INTEGRITY", &mut integrity),
        ("4 attribute lookups", &mut lookups),
        ("floor's HMAC-SHA1 alone", &mut hmac_only),
    ];
    for (name, f) in pieces {
        let times: Vec<f64> = (0..101).map(|_| batch(&mut *f)).collect();
        println!("  {name}: {:.1} ns", median(times));
    }

    let (mut floors, mut decode_ratios, mut encode_ratios) = (vec![], vec![], vec![]);
    for _ in 0..ROUNDS {
        let f = batch(&mut floor);
        let d = batch(&mut decode);
        let e = batch(&mut encode);
        let f2 = batch(&mut floor);
        let f = (f + f2) / 2.0;
        floors.push(f);
        decode_ratios.push(d / f);
        encode_ratios.push(e / f);
    }
    let floor_ns = median(floors);
    println!("ICE Binding request, {len} bytes; {ROUNDS} rounds of {BATCH}-call batches");
    println!("floor (HMAC-SHA1 keyed state + CRC-32 slice-16): {floor_ns:.1} ns");
    for (name, ratios) in [
        ("decode + validate", decode_ratios),
        ("encode", encode_ratios),
    ] {
        let r = median(ratios);
        println!("{name}: {:.1} ns = {r:.2}x floor", r * floor_ns);
    }
}
