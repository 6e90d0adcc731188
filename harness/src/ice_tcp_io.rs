//! ICE-TCP (RFC 6544) on real sockets, for `harness peer --ice-tcp`: what `ice_proto::tcp`
//! asks of its caller. One listening socket is the TCP base (the passive candidate); a
//! transmit to an address with no connection opens one from a port the system picks (the
//! active candidate's); every connection's bytes are cut into RFC 4571 frames and handed to
//! the agent as arriving at the TCP base from the connection's remote address.

// A driver, not a machine: it owns real sockets (and waits out a full send buffer).
#![allow(clippy::disallowed_methods)]

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use ice_proto::tcp::Framer;

/// How long opening a connection may block the peer's loop.
const CONNECT: Duration = Duration::from_secs(1);
/// The most connections kept; beyond it new ones are refused (their checks time out).
const MAX_CONNECTIONS: usize = 64;

struct Connection {
    remote: SocketAddr,
    stream: TcpStream,
    framer: Framer,
}

/// See the module documentation.
pub struct IceTcpIo {
    base: SocketAddr,
    listener: TcpListener,
    connections: Vec<Connection>,
    /// Addresses a connection to failed: not tried again (the check fails by its timeout).
    unreachable: Vec<SocketAddr>,
}

impl IceTcpIo {
    /// Listens on `ip` at a port the system picks.
    pub fn bind(ip: IpAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind((ip, 0))?;
        listener.set_nonblocking(true)?;
        Ok(Self {
            base: listener.local_addr()?,
            listener,
            connections: Vec::new(),
            unreachable: Vec::new(),
        })
    }

    /// The listening address: the agent's TCP base.
    pub const fn base(&self) -> SocketAddr {
        self.base
    }

    /// Writes a transmit of the agent (already RFC 4571 framed) to its connection, opening
    /// one if there is none. Errors are reported and the connection dropped: the agent's
    /// check then times out, as it would on a dead path.
    pub fn send(&mut self, destination: SocketAddr, payload: &[u8]) {
        if self.unreachable.contains(&destination) {
            return;
        }
        let index = match self
            .connections
            .iter()
            .position(|c| c.remote == destination)
        {
            Some(i) => i,
            None => match self.open(destination) {
                Ok(()) => self.connections.len() - 1,
                Err(e) => {
                    eprintln!("peer: ICE-TCP connection to {destination}: {e}");
                    self.unreachable.push(destination);
                    return;
                }
            },
        };
        let written = self
            .connections
            .get_mut(index)
            .map(|c| write_all(&mut c.stream, payload));
        if let Some(Err(e)) = written {
            eprintln!("peer: ICE-TCP to {destination}: {e}");
            self.connections.remove(index);
        }
    }

    fn open(&mut self, remote: SocketAddr) -> std::io::Result<()> {
        if self.connections.len() >= MAX_CONNECTIONS {
            return Err(std::io::Error::other("too many connections"));
        }
        let stream = TcpStream::connect_timeout(&remote, CONNECT)?;
        self.keep(remote, stream)
    }

    fn keep(&mut self, remote: SocketAddr, stream: TcpStream) -> std::io::Result<()> {
        stream.set_nonblocking(true)?;
        let _ = stream.set_nodelay(true);
        self.connections.push(Connection {
            remote,
            stream,
            framer: Framer::default(),
        });
        Ok(())
    }

    /// Accepts connections and reads every one: the frames that arrived, with the address
    /// they came from. A connection the other side closed or broke is dropped.
    pub fn receive(&mut self) -> Vec<(SocketAddr, Vec<u8>)> {
        loop {
            match self.listener.accept() {
                Ok((stream, remote)) if self.connections.len() < MAX_CONNECTIONS => {
                    if let Err(e) = self.keep(remote, stream) {
                        eprintln!("peer: ICE-TCP connection from {remote}: {e}");
                    }
                }
                // Full: the connection is closed as it is dropped.
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => {
                    eprintln!("peer: ICE-TCP accept: {e}");
                    break;
                }
            }
        }
        let mut frames = Vec::new();
        let mut buf = [0u8; 4096];
        self.connections.retain_mut(|c| {
            loop {
                match c.stream.read(&mut buf) {
                    Ok(0) => return false,
                    Ok(n) => {
                        c.framer.push(buf.get(..n).unwrap_or_default());
                        frames.extend(
                            std::iter::from_fn(|| c.framer.next_frame()).map(|f| (c.remote, f)),
                        );
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => {
                        eprintln!("peer: ICE-TCP from {}: {e}", c.remote);
                        return false;
                    }
                }
            }
        });
        frames
    }
}

/// Writes all of `bytes` to a non-blocking stream, waiting out a full send buffer briefly.
fn write_all(stream: &mut TcpStream, mut bytes: &[u8]) -> std::io::Result<()> {
    let mut stalls = 0;
    while !bytes.is_empty() {
        match stream.write(bytes) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => bytes = bytes.get(n..).unwrap_or_default(),
            Err(e) if e.kind() == ErrorKind::WouldBlock && stalls < 100 => {
                stalls += 1;
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
