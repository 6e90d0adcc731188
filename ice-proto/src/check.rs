//! Connectivity-check messages (RFC 8445 §7.1 and §7.3): the Binding request an agent sends
//! on a pair (USERNAME `remote:local`, PRIORITY, ICE-CONTROLLING or ICE-CONTROLLED with the
//! tie-breaker, USE-CANDIDATE when nominating, MESSAGE-INTEGRITY with the remote password,
//! FINGERPRINT), the success response (XOR-MAPPED-ADDRESS, MESSAGE-INTEGRITY with the local
//! password, FINGERPRINT), the 487 Role Conflict and 400 error responses, and reading the ICE
//! attributes of a received request without allocating.
//!
//! The same requests serve RFC 7675 consent freshness (§5.1 of it: ordinary ICE checks).

use std::net::SocketAddr;

use bytes::Bytes;
use stun_proto::attribute::{
    ErrorCode, IceControlled, IceControlling, Priority, UseCandidate, Username, XorMappedAddress,
};
use stun_proto::{
    AttributeError, AttributeType, BuildError, Class, IntegrityKey, Message, MessageBuilder,
    MessageType, TransactionId,
};

/// Why a check message could not be encoded (only for absurd inputs: a ufrag pair longer
/// than USERNAME allows).
#[derive(Debug)]
pub(crate) enum EncodeError {
    /// The builder refused.
    #[allow(dead_code)] // read through Debug
    Build(BuildError),
    /// An attribute value was out of range.
    #[allow(dead_code)] // read through Debug
    Attribute(AttributeError),
}

impl From<BuildError> for EncodeError {
    fn from(e: BuildError) -> Self {
        EncodeError::Build(e)
    }
}

impl From<AttributeError> for EncodeError {
    fn from(e: AttributeError) -> Self {
        EncodeError::Attribute(e)
    }
}

/// Room for an error response (header, ERROR-CODE with its reason, MESSAGE-INTEGRITY,
/// FINGERPRINT).
const RESPONSE_CAPACITY: usize = 128;

/// The role a request declares, with the sender's tie-breaker (RFC 8445 §7.1.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DeclaredRole {
    /// ICE-CONTROLLING.
    Controlling(u64),
    /// ICE-CONTROLLED.
    Controlled(u64),
}

/// What a connectivity check asks for.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CheckRequest<'a> {
    /// `remote-ufrag:local-ufrag` (RFC 8445 §7.2.2).
    pub username: &'a str,
    /// The priority a peer-reflexive candidate from this check gets (§7.1.1).
    pub priority: u32,
    /// The sender's role and tie-breaker.
    pub role: DeclaredRole,
    /// USE-CANDIDATE (§7.1.2).
    pub use_candidate: bool,
}

/// Encodes a check signed with the remote password's `key`.
pub(crate) fn build_request(
    tid: TransactionId,
    check: &CheckRequest<'_>,
    key: &IntegrityKey,
) -> Result<Bytes, EncodeError> {
    // Exactly sized, so that the buffer becomes the `Bytes` without another allocation:
    // header, USERNAME (padded), PRIORITY, ICE-CONTROLLING/-CONTROLLED, USE-CANDIDATE,
    // MESSAGE-INTEGRITY, FINGERPRINT.
    let capacity = 20
        + 4
        + check.username.len().next_multiple_of(4)
        + 8
        + 12
        + if check.use_candidate { 4 } else { 0 }
        + 24
        + 8;
    let mut b = MessageBuilder::new(
        bytes::BytesMut::with_capacity(capacity),
        MessageType::BINDING_REQUEST,
        tid,
    )?;
    let username = Username::new(check.username)?;
    b.add(&username)?.add(&Priority(check.priority))?;
    match check.role {
        DeclaredRole::Controlling(tb) => b.add(&IceControlling(tb))?,
        DeclaredRole::Controlled(tb) => b.add(&IceControlled(tb))?,
    };
    if check.use_candidate {
        b.add(&UseCandidate)?;
    }
    b.add_message_integrity(key)?.add_fingerprint()?;
    Ok(b.into_bytes())
}

