//! The first ClientHello as the stateless side of a server sees it: put together from its
//! fragments, its cookie checked — a DTLS 1.2 HelloVerifyRequest cookie (RFC 6347 §4.2.1)
//! or a DTLS 1.3 HelloRetryRequest cookie opened (RFC 9147 §5.1) — and handed to the DTLS
//! 1.2 or 1.3 server that starts from it.

use crate::handshake::hello::ClientHello;

/// The first ClientHello, put together from its fragments, as the stateless server sees it.
pub struct InitialHello<'a> {
    /// Sequence number of the record that completed it (echoed by HelloVerifyRequest).
    pub record_seq: u64,
    /// Its message_seq.
    pub message_seq: u16,
    /// The parsed message.
    pub hello: &'a ClientHello,
    /// The raw body (enters the transcript).
    pub body: &'a [u8],
    /// True when an [`Acceptor`](crate::acceptor::Acceptor) already checked its cookie.
    pub cookie_verified: bool,
    /// DTLS 1.3: the HelloRetryRequest cookie an acceptor opened (RFC 9147 §5.1).
    pub retry: Option<&'a RetryCookie>,
}

/// What an opened cookie gives back: Hash(ClientHello1) and the group the HelloRetryRequest
/// asked for (0 if none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RetryCookie {
    pub hash: Vec<u8>,
    pub requested: u16,
}
