//! The agent's TLS identity (a certificate chain and its key, made once or provisioned) and
//! the rustls server configuration built from it. Where it is kept: `tls_store.rs`.

use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::ParsedCertificate;
use rustls::sign::CertifiedKey;
use sha2::{Digest, Sha256};

/// RSA modulus size of made keys: what Windows makes for its RDP listener.
const RSA_BITS: usize = 2048;

/// The key type of a certificate the agent makes for itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyType {
    /// RSA-2048, as Windows: rdesktop and some CredSSP clients take nothing else.
    Rsa,
    /// ECDSA P-256: fast to make, taken by FreeRDP, mstsc and IronRDP.
    Ecdsa,
}

impl std::fmt::Display for KeyType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            KeyType::Rsa => "rsa",
            KeyType::Ecdsa => "ecdsa",
        })
    }
}

impl std::str::FromStr for KeyType {
    type Err = ();
    fn from_str(text: &str) -> Result<Self, ()> {
        match text {
            "rsa" => Ok(KeyType::Rsa),
            "ecdsa" => Ok(KeyType::Ecdsa),
            _ => Err(()),
        }
    }
}

pub struct Identity {
    /// The end-entity certificate first, then any intermediates.
    pub chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    /// SubjectPublicKeyInfo key bits (PKCS#1 RSAPublicKey for RSA, the EC point for
    /// ECDSA), which CredSSP binds the login to.
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

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl Identity {
    /// A self-signed certificate with a new key. RSA takes about a second natively, far
    /// longer under emulation: callers do it once, before serving.
    pub fn generate(kind: KeyType) -> Result<Identity, TlsError> {
        let generate = |e: rcgen::Error| TlsError::Generate(e.to_string());
        let key = match kind {
            KeyType::Ecdsa => rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
            KeyType::Rsa => {
                let pkcs8 = rsa_pkcs8(RSA_BITS)?;
                rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&pkcs8, &rcgen::PKCS_RSA_SHA256)
            }
        }
        .map_err(generate)?;
        let mut params =
            rcgen::CertificateParams::new(vec!["thinshadow".to_owned()]).map_err(generate)?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "thinshadow");
        let cert = params.self_signed(&key).map_err(generate)?;
        let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        Identity::new(vec![cert.der().clone()], key_der)
    }

    /// A chain and its key, checked to belong together (a mismatched pair is refused
    /// here, not at every handshake).
    pub fn new(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<Identity, TlsError> {
        let end_entity = chain
            .first()
            .ok_or_else(|| TlsError::Config("no certificate".into()))?;
        let parsed = ParsedCertificate::try_from(end_entity)
            .map_err(|e| TlsError::Config(format!("certificate: {e}")))?;
        let public_key = spki_key_bits(parsed.subject_public_key_info().as_ref())
            .ok_or_else(|| TlsError::Config("certificate: bad SubjectPublicKeyInfo".into()))?
            .to_vec();
        let certified = CertifiedKey::from_der(chain.clone(), key.clone_key(), &provider())
            .map_err(|e| TlsError::Config(e.to_string()))?;
        // Ring knows the public key of every key it loads; "unknown" would mean unchecked.
        certified
            .keys_match()
            .map_err(|e| TlsError::Config(format!("key and certificate: {e}")))?;
        Ok(Identity {
            chain,
            key,
            public_key,
        })
    }

    /// A PEM chain (end-entity first) and a PEM key (PKCS#8, PKCS#1 or SEC1).
    pub fn from_pem(chain_pem: &[u8], key_pem: &[u8]) -> Result<Identity, TlsError> {
        let chain = CertificateDer::pem_slice_iter(chain_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TlsError::Config(format!("certificate pem: {e}")))?;
        let key = PrivateKeyDer::from_pem_slice(key_pem)
            .map_err(|e| TlsError::Config(format!("key pem: {e}")))?;
        Identity::new(chain, key)
    }

    /// The key, then the chain, as one PEM text: the unit `tls_store` writes.
    pub fn to_pem(&self) -> String {
        let key = pem::Pem::new(self.key_label(), self.key.secret_der());
        let certs = self
            .chain
            .iter()
            .map(|cert| pem::Pem::new("CERTIFICATE", cert.as_ref()));
        let unix = pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF);
        pem::encode_many_config(&std::iter::once(key).chain(certs).collect::<Vec<_>>(), unix)
    }

    fn key_label(&self) -> &'static str {
        match self.key {
            PrivateKeyDer::Pkcs1(_) => "RSA PRIVATE KEY",
            PrivateKeyDer::Sec1(_) => "EC PRIVATE KEY",
            _ => "PRIVATE KEY",
        }
    }

    /// The end-entity certificate, DER.
    pub fn cert_der(&self) -> &[u8] {
        &self.chain[0]
    }

    /// SHA-256 of the end-entity certificate, lowercase hex with colons, as FreeRDP shows it.
    pub fn fingerprint(&self) -> String {
        fingerprint(self.cert_der())
    }

    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), self.key.clone_key())
            .map_err(|e| TlsError::Config(e.to_string()))?;
        // No session resumption state to keep: one admin at a time, handshakes are rare.
        config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        Ok(Arc::new(config))
    }
}

