//! The world: a virtual clock, a deterministic event queue, networks joined by NAT boxes, hosts
//! running sans-IO nodes, links between them, a signalling side channel, a trace hash and an
//! optional pcap capture.
//!
//! Networks form a tree: the internet at the root, each NAT joining an inside network to the
//! network its outside address lives in. A packet travels hop by hop, each hop an event:
//! up the sender's link into its network; to a host there (down that host's link), to a NAT
//! whose outside address it is for (down the NAT's uplink, then inbound translation), or up
//! to the network's own NAT (outbound translation, then up the NAT's uplink). Every random
//! draw comes from one seeded RNG, in event order, so a seed fixes the whole run.
//!
//! Packets are UDP datagrams or TCP segments. Each host runs a TCP stack ([`crate::tcp`]) as
//! its kernel would: a node's TCP transmit becomes a write on a connection (opened on first
//! use), segments cross links and NATs like datagrams, and what arrives in order is handed
//! to the node as one write of the other side.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use sha2::{Digest, Sha256};

use crate::link::{Link, LinkDrop};
use crate::nat::{Nat, NatConfig, NatDrop};
use crate::node::Node;
use crate::pcap::PcapWriter;
use crate::tcp::{self, Segment};
use stun_proto::TransportProtocol;

/// A network: the internet, or the inside of a NAT.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NetworkId(usize);

/// A host: one node with one or more addresses in one network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HostId(usize);

/// A NAT box.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NatId(usize);

struct Network {
    /// The NAT this network sits behind; `None` for the internet.
    behind: Option<NatId>,
}

struct Host {
    name: String,
    network: NetworkId,
    addresses: Vec<IpAddr>,
    link: Link,
    node: Box<dyn Node>,
    /// The deadline the node asked for and a timer event is queued for.
    wakeup: Option<Instant>,
    /// Where its signalling lines go, and how long they take.
    signalling: Option<(HostId, Duration)>,
    /// Its TCP connections.
    tcp: tcp::Stack,
    /// The retransmission deadline a TCP timer event is queued for.
    tcp_wakeup: Option<Instant>,
}

struct NatBox {
    nat: Nat,
    inside: NetworkId,
    outside: NetworkId,
    link: Link,
}

/// Where a datagram is when its event fires.
#[derive(Clone, Copy, Debug)]
enum Hop {
    /// Arrived in a network: route it.
    Network(NetworkId),
    /// Arrived at a host: deliver it.
    Host(HostId),
    /// Arrived at a NAT from outside: translate inbound.
    NatOutside(NatId),
}

/// A packet on the wire: a UDP datagram, or a TCP segment (`tcp` holds its header fields,
/// `payload` its data).
#[derive(Clone, Debug)]
struct Datagram {
    source: SocketAddr,
    destination: SocketAddr,
    tcp: Option<TcpHeader>,
    payload: Bytes,
}

/// A TCP segment's header fields, as the world carries them.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TcpHeader {
    pub(crate) flags: tcp::Flags,
    pub(crate) seq: u32,
    pub(crate) ack: u32,
}

impl Datagram {
    fn transport(&self) -> TransportProtocol {
        if self.tcp.is_some() {
            TransportProtocol::Tcp
        } else {
            TransportProtocol::Udp
        }
    }
}

enum Event {
    Datagram(Hop, Datagram),
    Timer(HostId),
    TcpTimer(HostId),
    Signal(HostId, String),
}

/// Why the world dropped a datagram: every drop is counted under its reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DropReason {
    /// Lost on a link.
    Lost,
    /// Larger than a link's MTU.
    TooBig,
    /// A NAT refused it.
    Nat(NatDrop),
    /// Nobody has the destination address.
    NoRoute,
}

/// What happened in a run, for assertions and the matrix's columns.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Datagrams nodes sent.
    pub sent: u64,
    /// Datagrams delivered to nodes.
    pub delivered: u64,
    /// Datagrams dropped, by reason.
    pub dropped: BTreeMap<DropReason, u64>,
    /// Datagrams each host sent.
    pub sent_by: BTreeMap<HostId, u64>,
    /// TCP connections that ended, by why.
    pub tcp_closed: BTreeMap<tcp::Closed, u64>,
}

