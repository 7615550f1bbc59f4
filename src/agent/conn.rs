//! A connection's life inside the core: its bytes through the protocol, the events that
//! come out (login, activation, input), its screen output, and its two-step close.

use std::io;
use std::sync::Arc;
use std::time::Instant;

use super::core::{Action, Conn, ConnId, Core, Now};
use super::screen::Produced;
use super::session::{LoginVerdict, Session, login_verdict};
use super::watermarks::Watermarks;
use crate::input::InputEvent;
use crate::policy::{AccessPolicy, Audit, AuditEvent};
use crate::rdp::{Activation, ConnError, EndReason, Event};
use crate::screen::Rect;
use crate::{debug, error, info, warn};

impl Core {
    /// Bytes read from the connection's socket.
    pub fn on_bytes(&mut self, now: Now, id: ConnId, bytes: &[u8]) {
        let now = self.enter(now);
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        if !bytes.is_empty() {
            conn.last_input = now;
        }
        let mut plaintext = Vec::new();
        if let Err(e) = conn.wire.receive(bytes, &mut plaintext) {
            if conn.closing.is_none() {
                info!("{}: connection error: {e}", conn.peer);
                conn.abort(now);
            }
            return;
        }
        self.process(now, id, &plaintext);
        self.peer_may_have_closed(now, id);
    }

    /// The socket reached its end: the peer closed its side.
    pub fn on_eof(&mut self, now: Now, id: ConnId) {
        let now = self.enter(now);
        if let Some(conn) = self.conns.get_mut(&id) {
            conn.wire.set_peer_closed();
        }
        self.peer_may_have_closed(now, id);
    }

    /// Reading the socket failed (a reset, mostly): the connection ends.
    pub fn on_read_error(&mut self, now: Now, id: ConnId, error: &io::Error) {
        let now = self.enter(now);
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        if conn.closing.is_none() {
            info!("{}: connection error: {error}", conn.peer);
            conn.abort(now);
        }
        conn.wire.set_peer_closed();
    }

    fn peer_may_have_closed(&mut self, now: Instant, id: ConnId) {
        if let Some(conn) = self.conns.get_mut(&id)
            && conn.wire.peer_closed()
            && conn.closing.is_none()
        {
            info!("{}: client closed the connection", conn.peer);
            conn.abort(now);
        }
    }

