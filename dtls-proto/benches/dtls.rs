//! Per crypto provider:
//!
//! - `handshake/<provider>/<group>`: one full handshake, both sides, in memory (certificates made
//!   beforehand, cookie exchange on, as configured by default);
//! - `pk_floor/<provider>/<group>`: the public-key work a handshake cannot avoid, both sides:
//!   ephemeral key generation + ECDH on each side, one ECDSA P-256 sign (ServerKeyExchange,
//!   CertificateVerify) and one verify on each side;
//! - `interleaved13`: the same interleaved ratio for DTLS 1.3 handshakes (X25519MLKEM768,
//!   X25519, P-256; HelloRetryRequest cookie on and off) against their floor: the key shares
//!   (for the hybrid: one ML-KEM-768 key generation, encapsulation and decapsulation, and the
//!   X25519 part), two ECDSA P-256 signatures and two verifications;
//! - `record/<provider>/{seal,open}`: protecting and unprotecting a 1,200-byte record with
//!   AES-128-GCM through the record layer, against `raw_aes128gcm/<provider>/{seal,open}`, the
//!   provider's AEAD alone on the same bytes;
//! - `record13/<provider>/{seal,open}`: the same with DTLS 1.3 records (epoch 3,
//!   TLS_AES_128_GCM_SHA256): unified header, inner content type, record number encryption
//!   (one more AES block), and on open the epoch lookup, number reconstruction and replay
//!   window.

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::time::Instant;

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use dtls_proto::crypto::{AeadAlgorithm, CryptoProvider, generate_ecdh_key, providers};
use dtls_proto::fuzzing::{RecordProtection, RecordProtection13};
use dtls_proto::{
    CertificateParams, CipherSuite, Config, Dtls, DtlsCertificate, Event, NamedGroup, PeerVerifier,
    ProtocolVersion,
};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

#[allow(clippy::disallowed_methods)] // benches need an origin for the virtual clock
fn origin() -> Instant {
    Instant::now()
}

fn certs(p: &'static dyn CryptoProvider) -> (DtlsCertificate, DtlsCertificate) {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let params = CertificateParams::new(1_700_000_000);
    (
        DtlsCertificate::generate(p, &mut rng, &params).unwrap(),
        DtlsCertificate::generate(p, &mut rng, &params).unwrap(),
    )
}

fn handshake(
    p: &'static dyn CryptoProvider,
    group: NamedGroup,
    certs: &(DtlsCertificate, DtlsCertificate),
    seed: u64,
) {
    handshake_with(p, group, certs, seed, true)
}

fn handshake_with(
    p: &'static dyn CryptoProvider,
    group: NamedGroup,
    certs: &(DtlsCertificate, DtlsCertificate),
    seed: u64,
    cookie: bool,
) {
    handshake_version(p, group, certs, seed, cookie, ProtocolVersion::Dtls12)
}

fn handshake_version(
    p: &'static dyn CryptoProvider,
    group: NamedGroup,
    certs: &(DtlsCertificate, DtlsCertificate),
    seed: u64,
    cookie: bool,
    version: ProtocolVersion,
) {
    let now = origin();
    let (c, s) = certs.clone();
    let (cfp, sfp) = (c.fingerprint(), s.fingerprint());
    let ccfg = Config::new(p, c, PeerVerifier::Fingerprint(sfp))
        .with_groups(&[group])
        .with_versions(&[version]);
    let scfg = Config::new(p, s, PeerVerifier::Fingerprint(cfp))
        .with_groups(&[group])
        .with_versions(&[version])
        .with_server_cookie(cookie);
    let mut client = Dtls::client(ccfg, ChaCha20Rng::seed_from_u64(seed), now).unwrap();
    let mut server = Dtls::server(scfg, ChaCha20Rng::seed_from_u64(seed + 1));
    let mut done = 0;
    while done < 2 {
        let mut moved = false;
        while let Some(t) = client.poll_transmit() {
            server.handle_datagram(now, &t.payload);
            moved = true;
        }
        while let Some(t) = server.poll_transmit() {
            client.handle_datagram(now, &t.payload);
            moved = true;
        }
        for side in [&mut client, &mut server] {
            while let Some(e) = side.poll_event() {
                assert!(matches!(e, Event::Connected(_)), "{e:?}");
                done += 1;
            }
        }
        assert!(moved || done == 2, "handshake stalled");
    }
}

/// The public-key operations of one handshake, both sides.
fn pk_floor(
    p: &dyn CryptoProvider,
    group: NamedGroup,
    certs: &(DtlsCertificate, DtlsCertificate),
    rng: &mut ChaCha20Rng,
    transcript: &[u8],
) {
    let a = generate_ecdh_key(p, group, rng).unwrap();
    let b = generate_ecdh_key(p, group, rng).unwrap();
    black_box(a.agree(b.public_key()).unwrap());
    black_box(b.agree(a.public_key()).unwrap());
    for signer in [&certs.0, &certs.1] {
        let sig = signer.signing_key().sign(transcript).unwrap();
        p.ecdsa_p256_sha256_verify(signer.public_key(), transcript, &sig)
            .unwrap();
    }
}

