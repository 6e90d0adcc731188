//! `harness peer`: the [`Peer`] over a real UDP socket, signalling as JSON lines on stdin and
//! stdout, so two peers — or ours and any program that speaks the same lines — can be wired
//! together by a script or by hand.
//!
//! This is the only place of the harness that reads the clock and touches sockets: the Peer
//! is the same sans-IO machine the simulator drives; this loop feeds it datagrams from the
//! socket, lines from stdin and the real time, and prints what it says.

// A real-UDP driver: it reads the real clock, binds a socket and reads stdin on a thread.
#![allow(clippy::disallowed_methods)]

use std::io::{BufRead, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::builder::{PossibleValuesParser, TypedValueParser};
use dtls_proto::crypto::RustCrypto;
use dtls_proto::{CertificateParams, DtlsCertificate, ProtocolVersion};
use harness::peer::{
    Event, Peer, PeerConfig, PeerDtlsConfig, PeerState, Setup, Signal, event_json,
};
use ice_proto::{AgentConfig, ComponentState, Event as IceEvent, MdnsEvent, TurnServer};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use serde_json::json;
use stun_proto::TransportProtocol;
use stun_proto::turn::StreamFramer;

use crate::cli;
use crate::ice_tcp_io::IceTcpIo;
use crate::mdns_socket::Mdns;

/// How long we wait for the other side's `data-done` after ours.
const GRACE: Duration = Duration::from_secs(2);
/// How long ICE-TCP connections stay open after a passed run, so that the other side reads
/// our `data-done` line (signalling, slower than the transport) before it sees them close —
/// as an application hangs up in signalling before it drops the call's connections.
const TCP_LINGER: Duration = Duration::from_secs(1);
/// Unanswered pings are sent again this often.
const PING_RESEND: Duration = Duration::from_secs(1);
/// The longest the loop sleeps on the socket before looking at stdin again.
const POLL: Duration = Duration::from_millis(10);
/// The longest the loop waits on the UDP socket while a TCP connection to the TURN server
/// must be read too.
const POLL_WITH_TCP: Duration = Duration::from_millis(2);
/// How long connecting to the TURN server over TCP (and the TLS handshake) may take.
const TCP_CONNECT: Duration = Duration::from_secs(5);
/// The trust anchors `--turn-transport tls` uses without `--turn-ca`: Debian's bundle.
const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
/// Random bytes after `ping <i> `.
const PING_RANDOM: usize = 16;
/// The longest stdin line taken; a longer one is skipped to its end and rejected.
const MAX_LINE: usize = 64 * 1024;
/// How much of a rejected line is echoed to stderr.
const ECHO_MAX: usize = 160;
/// How long checks may meet only authentication failures (401 answers, integrity failures)
/// with no valid pair before the run fails and says so — libnice gives up in 5–7 s.
const AUTH_PATIENCE: Duration = Duration::from_secs(5);

/// The options of `harness peer`.
#[derive(Clone, Debug, clap::Args)]
#[command(after_help = AFTER_HELP)]
pub struct PeerArgs {
    /// Be the ICE-controlling agent (the offerer; DTLS `actpass` unless --setup says otherwise).
    #[arg(long)]
    controlling: bool,
    /// The address of the one UDP socket (port chosen by the system); IPv6 works (`::1`).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1")]
    ip: IpAddr,
    /// A STUN server for server-reflexive candidates, of the family of --ip.
    #[arg(long, value_name = "HOST:PORT")]
    stun: Option<String>,
    /// A TURN server and its long-term credentials, for relayed candidates.
    #[arg(long, num_args = 3, value_names = ["HOST:PORT", "USER", "PASS"])]
    turn: Vec<String>,
    /// How to reach the TURN server (tcp: RFC 8656 §3.1 framing over one TCP connection;
    /// tls: the same inside TLS, the server's certificate checked for the HOST of --turn).
    #[arg(long, value_name = "udp|tcp|tls", value_enum, default_value_t = TurnTransport::Udp, requires_if("tcp", "turn"), requires_if("tls", "turn"))]
    turn_transport: TurnTransport,
    /// With --turn-transport tls: trust the CA certificates of this PEM file (e.g. a test
    /// CA) instead of the system's (/etc/ssl/certs/ca-certificates.crt).
    #[arg(long, value_name = "FILE", requires = "turn")]
    turn_ca: Option<PathBuf>,
    /// Offer only the relayed candidate.
    #[arg(long, requires = "turn")]
    relay_only: bool,
    /// Also ICE-TCP (RFC 6544): listen on a TCP port of --ip and offer active and passive
    /// TCP host candidates; pairs with the other side's TCP candidates are checked over
    /// connections this peer opens or accepts.
    #[arg(long)]
    ice_tcp: bool,
    /// How many pings to send once ready (0: only answer the other side's).
    #[arg(long, value_name = "N", default_value_t = 5, allow_negative_numbers = true, value_parser = clap::value_parser!(u32).range(0..=MAX_PINGS))]
    count: u32,
    /// Run DTLS over the selected pair and send the data over it (a fresh self-signed ECDSA
    /// P-256 certificate per run).
    #[arg(long)]
    dtls: bool,
    /// Override the signalled DTLS role: actpass, active (DTLS client) or passive (server).
    /// Default: actpass when --controlling, else active.
    #[arg(long, value_name = "SETUP", requires = "dtls", value_parser = PossibleValuesParser::new(["actpass", "active", "passive"]).try_map(|s| s.parse::<Setup>()))]
    setup: Option<Setup>,
    /// Speak DTLS 1.2 only. Default: offer DTLS 1.3 (RFC 9147, X25519MLKEM768 first) and
    /// DTLS 1.2: 1.3 when the other side offers it, 1.2 otherwise.
    #[arg(long, requires = "dtls")]
    dtls12: bool,
    /// Conceal our host address as browsers do: signal the host candidate by a random
    /// `<uuid>.local` name and answer mDNS queries for it (draft-ietf-mmusic-mdns-ice-candidates).
    #[arg(long)]
    mdns_conceal: bool,
    /// Keep the call up (pings answered, consent kept) this many seconds after ready.
    #[arg(long, value_name = "SECONDS", default_value = "0", allow_negative_numbers = true, value_parser = cli::seconds)]
    hold: Duration,
    /// How long the run may take to a passed data check, in seconds.
    #[arg(long, value_name = "SECONDS", default_value = "30", allow_negative_numbers = true, value_parser = cli::seconds)]
    timeout: Duration,
}

/// The most pings `--count` takes.
const MAX_PINGS: i64 = 100_000;

/// What `harness peer --help` says after the options.
const AFTER_HELP: &str = "stdout: JSON lines (credentials, candidate, end-of-candidates, dtls, event, log, data-done, result)
stdin: the other peer's credentials, candidate, end-of-candidates, dtls and data-done lines
exit: 0 all pings echoed, 1 ICE/DTLS failed or data incomplete, 2 timeout or bad arguments";

/// How `harness peer` reaches its TURN server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum TurnTransport {
    Udp,
    Tcp,
    Tls,
}

