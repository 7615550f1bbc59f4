//! The agent's sans-IO core: every decision the agent makes, with time passed in and bytes
//! handed over. It owns the connections' protocol state (`Wire` + `rdp::Connection`), the
//! one session, the screen pipeline, the access policy, the keeper and the audit limiter;
//! it owns no socket, poll, signal or control socket. What only the shell can do comes back
//! as [`Action`]s, in order.
//!
//! Seams it keeps: the screen `Source` and the `InputSink` (traits: tests give their own),
//! the keeper's state file and publish hook, and the /proc scan for remote-session clients.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::AgentConfig;
use super::remote::RemoteWatch;
use super::screen::Screen;
use super::session::Session;
use super::watermarks::Watermarks;
use crate::input::InputSink;
use crate::net::Wire;
use crate::policy::{Admit, Audit, AuditEvent, AuditLimiter, Modes, Pending};
use crate::rdp::{Connection, Settings};
use crate::screen::Source;
use crate::state::{Admission, Keeper, Refusal};
use crate::{debug, info, warn};

/// A flood at the handshake cap gets one log line per this.
const CAP_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// How long a closing connection may take to deliver its last PDUs.
pub const LINGER: Duration = Duration::from_secs(2);

/// A connection, named by the shell (its poll token).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub usize);

/// The time of a step: the monotonic clock for every deadline, the wall clock (seconds)
/// for what is persisted or published (rotation days, state stamps).
#[derive(Clone, Copy, Debug)]
pub struct Now {
    pub mono: Instant,
    pub unix: u64,
}

/// What the core asks of the shell.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    /// A held connection was released: read what waits on its socket (its readiness event
    /// came while it was held, and edge-triggered polling will not repeat it).
    Read(ConnId),
    /// Write what waits (its close_notify is queued), then shut our direction down.
    ShutdownWrite(ConnId),
    /// The connection is gone: write `last_bytes` if the socket takes them, close it.
    Close { id: ConnId, last_bytes: Vec<u8> },
    /// An audit event: stamp it with the wall clock, write it, tell the watchers.
    Audit(Audit),
    /// A line for every control-socket watcher.
    Broadcast(String),
}

/// A connection until it ends: its bytes, its protocol state, its clocks.
pub(super) struct Conn {
    pub(super) wire: Wire,
    pub(super) rdp: Connection,
    pub(super) peer: SocketAddr,
    pub(super) handshake_deadline: Option<Instant>,
    /// Not served before this instant (a penalty after failed logins from its address).
    pub(super) hold_until: Option<Instant>,
    /// Set when the connection is ending: flush until this instant, then drop.
    pub(super) closing: Option<Instant>,
    /// Our side is shut down after the last bytes left; waiting for the peer to close, so
    /// unread input does not turn the close into a reset that loses the error info.
    pub(super) half_closed: bool,
    pub(super) connected: Instant,
    /// When it last sent anything (the handshake slot rule evicts the idle).
    pub(super) last_input: Instant,
    /// Logged in (the session's, or refused because another admin holds it).
    pub(super) logged_in: bool,
    /// Its `connected` line was written (the audit limiter may have held it back).
    pub(super) connect_audited: bool,
}

impl Conn {
    /// Ends the connection now: what waits gets one last try as it is dropped (a broken or
    /// hostile peer, a timeout: no grace period).
    pub(super) fn abort(&mut self, now: Instant) {
        self.close_by(now);
    }

    /// Ends it after its last PDUs (why it ends) had up to `LINGER` to leave.
    pub(super) fn linger(&mut self, now: Instant) {
        self.close_by(now + LINGER);
    }

    /// An end already set sooner stays: closing never gets later.
    fn close_by(&mut self, at: Instant) {
        self.closing = Some(self.closing.map_or(at, |set| set.min(at)));
    }
}

