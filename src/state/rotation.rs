//! Password rotation, sans-IO: at every start, once per period, and optionally after each
//! session. The running agent times the period on the monotonic clock (a board often
//! boots with its wall clock in 1970 and jumps when NTP answers). The wall clock also
//! counts once it is plausible, so a board that was suspended for days rotates at its next
//! wake-up even though the monotonic clock stood still.

use std::fmt;
use std::time::{Duration, Instant};

use super::{State, password};

pub const DEFAULT_PERIOD: Duration = Duration::from_secs(24 * 3600);
/// A wall clock before this (2024-01-01) is taken as not set yet.
pub const PLAUSIBLE_UNIX: u64 = 1_704_067_200;
/// After a failed rotation (no randomness, state not saved), when to try again.
pub const RETRY: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RotationPolicy {
    pub period: Duration,
    pub after_session: bool,
}

impl Default for RotationPolicy {
    fn default() -> Self {
        RotationPolicy {
            period: DEFAULT_PERIOD,
            after_session: false,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    Start,
    Period,
    SessionEnded,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Reason::Start => "agent start",
            Reason::Period => "rotation period over",
            Reason::SessionEnded => "session ended",
        })
    }
}

#[derive(Debug)]
pub struct RotateError(pub getrandom::Error);

impl fmt::Display for RotateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "no randomness for the password: {}", self.0)
    }
}

impl std::error::Error for RotateError {}

/// A new password issued at `now_unix`; everything else kept.
pub fn rotate(state: &State, now_unix: u64) -> Result<State, RotateError> {
    password::generate()
        .map(|password| rotate_with(state, password, now_unix))
        .map_err(RotateError)
}

/// `rotate` with the password given (tests, and callers with their own source).
pub fn rotate_with(state: &State, password: String, now_unix: u64) -> State {
    State {
        password,
        password_issued_at: now_unix,
        ..state.clone()
    }
}

/// When the password issued at `issued_at` is due by the wall clock, if it was issued on a
/// plausible clock at all.
pub fn due_at_unix(issued_at: u64, policy: &RotationPolicy) -> Option<u64> {
    (issued_at >= PLAUSIBLE_UNIX).then(|| issued_at.saturating_add(policy.period.as_secs()))
}

/// The running agent's rotation timer.
#[derive(Clone, Debug)]
pub struct Schedule {
    policy: RotationPolicy,
    rotated_at: Instant,
    issued_at_unix: u64,
    /// A rotation that failed, and when to try it again.
    retry: Option<(Reason, Instant)>,
}

impl Schedule {
    /// Starts the period at a rotation done at `now` (the one every start does).
    pub fn new(policy: RotationPolicy, now: Instant, issued_at_unix: u64) -> Schedule {
        Schedule {
            policy,
            rotated_at: now,
            issued_at_unix,
            retry: None,
        }
    }

    pub fn policy(&self) -> &RotationPolicy {
        &self.policy
    }

    /// The monotonic instant the period ends, or a failed rotation is retried.
    pub fn next_deadline(&self) -> Instant {
        self.retry
            .map_or(self.rotated_at + self.policy.period, |(_, at)| at)
    }

    /// Is a rotation due: the period is over, or a failed one is to be retried?
    pub fn due(&self, now: Instant, now_unix: u64) -> Option<Reason> {
        if let Some((reason, at)) = self.retry {
            return (now >= at).then_some(reason);
        }
        let by_monotonic = now >= self.rotated_at + self.policy.period;
        let by_wall = now_unix >= PLAUSIBLE_UNIX
            && due_at_unix(self.issued_at_unix, &self.policy).is_some_and(|at| now_unix >= at);
        (by_monotonic || by_wall).then_some(Reason::Period)
    }

    /// A session ended: rotate if the policy says so.
    pub fn session_ended(&self) -> Option<Reason> {
        self.policy.after_session.then_some(Reason::SessionEnded)
    }

    pub fn rotated(&mut self, now: Instant, issued_at_unix: u64) {
        self.rotated_at = now;
        self.issued_at_unix = issued_at_unix;
        self.retry = None;
    }

    /// A rotation for `reason` failed at `now`: try again after `RETRY`, not every turn.
    pub fn failed(&mut self, reason: Reason, now: Instant) {
        self.retry = Some((reason, now + RETRY));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);
    /// 2026-11-27, a plausible wall clock.
    const UNIX: u64 = 1_795_737_600;

    fn old_state() -> State {
        State {
            password: "old".into(),
            password_issued_at: UNIX - 5 * 86_400,
            user: "admin".into(),
            port: 3389,
            ..State::default()
        }
    }

