//! DTLS 1.3 KeyUpdate between our client and our server (RFC 9147 §8, RFC 8446 §4.6.3): each
//! direction moves one epoch once its KeyUpdate is ACKed, a requested update is answered, a
//! lost ACK repeats the KeyUpdate without a second change of keys, and data keeps flowing.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use dtls_proto::crypto::providers;
use dtls_proto::{Dtls, SendError};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use crate::dtls13::pair13;
use crate::sim::{CLIENT, Link, SERVER, Sim, origin, pair};

const MINUTE: Duration = Duration::from_secs(60);
/// Long enough for every retransmission a flight gets (1 + 2 + … + 60 s).
const PATIENCE: Duration = Duration::from_secs(300);

/// The epoch bits of a protected DTLS 1.3 record's unified header (RFC 9147 §4: 0b001CSLEE).
fn epoch_bits(datagram: &[u8]) -> Option<u8> {
    let first = *datagram.first()?;
    (first & 0xe0 == 0x20).then_some(first & 0b11)
}

/// Both sides' `(write, read)` application epochs.
fn epochs(sim: &Sim) -> [(u64, u64); 2] {
    [CLIENT, SERVER].map(|side| sim.nodes[side].application_epochs().unwrap())
}

/// Runs until neither side has a flight waiting for its ACK.
fn settle(sim: &mut Sim) {
    assert!(
        sim.run(PATIENCE, |s| s
            .nodes
            .iter()
            .all(|n| n.poll_timeout().is_none())),
        "{:?}",
        sim.events
    );
}

/// Sends one message each way and runs until both arrived; returns the datagram each side
/// sent it in.
fn exchange(sim: &mut Sim, round: usize) -> [Vec<u8>; 2] {
    let before = [CLIENT, SERVER].map(|side| sim.application_data(side).len());
    let mut sent = [Vec::new(), Vec::new()];
    for side in [CLIENT, SERVER] {
        let n = sim.sent[side].len();
        let message = format!("round {round} from {side}");
        sim.nodes[side]
            .handle_send(sim.now, message.as_bytes())
            .unwrap();
        sim.run(Duration::ZERO, |_| true);
        sent[side] = sim.sent[side][n].1.to_vec();
    }
    assert!(sim.run(MINUTE, |s| {
        [CLIENT, SERVER]
            .iter()
            .all(|&side| s.application_data(side).len() > before[side])
    }));
    sent
}

#[test]
fn key_updates_move_each_direction_one_epoch_after_its_ack() {
    for p in providers() {
        let mut sim = Sim::new(pair13(p), Link::perfect(), 60);
        assert!(sim.connect(MINUTE), "{}: {:?}", p.name(), sim.events);
        assert_eq!(epochs(&sim), [(3, 3), (3, 3)]);
        // The server's ACK of the client's last flight is still on its way: the client's
        // KeyUpdate waits for it, then goes out in epoch 3.
        assert!(sim.nodes[CLIENT].poll_timeout().is_some());
        sim.nodes[CLIENT].handle_key_update(sim.now, false).unwrap();
        assert_eq!(epochs(&sim)[CLIENT], (3, 3));
        settle(&mut sim);
        // RFC 9147 §8: the client writes epoch 4 only after the ACK; the server reads it.
        assert_eq!(epochs(&sim), [(4, 3), (3, 4)], "{}", p.name());
        let sent = exchange(&mut sim, 1);
        assert_eq!(epoch_bits(&sent[CLIENT]), Some(0), "epoch 4");
        assert_eq!(epoch_bits(&sent[SERVER]), Some(3), "epoch 3");

        // The server updates and asks the client to: both directions move once more.
        sim.nodes[SERVER].handle_key_update(sim.now, true).unwrap();
        settle(&mut sim);
        assert_eq!(epochs(&sim), [(5, 4), (4, 5)], "{}", p.name());
        let sent = exchange(&mut sim, 2);
        assert_eq!(epoch_bits(&sent[CLIENT]), Some(1), "epoch 5");
        assert_eq!(epoch_bits(&sent[SERVER]), Some(0), "epoch 4");

        // Many more: the read side keeps up however far the epochs go.
        for round in 3..10 {
            let side = round % 2;
            sim.nodes[side]
                .handle_key_update(sim.now, round % 3 == 0)
                .unwrap();
            settle(&mut sim);
            let [(cw, cr), (sw, sr)] = epochs(&sim);
            assert_eq!((cw, cr), (sr, sw), "{} round {round}", p.name());
            exchange(&mut sim, round);
        }
        assert_eq!(
            sim.application_data(SERVER).len(),
            9,
            "every message arrived"
        );
        assert!(sim.failure(CLIENT).is_none() && sim.failure(SERVER).is_none());
        // The same keys export the same SRTP material: KeyUpdate leaves the exporter alone.
        assert_eq!(
            sim.nodes[CLIENT].export_keying_material(b"EXTRACTOR-dtls_srtp", None, 56),
            sim.nodes[SERVER].export_keying_material(b"EXTRACTOR-dtls_srtp", None, 56),
        );
    }
}

