//! Replays the fuzz corpus (`fuzz/corpus/ice_*`) through the same entry points the fuzz
//! targets use, so every input that once found a bug stays a regression test.

use std::path::PathBuf;

fn replay(target: &str, run: fn(&[u8])) -> usize {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut n = 0;
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        let data = std::fs::read(&path).unwrap();
        run(&data);
        n += 1;
    }
    n
}

#[test]
fn ice_sdp_corpus() {
    let n = replay("ice_sdp", ice_proto::fuzzing::sdp);
    assert!(n >= 10, "{n} seeds");
}

#[test]
fn ice_endpoint_corpus() {
    let n = replay("ice_endpoint", ice_proto::fuzzing::endpoint);
    assert!(n >= 5, "{n} seeds");
}

#[test]
fn ice_agent_corpus() {
    let n = replay("ice_agent", |data| {
        ice_proto::fuzzing::agent(data);
    });
    assert!(n >= 5, "{n} seeds");
}

/// The hand-written seeds reach the states they were written for.
#[test]
fn ice_agent_seeds_reach_their_states() {
    use ice_proto::ConnectionState;
    let run = |name: &str| {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../fuzz/corpus/ice_agent")
            .join(name);
        ice_proto::fuzzing::agent(&std::fs::read(path).unwrap())
    };
    let connects = run("controlling-connects");
    assert_eq!(connects.selected, 2, "{:?}", connects.states);
    assert!(connects.states.contains(&ConnectionState::Completed));
    let nominated = run("controlled-nominated");
    assert!(nominated.selected >= 1, "{:?}", nominated.states);
    let expiry = run("consent-expiry");
    assert_eq!(expiry.states.last(), Some(&ConnectionState::Failed));
    // ICE-TCP: a check to the peer's passive candidate, answered, nominated, selected.
    let tcp = run("ice-tcp");
    assert_eq!(tcp.selected, 1, "{:?}", tcp.states);
    let failures = run("failures");
    assert!(
        failures.states.contains(&ConnectionState::Failed),
        "{:?}",
        failures.states
    );
}

#[test]
fn ice_pair_corpus() {
    let n = replay("ice_pair", |data| {
        ice_proto::fuzzing::pair(data);
    });
    assert!(n >= 4, "{n} seeds");
}

/// The hand-written two-agent seeds reach the states they were written for.
#[test]
fn ice_pair_seeds_reach_their_states() {
    use ice_proto::ConnectionState::Completed;
    let run = |name: &str| {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../fuzz/corpus/ice_pair")
            .join(name);
        ice_proto::fuzzing::pair(&std::fs::read(path).unwrap())
    };
    for seed in ["clean-connects", "role-conflict", "forged-answers"] {
        let outcome = run(seed);
        assert_eq!(
            outcome.states.last(),
            Some(&(Completed, Completed)),
            "{seed}"
        );
    }
    assert!(run("forged-answers").forged > 40);
    let lossy = run("lossy-reordered");
    assert!(
        lossy.states.contains(&(Completed, Completed)),
        "{:?}",
        lossy.states.last()
    );
}
