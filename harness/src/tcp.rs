//! The TCP a simulated host's kernel runs: connections with the three-way handshake (RFC 9293
//! §3.5) and simultaneous open, in-order delivery, cumulative acknowledgements, retransmission
//! on a timer from round-trip samples that backs off (RFC 6298), fast retransmit on the third
//! duplicate acknowledgement (RFC 5681 §3.2), reset generation for segments to nowhere
//! (§3.5.2), and giving up after a bounded number of retransmissions.
//!
//! It is message-faithful rather than byte-faithful: every write of a node travels as one
//! segment (the nodes write whole framed messages, RFC 4571 or STUN/ChannelData framing, all
//! below a link's MTU), so the receiver gets the same writes back in order — exactly what a
//! stream reader with a framer recovers. Sequence numbers count bytes, as on the wire, so a
//! capture decodes. No congestion or flow control: the simulator's links do not congest.
//!
//! Like every machine here it is sans-IO: the world hands it writes, segments and timeouts,
//! and carries out what it returns.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;

/// Control bits of a segment (RFC 9293 §3.1), the ones this model uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Flags {
    /// Synchronize sequence numbers.
    pub syn: bool,
    /// The acknowledgement number is significant.
    pub ack: bool,
    /// Reset the connection.
    pub rst: bool,
}

/// One TCP segment: control bits, sequence and acknowledgement numbers, and the data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Control bits.
    pub flags: Flags,
    /// The sequence number of the first byte (of the SYN, for a SYN).
    pub seq: u32,
    /// The next sequence number the sender expects, when `flags.ack`.
    pub ack: u32,
    /// The data.
    pub payload: Bytes,
}

impl Segment {
    /// How much sequence space it takes: its data, plus one for a SYN.
    fn len(&self) -> u32 {
        self.payload.len() as u32 + u32::from(self.flags.syn)
    }
}

/// Why a connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Closed {
    /// The other side reset it (or refused the connection).
    Reset,
    /// Retransmissions went unanswered: the peer or the path is gone.
    TimedOut,
}

/// What the world must do after a call into the stack.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Put this segment on the wire from `local` to `remote`.
    Send {
        /// The local endpoint.
        local: SocketAddr,
        /// The remote endpoint.
        remote: SocketAddr,
        /// The segment.
        segment: Segment,
    },
    /// Hand this write of the remote side to the node.
    Deliver {
        /// The local endpoint.
        local: SocketAddr,
        /// The remote endpoint.
        remote: SocketAddr,
        /// The bytes, as the other side wrote them.
        payload: Bytes,
    },
    /// The connection is gone.
    Closed {
        /// The local endpoint.
        local: SocketAddr,
        /// The remote endpoint.
        remote: SocketAddr,
        /// Why.
        why: Closed,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    SynSent,
    SynReceived,
    Established,
}

/// RFC 6298 §2.1: the first RTO, before any round trip was measured.
const INITIAL_RTO: Duration = Duration::from_secs(1);
/// The smallest RTO once a round trip is known (Linux's 200 ms; RFC 6298 §2.4 allows it).
const MIN_RTO: Duration = Duration::from_millis(200);
/// The largest RTO (RFC 6298 §2.5 allows capping at 60 s or more).
const MAX_RTO: Duration = Duration::from_secs(60);
/// Retransmissions of a SYN before giving up (Linux's `tcp_syn_retries`; with the RTO
/// capped at 60 s the connection gives up after 123 s).
const SYN_RETRIES: u32 = 6;
/// Retransmissions of data before giving up (shorter than Linux's 15, for a simulation that
/// runs minutes, not the 15 minutes Linux waits).
const DATA_RETRIES: u32 = 8;
/// Out-of-order segments a connection holds while a gap is filled; more are dropped (and
/// retransmitted by the sender later), so a flood costs bounded memory.
const MAX_OUT_OF_ORDER: usize = 64;
/// Writes queued before a connection is established, or unacknowledged; more are dropped.
const MAX_QUEUED: usize = 256;
/// Connections per host.
const MAX_CONNECTIONS: usize = 1024;

