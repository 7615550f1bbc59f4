//! Whole sessions between the real agent and an in-process IronRDP client, on loopback.

use crate::common;

use std::io::Write;
use std::net::TcpStream;
use std::sync::mpsc;
use std::time::Duration;

use common::agent::{self, Options, RunningAgent, USER};
use common::client::{
    ClientConfig, ConnectError, Image, MouseButton, RunError, STATUS_LOGON_FAILURE, Security,
    TestClient,
};
use thinshadow::input::InputEvent;
use thinshadow::screen::{Synthetic, SyntheticHandle, synthetic_pixel};

const WAIT: Duration = Duration::from_secs(20);

/// An agent serving a synthetic screen frozen at phase 0, and the handle that drives it.
fn agent_with_synthetic(width: u16, height: u16) -> (RunningAgent, SyntheticHandle) {
    let (tx, rx) = mpsc::channel();
    let agent = agent::start(Options::default(), move || {
        let (source, handle) = Synthetic::new(width, height);
        handle.freeze(0);
        tx.send(handle).unwrap();
        Box::new(source)
    });
    (agent, rx.recv().unwrap())
}

fn connect(agent: &RunningAgent, security: Security) -> Result<TestClient, ConnectError> {
    TestClient::connect(&ClientConfig::new(
        agent.addr,
        USER,
        &agent.password,
        security,
    ))
}

fn shows_phase(image: &Image, phase: u32) -> bool {
    let (w, h) = (image.width(), image.height());
    (0..h).all(|y| (0..w).all(|x| image.pixel(x, y) == synthetic_pixel(w, h, phase, x, y)))
}

fn first_difference(image: &Image, phase: u32) -> Option<(u16, u16, u32, u32)> {
    let (w, h) = (image.width(), image.height());
    (0..h)
        .flat_map(|y| (0..w).map(move |x| (x, y)))
        .map(|(x, y)| (x, y, image.pixel(x, y), synthetic_pixel(w, h, phase, x, y)))
        .find(|&(_, _, got, want)| got != want)
}

fn wait_for_phase(client: &mut TestClient, phase: u32) {
    let result = client.run_until(WAIT, |image| shows_phase(image, phase));
    assert!(
        result.is_ok(),
        "phase {phase} never shown: {result:?}; first difference (x, y, got, want): {:?}",
        first_difference(&client.image(), phase)
    );
}

#[test]
fn nla_login_shows_the_source_pixel_for_pixel() {
    let (agent, _screen) = agent_with_synthetic(320, 240);
    let mut client = connect(&agent, Security::Nla).expect("nla login");
    assert_eq!(client.desktop_size(), (320, 240));
    wait_for_phase(&mut client, 0);
    assert_eq!(client.stats().malformed_bitmaps, 0);
}

#[test]
fn tls_login_works_too() {
    let (agent, _screen) = agent_with_synthetic(256, 200);
    let mut client = connect(&agent, Security::Tls).expect("tls login");
    wait_for_phase(&mut client, 0);
}

#[test]
fn a_change_of_the_source_arrives() {
    let (agent, screen) = agent_with_synthetic(320, 240);
    let mut client = connect(&agent, Security::Nla).expect("login");
    wait_for_phase(&mut client, 0);
    screen.freeze(7);
    wait_for_phase(&mut client, 7);
}

#[test]
fn updates_are_bulk_compressed_when_the_client_asks() {
    use ironrdp_pdu::rdp::client_info::CompressionType;
    let (agent, screen) = agent_with_synthetic(320, 240);
    for kind in [
        CompressionType::K64,
        CompressionType::Rdp6,
        CompressionType::Rdp61,
    ] {
        let mut cfg = ClientConfig::new(agent.addr, USER, &agent.password, Security::Tls);
        cfg.compression = Some(kind);
        let mut client = TestClient::connect(&cfg).expect("login");
        wait_for_phase(&mut client, 0);
        // Later frames decode against the history the earlier ones left.
        for phase in [3, 0, 5] {
            screen.freeze(phase);
            wait_for_phase(&mut client, phase);
        }
        assert!(
            client.stats().compressed_updates > 0,
            "{kind:?}: nothing compressed"
        );
        client.disconnect();
        screen.freeze(0);
    }
}

