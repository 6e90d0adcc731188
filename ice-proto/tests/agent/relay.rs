//! A box on the in-memory network that owns addresses of its own, and a minimal TURN server
//! (RFC 8656 without authentication: Allocate, Refresh, CreatePermission, ChannelBind, Send
//! and Data indications, ChannelData) for the relay tests. The real server is stun-proto's;
//! this one keeps the ICE tests independent of it.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use bytes::Bytes;
use stun_proto::attribute::{
    ChannelNumber, Data, Lifetime, XorMappedAddress, XorPeerAddress, XorRelayedAddress,
};
use stun_proto::turn::{ChannelData, encode_channel_data, is_channel_data};
use stun_proto::{
    AttributeType, Class, Message, MessageBuilder, MessageType, Method, Transmit, TransportProtocol,
};

/// A node that is not an agent: it owns addresses and answers datagrams sent to them.
pub(crate) trait Middlebox {
    /// Whether `addr` is one of the box's addresses.
    fn owns(&self, addr: SocketAddr) -> bool;
    /// A datagram for the box; what it sends in response.
    fn handle(&mut self, now: Instant, datagram: Transmit) -> Vec<Transmit>;
    /// Its next deadline.
    fn poll_timeout(&self) -> Option<Instant>;
    /// Its deadline came; what it sends.
    fn handle_timeout(&mut self, now: Instant) -> Vec<Transmit>;
}

struct Allocation {
    client: SocketAddr,
    relayed: SocketAddr,
    permissions: HashSet<IpAddr>,
    channels: HashMap<u16, SocketAddr>,
}

/// A TURN server at `server`, relaying from ports 49152 up on the same IP.
pub(crate) struct TurnBox {
    pub(crate) server: SocketAddr,
    allocations: Vec<Allocation>,
    /// Datagrams relayed as ChannelData (both directions).
    pub(crate) channel_data: u64,
    /// Datagrams relayed as Send/Data indications (both directions).
    pub(crate) indications: u64,
}

impl TurnBox {
    pub(crate) fn new(server: SocketAddr) -> Self {
        Self {
            server,
            allocations: Vec::new(),
            channel_data: 0,
            indications: 0,
        }
    }

    fn udp(source: SocketAddr, destination: SocketAddr, payload: Bytes) -> Transmit {
        Transmit {
            transport: TransportProtocol::Udp,
            source,
            destination,
            payload,
        }
    }

    fn client_datagram(&mut self, t: &Transmit) -> Option<Transmit> {
        let client = t.source;
        if is_channel_data(&t.payload) {
            let cd = ChannelData::parse(&t.payload).ok()?;
            let a = self.allocations.iter().find(|a| a.client == client)?;
            let peer = *a.channels.get(&cd.channel())?;
            self.channel_data += 1;
            return Some(Self::udp(
                a.relayed,
                peer,
                Bytes::copy_from_slice(cd.data()),
            ));
        }
        let m = Message::parse(&t.payload).ok()?;
        let tid = m.transaction_id();
        if m.class() == Class::Indication && m.method() == Method::SEND {
            let peer = m.get::<XorPeerAddress>()?.ok()?.0;
            let data = m.get::<Data<'_>>()?.ok()?.0;
            let a = self.allocations.iter().find(|a| a.client == client)?;
            if !a.permissions.contains(&peer.ip()) {
                return None;
            }
            self.indications += 1;
            return Some(Self::udp(a.relayed, peer, Bytes::copy_from_slice(data)));
        }
        if m.class() != Class::Request {
            return None;
        }
        let mut b = MessageBuilder::response_to(bytes::BytesMut::new(), &m, Class::Success).ok()?;
        let method = m.method();
        if method == Method::ALLOCATE {
            let relayed = match self.allocations.iter().find(|a| a.client == client) {
                Some(a) => a.relayed,
                None => {
                    let port = 49152 + self.allocations.len() as u16;
                    let relayed = SocketAddr::new(self.server.ip(), port);
                    self.allocations.push(Allocation {
                        client,
                        relayed,
                        permissions: HashSet::new(),
                        channels: HashMap::new(),
                    });
                    relayed
                }
            };
            b.add(&XorRelayedAddress(relayed)).ok()?;
            b.add(&XorMappedAddress(client)).ok()?;
            b.add(&Lifetime(600)).ok()?;
        } else if method == Method::REFRESH {
            b.add(&Lifetime(600)).ok()?;
        } else if method == Method::CREATE_PERMISSION {
            let a = self.allocations.iter_mut().find(|a| a.client == client)?;
            for attr in m.attributes() {
                if attr.attribute_type == AttributeType::XOR_PEER_ADDRESS {
                    let peer = attr.decode::<XorPeerAddress>(&tid).ok()?;
                    a.permissions.insert(peer.0.ip());
                }
            }
        } else if method == Method::CHANNEL_BIND {
            let a = self.allocations.iter_mut().find(|a| a.client == client)?;
            let channel = m.get::<ChannelNumber>()?.ok()?.0;
            let peer = m.get::<XorPeerAddress>()?.ok()?.0;
            a.channels.insert(channel, peer);
            a.permissions.insert(peer.ip());
        } else {
            return None;
        }
        b.add_fingerprint().ok()?;
        Some(Self::udp(self.server, client, b.into_bytes()))
    }

