//! WebRTC with a real browser: headless Chromium (Debian's `chromium`) ↔ `harness peer --dtls`.
//!
//! Each run starts a fresh Chromium on a page that opens an `RTCPeerConnection` with a data
//! channel, our peer as a process, and a small HTTP signalling server that bridges the page's
//! SDP and our peer's JSON lines. Both DTLS roles, both ICE roles, raw-IP and mDNS host
//! candidates, trickle and complete offers, relay-only through our TURN server over UDP and
//! TCP, and a call that consent keeps up for a minute. Each case runs several times; every run
//! must pass. The relayed cases run the `turn-server` binary (the server people deploy) with
//! shared-secret "TURN REST API" credentials, over UDP, TCP and TLS (`turns:`), also with our
//! peer relay-only through the same server (relay to relay); with a wrong secret or an expired
//! username Chromium gets 401 and nothing else: no relayed candidate, no allocation, nothing
//! relayed (the server's metrics say so). What is asserted comes from both sides: Chromium's own view (ICE connection state,
//! the DTLS transport's state, `getStats`: DTLS version and cipher, SRTP profile, the selected
//! candidate pair) and our peer's events (DTLS role and completion, SRTP keys exported).
//!
//! Everything runs in a network namespace of its own that has only a loopback interface: the
//! test re-executes itself under `unshare -n`, so Chromium sees no other address and nothing
//! leaves the machine. Outside CI a missing Chromium, `unshare` or root skips the test with a
//! message; with `CI=true` it fails.

// A test of real processes over real sockets: it reads the clock and spawns threads.
#![allow(clippy::disallowed_methods)]

#[allow(dead_code)] // shared with the interop binaries; this one has no example to run
#[path = "../../../stun-proto/tests/common/mod.rs"]
mod common;
mod sdp;
mod signalling;
#[path = "../../../turn-server/tests/common/mod.rs"]
mod turn_server;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use common::Running;
use sdp::{Description, candidate_line};
use signalling::Signalling;

/// Set in the environment of the re-executed test, inside its network namespace.
const INSIDE: &str = "NAT_CORE_BROWSER_NETNS";
/// The namespace: loopback, and one multicast-capable interface of our own (one end of a veth
/// pair whose other end stays in the namespace too) that gives Chromium a non-loopback address
/// for its mDNS responder and names; then the test binary again.
const NAMESPACE_SETUP: &str = "ip link set lo up \
    && ip link add nat-core0 type veth peer name nat-core1 \
    && ip addr add 10.99.0.1/24 dev nat-core0 \
    && ip link set nat-core1 up \
    && ip link set nat-core0 multicast on up \
    && ip route add 224.0.0.0/4 dev nat-core0 \
    && ip route add default dev nat-core0 \
    && exec \"$0\" \"$@\"";
/// The address of that interface.
const NAMESPACE_IP: &str = "10.99.0.1";
/// Runs of each case.
const RUNS: usize = 5;
/// How many runs go at once (each is a browser and a peer).
const PARALLEL: usize = 3;
/// The TURN server's shared secret (what a deployment's web service signs usernames with).
const SECRET: &str = "browser-suite-secret";

/// Chromium relay-only through the `turn-server` binary.
#[derive(Clone, Copy, Debug)]
struct Turn {
    /// `udp` or `tcp` (`turn:…?transport=`), or `tls` (`turns:…?transport=tcp`).
    transport: &'static str,
    /// Our peer relay-only through the same server too: relay to relay.
    both_relayed: bool,
    /// What Chromium is given.
    credential: Credential,
}

/// A credential Chromium is given for the TURN server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Credential {
    /// Signed with the server's secret, expiring in an hour.
    Valid,
    /// Signed with another secret: 401 (`wrong_credentials`).
    WrongSecret,
    /// Signed with the server's secret, expired an hour ago: 401 (`expired`).
    Expired,
}

const RELAYED: Turn = Turn {
    transport: "udp",
    both_relayed: false,
    credential: Credential::Valid,
};

