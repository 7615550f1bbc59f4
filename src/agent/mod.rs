//! The agent: a sans-IO [`Core`] that decides everything, and this shell around it, the
//! one thread's `mio::Poll` loop. The shell owns what touches the outside: the listener and
//! the client sockets, signals, the control socket, the local prompt's screen and keyboards,
//! and the audit log. It reads the clock in one place ([`clock`]) and passes the time in.
//!
//! Per turn: poll until the earliest deadline (handshake timeouts, the next screen scan,
//! lingering closes; none at all while no client is connected), hand ready sockets' bytes
//! to the core, let it run its clocks and encode a bounded amount of screen output, write
//! what waits, then carry out what it asked for.
//!
//! The core does no socket I/O and reads no clock; the shell decides nothing (no protocol,
//! no policy, no deadline of its own but the shutdown's linger).

use std::collections::{HashMap, HashSet};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};
use nix::sys::signal::Signal;
use nix::sys::signalfd::SignalFd;

use crate::control::{self, LocalUser};
use crate::input::InputSink;
use crate::net::Identity;
use crate::policy::{AccessSettings, AuditLimits, By, Modes, SlotLimits};
use crate::screen::Source;
use crate::state::{Keeper, Recovery};
use crate::{debug, info, warn};

mod access;
mod conn;
mod core;
mod prompt;
mod remote;
mod screen;
mod session;
mod watermarks;
pub use self::core::{Action, ConnId, Core, LINGER, Now};
pub use prompt::PromptConfig;
pub use watermarks::Watermarks;

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);
const SIGNALS: Token = Token(2);
/// The control socket's listener; its peers take the tokens after it (below FIRST_CLIENT).
const CONTROL: Token = Token(3);
const FIRST_CLIENT: usize = 16;

/// Bytes read from one socket per readiness event, so one client cannot starve the loop.
const READ_BUDGET: usize = 256 * 1024;

/// A connection that has not reached the active session by then is dropped.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);
/// The fastest screen scan rate, about 30 a second.
pub const DEFAULT_FRAME_INTERVAL: Duration = Duration::from_millis(33);

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
    /// Whole tiles through the client's bitmap cache, for clients that have one.
    pub bitmap_cache: bool,
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
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            frame_interval: DEFAULT_FRAME_INTERVAL,
            scroll_copies: true,
            bitmap_cache: true,
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

pub struct Agent {
    poll: Poll,
    listener: TcpListener,
    local_addr: SocketAddr,
    core: Core,
    /// The connections' sockets, by the token that is also their `ConnId`.
    sockets: HashMap<Token, TcpStream>,
    /// Sockets whose read budget ran out: served again next turn without waiting.
    unread: HashSet<Token>,
    next_token: usize,
    stop: Arc<AtomicBool>,
    waker: Arc<Waker>,
    signals: Option<SignalFd>,
    control: Option<control::Server>,
    audit_log: crate::audit::AuditLog,
    /// The local prompt on the framebuffer, when asked for and the framebuffer opened.
    prompt: Option<prompt::LocalPrompt>,
}

/// The one place the agent reads the clocks (and `serve` at start, for the keeper).
pub fn clock() -> Now {
    Now {
        mono: Instant::now(),
        unix: unix_now(),
    }
}

