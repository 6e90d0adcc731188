//! The `turn-server` binary against coturn's own test client: `turnutils_uclient` relays
//! through it to `turnutils_peer`, with shared-secret ("TURN REST API") credentials, over UDP,
//! TCP and TLS, with channels and with Send indications, several clients at once; a wrong secret
//! and an expired username get 401 and nothing is relayed; RFC 6062 TCP allocations
//! (`turnutils_uclient -T`: Connect, ConnectionAttempt, ConnectionBind, raw bytes), over TCP
//! and TLS, across two workers; `turnutils_natdiscovery` finds
//! its mapping and filtering through our RFC 5780 addresses. What the server did is read from
//! its Prometheus endpoint, what the client saw from its summary lines.
//!
//! A missing coturn binary skips the test with a message, unless `CI=true`, where it fails.

// These tests run processes and read the wall clock.
#![allow(clippy::disallowed_methods)]

#[path = "../common/mod.rs"]
mod common;
// `require`: a real peer on PATH, or the test skipped outside CI and failed in it.
#[path = "../../../stun-proto/tests/common/mod.rs"]
#[allow(dead_code)] // shared with stun-proto's interop binaries; this one uses part of it
mod stun_common;

use stun_common::require;

mod tcp_client;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The secrets the server accepts, newest first (a rotation in progress).
const SECRETS: [&str; 2] = ["north", "south"];
/// Messages per client, and clients.
const MESSAGES: u64 = 20;
const CLIENTS: u64 = 4;
/// The ports of a test above the server's port: relay ports, TLS, RFC 5780's alternate,
/// metrics, the echo peer; all of them.
/// uclient asks for EVEN-PORT, so a worker holds as many allocations as it has even ports:
/// at least 100, enough for every client of [`many_clients_at_once`] on one worker.
const RELAY_PORTS: u16 = 400;
const TLS: u16 = 405;
const RFC5780: u16 = 406;
const METRICS: u16 = 410;
const PEER: u16 = 415;
const SPAN: u16 = 420;
/// How long uclient may take before the test gives up on it: a guard against a hang, not a
/// timing check (100 clients take 17–19 s of uclient's own pacing; a loaded CI machine more).
const PATIENCE: Duration = Duration::from_secs(60);

/// A child process killed when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A port free for UDP and TCP on 127.0.0.1 and ::1 with the `span` ports above it free too.
fn free_port(span: u16) -> u16 {
    let free = |p: u16| {
        ["127.0.0.1", "::1"].iter().all(|ip| {
            UdpSocket::bind((*ip, p)).is_ok() && std::net::TcpListener::bind((*ip, p)).is_ok()
        })
    };
    for _ in 0..200 {
        let probe = UdpSocket::bind("127.0.0.1:0").expect("bind a probe socket");
        let port = probe.local_addr().expect("probe address").port();
        drop(probe);
        if port > u16::MAX - span - 1 {
            continue;
        }
        if (port..=port + span).all(free) {
            return port;
        }
    }
    panic!("no free port range on loopback");
}

/// Our server on 127.0.0.1:`port` with `workers` workers, both secrets, loopback peers
/// allowed, relaying from ports `port+1..=port+RELAY_PORTS`, metrics on `port+METRICS`; returns once it is
/// ready.
struct Server {
    process: Running,
    metrics: SocketAddr,
    log: Arc<Mutex<Vec<u8>>>,
}

/// Where the server's log goes once it is ready.
struct LogSink(Arc<Mutex<Vec<u8>>>);

impl Write for LogSink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Server {
    fn start(port: u16, workers: usize, extra: &[String]) -> Self {
        let metrics: SocketAddr = format!("127.0.0.1:{}", port + METRICS).parse().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_turn-server"))
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args([
                "--relay-ports",
                &format!("{}-{}", port + 1, port + RELAY_PORTS),
            ])
            .args(["--workers", &workers.to_string(), "--realm", "interop.test"])
            .args(["--auth-secret", SECRETS[1], "--auth-secret", SECRETS[0]])
            .args(["--allow-peers", "loopback"])
            .args(["--metrics", &metrics.to_string()])
            .args(extra)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start turn-server");
        let mut stderr = BufReader::new(child.stderr.take().expect("piped stderr"));
        let mut line = String::new();
        loop {
            line.clear();
            let n = stderr.read_line(&mut line).expect("turn-server's log");
            assert!(n > 0, "turn-server exited before it was ready");
            if line.contains("ready") {
                break;
            }
        }
        // Keep reading the log, so that the server's writes never block.
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut sink = LogSink(Arc::clone(&log));
        std::thread::spawn(move || std::io::copy(&mut stderr, &mut sink));
        Self {
            process: Running(child),
            metrics,
            log,
        }
    }

