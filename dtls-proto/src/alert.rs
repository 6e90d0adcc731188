//! Alerts (RFC 5246 §7.2, RFC 6347 §4.1.2.7).
//!
//! A fatal alert ends the connection; close_notify ends it gracefully. Alerts are two bytes:
//! level and description.

use crate::wire::DecodeError;

/// Alert severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AlertLevel {
    /// The connection may continue.
    Warning,
    /// The connection ends.
    Fatal,
}

impl AlertLevel {
    fn to_byte(self) -> u8 {
        match self {
            Self::Warning => 1,
            Self::Fatal => 2,
        }
    }
}

macro_rules! descriptions {
    ($($name:ident = $v:literal $wire:literal,)*) => {
        /// Alert descriptions of RFC 5246 §7.2 (and RFC 5746 no_renegotiation).
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[non_exhaustive]
        pub enum AlertDescription {
            $(
                #[doc = concat!("Alert code ", stringify!($v), ".")]
                $name,
            )*
            /// A code this crate does not name.
            Unknown(u8),
        }

        impl AlertDescription {
            /// The wire value.
            pub fn to_byte(self) -> u8 {
                match self {
                    $(Self::$name => $v,)*
                    Self::Unknown(v) => v,
                }
            }

            /// Parses a wire value.
            pub fn from_byte(v: u8) -> Self {
                match v {
                    $($v => Self::$name,)*
                    other => Self::Unknown(other),
                }
            }
        }

        /// The RFC name and the code, e.g. `bad_certificate (42)`.
        impl std::fmt::Display for AlertDescription {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let name = match self {
                    $(Self::$name => $wire,)*
                    Self::Unknown(_) => "unknown alert",
                };
                write!(f, "{name} ({})", self.to_byte())
            }
        }
    };
}

descriptions! {
    CloseNotify = 0 "close_notify",
    UnexpectedMessage = 10 "unexpected_message",
    BadRecordMac = 20 "bad_record_mac",
    RecordOverflow = 22 "record_overflow",
    HandshakeFailure = 40 "handshake_failure",
    BadCertificate = 42 "bad_certificate",
    UnsupportedCertificate = 43 "unsupported_certificate",
    CertificateExpired = 45 "certificate_expired",
    CertificateUnknown = 46 "certificate_unknown",
    IllegalParameter = 47 "illegal_parameter",
    DecodeError = 50 "decode_error",
    DecryptError = 51 "decrypt_error",
    ProtocolVersion = 70 "protocol_version",
    InsufficientSecurity = 71 "insufficient_security",
    InternalError = 80 "internal_error",
    UserCanceled = 90 "user_canceled",
    NoRenegotiation = 100 "no_renegotiation",
    UnsupportedExtension = 110 "unsupported_extension",
}

/// A parsed alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Alert {
    /// Severity; unknown levels parse as fatal.
    pub level: AlertLevel,
    /// What happened.
    pub description: AlertDescription,
}

impl Alert {
    /// A fatal alert.
    pub fn fatal(description: AlertDescription) -> Self {
        Self {
            level: AlertLevel::Fatal,
            description,
        }
    }

    /// The close_notify warning alert.
    pub fn close_notify() -> Self {
        Self {
            level: AlertLevel::Warning,
            description: AlertDescription::CloseNotify,
        }
    }

    /// Parses the two alert bytes.
    pub fn parse(buf: &[u8]) -> Result<Self, DecodeError> {
        match buf {
            [level, description] => Ok(Self {
                level: if *level == 1 {
                    AlertLevel::Warning
                } else {
                    AlertLevel::Fatal
                },
                description: AlertDescription::from_byte(*description),
            }),
            [_] | [] => Err(DecodeError::Truncated),
            _ => Err(DecodeError::TrailingBytes),
        }
    }

    /// The two alert bytes.
    pub fn to_bytes(self) -> [u8; 2] {
        [self.level.to_byte(), self.description.to_byte()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let a = Alert::fatal(AlertDescription::BadCertificate);
        assert_eq!(a.to_bytes(), [2, 42]);
        assert_eq!(Alert::parse(&a.to_bytes()), Ok(a));
        assert_eq!(Alert::parse(&[1, 0]), Ok(Alert::close_notify()));
        assert_eq!(Alert::parse(&[1]), Err(DecodeError::Truncated));
        assert_eq!(
            AlertDescription::from_byte(201),
            AlertDescription::Unknown(201)
        );
        assert_eq!(
            AlertDescription::BadCertificate.to_string(),
            "bad_certificate (42)"
        );
        assert_eq!(
            AlertDescription::Unknown(201).to_string(),
            "unknown alert (201)"
        );
    }
}