/// A simulated world. See the module documentation.
pub struct World {
    start: Instant,
    now: Instant,
    rng: ChaCha8Rng,
    queue: BTreeMap<(Instant, u64), Event>,
    next_seq: u64,
    networks: Vec<Network>,
    hosts: Vec<Host>,
    nats: Vec<NatBox>,
    trace: Sha256,
    stats: Stats,
    pcap: Option<PcapWriter<Box<dyn Write>>>,
}

impl World {
    /// An empty world whose clock starts at `start`, all randomness drawn from `seed`.
    ///
    /// `start` is only an origin: every behaviour depends on durations since it, so two runs
    /// with the same seed are identical whatever `start` is ([`crate::epoch`] gives one).
    pub fn new(seed: u64, start: Instant) -> Self {
        Self {
            start,
            now: start,
            rng: ChaCha8Rng::seed_from_u64(seed),
            queue: BTreeMap::new(),
            next_seq: 0,
            networks: vec![Network { behind: None }],
            hosts: Vec::new(),
            nats: Vec::new(),
            trace: Sha256::new(),
            stats: Stats::default(),
            pcap: None,
        }
    }

    /// The internet: the network at the root.
    pub const fn internet(&self) -> NetworkId {
        NetworkId(0)
    }

    /// Adds a NAT whose outside address `external_ip` is in `outside`; returns it and the new
    /// network inside it.
    pub fn add_nat(
        &mut self,
        outside: NetworkId,
        config: NatConfig,
        external_ip: IpAddr,
        link: Link,
    ) -> (NatId, NetworkId) {
        let inside = NetworkId(self.networks.len());
        let id = NatId(self.nats.len());
        self.networks.push(Network { behind: Some(id) });
        self.nats.push(NatBox {
            nat: Nat::new(config, external_ip),
            inside,
            outside,
            link,
        });
        (id, inside)
    }

    /// Adds a host in `network` with `addresses`, running `node`.
    pub fn add_host(
        &mut self,
        name: &str,
        network: NetworkId,
        addresses: &[IpAddr],
        link: Link,
        node: impl Node,
    ) -> HostId {
        let id = HostId(self.hosts.len());
        self.hosts.push(Host {
            name: name.to_owned(),
            network,
            addresses: addresses.to_vec(),
            link,
            node: Box::new(node),
            wakeup: None,
            signalling: None,
            tcp: tcp::Stack::default(),
            tcp_wakeup: None,
        });
        self.service(id);
        id
    }

    /// Joins two hosts' signalling: each one's lines reach the other after `delay`.
    pub fn connect_signalling(&mut self, a: HostId, b: HostId, delay: Duration) {
        self.hosts[a.0].signalling = Some((b, delay));
        self.hosts[b.0].signalling = Some((a, delay));
        self.service(a);
        self.service(b);
    }

    /// Writes every datagram from now on to a pcap capture.
    pub fn capture(&mut self, out: Box<dyn Write>) -> std::io::Result<()> {
        self.pcap = Some(PcapWriter::new(out)?);
        Ok(())
    }

    /// Ends the capture, flushing it.
    pub fn finish_capture(&mut self) -> std::io::Result<()> {
        self.pcap
            .take()
            .map(PcapWriter::into_inner)
            .transpose()
            .map(drop)
    }

    /// The current virtual time.
    pub const fn now(&self) -> Instant {
        self.now
    }

    /// Virtual time elapsed since the start.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// What happened so far.
    pub const fn stats(&self) -> &Stats {
        &self.stats
    }

    /// A hash of everything that happened so far (deliveries, drops, signals, with their
    /// virtual times): equal for equal runs, bit for bit.
    pub fn trace_hash(&self) -> String {
        let digest = self.trace.clone().finalize();
        digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
    }

    /// The node of `host`, if it is a `T`.
    pub fn node<T: Node>(&self, host: HostId) -> Option<&T> {
        let node: &dyn std::any::Any = self.hosts.get(host.0)?.node.as_ref();
        node.downcast_ref()
    }

