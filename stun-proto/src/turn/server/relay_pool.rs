//! The relayed transport addresses a TURN server hands out (RFC 8656 §7.2: "the server
//! allocates a relayed transport address"), taken from a pool the caller provides: the caller
//! owns one socket per address, so the machine never opens one. EVEN-PORT (§7.2, §18.7) asks
//! for an even port and, with the R bit, reserves the next port for 30 s under a
//! RESERVATION-TOKEN that a later Allocate redeems.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::attribute::{AddressFamily, ReservationToken};
use crate::time::saturating_add;

/// How long a port reserved by EVEN-PORT's R bit is held (RFC 8656 §7.2: "approximately
/// 30 seconds").
pub const RESERVATION_LIFETIME: Duration = Duration::from_secs(30);

/// Where one address of the pool stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    Free,
    InUse,
    Reserved {
        token: ReservationToken,
        expires_at: Instant,
    },
}

/// Why no address could be taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum PoolError {
    /// The pool holds no address of the family (440).
    FamilyNotSupported,
    /// Every address of the family is in use (508).
    Exhausted,
    /// No reservation has this token (508: RFC 8656 §7.2, "insufficient capacity").
    UnknownToken,
}

/// The caller's relay addresses and which are in use.
///
/// Sorted by address, so an address is found by binary search; taking one scans on from
/// where the last take stopped (round robin: in the usual pool, mostly free, the next slot
/// is free, and a port just given back is not handed out again at once); the reservations
/// are counted, so that with none (the WebRTC case) `expire` and `next_deadline`, which run
/// on every timeout, cost nothing. Before, each of these walked the whole pool: a soak of
/// 1,000,000 cycles on a 100,000-address pool spent its time there.
#[derive(Clone, Debug)]
pub(super) struct RelayPool {
    slots: Vec<(SocketAddr, Slot)>,
    /// Where the next take starts looking.
    cursor: usize,
    /// Slots in use.
    in_use: usize,
    /// Slots reserved.
    reserved: usize,
}

impl RelayPool {
    pub(super) fn new(addresses: &[SocketAddr]) -> Self {
        let mut slots: Vec<_> = addresses.iter().map(|a| (*a, Slot::Free)).collect();
        slots.sort_by_key(|(a, _)| *a);
        slots.dedup_by_key(|(a, _)| *a);
        Self {
            slots,
            cursor: 0,
            in_use: 0,
            reserved: 0,
        }
    }

    /// Whether `address` is one of the pool's (in use or not).
    pub(super) fn contains(&self, address: SocketAddr) -> bool {
        let canonical = SocketAddr::new(address.ip().to_canonical(), address.port());
        self.index(canonical).is_some()
    }

    /// Takes a free address of `family`; with `even`, one with an even port; with
    /// `reserve`, also reserves the next port under `token`.
    pub(super) fn take(
        &mut self,
        now: Instant,
        family: AddressFamily,
        even: bool,
        reserve: Option<ReservationToken>,
    ) -> Result<SocketAddr, PoolError> {
        if !self
            .slots
            .iter()
            .any(|(a, _)| AddressFamily::of(&a.ip()) == family)
        {
            return Err(PoolError::FamilyNotSupported);
        }
        let len = self.slots.len();
        let fits = |i: usize| {
            self.slots.get(i).is_some_and(|(a, slot)| {
                *slot == Slot::Free
                    && AddressFamily::of(&a.ip()) == family
                    && (!even || a.port() % 2 == 0)
                    && (reserve.is_none() || self.next_port_free(*a).is_some())
            })
        };
        let index = (0..len)
            .map(|k| (self.cursor + k) % len)
            .find(|&i| fits(i))
            .ok_or(PoolError::Exhausted)?;
        let address = self.slots.get(index).ok_or(PoolError::Exhausted)?.0;
        self.set(index, Slot::InUse);
        self.cursor = (index + 1) % len;
        if let (Some(token), Some(next)) = (reserve, self.next_port_free(address)) {
            let expires_at = saturating_add(now, RESERVATION_LIFETIME);
            self.set(next, Slot::Reserved { token, expires_at });
        }
        Ok(address)
    }

    /// Takes the address reserved under `token`.
    pub(super) fn redeem(&mut self, token: ReservationToken) -> Result<SocketAddr, PoolError> {
        if self.reserved == 0 {
            return Err(PoolError::UnknownToken);
        }
        let index = self
            .slots
            .iter()
            .position(|(_, slot)| matches!(slot, Slot::Reserved { token: t, .. } if *t == token))
            .ok_or(PoolError::UnknownToken)?;
        self.set(index, Slot::InUse);
        self.slots
            .get(index)
            .map(|(a, _)| *a)
            .ok_or(PoolError::UnknownToken)
    }

