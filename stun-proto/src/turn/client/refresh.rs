//! Keeping an allocation alive (RFC 8656 §8: Refresh before the lifetime runs out), its
//! permissions (§9: each lasts 300 s) and its channels (§12: each lasts 600 s), each
//! refreshed `refresh_margin` before it ends, retried every 5 s after a lost answer, and
//! dropped with an event when it runs out.

use std::time::{Duration, Instant};

use rand_core::RngCore;

use super::peers::Lease;
use super::request::{RequestKind, seconds};
use super::{REFRESH_RETRY, RequestFailure, State, TurnClient, TurnEvent};
use crate::time::saturating_add;
use crate::turn::DEFAULT_ALLOCATION_LIFETIME;

impl<R: RngCore> TurnClient<R> {
    pub(super) fn refresh_allocation(&mut self, now: Instant) {
        let State::Allocated { lease, .. } = self.state else {
            return;
        };
        match lease {
            Lease::Installed { expires_at, .. } | Lease::Refreshing { expires_at }
                if expires_at <= now =>
            {
                for p in std::mem::take(&mut self.pending) {
                    self.transactions.handle_cancel(now, p.id);
                }
                self.close(TurnEvent::Expired);
            }
            Lease::Installed {
                refresh_at,
                expires_at,
            } if refresh_at <= now => {
                let lifetime = self
                    .config
                    .lifetime
                    .map_or(seconds(DEFAULT_ALLOCATION_LIFETIME), seconds);
                let next = match self.start(now, RequestKind::Refresh { lifetime }, 0) {
                    Ok(()) => Lease::Refreshing { expires_at },
                    Err(_) => Lease::Installed {
                        refresh_at: saturating_add(now, REFRESH_RETRY).min(expires_at),
                        expires_at,
                    },
                };
                if let State::Allocated { lease, .. } = &mut self.state {
                    *lease = next;
                }
            }
            _ => {}
        }
    }

    pub(super) fn refresh_permissions(&mut self, now: Instant) {
        let mut index = 0;
        while let Some(permission) = self.peers.permissions.get(index).copied() {
            match permission.lease {
                Lease::Installed { expires_at, .. } | Lease::Refreshing { expires_at }
                    if expires_at <= now =>
                {
                    self.peers.permissions.swap_remove(index);
                    self.events.push_back(TurnEvent::PermissionExpired {
                        peer: permission.ip,
                    });
                    continue;
                }
                Lease::Installed {
                    refresh_at,
                    expires_at,
                } if refresh_at <= now => {
                    let kind = RequestKind::CreatePermission { ip: permission.ip };
                    let next = match self.start(now, kind, 0) {
                        Ok(()) => Lease::Refreshing { expires_at },
                        Err(_) => Lease::Installed {
                            refresh_at: saturating_add(now, REFRESH_RETRY).min(expires_at),
                            expires_at,
                        },
                    };
                    if let Some(p) = self.peers.permissions.get_mut(index) {
                        p.lease = next;
                    }
                }
                _ => {}
            }
            index += 1;
        }
    }

    pub(super) fn refresh_channels(&mut self, now: Instant) {
        let mut index = 0;
        while let Some(channel) = self.peers.channels.get(index).copied() {
            match channel.lease {
                Lease::Installed { expires_at, .. } | Lease::Refreshing { expires_at }
                    if expires_at <= now =>
                {
                    self.peers.channels.swap_remove(index);
                    self.events.push_back(TurnEvent::ChannelExpired {
                        channel: channel.number,
                        peer: channel.peer,
                    });
                    continue;
                }
                Lease::Installed {
                    refresh_at,
                    expires_at,
                } if refresh_at <= now => {
                    let kind = RequestKind::ChannelBind {
                        channel: channel.number,
                        peer: channel.peer,
                    };
                    let next = match self.start(now, kind, 0) {
                        Ok(()) => Lease::Refreshing { expires_at },
                        Err(_) => Lease::Installed {
                            refresh_at: saturating_add(now, REFRESH_RETRY).min(expires_at),
                            expires_at,
                        },
                    };
                    if let Some(c) = self.peers.channels.get_mut(index) {
                        c.lease = next;
                    }
                }
                _ => {}
            }
            index += 1;
        }
    }

    /// The refresh margin for a lifetime: the configured one, at most half the lifetime.
    pub(super) fn margin(&self, lifetime: Duration) -> Duration {
        self.config.refresh_margin.min(lifetime / 2)
    }
}

/// Whether a failed refresh may be tried again (a lost answer) or is final (an error).
pub(super) fn retryable(failure: &RequestFailure) -> bool {
    matches!(
        failure,
        RequestFailure::Timeout | RequestFailure::Transport(_) | RequestFailure::Transaction(_)
    )
}