/// What a run does.
#[derive(Clone, Copy, Debug)]
struct Case {
    name: &'static str,
    /// Chromium makes the offer (and is ICE-controlling); otherwise our peer does.
    browser_offers: bool,
    /// Our `--setup`.
    setup: &'static str,
    /// Our DTLS role that follows from the setup values.
    our_role: &'static str,
    /// Candidates trickled after the description, or all in it.
    trickle: bool,
    /// Chromium's default `.local` host candidates instead of raw IPs.
    mdns: bool,
    /// Our host address signalled as a `.local` name our peer answers mDNS queries for.
    conceal: bool,
    /// Chromium relay-only through the `turn-server` binary.
    turn: Option<Turn>,
    /// Seconds our peer keeps the call up after ready.
    hold: u64,
    /// Our peer held to DTLS 1.2 (`--dtls12`). Otherwise it offers DTLS 1.3 as by default,
    /// and Chromium, which offers it with an X25519MLKEM768 share, must end up in DTLS 1.3
    /// with that group.
    dtls12: bool,
    runs: usize,
}

const BASE: Case = Case {
    name: "",
    browser_offers: true,
    setup: "active",
    our_role: "client",
    trickle: false,
    mdns: false,
    conceal: false,
    turn: None,
    hold: 2,
    dtls12: false,
    runs: RUNS,
};

const CASES: &[Case] = &[
    Case {
        name: "browser offers, we answer active (DTLS client)",
        ..BASE
    },
    Case {
        name: "browser offers, we answer passive (DTLS server), trickle",
        setup: "passive",
        our_role: "server",
        trickle: true,
        ..BASE
    },
    Case {
        name: "we offer actpass (ICE-controlling), browser answers active: we are DTLS server",
        browser_offers: false,
        setup: "actpass",
        our_role: "server",
        ..BASE
    },
    Case {
        name: "we offer active (ICE-controlling, DTLS client), trickle",
        browser_offers: false,
        setup: "active",
        our_role: "client",
        trickle: true,
        ..BASE
    },
    Case {
        name: "browser offers with mDNS host candidates, we answer passive",
        setup: "passive",
        our_role: "server",
        mdns: true,
        ..BASE
    },
    Case {
        name: "both sides' host candidates are mDNS names (Chromium resolves ours)",
        setup: "passive",
        our_role: "server",
        mdns: true,
        conceal: true,
        trickle: true,
        ..BASE
    },
    Case {
        name: "browser relay-only through turn-server over UDP, REST credentials, we answer passive",
        setup: "passive",
        our_role: "server",
        turn: Some(RELAYED),
        ..BASE
    },
    Case {
        name: "browser relay-only through turn-server over TCP, REST credentials",
        turn: Some(Turn {
            transport: "tcp",
            ..RELAYED
        }),
        ..BASE
    },
    Case {
        name: "browser relay-only through turn-server over TLS (turns:), REST credentials",
        turn: Some(Turn {
            transport: "tls",
            ..RELAYED
        }),
        ..BASE
    },
    Case {
        name: "browser and our peer both relay-only through turn-server: relay to relay",
        setup: "passive",
        our_role: "server",
        turn: Some(Turn {
            both_relayed: true,
            ..RELAYED
        }),
        ..BASE
    },
    Case {
        name: "browser with a wrong TURN secret: 401, no relayed candidate, nothing relayed",
        turn: Some(Turn {
            credential: Credential::WrongSecret,
            ..RELAYED
        }),
        runs: 2,
        ..BASE
    },
    Case {
        name: "browser with an expired TURN username over TCP: 401, nothing relayed",
        turn: Some(Turn {
            transport: "tcp",
            credential: Credential::Expired,
            ..RELAYED
        }),
        runs: 2,
        ..BASE
    },
    Case {
        name: "DTLS 1.2 (--dtls12): browser offers, we answer active (DTLS client)",
        dtls12: true,
        ..BASE
    },
    Case {
        name: "DTLS 1.2 (--dtls12): browser offers, we answer passive (DTLS server)",
        setup: "passive",
        our_role: "server",
        dtls12: true,
        ..BASE
    },
    Case {
        name: "DTLS 1.2 (--dtls12): we offer actpass, browser answers active (we are DTLS server)",
        browser_offers: false,
        setup: "actpass",
        our_role: "server",
        dtls12: true,
        ..BASE
    },
    Case {
        name: "a 60 s call kept up by consent, we are DTLS server",
        setup: "passive",
        our_role: "server",
        hold: 60,
        ..BASE
    },
];

