//! The event loop: one thread, one `mio::Poll`. It only moves bytes and dispatches;
//! the protocol lives in `rdp`, the pixels in `screen`.
//!
//! Per turn: poll until the earliest deadline (handshake timeouts, the next screen scan,
//! lingering closes; none at all while no client is connected), serve ready sockets,
//! then encode a bounded amount of screen output for the one session.

use std::collections::{HashMap, HashSet};
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mio::net::TcpListener;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};
use nix::sys::signal::Signal;
use nix::sys::signalfd::SignalFd;

use crate::control::{self, LocalUser};
use crate::input::InputSink;
use crate::net::{Identity, ReadStatus, Transport};
use crate::policy::{
    AccessPolicy, AccessSettings, Admit, Audit, AuditEvent, AuditLimiter, AuditLimits, Modes,
    Pending, SlotLimits,
};
use crate::rdp::{ConnError, Connection, EndReason, Event, Settings};
use crate::screen::{Rect, Source};

mod access;
mod prompt;
mod remote;
mod screen;
mod session;
mod watermarks;
use crate::state::{Admission, Keeper, Refusal};
use crate::{debug, error, info, warn};
pub use prompt::PromptConfig;
use screen::{Produced, Screen};
use session::{LoginVerdict, Session, login_verdict};
pub use watermarks::Watermarks;

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);
const SIGNALS: Token = Token(2);
/// The control socket's listener; its peers take the tokens after it (below FIRST_CLIENT).
const CONTROL: Token = Token(3);
const FIRST_CLIENT: usize = 16;

/// A flood at the handshake cap gets one log line per this.
const CAP_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// How long a closing connection may take to deliver its last PDUs.
const LINGER: Duration = Duration::from_secs(2);

#[derive(Clone, Debug)]
pub struct AgentConfig {
    pub listen: SocketAddr,
    pub user: String,
    pub password: String,
    /// A connection that has not reached the active session by then is dropped.
    pub handshake_timeout: Duration,
    /// Screen scan interval while a session is active.
    pub frame_interval: Duration,
    /// Scrolled rows as ScrBlt copies for clients that support them.
    pub scroll_copies: bool,
    /// Connections in the handshake at once, in all and per address; who gives way.
    pub slots: SlotLimits,
    /// The access policy (consent, screen access, terminate): always on.
    pub access: AccessSettings,
    /// How many audit lines connections that never log in may cause.
    pub audit_limits: AuditLimits,
    /// The modes to start with when no keeper holds the persisted ones.
    pub modes: Modes,
    /// The control socket: how the local user answers, and who that user is.
    pub control: Option<ControlConfig>,
    /// Where audit lines go (stderr unless told otherwise).
    pub audit: crate::audit::AuditConfig,
    /// Process names that mean the local user is in a remote session (polled from /proc).
    pub remote_processes: Vec<String>,
    /// The built-in prompt on the framebuffer (`--local-prompt fb`).
    pub local_prompt: Option<PromptConfig>,
}

#[derive(Clone, Debug)]
pub struct ControlConfig {
    pub path: std::path::PathBuf,
    pub local: LocalUser,
}

impl AgentConfig {
    pub fn new(listen: SocketAddr, user: &str, password: &str) -> Self {
        AgentConfig {
            listen,
            user: user.to_owned(),
            password: password.to_owned(),
            handshake_timeout: Duration::from_secs(15),
            frame_interval: Duration::from_millis(33),
            scroll_copies: true,
            slots: SlotLimits::default(),
            access: AccessSettings::default(),
            audit_limits: AuditLimits::default(),
            modes: Modes::default(),
            control: None,
            audit: crate::audit::AuditConfig::default(),
            remote_processes: Vec::new(),
            local_prompt: None,
        }
    }
}

/// Stops a running agent from another thread (tests) or a signal handler path.
#[derive(Clone)]
pub struct StopHandle {
    flag: Arc<AtomicBool>,
    waker: Arc<Waker>,
}

impl StopHandle {
    pub fn stop(&self) {
        self.flag.store(true, Ordering::SeqCst);
        let _ = self.waker.wake();
    }
}