    /// Runs `f` on the node of `host` (if it is a `T`) at the current time, then services the
    /// node (sends what it queued, re-arms its timer). For commands from "the application".
    pub fn with_node<T: Node, R>(
        &mut self,
        host: HostId,
        f: impl FnOnce(&mut T, Instant) -> R,
    ) -> Option<R> {
        let now = self.now;
        let node: &mut dyn std::any::Any = self.hosts.get_mut(host.0)?.node.as_mut();
        let result = f(node.downcast_mut()?, now);
        self.service(host);
        Some(result)
    }

    /// The network `host` is in.
    pub fn network_of(&self, host: HostId) -> NetworkId {
        self.hosts[host.0].network
    }

    /// The NAT box `nat`.
    pub fn nat(&self, nat: NatId) -> &Nat {
        &self.nats[nat.0].nat
    }

    /// Processes events up to and including `deadline`, then sets the clock to it.
    pub fn run_until(&mut self, deadline: Instant) {
        while self.step(deadline) {}
        self.now = self.now.max(deadline);
    }

    /// Runs for `duration` of virtual time.
    pub fn run_for(&mut self, duration: Duration) {
        self.run_until(self.now + duration);
    }

    /// Runs until `done` holds (checked after each event) or `limit` of virtual time passes;
    /// returns whether `done` held. The clock stops at the event that made `done` true.
    pub fn run_until_condition(
        &mut self,
        limit: Duration,
        mut done: impl FnMut(&World) -> bool,
    ) -> bool {
        let deadline = self.now + limit;
        while !done(self) {
            if !self.step(deadline) {
                self.now = self.now.max(deadline);
                return done(self);
            }
        }
        true
    }

    /// Processes the next event if it is due by `deadline`; says whether there was one.
    fn step(&mut self, deadline: Instant) -> bool {
        let Some(entry) = self.queue.first_entry() else {
            return false;
        };
        let (at, _) = *entry.key();
        if at > deadline {
            return false;
        }
        let event = entry.remove();
        self.now = at;
        // Every diagnostic the nodes print while handling this event carries the virtual time.
        let elapsed = self.elapsed().as_secs_f64();
        let _span = tracing::info_span!("sim", t = %format_args!("{elapsed:.3}s")).entered();
        self.process(event);
        true
    }

    fn schedule(&mut self, at: Instant, event: Event) {
        self.queue.insert((at.max(self.now), self.next_seq), event);
        self.next_seq += 1;
    }

    fn process(&mut self, event: Event) {
        match event {
            Event::Timer(host) => {
                let h = &mut self.hosts[host.0];
                if h.wakeup.is_some_and(|w| w <= self.now) {
                    h.wakeup = None;
                    h.node.handle_timeout(self.now);
                    self.service(host);
                }
            }
            Event::Signal(host, line) => {
                self.record(
                    b"signal",
                    &(host.0 as u64).to_be_bytes(),
                    None,
                    line.as_bytes(),
                );
                self.hosts[host.0].node.handle_signal(self.now, line);
                self.service(host);
            }
            Event::TcpTimer(host) => {
                let h = &mut self.hosts[host.0];
                if h.tcp_wakeup.is_some_and(|w| w <= self.now) {
                    h.tcp_wakeup = None;
                    let out = h.tcp.handle_timeout(self.now);
                    self.carry(host, out);
                }
            }
            Event::Datagram(hop, d) => self.arrive(hop, d),
        }
    }

    /// Carries out what a host's TCP stack asked for, then re-arms its timer.
    fn carry(&mut self, host: HostId, out: Vec<tcp::Output>) {
        let mut delivered = false;
        for o in out {
            match o {
                tcp::Output::Send {
                    local,
                    remote,
                    segment,
                } => {
                    let d = Datagram {
                        source: local,
                        destination: remote,
                        tcp: Some(TcpHeader {
                            flags: segment.flags,
                            seq: segment.seq,
                            ack: segment.ack,
                        }),
                        payload: segment.payload,
                    };
                    self.emit(host, d);
                }
                tcp::Output::Deliver {
                    local,
                    remote,
                    payload,
                } => {
                    let d = Datagram {
                        source: remote,
                        destination: local,
                        tcp: None,
                        payload,
                    };
                    self.deliver(host, TransportProtocol::Tcp, d);
                    delivered = true;
                }
                tcp::Output::Closed { why, .. } => {
                    *self.stats.tcp_closed.entry(why).or_default() += 1;
                }
            }
        }
        if delivered {
            self.service(host);
        }
        let h = &mut self.hosts[host.0];
        let wanted = h.tcp.poll_timeout();
        if wanted != h.tcp_wakeup {
            h.tcp_wakeup = wanted;
            if let Some(at) = wanted {
                self.schedule(at, Event::TcpTimer(host));
            }
        }
    }