pub struct Core {
    pub(super) tls: Arc<rustls::ServerConfig>,
    public_key: Vec<u8>,
    pub(super) config: AgentConfig,
    pub(super) screen: Screen,
    pub(super) sink: Box<dyn InputSink>,
    pub(super) conns: HashMap<ConnId, Conn>,
    /// The one admin session, from its login to its connection's end.
    pub(super) session: Option<Session>,
    /// Password rotation and publishing, lockout, allowlist. Tests may run without one.
    pub(super) keeper: Option<Keeper>,
    /// The access modes in force (the keeper persists them when there is one).
    pub(super) modes: Modes,
    /// The local user's remote desktop/VDI session: the shell's word and the process detector.
    pub(super) remote: RemoteWatch,
    pub(super) audit_limiter: AuditLimiter,
    pub(super) watermarks: Arc<Watermarks>,
    /// Connections closed at the handshake cap since the last line about it.
    cap_dropped: usize,
    cap_logged_at: Option<Instant>,
    /// The wall clock of the current step (see [`Now`]).
    pub(super) unix: u64,
    actions: Vec<Action>,
}

impl Core {
    /// `tls` and `public_key` are the server identity's; the source is read once for its size.
    /// `stopwatch` times the encoder's own work against its per-turn budget (the shell gives
    /// `Instant::now`): a measure of CPU spent, not a deadline; the byte budget bounds a turn
    /// alike on a virtual clock.
    pub fn new(
        config: AgentConfig,
        tls: Arc<rustls::ServerConfig>,
        public_key: Vec<u8>,
        mut source: Box<dyn Source>,
        sink: Box<dyn InputSink>,
        now: Now,
        stopwatch: fn() -> Instant,
    ) -> io::Result<Core> {
        let frame = source
            .frame()
            .map_err(|e| io::Error::other(e.to_string()))?;
        let size = (frame.width, frame.height);
        Ok(Core {
            tls,
            public_key,
            screen: Screen::new(source, size, stopwatch),
            sink,
            conns: HashMap::new(),
            session: None,
            keeper: None,
            modes: config.modes,
            remote: RemoteWatch::new(&config.remote_processes),
            audit_limiter: AuditLimiter::new(config.audit_limits, now.mono),
            watermarks: Arc::default(),
            cap_dropped: 0,
            cap_logged_at: None,
            unix: now.unix,
            actions: Vec::new(),
            config,
        })
    }

    pub fn describe_screen(&self) -> String {
        self.screen.source.describe()
    }

    pub fn watermarks(&self) -> Arc<Watermarks> {
        Arc::clone(&self.watermarks)
    }

    /// From now on the keeper decides the password, who may connect, and when to rotate.
    pub fn set_keeper(&mut self, keeper: Keeper) {
        self.modes = keeper.modes();
        self.keeper = Some(keeper);
    }