struct Connection {
    state: State,
    /// Initial send sequence number.
    iss: u32,
    /// Next sequence number to send.
    snd_nxt: u32,
    /// Sent, not yet acknowledged, oldest first.
    unacked: VecDeque<Segment>,
    /// Written before the handshake finished.
    waiting: VecDeque<Bytes>,
    /// Next sequence number expected.
    rcv_nxt: u32,
    out_of_order: BTreeMap<u32, Bytes>,
    /// The RTO the round-trip sample gave, which backing off leaves alone.
    base_rto: Duration,
    /// The RTO now: `base_rto` doubled for each retransmission since the last progress.
    rto: Duration,
    retries: u32,
    deadline: Option<Instant>,
    /// The segment being timed for a round-trip sample (the sequence number that
    /// acknowledges it, and when it left); `None` once anything was retransmitted (Karn's
    /// rule, RFC 6298 §3: an ambiguous sample is not taken).
    timing: Option<(u32, Instant)>,
    /// Duplicate acknowledgements in a row.
    duplicate_acks: u32,
}

impl Connection {
    fn new(state: State, iss: u32) -> Self {
        Self {
            state,
            iss,
            snd_nxt: iss,
            unacked: VecDeque::new(),
            waiting: VecDeque::new(),
            rcv_nxt: 0,
            out_of_order: BTreeMap::new(),
            base_rto: INITIAL_RTO,
            rto: INITIAL_RTO,
            retries: 0,
            deadline: None,
            timing: None,
            duplicate_acks: 0,
        }
    }

    /// Queues `segment` (flags and payload; sequence numbers filled in) for sending and
    /// retransmission.
    fn transmit(&mut self, now: Instant, flags: Flags, payload: Bytes) -> Segment {
        let segment = Segment {
            flags: Flags {
                ack: flags.ack || self.state != State::SynSent,
                ..flags
            },
            seq: self.snd_nxt,
            ack: self.rcv_nxt,
            payload,
        };
        self.snd_nxt = self.snd_nxt.wrapping_add(segment.len());
        self.timing.get_or_insert((self.snd_nxt, now));
        self.unacked.push_back(segment.clone());
        self.deadline.get_or_insert(now + self.rto);
        segment
    }

    fn ack_only(&self) -> Segment {
        Segment {
            flags: Flags {
                ack: true,
                ..Flags::default()
            },
            seq: self.snd_nxt,
            ack: self.rcv_nxt,
            payload: Bytes::new(),
        }
    }

    /// Drops what `ack` acknowledges; says whether it acknowledged anything.
    fn acknowledge(&mut self, now: Instant, ack: u32) -> bool {
        let mut progressed = false;
        while let Some(front) = self.unacked.front() {
            let end = front.seq.wrapping_add(front.len());
            // `end <= ack` in sequence space (RFC 9293 §3.4's modular comparison).
            if (ack.wrapping_sub(end) as i32) < 0 {
                break;
            }
            self.unacked.pop_front();
            progressed = true;
        }
        if progressed {
            self.duplicate_acks = 0;
            if let Some((end, sent)) = self.timing
                && (ack.wrapping_sub(end) as i32) >= 0
            {
                // RFC 6298 §2.2 from one sample: RTO = SRTT + 4 × RTTVAR with RTTVAR =
                // SRTT / 2, three round trips.
                let rtt = now.saturating_duration_since(sent);
                self.base_rto = (rtt * 3).clamp(MIN_RTO, MAX_RTO);
                self.timing = None;
            }
            // RFC 6298 §5.7: the backed-off RTO lasts until an acknowledgement of new data;
            // then it is the sampled one again.
            self.retries = 0;
            self.rto = self.base_rto;
            self.deadline = (!self.unacked.is_empty()).then(|| now + self.rto);
        }
        progressed
    }
}

/// The TCP of one host: its connections, keyed by local and remote endpoint.
#[derive(Default)]
pub struct Stack {
    connections: BTreeMap<(SocketAddr, SocketAddr), Connection>,
}

