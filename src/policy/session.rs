//! One admin session under the access policy: consent, screen access, view-only, terminate.
//!
//! Sans-IO: each input takes `now`; outputs are queries (`outcome`, `screen`,
//! `input_allowed`, `next_deadline`) and a queue of audit events (`poll_event`). The agent
//! calls `tick` at `next_deadline`.
//!
//! Screen access is derived, not stored: the admin sees the real screen when the user is not
//! in a remote session, or the remote-screen mode is allow-auto, or it is allow-by-request
//! and the user accepted during this remote session. A new remote session asks again: it
//! is a new environment, possibly with another owner.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::access::{
    AccessSettings, AnswerError, Answerer, Ask, Audit, AuditEvent, By, EndCause, Grant, Question,
    TimeoutAction, WaitReason,
};
use super::mode::{Mode, Modes};
use crate::rdp::EndReason;

/// What the admin must be shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Screen {
    Real,
    Waiting {
        reason: WaitReason,
        deadline: Option<Instant>,
    },
}

impl Screen {
    /// The waiting screen's text (empty for the real screen): what it waits for and the
    /// whole seconds left, rounded up so it never shows 0 while time is left.
    pub fn lines(&self, now: Instant) -> Vec<String> {
        let Screen::Waiting { reason, deadline } = *self else {
            return Vec::new();
        };
        let waiting = match reason {
            WaitReason::Consent => "Waiting for the local user to accept",
            WaitReason::ScreenAccess => "Waiting for screen access",
            WaitReason::RemoteSessionEnd => "Waiting for the user's remote session to end",
            WaitReason::Ended => "The session has ended",
        };
        let mut lines = vec!["Remote administration".to_owned(), waiting.to_owned()];
        if let Some(deadline) = deadline {
            let left = deadline
                .saturating_duration_since(now)
                .as_millis()
                .div_ceil(1000);
            lines.push(format!("Seconds left: {left}"));
        }
        lines
    }
}

/// Where the session stands, for the agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Not yet decided (before login, or consent pending): keep the connection, show the
    /// waiting screen once it is active, drop input.
    Pending,
    /// The session runs; `screen()` and `input_allowed()` say what flows.
    Started,
    /// Over: end the connection with `EndCause::end_reason` (None: the client already left).
    Ended(EndCause),
}

#[derive(Clone, Copy, Debug)]
enum Stage {
    /// Connected, not logged in: the user is not disturbed yet.
    New,
    Asking {
        asked: Instant,
        ask: Ask,
    },
    Running {
        started: Instant,
    },
    Ended(EndCause),
}

/// The remote-session side, evaluated against the remote-screen mode.
#[derive(Clone, Copy, Debug, Default)]
struct Remote {
    active: bool,
    /// The user accepted screen access during this remote session.
    accepted: bool,
    /// The user rejected it during this remote session: wait for its end, do not ask again.
    rejected: bool,
}

pub struct AccessPolicy {
    settings: AccessSettings,
    modes: Modes,
    remote: Remote,
    admin: SocketAddr,
    stage: Stage,
    authenticated_at: Option<Instant>,
    /// Since when and why the started session's screen is withheld, as last reported.
    withheld_shown: Option<(Instant, WaitReason)>,
    view_only: bool,
    events: VecDeque<Audit>,
}

impl AccessPolicy {
    /// A connection from `admin`; `in_remote_session` is the local user's state right now.
    pub fn new(
        settings: AccessSettings,
        modes: Modes,
        in_remote_session: bool,
        admin: SocketAddr,
    ) -> Self {
        AccessPolicy {
            settings,
            modes,
            remote: Remote {
                active: in_remote_session,
                ..Remote::default()
            },
            admin,
            stage: Stage::New,
            authenticated_at: None,
            withheld_shown: None,
            view_only: false,
            events: VecDeque::new(),
        }
    }

    // ---- inputs ----

    /// The admin logged in: now (and only now) the local user is asked.
    pub fn authenticated(&mut self, now: Instant, admin: SocketAddr) {
        if !matches!(self.stage, Stage::New) {
            return;
        }
        self.admin = admin;
        self.authenticated_at = Some(now);
        self.emit(AuditEvent::Authenticated);
        match self.settings.ask(self.modes.management) {
            None => self.end(now, EndCause::Deny),
            Some(ask) => {
                self.stage = Stage::Asking { asked: now, ask };
                self.emit(AuditEvent::ConsentAsked {
                    mode: self.modes.management,
                    timeout: ask.timeout,
                });
            }
        }
    }

