//! Two `harness peer` processes on loopback, their stdout wired to each other's stdin: host
//! candidates only, with DTLS, controlling/controlled and both controlling (an ICE role
//! conflict), and through coturn with relay-only peers reaching it over UDP, over TCP, over
//! TLS (`--turn-transport tls` trusting a test CA made by openssl at test time) and over
//! IPv6, and through our `turn-server` binary over TLS. Each run must end with both
//! processes passing the data check (exit 0).
//!
//! coturn (`turnserver`) is started by the test; when it is missing outside CI the TURN test
//! says so and returns, in CI (`CI` set) it fails.

// A test of real processes over real sockets: it reads the clock, spawns threads to pump
// their pipes and binds probe sockets to find free ports.
#![allow(clippy::disallowed_methods)]

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

#[path = "../../../stun-proto/tests/common/mod.rs"]
#[allow(dead_code)] // shared with the interop binaries; this one uses `example` only
mod common;

/// How long a whole run may take before the test kills it.
const PATIENCE: Duration = Duration::from_secs(60);

/// What one process did: its exit code, every stdout line as JSON, and its stderr.
struct Outcome {
    code: Option<i32>,
    lines: Vec<Value>,
    stderr: String,
}

impl Outcome {
    fn events(&self, signal: &str) -> Vec<&Value> {
        self.lines
            .iter()
            .filter(|l| l["type"] == "event" && l["signal"] == signal)
            .collect()
    }

    fn result(&self) -> &Value {
        self.lines.last().expect("at least a result line")
    }

    fn summary(&self) -> String {
        let stdout = self
            .lines
            .iter()
            .map(Value::to_string)
            .collect::<Vec<_>>()
            .join("\n");
        let tail = self
            .stderr
            .get(self.stderr.len().saturating_sub(2_000)..)
            .unwrap_or_default();
        format!("{stdout}\nstderr (tail):\n{tail}")
    }
}

/// Starts two peers with these arguments, wires them, waits for both.
fn run_pair(a: &[&str], b: &[&str]) -> (Outcome, Outcome) {
    run_pair_with(a, b, |line| line.as_bytes().to_vec())
}

/// As [`run_pair`], with every line from A to B passed through `to_b` (which may turn it
/// into several lines, or into bytes that are no UTF-8).
fn run_pair_with(a: &[&str], b: &[&str], to_b: fn(&str) -> Vec<u8>) -> (Outcome, Outcome) {
    let spawn = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_harness"))
            .arg("peer")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start harness peer")
    };
    let (mut pa, mut pb) = (spawn(a), spawn(b));
    let stderr = |child: &mut Child| {
        let mut stderr = child.stderr.take().expect("piped stderr");
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
            text
        })
    };
    let (ea, eb) = (stderr(&mut pa), stderr(&mut pb));
    let pump = |from: &mut Child, to: &mut Child, rewrite: fn(&str) -> Vec<u8>| {
        let stdout = from.stdout.take().expect("piped stdout");
        let mut stdin = to.stdin.take().expect("piped stdin");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = Vec::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // The other side may have exited already: its stdin is then closed.
                let _ = stdin.write_all(&rewrite(&line));
                let _ = stdin.write_all(b"\n");
                let _ = stdin.flush();
                lines.push(serde_json::from_str::<Value>(&line).expect("stdout is JSON lines"));
            }
            let _ = tx.send(lines);
        });
        rx
    };
    let (ra, rb) = (
        pump(&mut pa, &mut pb, to_b),
        pump(&mut pb, &mut pa, |line| line.as_bytes().to_vec()),
    );
    let deadline = Instant::now() + PATIENCE;
    let wait = |child: &mut Child| loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (ca, cb) = (wait(&mut pa), wait(&mut pb));
    let la = ra.recv_timeout(PATIENCE).expect("a's stdout closes");
    let lb = rb.recv_timeout(PATIENCE).expect("b's stdout closes");
    (
        Outcome {
            code: ca,
            lines: la,
            stderr: ea.join().unwrap_or_default(),
        },
        Outcome {
            code: cb,
            lines: lb,
            stderr: eb.join().unwrap_or_default(),
        },
    )
}