/// Encodes the success response to `request`, reporting `source` as XOR-MAPPED-ADDRESS
/// (RFC 8445 §7.3.1.2), signed with the local password's `key`.
pub(crate) fn build_success(
    request: &Message<'_>,
    source: SocketAddr,
    key: &IntegrityKey,
) -> Result<Bytes, EncodeError> {
    // Exactly sized (header, XOR-MAPPED-ADDRESS, MESSAGE-INTEGRITY, FINGERPRINT), so that the
    // buffer becomes the `Bytes` without another allocation.
    let address = if source.is_ipv4() { 8 } else { 20 };
    let capacity = 20 + 4 + address + 24 + 8;
    let mut b = MessageBuilder::response_to(
        bytes::BytesMut::with_capacity(capacity),
        request,
        Class::Success,
    )?;
    b.add(&XorMappedAddress(source))?
        .add_message_integrity(key)?
        .add_fingerprint()?;
    Ok(b.into_bytes())
}

/// Encodes an error response (487 Role Conflict of §7.3.1.1, 400 Bad Request), signed with
/// `key` when the request was authenticated.
pub(crate) fn build_error(
    request: &Message<'_>,
    code: u16,
    key: Option<&IntegrityKey>,
) -> Result<Bytes, EncodeError> {
    let mut b = MessageBuilder::response_to(
        bytes::BytesMut::with_capacity(RESPONSE_CAPACITY),
        request,
        Class::Error,
    )?;
    let error = ErrorCode::new(code)?;
    b.add(&error)?;
    if let Some(key) = key {
        b.add_message_integrity(key)?;
    }
    b.add_fingerprint()?;
    Ok(b.into_bytes())
}

/// The ICE attributes of a received request (borrowed, nothing allocated).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ReceivedCheck<'a> {
    /// The local ufrag: USERNAME up to the colon.
    pub local_ufrag: &'a str,
    /// The remote ufrag: USERNAME after the colon.
    pub remote_ufrag: &'a str,
    /// PRIORITY (mandatory in checks; `None` makes the request a 400).
    pub priority: Option<u32>,
    /// ICE-CONTROLLING or ICE-CONTROLLED.
    pub role: Option<DeclaredRole>,
    /// USE-CANDIDATE.
    pub use_candidate: bool,
}

/// Why a received Binding request is not a usable check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BadCheck {
    /// No USERNAME, or not `a:b`.
    Username,
    /// FINGERPRINT present and wrong.
    Fingerprint,
}

/// Reads USERNAME, PRIORITY, the role and USE-CANDIDATE of a Binding request.
pub(crate) fn read_request<'a>(message: &Message<'a>) -> Result<ReceivedCheck<'a>, BadCheck> {
    if message.has_fingerprint() && message.verify_fingerprint().is_err() {
        return Err(BadCheck::Fingerprint);
    }
    let username = message
        .get::<Username<'a>>()
        .and_then(Result::ok)
        .ok_or(BadCheck::Username)?;
    let (local_ufrag, remote_ufrag) = username
        .as_str()
        .split_once(':')
        .ok_or(BadCheck::Username)?;
    let priority = message.get::<Priority>().and_then(Result::ok).map(|p| p.0);
    let controlling = message.get::<IceControlling>().and_then(Result::ok);
    let controlled = message.get::<IceControlled>().and_then(Result::ok);
    let role = match (controlling, controlled) {
        (Some(c), _) => Some(DeclaredRole::Controlling(c.0)),
        (None, Some(c)) => Some(DeclaredRole::Controlled(c.0)),
        (None, None) => None,
    };
    Ok(ReceivedCheck {
        local_ufrag,
        remote_ufrag,
        priority,
        role,
        use_candidate: message.has(AttributeType::USE_CANDIDATE),
    })
}

/// What a received response says about a check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CheckOutcome {
    /// Success with this XOR-MAPPED-ADDRESS.
    Success(SocketAddr),
    /// 487 Role Conflict.
    RoleConflict,
    /// Any other error, or a success without a mapped address.
    Error(u16),
}

