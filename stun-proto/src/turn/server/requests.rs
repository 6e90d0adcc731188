//! The server's request handling: long-term authentication first (RFC 8489 §9.2.4, through
//! [`LongTermAuth`](crate::long_term::LongTermAuth)), then Allocate (RFC 8656 §7.2), Refresh
//! (§8.2), CreatePermission (§9.2) and ChannelBind (§11.2), each check in the order its
//! section lists, and the one place that maps a refusal to its error code:
//!
//! | fault | code |
//! | --- | --- |
//! | EVEN-PORT with R and ADDITIONAL-ADDRESS-FAMILY (a reserved pair cannot be dual) | 400 |
//! | missing or malformed attribute, channel number outside 0x4000–0x4FFF (0x7FFF with `rfc5766_channel_numbers`), channel conflict, conflicting family or token attributes | 400 |
//! | unknown comprehension-required attribute, DONT-FRAGMENT unsupported | 420 |
//! | 5-tuple already allocated (not a retransmission), or no allocation | 437 |
//! | another user's allocation | 441 |
//! | REQUESTED-TRANSPORT neither UDP nor TCP, or TCP with `tcp_allocations` off | 442 |
//! | REQUESTED-TRANSPORT TCP over UDP, or with DONT-FRAGMENT, EVEN-PORT or RESERVATION-TOKEN (RFC 6062 §5.1); Connect on a UDP allocation or without XOR-PEER-ADDRESS (§5.2); ChannelBind on a TCP allocation; ConnectionBind over UDP, on a control connection, or naming no connection waiting for it (§5.4) | 400 |
//! | Connect to a peer the allocation has a connection with, or is connecting to (RFC 6062 §5.2) | 446 |
//! | the server's connection to the peer failed or timed out (RFC 6062 §5.2, `tcp_relay.rs`) | 447 |
//! | relayed family not offered | 440 |
//! | peer of a family the allocation does not relay | 443 |
//! | peer denied by the filter | 403 |
//! | user quota | 486 |
//! | no relay address, total allocations, full permission/channel table, unknown token | 508 |
//! | no relay address or total allocations, with `alternate_server` set | 300 + ALTERNATE-SERVER |

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rand_core::{CryptoRng, RngCore};

use super::allocation::{Allocation, AllocationId, BindError};
use super::bandwidth::Bandwidth;
use super::relay_pool::PoolError;
use super::{FiveTuple, Response, ServerEvent, TurnServer};
use crate::attribute::{
    AdditionalAddressFamily, AddressErrorCode, AddressFamily, AlternateServer, AttributeType,
    ChannelNumber, ConnectionId, DecodeAttribute, DontFragment, EncodeAttribute, ErrorCode,
    EvenPort, Lifetime, RawAttribute, RequestedAddressFamily, RequestedTransport, ReservationToken,
    Software, UnknownAttributes, XorMappedAddress, XorPeerAddress, XorRelayedAddress,
};
use crate::builder::{BuildError, MessageBuilder};
use crate::credentials::IntegrityKey;
use crate::header::{Class, Method};
use crate::message::{IntegrityAlgorithm, Message};
use crate::time::saturating_add;
use crate::transmit::Transmit;
use crate::turn::channel_data::{CHANNEL_NUMBERS, RFC5766_CHANNEL_NUMBERS};

/// The channel numbers of `rfc5766_channel_numbers`: RFC 5766's and the 0x7FFF it reserved,
/// as coturn accepts them and its `turnutils_uclient` picks them.
const COTURN_CHANNEL_NUMBERS: std::ops::RangeInclusive<u16> =
    *RFC5766_CHANNEL_NUMBERS.start()..=0x7FFF;
use crate::turn::{DRAFT_ADDITIONAL_ADDRESS_FAMILY, DRAFT_ADDRESS_ERROR_CODE};

/// The most unknown attributes listed in a 420.
const MAX_UNKNOWN: usize = 8;

/// The authenticated user of a request, and how to sign the answer.
#[derive(Clone, Debug)]
pub(super) struct Signer {
    pub(super) username: String,
    key: IntegrityKey,
    integrity: IntegrityAlgorithm,
}

