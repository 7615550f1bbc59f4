//! Strangers at the door, over real sockets: garbage and locked-out sources end their own
//! connection only. The deadlines (stalls, slots freed by the timeout) are checked on a
//! virtual clock in `core_clock.rs`.

use crate::common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::agent::{self, Options};

fn synthetic() -> Box<dyn thinshadow::screen::Source> {
    thinshadow::screen::open("synthetic:320x240").expect("synthetic source")
}

/// Reads until the server closes; returns what it sent, or None if it kept the socket open.
fn read_until_closed(stream: &mut TcpStream, within: Duration) -> Option<Vec<u8>> {
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let deadline = Instant::now() + within;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) => return Some(got),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return Some(got),
        }
    }
    None
}

#[test]
fn garbage_instead_of_rdp_is_closed() {
    let agent = agent::start(Options::default(), synthetic);
    let mut stream = TcpStream::connect(agent.addr).unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert!(
        read_until_closed(&mut stream, Duration::from_secs(5)).is_some(),
        "garbage connection left open"
    );
}

#[test]
fn standard_rdp_security_only_gets_a_negotiation_failure() {
    let agent = agent::start(Options::default(), synthetic);
    let mut stream = TcpStream::connect(agent.addr).unwrap();
    // X.224 Connection Request with RDP_NEG_REQ asking for PROTOCOL_RDP (0) only.
    let request: [u8; 19] = [3, 0, 0, 19, 14, 0xe0, 0, 0, 0, 0, 0, 1, 0, 8, 0, 0, 0, 0, 0];
    stream.write_all(&request).unwrap();
    let reply =
        read_until_closed(&mut stream, Duration::from_secs(5)).expect("connection kept open");
    // TPKT + X.224 CC + RDP_NEG_FAILURE (type 3).
    assert!(reply.len() >= 19, "short reply {reply:?}");
    assert_eq!(reply[11], 3, "not an RDP_NEG_FAILURE: {reply:?}");
}

/// X.224 Connection Request asking for TLS only.
const TLS_REQUEST: [u8; 19] = [3, 0, 0, 19, 14, 0xe0, 0, 0, 0, 0, 0, 1, 0, 8, 0, 1, 0, 0, 0];

#[test]
fn a_locked_out_source_is_closed_before_tls_and_others_are_not() {
    use common::client::{ClientConfig, Security, TestClient};
    use thinshadow::policy::{Allowlist, LockoutPolicy};
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("handshake-lockout-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    thinshadow::state::ensure_dir(&dir).unwrap();
    let options = Options {
        keeper: Some(thinshadow::state::KeeperConfig {
            state_dir: dir.clone(),
            user: agent::USER.into(),
            port: 0,
            cert_sha256: "ab:cd".into(),
            rotation: Default::default(),
            hook: None,
            lockout: LockoutPolicy {
                after: 1,
                ..LockoutPolicy::default()
            },
            allow: Allowlist::all(),
        }),
        ..Options::default()
    };
    let agent = agent::start(options, synthetic);
    let password = thinshadow::state::read(&dir).unwrap().password;
    let from = |last: u8, password: &str| {
        let mut config = ClientConfig::new(agent.addr, agent::USER, password, Security::Tls);
        config.source = Some(std::net::Ipv4Addr::new(127, 0, 0, last));
        config
    };
    // One wrong password from 127.0.0.5: a lockout (after = 1).
    if let Ok(mut c) = TestClient::connect(&from(5, "wrong")) {
        assert!(
            c.pump_for(Duration::from_secs(5)).is_err(),
            "wrong password served"
        );
    }
    // That source is now closed before TLS, with no byte sent...
    let mut again = common::client::connect_from([127, 0, 0, 5].into(), agent.addr).unwrap();
    again.write_all(&TLS_REQUEST).unwrap();
    assert!(
        read_until_closed(&mut again, Duration::from_secs(5)).is_some_and(|b| b.is_empty()),
        "a locked-out source got an answer"
    );
    // ...while another source logs in at once.
    let client = TestClient::connect(&from(6, &password)).expect("another source is served");
    client.disconnect();
}
