//! The agent's core on a virtual clock: real logins (IronRDP's connector and rustls, in
//! memory) against `agent::Core`, with time moved by the test instead of slept through.
//! Each deadline is checked on both sides: nothing happens a moment before it, and it
//! happens at it.

use crate::common;

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use common::agent::USER;
use common::client::{
    ClientConfig, ConnectError, Security, connector_config, set_error_info_code, step_over,
    tls_config,
};
use ironrdp_blocking::Framed;
use ironrdp_connector::{ClientConnector, ConnectionResult};
use ironrdp_core::WriteBuf;
use thinshadow::agent::{Action, AgentConfig, ConnId, Core, Now};
use thinshadow::input::RecordingSink;
use thinshadow::net::{Identity, KeyType};
use thinshadow::policy::{Allowlist, AuditEvent, LockoutPolicy, Mode};
use thinshadow::state::rotation::RotationPolicy;
use thinshadow::state::{self, Keeper, KeeperConfig};

const PASSWORD: &str = "correct horse battery staple";
const START_UNIX: u64 = 1_800_000_000;

/// The core, its virtual clock, and each connection's bytes in flight.
struct World {
    core: Core,
    now: Now,
    pipes: HashMap<ConnId, Pipe>,
    audits: Vec<(Duration, thinshadow::policy::Audit)>,
    start: Instant,
}

#[derive(Default)]
struct Pipe {
    /// Client bytes the core has not taken (it holds the connection).
    to_core: Vec<u8>,
    to_client: Vec<u8>,
    write_shut: bool,
    closed: bool,
}

impl World {
    fn new(config: AgentConfig) -> World {
        World::with_source(config, thinshadow::screen::open("synthetic:64x48").unwrap())
    }

    fn with_source(config: AgentConfig, source: Box<dyn thinshadow::screen::Source>) -> World {
        let identity = Identity::generate(KeyType::Ecdsa).unwrap();
        let start = Instant::now();
        let now = Now {
            mono: start,
            unix: START_UNIX,
        };
        let core = Core::new(
            config,
            identity.server_config().unwrap(),
            identity.public_key.clone(),
            source,
            Box::new(RecordingSink::default()),
            now,
            Instant::now,
        )
        .unwrap();
        World {
            core,
            now,
            pipes: HashMap::new(),
            audits: Vec::new(),
            start,
        }
    }

    fn elapsed(&self) -> Duration {
        self.now.mono - self.start
    }

    /// Moves the clock, then lets the core run what is due (as a loop turn would).
    fn advance(&mut self, by: Duration) {
        self.now.mono += by;
        self.now.unix += by.as_secs();
        self.turn();
    }

    /// One loop turn: time-driven work, writes, closes, and what they asked for.
    fn turn(&mut self) {
        self.core.tick(self.now);
        self.act();
        let mut ids: Vec<ConnId> = self.pipes.keys().copied().collect();
        ids.sort();
        for id in ids {
            let pipe = self.pipes.get_mut(&id).unwrap();
            if !pipe.closed {
                self.core.on_writable(self.now, id, &mut pipe.to_client);
            }
        }
        self.core.reap(self.now);
        self.act();
    }

    fn act(&mut self) {
        loop {
            let actions = self.core.take_actions();
            if actions.is_empty() {
                return;
            }
            for action in actions {
                match action {
                    Action::Read(id) => self.deliver(id),
                    Action::ShutdownWrite(id) => {
                        let pipe = self.pipes.get_mut(&id).unwrap();
                        self.core.on_writable(self.now, id, &mut pipe.to_client);
                        pipe.write_shut = true;
                    }
                    Action::Close { id, last_bytes } => {
                        let pipe = self.pipes.get_mut(&id).unwrap();
                        pipe.to_client.extend_from_slice(&last_bytes);
                        pipe.closed = true;
                    }
                    Action::Audit(audit) => self.audits.push((self.elapsed(), audit)),
                    Action::Broadcast(_) => {}
                }
            }
        }
    }

