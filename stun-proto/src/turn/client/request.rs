//! The client's requests (RFC 8656 §7.1 Allocate, §8.1 Refresh, §9.1 CreatePermission, §11.1
//! ChannelBind; RFC 6062 §4.3 Connect, §4.4 ConnectionBind) and the long-term credential state they carry (RFC 8489 §9.2.3–§9.2.5): after
//! the first 401 the client knows the realm and nonce, derives the key (MD5, or SHA-256 when
//! the server offers PASSWORD-ALGORITHMS with it), and signs every request; a 438 replaces the
//! nonce.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use rand_core::RngCore;
use thiserror::Error;

use super::TurnClientConfig;
use crate::RawAttribute;
use crate::attribute::{
    AdditionalAddressFamily, AddressFamily, AttributeError, ChannelNumber, ConnectionId,
    DontFragment, Lifetime, Nonce, PasswordAlgorithm, PasswordAlgorithms, Realm,
    RequestedAddressFamily, RequestedTransport, Software, Username, XorPeerAddress,
};
use crate::builder::{BuildError, MessageBuilder};
use crate::credentials::{CredentialError, IntegrityKey};
use crate::header::{Class, MessageType, Method, TransactionId};
use crate::message::Message;
use crate::turn::DRAFT_ADDITIONAL_ADDRESS_FAMILY;

/// Which address families the client asks the server to relay from (RFC 8656 §7.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum AllocationFamily {
    /// An IPv4 relayed address (the server's default: no attribute sent).
    #[default]
    Ipv4,
    /// An IPv6 relayed address (REQUESTED-ADDRESS-FAMILY IPv6).
    Ipv6,
    /// Both (ADDITIONAL-ADDRESS-FAMILY IPv6, RFC 8656 §7.1).
    Both,
}

/// What an allocation relays (REQUESTED-TRANSPORT, RFC 8656 §7.1, RFC 6062 §4.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum RelayTransport {
    /// UDP datagrams (RFC 8656).
    #[default]
    Udp,
    /// TCP connections (RFC 6062): the control connection must be TCP or TLS.
    Tcp,
}

/// What a request asks for: enough to build it again after a 401 or 438.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum RequestKind {
    Allocate,
    Refresh {
        lifetime: u32,
    },
    CreatePermission {
        ip: IpAddr,
    },
    ChannelBind {
        channel: u16,
        peer: SocketAddr,
    },
    /// RFC 6062 §4.3.
    Connect {
        peer: SocketAddr,
    },
    /// RFC 6062 §4.4, sent over the new data connection from `local`.
    ConnectionBind {
        connection: ConnectionId,
        local: SocketAddr,
    },
}

impl RequestKind {
    /// Whether the request keeps something alive (a refresh of the allocation, a
    /// permission or a channel), and so must finish within the refresh margin.
    pub(super) const fn keeps_alive(&self) -> bool {
        !matches!(
            self,
            RequestKind::Allocate
                | RequestKind::Refresh { lifetime: 0 }
                | RequestKind::Connect { .. }
                | RequestKind::ConnectionBind { .. }
        )
    }

    /// The local address the request leaves from, if not the control connection's.
    pub(super) const fn local(&self) -> Option<SocketAddr> {
        match self {
            RequestKind::ConnectionBind { local, .. } => Some(*local),
            _ => None,
        }
    }

    pub(super) const fn method(&self) -> Method {
        match self {
            RequestKind::Allocate => Method::ALLOCATE,
            RequestKind::Refresh { .. } => Method::REFRESH,
            RequestKind::CreatePermission { .. } => Method::CREATE_PERMISSION,
            RequestKind::ChannelBind { .. } => Method::CHANNEL_BIND,
            RequestKind::Connect { .. } => Method::CONNECT,
            RequestKind::ConnectionBind { .. } => Method::CONNECTION_BIND,
        }
    }
}