#[test]
fn chromium() {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let skip = |why: String| {
        assert!(!ci, "{why}");
        eprintln!("SKIPPED: {why}");
    };
    if std::env::var_os(INSIDE).is_none() {
        for (binary, package) in [("chromium", "chromium"), ("unshare", "util-linux")] {
            if common::require(binary, package).is_none() {
                return;
            }
        }
        if !is_root() {
            return skip("a network namespace of its own needs root (unshare -n)".into());
        }
        // The same test again, alone in a network namespace of its own.
        let status = Command::new("unshare")
            .args(["-n", "--", "sh", "-c", NAMESPACE_SETUP])
            .arg(std::env::current_exe().expect("the test binary has a path"))
            .args(["chromium", "--exact", "--nocapture"])
            .env(INSIDE, "1")
            .status()
            .expect("run unshare");
        assert!(status.success(), "the browser suite failed: {status}");
        return;
    }
    let Some(turn) = TurnSetup::new() else {
        return;
    };
    // NAT_CORE_BROWSER_CASE=<words> runs only the cases whose name contains them.
    let only = std::env::var("NAT_CORE_BROWSER_CASE").unwrap_or_default();
    let jobs: Vec<(usize, (Case, usize))> = CASES
        .iter()
        .filter(|c| c.name.contains(only.as_str()))
        .flat_map(|c| (0..c.runs).map(move |i| (*c, i)))
        .enumerate()
        .collect();
    let started = Instant::now();
    let (tx, rx) = mpsc::channel();
    let mut queue = jobs.into_iter();
    let mut running = 0;
    let mut failures = Vec::new();
    let mut results: Vec<(Case, usize, Result<Summary, String>)> = Vec::new();
    loop {
        while running < PARALLEL {
            let Some((job, (case, run))) = queue.next() else {
                break;
            };
            let (tx, turn) = (tx.clone(), turn.clone());
            std::thread::spawn(move || {
                let _ = tx.send((case, run, run_case(&case, job, &turn)));
            });
            running += 1;
        }
        if running == 0 {
            break;
        }
        let (case, run, result) = rx.recv().expect("a run reports");
        running -= 1;
        if let Err(e) = &result {
            failures.push(format!("{} (run {run}): {e}", case.name));
        }
        results.push((case, run, result));
    }
    for case in CASES.iter().filter(|c| c.name.contains(only.as_str())) {
        println!("case: {}", case.name);
        for (_, run, result) in results.iter().filter(|r| r.0.name == case.name) {
            match result {
                Ok(s) => println!("  run {run}: pass  {s}"),
                Err(e) => println!("  run {run}: FAIL  {e}"),
            }
        }
    }
    turn.remove();
    println!(
        "{} runs in {:.1} s, {} failed",
        results.len(),
        started.elapsed().as_secs_f64(),
        failures.len()
    );
    assert!(failures.is_empty(), "failed runs:\n{}", failures.join("\n"));
}

/// What a passing run printed about itself.
struct Summary(String);

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Everything that arrives while a run goes on.
enum Input {
    Page(Value),
    Peer(Value),
    PeerExited(Option<i32>),
}

/// What the relayed cases need: the `turn-server` binary and a certificate for its TLS port.
#[derive(Clone, Debug)]
struct TurnSetup {
    binary: PathBuf,
    dir: PathBuf,
}