    /// Hands what the client sent to the core, unless the core holds the connection.
    fn deliver(&mut self, id: ConnId) {
        if !self.core.wants_read(id) {
            return;
        }
        let bytes = std::mem::take(&mut self.pipes.get_mut(&id).unwrap().to_core);
        if !bytes.is_empty() {
            self.core.on_bytes(self.now, id, &bytes);
        }
    }

    fn accept(&mut self, id: usize, peer: &str) -> Option<ConnId> {
        let id = ConnId(id);
        let peer: SocketAddr = peer.parse().unwrap();
        let accepted = self.core.on_accept(self.now, id, peer);
        self.act();
        accepted.then(|| {
            self.pipes.insert(id, Pipe::default());
            id
        })
    }

    fn is_open(&self, id: ConnId) -> bool {
        !self.pipes[&id].closed
    }

    fn events(&self) -> Vec<AuditEvent> {
        self.audits.iter().map(|(_, a)| a.event).collect()
    }

    /// When the first audit event matching `want` came, counted from the start.
    fn when(&self, want: impl Fn(&AuditEvent) -> bool) -> Option<Duration> {
        self.audits
            .iter()
            .find(|(_, a)| want(&a.event))
            .map(|(at, _)| *at)
    }
}

/// The client's end of one connection: writing hands bytes to the core; reading runs a turn
/// when nothing waits (the core answers within the turn it got the bytes, or never).
struct End {
    world: Rc<RefCell<World>>,
    id: ConnId,
}

impl Read for End {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut world = self.world.borrow_mut();
        if world.pipes[&self.id].to_client.is_empty() {
            world.turn();
        }
        let pipe = world.pipes.get_mut(&self.id).unwrap();
        if pipe.to_client.is_empty() {
            return if pipe.closed || pipe.write_shut {
                Ok(0)
            } else {
                Err(io::ErrorKind::WouldBlock.into())
            };
        }
        let n = buf.len().min(pipe.to_client.len());
        buf[..n].copy_from_slice(&pipe.to_client[..n]);
        pipe.to_client.drain(..n);
        Ok(n)
    }
}

