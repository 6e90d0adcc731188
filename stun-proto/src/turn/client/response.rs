//! What the client does with the outcome of each request (RFC 8656 §7.3 Allocate, §7.4
//! 300 Try Alternate, §8 Refresh, §9 CreatePermission, §11 ChannelBind; RFC 8489 §9.2.3 401
//! and §9.2.5 438): install what succeeded, answer the challenges, follow redirects, and
//! report or retry what failed.

use std::time::{Duration, Instant};

use rand_core::RngCore;

use super::peers::{Lease, Permission};
use super::request::{Auth, RequestKind};
use super::{
    Allocation, MAX_STALE_RETRIES, Pending, REFRESH_RETRY, RequestFailure, State, TurnClient,
    TurnEvent, retryable,
};
use crate::attribute::{
    AddressErrorCode, AlternateServer, AttributeType, DecodeAttribute, ErrorCode, Lifetime,
    ReservationToken, UnknownAttributes, XorMappedAddress, XorRelayedAddress,
};
use crate::header::Class;
use crate::message::Message;
use crate::time::saturating_add;
use crate::transaction::TransactionEvent;
use crate::turn::{
    CHANNEL_LIFETIME, DEFAULT_ALLOCATION_LIFETIME, DRAFT_ADDRESS_ERROR_CODE, PERMISSION_LIFETIME,
};

impl<R: RngCore> TurnClient<R> {
    /// Turns transaction outcomes into TURN state changes.
    pub(super) fn pump(&mut self, now: Instant) {
        while let Some(event) = self.transactions.poll_event() {
            let (id, outcome) = match event {
                TransactionEvent::Response { id, message, .. } => (id, Ok(message)),
                TransactionEvent::Timeout { id, .. } => (id, Err(RequestFailure::Timeout)),
                TransactionEvent::Error { id, failure, .. } => {
                    (id, Err(RequestFailure::Transport(failure)))
                }
            };
            let Some(index) = self.pending.iter().position(|p| p.id == id) else {
                continue;
            };
            let p = self.pending.swap_remove(index);
            match outcome {
                Ok(bytes) => match Message::parse(&bytes) {
                    Ok(message) => self.on_response(now, p, &message),
                    Err(_) => self.fail(now, p.kind, RequestFailure::MalformedResponse),
                },
                Err(failure) => self.fail(now, p.kind, failure),
            }
        }
        self.flush_held(now);
    }

    pub(super) fn on_response(&mut self, now: Instant, p: Pending, message: &Message<'_>) {
        if message.class() == Class::Error {
            return self.on_error_response(now, p, message);
        }
        if let Some(auth) = &self.auth {
            if message.verify_integrity(auth.key()).is_err() {
                return self.fail(now, p.kind, RequestFailure::IntegrityMismatch);
            }
        }
        match p.kind {
            RequestKind::Allocate => self.on_allocated(now, message),
            RequestKind::Refresh { lifetime: 0 } => self.close(TurnEvent::Deallocated),
            RequestKind::Refresh { .. } => {
                let lifetime = granted_lifetime(message);
                let margin = self.margin(lifetime);
                if let State::Allocated { lease, .. } = &mut self.state {
                    *lease = Lease::installed(now, lifetime, margin);
                    self.events.push_back(TurnEvent::Refreshed { lifetime });
                }
            }
            RequestKind::CreatePermission { ip } => {
                let margin = self.margin(PERMISSION_LIFETIME);
                if let Some(permission) = self.peers.permission_mut(ip) {
                    let first = !permission.lease.is_installed();
                    permission.lease = Lease::installed(now, PERMISSION_LIFETIME, margin);
                    if first {
                        self.events
                            .push_back(TurnEvent::PermissionCreated { peer: ip });
                    }
                }
            }
            RequestKind::ChannelBind { channel, peer } => {
                let margin = self.margin(CHANNEL_LIFETIME);
                let Some(c) = self.peers.channel_mut(channel) else {
                    return;
                };
                let first = !c.lease.is_installed();
                c.lease = Lease::installed(now, CHANNEL_LIFETIME, margin);
                // The binding installed a permission too (§11.2); keep it alive ourselves,
                // since it lasts 300 s and the channel 600 s.
                let permission_margin = self.margin(PERMISSION_LIFETIME);
                let permission_lease =
                    Lease::installed(now, PERMISSION_LIFETIME, permission_margin);
                if let Some(p) = self.peers.permission_mut(peer.ip()) {
                    p.lease = permission_lease;
                } else if self.peers.permissions.len() < self.config.max_permissions {
                    self.peers.permissions.push(Permission {
                        ip: peer.ip(),
                        lease: permission_lease,
                    });
                }
                if first {
                    self.events
                        .push_back(TurnEvent::ChannelBound { channel, peer });
                }
            }
            RequestKind::Connect { .. } | RequestKind::ConnectionBind { .. } => {
                self.on_connection_success(p.kind, message);
            }
        }
    }

