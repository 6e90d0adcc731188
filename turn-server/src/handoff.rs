//! EVEN-PORT reservations across workers (RFC 8656 §7.2). A client's RTP allocation asks
//! for an even port and reserves the next one under a RESERVATION-TOKEN; its RTCP
//! allocation redeems the token from another client port, which SO_REUSEPORT may hash to
//! another worker, whose machine does not hold the reservation (it would answer 508).
//!
//! Each worker's machine tags its tokens with the worker's index
//! ([`TurnServerConfig::reservation_tag`](stun_proto::turn::server::TurnServerConfig)). A
//! worker that gets an Allocate naming a reservation it does not hold
//! ([`TurnServer::foreign_reservation`]) parks the request and asks the worker the tag names
//! ([`Message::Wanted`]); that worker's machine gives the reservation up
//! ([`TurnServer::handle_reservation_export`]) and the worker sends it over with the relay
//! port's socket ([`Message::Given`]); the asking worker registers the socket, its machine
//! adopts the reservation ([`TurnServer::handle_reservation_import`]), and the parked request
//! is handed to the machine, which now redeems the token. The allocation lives where its
//! client's datagrams arrive, its relayed port moved with it. A worker that answers nothing
//! within [`PARK_TIMEOUT`] (or says the reservation is gone) leaves the machine to answer
//! the request itself: 508, as for any unknown token.
//!
//! RFC 6062 client data connections cross workers the same way: a ConnectionBind comes on a
//! new TCP connection, which SO_REUSEPORT may give to another worker than the one whose
//! machine holds the peer connection it names. Each machine tags its CONNECTION-IDs with
//! its worker's index ([`TurnServerConfig::connection_tag`](stun_proto::turn::server::TurnServerConfig)),
//! and a worker that reads a ConnectionBind naming another worker's connection, on a
//! connection that holds no allocation, sends the whole connection there
//! ([`Message::Connection`], [`Handoffs::send_connection`]) before its machine sees the
//! request: that worker registers the socket and gives the request to its machine.

use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::{Duration, Instant};

use mio::net::UdpSocket;
use mio::{Registry, Token, Waker};
use rand_chacha::ChaCha20Rng;
use stun_proto::attribute::ReservationToken;
use stun_proto::turn::server::{
    FiveTuple, Reservation, TurnServer, connection_bind_id, connection_tag,
};

use crate::connection::Connection;

/// The most requests parked at once; beyond, the machine answers them (508).
const MAX_PARKED: usize = 64;
/// How long a request waits for its reservation.
pub const PARK_TIMEOUT: Duration = Duration::from_secs(1);

/// What one worker sends another.
#[derive(Debug)]
pub enum Message {
    /// Worker `by` has a request redeeming `token`, which this worker's machine made.
    Wanted {
        /// The token.
        token: ReservationToken,
        /// The asking worker.
        by: usize,
    },
    /// The answer: the reservation and its relay port's socket, or `None` if it is gone.
    Given {
        /// The token.
        token: ReservationToken,
        /// The reservation and the socket bound to its address.
        reservation: Option<(Reservation, UdpSocket)>,
    },
    /// A client connection whose first request, `frame`, is a ConnectionBind naming this
    /// worker's peer connection (RFC 6062 §5.4).
    Connection {
        /// The connection, with its TLS session and what its framer holds.
        connection: Box<Connection>,
        /// The ConnectionBind request.
        frame: Vec<u8>,
    },
}

/// A worker's mailbox, which every worker holds a copy of.
#[derive(Clone, Debug)]
pub struct Mailbox {
    sender: Sender<Message>,
    waker: Arc<Waker>,
}

impl Mailbox {
    /// Posts `message` and wakes the worker; false if it has stopped.
    fn post(&self, message: Message) -> bool {
        self.sender.send(message).is_ok() && self.waker.wake().is_ok()
    }
}

/// A request waiting for its reservation.
#[derive(Debug)]
struct Parked {
    token: ReservationToken,
    tuple: FiveTuple,
    request: Vec<u8>,
    since: Instant,
}

/// One worker's side of the hand-offs.
#[derive(Debug)]
pub struct Handoffs {
    index: usize,
    mailboxes: Arc<[Mailbox]>,
    inbox: Receiver<Message>,
    parked: Vec<Parked>,
}

