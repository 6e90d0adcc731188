//! ICE interop: `harness peer` against libnice and aioice, the agents behind GStreamer's
//! webrtcbin and Janus, and behind aiortc (issue 14).
//!
//! Each case wires our peer and a third-party agent together on loopback, their stdout lines
//! to each other's stdin (the JSON lines of docs/peer.md), and runs them [`RUNS`] times. The
//! third party is driven by a small Python script in this folder that speaks the same lines:
//! `libnice_peer.py` (Debian's libnice10 through python3-gi, two calls through ctypes; with
//! libnice's default aggressive nomination, and as `libnice-regular` with the regular
//! nomination GStreamer's webrtcbin asks for) and `aioice_peer.py` (aioice from PyPI, pinned
//! in `.ci/interop-requirements.txt`). It sends each ping once, when its agent is ready, and
//! never again, as third parties do in the wild: a datagram our peer drops is a failed run.
//!
//! The cases: our peer controlling and controlled, both controlling and both controlled (role
//! conflicts, RFC 8445 §7.3.1.1), with host candidates; server-reflexive gathering through
//! coturn and through our `stun-server` example; relay-only over UDP and over TCP through
//! coturn and through our `turn-server` example; host candidates on `::1`; ICE-TCP (RFC 6544)
//! against libnice with its UDP turned off, so that TCP carries the call; and behind real
//! Linux NATs (`real_nat`: network namespaces the test builds, nftables `masquerade` for a
//! port-restricted cone and `masquerade random` for a symmetric NAT, with a home router's
//! firewall, coturn on the public side for STUN and TURN), where the agents choose the path
//! and it must be the one NAT theory predicts: direct between two cones, through the relay
//! when a symmetric NAT is in the way. Each case also runs
//! libnice against libnice in the same setup, once per setup and role pattern, and prints the
//! time to the selected pair of both next to each other. The libnice↔libnice runs are cases of
//! their own too: through our TURN server they test the server.
//!
//! Every run starts its own processes; each case starts its own servers (on ports no other case
//! uses), and each run of it logs in to the TURN server as a user of its own, so a case's runs
//! do not share an allocation quota. Cases run in parallel as the test harness schedules them.
//!
//! Outside CI a missing third party skips the case with a message; with `CI=true` it fails.
//! Each case prints one line on stderr, uncaptured, with its runs and times, and appends it to
//! `ice_interop/results.jsonl` in the target's test directory.

// A test of real processes over real sockets: it reads the clock, spawns processes and
// threads to pump their pipes, and binds probe sockets to find free ports.
#![allow(clippy::disallowed_methods)]

// The helpers stun-proto's interop tests share (finding real peers, examples, child
// processes); a helper added there for them is no dead code here.
#[allow(dead_code)]
#[path = "../../../stun-proto/tests/common/mod.rs"]
mod common;
mod real_nat;
mod run;
mod servers;

use std::collections::HashMap;
use std::fmt;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use common::require;
use real_nat::{NatKind, Side};
use run::{Run, run_pair};
use serde_json::json;
use servers::{ServerSet, our_example};

/// Runs of each case.
const RUNS: usize = 5;
/// The `--timeout` of each process, in seconds: a run that is not done by then has failed.
const TIMEOUT: &str = "10";
/// How long the test waits for a run's processes before killing them.
const PATIENCE: Duration = Duration::from_secs(25);

const V4: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const V6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);

/// The ICE agents a run puts together.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Agent {
    Ours,
    /// libnice with its default, aggressive nomination.
    Libnice,
    /// libnice with regular nomination, as GStreamer's webrtcbin creates it.
    LibniceRegular,
    Aioice,
}

impl Agent {
    /// The libnice that runs against itself as this third party's reference.
    fn reference(self) -> Agent {
        match self {
            Agent::LibniceRegular => Agent::LibniceRegular,
            _ => Agent::Libnice,
        }
    }
}

