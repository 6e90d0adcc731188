//! The NAT traversal matrix with the full peer (ICE + DTLS): every cell meets the expectation theory
//! gives it, and a cell replays bit for bit from its seed.

use harness::NatPreset;
use harness::matrix::{MatrixOptions, run_cell, run_matrix, standard_servers};
use harness::nodes::PeerNode;
use harness::theory::Expectation;

fn assert_all_met(options: &MatrixOptions) {
    let cells = run_matrix(options).expect("no pcap, no I/O");
    assert_eq!(cells.len(), 64);
    let missed: Vec<String> = cells
        .iter()
        .filter(|c| !c.met())
        .map(|c| {
            format!(
                "{} ↔ {}: expected {:?}, got {} after {:?}",
                c.a.name(),
                c.b.name(),
                c.expected,
                c.outcome,
                c.time
            )
        })
        .collect();
    assert!(
        missed.is_empty(),
        "{} cells missed:\n{}",
        missed.len(),
        missed.join("\n")
    );
    // The matrix is not trivially met: it holds direct, relayed and failed cells.
    for kind in [Expectation::Direct, Expectation::Relay, Expectation::Fail] {
        assert!(cells.iter().any(|c| c.expected == kind), "{kind:?}");
    }
}

#[test]
fn every_cell_meets_its_expectation_without_loss() {
    assert_all_met(&MatrixOptions::default());
}

/// 2% loss on every link: checks retransmit, and a direct pair that validates after the relay
/// was nominated takes over (re-nomination), so theory still holds in every cell.
#[test]
fn every_cell_meets_its_expectation_with_two_percent_loss_on_every_link() {
    assert_all_met(&MatrixOptions {
        loss: 0.02,
        ..MatrixOptions::default()
    });
}

#[test]
fn every_cell_meets_its_expectation_over_ipv6() {
    assert_all_met(&MatrixOptions {
        ipv6: true,
        ..MatrixOptions::default()
    });
}

#[test]
fn a_cell_replays_bit_for_bit() {
    let options = MatrixOptions {
        loss: 0.1,
        ..MatrixOptions::default()
    };
    let run = || {
        let cell = run_cell(
            NatPreset::Symmetric,
            NatPreset::FullCone,
            &options,
            standard_servers,
            |s| PeerNode::new(&s),
        )
        .unwrap();
        (cell.trace, cell.packets, cell.time)
    };
    assert_eq!(run(), run());
}
