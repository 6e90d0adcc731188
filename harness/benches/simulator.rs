//! Simulator throughput: simulated datagrams per second of real time, through two NATs with
//! jittery links (every datagram makes four NAT translations round trip); and the wall time of
//! the whole NAT traversal matrix (64 cells, ICE peers, STUN and TURN servers, 60 s of call
//! after selection in each). Results: docs/performance.md.

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::net::SocketAddr;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use harness::matrix::{MatrixOptions, run_matrix};
use harness::nodes::Probe;
use harness::{Link, NatPreset, Path, World, epoch};

const DATAGRAMS: u64 = 10_000;

/// A probe behind a full-cone NAT pings an echo probe behind another; returns datagrams
/// delivered.
fn ping_pong() -> u64 {
    let mut world = World::new(1, epoch());
    let internet = world.internet();
    let link = Link::symmetric(Path {
        jitter: Duration::from_millis(5),
        ..Path::with_latency(Duration::from_millis(10))
    });
    let cone = NatPreset::FullCone.boxes()[0];
    let (_, lan_a) = world.add_nat(internet, cone, "203.0.113.1".parse().unwrap(), link);
    let (_, lan_b) = world.add_nat(internet, cone, "203.0.113.2".parse().unwrap(), link);
    let a = world.add_host(
        "a",
        lan_a,
        &["10.0.0.1".parse().unwrap()],
        link,
        Probe::new(),
    );
    let b = world.add_host(
        "b",
        lan_b,
        &["10.0.1.1".parse().unwrap()],
        link,
        Probe::echo(),
    );
    // b opens its NAT towards a's external address first.
    let (a_local, b_external): (SocketAddr, SocketAddr) = (
        "10.0.0.1:5000".parse().unwrap(),
        "203.0.113.2:6000".parse().unwrap(),
    );
    world.with_node::<Probe, _>(b, |p, _| {
        p.send(
            "10.0.1.1:6000".parse().unwrap(),
            "203.0.113.1:5000".parse().unwrap(),
            b"open",
        )
    });
    world.run_for(Duration::from_millis(100));
    for i in 0..DATAGRAMS {
        world.with_node::<Probe, _>(a, |p, _| p.send(a_local, b_external, &i.to_be_bytes()));
        world.run_for(Duration::from_micros(100));
    }
    world.run_for(Duration::from_secs(1));
    world.stats().delivered
}

fn simulator(c: &mut Criterion) {
    let delivered = ping_pong();
    assert!(
        delivered >= 2 * DATAGRAMS,
        "every ping and pong arrives: {delivered}"
    );
    let mut g = c.benchmark_group("simulator");
    g.throughput(Throughput::Elements(delivered));
    g.sample_size(10);
    g.bench_function("ping-pong through two NATs", |b| b.iter(ping_pong));
    g.finish();

    let mut g = c.benchmark_group("matrix");
    g.sample_size(10);
    g.bench_function("all 64 cells, no loss", |b| {
        b.iter(|| run_matrix(&MatrixOptions::default()).unwrap())
    });
    let lossy = MatrixOptions {
        loss: 0.1,
        ..MatrixOptions::default()
    };
    g.bench_function("all 64 cells, 10% loss", |b| {
        b.iter(|| run_matrix(&lossy).unwrap())
    });
    g.finish();
}

criterion_group!(benches, simulator);
criterion_main!(benches);
