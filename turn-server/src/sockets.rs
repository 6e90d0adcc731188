//! Opening every socket before any worker starts, so that a port taken or a descriptor
//! limit shows at once, as a [`SocketError`] naming the address.
//!
//! Each worker gets a UDP socket and a TCP listener on each listening address, with
//! SO_REUSEPORT so that the kernel spreads clients over the workers by their address (a
//! client stays with its worker, which holds its allocation), and its own slice of the relay
//! ports on each relay IP, bound without SO_REUSEPORT: a relay port is one allocation's.
//! IPv6 sockets are IPv6-only, so `0.0.0.0` and `[::]` can both be listened on.

use std::io;
use std::net::SocketAddr;

use mio::net::{TcpListener, UdpSocket, UnixStream};
use socket2::{Domain, Protocol, Socket, Type};
use tracing::warn;

use crate::options::{Settings, rfc5780_others};
use crate::worker::WorkerSockets;

/// The pending-connection queue of TCP listeners.
const LISTEN_BACKLOG: i32 = 1024;
/// The receive and send buffers asked for the listening UDP sockets, which take every
/// client's datagrams: a burst while the worker is descheduled waits there instead of being
/// dropped (the kernel caps the size at net.core.rmem_max / wmem_max). Relay sockets keep the
/// default: each carries one allocation, and thousands of large buffers would let a flood
/// pin a lot of memory.
const LISTENING_BUFFER: usize = 4 * 1024 * 1024;
/// EMFILE: this process has no descriptor left.
const EMFILE: i32 = 24;

/// Why a socket could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    /// A listening or metrics socket.
    #[error("cannot {what} {address}: {source}")]
    Listen {
        /// UDP, TCP or metrics.
        what: &'static str,
        /// The address.
        address: SocketAddr,
        /// Why.
        source: io::Error,
    },
    /// The process ran out of descriptors while binding relay ports.
    #[error(
        "out of file descriptors at relay port {address} (one socket per relay port and IP): \
         narrow --relay-ports or raise the limit (ulimit -n)"
    )]
    TooManyRelayPorts {
        /// The relay address that failed.
        address: SocketAddr,
    },
    /// Another relay port error.
    #[error("cannot bind relay port {address}: {source}")]
    Relay {
        /// The address.
        address: SocketAddr,
        /// Why.
        source: io::Error,
    },
    /// The signal pipe.
    #[error("cannot set up SIGINT/SIGTERM handling: {0}")]
    Signals(io::Error),
}

/// One worker's sockets and its relay addresses.
#[derive(Debug)]
pub struct WorkerPlan {
    /// The sockets.
    pub sockets: WorkerSockets,
    /// The relay addresses bound (for the machine's pool).
    pub relay_addresses: Vec<SocketAddr>,
}

/// Opens every worker's sockets. A listening port of 0 becomes the port the first worker's
/// socket got, for every worker and both transports.
pub fn open(settings: &Settings) -> Result<Vec<WorkerPlan>, SocketError> {
    let mut listen = settings.listen.clone();
    let mut tls_listen = settings.tls_listen.clone();
    let mut plans = Vec::with_capacity(settings.workers);
    for index in 0..settings.workers {
        let mut udp = Vec::new();
        let mut listeners = Vec::new();
        let first = index == 0;
        for address in &mut listen {
            if settings.udp {
                let socket = shared(
                    address,
                    first,
                    "listen on UDP",
                    |a| udp_socket(a).map(drop),
                    listening_udp_socket,
                    UdpSocket::local_addr,
                )?;
                udp.push((socket, *address, true));
            }
            if settings.tcp {
                let listener = shared(
                    address,
                    first,
                    "listen on TCP",
                    |a| tcp_listener(a, false).map(drop),
                    |a| tcp_listener(a, true),
                    TcpListener::local_addr,
                )?;
                listeners.push((listener, *address, false));
            }
        }
        for address in &mut tls_listen {
            let listener = shared(
                address,
                first,
                "listen for TLS on",
                |a| tcp_listener(a, false).map(drop),
                |a| tcp_listener(a, true),
                TcpListener::local_addr,
            )?;
            listeners.push((listener, *address, true));
        }
        if let Some((primary, alternate)) = settings.rfc5780 {
            for address in rfc5780_others(primary, alternate) {
                let socket =
                    listening_udp_socket(address).map_err(|source| SocketError::Listen {
                        what: "answer RFC 5780 Binding requests on",
                        address,
                        source,
                    })?;
                udp.push((socket, address, false));
            }
        }
        let mut relays = Vec::new();
        for ip in &settings.relay_ips {
            for port in settings
                .relay_ports
                .slice(index, settings.workers)
                .into_iter()
                .flatten()
            {
                let address = SocketAddr::new(*ip, port);
                match udp_socket(address) {
                    Ok(socket) => relays.push((socket, address)),
                    Err(e) if e.raw_os_error() == Some(EMFILE) => {
                        return Err(SocketError::TooManyRelayPorts { address });
                    }
                    Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                        warn!("relay port {address} is in use: skipped");
                    }
                    Err(source) => return Err(SocketError::Relay { address, source }),
                }
            }
        }
        let metrics = match (index, settings.metrics) {
            (0, Some(address)) => {
                Some(
                    tcp_listener(address, false).map_err(|source| SocketError::Listen {
                        what: "serve metrics on",
                        address,
                        source,
                    })?,
                )
            }
            _ => None,
        };
        let relay_addresses = relays.iter().map(|(_, a)| *a).collect();
        plans.push(WorkerPlan {
            sockets: WorkerSockets {
                udp,
                listeners,
                relays,
                metrics,
                signals: signal_pipe().map_err(SocketError::Signals)?,
            },
            relay_addresses,
        });
    }
    Ok(plans)
}