impl Stack {
    /// Sends `payload` on the connection from `local` to `remote`, opening it (active open,
    /// with `iss` as its initial sequence number) if there is none.
    pub fn write(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        payload: Bytes,
        iss: u32,
    ) -> Vec<Output> {
        let mut out = Vec::new();
        if !self.connections.contains_key(&(local, remote)) {
            if self.connections.len() >= MAX_CONNECTIONS {
                return out;
            }
            let mut c = Connection::new(State::SynSent, iss);
            let syn = c.transmit(
                now,
                Flags {
                    syn: true,
                    ..Flags::default()
                },
                Bytes::new(),
            );
            out.push(send(local, remote, syn));
            self.connections.insert((local, remote), c);
        }
        let Some(c) = self.connections.get_mut(&(local, remote)) else {
            return out;
        };
        if payload.is_empty() {
            return out;
        }
        if c.state != State::Established {
            if c.waiting.len() < MAX_QUEUED {
                c.waiting.push_back(payload);
            }
        } else if c.unacked.len() < MAX_QUEUED {
            let segment = c.transmit(now, Flags::default(), payload);
            out.push(send(local, remote, segment));
        }
        out
    }

    /// Handles a segment that arrived at `local` from `remote`; `listening` says whether a
    /// node accepts connections on `local`, `iss` is the sequence number a new connection
    /// starts from.
    pub fn receive(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        segment: Segment,
        listening: bool,
        iss: u32,
    ) -> Vec<Output> {
        let mut out = Vec::new();
        let key = (local, remote);
        let Some(c) = self.connections.get_mut(&key) else {
            if segment.flags.rst {
                return out;
            }
            if segment.flags.syn && !segment.flags.ack && listening {
                if self.connections.len() < MAX_CONNECTIONS {
                    let mut c = Connection::new(State::SynReceived, iss);
                    c.rcv_nxt = segment.seq.wrapping_add(1);
                    let syn_ack = c.transmit(
                        now,
                        Flags {
                            syn: true,
                            ack: true,
                            ..Flags::default()
                        },
                        Bytes::new(),
                    );
                    out.push(send(local, remote, syn_ack));
                    self.connections.insert(key, c);
                }
                return out;
            }
            // RFC 9293 §3.5.2: a segment for no connection draws a reset.
            out.push(send(local, remote, reset_for(&segment)));
            return out;
        };
        if segment.flags.rst {
            self.connections.remove(&key);
            out.push(Output::Closed {
                local,
                remote,
                why: Closed::Reset,
            });
            return out;
        }
        match c.state {
            State::SynSent if segment.flags.syn => {
                c.rcv_nxt = segment.seq.wrapping_add(1);
                if segment.flags.ack && segment.ack == c.iss.wrapping_add(1) {
                    c.acknowledge(now, segment.ack);
                    establish(c, now, local, remote, &mut out);
                    out.push(send(local, remote, c.ack_only()));
                } else if !segment.flags.ack {
                    // Simultaneous open (RFC 9293 §3.5, figure 8): our SYN becomes a SYN-ACK,
                    // sent now and retransmitted until acknowledged.
                    c.state = State::SynReceived;
                    let rcv_nxt = c.rcv_nxt;
                    c.timing = None;
                    if let Some(syn) = c.unacked.front_mut() {
                        syn.flags.ack = true;
                        syn.ack = rcv_nxt;
                        out.push(send(local, remote, syn.clone()));
                    }
                }
                return out;
            }
            State::SynSent => return out,
            State::SynReceived if segment.flags.syn && !segment.flags.ack => {
                // Our SYN-ACK was lost: the SYN came again.
                if let Some(syn_ack) = c.unacked.front() {
                    out.push(send(local, remote, syn_ack.clone()));
                }
                return out;
            }
            State::SynReceived => {
                if !(segment.flags.ack && c.acknowledge(now, segment.ack)) {
                    return out;
                }
                establish(c, now, local, remote, &mut out);
            }
            State::Established => {
                if segment.flags.syn {
                    // Our ACK of its SYN-ACK was lost: acknowledge again.
                    out.push(send(local, remote, c.ack_only()));
                    return out;
                }
                let duplicate = segment.flags.ack
                    && !c.acknowledge(now, segment.ack)
                    && segment.payload.is_empty()
                    && c.unacked.front().is_some_and(|s| s.seq == segment.ack);
                if duplicate {
                    c.duplicate_acks += 1;
                    // RFC 5681 §3.2: the third duplicate says the segment after the
                    // acknowledged data was lost; send it again without waiting for the RTO.
                    if c.duplicate_acks == 3
                        && let Some(lost) = c.unacked.front()
                    {
                        out.push(send(local, remote, lost.clone()));
                        c.timing = None;
                    }
                }
            }
        }
        if !segment.payload.is_empty() {
            receive_data(c, local, remote, segment, &mut out);
        }
        out
    }

