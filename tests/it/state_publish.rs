//! The publish hook with real programs: it gets the JSON, a hanging one is killed and
//! reaped within the bound, a missing or failing one is an error outcome, and the runner
//! never blocks: every call returns at once and says when to call again.

use crate::common;

use common::scripts::write_script;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use thinshadow::state::publish::{HookConfig, HookError, HookRunner, Outcome};
use thinshadow::state::published::{Published, to_json};

fn temp_dir(name: &str) -> PathBuf {
    common::temp_dir(module_path!(), name)
}

/// A hook that runs `script` under /bin/sh (a wrapper file: the runner takes one program).
fn shell_hook(dir: &Path, script: &str, timeout: Duration) -> HookRunner {
    let path = dir.join("hook.sh");
    write_script(&path, &format!("#!/bin/sh\n{script}\n"));
    HookRunner::new(HookConfig {
        program: path,
        timeout,
    })
}

fn json(password: &str) -> String {
    to_json(&Published {
        user: "admin".into(),
        password: password.into(),
        addresses: vec!["192.0.2.10".parse().unwrap()],
        port: 3389,
        cert_sha256: "ab:cd".into(),
        password_issued_at: 1_800_000_000,
        password_rotates_at: 1_800_086_400,
    })
}

/// Drives the runner as the loop would: sleep until its deadline, poll, until an outcome.
fn run_until_outcome(runner: &mut HookRunner, within: Duration) -> (Outcome, Duration) {
    let start = Instant::now();
    loop {
        let now = Instant::now();
        let called = Instant::now();
        if let Some(outcome) = runner.poll(now) {
            return (outcome, start.elapsed());
        }
        assert!(called.elapsed() < Duration::from_millis(50), "poll blocked");
        assert!(start.elapsed() < within, "no outcome within {within:?}");
        let deadline = runner
            .next_deadline()
            .expect("a running hook has a deadline");
        std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
    }
}

fn process_exists(pid: u32) -> bool {
    // A zombie still has /proc/PID; its state letter is Z.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat.contains(") Z "),
        Err(_) => false,
    }
}

