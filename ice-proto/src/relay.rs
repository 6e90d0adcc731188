//! Relayed candidates (RFC 8445 §5.1.1.2 with RFC 8656): a TURN allocation per base and
//! TURN server, through stun-proto's TURN client. The allocation yields a relayed candidate
//! (its base is itself) and the server-reflexive address the server saw. Everything the
//! agent sends from a relayed address — checks, answers, consent, data — goes through the
//! allocation: a permission for the peer's IP first (§9), Send indications, and ChannelData
//! once the pair is selected and a channel bound (§11, §12). A check for a peer whose
//! permission is still being asked for yields its Ta slot to a pair that can go now
//! (`awaits_permission`) and, sent, waits in the TURN client to leave right after the
//! CreatePermission success — the server would drop it before, and the first relayed check
//! would only get through one retransmission later. A peer the server refuses for good (403:
//! an address it will not relay to; 443) fails the pairs to it at once. What the server
//! relays back is handled as if it had arrived on the relayed address from the peer.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use bytes::Bytes;

use rand_chacha::ChaCha20Rng;
use rand_core::{CryptoRng, RngCore, SeedableRng};
use stun_proto::transaction;
use stun_proto::turn::client::{
    AllocationFamily, DropReason, Handled, RequestFailure, SendError as TurnSendError, TurnClient,
    TurnClientConfig, TurnEvent,
};
use stun_proto::{Transmit, TransmitRef, TransportProtocol};

use crate::checklist::PairState;
use crate::config::AgentConfig;
use crate::event::Problem;
use crate::path::Path;
use crate::stream::{Stream, StreamId};

/// One allocation, for one base of one component.
#[derive(Debug)]
struct Relay {
    client: TurnClient<ChaCha20Rng>,
    /// Where it belongs: a stream index, a component, a base.
    owner: Owner,
    server: SocketAddr,
    /// The relayed address, once allocated.
    relayed: Option<SocketAddr>,
    /// Still allocating (gathering waits for it).
    pending: bool,
    /// Its base or stream was removed: deallocated, no longer used.
    retired: bool,
    /// Where a datagram is framed for the allocation (ChannelData or a Send indication):
    /// kept from one datagram to the next, so that sending through the relay allocates only
    /// while the buffer grows to the largest datagram.
    send_buf: Vec<u8>,
}

/// The stream (index), component and base an allocation was made for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Owner {
    pub stream: usize,
    pub component: u16,
    pub base: SocketAddr,
}

impl Owner {
    /// The problem to report when `server` gave no allocation.
    pub const fn failed(self, server: SocketAddr) -> Problem {
        Problem::TurnServerFailed {
            stream: StreamId(self.stream),
            component: self.component,
            base: self.base,
            server,
        }
    }
}

/// What became of an allocation ([`Relays::poll_event`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RelayEvent {
    /// Allocated: its candidates can be added ([`Relays::allocation`]).
    Allocated(usize),
    /// The allocation failed or expired.
    Failed { owner: Owner, server: SocketAddr },
    /// The server refused a permission for `peer` on the allocation whose relayed address is
    /// `relayed` for good (403 or 443): no check from `relayed` to `peer` can pass.
    PermissionRefused { relayed: SocketAddr, peer: IpAddr },
}

/// What an allocation gave (§5.1.1.2): the relayed address, and the server-reflexive
/// address the server saw.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Allocated {
    pub owner: Owner,
    pub server: SocketAddr,
    /// How the server is reached.
    pub transport: TransportProtocol,
    pub relayed: SocketAddr,
    pub mapped: Option<SocketAddr>,
}

/// The most a TURN framing adds to a datagram: a Send indication to an IPv6 peer (56 bytes,
/// RFC 8656 §11.1) with room to spare; ChannelData adds 4, and up to 3 of padding over TCP
/// (§12.5).
const RELAY_OVERHEAD: usize = 64;

/// Why a datagram could not leave through an allocation now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RelayRefusal {
    /// The permission for the peer is asked for and not confirmed yet (RFC 8656 §9).
    Pending,
    /// The allocation is gone, or the datagram does not fit.
    Refused,
}