    /// Gives an address back.
    pub(super) fn release(&mut self, address: SocketAddr) {
        if let Some(index) = self.index(address) {
            self.set(index, Slot::Free);
        }
    }

    /// Frees reservations whose 30 s are over.
    pub(super) fn expire(&mut self, now: Instant) {
        if self.reserved == 0 {
            return;
        }
        for index in 0..self.slots.len() {
            let lapsed = self.slots.get(index).is_some_and(
                |(_, slot)| matches!(slot, Slot::Reserved { expires_at, .. } if *expires_at <= now),
            );
            if lapsed {
                self.set(index, Slot::Free);
            }
        }
    }

    /// The earliest reservation expiry.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        if self.reserved == 0 {
            return None;
        }
        self.slots
            .iter()
            .filter_map(|(_, slot)| match slot {
                Slot::Reserved { expires_at, .. } => Some(*expires_at),
                _ => None,
            })
            .min()
    }

    /// Whether a live reservation has `token`.
    pub(super) fn holds(&self, token: ReservationToken) -> bool {
        self.reserved > 0
            && self
                .slots
                .iter()
                .any(|(_, slot)| matches!(slot, Slot::Reserved { token: t, .. } if *t == token))
    }

    /// Takes the address reserved under `token` out of the pool (another machine's pool
    /// adopts it), with its reservation's expiry; `None` if no live reservation has it.
    pub(super) fn export(
        &mut self,
        now: Instant,
        token: ReservationToken,
    ) -> Option<(SocketAddr, Instant)> {
        if self.reserved == 0 {
            return None;
        }
        let (index, expires_at) =
            self.slots
                .iter()
                .enumerate()
                .find_map(|(i, (_, slot))| match slot {
                    Slot::Reserved {
                        token: t,
                        expires_at,
                    } if *t == token && *expires_at > now => Some((i, *expires_at)),
                    _ => None,
                })?;
        self.set(index, Slot::Free);
        let (address, _) = self.slots.remove(index);
        if self.cursor > index {
            self.cursor -= 1;
        }
        if self.cursor >= self.slots.len() {
            self.cursor = 0;
        }
        Some((address, expires_at))
    }

    /// Adds `address` to the pool, reserved under `token` until `expires_at` (free if
    /// `reservation` is `None`); false if the pool has it already.
    pub(super) fn import(
        &mut self,
        address: SocketAddr,
        reservation: Option<(ReservationToken, Instant)>,
    ) -> bool {
        let Err(at) = self.slots.binary_search_by_key(&address, |(a, _)| *a) else {
            return false;
        };
        self.slots.insert(at, (address, Slot::Free));
        if self.cursor > at {
            self.cursor += 1;
        }
        if let Some((token, expires_at)) = reservation {
            self.set(at, Slot::Reserved { token, expires_at });
        }
        true
    }

    /// Free addresses.
    pub(super) fn free(&self) -> usize {
        self.slots.len() - self.in_use - self.reserved
    }

    /// The index of `address`'s port + 1 on the same IP, if it is free.
    fn next_port_free(&self, address: SocketAddr) -> Option<usize> {
        let next = SocketAddr::new(address.ip(), address.port().checked_add(1)?);
        self.index(next)
            .filter(|&i| self.slots.get(i).is_some_and(|(_, s)| *s == Slot::Free))
    }

    /// Where `address` is in the pool.
    fn index(&self, address: SocketAddr) -> Option<usize> {
        self.slots.binary_search_by_key(&address, |(a, _)| *a).ok()
    }

    /// Puts slot `index` in `state`, keeping the counts.
    fn set(&mut self, index: usize, state: Slot) {
        let Some((_, slot)) = self.slots.get_mut(index) else {
            return;
        };
        match *slot {
            Slot::Free => {}
            Slot::InUse => self.in_use -= 1,
            Slot::Reserved { .. } => self.reserved -= 1,
        }
        match state {
            Slot::Free => {}
            Slot::InUse => self.in_use += 1,
            Slot::Reserved { .. } => self.reserved += 1,
        }
        *slot = state;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::t0;

    fn pool(ports: &[u16]) -> RelayPool {
        let addresses: Vec<SocketAddr> = ports
            .iter()
            .map(|p| SocketAddr::from(([192, 0, 2, 1], *p)))
            .collect();
        RelayPool::new(&addresses)
    }

    #[test]
    fn even_ports_and_reservations_follow_rfc_8656_section_7_2() {
        let now = t0();
        let mut pool = pool(&[5001, 5002, 5003, 5004]);
        let token = ReservationToken([1; 8]);
        let a = pool
            .take(now, AddressFamily::Ipv4, true, Some(token))
            .unwrap();
        assert_eq!(a.port(), 5002);
        // 5003 is reserved: only 5001 and 5004 are free.
        assert_eq!(pool.free(), 2);
        assert_eq!(pool.next_deadline(), Some(now + RESERVATION_LIFETIME));
        assert_eq!(pool.redeem(token).unwrap().port(), 5003);
        assert_eq!(pool.redeem(token), Err(PoolError::UnknownToken));
        assert_eq!(
            pool.take(now, AddressFamily::Ipv6, false, None),
            Err(PoolError::FamilyNotSupported)
        );
        assert_eq!(
            pool.take(now, AddressFamily::Ipv4, true, None)
                .unwrap()
                .port(),
            5004
        );
        assert_eq!(
            pool.take(now, AddressFamily::Ipv4, true, None),
            Err(PoolError::Exhausted)
        );
    }

    #[test]
    fn takes_go_round_and_the_counts_follow() {
        let now = t0();
        let mut pool = pool(&[5001, 5002, 5003]);
        let take = |pool: &mut RelayPool| pool.take(now, AddressFamily::Ipv4, false, None);
        assert_eq!(take(&mut pool).unwrap().port(), 5001);
        assert_eq!(take(&mut pool).unwrap().port(), 5002);
        pool.release(SocketAddr::from(([192, 0, 2, 1], 5001)));
        assert_eq!(pool.free(), 2);
        // Round robin: 5003 before the 5001 just given back.
        assert_eq!(take(&mut pool).unwrap().port(), 5003);
        assert_eq!(take(&mut pool).unwrap().port(), 5001);
        assert_eq!(take(&mut pool), Err(PoolError::Exhausted));
        assert_eq!(pool.free(), 0);
        // An address not in the pool changes nothing.
        pool.release(SocketAddr::from(([192, 0, 2, 9], 5001)));
        assert_eq!(pool.free(), 0);
        assert_eq!(pool.next_deadline(), None);
    }

    #[test]
    fn a_reservation_moves_from_one_pool_to_another() {
        let now = t0();
        let token = ReservationToken([7; 8]);
        let mut a = pool(&[5001, 5002, 5003]);
        let mut b = pool(&[6000]);
        assert_eq!(
            a.take(now, AddressFamily::Ipv4, true, Some(token))
                .unwrap()
                .port(),
            5002
        );
        assert!(a.holds(token) && !b.holds(token));
        let later = now + Duration::from_secs(10);
        assert_eq!(a.export(later, ReservationToken([8; 8])), None);
        let (address, expires_at) = a.export(later, token).unwrap();
        assert_eq!(address.port(), 5003);
        assert_eq!(expires_at, now + RESERVATION_LIFETIME);
        assert!(!a.holds(token) && !a.contains(address));
        assert_eq!((a.free(), a.next_deadline()), (1, None));
        assert!(b.import(address, Some((token, expires_at))));
        assert!(!b.import(address, None), "already there");
        assert!(b.holds(token) && b.contains(address));
        assert_eq!(b.next_deadline(), Some(expires_at));
        assert_eq!(b.redeem(token), Ok(address));
        assert_eq!(b.free(), 1);
        // A lapsed reservation does not move.
        let mut c = pool(&[7002, 7003]);
        c.take(now, AddressFamily::Ipv4, true, Some(token)).unwrap();
        assert_eq!(c.export(now + RESERVATION_LIFETIME, token), None);
    }

    #[test]
    fn reservations_lapse_after_30_s() {
        let now = t0();
        let mut pool = pool(&[5002, 5003]);
        pool.take(
            now,
            AddressFamily::Ipv4,
            true,
            Some(ReservationToken([2; 8])),
        )
        .unwrap();
        assert_eq!(pool.free(), 0);
        pool.expire(now + Duration::from_secs(29));
        assert_eq!(pool.free(), 0);
        pool.expire(now + RESERVATION_LIFETIME);
        assert_eq!(pool.free(), 1);
        assert_eq!(pool.next_deadline(), None);
    }
}
