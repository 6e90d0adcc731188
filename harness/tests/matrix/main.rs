//! The NAT traversal matrix with the full peer (ICE + DTLS): every cell meets the expectation theory
//! gives it — without loss, with 2% and 10% loss on every link, over IPv6, and through idle
//! calls whose NAT mappings only ICE keeps alive —, a mapping that expires between consent
//! checks ends the call by consent, a NAT that refreshes mappings on inbound traffic keeps a
//! quiet side reachable, and a cell replays bit for bit from its seed.

use std::time::Duration;

use harness::NatPreset;
use harness::matrix::{
    Cell, Liveness, MatrixOptions, Outcome, build_cell, run_cell, run_matrix, standard_servers,
};
use harness::nodes::PeerNode;
use harness::peer::PeerError;
use harness::theory::Expectation;
use ice_proto::FailureReason;

/// Runs the matrix and checks every cell met its expectation; returns the cells.
fn assert_all_met(options: &MatrixOptions) -> Vec<Cell> {
    let cells = run_matrix(options).expect("no pcap, no I/O");
    assert_eq!(cells.len(), options.presets.len().pow(2));
    let missed: Vec<String> = cells
        .iter()
        .filter(|c| !c.met())
        .map(|c| {
            format!(
                "{} ↔ {}: expected {:?}, got {} after {:?}, DTLS {:?}, held {:?}, failure {:?}",
                c.a.name(),
                c.b.name(),
                c.expected,
                c.outcome,
                c.time,
                c.dtls,
                c.held,
                c.failure
            )
        })
        .collect();
    assert!(
        missed.is_empty(),
        "{} cells missed:\n{}",
        missed.len(),
        missed.join("\n")
    );
    // The matrix is not trivially met: it holds direct and relayed cells, and failed ones
    // where a firewall leaves no way out (`http-only`).
    let mut kinds = vec![Expectation::Direct, Expectation::Relay];
    if options.presets.contains(&NatPreset::HttpOnly) {
        kinds.push(Expectation::Fail);
    }
    for kind in kinds {
        assert!(cells.iter().any(|c| c.expected == kind), "{kind:?}");
    }
    // A cell that connected says when both peers were ready: no sooner than both selected
    // a pair and both finished DTLS. One that did not says when both learnt there is no
    // path: no later than the failure.
    for c in &cells {
        let cell = format!("{} ↔ {}", c.a.name(), c.b.name());
        if c.expected == Expectation::Fail {
            assert_eq!(c.ready, None, "{cell}");
            let (no_path, failed) = (c.no_path.expect(&cell), c.time.expect(&cell));
            assert!(no_path <= failed, "{cell}: {no_path:?} after {failed:?}");
        } else {
            let ready = c.ready.expect(&cell);
            assert!(
                ready >= c.time.expect(&cell) && ready >= c.dtls.expect(&cell),
                "{cell}"
            );
            assert_eq!(c.no_path, None, "{cell}");
        }
    }
    cells
}

/// Both directions of every call rode one path over the hold's last 10 s: each side's
/// selected pair received the other's pings (`Cell::one_path`).
fn assert_one_path(cells: &[Cell]) {
    let connected: Vec<&Cell> = cells.iter().filter(|c| c.held == Some(true)).collect();
    assert!(!connected.is_empty());
    let two: Vec<String> = connected
        .iter()
        .filter(|c| c.one_path != Some(true))
        .map(|c| format!("{} ↔ {} ({:?})", c.a.name(), c.b.name(), c.pair))
        .collect();
    assert!(
        two.is_empty(),
        "{} calls ended with each direction on its own path: {}",
        two.len(),
        two.join(", ")
    );
}

#[test]
fn every_cell_meets_its_expectation_without_loss() {
    assert_one_path(&assert_all_met(&MatrixOptions::default()));
}

/// 2% loss on every link: checks retransmit, and a direct pair that validates after the relay
/// was nominated takes over (re-nomination), so theory still holds in every cell.
#[test]
///
/// And every call ends with both directions on one pair. It did not always: the controlled
/// side ranked a pair it checked from its host base by the host candidate, the controlling
/// side by the server-reflexive one the valid pair names (§7.2.5.3.2), so the controlled side
/// could leave an upward re-nomination below its selected pair; and a nomination of a lower
/// pair sent before the better one went on being retransmitted after selection, and made the
/// controlled side doubt its pair. 7 of seed 1's 81 connected cells ended on two paths.
fn every_cell_meets_its_expectation_with_two_percent_loss_on_every_link() {
    assert_one_path(&assert_all_met(&MatrixOptions {
        loss: 0.02,
        ..MatrixOptions::default()
    }));
}

/// 10% loss on every link: 27–47% per direction on a path, up to 72% per round trip through
/// the relay. Consent rechecks after a lost check, DTLS flights resend at most 2 s apart,
/// requests retransmit with a 3 s RTO cap, and timed-out pairs above a relayed selection are
/// checked again (docs/harness.md). The firewall cells ride TURN over TCP, which the
/// simulated TCP retransmits (fast retransmit, RTO from round-trip samples).
#[test]
fn every_cell_meets_its_expectation_with_ten_percent_loss_on_every_link() {
    assert_all_met(&MatrixOptions {
        loss: 0.1,
        ..MatrixOptions::default()
    });
}

/// An idle call: pings every 40 s, NAT mappings that expire 10 s after the last outbound
/// datagram, a two-minute call.
fn idle_call(liveness: Liveness) -> MatrixOptions {
    MatrixOptions {
        mapping_lifetime: Duration::from_secs(10),
        hold: Duration::from_secs(120),
        liveness: Liveness {
            ping_interval: Duration::from_secs(40),
            ..liveness
        },
        ..MatrixOptions::default()
    }
}

