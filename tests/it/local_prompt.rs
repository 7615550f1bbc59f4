//! The local prompt in the running agent, on an Xvfb-style screen file (the host has no fb0):
//! a logged-in admin's request puts the box on the screen, an answer on the control socket
//! turns it into the indicator, the end of the session and the agent's exit give every byte
//! back. (Keys from a real evdev keyboard are the QEMU board's part: scripts/test-board.sh.)

use crate::common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::agent::{self, Options, RunningAgent, USER};
use common::client::{ClientConfig, RunError, Security, TestClient};
use thinshadow::agent::PromptConfig;
use thinshadow::control::Request;
use thinshadow::control::client::Client;
use thinshadow::policy::{AccessSettings, Mode, Modes, Question};
use thinshadow::prompt::{BORDER, View, compose};
use thinshadow::screen::Rect;

const W: u16 = 640;
const H: u16 = 480;
const WAIT: Duration = Duration::from_secs(20);
const BY_USER: u32 = 0xB;
/// Xvfb's header (25 big-endian words), a window name, an empty colormap, then the pixels.
const HEADER: usize = 100 + 8;

fn dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("prompt-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("input")).unwrap();
    dir
}

/// A 640x480 XRGB8888 screen file with a busy picture.
fn screen_file(path: &Path) -> Vec<u8> {
    let mut h = [0u32; 25];
    h[0] = HEADER as u32;
    h[1] = 7; // version
    h[2] = 2; // ZPixmap
    h[3] = 24;
    h[4] = u32::from(W);
    h[5] = u32::from(H);
    h[11] = 32;
    h[12] = u32::from(W) * 4;
    h[13] = 4; // TrueColor
    (h[14], h[15], h[16]) = (0xFF_0000, 0xFF00, 0xFF);
    let mut bytes: Vec<u8> = h.iter().flat_map(|v| v.to_be_bytes()).collect();
    bytes.extend_from_slice(b"screen0\0");
    for y in 0..u32::from(H) {
        for x in 0..u32::from(W) {
            bytes.extend_from_slice(&((x * 3) ^ (y << 9) ^ (x * y)).to_le_bytes());
        }
    }
    std::fs::write(path, &bytes).unwrap();
    bytes
}

fn start(dir: &Path) -> (RunningAgent, PathBuf, PathBuf, Vec<u8>) {
    start_on(dir, true)
}

/// The agent on `dir`'s screen file: a new one with `fresh`, else the one there.
fn start_on(dir: &Path, fresh: bool) -> (RunningAgent, PathBuf, PathBuf, Vec<u8>) {
    let screen = dir.join("Xvfb_screen0");
    let original = if fresh {
        screen_file(&screen)
    } else {
        std::fs::read(&screen).unwrap()
    };
    let control = dir.join("control.sock");
    let spec = format!("xwd:{}", screen.display());
    let options = Options {
        access: AccessSettings::default(),
        modes: Modes {
            management: Mode::AllowByRequest,
            remote_screen: Mode::AllowByRequest,
        },
        control: Some(control.clone()),
        local_prompt: Some(PromptConfig {
            screen: spec.clone(),
            // No keyboard here: the prompt still shows, the control socket answers.
            input_dir: dir.join("input"),
            defer_to_ui: false,
            leftover: Some(dir.join("prompt-box")),
        }),
        ..Options::default()
    };
    let agent = agent::start(options, move || thinshadow::screen::open(&spec).unwrap());
    (agent, screen, control, original)
}

fn connect(agent: &RunningAgent) -> TestClient {
    let config = ClientConfig::new(agent.addr, USER, &agent.password, Security::Nla);
    TestClient::connect(&config).expect("login")
}

fn call(path: &Path, words: &str) {
    let request = Request::from_args(&words.split(' ').collect::<Vec<_>>()).unwrap();
    let mut client = Client::connect(path, Some(Duration::from_secs(5))).unwrap();
    client.call(&request).expect(words);
}

/// Where the agent draws `view` on the 640x480 screen.
fn rect_of(view: &View) -> Rect {
    let style = view.style().unwrap();
    compose(style, &view.lines(), W, H).unwrap().rect
}

fn pixel(bytes: &[u8], x: u16, y: u16) -> u32 {
    let i = HEADER + (usize::from(y) * usize::from(W) + usize::from(x)) * 4;
    u32::from_le_bytes(bytes[i..i + 4].try_into().unwrap())
}