impl Handoffs {
    /// Worker `index`'s side, woken through `registry` under `token`; returns its mailbox,
    /// for [`connect`](Self::connect).
    pub fn new(
        index: usize,
        registry: &Registry,
        token: Token,
    ) -> std::io::Result<(Self, Mailbox)> {
        let (sender, inbox) = mpsc::channel();
        let waker = Arc::new(Waker::new(registry, token)?);
        let handoffs = Self {
            index,
            mailboxes: Arc::from([]),
            inbox,
            parked: Vec::new(),
        };
        Ok((handoffs, Mailbox { sender, waker }))
    }

    /// Every worker's mailbox, by index.
    pub fn connect(&mut self, mailboxes: Arc<[Mailbox]>) {
        self.mailboxes = mailboxes;
    }

    /// The tag of worker `index`'s reservation tokens.
    pub fn tag(index: usize) -> [u8; 2] {
        u16::try_from(index).unwrap_or(u16::MAX).to_be_bytes()
    }

    /// Parks `request` from `tuple` if it redeems a reservation another worker holds, and
    /// asks that worker for it; false if the machine is to have the request now.
    pub fn park(
        &mut self,
        now: Instant,
        server: &TurnServer<ChaCha20Rng>,
        tuple: FiveTuple,
        request: &[u8],
    ) -> bool {
        let Some(token) = server.foreign_reservation(request) else {
            return false;
        };
        // A retransmission while the first waits: one request is replayed, not two (the
        // second would find the allocation made and get 437).
        if let Some(parked) = self.parked.iter_mut().find(|p| p.tuple == tuple) {
            parked.request = request.to_vec();
            return true;
        }
        let owner = usize::from(u16::from_be_bytes([token.0[0], token.0[1]]));
        let asked = owner != self.index
            && self.parked.len() < MAX_PARKED
            && self.mailboxes.get(owner).is_some_and(|m| {
                m.post(Message::Wanted {
                    token,
                    by: self.index,
                })
            });
        if asked {
            self.parked.push(Parked {
                token,
                tuple,
                request: request.to_vec(),
                since: now,
            });
        }
        asked
    }

    /// The worker whose machine holds the connection `frame` binds, if `frame` is a
    /// ConnectionBind and that is another worker.
    pub fn connection_owner(&self, frame: &[u8]) -> Option<usize> {
        let owner = usize::from(connection_tag(connection_bind_id(frame)?));
        (owner != self.index && owner < self.mailboxes.len()).then_some(owner)
    }

    /// Sends `connection` and its ConnectionBind `frame` to worker `to`; gives the connection
    /// back if that worker has stopped.
    pub fn send_connection(
        &self,
        to: usize,
        connection: Box<Connection>,
        frame: Vec<u8>,
    ) -> Result<(), Box<Connection>> {
        let Some(mailbox) = self.mailboxes.get(to) else {
            return Err(connection);
        };
        match mailbox
            .sender
            .send(Message::Connection { connection, frame })
        {
            Ok(()) => {
                let _ = mailbox.waker.wake();
                Ok(())
            }
            Err(mpsc::SendError(Message::Connection { connection, .. })) => Err(connection),
            Err(_) => Ok(()),
        }
    }

    /// The tag of worker `index`'s CONNECTION-IDs (at most 256 workers are told apart).
    pub fn connection_tag(index: usize) -> Option<u8> {
        u8::try_from(index).ok()
    }

    /// The next message from another worker.
    pub fn next_message(&self) -> Option<Message> {
        self.inbox.try_recv().ok()
    }

    /// Answers worker `by`'s [`Message::Wanted`].
    pub fn answer(
        &self,
        by: usize,
        token: ReservationToken,
        reservation: Option<(Reservation, UdpSocket)>,
    ) {
        if let Some(mailbox) = self.mailboxes.get(by) {
            mailbox.post(Message::Given { token, reservation });
        }
    }

    /// The parked requests for `token`, for the machine.
    pub fn unpark(&mut self, token: ReservationToken) -> Vec<(FiveTuple, Vec<u8>)> {
        self.take(|p| p.token == token)
    }

    /// The parked requests that waited [`PARK_TIMEOUT`] by `now`, for the machine.
    pub fn unpark_stale(&mut self, now: Instant) -> Vec<(FiveTuple, Vec<u8>)> {
        if self.parked.is_empty() {
            return Vec::new();
        }
        self.take(|p| now.saturating_duration_since(p.since) >= PARK_TIMEOUT)
    }