    /// Retransmits what is due, and gives up on connections that retried too often.
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<Output> {
        let mut out = Vec::new();
        let mut dead = Vec::new();
        for (&(local, remote), c) in &mut self.connections {
            if c.deadline.is_none_or(|d| d > now) {
                continue;
            }
            let limit = if c.state == State::Established {
                DATA_RETRIES
            } else {
                SYN_RETRIES
            };
            if c.retries >= limit {
                dead.push((local, remote));
                continue;
            }
            c.retries += 1;
            c.timing = None;
            c.rto = (c.rto * 2).min(MAX_RTO);
            c.deadline = Some(now + c.rto);
            // Go back: everything unacknowledged again, oldest first.
            out.extend(c.unacked.iter().map(|s| send(local, remote, s.clone())));
        }
        for (local, remote) in dead {
            if let Some(c) = self.connections.remove(&(local, remote)) {
                out.push(send(local, remote, reset_from(&c)));
            }
            out.push(Output::Closed {
                local,
                remote,
                why: Closed::TimedOut,
            });
        }
        out
    }

    /// The earliest retransmission deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.connections.values().filter_map(|c| c.deadline).min()
    }
}

fn send(local: SocketAddr, remote: SocketAddr, segment: Segment) -> Output {
    Output::Send {
        local,
        remote,
        segment,
    }
}

/// The handshake is done (its acknowledgement took the first round-trip sample): send what
/// was written meanwhile.
fn establish(
    c: &mut Connection,
    now: Instant,
    local: SocketAddr,
    remote: SocketAddr,
    out: &mut Vec<Output>,
) {
    c.state = State::Established;
    while let Some(payload) = c.waiting.pop_front() {
        let segment = c.transmit(now, Flags::default(), payload);
        out.push(send(local, remote, segment));
    }
}

/// Delivers in order, holds what came early (bounded), and acknowledges either way.
fn receive_data(
    c: &mut Connection,
    local: SocketAddr,
    remote: SocketAddr,
    segment: Segment,
    out: &mut Vec<Output>,
) {
    let offset = segment.seq.wrapping_sub(c.rcv_nxt) as i32;
    if offset == 0 {
        c.rcv_nxt = c.rcv_nxt.wrapping_add(segment.payload.len() as u32);
        out.push(Output::Deliver {
            local,
            remote,
            payload: segment.payload,
        });
        while let Some(next) = c.out_of_order.remove(&c.rcv_nxt) {
            c.rcv_nxt = c.rcv_nxt.wrapping_add(next.len() as u32);
            out.push(Output::Deliver {
                local,
                remote,
                payload: next,
            });
        }
    } else if offset > 0 && c.out_of_order.len() < MAX_OUT_OF_ORDER {
        c.out_of_order.insert(segment.seq, segment.payload);
    }
    // A duplicate (offset < 0) is acknowledged again: our earlier ACK may have been lost.
    out.push(send(local, remote, c.ack_only()));
}

/// RFC 9293 §3.5.2, group 1: the reset answering a segment for no connection.
fn reset_for(segment: &Segment) -> Segment {
    if segment.flags.ack {
        Segment {
            flags: Flags {
                rst: true,
                ..Flags::default()
            },
            seq: segment.ack,
            ack: 0,
            payload: Bytes::new(),
        }
    } else {
        Segment {
            flags: Flags {
                rst: true,
                ack: true,
                ..Flags::default()
            },
            seq: 0,
            ack: segment.seq.wrapping_add(segment.len()),
            payload: Bytes::new(),
        }
    }
}

