//! `harness peer`'s Multicast DNS: the socket on port 5353 in the mDNS group, driving
//! `ice_proto::MdnsResolver` for the `.local` host names in remote candidates and
//! `ice_proto::MdnsResponder` for the name that conceals our own host address.
//!
//! The socket is opened the first time a name must be resolved. It shares port 5353 with any
//! responder on the host (`SO_REUSEADDR`, as browsers' and Avahi's sockets do) and joins the
//! group on the interface of the peer's address, so queries leave there and the answers —
//! multicast, as browsers send them — come back.

// A real-UDP driver: it opens sockets.
#![allow(clippy::disallowed_methods)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::Instant;

use ice_proto::mdns_resolver::{MDNS_IPV4, MDNS_IPV6};
use ice_proto::{MdnsEvent, MdnsResolver, MdnsResponder};
use socket2::{Domain, Protocol, Socket, Type};

/// The resolver, the responder and their socket.
pub struct Mdns {
    /// The peer's address: its family and interface choose the group.
    local: IpAddr,
    socket: Option<UdpSocket>,
    resolver: MdnsResolver,
    responder: MdnsResponder,
}

impl Mdns {
    /// No socket yet; `local` is the peer's own address.
    pub fn new(local: IpAddr) -> Self {
        Self {
            local,
            socket: None,
            resolver: MdnsResolver::new(),
            responder: MdnsResponder::new(),
        }
    }

    /// Answers queries for `name` with our address from now on.
    pub fn conceal(&mut self, name: &str) -> Result<(), String> {
        self.open()?;
        self.responder
            .handle_register(name, self.local)
            .map_err(|e| e.to_string())
    }

    /// Asks for `name`, opening the socket if needed.
    pub fn resolve(&mut self, now: Instant, name: &str) -> Result<(), String> {
        self.open()?;
        self.resolver
            .handle_resolve(now, name)
            .map_err(|e| e.to_string())?;
        self.flush();
        Ok(())
    }

    /// Reads what arrived, runs the resolver's timers, sends its queries; the resolutions.
    pub fn poll(&mut self, now: Instant) -> Vec<MdnsEvent> {
        if let Some(socket) = &self.socket {
            let mut buf = [0u8; 9000];
            while let Ok((n, _)) = socket.recv_from(&mut buf) {
                let datagram = buf.get(..n).unwrap_or_default();
                self.resolver.handle_datagram(now, datagram);
                self.responder.handle_datagram(now, datagram);
            }
        }
        if self.resolver.poll_timeout().is_some_and(|at| at <= now) {
            self.resolver.handle_timeout(now);
        }
        self.flush();
        std::iter::from_fn(|| self.resolver.poll_event()).collect()
    }

    /// Opens the socket if it is not open yet.
    fn open(&mut self) -> Result<(), String> {
        if self.socket.is_none() {
            self.socket = Some(open(self.local).map_err(|e| format!("mDNS socket: {e}"))?);
        }
        Ok(())
    }

    /// Sends the queries and answers the machines queued to the group.
    fn flush(&mut self) {
        let group = if self.local.is_ipv4() {
            MDNS_IPV4
        } else {
            MDNS_IPV6
        };
        let queued = std::iter::from_fn(|| self.resolver.poll_transmit())
            .chain(std::iter::from_fn(|| self.responder.poll_transmit()))
            .collect::<Vec<_>>();
        for datagram in queued {
            if let Some(socket) = &self.socket {
                if let Err(e) = socket.send_to(&datagram, group) {
                    eprintln!("peer: mDNS to {group}: {e}");
                }
            }
        }
    }
}

/// Port 5353, shared, in the mDNS group on the interface of `local`, non-blocking.
fn open(local: IpAddr) -> std::io::Result<UdpSocket> {
    let domain = if local.is_ipv4() {
        Domain::IPV4
    } else {
        Domain::IPV6
    };
    let socket = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    match local {
        IpAddr::V4(ip) => {
            socket.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, 5353)).into())?;
            let IpAddr::V4(group) = MDNS_IPV4.ip() else {
                return Err(std::io::Error::other("the mDNS IPv4 group is not IPv4"));
            };
            let interface = if ip.is_loopback() {
                Ipv4Addr::UNSPECIFIED
            } else {
                ip
            };
            socket.join_multicast_v4(&group, &interface)?;
            socket.set_multicast_if_v4(&interface)?;
            socket.set_multicast_loop_v4(true)?;
        }
        IpAddr::V6(_) => {
            socket.set_only_v6(true)?;
            socket.bind(&SocketAddr::from((Ipv6Addr::UNSPECIFIED, 5353)).into())?;
            let IpAddr::V6(group) = MDNS_IPV6.ip() else {
                return Err(std::io::Error::other("the mDNS IPv6 group is not IPv6"));
            };
            socket.join_multicast_v6(&group, 0)?;
            socket.set_multicast_loop_v6(true)?;
        }
    }
    Ok(socket.into())
}
