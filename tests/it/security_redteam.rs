//! Red-team regressions: each test performs an attack and asserts the outcome the design asks for.

use crate::common;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use thinshadow::policy::{Admit, Pending, SlotLimits, admit};

/// Issue 13: "An admin from another address always gets in while someone holds idle sockets."
/// A client that trickles one byte every two seconds is never "idle" (last_input is refreshed
/// by any byte read), and three addresses (127.0.0.1..3 on loopback, or any host with a few
/// IPs / an IPv6 /64) fill all 8 global slots with 3+3+2. The real admin is then refused
/// with `Full` for as long as the trickle lasts (each socket is re-opened when its 15 s
/// handshake timeout closes it).
#[test]
fn trickling_handshakes_from_three_addresses_do_not_lock_out_the_admin() {
    let t = Instant::now();
    let limits = SlotLimits::default();
    let mut held = Vec::new();
    for key in 0..limits.global {
        let last = (key / limits.per_address) as u8 + 1; // 127.0.0.1, .2, .3
        held.push(Pending {
            key,
            ip: IpAddr::from([127, 0, 0, last]),
            // Each sent a byte within the last two seconds: under idle_after (3 s).
            last_input: t + Duration::from_secs(8),
        });
    }
    let now = t + Duration::from_secs(10);
    let admin = IpAddr::from([192, 0, 2, 50]);
    let verdict = admit(limits, &held, admin, now);
    assert_ne!(
        verdict,
        Admit::Full,
        "a trickling attacker with 3 addresses holds every handshake slot; the admin is refused"
    );
}

/// Issue 13 asks that a flood of unauthenticated connections cannot push a real session's
/// audit record out of the kept files (default 1 MiB x (1 + 4) files). The limiter caps the
/// lines it *shows* at `total` (60) a window, but every tracked address that had a line left
/// out gets its own summary line when its window ends, and up to `addresses` (1024) are
/// tracked. An attacker with many source addresses (an IPv6 /64, or 127.0.0.0/8 locally)
/// making one connection per address per minute therefore writes ~1,085 lines a minute, not
/// ~60: at ~100 bytes a line the 5 MiB of kept audit files are flushed in under an hour.
#[test]
fn many_addresses_cannot_write_a_summary_line_each_past_the_total() {
    use thinshadow::policy::{AuditLimiter, AuditLimits};
    let limits = AuditLimits::default();
    let t = Instant::now();
    let mut limiter = AuditLimiter::new(limits, t);
    let mut lines = 0usize;
    let windows = 10u32;
    for w in 0..windows {
        let now = t + limits.window * w + Duration::from_secs(1);
        for i in 0..1024u32 {
            let ip = IpAddr::from(std::net::Ipv6Addr::new(
                0x2001,
                0xdb8,
                0,
                0,
                0,
                0,
                (i >> 16) as u16,
                i as u16,
            ));
            // One connection: its connected and disconnected lines.
            lines += usize::from(limiter.allow(ip, now));
            lines += usize::from(limiter.allow(ip, now));
        }
        lines += limiter
            .expired(t + limits.window * (w + 1) + Duration::from_millis(1500))
            .len();
    }
    let per_window = lines / windows as usize;
    assert!(
        per_window <= 2 * limits.total as usize,
        "{per_window} audit lines a window from unauthenticated connections (total is {})",
        limits.total
    );
}

// The stalled-reactivation terminate and the trickling-sockets slot rule are checked on
// the virtual clock (`core_clock.rs`), where their deadlines need no sleeping.

/// An MCS Send Data Request carrying a Font List PDU.
fn is_font_list(frame: &[u8]) -> bool {
    use ironrdp_core::decode;
    use ironrdp_pdu::mcs::SendDataRequest;
    use ironrdp_pdu::rdp::headers::{ShareControlHeader, ShareControlPdu, ShareDataPdu};
    use ironrdp_pdu::x224::X224;
    let Ok(data) = decode::<X224<SendDataRequest<'_>>>(frame) else {
        return false;
    };
    matches!(
        decode::<ShareControlHeader>(data.0.user_data.as_ref()),
        Ok(ShareControlHeader { share_control_pdu: ShareControlPdu::Data(d), .. })
            if matches!(d.share_data_pdu, ShareDataPdu::FontList(_))
    )
}