impl PeerArgs {
    /// The TURN server, user and password, if --turn was given.
    fn turn(&self) -> Option<(&str, &str, &str)> {
        match self.turn.as_slice() {
            [server, user, password] => Some((server, user, password)),
            _ => None,
        }
    }

    /// Whether the TURN server is reached over a stream (TCP, or TLS over TCP).
    fn turn_tcp(&self) -> bool {
        matches!(self.turn_transport, TurnTransport::Tcp | TurnTransport::Tls)
    }

    /// The TLS configuration and server name for `--turn-transport tls`.
    fn turn_tls(&self) -> Result<Option<(Arc<rustls::ClientConfig>, String)>, String> {
        if self.turn_transport != TurnTransport::Tls {
            if self.turn_ca.is_some() {
                return Err("--turn-ca needs --turn-transport tls".into());
            }
            return Ok(None);
        }
        let Some((server, _, _)) = self.turn() else {
            return Ok(None);
        };
        let ca = self
            .turn_ca
            .as_deref()
            .unwrap_or(Path::new(SYSTEM_CA_BUNDLE));
        Ok(Some((tls_config(ca)?, host_of(server).to_owned())))
    }
}

/// Resolves `HOST:PORT` to an address of `ip`'s family.
fn resolve(what: &str, host_port: &str, ip: IpAddr) -> Result<SocketAddr, String> {
    host_port
        .to_socket_addrs()
        .map_err(|e| format!("{what} {host_port}: {e}"))?
        .find(|a| a.is_ipv4() == ip.is_ipv4())
        .ok_or(format!(
            "{what} {host_port}: no address of the family of {ip}"
        ))
}

/// Prints one JSON line on stdout.
fn emit(value: &serde_json::Value) {
    let mut out = std::io::stdout().lock();
    // stdout gone (the other side of a pipe exited): nothing left to tell anyone.
    let _ = writeln!(out, "{value}");
    let _ = out.flush();
}

fn log(msg: impl Into<String>) {
    emit(&json!({"type": "log", "msg": msg.into()}));
}

/// The data check: our pings and the echoes we have seen.
struct DataCheck {
    /// The suffix after `ping ` of each of our pings, and whether it came back.
    pings: Vec<(Vec<u8>, bool)>,
    last_sent: Option<Instant>,
    done_at: Option<Instant>,
    remote_done: bool,
}

impl DataCheck {
    fn new(count: u32, rng: &mut ChaCha20Rng) -> Self {
        let pings = (0..count)
            .map(|i| {
                let mut suffix = format!("{i} ").into_bytes();
                let mut random = [0u8; PING_RANDOM];
                rng.fill_bytes(&mut random);
                suffix.extend_from_slice(&random);
                (suffix, false)
            })
            .collect();
        Self {
            pings,
            last_sent: None,
            done_at: None,
            remote_done: false,
        }
    }

    fn echoed(&self) -> usize {
        self.pings.iter().filter(|p| p.1).count()
    }