impl fmt::Display for Agent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Agent::Ours => "ours",
            Agent::Libnice => "libnice",
            Agent::LibniceRegular => "libnice-regular",
            Agent::Aioice => "aioice",
        })
    }
}

/// Which server stands between the agents, if any.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Servers {
    /// Host candidates only.
    None,
    /// A STUN server for server-reflexive candidates: coturn.
    StunCoturn,
    /// A STUN server for server-reflexive candidates: our `stun-server` example.
    StunOurs,
    /// Relay only, through coturn, reached over TCP when `true`.
    TurnCoturn { tcp: bool },
    /// Relay only, through our `turn-server` example, reached over TCP when `true`.
    TurnOurs { tcp: bool },
    /// Each agent behind a real Linux NAT of its own (network namespaces, nftables), coturn
    /// on the public side for STUN and TURN over UDP: the agents choose the path.
    BehindNats { a: NatKind, b: NatKind },
}

/// Where a case runs: the servers and the address family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Setup {
    servers: Servers,
    ip: IpAddr,
    /// ICE-TCP (RFC 6544): ours with `--ice-tcp`, the third party with UDP off.
    ice_tcp: bool,
}

impl Setup {
    const HOST: Setup = Setup {
        servers: Servers::None,
        ip: V4,
        ice_tcp: false,
    };
    const SRFLX_COTURN: Setup = Setup {
        servers: Servers::StunCoturn,
        ip: V4,
        ice_tcp: false,
    };
    const SRFLX_OURS: Setup = Setup {
        servers: Servers::StunOurs,
        ip: V4,
        ice_tcp: false,
    };
    const RELAY_UDP_COTURN: Setup = Setup {
        servers: Servers::TurnCoturn { tcp: false },
        ip: V4,
        ice_tcp: false,
    };
    const RELAY_TCP_COTURN: Setup = Setup {
        servers: Servers::TurnCoturn { tcp: true },
        ip: V4,
        ice_tcp: false,
    };
    const RELAY_UDP_OURS: Setup = Setup {
        servers: Servers::TurnOurs { tcp: false },
        ip: V4,
        ice_tcp: false,
    };
    const RELAY_TCP_OURS: Setup = Setup {
        servers: Servers::TurnOurs { tcp: true },
        ip: V4,
        ice_tcp: false,
    };
    const IPV6_HOST: Setup = Setup {
        servers: Servers::None,
        ip: V6,
        ice_tcp: false,
    };
    const ICE_TCP: Setup = Setup {
        servers: Servers::None,
        ip: V4,
        ice_tcp: true,
    };
    const NAT_CONE_CONE: Setup = Setup::behind_nats(NatKind::Cone, NatKind::Cone);
    const NAT_CONE_SYMMETRIC: Setup = Setup::behind_nats(NatKind::Cone, NatKind::Symmetric);
    const NAT_SYMMETRIC_SYMMETRIC: Setup =
        Setup::behind_nats(NatKind::Symmetric, NatKind::Symmetric);

    const fn behind_nats(a: NatKind, b: NatKind) -> Setup {
        Setup {
            servers: Servers::BehindNats { a, b },
            ip: V4,
            ice_tcp: false,
        }
    }

    /// Relay only: the agents gather relayed candidates and nothing else.
    fn is_relay(&self) -> bool {
        matches!(
            self.servers,
            Servers::TurnCoturn { .. } | Servers::TurnOurs { .. }
        )
    }

    /// Whether the selected pair must go through the relay: relay-only, or behind NATs where
    /// a symmetric one keeps hole punching from working (RFC 4787 §4.1: a new mapping per
    /// destination, which the other side's address-and-port-dependent filter drops, and two
    /// symmetric NATs never meet).
    fn expects_relay(&self) -> bool {
        match self.servers {
            Servers::BehindNats { a, b } => a == NatKind::Symmetric || b == NatKind::Symmetric,
            _ => self.is_relay(),
        }
    }
}