    /// Sends SIGTERM; returns whether the server exited with status 0 within 5 s, and its
    /// log since it was ready.
    fn terminate(mut self) -> (bool, String) {
        let pid = self.process.0.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(sent.is_ok_and(|s| s.success()), "kill -TERM {pid}");
        let give_up = Instant::now() + Duration::from_secs(5);
        let status = loop {
            if let Some(status) = self.process.0.try_wait().expect("server status") {
                break Some(status);
            }
            if Instant::now() > give_up {
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        // The log thread ends with the pipe; give it a moment to take the last lines.
        std::thread::sleep(Duration::from_millis(100));
        let log = String::from_utf8_lossy(&self.log.lock().unwrap()).into_owned();
        (status.is_some_and(|s| s.success()), log)
    }

    /// A value of the server's metrics endpoint (see [`common::metric`]).
    fn metric(&self, name: &str) -> u64 {
        common::metric(self.metrics, name)
    }
}

/// `turnutils_peer`, an echo peer, on `ip`:`port`.
fn start_peer(peer: &PathBuf, ip: &str, port: u16) -> Running {
    Running(
        Command::new(peer)
            .args(["-L", ip, "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start turnutils_peer"),
    )
}

/// Runs `turnutils_uclient` with `args` and `clients` clients against the server on
/// `load.server_ip`:`port` and the peer on `load.peer_ip`:`peer_port`; returns its exit
/// success and its output.
fn uclient(
    uclient: &PathBuf,
    load: &Load<'_>,
    port: u16,
    peer_port: u16,
    args: &[&str],
) -> (bool, String) {
    let mut child = Command::new(uclient)
        .args(args)
        .args(["-p", &port.to_string(), "-e", load.peer_ip])
        .args(["-r", &peer_port.to_string(), "-l", "200"])
        .args(["-n", &MESSAGES.to_string(), "-m", &load.clients.to_string()])
        .arg(load.server_ip)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start turnutils_uclient");
    let give_up = Instant::now() + PATIENCE;
    while child.try_wait().expect("uclient status").is_none() {
        if Instant::now() > give_up {
            let _ = child.kill();
            panic!("turnutils_uclient {args:?} did not finish in {PATIENCE:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().expect("uclient output");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// Reads `name=<number>` from the last line of `output` that has it.
fn figure(output: &str, name: &str) -> Option<u64> {
    output.lines().rev().find_map(|line| {
        let rest = line.split(&format!("{name}=")).nth(1)?;
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    })
}

/// What one uclient run through our server looks like.
#[derive(Clone, Copy)]
struct Load<'a> {
    /// The server's workers.
    workers: usize,
    /// More arguments for the server; `{port}` stands for the port uclient reaches.
    server_args: &'a [&'a str],
    /// uclient reaches the server on its port plus this.
    offset: u16,
    /// uclient's flags (transport, channels or Send indications…).
    flags: &'a [&'a str],
    /// uclient's clients (`-m`).
    clients: u64,
    /// The server address uclient is given.
    server_ip: &'a str,
    /// The echo peer's address.
    peer_ip: &'a str,
}

/// Two workers, 4 clients, everything on 127.0.0.1.
const LOAD: Load<'static> = Load {
    workers: 2,
    server_args: &[],
    offset: 0,
    flags: &[],
    clients: CLIENTS,
    server_ip: "127.0.0.1",
    peer_ip: "127.0.0.1",
};

/// Our server on 127.0.0.1 and also on [::1], relaying from both (dual-stack).
const DUAL_STACK: &[&str] = &["--listen", "[::1]:{port}"];

/// A server with `workers` workers, an echo peer and uclient with `flags` and the older
/// secret (a client of a rotation in progress): every message comes back through the relay,
/// and the server counted them.
fn relays_with_shared_secret(workers: usize, flags: &[&str]) {
    relays_through(&Load {
        workers,
        flags,
        ..LOAD
    });
}

/// The server, the peer and uclient as `load` says: every message of every client comes
/// back through the relay, and the server counted them. Returns how many EVEN-PORT
/// reservations one worker handed another (`None`: skipped, coturn missing).
fn relays_through(load: &Load<'_>) -> Option<u64> {
    let (Some(client), Some(peer)) = (
        require("turnutils_uclient", "coturn"),
        require("turnutils_peer", "coturn"),
    ) else {
        return None;
    };
    let port = free_port(SPAN);
    let server_args: Vec<String> = load
        .server_args
        .iter()
        .map(|a| a.replace("{port}", &(port + load.offset).to_string()))
        .collect();
    let server = Server::start(port, load.workers, &server_args);
    let _peer = start_peer(&peer, load.peer_ip, port + PEER);
    let mut args = vec!["-W", SECRETS[1], "-u", "alice"];
    args.extend_from_slice(load.flags);
    let flags = load.flags;
    let (ok, text) = uclient(&client, load, port + load.offset, port + PEER, &args);
    let summary: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("tot_send_msgs=") || l.contains("Total lost"))
        .collect();
    eprintln!("turnutils_uclient {flags:?}:\n{}", summary.join("\n"));
    assert!(ok, "uclient failed: {text}");
    let sent = figure(&text, "tot_send_msgs").expect("uclient reports what it sent");
    let received = figure(&text, "tot_recv_msgs").expect("uclient reports what it received");
    assert_eq!(sent, MESSAGES * load.clients, "{text}");
    assert_eq!(
        received, sent,
        "every message came back through the relay: {text}"
    );
    assert!(text.contains("Total lost packets 0 "), "{text}");
    let to_peer = server.metric("turn_relayed_packets_total{direction=\"to_peer\"}");
    let to_client = server.metric("turn_relayed_packets_total{direction=\"to_client\"}");
    assert_eq!(
        (to_peer, to_client),
        (sent, sent),
        "the server counted each datagram"
    );
    assert_eq!(
        server.metric("turn_auth_failures_total{reason=\"wrong_credentials\"}"),
        0
    );
    assert_eq!(
        server.metric("turn_auth_failures_total{reason=\"expired\"}"),
        0
    );
    let handoffs = server.metric("turn_reservation_handoffs_total");
    // SIGTERM: every worker stops and says so; exit status 0.
    let (clean, log) = server.terminate();
    assert!(clean, "no clean exit after SIGTERM: {log}");
    assert_eq!(log.matches(" stopped ").count(), load.workers, "{log}");
    Some(handoffs)
}

// Two workers: uclient's clients spread over them. `-c` drops uclient's RTCP allocations
// (one allocation per client); the RTP/RTCP pairs have tests of their own below.

#[test]
fn udp_channels_with_a_shared_secret() {
    relays_with_shared_secret(2, &["-c"]);
}

#[test]
fn udp_send_indications_with_a_shared_secret() {
    relays_with_shared_secret(2, &["-c", "-s"]);
}

#[test]
fn tcp_channels_with_a_shared_secret() {
    relays_with_shared_secret(2, &["-c", "-t"]);
}

#[test]
fn tcp_send_indications_with_a_shared_secret() {
    relays_with_shared_secret(2, &["-c", "-t", "-s"]);
}

/// A self-signed certificate for localhost made by openssl in a fresh directory: the
/// directory, the certificate and the key (`None`: skipped, openssl missing).
fn test_certificate(name: &str) -> Option<(PathBuf, String, String)> {
    let openssl = require("openssl", "openssl")?;
    let dir = std::env::temp_dir().join(format!("turn-server-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let made = Command::new(openssl)
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "1", "-subj", "/CN=localhost", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .expect("run openssl");
    assert!(made.success(), "openssl made no certificate");
    let (cert, key) = (cert.display().to_string(), key.display().to_string());
    Some((dir, cert, key))
}

#[test]
fn tls_channels_with_a_shared_secret() {
    let Some((dir, cert, key)) = test_certificate("tls") else {
        return;
    };
    relays_through(&Load {
        server_args: &[
            "--tls-listen",
            "127.0.0.1:{port}",
            "--cert",
            &cert,
            "--key",
            &key,
        ],
        offset: TLS,
        flags: &["-c", "-t", "-S"],
        ..LOAD
    });
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `turnutils_uclient -T` (RFC 6062) with 10 clients through a server with two workers
/// started with `server_args` (`{port}` standing for its port plus `offset`, which uclient
/// reaches), uclient given
/// `flags` too: uclient pairs its clients; each client allocates a TCP relayed address,
/// permits the others, and sends Connect to the relayed address of every client after it;
/// the server connects relay to relay, the other client gets a ConnectionAttempt, both
/// bind a data connection (ConnectionBind, often on the worker that does not hold the
/// connection: it is handed over) and uclient's messages go through as raw bytes. Every
/// message comes back, and the server counted every byte each way.
fn tcp_allocations_through(server_args: &[&str], offset: u16, flags: &[&str]) {
    let Some(client) = require("turnutils_uclient", "coturn") else {
        return;
    };
    const LENGTH: u64 = 200;
    let clients = 10;
    let port = free_port(SPAN);
    let server_args: Vec<String> = server_args
        .iter()
        .map(|a| a.replace("{port}", &(port + offset).to_string()))
        .collect();
    let server = Server::start(port, 2, &server_args);
    let mut args = vec!["-T", "-W", SECRETS[1], "-u", "alice"];
    args.extend_from_slice(flags);
    let load = Load { clients, ..LOAD };
    let (ok, text) = uclient(&client, &load, port + offset, port + PEER, &args);
    let summary: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("tot_send_msgs=") || l.contains("Total lost"))
        .collect();
    eprintln!("turnutils_uclient {args:?}:\n{}", summary.join("\n"));
    assert!(ok, "uclient failed: {text}");
    let sent = figure(&text, "tot_send_msgs").expect("uclient reports what it sent");
    let received = figure(&text, "tot_recv_msgs").expect("uclient reports what it received");
    assert_eq!(sent, MESSAGES * clients, "{text}");
    assert_eq!(
        received, sent,
        "every message came back through the relay: {text}"
    );
    assert!(text.contains("Total lost packets 0 "), "{text}");
    assert_eq!(
        server.metric("turn_tcp_relayed_bytes_total{direction=\"to_peer\"}"),
        sent * LENGTH,
        "the server relayed every byte from clients"
    );
    assert_eq!(
        server.metric("turn_tcp_relayed_bytes_total{direction=\"to_client\"}"),
        sent * LENGTH,
        "and every byte to them"
    );
    assert_eq!(
        server.metric("turn_relayed_packets_total{direction=\"to_peer\"}"),
        0,
        "nothing went as datagrams"
    );
    // uclient has exited: every connection closes, and its peer connection with it.
    let give_up = Instant::now() + Duration::from_secs(5);
    while server.metric("turn_peer_connections") > 0 || server.metric("turn_allocations") > 0 {
        assert!(Instant::now() < give_up, "connections left open");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (clean, log) = server.terminate();
    assert!(clean, "no clean exit after SIGTERM: {log}");
}

#[test]
fn tcp_allocations_with_coturns_client() {
    tcp_allocations_through(&[], 0, &[]);
}

#[test]
fn tcp_allocations_over_tls_with_coturns_client() {
    let Some((dir, cert, key)) = test_certificate("tcp-relay-tls") else {
        return;
    };
    let args = [
        "--tls-listen",
        "127.0.0.1:{port}",
        "--cert",
        &cert,
        "--key",
        &key,
    ];
    tcp_allocations_through(&args, TLS, &["-S"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn rfc_5780_nat_discovery_with_coturns_client() {
    let Some(natdiscovery) = require("turnutils_natdiscovery", "coturn") else {
        return;
    };
    let port = free_port(SPAN);
    let alternate = format!("127.0.0.2:{}", port + RFC5780);
    let _server = Server::start(
        port,
        2,
        &["--rfc5780-alternate".to_owned(), alternate.clone()],
    );
    let output = Command::new(natdiscovery)
        .args(["-m", "-f", "-p", &port.to_string(), "127.0.0.1"])
        .output()
        .expect("run turnutils_natdiscovery");
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{text}");
    // On loopback there is no NAT: both behaviours are endpoint-independent, learnt from
    // OTHER-ADDRESS and answers to CHANGE-REQUEST from the other IP and port.
    assert!(
        text.contains(&format!("Other addr: : {alternate}")),
        "{text}"
    );
    assert!(
        text.contains("NAT with Endpoint Independent Mapping!"),
        "{text}"
    );
    assert!(
        text.contains("NAT with Endpoint Independent Filtering!"),
        "{text}"
    );
}

#[test]
fn udp_over_ipv6_with_a_shared_secret() {
    relays_through(&Load {
        server_args: DUAL_STACK,
        flags: &["-c"],
        server_ip: "::1",
        peer_ip: "::1",
        ..LOAD
    });
}

#[test]
fn tcp_over_ipv6_with_a_shared_secret() {
    relays_through(&Load {
        server_args: DUAL_STACK,
        flags: &["-c", "-t"],
        server_ip: "::1",
        peer_ip: "::1",
        ..LOAD
    });
}

#[test]
fn an_ipv6_relayed_address_for_an_ipv4_client() {
    // REQUESTED-ADDRESS-FAMILY IPv6 over IPv4 (RFC 8656 §7.1), to an IPv6 peer.
    relays_through(&Load {
        server_args: DUAL_STACK,
        flags: &["-c", "-x"],
        peer_ip: "::1",
        ..LOAD
    });
}

#[test]
fn dual_allocations_relay_to_ipv4_and_ipv6_peers() {
    // ADDITIONAL-ADDRESS-FAMILY (RFC 8656 §7.1; coturn numbers it 0x8032): one Allocate,
    // an IPv4 and an IPv6 relayed address; each peer is reached from the one of its family.
    for peer_ip in ["127.0.0.1", "::1"] {
        relays_through(&Load {
            server_args: DUAL_STACK,
            flags: &["-Z"],
            peer_ip,
            ..LOAD
        });
    }
}

#[test]
fn many_clients_at_once() {
    relays_through(&Load {
        flags: &["-c"],
        clients: 100,
        ..LOAD
    });
}

#[test]
fn rtp_and_rtcp_pairs_with_even_port_reservations_on_one_worker() {
    relays_with_shared_secret(1, &[]);
}

#[test]
fn rtp_and_rtcp_pairs_with_even_port_reservations_across_workers() {
    // Each client's RTCP allocation redeems, from another client port, the port its RTP
    // allocation reserved (EVEN-PORT R, RESERVATION-TOKEN). With 16 clients on two
    // workers, SO_REUSEPORT hashes some RTCP ports to the worker that does not hold the
    // reservation (all 16 on the right one: 1 in 65,536): it is handed over, with its
    // relay port, and every message still comes back.
    let handoffs = relays_through(&Load {
        clients: 16,
        ..LOAD
    });
    assert!(
        handoffs.is_none_or(|n| n > 0),
        "no reservation crossed workers"
    );
}

/// uclient with `args` (credentials and transport) cannot allocate: the server counted
/// `reason` refusals (each a 401), holds no allocation and relayed nothing.
fn refused(args: &[&str], reason: &str) {
    let (Some(client), Some(peer)) = (
        require("turnutils_uclient", "coturn"),
        require("turnutils_peer", "coturn"),
    ) else {
        return;
    };
    let port = free_port(SPAN);
    let server = Server::start(port, 2, &[]);
    let _peer = start_peer(&peer, "127.0.0.1", port + PEER);
    let (ok, text) = uclient(&client, &LOAD, port, port + PEER, args);
    assert!(!ok, "uclient succeeded: {text}");
    assert!(text.contains("Cannot complete Allocation"), "{text}");
    let refusals = server.metric(&format!("turn_auth_failures_total{{reason=\"{reason}\"}}"));
    assert!(refusals >= 1, "no {reason} refusal counted");
    assert_eq!(server.metric("turn_allocations"), 0);
    assert_eq!(
        server.metric("turn_relayed_packets_total{direction=\"to_peer\"}"),
        0
    );
    assert_eq!(
        server.metric("turn_relayed_packets_total{direction=\"to_client\"}"),
        0
    );
}

/// A TCP connection that holds no allocation `--unallocated-timeout` after it was accepted is
/// closed: one that sends nothing (a TLS handshake that never comes, a half-open connection)
/// and one that stops inside a STUN header. Neither keeps a connection slot.
#[test]
fn connections_that_never_allocate_are_closed() {
    use std::io::Read as _;
    let port = free_port(SPAN);
    let server = Server::start(port, 1, &["--unallocated-timeout".into(), "1".into()]);
    let address: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let silent = std::net::TcpStream::connect(address).expect("connect");
    let mut partial = std::net::TcpStream::connect(address).expect("connect");
    partial.write_all(&[0x00, 0x01, 0x00]).expect("write");
    for mut stream in [silent, partial] {
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut buf = [0u8; 64];
        match stream.read(&mut buf) {
            // Closed by the server: end of stream, or a reset.
            Ok(0) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            other => panic!("the connection is still open: {other:?}"),
        }
    }
    assert_eq!(server.metric("turn_tcp_unallocated_closed_total"), 2);
    assert_eq!(server.metric("turn_tcp_connections"), 0);
}

#[test]
fn a_wrong_secret_gets_401_and_nothing_relayed() {
    for transport in [&[][..], &["-t"][..]] {
        let mut args = vec!["-W", "west", "-u", "alice"];
        args.extend_from_slice(transport);
        refused(&args, "wrong_credentials");
    }
}

#[test]
fn an_expired_username_gets_401_and_nothing_relayed() {
    // Signed with a live secret, but an hour past its expiry.
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let (username, password) = common::rest_credentials(SECRETS[0], "alice", now.as_secs() - 3600);
    for transport in [&[][..], &["-t"][..]] {
        let mut args = vec!["-u", username.as_str(), "-w", password.as_str()];
        args.extend_from_slice(transport);
        refused(&args, "expired");
    }
}
