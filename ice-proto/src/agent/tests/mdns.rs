//! Remote candidates with mDNS host names.

use crate::event::Event;
use crate::test_support::t0;
use crate::{Agent, AgentConfig};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

#[test]
fn mdns_candidates_wait_for_the_caller_to_resolve_them() {
    let now = t0();
    let mut a = Agent::new(AgentConfig::default(), ChaCha20Rng::seed_from_u64(23));
    let s = a.add_stream(1).unwrap();
    let base = "192.0.2.1:5000".parse().unwrap();
    a.stream_mut(s).unwrap().add_base(1, base).unwrap();
    a.handle_gather(now, s).unwrap();
    while a.poll_event().is_some() {}
    let name = "1f4712db-ea17-4bcf-a596-105139dfd8bf.local";
    for port in [9, 10] {
        let line = format!("candidate:1 1 udp 2122262783 {name} {port} typ host");
        a.handle_remote_candidate(now, s, line.parse().unwrap())
            .unwrap();
    }
    let asks: Vec<_> = std::iter::from_fn(|| a.poll_event())
        .filter(|e| matches!(e, Event::ResolveHostname { .. }))
        .collect();
    assert_eq!(asks.len(), 1, "asked once per name");
    assert_eq!(a.stream(s).unwrap().remote_candidates().count(), 0);
    let ip: std::net::IpAddr = "192.0.2.77".parse().unwrap();
    a.handle_resolved_hostname(now, s, name, Some(ip)).unwrap();
    let view = a.stream(s).unwrap();
    let addrs: Vec<_> = view.remote_candidates().map(|c| c.addr()).collect();
    assert_eq!(addrs, [Some((ip, 9).into()), Some((ip, 10).into())]);
    assert_eq!(view.pairs().count(), 2);
    // A name that does not resolve drops its candidates.
    let line = "candidate:2 1 udp 1 other.local 11 typ host";
    a.handle_remote_candidate(now, s, line.parse().unwrap())
        .unwrap();
    a.handle_resolved_hostname(now, s, "other.local", None)
        .unwrap();
    assert_eq!(a.stream(s).unwrap().remote_candidates().count(), 2);
}
