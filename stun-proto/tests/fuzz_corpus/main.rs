//! Replays the fuzz corpus (`fuzz/corpus/stun_*`) through the same entry points the fuzz
//! targets use, so every input that once mattered stays a regression test under `cargo test`.

use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        run(&std::fs::read(&path).unwrap());
        count += 1;
    }
    count
}

#[test]
fn stun_message_corpus_replays() {
    let n = replay("stun_message", stun_proto::fuzzing::message);
    assert!(
        n >= 5,
        "the corpus holds at least the RFC vectors, found {n} files"
    );
}

#[test]
fn binding_server_corpus_replays() {
    let n = replay("binding_server", stun_proto::fuzzing::binding_server);
    assert!(n >= 2, "found {n} files");
}

#[test]
fn stun_clients_corpus_replays() {
    let n = replay("stun_clients", stun_proto::fuzzing::stun_clients);
    assert!(n >= 3, "found {n} files");
}

#[test]
fn turn_corpus_replays() {
    let server = replay("turn_server", stun_proto::turn::fuzzing::server);
    let framer = replay("turn_framer", stun_proto::turn::fuzzing::framer);
    let client = replay("turn_client", stun_proto::turn::fuzzing::client);
    let pair = replay("turn_pair", stun_proto::turn::fuzzing::pair);
    assert!(
        server >= 4 && framer >= 3 && client >= 2 && pair >= 4,
        "seed corpus: {server} server, {framer} framer, {client} client, {pair} pair inputs"
    );
}
