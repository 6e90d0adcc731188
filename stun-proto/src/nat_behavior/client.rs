//! The RFC 5780 NAT behaviour discovery client: from one local address, against a server
//! with two IP addresses and two ports, it runs
//!
//! ```text
//! MappingTest1   Binding to A1:P1 ─► X1, OTHER-ADDRESS A2:P2          (§4.3 test I)
//! FilteringTest2 CHANGE-REQUEST ip+port to A1:P1; answered: endpoint-independent (§4.4 II)
//! FilteringTest3 CHANGE-REQUEST port to A1:P1; answered: address-dependent,
//!                                        else address-and-port-dependent (§4.4 test III)
//! MappingTest2   Binding to A2:P1 ─► X2; X2 == X1: endpoint-independent (§4.3 test II)
//! MappingTest3   Binding to A2:P2 ─► X3; X3 == X2: address-dependent,
//!                                        else address-and-port-dependent (§4.3 test III)
//! Hairpinning    Binding to X1 from the same socket; it arrives back: hairpins (§4.5)
//! ```
//!
//! The filtering tests run before mapping tests II and III on purpose: those send to A2,
//! which would open an address-dependent filter to A2 and make the filtering test see an
//! endpoint-independent NAT.
//!
//! in that order, one transaction at a time, and reports a [`NatReport`]. Filtering tests
//! that go unanswered end by transaction timeout, so their duration is the transaction
//! configuration's (39.5 s with RFC 8489's defaults; tools use shorter ones).

use std::net::SocketAddr;
use std::time::Instant;

use rand_core::RngCore;

use crate::attribute::ChangeRequest;
use crate::binding::client::Handled;
use crate::binding::{BindingClient, BindingEvent, BindingOptions, BindingResult};
use crate::header::{Class, Method, TransactionId};
use crate::message::Message;
use crate::nat_behavior::classify::{FilteringBehavior, MappingBehavior, NatReport};
use crate::transaction::{TransactionConfig, TransactionError};
use crate::transmit::{Transmit, TransportProtocol};

/// How a [`NatDiscovery`] runs.
#[derive(Clone, Debug)]
pub struct NatDiscoveryConfig {
    /// The local address the tests are sent from.
    pub local: SocketAddr,
    /// The server's primary address (A1:P1).
    pub server: SocketAddr,
    /// Retransmission settings for every test.
    pub transactions: TransactionConfig,
    /// Run the hairpinning test (RFC 5780 §4.5) when behind a NAT.
    pub test_hairpinning: bool,
}

impl NatDiscoveryConfig {
    /// Tests from `local` against `server`, RFC 8489 transaction defaults, hairpinning on.
    pub fn new(local: SocketAddr, server: SocketAddr) -> Self {
        Self {
            local,
            server,
            transactions: TransactionConfig::default(),
            test_hairpinning: true,
        }
    }
}

/// What the application learns from a [`NatDiscovery`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NatEvent {
    /// The primary server answered test I: the mapped address is known.
    Mapped(BindingResult),
    /// Every test is done.
    Finished(NatReport),
}

/// What is known so far.
#[derive(Clone, Copy, Debug)]
struct Known {
    x1: SocketAddr,
    other: SocketAddr,
    mapping: Option<MappingBehavior>,
    filtering: Option<FilteringBehavior>,
}

/// Where the discovery stands: each state waits for one test's answer.
#[derive(Clone, Copy, Debug)]
enum State {
    /// Not started.
    Idle,
    /// §4.3 test I, to A1:P1.
    MappingTest1,
    /// §4.4 test II: change IP and port.
    FilteringTest2(Known),
    /// §4.4 test III: change port.
    FilteringTest3(Known),
    /// §4.3 test II, to A2:P1.
    MappingTest2(Known),
    /// §4.3 test III, to A2:P2; holds X2.
    MappingTest3(Known, SocketAddr),
    /// §4.5: our request to X1 should come back to us.
    Hairpinning(Known, TransactionId),
    /// Done.
    Finished,
}

