//! The endpoint under fuzzed operations (`fuzz/fuzz_targets/ice_endpoint.rs`, replayed by
//! `tests/fuzz_corpus`): sessions added, removed and restarted; raw datagrams from a few
//! sources; checks signed with a session's credentials (so that the fuzzer reaches the
//! states behind MESSAGE-INTEGRITY); time steps; sends. After every operation the tables
//! hold their bounds and agree with each other, and a raw (unauthenticated) datagram has
//! changed no session.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use stun_proto::TransportProtocol;

use super::session::MAX_PATHS;
use super::{Endpoint, EndpointConfig, Handled, SessionId, SessionState};
use crate::check::{CheckRequest, DeclaredRole, build_request};
use crate::path::Path;

const MAX_SESSIONS: usize = 6;
const PEER_UFRAGS: [&str; 3] = ["peerA", "peerB", "peerC"];

/// Runs the endpoint over the operations in `data`:
///
/// | op (byte mod 8) | arguments | what |
/// | --- | --- | --- |
/// | 0 | u8 | a session for peer ufrag `u8 % 3` |
/// | 1 | u8 | the `u8`th session removed |
/// | 2 | u8, u8 | the `u8`th session restarted with peer ufrag `u8 % 3` |
/// | 3 | u8 source, u8 len, bytes | a raw datagram from one of eight sources |
/// | 4 | u8 session, u8 source, u8 flags, u32 tid | a check signed with the session's credentials (flags: USE-CANDIDATE, claims the controlled role, other peer ufrag, wrong password) |
/// | 5 | u16 ms | time passes; `handle_timeout` |
/// | 6 | — | time jumps to `poll_timeout` |
/// | 7 | u8 session | application data sent to the session |
pub fn run(data: &[u8]) {
    let config = EndpointConfig {
        max_sessions: MAX_SESSIONS,
        consent_lifetime: Duration::from_secs(30),
        max_transmits: 16,
        max_events: 16,
    };
    let mut e = Endpoint::new(config, ChaCha20Rng::seed_from_u64(7));
    let port = SocketAddr::from(([192, 0, 2, 1], 3478));
    let mut now = crate::fuzzing::clock_origin();
    let mut ids: Vec<(SessionId, &str)> = Vec::new();
    let mut rest = data;
    let mut take = |n: usize| {
        let (head, tail) = rest.split_at(n.min(rest.len()));
        rest = tail;
        head.to_vec()
    };
    loop {
        let op = take(1);
        let Some(&op) = op.first() else {
            return;
        };
        let arg = |v: &[u8], i: usize| v.get(i).copied().unwrap_or(0);
        let source = |b: u8| {
            SocketAddr::from((
                Ipv4Addr::new(198, 51, 100, b & 3),
                5000 + u16::from(b >> 2 & 1),
            ))
        };
        let before = snapshot(&e);
        let mut forged = false;
        match op % 8 {
            0 => {
                let ufrag = PEER_UFRAGS[usize::from(arg(&take(1), 0)) % 3];
                if let Ok(id) = e.add_session(now, ufrag) {
                    ids.push((id, ufrag));
                }
            }
            1 => {
                let a = take(1);
                if !ids.is_empty() {
                    let (id, _) = ids.remove(usize::from(arg(&a, 0)) % ids.len());
                    assert!(e.remove_session(id).is_ok());
                    assert!(e.session(id).is_none());
                }
            }
            2 => {
                let a = take(2);
                if !ids.is_empty() {
                    let i = usize::from(arg(&a, 0)) % ids.len();
                    let ufrag = PEER_UFRAGS[usize::from(arg(&a, 1)) % 3];
                    assert!(e.restart_session(ids[i].0, ufrag).is_ok());
                    ids[i].1 = ufrag;
                }
            }
            3 => {
                let a = take(2);
                let bytes = take(usize::from(arg(&a, 1)));
                let udp = TransportProtocol::Udp;
                e.handle_datagram(now, udp, source(arg(&a, 0)), port, &bytes);
                forged = true;
            }
            4 => {
                let a = take(7);
                if let Some(&(id, theirs)) = ids.get(usize::from(arg(&a, 0)) % ids.len().max(1)) {
                    let flags = arg(&a, 2);
                    let ours = e.session(id).map(|s| s.local_credentials().clone());
                    if let Some(ours) = ours {
                        let theirs = if flags & 4 != 0 { "someone" } else { theirs };
                        let username = format!("{}:{theirs}", ours.ufrag);
                        let pwd = if flags & 8 != 0 {
                            "a wrong password, long"
                        } else {
                            &ours.pwd
                        };
                        let role = if flags & 2 != 0 {
                            DeclaredRole::Controlled(1)
                        } else {
                            DeclaredRole::Controlling(1)
                        };
                        let check = CheckRequest {
                            username: &username,
                            priority: 1,
                            role,
                            use_candidate: flags & 1 != 0,
                        };
                        let mut tid = [0u8; 12];
                        tid[..4].copy_from_slice(a.get(3..7).unwrap_or(&[0; 4]));
                        let key = stun_proto::IntegrityKey::new(pwd.as_bytes());
                        if let Ok(bytes) = build_request(tid.into(), &check, &key) {
                            let udp = TransportProtocol::Udp;
                            let handled =
                                e.handle_datagram(now, udp, source(arg(&a, 1)), port, &bytes);
                            if flags & 12 != 0 {
                                // Another peer's ufrag or a wrong password: unauthenticated.
                                assert!(matches!(handled, Handled::Dropped(_)));
                                forged = true;
                            }
                        }
                    }
                }
            }
            5 => {
                let a = take(2);
                let ms = u16::from_be_bytes([arg(&a, 0), arg(&a, 1)]);
                now += Duration::from_millis(u64::from(ms));
                e.handle_timeout(now);
                assert!(
                    e.poll_timeout().is_none_or(|t| t > now),
                    "a deadline left in the past"
                );
            }
            6 => {
                if let Some(t) = e.poll_timeout() {
                    now = now.max(t);
                    e.handle_timeout(now);
                    assert!(e.poll_timeout().is_none_or(|t| t > now));
                }
            }
            _ => {
                let a = take(1);
                if let Some(&(id, _)) = ids.get(usize::from(arg(&a, 0)) % ids.len().max(1)) {
                    if let Ok(t) = e.handle_send(id, b"data") {
                        let path = Path {
                            transport: t.transport,
                            base: t.source,
                            remote: t.destination,
                        };
                        assert!(e.session(id).is_some_and(|s| s.paths().any(|p| p == path)));
                    }
                }
            }
        }
        if forged {
            assert_eq!(
                snapshot(&e),
                before,
                "an unauthenticated datagram changed a session"
            );
        }
        invariants(&e, ids.len());
        while e.poll_transmit().is_some() {}
        while e.poll_event().is_some() {}
    }
}

