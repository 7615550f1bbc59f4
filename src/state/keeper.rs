//! The agent's one handle on credentials and login defences: the state, the rotation
//! timer, the publish hook, the source allowlist and the failed-login lockout.
//!
//! This is the shell around the sans-IO pieces: it writes the state file and starts the
//! hook, never blocking. Time comes in as both `now` (monotonic, for timers) and
//! `now_unix` (for what is stored). It logs one line per rotation, lockout, hook result
//! or failed save, and never the password.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::publish::{HookConfig, HookRunner, Outcome};
use super::published::{self, Published};
use super::rotation::{self, Reason, RotateError, RotationPolicy, Schedule};
use super::{SaveThrottle, State};
use crate::policy::{Allowlist, Lockout, LockoutEvent, LockoutPolicy, Modes, Verdict};
use crate::{info, warn};

/// Failed-login counts are written at most this often.
pub const SAVE_INTERVAL: Duration = Duration::from_secs(10);

#[derive(Clone, Debug)]
pub struct KeeperConfig {
    pub state_dir: PathBuf,
    pub user: String,
    pub port: u16,
    /// Published with the credentials, so the admin can check the certificate.
    pub cert_sha256: String,
    pub rotation: RotationPolicy,
    pub hook: Option<HookConfig>,
    pub lockout: LockoutPolicy,
    pub allow: Allowlist,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    Allow,
    Refuse(Refusal),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    NotAllowed,
    Wait(Duration),
    LockedOut(Duration),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::NotAllowed => f.write_str("address not in the allowlist"),
            Refusal::Wait(d) => write!(
                f,
                "too soon after a failed login (wait {} ms)",
                d.as_millis()
            ),
            Refusal::LockedOut(d) => write!(f, "locked out for {} s more", d.as_secs().max(1)),
        }
    }
}

pub struct Keeper {
    dir: PathBuf,
    cert_sha256: String,
    state: State,
    schedule: Schedule,
    rotation_period: Duration,
    hook: Option<HookRunner>,
    lockout: Lockout,
    allow: Allowlist,
    saves: SaveThrottle,
    /// Credentials rotated but not yet handed to the hook, since when.
    unpublished: Option<Instant>,
    addresses: fn() -> Vec<IpAddr>,
    /// Called after each step of every save (tests inject failed and torn writes here).
    save_faults: Option<SaveFaults>,
}

/// What a test puts between the steps of the atomic write: an error stops the save there.
pub type SaveFaults = Box<dyn FnMut(super::Step) -> std::io::Result<()> + Send>;

impl Keeper {
    /// Takes over the loaded state and its failed-login counts and rotates the password
    /// (every start does). Nothing is written yet: `commit` saves once the port is known.
    pub fn start(
        config: KeeperConfig,
        loaded: &State,
        now: Instant,
        now_unix: u64,
    ) -> Result<Keeper, RotateError> {
        let mut lockout = Lockout::new(config.lockout);
        lockout.import(&loaded.failed_logins, now, now_unix);
        let mut state = rotation::rotate(loaded, now_unix)?;
        state.user = config.user;
        state.port = config.port;
        state.password_rotates_at = now_unix.saturating_add(config.rotation.period.as_secs());
        Ok(Keeper {
            dir: config.state_dir,
            cert_sha256: config.cert_sha256,
            state,
            rotation_period: config.rotation.period,
            schedule: Schedule::new(config.rotation, now, now_unix),
            hook: config.hook.map(HookRunner::new),
            lockout,
            allow: config.allow,
            saves: SaveThrottle::new(SAVE_INTERVAL),
            unpublished: None,
            addresses: published::addresses,
            save_faults: None,
        })
    }

    /// Where the interface addresses for the JSON come from (tests).
    pub fn with_addresses(mut self, addresses: fn() -> Vec<IpAddr>) -> Keeper {
        self.addresses = addresses;
        self
    }

    /// Runs `faults` after each step of every save: a store whose writes fail or stop midway.
    #[doc(hidden)]
    pub fn with_save_faults(mut self, faults: SaveFaults) -> Keeper {
        self.save_faults = Some(faults);
        self
    }

    /// The port actually bound (it differs from the configured one only for port 0).
    pub fn set_port(&mut self, port: u16) {
        self.state.port = port;
    }

    /// Saves the start rotation; the hook gets it on the first `poll`. An error here
    /// should stop the agent: `creds` would show a password that does not work.
    pub fn commit(&mut self, now: Instant, now_unix: u64) -> std::io::Result<()> {
        self.write(now, now_unix)?;
        self.saves.saved(now, true);
        self.unpublished = Some(now);
        info!("password rotated ({})", Reason::Start);
        Ok(())
    }