    /// Sends the pings not yet echoed, once at ready and then every [`PING_RESEND`].
    fn send(&mut self, now: Instant, peer: &mut Peer) {
        if self
            .last_sent
            .is_some_and(|at| now.saturating_duration_since(at) < PING_RESEND)
        {
            return;
        }
        self.last_sent = Some(now);
        if self.pings.is_empty() && self.done_at.is_none() {
            // --count 0: nothing to check, only the other side's pings to answer.
            self.done_at = Some(now);
            emit(&Signal::DataDone.to_json());
        }
        for (suffix, _) in self.pings.iter().filter(|p| !p.1) {
            let mut datagram = b"ping ".to_vec();
            datagram.extend_from_slice(suffix);
            if let Err(e) = peer.handle_send(now, &datagram) {
                eprintln!("peer: ping not sent: {e}");
            }
        }
    }

    /// Answers a ping, counts a pong.
    fn receive(&mut self, now: Instant, peer: &mut Peer, data: &[u8]) {
        if let Some(suffix) = data.strip_prefix(b"ping ") {
            let mut pong = b"pong ".to_vec();
            pong.extend_from_slice(suffix);
            if let Err(e) = peer.handle_send(now, &pong) {
                eprintln!("peer: pong not sent: {e}");
            }
        } else if let Some(suffix) = data.strip_prefix(b"pong ") {
            if let Some(p) = self.pings.iter_mut().find(|p| p.0 == suffix) {
                p.1 = true;
            }
            if self.done_at.is_none() && self.echoed() == self.pings.len() {
                self.done_at = Some(now);
                log(format!("all {} pings echoed", self.pings.len()));
                emit(&Signal::DataDone.to_json());
            }
        } else {
            eprintln!("peer: {} bytes of data that is no ping or pong", data.len());
        }
    }
}

/// Authentication failures the agent saw: a wrong password on either side shows as checks
/// answered 401 (the other side refuses the password we have for it) or as its checks
/// failing integrity (it has a wrong one for us).
#[derive(Default)]
struct AuthWatch {
    /// Since when there were such failures and no valid pair.
    since: Option<Instant>,
}

impl AuthWatch {
    /// The failure to report once they lasted [`AUTH_PATIENCE`] without a valid pair.
    fn check(&mut self, now: Instant, peer: &Peer) -> Option<String> {
        let connected = peer
            .agent()
            .stream(peer.stream())
            .and_then(|v| v.component_state(1))
            .is_some_and(|s| matches!(s, ComponentState::Connected | ComponentState::Ready));
        let reason = auth_failures(peer);
        if connected || reason.is_none() {
            self.since = None;
            return None;
        }
        let since = *self.since.get_or_insert(now);
        let waited = now.saturating_duration_since(since);
        reason
            .filter(|_| waited >= AUTH_PATIENCE)
            .map(|r| format!("ICE authentication failed: {r}; no pair worked in {waited:?}"))
    }
}

/// What the agent's counters say about the passwords, if anything.
fn auth_failures(peer: &Peer) -> Option<String> {
    let stats = peer.agent().stats();
    let mut what = Vec::new();
    if stats.unauthenticated_answers > 0 {
        what.push(format!(
            "{} of our checks were answered 401 Unauthenticated (the other side refuses the \
             ice-pwd we were given for it: check its credentials line)",
            stats.unauthenticated_answers
        ));
    }
    if stats.bad_integrity > 0 {
        what.push(format!(
            "{} STUN messages from the other side failed MESSAGE-INTEGRITY (it has a wrong \
             ice-pwd for us)",
            stats.bad_integrity
        ));
    }
    (!what.is_empty()).then(|| what.join("; "))
}

/// At most [`ECHO_MAX`] bytes of `line` (cut at a character boundary), with how much is
/// left out.
fn echo(line: &str) -> String {
    if line.len() <= ECHO_MAX {
        return line.to_owned();
    }
    let cut = (0..=ECHO_MAX)
        .rev()
        .find(|&i| line.is_char_boundary(i))
        .unwrap_or(0);
    let head = line.get(..cut).unwrap_or_default();
    format!("{head}… ({} bytes in all)", line.len())
}

/// Which of the other side's signals arrived, to say what is missing at a timeout.
#[derive(Default)]
struct Heard {
    credentials: bool,
    candidates: usize,
    end_of_candidates: bool,
    dtls: bool,
}

impl Heard {
    fn note(&mut self, signal: &Signal) {
        match signal {
            Signal::Credentials(_) => self.credentials = true,
            Signal::Candidate(_) => self.candidates += 1,
            Signal::EndOfCandidates => self.end_of_candidates = true,
            Signal::Dtls { .. } => self.dtls = true,
            _ => {}
        }
    }

    /// What the other side never sent, as the tail of a timeout's reason.
    fn missing(&self, dtls: bool) -> String {
        let mut missing = Vec::new();
        if !self.credentials {
            missing.push("credentials");
        }
        if self.candidates == 0 {
            missing.push("candidates");
        }
        if !self.end_of_candidates {
            missing.push("end-of-candidates");
        }
        if dtls && !self.dtls {
            missing.push("a dtls line (was it started with --dtls?)");
        }
        if missing.is_empty() {
            format!("; {} remote candidates, none worked yet", self.candidates)
        } else {
            format!("; nothing on stdin of: {}", missing.join(", "))
        }
    }
}

