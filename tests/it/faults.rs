//! Whole sessions through the fault wrappers of tests/common/faults.rs: choppy and cut
//! client streams, a screen that tears, resizes and fails, a state store whose writes fail
//! midway. Each time the agent ends that one connection cleanly or recovers, serves the next
//! client, lets no admin input through before consent, loses no mode, and keeps its buffers
//! under their bounds.

use crate::common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::agent::{self, Options, RunningAgent, USER};
use common::client::{ClientConfig, Security, TestClient};
use common::faults::{CALM_SIZE, Rng, StreamFaults, TearingSource, calm_pixel, failing_store};
use thinshadow::control::Request;
use thinshadow::control::client::Client;
use thinshadow::control::json::{self, Value};
use thinshadow::policy::{AccessSettings, Mode, Modes};
use thinshadow::rdp::MAX_FRAME;
use thinshadow::screen::Synthetic;

const WAIT: Duration = Duration::from_secs(20);
/// One read budget (256 KiB) on top of one unfinished frame.
const INPUT_BOUND: usize = 256 * 1024 + MAX_FRAME;
/// One turn's encode budget (256 KiB) plus the bitmap that crossed it, plus handshake PDUs.
const OUTPUT_BOUND: usize = 512 * 1024;

fn temp_dir(name: &str) -> PathBuf {
    common::temp_dir(module_path!(), name)
}

fn synthetic() -> Box<dyn thinshadow::screen::Source> {
    let (source, handle) = Synthetic::new(320, 240);
    handle.animate();
    std::mem::forget(handle);
    Box::new(source)
}

fn client(agent: &RunningAgent, password: &str, seed: u64) -> ClientConfig {
    let security = if seed.is_multiple_of(2) {
        Security::Tls
    } else {
        Security::Nla
    };
    let mut config = ClientConfig::new(agent.addr, USER, password, security);
    (config.width, config.height) = (320, 240);
    config
}

fn call(path: &Path, words: &str) -> json::Object {
    let request = Request::from_args(&words.split(' ').collect::<Vec<_>>()).unwrap();
    let mut client = Client::connect(path, Some(Duration::from_secs(5))).expect("control socket");
    let (_, reply) = client.call(&request).expect("control reply");
    reply
}

/// A control call's reply, or the agent's error message.
fn try_call(path: &Path, words: &str) -> Result<json::Object, String> {
    let request = Request::from_args(&words.split(' ').collect::<Vec<_>>()).unwrap();
    let mut client = Client::connect(path, Some(Duration::from_secs(5))).expect("control socket");
    match client.call(&request) {
        Ok((_, reply)) => Ok(reply),
        Err(thinshadow::control::client::ClientError::Refused(message)) => Err(message),
        Err(e) => panic!("{words}: {e:?}"),
    }
}

fn management_mode(path: &Path) -> String {
    match json::get(&call(path, "status"), "management") {
        Some(Value::Str(mode)) => mode.clone(),
        other => panic!("status without a management mode: {other:?}"),
    }
}

fn assert_bounded(agent: &RunningAgent) {
    let marks = &agent.watermarks;
    assert!(
        marks.input_buffered() <= INPUT_BOUND,
        "input buffer reached {} bytes",
        marks.input_buffered()
    );
    assert!(
        marks.output_queued() <= OUTPUT_BOUND,
        "output queue reached {} bytes",
        marks.output_queued()
    );
}

/// A clean client logs in, sees the screen and types: the agent still serves.
fn served_after(agent: &RunningAgent, password: &str) {
    let mut config = client(agent, password, 0);
    config.faults = None;
    let mut clean = TestClient::connect(&config).expect("the next client is served");
    clean
        .run_until(WAIT, |image| image.count(0) < image.pixels().count())
        .expect("frames after the faults");
    clean.disconnect();
}