impl fmt::Display for Setup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let servers = match self.servers {
            Servers::None => "host",
            Servers::StunCoturn => "srflx through coturn",
            Servers::StunOurs => "srflx through our stun-server",
            Servers::TurnCoturn { tcp: false } => "relay-only UDP through coturn",
            Servers::TurnCoturn { tcp: true } => "relay-only TCP through coturn",
            Servers::TurnOurs { tcp: false } => "relay-only UDP through our turn-server",
            Servers::TurnOurs { tcp: true } => "relay-only TCP through our turn-server",
            Servers::BehindNats { a, b } => {
                return write!(f, "behind real NATs: {} ↔ {}", a.name(), b.name());
            }
        };
        let servers = if self.ice_tcp {
            "ICE-TCP host (the third party's UDP off)"
        } else {
            servers
        };
        match self.ip {
            IpAddr::V4(_) => f.write_str(servers),
            IpAddr::V6(_) => write!(f, "{servers} on ::1"),
        }
    }
}

/// The ICE roles the two agents are started in: A is ours (or libnice in a baseline).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Roles {
    AControlling,
    AControlled,
    BothControlling,
    BothControlled,
}

impl Roles {
    fn controlling(self) -> (bool, bool) {
        match self {
            Roles::AControlling => (true, false),
            Roles::AControlled => (false, true),
            Roles::BothControlling => (true, true),
            Roles::BothControlled => (false, false),
        }
    }

    /// The same pattern for libnice↔libnice: which side is A does not matter there.
    fn baseline(self) -> Roles {
        match self {
            Roles::AControlled => Roles::AControlling,
            other => other,
        }
    }

    fn describe(self, a: Agent, b: Agent) -> String {
        let (ca, cb) = self.controlling();
        let role = |c: bool| if c { "controlling" } else { "controlled" };
        format!("{a} {} ↔ {b} {}", role(ca), role(cb))
    }
}

// ---------------------------------------------------------------------------------------
// The cases.