/// When ICE has a working pair but DTLS has not completed: what the handshake got, as the
/// tail of a timeout's reason.
fn dtls_stall(peer: &Peer) -> Option<String> {
    let view = peer.agent().stream(peer.stream())?;
    let pair = view
        .selected_pair(1)
        .or_else(|| view.pairs().filter(|p| p.valid).max_by_key(|p| p.priority))?;
    if peer.is_dtls_done() {
        return None;
    }
    let path = format!(
        "{} {} -> {} {}",
        pair.local.kind, pair.local.address, pair.remote.kind, pair.remote.address
    );
    let how = if pair.nominated { "selected" } else { "found" };
    Some(match (peer.dtls_role(), peer.dtls_stats()) {
        (Some(role), Some(stats)) => format!(
            "; ICE {how} a pair ({path}) but the DTLS handshake stalled as {}: \
             {} records received, {} malformed, {} handshake fragments dropped \
             (unparsable, inconsistent or beyond the reassembly bounds), {} flights resent",
            role.as_str(),
            stats.records_received,
            stats.records_malformed,
            stats.fragments_dropped,
            stats.flight_retransmits
        ),
        _ => format!(
            "; ICE {how} a pair ({path}) but DTLS never started: no dtls line (fingerprint, \
             setup) from the other side"
        ),
    })
}

/// Runs `harness peer` to its exit code.
pub fn run(o: &PeerArgs) -> ExitCode {
    match drive(o) {
        Ok((code, status, reason)) => {
            emit(&json!({"type": "result", "status": status, "reason": reason}));
            ExitCode::from(code)
        }
        Err(e) => {
            eprintln!("peer: {e}");
            emit(&json!({"type": "result", "status": "fail", "reason": e}));
            ExitCode::from(2)
        }
    }
}