#[test]
fn choppy_streams_carry_whole_sessions() {
    let agent = agent::start(Options::default(), synthetic);
    for seed in 1..=4 {
        let mut config = client(&agent, &agent.password, seed);
        config.faults = Some(StreamFaults::choppy(seed));
        let mut c = TestClient::connect(&config).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        c.run_until(WAIT, |image| image.count(0) < image.pixels().count())
            .unwrap_or_else(|e| panic!("seed {seed}: no frames: {e:?}"));
        let before = agent.input.events.lock().unwrap().len();
        c.send_key(0x1e, false, true).unwrap();
        c.send_key(0x1e, false, false).unwrap();
        c.pump_for(Duration::from_millis(300)).unwrap();
        assert!(
            agent.input.events.lock().unwrap().len() >= before + 2,
            "seed {seed}: keys lost"
        );
        c.disconnect();
    }
    assert_bounded(&agent);
}

#[test]
fn streams_cut_anywhere_end_only_their_connection_and_leak_no_input() {
    let path = temp_dir("cut").join("control.sock");
    let options = Options {
        access: AccessSettings::default(),
        // Nobody answers: consent stays pending (by-request), so no input may ever pass.
        modes: Modes {
            management: Mode::AllowByRequest,
            remote_screen: Mode::AllowByRequest,
        },
        control: Some(path.clone()),
        ..Options::default()
    };
    let agent = agent::start(options, synthetic);
    let mut rng = Rng::new(8);
    for seed in 1..=8 {
        let mut config = client(&agent, &agent.password, seed);
        config.faults = Some(StreamFaults {
            cut_after: Some(200 + rng.below(30_000) as usize),
            ..StreamFaults::choppy(seed)
        });
        // It may log in or not, depending on where the cut falls; either way it ends.
        if let Ok(mut c) = TestClient::connect(&config) {
            let _ = c.send_key(0x1e, false, true);
            let _ = c.send_mouse_move(10, 10);
            let _ = c.pump_for(Duration::from_secs(2));
        }
        assert!(
            agent.input.events.lock().unwrap().is_empty(),
            "seed {seed}: admin input reached the sink before consent"
        );
    }
    // The next admin still gets in once the local user says yes, and only then types.
    let mut config = client(&agent, &agent.password, 0);
    config.faults = None;
    let mut c = TestClient::connect(&config).expect("the next client is served");
    c.send_key(0x1e, false, true).unwrap();
    c.pump_for(Duration::from_millis(300)).unwrap();
    assert!(
        agent.input.events.lock().unwrap().is_empty(),
        "input before consent"
    );
    assert!(json::get(&call(&path, "accept"), "error").is_none());
    c.pump_for(Duration::from_millis(300)).unwrap();
    c.send_key(0x1e, false, false).unwrap();
    c.pump_for(Duration::from_millis(500)).unwrap();
    assert!(
        !agent.input.events.lock().unwrap().is_empty(),
        "input after consent lost"
    );
    c.disconnect();
    assert_bounded(&agent);
}

#[test]
fn a_tearing_resizing_failing_screen_heals_once_calm() {
    for seed in 1..=3 {
        let (source, control) = TearingSource::new(seed);
        let agent = agent::start(Options::default(), move || Box::new(source));
        let mut c = TestClient::connect(&client(&agent, &agent.password, seed))
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        // Resizes come as deactivation-reactivation; a failed frame is skipped.
        c.pump_for(Duration::from_secs(2))
            .unwrap_or_else(|e| panic!("seed {seed}: the session broke: {e:?}"));
        assert!(
            control.frames() > 10,
            "seed {seed}: the screen was not read"
        );
        control.calm_down();
        c.run_until(WAIT, |image| {
            (image.width(), image.height()) == CALM_SIZE
                && (0..CALM_SIZE.1).step_by(7).all(|y| {
                    (0..CALM_SIZE.0)
                        .step_by(5)
                        .all(|x| image.pixel(x, y) & 0xff_ffff == calm_pixel(x, y) & 0xff_ffff)
                })
        })
        .unwrap_or_else(|e| panic!("seed {seed}: the picture never healed: {e:?}"));
        c.disconnect();
        served_after(&agent, &agent.password);
        assert_bounded(&agent);
    }
}