impl Signer {
    fn sign(&self, b: &mut Response) -> Result<(), BuildError> {
        match self.integrity {
            IntegrityAlgorithm::Sha1 => b.add_message_integrity(&self.key)?,
            IntegrityAlgorithm::Sha256 => b.add_message_integrity_sha256(&self.key)?,
        };
        Ok(())
    }
}

/// A refusal: the error code, and what the error response carries besides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refusal {
    Code(u16),
    UnknownAttributes([AttributeType; MAX_UNKNOWN], usize),
    /// 300 Try Alternate with ALTERNATE-SERVER (RFC 8489 §10; RFC 8656 §7.2 lets an
    /// Allocate be redirected).
    TryAlternate(SocketAddr),
}

impl Refusal {
    const fn code(&self) -> u16 {
        match self {
            Refusal::Code(code) => *code,
            Refusal::UnknownAttributes(..) => ErrorCode::UNKNOWN_ATTRIBUTE,
            Refusal::TryAlternate(_) => ErrorCode::TRY_ALTERNATE,
        }
    }
}

const BAD_REQUEST: Refusal = Refusal::Code(ErrorCode::BAD_REQUEST);
const ALLOCATION_MISMATCH: Refusal = Refusal::Code(ErrorCode::ALLOCATION_MISMATCH);

/// Reads an optional attribute; a malformed one is a 400.
fn optional<'a, A: DecodeAttribute<'a>>(message: &Message<'a>) -> Result<Option<A>, Refusal> {
    message.get::<A>().transpose().map_err(|_| BAD_REQUEST)
}

impl<R: RngCore + CryptoRng> TurnServer<R> {
    /// Authenticates a request and dispatches it by method.
    pub(super) fn handle_request(&mut self, now: Instant, tuple: FiveTuple, message: &Message<'_>) {
        self.stats.requests += 1;
        if message.method() == Method::BINDING && self.config.answer_binding {
            // A TURN server is a STUN server too (RFC 8656 §4): no credentials, no state.
            let mut b = self.response(message, Class::Success);
            if b.add(&XorMappedAddress(tuple.client)).is_ok() {
                self.finish(tuple, b, None);
            }
            return;
        }
        // Nonces are bound to the client's address. A ConnectionBind comes over a new
        // connection with the nonce of its allocation's control connection (RFC 6062 §4.4
        // reuses the credentials; coturn's client reuses the nonce too): it is checked
        // against the control connection's address.
        let nonce_client = self.control_client(message).unwrap_or(tuple.client);
        let signer = match self.auth.authenticate(now, nonce_client, message) {
            Ok(a) => Signer {
                username: a.username.to_owned(),
                key: a.key.into_owned(),
                integrity: a.integrity,
            },
            Err(rejection) => {
                self.stats.errors += 1;
                self.stats.auth.count(rejection);
                let mut b = self.response(message, Class::Error);
                let written = self
                    .auth
                    .write_rejection(now, nonce_client, rejection, &mut b);
                if written.is_ok() {
                    self.finish(tuple, b, None);
                }
                return;
            }
        };
        let mut unknown = [AttributeType::new(0); MAX_UNKNOWN];
        let mut count = 0;
        for (slot, attribute) in unknown
            .iter_mut()
            .zip(message.unknown_comprehension_required())
        {
            *slot = attribute;
            count += 1;
        }
        let result = if count > 0 {
            Err(Refusal::UnknownAttributes(unknown, count))
        } else {
            match message.method() {
                Method::ALLOCATE => self.allocate(now, tuple, message, &signer),
                Method::REFRESH => self.refresh(now, tuple, message, &signer),
                Method::CREATE_PERMISSION => self.create_permission(now, tuple, message, &signer),
                Method::CHANNEL_BIND => self.channel_bind(now, tuple, message, &signer),
                Method::CONNECT => optional::<XorPeerAddress>(message).and_then(|peer| {
                    let tid = message.transaction_id();
                    let peer = peer.map(|p| p.0);
                    self.connect(now, tuple, tid, peer, &signer)
                        .map_err(Refusal::Code)
                }),
                Method::CONNECTION_BIND => {
                    optional::<ConnectionId>(message).and_then(|connection| {
                        self.connection_bind(tuple, connection, &signer)
                            .map_err(Refusal::Code)?;
                        let b = self.response(message, Class::Success);
                        self.finish(tuple, b, Some(&signer));
                        Ok(())
                    })
                }
                _ => Err(BAD_REQUEST),
            }
        };
        if let Err(refusal) = result {
            self.refuse(tuple, message, &signer, refusal);
        }
    }