/// The loop; returns the exit code, status and reason.
fn drive(o: &PeerArgs) -> Result<(u8, &'static str, String), String> {
    let mut seed = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut seed))
        .map_err(|e| format!("/dev/urandom: {e}"))?;
    let mut rng = ChaCha20Rng::from_seed(seed);
    let socket = UdpSocket::bind((o.ip, 0)).map_err(|e| format!("bind {}: {e}", o.ip))?;
    let base = socket.local_addr().map_err(|e| e.to_string())?;
    let stun_servers = match &o.stun {
        Some(s) => vec![resolve("--stun", s, o.ip)?],
        None => Vec::new(),
    };
    let turn_servers = match o.turn() {
        Some((server, username, password)) => vec![TurnServer {
            server: resolve("--turn", server, o.ip)?,
            transport: if o.turn_tcp() {
                TransportProtocol::Tcp
            } else {
                TransportProtocol::Udp
            },
            username: username.to_owned(),
            password: password.to_owned(),
        }],
        None => Vec::new(),
    };
    let mut ice_tcp = match o.ice_tcp {
        true => Some(IceTcpIo::bind(o.ip).map_err(|e| format!("ICE-TCP listen on {}: {e}", o.ip))?),
        false => None,
    };
    let dtls = if o.dtls {
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|e| e.to_string())?
            .as_secs();
        // Valid from an hour ago, against clock skew between the two hosts.
        let params = CertificateParams::new(unix.saturating_sub(3600));
        let certificate = DtlsCertificate::generate(&RustCrypto, &mut rng, &params)
            .map_err(|e| format!("certificate: {e}"))?;
        Some(PeerDtlsConfig {
            certificate,
            setup: o.setup.unwrap_or(if o.controlling {
                Setup::ActPass
            } else {
                Setup::Active
            }),
            provider: &RustCrypto,
            versions: if o.dtls12 {
                vec![ProtocolVersion::Dtls12]
            } else {
                vec![ProtocolVersion::Dtls13, ProtocolVersion::Dtls12]
            },
        })
    } else {
        None
    };
    let config = PeerConfig {
        ice: AgentConfig {
            controlling: o.controlling,
            stun_servers,
            turn_servers,
            ..AgentConfig::default()
        },
        bases: vec![base],
        tcp_bases: ice_tcp.iter().map(IceTcpIo::base).collect(),
        relay_only: o.relay_only,
        dtls,
    };
    let tls = o.turn_tls()?;
    let mut tcp = match (config.ice.turn_servers.first(), o.turn_tcp()) {
        (Some(t), true) => Some(TurnTcp::connect(t.server, tls)?),
        _ => None,
    };
    let mut check = DataCheck::new(o.count, &mut rng);
    let concealed_name = o.mdns_conceal.then(|| ice_proto::random_name(&mut rng));
    let mut peer = Peer::new(config, rng).map_err(|e| e.to_string())?;
    let mut mdns = Mdns::new(o.ip);
    if let Some(name) = concealed_name {
        mdns.conceal(&name)?;
        log(format!(
            "mDNS: our host address {} is signalled as {name}",
            o.ip
        ));
        peer.set_concealed_host(o.ip, name);
    }
    let lines = stdin_lines();
    let started = Instant::now();
    log(format!("bound {base}"));
    peer.handle_start(started);
    let mut buf = vec![0u8; 65_536];
    let mut stdin_open = true;
    let mut heard = Heard::default();
    let mut ready_at = None;
    let mut auth = AuthWatch::default();
    loop {
        let now = Instant::now();
        send_all(&mut peer, &socket, &mut tcp, &mut ice_tcp);
        while let Some(s) = peer.poll_signal() {
            emit(&s.to_json());
        }
        let mut data = Vec::new();
        let mut end = None;
        while let Some(e) = peer.poll_event() {
            if let Some(line) = event_json(&e) {
                emit(&line);
            }
            match e {
                Event::Data(d) => data.push(d),
                Event::Ice(ice) => {
                    if let IceEvent::ResolveHostname { name, .. } = *ice {
                        if let Err(e) = mdns.resolve(now, &name) {
                            log(format!("mDNS: cannot resolve {name}: {e}"));
                            peer.handle_resolved_hostname(now, &name, None);
                        }
                    }
                }
                Event::StateChanged(PeerState::Ready) => {
                    ready_at.get_or_insert(now);
                    log(format!("ready: sending {} pings", o.count));
                }
                Event::StateChanged(PeerState::Failed(error)) => {
                    end = Some((1, "fail", error.to_string()));
                }
                Event::StateChanged(PeerState::Finished) if check.done_at.is_none() => {
                    let reason = "the peer closed before our pings were echoed";
                    end = Some((1, "fail", reason.into()));
                }
                _ => {}
            }
        }
        if let Some(end) = end {
            // The fatal alert (a wrong fingerprint, say) still reaches the other side.
            send_all(&mut peer, &socket, &mut tcp, &mut ice_tcp);
            return Ok(end);
        }
        for d in data {
            check.receive(now, &mut peer, &d);
        }
        for resolution in mdns.poll(now) {
            match resolution {
                MdnsEvent::Resolved { name, ip } => {
                    log(format!("mDNS: {name} is {ip}"));
                    peer.handle_resolved_hostname(now, &name, Some(ip));
                }
                MdnsEvent::NotFound { name } => {
                    log(format!(
                        "mDNS: no answer for {name}; its candidates are dropped"
                    ));
                    peer.handle_resolved_hostname(now, &name, None);
                }
                _ => {}
            }
        }
        if *peer.state() == PeerState::Ready {
            check.send(now, &mut peer);
        }
        if let Some(done) = check.done_at {
            // With --hold the call stays up (pings answered, consent kept) that long after ready.
            let held =
                ready_at.is_none_or(|at: Instant| now.saturating_duration_since(at) >= o.hold);
            if held && (check.remote_done || now.saturating_duration_since(done) >= GRACE) {
                peer.handle_close(now);
                // The close_notify goes out; the state change to finished is reported.
                send_all(&mut peer, &socket, &mut tcp, &mut ice_tcp);
                while let Some(e) = peer.poll_event() {
                    if let Some(line) = event_json(&e) {
                        emit(&line);
                    }
                }
                let how = if check.remote_done {
                    "the other side's data-done arrived"
                } else {
                    "no data-done from the other side within the grace period"
                };
                let reason = format!("all {} pings echoed; {how}", o.count);
                if ice_tcp.is_some() {
                    std::thread::sleep(TCP_LINGER);
                }
                return Ok((0, "pass", reason));
            }
        }
        if let Some(reason) = auth.check(now, &peer) {
            return Ok((1, "fail", reason));
        }
        if check.done_at.is_none() && now.saturating_duration_since(started) >= o.timeout {
            let auth = auth_failures(&peer).map_or(String::new(), |r| format!("; {r}"));
            return Ok(if *peer.state() == PeerState::Ready {
                let reason = format!(
                    "data incomplete: {} of {} pings echoed in {:?}{auth}",
                    check.echoed(),
                    o.count,
                    o.timeout
                );
                (1, "fail", reason)
            } else {
                let why = dtls_stall(&peer).unwrap_or_else(|| heard.missing(o.dtls));
                let reason = format!(
                    "timeout after {:?} in state {}{why}{auth}",
                    o.timeout,
                    peer.state()
                );
                (2, "fail", reason)
            });
        }
        // Lines from the other peer.
        while stdin_open {
            match lines.try_recv() {
                Ok(Input::Line(line)) => match Signal::parse_line(&line) {
                    Ok(Some(Signal::DataDone)) => check.remote_done = true,
                    Ok(Some(signal)) => {
                        heard.note(&signal);
                        peer.handle_signal(now, signal);
                    }
                    Ok(None) => {}
                    Err(e) => eprintln!("peer: ignored line ({e}): {}", echo(&line)),
                },
                Ok(Input::NotUtf8(len)) => {
                    eprintln!("peer: ignored a line of {len} bytes: not UTF-8");
                }
                Ok(Input::TooLong(len)) => {
                    eprintln!("peer: ignored a line of {len} bytes: longer than {MAX_LINE}");
                }
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => stdin_open = false,
            }
        }
        // Wait for a datagram until the peer's next deadline (at most POLL, for stdin).
        let poll = if tcp.is_some() || ice_tcp.is_some() {
            POLL_WITH_TCP
        } else {
            POLL
        };
        let wait = peer
            .poll_timeout()
            .map_or(poll, |at| at.saturating_duration_since(Instant::now()))
            .clamp(Duration::from_millis(1), poll);
        socket
            .set_read_timeout(Some(wait))
            .map_err(|e| e.to_string())?;
        match socket.recv_from(&mut buf) {
            Ok((n, source)) => {
                let now = Instant::now();
                let payload = buf.get(..n).unwrap_or_default();
                peer.handle_datagram(now, TransportProtocol::Udp, source, base, payload);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            // ICMP port unreachable surfaces as ConnectionRefused on some systems: not fatal.
            Err(e) => eprintln!("peer: recv: {e}"),
        }
        if let Some(t) = &mut tcp {
            for frame in t.receive() {
                let now = Instant::now();
                peer.handle_datagram(now, TransportProtocol::Tcp, t.server, base, &frame);
            }
        }
        if let Some(io) = &mut ice_tcp {
            let tcp_base = io.base();
            for (source, frame) in io.receive() {
                let now = Instant::now();
                peer.handle_datagram(now, TransportProtocol::Tcp, source, tcp_base, &frame);
            }
        }
        let now = Instant::now();
        if peer.poll_timeout().is_some_and(|at| at <= now) {
            peer.handle_timeout(now);
        }
    }
}

