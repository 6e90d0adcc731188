//! The codec's hot path: decode + validate, and encode, of a typical ICE Binding request
//! (USERNAME, PRIORITY, ICE-CONTROLLING, USE-CANDIDATE, MESSAGE-INTEGRITY, FINGERPRINT),
//! against the cryptographic floor over the same bytes in the same run: HMAC-SHA1 from a
//! precomputed keyed state plus a 16-table slicing CRC-32. Results: docs/performance.md.

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use crc::{CRC_32_ISO_HDLC, Crc, Table};
use criterion::{Criterion, criterion_group, criterion_main};
use hmac::{Hmac, Mac};
use sha1::Sha1;
use stun_proto::attribute::{DecodeAttribute, IceControlling, Priority, UseCandidate, Username};
use stun_proto::{IntegrityKey, Message};

mod common;
use common::{PASSWORD, ice_request};

fn codec(c: &mut Criterion) {
    let key = IntegrityKey::short_term(PASSWORD).unwrap();
    let mut buf = [0u8; 256];
    let len = ice_request(&mut buf, &key);
    let message = &buf[..len];
    let mi_offset = len - 8 - 24;
    let fp_offset = len - 8;

    let keyed = <Hmac<Sha1> as hmac::digest::KeyInit>::new_from_slice(PASSWORD.as_bytes()).unwrap();
    let crc16 = Crc::<u32, Table<16>>::new(&CRC_32_ISO_HDLC);
    let crc1 = Crc::<u32, Table<1>>::new(&CRC_32_ISO_HDLC);

    let mut g = c.benchmark_group(format!("ice_binding_request_{len}B"));
    g.bench_function("floor: hmac-sha1 (keyed state) + crc32 slice-16", |b| {
        b.iter(|| {
            let mut mac = keyed.clone();
            mac.update(black_box(&message[..mi_offset]));
            let tag = mac.finalize().into_bytes();
            let crc = crc16.checksum(black_box(&message[..fp_offset]));
            black_box((tag, crc))
        })
    });
    g.bench_function("reference: crc32 bytewise table", |b| {
        b.iter(|| black_box(crc1.checksum(black_box(&message[..fp_offset]))))
    });
    g.bench_function("reference: crc32 slice-16", |b| {
        b.iter(|| black_box(crc16.checksum(black_box(&message[..fp_offset]))))
    });
    g.bench_function("decode + validate", |b| {
        b.iter(|| {
            let m = Message::parse(black_box(message)).unwrap();
            m.verify_fingerprint().unwrap();
            m.verify_integrity(&key).unwrap();
            let user = m.get::<Username>().unwrap().unwrap();
            let priority = m.get::<Priority>().unwrap().unwrap();
            let role = m.get::<IceControlling>().unwrap().unwrap();
            black_box((user, priority, role, m.has(UseCandidate::TYPE)))
        })
    });
    g.bench_function("encode", |b| {
        let mut out = [0u8; 256];
        b.iter(|| black_box(ice_request(black_box(&mut out), &key)))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = codec
}
criterion_main!(benches);
