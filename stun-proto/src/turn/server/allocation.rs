//! One allocation on the server (RFC 8656 §2.2, §6): the 5-tuple it is reached by, its
//! relayed addresses, its time-to-expiry, its permissions (§9: 300 s each, by peer IP) and
//! its channel bindings (§12: 600 s each, then 5 minutes during which neither the number nor
//! the peer may be bound to another). Every deadline lives here; the endpoint asks for the
//! earliest.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use bytes::Bytes;

use super::FiveTuple;
use super::bandwidth::{Bandwidth, Direction};
use crate::attribute::AddressFamily;
use crate::header::TransactionId;
use crate::time::saturating_add;
use crate::turn::{CHANNEL_COOLDOWN, CHANNEL_LIFETIME, PERMISSION_LIFETIME};

/// A server-assigned identifier of an allocation, unique for the server's life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AllocationId(pub(super) u64);

impl AllocationId {
    /// The number behind the id.
    pub const fn value(self) -> u64 {
        self.0
    }
}

/// A channel binding, live until `expires_at`, then cooling down for [`CHANNEL_COOLDOWN`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ChannelBinding {
    number: u16,
    peer: SocketAddr,
    expires_at: Instant,
}

/// Why a ChannelBind cannot be honoured (RFC 8656 §11.2: 400 for a conflict, 508 for a full
/// table).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum BindError {
    /// The number is (or was, within 5 minutes) bound to another peer, or the peer to
    /// another number.
    Conflict,
    /// The channel table is full.
    Full,
}

/// The state of one allocation.
#[derive(Clone, Debug)]
pub(super) struct Allocation {
    pub(super) tuple: FiveTuple,
    pub(super) username: String,
    pub(super) relayed: SocketAddr,
    pub(super) additional_relayed: Option<SocketAddr>,
    /// When `relayed` runs out.
    pub(super) expires_at: Instant,
    /// When `additional_relayed` runs out: a dual allocation's families are refreshed
    /// apart when a Refresh names one (RFC 8656 §8.2).
    pub(super) additional_expires_at: Instant,
    /// The Allocate that made it, and the success response, sent again when the request is
    /// retransmitted (RFC 8656 §7.2).
    pub(super) allocate_id: TransactionId,
    pub(super) allocate_response: Bytes,
    /// Bytes queued for this allocation's client and not yet polled.
    pub(super) queued_bytes: usize,
    /// The deadline under which the endpoint has it scheduled.
    pub(super) scheduled: Option<Instant>,
    /// The bandwidth cap, if the server has one.
    pub(super) bandwidth: Option<Bandwidth>,
    /// An RFC 6062 TCP allocation: it relays TCP connections (Connect, ConnectionBind),
    /// not datagrams.
    pub(super) tcp: bool,
    permissions: Vec<(IpAddr, Instant)>,
    channels: Vec<ChannelBinding>,
}