impl TurnSetup {
    /// Finds the binary (built by `cargo test --workspace`, or `cargo build -p turn-server`)
    /// and makes a self-signed certificate for [`NAMESPACE_IP`] with `openssl`; `None` (the
    /// test skipped, or failed in CI) without `openssl`.
    fn new() -> Option<Self> {
        let openssl = common::require("openssl", "openssl")?;
        let binary = common::built(Path::new("turn-server"));
        let dir = std::env::temp_dir().join(format!("nat-core-turns-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        let made = Command::new(openssl)
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
            .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"])
            .args(["-subj", "/CN=turn.test", "-addext"])
            .arg(format!("subjectAltName=IP:{NAMESPACE_IP}"))
            .arg("-keyout")
            .arg(dir.join("key.pem"))
            .arg("-out")
            .arg(dir.join("cert.pem"))
            .stderr(Stdio::null())
            .status()
            .expect("run openssl");
        assert!(made.success(), "openssl made no certificate");
        Some(Self { binary, dir })
    }

    /// Starts the server for run `job`: UDP and TCP on one port, TLS on another, relay ports
    /// of its own, two workers, metrics; peers at private addresses allowed (our peer's host
    /// candidate is in 10/8).
    fn start(&self, job: usize) -> Result<RunningTurn, String> {
        let (port, tls_port, metrics_port) = (free_port(), free_port(), free_port());
        let metrics = SocketAddr::from(([10, 99, 0, 1], metrics_port));
        let child = Command::new(&self.binary)
            .args(["--listen", &format!("{NAMESPACE_IP}:{port}")])
            .args(["--tls-listen", &format!("{NAMESPACE_IP}:{tls_port}")])
            .arg("--cert")
            .arg(self.dir.join("cert.pem"))
            .arg("--key")
            .arg(self.dir.join("key.pem"))
            .args(["--relay-ip", NAMESPACE_IP, "--workers", "2"])
            .args([
                "--relay-ports",
                &format!("{}-{}", 20000 + job * 100, 20099 + job * 100),
            ])
            .args(["--realm", "browser.test", "--auth-secret", SECRET])
            .args(["--allow-peers", "private"])
            .args(["--metrics", &metrics.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("start turn-server: {e}"))?;
        let process = Running(child);
        for p in [port, tls_port, metrics_port] {
            wait_for_port(p);
        }
        Ok(RunningTurn {
            _process: process,
            port,
            tls_port,
            metrics,
        })
    }

    fn remove(&self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A `turn-server` process of one run.
struct RunningTurn {
    _process: Running,
    port: u16,
    tls_port: u16,
    metrics: SocketAddr,
}

impl RunningTurn {
    /// Chromium's `iceServers` entry over `turn.transport`, with its credential.
    fn ice_servers(&self, turn: &Turn) -> Value {
        let url = match turn.transport {
            "tls" => format!("turns:{NAMESPACE_IP}:{}?transport=tcp", self.tls_port),
            transport => format!("turn:{NAMESPACE_IP}:{}?transport={transport}", self.port),
        };
        let (username, credential) = rest_credentials(turn.credential);
        json!([{"urls": url, "username": username, "credential": credential}])
    }

    /// A value of the server's metrics endpoint.
    fn metric(&self, name: &str) -> u64 {
        turn_server::metric(self.metrics, name)
    }

    /// Packets relayed each way: to peers, to clients.
    fn relayed(&self) -> (u64, u64) {
        (
            self.metric("turn_relayed_packets_total{direction=\"to_peer\"}"),
            self.metric("turn_relayed_packets_total{direction=\"to_client\"}"),
        )
    }
}

/// A username and password of the kind `credential` names.
fn rest_credentials(credential: Credential) -> (String, String) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    match credential {
        Credential::Valid => turn_server::rest_credentials(SECRET, "chromium", now + 3600),
        Credential::WrongSecret => turn_server::rest_credentials("not-it", "chromium", now + 3600),
        Credential::Expired => turn_server::rest_credentials(SECRET, "chromium", now - 3600),
    }
}

/// One run of a case (`job` numbers it among all runs): browser, peer, TURN server if needed,
/// signalling; the verdict.
fn run_case(case: &Case, job: usize, turn_setup: &TurnSetup) -> Result<Summary, String> {
    let (tx, rx) = mpsc::channel();
    let page_tx = tx.clone();
    let (page_in_tx, page_in_rx) = mpsc::channel();
    std::thread::spawn(move || {
        for message in page_in_rx {
            if page_tx.send(Input::Page(message)).is_err() {
                break;
            }
        }
    });
    let signalling = Signalling::start(page_in_tx);

    let server = case.turn.map(|_| turn_setup.start(job)).transpose()?;
    let ice_servers = match (&server, &case.turn) {
        (Some(server), Some(turn)) => server.ice_servers(turn),
        _ => json!([]),
    };
    if let (Some(server), Some(turn)) = (&server, &case.turn) {
        if turn.credential != Credential::Valid {
            return refused(case, job, turn, server, &signalling, &rx, &ice_servers);
        }
    }

    let mut peer_args = vec![
        "peer".to_owned(),
        "--dtls".into(),
        "--count".into(),
        "0".into(),
        "--setup".into(),
        case.setup.into(),
        "--hold".into(),
        case.hold.to_string(),
        "--timeout".into(),
        "20".into(),
        "--ip".into(),
        NAMESPACE_IP.into(),
    ];
    if !case.browser_offers {
        peer_args.push("--controlling".into());
    }
    if case.conceal {
        peer_args.push("--mdns-conceal".into());
    }
    if let Some(server) = server
        .as_ref()
        .filter(|_| case.turn.is_some_and(|t| t.both_relayed))
    {
        let (username, password) = rest_credentials(Credential::Valid);
        peer_args.extend([
            "--turn".into(),
            format!("{NAMESPACE_IP}:{}", server.port),
            username,
            password,
            "--relay-only".into(),
        ]);
    }
    if case.dtls12 {
        peer_args.push("--dtls12".into());
    }
    let mut peer = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(&peer_args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("start harness peer: {e}"))?;
    let mut peer_stdin = peer.stdin.take().ok_or("peer stdin")?;
    let peer_stdout = peer.stdout.take().ok_or("peer stdout")?;
    let peer_stderr = peer.stderr.take().ok_or("peer stderr")?;
    let peer_tx = tx.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(peer_stdout).lines() {
            let Ok(line) = line else { break };
            if let Ok(v) = serde_json::from_str(&line) {
                if peer_tx.send(Input::Peer(v)).is_err() {
                    break;
                }
            }
        }
    });
    let stderr_thread = std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(peer_stderr).lines().map_while(Result::ok) {
            lines.push(line);
        }
        lines
    });
    let mut peer = Running(peer);