    fn take(&mut self, which: impl Fn(&Parked) -> bool) -> Vec<(FiveTuple, Vec<u8>)> {
        let (taken, kept) = std::mem::take(&mut self.parked)
            .into_iter()
            .partition(|p| which(p));
        self.parked = kept;
        taken
            .into_iter()
            .map(|p: Parked| (p.tuple, p.request))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use mio::Poll;
    use rand_core::SeedableRng;
    use stun_proto::attribute::RequestedTransport;
    use stun_proto::turn::server::TurnServerConfig;
    use stun_proto::{Class, MessageBuilder, MessageType, Method, TransportProtocol};

    use super::*;

    /// Worker `index`'s machine, its reservation tag set as the server sets it.
    fn machine(index: usize) -> TurnServer<ChaCha20Rng> {
        let relay: SocketAddr = "192.0.2.1:50000".parse().unwrap();
        let mut config = TurnServerConfig::new("test", vec![relay]);
        config.reservation_tag = Some(Handoffs::tag(index));
        #[allow(clippy::disallowed_methods)] // one real instant for the machine
        let now = Instant::now();
        TurnServer::new(now, config, ChaCha20Rng::seed_from_u64(1))
    }

    /// An Allocate redeeming a token made by worker `owner`.
    fn redeeming(owner: usize) -> (ReservationToken, Vec<u8>) {
        let [a, b] = Handoffs::tag(owner);
        let token = ReservationToken([a, b, 1, 2, 3, 4, 5, 6]);
        let message_type = MessageType::new(Method::ALLOCATE, Class::Request);
        let mut m = MessageBuilder::new_bytes(message_type, [7; 12].into());
        m.add(&RequestedTransport::UDP).unwrap();
        m.add(&token).unwrap();
        (token, m.into_bytes().to_vec())
    }

    #[test]
    fn a_request_naming_another_worker_s_reservation_waits_for_its_answer() {
        let polls = [Poll::new().unwrap(), Poll::new().unwrap()];
        let (mut zero, mailbox0) = Handoffs::new(0, polls[0].registry(), Token(0)).unwrap();
        let (mut one, mailbox1) = Handoffs::new(1, polls[1].registry(), Token(0)).unwrap();
        let mailboxes: Arc<[Mailbox]> = Arc::from([mailbox0, mailbox1]);
        zero.connect(Arc::clone(&mailboxes));
        one.connect(mailboxes);
        let server = machine(1);
        let tuple = FiveTuple {
            transport: TransportProtocol::Udp,
            client: "198.51.100.1:5000".parse().unwrap(),
            server: "192.0.2.1:3478".parse().unwrap(),
        };
        #[allow(clippy::disallowed_methods)] // the clock parked requests wait on
        let now = Instant::now();
        // Worker 1 gets a request for worker 0's reservation: parked, worker 0 asked.
        let (token, request) = redeeming(0);
        assert!(one.park(now, &server, tuple, &request));
        let Some(Message::Wanted {
            token: wanted,
            by: 1,
        }) = zero.next_message()
        else {
            panic!("worker 0 was not asked");
        };
        assert_eq!(wanted, token);
        assert!(zero.next_message().is_none());
        // The reservation is gone: worker 1's machine gets the request back (and answers 508).
        zero.answer(1, token, None);
        let Some(Message::Given {
            reservation: None, ..
        }) = one.next_message()
        else {
            panic!("no answer");
        };
        assert_eq!(one.unpark(token), [(tuple, request.clone())]);
        assert!(one.unpark(token).is_empty());
        // Its own tokens, a worker that does not exist, other requests: the machine's.
        assert!(!one.park(now, &server, tuple, &redeeming(1).1));
        assert!(!one.park(now, &server, tuple, &redeeming(7).1));
        assert!(!one.park(now, &server, tuple, &request[..20]));
        // Nobody answers: after PARK_TIMEOUT the machine gets it, once, however often the
        // client sent it meanwhile (only the first asked worker 0).
        assert!(one.park(now, &server, tuple, &request));
        assert!(one.park(now, &server, tuple, &request));
        assert!(matches!(zero.next_message(), Some(Message::Wanted { .. })));
        assert!(zero.next_message().is_none());
        let almost = now + PARK_TIMEOUT - Duration::from_millis(1);
        assert!(one.unpark_stale(almost).is_empty());
        assert_eq!(one.unpark_stale(now + PARK_TIMEOUT).len(), 1);
        // At most MAX_PARKED wait.
        let parked = (0..=MAX_PARKED)
            .filter(|&i| {
                let mut client = tuple;
                client.client.set_port(6000 + i as u16);
                one.park(now, &server, client, &request)
            })
            .count();
        assert_eq!(parked, MAX_PARKED);
    }
}
