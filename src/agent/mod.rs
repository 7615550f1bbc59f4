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
use crate::policy::{AccessPolicy, AccessSettings, Audit, AuditEvent, Modes};
use crate::rdp::{ConnError, Connection, EndReason, Event, Settings};
use crate::screen::{Rect, Source};

mod access;
mod prompt;
mod remote;
mod screen;
mod watermarks;
use crate::state::{Admission, Keeper, Refusal};
use crate::{debug, error, info, warn};
pub use prompt::PromptConfig;
use screen::{Produced, Screen};
pub use watermarks::Watermarks;

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);
const SIGNALS: Token = Token(2);
/// The control socket's listener; its peers take the tokens after it (below FIRST_CLIENT).
const CONTROL: Token = Token(3);
const FIRST_CLIENT: usize = 16;

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
    /// Connections still in the handshake at once; more are closed before TLS.
    pub max_handshakes: usize,
    /// The access policy (consent, screen access, terminate). None: no policy, every
    /// logged-in admin gets the screen at once (nobody local could be asked).
    pub access: Option<AccessSettings>,
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
            max_handshakes: 8,
            access: None,
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
    started: Option<Instant>,
    connected: Instant,
    /// The access policy of this admin's session, from its login on (policy on only).
    policy: Option<AccessPolicy>,
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
    session: Option<Token>,
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
    /// Admin input reaches the sink (for releasing everything when that stops).
    input_open: bool,
    audit_log: crate::audit::AuditLog,
    /// The local prompt on the framebuffer, when asked for and the framebuffer opened.
    prompt: Option<prompt::LocalPrompt>,
    watermarks: Arc<Watermarks>,
    /// Connections closed at the handshake cap since it was last below it (logged once).
    cap_dropped: usize,
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
            input_open: false,
            audit_log,
            prompt,
            watermarks: Arc::default(),
            cap_dropped: 0,
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
            let timeout = self
                .next_deadline()
                .map(|at| at.saturating_duration_since(Instant::now()));
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            let mut incoming = Vec::new();
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept_all(),
                    WAKER => {}
                    SIGNALS => self.read_signals(),
                    token if self.prompt.as_ref().is_some_and(|p| p.owns(token)) => {
                        self.prompt_keys(token);
                    }
                    token if token.0 < FIRST_CLIENT => {
                        if let Some(server) = self.control.as_mut() {
                            server.ready(self.poll.registry(), token, &mut incoming);
                        }
                    }
                    token => self.serve(token),
                }
            }
            for request in incoming {
                self.control_request(request);
            }
            for token in std::mem::take(&mut self.unread) {
                self.serve(token);
            }
            self.release_held(Instant::now());
            if self.stop.load(Ordering::SeqCst) {
                self.shut_down();
                return Ok(());
            }
            let now = Instant::now();
            self.poll_keeper(now);
            self.poll_remote_processes(now);
            self.drive_policies(now);
            self.drive_prompt(now);
            self.expire(now);
            self.screen_turn(now);
            self.reap(now);
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        let now = Instant::now();
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
            consider(client.policy.as_ref().and_then(AccessPolicy::next_deadline));
        }
        consider(self.keeper.as_ref().and_then(Keeper::next_deadline));
        consider(self.remote_scan_deadline());
        consider(self.prompt_deadline(now));
        if let Some(client) = self.session.and_then(|t| self.clients.get(&t))
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

    fn accept_all(&mut self) {
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
            let handshaking = self
                .clients
                .values()
                .filter(|c| c.started.is_none() && c.closing.is_none())
                .count();
            if handshaking >= self.config.max_handshakes {
                // One line per flood, not per connection: the rest are counted.
                if self.cap_dropped == 0 {
                    warn!(
                        "{peer}: closed before tls: {handshaking} handshakes already in progress"
                    );
                }
                self.cap_dropped += 1;
                drop(socket);
                continue;
            }
            if self.cap_dropped > 1 {
                warn!(
                    "{} more connections closed before tls at the handshake cap",
                    self.cap_dropped - 1
                );
            }
            self.cap_dropped = 0;
            let now = Instant::now();
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
            if self.config.access.is_some() {
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
                    started: None,
                    connected: now,
                    policy: None,
                },
            );
        }
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
            self.serve(token);
        }
    }

    /// Reads, feeds the protocol, handles its events, writes.
    fn serve(&mut self, token: Token) {
        let Some(client) = self.clients.get_mut(&token) else {
            return;
        };
        if client.hold_until.is_some() {
            return;
        }
        let mut plaintext = Vec::new();
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
        let mut out = Vec::new();
        let mut events = Vec::new();
        let mut failed_login = None;
        if !plaintext.is_empty() && client.closing.is_none() {
            match client.rdp.receive(&plaintext, &mut out, &mut events) {
                Ok(()) => {}
                Err(ConnError::AuthFailed(reason)) => {
                    warn!("{}: login failed: {reason}", client.peer);
                    failed_login = Some(client.peer);
                    client.closing = Some(Instant::now() + LINGER);
                    if let Some(keeper) = self.keeper.as_mut() {
                        keeper.login_failed(client.peer.ip(), Instant::now());
                    }
                }
                Err(e) => {
                    info!("{}: closing: {e}", client.peer);
                    client.closing = Some(Instant::now() + LINGER);
                }
            }
        }
        if let Some(admin) = failed_login
            && self.config.access.is_some()
        {
            self.emit_audit(&Audit {
                admin,
                event: AuditEvent::LoginFailed,
            });
        }
        for event in events {
            self.handle_event(token, event, &mut out);
        }
        let Some(client) = self.clients.get_mut(&token) else {
            return;
        };
        // Lock keys the admin toggled come back from the kernel as LED changes.
        if self.session == Some(token)
            && let Some(leds) = self.sink.take_indicators()
        {
            client.rdp.keyboard_indicators(leds, &mut out);
        }
        let result = client.transport.queue(&out);
        self.watermarks
            .saw_output(client.transport.queued_since_drained());
        self.watermarks.saw_input(client.rdp.buffered());
        if let Err(e) = result.and_then(|()| client.transport.flush()) {
            debug!("{}: write failed: {e}", client.peer);
            client.closing = Some(Instant::now());
        }
        if status == ReadStatus::Closed && client.closing.is_none() {
            info!("{}: client closed the connection", client.peer);
            client.closing = Some(Instant::now());
        }
    }

    fn handle_event(&mut self, token: Token, event: Event, out: &mut Vec<u8>) {
        if matches!(event, Event::Authenticated { .. }) && self.config.access.is_some() {
            self.scan_remote_processes(Instant::now());
        }
        let Some(client) = self.clients.get_mut(&token) else {
            return;
        };
        match event {
            Event::UpgradeToTls => {
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
                    client.closing = Some(Instant::now());
                }
            }
            Event::Authenticated { user } => {
                info!("{}: login ok as {user}", client.peer);
                let now = Instant::now();
                if let Some(keeper) = self.keeper.as_mut() {
                    keeper.login_succeeded(client.peer.ip(), now);
                }
                // A second admin is refused at activation anyway: the user is not asked.
                if let Some(settings) = self.config.access
                    && self.session.is_none_or(|s| s == token)
                {
                    let mut policy = AccessPolicy::new(
                        settings,
                        self.modes,
                        self.remote.env.active(),
                        client.peer,
                    );
                    policy.authenticated(now, client.peer);
                    client.policy = Some(policy);
                } else if self.config.access.is_some() {
                    let admin = client.peer;
                    self.emit_audit(&Audit {
                        admin,
                        event: AuditEvent::Authenticated,
                    });
                }
            }
            Event::Accepted {
                width,
                height,
                reactivation,
                max_request_size,
                scr_blt,
            } => {
                client.handshake_deadline = None;
                if self.session.is_some_and(|s| s != token) {
                    warn!("{}: refused: another session is active", client.peer);
                    client.rdp.end(EndReason::Denied, out);
                    client.closing = Some(Instant::now() + LINGER);
                    return;
                }
                if let Some(reason) = client.policy.as_ref().and_then(AccessPolicy::end_reason) {
                    info!("{}: refused by the access policy", client.peer);
                    client.rdp.end(reason, out);
                    client.closing = Some(Instant::now() + LINGER);
                    return;
                }
                let copies = scr_blt && self.config.scroll_copies;
                if !reactivation {
                    let how = match (scr_blt, self.config.scroll_copies) {
                        (true, true) => "on",
                        (false, _) => "off (the client draws no ScrBlt)",
                        (true, false) => "off (--scroll-copies off)",
                    };
                    info!(
                        "{}: session started at {width}x{height}; scroll copies {how}",
                        client.peer
                    );
                    client.started = Some(Instant::now());
                    self.session = Some(token);
                    // One compression history per connection, kept over reactivations.
                    self.screen
                        .encoder
                        .set_compression(client.rdp.compression());
                }
                self.screen.start(width, height, max_request_size, copies);
                self.sink.set_screen_size(width, height);
                let now = Instant::now();
                let lines = client
                    .policy
                    .as_ref()
                    .map(|p| p.screen())
                    .filter(|s| *s != crate::policy::Screen::Real)
                    .map(|s| s.lines(now));
                self.screen.show(lines.as_deref(), now);
            }
            Event::Input(input) => {
                if self.session == Some(token)
                    && client
                        .policy
                        .as_ref()
                        .is_none_or(AccessPolicy::input_allowed)
                {
                    self.sink.handle(input);
                }
            }
            // Only the session's client steers the screen; a refused one is on its way out.
            Event::SuppressOutput(_) | Event::Refresh { .. } if self.session != Some(token) => {}
            Event::SuppressOutput(suppress) => {
                debug!("{}: suppress output {suppress}", client.peer);
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
                info!("{}: client disconnected", client.peer);
                client.closing = Some(Instant::now() + LINGER);
            }
        }
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
                warn!("{}: handshake timed out", client.peer);
                client.closing = Some(now);
            }
        }
    }

    /// Scans and encodes for the session within this turn's budget.
    fn screen_turn(&mut self, now: Instant) {
        let Some(token) = self.session else { return };
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
        let result = client.transport.queue(&out);
        self.watermarks
            .saw_output(client.transport.queued_since_drained());
        if let Err(e) = result.and_then(|()| client.transport.flush()) {
            debug!("{}: write failed: {e}", client.peer);
            client.closing = Some(now);
        }
    }

    /// Drops connections that are done closing.
    fn reap(&mut self, now: Instant) {
        let done: Vec<Token> = self
            .clients
            .iter_mut()
            .filter_map(|(token, client)| {
                let deadline = client.closing?;
                let _ = client.transport.flush();
                (!client.transport.has_pending_output()
                    || now >= deadline
                    || client.transport.peer_closed())
                .then_some(*token)
            })
            .collect();
        for token in done {
            self.drop_client(token);
        }
    }

    fn drop_client(&mut self, token: Token) {
        let Some(mut client) = self.clients.remove(&token) else {
            return;
        };
        self.unread.remove(&token);
        client.transport.send_close_notify();
        let _ = client.transport.flush();
        client.transport.shutdown();
        let _ = self.poll.registry().deregister(client.transport.socket());
        if let Some(policy) = client.policy.as_mut() {
            policy.admin_disconnected(Instant::now());
            self.audit(policy);
        } else if self.config.access.is_some() {
            // Never reached a policy (no login, or refused before one): still an end line.
            self.emit_audit(&Audit {
                admin: client.peer,
                event: AuditEvent::Disconnected {
                    duration: client.connected.elapsed(),
                },
            });
        }
        if self.session == Some(token) {
            self.session = None;
            self.input_open = false;
            self.sink.release_all();
            let stats = self.screen.stats;
            self.screen.stop();
            let secs = client.started.map_or(0, |s| s.elapsed().as_secs());
            info!(
                "{}: session ended after {secs} s; screen: {} frames, {} bitmaps, {} copies ({} sideways), {} bytes before TLS",
                client.peer, stats.frames, stats.rects, stats.copies, stats.sideways, stats.bytes
            );
            if let Some(keeper) = self.keeper.as_mut()
                && keeper.session_ended(Instant::now(), unix_now())
            {
                self.config.password = keeper.password().to_owned();
            }
        }
    }

    /// Tells every client why it is dropped and gives the output a bounded time to leave.
    fn shut_down(&mut self) {
        let now = Instant::now();
        let mut audits = Vec::new();
        for client in self.clients.values_mut() {
            if let Some(policy) = client.policy.as_mut() {
                policy.shutdown(now);
                while let Some(audit) = policy.poll_event() {
                    audits.push(audit);
                }
            }
            let mut out = Vec::new();
            client.rdp.end(EndReason::Shutdown, &mut out);
            let _ = client.transport.queue(&out);
            client.transport.send_close_notify();
            let _ = client.transport.flush();
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
        for token in tokens {
            self.drop_client(token);
        }
        for audit in &audits {
            self.emit_audit(audit);
        }
        if let Some(prompt) = self.prompt.as_mut() {
            prompt.hide(self.poll.registry());
        }
        if let Some(keeper) = self.keeper.as_mut() {
            keeper.shut_down(Instant::now(), unix_now());
        }
        if let Some(server) = self.control.as_mut() {
            server.shut_down(self.poll.registry());
        }
        info!("stopped");
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
