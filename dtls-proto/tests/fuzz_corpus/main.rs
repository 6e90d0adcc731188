//! Replays the fuzz corpus (`fuzz/corpus/dtls_*`) through the entry points the fuzz targets
//! use, so every input that once mattered stays a regression test under `cargo test`.
//!
//! The seed corpus is real handshake traffic captured from the in-memory tests; regenerate it
//! with `DTLS_WRITE_CORPUS=1 cargo test -p dtls-proto --test fuzz_corpus -- --ignored`.

#[path = "../handshake/sim.rs"]
#[allow(dead_code)] // shared with the handshake tests; only part of it is used here
mod sim;

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

/// A `fuzzing::pair` input that delivers everything both ways in turn, with a time step and
/// application data from both sides once connected: a clean handshake and its data.
fn clean_pair_run(cookie: bool) -> Vec<u8> {
    let mut input = vec![u8::from(cookie)];
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
    for cookie in [true, false] {
        let run = fuzzing::pair(&clean_pair_run(cookie), origin);
        assert!(run.both_connected, "cookie={cookie}: {run:?}");
        assert_eq!(run.data_received, [1, 1], "cookie={cookie}");
    }
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
    for (i, seed) in dtls13_record_seeds().iter().enumerate() {
        write("dtls13_record", format!("seed-{i}"), seed);
    }
    for cookie in [true, false] {
        write(
            "dtls_pair",
            format!("seed-clean-{cookie}"),
            &clean_pair_run(cookie),
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
}
