//! Interop against software we did not write, started by the tests on loopback:
//!
//! - coturn's `turnserver` as an RFC 5780 STUN server on 127.0.0.1 and 127.0.0.2, queried by
//!   our [`BindingClient`] and by the NAT discovery that `natcheck` runs (no NAT,
//!   endpoint-independent mapping and filtering, "Open Internet");
//! - Debian's classic RFC 3489 `stun` client (package stun-client) querying our
//!   `stun-server` example, which must make it report "Primary: Open";
//! - and, ours against ours, the `tokio-binding` example (the Binding client in a tokio task)
//!   learning its address from the `stun-server` example.
//!
//! A missing binary skips the test with a message, unless `CI=true`, where it fails.

// These tests drive the sans-IO machines over real sockets and real time, and run processes.
#![allow(clippy::disallowed_methods)]

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "../common/mod.rs"]
#[allow(dead_code)] // shared by the interop binaries; this one does not relay through coturn
mod common;
use common::{Running, example, require};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use stun_proto::TransportProtocol;
use stun_proto::binding::{BindingClient, BindingEvent, BindingOptions, BindingResult};
use stun_proto::nat_behavior::{
    ClassicNatType, FilteringBehavior, MappingBehavior, NatDiscovery, NatDiscoveryConfig, NatEvent,
    NatReport,
};
use stun_proto::transaction::TransactionConfig;

/// How long any one test may wait for a peer.
const PATIENCE: Duration = Duration::from_secs(20);

/// A port P such that P and P+1 are free on 127.0.0.1 and 127.0.0.2.
fn free_port_pair() -> u16 {
    for _ in 0..100 {
        let probe = UdpSocket::bind("127.0.0.1:0").expect("bind a probe socket");
        let port = probe.local_addr().expect("probe address").port();
        drop(probe);
        if port == u16::MAX {
            continue;
        }
        let all_free = ["127.0.0.1", "127.0.0.2"].iter().all(|ip| {
            [port, port + 1]
                .iter()
                .all(|p| UdpSocket::bind((*ip, *p)).is_ok())
        });
        if all_free {
            return port;
        }
    }
    panic!("no free pair of UDP ports on loopback");
}

/// coturn as a STUN-only RFC 5780 server on 127.0.0.1 and 127.0.0.2, ports `port`, `port+1`.
fn start_coturn(turnserver: &Path, port: u16) -> Running {
    let mut coturn = common::coturn(turnserver, port);
    coturn
        .args(["--stun-only", "--no-auth"])
        .args(["-L", "127.0.0.1", "-L", "127.0.0.2"])
        .args(["--alt-listening-port", &(port + 1).to_string()]);
    common::spawn(coturn)
}

/// Runs one Binding query over a real socket until it is answered or `PATIENCE` passes.
fn query(socket: &UdpSocket, server: SocketAddr) -> Option<BindingResult> {
    let local = socket.local_addr().ok()?;
    let config = TransactionConfig {
        initial_rto: Duration::from_millis(100),
        min_rto: Duration::from_millis(100),
        ..TransactionConfig::default()
    };
    let rng = ChaCha20Rng::seed_from_u64(5);
    let mut client = BindingClient::new(local, TransportProtocol::Udp, config, rng);
    let give_up = Instant::now() + PATIENCE;
    let mut buf = [0u8; 2048];
    client
        .handle_query(Instant::now(), server, BindingOptions::default())
        .ok()?;
    while Instant::now() < give_up {
        while let Some(t) = client.poll_transmit() {
            socket.send_to(&t.payload, t.destination).ok()?;
        }
        match client.poll_event() {
            Some(BindingEvent::Mapped { result, .. }) => return Some(result),
            // The server may still be starting: ask again.
            Some(BindingEvent::Failed { .. }) => {
                client
                    .handle_query(Instant::now(), server, BindingOptions::default())
                    .ok()?;
                continue;
            }
            _ => {}
        }
        let wait = client
            .poll_timeout()
            .map_or(Duration::from_millis(50), |at| {
                at.saturating_duration_since(Instant::now())
            });
        socket
            .set_read_timeout(Some(wait.max(Duration::from_millis(1))))
            .ok()?;
        if let Ok((len, from)) = socket.recv_from(&mut buf) {
            let (udp, local) = (TransportProtocol::Udp, client.local());
            client.handle_datagram(Instant::now(), udp, from, local, &buf[..len]);
        }
        client.handle_timeout(Instant::now());
    }
    None
}