#[test]
fn a_resize_is_followed() {
    let (agent, screen) = agent_with_synthetic(320, 240);
    let mut client = connect(&agent, Security::Nla).expect("login");
    wait_for_phase(&mut client, 0);
    screen.resize(400, 304);
    let result = client.run_until(WAIT, |image| {
        image.width() == 400 && image.height() == 304 && shows_phase(image, 0)
    });
    assert!(
        result.is_ok(),
        "resize not followed: {result:?}, now {:?}",
        client.desktop_size()
    );
    assert!(client.reactivations() >= 1);
}

#[test]
fn a_wrong_password_is_refused() {
    let (agent, _screen) = agent_with_synthetic(320, 240);
    let wrong = |security| {
        TestClient::connect(&ClientConfig::new(
            agent.addr,
            USER,
            "not-the-password",
            security,
        ))
    };
    match wrong(Security::Nla) {
        Err(ConnectError::AuthFailed { ntstatus, .. }) => {
            assert_eq!(ntstatus, Some(STATUS_LOGON_FAILURE))
        }
        Err(other) => panic!("nla: expected an auth failure, got {other:?}"),
        Ok(_) => panic!("nla: logged in with a wrong password"),
    }
    match wrong(Security::Tls) {
        Err(e) => assert!(
            e.is_auth_failure(),
            "tls: expected an auth failure, got {e:?}"
        ),
        Ok(mut client) => {
            // The refusal may land just after the client considers itself connected.
            let result = client.run_until(WAIT, |_| false);
            assert!(
                matches!(
                    result,
                    Err(RunError::Terminated {
                        error_info: Some(0x9),
                        ..
                    })
                ),
                "tls: {result:?}"
            );
        }
    }
    // The right password still works afterwards.
    connect(&agent, Security::Nla).expect("login after failures");
}

#[test]
fn a_second_client_is_refused_while_the_first_keeps_its_session() {
    let (agent, screen) = agent_with_synthetic(320, 240);
    let mut first = connect(&agent, Security::Nla).expect("first login");
    wait_for_phase(&mut first, 0);

    let refused = match connect(&agent, Security::Nla) {
        Err(ConnectError::Refused { error_info, .. }) => error_info,
        Err(other) => panic!("second client: expected a refusal, got {other:?}"),
        Ok(mut second) => match second.run_until(WAIT, |_| false) {
            Err(RunError::Terminated { error_info, .. }) => error_info,
            other => panic!("second client was not refused: {other:?}"),
        },
    };
    assert_eq!(
        refused,
        Some(0x7),
        "ERRINFO_SERVER_DENIED_CONNECTION expected"
    );

    screen.freeze(3);
    wait_for_phase(&mut first, 3);
}

#[test]
fn garbage_on_a_fresh_connection_does_not_disturb_a_session() {
    let (agent, screen) = agent_with_synthetic(320, 240);
    let mut client = connect(&agent, Security::Nla).expect("login");
    wait_for_phase(&mut client, 0);
    for garbage in [
        &b"\x16\x03\x01\x00\x05hello"[..],
        &[0xff; 4096][..],
        &b"\x03\x00\xff\xff"[..],
    ] {
        let mut stranger = TcpStream::connect(agent.addr).unwrap();
        let _ = stranger.write_all(garbage);
    }
    screen.freeze(5);
    wait_for_phase(&mut client, 5);
}

