//! An SFU on one real UDP socket: `harness::nodes::SfuNode` (ICE-lite sessions of
//! `ice_proto::endpoint`, one DTLS server per session) on 127.0.0.1, with N `harness peer`
//! processes (full ICE, controlling, DTLS client) as its clients. This program is their
//! signalling too: it reads each peer's first JSON lines (credentials, fingerprint) from its
//! stdout, admits it, and writes the session's lines to its stdin.
//!
//! ```text
//! cargo run -p harness --example sfu-udp -- target/debug/harness 8
//! ```
//! Exits 0 when every peer exits 0 (all its pings answered over DTLS by the SFU), 1
//! otherwise, 2 on bad arguments.

// A driver of real sockets and processes: it reads the clock and spawns threads to pump the
// children's pipes.
#![allow(clippy::disallowed_methods)]

use std::io::{BufRead, BufReader, Write};
use std::net::UdpSocket;
use std::process::{Child, ChildStdin, Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use harness::Node;
use harness::nodes::SfuNode;
use harness::peer::Signal;
use stun_proto::TransportProtocol;

/// How long the whole run may take.
const PATIENCE: Duration = Duration::from_secs(60);

/// A line from a child's stdout.
struct Line {
    peer: usize,
    line: String,
}

/// One child.
struct Client {
    child: Child,
    stdin: ChildStdin,
    offer: Vec<Signal>,
    admitted: bool,
    exit: Option<i32>,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(harness), Some(count)) = (args.get(1), args.get(2).and_then(|n| n.parse().ok()))
    else {
        eprintln!("usage: sfu-udp <path to the harness binary> <number of peers, 1 to 64>");
        return ExitCode::from(2);
    };
    let count: usize = count;
    if !(1..=64).contains(&count) {
        eprintln!("sfu-udp: the number of peers must be 1 to 64, not {count}");
        return ExitCode::from(2);
    }
    match run(harness, count) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("sfu-udp: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(harness: &str, count: usize) -> Result<bool, Box<dyn std::error::Error>> {
    let socket = UdpSocket::bind("127.0.0.1:0")?;
    let port = socket.local_addr()?;
    socket.set_read_timeout(Some(Duration::from_millis(5)))?;
    let mut sfu = SfuNode::new(port, true, 1);
    let (lines, incoming) = mpsc::channel();
    let mut clients = Vec::with_capacity(count);
    for peer in 0..count {
        let mut child = Command::new(harness)
            .args([
                "peer",
                "--controlling",
                "--dtls",
                "--count",
                "3",
                "--timeout",
                "30",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let stdin = child.stdin.take().ok_or("no stdin")?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let lines = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if lines.send(Line { peer, line }).is_err() {
                    return;
                }
            }
        });
        clients.push(Client {
            child,
            stdin,
            offer: Vec::new(),
            admitted: false,
            exit: None,
        });
    }
    let began = Instant::now();
    let mut buf = vec![0u8; 65_536];
    while clients.iter().any(|c| c.exit.is_none()) && began.elapsed() < PATIENCE {
        let now = Instant::now();
        // Signalling: admit a peer once its credentials and fingerprint are in.
        while let Ok(Line { peer, line }) = incoming.try_recv() {
            let client = &mut clients[peer];
            if let Ok(Some(signal)) = Signal::parse_line(&line) {
                client.offer.push(signal);
            }
            let ready = client
                .offer
                .iter()
                .any(|s| matches!(s, Signal::Dtls { .. }))
                && client
                    .offer
                    .iter()
                    .any(|s| matches!(s, Signal::Credentials(_)));
            if ready && !client.admitted {
                client.admitted = true;
                for answer in sfu
                    .admit(now, &client.offer)
                    .ok_or("a peer without credentials")?
                {
                    writeln!(client.stdin, "{}", answer.to_line())?;
                }
            }
        }
        match socket.recv_from(&mut buf) {
            Ok((len, source)) => {
                let payload = Bytes::copy_from_slice(&buf[..len]);
                sfu.handle_datagram(
                    Instant::now(),
                    TransportProtocol::Udp,
                    source,
                    port,
                    payload,
                );
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(e.into()),
        }
        if sfu.poll_timeout().is_some_and(|at| at <= Instant::now()) {
            sfu.handle_timeout(Instant::now());
        }
        while let Some(t) = sfu.poll_transmit() {
            socket.send_to(&t.payload, t.destination)?;
        }
        for client in &mut clients {
            if client.exit.is_none() {
                if let Some(status) = client.child.try_wait()? {
                    client.exit = Some(status.code().unwrap_or(-1));
                }
            }
        }
    }
    let mut all = true;
    for (i, client) in clients.iter_mut().enumerate() {
        let code = match client.exit {
            Some(code) => code,
            None => {
                let _ = client.child.kill();
                let _ = client.child.wait();
                -1
            }
        };
        println!("peer {i}: exit {code}");
        all &= code == 0;
    }
    println!(
        "{count} peers on one port {port}: SFU sessions secured {}, datagrams answered {}; {}",
        sfu.secured().len(),
        sfu.echoed(),
        if all { "all passed" } else { "some failed" }
    );
    Ok(all)
}