    /// What the shell must do, in the order it arose.
    pub fn take_actions(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.actions)
    }

    /// Notes the step's time; every entry point starts here.
    pub(super) fn enter(&mut self, now: Now) -> Instant {
        self.unix = now.unix;
        now.mono
    }

    pub(super) fn emit_audit(&mut self, audit: &Audit) {
        self.actions.push(Action::Audit(*audit));
    }

    pub(super) fn broadcast(&mut self, line: String) {
        self.actions.push(Action::Broadcast(line));
    }

    pub(super) fn act(&mut self, action: Action) {
        self.actions.push(action);
    }

    /// A new connection from `peer`. False: refused (the shell closes its socket).
    pub fn on_accept(&mut self, now: Now, id: ConnId, peer: SocketAddr) -> bool {
        let now = self.enter(now);
        if self.conns.contains_key(&id) || !self.make_room(peer, now) {
            return false;
        }
        // Soon after a failed login the address waits: its handshake starts late (as
        // OpenSSH's penalties do) instead of failing, so a retyped password still works.
        let mut hold_until = None;
        match self.keeper.as_ref().map(|k| k.admit(peer.ip(), now)) {
            Some(Admission::Refuse(Refusal::Wait(wait))) => {
                debug!("{peer}: held {} ms after a failed login", wait.as_millis());
                hold_until = Some(now + wait);
            }
            Some(Admission::Refuse(reason)) => {
                info!("{peer}: refused before tls: {reason}");
                return false;
            }
            Some(Admission::Allow) | None => {}
        }
        let settings = Settings {
            user: self.config.user.clone(),
            password: self.password().to_owned(),
            server_public_key: self.public_key.clone(),
            width: self.screen.size.0,
            height: self.screen.size.1,
        };
        info!("{peer}: connected");
        let connect_audited = self.audit_limiter.allow(peer.ip(), now);
        if connect_audited {
            self.emit_audit(&Audit {
                admin: peer,
                event: AuditEvent::Connected,
            });
        }
        self.watermarks.saw_connections(self.conns.len() + 1);
        self.conns.insert(
            id,
            Conn {
                wire: Wire::new(),
                rdp: Connection::new(settings),
                peer,
                handshake_deadline: Some(hold_until.unwrap_or(now) + self.config.handshake_timeout),
                hold_until,
                closing: None,
                half_closed: false,
                connected: now,
                last_input: now,
                logged_in: false,
                connect_audited,
            },
        );
        true
    }

    /// Finds a handshake slot for a newcomer from `peer`: refuses it when its address holds
    /// its share or every slot makes progress, else closes the oldest idle handshake.
    fn make_room(&mut self, peer: SocketAddr, now: Instant) -> bool {
        let pending: Vec<Pending<ConnId>> = self
            .conns
            .iter()
            .filter(|(_, c)| c.handshake_deadline.is_some() && c.closing.is_none())
            .map(|(id, c)| Pending {
                key: *id,
                ip: c.peer.ip(),
                last_input: c.last_input,
            })
            .collect();
        let verdict = crate::policy::admit(self.config.slots, &pending, peer.ip(), now);
        let refused = match verdict {
            Admit::Accept => None,
            Admit::AcceptEvicting(id) => {
                if let Some(idle) = self.conns.get_mut(&id) {
                    info!(
                        "{}: closed: idle in the handshake, its slot is needed",
                        idle.peer
                    );
                    idle.abort(now);
                }
                None
            }
            Admit::AddressFull => Some("its address holds its share of handshakes"),
            Admit::Full => Some("every handshake slot is busy"),
        };
        let Some(why) = refused else {
            return true;
        };
        // At most one line per CAP_LOG_INTERVAL in a flood; the rest are counted in it.
        if self
            .cap_logged_at
            .is_none_or(|at| now.saturating_duration_since(at) >= CAP_LOG_INTERVAL)
        {
            let more = match self.cap_dropped {
                0 => String::new(),
                n => format!(" ({n} more closed at the cap since the last line)"),
            };
            warn!("{peer}: closed before tls: {why}{more}");
            self.cap_dropped = 0;
            self.cap_logged_at = Some(now);
        } else {
            self.cap_dropped += 1;
        }
        false
    }

    /// The shell may read this connection's socket now (it exists and is not held).
    pub fn wants_read(&self, id: ConnId) -> bool {
        self.conns.get(&id).is_some_and(|c| c.hold_until.is_none())
    }

    /// Output waits for this connection's socket.
    pub fn has_output(&self, id: ConnId) -> bool {
        self.conns
            .get(&id)
            .is_some_and(|c| c.wire.has_pending_output())
    }

    /// Any connection has output waiting (the shutdown flushes until none has).
    pub fn any_output(&self) -> bool {
        self.conns.values().any(|c| c.wire.has_pending_output())
    }

    /// The socket may take output: writes what waits. A write error ends the connection.
    pub fn on_writable(&mut self, now: Now, id: ConnId, socket: &mut dyn io::Write) {
        let now = self.enter(now);
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        if let Err(e) = conn.wire.write_to(socket) {
            if conn.closing.is_none() {
                debug!("{}: write failed: {e}", conn.peer);
            }
            conn.abort(now);
        }
    }

    /// When the core must run again, with no input before then (None: not until input).
    pub fn next_deadline(&self, now: Now) -> Option<Instant> {
        let now = now.mono;
        let mut earliest: Option<Instant> = None;
        let mut consider = |at: Option<Instant>| {
            if let Some(at) = at {
                earliest = Some(earliest.map_or(at, |e| e.min(at)));
            }
        };
        for conn in self.conns.values() {
            consider(conn.handshake_deadline);
            consider(conn.hold_until);
            consider(conn.closing);
        }
        consider(self.session.as_ref().and_then(|s| s.policy.next_deadline()));
        consider(self.audit_limiter.next_deadline());
        consider(self.keeper.as_ref().and_then(Keeper::next_deadline));
        consider(self.remote_scan_deadline());
        if let Some(session) = &self.session
            && let Some(conn) = self.conns.get(&session.id)
            && conn.rdp.is_active()
            && !session.pipeline.suppressed
        {
            let pipeline = &session.pipeline;
            if !pipeline.queue.is_empty() && !conn.wire.has_pending_output() {
                consider(Some(now));
            } else if pipeline.queue.is_empty() {
                consider(pipeline.next_scan);
            }
        }
        earliest
    }

    /// Everything that runs on time rather than on input, in order: held connections are
    /// released, the keeper rotates and publishes, the policy clock runs, handshakes time
    /// out, and the session's screen is scanned and encoded within this turn's budget.
    pub fn tick(&mut self, now: Now) {
        let now = self.enter(now);
        self.release_held(now);
        self.poll_keeper(now);
        self.poll_remote_processes(now);
        self.drive_policies(now);
        self.report_left_out(now);
        self.expire(now);
        self.screen_turn(now);
    }

    /// Held connections whose penalty is over are read again (the shell was told not to).
    fn release_held(&mut self, now: Instant) {
        let mut due: Vec<ConnId> = self
            .conns
            .iter_mut()
            .filter(|(_, c)| c.hold_until.is_some_and(|at| now >= at))
            .map(|(id, c)| {
                c.hold_until = None;
                *id
            })
            .collect();
        due.sort();
        for id in due {
            self.act(Action::Read(id));
        }
    }

    /// Rotation, publishing and pending saves; a rotation applies to the next connection.
    fn poll_keeper(&mut self, now: Instant) {
        if let Some(keeper) = self.keeper.as_mut() {
            keeper.poll(now, self.unix);
        }
    }

    /// The password a new connection is checked against: the keeper's (it owns and rotates
    /// it) or, in tests without one, the configured one. A connection keeps the one it got.
    fn password(&self) -> &str {
        match &self.keeper {
            Some(keeper) => keeper.password(),
            None => &self.config.password,
        }
    }

    fn expire(&mut self, now: Instant) {
        for conn in self.conns.values_mut() {
            if conn.closing.is_none() && conn.handshake_deadline.is_some_and(|d| now >= d) {
                warn!(
                    "{}: handshake timed out (at {})",
                    conn.peer,
                    conn.rdp.stage()
                );
                conn.abort(now);
            }
        }
    }

    /// Writes the audit limiter's summaries of the lines it left out.
    fn report_left_out(&mut self, now: Instant) {
        for (ip, count) in self.audit_limiter.expired(now) {
            warn!("audit: {count} lines about unauthenticated connections from {ip} left out");
            self.emit_audit(&Audit {
                admin: SocketAddr::new(ip, 0),
                event: AuditEvent::LeftOut { count },
            });
        }
    }

    pub(super) fn session_id(&self) -> Option<ConnId> {
        self.session.as_ref().map(|s| s.id)
    }
}