#[test]
fn client_input_reaches_the_sink_and_is_released_at_the_end() {
    let (agent, screen) = agent_with_synthetic(320, 240);
    let mut client = connect(&agent, Security::Nla).expect("login");
    wait_for_phase(&mut client, 0);
    client.send_key(0x1e, false, true).unwrap(); // A down
    client.send_key(0x1d, true, true).unwrap(); // right Ctrl down (E0 1D)
    client.send_mouse_move(100, 50).unwrap();
    client
        .send_mouse_button(MouseButton::Left, true, 100, 50)
        .unwrap();
    client.send_wheel(true, -120).unwrap();
    client.send_unicode(0x00e9, true).unwrap();
    client.send_sync(true, false, false).unwrap();
    let expected = [
        InputEvent::Key {
            scancode: 0x1e,
            extended: false,
            extended1: false,
            pressed: true,
        },
        InputEvent::Key {
            scancode: 0x1d,
            extended: true,
            extended1: false,
            pressed: true,
        },
        InputEvent::MouseMove { x: 100, y: 50 },
        InputEvent::MouseButton {
            button: thinshadow::input::MouseButton::Left,
            pressed: true,
            x: 100,
            y: 50,
        },
        InputEvent::Wheel {
            vertical: true,
            delta: -120,
        },
        InputEvent::Unicode {
            code: 0x00e9,
            pressed: true,
        },
        InputEvent::Sync {
            scroll: false,
            num: false,
            caps: true,
            kana: false,
        },
    ];
    let got = || agent.input.events.lock().unwrap().clone();
    let _ = client.run_until(Duration::from_secs(5), |_| got().len() >= expected.len());
    assert_eq!(got(), expected);
    // The sync made the sink report LEDs; the Set Keyboard Indicators PDU that follows must
    // leave the session working.
    screen.freeze(2);
    wait_for_phase(&mut client, 2);

    // Disconnect with A and the button still down: the sink must release them.
    drop(client);
    let deadline = std::time::Instant::now() + WAIT;
    while *agent.input.releases.lock().unwrap() == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        *agent.input.releases.lock().unwrap() >= 1,
        "nothing released after the session ended"
    );
}

#[test]
fn stopping_the_agent_tells_the_client_why() {
    let (mut agent, _screen) = agent_with_synthetic(320, 240);
    let mut client = connect(&agent, Security::Nla).expect("login");
    wait_for_phase(&mut client, 0);
    agent.stop();
    let result = client.run_until(WAIT, |_| false);
    assert!(
        matches!(
            result,
            Err(RunError::Terminated {
                error_info: Some(0x1),
                ..
            })
        ),
        "expected ERRINFO_RPC_INITIATED_DISCONNECT, got {result:?}"
    );
}

/// A cursor plane (as a compositor's on KMS) reaches the admin as RDP pointer updates: its
/// shape once, its moves as positions, and hidden when it goes.
#[test]
fn the_cursor_plane_becomes_the_clients_pointer() {
    use thinshadow::screen::CursorShape;
    let (agent, screen) = agent_with_synthetic(320, 240);
    // A 64x64 plane image with an opaque 6x9 block at (1, 1).
    let mut plane = vec![0u8; 64 * 64 * 4];
    for y in 1..10 {
        for x in 1..7 {
            let i = (y * 64 + x) * 4;
            plane[i..i + 4].copy_from_slice(&[0x11, 0x22, 0x33, 0xFF]);
        }
    }
    let shape = CursorShape::from_argb(&plane, 256, 64, 64, (0, 0)).unwrap();
    screen.set_cursor(Some((100, 60, shape)));
    let mut client = connect(&agent, Security::Nla).expect("nla login");
    let result = client.run_until_stats(WAIT, |s| {
        !s.pointer_shapes.is_empty() && s.pointer_positions.contains(&(100, 60))
    });
    assert!(
        result.is_ok(),
        "{result:?}: {:?}",
        client.stats().pointer_shapes
    );
    assert_eq!(
        client.stats().pointer_shapes,
        vec![(6, 9, 0, 0, [0x11, 0x22, 0x33, 0xFF])]
    );
    let shape = CursorShape::from_argb(&plane, 256, 64, 64, (0, 0)).unwrap();
    screen.set_cursor(Some((200, 90, shape)));
    let result = client.run_until_stats(WAIT, |s| s.pointer_positions.contains(&(200, 90)));
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(
        client.stats().pointer_shapes.len(),
        1,
        "the same shape is not sent again"
    );
    screen.set_cursor(None);
    let result = client.run_until_stats(WAIT, |s| s.pointers_hidden > 0);
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(client.stats().undecodable, 0);
}