/// Puts what the peer queued on the wire: UDP datagrams on the socket, TCP payloads on the
/// connection to the TURN server or, from the ICE-TCP base, on ICE-TCP connections.
fn send_all(
    peer: &mut Peer,
    socket: &UdpSocket,
    tcp: &mut Option<TurnTcp>,
    ice_tcp: &mut Option<IceTcpIo>,
) {
    while let Some(t) = peer.poll_transmit() {
        match (t.transport, tcp.as_mut(), ice_tcp.as_mut()) {
            (TransportProtocol::Udp, ..) => {
                if let Err(e) = socket.send_to(&t.payload, t.destination) {
                    eprintln!("peer: send to {}: {e}", t.destination);
                }
            }
            (TransportProtocol::Tcp, Some(tcp), _) if tcp.server == t.destination => {
                tcp.send(&t.payload);
            }
            (TransportProtocol::Tcp, _, Some(io)) if io.base() == t.source => {
                io.send(t.destination, &t.payload);
            }
            _ => eprintln!(
                "peer: dropped a datagram for {:?} {}",
                t.transport, t.destination
            ),
        }
    }
}

/// The client configuration for TURN over TLS: rustls with the aws-lc-rs provider (TLS 1.2
/// and 1.3), trusting the CA certificates of the PEM file `ca`.
fn tls_config(ca: &Path) -> Result<Arc<rustls::ClientConfig>, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let what = |e: &dyn std::fmt::Display| format!("--turn-ca {}: {e}", ca.display());
    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_file_iter(ca).map_err(|e| what(&e))? {
        roots
            .add(certificate.map_err(|e| what(&e))?)
            .map_err(|e| what(&e))?;
    }
    if roots.is_empty() {
        return Err(what(&"no PEM certificate in it"));
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The HOST of `HOST:PORT` (an IPv6 address without its brackets).
fn host_of(host_port: &str) -> &str {
    let host = host_port
        .rsplit_once(':')
        .map_or(host_port, |(host, _)| host);
    host.trim_start_matches('[').trim_end_matches(']')
}

/// The byte stream to the TURN server: plain TCP, or TLS over it (RFC 8656 §3.1; the
/// sans-IO client sees a TCP server either way).
enum TurnStream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Read for TurnStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            TurnStream::Plain(s) => s.read(buf),
            TurnStream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for TurnStream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            TurnStream::Plain(s) => s.write(buf),
            TurnStream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            TurnStream::Plain(s) => s.flush(),
            TurnStream::Tls(s) => s.flush(),
        }
    }
}

/// The TCP (or TLS) connection to the TURN server (RFC 8656 §3.1) and the framer that cuts
/// its byte stream into STUN messages and ChannelData (§12.5).
struct TurnTcp {
    server: SocketAddr,
    stream: Option<TurnStream>,
    framer: StreamFramer,
}