/// A new RSA key as PKCS#8: ring signs with RSA keys but cannot make them.
fn rsa_pkcs8(bits: usize) -> Result<PrivatePkcs8KeyDer<'static>, TlsError> {
    use rsa::pkcs8::EncodePrivateKey;
    // SysRng panics (through UnwrapErr) if the OS cannot give randomness: ask once first.
    getrandom::fill(&mut [0u8; 32]).map_err(|e| TlsError::Generate(e.to_string()))?;
    let mut rng = getrandom4::rand_core::UnwrapErr(getrandom4::SysRng);
    let key =
        rsa::RsaPrivateKey::new(&mut rng, bits).map_err(|e| TlsError::Generate(e.to_string()))?;
    let der = key
        .to_pkcs8_der()
        .map_err(|e| TlsError::Generate(e.to_string()))?;
    Ok(PrivatePkcs8KeyDer::from(der.as_bytes().to_vec()))
}

/// One DER element: (tag, contents, rest), bounds checked.
fn der_element(bytes: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = bytes.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 3 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |len, &b| len << 8 | usize::from(b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// The subjectPublicKey BIT STRING's bits of a SubjectPublicKeyInfo.
fn spki_key_bits(spki: &[u8]) -> Option<&[u8]> {
    const SEQUENCE: u8 = 0x30;
    const BIT_STRING: u8 = 0x03;
    let (SEQUENCE, inner, _) = der_element(spki)? else {
        return None;
    };
    let (SEQUENCE, _algorithm, rest) = der_element(inner)? else {
        return None;
    };
    let (BIT_STRING, bits, _) = der_element(rest)? else {
        return None;
    };
    // Key bits are whole bytes: no unused bits.
    match bits.split_first()? {
        (0, key) => Some(key),
        _ => None,
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
    fn ecdsa_key_bits_are_the_uncompressed_point() {
        let id = Identity::generate(KeyType::Ecdsa).unwrap();
        assert_eq!(id.public_key.len(), 65);
        assert_eq!(id.public_key[0], 4);
        id.server_config().unwrap();
    }

    #[test]
    fn rsa_key_bits_are_pkcs1_with_a_2048_bit_modulus() {
        let id = Identity::generate(KeyType::Rsa).unwrap();
        // RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }
        let (0x30, inner, []) = der_element(&id.public_key).unwrap() else {
            panic!("not a sequence");
        };
        let (0x02, modulus, rest) = der_element(inner).unwrap() else {
            panic!("no modulus");
        };
        // A leading zero keeps the INTEGER positive.
        assert_eq!(modulus.len(), 257);
        assert_eq!(modulus[0], 0);
        assert!(modulus[1] >= 0x80);
        let (0x02, exponent, []) = der_element(rest).unwrap() else {
            panic!("no exponent");
        };
        assert_eq!(exponent, [1, 0, 1]);
        id.server_config().unwrap();
    }

    #[test]
    fn pem_round_trip_keeps_the_pair() {
        let id = Identity::generate(KeyType::Ecdsa).unwrap();
        let pem = id.to_pem();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        let again = Identity::from_pem(pem.as_bytes(), pem.as_bytes()).unwrap();
        assert_eq!(again.fingerprint(), id.fingerprint());
        assert_eq!(again.public_key, id.public_key);
    }

    #[test]
    fn a_key_of_another_certificate_is_refused() {
        let a = Identity::generate(KeyType::Ecdsa).unwrap();
        let b = Identity::generate(KeyType::Ecdsa).unwrap();
        let err = Identity::new(a.chain.clone(), b.key.clone_key())
            .err()
            .expect("mismatch accepted");
        assert!(err.to_string().contains("key"), "{err}");
    }

    #[test]
    fn short_or_odd_der_is_refused() {
        assert_eq!(spki_key_bits(&[]), None);
        assert_eq!(spki_key_bits(&[0x30, 0x05, 0x30]), None);
        assert_eq!(spki_key_bits(&[0x30, 0x84, 0, 0, 0, 1]), None);
        // Unused bits in the key's BIT STRING.
        assert_eq!(
            spki_key_bits(&[0x30, 0x06, 0x30, 0x00, 0x03, 0x02, 0x01, 0xff]),
            None
        );
        assert_eq!(
            spki_key_bits(&[0x30, 0x06, 0x30, 0x00, 0x03, 0x02, 0x00, 0xff]),
            Some(&[0xff][..])
        );
    }
}