/// The public-key operations of one DTLS 1.3 handshake, both sides: the key share (for the
/// hybrid, ML-KEM-768 key generation, encapsulation, decapsulation and the X25519 part) and
/// one ECDSA P-256 signature and verification per side.
fn pk_floor13(
    p: &dyn CryptoProvider,
    group: NamedGroup,
    certs: &(DtlsCertificate, DtlsCertificate),
    rng: &mut ChaCha20Rng,
    transcript: &[u8],
) {
    let ecdhe = if group == NamedGroup::X25519MlKem768 {
        let mut seed = [0u8; 64];
        rng.fill_bytes(&mut seed);
        let mut m = [0u8; 32];
        rng.fill_bytes(&mut m);
        let kem = p.ml_kem_768_key(&seed).unwrap();
        let sent = p
            .ml_kem_768_encapsulate(kem.encapsulation_key(), &m)
            .unwrap();
        black_box(kem.decapsulate(&sent.ciphertext).unwrap());
        NamedGroup::X25519
    } else {
        group
    };
    let a = generate_ecdh_key(p, ecdhe, rng).unwrap();
    let b = generate_ecdh_key(p, ecdhe, rng).unwrap();
    black_box(a.agree(b.public_key()).unwrap());
    black_box(b.agree(a.public_key()).unwrap());
    for signer in [&certs.0, &certs.1] {
        let sig = signer.signing_key().sign(transcript).unwrap();
        p.ecdsa_p256_sha256_verify(signer.public_key(), transcript, &sig)
            .unwrap();
    }
}

/// DTLS 1.3 handshakes and their floor, timed alternately as in [`interleaved_ratio`].
fn interleaved13(_c: &mut Criterion) {
    const ROUNDS: usize = 150;
    let transcript = vec![0x5a; 1500];
    let only = std::env::var("DTLS_BENCH_PROVIDER").ok();
    for p in providers() {
        if only.as_deref().is_some_and(|o| o != p.name()) {
            continue;
        }
        let certs = certs(p);
        for group in NamedGroup::ALL_13 {
            for cookie in [true, false] {
                let mut rng = ChaCha20Rng::seed_from_u64(6);
                let (mut hs, mut floor) = (Vec::new(), Vec::new());
                for round in 0..ROUNDS as u64 {
                    let t = origin();
                    handshake_version(
                        p,
                        group,
                        &certs,
                        2000 + 2 * round,
                        cookie,
                        ProtocolVersion::Dtls13,
                    );
                    hs.push(t.elapsed());
                    let t = origin();
                    pk_floor13(p, group, &certs, &mut rng, &transcript);
                    floor.push(t.elapsed());
                }
                hs.sort_unstable();
                floor.sort_unstable();
                let (h, f) = (hs[ROUNDS / 2], floor[ROUNDS / 2]);
                println!(
                    "interleaved13 {}/{} cookie {}: handshake median {:?}, public-key floor median {:?}, ratio {:.2}",
                    p.name(),
                    group.openssl_name(),
                    if cookie { "on" } else { "off" },
                    h,
                    f,
                    h.as_secs_f64() / f.as_secs_f64()
                );
            }
        }
    }
}

fn bench_handshake(c: &mut Criterion) {
    let mut g = c.benchmark_group("handshake");
    g.sample_size(20);
    for p in providers() {
        let certs = certs(p);
        for group in NamedGroup::ALL {
            let id = format!("{}/{}", p.name(), group.openssl_name());
            let mut seed = 0;
            g.bench_function(BenchmarkId::from_parameter(&id), |b| {
                b.iter(|| {
                    seed += 2;
                    handshake(p, group, &certs, seed)
                })
            });
        }
    }
    g.finish();

    let mut g = c.benchmark_group("pk_floor");
    g.sample_size(20);
    let transcript = vec![0x5a; 1500];
    for p in providers() {
        let certs = certs(p);
        for group in NamedGroup::ALL {
            let id = format!("{}/{}", p.name(), group.openssl_name());
            let mut rng = ChaCha20Rng::seed_from_u64(3);
            g.bench_function(BenchmarkId::from_parameter(&id), |b| {
                b.iter(|| pk_floor(p, group, &certs, &mut rng, &transcript))
            });
        }
    }
    g.finish();
}