/// The drive loop of the `natcheck` example, over a real socket.
fn discover(socket: &UdpSocket, server: SocketAddr) -> NatReport {
    let local = socket.local_addr().expect("local address");
    let mut config = NatDiscoveryConfig::new(local, server);
    config.transactions = TransactionConfig {
        initial_rto: Duration::from_millis(100),
        min_rto: Duration::from_millis(100),
        request_count: 4,
        last_wait_factor: 4,
        ..TransactionConfig::default()
    };
    let mut nat = NatDiscovery::new(config, ChaCha20Rng::seed_from_u64(6));
    nat.handle_start(Instant::now()).expect("start");
    let give_up = Instant::now() + PATIENCE;
    let mut buf = [0u8; 2048];
    while Instant::now() < give_up {
        while let Some(t) = nat.poll_transmit() {
            socket.send_to(&t.payload, t.destination).expect("send");
        }
        while let Some(event) = nat.poll_event() {
            if let NatEvent::Finished(report) = event {
                return report;
            }
        }
        let wait = nat.poll_timeout().map_or(Duration::from_millis(50), |at| {
            at.saturating_duration_since(Instant::now())
        });
        socket
            .set_read_timeout(Some(wait.max(Duration::from_millis(1))))
            .expect("set timeout");
        if let Ok((len, from)) = socket.recv_from(&mut buf) {
            let local = socket.local_addr().expect("a bound socket");
            nat.handle_datagram(
                Instant::now(),
                TransportProtocol::Udp,
                from,
                local,
                &buf[..len],
            );
        }
        nat.handle_timeout(Instant::now());
    }
    panic!("NAT discovery did not finish within {PATIENCE:?}");
}

#[test]
fn coturn_answers_our_binding_client() {
    let Some(turnserver) = require("turnserver", "coturn") else {
        return;
    };
    let port = free_port_pair();
    let _coturn = start_coturn(&turnserver, port);
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let server: SocketAddr = ([127, 0, 0, 1], port).into();
    let result = query(&socket, server).expect("coturn answered within the time allowed");
    println!("coturn answered: {result:?}");
    assert_eq!(
        result.mapped,
        socket.local_addr().unwrap(),
        "no NAT on loopback"
    );
    assert_eq!(result.from, server);
    assert_eq!(result.response_origin, Some(server));
    assert_eq!(
        result.other_address,
        Some(([127, 0, 0, 2], port + 1).into()),
        "coturn's RFC 5780 OTHER-ADDRESS"
    );
}

#[test]
fn coturn_natcheck_finds_no_nat_and_endpoint_independent_behaviour() {
    let Some(turnserver) = require("turnserver", "coturn") else {
        return;
    };
    let port = free_port_pair();
    let _coturn = start_coturn(&turnserver, port);
    let server: SocketAddr = ([127, 0, 0, 1], port).into();
    // Wait until coturn answers at all.
    let warmup = UdpSocket::bind("127.0.0.1:0").expect("bind");
    query(&warmup, server).expect("coturn answered within the time allowed");

    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let report = discover(&socket, server);
    println!("NAT discovery against coturn: {report:?}");
    assert_eq!(report.is_behind_nat(), Some(false));
    assert_eq!(report.mapping, Some(MappingBehavior::EndpointIndependent));
    assert_eq!(
        report.filtering,
        Some(FilteringBehavior::EndpointIndependent)
    );
    assert_eq!(report.classic_type(), ClassicNatType::OpenInternet);

    // And the example a user runs says the same.
    let output = Command::new(example("natcheck"))
        .arg(server.to_string())
        .output()
        .expect("run natcheck");
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("natcheck {server}:\n{stdout}");
    assert!(output.status.success());
    assert!(stdout.contains("behind a NAT:        no"), "{stdout}");
    assert!(
        stdout.contains("mapping behaviour:   endpoint-independent"),
        "{stdout}"
    );
    assert!(
        stdout.contains("filtering behaviour: endpoint-independent"),
        "{stdout}"
    );
    assert!(
        stdout.contains("classic NAT type:    Open Internet"),
        "{stdout}"
    );
}

/// Our `stun-server` example on 127.0.0.1 and 127.0.0.2, ready; its primary address.
fn start_our_stun_server() -> (Running, String) {
    let port = free_port_pair();
    let primary = format!("127.0.0.1:{port}");
    let alternate = format!("127.0.0.2:{}", port + 1);
    let mut child = Command::new(example("stun-server"))
        .args([&primary, &alternate])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the stun-server example");
    let stdout = child.stdout.take().expect("piped stdout");
    let server = Running(child);
    // Ready once it listens on all four addresses.
    let mut lines = BufReader::new(stdout).lines();
    for _ in 0..4 {
        let line = lines.next().expect("stun-server exited").expect("read");
        assert!(line.starts_with("listening on"), "{line}");
    }
    (server, primary)
}

#[test]
fn the_tokio_binding_example_learns_its_address_from_our_stun_server() {
    let (server, primary) = start_our_stun_server();
    let out = Command::new(example("tokio-binding"))
        .arg(&primary)
        .output()
        .expect("run the tokio-binding example");
    drop(server);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("mapped address 127.0.0.1:"), "{stdout}");
}

#[test]
fn classic_stun_client_finds_an_open_internet_through_our_stun_server() {
    let Some(stun) = require("stun", "stun-client") else {
        return;
    };
    let (server, primary) = start_our_stun_server();

    let mut client = Command::new(stun)
        .arg(&primary)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run stun");
    let give_up = Instant::now() + PATIENCE;
    while client.try_wait().expect("poll stun").is_none() {
        if Instant::now() > give_up {
            let _ = client.kill();
            panic!("`stun {primary}` did not finish within {PATIENCE:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut out = String::new();
    client
        .stdout
        .take()
        .expect("piped stdout")
        .read_to_string(&mut out)
        .expect("read stun's output");
    drop(server);
    println!("stun {primary}:\n{out}");
    assert!(out.contains("Primary: Open"), "{out}");
}
