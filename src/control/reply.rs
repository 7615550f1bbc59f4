//! Replies and events, one JSON object per line.
//!
//! ```text
//! {"ok":true}                          a request was done
//! {"ok":false,"error":"..."}           it was not, and why
//! {"ok":true,"management":"allow-auto","remote_screen":"allow-by-request",
//!  "remote_session":false,"session":"none"|"pending"|"started"|"ended", ...}   status
//! {"event":"consent-asked","admin":"192.0.2.7:50123","mode":"allow-auto","timeout_ms":30000}
//! ```
//! Events carry durations in milliseconds; an audit line is the same object with `"ts"`
//! (Unix milliseconds) first.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::json::Writer;
use crate::policy::{AccessPolicy, Answerer, Audit, AuditEvent, By, Modes, Outcome, Screen};

pub fn ok() -> String {
    Writer::new().bool("ok", true).line()
}

pub fn error(message: &str) -> String {
    Writer::new().bool("ok", false).str("error", message).line()
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// What `status` (and the first line of `watch`) reports.
pub struct Status<'a> {
    pub modes: Modes,
    pub remote_session: bool,
    /// The admin session, if one exists (pending or running).
    pub session: Option<&'a AccessPolicy>,
}

impl Status<'_> {
    pub fn line(&self, now: Instant) -> String {
        let mut w = Writer::new()
            .bool("ok", true)
            .str("management", self.modes.management.as_str())
            .str("remote_screen", self.modes.remote_screen.as_str())
            .bool("remote_session", self.remote_session);
        let Some(p) = self.session else {
            return w.str("session", "none").line();
        };
        let stage = match p.outcome() {
            Outcome::Pending => "pending",
            Outcome::Started => "started",
            Outcome::Ended(_) => "ended",
        };
        w = w.str("session", stage).str("admin", &p.admin().to_string());
        w = match p.screen() {
            Screen::Real => w.str("screen", "real"),
            Screen::Waiting { reason, .. } => w
                .str("screen", "waiting")
                .str("waiting_for", reason.as_str()),
        };
        if let Some((question, deadline)) = p.pending() {
            w = w.str("pending", question.as_str());
            if let Some(deadline) = deadline {
                w = w.int("seconds_left", seconds_left(deadline, now));
            }
        }
        w.bool("view_only", p.view_only())
            .bool("input", p.input_allowed())
            .line()
    }
}

/// Whole seconds to `deadline`, rounded up, so a prompt never shows 0 while time is left.
pub fn seconds_left(deadline: Instant, now: Instant) -> i64 {
    let left = deadline.saturating_duration_since(now);
    i64::try_from(left.as_millis().div_ceil(1000)).unwrap_or(i64::MAX)
}

fn by(w: Writer, key: &str, who: By) -> Writer {
    match who {
        By::Peer { uid, pid } => w
            .str(key, "peer")
            .int("uid", i64::from(uid))
            .int("pid", i64::from(pid)),
        By::LocalPrompt => w.str(key, "local-prompt"),
    }
}

/// One event as a line; with `unix_ms`, an audit line (`"ts"` first).
pub fn event_line(audit: &Audit, unix_ms: Option<u64>) -> String {
    let mut w = Writer::new();
    if let Some(ts) = unix_ms {
        w = w.int("ts", i64::try_from(ts).unwrap_or(i64::MAX));
    }
    w = w
        .str("event", audit.event.name())
        .str("admin", &audit.admin.to_string());
    match audit.event {
        AuditEvent::Connected | AuditEvent::LoginFailed | AuditEvent::Authenticated => w,
        AuditEvent::Refused => w.str("reason", "another admin session is active"),
        AuditEvent::LeftOut { count } => w.int("count", i64::from(count)),
        AuditEvent::Disconnected { duration } => w.int("duration_ms", ms(duration)),
        AuditEvent::ConsentAsked { mode, timeout } => {
            w.str("mode", mode.as_str()).int("timeout_ms", ms(timeout))
        }
        AuditEvent::ConsentAnswered {
            accepted,
            by: who,
            after,
        } => {
            let w = w.bool("accepted", accepted);
            match who {
                Answerer::User(u) => by(w, "by", u),
                Answerer::Timeout => w.str("by", "timeout"),
            }
            .int("after_ms", ms(after))
        }
        AuditEvent::SessionStarted { waited } => w.int("waited_ms", ms(waited)),
        AuditEvent::ScreenWithheld { reason } => w.str("waiting_for", reason.as_str()),
        AuditEvent::ScreenAccessRejected { by: who } => by(w, "by", who),
        AuditEvent::ScreenAccessGranted { how, waited } => {
            let w = w.str("how", how.as_str());
            match how {
                crate::policy::Grant::User(u) => by(w, "by", u),
                _ => w,
            }
            .int("waited_ms", ms(waited))
        }
        AuditEvent::ViewOnlyChanged { on, by: who } => by(w.bool("on", on), "by", who),
        AuditEvent::Ended {
            cause,
            duration,
            active,
        } => {
            let mut w = w.str("cause", cause.as_str());
            if let Some(who) = cause.by() {
                w = by(w, "by", who);
            }
            w = w.int("duration_ms", ms(duration));
            match active {
                Some(active) => w.int("active_ms", ms(active)),
                None => w,
            }
        }
    }
    .line()
}