impl TurnTcp {
    /// Connects to `server`, and with `tls` (its configuration and the name the
    /// certificate must carry) completes the TLS handshake before anything is sent.
    fn connect(
        server: SocketAddr,
        tls: Option<(Arc<rustls::ClientConfig>, String)>,
    ) -> Result<Self, String> {
        let mut socket = TcpStream::connect_timeout(&server, TCP_CONNECT)
            .map_err(|e| format!("--turn {server} over TCP: {e}"))?;
        let _ = socket.set_nodelay(true);
        let local = socket.local_addr().map_err(|e| e.to_string())?;
        let stream = match tls {
            None => TurnStream::Plain(socket),
            Some((config, name)) => {
                let server_name = rustls::pki_types::ServerName::try_from(name.clone())
                    .map_err(|e| format!("--turn {name}: {e}"))?;
                let mut session = rustls::ClientConnection::new(config, server_name)
                    .map_err(|e| format!("TLS to {server}: {e}"))?;
                socket
                    .set_read_timeout(Some(TCP_CONNECT))
                    .map_err(|e| e.to_string())?;
                while session.is_handshaking() {
                    session
                        .complete_io(&mut socket)
                        .map_err(|e| format!("TLS handshake with {server} ({name}): {e}"))?;
                }
                let version = session
                    .protocol_version()
                    .map_or_else(|| "?".to_owned(), |v| format!("{v:?}"));
                log(format!(
                    "TLS to the TURN server {server} ({name}): {version}"
                ));
                TurnStream::Tls(Box::new(rustls::StreamOwned::new(session, socket)))
            }
        };
        // Reads wait at most a millisecond: the loop also serves the UDP socket and stdin.
        let socket = match &stream {
            TurnStream::Plain(s) => s,
            TurnStream::Tls(s) => s.get_ref(),
        };
        socket
            .set_read_timeout(Some(Duration::from_millis(1)))
            .map_err(|e| e.to_string())?;
        log(format!(
            "connected to the TURN server {server} over TCP from {local}"
        ));
        Ok(Self {
            server,
            stream: Some(stream),
            framer: StreamFramer::default(),
        })
    }

    fn send(&mut self, bytes: &[u8]) {
        if let Some(stream) = &mut self.stream {
            if let Err(e) = stream.write_all(bytes) {
                eprintln!("peer: TCP to the TURN server: {e}");
                self.stream = None;
            }
        }
    }

    /// The frames that arrived; the connection is dropped when it breaks (the agent then
    /// sees its allocation fail or expire).
    fn receive(&mut self) -> Vec<Vec<u8>> {
        let Some(stream) = &mut self.stream else {
            return Vec::new();
        };
        let mut buf = [0u8; 4096];
        match stream.read(&mut buf) {
            Ok(0) => {
                eprintln!("peer: the TURN server closed the TCP connection");
                self.stream = None;
                return Vec::new();
            }
            Ok(n) => {
                if let Err(e) = self.framer.push(buf.get(..n).unwrap_or_default()) {
                    eprintln!("peer: TCP from the TURN server: {e}");
                    self.stream = None;
                    return Vec::new();
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => {
                eprintln!("peer: TCP from the TURN server: {e}");
                self.stream = None;
                return Vec::new();
            }
        }
        let mut frames = Vec::new();
        loop {
            match self.framer.next_frame() {
                Ok(Some(frame)) => frames.push(frame.bytes().to_vec()),
                Ok(None) => break,
                Err(e) => {
                    eprintln!("peer: TCP from the TURN server: {e}");
                    self.stream = None;
                    break;
                }
            }
        }
        frames
    }
}

/// A line of stdin, or why one was not taken.
#[derive(Debug, PartialEq, Eq)]
enum Input {
    /// A line (without its line ending).
    Line(String),
    /// A line that is not UTF-8, of this many bytes.
    NotUtf8(usize),
    /// A line longer than [`MAX_LINE`], of this many bytes (the rest was skipped, not kept).
    TooLong(usize),
}

/// Lines of stdin, read on a thread; the channel closes at end of input or a read error. A
/// bad line is reported and reading goes on.
fn stdin_lines() -> mpsc::Receiver<Input> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        while let Ok(Some(input)) = read_line(&mut stdin) {
            if tx.send(input).is_err() {
                break;
            }
        }
    });
    rx
}

