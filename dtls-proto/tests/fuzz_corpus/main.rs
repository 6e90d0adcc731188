//! Replays the fuzz corpus (`fuzz/corpus/dtls_*`) through the entry points the fuzz targets
//! use, so every input that once mattered stays a regression test under `cargo test`.
//!
//! The seed corpus is real handshake traffic captured from the in-memory tests; regenerate it
//! with `DTLS_WRITE_CORPUS=1 cargo test -p dtls-proto --test fuzz_corpus -- --ignored`.

#[path = "../handshake/sim.rs"]
#[allow(dead_code)] // shared with the handshake tests; only part of it is used here
mod sim;
#[path = "../common/wire.rs"]
#[allow(dead_code)] // the wire under `sim`; only part of it is used here
mod wire;

use std::path::{Path, PathBuf};
use std::time::Duration;

use dtls_proto::fuzzing;
use sim::{CLIENT, Link, SERVER, Sim, pair};

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target)
}

fn replay(target: &str, run: &dyn Fn(&[u8])) -> usize {
    let dir = corpus_dir(target);
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        run(&std::fs::read(&path).unwrap());
        count += 1;
    }
    count
}

#[test]
fn dtls_record_corpus_replays() {
    let n = replay("dtls_record", &fuzzing::record_layer);
    assert!(n >= 5, "seed corpus has real datagrams, found {n}");
}

#[test]
fn dtls13_record_corpus_replays() {
    let opened = std::cell::Cell::new(0);
    let n = replay("dtls13_record", &|d| {
        opened.set(opened.get() + fuzzing::record_layer_13(d));
    });
    let opened = opened.get();
    assert!(n >= 4, "seed corpus has sealed records, found {n}");
    // The seeds are genuine records under the target's keys: they must open, or the
    // fuzzer would never reach past authentication.
    assert!(opened >= 6, "only {opened} records of the seeds opened");
}

#[test]
fn dtls13_key_share_corpus_replays() {
    let n = replay("dtls13_key_share", &fuzzing::key_share);
    assert!(n >= 3, "seed corpus has one share per group, found {n}");
}

/// The DTLS 1.3 key share seeds: Chromium 156's two shares (X25519MLKEM768, X25519) from its
/// captured ClientHello, each behind its selector, and P-256's generator as a P-256 share.
fn dtls13_key_share_seeds() -> Vec<Vec<u8>> {
    let fragments = include_str!("../handshake/chromium156-client-hello.hex");
    let mut body = Vec::new();
    for line in fragments.lines().filter(|l| !l.is_empty()) {
        let bytes: Vec<u8> = (0..line.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&line[i..i + 2], 16).unwrap())
            .collect();
        let at = |i: usize| usize::from(bytes[i]);
        let (offset, len) = (
            at(19) << 16 | at(20) << 8 | at(21),
            at(22) << 16 | at(23) << 8 | at(24),
        );
        body.resize(body.len().max(offset + len), 0);
        body[offset..offset + len].copy_from_slice(&bytes[25..25 + len]);
    }
    let u16_at = |i: usize| usize::from(u16::from_be_bytes([body[i], body[i + 1]]));
    let mut at = 2 + 32;
    at += 1 + usize::from(body[at]);
    at += 1 + usize::from(body[at]);
    at += 2 + u16_at(at);
    at += 1 + usize::from(body[at]);
    at += 2;
    let mut seeds = Vec::new();
    while at < body.len() {
        let (ext, len) = (u16_at(at), u16_at(at + 2));
        if ext == 0x0033 {
            let mut s = at + 6;
            while s < at + 4 + len {
                let (group, n) = (u16_at(s), u16_at(s + 2));
                let selector = match group {
                    0x11ec => Some(0u8),
                    29 => Some(1),
                    23 => Some(2),
                    _ => None,
                };
                if let Some(selector) = selector {
                    let mut seed = vec![selector];
                    seed.extend_from_slice(&body[s + 4..s + 4 + n]);
                    seeds.push(seed);
                }
                s += 4 + n;
            }
        }
        at += 4 + len;
    }
    let mut p256 = vec![2u8, 4];
    p256.extend_from_slice(
        &(0..64)
            .map(|i| {
                let hex = "6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296\
                           4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5";
                let hex: String = hex.split_whitespace().collect();
                u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap()
            })
            .collect::<Vec<u8>>(),
    );
    seeds.push(p256);
    seeds
}

