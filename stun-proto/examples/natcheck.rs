//! `natcheck SERVER[:PORT]`: what NAT is between this host and the Internet?
//!
//! Runs RFC 5780 NAT behaviour discovery against a STUN server that supports it (two IP
//! addresses, e.g. coturn started with two `-L` addresses), and prints the mapped address,
//! the mapping and filtering behaviours, hairpinning, and the classic RFC 3489 NAT type.
//! All protocol logic is in [`stun_proto::nat_behavior::NatDiscovery`]; this file only moves
//! datagrams between it and a UDP socket and keeps the clock.

// An example drives the sans-IO machine with a real socket, real time and OS randomness,
// which the crate's clippy rules forbid inside the machines themselves.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use stun_proto::TransportProtocol;
use stun_proto::nat_behavior::{NatDiscovery, NatDiscoveryConfig, NatEvent, NatReport};
use stun_proto::transaction::TransactionConfig;

fn main() -> ExitCode {
    let Some(server) = std::env::args().nth(1) else {
        eprintln!("usage: natcheck SERVER[:PORT]   (default port 3478)");
        return ExitCode::from(2);
    };
    match run(&server) {
        Ok(report) => {
            print(&report);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("natcheck: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(server: &str) -> Result<NatReport, Box<dyn std::error::Error>> {
    let server = match server.to_socket_addrs() {
        Ok(mut addrs) => addrs.next(),
        Err(_) => (server, 3478).to_socket_addrs()?.next(),
    }
    .ok_or("the server name resolves to no address")?;
    // The local address the route to the server uses, so that "no NAT" can be recognised.
    let probe = UdpSocket::bind(SocketAddr::new(unspecified(server), 0))?;
    probe.connect(server)?;
    let socket = UdpSocket::bind(SocketAddr::new(probe.local_addr()?.ip(), 0))?;
    drop(probe);
    let local = socket.local_addr()?;

    let mut config = NatDiscoveryConfig::new(local, server);
    // Unanswered filtering tests are expected; give up on each after about 3 s, not 39.5 s.
    config.transactions = TransactionConfig {
        initial_rto: Duration::from_millis(250),
        min_rto: Duration::from_millis(250),
        request_count: 4,
        last_wait_factor: 4,
        ..TransactionConfig::default()
    };
    let mut nat = NatDiscovery::new(config, ChaCha20Rng::from_os_rng());
    nat.handle_start(Instant::now())?;
    let mut buf = [0u8; 2048];
    loop {
        while let Some(t) = nat.poll_transmit() {
            socket.send_to(&t.payload, t.destination)?;
        }
        while let Some(event) = nat.poll_event() {
            match event {
                NatEvent::Mapped(result) => eprintln!("mapped address {}", result.mapped),
                NatEvent::Finished(report) => return Ok(report),
                _ => {}
            }
        }
        let Some(deadline) = nat.poll_timeout() else {
            return Err("discovery stalled with nothing scheduled".into());
        };
        let wait = deadline.saturating_duration_since(Instant::now());
        socket.set_read_timeout(Some(wait.max(Duration::from_millis(1))))?;
        match socket.recv_from(&mut buf) {
            Ok((len, from)) => {
                let now = Instant::now();
                nat.handle_datagram(now, TransportProtocol::Udp, from, local, &buf[..len]);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                nat.handle_timeout(Instant::now());
            }
            // ICMP port unreachable surfaces as ConnectionRefused on some systems: the
            // retransmission timer handles it.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
            Err(e) => return Err(e.into()),
        }
        if nat.poll_timeout().is_some_and(|at| at <= Instant::now()) {
            nat.handle_timeout(Instant::now());
        }
    }
}

fn unspecified(server: SocketAddr) -> std::net::IpAddr {
    match server {
        SocketAddr::V4(_) => std::net::Ipv4Addr::UNSPECIFIED.into(),
        SocketAddr::V6(_) => std::net::Ipv6Addr::UNSPECIFIED.into(),
    }
}

fn print(report: &NatReport) {
    let or_unknown = |v: Option<String>| v.unwrap_or_else(|| "unknown".to_owned());
    println!("local address:       {}", report.local);
    println!(
        "mapped address:      {}",
        or_unknown(report.mapped.map(|a| a.to_string()))
    );
    println!(
        "other address:       {}",
        report.other_address.map_or_else(
            || "none (not an RFC 5780 server)".to_owned(),
            |a| a.to_string()
        )
    );
    println!(
        "behind a NAT:        {}",
        match report.is_behind_nat() {
            Some(true) => "yes",
            Some(false) => "no",
            None => "unknown",
        }
    );
    println!(
        "mapping behaviour:   {}",
        or_unknown(report.mapping.map(|m| m.to_string()))
    );
    println!(
        "filtering behaviour: {}",
        or_unknown(report.filtering.map(|f| f.to_string()))
    );
    println!(
        "hairpinning:         {}",
        match report.hairpinning {
            Some(true) => "yes",
            Some(false) => "no",
            None => "not tested",
        }
    );
    println!("classic NAT type:    {}", report.classic_type());
}