    /// Allocate (RFC 8656 §7.2).
    fn allocate(
        &mut self,
        now: Instant,
        tuple: FiveTuple,
        message: &Message<'_>,
        signer: &Signer,
    ) -> Result<(), Refusal> {
        if let Some(&id) = self.by_tuple.get(&tuple) {
            // A retransmitted Allocate gets the same success again; anything else is 437.
            let allocation = self.allocation(id)?;
            if allocation.allocate_id != message.transaction_id() {
                return Err(ALLOCATION_MISMATCH);
            }
            let transmit = Transmit {
                transport: tuple.transport,
                source: tuple.server,
                destination: tuple.client,
                payload: allocation.allocate_response.clone(),
            };
            if !self.enqueue(transmit, None) {
                self.stats.dropped += 1;
            }
            return Ok(());
        }
        if self.bound_connection(&tuple).is_some() {
            // An RFC 6062 client data connection carries raw bytes, not allocations.
            return Err(BAD_REQUEST);
        }
        let tcp = match optional::<RequestedTransport>(message)? {
            None => return Err(BAD_REQUEST),
            Some(RequestedTransport::UDP) => false,
            // RFC 6062 §5.1: over a TCP or TLS control connection only, and without the
            // attributes that make sense for UDP alone.
            Some(RequestedTransport::TCP) if !self.config.tcp_allocations => {
                return Err(Refusal::Code(ErrorCode::UNSUPPORTED_TRANSPORT));
            }
            Some(RequestedTransport::TCP) => {
                let udp_only = [DontFragment::TYPE, EvenPort::TYPE, ReservationToken::TYPE];
                if !tuple.transport.is_reliable() || udp_only.iter().any(|t| message.has(*t)) {
                    return Err(BAD_REQUEST);
                }
                true
            }
            Some(_) => return Err(Refusal::Code(ErrorCode::UNSUPPORTED_TRANSPORT)),
        };
        if message.has(DontFragment::TYPE) && !self.config.dont_fragment {
            let mut unknown = [AttributeType::new(0); MAX_UNKNOWN];
            unknown[0] = DontFragment::TYPE;
            return Err(Refusal::UnknownAttributes(unknown, 1));
        }
        let token = optional::<ReservationToken>(message)?;
        let even_port = optional::<EvenPort>(message)?;
        let family = match message.get::<RequestedAddressFamily>() {
            None => None,
            Some(Ok(f)) => Some(f.0),
            Some(Err(_)) => return Err(Refusal::Code(ErrorCode::ADDRESS_FAMILY_NOT_SUPPORTED)),
        };
        let mut draft_codepoints = false;
        let additional = match optional::<AdditionalAddressFamily>(message)? {
            Some(a) => Some(a),
            None if self.config.coturn_dual_allocation => {
                match message.raw(DRAFT_ADDITIONAL_ADDRESS_FAMILY) {
                    Some(raw) => {
                        draft_codepoints = true;
                        let tid = message.transaction_id();
                        Some(
                            AdditionalAddressFamily::decode(raw.value, &tid)
                                .map_err(|_| BAD_REQUEST)?,
                        )
                    }
                    None => None,
                }
            }
            None => None,
        };
        let conflicting = (token.is_some() && (even_port.is_some() || family.is_some()))
            || (additional.is_some() && (even_port.is_some_and(|e| e.reserve) || family.is_some()))
            || additional.is_some_and(|a| a.0 != AddressFamily::Ipv6);
        if conflicting {
            return Err(BAD_REQUEST);
        }
        let user_count = self.per_user.get(&signer.username).copied().unwrap_or(0);
        if user_count >= self.config.max_allocations_per_user {
            self.stats.refused_user_quota += 1;
            return Err(Refusal::Code(ErrorCode::ALLOCATION_QUOTA_REACHED));
        }
        if self.allocations.len() >= self.config.max_allocations {
            self.stats.refused_total_quota += 1;
            return Err(self.at_capacity());
        }
        let lifetime = self.allocate_lifetime(optional::<Lifetime>(message)?);

        let reserve = even_port.filter(|e| e.reserve).map(|_| {
            let mut token = [0u8; 8];
            self.rng.fill_bytes(&mut token);
            if let (Some(tag), Some(head)) = (self.config.reservation_tag, token.get_mut(..2)) {
                head.copy_from_slice(&tag);
            }
            ReservationToken(token)
        });
        let taken = match token {
            Some(token) => self.pool.redeem(token),
            None => self.pool.take(
                now,
                family.unwrap_or(AddressFamily::Ipv4),
                even_port.is_some(),
                reserve,
            ),
        };
        let relayed = taken.map_err(|e| match e {
            PoolError::FamilyNotSupported => Refusal::Code(ErrorCode::ADDRESS_FAMILY_NOT_SUPPORTED),
            PoolError::Exhausted => {
                self.stats.refused_no_relay_address += 1;
                self.at_capacity()
            }
            PoolError::UnknownToken => Refusal::Code(ErrorCode::INSUFFICIENT_CAPACITY),
        })?;
        let (additional_relayed, additional_error) = match additional {
            None => (None, None),
            Some(_) => match self.pool.take(now, AddressFamily::Ipv6, false, None) {
                Ok(a) => (Some(a), None),
                Err(PoolError::FamilyNotSupported) => {
                    (None, Some(ErrorCode::ADDRESS_FAMILY_NOT_SUPPORTED))
                }
                Err(_) => (None, Some(ErrorCode::INSUFFICIENT_CAPACITY)),
            },
        };

        let mut b = self.response(message, Class::Success);
        let built = (|| -> Result<(), BuildError> {
            b.add(&XorRelayedAddress(relayed))?;
            if let Some(a) = additional_relayed {
                b.add(&XorRelayedAddress(a))?;
            }
            if let Some(code) = additional_error.and_then(|c| ErrorCode::new(c).ok()) {
                let error = AddressErrorCode::new(AddressFamily::Ipv6, code);
                if draft_codepoints {
                    let mut value = [0u8; 64];
                    if let Some(value) = value.get_mut(..error.value_len()) {
                        error.encode_value(value, &message.transaction_id());
                        b.add(&RawAttribute {
                            attribute_type: DRAFT_ADDRESS_ERROR_CODE,
                            value,
                        })?;
                    }
                } else {
                    b.add(&error)?;
                }
            }
            b.add(&Lifetime(seconds(lifetime)))?;
            if let Some(token) = reserve {
                b.add(&token)?;
            }
            b.add(&XorMappedAddress(tuple.client))?;
            Ok(())
        })();
        if built.is_err() {
            self.pool.release(relayed);
            if let Some(a) = additional_relayed {
                self.pool.release(a);
            }
            return Err(Refusal::Code(ErrorCode::SERVER_ERROR));
        }
        let Some(response) = self.finish(tuple, b, Some(signer)) else {
            return Ok(());
        };
        let id = AllocationId(self.next_id);
        self.next_id += 1;
        let mut allocation = Allocation::new(
            tuple,
            signer.username.clone(),
            relayed,
            additional_relayed,
            saturating_add(now, lifetime),
            message.transaction_id(),
            response,
        );
        allocation.bandwidth = self.config.max_bandwidth.map(|r| Bandwidth::new(now, r));
        allocation.tcp = tcp;
        #[cfg(feature = "tracing")]
        tracing::info!(
            target: "turn",
            allocation = id.0,
            client = %tuple.client,
            transport = ?tuple.transport,
            user = %signer.username,
            %relayed,
            lifetime_s = lifetime.as_secs(),
            "allocation created"
        );
        self.allocations.insert(id, allocation);
        self.by_tuple.insert(tuple, id);
        self.by_relay.insert(relayed, id);
        if let Some(a) = additional_relayed {
            self.by_relay.insert(a, id);
        }
        *self.per_user.entry(signer.username.clone()).or_default() += 1;
        self.reschedule(now, id);
        self.push_event(ServerEvent::AllocationCreated {
            id,
            tuple,
            username: signer.username.clone(),
            relayed,
            additional_relayed,
        });
        if tcp {
            for relayed in [Some(relayed), additional_relayed].into_iter().flatten() {
                self.push_event(ServerEvent::AcceptPeerConnections { id, relayed });
            }
        }
        Ok(())
    }