impl Write for End {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut world = self.world.borrow_mut();
        let pipe = world.pipes.get_mut(&self.id).unwrap();
        if pipe.closed {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        pipe.to_core.extend_from_slice(buf);
        world.deliver(self.id);
        world.act();
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

type Tls = rustls::StreamOwned<rustls::ClientConnection, End>;

/// A whole TLS-security login (the password in the Client Info PDU), up to the active phase.
fn login(
    world: &Rc<RefCell<World>>,
    id: ConnId,
    password: &str,
) -> Result<(Framed<Tls>, ConnectionResult), ConnectError> {
    let other = |e: &dyn std::fmt::Display| ConnectError::Other(e.to_string());
    let peer = "127.0.0.1:3389".parse().unwrap();
    let cfg = ClientConfig::new(peer, USER, password, Security::Tls);
    let mut connector = ClientConnector::new(connector_config(&cfg), peer);
    let mut framed = Framed::new(End {
        world: Rc::clone(world),
        id,
    });
    let mut buf = WriteBuf::new();
    while !connector.should_perform_security_upgrade() {
        step_over(&mut framed, &mut connector, &mut buf)?;
    }
    let upgrade = ironrdp_blocking::skip_connect_begin(&mut connector);
    let (end, leftover) = framed.into_inner();
    assert!(leftover.is_empty(), "nothing before the TLS handshake");
    let name = rustls::pki_types::ServerName::IpAddress(peer.ip().into());
    let conn = rustls::ClientConnection::new(tls_config().unwrap(), name).map_err(|e| other(&e))?;
    let mut tls = rustls::StreamOwned::new(conn, end);
    while tls.conn.is_handshaking() {
        tls.conn
            .complete_io(&mut tls.sock)
            .map_err(ConnectError::Io)?;
    }
    let _ = ironrdp_blocking::mark_as_upgraded(upgrade, &mut connector);
    let mut framed = Framed::new(tls);
    loop {
        if connector.should_perform_multitransport() {
            buf.clear();
            let written = connector
                .skip_multitransport(&mut buf)
                .map_err(|e| other(&e))?;
            if let Some(len) = written.size() {
                framed.write_all(&buf[..len]).map_err(ConnectError::Io)?;
            }
            continue;
        }
        step_over(&mut framed, &mut connector, &mut buf)?;
        if let Some(outcome) = connector.state.take_outcome() {
            return match outcome {
                ironrdp_connector::ConnectionOutcome::Connected(result) => Ok((framed, result)),
                _ => Err(ConnectError::Other("redirected".into())),
            };
        }
    }
}

/// SERVER_DENIED_CONNECTION and SERVER_INSUFFICIENT_PRIVILEGES (MS-RDPBCGR 2.2.5.1.1).
const DENIED: u32 = 0x7;
const BAD_CREDENTIALS: u32 = 0x9;

/// What the server sends after the connection sequence, read until it stops: the Set Error
/// Info code it ended the connection with, if it did. (With TLS security the password is
/// checked when the sequence is done, as Windows does; a refusal comes at that point too.)
fn ending(client: &mut Framed<Tls>) -> Option<u32> {
    let mut code = None;
    while let Ok((_, frame)) = client.read_pdu() {
        if let Some(c) = set_error_info_code(&frame).filter(|c| *c != 0) {
            code = Some(c);
        }
    }
    code
}

/// A login that must get the session (no error info at its end).
fn login_ok(world: &Rc<RefCell<World>>, id: ConnId, password: &str) -> Framed<Tls> {
    let (mut client, _) = login(world, id, password).expect("connection sequence");
    assert_eq!(ending(&mut client), None, "not ended");
    assert!(world.borrow().is_open(id));
    client
}

/// A login that the server ends with `code` once the sequence is done.
fn login_ended(world: &Rc<RefCell<World>>, id: ConnId, password: &str) -> u32 {
    let (mut client, _) = login(world, id, password).expect("connection sequence");
    ending(&mut client).expect("ended with an error info")
}

fn config() -> AgentConfig {
    AgentConfig::new("127.0.0.1:3389".parse().unwrap(), USER, PASSWORD)
}

fn temp_dir(name: &str) -> PathBuf {
    common::temp_dir(module_path!(), name)
}

/// A keeper with its state in `dir`, started at the world's time; returns its password.
fn give_keeper(
    world: &mut World,
    dir: &Path,
    rotation: RotationPolicy,
    lockout: LockoutPolicy,
) -> String {
    let config = KeeperConfig {
        state_dir: dir.to_owned(),
        user: USER.into(),
        port: 3389,
        cert_sha256: "ab:cd".into(),
        rotation,
        hook: None,
        lockout,
        allow: Allowlist::all(),
    };
    let loaded = state::load(dir).into_state();
    let mut keeper = Keeper::start(config, &loaded, world.now.mono, world.now.unix).unwrap();
    keeper.commit(world.now.mono, world.now.unix).unwrap();
    let password = keeper.password().to_owned();
    world.core.set_keeper(keeper);
    password
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[test]
fn a_silent_connection_is_closed_at_the_handshake_timeout_not_before() {
    let mut world = World::new(config());
    let id = world.accept(16, "127.0.0.2:50000").unwrap();
    // Half a TPKT header, then silence.
    let now = world.now;
    world.core.on_bytes(now, id, &[3, 0]);
    world.advance(secs(15) - Duration::from_millis(1));
    assert!(world.is_open(id), "open a moment before the 15 s timeout");
    world.advance(Duration::from_millis(1));
    assert!(!world.is_open(id), "closed at the timeout");
    assert_eq!(
        world.events(),
        [
            AuditEvent::Connected,
            AuditEvent::Disconnected { duration: secs(15) }
        ]
    );
    assert_eq!(
        world.core.next_deadline(world.now),
        None,
        "idle: no wake-ups"
    );
}

#[test]
fn allow_automatically_waits_30_s_for_the_local_user_then_starts() {
    let world = Rc::new(RefCell::new(World::new(config())));
    let id = world.borrow_mut().accept(16, "127.0.0.2:50000").unwrap();
    let (mut client, result) = login(&world, id, PASSWORD).expect("login");
    assert_eq!(result.desktop_size.width, 64);
    assert_eq!(ending(&mut client), None);
    let mut world = world.borrow_mut();
    let asked = world
        .when(|e| matches!(e, AuditEvent::ConsentAsked { mode: Mode::AllowAuto, timeout } if *timeout == secs(30)))
        .expect("the local user is asked");
    assert_eq!(
        world.when(|e| matches!(e, AuditEvent::SessionStarted { .. })),
        None
    );
    // The next wake-up is no later than the consent's end (the loop would sleep until it).
    let deadline = world.core.next_deadline(world.now).expect("a deadline");
    assert!(deadline <= world.start + asked + secs(30));
    let until = asked + secs(30) - world.elapsed() - Duration::from_millis(1);
    world.advance(until);
    assert_eq!(
        world.when(|e| matches!(e, AuditEvent::SessionStarted { .. })),
        None,
        "not a moment before 30 s"
    );
    world.advance(Duration::from_millis(1));
    let started = world
        .when(|e| matches!(e, AuditEvent::SessionStarted { .. }))
        .expect("started by itself after 30 s");
    assert_eq!(started, asked + secs(30));
    assert!(world.is_open(id));
}

#[test]
fn a_second_admin_is_refused_and_its_connection_ends_within_the_linger_time() {
    let world = Rc::new(RefCell::new(World::new(config())));
    let first = world.borrow_mut().accept(16, "127.0.0.2:50000").unwrap();
    let _session = login_ok(&world, first, PASSWORD);
    let second = world.borrow_mut().accept(17, "127.0.0.3:50000").unwrap();
    assert_eq!(login_ended(&world, second, PASSWORD), DENIED);
    let mut world = world.borrow_mut();
    assert!(world.events().contains(&AuditEvent::Refused));
    // A client that never closes its side still goes at the linger deadline.
    world.advance(thinshadow::agent::LINGER - Duration::from_millis(1));
    assert!(world.is_open(second), "half-closed, waiting for the client");
    world.advance(Duration::from_millis(1));
    assert!(!world.is_open(second), "closed at the linger deadline");
    assert!(world.is_open(first), "the session goes on");
}

#[test]
fn after_a_failed_login_the_address_waits_then_may_try_again() {
    let dir = temp_dir("hold");
    let world = Rc::new(RefCell::new(World::new(config())));
    let password = give_keeper(
        &mut world.borrow_mut(),
        &dir,
        RotationPolicy::default(),
        LockoutPolicy::default(),
    );
    let first = world.borrow_mut().accept(16, "127.0.0.2:50000").unwrap();
    assert_eq!(
        login_ended(&world, first, "wrong password"),
        BAD_CREDENTIALS
    );
    let retry = world.borrow_mut().accept(17, "127.0.0.2:50001").unwrap();
    {
        let world = world.borrow();
        assert!(!world.core.wants_read(retry), "held after the failure");
        assert!(world.events().contains(&AuditEvent::LoginFailed));
    }
    // The first failure holds the address for LockoutPolicy's first delay, 1 s.
    world
        .borrow_mut()
        .advance(secs(1) - Duration::from_millis(1));
    assert!(
        !world.borrow().core.wants_read(retry),
        "held a moment before 1 s"
    );
    world.borrow_mut().advance(Duration::from_millis(1));
    assert!(world.borrow().core.wants_read(retry), "released at 1 s");
    login_ok(&world, retry, &password);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_password_rotates_after_a_day_and_the_old_one_fails() {
    let dir = temp_dir("daily");
    let world = Rc::new(RefCell::new(World::new(config())));
    let old = give_keeper(
        &mut world.borrow_mut(),
        &dir,
        RotationPolicy::default(),
        LockoutPolicy::default(),
    );
    world.borrow_mut().advance(secs(24 * 3600) - secs(1));
    assert_eq!(
        state::read(&dir).unwrap().password,
        old,
        "not before the day is over"
    );
    world.borrow_mut().advance(secs(1));
    let new = state::read(&dir).unwrap().password;
    assert_ne!(new, old, "rotated after 24 h");
    let first = world.borrow_mut().accept(16, "127.0.0.2:50000").unwrap();
    assert_eq!(
        login_ended(&world, first, &old),
        BAD_CREDENTIALS,
        "the old one fails"
    );
    world.borrow_mut().advance(secs(60));
    let second = world.borrow_mut().accept(17, "127.0.0.2:50001").unwrap();
    login_ok(&world, second, &new);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn with_rotation_after_sessions_the_password_changes_when_the_session_ends() {
    let dir = temp_dir("after-session");
    let world = Rc::new(RefCell::new(World::new(config())));
    let rotation = RotationPolicy {
        after_session: true,
        ..RotationPolicy::default()
    };
    let old = give_keeper(
        &mut world.borrow_mut(),
        &dir,
        rotation,
        LockoutPolicy::default(),
    );
    let id = world.borrow_mut().accept(16, "127.0.0.2:50000").unwrap();
    let client = login_ok(&world, id, &old);
    world.borrow_mut().advance(secs(600));
    assert_eq!(
        state::read(&dir).unwrap().password,
        old,
        "not while it runs"
    );
    drop(client);
    let mut w = world.borrow_mut();
    let now = w.now;
    w.core.on_eof(now, id);
    w.turn();
    assert!(!w.is_open(id));
    let new = state::read(&dir).unwrap().password;
    assert_ne!(new, old, "rotated at the session's end");
    let second = w.accept(17, "127.0.0.2:50001").unwrap();
    drop(w);
    login_ok(&world, second, &new);
    let _ = std::fs::remove_dir_all(&dir);
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn repeated_wrong_passwords_lock_one_address_out_for_the_window() {
    let dir = temp_dir("lockout");
    let world = Rc::new(RefCell::new(World::new(config())));
    let lockout = LockoutPolicy {
        after: 3,
        window: secs(300),
        first_delay: ms(1),
        max_delay: ms(1),
        capacity: 64,
    };
    let password = give_keeper(
        &mut world.borrow_mut(),
        &dir,
        RotationPolicy::default(),
        lockout,
    );
    for n in 0..3 {
        let id = world
            .borrow_mut()
            .accept(16 + n, &format!("127.0.0.2:{}", 50000 + n))
            .expect("not locked out yet");
        world.borrow_mut().advance(ms(1));
        assert_eq!(login_ended(&world, id, "wrong guess"), BAD_CREDENTIALS);
    }
    let mut w = world.borrow_mut();
    // Locked out: even the right password is turned away before TLS.
    assert_eq!(w.accept(20, "127.0.0.2:50010"), None, "locked out");
    // Another address is not.
    let other = w.accept(21, "127.0.0.3:50000").expect("another address");
    let now = w.now;
    w.core.on_eof(now, other);
    w.advance(secs(300) - secs(1));
    assert_eq!(
        w.accept(22, "127.0.0.2:50011"),
        None,
        "still within the window"
    );
    w.advance(secs(2));
    let id = w.accept(23, "127.0.0.2:50012").expect("the window is over");
    drop(w);
    login_ok(&world, id, &password);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Eight sockets that each send a byte a second hold every handshake slot and are never
/// idle; an admin from another address still gets a slot (they hold more than their share).
#[test]
fn trickling_handshakes_do_not_keep_an_admin_from_another_address_out() {
    const REQUEST: [u8; 19] = [3, 0, 0, 19, 14, 0xe0, 0, 0, 0, 0, 0, 1, 0, 8, 0, 3, 0, 0, 0];
    let mut config = config();
    config.slots.global = 8;
    config.slots.per_address = 3;
    config.slots.idle_after = secs(3);
    let world = Rc::new(RefCell::new(World::new(config)));
    let mut w = world.borrow_mut();
    let tricklers: Vec<ConnId> = (0..8)
        .map(|n| {
            w.accept(16 + n, &format!("127.0.0.{}:4000{n}", n / 3 + 1))
                .expect("a slot")
        })
        .collect();
    for byte in &REQUEST[..5] {
        for &id in &tricklers {
            let now = w.now;
            w.core.on_bytes(now, id, std::slice::from_ref(byte));
        }
        w.advance(secs(1));
    }
    assert!(tricklers.iter().all(|&id| w.is_open(id)));
    let admin = w
        .accept(30, "127.0.0.9:50000")
        .expect("a slot for another address");
    drop(w);
    login_ok(&world, admin, PASSWORD);
}

/// X.224 Connection Request asking for TLS only.
const TLS_REQUEST: [u8; 19] = [3, 0, 0, 19, 14, 0xe0, 0, 0, 0, 0, 0, 1, 0, 8, 0, 1, 0, 0, 0];

#[test]
fn a_tls_handshake_that_stops_midway_is_dropped_at_the_timeout() {
    let world = Rc::new(RefCell::new(World::new(config())));
    let id = world.borrow_mut().accept(16, "127.0.0.2:50000").unwrap();
    let mut end = End {
        world: Rc::clone(&world),
        id,
    };
    end.write_all(&TLS_REQUEST).unwrap();
    let mut confirm = [0u8; 19];
    end.read_exact(&mut confirm).unwrap();
    // The first bytes of a ClientHello record, then silence.
    end.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .unwrap();
    let mut w = world.borrow_mut();
    w.advance(secs(15) - ms(1));
    assert!(w.is_open(id));
    w.advance(ms(1));
    assert!(!w.is_open(id), "half a TLS handshake is dropped at 15 s");
}

#[test]
fn slots_freed_by_the_timeout_serve_the_next_client() {
    let mut config = config();
    config.slots.global = 2;
    let world = Rc::new(RefCell::new(World::new(config)));
    let mut w = world.borrow_mut();
    let stalled = [
        w.accept(16, "127.0.0.2:50000").unwrap(),
        w.accept(17, "127.0.0.3:50000").unwrap(),
    ];
    assert_eq!(
        w.accept(18, "127.0.0.4:50000"),
        None,
        "over the cap: closed at once"
    );
    w.advance(secs(15));
    assert!(stalled.iter().all(|&id| !w.is_open(id)), "timed out");
    let next = w.accept(19, "127.0.0.4:50001").expect("a freed slot");
    drop(w);
    login_ok(&world, next, PASSWORD);
}

/// The thin client's screen changes size, the agent asks the admin's client to reactivate,
/// and the client never answers: `terminate` still ends the session (within the linger
/// time), and the next admin is not refused as "another admin session is active".
#[test]
fn a_session_stalled_in_reactivation_is_ended_by_terminate() {
    use thinshadow::control::Request;
    use thinshadow::policy::By;
    let (source, screen) = thinshadow::screen::Synthetic::new(64, 48);
    screen.freeze(0);
    let mut config = config();
    config.access.allow_auto.timeout = Duration::ZERO;
    let world = Rc::new(RefCell::new(World::with_source(config, Box::new(source))));
    let id = world.borrow_mut().accept(16, "127.0.0.2:50000").unwrap();
    let _stalled = login_ok(&world, id, PASSWORD);
    let mut w = world.borrow_mut();
    assert!(
        w.when(|e| matches!(e, AuditEvent::SessionStarted { .. }))
            .is_some()
    );
    screen.resize(80, 48);
    w.advance(secs(2));
    assert!(
        w.is_open(id),
        "waiting for the reactivation it will never get"
    );
    let root = By::Peer { uid: 0, pid: 1 };
    let now = w.now;
    assert!(
        w.core
            .on_control(now, Request::Terminate, root)
            .contains("\"ok\":true")
    );
    w.turn();
    w.advance(thinshadow::agent::LINGER);
    assert!(!w.is_open(id), "ended within the linger time");
    let now = w.now;
    let reply = w.core.on_control(now, Request::Terminate, root);
    assert!(reply.contains("no admin session"), "{reply}");
    let next = w.accept(17, "127.0.0.3:50000").unwrap();
    drop(w);
    login_ok(&world, next, PASSWORD);
}
