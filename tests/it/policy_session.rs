//! The access policy in the running agent: consent over the real control socket, the waiting
//! screen, input withheld, refusal and termination codes, with the in-process IronRDP client.

use crate::common;

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::agent::{self, Options, RunningAgent, USER};
use common::client::{ClientConfig, Image, RunError, Security, TestClient};
use thinshadow::control::Request;
use thinshadow::control::client::{Client, ClientError};
use thinshadow::control::json::{self, Value};
use thinshadow::policy::{AccessSettings, Ask, Mode, Modes, Screen, TimeoutAction, WaitReason};
use thinshadow::screen::{Placeholder, Source, Synthetic, synthetic_pixel};

const WAIT: Duration = Duration::from_secs(20);
const W: u16 = 320;
const H: u16 = 240;
const DENIED: u32 = 0x7;
const BY_USER: u32 = 0xB;

fn socket_path(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("policy-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("control.sock")
}

fn settings(auto: Duration, by_request: Duration) -> AccessSettings {
    AccessSettings {
        allow_auto: Ask {
            timeout: auto,
            on_timeout: TimeoutAction::Start,
        },
        allow_by_request: Ask {
            timeout: by_request,
            on_timeout: TimeoutAction::Refuse,
        },
    }
}

/// An agent with the policy on, a synthetic screen frozen at phase 0, and its socket path.
fn start(name: &str, management: Mode, access: AccessSettings) -> (RunningAgent, PathBuf) {
    let path = socket_path(name);
    let options = Options {
        access,
        modes: Modes {
            management,
            remote_screen: Mode::AllowByRequest,
        },
        control: Some(path.clone()),
        ..Options::default()
    };
    let (tx, rx) = mpsc::channel();
    let agent = agent::start(options, move || {
        let (source, handle) = Synthetic::new(W, H);
        handle.freeze(0);
        tx.send(handle).unwrap();
        Box::new(source)
    });
    // The handle must outlive the test's use of the screen; leak it (tests are short).
    std::mem::forget(rx.recv().unwrap());
    (agent, path)
}

fn connect(agent: &RunningAgent) -> Result<TestClient, common::client::ConnectError> {
    TestClient::connect(&ClientConfig::new(
        agent.addr,
        USER,
        &agent.password,
        Security::Nla,
    ))
}

fn call(path: &Path, words: &str) -> Result<json::Object, ClientError> {
    let request = Request::from_args(&words.split(' ').collect::<Vec<_>>()).unwrap();
    let mut client = Client::connect(path, Some(Duration::from_secs(5)))?;
    client.call(&request).map(|(_, object)| object)
}

fn text<'a>(object: &'a json::Object, key: &str) -> Option<&'a str> {
    match json::get(object, key) {
        Some(Value::Str(s)) => Some(s),
        _ => None,
    }
}

fn shows_phase(image: &Image, phase: u32) -> bool {
    let (w, h) = (image.width(), image.height());
    (0..h).all(|y| (0..w).all(|x| image.pixel(x, y) == synthetic_pixel(w, h, phase, x, y)))
}

/// The waiting screen the agent draws, for `reason` with `left` seconds on the clock.
fn waiting_screen(reason: WaitReason, left: Option<u64>) -> Vec<u32> {
    let now = Instant::now();
    let lines = Screen::Waiting {
        reason,
        deadline: left.map(|s| now + Duration::from_secs(s)),
    }
    .lines(now);
    let mut placeholder = Placeholder::new(W, H);
    let text: Vec<&str> = lines.iter().map(String::as_str).collect();
    placeholder.set_text(&text);
    let frame = placeholder.frame().unwrap();
    frame
        .data
        .chunks_exact(4)
        .map(|px| u32::from_le_bytes([px[0], px[1], px[2], px[3]]) & 0x00FF_FFFF)
        .collect()
}

fn shows(image: &Image, want: &[u32]) -> bool {
    image.width() == W && image.height() == H && image.pixels().eq(want.iter().copied())
}

