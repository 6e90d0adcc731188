//! RFC 5780 NAT behaviour discovery (`stun_proto::nat_behavior`) as a node: what `natcheck`
//! does over real UDP, run inside the simulator — so the NAT models and the discovery logic
//! check each other.

use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use stun_proto::nat_behavior::{NatDiscovery, NatDiscoveryConfig, NatEvent, NatReport};
use stun_proto::{Transmit, TransportProtocol};

use crate::Node;

/// A host running NAT behaviour discovery against an RFC 5780 server, once, from the start.
pub struct NatCheck {
    discovery: NatDiscovery<ChaCha8Rng>,
    start_at: Instant,
    started: bool,
    report: Option<NatReport>,
}

impl NatCheck {
    /// Discovery from `local` against the server's primary address `server`, starting at
    /// `start_at`; transaction ids drawn from `seed`.
    pub fn new(local: SocketAddr, server: SocketAddr, start_at: Instant, seed: u64) -> Self {
        let config = NatDiscoveryConfig::new(local, server);
        let discovery = NatDiscovery::new(config, ChaCha8Rng::seed_from_u64(seed));
        Self {
            discovery,
            start_at,
            started: false,
            report: None,
        }
    }

    /// The finished report, once every test is done.
    pub const fn report(&self) -> Option<&NatReport> {
        self.report.as_ref()
    }

    fn drain_events(&mut self) {
        while let Some(event) = self.discovery.poll_event() {
            if let NatEvent::Finished(report) = event {
                self.report = Some(report);
            }
        }
    }
}

impl Node for NatCheck {
    fn handle_datagram(
        &mut self,
        now: Instant,
        transport: TransportProtocol,
        source: SocketAddr,
        destination: SocketAddr,
        payload: Bytes,
    ) {
        (self.discovery).handle_datagram(now, transport, source, destination, &payload);
        self.drain_events();
    }

    fn handle_timeout(&mut self, now: Instant) {
        if self.started {
            self.discovery.handle_timeout(now);
        } else {
            self.started = true;
            // Starting can only fail when the transaction table is full, which it is not.
            let _ = self.discovery.handle_start(now);
        }
        self.drain_events();
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.discovery.poll_transmit()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        if self.started {
            self.discovery.poll_timeout()
        } else {
            Some(self.start_at)
        }
    }
}
