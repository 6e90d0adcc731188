//! One run: two agents started as processes, each one's stdout lines piped into the other's
//! stdin and timestamped, and the verdict on what they printed.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::Running;
use crate::real_nat::{Side as NatSide, Topology};
use crate::{Agent, PATIENCE, Servers, Setup, agent_command};

/// What one run showed.
pub struct Run {
    /// From the later of the two `credentials` lines (both agents up) to the later of the two
    /// first `new-selected-pair` events.
    pub selected: Option<Duration>,
    /// Why the run failed, with each side's result and diagnostics; `None` when it passed.
    pub failure: Option<String>,
}

/// One process of a run, as seen by the test.
struct Side {
    agent: Agent,
    code: Option<i32>,
    /// Each stdout line with the time it arrived, from the start of the run.
    lines: Vec<(Duration, Value)>,
    stderr: String,
}

impl Side {
    fn first(&self, pred: impl Fn(&Value) -> bool) -> Option<&(Duration, Value)> {
        self.lines.iter().find(|(_, l)| pred(l))
    }

    fn credentials_at(&self) -> Option<Duration> {
        self.first(|l| l["type"] == "credentials").map(|(t, _)| *t)
    }

    fn selected(&self) -> Option<&(Duration, Value)> {
        self.first(|l| l["type"] == "event" && l["signal"] == "new-selected-pair")
    }

    /// The pair the call ended on: the last one selected (re-nomination moves up).
    fn last_selected(&self) -> Option<&(Duration, Value)> {
        self.lines
            .iter()
            .rev()
            .find(|(_, l)| l["type"] == "event" && l["signal"] == "new-selected-pair")
    }

    fn result(&self) -> Option<&Value> {
        self.lines
            .iter()
            .rev()
            .map(|(_, l)| l)
            .find(|l| l["type"] == "result")
    }

    fn passed(&self) -> bool {
        self.code == Some(0) && self.result().is_some_and(|r| r["status"] == "pass")
    }

    /// The side's result and the lines that tell what went wrong, for a failure message.
    fn diagnosis(&self) -> String {
        let result = self
            .result()
            .map_or("no result line".into(), |r| r["reason"].to_string());
        let events: Vec<String> = self
            .lines
            .iter()
            .filter(|(_, l)| {
                l["type"] == "candidate"
                    || l["type"] == "event"
                        && matches!(
                            l["signal"].as_str(),
                            Some(
                                "component-state-changed"
                                    | "new-selected-pair"
                                    | "role-changed"
                                    | "problem"
                                    | "state-changed"
                            )
                        )
            })
            .map(|(t, l)| format!("    {:>6} ms {}", t.as_millis(), compact(l)))
            .collect();
        let stderr: Vec<&str> = self.stderr.lines().rev().take(12).collect();
        let stderr: Vec<String> = stderr
            .into_iter()
            .rev()
            .map(|l| format!("    stderr: {l}"))
            .collect();
        format!(
            "  {} (exit {:?}): {result}\n{}\n{}",
            self.agent,
            self.code,
            events.join("\n"),
            stderr.join("\n")
        )
    }
}

/// An event line without its `type`, for diagnostics.
fn compact(line: &Value) -> String {
    let mut l = line.clone();
    if let Some(o) = l.as_object_mut() {
        o.remove("type");
    }
    l.to_string()
}

/// Starts `a` and `b` (each in its namespace when there is a `topology`), wires them, waits
/// for both (killing them after [`PATIENCE`]).
pub fn run_pair(
    a: (Agent, &[String]),
    b: (Agent, &[String]),
    setup: Setup,
    topology: Option<&Topology>,
) -> Run {
    let start = Instant::now();
    let spawn = |(agent, args): (Agent, &[String]), side: NatSide| {
        let mut command = agent_command(agent);
        command.args(args);
        if let Some(topology) = topology {
            command = topology.on_side(side, &command);
        }
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        Running(
            command
                .spawn()
                .unwrap_or_else(|e| panic!("start {agent}: {e}")),
        )
    };
    let (mut pa, mut pb) = (spawn(a, NatSide::A), spawn(b, NatSide::B));
    let (ra, ea) = pump(&mut pa, &mut pb, start);
    let (rb, eb) = pump(&mut pb, &mut pa, start);
    let deadline = start + PATIENCE;
    let wait = |child: &mut Running| loop {
        if let Ok(Some(status)) = child.0.try_wait() {
            return status.code();
        }
        if Instant::now() > deadline {
            let _ = child.0.kill();
            let _ = child.0.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let (ca, cb) = (wait(&mut pa), wait(&mut pb));
    let collect = |agent, code, lines: mpsc::Receiver<_>, stderr: mpsc::Receiver<_>| Side {
        agent,
        code,
        lines: lines.recv_timeout(PATIENCE).unwrap_or_default(),
        stderr: stderr.recv_timeout(PATIENCE).unwrap_or_default(),
    };
    let sa = collect(a.0, ca, ra, ea);
    let sb = collect(b.0, cb, rb, eb);
    judge(&sa, &sb, setup)
}

/// Pumps `from`'s stdout into `to`'s stdin, timestamping each line; collects `from`'s stderr.
/// When `from`'s stdout closes, `to`'s stdin closes with it.
#[allow(clippy::type_complexity)]
fn pump(
    from: &mut Running,
    to: &mut Running,
    start: Instant,
) -> (
    mpsc::Receiver<Vec<(Duration, Value)>>,
    mpsc::Receiver<String>,
) {
    let stdout = from.0.stdout.take().expect("piped stdout");
    let mut stderr = from.0.stderr.take().expect("piped stderr");
    let mut stdin = to.0.stdin.take().expect("piped stdin");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let at = start.elapsed();
            // The other side may have exited already: its stdin is then closed.
            let _ = writeln!(stdin, "{line}");
            let _ = stdin.flush();
            let value = serde_json::from_str::<Value>(&line)
                .unwrap_or_else(|_| json!({"type": "not-json", "line": line}));
            lines.push((at, value));
        }
        let _ = tx.send(lines);
    });
    let (etx, erx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        let _ = etx.send(text);
    });
    (rx, erx)
}