/// The smallest rectangle holding every pixel that differs from `original`.
fn changed(bytes: &[u8], original: &[u8]) -> Option<Rect> {
    let (mut x0, mut y0, mut x1, mut y1) = (u16::MAX, u16::MAX, 0, 0);
    for y in 0..H {
        for x in 0..W {
            if pixel(bytes, x, y) != pixel(original, x, y) {
                (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
            }
        }
    }
    (x0 <= x1).then(|| Rect::new(x0, y0, x1 - x0 + 1, y1 - y0 + 1))
}

/// Pumps the client until the screen file's changes are exactly `want` (None: no change).
fn wait_for_changes(
    client: Option<&mut TestClient>,
    screen: &Path,
    original: &[u8],
    want: Option<Rect>,
) {
    let deadline = Instant::now() + WAIT;
    let mut client = client;
    loop {
        let now = changed(&std::fs::read(screen).unwrap(), original);
        if now == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "screen changes {now:?}, want {want:?}"
        );
        match client.as_mut() {
            Some(c) => match c.pump_for(Duration::from_millis(100)) {
                Ok(()) | Err(RunError::Terminated { .. }) => {}
                Err(e) => panic!("client: {e:?}"),
            },
            None => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

fn ask(left: u64) -> View {
    View::Ask {
        question: Question::Consent,
        admin: "127.0.0.1".parse().unwrap(),
        left: Some(left),
    }
}

#[test]
fn the_box_follows_the_request_and_the_screen_comes_back_whole() {
    let dir = dir("session");
    let (agent, screen, control, original) = start(&dir);
    let mut client = connect(&agent);

    // Asked: the question box, and nothing else, on the local screen.
    let question = rect_of(&ask(30));
    wait_for_changes(Some(&mut client), &screen, &original, Some(question));
    let bytes = std::fs::read(&screen).unwrap();
    assert_eq!(pixel(&bytes, question.x, question.y) & 0xFF_FFFF, BORDER);
    let last = (question.x + question.w - 1, question.y + question.h - 1);
    assert_eq!(pixel(&bytes, last.0, last.1) & 0xFF_FFFF, BORDER);
    // Recorded while it shows, for an agent after a kill -9.
    assert!(dir.join("prompt-box").exists());

    // Accepted on the control socket: the indicator at the top, the question's pixels back.
    call(&control, "accept consent");
    let indicator = rect_of(&View::Connected {
        admin: "127.0.0.1".parse().unwrap(),
    });
    wait_for_changes(Some(&mut client), &screen, &original, Some(indicator));
    // The admin sees what the user sees: the indicator is part of the mirrored screen.
    let result = client.run_until(WAIT, |image| {
        image.pixel(indicator.x, indicator.y) & 0xFF_FFFF == BORDER
    });
    assert!(
        result.is_ok(),
        "the admin never saw the indicator: {result:?}"
    );

    // Ended by the local user: every byte of the screen as before.
    call(&control, "terminate");
    match client.run_until(WAIT, |_| false) {
        Err(RunError::Terminated { error_info, .. }) => assert_eq!(error_info, Some(BY_USER)),
        other => panic!("expected the end of the session, got {other:?}"),
    }
    wait_for_changes(None, &screen, &original, None);
    assert_eq!(std::fs::read(&screen).unwrap(), original);
    assert!(!dir.join("prompt-box").exists(), "no box, no record");
    drop(agent);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_agent_stopping_mid_request_takes_the_box_away() {
    let dir = dir("stop");
    let (mut agent, screen, _control, original) = start(&dir);
    let mut client = connect(&agent);
    wait_for_changes(
        Some(&mut client),
        &screen,
        &original,
        Some(rect_of(&ask(30))),
    );
    agent.stop();
    assert_eq!(std::fs::read(&screen).unwrap(), original);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_box_left_by_a_killed_agent_is_taken_away_by_the_next() {
    use thinshadow::prompt::{Drawer, Style};
    let dir = dir("leftover");
    let screen = dir.join("Xvfb_screen0");
    let original = screen_file(&screen);
    // An agent draws the indicator and records it, then dies (kill -9: nothing restores).
    let spec = format!("xwd:{}", screen.display());
    let mut panel = thinshadow::screen::open_panel(&spec).unwrap();
    let mut drawer = Drawer::default();
    let lines = vec!["Remote administrator 10.0.2.2 connected".to_owned()];
    drawer
        .show(panel.as_mut(), Some((Style::Indicator, lines.as_slice())))
        .unwrap();
    let saved = drawer.saved().unwrap();
    std::fs::write(dir.join("prompt-box"), postcard::to_stdvec(&saved).unwrap()).unwrap();
    drop((drawer, panel));
    let left = std::fs::read(&screen).unwrap();
    assert_ne!(left, original, "the box is on the screen");

    // The next agent takes it away before anything else, and forgets the record.
    let (agent, screen, _control, _) = start_on(&dir, false);
    wait_for_changes(None, &screen, &original, None);
    assert_eq!(std::fs::read(&screen).unwrap(), original);
    assert!(!dir.join("prompt-box").exists());
    drop(agent);

    // A record that is garbage, or claims a box outside the screen: nothing drawn, no panic,
    // the record dropped.
    let mut huge = saved.clone();
    huge.bytes_per_pixel = usize::MAX / 2;
    let mut outside = saved;
    outside.rect.0 = W - outside.rect.2 / 2;
    for bad in [
        b"\x05garbage".to_vec(),
        postcard::to_stdvec(&outside).unwrap(),
        postcard::to_stdvec(&huge).unwrap(),
    ] {
        std::fs::write(dir.join("prompt-box"), bad).unwrap();
        let (agent, screen, _control, _) = start_on(&dir, false);
        assert_eq!(std::fs::read(&screen).unwrap(), original);
        assert!(!dir.join("prompt-box").exists());
        drop(agent);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
