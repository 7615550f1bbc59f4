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

fn temp_dir(name: &str) -> std::path::PathBuf {
    common::temp_dir(module_path!(), name)
}

fn call(path: &std::path::Path, words: &str) -> String {
    use thinshadow::control::Request;
    use thinshadow::control::client::Client;
    let request = Request::from_args(&words.split(' ').collect::<Vec<_>>()).unwrap();
    let mut client = Client::connect(path, Some(Duration::from_secs(5))).unwrap();
    match client.call(&request) {
        Ok((line, _)) => line,
        Err(e) => e.to_string(),
    }
}

/// src/agent/access.rs:23-35: a policy end (terminate, reject, `mode management deny`) waits
/// for `Event::Accepted` when the connection is not active, and `activated`
/// (src/agent/mod.rs:764) cleared `handshake_deadline` for good at the first activation. So
/// when the thin client's screen changes size, the agent sends Deactivate All and the admin's
/// client simply never answers the reactivation: `thinshadow terminate` says ok but the
/// connection is never closed, the session is never dropped, and every later admin is
/// refused as "another admin session is active" — for as long as the socket stays open.
#[test]
fn a_session_stalled_in_reactivation_is_ended_by_terminate() {
    use common::agent::{self, Options, USER};
    use common::client::{ClientConfig, Security, TestClient};
    use thinshadow::policy::{Mode, Modes};
    use thinshadow::screen::{Synthetic, synthetic_pixel};

    let dir = temp_dir("reactivation");
    let control = dir.join("control.sock");
    let (tx, rx) = std::sync::mpsc::channel();
    let options = Options {
        access: agent::immediate(),
        modes: Modes {
            management: Mode::AllowAuto,
            remote_screen: Mode::AllowAuto,
        },
        control: Some(control.clone()),
        ..Options::default()
    };
    let agent = agent::start(options, move || {
        let (source, handle) = Synthetic::new(160, 120);
        handle.freeze(0);
        tx.send(handle).unwrap();
        Box::new(source)
    });
    let screen = rx.recv().unwrap();
    let mut a = TestClient::connect(&ClientConfig::new(
        agent.addr,
        USER,
        &agent.password,
        Security::Nla,
    ))
    .expect("admin A logs in");
    let real = |image: &common::client::Image| {
        (0..image.height()).all(|y| {
            (0..image.width()).all(|x| {
                image.pixel(x, y) == synthetic_pixel(image.width(), image.height(), 0, x, y)
            })
        })
    };
    a.run_until(Duration::from_secs(20), real)
        .expect("A gets the screen");
    // A stops answering; the thin client's screen changes size: the agent reactivates.
    screen.resize(200, 120);
    std::thread::sleep(Duration::from_millis(1500));
    let reply = call(&control, "terminate");
    assert!(reply.contains("\"ok\":true"), "terminate: {reply}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if call(&control, "terminate").contains("no admin session") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "10 s after terminate the stalled admin still holds the session; status: {}",
            call(&control, "status")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(a);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The slot rule on a real agent (defaults: 8 slots, 3 per address, idle after 3 s):
/// eight sockets from 127.0.0.1-3 that each send one byte of a valid X.224 Connection
/// Request a second are never idle, so the admin from 127.0.0.9 is closed before TLS
/// ("every handshake slot is busy"). Re-opened at each 15 s handshake timeout, this keeps
/// remote management down without the password.
#[test]
fn trickling_sockets_do_not_keep_the_admin_out_on_a_real_agent() {
    use common::agent::{self, Options, USER};
    use common::client::{ClientConfig, Security, TestClient, connect_from};
    use std::io::Write;
    use std::net::Ipv4Addr;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let agent = agent::start_frozen(
        Options {
            max_handshakes: 8,
            handshakes_per_address: 3,
            handshake_idle: Duration::from_secs(3),
            handshake_timeout: Duration::from_secs(15),
            ..Options::default()
        },
        160,
        120,
    );
    let mut socks = Vec::new();
    for n in 0..8u8 {
        socks.push(connect_from(Ipv4Addr::new(127, 0, 0, n / 3 + 1), agent.addr).unwrap());
    }
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = Arc::clone(&stop);
    let trickler = std::thread::spawn(move || {
        const CR: [u8; 19] = [
            0x03, 0x00, 0x00, 0x13, 0x0e, 0xe0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x08,
            0x00, 0x03, 0x00, 0x00, 0x00,
        ];
        for i in 0..12 {
            if stop2.load(Ordering::Relaxed) {
                break;
            }
            for s in &mut socks {
                let _ = s.write_all(&CR[i..i + 1]);
            }
            std::thread::sleep(Duration::from_secs(1));
        }
        drop(socks);
    });
    std::thread::sleep(Duration::from_secs(5));
    let mut cfg = ClientConfig::new(agent.addr, USER, &agent.password, Security::Nla);
    cfg.source = Some(Ipv4Addr::new(127, 0, 0, 9));
    let result = TestClient::connect(&cfg);
    stop.store(true, Ordering::Relaxed);
    trickler.join().unwrap();
    assert!(
        result.is_ok(),
        "the admin from another address is refused while 8 sockets trickle: {:?}",
        result.err()
    );
}

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