    #[test]
    fn at_start_a_new_password_is_issued_now_and_nothing_else_changes() {
        let old = old_state();
        let new = rotate(&old, UNIX).unwrap();
        assert_ne!(new.password, old.password);
        assert_eq!(new.password.len(), password::LENGTH);
        assert_eq!(new.password_issued_at, UNIX);
        assert_eq!((new.user.as_str(), new.port), ("admin", 3389));
        assert_eq!(new.modes, old.modes);

        let t0 = Instant::now();
        let schedule = Schedule::new(RotationPolicy::default(), t0, UNIX);
        assert_eq!(schedule.due(t0, UNIX), None);
        assert_eq!(schedule.next_deadline(), t0 + 24 * HOUR);
        assert_eq!(due_at_unix(UNIX, schedule.policy()), Some(UNIX + 86_400));
    }

    #[test]
    fn after_24_hours() {
        let t0 = Instant::now();
        let mut schedule = Schedule::new(RotationPolicy::default(), t0, UNIX);
        let almost = Duration::from_secs(24 * 3600 - 1);
        assert_eq!(schedule.due(t0 + almost, UNIX + almost.as_secs()), None);
        let day = t0 + 24 * HOUR;
        assert_eq!(schedule.due(day, UNIX + 86_400), Some(Reason::Period));
        schedule.rotated(day, UNIX + 86_400);
        assert_eq!(schedule.due(day, UNIX + 86_400), None);
        assert_eq!(schedule.next_deadline(), day + 24 * HOUR);
    }

    #[test]
    fn a_configured_period() {
        let policy = RotationPolicy {
            period: 6 * HOUR,
            after_session: false,
        };
        let t0 = Instant::now();
        let schedule = Schedule::new(policy, t0, UNIX);
        assert_eq!(schedule.due(t0 + 5 * HOUR, UNIX), None);
        assert_eq!(schedule.due(t0 + 6 * HOUR, UNIX), Some(Reason::Period));
    }

    #[test]
    fn after_a_session_only_when_enabled() {
        let t0 = Instant::now();
        let off = Schedule::new(RotationPolicy::default(), t0, UNIX);
        assert_eq!(off.session_ended(), None);
        let on = Schedule::new(
            RotationPolicy {
                after_session: true,
                ..RotationPolicy::default()
            },
            t0,
            UNIX,
        );
        assert_eq!(on.session_ended(), Some(Reason::SessionEnded));
    }

    #[test]
    fn a_suspended_board_rotates_by_the_wall_clock() {
        let t0 = Instant::now();
        let schedule = Schedule::new(RotationPolicy::default(), t0, UNIX);
        // The monotonic clock stood still for two days of suspend.
        let now = t0 + HOUR;
        assert_eq!(schedule.due(now, UNIX + 2 * 86_400), Some(Reason::Period));
    }

    #[test]
    fn an_unset_or_jumping_wall_clock_is_not_trusted() {
        let t0 = Instant::now();
        // Issued at boot before NTP: 1970 plus a minute.
        let schedule = Schedule::new(RotationPolicy::default(), t0, 60);
        assert_eq!(
            schedule.due(t0 + HOUR, UNIX),
            None,
            "NTP jump is no rotation"
        );
        assert_eq!(
            schedule.due(t0 + 24 * HOUR, UNIX),
            Some(Reason::Period),
            "the monotonic clock still counts"
        );
        // A clock that went back is no rotation either.
        let schedule = Schedule::new(RotationPolicy::default(), t0, UNIX);
        assert_eq!(schedule.due(t0 + HOUR, UNIX - 86_400), None);
    }

    #[test]
    fn a_failed_rotation_is_retried_later_not_every_turn() {
        let t0 = Instant::now();
        let mut schedule = Schedule::new(RotationPolicy::default(), t0, UNIX);
        let day = t0 + 24 * HOUR;
        schedule.failed(Reason::Period, day);
        assert_eq!(schedule.due(day, UNIX + 86_400), None);
        assert_eq!(schedule.next_deadline(), day + RETRY);
        assert_eq!(
            schedule.due(day + RETRY, UNIX + 86_460),
            Some(Reason::Period)
        );
        // A failed after-session rotation is retried too, before the period ends.
        let mut schedule = Schedule::new(RotationPolicy::default(), t0, UNIX);
        schedule.failed(Reason::SessionEnded, t0 + HOUR);
        assert_eq!(schedule.next_deadline(), t0 + HOUR + RETRY);
        assert_eq!(
            schedule.due(t0 + HOUR + RETRY, UNIX),
            Some(Reason::SessionEnded)
        );
        schedule.rotated(t0 + HOUR + RETRY, UNIX);
        assert_eq!(schedule.due(t0 + 2 * HOUR, UNIX), None);
    }

    #[test]
    fn rotate_with_a_given_password() {
        let new = rotate_with(&old_state(), "given".into(), 7);
        assert_eq!(
            (new.password.as_str(), new.password_issued_at),
            ("given", 7)
        );
    }
}
