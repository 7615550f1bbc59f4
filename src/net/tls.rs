//! The agent's TLS identity: a self-signed certificate made once and kept in the state
//! directory, and the rustls server configuration built from it.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::{Digest, Sha256};

use crate::state;

pub const CERT_FILE: &str = "tls-cert.der";
pub const KEY_FILE: &str = "tls-key.der";

pub struct Identity {
    pub cert_der: Vec<u8>,
    key_der: Vec<u8>,
    /// SubjectPublicKeyInfo key bits, which CredSSP binds the login to.
    pub public_key: Vec<u8>,
}

#[derive(Debug)]
pub enum TlsError {
    Io(String),
    Generate(String),
    Config(String),
}

impl std::fmt::Display for TlsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TlsError::Io(reason) => write!(f, "tls identity: {reason}"),
            TlsError::Generate(reason) => {
                write!(f, "cannot generate the tls certificate: {reason}")
            }
            TlsError::Config(reason) => write!(f, "tls configuration: {reason}"),
        }
    }
}

impl Identity {
    /// Loads the certificate from `dir`, or makes one on first start.
    pub fn load_or_create(dir: &Path) -> Result<Identity, TlsError> {
        let cert_path = dir.join(CERT_FILE);
        let key_path = dir.join(KEY_FILE);
        if cert_path.exists() && key_path.exists() {
            let cert_der = std::fs::read(&cert_path)
                .map_err(|e| TlsError::Io(format!("{}: {e}", cert_path.display())))?;
            let key_der = std::fs::read(&key_path)
                .map_err(|e| TlsError::Io(format!("{}: {e}", key_path.display())))?;
            match Identity::from_der(cert_der, key_der) {
                Ok(identity) => return Ok(identity),
                Err(e) => {
                    crate::warn!("the stored certificate is unusable ({e}); making a new one")
                }
            }
        }
        let identity = Identity::generate()?;
        state::ensure_dir(dir).map_err(|e| TlsError::Io(format!("{}: {e}", dir.display())))?;
        state::write_atomic(&key_path, &identity.key_der, 0o600)
            .map_err(|e| TlsError::Io(e.to_string()))?;
        state::write_atomic(&cert_path, &identity.cert_der, 0o644)
            .map_err(|e| TlsError::Io(e.to_string()))?;
        crate::info!(
            "made a new tls certificate, sha256 {}",
            identity.fingerprint()
        );
        Ok(identity)
    }

    /// ECDSA P-256: ring cannot generate RSA keys, and every current RDP client takes ECDSA.
    pub fn generate() -> Result<Identity, TlsError> {
        let mut params = rcgen::CertificateParams::new(vec!["thinshadow".to_owned()])
            .map_err(|e| TlsError::Generate(e.to_string()))?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "thinshadow");
        let key = rcgen::KeyPair::generate().map_err(|e| TlsError::Generate(e.to_string()))?;
        let cert = params
            .self_signed(&key)
            .map_err(|e| TlsError::Generate(e.to_string()))?;
        Identity::from_der(cert.der().to_vec(), key.serialize_der())
    }

    fn from_der(cert_der: Vec<u8>, key_der: Vec<u8>) -> Result<Identity, TlsError> {
        let key = rcgen::KeyPair::try_from(key_der.as_slice())
            .map_err(|e| TlsError::Config(e.to_string()))?;
        Ok(Identity {
            public_key: key.public_key_raw().to_vec(),
            cert_der,
            key_der,
        })
    }

    /// SHA-256 of the certificate, lowercase hex with colons, as FreeRDP shows it.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.cert_der)
    }

    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()));
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(vec![CertificateDer::from(self.cert_der.clone())], key)
            .map_err(|e| TlsError::Config(e.to_string()))?;
        // No session resumption state to keep: one admin at a time, handshakes are rare.
        config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        Ok(Arc::new(config))
    }
}

pub fn fingerprint(cert_der: &[u8]) -> String {
    let digest = Sha256::digest(cert_der);
    let hex: Vec<String> = digest.iter().map(|b| format!("{b:02x}")).collect();
    hex.join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_once_then_reloaded() {
        let dir = std::env::temp_dir().join(format!("thinshadow-tls-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let first = Identity::load_or_create(&dir).unwrap();
        let second = Identity::load_or_create(&dir).unwrap();
        assert_eq!(first.fingerprint(), second.fingerprint());
        assert_eq!(first.public_key, second.public_key);
        assert_eq!(first.fingerprint().len(), 32 * 3 - 1);
        first.server_config().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