    /// Refresh (RFC 8656 §8.2).
    fn refresh(
        &mut self,
        now: Instant,
        tuple: FiveTuple,
        message: &Message<'_>,
        signer: &Signer,
    ) -> Result<(), Refusal> {
        let id = self.owned_allocation(tuple, signer)?;
        let family = optional::<RequestedAddressFamily>(message)?.map(|f| f.0);
        if let Some(family) = family {
            let matches = self
                .allocation(id)?
                .relayed_addresses()
                .any(|r| AddressFamily::of(&r.ip()) == family);
            if !matches {
                return Err(Refusal::Code(ErrorCode::PEER_ADDRESS_FAMILY_MISMATCH));
            }
        }
        let requested = optional::<Lifetime>(message)?;
        let lifetime = match requested {
            Some(Lifetime(0)) => Duration::ZERO,
            Some(l) => l.as_duration().min(self.config.max_lifetime),
            None => self.config.default_lifetime,
        };
        let mut b = self.response(message, Class::Success);
        b.add(&Lifetime(seconds(lifetime)))
            .map_err(|_| Refusal::Code(ErrorCode::SERVER_ERROR))?;
        self.finish(tuple, b, Some(signer));
        let dual = self.allocation(id)?.additional_relayed.is_some();
        match (lifetime.is_zero(), family) {
            // §8.2: LIFETIME 0 for one family of a dual allocation releases that address only.
            (true, Some(family)) if dual => self.release_family(now, id, family),
            (true, _) => self.delete(id, super::DeleteReason::Deallocated),
            (false, family) => {
                if let Some(a) = self.allocations.get_mut(&id) {
                    a.refresh(now, lifetime, family);
                }
                self.reschedule(now, id);
                self.push_event(ServerEvent::AllocationRefreshed { id, lifetime });
            }
        }
        Ok(())
    }

