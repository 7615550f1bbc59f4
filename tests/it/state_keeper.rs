//! The keeper as the agent drives it: start rotation, lockout that survives a restart,
//! allowlist, rotation after a session and after the period, the hook getting the new
//! password, and a failed save that keeps the old password working.

use crate::common;

use common::scripts::write_script;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use thinshadow::policy::{Allowlist, LockoutPolicy, LockoutRecord};
use thinshadow::state::publish::HookConfig;
use thinshadow::state::rotation::{RETRY, RotationPolicy};
use thinshadow::state::{self, Admission, Keeper, KeeperConfig, Refusal, State};

/// 2026-11-27: a plausible wall clock.
const UNIX: u64 = 1_795_737_600;
const DAY: Duration = Duration::from_secs(86_400);

fn temp_dir(name: &str) -> PathBuf {
    common::temp_dir(module_path!(), name)
}

fn config(dir: &Path) -> KeeperConfig {
    KeeperConfig {
        state_dir: dir.to_owned(),
        user: "admin".into(),
        port: 3389,
        cert_sha256: "ab:cd".into(),
        rotation: RotationPolicy::default(),
        hook: None,
        lockout: LockoutPolicy::default(),
        allow: Allowlist::all(),
    }
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn no_addresses() -> Vec<IpAddr> {
    vec!["192.0.2.10".parse().unwrap()]
}

fn start(config: KeeperConfig, now: Instant, unix: u64) -> Keeper {
    let loaded = state::load(&config.state_dir).into_state();
    let mut keeper = Keeper::start(config, &loaded, now, unix)
        .unwrap()
        .with_addresses(no_addresses);
    keeper.commit(now, unix).unwrap();
    keeper
}

/// A hook script that copies its stdin to `out`.
fn copy_hook(dir: &Path, out: &Path) -> HookConfig {
    let path = dir.join("hook.sh");
    write_script(&path, &format!("#!/bin/sh\ncat > '{}'\n", out.display()));
    HookConfig {
        program: path,
        timeout: Duration::from_secs(10),
    }
}

/// Polls as the loop would until the hook is done.
fn settle(keeper: &mut Keeper, unix: u64) {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let now = Instant::now();
        keeper.poll(now, unix);
        match keeper.next_deadline() {
            Some(at) if at < now + Duration::from_secs(30) => {
                assert!(Instant::now() < until, "hook never finished");
                std::thread::sleep(at.saturating_duration_since(Instant::now()));
            }
            _ => return,
        }
    }
}