/// One test per case: `$third` against ours in `$setup` with `$roles` (A is ours).
macro_rules! cases {
    ($($(#[$attr:meta])* $name:ident: $third:ident, $setup:ident, $roles:ident;)*) => {$(
        $(#[$attr])*
        #[test]
        fn $name() {
            case(Agent::$third, Setup::$setup, Roles::$roles);
        }
    )*};
}

/// One test per libnice↔libnice setup, the reference the cases print their times next to.
macro_rules! baselines {
    ($($(#[$attr:meta])* $name:ident: $libnice:ident, $setup:ident, $roles:ident;)*) => {$(
        $(#[$attr])*
        #[test]
        fn $name() {
            baseline_case(Agent::$libnice, Setup::$setup, Roles::$roles);
        }
    )*};
}

cases! {
    libnice_host_ours_controlling: Libnice, HOST, AControlling;
    libnice_host_ours_controlled: Libnice, HOST, AControlled;
    libnice_host_both_controlling: Libnice, HOST, BothControlling;
    libnice_host_both_controlled: Libnice, HOST, BothControlled;
    libnice_srflx_coturn_ours_controlling: Libnice, SRFLX_COTURN, AControlling;
    libnice_srflx_coturn_ours_controlled: Libnice, SRFLX_COTURN, AControlled;
    libnice_srflx_ours_ours_controlling: Libnice, SRFLX_OURS, AControlling;
    libnice_srflx_ours_ours_controlled: Libnice, SRFLX_OURS, AControlled;
    libnice_relay_udp_coturn_ours_controlling: Libnice, RELAY_UDP_COTURN, AControlling;
    libnice_relay_udp_coturn_ours_controlled: Libnice, RELAY_UDP_COTURN, AControlled;
    libnice_relay_tcp_coturn_ours_controlling: Libnice, RELAY_TCP_COTURN, AControlling;
    libnice_relay_tcp_coturn_ours_controlled: Libnice, RELAY_TCP_COTURN, AControlled;
    libnice_relay_udp_ours_ours_controlling: Libnice, RELAY_UDP_OURS, AControlling;
    libnice_relay_udp_ours_ours_controlled: Libnice, RELAY_UDP_OURS, AControlled;
    libnice_relay_tcp_ours_ours_controlling: Libnice, RELAY_TCP_OURS, AControlling;
    libnice_relay_tcp_ours_ours_controlled: Libnice, RELAY_TCP_OURS, AControlled;
    libnice_ipv6_ours_controlling: Libnice, IPV6_HOST, AControlling;
    libnice_ipv6_ours_controlled: Libnice, IPV6_HOST, AControlled;
    libnice_ice_tcp_ours_controlling: Libnice, ICE_TCP, AControlling;
    libnice_ice_tcp_ours_controlled: Libnice, ICE_TCP, AControlled;

    libnice_regular_host_ours_controlling: LibniceRegular, HOST, AControlling;
    libnice_regular_host_ours_controlled: LibniceRegular, HOST, AControlled;
    libnice_regular_relay_udp_coturn_ours_controlling: LibniceRegular, RELAY_UDP_COTURN, AControlling;
    libnice_regular_relay_udp_coturn_ours_controlled: LibniceRegular, RELAY_UDP_COTURN, AControlled;
    libnice_regular_relay_udp_ours_ours_controlling: LibniceRegular, RELAY_UDP_OURS, AControlling;
    libnice_regular_relay_udp_ours_ours_controlled: LibniceRegular, RELAY_UDP_OURS, AControlled;

    aioice_host_ours_controlling: Aioice, HOST, AControlling;
    aioice_host_ours_controlled: Aioice, HOST, AControlled;
    aioice_host_both_controlling: Aioice, HOST, BothControlling;
    aioice_host_both_controlled: Aioice, HOST, BothControlled;
    aioice_srflx_coturn_ours_controlling: Aioice, SRFLX_COTURN, AControlling;
    aioice_srflx_coturn_ours_controlled: Aioice, SRFLX_COTURN, AControlled;
    aioice_srflx_ours_ours_controlling: Aioice, SRFLX_OURS, AControlling;
    aioice_srflx_ours_ours_controlled: Aioice, SRFLX_OURS, AControlled;
    aioice_relay_udp_coturn_ours_controlling: Aioice, RELAY_UDP_COTURN, AControlling;
    aioice_relay_udp_coturn_ours_controlled: Aioice, RELAY_UDP_COTURN, AControlled;
    aioice_relay_tcp_coturn_ours_controlling: Aioice, RELAY_TCP_COTURN, AControlling;
    aioice_relay_tcp_coturn_ours_controlled: Aioice, RELAY_TCP_COTURN, AControlled;
    aioice_relay_udp_ours_ours_controlling: Aioice, RELAY_UDP_OURS, AControlling;
    aioice_relay_udp_ours_ours_controlled: Aioice, RELAY_UDP_OURS, AControlled;
    aioice_relay_tcp_ours_ours_controlling: Aioice, RELAY_TCP_OURS, AControlling;
    aioice_relay_tcp_ours_ours_controlled: Aioice, RELAY_TCP_OURS, AControlled;
    aioice_ipv6_ours_controlling: Aioice, IPV6_HOST, AControlling;
    aioice_ipv6_ours_controlled: Aioice, IPV6_HOST, AControlled;

    libnice_nat_cone_cone_ours_controlling: Libnice, NAT_CONE_CONE, AControlling;
    libnice_nat_cone_cone_ours_controlled: Libnice, NAT_CONE_CONE, AControlled;
    libnice_nat_cone_symmetric_ours_controlling: Libnice, NAT_CONE_SYMMETRIC, AControlling;
    libnice_nat_cone_symmetric_ours_controlled: Libnice, NAT_CONE_SYMMETRIC, AControlled;
    libnice_nat_symmetric_symmetric_ours_controlling: Libnice, NAT_SYMMETRIC_SYMMETRIC, AControlling;
    libnice_nat_symmetric_symmetric_ours_controlled: Libnice, NAT_SYMMETRIC_SYMMETRIC, AControlled;
    ours_nat_cone_cone: Ours, NAT_CONE_CONE, AControlling;
    ours_nat_cone_symmetric: Ours, NAT_CONE_SYMMETRIC, AControlling;
    ours_nat_symmetric_symmetric: Ours, NAT_SYMMETRIC_SYMMETRIC, AControlling;
}

baselines! {
    libnice_libnice_host: Libnice, HOST, AControlling;
    libnice_libnice_host_both_controlling: Libnice, HOST, BothControlling;
    libnice_libnice_host_both_controlled: Libnice, HOST, BothControlled;
    libnice_libnice_srflx_coturn: Libnice, SRFLX_COTURN, AControlling;
    libnice_libnice_srflx_ours: Libnice, SRFLX_OURS, AControlling;
    libnice_libnice_relay_udp_coturn: Libnice, RELAY_UDP_COTURN, AControlling;
    libnice_libnice_relay_tcp_coturn: Libnice, RELAY_TCP_COTURN, AControlling;
    libnice_libnice_relay_udp_ours: Libnice, RELAY_UDP_OURS, AControlling;
    libnice_libnice_relay_tcp_ours: Libnice, RELAY_TCP_OURS, AControlling;
    libnice_libnice_ipv6: Libnice, IPV6_HOST, AControlling;
    libnice_libnice_ice_tcp: Libnice, ICE_TCP, AControlling;
    libnice_libnice_nat_cone_cone: Libnice, NAT_CONE_CONE, AControlling;
    libnice_libnice_nat_cone_symmetric: Libnice, NAT_CONE_SYMMETRIC, AControlling;
    libnice_libnice_nat_symmetric_symmetric: Libnice, NAT_SYMMETRIC_SYMMETRIC, AControlling;

    libnice_regular_libnice_regular_host: LibniceRegular, HOST, AControlling;
    libnice_regular_libnice_regular_relay_udp_coturn: LibniceRegular, RELAY_UDP_COTURN, AControlling;
    libnice_regular_libnice_regular_relay_udp_ours: LibniceRegular, RELAY_UDP_OURS, AControlling;
}

/// Ours against `third`: [`RUNS`] runs, printed next to libnice↔libnice; all must pass.
fn case(third: Agent, setup: Setup, roles: Roles) {
    if !available(third) || !servers_available(setup) {
        return;
    }
    let batch = run_batch(Agent::Ours, third, setup, roles);
    let libnice = third.reference();
    let reference = available(libnice).then(|| baseline(libnice, setup, roles.baseline()));
    report(&batch, reference.as_deref());
    batch.assert_all_passed();
}

/// libnice↔libnice: [`RUNS`] runs (shared with the cases that print them); all must pass.
fn baseline_case(libnice: Agent, setup: Setup, roles: Roles) {
    if !available(libnice) || !servers_available(setup) {
        return;
    }
    let batch = baseline(libnice, setup, roles);
    report(&batch, None);
    batch.assert_all_passed();
}

/// The libnice↔libnice batch of this libnice, setup and role pattern, run once per test
/// binary.
fn baseline(libnice: Agent, setup: Setup, roles: Roles) -> Arc<Batch> {
    type Cell = Arc<OnceLock<Arc<Batch>>>;
    type Cells = Mutex<HashMap<(Agent, Setup, Roles), Cell>>;
    static BASELINES: OnceLock<Cells> = OnceLock::new();
    let cell = {
        let mut map = BASELINES
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        Arc::clone(map.entry((libnice, setup, roles)).or_default())
    };
    Arc::clone(cell.get_or_init(|| Arc::new(run_batch(libnice, libnice, setup, roles))))
}

// ---------------------------------------------------------------------------------------
// Batches of runs and what they print.

/// The runs of one case.
struct Batch {
    a: Agent,
    b: Agent,
    setup: Setup,
    roles: Roles,
    runs: Vec<Run>,
}

impl Batch {
    fn title(&self) -> String {
        format!("{}, {}", self.setup, self.roles.describe(self.a, self.b))
    }

    fn passed(&self) -> usize {
        self.runs.iter().filter(|r| r.failure.is_none()).count()
    }

    /// Times to the selected pair of the runs that got one, sorted.
    fn times(&self) -> Vec<Duration> {
        let mut times: Vec<Duration> = self.runs.iter().filter_map(|r| r.selected).collect();
        times.sort();
        times
    }

    /// `5/5 passed, selected in 41 ms median (35–52 ms)`.
    fn summary(&self) -> String {
        let times = self.times();
        let ms = |d: &Duration| d.as_millis();
        let timing = match (times.first(), times.get(times.len() / 2), times.last()) {
            (Some(min), Some(median), Some(max)) => format!(
                "selected in {} ms median ({}–{} ms)",
                ms(median),
                ms(min),
                ms(max)
            ),
            _ => "no pair selected".into(),
        };
        format!("{}/{} passed, {timing}", self.passed(), self.runs.len())
    }

    fn assert_all_passed(&self) {
        let failures: Vec<String> = self
            .runs
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.failure.as_ref().map(|f| format!("run {i}: {f}")))
            .collect();
        assert!(
            failures.is_empty(),
            "{}: {}\n\n{}",
            self.title(),
            self.summary(),
            failures.join("\n\n")
        );
    }
}

/// Prints the batch's line (and the reference's), uncaptured, and appends it to the results.
fn report(batch: &Batch, reference: Option<&Batch>) {
    let mut line = format!("ice_interop: {}: {}", batch.title(), batch.summary());
    if let Some(r) = reference {
        line.push_str(&format!(
            " | libnice↔libnice ({}): {}",
            r.roles.describe(r.a, r.b),
            r.summary()
        ));
    }
    // Straight to stderr, past the test harness's capture: the times are the point.
    let _ = writeln!(std::io::stderr().lock(), "{line}");
    let ms = |b: &Batch| {
        b.times()
            .iter()
            .map(|t| t.as_millis() as u64)
            .collect::<Vec<_>>()
    };
    let record = json!({
        "case": batch.title(),
        "passed": batch.passed(),
        "runs": batch.runs.len(),
        "selected_ms": ms(batch),
        "reference": reference.map(|r| json!({
            "case": r.title(),
            "passed": r.passed(),
            "runs": r.runs.len(),
            "selected_ms": ms(r),
        })),
        "failures": batch.runs.iter().filter_map(|r| r.failure.clone()).collect::<Vec<_>>(),
    });
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ice_interop");
    let _ = std::fs::create_dir_all(&dir);
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("results.jsonl"))
    {
        // One write per record: cases running in parallel append to the same file.
        let _ = f.write_all(format!("{record}\n").as_bytes());
    }
}

/// Starts the setup's servers and runs `a` against `b` [`RUNS`] times, one after the other.
fn run_batch(a: Agent, b: Agent, setup: Setup, roles: Roles) -> Batch {
    let servers = ServerSet::start(setup);
    let runs = (0..RUNS)
        .map(|i| {
            let (ca, cb) = roles.controlling();
            let args_a = servers.agent_args(setup, Side::A, ca, i);
            let args_b = servers.agent_args(setup, Side::B, cb, i);
            run_pair((a, &args_a), (b, &args_b), setup, servers.topology())
        })
        .collect();
    Batch {
        a,
        b,
        setup,
        roles,
        runs,
    }
}

// ---------------------------------------------------------------------------------------
// The agents and how to start them.

/// The folder of this test, where the Python drivers are.
fn here() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/ice_interop")
}

/// Debian's Python, which has python3-gi (a Python earlier on PATH may not).
const DEBIAN_PYTHON: &str = "/usr/bin/python3";

/// The Python with the pinned aioice: `$AIOICE_PYTHON`, else the virtual environment that
/// `.ci/run` makes in the workspace's `target/`.
fn aioice_python() -> PathBuf {
    std::env::var_os("AIOICE_PYTHON").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/interop-venv/bin/python"),
        PathBuf::from,
    )
}

