//! A TCP client connection, plain or TLS: the bytes it sent, framed into STUN and ChannelData
//! messages (RFC 8656 §3.1, §12.5, [`StreamFramer`]), and the bytes waiting to go to it.
//!
//! Once a ConnectionBind succeeds on it (RFC 6062 §5.4) the connection is a client data
//! connection: [`bound`](Connection::bound) names its peer connection, and its bytes are
//! raw ([`read_raw`](Connection::read_raw)), no longer framed.
//!
//! What waits is plaintext, whole frames only: a frame that would take the queue past
//! [`MAX_PENDING`] is dropped whole, so the stream never carries half a message. Over TLS,
//! rustls takes the plaintext as it can and holds the records until the socket does.

use std::io::{self, ErrorKind, Read, Write};
use std::time::Instant;

use mio::net::TcpStream;
use rustls::ServerConnection;
use stun_proto::attribute::ConnectionId;
use stun_proto::turn::StreamFramer;
use stun_proto::turn::server::FiveTuple;

/// The most plaintext bytes queued for one client.
pub const MAX_PENDING: usize = 256 * 1024;

/// What a read gave.
#[derive(Debug)]
pub enum Received {
    /// Plaintext bytes, now in the framer.
    Bytes,
    /// Nothing more for now.
    WouldBlock,
    /// The client closed the connection, or it failed, or its stream lost its framing.
    Closed,
}

/// A client connection.
#[derive(Debug)]
pub struct Connection {
    stream: TcpStream,
    tls: Option<Box<ServerConnection>>,
    /// The connection's 5-tuple, as the machine knows it.
    pub tuple: FiveTuple,
    /// The frames received so far.
    pub framer: StreamFramer,
    /// The RFC 6062 peer connection this client data connection is bound to: its bytes
    /// are raw.
    pub bound: Option<ConnectionId>,
    /// Its peer connection closed: nothing more is read, and it closes once what is
    /// queued for the client is written.
    pub draining: bool,
    /// When it was accepted: one that holds no allocation (nor a bound peer connection)
    /// long after is closed by the worker.
    pub accepted_at: Instant,
    pending: Vec<u8>,
}

impl Connection {
    /// A plain connection accepted at `now`, or a TLS one with `tls`.
    pub fn new(
        now: Instant,
        stream: TcpStream,
        tuple: FiveTuple,
        tls: Option<ServerConnection>,
    ) -> Self {
        Self {
            stream,
            tls: tls.map(Box::new),
            tuple,
            framer: StreamFramer::default(),
            bound: None,
            accepted_at: now,
            draining: false,
            pending: Vec::new(),
        }
    }

    /// The socket, to register or deregister.
    pub fn stream(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    /// Reads what the client sent into the framer, using `buf` as scratch.
    pub fn receive(&mut self, buf: &mut [u8]) -> Received {
        match self.read(buf) {
            Ok(Some(0)) | Err(_) => Received::Closed,
            Ok(Some(n)) => match self.framer.push(buf.get(..n).unwrap_or_default()) {
                Ok(()) => Received::Bytes,
                Err(_) => Received::Closed,
            },
            Ok(None) => Received::WouldBlock,
        }
    }

    /// Reads raw bytes (a client data connection's) into `buf`: `Some(n)`, 0 at the end of
    /// the stream, `None` if it would block.
    pub fn read_raw(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        self.read(buf)
    }

    /// Whether nothing waits for the client.
    pub fn is_flushed(&self) -> bool {
        self.pending.is_empty() && self.tls.as_ref().is_none_or(|t| !t.wants_write())
    }

    /// How many plaintext bytes more the queue for the client takes.
    pub fn room(&self) -> usize {
        MAX_PENDING.saturating_sub(self.pending.len())
    }

    /// Plain or TLS read, answering what a TLS handshake wants on the way.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        let result = match &mut self.tls {
            None => read_plain(&mut self.stream, buf),
            Some(tls) => read_tls(tls, &mut self.stream, buf),
        };
        // A TLS handshake in progress (or a key update) has records to send back.
        if self.tls.is_some() {
            self.flush()?;
        }
        result
    }

    /// Queues `bytes` (one whole frame) and writes what the socket takes; false if the frame
    /// does not fit the queue or the connection failed.
    pub fn send(&mut self, bytes: &[u8]) -> bool {
        if self.pending.len() + bytes.len() > MAX_PENDING {
            return false;
        }
        self.pending.extend_from_slice(bytes);
        self.flush().is_ok()
    }

    /// Writes what is queued, until the socket would block.
    pub fn flush(&mut self) -> io::Result<()> {
        match &mut self.tls {
            None => write_all_until_blocked(&mut self.stream, &mut self.pending),
            Some(tls) => {
                while !self.pending.is_empty() {
                    let n = tls.writer().write(&self.pending)?;
                    if n == 0 {
                        break;
                    }
                    self.pending.drain(..n);
                }
                while tls.wants_write() {
                    match tls.write_tls(&mut self.stream) {
                        Ok(0) => return Err(ErrorKind::WriteZero.into()),
                        Ok(_) => {}
                        Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                        Err(e) if e.kind() == ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(())
            }
        }
    }
}

/// A plain read: `Some(n)` bytes (0 at the end of the stream), `None` if it would block.
fn read_plain(stream: &mut TcpStream, buf: &mut [u8]) -> io::Result<Option<usize>> {
    loop {
        match stream.read(buf) {
            Ok(n) => return Ok(Some(n)),
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(None),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// A TLS read: decrypted bytes first, then records from the socket; as [`read_plain`].
fn read_tls(
    tls: &mut ServerConnection,
    stream: &mut TcpStream,
    buf: &mut [u8],
) -> io::Result<Option<usize>> {
    loop {
        match tls.reader().read(buf) {
            Ok(n) => return Ok(Some(n)),
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        match tls.read_tls(stream) {
            Ok(0) => return Ok(Some(0)),
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(None),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        if let Err(e) = tls.process_new_packets() {
            // Send the alert rustls queued, then give up on the connection.
            let _ = tls.write_tls(stream);
            return Err(io::Error::new(ErrorKind::InvalidData, e));
        }
    }
}

fn write_all_until_blocked(stream: &mut TcpStream, pending: &mut Vec<u8>) -> io::Result<()> {
    while !pending.is_empty() {
        match stream.write(pending) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => {
                pending.drain(..n);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