#[test]
fn the_hook_gets_the_credentials_json_on_stdin() {
    let dir = temp_dir("cat");
    let out = dir.join("creds.json");
    let mut runner = shell_hook(
        &dir,
        &format!("cat > '{}'", out.display()),
        Duration::from_secs(10),
    );
    let sent = json("NewPassw0rdXyz");
    let started = Instant::now();
    assert!(runner.publish(&sent, Instant::now()).is_none());
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "publish blocked"
    );
    let (outcome, _) = run_until_outcome(&mut runner, Duration::from_secs(10));
    assert!(matches!(outcome, Outcome::Published(_)), "{outcome}");
    let got = std::fs::read_to_string(&out).unwrap();
    assert_eq!(got, sent);
    assert!(got.contains(r#""password":"NewPassw0rdXyz""#));
    assert!(!runner.is_busy());
    assert_eq!(runner.next_deadline(), None);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_hanging_hook_is_killed_and_reaped_within_the_bound() {
    let dir = temp_dir("hang");
    let pids = dir.join("pids");
    // The shell and a child of its own: the whole group goes.
    let mut runner = shell_hook(
        &dir,
        &format!("sleep 100 & echo $$ $! > '{}'; wait", pids.display()),
        Duration::from_millis(300),
    );
    assert!(runner.publish(&json("x"), Instant::now()).is_none());
    let (outcome, took) = run_until_outcome(&mut runner, Duration::from_secs(5));
    assert!(
        matches!(outcome, Outcome::Failed(HookError::TimedOut(_))),
        "{outcome}"
    );
    assert!(took >= Duration::from_millis(300), "killed early: {took:?}");
    assert!(took < Duration::from_secs(2), "killed late: {took:?}");
    let text = std::fs::read_to_string(&pids).unwrap();
    let (shell, sleeper) = text.trim().split_once(' ').unwrap();
    let (shell, sleeper): (u32, u32) = (shell.parse().unwrap(), sleeper.parse().unwrap());
    assert!(!process_exists(shell), "hook still there");
    // The orphaned sleep is reaped by init, a moment after the kill.
    let until = Instant::now() + Duration::from_secs(2);
    while process_exists(sleeper) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(!process_exists(sleeper), "the hook's child survived");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_missing_program_is_an_error_outcome() {
    let mut runner = HookRunner::new(HookConfig {
        program: "/nonexistent/publish-hook".into(),
        timeout: Duration::from_secs(1),
    });
    match runner.publish(&json("x"), Instant::now()) {
        Some(Outcome::Failed(HookError::Spawn(e))) => {
            assert_eq!(e.kind(), std::io::ErrorKind::NotFound)
        }
        other => panic!("expected a spawn error, got {other:?}"),
    }
    assert!(!runner.is_busy());
}

#[test]
fn a_failing_hook_is_an_error_outcome_without_the_password() {
    let dir = temp_dir("fail");
    let mut runner = shell_hook(&dir, "cat >/dev/null; exit 3", Duration::from_secs(10));
    assert!(
        runner
            .publish(&json("SecretPass123"), Instant::now())
            .is_none()
    );
    let (outcome, _) = run_until_outcome(&mut runner, Duration::from_secs(10));
    assert!(
        matches!(outcome, Outcome::Failed(HookError::Exit(3))),
        "{outcome}"
    );
    assert_eq!(outcome.to_string(), "exited with status 3");
    assert!(!format!("{outcome:?}").contains("SecretPass123"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_hook_that_ignores_stdin_is_fine() {
    let dir = temp_dir("ignore");
    let mut runner = shell_hook(&dir, "exit 0", Duration::from_secs(10));
    assert!(runner.publish(&json("x"), Instant::now()).is_none());
    let (outcome, _) = run_until_outcome(&mut runner, Duration::from_secs(10));
    assert!(matches!(outcome, Outcome::Published(_)), "{outcome}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn input_larger_than_a_pipe_is_fed_without_blocking() {
    let dir = temp_dir("big");
    let out = dir.join("out");
    let mut runner = shell_hook(
        &dir,
        &format!("sleep 0.2; cat > '{}'", out.display()),
        Duration::from_secs(10),
    );
    let big = "x".repeat(300 * 1024);
    let started = Instant::now();
    assert!(runner.publish(&big, Instant::now()).is_none());
    assert!(
        started.elapsed() < Duration::from_millis(150),
        "publish blocked"
    );
    let (outcome, _) = run_until_outcome(&mut runner, Duration::from_secs(10));
    assert!(matches!(outcome, Outcome::Published(_)), "{outcome}");
    assert_eq!(std::fs::metadata(&out).unwrap().len(), big.len() as u64);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn one_at_a_time_and_the_newest_runs_next() {
    let dir = temp_dir("queue");
    let log = dir.join("log");
    let mut runner = shell_hook(
        &dir,
        &format!(
            "sleep 0.2; tr -d '\\n' >> '{0}'; echo >> '{0}'",
            log.display()
        ),
        Duration::from_secs(10),
    );
    assert!(runner.publish(&json("first"), Instant::now()).is_none());
    // Two rotations while the first hook runs: only the newest is published after it.
    assert!(runner.publish(&json("second"), Instant::now()).is_none());
    assert!(runner.publish(&json("third"), Instant::now()).is_none());
    let (first, _) = run_until_outcome(&mut runner, Duration::from_secs(10));
    assert!(matches!(first, Outcome::Published(_)), "{first}");
    assert!(runner.is_busy(), "the queued one is still to run");
    let (next, _) = run_until_outcome(&mut runner, Duration::from_secs(10));
    assert!(matches!(next, Outcome::Published(_)), "{next}");
    let lines: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(lines, [json("first"), json("third")]);
    assert!(!runner.is_busy());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn shutting_down_kills_a_running_hook() {
    let dir = temp_dir("shutdown");
    let pid_file = dir.join("pid");
    let mut runner = shell_hook(
        &dir,
        &format!("echo $$ > '{}'; exec sleep 100", pid_file.display()),
        Duration::from_secs(60),
    );
    assert!(runner.publish(&json("x"), Instant::now()).is_none());
    let until = Instant::now() + Duration::from_secs(5);
    while std::fs::read_to_string(&pid_file).map_or(true, |t| t.trim().is_empty()) {
        assert!(Instant::now() < until, "hook never started");
        runner.poll(Instant::now());
        std::thread::sleep(Duration::from_millis(5));
    }
    let pid: u32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let started = Instant::now();
    drop(runner);
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(!process_exists(pid));
    std::fs::remove_dir_all(&dir).unwrap();
}