    /// Accepts the open question; `about` (when given) must name it, so a stale click
    /// cannot answer the next question.
    pub fn user_accepts(
        &mut self,
        now: Instant,
        by: By,
        about: Option<Question>,
    ) -> Result<(), AnswerError> {
        match self.check_pending(about)? {
            Question::Consent => {
                self.consent_answered(now, true, Answerer::User(by));
                self.start(now);
            }
            Question::ScreenAccess => {
                self.remote.accepted = true;
                self.update_access(now, Grant::User(by));
            }
        }
        Ok(())
    }

    /// Rejects the open question: consent ends the session, screen access waits for the
    /// remote session to end.
    pub fn user_rejects(
        &mut self,
        now: Instant,
        by: By,
        about: Option<Question>,
    ) -> Result<(), AnswerError> {
        match self.check_pending(about)? {
            Question::Consent => {
                self.consent_answered(now, false, Answerer::User(by));
                self.end(now, EndCause::Rejected(by));
            }
            Question::ScreenAccess => {
                self.remote.rejected = true;
                self.emit(AuditEvent::ScreenAccessRejected { by });
                self.update_access(now, Grant::Policy);
            }
        }
        Ok(())
    }

    /// The local user ends the session, whatever its stage.
    pub fn user_terminates(&mut self, now: Instant, by: By) -> Result<(), AnswerError> {
        if matches!(self.stage, Stage::Ended(_)) {
            return Err(AnswerError::Ended);
        }
        self.end(now, EndCause::Terminated(by));
        Ok(())
    }

    /// The local user entered a remote desktop/VDI session.
    pub fn remote_session_started(&mut self, now: Instant) {
        if self.remote.active {
            return;
        }
        self.remote = Remote {
            active: true,
            ..Remote::default()
        };
        self.update_access(now, Grant::Policy);
    }

    /// The local user left the remote session.
    pub fn remote_session_ended(&mut self, now: Instant) {
        if !self.remote.active {
            return;
        }
        self.remote = Remote::default();
        self.update_access(now, Grant::RemoteSessionEnded);
    }

    /// New modes. Management changes apply to the next request, except Deny, which ends
    /// this session; a remote-screen change applies at once.
    pub fn set_modes(&mut self, modes: Modes, now: Instant) {
        let before = self.modes;
        self.modes = modes;
        if modes.management == Mode::Deny && before.management != Mode::Deny {
            if !matches!(self.stage, Stage::New | Stage::Ended(_)) {
                self.end(now, EndCause::Deny);
            }
            return;
        }
        if modes.remote_screen != before.remote_screen {
            // Deny overrides an earlier yes; leaving Deny lets a by-request ask again.
            if modes.remote_screen == Mode::Deny {
                self.remote.accepted = false;
            }
            self.update_access(now, Grant::Policy);
        }
    }

    /// Drops the session to view-only (or back). Allowed at any stage before the end, so a
    /// user can accept in view-only.
    pub fn set_view_only(&mut self, on: bool, _now: Instant, by: By) -> Result<(), AnswerError> {
        if matches!(self.stage, Stage::Ended(_)) {
            return Err(AnswerError::Ended);
        }
        if self.view_only != on {
            self.view_only = on;
            self.emit(AuditEvent::ViewOnlyChanged { on, by });
        }
        Ok(())
    }

    /// Applies a consent timeout that is due.
    pub fn tick(&mut self, now: Instant) {
        let Stage::Asking { asked, ask } = self.stage else {
            return;
        };
        if now < asked + ask.timeout {
            return;
        }
        let start = ask.on_timeout == TimeoutAction::Start;
        self.consent_answered(now, start, Answerer::Timeout);
        if start {
            self.start(now);
        } else {
            self.end(now, EndCause::NoAnswer);
        }
    }

    /// The admin's client went away.
    pub fn admin_disconnected(&mut self, now: Instant) {
        self.end(now, EndCause::AdminLeft);
    }

    /// The agent is stopping.
    pub fn shutdown(&mut self, now: Instant) {
        self.end(now, EndCause::Shutdown);
    }

    // ---- outputs ----

    pub fn outcome(&self) -> Outcome {
        match self.stage {
            Stage::New | Stage::Asking { .. } => Outcome::Pending,
            Stage::Running { .. } => Outcome::Started,
            Stage::Ended(cause) => Outcome::Ended(cause),
        }
    }

    /// The error-info code to end the connection with, once the session is over.
    pub fn end_reason(&self) -> Option<EndReason> {
        match self.stage {
            Stage::Ended(cause) => cause.end_reason(),
            _ => None,
        }
    }

    pub fn screen(&self) -> Screen {
        let reason = match self.stage {
            Stage::New => WaitReason::Consent,
            Stage::Asking { asked, ask } => {
                return Screen::Waiting {
                    reason: WaitReason::Consent,
                    deadline: Some(asked + ask.timeout),
                };
            }
            Stage::Running { .. } => match self.withheld() {
                None => return Screen::Real,
                Some(reason) => reason,
            },
            Stage::Ended(_) => WaitReason::Ended,
        };
        Screen::Waiting {
            reason,
            deadline: None,
        }
    }

