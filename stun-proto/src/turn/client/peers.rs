//! The client's view of its permissions (RFC 8656 §9) and channel bindings (§12): what it has
//! asked for, what the server installed, and when each must be refreshed — a permission
//! every 300 s less a margin, a channel every 600 s less a margin (§9: "refresh ... before
//! it expires"; §12: channel bindings last 10 minutes).
//!
//! Each entry owns its deadline; the client asks the tables for the earliest one.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use crate::time::saturating_add;
use crate::turn::channel_data::CHANNEL_NUMBERS;

/// Where a permission, channel or the allocation itself stands. The request in flight for
/// it, if any, is found in the client's pending table by what it names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Lease {
    /// The first request is in flight.
    Requested,
    /// Installed on the server; refreshed at `refresh_at`, gone at `expires_at`.
    Installed {
        refresh_at: Instant,
        expires_at: Instant,
    },
    /// Installed, and a refresh is in flight.
    Refreshing { expires_at: Instant },
}

impl Lease {
    /// A lease installed at `now` for `lifetime`, refreshed `margin` before it ends.
    pub(super) fn installed(now: Instant, lifetime: Duration, margin: Duration) -> Self {
        Lease::Installed {
            refresh_at: saturating_add(now, lifetime.saturating_sub(margin)),
            expires_at: saturating_add(now, lifetime),
        }
    }

    /// When the lease next needs attention: its refresh, or its expiry while a refresh is in
    /// flight.
    pub(super) fn deadline(&self) -> Option<Instant> {
        match *self {
            Lease::Requested => None,
            Lease::Installed { refresh_at, .. } => Some(refresh_at),
            Lease::Refreshing { expires_at, .. } => Some(expires_at),
        }
    }

    /// Whether the server holds it (installed, possibly being refreshed).
    pub(super) fn is_installed(&self) -> bool {
        !matches!(self, Lease::Requested)
    }
}

/// A permission for one peer IP address (RFC 8656 §9: ports do not matter).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Permission {
    pub(super) ip: IpAddr,
    pub(super) lease: Lease,
}

/// A channel bound (or being bound) to one peer transport address (RFC 8656 §12).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Channel {
    pub(super) number: u16,
    pub(super) peer: SocketAddr,
    pub(super) lease: Lease,
}

/// The permissions and channels of one allocation, both bounded.
#[derive(Clone, Debug, Default)]
pub(super) struct Peers {
    pub(super) permissions: Vec<Permission>,
    pub(super) channels: Vec<Channel>,
}

impl Peers {
    pub(super) fn permission(&self, ip: IpAddr) -> Option<&Permission> {
        self.permissions.iter().find(|p| p.ip == ip)
    }

    pub(super) fn permission_mut(&mut self, ip: IpAddr) -> Option<&mut Permission> {
        self.permissions.iter_mut().find(|p| p.ip == ip)
    }

    pub(super) fn channel_for_peer(&self, peer: SocketAddr) -> Option<&Channel> {
        self.channels.iter().find(|c| c.peer == peer)
    }

    pub(super) fn channel_mut(&mut self, number: u16) -> Option<&mut Channel> {
        self.channels.iter_mut().find(|c| c.number == number)
    }

    /// The bound channel carrying data from the server on `number`.
    pub(super) fn bound_channel(&self, number: u16) -> Option<&Channel> {
        self.channels
            .iter()
            .find(|c| c.number == number && c.lease.is_installed())
    }

    /// The lowest channel number not in use.
    pub(super) fn free_channel_number(&self) -> Option<u16> {
        CHANNEL_NUMBERS
            .clone()
            .find(|n| self.channels.iter().all(|c| c.number != *n))
    }

    /// The earliest deadline of any permission, and of any channel.
    pub(super) fn next_deadlines(&self) -> (Option<Instant>, Option<Instant>) {
        let permissions = self.permissions.iter().filter_map(|p| p.lease.deadline());
        let channels = self.channels.iter().filter_map(|c| c.lease.deadline());
        (permissions.min(), channels.min())
    }

    pub(super) fn clear(&mut self) {
        self.permissions.clear();
        self.channels.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::t0;

    #[test]
    fn leases_refresh_a_margin_before_expiry() {
        let now = t0();
        let lease = Lease::installed(now, Duration::from_secs(300), Duration::from_secs(60));
        assert_eq!(lease.deadline(), Some(now + Duration::from_secs(240)));
        assert!(lease.is_installed());
        let requested = Lease::Requested;
        assert_eq!(requested.deadline(), None);
        assert!(!requested.is_installed());
    }

    #[test]
    fn channel_numbers_are_handed_out_lowest_first() {
        let mut peers = Peers::default();
        assert_eq!(peers.free_channel_number(), Some(0x4000));
        peers.channels.push(Channel {
            number: 0x4000,
            peer: "192.0.2.1:1".parse().unwrap(),
            lease: Lease::Requested,
        });
        assert_eq!(peers.free_channel_number(), Some(0x4001));
        assert!(peers.bound_channel(0x4000).is_none());
    }
}