/// The DTLS 1.3 record seeds: per suite, a datagram of an epoch-2 handshake record and an
/// epoch-3 record; a clear-text record beside a protected one; an ACK.
fn dtls13_record_seeds() -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    for selector in 0..3u8 {
        let mut datagram = vec![selector];
        datagram.extend(fuzzing::seal_record_13(selector, 2, 0, 22, b"\x08\0\0\x02\0\0").unwrap());
        datagram.extend(fuzzing::seal_record_13(selector, 3, 5, 23, b"media keys").unwrap());
        seeds.push(datagram);
    }
    let mut mixed = vec![0u8];
    mixed.extend_from_slice(&[22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0]);
    mixed.extend(fuzzing::seal_record_13(0, 2, 1, 22, b"\x14\0\0\x20").unwrap());
    seeds.push(mixed);
    let mut ack = vec![2u8];
    ack.extend(
        fuzzing::seal_record_13(
            2,
            3,
            9,
            26,
            &[0, 16, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0],
        )
        .unwrap(),
    );
    seeds.push(ack);
    seeds
}

#[test]
fn dtls_handshake_corpus_replays() {
    let n = replay("dtls_handshake", &fuzzing::handshake_message);
    assert!(n >= 5, "seed corpus has real messages, found {n}");
}

#[test]
fn dtls_server_corpus_replays() {
    let origin = sim::origin();
    let n = replay("dtls_server", &|d| {
        for p in dtls_proto::crypto::providers() {
            fuzzing::server_datagrams_with(p, d, origin);
        }
    });
    assert!(n >= 2, "seed corpus has real flights, found {n}");
}

#[test]
fn dtls_pair_corpus_replays() {
    let origin = sim::origin();
    let n = replay("dtls_pair", &|d| {
        let _ = fuzzing::pair(d, origin);
    });
    assert!(n >= 3, "seed corpus has whole handshakes, found {n}");
}

/// The `dtls_acceptor` target shares `dtls_server`'s encoding, so its corpus (real 1.2 and
/// 1.3 client flights among them) replays through the acceptor too.
#[test]
fn dtls_server_corpus_replays_through_the_acceptor() {
    let origin = sim::origin();
    let n = replay("dtls_server", &|d| fuzzing::acceptor_datagrams(d, origin));
    assert!(n >= 1, "found {n}");
}

/// What the `dtls_acceptor` campaign found beyond `dtls_server`'s corpus (its seed).
#[test]
fn dtls_acceptor_corpus_replays() {
    let origin = sim::origin();
    let n = replay("dtls_acceptor", &|d| fuzzing::acceptor_datagrams(d, origin));
    assert!(n >= 1, "found {n}");
}

/// A `fuzzing::pair` input that delivers everything both ways in turn, with a time step and
/// application data from both sides once connected: a clean handshake and its data.
fn clean_pair_run(cookie: bool) -> Vec<u8> {
    clean_pair_run_with(u8::from(cookie))
}

/// [`clean_pair_run`] with the whole first byte: bit 0 the cookie, bits 1–2 the versions
/// (1.2, 1.3, both, both against 1.2).
fn clean_pair_run_with(first: u8) -> Vec<u8> {
    let mut input = vec![first];
    for _ in 0..12 {
        input.extend_from_slice(&[0, 0x80, 0, 0x80]);
    }
    input.extend_from_slice(&[7, 3, 0x87, 5, 0, 0x80]);
    input
}

#[test]
fn a_clean_pair_run_connects_and_carries_data() {
    // The seed the fuzzer grows from must reach the connected state, or the invariants that
    // need two connected sides would never be exercised.
    let origin = sim::origin();
    for first in 0..8u8 {
        let run = fuzzing::pair(&clean_pair_run_with(first), origin);
        assert!(run.both_connected, "first byte {first}: {run:?}");
        assert_eq!(run.data_received, [1, 1], "first byte {first}");
    }
}

/// A clean DTLS 1.3 pair run with KeyUpdates both ways (the client's plain, the server's
/// asking for the client's too) between the handshake and the data.
fn key_update_pair_run() -> Vec<u8> {
    let mut input = clean_pair_run_with(2);
    let data = input.split_off(input.len() - 6);
    input.extend_from_slice(&[7, 16, 0x87, 17]);
    for _ in 0..6 {
        input.extend_from_slice(&[0, 0x80]);
    }
    input.extend_from_slice(&data);
    input
}

/// The seed the fuzzer grows KeyUpdates from (RFC 9147 §8) connects, updates both ways and
/// carries data in the new epochs.
#[test]
fn a_pair_run_with_key_updates_carries_data() {
    let run = fuzzing::pair(&key_update_pair_run(), sim::origin());
    assert!(run.both_connected, "{run:?}");
    assert_eq!(run.data_received, [1, 1]);
    // The client moved once on its own and once at the server's request; the server once.
    assert_eq!(run.application_epochs, [Some((5, 4)), Some((4, 5))]);
}

