//! Whole exchanges between [`Server`] and the test client, in every wrapping and version,
//! and the attacks of issue #13 (finding 1: short pubKeyAuth / authInfo without a MIC).

#![allow(clippy::indexing_slicing, reason = "tests index what they built")]

use super::client::{Client, Shape, Tweaks};
use super::ts_request::{STATUS_LOGON_FAILURE, TsRequest};
use super::{NlaError, Outcome, Server};

const KEY: &[u8] = &[
    0x30, 0x82, 0x01, 0x0a, 0x02, 0x82, 0x01, 0x01, 0x00, 0xc3, 0x5a,
];
const SHAPES: [Shape; 4] = [
    Shape::Bare,
    Shape::SpnegoNtlm,
    Shape::SpnegoNegoexFirst,
    Shape::SpnegoKerberosFirst,
];

fn server() -> Server {
    Server::new(
        "admin",
        "s3cret-Pass",
        KEY.to_vec(),
        "thin-01",
        [7; 8],
        0x01db_0102_0304_0506,
    )
}

/// Runs the exchange; the server's result on the last request the client sent.
fn run(mut client: Client) -> (Result<(), NlaError>, Vec<u8>) {
    let mut server = server();
    let mut request = client.first();
    for _ in 0..6 {
        let mut out = Vec::new();
        match server.step(&request, &mut out) {
            Ok(Outcome::Done) => return (Ok(()), out),
            Ok(Outcome::Continue) => {}
            Err(e) => return (Err(e), out),
        }
        request = client
            .next(&out)
            .expect("client accepts the server's reply");
    }
    panic!("exchange did not end");
}

fn client(password: &str, version: u32, shape: Shape) -> Client {
    Client::new("Admin", password, KEY, version, shape)
}

fn assert_logon_failed(result: (Result<(), NlaError>, Vec<u8>), what: &str) {
    let (result, out) = result;
    assert!(
        matches!(result, Err(NlaError::Logon(_))),
        "{what}: {result:?}"
    );
    let reply = TsRequest::decode(&out).expect("an errorCode reply");
    assert_eq!(reply.error_code, Some(STATUS_LOGON_FAILURE), "{what}");
}

#[test]
fn right_password_logs_in_every_shape_and_version() {
    for shape in SHAPES {
        for version in 2..=6 {
            let (result, out) = run(client("s3cret-Pass", version, shape));
            assert_eq!(result, Ok(()), "{shape:?} v{version}");
            assert!(out.is_empty());
        }
    }
}

#[test]
fn wrong_password_is_a_failed_login_with_logon_failure() {
    for shape in SHAPES {
        for mic in [true, false] {
            let mut c = client("s3cret-pass", 6, shape);
            c.tweaks.no_mic = !mic;
            assert_logon_failed(run(c), "wrong password");
        }
    }
}

#[test]
fn other_user_with_the_password_fails() {
    let mut c = Client::new("root", "s3cret-Pass", KEY, 6, Shape::Bare);
    c.tweaks.no_mic = true;
    assert_logon_failed(run(c), "other user");
}

#[test]
fn finding_1_short_pub_key_auth_and_auth_info_without_mic() {
    for shape in SHAPES {
        for len in [0usize, 3, 15, 16, 17] {
            let mut c = client("s3cret-Pass", 6, shape);
            c.tweaks = Tweaks {
                no_mic: true,
                pub_key_auth: Some(vec![0x41; len]),
                ..Tweaks::default()
            };
            assert_logon_failed(run(c), "short pubKeyAuth");
            let mut c = client("s3cret-Pass", 3, shape);
            c.tweaks = Tweaks {
                no_mic: true,
                auth_info: Some(vec![0x41; len]),
                ..Tweaks::default()
            };
            assert_logon_failed(run(c), "short authInfo");
        }
    }
    // The attacker without the password fails at the proof already.
    let mut c = client("guess", 6, Shape::Bare);
    c.tweaks.no_mic = true;
    c.tweaks.pub_key_auth = Some(vec![1, 2, 3]);
    assert_logon_failed(run(c), "guess");
}

#[test]
fn tampered_fields_after_the_proof_fail_as_logins() {
    let cases: Vec<(&str, Tweaks)> = vec![
        (
            "wrong MIC",
            Tweaks {
                wrong_mic: true,
                ..Tweaks::default()
            },
        ),
        (
            "other user in TSCredentials",
            Tweaks {
                creds_user: Some("root".into()),
                ..Tweaks::default()
            },
        ),
        (
            "cut AUTHENTICATE",
            Tweaks {
                cut_authenticate: Some(60),
                ..Tweaks::default()
            },
        ),
        (
            "flipped session key",
            Tweaks {
                flip_authenticate: Some((usize::MAX, 0x10)),
                ..Tweaks::default()
            },
        ),
    ];
    for (what, tweaks) in cases {
        for shape in [Shape::Bare, Shape::SpnegoNtlm] {
            let mut c = client("s3cret-Pass", 6, shape);
            c.tweaks = tweaks.clone();
            assert_logon_failed(run(c), what);
        }
    }
}

