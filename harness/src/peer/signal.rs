//! The signalling vocabulary of a [`Peer`](super::Peer) and its JSON-lines form: ICE
//! credentials, trickled candidates in the RFC 8839 `candidate:` form, end-of-candidates
//! (RFC 8838 §13), the DTLS fingerprint (RFC 8122 §5) with the `setup` role (RFC 4145 §4,
//! RFC 5763 §5), and the data check's `data-done`.
//!
//! One JSON object per line; both drivers — the simulator's signalling channel and the
//! real-UDP command line — carry exactly these lines, so our peer and any other program that
//! speaks them can be wired together by a script:
//!
//! ```text
//! {"type":"credentials","ufrag":"…","pwd":"…"}
//! {"type":"candidate","candidate":"candidate:…"}      (the `a=` prefix is accepted on input)
//! {"type":"end-of-candidates"}
//! {"type":"dtls","fingerprint":"sha-256 AB:…","setup":"actpass|active|passive"}
//! {"type":"data-done"}
//! ```

use std::fmt;
use std::str::FromStr;

use dtls_proto::Fingerprint;
use ice_proto::sdp::{IceAttribute, SdpError};
use ice_proto::{AgentError, Candidate, Credentials};
use serde_json::{Value, json};
use thiserror::Error;

/// The DTLS role a side offers or takes (the SDP `setup` attribute, RFC 4145 §4 as used by
/// RFC 5763 §5 and RFC 8842 §5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Setup {
    /// Either role: the offerer's value (RFC 5763 §5).
    ActPass,
    /// The DTLS client: the usual answer.
    Active,
    /// The DTLS server.
    Passive,
}

impl Setup {
    /// The attribute value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Setup::ActPass => "actpass",
            Setup::Active => "active",
            Setup::Passive => "passive",
        }
    }

    /// Whether we are the DTLS client, given the remote side's value and, for `actpass` on both
    /// sides (two offerers, as in a role conflict), our ICE role: the ICE-controlling side, the
    /// offerer, is then the server, as it is when its `actpass` meets an `active` answer.
    /// `None` when the two values cannot both hold (active/active or passive/passive).
    pub const fn is_client(self, remote: Setup, ice_controlling: bool) -> Option<bool> {
        match (self, remote) {
            (Setup::Active, Setup::Active) | (Setup::Passive, Setup::Passive) => None,
            (Setup::Active, _) | (Setup::ActPass, Setup::Passive) => Some(true),
            (Setup::Passive, _) | (Setup::ActPass, Setup::Active) => Some(false),
            (Setup::ActPass, Setup::ActPass) => Some(!ice_controlling),
        }
    }
}

impl fmt::Display for Setup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Setup {
    type Err = SignalError;

    fn from_str(s: &str) -> Result<Self, SignalError> {
        match s {
            "actpass" => Ok(Setup::ActPass),
            "active" => Ok(Setup::Active),
            "passive" => Ok(Setup::Passive),
            _ => Err(SignalError::BadSetup),
        }
    }
}

/// One signalling message.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Signal {
    /// The ICE username fragment and password (RFC 8839 §5.4).
    Credentials(Credentials),
    /// A trickled candidate (RFC 8838).
    Candidate(Candidate),
    /// No more candidates (RFC 8838 §13).
    EndOfCandidates,
    /// The certificate fingerprint and DTLS role (RFC 8122 §5, RFC 5763 §5).
    Dtls {
        /// The SHA-256 fingerprint of the sender's certificate.
        fingerprint: Fingerprint,
        /// The role the sender offers or takes.
        setup: Setup,
    },
    /// The sender received the echoes of all its pings (the data check of the command line).
    DataDone,
}

