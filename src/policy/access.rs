//! The vocabulary of one admin session under the access policy: settings, who acted, what
//! the admin sees, why a session ended, and the audit events. [`super::AccessPolicy`] is
//! the state machine that uses it.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use super::mode::Mode;
use crate::rdp::EndReason;

/// What happens when the local user does not answer a consent request in time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeoutAction {
    Start,
    Refuse,
}

impl TimeoutAction {
    pub fn as_str(self) -> &'static str {
        match self {
            TimeoutAction::Start => "start",
            TimeoutAction::Refuse => "refuse",
        }
    }

    /// `start` or `refuse`, as in files and flags.
    pub fn parse(text: &str) -> Option<TimeoutAction> {
        [TimeoutAction::Start, TimeoutAction::Refuse]
            .into_iter()
            .find(|action| action.as_str() == text)
    }
}

impl std::str::FromStr for TimeoutAction {
    type Err = ();
    fn from_str(text: &str) -> Result<Self, ()> {
        TimeoutAction::parse(text).ok_or(())
    }
}

/// How one management mode asks the local user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ask {
    pub timeout: Duration,
    pub on_timeout: TimeoutAction,
}

/// Consent settings per management mode (Deny never asks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccessSettings {
    pub allow_auto: Ask,
    pub allow_by_request: Ask,
}

/// The seed's 30 seconds for both modes.
pub const DEFAULT_CONSENT_TIMEOUT: Duration = Duration::from_secs(30);

impl Default for AccessSettings {
    /// As the seed says: no answer starts an allow-auto session and refuses a by-request one.
    fn default() -> Self {
        AccessSettings {
            allow_auto: Ask {
                timeout: DEFAULT_CONSENT_TIMEOUT,
                on_timeout: TimeoutAction::Start,
            },
            allow_by_request: Ask {
                timeout: DEFAULT_CONSENT_TIMEOUT,
                on_timeout: TimeoutAction::Refuse,
            },
        }
    }
}

impl AccessSettings {
    /// How `mode` asks; None for Deny.
    pub fn ask(&self, mode: Mode) -> Option<Ask> {
        match mode {
            Mode::AllowAuto => Some(self.allow_auto),
            Mode::AllowByRequest => Some(self.allow_by_request),
            Mode::Deny => None,
        }
    }
}

/// Who on the thin client acted. Admin input never is one of these.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum By {
    /// A control-socket peer (the thin client's UI, the CLI), from SO_PEERCRED.
    Peer { uid: u32, pid: i32 },
    /// The built-in prompt on fb0 answered from the local keyboard.
    LocalPrompt,
}

impl fmt::Display for By {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            By::Peer { uid, pid } => write!(f, "uid {uid} (pid {pid})"),
            By::LocalPrompt => f.write_str("local prompt"),
        }
    }
}

/// The two things the local user can be asked during one admin session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Question {
    /// May the admin's session start at all (management mode).
    Consent,
    /// May the admin see the screen while the user is in a remote session (remote-screen mode).
    ScreenAccess,
}

impl Question {
    pub fn as_str(self) -> &'static str {
        match self {
            Question::Consent => "consent",
            Question::ScreenAccess => "screen-access",
        }
    }
}

/// What the admin's waiting screen waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitReason {
    /// The local user's answer to the consent request.
    Consent,
    /// The local user's answer about the remote session's screen (allow-by-request).
    ScreenAccess,
    /// The local user's remote session to end (deny, or a rejected screen-access request).
    RemoteSessionEnd,
    /// Nothing any more: the session is over and the connection is closing.
    Ended,
}

impl WaitReason {
    pub fn as_str(self) -> &'static str {
        match self {
            WaitReason::Consent => "consent",
            WaitReason::ScreenAccess => "screen-access",
            WaitReason::RemoteSessionEnd => "remote-session-end",
            WaitReason::Ended => "ended",
        }
    }
}

/// Why a session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndCause {
    /// The local user said no to the consent request.
    Rejected(By),
    /// No answer in time and the mode refuses on timeout.
    NoAnswer,
    /// The management mode is (or became) Deny.
    Deny,
    /// The local user ended it.
    Terminated(By),
    /// The admin's client went away.
    AdminLeft,
    /// The agent is stopping.
    Shutdown,
}