/// Handshake and floor timed alternately, round after round, so both see the same machine
/// load; prints the medians and their ratio (criterion's separate runs drift on a shared box).
fn interleaved_ratio(_c: &mut Criterion) {
    const ROUNDS: usize = 150;
    let transcript = vec![0x5a; 1500];
    // DTLS_BENCH_PROVIDER=<name> restricts the run to one provider (for profiling);
    // DTLS_BENCH_PROFILE_HANDSHAKES=<n> only runs n handshakes of it (for `perf record`).
    let only = std::env::var("DTLS_BENCH_PROVIDER").ok();
    if let Some(n) = std::env::var("DTLS_BENCH_PROFILE_HANDSHAKES")
        .ok()
        .and_then(|n| n.parse::<u64>().ok())
    {
        for p in providers()
            .into_iter()
            .filter(|p| only.as_deref().is_none_or(|o| o == p.name()))
        {
            let certs = certs(p);
            for round in 0..n {
                handshake_with(p, NamedGroup::X25519, &certs, 2 * round, false);
            }
        }
        return;
    }
    for p in providers() {
        if only.as_deref().is_some_and(|o| o != p.name()) {
            continue;
        }
        let certs = certs(p);
        for group in NamedGroup::ALL {
            for cookie in [true, false] {
                let mut rng = ChaCha20Rng::seed_from_u64(5);
                let (mut hs, mut floor) = (Vec::new(), Vec::new());
                for round in 0..ROUNDS as u64 {
                    let t = origin();
                    handshake_with(p, group, &certs, 1000 + 2 * round, cookie);
                    hs.push(t.elapsed());
                    let t = origin();
                    pk_floor(p, group, &certs, &mut rng, &transcript);
                    floor.push(t.elapsed());
                }
                hs.sort_unstable();
                floor.sort_unstable();
                let (h, f) = (hs[ROUNDS / 2], floor[ROUNDS / 2]);
                println!(
                    "interleaved {}/{} cookie {}: handshake median {:?}, public-key floor median {:?}, ratio {:.2}",
                    p.name(),
                    group.openssl_name(),
                    if cookie { "on" } else { "off" },
                    h,
                    f,
                    h.as_secs_f64() / f.as_secs_f64()
                );
            }
        }
    }
}

fn bench_records(c: &mut Criterion) {
    let payload = vec![0xa5u8; 1200];
    let mut g = c.benchmark_group("record");
    g.throughput(Throughput::Bytes(payload.len() as u64));
    for p in providers() {
        let suite = CipherSuite::EcdheEcdsaAes128GcmSha256;
        let prot = RecordProtection::new(p, suite, &[7; 16], &[9; 4]).unwrap();
        let mut sealed = Vec::new();
        prot.seal(42, &payload, &mut sealed).unwrap();
        g.bench_function(format!("{}/seal", p.name()), |b| {
            b.iter(|| {
                let mut out = Vec::with_capacity(1300);
                prot.seal(42, black_box(&payload), &mut out).unwrap();
                out
            })
        });
        g.bench_function(format!("{}/open", p.name()), |b| {
            b.iter(|| prot.open(black_box(&sealed)).unwrap())
        });

        let raw = p.aead_key(AeadAlgorithm::Aes128Gcm, &[7; 16]).unwrap();
        let nonce = [1u8; 12];
        let aad = [2u8; 13];
        let mut raw_sealed = payload.clone();
        let tag = raw.seal_detached(&nonce, &aad, &mut raw_sealed).unwrap();
        raw_sealed.extend_from_slice(&tag);
        g.bench_function(format!("raw_aes128gcm/{}/seal", p.name()), |b| {
            b.iter(|| {
                let mut buf = Vec::with_capacity(1300);
                buf.extend_from_slice(black_box(&payload));
                let tag = raw.seal_detached(&nonce, &aad, &mut buf).unwrap();
                buf.extend_from_slice(&tag);
                buf
            })
        });
        g.bench_function(format!("raw_aes128gcm/{}/open", p.name()), |b| {
            b.iter(|| {
                let mut buf = black_box(&raw_sealed).clone();
                raw.open_in_place(&nonce, &aad, &mut buf).unwrap();
                buf
            })
        });
    }
    g.finish();
}

fn bench_records_13(c: &mut Criterion) {
    let payload = vec![0xa5u8; 1200];
    let mut g = c.benchmark_group("record13");
    g.throughput(Throughput::Bytes(payload.len() as u64));
    for p in providers() {
        let mut prot = RecordProtection13::new(p, AeadAlgorithm::Aes128Gcm, &[7; 32]).unwrap();
        g.bench_function(format!("{}/seal", p.name()), |b| {
            b.iter(|| {
                let mut out = Vec::with_capacity(1300);
                assert!(prot.seal(black_box(&payload), &mut out));
                out
            })
        });
        // Each record opens once, so every iteration gets a fresh one, sealed untimed.
        let mut sender = RecordProtection13::new(p, AeadAlgorithm::Aes128Gcm, &[8; 32]).unwrap();
        let mut receiver = RecordProtection13::new(p, AeadAlgorithm::Aes128Gcm, &[8; 32]).unwrap();
        g.bench_function(format!("{}/open", p.name()), |b| {
            b.iter_batched(
                || {
                    let mut out = Vec::with_capacity(1300);
                    assert!(sender.seal(&payload, &mut out));
                    out
                },
                |sealed| {
                    let opened = receiver.open(black_box(&sealed)).map(<[u8]>::len);
                    assert_eq!(opened, Some(1200), "a fresh record opens");
                    opened
                },
                criterion::BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

criterion_group!(
    benches,
    interleaved13,
    interleaved_ratio,
    bench_handshake,
    bench_records,
    bench_records_13
);
criterion_main!(benches);