struct Client {
    transport: Transport,
    rdp: Connection,
    peer: SocketAddr,
    handshake_deadline: Option<Instant>,
    /// Not served before this instant (a penalty after failed logins from its address).
    hold_until: Option<Instant>,
    /// Set when the connection is ending: flush until this instant, then drop.
    closing: Option<Instant>,
    /// Our side is shut down after the last bytes left; waiting for the peer to close, so
    /// unread input does not turn the close into a reset that loses the error info.
    half_closed: bool,
    connected: Instant,
    /// When it last sent anything (the handshake slot rule evicts the idle).
    last_input: Instant,
    /// Logged in (the session's, or refused because another admin holds it).
    logged_in: bool,
    /// Its `connected` line was written (the audit limiter may have held it back).
    connect_audited: bool,
}

pub struct Agent {
    poll: Poll,
    listener: TcpListener,
    local_addr: SocketAddr,
    tls: Arc<rustls::ServerConfig>,
    public_key: Vec<u8>,
    config: AgentConfig,
    screen: Screen,
    sink: Box<dyn InputSink>,
    clients: HashMap<Token, Client>,
    /// Sockets whose read budget ran out: served again next turn without waiting.
    unread: HashSet<Token>,
    /// The one admin session, from its login to its connection's end.
    session: Option<Session>,
    next_token: usize,
    stop: Arc<AtomicBool>,
    waker: Arc<Waker>,
    signals: Option<SignalFd>,
    /// Password rotation and publishing, lockout, allowlist. Tests may run without one.
    keeper: Option<Keeper>,
    /// The access modes in force (the keeper persists them when there is one).
    modes: Modes,
    /// The local user's remote desktop/VDI session: the shell's word and the process detector.
    remote: remote::RemoteWatch,
    control: Option<control::Server>,
    audit_log: crate::audit::AuditLog,
    audit_limiter: AuditLimiter,
    /// The local prompt on the framebuffer, when asked for and the framebuffer opened.
    prompt: Option<prompt::LocalPrompt>,
    watermarks: Arc<Watermarks>,
    /// Connections closed at the handshake cap since the last line about it.
    cap_dropped: usize,
    cap_logged_at: Option<Instant>,
}

impl Agent {
    pub fn new(
        config: AgentConfig,
        identity: &Identity,
        mut source: Box<dyn Source>,
        sink: Box<dyn InputSink>,
    ) -> io::Result<Agent> {
        let size = {
            let frame = source
                .frame()
                .map_err(|e| io::Error::other(e.to_string()))?;
            (frame.width, frame.height)
        };
        let poll = Poll::new()?;
        let mut listener = TcpListener::bind(config.listen)?;
        let local_addr = listener.local_addr()?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let tls = identity
            .server_config()
            .map_err(|e| io::Error::other(e.to_string()))?;
        info!("listening on {local_addr}, screen {}", source.describe());
        let control = match &config.control {
            Some(c) => {
                let server = control::Server::bind(&c.path, poll.registry(), CONTROL, c.local)
                    .map_err(|e| {
                        io::Error::new(
                            e.kind(),
                            format!("control socket {}: {e}", c.path.display()),
                        )
                    })?;
                info!("control socket at {}", c.path.display());
                Some(server)
            }
            None => None,
        };
        let modes = config.modes;
        let audit_log = crate::audit::AuditLog::open(&config.audit);
        let audit_limiter = AuditLimiter::new(config.audit_limits, Instant::now());
        let remote = remote::RemoteWatch::new(&config.remote_processes);
        let prompt = config
            .local_prompt
            .as_ref()
            .and_then(prompt::LocalPrompt::open);
        Ok(Agent {
            poll,
            listener,
            local_addr,
            tls,
            public_key: identity.public_key.clone(),
            config,
            screen: Screen::new(source, size),
            sink,
            clients: HashMap::new(),
            unread: HashSet::new(),
            session: None,
            next_token: FIRST_CLIENT,
            stop: Arc::new(AtomicBool::new(false)),
            waker,
            signals: None,
            keeper: None,
            modes,
            remote,
            control,
            audit_log,
            audit_limiter,
            prompt,
            watermarks: Arc::default(),
            cap_dropped: 0,
            cap_logged_at: None,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn stop_handle(&self) -> StopHandle {
        StopHandle {
            flag: Arc::clone(&self.stop),
            waker: Arc::clone(&self.waker),
        }
    }

    /// The buffers' high-water marks (tests, soak).
    #[doc(hidden)]
    pub fn watermarks(&self) -> Arc<Watermarks> {
        Arc::clone(&self.watermarks)
    }

    /// Hands the credentials keeper to the loop: from now on it decides the password,
    /// who may connect, and when to rotate and publish.
    pub fn set_keeper(&mut self, keeper: Keeper) {
        self.config.password = keeper.password().to_owned();
        self.modes = keeper.modes();
        self.keeper = Some(keeper);
    }

    /// Serves SIGTERM/SIGINT (stop) and SIGHUP from a signalfd; the signals must already
    /// be blocked in every thread.
    pub fn watch_signals(&mut self, signals: SignalFd) -> io::Result<()> {
        self.poll.registry().register(
            &mut SourceFd(&signals.as_raw_fd()),
            SIGNALS,
            Interest::READABLE,
        )?;
        self.signals = Some(signals);
        Ok(())
    }

    pub fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(64);
        loop {
            // The clock is read here only: to know how long to sleep, and once per turn.
            let before = Instant::now();
            let timeout = self
                .next_deadline(before)
                .map(|at| at.saturating_duration_since(before));
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            let now = Instant::now();
            let mut incoming = Vec::new();
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept_all(now),
                    WAKER => {}
                    SIGNALS => self.read_signals(),
                    token if self.prompt.as_ref().is_some_and(|p| p.owns(token)) => {
                        self.prompt_keys(token, now);
                    }
                    token if token.0 < FIRST_CLIENT => {
                        if let Some(server) = self.control.as_mut() {
                            server.ready(self.poll.registry(), token, &mut incoming);
                        }
                    }
                    token => self.serve(token, now),
                }
            }
            for request in incoming {
                self.control_request(request, now);
            }
            for token in std::mem::take(&mut self.unread) {
                self.serve(token, now);
            }
            self.release_held(now);
            if self.stop.load(Ordering::SeqCst) {
                self.shut_down(now);
                return Ok(());
            }
            self.poll_keeper(now);
            self.poll_remote_processes(now);
            self.drive_policies(now);
            self.drive_prompt(now);
            self.report_left_out(now);
            self.expire(now);
            self.screen_turn(now);
            self.reap(now);
        }
    }