    fn peer_datagram(&mut self, t: &Transmit) -> Option<Transmit> {
        let a = self
            .allocations
            .iter()
            .find(|a| a.relayed == t.destination)?;
        if !a.permissions.contains(&t.source.ip()) {
            return None;
        }
        let (client, server) = (a.client, self.server);
        if let Some((channel, _)) = a.channels.iter().find(|(_, p)| **p == t.source) {
            let mut out = vec![0u8; t.payload.len() + 4];
            let n = encode_channel_data(*channel, &t.payload, false, &mut out).ok()?;
            out.truncate(n);
            self.channel_data += 1;
            return Some(Self::udp(server, client, out.into()));
        }
        let tid = [7u8; 12].into();
        let mut b =
            MessageBuilder::new_bytes(MessageType::new(Method::DATA, Class::Indication), tid);
        b.add(&XorPeerAddress(t.source)).ok()?;
        b.add(&Data(&t.payload)).ok()?;
        self.indications += 1;
        Some(Self::udp(server, client, b.into_bytes()))
    }
}

impl Middlebox for TurnBox {
    fn owns(&self, addr: SocketAddr) -> bool {
        addr == self.server || self.allocations.iter().any(|a| a.relayed == addr)
    }

    fn handle(&mut self, _now: Instant, datagram: Transmit) -> Vec<Transmit> {
        let out = if datagram.destination == self.server {
            self.client_datagram(&datagram)
        } else {
            self.peer_datagram(&datagram)
        };
        out.into_iter().collect()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        None
    }

    fn handle_timeout(&mut self, _now: Instant) -> Vec<Transmit> {
        Vec::new()
    }
}

/// A STUN server (stun-proto's Binding server) at one address.
pub(crate) struct StunBox {
    pub(crate) server: stun_proto::binding::BindingServer,
    pub(crate) addr: SocketAddr,
    /// When each request arrived.
    pub(crate) requests: Vec<Instant>,
}

impl StunBox {
    pub(crate) fn new(addr: SocketAddr) -> Self {
        let config = stun_proto::binding::BindingServerConfig::new(addr);
        Self {
            server: stun_proto::binding::BindingServer::new(config),
            addr,
            requests: Vec::new(),
        }
    }
}

impl Middlebox for StunBox {
    fn owns(&self, addr: SocketAddr) -> bool {
        addr == self.addr
    }

    fn handle(&mut self, now: Instant, d: Transmit) -> Vec<Transmit> {
        self.requests.push(now);
        self.server
            .handle_datagram(now, d.transport, d.source, d.destination, &d.payload);
        std::iter::from_fn(|| self.server.poll_transmit()).collect()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        None
    }

    fn handle_timeout(&mut self, _now: Instant) -> Vec<Transmit> {
        Vec::new()
    }
}

/// stun-proto's TURN server (long-term authentication, the 401 challenge and all) on the
/// in-memory network.
pub(crate) struct RealTurnBox {
    server: stun_proto::turn::server::TurnServer<rand_chacha::ChaCha20Rng>,
    addr: SocketAddr,
    relays: Vec<SocketAddr>,
}

impl RealTurnBox {
    pub(crate) fn new(now: Instant, addr: SocketAddr, relays: Vec<SocketAddr>) -> Self {
        Self::denying(now, addr, relays, &[])
    }

    /// The server refusing (403) permissions for the hosts `denied`.
    pub(crate) fn denying(
        now: Instant,
        addr: SocketAddr,
        relays: Vec<SocketAddr>,
        denied: &[IpAddr],
    ) -> Self {
        use rand_core::SeedableRng;
        use stun_proto::turn::server::IpRange;
        let mut config =
            stun_proto::turn::server::TurnServerConfig::new("example.org", relays.clone());
        // The test networks are documentation ranges; allow every class of peer, and deny
        // the hosts `denied`.
        for class in stun_proto::turn::server::PeerClass::ALL {
            config.peer_filter.allowed_classes.insert(class);
        }
        config.peer_filter.denied = (denied.iter())
            .map(|&ip| IpRange::new(ip, 32).unwrap())
            .collect();
        let rng = rand_chacha::ChaCha20Rng::seed_from_u64(5);
        let mut server = stun_proto::turn::server::TurnServer::new(now, config, rng);
        server.add_user("user", "pass").unwrap();
        Self {
            server,
            addr,
            relays,
        }
    }
}

impl Middlebox for RealTurnBox {
    fn owns(&self, addr: SocketAddr) -> bool {
        addr == self.addr || self.relays.contains(&addr)
    }

    fn handle(&mut self, now: Instant, d: Transmit) -> Vec<Transmit> {
        if d.destination == self.addr {
            let tuple = stun_proto::turn::server::FiveTuple {
                transport: TransportProtocol::Udp,
                client: d.source,
                server: self.addr,
            };
            let handled = self.server.handle_client_datagram(now, tuple, &d.payload);
            if let stun_proto::turn::server::Handled::Relay(r) = handled {
                // Relayed data comes back borrowed, to send at once.
                let out = Transmit {
                    transport: r.transport,
                    source: r.source,
                    destination: r.destination,
                    payload: Bytes::copy_from_slice(r.payload),
                };
                return std::iter::once(out)
                    .chain(std::iter::from_fn(|| self.server.poll_transmit()))
                    .collect();
            }
        } else {
            let _ = self
                .server
                .handle_peer_datagram(now, d.destination, d.source, &d.payload);
        }
        std::iter::from_fn(|| self.server.poll_transmit()).collect()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.server.poll_timeout()
    }

    fn handle_timeout(&mut self, now: Instant) -> Vec<Transmit> {
        self.server.handle_timeout(now);
        std::iter::from_fn(|| self.server.poll_transmit()).collect()
    }
}