#[test]
fn start_rotates_saves_and_keeps_modes_and_counts() {
    let dir = temp_dir("start");
    let old = State {
        password: "old-password".into(),
        password_issued_at: UNIX - 3600,
        user: "someone".into(),
        port: 1,
        failed_logins: vec![LockoutRecord {
            ip: ip("192.0.2.66"),
            failures: 5,
            last_failure: UNIX - 60,
        }],
        ..State::default()
    };
    state::save(&dir, &old).unwrap();
    let now = Instant::now();
    let keeper = start(config(&dir), now, UNIX);
    assert_ne!(keeper.password(), "old-password");
    let saved = state::read(&dir).unwrap();
    assert_eq!(saved.password, keeper.password());
    assert_eq!(saved.password_issued_at, UNIX);
    assert_eq!(
        saved.password_rotates_at,
        UNIX + DAY.as_secs(),
        "creds shows when it changes"
    );
    assert_eq!((saved.user.as_str(), saved.port), ("admin", 3389));
    assert_eq!(saved.modes, old.modes);
    assert_eq!(saved.failed_logins, old.failed_logins);
    assert_eq!(
        keeper.admit(ip("192.0.2.66"), now),
        Admission::Refuse(Refusal::LockedOut(Duration::from_secs(240)))
    );
    assert_eq!(keeper.admit(ip("192.0.2.67"), now), Admission::Allow);
    // Nothing is due for a day.
    let deadline = keeper.next_deadline().unwrap();
    assert!(deadline <= now + DAY);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_lockout_survives_a_restart() {
    let dir = temp_dir("restart");
    let t0 = Instant::now();
    let mut keeper = start(config(&dir), t0, UNIX);
    let attacker = ip("203.0.113.5");
    let mut events = 0;
    for i in 0..5u32 {
        let now = t0 + Duration::from_secs(20) * i;
        assert_eq!(keeper.admit(attacker, now), Admission::Allow, "try {i}");
        events += usize::from(keeper.login_failed(attacker, now).is_some());
        keeper.poll(now, UNIX + 20 * u64::from(i));
    }
    assert_eq!(events, 1, "one event when the lockout starts");
    let locked_at = t0 + Duration::from_secs(80);
    assert!(matches!(
        keeper.admit(attacker, locked_at),
        Admission::Refuse(Refusal::LockedOut(_))
    ));
    // The last failure may still wait for the save interval; exit writes it.
    keeper.shut_down(locked_at, UNIX + 80);
    drop(keeper);

    // Restarted ten seconds later, on a new monotonic clock.
    let t1 = Instant::now() + Duration::from_secs(1000);
    let keeper = start(config(&dir), t1, UNIX + 90);
    assert_eq!(
        keeper.admit(attacker, t1),
        Admission::Refuse(Refusal::LockedOut(Duration::from_secs(290)))
    );
    assert_eq!(keeper.admit(ip("203.0.113.6"), t1), Admission::Allow);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn success_clears_and_waits_grow() {
    let dir = temp_dir("success");
    let t0 = Instant::now();
    let mut keeper = start(config(&dir), t0, UNIX);
    let admin = ip("192.0.2.1");
    keeper.login_failed(admin, t0);
    assert_eq!(
        keeper.admit(admin, t0),
        Admission::Refuse(Refusal::Wait(Duration::from_secs(1)))
    );
    keeper.login_failed(admin, t0 + Duration::from_secs(1));
    assert_eq!(
        keeper.admit(admin, t0 + Duration::from_secs(1)),
        Admission::Refuse(Refusal::Wait(Duration::from_secs(2)))
    );
    keeper.login_succeeded(admin, t0 + Duration::from_secs(3));
    assert_eq!(
        keeper.admit(admin, t0 + Duration::from_secs(3)),
        Admission::Allow
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_allowlist_refuses_outsiders_before_anything_else() {
    let dir = temp_dir("allow");
    let mut cfg = config(&dir);
    cfg.allow = Allowlist::parse(&["10.0.0.0/8", "fd00::/8"]).unwrap();
    let now = Instant::now();
    let keeper = start(cfg, now, UNIX);
    assert_eq!(keeper.admit(ip("10.1.2.3"), now), Admission::Allow);
    assert_eq!(keeper.admit(ip("::ffff:10.1.2.3"), now), Admission::Allow);
    assert_eq!(keeper.admit(ip("fd00::1"), now), Admission::Allow);
    assert_eq!(
        keeper.admit(ip("192.0.2.1"), now),
        Admission::Refuse(Refusal::NotAllowed)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn after_a_session_the_hook_gets_the_new_password() {
    let dir = temp_dir("session");
    let out = dir.join("published.json");
    let mut cfg = config(&dir);
    cfg.rotation.after_session = true;
    cfg.hook = Some(copy_hook(&dir, &out));
    let mut keeper = start(cfg, Instant::now(), UNIX);
    // The start rotation is published on the first polls.
    settle(&mut keeper, UNIX);
    let first = std::fs::read_to_string(&out).unwrap();
    assert!(first.contains(&format!("\"password\":\"{}\"", keeper.password())));

    let before = keeper.password().to_owned();
    assert!(keeper.session_ended(Instant::now(), UNIX + 100));
    assert_ne!(keeper.password(), before);
    settle(&mut keeper, UNIX + 100);
    let published = std::fs::read_to_string(&out).unwrap();
    let saved = state::read(&dir).unwrap();
    assert_eq!(saved.password, keeper.password());
    assert_eq!(saved.password_issued_at, UNIX + 100);
    assert!(published.contains(&format!("\"password\":\"{}\"", keeper.password())));
    assert!(published.contains("\"password_issued_at\":1795737700"));
    assert!(published.contains("\"addresses\":[\"192.0.2.10\"]"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn no_rotation_after_a_session_unless_enabled() {
    let dir = temp_dir("nosession");
    let mut keeper = start(config(&dir), Instant::now(), UNIX);
    let before = keeper.password().to_owned();
    assert!(!keeper.session_ended(Instant::now(), UNIX + 100));
    assert_eq!(keeper.password(), before);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_period_rotates() {
    let dir = temp_dir("period");
    let t0 = Instant::now();
    let mut keeper = start(config(&dir), t0, UNIX);
    let before = keeper.password().to_owned();
    assert!(!keeper.poll(t0 + DAY - Duration::from_secs(1), UNIX + 86_399));
    assert!(keeper.poll(t0 + DAY, UNIX + 86_400));
    assert_ne!(keeper.password(), before);
    assert_eq!(state::read(&dir).unwrap().password, keeper.password());
    assert!(keeper.next_deadline().unwrap() >= t0 + DAY);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_failed_save_keeps_the_old_password_and_retries_later() {
    let dir = temp_dir("nosave");
    let t0 = Instant::now();
    let mut keeper = start(config(&dir), t0, UNIX);
    let before = keeper.password().to_owned();
    // A directory where the state file goes: the rename fails.
    let path = state::state_path(&dir);
    std::fs::remove_file(&path).unwrap();
    std::fs::create_dir(&path).unwrap();
    std::fs::write(path.join("x"), b"x").unwrap();
    assert!(!keeper.poll(t0 + DAY, UNIX + 86_400));
    assert_eq!(keeper.password(), before);
    assert_eq!(keeper.next_deadline(), Some(t0 + DAY + RETRY));
    assert!(!keeper.poll(t0 + DAY + Duration::from_secs(1), UNIX + 86_401));
    // Fixed: the retry goes through.
    std::fs::remove_dir_all(&path).unwrap();
    assert!(keeper.poll(t0 + DAY + RETRY, UNIX + 86_460));
    assert_eq!(state::read(&dir).unwrap().password, keeper.password());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `thinshadow serve` on a damaged state: with Deny saved and `state.bin` damaged the
/// agent runs with Deny (from the second copy, and says so in the audit file); with both
/// copies damaged it runs with the configured default modes and says that.
#[test]
fn a_real_agent_keeps_deny_from_a_damaged_state_and_falls_back_to_the_configured_defaults() {
    use thinshadow::control::Request;
    use thinshadow::control::client::Client;
    use thinshadow::control::json::{Value, get};
    use thinshadow::policy::{Mode, Modes};

    let dir = temp_dir("serve-damaged");
    let state_dir = dir.join("state");
    let socket = dir.join("control.sock");
    let audit = dir.join("audit.log");
    let config = dir.join("empty.toml");
    std::fs::write(&config, "").unwrap();
    let serve = |extra: &[&str]| {
        let mut agent = std::process::Command::new(env!("CARGO_BIN_EXE_thinshadow"))
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--screen",
                "synthetic:64x64",
            ])
            .args(["--config", config.to_str().unwrap()])
            .args(["--state-dir", state_dir.to_str().unwrap()])
            .args(["--control", socket.to_str().unwrap()])
            .args(["--audit-file", audit.to_str().unwrap()])
            .args(extra)
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Ok(mut client) = Client::connect(&socket, Some(Duration::from_secs(5)))
                && let Ok((_, status)) = client.call(&Request::Status)
            {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "no agent at {}",
                socket.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(agent.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        assert!(agent.wait().unwrap().success());
        let mode = |key| match get(&status, key) {
            Some(Value::Str(mode)) => mode.clone(),
            other => panic!("status without {key}: {other:?}"),
        };
        (mode("management"), mode("remote_screen"))
    };
    let flip = |path: &Path| {
        let mut bytes = std::fs::read(path).unwrap();
        let at = bytes.len() - 3;
        bytes[at] ^= 0x01;
        std::fs::write(path, bytes).unwrap();
    };
    state::ensure_dir(&state_dir).unwrap();
    let deny = State {
        modes: Modes {
            management: Mode::Deny,
            remote_screen: Mode::Deny,
        },
        ..State::default()
    };
    state::save(&state_dir, &deny).unwrap();
    flip(&state::state_path(&state_dir));
    assert_eq!(serve(&[]), ("deny".to_owned(), "deny".to_owned()));
    let lines = std::fs::read_to_string(&audit).unwrap();
    assert!(
        lines.contains(r#""event":"state-recovered","from":"state.bin.prev""#),
        "{lines}"
    );
    // The agent's own saves left both copies whole and with Deny.
    assert_eq!(state::read(&state_dir).unwrap().modes, deny.modes);
    flip(&state::state_path(&state_dir));
    flip(&state::previous_path(&state_dir));
    let modes = serve(&["--default-management-mode", "deny"]);
    assert_eq!(modes, ("deny".to_owned(), "allow-by-request".to_owned()));
    let lines = std::fs::read_to_string(&audit).unwrap();
    assert!(
        lines.contains(r#""event":"state-defaults""#)
            && lines.contains(r#""management":"deny","remote_screen":"allow-by-request""#),
        "{lines}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