    fn next_deadline(&self, now: Instant) -> Option<Instant> {
        if !self.unread.is_empty() {
            return Some(now);
        }
        let mut earliest: Option<Instant> = None;
        let mut consider = |at: Option<Instant>| {
            if let Some(at) = at {
                earliest = Some(earliest.map_or(at, |e| e.min(at)));
            }
        };
        for client in self.clients.values() {
            consider(client.handshake_deadline);
            consider(client.hold_until);
            consider(client.closing);
        }
        consider(self.session.as_ref().and_then(|s| s.policy.next_deadline()));
        consider(self.audit_limiter.next_deadline());
        consider(self.keeper.as_ref().and_then(Keeper::next_deadline));
        consider(self.remote_scan_deadline());
        consider(self.prompt_deadline(now));
        if let Some(client) = self.session_client()
            && client.rdp.is_active()
            && !self.screen.suppressed
        {
            if !self.screen.queue.is_empty() && !client.transport.has_pending_output() {
                consider(Some(now));
            } else if self.screen.queue.is_empty() {
                consider(self.screen.next_scan);
            }
        }
        earliest
    }

    fn accept_all(&mut self, now: Instant) {
        loop {
            let (socket, peer) = match self.listener.accept() {
                Ok(pair) => pair,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // EMFILE and friends: log and try again on the next event.
                    warn!("accept failed: {e}");
                    return;
                }
            };
            if !self.make_room(peer, now) {
                drop(socket);
                continue;
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
                    drop(socket);
                    continue;
                }
                Some(Admission::Allow) | None => {}
            }
            let _ = socket.set_nodelay(true);
            let token = Token(self.next_token);
            self.next_token = self.next_token.wrapping_add(1).max(FIRST_CLIENT);
            let mut transport = Transport::new(socket);
            if let Err(e) = self.poll.registry().register(
                transport.socket(),
                token,
                Interest::READABLE | Interest::WRITABLE,
            ) {
                warn!("{peer}: cannot register the connection: {e}");
                continue;
            }
            let settings = Settings {
                user: self.config.user.clone(),
                password: self.config.password.clone(),
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
            self.watermarks.saw_connections(self.clients.len() + 1);
            self.clients.insert(
                token,
                Client {
                    transport,
                    rdp: Connection::new(settings),
                    peer,
                    handshake_deadline: Some(
                        hold_until.unwrap_or(now) + self.config.handshake_timeout,
                    ),
                    hold_until,
                    closing: None,
                    half_closed: false,
                    connected: now,
                    last_input: now,
                    logged_in: false,
                    connect_audited,
                },
            );
        }
    }

    /// Finds a handshake slot for a newcomer from `peer`: refuses it when its address holds
    /// its share or every slot makes progress, else closes the oldest idle handshake.
    fn make_room(&mut self, peer: SocketAddr, now: Instant) -> bool {
        let pending: Vec<Pending<Token>> = self
            .clients
            .iter()
            .filter(|(_, c)| c.handshake_deadline.is_some() && c.closing.is_none())
            .map(|(token, c)| Pending {
                key: *token,
                ip: c.peer.ip(),
                last_input: c.last_input,
            })
            .collect();
        let verdict = crate::policy::admit(self.config.slots, &pending, peer.ip(), now);
        let refused = match verdict {
            Admit::Accept => None,
            Admit::AcceptEvicting(token) => {
                if let Some(idle) = self.clients.get_mut(&token) {
                    info!(
                        "{}: closed: idle in the handshake, its slot is needed",
                        idle.peer
                    );
                    idle.closing = Some(now);
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

    fn read_signals(&mut self) {
        let Some(signals) = self.signals.as_mut() else {
            return;
        };
        while let Ok(Some(info)) = signals.read_signal() {
            match Signal::try_from(info.ssi_signo as i32) {
                Ok(Signal::SIGTERM) | Ok(Signal::SIGINT) => {
                    info!(
                        "stopping on {}",
                        Signal::try_from(info.ssi_signo as i32).map_or("signal", |s| s.as_str())
                    );
                    self.stop.store(true, Ordering::SeqCst);
                }
                Ok(other) => debug!("ignoring {}", other.as_str()),
                Err(_) => {}
            }
        }
    }

    /// Serves held connections whose penalty is over (they got no readiness event since).
    fn release_held(&mut self, now: Instant) {
        let due: Vec<Token> = self
            .clients
            .iter_mut()
            .filter(|(_, c)| c.hold_until.is_some_and(|at| now >= at))
            .map(|(token, c)| {
                c.hold_until = None;
                *token
            })
            .collect();
        for token in due {
            self.serve(token, now);
        }
    }

    /// Reads, feeds the protocol, handles its events, writes.
    fn serve(&mut self, token: Token, now: Instant) {
        let Some(client) = self.clients.get_mut(&token) else {
            return;
        };
        if client.hold_until.is_some() {
            return;
        }
        let mut plaintext = Vec::new();
        let read_before = client.transport.bytes_read();
        let status = match client.transport.read(&mut plaintext) {
            Ok(status) => status,
            Err(e) => {
                if client.closing.is_none() {
                    info!("{}: connection error: {e}", client.peer);
                }
                ReadStatus::Closed
            }
        };
        if status == ReadStatus::More {
            self.unread.insert(token);
        }
        if client.transport.bytes_read() != read_before {
            client.last_input = now;
        }
        let mut out = Vec::new();
        let mut events = Vec::new();
        let mut failed_login = None;
        if !plaintext.is_empty() && client.closing.is_none() {
            match client.rdp.receive(&plaintext, &mut out, &mut events) {
                Ok(()) => {}
                Err(ConnError::AuthFailed(reason)) => {
                    warn!("{}: login failed: {reason}", client.peer);
                    failed_login = Some(client.peer);
                    client.closing = Some(now + LINGER);
                    if let Some(keeper) = self.keeper.as_mut() {
                        keeper.login_failed(client.peer.ip(), now);
                    }
                }
                Err(e) => {
                    info!("{}: closing: {e}", client.peer);
                    client.closing = Some(now + LINGER);
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
            self.handle_event(token, event, &mut out, now);
        }
        let is_session = self.session_token() == Some(token);
        let Some(client) = self.clients.get_mut(&token) else {
            return;
        };
        // Lock keys the admin toggled come back from the kernel as LED changes.
        if is_session && let Some(leds) = self.sink.take_indicators() {
            client.rdp.keyboard_indicators(leds, &mut out);
        }
        self.watermarks.saw_input(client.rdp.buffered());
        send(client, &out, &self.watermarks, now);
        if status == ReadStatus::Closed && client.closing.is_none() {
            info!("{}: client closed the connection", client.peer);
            client.closing = Some(now);
        }
    }

    fn handle_event(&mut self, token: Token, event: Event, out: &mut Vec<u8>, now: Instant) {
        match event {
            Event::UpgradeToTls => {
                let Some(client) = self.clients.get_mut(&token) else {
                    return;
                };
                // The negotiation response goes in the clear, then everything is TLS.
                let leftover = client.rdp.take_leftover();
                let result = client
                    .transport
                    .queue(out)
                    .and_then(|()| client.transport.flush())
                    .and_then(|()| client.transport.start_tls(Arc::clone(&self.tls), &leftover));
                out.clear();
                if let Err(e) = result {
                    info!("{}: tls failed: {e}", client.peer);
                    client.closing = Some(now);
                }
            }
            Event::Authenticated { user } => self.logged_in(token, &user, now),
            Event::Accepted {
                width,
                height,
                reactivation,
                max_request_size,
                scr_blt,
                skip_alpha,
            } => {
                let activation = Activation {
                    width,
                    height,
                    reactivation,
                    max_request_size,
                    scr_blt,
                    skip_alpha,
                };
                self.activated(token, activation, out, now);
            }
            Event::Input(input) => {
                if self
                    .session
                    .as_ref()
                    .is_some_and(|s| s.admits_input_from(token))
                    && self
                        .clients
                        .get(&token)
                        .is_some_and(|c| c.closing.is_none())
                {
                    self.sink.handle(input);
                }
            }
            // Only the session's client steers the screen; a refused one is on its way out.
            Event::SuppressOutput(_) | Event::Refresh { .. }
                if self.session_token() != Some(token) => {}
            Event::SuppressOutput(suppress) => {
                debug!("suppress output {suppress}");
                self.screen.suppressed = suppress;
                if !suppress && let Some(damage) = self.screen.damage.as_mut() {
                    damage.invalidate_all();
                }
            }
            Event::Refresh {
                left,
                top,
                right,
                bottom,
            } => {
                if let Some(damage) = self.screen.damage.as_mut() {
                    damage.invalidate(Rect {
                        x: left,
                        y: top,
                        w: right.saturating_sub(left).saturating_add(1),
                        h: bottom.saturating_sub(top).saturating_add(1),
                    });
                }
            }
            Event::ClientClosed => {
                if let Some(client) = self.clients.get_mut(&token) {
                    info!("{}: client disconnected", client.peer);
                    client.closing = Some(now + LINGER);
                }
            }
        }
    }

    /// A login: the one-session rule is decided here, once. The session and its policy are
    /// made together; any other admin is refused when it reaches the active phase.
    fn logged_in(&mut self, token: Token, user: &str, now: Instant) {
        self.scan_remote_processes(now);
        let Some(client) = self.clients.get_mut(&token) else {
            return;
        };
        info!("{}: login ok as {user}", client.peer);
        if let Some(keeper) = self.keeper.as_mut() {
            keeper.login_succeeded(client.peer.ip(), now);
        }
        let first_login = !client.logged_in;
        client.logged_in = true;
        let admin = client.peer;
        if !client.connect_audited {
            // Held back by the limiter; a login is worth its line.
            client.connect_audited = true;
            self.emit_audit(&Audit {
                admin,
                event: AuditEvent::Connected,
            });
        }
        if !first_login {
            return;
        }
        match login_verdict(self.session.as_ref(), token) {
            LoginVerdict::Session => {
                let mut policy = AccessPolicy::new(
                    self.config.access,
                    self.modes,
                    self.remote.env.active(),
                    admin,
                );
                policy.authenticated(now, admin);
                self.session = Some(Session::new(token, policy));
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
    fn activated(&mut self, token: Token, activation: Activation, out: &mut Vec<u8>, now: Instant) {
        let Activation {
            width,
            height,
            reactivation,
            max_request_size,
            scr_blt,
            skip_alpha,
        } = activation;
        let Some(client) = self.clients.get_mut(&token) else {
            return;
        };
        client.handshake_deadline = None;
        let session = self.session.as_mut().filter(|s| s.token == token);
        let Some(session) = session else {
            // Fails closed: no session of its own (another admin holds it, or no login).
            info!("{}: refused: not the admin session", client.peer);
            client.rdp.end(EndReason::Denied, out);
            client.closing = Some(now + LINGER);
            return;
        };
        if let Some(reason) = session.policy.end_reason() {
            info!("{}: refused by the access policy", client.peer);
            client.rdp.end(reason, out);
            client.closing = Some(now + LINGER);
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
                client.peer
            );
            session.active_since = Some(now);
            // `--screen auto` looks again for each session (a compositor may own the display
            // since the last): a new size is followed as a resize. Logged-in admins only.
            if self.screen.reselect()
                && self.prompt.is_some()
                && self.screen.source.describe().starts_with("kms:")
            {
                // The box still goes to /dev/fb0, where a DRM master's screen hides it.
                warn!(
                    "local prompt: the screen is now a DRM master's; the box on /dev/fb0 is not \
                     seen there: the image's UI must answer on the control socket, else the \
                     timeouts decide"
                );
            }
            // One compression history per connection, kept over reactivations.
            self.screen
                .encoder
                .set_compression(client.rdp.compression());
        }
        self.screen.encoder.set_skip_alpha(skip_alpha);
        self.screen
            .start(width, height, max_request_size, copies, now);
        self.sink.set_screen_size(width, height);
        let screen = session.policy.screen();
        let lines = (screen != crate::policy::Screen::Real).then(|| screen.lines(now));
        self.screen.show(lines.as_deref(), now);
    }

    fn session_token(&self) -> Option<Token> {
        self.session.as_ref().map(|s| s.token)
    }

    fn session_client(&self) -> Option<&Client> {
        self.session_token().and_then(|t| self.clients.get(&t))
    }

    /// Rotation, publishing and pending saves; a rotation applies to the next login.
    fn poll_keeper(&mut self, now: Instant) {
        if let Some(keeper) = self.keeper.as_mut()
            && keeper.poll(now, unix_now())
        {
            self.config.password = keeper.password().to_owned();
        }
    }

    fn expire(&mut self, now: Instant) {
        for client in self.clients.values_mut() {
            if client.closing.is_none() && client.handshake_deadline.is_some_and(|d| now >= d) {
                warn!(
                    "{}: handshake timed out (at {})",
                    client.peer,
                    client.rdp.stage()
                );
                client.closing = Some(now);
            }
        }
    }

    /// Scans and encodes for the session within this turn's budget.
    fn screen_turn(&mut self, now: Instant) {
        let Some(token) = self.session_token() else {
            return;
        };
        let Some(client) = self.clients.get_mut(&token) else {
            return;
        };
        if !client.rdp.is_active() || client.closing.is_some() || self.screen.suppressed {
            return;
        }
        let mut out = Vec::new();
        match self
            .screen
            .produce(now, self.config.frame_interval, &client.transport, &mut out)
        {
            Ok(Produced::Output) => {}
            Ok(Produced::Resized(width, height)) => {
                info!(
                    "{}: screen is now {width}x{height}, reactivating",
                    client.peer
                );
                if let Err(e) = client.rdp.resize(width, height, &mut out) {
                    warn!("{}: resize failed: {e}", client.peer);
                    client.closing = Some(now);
                }
            }
            Err(e) => {
                if !self.screen.source_failing {
                    error!("screen source failed: {e}");
                }
                self.screen.source_failing = true;
            }
        }
        send(client, &out, &self.watermarks, now);
    }

    /// Closes in two steps: once the last bytes left, our side shuts down (close_notify,
    /// FIN) and the connection waits for the peer to close, reading and dropping what it
    /// sends; it is dropped then, or at its deadline. Closing with unread input would send
    /// a reset, and the client could lose the error info that says why it was ended.
    fn reap(&mut self, now: Instant) {
        let mut done = Vec::new();
        for (token, client) in &mut self.clients {
            let Some(deadline) = client.closing else {
                continue;
            };
            let _ = client.transport.flush();
            let drained = !client.transport.has_pending_output();
            if drained && !client.half_closed && now < deadline {
                client.transport.send_close_notify();
                let _ = client.transport.flush();
                client.transport.shutdown_write();
                client.half_closed = true;
            }
            let drained = !client.transport.has_pending_output();
            if now >= deadline || client.transport.peer_closed() || (drained && !client.half_closed)
            {
                done.push(*token);
            }
        }
        for token in done {
            self.drop_client(token, now);
        }
    }

    fn drop_client(&mut self, token: Token, now: Instant) {
        let Some(mut client) = self.clients.remove(&token) else {
            return;
        };
        self.unread.remove(&token);
        if !client.half_closed {
            client.transport.send_close_notify();
            let _ = client.transport.flush();
        }
        client.transport.shutdown();
        let _ = self.poll.registry().deregister(client.transport.socket());
        let session = self.session.take_if(|s| s.token == token);
        let Some(mut session) = session else {
            // Never held the session (no login, or refused): still an end line, limited
            // like its connect line unless it logged in.
            if client.logged_in || self.audit_limiter.allow(client.peer.ip(), now) {
                self.emit_audit(&Audit {
                    admin: client.peer,
                    event: AuditEvent::Disconnected {
                        duration: now.saturating_duration_since(client.connected),
                    },
                });
            }
            return;
        };
        session.policy.admin_disconnected(now);
        self.audit(&mut session.policy);
        self.sink.release_all();
        let stats = self.screen.stats;
        self.screen.stop();
        let secs = session
            .active_since
            .map_or(0, |s| now.saturating_duration_since(s).as_secs());
        info!(
            "{}: session ended after {secs} s; screen: {} frames, {} bitmaps, {} copies ({} sideways), {} bytes before TLS",
            client.peer, stats.frames, stats.rects, stats.copies, stats.sideways, stats.bytes
        );
        if let Some(keeper) = self.keeper.as_mut()
            && keeper.session_ended(now, unix_now())
        {
            self.config.password = keeper.password().to_owned();
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

    /// Tells every client why it is dropped and gives the output a bounded time to leave.
    fn shut_down(&mut self, now: Instant) {
        if let Some(session) = self.session.as_mut() {
            session.policy.shutdown(now);
        }
        if let Some(mut session) = self.session.take() {
            self.audit(&mut session.policy);
            self.session = Some(session);
        }
        for client in self.clients.values_mut() {
            let mut out = Vec::new();
            client.rdp.end(EndReason::Shutdown, &mut out);
            let _ = client.transport.queue(&out);
            client.transport.send_close_notify();
            let _ = client.transport.flush();
            client.half_closed = true;
            client.closing = Some(now + LINGER);
        }
        let mut events = Events::with_capacity(16);
        while self
            .clients
            .values()
            .any(|c| c.transport.has_pending_output())
            && Instant::now() < now + LINGER
        {
            let _ = self.poll.poll(&mut events, Some(Duration::from_millis(50)));
            for client in self.clients.values_mut() {
                let _ = client.transport.flush();
            }
        }
        let tokens: Vec<Token> = self.clients.keys().copied().collect();
        let end = Instant::now();
        for token in tokens {
            self.drop_client(token, end);
        }
        if let Some(prompt) = self.prompt.as_mut() {
            prompt.hide(self.poll.registry());
        }
        if let Some(keeper) = self.keeper.as_mut() {
            keeper.shut_down(end, unix_now());
        }
        if let Some(server) = self.control.as_mut() {
            server.shut_down(self.poll.registry());
        }
        info!("stopped");
    }
}

/// What `Event::Accepted` says about the active phase a connection reached.
struct Activation {
    width: u16,
    height: u16,
    reactivation: bool,
    max_request_size: u32,
    scr_blt: bool,
    skip_alpha: bool,
}

/// Queues `out` for the client and writes what the socket takes now. A write error, or a
/// client whose unsent output passed its bound (it sends but does not read), closes it now.
fn send(client: &mut Client, out: &[u8], watermarks: &Watermarks, now: Instant) {
    let result = client.transport.queue(out);
    watermarks.saw_output(client.transport.queued_since_drained());
    match result.and_then(|()| client.transport.flush()) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::OutOfMemory => {
            warn!("{}: disconnected: {e}", client.peer);
            client.closing = Some(now);
        }
        Err(e) => {
            debug!("{}: write failed: {e}", client.peer);
            client.closing = Some(now);
        }
    }
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