    /// Gives back the relayed address of `family` of a dual allocation, keeping the other.
    fn release_family(&mut self, now: Instant, id: AllocationId, family: AddressFamily) {
        let released = self
            .allocations
            .get_mut(&id)
            .and_then(|a| a.remove_family(family));
        if let Some(released) = released {
            self.by_relay.remove(&released);
            self.pool.release(released);
        }
        self.reschedule(now, id);
    }

    /// CreatePermission (RFC 8656 §9.2): all peers are checked before any is installed.
    fn create_permission(
        &mut self,
        now: Instant,
        tuple: FiveTuple,
        message: &Message<'_>,
        signer: &Signer,
    ) -> Result<(), Refusal> {
        let id = self.owned_allocation(tuple, signer)?;
        let tid = message.transaction_id();
        let mut peers = [None::<IpAddr>; 16];
        let mut count = 0;
        for raw in message
            .attributes()
            .filter(|a| a.attribute_type == AttributeType::XOR_PEER_ADDRESS)
        {
            let XorPeerAddress(peer) = raw.decode(&tid).map_err(|_| BAD_REQUEST)?;
            let slot = peers.get_mut(count).ok_or(BAD_REQUEST)?;
            *slot = Some(peer.ip());
            count += 1;
        }
        if count == 0 {
            return Err(BAD_REQUEST);
        }
        let allocation = self.allocation(id)?;
        for ip in peers.iter().flatten() {
            self.check_peer(allocation, *ip)?;
            if !allocation.permission_fits(*ip, self.config.max_permissions) {
                return Err(Refusal::Code(ErrorCode::INSUFFICIENT_CAPACITY));
            }
        }
        let mut created = [None::<IpAddr>; 16];
        if let Some(a) = self.allocations.get_mut(&id) {
            for (ip, slot) in peers.iter().flatten().zip(created.iter_mut()) {
                if a.install_permission(now, *ip) {
                    *slot = Some(*ip);
                }
            }
        }
        for peer in created.into_iter().flatten() {
            self.push_event(ServerEvent::PermissionCreated { id, peer });
        }
        self.reschedule(now, id);
        let b = self.response(message, Class::Success);
        self.finish(tuple, b, Some(signer));
        Ok(())
    }