    let (browser, profile) = start_browser(case, job, &signalling, ice_servers)?;

    let exit_tx = tx.clone();
    let verdict =
        bridge(case, &signalling, &mut peer_stdin, &rx, &mut peer, exit_tx).and_then(|summary| {
            match &server {
                Some(server) => relayed_through(server, summary),
                None => Ok(summary),
            }
        });
    drop(browser);
    drop(peer);
    let _ = std::fs::remove_dir_all(&profile);
    let stderr = stderr_thread.join().unwrap_or_default();
    verdict.map_err(|e| {
        let tail: Vec<_> = stderr.iter().rev().take(5).rev().cloned().collect();
        format!("{e}\n    peer stderr: {}", tail.join(" | "))
    })
}

/// Starts Chromium on the page for `case`, with `ice_servers`; returns it and its profile
/// folder (to remove once it is gone).
fn start_browser(
    case: &Case,
    job: usize,
    signalling: &Signalling,
    ice_servers: Value,
) -> Result<(Running, PathBuf), String> {
    let profile =
        std::env::temp_dir().join(format!("nat-core-chromium-{}-{job}", std::process::id()));
    let _ = std::fs::remove_dir_all(&profile);
    let config = json!({
        "offer": case.browser_offers,
        "trickle": case.trickle,
        "iceServers": ice_servers,
        "policy": if case.turn.is_some() { "relay" } else { "all" },
    });
    let url = format!(
        "http://{}/?cfg={}",
        signalling.address,
        percent_encode(&config.to_string())
    );
    let mut browser = Command::new("chromium");
    browser.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
    ]);
    // Every name fails at once (no network to wait on), but the addresses we use and `.local`
    // names (mDNS candidates): Chromium sends even IP literals of TURN-over-TCP servers
    // through these rules.
    browser.arg(format!(
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1 , \
         EXCLUDE {NAMESPACE_IP} , EXCLUDE *.local"
    ));
    if !case.mdns {
        browser.arg("--disable-features=WebRtcHideLocalIpsWithMdns");
    }
    if case.turn.is_some_and(|t| t.transport == "tls") {
        // The server's certificate is self-signed, made for this run.
        browser.arg("--ignore-certificate-errors");
    }
    let browser = browser
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(url)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("start chromium: {e}"))?;
    Ok((Running(browser), profile))
}

/// The server of a passing relayed run relayed the call's packets both ways.
fn relayed_through(server: &RunningTurn, summary: Summary) -> Result<Summary, String> {
    match server.relayed() {
        (0, _) | (_, 0) => Err(format!(
            "turn-server relayed {:?} packets (to peers, to clients): not the call's",
            server.relayed()
        )),
        (to_peer, to_client) => Ok(Summary(format!(
            "{summary} | turn-server relayed {to_peer} + {to_client}"
        ))),
    }
}

