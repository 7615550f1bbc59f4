//! Where the TLS identity lives. A made identity is one file (`tls-identity.pem`: key then
//! certificate) written atomically, so a power cut at any step leaves the old pair or the
//! new one, never a key without its certificate. `tls-cert.der` beside it is a public copy
//! of the certificate in use (made or provisioned) for `creds`; it is rewritten at start.
//! State directories from before this kept the pair in two files: the pair is taken over
//! when it matches (its fingerprint is published), a new identity made when it does not.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::tls::{Identity, KeyType, TlsError};
use crate::state::{self, Step};

pub const IDENTITY_FILE: &str = "tls-identity.pem";
/// The certificate in use, DER, world-readable: what `creds` fingerprints.
pub const CERT_FILE: &str = "tls-cert.der";
/// The key of the two-file layout, removed once taken over.
const OLD_KEY_FILE: &str = "tls-key.der";

/// Where the identity comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    /// Made once in the state directory, of this type when new.
    Made(KeyType),
    /// Provisioned PEM files (the fleet's PKI): a chain and its key.
    Provisioned { cert: PathBuf, key: PathBuf },
}

fn io_error(path: &Path, e: impl std::fmt::Display) -> TlsError {
    TlsError::Io(format!("{}: {e}", path.display()))
}

/// The identity to serve with, made first if there is none. Runs before the agent listens:
/// making an RSA key can take seconds on a slow board, and the log says how long it took.
pub fn load_or_create(dir: &Path, source: &Source) -> Result<Identity, TlsError> {
    load_or_create_steps(dir, source, &mut |_| Ok(()))
}

/// `load_or_create` with `after` called after each step of the identity write (tests cut
/// the power there).
pub fn load_or_create_steps(
    dir: &Path,
    source: &Source,
    after: &mut dyn FnMut(Step) -> io::Result<()>,
) -> Result<Identity, TlsError> {
    state::ensure_dir(dir).map_err(|e| io_error(dir, e))?;
    let identity = match source {
        Source::Provisioned { cert, key } => {
            let chain = std::fs::read(cert).map_err(|e| io_error(cert, e))?;
            let key_pem = std::fs::read(key).map_err(|e| io_error(key, e))?;
            let identity = Identity::from_pem(&chain, &key_pem).map_err(|e| {
                TlsError::Config(format!("{} / {}: {e}", cert.display(), key.display()))
            })?;
            crate::info!(
                "tls certificate from {}, sha256 {}",
                cert.display(),
                identity.fingerprint()
            );
            identity
        }
        Source::Made(kind) => match stored(dir)? {
            Some(identity) => identity,
            None => {
                let started = Instant::now();
                crate::info!("making a new {kind} tls key and certificate before listening");
                let identity = Identity::generate(*kind)?;
                write_identity(dir, &identity, after)?;
                crate::info!(
                    "made a new tls certificate in {} ms, sha256 {}",
                    started.elapsed().as_millis(),
                    identity.fingerprint()
                );
                identity
            }
        },
    };
    publish_cert(dir, &identity)?;
    Ok(identity)
}

/// The stored identity, from either layout; `None` when there is none that works.
fn stored(dir: &Path) -> Result<Option<Identity>, TlsError> {
    let path = dir.join(IDENTITY_FILE);
    match std::fs::read(&path) {
        Ok(pem) => match Identity::from_pem(&pem, &pem) {
            Ok(identity) => return Ok(Some(identity)),
            Err(e) => crate::warn!("{}: unusable ({e}); making a new one", path.display()),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => return old_pair(dir),
        Err(e) => return Err(io_error(&path, e)),
    }
    Ok(None)
}

/// The two-file pair of older versions, moved into one file when it matches.
fn old_pair(dir: &Path) -> Result<Option<Identity>, TlsError> {
    let (cert_path, key_path) = (dir.join(CERT_FILE), dir.join(OLD_KEY_FILE));
    let (Ok(cert), Ok(key)) = (std::fs::read(&cert_path), std::fs::read(&key_path)) else {
        return Ok(None);
    };
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key));
    match Identity::new(vec![CertificateDer::from(cert)], key) {
        Ok(identity) => {
            write_identity(dir, &identity, &mut |_| Ok(()))?;
            // Only once the one file is down; a cut before this leaves both, the file wins.
            std::fs::remove_file(&key_path).map_err(|e| io_error(&key_path, e))?;
            crate::info!("tls key and certificate now kept together in {IDENTITY_FILE}");
            Ok(Some(identity))
        }
        Err(e) => {
            crate::warn!("the stored key and certificate are unusable ({e}); making a new pair");
            Ok(None)
        }
    }
}

