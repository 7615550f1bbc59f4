//! The TLS identity as a client meets it: a made RSA-2048 certificate that NLA and TLS
//! logins bind to, and a provisioned RSA chain that is the one served, with the
//! fingerprint `creds --json` prints.

use crate::common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::agent::{self, Options, USER};
use common::client::{self, ClientConfig, Security, TestClient};
use rustls::pki_types::CertificateDer;
use thinshadow::net::{KeyType, tls};

fn temp_dir(name: &str) -> PathBuf {
    common::temp_dir(module_path!(), name)
}

#[test]
fn nla_and_tls_logins_work_with_a_made_rsa_certificate() {
    let options = Options {
        key_type: KeyType::Rsa,
        ..Options::default()
    };
    let agent = agent::start(options, || {
        thinshadow::screen::open("synthetic:64x48").unwrap()
    });
    // The test client checks that CredSSP's public key echo is the certificate's key.
    for security in [Security::Nla, Security::Tls] {
        let client = TestClient::connect(&ClientConfig::new(
            agent.addr,
            USER,
            &agent.password,
            security,
        ));
        assert!(client.is_ok(), "{security:?}: {:?}", client.err());
    }
}

/// A CA (ECDSA) and an RSA-2048 leaf it signed, the key as PKCS#1 ("RSA PRIVATE KEY"):
/// what a fleet's own PKI hands out.
fn provisioned(dir: &Path) -> (PathBuf, PathBuf, Vec<u8>) {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::pkcs8::EncodePrivateKey;
    let ca_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "fleet ca");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let ca = rcgen::Issuer::new(ca_params, ca_key);

    let mut rng = getrandom4::rand_core::UnwrapErr(getrandom4::SysRng);
    let rsa_key = rsa::RsaPrivateKey::new(&mut rng, 2048).unwrap();
    let pkcs8 = rsa_key.to_pkcs8_der().unwrap();
    let leaf_key = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(
        &pkcs8.as_bytes().to_vec().into(),
        &rcgen::PKCS_RSA_SHA256,
    )
    .unwrap();
    let leaf_params = rcgen::CertificateParams::new(vec!["tc-0042.example".into()]).unwrap();
    let leaf = leaf_params.signed_by(&leaf_key, &ca).unwrap();

    let cert_path = dir.join("cert.pem");
    std::fs::write(&cert_path, format!("{}{}", leaf.pem(), ca_cert.pem())).unwrap();
    let key_path = dir.join("key.pem");
    let pkcs1 = rsa_key.to_pkcs1_pem(rsa::pkcs1::LineEnding::LF).unwrap();
    std::fs::write(&key_path, pkcs1.as_bytes()).unwrap();
    (cert_path, key_path, leaf.der().to_vec())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// X.224 negotiation asking for TLS, then a TLS handshake; the chain the server presented.
fn served_chain(addr: SocketAddr) -> Vec<CertificateDer<'static>> {
    let mut sock = TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // TPKT, X.224 Connection Request, RDP_NEG_REQ with PROTOCOL_SSL.
    sock.write_all(&[3, 0, 0, 19, 14, 0xe0, 0, 0, 0, 0, 0, 1, 0, 8, 0, 1, 0, 0, 0])
        .unwrap();
    let mut header = [0u8; 4];
    sock.read_exact(&mut header).unwrap();
    let mut confirm = vec![0u8; usize::from(u16::from_be_bytes([header[2], header[3]])) - 4];
    sock.read_exact(&mut confirm).unwrap();
    // RDP_NEG_RSP (type 2) selecting PROTOCOL_SSL.
    assert_eq!(confirm[7], 2, "{confirm:?}");
    assert_eq!(confirm[11], 1, "{confirm:?}");
    let name = rustls::pki_types::ServerName::try_from("tc-0042.example").unwrap();
    let mut tls = rustls::ClientConnection::new(client::tls_config().unwrap(), name).unwrap();
    while tls.is_handshaking() {
        tls.complete_io(&mut sock).unwrap();
    }
    tls.peer_certificates().unwrap().to_vec()
}

fn wait_listening(addr: SocketAddr, agent: &mut std::process::Child) {
    let until = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(addr).is_err() {
        assert!(agent.try_wait().unwrap().is_none(), "the agent exited");
        assert!(Instant::now() < until, "the agent never listened");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn creds_fingerprint(state: &Path) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_thinshadow"))
        .args(["creds", "--json", "--state-dir", state.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let json = String::from_utf8(out.stdout).unwrap();
    let (_, rest) = json.split_once(r#""cert_sha256":""#).expect("cert_sha256");
    rest.split('"').next().unwrap().to_owned()
}

#[test]
fn a_provisioned_rsa_chain_is_served_and_creds_prints_its_fingerprint() {
    let dir = temp_dir("provisioned");
    let (cert, key, leaf_der) = provisioned(&dir);
    let state = dir.join("state");
    let config = dir.join("empty.toml");
    std::fs::write(&config, "").unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let mut agent = std::process::Command::new(env!("CARGO_BIN_EXE_thinshadow"))
        .args(["serve", "--listen", &addr.to_string()])
        .args([
            "--screen",
            "synthetic:64x48",
            "--config",
            config.to_str().unwrap(),
        ])
        .args(["--state-dir", state.to_str().unwrap()])
        .args(["--control", dir.join("control.sock").to_str().unwrap()])
        .args(["--tls-cert", cert.to_str().unwrap()])
        .args(["--tls-key", key.to_str().unwrap()])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_listening(addr, &mut agent);
    let chain = served_chain(addr);
    let printed = creds_fingerprint(&state);
    agent.kill().unwrap();
    agent.wait().unwrap();

    assert_eq!(chain.len(), 2, "the intermediate is served too");
    assert_eq!(chain[0].as_ref(), leaf_der.as_slice());
    assert_eq!(printed, tls::fingerprint(&leaf_der));
    // No identity of its own was made beside the provisioned one.
    assert!(
        !state
            .join(thinshadow::net::tls_store::IDENTITY_FILE)
            .exists()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_provisioned_key_of_another_certificate_stops_the_start_with_a_clear_error() {
    let dir = temp_dir("mismatch");
    let (cert, _, _) = provisioned(&dir);
    let other = dir.join("other");
    std::fs::create_dir_all(&other).unwrap();
    let (_, wrong_key, _) = provisioned(&other);
    let config = dir.join("empty.toml");
    std::fs::write(&config, "").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_thinshadow"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--screen",
            "synthetic:64x48",
        ])
        .args(["--config", config.to_str().unwrap()])
        .args(["--state-dir", dir.join("state").to_str().unwrap()])
        .args(["--control", dir.join("control.sock").to_str().unwrap()])
        .args(["--tls-cert", cert.to_str().unwrap()])
        .args(["--tls-key", wrong_key.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("KeyMismatch"), "{err}");
    assert!(err.contains("cert.pem"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
