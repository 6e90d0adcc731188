//! The servers a case runs between the agents: coturn, our `stun-server` and `turn-server`
//! examples, on ports no other case of this binary uses.

use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::common::{Running, example, require};
use crate::real_nat::{PUBLIC_SERVER, Side, Topology};
use crate::{RUNS, Servers, Setup, TIMEOUT, missing};

/// Relayed ports each TURN server gets above its listening port.
const RELAY_PORTS: u16 = 40;
/// The TURN password of every user (`user0`, `user1`, … one per run).
const TURN_PASSWORD: &str = "interop-secret";

/// The servers of one batch, killed when it ends (before its namespaces go, if it has any).
pub struct ServerSet {
    _processes: Vec<Running>,
    stun: Option<SocketAddr>,
    turn: Option<SocketAddr>,
    topology: Option<Topology>,
}

impl ServerSet {
    pub fn start(setup: Setup) -> Self {
        let ip = setup.ip;
        let (process, address) = match setup.servers {
            Servers::None => {
                return Self {
                    _processes: Vec::new(),
                    stun: None,
                    turn: None,
                    topology: None,
                };
            }
            Servers::BehindNats { a, b } => {
                let topology = Topology::build(a, b).expect("checked by servers_available");
                let address = SocketAddr::new(PUBLIC_SERVER, 3478);
                let coturn = topology.in_public(&coturn_command(PUBLIC_SERVER, 3478));
                let process = spawn_quiet(coturn, "turnserver");
                topology.wait_until_answering(address);
                return Self {
                    _processes: vec![process],
                    stun: Some(address),
                    turn: Some(address),
                    topology: Some(topology),
                };
            }
            Servers::StunCoturn | Servers::TurnCoturn { .. } => start_coturn(ip),
            Servers::StunOurs => {
                let port = free_ports(ip, 0);
                let address = SocketAddr::new(ip, port);
                let child =
                    Command::new(our_example("stun-server").expect("checked by servers_available"))
                        .arg(address.to_string())
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .spawn()
                        .expect("start stun-server");
                (Running(child), address)
            }
            Servers::TurnOurs { .. } => start_our_turn_server(ip),
        };
        wait_until_answering(address);
        let relay = setup.is_relay();
        Self {
            _processes: vec![process],
            stun: (!relay).then_some(address),
            turn: relay.then_some(address),
            topology: None,
        }
    }

    /// The namespaces the agents run in, when the setup puts them behind NATs.
    pub fn topology(&self) -> Option<&Topology> {
        self.topology.as_ref()
    }

    /// The command-line options of the agent on `side` in run `run` (each run its own TURN
    /// user).
    pub fn agent_args(
        &self,
        setup: Setup,
        side: Side,
        controlling: bool,
        run: usize,
    ) -> Vec<String> {
        let ip = match self.topology {
            Some(_) => side.host_ip(),
            None => setup.ip,
        };
        let mut args: Vec<String> = vec!["--ip".into(), ip.to_string()];
        if setup.ice_tcp {
            args.push("--ice-tcp".into());
        }
        args.extend(["--timeout".into(), TIMEOUT.into()]);
        if controlling {
            args.push("--controlling".into());
        }
        if let Some(stun) = self.stun {
            args.extend(["--stun".into(), stun.to_string()]);
        }
        if let Some(turn) = self.turn {
            let tcp = matches!(
                setup.servers,
                Servers::TurnCoturn { tcp: true } | Servers::TurnOurs { tcp: true }
            );
            args.extend([
                "--turn".into(),
                turn.to_string(),
                format!("user{run}"),
                TURN_PASSWORD.into(),
                "--turn-transport".into(),
                if tcp { "tcp" } else { "udp" }.into(),
            ]);
            if setup.is_relay() {
                args.push("--relay-only".into());
            }
        }
        args
    }
}

/// The `--user` arguments for every run's TURN user.
fn turn_users() -> Vec<String> {
    (0..RUNS)
        .flat_map(|i| ["--user".into(), format!("user{i}:{TURN_PASSWORD}")])
        .collect()
}

/// coturn on `ip` (STUN and TURN on one port, UDP and TCP), loopback peers allowed.
fn start_coturn(ip: IpAddr) -> (Running, SocketAddr) {
    let port = free_ports(ip, RELAY_PORTS);
    let process = spawn_quiet(coturn_command(ip, port), "turnserver");
    (process, SocketAddr::new(ip, port))
}