/// A run whose credential the server refuses: Chromium, relay-only, gathers no candidate (its
/// offer, sent once gathering is complete, has none), and the server counted 401 refusals of
/// `turn.credential`'s kind, holds no allocation and relayed nothing.
fn refused(
    case: &Case,
    job: usize,
    turn: &Turn,
    server: &RunningTurn,
    signalling: &Signalling,
    rx: &mpsc::Receiver<Input>,
    ice_servers: &Value,
) -> Result<Summary, String> {
    let (browser, profile) = start_browser(case, job, signalling, ice_servers.clone())?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let offer = loop {
        let wait = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(wait) {
            Ok(Input::Page(m)) if m["type"] == "offer" => break Ok(m),
            Ok(Input::Page(m)) if m["type"] == "error" => break Err(format!("page error: {m}")),
            Ok(_) => {}
            Err(_) => break Err("Chromium made no offer in 30 s".to_owned()),
        }
    };
    drop(browser);
    let _ = std::fs::remove_dir_all(&profile);
    let sdp = offer?["sdp"].as_str().unwrap_or_default().to_owned();
    let candidates: Vec<&str> = sdp
        .lines()
        .filter(|l| l.starts_with("a=candidate"))
        .collect();
    if !candidates.is_empty() {
        return Err(format!("Chromium gathered candidates: {candidates:?}"));
    }
    let reason = match turn.credential {
        Credential::Expired => "expired",
        _ => "wrong_credentials",
    };
    let refusals = server.metric(&format!("turn_auth_failures_total{{reason=\"{reason}\"}}"));
    let allocations = server.metric("turn_allocations");
    let relayed = server.relayed();
    if refusals == 0 || allocations != 0 || relayed != (0, 0) {
        return Err(format!(
            "turn-server counted {refusals} {reason} refusals, holds {allocations} allocations, \
             relayed {relayed:?}"
        ));
    }
    Ok(Summary(format!(
        "no candidate; turn-server: {refusals} x 401 ({reason}), 0 allocations, nothing relayed"
    )))
}

/// Signals between the page and the peer until both have said how the call went.
fn bridge(
    case: &Case,
    signalling: &Signalling,
    peer_stdin: &mut ChildStdin,
    rx: &mpsc::Receiver<Input>,
    peer: &mut Running,
    exit_tx: mpsc::Sender<Input>,
) -> Result<Summary, String> {
    let deadline = Instant::now() + Duration::from_secs(40 + case.hold);
    let mut ours = Description::default();
    let mut description_sent = false;
    let mut candidates_sent = 0;
    let mut eoc_sent = false;
    let mut peer_lines: Vec<Value> = Vec::new();
    let mut reports: Vec<Value> = Vec::new();
    let mut peer_exit = None;
    let mut stop_sent = false;
    let mut page_stopped = false;
    let mut exit_watch = Some(exit_tx);
    let mut send_peer = |line: &Value| {
        let _ = writeln!(peer_stdin, "{line}");
    };
    loop {
        if peer_exit.is_some() && page_stopped {
            break;
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(format!(
                "no verdict in time; peer exit {peer_exit:?}; last report {}; peer said {}",
                reports.last().map_or("none".into(), Value::to_string),
                tail(&peer_lines)
            ));
        }
        // Once the peer has ended, tell the page to report a last time and stop.
        if peer_exit.is_some() && !stop_sent {
            signalling.send(json!({"type": "stop"}));
            stop_sent = true;
        }
        if let Some(tx) = exit_watch.take_if(|_| peer_lines.iter().any(|l| l["type"] == "result")) {
            let code = peer.0.wait().ok().and_then(|s| s.code());
            let _ = tx.send(Input::PeerExited(code));
        }
        let Ok(input) = rx.recv_timeout(Duration::from_millis(200)) else {
            continue;
        };
        match input {
            Input::PeerExited(code) => peer_exit = Some(code),
            Input::Peer(line) => {
                ours.absorb(&line);
                peer_lines.push(line);
            }
            Input::Page(message) => match message["type"].as_str() {
                Some("offer" | "answer") => {
                    let theirs = Description::from_sdp(message["sdp"].as_str().unwrap_or_default());
                    for line in theirs.peer_lines() {
                        send_peer(&line);
                    }
                }
                Some("candidate") => match message["candidate"].as_str() {
                    Some(c) if !c.is_empty() => send_peer(&candidate_line(c)),
                    _ => send_peer(&json!({"type": "end-of-candidates"})),
                },
                Some("report") => reports.push(message),
                Some("stopped") => page_stopped = true,
                Some("error") => return Err(format!("page error: {}", message["message"])),
                _ => {}
            },
        }
        // Our description goes to the page once complete enough: with trickle as soon as
        // credentials and fingerprint are known, otherwise with every candidate. (When the
        // browser offers, the page reads it only after posting its offer.)
        let ready = ours.has_transport() && (case.trickle || ours.end_of_candidates);
        if !description_sent && ready {
            let kind = if case.browser_offers {
                "answer"
            } else {
                "offer"
            };
            let sdp = ours.to_sdp(!case.trickle);
            signalling.send(json!({"type": kind, "sdp": sdp}));
            description_sent = true;
            if !case.trickle {
                candidates_sent = ours.candidates.len();
                eoc_sent = ours.end_of_candidates;
            }
        }
        if description_sent && case.trickle {
            for c in &ours.candidates[candidates_sent..] {
                signalling.send(json!({"type": "candidate", "candidate": c}));
            }
            candidates_sent = ours.candidates.len();
            if ours.end_of_candidates && !eoc_sent {
                signalling.send(json!({"type": "candidate", "candidate": null}));
                eoc_sent = true;
            }
        }
    }
    verdict(case, peer_exit.flatten(), &peer_lines, &reports)
}