/// The RFC 5780 NAT behaviour discovery client.
///
/// # Drive loop
/// Call [`handle_start`](Self::handle_start) once. After it and every other `handle_*` call
/// — [`handle_datagram`](Self::handle_datagram) for every datagram received on the local
/// socket, [`handle_timeout`](Self::handle_timeout) — send everything
/// [`poll_transmit`](Self::poll_transmit) returns (all from `local`), read
/// [`poll_event`](Self::poll_event) until `None`, and call `handle_timeout` at
/// [`poll_timeout`](Self::poll_timeout). [`NatEvent::Finished`] ends the run.
#[derive(Debug)]
pub struct NatDiscovery<R> {
    config: NatDiscoveryConfig,
    client: BindingClient<R>,
    state: State,
    events: std::collections::VecDeque<NatEvent>,
}

impl<R: RngCore> NatDiscovery<R> {
    /// A discovery run, not yet started.
    pub fn new(config: NatDiscoveryConfig, rng: R) -> Self {
        let client = BindingClient::new(
            config.local,
            TransportProtocol::Udp,
            config.transactions.clone(),
            rng,
        );
        Self {
            config,
            client,
            state: State::Idle,
            events: std::collections::VecDeque::with_capacity(2),
        }
    }

    /// Sends test I.
    pub fn handle_start(&mut self, now: Instant) -> Result<(), TransactionError> {
        if !matches!(self.state, State::Idle) {
            return Ok(());
        }
        self.query(now, self.config.server, None)?;
        self.state = State::MappingTest1;
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
        if let State::Hairpinning(known, id) = self.state {
            if let Ok(m) = Message::parse(datagram) {
                let ours = m.method() == Method::BINDING
                    && m.class() == Class::Request
                    && m.transaction_id() == id;
                if ours {
                    self.client.handle_cancel(now, id);
                    self.finish(known, Some(true));
                    return Handled::Response(id);
                }
            }
        }
        let handled = (self.client).handle_datagram(now, transport, source, destination, datagram);
        self.pump(now);
        handled
    }