impl Agent {
    pub fn new(
        config: AgentConfig,
        identity: &Identity,
        source: Box<dyn Source>,
        sink: Box<dyn InputSink>,
    ) -> io::Result<Agent> {
        let tls = identity
            .server_config()
            .map_err(|e| io::Error::other(e.to_string()))?;
        let control_config = config.control.clone();
        let audit_log = crate::audit::AuditLog::open(&config.audit);
        let prompt = config
            .local_prompt
            .as_ref()
            .and_then(prompt::LocalPrompt::open);
        let core = Core::new(
            config.clone(),
            tls,
            identity.public_key.clone(),
            source,
            sink,
            clock(),
            Instant::now,
        )?;
        let poll = Poll::new()?;
        let mut listener = TcpListener::bind(config.listen)?;
        let local_addr = listener.local_addr()?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        info!(
            "listening on {local_addr}, screen {}",
            core.describe_screen()
        );
        let control = match &control_config {
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
        Ok(Agent {
            poll,
            listener,
            local_addr,
            core,
            sockets: HashMap::new(),
            unread: HashSet::new(),
            next_token: FIRST_CLIENT,
            stop: Arc::new(AtomicBool::new(false)),
            waker,
            signals: None,
            control,
            audit_log,
            prompt,
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
        self.core.watermarks()
    }

    /// Hands the credentials keeper to the core: from now on it decides the password,
    /// who may connect, and when to rotate and publish.
    pub fn set_keeper(&mut self, keeper: Keeper) {
        self.core.set_keeper(keeper);
    }

    /// Tells the audit log where the state came from when it was not the newest copy.
    pub fn state_recovered(&mut self, recovery: &Recovery) {
        let line = control::reply::recovery_line(recovery, unix_ms());
        self.audit_log.write(&line);
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
            let before = clock();
            let timeout = self
                .next_deadline(before)
                .map(|at| at.saturating_duration_since(before.mono));
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            let now = clock();
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
            if self.stop.load(Ordering::SeqCst) {
                self.shut_down(now);
                return Ok(());
            }
            self.core.tick(now);
            self.act(now);
            self.drive_prompt(now);
            self.write_all(now);
            self.core.reap(now);
            self.act(now);
        }
    }

    fn next_deadline(&self, now: Now) -> Option<Instant> {
        if !self.unread.is_empty() {
            return Some(now.mono);
        }
        let prompt = self
            .prompt
            .as_ref()
            .and_then(|p| p.next_deadline(self.core.prompt_next_change(now, self.ui_prompts())));
        match (self.core.next_deadline(now), prompt) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The image's own UI registered on the control socket as the prompt.
    fn ui_prompts(&self) -> bool {
        self.control
            .as_ref()
            .is_some_and(control::Server::has_prompt)
    }

    fn accept_all(&mut self, now: Now) {
        loop {
            let (mut socket, peer) = match self.listener.accept() {
                Ok(pair) => pair,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // EMFILE and friends: log and try again on the next event.
                    warn!("accept failed: {e}");
                    return;
                }
            };
            let token = Token(self.next_token);
            self.next_token = self.next_token.wrapping_add(1).max(FIRST_CLIENT);
            if let Err(e) = self.poll.registry().register(
                &mut socket,
                token,
                Interest::READABLE | Interest::WRITABLE,
            ) {
                warn!("{peer}: cannot register the connection: {e}");
                continue;
            }
            if !self.core.on_accept(now, ConnId(token.0), peer) {
                let _ = self.poll.registry().deregister(&mut socket);
                continue;
            }
            let _ = socket.set_nodelay(true);
            self.sockets.insert(token, socket);
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

    /// Reads what the socket has (within the budget) into the core, then writes its answer.
    fn serve(&mut self, token: Token, now: Now) {
        let id = ConnId(token.0);
        if self.core.wants_read(id)
            && let Some(socket) = self.sockets.get_mut(&token)
        {
            let mut buf = [0u8; 16 * 1024];
            let mut total = 0;
            loop {
                if total >= READ_BUDGET {
                    self.unread.insert(token);
                    break;
                }
                match socket.read(&mut buf) {
                    Ok(0) => {
                        self.core.on_eof(now, id);
                        break;
                    }
                    Ok(n) => {
                        total += n;
                        self.core.on_bytes(now, id, &buf[..n]);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        self.core.on_read_error(now, id, &e);
                        break;
                    }
                }
            }
        }
        self.write(token, now);
    }

    fn write(&mut self, token: Token, now: Now) {
        let id = ConnId(token.0);
        if self.core.has_output(id)
            && let Some(socket) = self.sockets.get_mut(&token)
        {
            self.core.on_writable(now, id, socket);
        }
    }

    fn write_all(&mut self, now: Now) {
        let tokens: Vec<Token> = self.sockets.keys().copied().collect();
        for token in tokens {
            self.write(token, now);
        }
    }

    /// Carries out what the core asked for, until it asks nothing more.
    fn act(&mut self, now: Now) {
        loop {
            let actions = self.core.take_actions();
            if actions.is_empty() {
                return;
            }
            for action in actions {
                match action {
                    Action::Read(id) => self.serve(Token(id.0), now),
                    Action::ShutdownWrite(id) => {
                        self.write(Token(id.0), now);
                        if let Some(socket) = self.sockets.get_mut(&Token(id.0)) {
                            let _ = socket.shutdown(std::net::Shutdown::Write);
                        }
                    }
                    Action::Close { id, last_bytes } => self.close(Token(id.0), &last_bytes),
                    Action::Audit(audit) => {
                        // One JSON line to the audit log (stderr or syslog, and the file) and
                        // one event line to every watcher.
                        let line = control::reply::event_line(&audit, Some(unix_ms()));
                        self.audit_log.write(&line);
                        self.broadcast(&control::reply::event_line(&audit, None));
                    }
                    Action::Broadcast(line) => self.broadcast(&line),
                }
            }
        }
    }

    fn close(&mut self, token: Token, last_bytes: &[u8]) {
        self.unread.remove(&token);
        let Some(mut socket) = self.sockets.remove(&token) else {
            return;
        };
        // Best effort: what the socket takes now (a TLS alert, close_notify).
        let _ = socket.write(last_bytes);
        let _ = socket.shutdown(std::net::Shutdown::Both);
        let _ = self.poll.registry().deregister(&mut socket);
    }

    fn broadcast(&mut self, line: &str) {
        if let Some(server) = self.control.as_mut() {
            server.broadcast(self.poll.registry(), line);
        }
    }

    /// Carries one authorized control request to the core and answers it (after what the
    /// request made the core tell every watcher).
    fn control_request(&mut self, incoming: control::Incoming, now: Now) {
        let by = By::Peer {
            uid: incoming.peer.uid,
            pid: incoming.peer.pid,
        };
        let reply = self.core.on_control(now, incoming.request, by);
        self.act(now);
        if let Some(server) = self.control.as_mut() {
            server.reply(self.poll.registry(), incoming.client, &reply);
        }
    }

    /// Makes the box follow the policy (after the policies moved this turn).
    fn drive_prompt(&mut self, now: Now) {
        let ui_prompts = self.ui_prompts();
        if let Some(prompt) = self.prompt.as_mut() {
            let view = self.core.prompt_view(now, ui_prompts);
            prompt.show(self.poll.registry(), view, now.mono);
        }
    }

    /// A local keyboard is readable: its answers go to the core as the local prompt's.
    fn prompt_keys(&mut self, token: Token, now: Now) {
        let Some(prompt) = self.prompt.as_mut() else {
            return;
        };
        let (answers, shown) = prompt.read_keys(self.poll.registry(), token, now.mono);
        for answer in answers {
            self.core.on_prompt_answer(now, answer, &shown);
        }
    }

    /// Tells every client why it is dropped and gives the output a bounded time to leave.
    fn shut_down(&mut self, now: Now) {
        self.core.begin_shutdown(now);
        self.act(now);
        let deadline = now.mono + LINGER;
        let mut events = Events::with_capacity(16);
        loop {
            let at = clock();
            self.write_all(at);
            if !self.core.any_output() || at.mono >= deadline {
                break;
            }
            let _ = self.poll.poll(&mut events, Some(Duration::from_millis(50)));
        }
        let end = clock();
        self.core.finish(end);
        self.act(end);
        if let Some(prompt) = self.prompt.as_mut() {
            prompt.hide(self.poll.registry());
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
