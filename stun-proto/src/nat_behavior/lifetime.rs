//! Binding lifetime discovery (RFC 5780 §4.6): how long a NAT keeps a UDP mapping alive
//! without outbound traffic. Two local sockets, X and Y:
//!
//! ```text
//! Binding   X ─► server            learn X's mapped address MX          (§4.6 test I)
//! Waiting   T passes, X silent
//! Probing   Y ─► server, RESPONSE-PORT = MX.port: the answer goes to MX  (§4.6 test II)
//!           answered on X: the mapping outlived T   timed out: it did not
//! ```
//!
//! T doubles from [`LifetimeConfig::initial_wait`] until a probe fails (or
//! [`LifetimeConfig::max_wait`] passes), then a binary search narrows the lifetime to
//! [`LifetimeConfig::resolution`]. Each round starts with a new test I, so an expired mapping
//! is re-created. This takes minutes of real time: the "optional longer test" of the RFC.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand_core::RngCore;

use crate::attribute::{MappedAddress, ResponsePort, XorMappedAddress};
use crate::builder::MessageBuilder;
use crate::header::{Class, MessageType, TransactionId};
use crate::message::Message;
use crate::time::saturating_add;
use crate::transaction::{
    ClientTransactions, Handled, Request, TransactionConfig, TransactionError, TransactionEvent,
};
use crate::transmit::{Transmit, TransportProtocol};

/// How a [`LifetimeDiscovery`] runs.
#[derive(Clone, Debug)]
pub struct LifetimeConfig {
    /// Local socket X, whose mapping is timed.
    pub primary: SocketAddr,
    /// Local socket Y, which sends the probes.
    pub secondary: SocketAddr,
    /// The server (it must honour RESPONSE-PORT, RFC 5780 §7.5).
    pub server: SocketAddr,
    /// The first silence tried. Default 10 s.
    pub initial_wait: Duration,
    /// The longest silence tried. Default 10 minutes.
    pub max_wait: Duration,
    /// Stop once the lifetime is known within this. Default 5 s.
    pub resolution: Duration,
    /// Retransmission settings for each request.
    pub transactions: TransactionConfig,
}

impl LifetimeConfig {
    /// Defaults for these two sockets and server.
    pub fn new(primary: SocketAddr, secondary: SocketAddr, server: SocketAddr) -> Self {
        Self {
            primary,
            secondary,
            server,
            initial_wait: Duration::from_secs(10),
            max_wait: Duration::from_secs(600),
            resolution: Duration::from_secs(5),
            transactions: TransactionConfig::default(),
        }
    }
}

/// What lifetime discovery found: the mapping lives at least `at_least` and less than
/// `less_than`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BindingLifetime {
    /// The longest silence the mapping survived (`None`: not even the first one).
    pub at_least: Option<Duration>,
    /// The shortest silence the mapping did not survive (`None`: it survived
    /// [`LifetimeConfig::max_wait`]).
    pub less_than: Option<Duration>,
    /// Whether the server ever answered test I; if not, nothing was measured.
    pub server_reachable: bool,
}

/// What the application learns from a [`LifetimeDiscovery`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LifetimeEvent {
    /// A round ended: after `wait` of silence the mapping was (or was not) `alive`.
    Round {
        /// The silence.
        wait: Duration,
        /// Whether the probe came through.
        alive: bool,
    },
    /// Discovery is over.
    Finished(BindingLifetime),
}

/// Where a round stands.
#[derive(Clone, Copy, Debug)]
enum State {
    /// Not started.
    Idle,
    /// Test I from X is out.
    Binding { wait: Duration, id: TransactionId },
    /// X is silent until `until`.
    Waiting {
        wait: Duration,
        mapped: SocketAddr,
        until: Instant,
    },
    /// The probe from Y is out.
    Probing { wait: Duration, id: TransactionId },
    /// Done.
    Finished,
}