/// Selector bytes of `fuzzing::handshake_message` by handshake type.
fn selector(msg_type: u8) -> Option<u8> {
    Some(match msg_type {
        1 => 0,
        2 => 1,
        3 => 2,
        11 => 3,
        12 => 4,
        13 => 5,
        16 => 6,
        15 => 7,
        _ => return None,
    })
}

#[test]
#[ignore = "writes the seed corpus; run with DTLS_WRITE_CORPUS=1"]
fn write_seed_corpus() {
    if std::env::var("DTLS_WRITE_CORPUS").is_err() {
        return;
    }
    let mut datagrams = Vec::new();
    let mut client_flights = Vec::new();
    for cookie in [true, false] {
        let mut pr = pair(&dtls_proto::crypto::RustCrypto);
        pr.server = pr.server.with_server_cookie(cookie);
        let mut sim = Sim::new(pr, Link::perfect(), 21);
        assert!(sim.connect(Duration::from_secs(10)));
        let client: Vec<Vec<u8>> = sim.sent[CLIENT].iter().map(|(_, d)| d.to_vec()).collect();
        let refs: Vec<&[u8]> = client.iter().map(Vec::as_slice).collect();
        client_flights.push(fuzzing::encode_datagrams(cookie, &refs));
        datagrams.extend(client);
        datagrams.extend(sim.sent[SERVER].iter().map(|(_, d)| d.to_vec()));
    }
    let write = |target: &str, name: String, bytes: &[u8]| {
        let dir = corpus_dir(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    };
    for (i, d) in datagrams.iter().enumerate() {
        write("dtls_record", format!("seed-{i:02}"), d);
        for frag in fuzzing::clear_handshake_fragments(d) {
            let complete = frag.offset == 0 && frag.body.len() == frag.length as usize;
            if let (true, Some(sel)) = (complete, selector(frag.msg_type)) {
                let mut input = vec![sel];
                input.extend_from_slice(frag.body);
                write(
                    "dtls_handshake",
                    format!("seed-{}-{i:02}", frag.msg_type),
                    &input,
                );
            }
        }
    }
    for (i, f) in client_flights.iter().enumerate() {
        write("dtls_server", format!("seed-{i}"), f);
    }
    // DTLS 1.3 client flights (hybrid key share, HelloRetryRequest with the cookie or not):
    // the first byte's bits 1-2 = 1 make the fuzzed server and client speak DTLS 1.3.
    for cookie in [true, false] {
        let mut pr = pair(&dtls_proto::crypto::RustCrypto);
        let v13 = [dtls_proto::ProtocolVersion::Dtls13];
        pr.client = pr.client.with_versions(&v13);
        pr.server = pr.server.with_versions(&v13).with_server_cookie(cookie);
        let mut sim = Sim::new(pr, Link::perfect(), 22);
        assert!(sim.connect(Duration::from_secs(10)));
        let client: Vec<Vec<u8>> = sim.sent[CLIENT].iter().map(|(_, d)| d.to_vec()).collect();
        let refs: Vec<&[u8]> = client.iter().map(Vec::as_slice).collect();
        let mut flights = fuzzing::encode_datagrams(cookie, &refs);
        flights[0] |= 1 << 1;
        write(
            "dtls_server",
            format!("seed-dtls13-cookie-{cookie}"),
            &flights,
        );
    }
    for (i, seed) in dtls13_record_seeds().iter().enumerate() {
        write("dtls13_record", format!("seed-{i}"), seed);
    }
    for seed in dtls13_key_share_seeds() {
        let name = [
            "chromium156-x25519mlkem768",
            "chromium156-x25519",
            "p256-generator",
        ];
        write(
            "dtls13_key_share",
            format!("seed-{}", name[usize::from(seed[0])]),
            &seed,
        );
    }
    for cookie in [true, false] {
        write(
            "dtls_pair",
            format!("seed-clean-{cookie}"),
            &clean_pair_run(cookie),
        );
    }
    // DTLS 1.3 both sides, both versions both sides, both against a 1.2-only server.
    for first in 2..8u8 {
        write(
            "dtls_pair",
            format!("seed-clean-versions-{first}"),
            &clean_pair_run_with(first),
        );
    }
    // Loss, duplication, a reorder, a bit flip and a forged record on the way.
    let mut hostile = clean_pair_run(true);
    hostile.splice(
        3..3,
        [
            2, 0x83, 4, 5, 17, 6, 15, 22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 1, 0, 2, 2, 40, 7, 200,
        ],
    );
    write("dtls_pair", "seed-hostile".into(), &hostile);
    write(
        "dtls_pair",
        "seed-key-update".into(),
        &key_update_pair_run(),
    );
}