/// Both processes passed the data check; the lines every run must have.
fn assert_passed(a: &Outcome, b: &Outcome) {
    for (name, o) in [("a", a), ("b", b)] {
        let s = o.summary();
        assert_eq!(o.code, Some(0), "{name} exit code; stdout:\n{s}");
        assert_eq!(o.result()["type"], "result", "{name}:\n{s}");
        assert_eq!(o.result()["status"], "pass", "{name}:\n{s}");
        let first = o.lines.iter().find(|l| l["type"] != "log").unwrap();
        assert_eq!(
            first["type"], "credentials",
            "{name}: credentials first:\n{s}"
        );
        assert!(
            o.lines.iter().any(|l| l["type"] == "end-of-candidates"),
            "{name}"
        );
        assert!(o.lines.iter().any(|l| l["type"] == "data-done"), "{name}");
        assert_eq!(o.events("new-selected-pair").len(), 1, "{name}:\n{s}");
        let states: Vec<&str> = o
            .events("state-changed")
            .iter()
            .filter_map(|e| e["state"].as_str())
            .collect();
        assert!(states.starts_with(&["started"]), "{name}: {states:?}");
        assert!(states.contains(&"ready"), "{name}: {states:?}");
        assert_eq!(states.last(), Some(&"finished"), "{name}: {states:?}");
    }
}