#[test]
fn every_byte_of_the_authenticate_matters_or_is_harmless() {
    // Flipping any byte either still logs in (version, padding) or is a failed login.
    let len = {
        let mut probe = client("s3cret-Pass", 6, Shape::Bare);
        let mut s = server();
        let mut out = Vec::new();
        s.step(&probe.first(), &mut out).unwrap();
        let req = TsRequest::decode(&probe.next(&out).unwrap()).unwrap();
        req.nego_token.unwrap().len()
    };
    let mut failed = 0;
    for i in 0..len {
        let mut c = client("s3cret-Pass", 6, Shape::Bare);
        c.tweaks.flip_authenticate = Some((i, 0x01));
        let (result, _) = run(c);
        assert!(
            matches!(result, Ok(()) | Err(NlaError::Logon(_))),
            "byte {i}: {result:?}"
        );
        failed += usize::from(result.is_err());
    }
    // Only the Version field (8 bytes) and the workstation name are outside every check.
    assert!(failed >= len - 8 - 20, "{failed} of {len}");
}

#[test]
fn mech_list_mic_is_checked() {
    for shape in [
        Shape::SpnegoNtlm,
        Shape::SpnegoNegoexFirst,
        Shape::SpnegoKerberosFirst,
    ] {
        let mut c = client("s3cret-Pass", 6, shape);
        c.tweaks.wrong_mech_list_mic = true;
        assert_logon_failed(run(c), "wrong mechListMIC");
    }
    // Without one: fine when NTLM was the client's first choice, a failure after a downgrade.
    let mut c = client("s3cret-Pass", 6, Shape::SpnegoNtlm);
    c.tweaks.no_mech_list_mic = true;
    assert_eq!(run(c).0, Ok(()));
    let mut c = client("s3cret-Pass", 6, Shape::SpnegoNegoexFirst);
    c.tweaks.no_mech_list_mic = true;
    assert_logon_failed(run(c), "downgrade without mechListMIC");
}

#[test]
fn spnego_without_ntlm_is_refused_cleanly() {
    let (token, _) = super::spnego::init(
        &[super::spnego::KERBEROS, super::spnego::NEGOEX],
        Some(b"krb"),
    );
    let mut req = Vec::new();
    TsRequest {
        version: 6,
        nego_token: Some(token),
        ..TsRequest::default()
    }
    .encode(&mut req);
    let mut out = Vec::new();
    let result = server().step(&req, &mut out);
    assert!(matches!(result, Err(NlaError::Protocol(_))), "{result:?}");
    let reply = TsRequest::decode(&out).unwrap();
    let resp = reply.nego_token.unwrap();
    assert!(super::spnego::parse_resp(&resp).is_err(), "a reject");
}

#[test]
fn ntlmv1_and_anonymous_are_refused() {
    // An AUTHENTICATE with a 24-byte NT response (NTLMv1) and one with none (anonymous).
    for nt_len in [24u16, 0] {
        let mut msg = super::ntlm::SIGNATURE.to_vec();
        msg.extend_from_slice(&3u32.to_le_bytes());
        for (len, at) in [
            (24u16, 64u32),
            (nt_len, 88),
            (0, 64),
            (0, 64),
            (0, 64),
            (0, 64),
        ] {
            msg.extend_from_slice(&len.to_le_bytes());
            msg.extend_from_slice(&len.to_le_bytes());
            msg.extend_from_slice(&at.to_le_bytes());
        }
        msg.extend_from_slice(&0xe2088297u32.to_le_bytes());
        msg.resize(112, 0x11);
        let mut req = Vec::new();
        TsRequest {
            version: 6,
            nego_token: Some(msg),
            pub_key_auth: Some(vec![0; 48]),
            ..TsRequest::default()
        }
        .encode(&mut req);
        let mut s = server();
        let mut out = Vec::new();
        s.step(&client("x", 6, Shape::Bare).first(), &mut out)
            .unwrap();
        out.clear();
        assert_eq!(
            s.step(&req, &mut out),
            Err(NlaError::Logon(
                "not an NTLMv2 response (anonymous, LM or NTLMv1)"
            ))
        );
    }
}

#[test]
fn garbage_before_the_challenge_is_a_protocol_error() {
    for frame in [
        &b"\x30\x03\x02\x01\x06"[..],
        b"\x30\x00",
        b"\x31\x00",
        b"\x30\x0b\xa0\x03\x02\x01\x06\xa1\x04\x30\x02\x30\x00",
    ] {
        let mut out = Vec::new();
        assert!(
            matches!(server().step(frame, &mut out), Err(NlaError::Protocol(_))),
            "{frame:?}"
        );
    }
}