#[test]
fn consent_checks_hold_nat_mappings_through_an_idle_call() {
    // Consent every 4–6 s refreshes every mapping on the path before its 10 s run out.
    assert_all_met(&idle_call(Liveness::default()));
}

#[test]
fn keepalives_hold_nat_mappings_when_consent_is_off() {
    // RFC 8445 §11: a Binding indication after Tr without other traffic; Tr = 5 s < 10 s.
    assert_all_met(&idle_call(Liveness {
        consent_interval: None,
        keepalive_interval: Duration::from_secs(5),
        ..Liveness::default()
    }));
}

/// The direct cells between a symmetric NAT (a new random port for every mapping) and a full
/// cone, both ways, in an idle call whose ICE traffic comes too rarely for 10 s mappings.
fn expiring_cells(liveness: Liveness) -> Vec<Cell> {
    let options = idle_call(liveness);
    let (s, f) = (NatPreset::Symmetric, NatPreset::FullCone);
    [(s, f), (f, s)]
        .into_iter()
        .map(|(a, b)| {
            run_cell(a, b, &options, standard_servers, |setup| {
                PeerNode::new(&setup)
            })
            .expect("no pcap, no I/O")
        })
        .collect()
}

#[test]
fn a_mapping_that_expires_between_consent_checks_ends_the_call_by_consent() {
    // Consent every 20–30 s: the symmetric NAT's mapping expires between checks, the next
    // check leaves from a new port, and the peer's checks to the old one go unanswered until
    // its consent expires (RFC 7675 §5.1): the call ends, and says why. With the symmetric
    // NAT on the controlled side, the controlling side sees each check from a new port,
    // fails over to that peer-reflexive pair and nominates it: the call lives on as long as
    // every new check comes before the 30 s consent runs out, which the 20–30 s draws decide
    // (in this seed it lasts the 120 s hold since the first relayed checks stopped being lost,
    // issue 14); when it ends, consent says why.
    let cells = expiring_cells(Liveness {
        consent_interval: Some(Duration::from_secs(25)),
        ..Liveness::default()
    });
    for cell in &cells {
        let name = format!("{} ↔ {}", cell.a.name(), cell.b.name());
        assert_eq!(
            cell.outcome,
            Outcome::Direct(harness::matrix::CandidateKind::PeerReflexive),
            "{name}"
        );
        assert!(cell.dtls.is_some(), "{name}: the call was up");
        if cell.a == NatPreset::Symmetric {
            assert_eq!(cell.held, Some(false), "{name}");
        }
        if cell.held == Some(false) {
            assert_eq!(
                cell.failure,
                Some(PeerError::Ice(FailureReason::ConsentExpired)),
                "{name}"
            );
        }
    }
}

#[test]
fn without_consent_a_mapping_that_outlives_no_keepalive_dies_unnoticed() {
    // Consent off and Tr = 15 s > 10 s: the mapping expires, pings stop arriving, and
    // nothing in ICE notices — what consent is for.
    for cell in expiring_cells(Liveness {
        consent_interval: None,
        ..Liveness::default()
    }) {
        let name = format!("{} ↔ {}", cell.a.name(), cell.b.name());
        assert!(cell.dtls.is_some(), "{name}: the call was up");
        assert_eq!(cell.held, Some(false), "{name}");
        assert_eq!(cell.failure, None, "{name}");
    }
}

/// A call where only one side talks: A (public) pings every second, B (behind a symmetric
/// NAT with 10 s mappings) only every 40 s, with keepalives every 15 s and consent off. The
/// pings B received in two minutes.
fn pings_to_a_quiet_side(inbound_refreshes: bool) -> u64 {
    let options = MatrixOptions {
        mapping_lifetime: Duration::from_secs(10),
        inbound_refreshes,
        liveness: Liveness {
            consent_interval: None,
            ..Liveness::default()
        },
        ..MatrixOptions::default()
    };
    let (mut world, _, b) = build_cell(
        NatPreset::Open,
        NatPreset::Symmetric,
        &options,
        1,
        standard_servers,
        |setup| {
            let every = if setup.controlling { 1 } else { 40 };
            PeerNode::new(&setup).with_ping_interval(Duration::from_secs(every))
        },
    );
    world.run_for(Duration::from_secs(120));
    world.node::<PeerNode>(b).expect("B").pings_received()
}

#[test]
fn inbound_traffic_keeps_a_quiet_side_reachable_only_where_the_nat_refreshes_on_it() {
    // Outbound refresh only: B's mapping expires 10 s after its last datagram, its next
    // keepalive leaves from a new port, and A's pings to the old one are dropped for good.
    let outbound_only = pings_to_a_quiet_side(false);
    assert!(outbound_only < 30, "{outbound_only}");
    // Refreshed by inbound traffic too (Linux conntrack): A's pings hold B's mapping.
    let inbound_too = pings_to_a_quiet_side(true);
    assert!(inbound_too > 110, "{inbound_too}");
}

#[test]
fn a_call_checked_at_its_start_holds() {
    // `--hold 0`: "held" is judged as the call starts, before any ping could arrive; a peer
    // ready that recently counts as connected (it used to count as dropped, every cell).
    let options = MatrixOptions {
        hold: Duration::ZERO,
        presets: vec![NatPreset::Open, NatPreset::FullCone, NatPreset::Symmetric],
        ..MatrixOptions::default()
    };
    let cells = run_matrix(&options).expect("no pcap, no I/O");
    assert_eq!(cells.len(), 9);
    for cell in &cells {
        assert!(cell.met(), "{cell:?}");
        assert_eq!(cell.held, Some(true), "{cell:?}");
    }
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