    pub(super) fn on_error_response(&mut self, now: Instant, p: Pending, message: &Message<'_>) {
        let error = message.get::<ErrorCode<'_>>().and_then(Result::ok);
        let code = error.map_or(0, |e| e.code());
        match code {
            ErrorCode::UNAUTHENTICATED if !p.signed => {
                match Auth::from_challenge(&self.config, message) {
                    Some(Ok(auth)) => {
                        self.auth = Some(auth);
                        self.retry(now, p, p.stale_retries);
                    }
                    Some(Err(e)) => self.fail(now, p.kind, RequestFailure::Encode(e)),
                    None => self.fail(now, p.kind, RequestFailure::Unauthenticated),
                }
            }
            ErrorCode::UNAUTHENTICATED => self.fail(now, p.kind, RequestFailure::Unauthenticated),
            ErrorCode::STALE_NONCE if p.stale_retries < MAX_STALE_RETRIES => {
                self.stats.stale_nonces += 1;
                let updated = match &mut self.auth {
                    Some(auth) => auth.update_nonce(&self.config, message),
                    None => match Auth::from_challenge(&self.config, message) {
                        Some(Ok(auth)) => {
                            self.auth = Some(auth);
                            Ok(true)
                        }
                        Some(Err(e)) => Err(e),
                        None => Ok(false),
                    },
                };
                match updated {
                    Ok(true) => self.retry(now, p, p.stale_retries + 1),
                    Ok(false) => self.fail(now, p.kind, RequestFailure::MalformedResponse),
                    Err(e) => self.fail(now, p.kind, RequestFailure::Encode(e)),
                }
            }
            ErrorCode::UNKNOWN_ATTRIBUTE
                if p.kind == RequestKind::Allocate
                    && self.config.dont_fragment
                    && refuses_dont_fragment(message) =>
            {
                // RFC 8656 §7.3: the server cannot set DF; ask again without it.
                self.config.dont_fragment = false;
                self.retry(now, p, p.stale_retries);
            }
            ErrorCode::TRY_ALTERNATE if p.kind == RequestKind::Allocate => {
                self.redirect(now, p, message)
            }
            _ => {
                let reason = error.map(|e| e.reason().to_owned()).unwrap_or_default();
                self.fail(now, p.kind, RequestFailure::ErrorResponse { code, reason });
            }
        }
    }

    /// Follows a 300 Try Alternate to ALTERNATE-SERVER (RFC 8656 §7.4, RFC 8489 §10).
    pub(super) fn redirect(&mut self, now: Instant, p: Pending, message: &Message<'_>) {
        let State::Allocating { redirects } = self.state else {
            return;
        };
        let Some(Ok(AlternateServer(server))) = message.get::<AlternateServer>() else {
            return self.fail(now, p.kind, RequestFailure::MalformedResponse);
        };
        if redirects >= self.config.max_redirects {
            return self.fail(now, p.kind, RequestFailure::TooManyRedirects);
        }
        self.server = server;
        // The realm and nonce belonged to the other server.
        self.auth = None;
        self.state = State::Allocating {
            redirects: redirects + 1,
        };
        self.events.push_back(TurnEvent::Redirected { server });
        self.retry(now, p, 0);
    }

    pub(super) fn on_allocated(&mut self, now: Instant, message: &Message<'_>) {
        let tid = message.transaction_id();
        let mut relayed = message
            .attributes()
            .filter(|a| a.attribute_type == AttributeType::XOR_RELAYED_ADDRESS)
            .filter_map(|a| a.decode::<XorRelayedAddress>(&tid).ok());
        let Some(XorRelayedAddress(first)) = relayed.next() else {
            return self.fail(
                now,
                RequestKind::Allocate,
                RequestFailure::MalformedResponse,
            );
        };
        let additional_relayed = relayed.next().map(|a| a.0);
        let lifetime = granted_lifetime(message);
        let allocation = Allocation {
            relayed: first,
            additional_relayed,
            mapped: message
                .get::<XorMappedAddress>()
                .and_then(Result::ok)
                .map(|a| a.0),
            lifetime,
            reservation_token: message.get::<ReservationToken>().and_then(Result::ok),
            additional_family_error: address_error(message),
        };
        let lease = Lease::installed(now, lifetime, self.margin(lifetime));
        self.state = State::Allocated { allocation, lease };
        self.events.push_back(TurnEvent::Allocated(allocation));
    }