/// The next line of `reader`, keeping at most [`MAX_LINE`] bytes of it; `None` at the end.
fn read_line(reader: &mut impl BufRead) -> std::io::Result<Option<Input>> {
    let mut line = Vec::new();
    let mut len = 0usize;
    let mut started = false;
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            if !started {
                return Ok(None);
            }
            break;
        }
        started = true;
        let newline = buf.iter().position(|&b| b == b'\n');
        let chunk = buf.get(..newline.unwrap_or(buf.len())).unwrap_or_default();
        len += chunk.len();
        let room = MAX_LINE.saturating_sub(line.len());
        line.extend_from_slice(chunk.get(..chunk.len().min(room)).unwrap_or_default());
        let consumed = newline.map_or(buf.len(), |i| i + 1);
        reader.consume(consumed);
        if newline.is_some() {
            break;
        }
    }
    if len > MAX_LINE {
        return Ok(Some(Input::TooLong(len)));
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Ok(Some(match String::from_utf8(line) {
        Ok(line) => Input::Line(line),
        Err(e) => Input::NotUtf8(e.into_bytes().len()),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `harness peer` with these arguments, as clap parses them.
    #[derive(Debug, clap::Parser)]
    struct Peer {
        #[command(flatten)]
        args: PeerArgs,
    }

    fn parse(s: &str) -> Result<PeerArgs, String> {
        use clap::Parser;
        let argv = std::iter::once("peer").chain(s.split_whitespace());
        Peer::try_parse_from(argv)
            .map(|p| p.args)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn every_option_parses() {
        let o = parse(
            "--controlling --ip ::1 --stun stun.invalid:3478 --turn [::1]:3478 u p \
             --turn-transport tcp --relay-only --count 9 --dtls --setup passive --hold 60 \
             --mdns-conceal --timeout 2.5",
        )
        .unwrap();
        assert_eq!(o.setup, Some(Setup::Passive));
        assert!(o.mdns_conceal);
        assert_eq!(o.hold, Duration::from_secs(60));
        assert!(o.controlling && o.relay_only && o.dtls && o.turn_tcp());
        assert_eq!(o.ip, "::1".parse::<IpAddr>().unwrap());
        assert_eq!(o.stun.as_deref(), Some("stun.invalid:3478"));
        assert_eq!(o.turn(), Some(("[::1]:3478", "u", "p")));
        assert_eq!(o.count, 9);
        assert_eq!(o.timeout, Duration::from_millis(2500));
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let o = parse("").unwrap();
        assert!(!o.controlling && !o.dtls && !o.relay_only && !o.turn_tcp());
        assert_eq!((o.turn(), &o.stun, o.setup), (None, &None, None));
        assert_eq!(o.count, 5);
        assert_eq!(o.ip, IpAddr::from([127, 0, 0, 1]));
        assert_eq!(
            (o.hold, o.timeout),
            (Duration::ZERO, Duration::from_secs(30))
        );
    }

    #[test]
    fn bad_arguments_say_what_is_wrong() {
        let error = |s: &str| parse(s).unwrap_err();
        let says = |s: &str, what: &[&str]| {
            let e = error(s);
            for w in what {
                assert!(e.contains(w), "{s}: {e}");
            }
        };
        says("--turn a:1 u", &["--turn", "3 values"]);
        says("--relay-only", &["--turn"]);
        says("--turn-transport tcp", &["--turn"]);
        says("--turn-transport sctp", &["sctp", "udp, tcp, tls"]);
        says("--turn-transport tls", &["--turn"]);
        says("--turn-ca ca.pem", &["--turn"]);
        says("--ip nowhere", &["--ip", "nowhere"]);
        says("--timeout -1", &["--timeout", "-1", "negative"]);
        says("--hold nan", &["--hold", "nan", "NaN"]);
        says("--hold inf", &["--hold", "inf", "too large"]);
        says("--count -1", &["--count", "-1"]);
        says("--count 1000000000", &["--count", "1000000000"]);
        says(
            "--dtls --setup sideways",
            &["sideways", "actpass, active, passive"],
        );
        says("--setup passive", &["--dtls"]);
        says("--frobnicate", &["--frobnicate"]);
        says("--dlts", &["--dtls"]);
    }

    #[test]
    fn stdin_lines_survive_bad_bytes_and_huge_lines() {
        let mut input = b"{\"type\":\"a\"}\r\n\xff\xfe bad\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', 5_000_000));
        input.extend_from_slice(b"\n\nlast");
        let mut reader = std::io::BufReader::with_capacity(1024, &input[..]);
        let lines: Vec<Input> = std::iter::from_fn(|| read_line(&mut reader).unwrap()).collect();
        assert_eq!(
            lines,
            [
                Input::Line("{\"type\":\"a\"}".into()),
                Input::NotUtf8(6),
                Input::TooLong(5_000_000),
                Input::Line(String::new()),
                Input::Line("last".into()),
            ]
        );
    }

    #[test]
    fn rejected_lines_are_echoed_in_part() {
        assert_eq!(echo("short"), "short");
        let long = "é".repeat(1_000);
        let echoed = echo(&long);
        assert!(echoed.len() < ECHO_MAX + 40, "{echoed}");
        assert!(echoed.ends_with("… (2000 bytes in all)"), "{echoed}");
    }

    #[test]
    fn tls_options_and_their_errors() {
        let o =
            parse("--turn localhost:5349 u p --turn-transport tls --turn-ca /nowhere.pem").unwrap();
        assert!(o.turn_tcp());
        let e = o.turn_tls().err().unwrap();
        assert!(e.contains("--turn-ca /nowhere.pem"), "{e}");
        let o = parse("--turn 127.0.0.1:3478 u p --turn-ca ca.pem").unwrap();
        assert!(o.turn_tls().err().unwrap().contains("--turn-transport tls"));
        assert_eq!(host_of("[::1]:5349"), "::1");
        assert_eq!(host_of("turn.example.org:5349"), "turn.example.org");
    }

    #[test]
    fn resolve_picks_the_family_of_the_bound_address() {
        let v6 = "::1".parse().unwrap();
        assert_eq!(
            resolve("--stun", "[::1]:3478", v6).unwrap(),
            "[::1]:3478".parse().unwrap()
        );
        let v4 = IpAddr::from([127, 0, 0, 1]);
        assert!(resolve("--stun", "[::1]:3478", v4).is_err());
    }
}