/// Tells watchers the modes changed.
pub fn modes_event(modes: Modes) -> String {
    Writer::new()
        .str("event", "modes")
        .str("management", modes.management.as_str())
        .str("remote_screen", modes.remote_screen.as_str())
        .line()
}

/// Tells watchers the local user entered or left a remote session.
pub fn remote_session_event(active: bool) -> String {
    Writer::new()
        .str("event", "remote-session")
        .bool("active", active)
        .line()
}

/// An audit line for an event without a policy (connect, failed login).
pub fn agent_event(admin: SocketAddr, event: AuditEvent, unix_ms: Option<u64>) -> String {
    event_line(&Audit { admin, event }, unix_ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::json::{Value, get, parse_object};
    use crate::policy::{AccessSettings, EndCause, Mode};

    fn admin() -> SocketAddr {
        "192.0.2.7:50123".parse().unwrap()
    }

    #[test]
    fn status_without_and_with_a_session() {
        let now = Instant::now();
        let modes = Modes::default();
        let none = Status {
            modes,
            remote_session: true,
            session: None,
        }
        .line(now);
        assert_eq!(
            none,
            "{\"ok\":true,\"management\":\"allow-auto\",\"remote_screen\":\"allow-by-request\",\
             \"remote_session\":true,\"session\":\"none\"}\n"
        );
        let mut p = AccessPolicy::new(AccessSettings::default(), modes, false, admin());
        p.authenticated(now, admin());
        let line = Status {
            modes,
            remote_session: false,
            session: Some(&p),
        }
        .line(now + Duration::from_millis(7_100));
        let o = parse_object(&line).unwrap();
        assert_eq!(get(&o, "session"), Some(&Value::Str("pending".into())));
        assert_eq!(get(&o, "pending"), Some(&Value::Str("consent".into())));
        assert_eq!(get(&o, "waiting_for"), Some(&Value::Str("consent".into())));
        assert_eq!(get(&o, "seconds_left"), Some(&Value::Int(23)));
        assert_eq!(get(&o, "input"), Some(&Value::Bool(false)));
    }

    #[test]
    fn events_are_flat_lines() {
        let user = By::Peer { uid: 1000, pid: 9 };
        let line = event_line(
            &Audit {
                admin: admin(),
                event: AuditEvent::Ended {
                    cause: EndCause::Terminated(user),
                    duration: Duration::from_secs(64),
                    active: Some(Duration::from_secs(60)),
                },
            },
            Some(1_700_000_000_000),
        );
        assert_eq!(
            line,
            "{\"ts\":1700000000000,\"event\":\"ended\",\"admin\":\"192.0.2.7:50123\",\
             \"cause\":\"terminated\",\"by\":\"peer\",\"uid\":1000,\"pid\":9,\
             \"duration_ms\":64000,\"active_ms\":60000}\n"
        );
        let asked = agent_event(
            admin(),
            AuditEvent::ConsentAsked {
                mode: Mode::AllowAuto,
                timeout: Duration::from_secs(30),
            },
            None,
        );
        assert_eq!(
            asked,
            "{\"event\":\"consent-asked\",\"admin\":\"192.0.2.7:50123\",\"mode\":\"allow-auto\",\
             \"timeout_ms\":30000}\n"
        );
        assert!(parse_object(&modes_event(Modes::default())).is_ok());
        assert!(parse_object(&remote_session_event(true)).is_ok());
        assert_eq!(
            error("x \"y\""),
            "{\"ok\":false,\"error\":\"x \\\"y\\\"\"}\n"
        );
    }

    #[test]
    fn seconds_round_up() {
        let t = Instant::now();
        assert_eq!(seconds_left(t + Duration::from_millis(1), t), 1);
        assert_eq!(seconds_left(t, t), 0);
        assert_eq!(seconds_left(t, t + Duration::from_secs(1)), 0);
    }
}
