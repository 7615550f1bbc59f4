//! The access policy and the control socket inside the loop: each session's policy clock,
//! its audit events, and the local user's requests. The decisions live in `crate::policy`.

use std::time::Instant;

use super::{Agent, LINGER, unix_ms, unix_now};
use crate::control::{self, Incoming, Request};
use crate::policy::{AccessPolicy, Audit, By, Mode, Outcome};
use crate::state::Recovery;
use crate::{debug, info, warn};

impl Agent {
    /// Runs the session's policy clock, logs and broadcasts its events, ends the connection
    /// when the policy ended the session, and makes the screen and input follow it.
    pub(super) fn drive_policies(&mut self, now: Instant) {
        let Some(mut session) = self.session.take() else {
            return;
        };
        session.policy.tick(now);
        self.audit(&mut session.policy);
        let client = self.clients.get_mut(&session.token);
        if let Some(client) = client {
            // Before the first activation the end waits for `Event::Accepted` (it needs the
            // channels); a session stalled in a reactivation is ended at once.
            if let Outcome::Ended(cause) = session.policy.outcome()
                && client.closing.is_none()
                && (client.rdp.is_active() || session.active_since.is_some())
            {
                info!("{}: session ended: {}", client.peer, cause.as_str());
                let mut out = Vec::new();
                if let Some(reason) = cause.end_reason() {
                    client.rdp.end(reason, &mut out);
                }
                client.closing = Some(now + LINGER);
                super::send(client, &out, &self.watermarks, now);
            }
            let screen = session.policy.screen();
            let lines = (screen != crate::policy::Screen::Real).then(|| screen.lines(now));
            let input = session.policy.input_allowed() && client.closing.is_none();
            if client.rdp.is_active() {
                self.screen.show(lines.as_deref(), now);
            }
            if session.input_open && !input {
                debug!("input: closed by the access policy");
                self.sink.release_all();
            }
            session.input_open = input;
        }
        self.session = Some(session);
    }

    /// Logs and broadcasts what a policy has to say (after it changed outside the loop's turn).
    pub(super) fn audit(&mut self, policy: &mut AccessPolicy) {
        while let Some(audit) = policy.poll_event() {
            self.emit_audit(&audit);
        }
    }

    /// One JSON line to the audit log (stderr or syslog, and the file) and one event line
    /// to every watcher.
    pub(super) fn emit_audit(&mut self, audit: &Audit) {
        let line = control::reply::event_line(audit, Some(unix_ms()));
        self.audit_log.write(&line);
        self.broadcast(&control::reply::event_line(audit, None));
    }

    pub(super) fn broadcast(&mut self, line: &str) {
        if let Some(server) = self.control.as_mut() {
            server.broadcast(self.poll.registry(), line);
        }
    }

    pub(super) fn status_line(&self, now: Instant) -> String {
        control::reply::Status {
            modes: self.modes,
            remote_session: self.remote.env.active(),
            session: self.session.as_ref().map(|s| &s.policy),
        }
        .line(now)
    }

    /// Carries out one authorized control request and answers it.
    pub(super) fn control_request(&mut self, incoming: Incoming, now: Instant) {
        let by = By::Peer {
            uid: incoming.peer.uid,
            pid: incoming.peer.pid,
        };
        let reply = match incoming.request {
            Request::Status | Request::Watch | Request::Prompt => self.status_line(now),
            Request::Mode { which, mode } => self.set_mode(which, mode, by, now),
            Request::RemoteSession(started) => {
                self.remote_session_said(started, now);
                control::reply::ok()
            }
            request => {
                let policy = self.session.as_mut().map(|s| &mut s.policy);
                match policy {
                    None => control::reply::error("no admin session"),
                    Some(policy) => {
                        let result = match request {
                            Request::Accept(about) => policy.user_accepts(now, by, about),
                            Request::Reject(about) => policy.user_rejects(now, by, about),
                            Request::Terminate => policy.user_terminates(now, by),
                            Request::ViewOnly(on) => policy.set_view_only(on, now, by),
                            _ => Ok(()),
                        };
                        match result {
                            Ok(()) => control::reply::ok(),
                            Err(e) => control::reply::error(&e.to_string()),
                        }
                    }
                }
            }
        };
        if let Some(server) = self.control.as_mut() {
            server.reply(self.poll.registry(), incoming.client, &reply);
        }
    }

    /// A mode change takes effect only once it is on disk: "ok" after the fsync, an error
    /// (and the modes in force unchanged) when the state cannot be written.
    fn set_mode(&mut self, which: control::ModeKind, mode: Mode, by: By, now: Instant) -> String {
        let mut modes = self.modes;
        match which {
            control::ModeKind::Management => modes.management = mode,
            control::ModeKind::RemoteScreen => modes.remote_screen = mode,
        }
        if let Some(keeper) = self.keeper.as_mut()
            && let Err(e) = keeper.save_modes(modes, now, unix_now())
        {
            warn!("modes not changed (by {by}): {e}");
            return control::reply::error(&format!("mode not changed: cannot save the state: {e}"));
        }
        self.modes = modes;
        info!(
            "modes: management {}, remote-screen {} (by {by})",
            modes.management, modes.remote_screen
        );
        if let Some(session) = self.session.as_mut() {
            session.policy.set_modes(modes, now);
        }
        self.broadcast(&control::reply::modes_event(modes));
        control::reply::ok()
    }

    /// Tells the audit log where the state came from when it was not the newest copy.
    pub fn state_recovered(&mut self, recovery: &Recovery) {
        let line = control::reply::recovery_line(recovery, unix_ms());
        self.audit_log.write(&line);
    }
}