/// Reads a success or error response to a check.
pub(crate) fn read_response(message: &Message<'_>) -> CheckOutcome {
    match message.class() {
        Class::Success => match message.get::<XorMappedAddress>() {
            Some(Ok(XorMappedAddress(addr))) => CheckOutcome::Success(addr),
            _ => CheckOutcome::Error(0),
        },
        _ => match message.get::<ErrorCode<'_>>() {
            Some(Ok(e)) if e.code() == ErrorCode::ROLE_CONFLICT => CheckOutcome::RoleConflict,
            Some(Ok(e)) => CheckOutcome::Error(e.code()),
            _ => CheckOutcome::Error(0),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stun_proto::attribute::DecodeAttribute;

    #[test]
    fn request_carries_the_attributes_of_7_1() {
        let key = IntegrityKey::short_term("remotepasswordremotepwd").unwrap();
        let check = CheckRequest {
            username: "RFRAG:LFRAG",
            priority: 1_845_501_695,
            role: DeclaredRole::Controlling(0x0102_0304_0506_0708),
            use_candidate: true,
        };
        let bytes = build_request([3; 12].into(), &check, &key).unwrap();
        let m = Message::parse(&bytes).unwrap();
        m.verify_integrity(&key).unwrap();
        m.verify_fingerprint().unwrap();
        let read = read_request(&m).unwrap();
        assert_eq!(read.local_ufrag, "RFRAG");
        assert_eq!(read.remote_ufrag, "LFRAG");
        assert_eq!(read.priority, Some(1_845_501_695));
        assert_eq!(
            read.role,
            Some(DeclaredRole::Controlling(0x0102_0304_0506_0708))
        );
        assert!(read.use_candidate);
        assert!(m.has(Priority::TYPE));
    }

    #[test]
    fn responses_success_and_487() {
        let key = IntegrityKey::short_term("localpasswordlocalpassword").unwrap();
        let check = CheckRequest {
            username: "a:b",
            priority: 1,
            role: DeclaredRole::Controlled(9),
            use_candidate: false,
        };
        let bytes = build_request([4; 12].into(), &check, &key).unwrap();
        let request = Message::parse(&bytes).unwrap();
        assert_eq!(
            read_request(&request).unwrap().role,
            Some(DeclaredRole::Controlled(9))
        );
        let source: SocketAddr = "198.51.100.9:3333".parse().unwrap();
        let ok = build_success(&request, source, &key).unwrap();
        let ok = Message::parse(&ok).unwrap();
        ok.verify_integrity(&key).unwrap();
        assert_eq!(ok.transaction_id(), request.transaction_id());
        assert_eq!(read_response(&ok), CheckOutcome::Success(source));
        let conflict = build_error(&request, 487, Some(&key)).unwrap();
        let conflict = Message::parse(&conflict).unwrap();
        conflict.verify_integrity(&key).unwrap();
        assert_eq!(read_response(&conflict), CheckOutcome::RoleConflict);
        let bad = build_error(&request, 400, None).unwrap();
        assert_eq!(
            read_response(&Message::parse(&bad).unwrap()),
            CheckOutcome::Error(400)
        );
    }

    #[test]
    fn usernames_without_colon_are_rejected() {
        let key = IntegrityKey::short_term("x").unwrap();
        let check = CheckRequest {
            username: "nocolon",
            priority: 1,
            role: DeclaredRole::Controlled(9),
            use_candidate: false,
        };
        let bytes = build_request([5; 12].into(), &check, &key).unwrap();
        assert_eq!(
            read_request(&Message::parse(&bytes).unwrap()),
            Err(BadCheck::Username)
        );
    }

    #[test]
    fn requests_and_responses_are_built_in_buffers_of_their_exact_size() {
        let key = IntegrityKey::short_term("remotepasswordremotepwd").unwrap();
        for (username, use_candidate) in [("a:b", false), ("RFRAG123:LFRAG456", true)] {
            let check = CheckRequest {
                username,
                priority: 1,
                role: DeclaredRole::Controlling(1),
                use_candidate,
            };
            let bytes = build_request([6; 12].into(), &check, &key).unwrap();
            let m = Message::parse(&bytes).unwrap();
            m.verify_integrity(&key).unwrap();
            // The capacity computed up front is the length written.
            let expected = 20
                + 4
                + username.len().next_multiple_of(4)
                + 8
                + 12
                + if use_candidate { 4 } else { 0 }
                + 24
                + 8;
            assert_eq!(bytes.len(), expected);
            for source in ["192.0.2.1:1", "[2001:db8::1]:1"] {
                let source: SocketAddr = source.parse().unwrap();
                let ok = build_success(&m, source, &key).unwrap();
                let expected = 20 + 4 + if source.is_ipv4() { 8 } else { 20 } + 24 + 8;
                assert_eq!(ok.len(), expected);
            }
        }
    }
}