    /// Feeds the protocol, handles its events, queues what it answers.
    fn process(&mut self, now: Instant, id: ConnId, plaintext: &[u8]) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        let mut out = Vec::new();
        let mut events = Vec::new();
        let mut failed_login = None;
        if !plaintext.is_empty() && conn.closing.is_none() {
            match conn.rdp.receive(plaintext, &mut out, &mut events) {
                Ok(()) => {}
                Err(ConnError::AuthFailed(reason)) => {
                    warn!("{}: login failed: {reason}", conn.peer);
                    failed_login = Some(conn.peer);
                    conn.linger(now);
                    if let Some(keeper) = self.keeper.as_mut() {
                        keeper.login_failed(conn.peer.ip(), now);
                    }
                }
                Err(e) => {
                    info!("{}: closing: {e}", conn.peer);
                    conn.linger(now);
                }
            }
        }
        if let Some(admin) = failed_login {
            self.emit_audit(&Audit {
                admin,
                event: AuditEvent::LoginFailed,
            });
        }
        for event in events {
            self.handle_event(id, event, &mut out, now);
        }
        let is_session = self.session_id() == Some(id);
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        // Lock keys the admin toggled come back from the kernel as LED changes.
        if is_session && let Some(leds) = self.sink.take_indicators() {
            conn.rdp.keyboard_indicators(leds, &mut out);
        }
        self.watermarks.saw_input(conn.rdp.buffered());
        queue(conn, &out, &self.watermarks, now);
    }

    fn handle_event(&mut self, id: ConnId, event: Event, out: &mut Vec<u8>, now: Instant) {
        match event {
            Event::UpgradeToTls => {
                let Some(conn) = self.conns.get_mut(&id) else {
                    return;
                };
                // The negotiation response goes in the clear (the wire writes it before
                // any record), then everything is TLS.
                let leftover = conn.rdp.take_leftover();
                let mut early = Vec::new();
                let result = conn.wire.queue(out).and_then(|()| {
                    conn.wire
                        .start_tls(Arc::clone(&self.tls), &leftover, &mut early)
                });
                out.clear();
                if let Err(e) = result {
                    info!("{}: tls failed: {e}", conn.peer);
                    conn.abort(now);
                }
            }
            Event::Authenticated { user } => self.logged_in(id, &user, now),
            Event::Accepted(activation) => self.activated(id, activation, out, now),
            Event::Input(input) => {
                if self
                    .session
                    .as_ref()
                    .is_some_and(|s| s.admits_input_from(id))
                    && self.conns.get(&id).is_some_and(|c| c.closing.is_none())
                {
                    if let InputEvent::MouseMove { .. } | InputEvent::MouseButton { .. } = input
                        && let Some(session) = self.session.as_mut()
                    {
                        session.pipeline.admin_pointed(now);
                    }
                    self.sink.handle(input);
                }
            }
            // Only the session's client steers the screen; a refused one is on its way out.
            Event::SuppressOutput(_) | Event::Refresh { .. } if self.session_id() != Some(id) => {}
            Event::SuppressOutput(suppress) => {
                debug!("suppress output {suppress}");
                if let Some(pipeline) = self.session.as_mut().map(|s| &mut s.pipeline) {
                    pipeline.suppressed = suppress;
                    if !suppress && let Some(damage) = pipeline.damage.as_mut() {
                        damage.invalidate_all();
                    }
                }
            }
            Event::Refresh {
                left,
                top,
                right,
                bottom,
            } => {
                let pipeline = self.session.as_mut().map(|s| &mut s.pipeline);
                if let Some(damage) = pipeline.and_then(|p| p.damage.as_mut()) {
                    damage.invalidate(Rect {
                        x: left,
                        y: top,
                        w: right.saturating_sub(left).saturating_add(1),
                        h: bottom.saturating_sub(top).saturating_add(1),
                    });
                }
            }
            Event::ClientClosed => {
                if let Some(conn) = self.conns.get_mut(&id) {
                    info!("{}: client disconnected", conn.peer);
                    conn.linger(now);
                }
            }
        }
    }

    /// A login: the one-session rule is decided here, once. The session and its policy are
    /// made together; any other admin is refused when it reaches the active phase.
    fn logged_in(&mut self, id: ConnId, user: &str, now: Instant) {
        self.scan_remote_processes(now);
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        info!("{}: login ok as {user}", conn.peer);
        if let Some(keeper) = self.keeper.as_mut() {
            keeper.login_succeeded(conn.peer.ip(), now);
        }
        let first_login = !conn.logged_in;
        conn.logged_in = true;
        let admin = conn.peer;
        if !conn.connect_audited {
            // Held back by the limiter; a login is worth its line.
            conn.connect_audited = true;
            self.emit_audit(&Audit {
                admin,
                event: AuditEvent::Connected,
            });
        }
        if !first_login {
            return;
        }
        match login_verdict(self.session.as_ref(), id) {
            LoginVerdict::Session => {
                let mut policy = AccessPolicy::new(
                    self.config.access,
                    self.modes,
                    self.remote.env.active(),
                    admin,
                );
                policy.authenticated(now, admin);
                self.session = Some(Session::new(id, policy));
                self.drive_policies(now);
            }
            LoginVerdict::Busy => {
                warn!("{admin}: refused: another admin session is active");
                self.emit_audit(&Audit {
                    admin,
                    event: AuditEvent::Authenticated,
                });
                self.emit_audit(&Audit {
                    admin,
                    event: AuditEvent::Refused,
                });
            }
        }
    }

    /// A connection reached the active phase (first time or after a reactivation). Only the
    /// session's own connection gets the screen; everything else is refused with a reason.
    fn activated(&mut self, id: ConnId, activation: Activation, out: &mut Vec<u8>, now: Instant) {
        let Activation {
            width,
            height,
            reactivation,
            max_request_size,
            scr_blt,
            skip_alpha,
            bitmap_cache,
            no_compression_header,
            new_pointers,
        } = activation;
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        conn.handshake_deadline = None;
        let session = self.session.as_mut().filter(|s| s.id == id);
        let Some(session) = session else {
            // Fails closed: no session of its own (another admin holds it, or no login).
            info!("{}: refused: not the admin session", conn.peer);
            conn.rdp.end(EndReason::Denied, out);
            conn.linger(now);
            return;
        };
        if let Some(reason) = session.policy.end_reason() {
            info!("{}: refused by the access policy", conn.peer);
            conn.rdp.end(reason, out);
            conn.linger(now);
            return;
        }
        let copies = scr_blt && self.config.scroll_copies;
        if !reactivation && session.active_since.is_none() {
            let how = match (scr_blt, self.config.scroll_copies) {
                (true, true) => "on",
                (false, _) => "off (the client draws no ScrBlt)",
                (true, false) => "off (--scroll-copies off)",
            };
            info!(
                "{}: session started at {width}x{height}; scroll copies {how}",
                conn.peer
            );
            session.active_since = Some(now);
            // `--screen auto` looks again for each session (a compositor may own the display
            // since the last): a new size is followed as a resize. Logged-in admins only.
            if self.screen.reselect()
                && self.config.local_prompt.is_some()
                && self.screen.source.describe().starts_with("kms:")
            {
                // The box still goes to /dev/fb0, where a DRM master's screen hides it.
                warn!(
                    "local prompt: the screen is now a DRM master's; the box on /dev/fb0 is not \
                     seen there: the image's UI must answer on the control socket, else the \
                     timeouts decide"
                );
            }
            // One compression history per session, kept over reactivations.
            session
                .pipeline
                .encoder
                .set_compression(conn.rdp.compression());
        }
        let pipeline = &mut session.pipeline;
        pipeline.encoder.set_skip_alpha(skip_alpha);
        let cells = bitmap_cache.as_ref().filter(|_| self.config.bitmap_cache);
        pipeline.set_bitmap_cache(cells, no_compression_header);
        pipeline.start(width, height, max_request_size, copies, now);
        pipeline.set_pointer_shapes(new_pointers);
        if !reactivation {
            let cache = match (
                pipeline.encoder.bitmap_cache_slots(),
                bitmap_cache,
                self.config.bitmap_cache,
            ) {
                (Some(slots), _, _) => format!("{slots} tiles"),
                (None, _, false) => "off (--bitmap-cache off)".into(),
                (None, None, true) => "off (the client has no Revision 2 cache with MemBlt)".into(),
                (None, Some(_), true) => {
                    "off (no cache of 64x64 tiles, or updates too small)".into()
                }
            };
            info!("{}: bitmap cache {cache}", conn.peer);
        }
        self.sink.set_screen_size(width, height);
        let screen = session.policy.screen();
        let lines = (screen != crate::policy::Screen::Real).then(|| screen.lines(now));
        pipeline.show(lines.as_deref(), now);
    }

    /// Scans and encodes for the session within this turn's budget.
    pub(super) fn screen_turn(&mut self, now: Instant) {
        let Some(session) = self.session.as_mut() else {
            return;
        };
        let Some(conn) = self.conns.get_mut(&session.id) else {
            return;
        };
        let pipeline = &mut session.pipeline;
        if !conn.rdp.is_active() || conn.closing.is_some() || pipeline.suppressed {
            return;
        }
        let mut out = Vec::new();
        match pipeline.produce(
            &mut self.screen,
            now,
            self.config.frame_interval,
            &conn.wire,
            &mut out,
        ) {
            Ok(Produced::Output) => {}
            Ok(Produced::Resized(width, height)) => {
                info!(
                    "{}: screen is now {width}x{height}, reactivating",
                    conn.peer
                );
                if let Err(e) = conn.rdp.resize(width, height, &mut out) {
                    warn!("{}: resize failed: {e}", conn.peer);
                    conn.abort(now);
                }
            }
            Err(e) => {
                if !self.screen.failing {
                    error!("screen source failed: {e}");
                }
                self.screen.failing = true;
            }
        }
        queue(conn, &out, &self.watermarks, now);
    }

    /// Closes in two steps: once the last bytes left, our side shuts down (close_notify,
    /// FIN) and the connection waits for the peer to close, reading and dropping what it
    /// sends; it is dropped then, or at its deadline. Closing with unread input would send
    /// a reset, and the client could lose the error info that says why it was ended.
    /// Runs after the shell wrote what the sockets take.
    pub fn reap(&mut self, now: Now) {
        let now_mono = self.enter(now);
        let mut done = Vec::new();
        let mut ids: Vec<ConnId> = self.conns.keys().copied().collect();
        ids.sort();
        for id in ids {
            let Some(conn) = self.conns.get_mut(&id) else {
                continue;
            };
            let Some(deadline) = conn.closing else {
                continue;
            };
            if !conn.wire.has_pending_output() && !conn.half_closed && now_mono < deadline {
                conn.wire.send_close_notify();
                conn.half_closed = true;
                self.act(Action::ShutdownWrite(id));
            }
            let conn = &self.conns[&id];
            let drained = !conn.wire.has_pending_output();
            if now_mono >= deadline || conn.wire.peer_closed() || (drained && !conn.half_closed) {
                done.push(id);
            }
        }
        for id in done {
            self.drop_conn(id, now_mono);
        }
    }

    fn drop_conn(&mut self, id: ConnId, now: Instant) {
        let Some(mut conn) = self.conns.remove(&id) else {
            return;
        };
        if !conn.half_closed {
            conn.wire.send_close_notify();
        }
        let last_bytes = conn.wire.take_pending();
        self.act(Action::Close { id, last_bytes });
        let session = self.session.take_if(|s| s.id == id);
        let Some(mut session) = session else {
            // Never held the session (no login, or refused): still an end line, limited
            // like its connect line unless it logged in.
            if conn.logged_in || self.audit_limiter.allow(conn.peer.ip(), now) {
                self.emit_audit(&Audit {
                    admin: conn.peer,
                    event: AuditEvent::Disconnected {
                        duration: now.saturating_duration_since(conn.connected),
                    },
                });
            }
            return;
        };
        session.policy.admin_disconnected(now);
        self.audit(&mut session.policy);
        self.sink.release_all();
        // Counted over the whole session, reactivations included; gone with it.
        let stats = session.pipeline.stats();
        let secs = session
            .active_since
            .map_or(0, |s| now.saturating_duration_since(s).as_secs());
        info!(
            "{}: session ended after {secs} s; screen: {} frames, {} bitmaps, {} copies ({} sideways), {} tiles from the bitmap cache and {} into it, {} pointer updates, {} bytes before TLS",
            conn.peer,
            stats.frames,
            stats.rects,
            stats.copies,
            stats.sideways,
            stats.cache_hits,
            stats.cache_misses,
            stats.pointer_updates,
            stats.bytes
        );
        // A rotation here applies to the next connection (see `Core::password`).
        if let Some(keeper) = self.keeper.as_mut() {
            keeper.session_ended(now, self.unix);
        }
    }

    /// The agent stops: tells every client why and queues its close. The shell then writes
    /// until nothing waits or `LINGER` passed, and calls [`Core::finish`].
    pub fn begin_shutdown(&mut self, now: Now) {
        let now = self.enter(now);
        if let Some(mut session) = self.session.take() {
            session.policy.shutdown(now);
            self.audit(&mut session.policy);
            self.session = Some(session);
        }
        for conn in self.conns.values_mut() {
            let mut out = Vec::new();
            conn.rdp.end(EndReason::Shutdown, &mut out);
            let _ = conn.wire.queue(&out);
            conn.wire.send_close_notify();
            conn.half_closed = true;
            conn.linger(now);
        }
    }

    /// Drops every connection and lets the keeper save and stop its hook.
    pub fn finish(&mut self, now: Now) {
        let now = self.enter(now);
        let mut ids: Vec<ConnId> = self.conns.keys().copied().collect();
        ids.sort();
        for id in ids {
            self.drop_conn(id, now);
        }
        if let Some(keeper) = self.keeper.as_mut() {
            keeper.shut_down(now, self.unix);
        }
    }
}

/// Queues `out` for the connection. A client whose unsent output passed its bound (it sends
/// but does not read) is closed now.
pub(super) fn queue(conn: &mut Conn, out: &[u8], watermarks: &Watermarks, now: Instant) {
    let result = conn.wire.queue(out);
    watermarks.saw_output(conn.wire.queued_since_drained());
    if let Err(e) = result {
        warn!("{}: disconnected: {e}", conn.peer);
        conn.abort(now);
    }
}