/// What a datagram from a TURN server turned out to be.
pub(crate) enum FromRelay<'a> {
    /// Consumed by the TURN client.
    Handled,
    /// Relayed from `peer` to our relayed address.
    Data {
        relayed: SocketAddr,
        peer: SocketAddr,
        data: &'a [u8],
    },
}

/// The agent's TURN allocations, a machine of their own: started per base and server,
/// polled for what became of them, and the route of every datagram from a relayed address.
#[derive(Debug, Default)]
pub(crate) struct Relays {
    list: Vec<Relay>,
}

impl Relays {
    /// Starts an allocation from `owner`'s base on every TURN server of its family; returns
    /// the servers that could not be asked (a full table, a bad configuration).
    pub fn start<R: RngCore + CryptoRng>(
        &mut self,
        now: Instant,
        rng: &mut R,
        config: &AgentConfig,
        owner: Owner,
    ) -> Vec<SocketAddr> {
        let mut refused = Vec::new();
        let base = owner.base;
        for t in &config.turn_servers {
            if t.server.is_ipv4() != base.is_ipv4() {
                continue;
            }
            let mut client_config = TurnClientConfig::new(
                base,
                t.server,
                t.transport,
                t.username.clone(),
                t.password.clone(),
            );
            // A relayed address of the base's family (RFC 8656 §7.1: the server's default is
            // IPv4; an IPv6 one takes REQUESTED-ADDRESS-FAMILY), so it pairs with the peer's
            // candidates of that family.
            if base.is_ipv6() {
                client_config.address_family = AllocationFamily::Ipv6;
            }
            client_config.transactions = config.turn_requests.clone();
            let mut seed = [0u8; 32];
            rng.fill_bytes(&mut seed);
            let mut client = TurnClient::new(client_config, ChaCha20Rng::from_seed(seed));
            if client.handle_allocate(now).is_err() || self.list.len() >= MAX_RELAYS {
                refused.push(t.server);
                continue;
            }
            self.list.push(Relay {
                client,
                owner,
                server: t.server,
                relayed: None,
                pending: true,
                retired: false,
                send_buf: Vec::new(),
            });
        }
        refused
    }

    /// The live allocations made for `owner` (after a restart, their candidates again).
    pub fn of_owner(&self, owner: Owner) -> Vec<usize> {
        (0..self.list.len())
            .filter(|&i| self.list[i].owner == owner && !self.list[i].retired)
            .collect()
    }

    /// What became of an allocation since the last call. Allocations of a stream that is
    /// gone report nothing.
    pub fn poll_event(&mut self) -> Option<RelayEvent> {
        for (i, r) in self.list.iter_mut().enumerate() {
            while let Some(event) = r.client.poll_event() {
                if r.retired {
                    continue;
                }
                match event {
                    TurnEvent::Allocated(allocation) => {
                        r.pending = false;
                        r.relayed = Some(allocation.relayed);
                        return Some(RelayEvent::Allocated(i));
                    }
                    TurnEvent::AllocationFailed(_) | TurnEvent::Expired => {
                        r.pending = false;
                        return Some(RelayEvent::Failed {
                            owner: r.owner,
                            server: r.server,
                        });
                    }
                    // A refusal that asking again would only repeat: 403 for a peer the
                    // server will not relay to, 443 for a peer of the other address family
                    // (RFC 8656 §9.2). 508 (no room now) and lost requests are not final.
                    TurnEvent::PermissionFailed {
                        peer,
                        failure:
                            RequestFailure::ErrorResponse {
                                code: 403 | 443, ..
                            },
                    } => {
                        if let Some(relayed) = r.relayed {
                            return Some(RelayEvent::PermissionRefused { relayed, peer });
                        }
                    }
                    _ => {}
                }
            }
        }
        None
    }