/// The RFC 5780 §4.6 binding lifetime discovery client.
///
/// # Drive loop
/// Call [`handle_start`](Self::handle_start) once. Then, after every `handle_*` call —
/// [`handle_datagram`](Self::handle_datagram) for every datagram received on either local
/// socket (with the socket's address), [`handle_timeout`](Self::handle_timeout) — send
/// everything [`poll_transmit`](Self::poll_transmit) returns from the socket its `source`
/// names, read [`poll_event`](Self::poll_event) until `None`, and call `handle_timeout` at
/// [`poll_timeout`](Self::poll_timeout).
#[derive(Debug)]
pub struct LifetimeDiscovery<R> {
    config: LifetimeConfig,
    transactions: ClientTransactions,
    state: State,
    alive_max: Option<Duration>,
    dead_min: Option<Duration>,
    reachable: bool,
    events: VecDeque<LifetimeEvent>,
    rng: R,
}

impl<R: RngCore> LifetimeDiscovery<R> {
    /// A discovery run, not yet started.
    pub fn new(config: LifetimeConfig, rng: R) -> Self {
        Self {
            transactions: ClientTransactions::new(config.transactions.clone()),
            config,
            state: State::Idle,
            alive_max: None,
            dead_min: None,
            reachable: false,
            events: VecDeque::new(),
            rng,
        }
    }

    /// Starts the first round.
    pub fn handle_start(&mut self, now: Instant) -> Result<(), TransactionError> {
        if matches!(self.state, State::Idle) {
            self.bind(now, self.config.initial_wait)?;
        }
        Ok(())
    }

    /// Offers a datagram received over `transport` from `source` on the local socket
    /// `destination`.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        transport: TransportProtocol,
        source: SocketAddr,
        destination: SocketAddr,
        datagram: &[u8],
    ) -> Handled {
        let Ok(message) = Message::parse(datagram) else {
            return Handled::Dropped(crate::transaction::DropReason::NotAResponse);
        };
        let local = destination;
        let handled = (self.transactions).handle_response(now, transport, source, local, &message);
        if let (Handled::Response(id), State::Probing { id: probe, .. }) = (handled, self.state) {
            if id == probe && local != self.config.primary {
                // The answer came to Y: the server ignored RESPONSE-PORT. Nothing to measure.
                self.finish();
                return handled;
            }
        }
        self.pump(now);
        handled
    }

    /// Ends silences and moves on from unanswered requests.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.transactions.handle_timeout(now);
        if let State::Waiting {
            wait,
            mapped,
            until,
        } = self.state
        {
            if now >= until {
                self.probe(now, wait, mapped);
            }
        }
        self.pump(now);
    }

    /// The next request, to send from the socket its `source` names.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transactions.poll_transmit()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<LifetimeEvent> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Waiting { until, .. } => Some(until),
            _ => self.transactions.poll_timeout(),
        }
    }

    fn bind(&mut self, now: Instant, wait: Duration) -> Result<(), TransactionError> {
        let id = self.send(now, self.config.primary, None)?;
        self.state = State::Binding { wait, id };
        Ok(())
    }

    fn probe(&mut self, now: Instant, wait: Duration, mapped: SocketAddr) {
        match self.send(now, self.config.secondary, Some(mapped.port())) {
            Ok(id) => self.state = State::Probing { wait, id },
            Err(_) => self.finish(),
        }
    }

    fn send(
        &mut self,
        now: Instant,
        from: SocketAddr,
        response_port: Option<u16>,
    ) -> Result<TransactionId, TransactionError> {
        let id = TransactionId::random(&mut self.rng);
        let mut b = MessageBuilder::new_bytes(MessageType::BINDING_REQUEST, id);
        if let Some(port) = response_port {
            b.add(&ResponsePort(port))
                .map_err(|_| TransactionError::NotARequest)?;
        }
        b.add_fingerprint()
            .map_err(|_| TransactionError::NotARequest)?;
        let mut request = Request::new(
            TransportProtocol::Udp,
            from,
            self.config.server,
            b.into_bytes(),
        );
        if response_port.is_some() {
            // The answer is asked to another port of ours (RFC 5780 §7.3).
            request = request.accept_response_on_any_local_address();
        }
        self.transactions.handle_request(now, request)
    }

    fn pump(&mut self, now: Instant) {
        while let Some(event) = self.transactions.poll_event() {
            let (id, answer) = match event {
                TransactionEvent::Response {
                    id, class, message, ..
                } => (id, (class == Class::Success).then_some(message)),
                TransactionEvent::Timeout { id, .. } | TransactionEvent::Error { id, .. } => {
                    (id, None)
                }
            };
            match self.state {
                State::Binding { wait, id: bind } if bind == id => {
                    let mapped = answer.as_deref().and_then(mapped_address);
                    match mapped {
                        Some(mapped) => {
                            self.reachable = true;
                            self.state = State::Waiting {
                                wait,
                                mapped,
                                until: saturating_add(now, wait),
                            };
                        }
                        None => self.finish(),
                    }
                }
                State::Probing { wait, id: probe } if probe == id => {
                    self.round_over(now, wait, answer.is_some());
                }
                _ => {}
            }
        }
    }

    /// Records a round and picks the next silence: doubling until a failure, then bisecting.
    fn round_over(&mut self, now: Instant, wait: Duration, alive: bool) {
        self.events.push_back(LifetimeEvent::Round { wait, alive });
        if alive {
            self.alive_max = Some(self.alive_max.map_or(wait, |a| a.max(wait)));
        } else {
            self.dead_min = Some(self.dead_min.map_or(wait, |d| d.min(wait)));
        }
        let low = self.alive_max.unwrap_or(Duration::ZERO);
        let next = match self.dead_min {
            None if wait >= self.config.max_wait => None,
            None => Some((wait * 2).min(self.config.max_wait)),
            Some(high) if high.saturating_sub(low) <= self.config.resolution => None,
            Some(high) => Some((low + high) / 2),
        };
        match next {
            Some(wait) if self.bind(now, wait).is_ok() => {}
            _ => self.finish(),
        }
    }

    fn finish(&mut self) {
        self.state = State::Finished;
        self.events
            .push_back(LifetimeEvent::Finished(BindingLifetime {
                at_least: self.alive_max,
                less_than: self.dead_min,
                server_reachable: self.reachable,
            }));
    }
}