impl EndCause {
    /// The error-info code to send so the client says why; None when the client left.
    pub fn end_reason(self) -> Option<EndReason> {
        match self {
            EndCause::Rejected(_) | EndCause::NoAnswer | EndCause::Deny => Some(EndReason::Denied),
            EndCause::Terminated(_) => Some(EndReason::ByUser),
            EndCause::Shutdown => Some(EndReason::Shutdown),
            EndCause::AdminLeft => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EndCause::Rejected(_) => "rejected",
            EndCause::NoAnswer => "no-answer",
            EndCause::Deny => "deny",
            EndCause::Terminated(_) => "terminated",
            EndCause::AdminLeft => "admin-left",
            EndCause::Shutdown => "shutdown",
        }
    }

    /// The local user who caused it, if one did.
    pub fn by(self) -> Option<By> {
        match self {
            EndCause::Rejected(by) | EndCause::Terminated(by) => Some(by),
            _ => None,
        }
    }
}

/// Who answered a question: a person or the clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answerer {
    User(By),
    Timeout,
}

/// How the admin came to see the real screen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grant {
    /// No remote session, or remote-screen mode allow-auto.
    Policy,
    /// The local user accepted.
    User(By),
    /// The local user's remote session ended.
    RemoteSessionEnded,
}

impl Grant {
    pub fn as_str(self) -> &'static str {
        match self {
            Grant::Policy => "policy",
            Grant::User(_) => "user",
            Grant::RemoteSessionEnded => "remote-session-ended",
        }
    }
}

/// One thing worth an audit line and a control-socket event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuditEvent {
    /// A TCP connection arrived (the agent emits this; the policy never does).
    Connected,
    /// The login failed (the agent emits this).
    LoginFailed,
    /// A connection that never had a session under the policy closed (failed login,
    /// handshake timeout, a second admin refused); `duration` counts from the connect.
    Disconnected {
        duration: Duration,
    },
    /// The login succeeded.
    Authenticated,
    /// A logged-in admin was refused because another admin holds the session (the agent
    /// emits this; the local user is not asked).
    Refused,
    /// Audit lines about connections that never logged in were left out (rate limit); the
    /// admin's address is the source's with port 0.
    LeftOut {
        count: u32,
    },
    /// The local user is asked; no answer by `timeout` means the mode's timeout action.
    ConsentAsked {
        mode: Mode,
        timeout: Duration,
    },
    ConsentAnswered {
        accepted: bool,
        by: Answerer,
        after: Duration,
    },
    /// The admin's session runs (what it may see follows in Screen* events).
    SessionStarted {
        waited: Duration,
    },
    /// The admin sees the waiting screen for `reason`.
    ScreenWithheld {
        reason: WaitReason,
    },
    /// The local user said no to screen access; the admin waits for the remote session to end.
    ScreenAccessRejected {
        by: By,
    },
    ScreenAccessGranted {
        how: Grant,
        waited: Duration,
    },
    ViewOnlyChanged {
        on: bool,
        by: By,
    },
    /// `duration` counts from the login, `active` from the session's start (None if it never started).
    Ended {
        cause: EndCause,
        duration: Duration,
        active: Option<Duration>,
    },
}

impl AuditEvent {
    /// The event's name in audit lines and control events.
    pub fn name(&self) -> &'static str {
        match self {
            AuditEvent::Connected => "connected",
            AuditEvent::LoginFailed => "login-failed",
            AuditEvent::Disconnected { .. } => "disconnected",
            AuditEvent::Authenticated => "authenticated",
            AuditEvent::Refused => "refused",
            AuditEvent::LeftOut { .. } => "left-out",
            AuditEvent::ConsentAsked { .. } => "consent-asked",
            AuditEvent::ConsentAnswered { .. } => "consent-answered",
            AuditEvent::SessionStarted { .. } => "session-started",
            AuditEvent::ScreenWithheld { .. } => "screen-withheld",
            AuditEvent::ScreenAccessRejected { .. } => "screen-access-rejected",
            AuditEvent::ScreenAccessGranted { .. } => "screen-access-granted",
            AuditEvent::ViewOnlyChanged { .. } => "view-only",
            AuditEvent::Ended { .. } => "ended",
        }
    }
}

/// An event and the admin it is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Audit {
    pub admin: SocketAddr,
    pub event: AuditEvent,
}

/// A local user's request that does not fit the session's state (the control reply says so).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnswerError {
    /// No question is open.
    NothingPending,
    /// The user answered another question than the one open (a stale click).
    NotThatQuestion { pending: Question },
    /// The session is over.
    Ended,
}

impl fmt::Display for AnswerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AnswerError::NothingPending => f.write_str("no request is waiting for an answer"),
            AnswerError::NotThatQuestion { pending } => {
                write!(f, "the open request is about {}", pending.as_str())
            }
            AnswerError::Ended => f.write_str("the session has ended"),
        }
    }
}