    pub(super) fn fail(&mut self, now: Instant, kind: RequestKind, failure: RequestFailure) {
        match kind {
            RequestKind::Allocate => self.close(TurnEvent::AllocationFailed(failure)),
            RequestKind::Refresh { lifetime: 0 } => self.close(TurnEvent::Deallocated),
            RequestKind::Refresh { .. } => {
                let gone = matches!(&failure, RequestFailure::ErrorResponse { code, .. }
                    if *code == ErrorCode::ALLOCATION_MISMATCH);
                if gone {
                    return self.close(TurnEvent::Expired);
                }
                // Try again shortly, until the allocation runs out.
                if let State::Allocated { lease, .. } = &mut self.state {
                    if let Lease::Refreshing { expires_at } = *lease {
                        *lease = Lease::Installed {
                            refresh_at: saturating_add(now, REFRESH_RETRY).min(expires_at),
                            expires_at,
                        };
                    }
                }
            }
            RequestKind::CreatePermission { ip } => {
                let Some(index) = self.peers.permissions.iter().position(|p| p.ip == ip) else {
                    return;
                };
                let Some(permission) = self.peers.permissions.get_mut(index) else {
                    return;
                };
                match (permission.lease, retryable(&failure)) {
                    (Lease::Refreshing { expires_at }, true) => {
                        permission.lease = Lease::Installed {
                            refresh_at: saturating_add(now, REFRESH_RETRY).min(expires_at),
                            expires_at,
                        };
                    }
                    _ => {
                        self.peers.permissions.swap_remove(index);
                        self.events
                            .push_back(TurnEvent::PermissionFailed { peer: ip, failure });
                    }
                }
            }
            RequestKind::ChannelBind { channel, peer } => {
                let Some(index) = self.peers.channels.iter().position(|c| c.number == channel)
                else {
                    return;
                };
                let Some(c) = self.peers.channels.get_mut(index) else {
                    return;
                };
                match (c.lease, retryable(&failure)) {
                    (Lease::Refreshing { expires_at }, true) => {
                        c.lease = Lease::Installed {
                            refresh_at: saturating_add(now, REFRESH_RETRY).min(expires_at),
                            expires_at,
                        };
                    }
                    _ => {
                        self.peers.channels.swap_remove(index);
                        self.events.push_back(TurnEvent::ChannelBindFailed {
                            channel,
                            peer,
                            failure,
                        });
                    }
                }
            }
            RequestKind::Connect { .. } | RequestKind::ConnectionBind { .. } => {
                self.on_connection_failure(kind, failure);
            }
        }
    }
}

/// ADDRESS-ERROR-CODE's code, under RFC 8656's number or the draft's (coturn).
pub(super) fn address_error(message: &Message<'_>) -> Option<u16> {
    let tid = message.transaction_id();
    let draft = || {
        let raw = message.raw(DRAFT_ADDRESS_ERROR_CODE)?;
        <AddressErrorCode<'_> as DecodeAttribute<'_>>::decode(raw.value, &tid).ok()
    };
    message
        .get::<AddressErrorCode<'_>>()
        .and_then(Result::ok)
        .or_else(draft)
        .map(|e| e.error().code())
}

/// Whether a 420 lists DONT-FRAGMENT among the attributes the server does not understand.
pub(super) fn refuses_dont_fragment(message: &Message<'_>) -> bool {
    message
        .get::<UnknownAttributes<'_>>()
        .and_then(Result::ok)
        .is_some_and(|u| u.iter().any(|t| t == AttributeType::DONT_FRAGMENT))
}

/// The LIFETIME a success response grants; the RFC default if it has none.
pub(super) fn granted_lifetime(message: &Message<'_>) -> Duration {
    message
        .get::<Lifetime>()
        .and_then(Result::ok)
        .map_or(DEFAULT_ALLOCATION_LIFETIME, Lifetime::as_duration)
}
