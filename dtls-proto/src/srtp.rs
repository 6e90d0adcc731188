//! DTLS-SRTP: protection profiles and the keying material split (RFC 5764 §4.1.2, §4.2;
//! RFC 7714 §14.2 for the AEAD profiles).
//!
//! The material is exported with the label `EXTRACTOR-dtls_srtp` and no context (RFC 5705), then
//! cut into `client_key ‖ server_key ‖ client_salt ‖ server_salt`.

/// The exporter label of RFC 5764 §4.2.
pub const EXPORTER_LABEL: &[u8] = b"EXTRACTOR-dtls_srtp";

/// An SRTP protection profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SrtpProfile {
    /// SRTP_AES128_CM_HMAC_SHA1_80 (0x0001).
    Aes128CmHmacSha1_80,
    /// SRTP_AES128_CM_HMAC_SHA1_32 (0x0002).
    Aes128CmHmacSha1_32,
    /// SRTP_AEAD_AES_128_GCM (0x0007).
    AeadAes128Gcm,
    /// SRTP_AEAD_AES_256_GCM (0x0008).
    AeadAes256Gcm,
}

impl SrtpProfile {
    /// Every profile, in our order of preference.
    pub const ALL: [Self; 4] = [
        Self::AeadAes128Gcm,
        Self::AeadAes256Gcm,
        Self::Aes128CmHmacSha1_80,
        Self::Aes128CmHmacSha1_32,
    ];

    /// The IANA code point.
    pub fn id(self) -> u16 {
        match self {
            Self::Aes128CmHmacSha1_80 => 0x0001,
            Self::Aes128CmHmacSha1_32 => 0x0002,
            Self::AeadAes128Gcm => 0x0007,
            Self::AeadAes256Gcm => 0x0008,
        }
    }

    /// The profile with code point `id`, if we implement it.
    pub fn from_id(id: u16) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.id() == id)
    }

    /// The OpenSSL name, handy for interop tests.
    pub fn openssl_name(self) -> &'static str {
        match self {
            Self::Aes128CmHmacSha1_80 => "SRTP_AES128_CM_SHA1_80",
            Self::Aes128CmHmacSha1_32 => "SRTP_AES128_CM_SHA1_32",
            Self::AeadAes128Gcm => "SRTP_AEAD_AES_128_GCM",
            Self::AeadAes256Gcm => "SRTP_AEAD_AES_256_GCM",
        }
    }

    /// SRTP master key length in bytes.
    pub fn master_key_len(self) -> usize {
        match self {
            Self::AeadAes256Gcm => 32,
            _ => 16,
        }
    }

    /// SRTP master salt length in bytes.
    pub fn master_salt_len(self) -> usize {
        match self {
            Self::Aes128CmHmacSha1_80 | Self::Aes128CmHmacSha1_32 => 14,
            Self::AeadAes128Gcm | Self::AeadAes256Gcm => 12,
        }
    }

    /// Bytes to export: both keys and both salts.
    pub fn keying_material_len(self) -> usize {
        2 * (self.master_key_len() + self.master_salt_len())
    }
}

/// SRTP master keys and salts for both directions: the exported block and views into it.
#[derive(Clone, PartialEq, Eq)]
pub struct SrtpKeyingMaterial {
    /// The negotiated profile.
    pub profile: SrtpProfile,
    /// The exported bytes as one block (what OpenSSL prints for `EXTRACTOR-dtls_srtp`):
    /// `client_key ‖ server_key ‖ client_salt ‖ server_salt` (RFC 5764 §4.2).
    pub material: Vec<u8>,
}

impl std::fmt::Debug for SrtpKeyingMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrtpKeyingMaterial")
            .field("profile", &self.profile)
            .finish_non_exhaustive()
    }
}

impl SrtpKeyingMaterial {
    /// Takes exported material for `profile`; `None` if its length is not the profile's
    /// [`keying_material_len`](SrtpProfile::keying_material_len).
    pub fn new(profile: SrtpProfile, material: Vec<u8>) -> Option<Self> {
        (material.len() == profile.keying_material_len()).then_some(Self { profile, material })
    }

    /// `len` bytes of the material from `start` (empty if the material were too short, which
    /// [`new`](Self::new) rules out).
    fn part(&self, start: usize, len: usize) -> &[u8] {
        self.material.get(start..start + len).unwrap_or_default()
    }

    /// client_write_SRTP_master_key.
    pub fn client_key(&self) -> &[u8] {
        self.part(0, self.profile.master_key_len())
    }

    /// server_write_SRTP_master_key.
    pub fn server_key(&self) -> &[u8] {
        let k = self.profile.master_key_len();
        self.part(k, k)
    }

    /// client_write_SRTP_master_salt.
    pub fn client_salt(&self) -> &[u8] {
        let k = self.profile.master_key_len();
        self.part(2 * k, self.profile.master_salt_len())
    }

    /// server_write_SRTP_master_salt.
    pub fn server_salt(&self) -> &[u8] {
        let (k, s) = (
            self.profile.master_key_len(),
            self.profile.master_salt_len(),
        );
        self.part(2 * k + s, s)
    }

    /// (key, salt) this side uses to protect what it sends.
    pub fn local(&self, is_client: bool) -> (&[u8], &[u8]) {
        if is_client {
            (self.client_key(), self.client_salt())
        } else {
            (self.server_key(), self.server_salt())
        }
    }

    /// (key, salt) this side uses to unprotect what it receives.
    pub fn remote(&self, is_client: bool) -> (&[u8], &[u8]) {
        self.local(!is_client)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_follows_rfc5764_order() {
        let material: Vec<u8> = (0..60).collect();
        let m =
            SrtpKeyingMaterial::new(SrtpProfile::Aes128CmHmacSha1_80, material.clone()).unwrap();
        assert_eq!(m.client_key(), (0..16).collect::<Vec<u8>>());
        assert_eq!(m.server_key(), (16..32).collect::<Vec<u8>>());
        assert_eq!(m.client_salt(), (32..46).collect::<Vec<u8>>());
        assert_eq!(m.server_salt(), (46..60).collect::<Vec<u8>>());
        assert_eq!(m.local(false).0, m.server_key());
        assert_eq!(m.remote(false).1, m.client_salt());
        assert!(SrtpKeyingMaterial::new(SrtpProfile::AeadAes256Gcm, material).is_none());
        assert_eq!(SrtpProfile::AeadAes256Gcm.keying_material_len(), 88);
        assert_eq!(SrtpProfile::AeadAes128Gcm.keying_material_len(), 56);
    }
}
