//! TLS over TCP (RFC 8656 §3.1: TURN over TLS, port 5349 by convention) with rustls: the
//! certificate chain and private key come from PEM files, loaded once at start; each
//! accepted connection gets a [`rustls::ServerConnection`] that the worker drives with the
//! socket's readiness (`connection.rs`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Why the TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The certificate file is unreadable or holds no PEM certificate.
    #[error("--cert {file}: {source}")]
    Certificate {
        /// The file.
        file: PathBuf,
        /// Why.
        source: rustls::pki_types::pem::Error,
    },
    /// The certificate file holds no certificate.
    #[error("--cert {0}: no PEM certificate in it")]
    NoCertificate(PathBuf),
    /// The key file is unreadable or holds no PEM private key.
    #[error("--key {file}: {source}")]
    Key {
        /// The file.
        file: PathBuf,
        /// Why.
        source: rustls::pki_types::pem::Error,
    },
    /// rustls refused the pair (e.g. the key does not match the certificate).
    #[error("--cert/--key: {0}")]
    Rejected(#[from] rustls::Error),
}

/// A server configuration from a PEM certificate chain and a PEM private key.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|source| TlsError::Certificate {
            file: cert.to_owned(),
            source,
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate(cert.to_owned()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|source| TlsError::Key {
        file: key.to_owned(),
        source,
    })?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_or_empty_files_are_named() {
        let dir = std::env::temp_dir().join(format!("turn-server-tls-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let missing = dir.join("missing.pem");
        let e = server_config(&missing, &empty).unwrap_err();
        assert!(e.to_string().contains("missing.pem"), "{e}");
        let e = server_config(&empty, &empty).unwrap_err();
        assert!(matches!(e, TlsError::NoCertificate(_)), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
