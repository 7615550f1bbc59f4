//! The access policy and the control socket inside the loop: each session's policy clock,
//! its audit events, and the local user's requests. The decisions live in `crate::policy`.

use std::time::Instant;

use mio::Token;

use super::{Agent, LINGER, unix_ms, unix_now};
use crate::control::{self, Incoming, Request};
use crate::policy::{AccessPolicy, Audit, By, Mode, Outcome};
use crate::state::Recovery;
use crate::{debug, info, warn};

impl Agent {
    /// Runs each session's policy clock, logs and broadcasts its events, ends sessions it
    /// ended, and makes the screen and input of the active session follow it.
    pub(super) fn drive_policies(&mut self, now: Instant) {
        let mut audits = Vec::new();
        for client in self.clients.values_mut() {
            let Some(policy) = client.policy.as_mut() else {
                continue;
            };
            policy.tick(now);
            while let Some(audit) = policy.poll_event() {
                audits.push(audit);
            }
            // Before activation the end waits for `Event::Accepted` (it needs the channels).
            if let Outcome::Ended(cause) = policy.outcome()
                && client.closing.is_none()
                && client.rdp.is_active()
            {
                info!("{}: session ended: {}", client.peer, cause.as_str());
                let mut out = Vec::new();
                if let Some(reason) = cause.end_reason() {
                    client.rdp.end(reason, &mut out);
                }
                client.closing = Some(now + LINGER);
                if let Err(e) = client
                    .transport
                    .queue(&out)
                    .and_then(|()| client.transport.flush())
                {
                    debug!("{}: write failed: {e}", client.peer);
                    client.closing = Some(now);
                }
            }
        }
        for audit in &audits {
            self.emit_audit(audit);
        }
        let Some(client) = self.session.and_then(|t| self.clients.get(&t)) else {
            return;
        };
        let (lines, input) = match client.policy.as_ref() {
            None => (None, true),
            Some(policy) => {
                let screen = policy.screen();
                let lines = (screen != crate::policy::Screen::Real).then(|| screen.lines(now));
                (lines, policy.input_allowed() && client.closing.is_none())
            }
        };
        if client.rdp.is_active() {
            self.screen.show(lines.as_deref(), now);
        }
        if self.input_open && !input {
            debug!("input: closed by the access policy");
            self.sink.release_all();
        }
        self.input_open = input;
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

    /// The client whose policy control requests act on: the active session's, else the
    /// oldest one still undecided.
    pub(super) fn policy_token(&self) -> Option<Token> {
        if let Some(token) = self.session
            && self.clients.get(&token).is_some_and(|c| c.policy.is_some())
        {
            return Some(token);
        }
        self.clients
            .iter()
            .filter(|(_, c)| {
                c.policy
                    .as_ref()
                    .is_some_and(|p| !matches!(p.outcome(), Outcome::Ended(_)))
            })
            .map(|(token, _)| *token)
            .min()
    }

    pub(super) fn status_line(&self, now: Instant) -> String {
        let session = self
            .policy_token()
            .and_then(|t| self.clients.get(&t))
            .and_then(|c| c.policy.as_ref());
        control::reply::Status {
            modes: self.modes,
            remote_session: self.remote.env.active(),
            session,
        }
        .line(now)
    }

    /// Carries out one authorized control request and answers it.
    pub(super) fn control_request(&mut self, incoming: Incoming) {
        let now = Instant::now();
        let by = By::Peer {
            uid: incoming.peer.uid,
            pid: incoming.peer.pid,
        };
        let reply = match incoming.request {
            Request::Status | Request::Watch => self.status_line(now),
            Request::Mode { which, mode } => self.set_mode(which, mode, by, now),
            Request::RemoteSession(started) => {
                self.remote_session_said(started, now);
                control::reply::ok()
            }
            request => {
                let policy = self
                    .policy_token()
                    .and_then(|t| self.clients.get_mut(&t))
                    .and_then(|c| c.policy.as_mut());
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
        for client in self.clients.values_mut() {
            if let Some(policy) = client.policy.as_mut() {
                policy.set_modes(modes, now);
            }
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