/// Waits until the client shows one of `screens`.
fn wait_for_waiting_screen(client: &mut TestClient, screens: &[Vec<u32>]) {
    let result = client.run_until(WAIT, |image| screens.iter().any(|s| shows(image, s)));
    assert!(result.is_ok(), "no waiting screen: {result:?}");
    assert!(
        !shows_phase(&client.image(), 0),
        "real pixels before access"
    );
}

/// The consent screens of the first ten seconds of a `timeout_secs` countdown.
fn consent_screens(timeout_secs: u64) -> Vec<Vec<u32>> {
    (timeout_secs.saturating_sub(10)..=timeout_secs)
        .map(|left| waiting_screen(WaitReason::Consent, Some(left)))
        .collect()
}

fn wait_for_real_screen(client: &mut TestClient) {
    let result = client.run_until(WAIT, |image| shows_phase(image, 0));
    assert!(result.is_ok(), "real screen never shown: {result:?}");
}

fn assert_ended_with(client: &mut TestClient, code: u32) {
    let result = client.run_until(WAIT, |_| false);
    match result {
        Err(RunError::Terminated { error_info, .. }) => assert_eq!(error_info, Some(code)),
        other => panic!("expected the server to end the session with {code:#x}, got {other:?}"),
    }
}

/// Either the connection fails with `code` or it ends with it right after.
fn assert_refused_with(agent: &RunningAgent, code: u32) {
    match connect(agent) {
        Err(e) => assert_eq!(e.error_info(), Some(code), "{e:?}"),
        Ok(mut client) => assert_ended_with(&mut client, code),
    }
}

#[test]
fn by_request_waits_on_the_waiting_screen_and_accept_brings_the_real_one() {
    let (agent, path) = start("accept", Mode::AllowByRequest, settings(WAIT, WAIT * 3));
    let mut client = connect(&agent).expect("login");
    wait_for_waiting_screen(&mut client, &consent_screens(60));

    let status = call(&path, "status").expect("status");
    assert_eq!(text(&status, "session"), Some("pending"));
    assert_eq!(text(&status, "pending"), Some("consent"));
    assert_eq!(json::get(&status, "input"), Some(&Value::Bool(false)));

    // No admin input reaches the thin client before access.
    client.send_key(0x1E, false, true).unwrap();
    client.send_key(0x1E, false, false).unwrap();
    client.send_mouse_move(10, 10).unwrap();
    client.pump_for(Duration::from_millis(300)).unwrap();
    assert!(agent.input.events.lock().unwrap().is_empty());

    // Through the CLI, as the thin client's shell would.
    let cli = std::process::Command::new(env!("CARGO_BIN_EXE_thinshadow"))
        .args(["accept", "--control"])
        .arg(&path)
        .output()
        .expect("thinshadow accept");
    assert!(cli.status.success(), "{cli:?}");
    assert_eq!(String::from_utf8_lossy(&cli.stdout), "{\"ok\":true}\n");
    wait_for_real_screen(&mut client);
    let status = call(&path, "status").expect("status");
    assert_eq!(text(&status, "session"), Some("started"));
    assert_eq!(text(&status, "screen"), Some("real"));

    // Now input flows.
    client.send_mouse_move(20, 30).unwrap();
    let deadline = Instant::now() + WAIT;
    while agent.input.events.lock().unwrap().is_empty() && Instant::now() < deadline {
        client.pump_for(Duration::from_millis(50)).unwrap();
    }
    assert!(!agent.input.events.lock().unwrap().is_empty());
}

