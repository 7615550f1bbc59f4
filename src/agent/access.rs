//! The access policy and the local user's requests inside the core: the session's policy
//! clock, its audit events, and what the control socket asks. The decisions live in
//! `crate::policy`; the shell only carries the requests and their replies.

use std::time::Instant;

use super::conn::queue;
use super::core::{Core, Now};
use crate::control::{self, Request};
use crate::policy::{AccessPolicy, By, Mode, Outcome};
use crate::{debug, info, warn};

impl Core {
    /// Runs the session's policy clock, logs and broadcasts its events, ends the connection
    /// when the policy ended the session, and makes the screen and input follow it.
    pub(super) fn drive_policies(&mut self, now: Instant) {
        let Some(mut session) = self.session.take() else {
            return;
        };
        session.policy.tick(now);
        self.audit(&mut session.policy);
        let client = self.conns.get_mut(&session.id);
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
                client.linger(now);
                queue(client, &out, &self.watermarks, now);
            }
            let screen = session.policy.screen();
            let lines = (screen != crate::policy::Screen::Real).then(|| screen.lines(now));
            let input = session.policy.input_allowed() && client.closing.is_none();
            if client.rdp.is_active() {
                session.pipeline.show(lines.as_deref(), now);
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

    pub fn status_line(&self, now: Now) -> String {
        let now = now.mono;
        control::reply::Status {
            modes: self.modes,
            remote_session: self.remote.env.active(),
            session: self.session.as_ref().map(|s| &s.policy),
        }
        .line(now)
    }

    /// Carries out one authorized control request (`by` is who asked) and gives its reply.
    pub fn on_control(&mut self, now: Now, request: Request, by: By) -> String {
        let wall = now;
        let now = self.enter(now);
        match request {
            Request::Status | Request::Watch | Request::Prompt => self.status_line(wall),
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
            && let Err(e) = keeper.save_modes(modes, now, self.unix)
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
        self.broadcast(control::reply::modes_event(modes));
        control::reply::ok()
    }
}