/// Did the run pass, with the pair the setup calls for? And how long did selection take?
fn judge(a: &Side, b: &Side, setup: Setup) -> Run {
    let selected = match (
        a.credentials_at().max(b.credentials_at()),
        a.selected().zip(b.selected()),
    ) {
        (Some(up), Some((sa, sb))) => Some(sa.0.max(sb.0).saturating_sub(up)),
        _ => None,
    };
    let mut faults = Vec::new();
    for side in [a, b] {
        if !side.passed() {
            faults.push(format!("{} did not pass", side.agent));
            continue;
        }
        let Some((_, pair)) = side.selected() else {
            faults.push(format!("{} passed without a selected pair", side.agent));
            continue;
        };
        let local = pair["local"].as_str().unwrap_or_default();
        let remote = pair["remote"].as_str().unwrap_or_default();
        if let Servers::BehindNats { .. } = setup.servers {
            // Behind NATs the agents choose: the pair the call ended on (the first selected
            // may be the relay, left when the direct pair validates) must take the path NAT
            // theory predicts, through the relay or not, whatever each side calls its
            // candidates.
            let Some((_, pair)) = side.last_selected() else {
                continue;
            };
            let local = pair["local"].as_str().unwrap_or_default();
            let remote = pair["remote"].as_str().unwrap_or_default();
            let relayed = local.contains("typ relay") || remote.contains("typ relay");
            if relayed != setup.expects_relay() {
                let path = |r: bool| if r { "through the relay" } else { "direct" };
                faults.push(format!(
                    "{}'s selected pair is {}, NAT theory says {}: {pair}",
                    side.agent,
                    path(relayed),
                    path(setup.expects_relay())
                ));
            }
            continue;
        }
        let want = if setup.is_relay() {
            "typ relay"
        } else {
            "typ host"
        };
        // Over ICE-TCP libnice names its side of a connection it opened after the
        // connection's port: a peer-reflexive local candidate, `tcptype active`.
        let tcp_prflx = setup.ice_tcp && local.contains("typ prflx tcptype active");
        if !local.contains(want) && !tcp_prflx {
            faults.push(format!(
                "{}'s selected local candidate is not {want}: {local}",
                side.agent
            ));
        }
        let tcp = |c: &str| c.to_ascii_lowercase().contains(" tcp ");
        if setup.ice_tcp && !(tcp(local) && tcp(remote)) {
            faults.push(format!("{}'s selected pair is not TCP: {pair}", side.agent));
        }
        if setup.ip.is_ipv6() && !(local.contains("::1") && remote.contains("::1")) {
            faults.push(format!(
                "{}'s selected pair is not on ::1: {pair}",
                side.agent
            ));
        }
        if side.agent == Agent::Ours && setup.servers != Servers::None {
            // Our peer reports servers that did not answer; the server must have answered.
            if let Some((_, p)) = side.first(|l| l["signal"] == "problem") {
                faults.push(format!("ours reported a problem: {}", compact(p)));
            }
        }
        let stun_only = matches!(setup.servers, Servers::StunCoturn | Servers::StunOurs);
        if side.agent == Agent::Aioice && stun_only {
            // aioice signals its server-reflexive candidate even where it equals the host
            // candidate (loopback): the STUN server answered it. Ours and libnice drop it.
            let srflx = |l: &Value| {
                l["type"] == "candidate"
                    && l["candidate"]
                        .as_str()
                        .is_some_and(|c| c.contains("typ srflx"))
            };
            if side.first(srflx).is_none() {
                faults.push("aioice signalled no server-reflexive candidate".into());
            }
        }
    }
    let failure = (!faults.is_empty()).then(|| {
        format!(
            "{}\n{}\n{}",
            faults.join("; "),
            a.diagnosis(),
            b.diagnosis()
        )
    });
    Run { selected, failure }
}