    /// ChannelBind (RFC 8656 §11.2).
    fn channel_bind(
        &mut self,
        now: Instant,
        tuple: FiveTuple,
        message: &Message<'_>,
        signer: &Signer,
    ) -> Result<(), Refusal> {
        let id = self.owned_allocation(tuple, signer)?;
        if self.allocation(id)?.tcp {
            // RFC 6062 §4.2: a TCP allocation relays connections, not channels.
            return Err(BAD_REQUEST);
        }
        let Some(ChannelNumber(channel)) = optional::<ChannelNumber>(message)? else {
            return Err(BAD_REQUEST);
        };
        let valid = if self.config.rfc5766_channel_numbers {
            COTURN_CHANNEL_NUMBERS.contains(&channel)
        } else {
            CHANNEL_NUMBERS.contains(&channel)
        };
        if !valid {
            return Err(BAD_REQUEST);
        }
        let Some(XorPeerAddress(peer)) = optional::<XorPeerAddress>(message)? else {
            return Err(BAD_REQUEST);
        };
        let allocation = self.allocation(id)?;
        self.check_peer(allocation, peer.ip())?;
        if !self.is_peer_allowed(peer) {
            return Err(Refusal::Code(ErrorCode::FORBIDDEN));
        }
        allocation
            .check_channel(channel, peer, self.config.max_channels)
            .map_err(|e| match e {
                BindError::Conflict => BAD_REQUEST,
                BindError::Full => Refusal::Code(ErrorCode::INSUFFICIENT_CAPACITY),
            })?;
        if !allocation.permission_fits(peer.ip(), self.config.max_permissions) {
            return Err(Refusal::Code(ErrorCode::INSUFFICIENT_CAPACITY));
        }
        let (new_channel, new_permission) = match self.allocations.get_mut(&id) {
            Some(a) => (
                a.bind_channel(now, channel, peer),
                a.install_permission(now, peer.ip()),
            ),
            None => (false, false),
        };
        if new_permission {
            self.push_event(ServerEvent::PermissionCreated {
                id,
                peer: peer.ip(),
            });
        }
        if new_channel {
            self.push_event(ServerEvent::ChannelBound { id, channel, peer });
        }
        self.reschedule(now, id);
        let b = self.response(message, Class::Success);
        self.finish(tuple, b, Some(signer));
        Ok(())
    }

    /// The allocation of `tuple`, if `signer` owns it: 437 if none, 441 if another user's.
    fn owned_allocation(&self, tuple: FiveTuple, signer: &Signer) -> Result<AllocationId, Refusal> {
        let id = *self.by_tuple.get(&tuple).ok_or(ALLOCATION_MISMATCH)?;
        if self.allocation(id)?.username != signer.username {
            return Err(Refusal::Code(ErrorCode::WRONG_CREDENTIALS));
        }
        Ok(id)
    }

    /// Allocation `id`, which the routing tables just named (437 should they ever disagree).
    fn allocation(&self, id: AllocationId) -> Result<&Allocation, Refusal> {
        self.allocations.get(&id).ok_or(ALLOCATION_MISMATCH)
    }