    pub fn password(&self) -> &str {
        &self.state.password
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    pub fn modes(&self) -> Modes {
        self.state.modes
    }

    /// New modes (control socket, CLI), written and fsync'd before this returns: only an
    /// Ok may be answered "ok". On an error the modes stay as they were, and a save of
    /// those is queued, so a half-done write (the new modes in one copy) is undone soon.
    pub fn save_modes(&mut self, modes: Modes, now: Instant, now_unix: u64) -> std::io::Result<()> {
        let old = std::mem::replace(&mut self.state.modes, modes);
        let saved = self.write(now, now_unix);
        match &saved {
            Ok(()) => self.saves.saved(now, true),
            Err(_) => {
                self.state.modes = old;
                self.saves.mark(now);
                self.saves.saved(now, false);
            }
        }
        saved
    }

    /// May a connection from `peer` go on to a handshake? Ask on accept, before TLS.
    pub fn admit(&self, peer: IpAddr, now: Instant) -> Admission {
        if !self.allow.allows(peer) {
            return Admission::Refuse(Refusal::NotAllowed);
        }
        match self.lockout.check(peer, now) {
            Verdict::Allow => Admission::Allow,
            Verdict::Wait(d) => Admission::Refuse(Refusal::Wait(d)),
            Verdict::LockedOut(d) => Admission::Refuse(Refusal::LockedOut(d)),
        }
    }

    /// A login from `peer` failed (wrong user or password). Logs a lockout when one starts.
    pub fn login_failed(&mut self, peer: IpAddr, now: Instant) -> Option<LockoutEvent> {
        let event = self.lockout.failed(peer, now);
        self.saves.mark(now);
        if let Some(event) = &event {
            warn!("{event}");
        }
        event
    }

    pub fn login_succeeded(&mut self, peer: IpAddr, now: Instant) {
        if self.lockout.succeeded(peer) {
            self.saves.mark(now);
        }
    }

    /// The session ended: rotates if the policy says so. True when the password changed.
    pub fn session_ended(&mut self, now: Instant, now_unix: u64) -> bool {
        let rotated = match self.schedule.session_ended() {
            Some(reason) => self.rotate(reason, now, now_unix),
            None => false,
        };
        self.publish(now);
        rotated
    }

    /// Rotates when due, runs and reaps the hook, writes pending counts. Call it every
    /// loop turn (it is cheap) or at least when `next_deadline` passes. True when the
    /// password changed: new connections must use `password()` from now on.
    pub fn poll(&mut self, now: Instant, now_unix: u64) -> bool {
        let rotated = match self.schedule.due(now, now_unix) {
            Some(reason) => self.rotate(reason, now, now_unix),
            None => false,
        };
        self.publish(now);
        // Two rounds: one hook may end and the queued one start in the same turn.
        for _ in 0..2 {
            let Some(outcome) = self.hook.as_mut().and_then(|hook| hook.poll(now)) else {
                break;
            };
            self.log_hook(&outcome);
        }
        if self.saves.due(now) {
            let ok = self.write(now, now_unix).is_ok();
            self.saves.saved(now, ok);
        }
        rotated
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        [
            Some(self.schedule.next_deadline()),
            self.hook.as_ref().and_then(HookRunner::next_deadline),
            self.saves.next_deadline(),
            self.unpublished,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// At exit: writes pending counts, kills a running hook.
    pub fn shut_down(&mut self, now: Instant, now_unix: u64) {
        if self.saves.is_pending() {
            let ok = self.write(now, now_unix).is_ok();
            self.saves.saved(now, ok);
        }
        if let Some(hook) = self.hook.as_mut() {
            hook.shut_down();
        }
    }

    /// New password, saved before it is used: if the save fails the old one stays and
    /// the rotation is retried later, so `creds` never shows a password that does not work.
    fn rotate(&mut self, reason: Reason, now: Instant, now_unix: u64) -> bool {
        let new = match rotation::rotate(&self.state, now_unix) {
            Ok(mut new) => {
                new.password_rotates_at = now_unix.saturating_add(self.rotation_period.as_secs());
                new
            }
            Err(e) => {
                warn!("password not rotated ({reason}): {e}");
                self.schedule.failed(reason, now);
                return false;
            }
        };
        let old = std::mem::replace(&mut self.state, new);
        if self.write(now, now_unix).is_err() {
            warn!("password not rotated ({reason}): the state could not be saved");
            self.state = old;
            self.schedule.failed(reason, now);
            return false;
        }
        self.saves.saved(now, true);
        self.schedule.rotated(now, now_unix);
        self.unpublished = Some(now);
        info!("password rotated ({reason})");
        true
    }

    fn publish(&mut self, now: Instant) {
        if self.unpublished.take().is_none() {
            return;
        }
        let Some(hook) = self.hook.as_mut() else {
            return;
        };
        let json = published::to_json(&Published::new(
            &self.state,
            (self.addresses)(),
            &self.cert_sha256,
        ));
        if let Some(outcome) = hook.publish(&json, now) {
            self.log_hook(&outcome);
        }
    }

    fn log_hook(&self, outcome: &Outcome) {
        let program = self
            .hook
            .as_ref()
            .map_or_else(String::new, |h| h.config().program.display().to_string());
        match outcome {
            Outcome::Published(_) => info!("publish hook {program}: {outcome}"),
            Outcome::Failed(_) => warn!("publish hook {program}: {outcome}"),
        }
    }

    /// Writes the state with the current counts; logs a failure.
    fn write(&mut self, now: Instant, now_unix: u64) -> std::io::Result<()> {
        self.state.failed_logins = self.lockout.export(now, now_unix);
        let saved = match self.save_faults.as_mut() {
            Some(faults) => super::save_steps(&self.dir, &self.state, faults.as_mut()),
            None => super::save(&self.dir, &self.state),
        };
        saved.inspect_err(|e| {
            warn!("cannot save state in {}: {e}", self.dir.display());
        })
    }
}