fn write_identity(
    dir: &Path,
    identity: &Identity,
    after: &mut dyn FnMut(Step) -> io::Result<()>,
) -> Result<(), TlsError> {
    let path = dir.join(IDENTITY_FILE);
    state::write_atomic_steps(&path, identity.to_pem().as_bytes(), 0o600, after)
        .map_err(|e| io_error(&path, e))
}

/// `tls-cert.der` says which certificate is served; rewritten only when it differs.
fn publish_cert(dir: &Path, identity: &Identity) -> Result<(), TlsError> {
    let path = dir.join(CERT_FILE);
    if std::fs::read(&path).is_ok_and(|old| old == identity.cert_der()) {
        return Ok(());
    }
    state::write_atomic(&path, identity.cert_der(), 0o644).map_err(|e| io_error(&path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("thinshadow-tls-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn made_once_then_reloaded() {
        let dir = temp_dir("once");
        let source = Source::Made(KeyType::Ecdsa);
        let first = load_or_create(&dir, &source).unwrap();
        let second = load_or_create(&dir, &source).unwrap();
        assert_eq!(first.fingerprint(), second.fingerprint());
        assert_eq!(first.public_key, second.public_key);
        assert_eq!(first.fingerprint().len(), 32 * 3 - 1);
        assert_eq!(
            std::fs::read(dir.join(CERT_FILE)).unwrap(),
            first.cert_der()
        );
        // The key file is private.
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join(IDENTITY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // An existing identity is kept whatever type new ones would be.
        let third = load_or_create(&dir, &Source::Made(KeyType::Rsa)).unwrap();
        assert_eq!(third.fingerprint(), first.fingerprint());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_matching_old_pair_is_kept_and_moved_into_one_file() {
        let dir = temp_dir("old");
        state::ensure_dir(&dir).unwrap();
        let old = Identity::generate(KeyType::Ecdsa).unwrap();
        let pem = old.to_pem();
        let key = PrivateKeyDer::from_pem_slice(pem.as_bytes()).unwrap();
        std::fs::write(dir.join(OLD_KEY_FILE), key.secret_der()).unwrap();
        std::fs::write(dir.join(CERT_FILE), old.cert_der()).unwrap();
        let loaded = load_or_create(&dir, &Source::Made(KeyType::Rsa)).unwrap();
        assert_eq!(loaded.fingerprint(), old.fingerprint());
        assert!(!dir.join(OLD_KEY_FILE).exists());
        assert!(dir.join(IDENTITY_FILE).exists());
        let again = load_or_create(&dir, &Source::Made(KeyType::Rsa)).unwrap();
        assert_eq!(again.fingerprint(), old.fingerprint());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    use rustls::pki_types::pem::PemObject;

    #[test]
    fn a_mismatched_old_pair_is_replaced_not_served() {
        // What a power cut between the two writes of older versions left behind.
        let dir = temp_dir("mismatch");
        state::ensure_dir(&dir).unwrap();
        let a = Identity::generate(KeyType::Ecdsa).unwrap();
        let b = Identity::generate(KeyType::Ecdsa).unwrap();
        let b_pem = b.to_pem();
        let b_key = PrivateKeyDer::from_pem_slice(b_pem.as_bytes()).unwrap();
        std::fs::write(dir.join(OLD_KEY_FILE), b_key.secret_der()).unwrap();
        std::fs::write(dir.join(CERT_FILE), a.cert_der()).unwrap();
        let loaded = load_or_create(&dir, &Source::Made(KeyType::Ecdsa)).unwrap();
        assert_ne!(loaded.fingerprint(), a.fingerprint());
        loaded.server_config().unwrap();
        assert_eq!(
            std::fs::read(dir.join(CERT_FILE)).unwrap(),
            loaded.cert_der()
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