/// Why a request could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The username, realm, nonce or software is not a valid attribute value.
    #[error("attribute: {0}")]
    Attribute(#[from] AttributeError),
    /// The credentials could not be prepared (OpaqueString).
    #[error("credentials: {0}")]
    Credential(#[from] CredentialError),
    /// The message could not be built.
    #[error("build: {0}")]
    Build(#[from] BuildError),
}

/// The realm, nonce and key learnt from the server's challenge.
#[derive(Clone, Debug)]
pub(super) struct Auth {
    realm: String,
    nonce: String,
    key: IntegrityKey,
    /// The server's PASSWORD-ALGORITHMS, echoed with the one chosen (RFC 8489 §9.2.4).
    algorithms: Option<(Vec<PasswordAlgorithm>, PasswordAlgorithm)>,
}

impl Auth {
    /// Takes REALM, NONCE and PASSWORD-ALGORITHMS from a 401 and derives the key. `None` if
    /// the challenge lacks REALM or NONCE.
    pub(super) fn from_challenge(
        config: &TurnClientConfig,
        challenge: &Message<'_>,
    ) -> Option<Result<Self, EncodeError>> {
        let realm = challenge.get::<Realm<'_>>()?.ok()?.as_str().to_owned();
        let nonce = challenge.get::<Nonce<'_>>()?.ok()?.as_str().to_owned();
        let offered: Option<Vec<PasswordAlgorithm>> = challenge
            .get::<PasswordAlgorithms<'_>>()
            .and_then(Result::ok)
            .map(|list| list.iter().collect());
        let algorithms = offered.map(|list| {
            let chosen = if list.contains(&PasswordAlgorithm::Sha256) {
                PasswordAlgorithm::Sha256
            } else {
                PasswordAlgorithm::Md5
            };
            (list, chosen)
        });
        let algorithm = algorithms
            .as_ref()
            .map_or(PasswordAlgorithm::Md5, |(_, chosen)| *chosen);
        let key = IntegrityKey::long_term(&config.username, &realm, &config.password, algorithm);
        Some(key.map_err(EncodeError::from).map(|key| Self {
            realm,
            nonce,
            key,
            algorithms,
        }))
    }

    /// Takes the new NONCE (and REALM, if it changed) from a 438 (RFC 8489 §9.2.5).
    pub(super) fn update_nonce(
        &mut self,
        config: &TurnClientConfig,
        stale: &Message<'_>,
    ) -> Result<bool, EncodeError> {
        let Some(Ok(nonce)) = stale.get::<Nonce<'_>>() else {
            return Ok(false);
        };
        self.nonce = nonce.as_str().to_owned();
        if let Some(Ok(realm)) = stale.get::<Realm<'_>>() {
            if realm.as_str() != self.realm {
                let algorithm = self
                    .algorithms
                    .as_ref()
                    .map_or(PasswordAlgorithm::Md5, |(_, chosen)| *chosen);
                self.realm = realm.as_str().to_owned();
                self.key = IntegrityKey::long_term(
                    &config.username,
                    &self.realm,
                    &config.password,
                    algorithm,
                )?;
            }
        }
        Ok(true)
    }

    /// The key responses are verified with.
    pub(super) fn key(&self) -> &IntegrityKey {
        &self.key
    }
}

/// Encodes a request of `kind` with a fresh transaction id, signed when `auth` is known.
pub(super) fn encode_request<R: RngCore>(
    config: &TurnClientConfig,
    auth: Option<&Auth>,
    kind: RequestKind,
    rng: &mut R,
) -> Result<(TransactionId, Bytes), EncodeError> {
    let id = TransactionId::random(rng);
    let message_type = MessageType::new(kind.method(), Class::Request);
    let mut b = MessageBuilder::new_bytes(message_type, id);
    match kind {
        RequestKind::Allocate if config.relay_transport == RelayTransport::Tcp => {
            // RFC 6062 §4.1: no DONT-FRAGMENT, EVEN-PORT or RESERVATION-TOKEN.
            b.add(&RequestedTransport::TCP)?;
            if let Some(lifetime) = config.lifetime {
                b.add(&Lifetime(seconds(lifetime)))?;
            }
            if config.address_family == AllocationFamily::Ipv6 {
                b.add(&RequestedAddressFamily(AddressFamily::Ipv6))?;
            }
        }
        RequestKind::Allocate => {
            b.add(&RequestedTransport::UDP)?;
            if let Some(lifetime) = config.lifetime {
                b.add(&Lifetime(seconds(lifetime)))?;
            }
            match config.address_family {
                AllocationFamily::Ipv4 => {}
                AllocationFamily::Ipv6 => {
                    b.add(&RequestedAddressFamily(AddressFamily::Ipv6))?;
                }
                AllocationFamily::Both => {
                    b.add(&AdditionalAddressFamily(AddressFamily::Ipv6))?;
                    if config.coturn_dual_allocation {
                        b.add(&RawAttribute {
                            attribute_type: DRAFT_ADDITIONAL_ADDRESS_FAMILY,
                            value: &[AddressFamily::Ipv6.to_byte(), 0, 0, 0],
                        })?;
                    }
                }
            }
            if config.dont_fragment {
                b.add(&DontFragment)?;
            }
            if let Some(token) = config.reservation_token {
                b.add(&token)?;
            } else if let Some(even_port) = config.even_port {
                b.add(&even_port)?;
            }
        }
        RequestKind::Refresh { lifetime } => {
            b.add(&Lifetime(lifetime))?;
        }
        RequestKind::CreatePermission { ip } => {
            b.add(&XorPeerAddress(SocketAddr::new(ip, 0)))?;
        }
        RequestKind::ChannelBind { channel, peer } => {
            b.add(&ChannelNumber(channel))?;
            b.add(&XorPeerAddress(peer))?;
        }
        RequestKind::Connect { peer } => {
            b.add(&XorPeerAddress(peer))?;
        }
        RequestKind::ConnectionBind { connection, .. } => {
            b.add(&connection)?;
        }
    }
    if let Some(software) = config.software.as_deref() {
        b.add(&Software::new(software)?)?;
    }
    if let Some(auth) = auth {
        b.add(&Username::new(&config.username)?)?;
        b.add(&Realm::new(&auth.realm)?)?;
        b.add(&Nonce::new(&auth.nonce)?)?;
        if let Some((list, chosen)) = &auth.algorithms {
            b.add(&PasswordAlgorithms::new(list))?;
            b.add(chosen)?;
        }
        b.add_message_integrity(&auth.key)?;
    }
    b.add_fingerprint()?;
    Ok((id, b.into_bytes()))
}

/// A duration as whole LIFETIME seconds.
pub(super) fn seconds(d: Duration) -> u32 {
    u32::try_from(d.as_secs()).unwrap_or(u32::MAX)
}