/// coturn's command line for `ip:port` (STUN and TURN, UDP and TCP), relaying on the ports
/// just above, loopback peers allowed.
fn coturn_command(ip: IpAddr, port: u16) -> Command {
    let turnserver = require("turnserver", "coturn").expect("checked by servers_available");
    let ip_s = ip.to_string();
    let mut command = Command::new(turnserver);
    command
        .args(["-n", "--lt-cred-mech", "--realm", "interop.test"])
        .args(turn_users())
        .args(["--fingerprint", "--no-tls", "--no-dtls", "--no-cli"])
        .arg("--allow-loopback-peers")
        .args(["-L", &ip_s, "--relay-ip", &ip_s])
        .args(["--listening-port", &port.to_string()])
        .args(["--min-port", &(port + 1).to_string()])
        .args(["--max-port", &(port + RELAY_PORTS).to_string()])
        .args(["--log-file", "stdout", "--simple-log"])
        .arg("--pidfile")
        .arg(std::env::temp_dir().join(format!("ice-interop-coturn-{ip}-{port}.pid")));
    command
}

/// Starts `command` with its output discarded.
fn spawn_quiet(mut command: Command, what: &str) -> Running {
    let child = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start {what}: {e}"));
    Running(child)
}

/// Our `turn-server` example on `ip` (UDP and TCP on one port), loopback peers allowed.
fn start_our_turn_server(ip: IpAddr) -> (Running, SocketAddr) {
    let port = free_ports(ip, RELAY_PORTS);
    let listen = SocketAddr::new(ip, port);
    let child = Command::new(our_example("turn-server").expect("checked by servers_available"))
        .args(["--listen", &listen.to_string()])
        .args(["--relay-ip", &ip.to_string()])
        .args(["--ports", &format!("{}-{}", port + 1, port + RELAY_PORTS)])
        .args(["--realm", "interop.test", "--allow-loopback-peers"])
        .args(turn_users())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start turn-server");
    (Running(child), listen)
}

/// A stun-proto example, which `cargo test --workspace` builds (`cargo test -p harness` does
/// not): its path, or `None` after the message of a missing peer.
pub fn our_example(name: &str) -> Option<PathBuf> {
    let exe = std::env::current_exe().expect("the test binary has a path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("tests run from target/<profile>/deps");
    if profile_dir.join("examples").join(name).is_file() {
        return Some(example(name));
    }
    missing(&format!(
        "the stun-proto example `{name}` is not built: run `cargo test --workspace`, or \
         `cargo build -p stun-proto --examples` first"
    ));
    None
}

/// Waits until the server at `address` answers a STUN Binding request over UDP (5 s at most).
fn wait_until_answering(address: SocketAddr) {
    let bind = SocketAddr::new(address.ip(), 0);
    let socket = UdpSocket::bind(bind).expect("bind a probe socket");
    socket
        .set_read_timeout(Some(Duration::from_millis(50)))
        .expect("read timeout");
    // A Binding request: type, length 0, magic cookie, transaction id.
    let mut request = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42];
    request.extend_from_slice(b"ice-interop!");
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut buf = [0u8; 1500];
    while Instant::now() < deadline {
        let _ = socket.send_to(&request, address);
        if let Ok((n, _)) = socket.recv_from(&mut buf) {
            if n >= 20 && buf[8..20] == request[8..20] {
                return;
            }
        }
    }
    panic!("the server at {address} did not answer a Binding request within 5 s");
}

/// A port free for UDP and TCP on `ip`, with the `span` ports above it free for UDP, that no
/// other case of this binary was given.
fn free_ports(ip: IpAddr, span: u16) -> u16 {
    static GIVEN: Mutex<Vec<(u16, u16)>> = Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    for _ in 0..500 {
        let probe = UdpSocket::bind((ip, 0)).expect("bind a probe socket");
        let port = probe.local_addr().expect("probe address").port();
        drop(probe);
        let Some(top) = port.checked_add(span) else {
            continue;
        };
        if given.iter().any(|&(low, high)| port <= high && low <= top) {
            continue;
        }
        let udp_free = (port..=top).all(|p| UdpSocket::bind((ip, p)).is_ok());
        if udp_free && TcpListener::bind((ip, port)).is_ok() {
            given.push((port, top));
            return port;
        }
    }
    panic!("no free port range on {ip}");
}