    /// Admin input may reach the thin client: never before consent and screen access,
    /// never in view-only.
    pub fn input_allowed(&self) -> bool {
        self.screen() == Screen::Real && !self.view_only
    }

    pub fn view_only(&self) -> bool {
        self.view_only
    }

    pub fn admin(&self) -> SocketAddr {
        self.admin
    }

    pub fn modes(&self) -> Modes {
        self.modes
    }

    /// The question the local user may answer now, with its deadline if it has one.
    pub fn pending(&self) -> Option<(Question, Option<Instant>)> {
        match self.stage {
            Stage::Asking { asked, ask } => Some((Question::Consent, Some(asked + ask.timeout))),
            Stage::Running { .. } if self.withheld() == Some(WaitReason::ScreenAccess) => {
                Some((Question::ScreenAccess, None))
            }
            _ => None,
        }
    }

    /// When `tick` must run next.
    pub fn next_deadline(&self) -> Option<Instant> {
        match self.stage {
            Stage::Asking { asked, ask } => Some(asked + ask.timeout),
            _ => None,
        }
    }

    /// The next audit event, oldest first.
    pub fn poll_event(&mut self) -> Option<Audit> {
        self.events.pop_front()
    }

    // ---- inside ----

    fn emit(&mut self, event: AuditEvent) {
        self.events.push_back(Audit {
            admin: self.admin,
            event,
        });
    }

    fn check_pending(&self, about: Option<Question>) -> Result<Question, AnswerError> {
        if matches!(self.stage, Stage::Ended(_)) {
            return Err(AnswerError::Ended);
        }
        let (pending, _) = self.pending().ok_or(AnswerError::NothingPending)?;
        match about {
            Some(asked) if asked != pending => Err(AnswerError::NotThatQuestion { pending }),
            _ => Ok(pending),
        }
    }

    /// Why the started session's screen is withheld, or None when the admin may see it.
    fn withheld(&self) -> Option<WaitReason> {
        if !self.remote.active {
            return None;
        }
        match self.modes.remote_screen {
            Mode::AllowAuto => None,
            Mode::AllowByRequest if self.remote.accepted => None,
            Mode::AllowByRequest if !self.remote.rejected => Some(WaitReason::ScreenAccess),
            _ => Some(WaitReason::RemoteSessionEnd),
        }
    }

    fn consent_answered(&mut self, now: Instant, accepted: bool, by: Answerer) {
        if let Stage::Asking { asked, .. } = self.stage {
            self.emit(AuditEvent::ConsentAnswered {
                accepted,
                by,
                after: now.saturating_duration_since(asked),
            });
        }
    }

    fn start(&mut self, now: Instant) {
        self.stage = Stage::Running { started: now };
        let waited = self.since_login(now);
        self.emit(AuditEvent::SessionStarted { waited });
        match self.withheld() {
            None => self.emit(AuditEvent::ScreenAccessGranted {
                how: Grant::Policy,
                waited: Duration::ZERO,
            }),
            Some(reason) => {
                self.withheld_shown = Some((now, reason));
                self.emit(AuditEvent::ScreenWithheld { reason });
            }
        }
    }

    /// After a change in the remote side or the modes: reports a grant or a new withholding.
    fn update_access(&mut self, now: Instant, how: Grant) {
        if !matches!(self.stage, Stage::Running { .. }) {
            return;
        }
        match (self.withheld_shown, self.withheld()) {
            (Some((since, _)), None) => {
                self.withheld_shown = None;
                self.emit(AuditEvent::ScreenAccessGranted {
                    how,
                    waited: now.saturating_duration_since(since),
                });
            }
            (None, Some(reason)) => {
                self.withheld_shown = Some((now, reason));
                self.emit(AuditEvent::ScreenWithheld { reason });
            }
            // Still withheld, for another reason (a rejection, a mode change): say so.
            (Some((since, old)), Some(reason)) if old != reason => {
                self.withheld_shown = Some((since, reason));
                self.emit(AuditEvent::ScreenWithheld { reason });
            }
            _ => {}
        }
    }

    fn since_login(&self, now: Instant) -> Duration {
        self.authenticated_at
            .map_or(Duration::ZERO, |at| now.saturating_duration_since(at))
    }

    fn end(&mut self, now: Instant, cause: EndCause) {
        let active = match self.stage {
            Stage::Ended(_) => return,
            Stage::Running { started } => Some(now.saturating_duration_since(started)),
            _ => None,
        };
        self.stage = Stage::Ended(cause);
        self.withheld_shown = None;
        self.emit(AuditEvent::Ended {
            cause,
            duration: self.since_login(now),
            active,
        });
    }
}