    /// A fresh initial sequence number (RFC 9293 §3.4.1 wants them unpredictable; here they
    /// only need to be reproducible).
    fn iss(&mut self) -> u32 {
        self.rng.next_u32()
    }

    /// Sends what a node queued, forwards its signalling, and re-arms its timer.
    fn service(&mut self, host: HostId) {
        while let Some(t) = self.hosts[host.0].node.poll_transmit() {
            if t.transport == TransportProtocol::Tcp {
                let iss = self.iss();
                let now = self.now;
                let out =
                    self.hosts[host.0]
                        .tcp
                        .write(now, t.source, t.destination, t.payload, iss);
                self.carry(host, out);
                continue;
            }
            let d = Datagram {
                source: t.source,
                destination: t.destination,
                tcp: None,
                payload: t.payload,
            };
            self.emit(host, d);
        }
        while let Some(line) = self.hosts[host.0].node.poll_signal() {
            if let Some((peer, delay)) = self.hosts[host.0].signalling {
                self.schedule(self.now + delay, Event::Signal(peer, line));
            }
        }
        let h = &mut self.hosts[host.0];
        let wanted = h.node.poll_timeout();
        if wanted != h.wakeup {
            h.wakeup = wanted;
            if let Some(at) = wanted {
                self.schedule(at, Event::Timer(host));
            }
        }
    }

    fn emit(&mut self, host: HostId, d: Datagram) {
        self.stats.sent += 1;
        *self.stats.sent_by.entry(host).or_default() += 1;
        let h = &self.hosts[host.0];
        if !h.addresses.contains(&d.source.ip()) {
            // A node sending from an address it does not have is a bug in the node.
            panic!(
                "{} sent from {} which is not one of its addresses {:?}",
                h.name, d.source, h.addresses
            );
        }
        let (link, network) = (h.link.up, h.network);
        self.capture_datagram(&d);
        self.traverse(link, Hop::Network(network), d);
    }

    /// Sends `d` over one direction of a link towards `next`.
    fn traverse(&mut self, path: crate::link::Path, next: Hop, d: Datagram) {
        // IPv4 or IPv6 header, then UDP's 8 bytes or TCP's 20.
        let transport_header = if d.tcp.is_some() { 20 } else { 8 };
        let ip_size =
            d.payload.len() + transport_header + if d.destination.is_ipv4() { 20 } else { 40 };
        match path.traverse(&mut self.rng, ip_size) {
            Ok(delays) => {
                for delay in delays {
                    self.schedule(self.now + delay, Event::Datagram(next, d.clone()));
                }
            }
            Err(LinkDrop::Lost) => self.drop_datagram(DropReason::Lost, &d),
            Err(LinkDrop::TooBig) => self.drop_datagram(DropReason::TooBig, &d),
        }
    }

    fn arrive(&mut self, hop: Hop, d: Datagram) {
        match hop {
            Hop::Network(network) => self.route(network, d),
            Hop::Host(host) => {
                if let Some(header) = d.tcp {
                    let segment = Segment {
                        flags: header.flags,
                        seq: header.seq,
                        ack: header.ack,
                        payload: d.payload,
                    };
                    let iss = self.iss();
                    let now = self.now;
                    let h = &mut self.hosts[host.0];
                    let listening = h.node.listens(d.destination);
                    let out = h
                        .tcp
                        .receive(now, d.destination, d.source, segment, listening, iss);
                    return self.carry(host, out);
                }
                self.deliver(host, TransportProtocol::Udp, d);
                self.service(host);
            }
            Hop::NatOutside(id) => {
                let nat = &mut self.nats[id.0];
                match nat
                    .nat
                    .inbound(self.now, d.transport(), d.source, d.destination.port())
                {
                    Ok(internal) => {
                        let inside = nat.inside;
                        let d = Datagram {
                            destination: internal,
                            ..d
                        };
                        self.capture_datagram(&d);
                        self.route(inside, d);
                    }
                    Err(e) => self.drop_datagram(DropReason::Nat(e), &d),
                }
            }
        }
    }