/// XOR-MAPPED-ADDRESS, else MAPPED-ADDRESS, of a success response.
fn mapped_address(response: &[u8]) -> Option<SocketAddr> {
    let m = Message::parse(response).ok()?;
    let xor = m
        .get::<XorMappedAddress>()
        .and_then(Result::ok)
        .map(|a| a.0);
    xor.or_else(|| m.get::<MappedAddress>().and_then(Result::ok).map(|a| a.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::binding::{BindingServer, BindingServerConfig};
    use crate::test_support::{TestRng, t0, very_early, very_late};

    const X: &str = "10.0.0.2:5000";
    const Y: &str = "10.0.0.2:5001";
    const SERVER: &str = "192.0.2.1:3478";

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    /// An endpoint-independent NAT whose mappings expire `lifetime` after their last
    /// outbound packet; inbound packets do not refresh them (RFC 4787 REQ-6 allows either).
    struct ExpiringNat {
        lifetime: Duration,
        /// (internal, external port, last outbound)
        mappings: Vec<(SocketAddr, u16, Instant)>,
        next_port: u16,
    }

    impl ExpiringNat {
        fn outbound(&mut self, now: Instant, internal: SocketAddr) -> SocketAddr {
            let lifetime = self.lifetime;
            self.mappings
                .retain(|(_, _, last)| now.saturating_duration_since(*last) < lifetime);
            let port = match self.mappings.iter_mut().find(|(i, _, _)| *i == internal) {
                Some(m) => {
                    m.2 = now;
                    m.1
                }
                None => {
                    self.next_port += 1;
                    self.mappings.push((internal, self.next_port, now));
                    self.next_port
                }
            };
            SocketAddr::new("203.0.113.1".parse().unwrap(), port)
        }

        fn inbound(&self, now: Instant, port: u16) -> Option<SocketAddr> {
            self.mappings
                .iter()
                .find(|(_, p, last)| {
                    *p == port && now.saturating_duration_since(*last) < self.lifetime
                })
                .map(|(i, _, _)| *i)
        }
    }

    fn quick() -> TransactionConfig {
        TransactionConfig {
            initial_rto: Duration::from_millis(100),
            min_rto: Duration::from_millis(100),
            request_count: 3,
            last_wait_factor: 4,
            ..TransactionConfig::default()
        }
    }

    fn run(lifetime: Duration, start: Instant) -> (BindingLifetime, Vec<(Duration, bool)>) {
        let mut nat = ExpiringNat {
            lifetime,
            mappings: vec![],
            next_port: 40_000,
        };
        let mut server = BindingServer::new(BindingServerConfig::new(addr(SERVER)));
        let mut config = LifetimeConfig::new(addr(X), addr(Y), addr(SERVER));
        config.transactions = quick();
        let mut d = LifetimeDiscovery::new(config, TestRng::new(4));
        d.handle_start(start).unwrap();
        let mut rounds = vec![];
        let mut now = start;
        loop {
            while let Some(t) = d.poll_transmit() {
                let external = nat.outbound(now, t.source);
                server.handle_datagram(now, t.transport, external, t.destination, &t.payload);
                while let Some(answer) = server.poll_transmit() {
                    if let Some(local) = nat.inbound(now, answer.destination.port()) {
                        d.handle_datagram(
                            now,
                            answer.transport,
                            answer.source,
                            local,
                            &answer.payload,
                        );
                    }
                }
            }
            while let Some(event) = d.poll_event() {
                match event {
                    LifetimeEvent::Round { wait, alive } => rounds.push((wait, alive)),
                    LifetimeEvent::Finished(result) => return (result, rounds),
                }
            }
            now = d.poll_timeout().expect("a deadline until finished");
            d.handle_timeout(now);
        }
    }

    #[test]
    fn the_lifetime_is_bracketed_to_the_resolution() {
        let secs = Duration::from_secs;
        let (result, rounds) = run(secs(47), t0());
        assert!(result.server_reachable);
        // Doubling: 10, 20, 40 s alive, 80 s gone; bisecting: 60, 50 gone, 45 alive.
        assert_eq!(
            rounds,
            [
                (secs(10), true),
                (secs(20), true),
                (secs(40), true),
                (secs(80), false),
                (secs(60), false),
                (secs(50), false),
                (secs(45), true),
            ]
        );
        assert_eq!(
            (result.at_least, result.less_than),
            (Some(secs(45)), Some(secs(50)))
        );
    }

    #[test]
    fn long_lived_and_unreachable_cases_end() {
        let (result, rounds) = run(Duration::from_secs(3600), t0());
        assert_eq!(result.at_least, Some(Duration::from_secs(600)));
        assert_eq!(result.less_than, None);
        assert_eq!(rounds.len(), 7, "10, 20, 40, 80, 160, 320, 600 s");

        let (result, _) = run(Duration::from_secs(3), very_early());
        assert_eq!(result.at_least, None);
        assert!(
            result
                .less_than
                .is_some_and(|d| d <= Duration::from_secs(5))
        );
        // At the end of time no wait can pass: every round's wait is cut short at the last
        // instant, the mapping always survives it, and the search ends at the longest wait
        // as for a long-lived mapping — in the same seven rounds, without a panic.
        let (result, rounds) = run(
            Duration::from_secs(3),
            very_late() - Duration::from_millis(100),
        );
        assert_eq!(result.at_least, Some(Duration::from_secs(600)));
        assert_eq!(rounds.len(), 7);
    }

    #[test]
    fn an_unreachable_server_is_reported() {
        let mut config = LifetimeConfig::new(addr(X), addr(Y), addr(SERVER));
        config.transactions = quick();
        let mut d = LifetimeDiscovery::new(config, TestRng::new(4));
        let start = t0();
        d.handle_start(start).unwrap();
        while d.poll_transmit().is_some() {}
        while let Some(at) = d.poll_timeout() {
            d.handle_timeout(at);
            while d.poll_transmit().is_some() {}
        }
        assert_eq!(
            d.poll_event(),
            Some(LifetimeEvent::Finished(BindingLifetime {
                at_least: None,
                less_than: None,
                server_reachable: false
            }))
        );
    }
}
