//! Sans-IO DTLS 1.2 for WebRTC (RFC 6347, RFC 5764).
//!
//! The handshake, record layer and SRTP key export arrive with the DTLS issue; this crate is a
//! placeholder member of the workspace until then and exports nothing.