fn agent_command(agent: Agent) -> Command {
    match agent {
        Agent::Ours => {
            let mut c = Command::new(env!("CARGO_BIN_EXE_harness"));
            c.arg("peer");
            c
        }
        Agent::Libnice | Agent::LibniceRegular => {
            let mut c = Command::new(DEBIAN_PYTHON);
            c.arg(here().join("libnice_peer.py"));
            if agent == Agent::LibniceRegular {
                c.args(["--nomination", "regular"]);
            }
            c.env("PYTHONDONTWRITEBYTECODE", "1");
            c
        }
        Agent::Aioice => {
            let mut c = Command::new(aioice_python());
            c.arg(here().join("aioice_peer.py"));
            c.env("PYTHONDONTWRITEBYTECODE", "1");
            c
        }
    }
}

/// Whether the third party can run here; outside CI a missing one skips with a message, in CI
/// (`CI=true`) it fails the test. Checked once per agent.
fn available(agent: Agent) -> bool {
    static LIBNICE: OnceLock<Result<String, String>> = OnceLock::new();
    static AIOICE: OnceLock<Result<String, String>> = OnceLock::new();
    let probe = |python: PathBuf, script: &str, missing: &str| match Command::new(&python)
        .args(["-c", script])
        .output()
    {
        Ok(o) if o.status.success() => Ok(String::from_utf8_lossy(&o.stdout).trim().into()),
        Ok(o) => Err(format!(
            "{missing} ({} says: {})",
            python.display(),
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Err(format!("{missing} ({}: {e})", python.display())),
    };
    let found = match agent {
        Agent::Ours => return true,
        Agent::Libnice | Agent::LibniceRegular => LIBNICE.get_or_init(|| {
            probe(
                DEBIAN_PYTHON.into(),
                "import gi; gi.require_version('Nice', '0.1'); from gi.repository import Nice",
                "libnice through GObject introspection is missing: install the Debian \
                 packages libnice10, gir1.2-nice-0.1 and python3-gi",
            )
        }),
        Agent::Aioice => AIOICE.get_or_init(|| {
            probe(
                aioice_python(),
                "import aioice; print(aioice.__version__)",
                "aioice is missing: run .ci/run, or make a virtual environment with \
                 .ci/interop-requirements.txt in target/interop-venv, or set AIOICE_PYTHON",
            )
        }),
    };
    match found {
        Ok(_) => true,
        Err(message) => {
            missing(message);
            false
        }
    }
}

/// A peer or server this test needs is missing: with `CI=true` the test fails, outside CI it
/// skips (as `common::require` does for binaries) and says so once, past the test harness's
/// capture.
fn missing(message: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{message}");
    }
    static SAID: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let mut said = SAID.lock().unwrap_or_else(|e| e.into_inner());
    if !said.iter().any(|m| m == message) {
        said.push(message.to_owned());
        let _ = writeln!(std::io::stderr().lock(), "SKIPPED: {message}");
    }
}

/// Whether the setup's servers can run here (coturn is a Debian package; ours are built).
fn servers_available(setup: Setup) -> bool {
    match setup.servers {
        Servers::StunCoturn | Servers::TurnCoturn { .. } => {
            require("turnserver", "coturn").is_some()
        }
        Servers::StunOurs => our_example("stun-server").is_some(),
        Servers::TurnOurs { .. } => our_example("turn-server").is_some(),
        Servers::BehindNats { .. } => {
            require("turnserver", "coturn").is_some() && real_nat::available()
        }
        Servers::None => true,
    }
}