    /// The refusal of an Allocate the server has no room for: 300 to the alternate server
    /// if there is one (counted in `redirected`), else 508.
    fn at_capacity(&mut self) -> Refusal {
        match self.config.alternate_server {
            Some(alternate) => {
                self.stats.redirected += 1;
                Refusal::TryAlternate(alternate)
            }
            None => Refusal::Code(ErrorCode::INSUFFICIENT_CAPACITY),
        }
    }

    /// 443 for a peer of a family the allocation does not relay, 403 for a denied one.
    fn check_peer(&self, allocation: &Allocation, ip: IpAddr) -> Result<(), Refusal> {
        if allocation.relay_for(ip).is_none() {
            return Err(Refusal::Code(ErrorCode::PEER_ADDRESS_FAMILY_MISMATCH));
        }
        if !self.config.peer_filter.is_allowed(ip) {
            return Err(Refusal::Code(ErrorCode::FORBIDDEN));
        }
        Ok(())
    }

    /// The lifetime an Allocate gets (RFC 8656 §7.2): the request's, capped at the maximum,
    /// and never below the default.
    fn allocate_lifetime(&self, requested: Option<Lifetime>) -> Duration {
        requested
            .map_or(self.config.default_lifetime, |l| {
                l.as_duration().min(self.config.max_lifetime)
            })
            .max(self.config.default_lifetime)
    }

    /// Sends the error response for `refusal`, signed (the request was authenticated).
    fn refuse(
        &mut self,
        tuple: FiveTuple,
        message: &Message<'_>,
        signer: &Signer,
        refusal: Refusal,
    ) {
        #[cfg(feature = "tracing")]
        tracing::debug!(
            target: "turn",
            client = %tuple.client,
            method = ?message.method(),
            code = refusal.code(),
            "request refused"
        );
        self.stats.errors += 1;
        let mut b = self.response(message, Class::Error);
        let built = (|| -> Result<(), BuildError> {
            if let Ok(code) = ErrorCode::new(refusal.code()) {
                b.add(&code)?;
            }
            match &refusal {
                Refusal::UnknownAttributes(types, count) => {
                    let listed = types.get(..*count).unwrap_or_default();
                    b.add(&UnknownAttributes::new(listed))?;
                }
                Refusal::TryAlternate(alternate) => {
                    b.add(&AlternateServer(*alternate))?;
                }
                Refusal::Code(_) => {}
            }
            Ok(())
        })();
        if built.is_ok() {
            self.finish(tuple, b, Some(signer));
        }
    }

    /// Starts a response to `message`.
    fn response(&self, message: &Message<'_>, class: Class) -> Response {
        // A growable buffer always takes a header: the fallback is never used.
        match MessageBuilder::response_to(BytesMut::with_capacity(128), message, class) {
            Ok(b) => b,
            Err(_) => MessageBuilder::new_bytes(
                message.message_type().with_class(class),
                message.transaction_id(),
            ),
        }
    }

    /// Adds SOFTWARE, the integrity (if signed) and FINGERPRINT, and queues the response.
    pub(super) fn finish(
        &mut self,
        tuple: FiveTuple,
        mut b: Response,
        signer: Option<&Signer>,
    ) -> Option<bytes::Bytes> {
        // SOFTWARE is optional (RFC 8489 §14.14): not in answers to unauthenticated
        // requests, which a spoofed source can draw (docs/hostile-input.md).
        if let (Some(software), Some(_)) = (self.config.software.as_deref(), signer) {
            if let Ok(software) = Software::new(software) {
                b.add(&software).ok()?;
            }
        }
        if let Some(signer) = signer {
            signer.sign(&mut b).ok()?;
        }
        b.add_fingerprint().ok()?;
        let payload = b.into_bytes();
        let transmit = Transmit {
            transport: tuple.transport,
            source: tuple.server,
            destination: tuple.client,
            payload: payload.clone(),
        };
        if !self.enqueue(transmit, None) {
            // The transmit queue is full: the client retransmits (a bound hit, counted).
            self.stats.dropped += 1;
        }
        Some(payload)
    }
}

/// A duration as whole LIFETIME seconds.
fn seconds(d: Duration) -> u32 {
    u32::try_from(d.as_secs()).unwrap_or(u32::MAX)
}