    /// What allocation `i` gave, once allocated.
    pub fn allocation(&self, i: usize) -> Option<Allocated> {
        let r = self.list.get(i)?;
        let allocation = r.client.allocation()?;
        Some(Allocated {
            owner: r.owner,
            server: r.server,
            transport: r.client.transport(),
            relayed: allocation.relayed,
            mapped: allocation.mapped,
        })
    }

    /// Asks for the permission (RFC 8656 §9) of every peer a relayed pair of `stream` is
    /// to check, all at once, as soon as the pair exists: a check leaves through the
    /// allocation only once its peer is permitted ([`send`](Self::send)), and asking as
    /// each check comes up in the schedule puts a CreatePermission round trip to the server
    /// in front of every relayed check, one after the other. Peers already permitted or
    /// asked for cost nothing (the TURN client's requests are idempotent); a refused one
    /// (403, a private address the server will not relay to) fails only its own pairs.
    pub fn permit_pairs(&mut self, now: Instant, stream: &Stream) {
        for p in stream.checklist.pairs() {
            if p.state() == &PairState::Failed {
                continue;
            }
            let relay = self
                .list
                .iter_mut()
                .find(|r| r.relayed == Some(p.base()) && !r.retired);
            if let Some(r) = relay {
                if !r.client.has_permission(p.remote_addr().ip()) {
                    // Refusals (a full table, a peer of the wrong family) surface when the
                    // check itself is sent.
                    let _ = r.client.handle_create_permission(now, p.remote_addr().ip());
                }
            }
        }
    }

    /// Whether a check from relayed address `relayed` to `peer` would only wait in the TURN
    /// client: the peer's permission is asked for and not yet confirmed. Such a check yields
    /// its Ta slot to one that can leave now.
    pub fn awaits_permission(&self, relayed: SocketAddr, peer: IpAddr) -> bool {
        self.relay_of(relayed)
            .and_then(|i| self.list.get(i))
            .is_some_and(|r| r.client.permission_requested(peer))
    }

    /// The live allocation whose relayed address is `addr`.
    pub fn relay_of(&self, addr: SocketAddr) -> Option<usize> {
        self.list
            .iter()
            .position(|r| r.relayed == Some(addr) && !r.retired)
    }