/// "ok" to a mode change only once it is on disk: while every write fails or stops midway,
/// each mode request is answered with an error and the mode in force stays; once the disk
/// heals, the "ok" comes with the new mode already in both copies.
#[test]
fn a_mode_change_the_store_cannot_save_is_an_error_and_changes_nothing() {
    let dir = temp_dir("store");
    let path = dir.join("control.sock");
    let keeper = |dir: &Path| thinshadow::state::KeeperConfig {
        state_dir: dir.to_owned(),
        user: USER.into(),
        port: 0,
        cert_sha256: "ab:cd".into(),
        rotation: Default::default(),
        hook: None,
        lockout: Default::default(),
        allow: thinshadow::policy::Allowlist::all(),
    };
    let failing = Arc::new(AtomicBool::new(true));
    let failures = Arc::new(AtomicUsize::new(0));
    let options = Options {
        access: AccessSettings::default(),
        control: Some(path.clone()),
        keeper: Some(keeper(&dir)),
        save_faults: Some(failing_store(3, failing.clone(), failures.clone())),
        ..Options::default()
    };
    let mut agent = agent::start(options, synthetic);
    let password = thinshadow::state::read(&dir).unwrap().password;
    let before = thinshadow::state::read(&dir).unwrap().modes;
    for (round, words) in ["mode management deny", "mode remote-screen allow-auto"]
        .iter()
        .cycle()
        .take(6)
        .enumerate()
    {
        let reply = try_call(&path, words);
        assert!(
            matches!(&reply, Err(m) if m.starts_with("mode not changed: cannot save the state")),
            "{words}: {reply:?}"
        );
        assert!(
            failures.load(Ordering::SeqCst) > round,
            "a failed save each time"
        );
        // Whatever a torn write left, the files read as a whole state (old or new).
        thinshadow::state::read(&dir).expect("a whole state on disk");
        assert_eq!(management_mode(&path), "allow-auto", "the mode in force");
    }
    // Still the old mode: an admin gets in (and is asked, allow-auto).
    let admitted = TestClient::connect(&client(&agent, &password, 0)).expect("login");
    admitted.disconnect();
    // The disk heals: "ok" means on disk, in both copies, before any throttle runs.
    failing.store(false, Ordering::SeqCst);
    assert!(json::get(&call(&path, "mode management deny"), "error").is_none());
    let saved = thinshadow::state::read(&dir).unwrap().modes;
    assert_eq!(saved.management, Mode::Deny, "ok before the save");
    assert_eq!(saved.remote_screen, before.remote_screen);
    let second = std::fs::read(dir.join(thinshadow::state::PREVIOUS_FILE)).unwrap();
    assert_eq!(thinshadow::state::decode(&second).unwrap().modes, saved);
    assert!(json::get(&call(&path, "mode remote-screen allow-auto"), "error").is_none());
    assert_eq!(management_mode(&path), "deny");
    // Refused at activation (Set Error Info 7), or earlier.
    if let Ok(mut refused) = TestClient::connect(&client(&agent, &password, 0)) {
        let ended = refused.pump_for(Duration::from_secs(5));
        assert!(ended.is_err(), "deny let an admin in");
        assert_eq!(refused.last_error_info(), Some(0x7), "{ended:?}");
    }
    agent.stop();
    let saved = thinshadow::state::read(&dir).unwrap();
    assert_eq!(saved.modes.management, Mode::Deny);
    assert_eq!(saved.modes.remote_screen, Mode::AllowAuto);
    // A restart from that disk keeps it.
    let _ = std::fs::remove_file(&path);
    let options = Options {
        access: AccessSettings::default(),
        control: Some(path.clone()),
        keeper: Some(keeper(&dir)),
        ..Options::default()
    };
    let agent = agent::start(options, synthetic);
    assert_eq!(
        management_mode(&path),
        "deny",
        "mode lost across the restart"
    );
    drop(agent);
}
