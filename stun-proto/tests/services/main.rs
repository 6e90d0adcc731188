//! Scenario tests of the STUN services through the public API only: a Binding client and a
//! Binding server joined by an in-memory link with delay and loss, on a virtual clock.
//! (Whole-network simulations with NATs belong to the `harness` crate.)

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use stun_proto::binding::{
    BindingClient, BindingEvent, BindingOptions, BindingServer, BindingServerConfig,
};
use stun_proto::transaction::TransactionConfig;
use stun_proto::{Transmit, TransportProtocol};

const LOCAL: &str = "10.0.0.2:40000";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A client, any number of servers, and a link that delays every datagram by `delay` and
/// drops the client's first `drop_first` requests.
struct Scenario {
    now: Instant,
    start: Instant,
    client: BindingClient<ChaCha20Rng>,
    servers: Vec<BindingServer>,
    delay: Duration,
    drop_first: usize,
    /// (arrival time, datagram)
    in_flight: VecDeque<(Instant, Transmit)>,
    /// Offsets from the start at which the client sent a request.
    sends: Vec<Duration>,
    events: Vec<(Duration, BindingEvent)>,
}

impl Scenario {
    fn new(config: TransactionConfig, servers: &[&str], delay: Duration) -> Self {
        #[allow(clippy::disallowed_methods)] // one real instant to build virtual time on
        let start = Instant::now();
        let rng = ChaCha20Rng::seed_from_u64(3);
        Self {
            now: start,
            start,
            client: BindingClient::new(addr(LOCAL), TransportProtocol::Udp, config, rng),
            servers: servers
                .iter()
                .map(|s| BindingServer::new(BindingServerConfig::new(addr(s))))
                .collect(),
            delay,
            drop_first: 0,
            in_flight: VecDeque::new(),
            sends: vec![],
            events: vec![],
        }
    }

    fn query(&mut self, server: &str) {
        self.client
            .handle_query(self.now, addr(server), BindingOptions::default())
            .unwrap();
        self.flush();
    }

    /// Moves whatever the machines want sent onto the link.
    fn flush(&mut self) {
        while let Some(t) = self.client.poll_transmit() {
            self.sends.push(self.now - self.start);
            if self.drop_first > 0 {
                self.drop_first -= 1;
                continue;
            }
            self.in_flight.push_back((self.now + self.delay, t));
        }
        for server in &mut self.servers {
            while let Some(t) = server.poll_transmit() {
                self.in_flight.push_back((self.now + self.delay, t));
            }
        }
        while let Some(event) = self.client.poll_event() {
            self.events.push((self.now - self.start, event));
        }
    }

    /// Runs until nothing is in flight and the client has nothing scheduled.
    fn run(&mut self) {
        loop {
            let arrival = self.in_flight.iter().map(|(at, _)| *at).min();
            let next = match (arrival, self.client.poll_timeout()) {
                (Some(a), Some(b)) => a.min(b),
                (a, b) => match a.or(b) {
                    Some(at) => at,
                    None => return,
                },
            };
            self.now = next;
            if let Some(i) = self.in_flight.iter().position(|(at, _)| *at == next) {
                let (_, t) = self.in_flight.remove(i).unwrap();
                if t.destination == addr(LOCAL) {
                    (self.client).handle_datagram(
                        self.now,
                        t.transport,
                        t.source,
                        t.destination,
                        &t.payload,
                    );
                } else if let Some(server) = self
                    .servers
                    .iter_mut()
                    .find(|s| s.config().primary == t.destination)
                {
                    server.handle_datagram(
                        self.now,
                        t.transport,
                        t.source,
                        t.destination,
                        &t.payload,
                    );
                }
            } else {
                self.client.handle_timeout(self.now);
            }
            self.flush();
        }
    }
}

#[test]
fn lost_requests_are_retransmitted_on_schedule_and_karn_keeps_one_doubling() {
    let server = "192.0.2.1:3478";
    let mut s = Scenario::new(TransactionConfig::default(), &[server], ms(20));
    s.drop_first = 2;
    s.query(server);
    s.run();
    // Sends at 0, 500 (lost) and 1500 ms; the answer lands 2 × 20 ms later.
    assert_eq!(s.sends, [ms(0), ms(500), ms(1500)]);
    let [(at, BindingEvent::Mapped { result, .. })] = s.events.as_slice() else {
        panic!("expected one answer, got {:?}", s.events);
    };
    assert_eq!(*at, ms(1540));
    assert_eq!(result.mapped, addr(LOCAL));
    assert_eq!(
        result.rtt, None,
        "answered after a retransmission: no RTT sample"
    );
    // RFC 6298 §5 / Karn: a backed-off RTO stays until a valid sample — one doubling of
    // the starting 500 ms, not the 2000 ms the lost sends reached: losses are not a slow
    // server.
    assert_eq!(
        s.client.transactions().rto(s.now, addr(server).ip()),
        ms(1000)
    );
}

#[test]
fn a_slow_server_is_measured_after_one_backed_off_transaction() {
    let (slow, fast) = ("192.0.2.1:3478", "198.51.100.1:3478");
    let mut s = Scenario::new(TransactionConfig::default(), &[slow, fast], ms(300));
    // RTT 600 ms > initial RTO 500 ms: retransmitted at 500, answered at 600 (Karn: no
    // sample), and the backed-off 1000 ms is kept for this server only.
    s.query(slow);
    s.run();
    assert_eq!(s.sends, [ms(0), ms(500)]);
    let transactions = s.client.transactions();
    assert_eq!(transactions.rto(s.now, addr(slow).ip()), ms(1000));
    assert_eq!(transactions.rto(s.now, addr(fast).ip()), ms(500));

    // The next transaction is not retransmitted, so it measures 600 ms: RFC 6298 §2.2 gives
    // 600 + 4 × 300 = 1800 ms.
    s.query(slow);
    s.run();
    assert_eq!(s.sends.len(), 3);
    let Some((_, BindingEvent::Mapped { result, .. })) = s.events.last() else {
        panic!("expected an answer, got {:?}", s.events);
    };
    assert_eq!(result.rtt, Some(ms(600)));
    assert_eq!(
        s.client.transactions().rto(s.now, addr(slow).ip()),
        ms(1800)
    );

    // A lost request to it is then retransmitted 1800 ms after it went out.
    s.drop_first = 1;
    let sent = s.now - s.start;
    s.query(slow);
    s.run();
    assert_eq!(s.sends[3..], [sent, sent + ms(1800)]);
}

#[test]
fn queries_to_many_servers_are_paced_at_ta() {
    let servers = [
        "192.0.2.1:3478",
        "192.0.2.2:3478",
        "192.0.2.3:3478",
        "192.0.2.4:3478",
    ];
    let config = TransactionConfig {
        pacing_interval: Some(ms(50)),
        max_outstanding_per_server: None,
        ..TransactionConfig::default()
    };
    let mut s = Scenario::new(config, &servers, ms(5));
    for server in servers {
        s.query(server);
    }
    s.run();
    assert_eq!(s.sends, [ms(0), ms(50), ms(100), ms(150)]);
    assert_eq!(s.events.len(), 4);
    assert!(
        s.events
            .iter()
            .all(|(_, e)| matches!(e, BindingEvent::Mapped { .. }))
    );
}
