//! Two ICE agents over real UDP sockets on loopback, in one process: the caller picks its
//! ports from a range and binds them (the agent never does), hands the agents the sockets as
//! bases, exchanges credentials and candidates (as SDP lines), and drives both agents with the
//! real clock: receive with a timeout of `poll_timeout`, `handle_datagram` /
//! `handle_timeout`, send what `poll_transmit` gives. Then data flows on the selected pair.
//!
//! Run: `cargo run -p ice-proto --example loopback [first-port]` (default 50000).

// Real I/O: this example binds sockets, reads the clock and seeds from the OS, which protocol
// machines never do.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use ice_proto::{Agent, AgentConfig, ConnectionState, Event, Handled, StreamId};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

/// Binds the first free port of `range` on loopback: port ranges are the caller's business.
fn bind_in_range(range: std::ops::Range<u16>) -> std::io::Result<UdpSocket> {
    let mut last = None;
    for port in range {
        match UdpSocket::bind(("127.0.0.1", port)) {
            Ok(socket) => return Ok(socket),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("empty port range")))
}

struct Peer {
    name: &'static str,
    agent: Agent<ChaCha20Rng>,
    stream: StreamId,
    socket: UdpSocket,
    local: SocketAddr,
}

impl Peer {
    fn new(name: &'static str, controlling: bool, range: std::ops::Range<u16>) -> Self {
        let socket = bind_in_range(range).expect("a free port in the range");
        socket
            .set_read_timeout(Some(Duration::from_millis(1)))
            .expect("timeouts work on UDP sockets");
        let local = socket.local_addr().expect("a bound socket has an address");
        // Seeded from the OS here; a real application uses a CSPRNG from the OS directly.
        let config = AgentConfig {
            controlling,
            ..AgentConfig::default()
        };
        let mut agent = Agent::new(config, ChaCha20Rng::from_os_rng());
        let stream = agent.add_stream(1).expect("a new agent takes a stream");
        agent
            .stream_mut(stream)
            .expect("the stream exists")
            .add_base(1, local)
            .expect("before gathering");
        Self {
            name,
            agent,
            stream,
            socket,
            local,
        }
    }

    /// Sends what the agent wants sent; returns the candidate lines it announced.
    fn flush(&mut self) -> Vec<String> {
        while let Some(t) = self.agent.poll_transmit() {
            let _ = self.socket.send_to(&t.payload, t.destination);
        }
        let mut lines = Vec::new();
        while let Some(event) = self.agent.poll_event() {
            match event {
                Event::NewLocalCandidate { candidate, .. } => lines.push(candidate.to_string()),
                Event::NewSelectedPair { local, remote, .. } => {
                    println!("{}: selected {} -> {}", self.name, local, remote)
                }
                Event::ConnectionStateChanged(state) => println!("{}: {state:?}", self.name),
                _ => {}
            }
        }
        lines
    }

    /// One turn of the drive loop: a datagram or a timeout.
    fn turn(&mut self) -> Option<Vec<u8>> {
        let mut buf = [0u8; 1500];
        let mut data = None;
        match self.socket.recv_from(&mut buf) {
            Ok((n, from)) => {
                let now = Instant::now();
                let received = self.agent.handle_datagram(
                    now,
                    stun_proto::TransportProtocol::Udp,
                    from,
                    self.local,
                    &buf[..n],
                );
                if let Handled::Data { data: d, .. } = received {
                    data = Some(d.to_vec());
                }
            }
            Err(_) => {
                let now = Instant::now();
                if self.agent.poll_timeout().is_some_and(|t| t <= now) {
                    self.agent.handle_timeout(now);
                }
            }
        }
        data
    }
}

fn main() {
    let first: u16 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(50_000);
    let mut a = Peer::new("A", true, first..first.saturating_add(100));
    let mut b = Peer::new("B", false, first..first.saturating_add(100));
    println!("A on {}, B on {}", a.local, b.local);

    let now = Instant::now();
    let ca = a
        .agent
        .stream(a.stream)
        .expect("stream")
        .local_credentials()
        .clone();
    let cb = b
        .agent
        .stream(b.stream)
        .expect("stream")
        .local_credentials()
        .clone();
    a.agent
        .handle_remote_credentials(now, a.stream, cb)
        .expect("valid credentials");
    b.agent
        .handle_remote_credentials(now, b.stream, ca)
        .expect("valid credentials");
    a.agent
        .handle_gather(now, a.stream)
        .expect("gathering starts");
    b.agent
        .handle_gather(now, b.stream)
        .expect("gathering starts");

    let deadline = Instant::now() + Duration::from_secs(10);
    let mut sent = false;
    let mut got = 0;
    while Instant::now() < deadline && got < 2 {
        // Signalling: candidate lines from one side to the other.
        for line in a.flush() {
            let c = line.parse().expect("our own lines parse");
            let _ = b.agent.handle_remote_candidate(Instant::now(), b.stream, c);
        }
        for line in b.flush() {
            let c = line.parse().expect("our own lines parse");
            let _ = a.agent.handle_remote_candidate(Instant::now(), a.stream, c);
        }
        for (peer, name) in [(&mut a, "A"), (&mut b, "B")] {
            if let Some(data) = peer.turn() {
                println!("{name} received {:?}", String::from_utf8_lossy(&data));
                got += 1;
            }
        }
        let done = a.agent.state() == ConnectionState::Completed
            && b.agent.state() == ConnectionState::Completed;
        if done && !sent {
            sent = true;
            let now = Instant::now();
            for (from, to, text) in [(&mut a, "B", "hello from A"), (&mut b, "A", "hello from B")] {
                let t = from
                    .agent
                    .handle_send(now, from.stream, 1, text.as_bytes())
                    .expect("a selected pair");
                let _ = from.socket.send_to(t.payload, t.destination);
                println!("{} -> {to}: {text}", from.name);
            }
        }
    }
    if got < 2 {
        eprintln!("did not connect within 10 s");
        std::process::exit(1);
    }
}