/// Server and IronRDP's client connector in memory, TLS security (the password is checked
/// only once finalization is over), until the client has sent its Request Control: the
/// server then waits for the Font List and keeps every other frame it gets. Junk frames from
/// this unauthenticated client must end the connection within the handshake budget, not
/// pile up.
#[test]
fn an_unauthenticated_client_cannot_park_megabytes_before_the_font_list() {
    use common::client::{ClientConfig, Security, connector_config};
    use ironrdp_connector::{ClientConnector, Sequence};
    use ironrdp_core::WriteBuf;
    use thinshadow::rdp::{Connection, Event, Settings};

    let mut server = Connection::new(Settings {
        user: "admin".into(),
        password: "the-real-password".into(),
        server_public_key: vec![4; 65],
        width: 640,
        height: 480,
    });
    // A wrong password: it is never checked before the Font List.
    let cfg = ClientConfig::new(
        "127.0.0.1:3389".parse().unwrap(),
        "admin",
        "wrong",
        Security::Tls,
    );
    let mut client =
        ClientConnector::new(connector_config(&cfg), "127.0.0.1:50000".parse().unwrap());
    let (mut to_client, mut buf) = (Vec::<u8>::new(), WriteBuf::new());
    let to_server = |server: &mut Connection, bytes: &[u8], to_client: &mut Vec<u8>| {
        let (mut out, mut events) = (Vec::new(), Vec::new());
        let result = server.receive(bytes, &mut out, &mut events);
        if events.contains(&Event::UpgradeToTls) {
            let leftover = server.take_leftover();
            let _ = server.receive(&leftover, &mut out, &mut events);
        }
        to_client.extend_from_slice(&out);
        result
    };
    let mut sent_request_control = false;
    for _ in 0..500 {
        if client.should_perform_security_upgrade() {
            client.mark_security_upgrade_as_done();
            continue;
        }
        if client.should_perform_multitransport() {
            buf.clear();
            let _ = client.skip_multitransport(&mut buf).unwrap();
            continue;
        }
        buf.clear();
        let written = match client.next_pdu_hint() {
            None => client.step_no_input(&mut buf).unwrap(),
            Some(hint) => {
                let Some((_, len)) = hint.find_size(&to_client).unwrap() else {
                    panic!("the client waits for more than the server sent");
                };
                let frame: Vec<u8> = to_client.drain(..len).collect();
                client.step(&frame, None, &mut buf).unwrap()
            }
        };
        if let Some(len) = written.size() {
            if is_font_list(&buf[..len]) {
                // Synchronize, Cooperate and Request Control are out: the Font List is held.
                sent_request_control = true;
                break;
            }
            to_server(&mut server, &buf[..len], &mut to_client).expect("a valid handshake step");
        }
    }
    assert!(
        sent_request_control,
        "the client never reached its Font List"
    );
    assert!(!server.is_authenticated());

    // 64 KiB X.224 data frames, not a Font List, until the server gives up.
    let mut junk = vec![0u8; 65_000];
    junk[..4].copy_from_slice(&[3, 0, (65_000u16 >> 8) as u8, (65_000u16 & 0xff) as u8]);
    junk[4..7].copy_from_slice(&[2, 0xf0, 0x80]);
    let mut sent = 0usize;
    let refused = loop {
        match to_server(&mut server, &junk, &mut to_client) {
            Err(e) => break e.to_string(),
            Ok(()) => sent += junk.len(),
        }
        assert!(
            sent < 8 << 20,
            "8 MiB of junk taken from an unauthenticated client"
        );
    };
    assert!(
        refused.contains("before the session is active"),
        "{refused}"
    );
    assert!(
        sent <= thinshadow::rdp::MAX_HANDSHAKE_BYTES,
        "{sent} bytes taken first"
    );
}