/// The reset a side sends when it abandons a connection.
fn reset_from(c: &Connection) -> Segment {
    Segment {
        flags: Flags {
            rst: true,
            ..Flags::default()
        },
        seq: c.snd_nxt,
        ack: 0,
        payload: Bytes::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn sends(out: &[Output]) -> Vec<Segment> {
        out.iter()
            .filter_map(|o| match o {
                Output::Send { segment, .. } => Some(segment.clone()),
                _ => None,
            })
            .collect()
    }

    fn delivered(out: &[Output]) -> Vec<Bytes> {
        out.iter()
            .filter_map(|o| match o {
                Output::Deliver { payload, .. } => Some(payload.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn handshake_then_writes_arrive_in_order_even_when_reordered() {
        let t = crate::epoch();
        let (a, b) = (addr("10.0.0.1:5000"), addr("10.0.0.2:443"));
        let (mut ca, mut cb) = (Stack::default(), Stack::default());
        let syn = sends(&ca.write(t, a, b, Bytes::from_static(b"one"), 100));
        assert_eq!(syn.len(), 1);
        assert!(syn[0].flags.syn && !syn[0].flags.ack);
        let syn_ack = sends(&cb.receive(t, b, a, syn[0].clone(), true, 7000));
        assert!(syn_ack[0].flags.syn && syn_ack[0].flags.ack);
        assert_eq!(syn_ack[0].ack, 101);
        // The SYN-ACK establishes A, which acknowledges and sends what waited.
        let out = ca.receive(t, a, b, syn_ack[0].clone(), false, 0);
        let segs = sends(&out);
        assert_eq!(segs.len(), 2);
        assert_eq!(segs[0].payload, Bytes::from_static(b"one"));
        let second = sends(&ca.write(t, a, b, Bytes::from_static(b"two"), 0));
        // B gets "two" before "one": it holds it, then delivers both in order.
        let early = cb.receive(t, b, a, second[0].clone(), true, 0);
        assert!(delivered(&early).is_empty());
        let ack_of_handshake = cb.receive(t, b, a, segs[1].clone(), true, 0);
        assert!(delivered(&ack_of_handshake).is_empty());
        let both = cb.receive(t, b, a, segs[0].clone(), true, 0);
        assert_eq!(
            delivered(&both),
            [Bytes::from_static(b"one"), Bytes::from_static(b"two")]
        );
        // Its cumulative ACK clears A's retransmission queue.
        let ack = sends(&both).pop().unwrap();
        ca.receive(t, a, b, ack, false, 0);
        assert_eq!(ca.poll_timeout(), None);
    }

    #[test]
    fn an_unanswered_syn_is_sent_again_backing_off_then_given_up_with_a_reset() {
        let t = crate::epoch();
        let (a, b) = (addr("10.0.0.1:5000"), addr("10.0.0.2:443"));
        let mut ca = Stack::default();
        ca.write(t, a, b, Bytes::from_static(b"x"), 1);
        let mut at = t;
        let mut resent = 0;
        while let Some(deadline) = ca.poll_timeout() {
            assert!(deadline > at, "the deadline moves forward");
            at = deadline;
            let out = ca.handle_timeout(at);
            resent += sends(&out).iter().filter(|s| s.flags.syn).count();
            if let Some(Output::Closed { why, .. }) = out.last() {
                assert_eq!(*why, Closed::TimedOut);
                assert!(sends(&out).iter().any(|s| s.flags.rst));
            }
        }
        assert_eq!(resent, SYN_RETRIES as usize);
        assert!(ca.connections.is_empty());
        // 1 + 2 + 4 + … + 32 s of backing off, then the 60 s cap.
        assert_eq!(at - t, Duration::from_secs(123));
    }

    #[test]
    fn three_duplicate_acks_resend_the_lost_segment_at_once() {
        let t = crate::epoch();
        let (a, b) = (addr("10.0.0.1:5000"), addr("10.0.0.2:443"));
        let (mut ca, mut cb) = (Stack::default(), Stack::default());
        let syn = sends(&ca.write(t, a, b, Bytes::from_static(b"0"), 1));
        let rtt = Duration::from_millis(40);
        let syn_ack = sends(&cb.receive(t, b, a, syn[0].clone(), true, 0));
        let out = ca.receive(t + rtt, a, b, syn_ack[0].clone(), false, 0);
        // The handshake's round trip sets the RTO: three round trips, at least 200 ms.
        assert_eq!(ca.connections[&(a, b)].base_rto, MIN_RTO);
        let at = t + rtt;
        for s in sends(&out) {
            for ack in sends(&cb.receive(at, b, a, s, true, 0)) {
                ca.receive(at, a, b, ack, false, 0);
            }
        }
        let lost = sends(&ca.write(at, a, b, Bytes::from_static(b"1"), 0)).remove(0);
        let mut dup_acks = Vec::new();
        for later in [b"2", b"3", b"4"] {
            let s = sends(&ca.write(at, a, b, Bytes::from_static(later), 0)).remove(0);
            dup_acks.extend(sends(&cb.receive(at, b, a, s, true, 0)));
        }
        assert!(
            dup_acks.iter().all(|s| s.ack == lost.seq),
            "each acknowledges the gap"
        );
        let resent: Vec<Segment> = dup_acks
            .into_iter()
            .flat_map(|ack| sends(&ca.receive(at, a, b, ack, false, 0)))
            .collect();
        // Only the third duplicate resends, and only the lost segment, before any RTO.
        assert_eq!(resent, std::slice::from_ref(&lost));
        let delivered_now = cb.receive(at, b, a, resent[0].clone(), true, 0);
        assert_eq!(
            delivered(&delivered_now).len(),
            4,
            "the gap and what waited behind it"
        );
    }

    #[test]
    fn a_segment_for_no_connection_draws_a_reset_and_a_reset_closes() {
        let t = crate::epoch();
        let (a, b) = (addr("10.0.0.1:5000"), addr("10.0.0.2:443"));
        let (mut ca, mut cb) = (Stack::default(), Stack::default());
        let syn = sends(&ca.write(t, a, b, Bytes::from_static(b"x"), 1));
        // Nobody listens at B: a reset comes back and A's connection closes.
        let rst = sends(&cb.receive(t, b, a, syn[0].clone(), false, 0));
        assert!(rst[0].flags.rst && rst[0].flags.ack);
        assert_eq!(rst[0].ack, 2);
        let out = ca.receive(t, a, b, rst[0].clone(), false, 0);
        assert_eq!(
            out,
            [Output::Closed {
                local: a,
                remote: b,
                why: Closed::Reset
            }]
        );
        assert!(ca.connections.is_empty());
    }

    #[test]
    fn simultaneous_open_establishes_both_sides() {
        let t = crate::epoch();
        let (a, b) = (addr("10.0.0.1:5000"), addr("10.0.0.2:6000"));
        let (mut ca, mut cb) = (Stack::default(), Stack::default());
        let syn_a = sends(&ca.write(t, a, b, Bytes::from_static(b"from a"), 10));
        let syn_b = sends(&cb.write(t, b, a, Bytes::from_static(b"from b"), 90));
        let syn_ack_a = sends(&ca.receive(t, a, b, syn_b[0].clone(), false, 0));
        let syn_ack_b = sends(&cb.receive(t, b, a, syn_a[0].clone(), false, 0));
        let out_a = ca.receive(t, a, b, syn_ack_b[0].clone(), false, 0);
        let out_b = cb.receive(t, b, a, syn_ack_a[0].clone(), false, 0);
        let data_a = sends(&out_a);
        let data_b = sends(&out_b);
        let got_b = cb.receive(
            t,
            b,
            a,
            data_a
                .iter()
                .find(|s| !s.payload.is_empty())
                .unwrap()
                .clone(),
            false,
            0,
        );
        let got_a = ca.receive(
            t,
            a,
            b,
            data_b
                .iter()
                .find(|s| !s.payload.is_empty())
                .unwrap()
                .clone(),
            false,
            0,
        );
        assert_eq!(delivered(&got_b), [Bytes::from_static(b"from a")]);
        assert_eq!(delivered(&got_a), [Bytes::from_static(b"from b")]);
    }

    #[test]
    fn a_flood_of_early_segments_is_bounded() {
        let t = crate::epoch();
        let (a, b) = (addr("10.0.0.1:5000"), addr("10.0.0.2:443"));
        let (mut ca, mut cb) = (Stack::default(), Stack::default());
        let syn = sends(&ca.write(t, a, b, Bytes::new(), 1));
        let syn_ack = sends(&cb.receive(t, b, a, syn[0].clone(), true, 0));
        let ack = sends(&ca.receive(t, a, b, syn_ack[0].clone(), false, 0));
        cb.receive(t, b, a, ack[0].clone(), true, 0);
        for i in 0..10_000u32 {
            let s = Segment {
                flags: Flags {
                    ack: true,
                    ..Flags::default()
                },
                seq: 1_000 + i * 10,
                ack: 1,
                payload: Bytes::from_static(b"0123456789"),
            };
            cb.receive(t, b, a, s, true, 0);
        }
        let c = &cb.connections[&(b, a)];
        assert_eq!(c.out_of_order.len(), MAX_OUT_OF_ORDER);
    }
}