    /// Retransmits and moves on from tests that went unanswered.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.client.handle_timeout(now);
        self.pump(now);
    }

    /// The next request to send from the local address.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.client.poll_transmit()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<NatEvent> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.client.poll_timeout()
    }

    /// Whether every test is done.
    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Finished)
    }

    fn query(
        &mut self,
        now: Instant,
        to: SocketAddr,
        change: Option<ChangeRequest>,
    ) -> Result<TransactionId, TransactionError> {
        let options = BindingOptions {
            change_request: change,
            ..BindingOptions::default()
        };
        self.client.handle_query(now, to, options)
    }

    /// Advances on every Binding outcome.
    fn pump(&mut self, now: Instant) {
        while let Some(event) = self.client.poll_event() {
            let answer = match event {
                BindingEvent::Mapped { result, .. } => Some(result),
                BindingEvent::Failed { .. } => None,
            };
            if self.advance(now, answer).is_err() {
                // Only a full transaction table refuses a query, and we run one at a time;
                // should it happen, report what is known rather than stall.
                self.report(None, None, None, None, None);
            }
        }
    }

    /// One step of the flow in the module header.
    fn advance(
        &mut self,
        now: Instant,
        answer: Option<BindingResult>,
    ) -> Result<(), TransactionError> {
        let server = self.config.server;
        match (self.state, answer) {
            (State::MappingTest1, None) => self.report(None, None, None, None, None),
            (State::MappingTest1, Some(r)) => {
                self.events.push_back(NatEvent::Mapped(r));
                match r.other_address {
                    // No OTHER-ADDRESS: not an RFC 5780 server; nothing more to test.
                    None => self.report(Some(r.mapped), None, None, None, None),
                    Some(other) => {
                        let known = Known {
                            x1: r.mapped,
                            other,
                            mapping: None,
                            filtering: None,
                        };
                        let change = ChangeRequest {
                            change_ip: true,
                            change_port: true,
                        };
                        self.query(now, server, Some(change))?;
                        self.state = State::FilteringTest2(known);
                    }
                }
            }
            (State::FilteringTest2(known), Some(_)) => {
                let filtering = Some(FilteringBehavior::EndpointIndependent);
                self.start_mapping(now, Known { filtering, ..known })?;
            }
            (State::FilteringTest2(known), None) => {
                let change = ChangeRequest {
                    change_ip: false,
                    change_port: true,
                };
                self.query(now, server, Some(change))?;
                self.state = State::FilteringTest3(known);
            }
            (State::FilteringTest3(known), answer) => {
                let filtering = Some(if answer.is_some() {
                    FilteringBehavior::AddressDependent
                } else {
                    FilteringBehavior::AddressAndPortDependent
                });
                self.start_mapping(now, Known { filtering, ..known })?;
            }
            (State::MappingTest2(known), Some(r)) if r.mapped == known.x1 => {
                let mapping = Some(MappingBehavior::EndpointIndependent);
                self.start_hairpinning(now, Known { mapping, ..known })?;
            }
            (State::MappingTest2(known), Some(r)) => {
                self.query(now, known.other, None)?;
                self.state = State::MappingTest3(known, r.mapped);
            }
            (State::MappingTest3(known, x2), Some(r)) => {
                let mapping = Some(if r.mapped == x2 {
                    MappingBehavior::AddressDependent
                } else {
                    MappingBehavior::AddressAndPortDependent
                });
                self.start_hairpinning(now, Known { mapping, ..known })?;
            }
            (State::MappingTest2(known) | State::MappingTest3(known, _), None) => {
                // The alternate address never answered: mapping undetermined.
                self.start_hairpinning(now, known)?;
            }
            (State::Hairpinning(known, _), _) => self.finish(known, Some(false)),
            (State::Idle | State::Finished, _) => {}
        }
        Ok(())
    }

    /// §4.3 test II, to the alternate IP and the primary port.
    fn start_mapping(&mut self, now: Instant, known: Known) -> Result<(), TransactionError> {
        let to = SocketAddr::new(known.other.ip(), self.config.server.port());
        self.query(now, to, None)?;
        self.state = State::MappingTest2(known);
        Ok(())
    }

    fn start_hairpinning(&mut self, now: Instant, known: Known) -> Result<(), TransactionError> {
        if !self.config.test_hairpinning || known.x1 == self.config.local {
            self.finish(known, None);
            return Ok(());
        }
        let id = self.query(now, known.x1, None)?;
        self.state = State::Hairpinning(known, id);
        Ok(())
    }

    fn finish(&mut self, known: Known, hairpinning: Option<bool>) {
        self.report(
            Some(known.x1),
            Some(known.other),
            known.mapping,
            known.filtering,
            hairpinning,
        );
    }

    fn report(
        &mut self,
        mapped: Option<SocketAddr>,
        other_address: Option<SocketAddr>,
        mapping: Option<MappingBehavior>,
        filtering: Option<FilteringBehavior>,
        hairpinning: Option<bool>,
    ) {
        self.state = State::Finished;
        self.events.push_back(NatEvent::Finished(NatReport {
            local: self.config.local,
            mapped,
            other_address,
            mapping,
            filtering,
            hairpinning,
        }));
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;
    use std::time::Duration;

    use super::*;
    use crate::binding::{BindingServer, BindingServerConfig};
    use crate::nat_behavior::ClassicNatType;
    use crate::test_support::{TestRng, t0, very_early, very_late};

    const LOCAL: &str = "10.0.0.2:5000";
    const A1P1: &str = "192.0.2.1:3478";
    const A2P2: &str = "192.0.2.2:3479";
    const PUBLIC_IP: &str = "203.0.113.1";

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    /// An in-memory NAT with RFC 4787 behaviours, or no NAT at all (`None` mapping).
    struct FakeNat {
        mapping: Option<MappingBehavior>,
        filtering: FilteringBehavior,
        hairpin: bool,
        blocked: bool,
        /// (mapping key, external port)
        bindings: Vec<(Option<SocketAddr>, u16)>,
        /// Remote addresses the client has sent to.
        contacted: Vec<SocketAddr>,
    }

    impl FakeNat {
        fn new(mapping: Option<MappingBehavior>, filtering: FilteringBehavior) -> Self {
            Self {
                mapping,
                filtering,
                hairpin: false,
                blocked: false,
                bindings: vec![],
                contacted: vec![],
            }
        }

        fn public_ip(&self) -> IpAddr {
            match self.mapping {
                None => addr(LOCAL).ip(),
                Some(_) => PUBLIC_IP.parse().unwrap(),
            }
        }

        /// The external address a packet to `to` leaves with.
        fn outbound(&mut self, to: SocketAddr) -> SocketAddr {
            self.contacted.push(to);
            let key = match self.mapping {
                None => return addr(LOCAL),
                Some(MappingBehavior::EndpointIndependent) => None,
                Some(MappingBehavior::AddressDependent) => Some(SocketAddr::new(to.ip(), 0)),
                Some(MappingBehavior::AddressAndPortDependent) => Some(to),
            };
            let port = match self.bindings.iter().find(|(k, _)| *k == key) {
                Some((_, port)) => *port,
                None => {
                    let port = 40_000 + self.bindings.len() as u16;
                    self.bindings.push((key, port));
                    port
                }
            };
            SocketAddr::new(self.public_ip(), port)
        }

        /// Whether a packet from `from` gets in.
        fn admits(&self, from: SocketAddr) -> bool {
            match self.filtering {
                FilteringBehavior::EndpointIndependent => true,
                FilteringBehavior::AddressDependent => {
                    self.contacted.iter().any(|c| c.ip() == from.ip())
                }
                FilteringBehavior::AddressAndPortDependent => self.contacted.contains(&from),
            }
        }
    }

    /// Runs a discovery through `nat` against an RFC 5780 server (or a single-address one)
    /// on the virtual clock; returns the report and how long it took.
    fn run(
        mut nat: FakeNat,
        rfc5780: bool,
        config: TransactionConfig,
        start: Instant,
    ) -> (NatReport, Duration) {
        let mut server_config = BindingServerConfig::new(addr(A1P1));
        if rfc5780 {
            server_config.alternate = Some(addr(A2P2));
        }
        let mut server = BindingServer::new(server_config);
        let mut discovery_config = NatDiscoveryConfig::new(addr(LOCAL), addr(A1P1));
        discovery_config.transactions = config;
        let mut d = NatDiscovery::new(discovery_config, TestRng::new(1));
        d.handle_start(start).unwrap();
        let mut now = start;
        loop {
            while let Some(t) = d.poll_transmit() {
                assert_eq!(t.source, addr(LOCAL));
                if nat.blocked {
                    continue;
                }
                let external = nat.outbound(t.destination);
                if t.destination.ip() == nat.public_ip() {
                    // Sent to our own mapped address: back in only if the NAT hairpins.
                    if nat.hairpin {
                        d.handle_datagram(now, t.transport, external, t.source, &t.payload);
                    }
                    continue;
                }
                server.handle_datagram(now, t.transport, external, t.destination, &t.payload);
                while let Some(answer) = server.poll_transmit() {
                    if answer.destination.ip() == nat.public_ip() && nat.admits(answer.source) {
                        // Through the NAT: back to the local address.
                        let local = addr(LOCAL);
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
                if let NatEvent::Finished(report) = event {
                    assert!(d.is_finished());
                    return (report, now.saturating_duration_since(start));
                }
            }
            now = d
                .poll_timeout()
                .expect("an unfinished discovery has a deadline");
            d.handle_timeout(now);
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

    #[test]
    fn every_nat_behaviour_is_told_apart_and_classified() {
        use FilteringBehavior as F;
        use MappingBehavior as M;
        let cases = [
            (None, F::EndpointIndependent, ClassicNatType::OpenInternet),
            (
                None,
                F::AddressAndPortDependent,
                ClassicNatType::SymmetricUdpFirewall,
            ),
            (
                Some(M::EndpointIndependent),
                F::EndpointIndependent,
                ClassicNatType::FullCone,
            ),
            (
                Some(M::EndpointIndependent),
                F::AddressDependent,
                ClassicNatType::RestrictedCone,
            ),
            (
                Some(M::EndpointIndependent),
                F::AddressAndPortDependent,
                ClassicNatType::PortRestrictedCone,
            ),
            (
                Some(M::AddressDependent),
                F::AddressDependent,
                ClassicNatType::Symmetric,
            ),
            (
                Some(M::AddressAndPortDependent),
                F::AddressAndPortDependent,
                ClassicNatType::Symmetric,
            ),
        ];
        for (mapping, filtering, expected) in cases {
            let (report, _) = run(FakeNat::new(mapping, filtering), true, quick(), t0());
            let label = format!("{mapping:?}/{filtering:?}");
            assert_eq!(report.classic_type(), expected, "{label}");
            assert_eq!(report.filtering, Some(filtering), "{label}");
            assert_eq!(
                report.mapping,
                Some(mapping.unwrap_or(M::EndpointIndependent)),
                "{label}"
            );
            assert_eq!(report.is_behind_nat(), Some(mapping.is_some()), "{label}");
            assert_eq!(report.other_address, Some(addr(A2P2)));
        }
    }

    #[test]
    fn hairpinning_is_detected_both_ways() {
        for hairpin in [false, true] {
            let mut nat = FakeNat::new(
                Some(MappingBehavior::EndpointIndependent),
                FilteringBehavior::EndpointIndependent,
            );
            nat.hairpin = hairpin;
            let (report, _) = run(nat, true, quick(), t0());
            assert_eq!(report.hairpinning, Some(hairpin));
        }
        // No NAT: nothing to hairpin.
        let nat = FakeNat::new(None, FilteringBehavior::EndpointIndependent);
        assert_eq!(run(nat, true, quick(), t0()).0.hairpinning, None);
    }

    #[test]
    fn blocked_udp_and_servers_without_rfc_5780_are_reported() {
        let mut nat = FakeNat::new(None, FilteringBehavior::EndpointIndependent);
        nat.blocked = true;
        let (report, took) = run(nat, true, TransactionConfig::default(), t0());
        assert_eq!(report.classic_type(), ClassicNatType::UdpBlocked);
        assert_eq!(
            took,
            Duration::from_millis(39_500),
            "one full RFC 8489 timeout"
        );

        let nat = FakeNat::new(
            Some(MappingBehavior::EndpointIndependent),
            FilteringBehavior::EndpointIndependent,
        );
        let (report, _) = run(nat, false, quick(), t0());
        assert_eq!(report.mapped, Some(addr("203.0.113.1:40000")));
        assert_eq!(report.other_address, None);
        assert_eq!((report.mapping, report.filtering), (None, None));
        assert_eq!(report.classic_type(), ClassicNatType::Unknown);
    }

    #[test]
    fn filtering_timeouts_follow_the_transaction_settings() {
        // Port-restricted: filtering tests II and III both go unanswered, each ending after
        // Rc = 3 sends (0, 100, 300 ms) and Rm × RTO = 400 ms: 700 ms apiece.
        let nat = FakeNat::new(
            Some(MappingBehavior::EndpointIndependent),
            FilteringBehavior::AddressAndPortDependent,
        );
        let mut no_hairpin = quick();
        no_hairpin.max_outstanding = 4;
        let (report, took) = run(nat, true, no_hairpin, t0());
        assert_eq!(report.classic_type(), ClassicNatType::PortRestrictedCone);
        // Two filtering timeouts and the unanswered hairpin test.
        assert_eq!(took, Duration::from_millis(3 * 700));
    }

    #[test]
    fn very_early_timestamps_are_harmless() {
        let nat = FakeNat::new(None, FilteringBehavior::EndpointIndependent);
        let (report, _) = run(nat, true, quick(), very_early());
        assert_eq!(report.classic_type(), ClassicNatType::OpenInternet);
    }

    #[test]
    fn very_late_timestamps_are_harmless() {
        let end = very_late();
        let nat = FakeNat::new(None, FilteringBehavior::EndpointIndependent);
        let (report, _) = run(nat, true, quick(), end - Duration::from_millis(10));
        assert_eq!(report.classic_type(), ClassicNatType::OpenInternet);
        // A server that never answers: the tests time out at the end of time.
        let mut nat = FakeNat::new(None, FilteringBehavior::EndpointIndependent);
        nat.blocked = true;
        let (report, took) = run(nat, true, quick(), end - Duration::from_millis(10));
        assert_eq!(report.classic_type(), ClassicNatType::UdpBlocked);
        assert!(took <= Duration::from_millis(10));
    }
}