impl Allocation {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        tuple: FiveTuple,
        username: String,
        relayed: SocketAddr,
        additional_relayed: Option<SocketAddr>,
        expires_at: Instant,
        allocate_id: TransactionId,
        allocate_response: Bytes,
    ) -> Self {
        Self {
            tuple,
            username,
            relayed,
            additional_relayed,
            expires_at,
            additional_expires_at: expires_at,
            allocate_id,
            allocate_response,
            queued_bytes: 0,
            scheduled: None,
            bandwidth: None,
            tcp: false,
            permissions: Vec::new(),
            channels: Vec::new(),
        }
    }

    /// Whether `len` more bytes may be relayed `direction` at `now` under the bandwidth cap
    /// (always, without one).
    pub(super) fn bandwidth_allows(
        &mut self,
        now: Instant,
        direction: Direction,
        len: usize,
    ) -> bool {
        self.bandwidth
            .as_mut()
            .is_none_or(|b| b.allows(now, direction, len))
    }

    /// The relayed address of `peer`'s family, if the allocation has one (else 443).
    pub(super) fn relay_for(&self, peer: IpAddr) -> Option<SocketAddr> {
        let family = AddressFamily::of(&peer);
        [Some(self.relayed), self.additional_relayed]
            .into_iter()
            .flatten()
            .find(|r| AddressFamily::of(&r.ip()) == family)
    }

    /// When the whole allocation runs out: its last relayed address.
    pub(super) fn expiry(&self) -> Instant {
        match self.additional_relayed {
            Some(_) => self.expires_at.max(self.additional_expires_at),
            None => self.expires_at,
        }
    }

    /// Refreshes the relayed address of `family`, or every one, for `lifetime` (§8.2).
    pub(super) fn refresh(
        &mut self,
        now: Instant,
        lifetime: std::time::Duration,
        family: Option<AddressFamily>,
    ) {
        let until = saturating_add(now, lifetime);
        let of = |a: SocketAddr| AddressFamily::of(&a.ip());
        if family.is_none_or(|f| f == of(self.relayed)) {
            self.expires_at = until;
        }
        if let Some(additional) = self.additional_relayed {
            if family.is_none_or(|f| f == of(additional)) {
                self.additional_expires_at = until;
            }
        }
    }

    /// Takes out the relayed address of `family` of a dual allocation, keeping the other;
    /// returns it for the pool.
    pub(super) fn remove_family(&mut self, family: AddressFamily) -> Option<SocketAddr> {
        let additional = self.additional_relayed?;
        if AddressFamily::of(&additional.ip()) == family {
            self.additional_relayed = None;
            return Some(additional);
        }
        if AddressFamily::of(&self.relayed.ip()) != family {
            return None;
        }
        self.additional_relayed = None;
        self.expires_at = self.additional_expires_at;
        Some(std::mem::replace(&mut self.relayed, additional))
    }

    /// The relayed address of a dual allocation whose own lifetime ran out while the other
    /// lives on, taken out for the pool.
    pub(super) fn take_expired_family(&mut self, now: Instant) -> Option<SocketAddr> {
        let additional = self.additional_relayed?;
        if self.additional_expires_at <= now {
            return self.remove_family(AddressFamily::of(&additional.ip()));
        }
        if self.expires_at <= now {
            return self.remove_family(AddressFamily::of(&self.relayed.ip()));
        }
        None
    }

    /// The relayed addresses.
    pub(super) fn relayed_addresses(&self) -> impl Iterator<Item = SocketAddr> {
        [Some(self.relayed), self.additional_relayed]
            .into_iter()
            .flatten()
    }

    /// Whether a permission for `ip` is installed at `now` (§9).
    pub(super) fn has_permission(&self, now: Instant, ip: IpAddr) -> bool {
        self.permissions
            .iter()
            .any(|(p, expires_at)| *p == ip && *expires_at > now)
    }

    /// Whether installing a permission for `ip` would exceed `max`.
    pub(super) fn permission_fits(&self, ip: IpAddr, max: usize) -> bool {
        self.permissions.len() < max || self.permissions.iter().any(|(p, _)| *p == ip)
    }

    /// Installs or refreshes the permission for `ip` for 300 s; returns whether it is new.
    /// The caller checked [`permission_fits`](Self::permission_fits).
    pub(super) fn install_permission(&mut self, now: Instant, ip: IpAddr) -> bool {
        let expires_at = saturating_add(now, PERMISSION_LIFETIME);
        match self.permissions.iter_mut().find(|(p, _)| *p == ip) {
            Some((_, e)) => {
                let new = *e <= now;
                *e = expires_at;
                new
            }
            None => {
                self.permissions.push((ip, expires_at));
                true
            }
        }
    }

    /// Checks the ChannelBind uniqueness rules (§11.2) for `number` → `peer`.
    pub(super) fn check_channel(
        &self,
        number: u16,
        peer: SocketAddr,
        max: usize,
    ) -> Result<(), BindError> {
        let mut renewal = false;
        for c in &self.channels {
            match (c.number == number, c.peer == peer) {
                (true, true) => renewal = true,
                (true, false) | (false, true) => return Err(BindError::Conflict),
                (false, false) => {}
            }
        }
        if !renewal && self.channels.len() >= max {
            return Err(BindError::Full);
        }
        Ok(())
    }

    /// Binds or refreshes `number` → `peer` for 600 s; returns whether the binding is new.
    /// The caller checked [`check_channel`](Self::check_channel).
    pub(super) fn bind_channel(&mut self, now: Instant, number: u16, peer: SocketAddr) -> bool {
        let expires_at = saturating_add(now, CHANNEL_LIFETIME);
        match self.channels.iter_mut().find(|c| c.number == number) {
            Some(c) => {
                let new = c.expires_at <= now;
                c.expires_at = expires_at;
                new
            }
            None => {
                self.channels.push(ChannelBinding {
                    number,
                    peer,
                    expires_at,
                });
                true
            }
        }
    }

    /// The peer a live channel is bound to.
    pub(super) fn channel_peer(&self, now: Instant, number: u16) -> Option<SocketAddr> {
        self.channels
            .iter()
            .find(|c| c.number == number && c.expires_at > now)
            .map(|c| c.peer)
    }

    /// The live channel bound to `peer`.
    pub(super) fn channel_for_peer(&self, now: Instant, peer: SocketAddr) -> Option<u16> {
        self.channels
            .iter()
            .find(|c| c.peer == peer && c.expires_at > now)
            .map(|c| c.number)
    }

    /// Drops permissions that ran out and channels whose cool-down is over.
    pub(super) fn expire(&mut self, now: Instant) {
        self.permissions.retain(|(_, e)| *e > now);
        self.channels
            .retain(|c| saturating_add(c.expires_at, CHANNEL_COOLDOWN) > now);
    }

    /// The earliest instant something of this allocation runs out.
    pub(super) fn next_deadline(&self, now: Instant) -> Instant {
        let permissions = self.permissions.iter().map(|(_, e)| *e);
        let channels = self.channels.iter().map(|c| {
            if c.expires_at > now {
                c.expires_at
            } else {
                saturating_add(c.expires_at, CHANNEL_COOLDOWN)
            }
        });
        let additional = self.additional_relayed.map(|_| self.additional_expires_at);
        permissions
            .chain(channels)
            .chain(additional)
            .fold(self.expires_at, Instant::min)
    }

    /// Installed permissions and live channels, for getters and tests.
    pub(super) fn counts(&self, now: Instant) -> (usize, usize) {
        let permissions = self.permissions.iter().filter(|(_, e)| *e > now).count();
        let channels = self.channels.iter().filter(|c| c.expires_at > now).count();
        (permissions, channels)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::test_support::t0;
    use crate::transmit::TransportProtocol;

    fn allocation(now: Instant) -> Allocation {
        let tuple = FiveTuple {
            transport: TransportProtocol::Udp,
            client: "198.51.100.1:5000".parse().unwrap(),
            server: "192.0.2.1:3478".parse().unwrap(),
        };
        Allocation::new(
            tuple,
            "alice".into(),
            "192.0.2.1:49152".parse().unwrap(),
            None,
            now + Duration::from_secs(600),
            [0; 12].into(),
            Bytes::new(),
        )
    }

    #[test]
    fn channel_uniqueness_and_the_five_minute_cooldown() {
        let now = t0();
        let mut a = allocation(now);
        let p1: SocketAddr = "203.0.113.1:1000".parse().unwrap();
        let p2: SocketAddr = "203.0.113.2:1000".parse().unwrap();
        a.check_channel(0x4000, p1, 4).unwrap();
        assert!(a.bind_channel(now, 0x4000, p1));
        assert_eq!(a.check_channel(0x4000, p2, 4), Err(BindError::Conflict));
        assert_eq!(a.check_channel(0x4001, p1, 4), Err(BindError::Conflict));
        assert_eq!(a.check_channel(0x4000, p1, 1), Ok(()), "a renewal fits");
        assert_eq!(a.check_channel(0x4001, p2, 1), Err(BindError::Full));
        // Expired at 600 s: no longer relays, but still blocks other bindings until 900 s.
        let t600 = now + Duration::from_secs(600);
        assert_eq!(a.next_deadline(now), t600);
        a.expire(t600);
        assert_eq!(a.channel_peer(t600, 0x4000), None);
        assert_eq!(a.check_channel(0x4000, p2, 4), Err(BindError::Conflict));
        assert_eq!(a.next_deadline(t600), t600, "the allocation's own expiry");
        a.expires_at = now + Duration::from_secs(3600);
        assert_eq!(a.next_deadline(t600), now + Duration::from_secs(900));
        a.expire(now + Duration::from_secs(900));
        assert_eq!(a.check_channel(0x4000, p2, 4), Ok(()));
    }

    #[test]
    fn permissions_last_300_s_and_are_per_ip() {
        let now = t0();
        let mut a = allocation(now);
        let ip: IpAddr = "203.0.113.1".parse().unwrap();
        assert!(a.install_permission(now, ip));
        assert!(!a.install_permission(now, ip), "a refresh");
        assert!(a.has_permission(now + Duration::from_secs(299), ip));
        assert!(!a.has_permission(now + Duration::from_secs(300), ip));
        assert!(a.permission_fits(ip, 1));
        assert!(!a.permission_fits("203.0.113.2".parse().unwrap(), 1));
        assert_eq!(a.next_deadline(now), now + Duration::from_secs(300));
        assert_eq!(a.relay_for("2001:db8::1".parse().unwrap()), None);
    }
}