#[test]
fn reject_ends_the_connection_as_denied() {
    let (agent, path) = start("reject", Mode::AllowByRequest, settings(WAIT, WAIT * 3));
    let mut client = connect(&agent).expect("login");
    wait_for_waiting_screen(&mut client, &consent_screens(60));
    call(&path, "reject consent").expect("reject");
    assert_ended_with(&mut client, DENIED);
    assert!(agent.input.events.lock().unwrap().is_empty());
    // Nothing to answer any more; the CLI says so and fails.
    assert!(call(&path, "accept").is_err());
    let cli = std::process::Command::new(env!("CARGO_BIN_EXE_thinshadow"))
        .args(["accept", "--control"])
        .arg(&path)
        .output()
        .expect("thinshadow accept");
    assert!(!cli.status.success(), "{cli:?}");
}

#[test]
fn allow_auto_starts_when_nobody_answers() {
    let (agent, path) = start(
        "auto",
        Mode::AllowAuto,
        settings(Duration::from_secs(2), WAIT),
    );
    let mut client = connect(&agent).expect("login");
    let status = call(&path, "status").expect("status");
    assert_ne!(text(&status, "session"), Some("none"), "{status:?}");
    wait_for_real_screen(&mut client);
    let status = call(&path, "status").expect("status");
    assert_eq!(text(&status, "session"), Some("started"));
}

#[test]
fn by_request_without_an_answer_is_refused() {
    let (agent, _path) = start(
        "noanswer",
        Mode::AllowByRequest,
        settings(WAIT, Duration::from_secs(1)),
    );
    assert_refused_with(&agent, DENIED);
}

#[test]
fn deny_refuses_every_connection() {
    let (agent, path) = start("deny", Mode::Deny, settings(WAIT, WAIT));
    assert_refused_with(&agent, DENIED);
    let status = call(&path, "status").expect("status");
    assert_eq!(text(&status, "management"), Some("deny"));
}

#[test]
fn terminate_ends_a_running_session() {
    let (agent, path) = start("terminate", Mode::AllowByRequest, settings(WAIT, WAIT * 3));
    let mut client = connect(&agent).expect("login");
    wait_for_waiting_screen(&mut client, &consent_screens(60));
    call(&path, "accept consent").expect("accept");
    wait_for_real_screen(&mut client);
    call(&path, "terminate").expect("terminate");
    assert_ended_with(&mut client, BY_USER);
}

#[test]
fn remote_screen_deny_waits_for_the_remote_session_to_end() {
    let (agent, path) = start("remote", Mode::AllowByRequest, settings(WAIT, WAIT * 3));
    call(&path, "remote-session started").expect("remote session");
    call(&path, "mode remote-screen deny").expect("mode (the tests run as root)");
    let mut client = connect(&agent).expect("login");
    wait_for_waiting_screen(&mut client, &consent_screens(60));
    call(&path, "accept").expect("accept");
    let remote_end = waiting_screen(WaitReason::RemoteSessionEnd, None);
    wait_for_waiting_screen(&mut client, std::slice::from_ref(&remote_end));
    client.send_mouse_move(5, 5).unwrap();
    client.pump_for(Duration::from_millis(300)).unwrap();
    assert!(agent.input.events.lock().unwrap().is_empty());
    call(&path, "remote-session ended").expect("remote session ended");
    wait_for_real_screen(&mut client);
}

#[test]
fn watch_streams_the_audit_events() {
    let (agent, path) = start("watch", Mode::AllowByRequest, settings(WAIT, WAIT * 3));
    let mut watcher = Client::connect(&path, Some(WAIT)).expect("connect");
    watcher.call(&Request::Watch).expect("watch");
    let mut client = connect(&agent).expect("login");
    wait_for_waiting_screen(&mut client, &consent_screens(60));
    call(&path, "accept").expect("accept");
    let mut seen = Vec::new();
    while !seen.iter().any(|e| e == "session-started") {
        let (_, event) = watcher.next_line().expect("event").expect("open");
        if let Some(name) = text(&event, "event") {
            seen.push(name.to_owned());
        }
    }
    assert!(seen.iter().any(|e| e == "consent-asked"), "{seen:?}");
    assert!(seen.iter().any(|e| e == "consent-answered"), "{seen:?}");
}