fn dtls_role(o: &Outcome) -> String {
    o.events("dtls-started")[0]["role"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn host_candidates_only() {
    let (a, b) = run_pair(&["--controlling"], &[]);
    assert_passed(&a, &b);
    for o in [&a, &b] {
        let pair = o.events("new-selected-pair")[0];
        assert!(
            pair["local"].as_str().unwrap().contains("typ host"),
            "{pair}"
        );
        assert!(o.events("dtls-started").is_empty());
    }
}

#[test]
fn ipv6_loopback_with_dtls() {
    let (a, b) = run_pair(
        &["--controlling", "--ip", "::1", "--dtls"],
        &["--ip", "::1", "--dtls"],
    );
    assert_passed(&a, &b);
    assert!(
        a.events("new-selected-pair")[0]["local"]
            .as_str()
            .unwrap()
            .contains("::1")
    );
}

#[test]
fn dtls_over_the_selected_pair_with_fingerprints_and_srtp_keys() {
    let (a, b) = run_pair(
        &["--controlling", "--dtls", "--count", "20"],
        &["--dtls", "--count", "20"],
    );
    assert_passed(&a, &b);
    // The offerer (actpass) is the server, the answerer (active) the client.
    assert_eq!(dtls_role(&a), "server");
    assert_eq!(dtls_role(&b), "client");
    let fingerprint = |o: &Outcome| {
        o.lines
            .iter()
            .find(|l| l["type"] == "dtls")
            .expect("a dtls line")["fingerprint"]
            .clone()
    };
    for (o, other) in [(&a, &b), (&b, &a)] {
        let connected = o.events("dtls-connected");
        assert_eq!(connected.len(), 1, "{}", o.summary());
        // The certificate verified is the one the other side signalled.
        assert_eq!(connected[0]["remote-fingerprint"], fingerprint(other));
        assert!(
            connected[0]["srtp-profile"].is_string(),
            "SRTP keys exported"
        );
    }
}

#[test]
fn both_controlling_resolve_the_role_conflict() {
    let (a, b) = run_pair(&["--controlling", "--dtls"], &["--controlling", "--dtls"]);
    assert_passed(&a, &b);
    let switched = a.events("role-changed").len() + b.events("role-changed").len();
    assert!(
        switched >= 1,
        "one side switched:\n{}\n--\n{}",
        a.summary(),
        b.summary()
    );
    let mut roles = [dtls_role(&a), dtls_role(&b)];
    roles.sort();
    assert_eq!(roles, ["client", "server"]);
}

/// `turnserver` on the path, or `None` (a failure in CI).
fn turnserver() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("turnserver"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(std::env::var_os("CI").is_none(), "turnserver missing in CI");
        eprintln!("turnserver (coturn) not installed: skipping the TURN test");
    }
    found
}

/// A UDP port with `span` free ports after it on loopback address `ip`.
fn free_port_range(ip: IpAddr, span: u16) -> u16 {
    for _ in 0..200 {
        let probe = UdpSocket::bind((ip, 0)).expect("bind a probe socket");
        let port = probe.local_addr().expect("probe address").port();
        drop(probe);
        if port > u16::MAX - span - 1 {
            continue;
        }
        let udp_free = (port..=port + span).all(|p| UdpSocket::bind((ip, p)).is_ok());
        if udp_free && std::net::TcpListener::bind((ip, port)).is_ok() {
            return port;
        }
    }
    panic!("no free port range on loopback");
}

/// coturn (or another server the test started), killed when dropped.
struct Coturn(Child);

impl Drop for Coturn {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// coturn listening and relaying on `ip`:`port` (relayed ports `port+1..=port+40`).
fn start_coturn(turnserver: &Path, ip: IpAddr, port: u16) -> Coturn {
    start_coturn_with(turnserver, ip, port, &["--no-tls"])
}

/// [`start_coturn`] with `tls` arguments: `--no-tls`, or a certificate and a TLS port.
fn start_coturn_with(turnserver: &Path, ip: IpAddr, port: u16, tls: &[&str]) -> Coturn {
    let ip = ip.to_string();
    let child = Command::new(turnserver)
        .args(["-n", "--lt-cred-mech", "--user", "peer:peer-secret"])
        .args(["--realm", "harness.test", "--fingerprint"])
        .args(tls)
        .args(["--no-dtls", "--no-cli", "--allow-loopback-peers"])
        .args(["-L", &ip, "--relay-ip", &ip])
        .args(["--listening-port", &port.to_string()])
        .args(["--min-port", &(port + 1).to_string()])
        .args(["--max-port", &(port + 40).to_string()])
        .args(["--log-file", "stdout", "--simple-log"])
        .arg("--pidfile")
        .arg(std::env::temp_dir().join(format!("harness-peer-coturn-{port}.pid")))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start turnserver");
    // coturn answers within a few hundred milliseconds; the peers retransmit their
    // allocations anyway (RFC 8489 §6.2.1), so a slow start only costs time.
    std::thread::sleep(Duration::from_millis(500));
    Coturn(child)
}

const V4: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const V6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);

#[test]
fn relay_only_through_coturn_over_udp() {
    relay_only_through_coturn(V4, "udp");
}

#[test]
fn relay_only_through_coturn_over_tcp() {
    relay_only_through_coturn(V4, "tcp");
}

/// IPv6 relayed addresses (REQUESTED-ADDRESS-FAMILY, RFC 8656 §7.1) from a real server.
#[test]
fn relay_only_through_coturn_over_ipv6() {
    relay_only_through_coturn(V6, "udp");
}

/// Two relay-only peers on `ip` with DTLS, each reaching coturn over `transport`.
fn relay_only_through_coturn(ip: IpAddr, transport: &str) {
    let Some(turnserver) = turnserver() else {
        return;
    };
    let port = free_port_range(ip, 41);
    let _coturn = start_coturn(&turnserver, ip, port);
    let server = SocketAddr::new(ip, port).to_string();
    relay_only_pair(
        ip,
        &[
            "--turn",
            &server,
            "peer",
            "peer-secret",
            "--turn-transport",
            transport,
        ],
    );
}

/// A test CA, and a certificate it signed for 127.0.0.1 and localhost, made by openssl in a
/// fresh directory (removed when dropped).
struct TestPki {
    dir: PathBuf,
}

impl TestPki {
    /// `None` (skipped, or a failure in CI) without openssl.
    fn new(name: &str) -> Option<Self> {
        let openssl = common::require("openssl", "openssl")?;
        let dir = std::env::temp_dir().join(format!("harness-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        let pki = Self { dir };
        let run = |args: &[&str]| {
            let made = Command::new(&openssl)
                .args(args)
                .current_dir(&pki.dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("run openssl");
            assert!(made.success(), "openssl {args:?} failed");
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        let mut ca = vec!["req", "-x509", "-days", "1", "-subj", "/CN=harness test CA"];
        ca.extend(ec);
        ca.extend(["-keyout", "ca.key", "-out", "ca.pem"]);
        run(&ca);
        let mut request = vec!["req", "-subj", "/CN=localhost"];
        request.extend(ec);
        request.extend(["-keyout", "key.pem", "-out", "cert.csr"]);
        run(&request);
        std::fs::write(
            pki.dir.join("leaf.ext"),
            "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n\
             extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
        )
        .expect("write the extensions");
        run(&[
            "x509",
            "-req",
            "-in",
            "cert.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            "leaf.ext",
            "-out",
            "cert.pem",
        ]);
        Some(pki)
    }

    fn path(&self, file: &str) -> String {
        self.dir.join(file).display().to_string()
    }
}

impl Drop for TestPki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Waits until something listens on TCP `port` of 127.0.0.1.
fn wait_for_tcp(port: u16) {
    let give_up = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect((V4, port)).is_err() {
        assert!(Instant::now() < give_up, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Two relay-only peers with DTLS reach coturn over TLS (its TLS port, the certificate of
/// a test CA that `--turn-ca` trusts, checked for the name `localhost`).
#[test]
fn relay_only_through_coturn_over_tls() {
    let (Some(turnserver), Some(pki)) = (turnserver(), TestPki::new("coturn-tls")) else {
        return;
    };
    let port = free_port_range(V4, 42);
    let tls_port = (port + 41).to_string();
    let (cert, key) = (pki.path("cert.pem"), pki.path("key.pem"));
    let tls = [
        "--cert",
        &cert,
        "--pkey",
        &key,
        "--tls-listening-port",
        &tls_port,
    ];
    let _coturn = start_coturn_with(&turnserver, V4, port, &tls);
    wait_for_tcp(port + 41);
    let server = format!("localhost:{tls_port}");
    let ca = pki.path("ca.pem");
    relay_only_pair(
        V4,
        &[
            "--turn",
            &server,
            "peer",
            "peer-secret",
            "--turn-transport",
            "tls",
            "--turn-ca",
            &ca,
        ],
    );
}

/// The same through our `turn-server` binary on its TLS port (built by `cargo test
/// --workspace`, or `cargo build -p turn-server`), with two workers.
#[test]
fn relay_only_through_our_turn_server_over_tls() {
    let Some(pki) = TestPki::new("turn-server-tls") else {
        return;
    };
    let binary = common::built(Path::new("turn-server"));
    let port = free_port_range(V4, 42);
    let tls_port = port + 41;
    let child = Command::new(binary)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--tls-listen", &format!("127.0.0.1:{tls_port}")])
        .args([
            "--cert",
            &pki.path("cert.pem"),
            "--key",
            &pki.path("key.pem"),
        ])
        .args(["--relay-ports", &format!("{}-{}", port + 1, port + 40)])
        .args(["--workers", "2", "--realm", "harness.test"])
        .args(["--user", "peer:peer-secret", "--allow-peers", "loopback"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start turn-server");
    let _server = Coturn(child);
    wait_for_tcp(tls_port);
    let server = format!("localhost:{tls_port}");
    // The certificate is checked: trusting the system's CAs only, the handshake fails
    // and the peer says so (exit 2), before any TURN message.
    let untrusted = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args([
            "peer",
            "--relay-only",
            "--turn",
            &server,
            "peer",
            "peer-secret",
        ])
        .args(["--turn-transport", "tls", "--timeout", "5"])
        .stdin(Stdio::null())
        .output()
        .expect("run harness peer");
    assert_eq!(untrusted.status.code(), Some(2));
    let stdout = String::from_utf8_lossy(&untrusted.stdout);
    let last: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    let reason = last["reason"].as_str().unwrap();
    assert!(
        reason.contains("TLS handshake") && reason.contains("UnknownIssuer"),
        "{last}"
    );
    let ca = pki.path("ca.pem");
    relay_only_pair(
        V4,
        &[
            "--turn",
            &server,
            "peer",
            "peer-secret",
            "--turn-transport",
            "tls",
            "--turn-ca",
            &ca,
        ],
    );
}

/// Two relay-only peers on `ip` with DTLS and the TURN arguments `turn`: both pass, every
/// signalled candidate and both ends of the selected pair are relayed.
fn relay_only_pair(ip: IpAddr, turn: &[&str]) {
    let ip = ip.to_string();
    let mut args_a = vec!["--controlling", "--relay-only", "--dtls", "--ip", &ip];
    args_a.extend(turn);
    let mut args_b = vec!["--relay-only", "--dtls", "--ip", &ip];
    args_b.extend(turn);
    let (a, b) = run_pair(&args_a, &args_b);
    assert_passed(&a, &b);
    for o in [&a, &b] {
        // Only relayed candidates were signalled, and the pair is relayed on both ends.
        for c in o.lines.iter().filter(|l| l["type"] == "candidate") {
            assert!(
                c["candidate"].as_str().unwrap().contains("typ relay"),
                "{c}"
            );
        }
        let pair = o.events("new-selected-pair")[0];
        assert!(
            pair["local"].as_str().unwrap().contains("typ relay"),
            "{pair}"
        );
        assert!(
            pair["remote"].as_str().unwrap().contains("typ relay"),
            "{pair}"
        );
    }
}

#[test]
fn bad_arguments_exit_2() {
    let status = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_harness"))
            .arg("peer")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run harness peer")
            .code()
    };
    assert_eq!(status(&["--bogus"]), Some(2));
    assert_eq!(status(&["--relay-only"]), Some(2));
    assert_eq!(status(&["--turn-transport", "tcp"]), Some(2));
    let sctp = [
        "--turn",
        "127.0.0.1:3478",
        "u",
        "p",
        "--turn-transport",
        "sctp",
    ];
    assert_eq!(status(&sctp), Some(2));
}

#[test]
fn a_silent_other_side_times_out_with_exit_2() {
    let output = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(["peer", "--timeout", "1"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .expect("run harness peer");
    assert_eq!(output.status.code(), Some(2));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let last: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(last["type"], "result");
    assert_eq!(last["status"], "fail");
    assert!(
        last["reason"].as_str().unwrap().contains("timeout"),
        "{last}"
    );
}

#[test]
fn dtls_on_one_side_only_fails_with_the_reason() {
    let (a, b) = run_pair(
        &["--controlling", "--dtls", "--timeout", "3"],
        &["--timeout", "3"],
    );
    // A waits for a fingerprint that never comes: a timeout, naming what is missing.
    assert_eq!(a.code, Some(2), "{}", a.summary());
    let reason = a.result()["reason"].as_str().unwrap();
    assert!(reason.contains("dtls line"), "{reason}");
    // B is ready over ICE, but A's DTLS demultiplexer drops its plain pings: data incomplete.
    assert_eq!(b.code, Some(1), "{}", b.summary());
    let reason = b.result()["reason"].as_str().unwrap();
    assert!(reason.contains("data incomplete: 0 of 5"), "{reason}");
}

#[test]
fn with_stun_and_turn_the_direct_path_wins_over_the_relay() {
    let Some(turnserver) = turnserver() else {
        return;
    };
    let port = free_port_range(V4, 41);
    let _coturn = start_coturn(&turnserver, V4, port);
    let server = format!("127.0.0.1:{port}");
    let servers = ["--stun", &server, "--turn", &server, "peer", "peer-secret"];
    let mut args_a = vec!["--controlling", "--dtls"];
    args_a.extend(servers);
    let mut args_b = vec!["--dtls"];
    args_b.extend(servers);
    let (a, b) = run_pair(&args_a, &args_b);
    assert_passed(&a, &b);
    for o in [&a, &b] {
        // Both servers answered: a relayed candidate was signalled and no problem reported.
        assert!(
            o.lines.iter().any(|l| l["type"] == "candidate"
                && l["candidate"].as_str().unwrap().contains("typ relay")),
            "{}",
            o.summary()
        );
        assert!(o.events("problem").is_empty(), "{}", o.summary());
        let pair = o.events("new-selected-pair")[0];
        assert!(
            pair["local"].as_str().unwrap().contains("typ host"),
            "{pair}"
        );
        assert!(
            pair["remote"].as_str().unwrap().contains("typ host"),
            "{pair}"
        );
    }
}

#[test]
fn a_wrong_fingerprint_fails_both_sides_with_the_detail() {
    // B is told a fingerprint that is not A's certificate's.
    fn tamper(line: &str) -> Vec<u8> {
        let mut v: Value = serde_json::from_str(line).unwrap();
        if v["type"] == "dtls" {
            v["fingerprint"] = Value::from(format!("sha-256 {}", ["42"; 32].join(":")));
        }
        v.to_string().into_bytes()
    }
    let (a, b) = run_pair_with(&["--controlling", "--dtls"], &["--dtls"], tamper);
    // B, the DTLS client, checks A's certificate and refuses it.
    assert_eq!(b.code, Some(1), "{}", b.summary());
    let reason = b.result()["reason"].as_str().unwrap();
    assert!(reason.contains("fingerprint mismatch"), "{reason}");
    assert!(reason.contains("sha-256 42:42"), "{reason}");
    // A hears B's bad_certificate alert, sent before B exits.
    assert_eq!(a.code, Some(1), "{}", a.summary());
    let reason = a.result()["reason"].as_str().unwrap();
    assert!(reason.contains("DTLS failed"), "{reason}");
    for o in [&a, &b] {
        assert!(o.events("dtls-connected").is_empty());
        let states: Vec<&str> = o
            .events("state-changed")
            .iter()
            .filter_map(|e| e["state"].as_str())
            .collect();
        assert_eq!(states.last(), Some(&"failed"), "{states:?}");
    }
}

/// Issue 14: before A's credentials, B's stdin gets a line that is not UTF-8 and a 5 MB
/// line. B rejects both, says so briefly on stderr (the 5 MB line is not echoed), keeps
/// reading stdin, and the call passes.
#[test]
fn bad_stdin_lines_are_rejected_and_reading_goes_on() {
    fn garbage_first(line: &str) -> Vec<u8> {
        let mut bytes = Vec::new();
        if line.contains(r#""type":"credentials""#) {
            bytes.extend_from_slice(b"\xff\xfe not utf-8\n");
            bytes.extend(std::iter::repeat_n(b'{', 5_000_000));
            bytes.push(b'\n');
            bytes.extend(std::iter::repeat_n(b'x', 1_000));
            bytes.push(b'\n');
        }
        bytes.extend_from_slice(line.as_bytes());
        bytes
    }
    let (a, b) = run_pair_with(&["--controlling"], &[], garbage_first);
    assert_passed(&a, &b);
    assert!(
        b.stderr.contains("not UTF-8"),
        "the bad line is reported: {}",
        b.stderr
    );
    assert!(b.stderr.contains("5000000 bytes"), "{}", b.stderr);
    assert!(b.stderr.contains("(1000 bytes in all)"), "{}", b.stderr);
    assert!(
        b.stderr.len() < 5_000,
        "no line echoed in full: {} bytes",
        b.stderr.len()
    );
}

/// Issue 14: B is given a wrong ICE password for A. A answers B's checks 401 (RFC 8489
/// §9.1.3); B fails within seconds, not at its timeout, and says the checks were answered
/// 401; A, whose own checks work, says at its timeout that B's checks failed integrity.
#[test]
fn a_wrong_ice_password_fails_fast_and_says_so() {
    fn wrong_password(line: &str) -> Vec<u8> {
        let mut v: Value = serde_json::from_str(line).unwrap();
        if v["type"] == "credentials" {
            v["pwd"] = Value::from("wrongwrongwrongwrongwrong");
        }
        v.to_string().into_bytes()
    }
    let started = Instant::now();
    let (a, b) = run_pair_with(
        &["--controlling", "--timeout", "12"],
        &["--timeout", "30"],
        wrong_password,
    );
    assert_eq!(b.code, Some(1), "{}", b.summary());
    let reason = b.result()["reason"].as_str().unwrap();
    assert!(reason.contains("ICE authentication failed"), "{reason}");
    assert!(reason.contains("answered 401 Unauthenticated"), "{reason}");
    assert!(reason.contains("credentials line"), "{reason}");
    assert_ne!(a.code, Some(0), "{}", a.summary());
    let reason = a.result()["reason"].as_str().unwrap();
    assert!(reason.contains("failed MESSAGE-INTEGRITY"), "{reason}");
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "B failed well before its 30 s timeout"
    );
}

/// Issue 14: a second, different `credentials` line is an ICE restart by the other side
/// (RFC 8445 §9): the peer restarts too and prints its new credentials, then its new
/// candidates.
#[test]
fn a_second_credentials_line_is_answered_with_new_credentials() {
    let mut peer = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(["peer", "--timeout", "20"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start harness peer");
    let mut stdin = peer.stdin.take().expect("piped stdin");
    let stdout = peer.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let Ok(v) = serde_json::from_str::<Value>(&line) else {
                break;
            };
            if tx.send(v).is_err() {
                break;
            }
        }
    });
    let next = |kind: &str| loop {
        let v = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("a line in time");
        if v["type"] == kind {
            return v;
        }
    };
    let first = next("credentials");
    next("end-of-candidates");
    for pwd in ["aaaaaaaaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbbbbbbbb"] {
        let line = format!(
            r#"{{"type":"credentials","ufrag":"r{}","pwd":"{pwd}"}}"#,
            &pwd[..3]
        );
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }
    let second = next("credentials");
    assert_ne!(second["ufrag"], first["ufrag"], "{second}");
    assert_ne!(second["pwd"], first["pwd"]);
    let candidate = next("candidate");
    assert!(
        candidate["candidate"]
            .as_str()
            .unwrap()
            .contains("typ host"),
        "{candidate}"
    );
    let _ = peer.kill();
    let _ = peer.wait();
}

#[test]
fn the_tokio_example_connects_two_peers_over_dtls() {
    // `harness/examples/tokio-peer.rs`: two Peers as tokio tasks over loopback UDP.
    let out = Command::new(common::example("tokio-peer"))
        .output()
        .expect("run the tokio-peer example");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("A: received \"hello from B\""), "{stdout}");
    assert!(stdout.contains("B: received \"hello from A\""), "{stdout}");
    assert!(stdout.contains("bytes of SRTP keys"), "{stdout}");
}

#[test]
fn eight_harness_peers_secure_their_sessions_on_one_sfu_port_over_real_udp() {
    // `harness/examples/sfu-udp.rs`: one UDP socket, ice_proto::endpoint with a DTLS
    // server per session, eight `harness peer` processes as its clients (issue 22).
    let out = Command::new(common::example("sfu-udp"))
        .args([env!("CARGO_BIN_EXE_harness"), "8"])
        .output()
        .expect("run the sfu-udp example");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.matches(": exit 0").count(), 8, "{stdout}");
    assert!(stdout.contains("SFU sessions secured 8"), "{stdout}");
}