/// Every session's state, paths and nominated path.
fn snapshot(e: &Endpoint<ChaCha20Rng>) -> Vec<(SessionState, Vec<Path>, Option<Path>)> {
    (e.slots.iter())
        .filter_map(|slot| slot.session.as_ref())
        .map(|s| {
            (
                s.state,
                s.paths.iter().map(|p| p.path).collect(),
                s.nominated,
            )
        })
        .collect()
}

/// The bounds, and the tables agreeing with the sessions.
fn invariants(e: &Endpoint<ChaCha20Rng>, expected: usize) {
    assert_eq!(e.session_count(), expected);
    assert!(e.session_count() <= MAX_SESSIONS);
    assert_eq!(e.by_ufrag.len(), e.session_count());
    assert!(e.transmits.len() <= e.config.max_transmits);
    assert!(e.events.len() <= e.config.max_events);
    let live: Vec<_> = (e.slots.iter())
        .filter_map(|s| s.session.as_ref())
        .collect();
    for s in &live {
        assert!(s.paths.len() <= MAX_PATHS);
        if let Some(n) = s.nominated {
            assert!(
                s.paths.iter().any(|p| p.path == n),
                "the nominated path is a proven one"
            );
        }
    }
    for (path, id) in &e.by_path {
        let s = e.get(*id).expect("the path table names live sessions only");
        assert!(
            s.paths.iter().any(|p| p.path == *path),
            "and paths they proved"
        );
    }
    let proven: usize = live.iter().map(|s| s.paths.len()).sum();
    assert_eq!(e.by_path.len(), proven);
}
