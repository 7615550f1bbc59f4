//! The publish hook: after each rotation the agent runs `--publish-hook PROGRAM` with the
//! credentials JSON on its stdin, without ever blocking the event loop.
//!
//! The child gets its own process group (so a timeout kills what it started too), stdin
//! a non-blocking pipe fed from `poll`, stdout null and stderr the agent's. It is reaped
//! with `try_wait` on a short, growing poll interval, killed after the timeout and reaped
//! again. One hook at a time; a rotation while one runs queues the newest credentials.
//! Nothing here logs, and no error carries the JSON.

use std::fmt;
use std::io::{self, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// First and longest gap between `try_wait` checks while a hook runs.
const FIRST_CHECK: Duration = Duration::from_millis(5);
const MAX_CHECK: Duration = Duration::from_millis(200);

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HookConfig {
    pub program: PathBuf,
    pub timeout: Duration,
}

#[derive(Debug)]
pub enum HookError {
    Spawn(io::Error),
    Input(io::Error),
    Exit(i32),
    Signal(i32),
    TimedOut(Duration),
    Wait(io::Error),
}

impl fmt::Display for HookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HookError::Spawn(e) => write!(f, "cannot start: {e}"),
            HookError::Input(e) => write!(f, "cannot write the credentials to it: {e}"),
            HookError::Exit(code) => write!(f, "exited with status {code}"),
            HookError::Signal(signal) => write!(f, "killed by signal {signal}"),
            HookError::TimedOut(limit) => {
                write!(f, "still running after {} s; killed", limit.as_secs())
            }
            HookError::Wait(e) => write!(f, "cannot wait for it: {e}"),
        }
    }
}

impl std::error::Error for HookError {}

#[derive(Debug)]
pub enum Outcome {
    /// Exited with status 0, after this long.
    Published(Duration),
    Failed(HookError),
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Published(took) => write!(f, "published in {} ms", took.as_millis()),
            Outcome::Failed(e) => e.fmt(f),
        }
    }
}

struct Running {
    child: Child,
    stdin: Option<ChildStdin>,
    input: Vec<u8>,
    written: usize,
    input_error: Option<io::Error>,
    started: Instant,
    kill_at: Instant,
    killed: bool,
    next_check: Instant,
    gap: Duration,
}

pub struct HookRunner {
    config: HookConfig,
    running: Option<Running>,
    /// The newest credentials waiting for the running hook to end, and since when.
    queued: Option<(Vec<u8>, Instant)>,
}

impl HookRunner {
    pub fn new(config: HookConfig) -> HookRunner {
        HookRunner {
            config,
            running: None,
            queued: None,
        }
    }

    pub fn config(&self) -> &HookConfig {
        &self.config
    }

    pub fn is_busy(&self) -> bool {
        self.running.is_some() || self.queued.is_some()
    }

    /// Runs the hook with `json`, or queues it while one runs (an older queued one is
    /// replaced: only the newest credentials matter). A hook that cannot start is
    /// reported at once.
    pub fn publish(&mut self, json: &str, now: Instant) -> Option<Outcome> {
        self.queued = Some((json.as_bytes().to_vec(), now));
        if self.running.is_some() {
            return None;
        }
        self.start_queued(now)
    }

    /// Feeds stdin, reaps, kills on timeout. Call it whenever `next_deadline` passes.
    pub fn poll(&mut self, now: Instant) -> Option<Outcome> {
        let Some(running) = self.running.as_mut() else {
            return self.start_queued(now);
        };
        running.feed();
        match running.child.try_wait() {
            Ok(Some(status)) => {
                let outcome = running.outcome(status, now, self.config.timeout);
                self.running = None;
                Some(outcome)
            }
            Ok(None) => {
                if now >= running.kill_at && !running.killed {
                    running.kill();
                    running.gap = FIRST_CHECK;
                }
                if now >= running.next_check {
                    running.next_check = now + running.gap;
                    running.gap = (running.gap * 2).min(MAX_CHECK);
                }
                None
            }
            Err(e) => {
                running.kill();
                let _ = running.child.try_wait();
                self.running = None;
                Some(Outcome::Failed(HookError::Wait(e)))
            }
        }
    }

    /// When `poll` wants to run next; `None` while no hook runs or waits.
    pub fn next_deadline(&self) -> Option<Instant> {
        match &self.running {
            Some(running) if running.killed => Some(running.next_check),
            Some(running) => Some(running.next_check.min(running.kill_at)),
            None => self.queued.as_ref().map(|(_, since)| *since),
        }
    }

    /// Kills a running hook and waits for it (it was sent SIGKILL, so that is short);
    /// drops anything queued. For the agent's exit.
    pub fn shut_down(&mut self) {
        self.queued = None;
        if let Some(mut running) = self.running.take() {
            running.kill();
            let _ = running.child.wait();
        }
    }

    fn start_queued(&mut self, now: Instant) -> Option<Outcome> {
        let (input, _) = self.queued.take()?;
        let spawned = Command::new(&self.config.program)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .process_group(0)
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(e) => return Some(Outcome::Failed(HookError::Spawn(e))),
        };
        let stdin = child.stdin.take();
        let mut running = Running {
            child,
            stdin,
            input,
            written: 0,
            input_error: None,
            started: now,
            kill_at: now + self.config.timeout,
            killed: false,
            next_check: now + FIRST_CHECK,
            gap: FIRST_CHECK * 2,
        };
        if let Some(stdin) = &running.stdin
            && let Err(e) = fcntl(stdin, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))
        {
            running.input_error = Some(e.into());
            running.stdin = None;
        }
        running.feed();
        self.running = Some(running);
        None
    }
}

impl Drop for HookRunner {
    fn drop(&mut self) {
        self.shut_down();
    }
}

impl Running {
    /// Writes what the pipe takes; closes stdin when all is written (or the hook closed
    /// its end: a hook need not read).
    fn feed(&mut self) {
        let Some(stdin) = self.stdin.as_mut() else {
            return;
        };
        while self.written < self.input.len() {
            match stdin.write(&self.input[self.written..]) {
                Ok(0) => break,
                Ok(n) => self.written += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => break,
                Err(e) => {
                    self.input_error = Some(e);
                    break;
                }
            }
        }
        self.stdin = None;
        // The credentials are not kept in memory longer than needed.
        self.input.fill(0);
    }

    fn kill(&mut self) {
        self.killed = true;
        self.stdin = None;
        let group = Pid::from_raw(self.child.id() as i32);
        if killpg(group, Signal::SIGKILL).is_err() {
            let _ = self.child.kill();
        }
    }

    fn outcome(&mut self, status: ExitStatus, now: Instant, timeout: Duration) -> Outcome {
        self.input.fill(0);
        if self.killed {
            return Outcome::Failed(HookError::TimedOut(timeout));
        }
        if let Some(e) = self.input_error.take() {
            return Outcome::Failed(HookError::Input(e));
        }
        match (status.code(), status.signal()) {
            (Some(0), _) => Outcome::Published(now.saturating_duration_since(self.started)),
            (Some(code), _) => Outcome::Failed(HookError::Exit(code)),
            (None, Some(signal)) => Outcome::Failed(HookError::Signal(signal)),
            (None, None) => Outcome::Failed(HookError::Exit(-1)),
        }
    }
}