    /// The relayed addresses of stream index `stream`'s live allocations.
    pub fn relayed_of(&self, stream: usize) -> impl Iterator<Item = SocketAddr> + '_ {
        self.list
            .iter()
            .filter(move |r| r.owner.stream == stream && !r.retired)
            .filter_map(|r| r.relayed)
    }

    /// Whether an allocation of `stream`'s `component` is still being made.
    pub fn is_pending(&self, stream: usize, component: u16) -> bool {
        self.list
            .iter()
            .any(|r| r.owner.stream == stream && r.owner.component == component && r.pending)
    }

    /// Sends `payload` from allocation `relay`'s relayed address to `peer`, asking for the
    /// peer's permission first if it has none: the datagram to send now, framed in the
    /// relay's reused buffer, or why there is none.
    pub fn send(
        &mut self,
        now: Instant,
        relay: usize,
        peer: SocketAddr,
        payload: &[u8],
    ) -> Result<TransmitRef<'_>, RelayRefusal> {
        let relay = self.list.get_mut(relay).ok_or(RelayRefusal::Refused)?;
        if !relay.client.has_permission(peer.ip()) {
            // Idempotent for a peer already asked for (RFC 8656 §9).
            let _ = relay.client.handle_create_permission(now, peer.ip());
        }
        let needed = payload.len() + RELAY_OVERHEAD;
        if relay.send_buf.len() < needed {
            relay.send_buf.resize(needed, 0);
        }
        relay
            .client
            .handle_send_into(now, peer, payload, &mut relay.send_buf)
            .map_err(|e| match e {
                TurnSendError::PermissionPending(_) => RelayRefusal::Pending,
                _ => RelayRefusal::Refused,
            })
    }

    /// Hands `payload` for `peer` to allocation `relay`'s TURN client to hold until the
    /// peer's permission is confirmed (it then leaves with the client's transmits); whether
    /// the client took it.
    fn hold(&mut self, now: Instant, relay: usize, peer: SocketAddr, payload: &[u8]) -> bool {
        self.list
            .get_mut(relay)
            .is_some_and(|r| r.client.handle_send(now, peer, payload).is_ok())
    }

    /// The datagram that carries `payload` on `path`: itself from a base, framed through
    /// the allocation from a relayed address (over the TURN server's transport);
    /// `Ok(None)` when the TURN client holds it until the peer's permission is confirmed —
    /// a first check leaves right after the CreatePermission success (RFC 8656 §9), not one
    /// retransmission later.
    pub fn route(
        &mut self,
        now: Instant,
        path: Path,
        payload: Bytes,
    ) -> Result<Option<Transmit>, RelayRefusal> {
        let destination = path.remote;
        let Some(relay) = self.relay_of(path.base) else {
            return Ok(Some(Transmit {
                transport: path.transport,
                source: path.base,
                destination,
                payload,
            }));
        };
        let refusal = match self.send(now, relay, destination, &payload) {
            Ok(t) => return Ok(Some(Transmit::from(t))),
            Err(refusal) => refusal,
        };
        if refusal == RelayRefusal::Pending && self.hold(now, relay, destination, &payload) {
            return Ok(None);
        }
        Err(refusal)
    }

    /// Binds a channel to the peer of a selected relayed pair (data as ChannelData, §12).
    pub fn bind(&mut self, now: Instant, relayed: SocketAddr, peer: SocketAddr) {
        if let Some(i) = self.relay_of(relayed) {
            let _ = self.list[i].client.handle_bind_channel(now, peer);
        }
    }

    /// Offers a datagram to the TURN client it may belong to.
    pub fn offer<'a>(
        &mut self,
        now: Instant,
        path: Path,
        payload: &'a [u8],
    ) -> Option<FromRelay<'a>> {
        let r = (self.list.iter_mut()).find(|r| {
            r.owner.base == path.base
                && r.client.server() == path.remote
                && r.client.transport() == path.transport
        })?;
        let relayed = r.relayed;
        match (r.client).handle_datagram(now, path.transport, path.remote, path.base, payload) {
            Handled::Data { peer, data, .. } => Some(FromRelay::Data {
                relayed: relayed?,
                peer,
                data,
            }),
            // A response to no TURN transaction may answer a gathering query: one server
            // is often both the STUN and the TURN server (coturn on 3478).
            Handled::NotTurn(_)
            | Handled::Dropped(DropReason::Transaction(
                transaction::DropReason::UnknownTransaction,
            )) => None,
            _ => Some(FromRelay::Handled),
        }
    }

    /// Releases the live allocations `gone` picks (a Refresh with lifetime 0, RFC 8656
    /// §7.2); returns their relayed addresses.
    pub fn retire(&mut self, now: Instant, gone: impl Fn(Owner) -> bool) -> Vec<SocketAddr> {
        let mut relayed = Vec::new();
        for r in self.list.iter_mut().filter(|r| !r.retired && gone(r.owner)) {
            r.retired = true;
            r.pending = false;
            r.client.handle_close(now);
            relayed.extend(r.relayed);
        }
        relayed
    }

    /// Releases every allocation (the agent closes).
    pub fn close(&mut self, now: Instant) {
        for r in &mut self.list {
            r.client.handle_close(now);
        }
    }

    /// Runs the TURN clients' timers that are due.
    pub fn handle_timeout(&mut self, now: Instant) {
        for r in &mut self.list {
            if r.client.poll_timeout().is_some_and(|t| t <= now) {
                r.client.handle_timeout(now);
            }
        }
    }

    /// The next datagram a TURN client sends.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.list.iter_mut().find_map(|r| r.client.poll_transmit())
    }

    /// The earliest TURN client deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.list
            .iter()
            .filter_map(|r| r.client.poll_timeout())
            .min()
    }
}

/// The most TURN allocations an agent holds.
pub(crate) const MAX_RELAYS: usize = 64;