/// Checks both sides' view of a finished run.
fn verdict(
    case: &Case,
    code: Option<i32>,
    peer_lines: &[Value],
    reports: &[Value],
) -> Result<Summary, String> {
    let event = |signal: &str| {
        peer_lines
            .iter()
            .find(|l| l["type"] == "event" && l["signal"] == signal)
    };
    if code != Some(0) {
        return Err(format!("peer exit {code:?}: {}", tail(peer_lines)));
    }
    let role = event("dtls-started").map(|e| e["role"].clone());
    if role != Some(json!(case.our_role)) {
        return Err(format!(
            "our DTLS role {role:?}, expected {}",
            case.our_role
        ));
    }
    let connected = event("dtls-connected").ok_or("no dtls-connected event")?;
    let srtp_bytes = connected["srtp-keying-material-bytes"]
        .as_u64()
        .unwrap_or(0);
    if srtp_bytes == 0 {
        return Err(format!("no SRTP keys exported: {connected}"));
    }
    // Chromium's view while the call was up: the last report with DTLS connected.
    let up = reports
        .iter()
        .rev()
        .find(|r| r["dtls"] == "connected")
        .ok_or_else(|| {
            format!(
                "Chromium never reported DTLS connected; last report {}",
                reports.last().map_or("none".into(), Value::to_string)
            )
        })?;
    let ice = up["ice"].as_str().unwrap_or_default();
    if !matches!(ice, "connected" | "completed") {
        return Err(format!("Chromium's ICE state {ice} with DTLS connected"));
    }
    let t = &up["transport"];
    // getStats' tlsVersion is the wire version in hex: FEFD for DTLS 1.2, FEFC for 1.3.
    let (version, ours) = if case.dtls12 {
        ("FEFD", "DTLS 1.2")
    } else {
        ("FEFC", "DTLS 1.3")
    };
    if t["tlsVersion"] != version || t["dtlsCipher"].as_str().is_none_or(str::is_empty) {
        return Err(format!("Chromium's transport stats: {t}"));
    }
    if connected["version"] != ours {
        return Err(format!("our peer's DTLS version: {connected}"));
    }
    if !case.dtls12 && connected["group"] != "X25519MlKem768" {
        return Err(format!("our peer's key exchange group: {connected}"));
    }
    if t["srtpCipher"].as_str().is_none_or(str::is_empty) {
        return Err(format!("no SRTP profile in Chromium's stats: {t}"));
    }
    let their_role = if case.our_role == "client" {
        "server"
    } else {
        "client"
    };
    if t["dtlsRole"] != their_role {
        return Err(format!(
            "Chromium's DTLS role {}, expected {their_role}",
            t["dtlsRole"]
        ));
    }
    if case.mdns {
        // Chromium's host candidate is a `.local` name: our peer asked the group for it.
        let resolved = peer_lines.iter().any(|l| {
            l["type"] == "log"
                && l["msg"].as_str().is_some_and(|m| {
                    m.starts_with("mDNS: ") && m.ends_with(&format!(" is {NAMESPACE_IP}"))
                })
        });
        if !resolved {
            return Err(format!(
                "our peer did not resolve Chromium's mDNS name: {}",
                tail(peer_lines)
            ));
        }
    }
    let (local, remote) = (&up["local"], &up["remote"]);
    if case.conceal {
        // Chromium found our host candidate by resolving its name: had it not, it would know
        // our address only as the peer-reflexive source of our checks.
        if remote["type"] != "host" {
            return Err(format!(
                "Chromium did not resolve our mDNS name: remote {remote}"
            ));
        }
        let signalled: Vec<&str> = peer_lines
            .iter()
            .filter(|l| l["type"] == "candidate")
            .filter_map(|l| l["candidate"].as_str())
            .collect();
        if signalled.iter().any(|c| c.contains(NAMESPACE_IP)) {
            return Err(format!("our address leaked in a candidate: {signalled:?}"));
        }
    }
    if let Some(turn) = case.turn {
        // Relayed, and reached over the transport the case is about.
        if local["type"] != "relay" || local["relayProtocol"] != turn.transport {
            return Err(format!(
                "Chromium's selected local candidate is not relayed over {}: {local}",
                turn.transport
            ));
        }
        if turn.both_relayed && remote["type"] != "relay" {
            return Err(format!(
                "Chromium's selected remote is not relayed: {remote}"
            ));
        }
    }
    // A call held for a while: Chromium never saw it drop, and it closed when we closed.
    let history = up["history"].to_string();
    if history.contains("ice:disconnected") || history.contains("ice:failed") {
        return Err(format!(
            "Chromium's ICE went down during the call: {history}"
        ));
    }
    // From the first report with DTLS connected until our close_notify, every report Chromium
    // made saw the call up: no gap in the hold (our peer, which exited 0, held it `hold`
    // seconds after ready with consent answered both ways).
    let up_reports = reports
        .iter()
        .skip_while(|r| r["dtls"] != "connected")
        .take_while(|r| r["dtls"] == "connected");
    for r in up_reports {
        if !matches!(r["ice"].as_str(), Some("connected" | "completed")) {
            return Err(format!("Chromium's ICE was {} during the call", r["ice"]));
        }
    }
    let closed = reports
        .last()
        .is_some_and(|r| r["history"].to_string().contains("dtls:closed"));
    if !closed {
        return Err(format!(
            "our close_notify did not close Chromium's DTLS transport: {}",
            reports
                .last()
                .map_or("none".into(), |r| r["history"].to_string())
        ));
    }
    let pair = event("new-selected-pair").map_or("-".into(), |p| {
        format!("{} <-> {}", short(&p["local"]), short(&p["remote"]))
    });
    Ok(Summary(format!(
        "{} {} srtp {} | ours {} {} {} (SRTP {srtp_bytes} B) | Chromium {} {}:{} -> {} {}:{} | our pair {pair}",
        t["tlsVersion"].as_str().unwrap_or("?"),
        t["dtlsCipher"].as_str().unwrap_or("?"),
        t["srtpCipher"].as_str().unwrap_or("?"),
        case.our_role,
        connected["version"].as_str().unwrap_or("?"),
        connected["group"].as_str().unwrap_or("?"),
        local["type"].as_str().unwrap_or("?"),
        local["address"].as_str().unwrap_or("?"),
        local["port"],
        remote["type"].as_str().unwrap_or("?"),
        remote["address"].as_str().unwrap_or("?"),
        remote["port"],
    )))
}

/// The candidate type and address of a candidate line.
fn short(candidate: &Value) -> String {
    let c = candidate.as_str().unwrap_or_default();
    let f: Vec<&str> = c.split_whitespace().collect();
    match (f.get(4), f.get(5), f.get(7)) {
        (Some(ip), Some(port), Some(kind)) => format!("{kind} {ip}:{port}"),
        _ => c.to_owned(),
    }
}

/// The last lines the peer printed, for a failure message.
fn tail(lines: &[Value]) -> String {
    let n = lines.len().saturating_sub(4);
    lines[n..]
        .iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join(" | ")
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn free_port() -> u16 {
    // A port free for both UDP and TCP (the TURN server listens on both).
    loop {
        let udp = UdpSocket::bind((NAMESPACE_IP, 0)).expect("bind a probe socket");
        let port = udp.local_addr().expect("local address").port();
        if TcpListener::bind((NAMESPACE_IP, port)).is_ok() {
            return port;
        }
    }
}

fn wait_for_port(port: u16) {
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        if std::net::TcpStream::connect((NAMESPACE_IP, port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(1).map(|uid| uid == "0"))
            .unwrap_or(false)
    })
}
