//! The simulator itself: same seed, same trace, bit for bit; a capture that tshark decodes.

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use harness::nodes::{NatCheck, StunServer};
use harness::{Link, NatPreset, Path, World, epoch};

/// NAT discovery through a symmetric NAT over lossy, jittery links: plenty of randomness.
fn lossy_scenario(seed: u64) -> World {
    let mut world = World::new(seed, epoch());
    let internet = world.internet();
    let (primary, alternate): (SocketAddr, SocketAddr) = (
        "198.51.100.10:3478".parse().unwrap(),
        "198.51.100.11:3479".parse().unwrap(),
    );
    world.add_host(
        "stun",
        internet,
        &[primary.ip(), alternate.ip()],
        Link::default(),
        StunServer::new(primary, Some(alternate)),
    );
    let lossy = Link::symmetric(Path {
        loss: 0.2,
        jitter: Duration::from_millis(30),
        duplicate: 0.05,
        ..Path::with_latency(Duration::from_millis(20))
    });
    let (_, lan) = world.add_nat(
        internet,
        NatPreset::Symmetric.boxes()[0],
        "203.0.113.1".parse().unwrap(),
        lossy,
    );
    let local: SocketAddr = "192.168.1.2:40000".parse().unwrap();
    let start = world.now();
    world.add_host(
        "natcheck",
        lan,
        &[local.ip()],
        Link::default(),
        NatCheck::new(local, primary, start, 5),
    );
    world
}

#[test]
fn the_same_seed_gives_the_same_trace_bit_for_bit() {
    let run = |seed| {
        let mut w = lossy_scenario(seed);
        w.run_for(Duration::from_secs(120));
        (w.trace_hash(), w.stats().sent, w.stats().dropped.clone())
    };
    let (a, b) = (run(11), run(11));
    assert_eq!(a, b);
    assert!(a.1 > 10, "the scenario sent traffic: {a:?}");
    assert!(!a.2.is_empty(), "and the lossy link dropped some: {a:?}");
    assert_ne!(run(12).0, a.0, "another seed, another trace");
}

#[test]
fn a_capture_is_decoded_by_tshark_as_stun() {
    let path = std::env::temp_dir().join(format!("harness-capture-{}.pcap", std::process::id()));
    let mut world = lossy_scenario(3);
    world
        .capture(Box::new(std::fs::File::create(&path).unwrap()))
        .unwrap();
    world.run_for(Duration::from_secs(5));
    world.finish_capture().unwrap();
    let size = std::fs::metadata(&path).unwrap().len();
    assert!(size > 24, "the capture holds packets");

    let output = match Command::new("tshark")
        .args(["-r"])
        .arg(&path)
        .args([
            "-Y",
            "stun",
            "-T",
            "fields",
            "-e",
            "stun.type",
            "-e",
            "udp.srcport",
        ])
        .output()
    {
        Ok(output) => output,
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("tshark is required in CI: {e}")
        }
        Err(e) => {
            eprintln!(
                "SKIP: tshark not found ({e}); install the tshark package to check pcap decoding"
            );
            return;
        }
    };
    let _ = std::fs::remove_file(&path);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    // Requests (type 0x0001) and success responses (0x0101) both decode as STUN.
    assert!(
        lines.iter().any(|l| l.starts_with("0x0001")),
        "no Binding request decoded: {stdout}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("0x0101")),
        "no Binding response decoded: {stdout}"
    );
}
