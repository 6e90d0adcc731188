//! The SFU scenario (issue 22) in the simulator: peers behind every NAT preset that passes
//! UDP join one ICE-lite endpoint on one port; each must become ready and stay connected,
//! its pings echoed by its session. Larger runs (1 000 peers, loss) are `harness sfu`'s:
//! docs/harness.md has their figures.

use std::time::Duration;

use harness::sfu::{SfuOptions, run};

#[test]
fn seventy_peers_behind_every_preset_connect_to_one_port_through_loss() {
    let report = run(&SfuOptions {
        peers: 70,
        dtls: false,
        loss: 0.02,
        duration: Duration::from_secs(15),
        ..SfuOptions::default()
    });
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(report.ready.len(), 70, "every peer became ready");
    assert_eq!(report.connected, 70, "and stayed connected");
    assert_eq!(
        report.sfu_connected, 70,
        "the SFU holds every session as connected"
    );
    assert!(
        report.echoed >= 70 * 5,
        "pings were echoed: {}",
        report.echoed
    );
    assert!(report.dropped > 0, "the links lost datagrams");
}

#[test]
fn peers_secure_their_sessions_with_one_dtls_server_each() {
    let report = run(&SfuOptions {
        peers: 14,
        dtls: true,
        duration: Duration::from_secs(5),
        ..SfuOptions::default()
    });
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(report.ready.len(), 14);
    assert_eq!(report.sfu_secured, 14, "the SFU completed every handshake");
    assert_eq!(report.connected, 14);
    assert!(
        report.echoed >= 14 * 3,
        "pings came back over DTLS: {}",
        report.echoed
    );
}