    /// Hands `d` to `host`'s node (over TCP: one write of the other side), recorded in the
    /// trace.
    fn deliver(&mut self, host: HostId, transport: TransportProtocol, d: Datagram) {
        self.stats.delivered += 1;
        let kind: &[u8] = match transport {
            TransportProtocol::Tcp => b"deliver-tcp",
            _ => b"deliver",
        };
        self.record(kind, &(host.0 as u64).to_be_bytes(), Some(&d), &d.payload);
        let now = self.now;
        self.hosts[host.0]
            .node
            .handle_datagram(now, transport, d.source, d.destination, d.payload);
    }

    /// Decides the next hop of a datagram that is in `network`.
    fn route(&mut self, network: NetworkId, d: Datagram) {
        let dst = d.destination.ip();
        if let Some(host) = self
            .hosts
            .iter()
            .position(|h| h.network == network && h.addresses.contains(&dst))
        {
            let path = self.hosts[host].link.down;
            return self.traverse(path, Hop::Host(HostId(host)), d);
        }
        if let Some(nat) = self
            .nats
            .iter()
            .position(|n| n.outside == network && n.nat.external_ip() == dst)
        {
            let path = self.nats[nat].link.down;
            return self.traverse(path, Hop::NatOutside(NatId(nat)), d);
        }
        match self.networks[network.0].behind {
            Some(nat) => self.nat_outbound(nat, d),
            None => self.drop_datagram(DropReason::NoRoute, &d),
        }
    }

    fn nat_outbound(&mut self, id: NatId, d: Datagram) {
        let now = self.now;
        let nat = &mut self.nats[id.0];
        let external =
            match nat
                .nat
                .outbound(now, &mut self.rng, d.transport(), d.source, d.destination)
            {
                Ok(external) => external,
                Err(e) => return self.drop_datagram(DropReason::Nat(e), &d),
            };
        let d = Datagram {
            source: external,
            ..d
        };
        if d.destination.ip() == nat.nat.external_ip() {
            // Hairpinning (RFC 4787 §6): back in through the same box.
            if !nat.nat.config().hairpinning {
                return self.drop_datagram(DropReason::Nat(NatDrop::NoHairpin), &d);
            }
            self.capture_datagram(&d);
            return self.arrive(Hop::NatOutside(id), d);
        }
        let (path, outside) = (nat.link.up, nat.outside);
        self.capture_datagram(&d);
        self.traverse(path, Hop::Network(outside), d);
    }

    fn drop_datagram(&mut self, reason: DropReason, d: &Datagram) {
        *self.stats.dropped.entry(reason).or_default() += 1;
        self.record(
            b"drop",
            format!("{reason:?}").as_bytes(),
            Some(d),
            &d.payload,
        );
    }

    /// Adds an event to the trace hash: its virtual time, kind, detail, the datagram's
    /// addresses if it concerns one, and its bytes.
    fn record(&mut self, kind: &[u8], detail: &[u8], datagram: Option<&Datagram>, bytes: &[u8]) {
        let at = (self.now - self.start).as_nanos() as u64;
        self.trace.update(at.to_be_bytes());
        self.trace.update(kind);
        self.trace.update(detail);
        for addr in datagram.iter().flat_map(|d| [d.source, d.destination]) {
            match addr.ip() {
                IpAddr::V4(ip) => self.trace.update(ip.octets()),
                IpAddr::V6(ip) => self.trace.update(ip.octets()),
            }
            self.trace.update(addr.port().to_be_bytes());
        }
        self.trace.update((bytes.len() as u64).to_be_bytes());
        self.trace.update(bytes);
    }

    fn capture_datagram(&mut self, d: &Datagram) {
        let at = self.now - self.start;
        if let Some(pcap) = &mut self.pcap {
            // A failing capture must not change the simulation; stop capturing instead.
            let tcp = d.tcp.map(|h| (h.flags, h.seq, h.ack));
            if pcap
                .write(at, d.source, d.destination, tcp, &d.payload)
                .is_err()
            {
                self.pcap = None;
            }
        }
    }
}