/// Why a line is not a signal of ours.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SignalError {
    /// Not a JSON object with a string `type`.
    #[error("not a JSON object with a \"type\"")]
    NotAnObject,
    /// A field the type needs is missing or not a string.
    #[error("missing string field \"{0}\"")]
    Missing(&'static str),
    /// The credentials break RFC 8839 §5.4 (the error says which part and why).
    #[error("{0}")]
    BadCredentials(#[source] AgentError),
    /// The candidate line does not parse.
    #[error("bad candidate: {0}")]
    BadCandidate(#[source] SdpError),
    /// The fingerprint is not `sha-256` and 32 hex bytes.
    #[error("bad fingerprint (want \"sha-256 AB:CD:…\")")]
    BadFingerprint,
    /// `setup` is not actpass, active or passive.
    #[error("bad setup (want actpass, active or passive)")]
    BadSetup,
}

impl Signal {
    /// The JSON object of this signal.
    pub fn to_json(&self) -> Value {
        match self {
            Signal::Credentials(c) => {
                json!({"type": "credentials", "ufrag": c.ufrag, "pwd": c.pwd})
            }
            Signal::Candidate(c) => json!({"type": "candidate", "candidate": c.to_string()}),
            Signal::EndOfCandidates => json!({"type": "end-of-candidates"}),
            Signal::Dtls { fingerprint, setup } => json!({
                "type": "dtls",
                "fingerprint": fingerprint.to_string(),
                "setup": setup.as_str(),
            }),
            Signal::DataDone => json!({"type": "data-done"}),
        }
    }

    /// The signal as one JSON line (no newline).
    pub fn to_line(&self) -> String {
        self.to_json().to_string()
    }

    /// Parses one line: `Ok(None)` for a well-formed line of another type (to be ignored, like
    /// the other side's `event` and `log` lines), an error for a broken one of ours.
    pub fn parse_line(line: &str) -> Result<Option<Signal>, SignalError> {
        let value: Value = serde_json::from_str(line).map_err(|_| SignalError::NotAnObject)?;
        let kind = value
            .get("type")
            .and_then(Value::as_str)
            .ok_or(SignalError::NotAnObject)?;
        let field = |name: &'static str| {
            value
                .get(name)
                .and_then(Value::as_str)
                .ok_or(SignalError::Missing(name))
        };
        Ok(Some(match kind {
            "credentials" => Signal::Credentials(
                Credentials::new(field("ufrag")?, field("pwd")?)
                    .map_err(SignalError::BadCredentials)?,
            ),
            "candidate" => match IceAttribute::parse(field("candidate")?) {
                Ok(IceAttribute::Candidate(c)) => Signal::Candidate(c),
                Ok(other) => {
                    let name = other.to_string();
                    return Err(SignalError::BadCandidate(SdpError::UnknownAttribute(name)));
                }
                Err(e) => return Err(SignalError::BadCandidate(e)),
            },
            "end-of-candidates" => Signal::EndOfCandidates,
            "dtls" => Signal::Dtls {
                fingerprint: field("fingerprint")?
                    .parse()
                    .map_err(|_| SignalError::BadFingerprint)?,
                setup: field("setup")?.parse()?,
            },
            "data-done" => Signal::DataDone,
            _ => return Ok(None),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_signal_round_trips_through_its_line() {
        let candidate: Candidate = "candidate:1 1 udp 2130706431 192.0.2.1 5000 typ host"
            .parse()
            .unwrap();
        let signals = [
            Signal::Credentials(Credentials::new("abcd", "0123456789abcdefghijkl").unwrap()),
            Signal::Candidate(candidate),
            Signal::EndOfCandidates,
            Signal::Dtls {
                fingerprint: Fingerprint::from([0xab; 32]),
                setup: Setup::ActPass,
            },
            Signal::DataDone,
        ];
        for s in signals {
            assert_eq!(
                Signal::parse_line(&s.to_line()),
                Ok(Some(s.clone())),
                "{s:?}"
            );
        }
    }

    #[test]
    fn the_issue_forms_parse() {
        let line = r#"{"type":"candidate","candidate":"a=candidate:1 1 UDP 2130706431 192.0.2.1 5000 typ host"}"#;
        assert!(matches!(
            Signal::parse_line(line),
            Ok(Some(Signal::Candidate(c))) if c.port == 5000
        ));
        let fp = format!("sha-256 {}", ["AB"; 32].join(":"));
        let line = format!(r#"{{"type":"dtls","fingerprint":"{fp}","setup":"passive"}}"#);
        assert_eq!(
            Signal::parse_line(&line),
            Ok(Some(Signal::Dtls {
                fingerprint: Fingerprint::from([0xab; 32]),
                setup: Setup::Passive
            }))
        );
    }

    #[test]
    fn other_lines_are_ignored_and_broken_ones_rejected() {
        assert_eq!(Signal::parse_line(r#"{"type":"log","msg":"x"}"#), Ok(None));
        assert_eq!(Signal::parse_line(r#"{"type":"event"}"#), Ok(None));
        assert_eq!(
            Signal::parse_line("not json"),
            Err(SignalError::NotAnObject)
        );
        assert_eq!(
            Signal::parse_line(r#"{"type":"credentials","ufrag":"ab"}"#),
            Err(SignalError::Missing("pwd"))
        );
        let bad = Signal::parse_line(r#"{"type":"credentials","ufrag":"ab","pwd":"short"}"#);
        assert_eq!(
            bad.unwrap_err().to_string(),
            "bad ICE credentials: ice-ufrag is 2 characters long; RFC 8839 §5.4 wants 4 to 256"
        );
        assert_eq!(
            Signal::parse_line(r#"{"type":"dtls","fingerprint":"md5 AB","setup":"active"}"#),
            Err(SignalError::BadFingerprint)
        );
        assert!(matches!(
            Signal::parse_line(r#"{"type":"candidate","candidate":"candidate:x"}"#),
            Err(SignalError::BadCandidate(_))
        ));
    }

    #[test]
    fn setup_resolves_like_offer_and_answer() {
        use Setup::*;
        assert_eq!(ActPass.is_client(Active, true), Some(false));
        assert_eq!(Active.is_client(ActPass, false), Some(true));
        assert_eq!(ActPass.is_client(Passive, true), Some(true));
        assert_eq!(Passive.is_client(ActPass, false), Some(false));
        // Two offerers: the ICE role decides, and the two sides agree.
        assert_eq!(ActPass.is_client(ActPass, true), Some(false));
        assert_eq!(ActPass.is_client(ActPass, false), Some(true));
        assert_eq!(Active.is_client(Active, false), None);
        assert_eq!(Passive.is_client(Passive, true), None);
    }
}