/// The read end of a pipe SIGINT and SIGTERM write to.
fn signal_pipe() -> io::Result<UnixStream> {
    let (read, write) = std::os::unix::net::UnixStream::pair()?;
    read.set_nonblocking(true)?;
    write.set_nonblocking(true)?;
    signal_hook::low_level::pipe::register(signal_hook::consts::SIGINT, write.try_clone()?)?;
    signal_hook::low_level::pipe::register(signal_hook::consts::SIGTERM, write)?;
    Ok(UnixStream::from_std(read))
}

fn socket(
    address: SocketAddr,
    kind: Type,
    protocol: Protocol,
    reuse_port: bool,
) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(address), kind, Some(protocol))?;
    if address.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.set_nonblocking(true)?;
    Ok(socket)
}

/// A listening UDP socket: SO_REUSEPORT, large buffers.
/// One worker's socket of a listening address all workers share (SO_REUSEPORT). The first
/// worker first binds the port plainly (`probe`) to learn whether it is free: SO_REUSEPORT
/// would let a second server share — and steal from — a port a running one holds. A port of
/// 0 becomes the port the first worker got, in `address`, for the workers after it. `what`
/// names the socket in errors.
fn shared<S>(
    address: &mut SocketAddr,
    first: bool,
    what: &'static str,
    probe: impl Fn(SocketAddr) -> io::Result<()>,
    bind: impl Fn(SocketAddr) -> io::Result<S>,
    local: impl Fn(&S) -> io::Result<SocketAddr>,
) -> Result<S, SocketError> {
    let at = *address;
    let error = |source| SocketError::Listen {
        what,
        address: at,
        source,
    };
    if first && at.port() != 0 {
        probe(at).map_err(error)?;
    }
    let socket = bind(at).map_err(error)?;
    *address = local(&socket).map_err(error)?;
    Ok(socket)
}

fn listening_udp_socket(address: SocketAddr) -> io::Result<UdpSocket> {
    let socket = socket(address, Type::DGRAM, Protocol::UDP, true)?;
    // Best effort: a smaller buffer than asked is no reason not to serve.
    let _ = socket.set_recv_buffer_size(LISTENING_BUFFER);
    let _ = socket.set_send_buffer_size(LISTENING_BUFFER);
    socket.bind(&address.into())?;
    Ok(UdpSocket::from_std(socket.into()))
}

/// A UDP socket of its own: a relay port, or the probe of a listening port.
fn udp_socket(address: SocketAddr) -> io::Result<UdpSocket> {
    let socket = socket(address, Type::DGRAM, Protocol::UDP, false)?;
    socket.bind(&address.into())?;
    Ok(UdpSocket::from_std(socket.into()))
}

fn tcp_listener(address: SocketAddr, reuse_port: bool) -> io::Result<TcpListener> {
    let socket = socket(address, Type::STREAM, Protocol::TCP, reuse_port)?;
    socket.set_reuse_address(true)?;
    socket.bind(&address.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(TcpListener::from_std(socket.into()))
}