/// The server's ACK of a KeyUpdate is lost: the client's timer repeats the KeyUpdate, the
/// server ACKs the copy without moving its read epoch again, and the client moves once.
#[test]
fn a_lost_ack_repeats_the_key_update_without_a_second_change() {
    let p = providers()[0];
    let drop_at = Rc::new(Cell::new(usize::MAX));
    let dropping = drop_at.clone();
    let mut sim = Sim::new(pair13(p), Link::perfect(), 61)
        .with_filter(move |from, index, _| from == SERVER && index == dropping.get());
    assert!(sim.connect(MINUTE));
    settle(&mut sim);
    let retransmits = sim.nodes[CLIENT].stats().flight_retransmits;
    drop_at.set(sim.sent[SERVER].len());
    sim.nodes[CLIENT].handle_key_update(sim.now, false).unwrap();
    let asked = sim.now;
    settle(&mut sim);
    assert_eq!(epochs(&sim), [(4, 3), (3, 4)]);
    assert_eq!(
        sim.nodes[CLIENT].stats().flight_retransmits,
        retransmits + 1
    );
    assert!(sim.now >= asked + Duration::from_secs(1), "on the timer");
    exchange(&mut sim, 1);
}

/// Loss, duplication and reordering: KeyUpdates both ways still end with both sides agreeing
/// on each direction's epoch, and data flows in the new epochs.
#[test]
fn key_updates_survive_a_lossy_reordering_link() {
    let p = providers()[0];
    for seed in 70..80 {
        let mut sim = Sim::new(pair13(p), Link::hostile(0.1), seed);
        assert!(sim.connect(PATIENCE), "seed {seed}: {:?}", sim.events);
        for round in 0..4 {
            sim.nodes[round % 2]
                .handle_key_update(sim.now, round == 1)
                .unwrap();
        }
        settle(&mut sim);
        let [(cw, cr), (sw, sr)] = epochs(&sim);
        assert_eq!((cw, cr), (sr, sw), "seed {seed}");
        assert!(cw > 3 && sw > 3, "seed {seed}: {:?}", epochs(&sim));
        sim.set_link(Link::perfect());
        exchange(&mut sim, 0);
    }
}

#[test]
fn a_key_update_needs_a_dtls13_connection() {
    let p = providers()[0];
    let now = origin();
    let pr = pair13(p);
    let mut client = Dtls::client(pr.client, ChaCha20Rng::seed_from_u64(1), now).unwrap();
    assert_eq!(
        client.handle_key_update(now, false),
        Err(SendError::NotConnected)
    );
    let mut sim = Sim::new(pair(p), Link::perfect(), 62);
    assert!(sim.connect(MINUTE));
    assert_eq!(
        sim.nodes[CLIENT].handle_key_update(sim.now, false),
        Err(SendError::KeyUpdateUnsupported)
    );
    assert_eq!(sim.nodes[CLIENT].application_epochs(), None);
    sim.nodes[CLIENT].handle_close(sim.now);
    assert_eq!(
        sim.nodes[CLIENT].handle_key_update(sim.now, false),
        Err(SendError::Closed)
    );
}
