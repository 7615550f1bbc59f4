//! The audit trail and the remote-process detector in the running agent, with the
//! in-process IronRDP client and the real control socket: the audit file and a test-owned
//! syslog socket after a whole session; a listed process holding the admin at the waiting
//! screen until it exits.

use crate::common;

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::agent::{self, Options, RunningAgent, USER};
use common::client::{ClientConfig, Image, RunError, Security, TestClient};
use thinshadow::audit::AuditConfig;
use thinshadow::control::Request;
use thinshadow::control::client::Client;
use thinshadow::control::json::{self, Object, Value};
use thinshadow::policy::{AccessSettings, Ask, Mode, Modes, TimeoutAction};
use thinshadow::screen::synthetic_pixel;

const WAIT: Duration = Duration::from_secs(20);
const W: u16 = 320;
const H: u16 = 240;
const BY_USER: u32 = 0xB;

fn test_dir(name: &str) -> PathBuf {
    let dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("audit-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Long timeouts: the tests answer, the clock does not.
fn settings() -> AccessSettings {
    let ask = |on_timeout| Ask {
        timeout: WAIT * 3,
        on_timeout,
    };
    AccessSettings {
        allow_auto: ask(TimeoutAction::Start),
        allow_by_request: ask(TimeoutAction::Refuse),
    }
}

fn start(options: Options) -> RunningAgent {
    agent::start_frozen(options, W, H)
}

fn connect(
    agent: &RunningAgent,
    password: &str,
) -> Result<TestClient, common::client::ConnectError> {
    TestClient::connect(&ClientConfig::new(
        agent.addr,
        USER,
        password,
        Security::Nla,
    ))
}

fn call(path: &Path, words: &str) -> Object {
    let request = Request::from_args(&words.split(' ').collect::<Vec<_>>()).unwrap();
    let mut client = Client::connect(path, Some(Duration::from_secs(5))).expect("control");
    client.call(&request).map(|(_, o)| o).expect(words)
}

fn text<'a>(object: &'a Object, key: &str) -> Option<&'a str> {
    match json::get(object, key) {
        Some(Value::Str(s)) => Some(s),
        _ => None,
    }
}

fn int(object: &Object, key: &str) -> Option<i64> {
    match json::get(object, key) {
        Some(Value::Int(n)) => Some(*n),
        _ => None,
    }
}

fn shows_phase(image: &Image, phase: u32) -> bool {
    let (w, h) = (image.width(), image.height());
    (0..h).all(|y| (0..w).all(|x| image.pixel(x, y) == synthetic_pixel(w, h, phase, x, y)))
}

/// Polls `status` until `check` holds, pumping the client so the agent never stalls on it.
fn wait_status(path: &Path, client: Option<&mut TestClient>, check: impl Fn(&Object) -> bool) {
    let deadline = Instant::now() + WAIT;
    let mut client = client;
    loop {
        let status = call(path, "status");
        if check(&status) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "status never matched: {status:?}"
        );
        match client.as_deref_mut() {
            Some(c) => c.pump_for(Duration::from_millis(50)).expect("session"),
            None => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// The audit file's lines once one of them is `last` (an event name) `count` times.
fn audit_lines(path: &Path, last: &str, count: usize) -> Vec<Object> {
    let deadline = Instant::now() + WAIT;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<Object> = text
            .lines()
            .map(|l| json::parse_object(l).expect("every audit line is a JSON object"))
            .collect();
        if lines.iter().filter(|o| text_of(o, "event") == last).count() >= count {
            return lines;
        }
        assert!(Instant::now() < deadline, "no {last} line in: {text}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn text_of<'a>(object: &'a Object, key: &str) -> &'a str {
    text(object, key).unwrap_or("")
}

#[test]
fn a_whole_session_leaves_its_audit_lines_in_the_file_and_syslog() {
    let dir = test_dir("session");
    let control = dir.join("control.sock");
    let file = dir.join("audit.log");
    let syslog_path = dir.join("log.sock");
    let syslog = UnixDatagram::bind(&syslog_path).unwrap();
    syslog.set_read_timeout(Some(WAIT)).unwrap();
    // A logger reads as lines come (the kernel queues only a few datagrams).
    let logger = std::thread::spawn(move || {
        let mut got = Vec::new();
        let mut buf = [0u8; 2048];
        while let Ok(n) = syslog.recv(&mut buf) {
            let line = String::from_utf8_lossy(&buf[..n]).into_owned();
            let end = line.contains("\"event\":\"ended\"");
            got.push(line);
            if end {
                break;
            }
        }
        got
    });
    let agent = start(Options {
        access: settings(),
        modes: Modes {
            management: Mode::AllowByRequest,
            remote_screen: Mode::AllowByRequest,
        },
        control: Some(control.clone()),
        audit: AuditConfig {
            stderr: false,
            syslog: Some(syslog_path.clone()),
            file: Some(file.clone()),
            file_max: 1024 * 1024,
            file_keep: 1,
        },
        ..Options::default()
    });

    // A stranger with a wrong password: connect, failed login, the end of the connection.
    let err = connect(&agent, "wrong-password").err().expect("refused");
    assert!(err.is_auth_failure(), "{err:?}");
    audit_lines(&file, "disconnected", 1);

    // The admin: asked, accepted, view-only and back, terminated by the local user.
    let mut client = connect(&agent, &agent.password).expect("login");
    wait_status(&control, Some(&mut client), |s| {
        text(s, "pending") == Some("consent")
    });
    call(&control, "accept consent");
    client
        .run_until(WAIT, |image| shows_phase(image, 0))
        .expect("the real screen");
    call(&control, "view-only on");
    call(&control, "view-only off");
    call(&control, "terminate");
    match client.run_until(WAIT, |_| false) {
        Err(RunError::Terminated { error_info, .. }) => assert_eq!(error_info, Some(BY_USER)),
        other => panic!("expected the end by the user, got {other:?}"),
    }

    let lines = audit_lines(&file, "ended", 1);
    for line in std::fs::read_to_string(&file).unwrap().lines() {
        eprintln!("{line}");
    }
    let names: Vec<&str> = lines.iter().map(|o| text_of(o, "event")).collect();
    assert_eq!(
        names,
        [
            "connected",
            "login-failed",
            "disconnected",
            "connected",
            "authenticated",
            "consent-asked",
            "consent-answered",
            "session-started",
            "screen-access-granted",
            "view-only",
            "view-only",
            "ended",
        ]
    );
    assert!(
        lines.iter().all(|o| int(o, "ts").is_some()),
        "every line stamped"
    );
    let stranger = text_of(&lines[0], "admin");
    let admin = text_of(&lines[3], "admin");
    assert_ne!(stranger, admin, "two connections, two source ports");
    assert!(lines[..3].iter().all(|o| text_of(o, "admin") == stranger));
    assert!(lines[3..].iter().all(|o| text_of(o, "admin") == admin));
    assert!(admin.starts_with("127.0.0.1:"), "{admin}");
    assert!(int(&lines[2], "duration_ms").is_some());
    let me = i64::from(nix::unistd::getuid().as_raw());
    let answered = &lines[6];
    assert_eq!(json::get(answered, "accepted"), Some(&Value::Bool(true)));
    assert_eq!(
        (text_of(answered, "by"), int(answered, "uid")),
        ("peer", Some(me))
    );
    assert_eq!(json::get(&lines[9], "on"), Some(&Value::Bool(true)));
    assert_eq!(json::get(&lines[10], "on"), Some(&Value::Bool(false)));
    let ended = &lines[11];
    assert_eq!(text_of(ended, "cause"), "terminated");
    assert_eq!(
        (text_of(ended, "by"), int(ended, "uid")),
        ("peer", Some(me))
    );
    let (duration, active) = (int(ended, "duration_ms").unwrap(), int(ended, "active_ms"));
    assert!(active.is_some_and(|a| a <= duration), "{ended:?}");

    // Syslog got the same lines, as authpriv.info datagrams.
    let prefix = format!("<86>thinshadow[{}]: ", std::process::id());
    let file_text = std::fs::read_to_string(&file).unwrap();
    let datagrams = logger.join().unwrap();
    let got: Vec<Option<&str>> = datagrams.iter().map(|d| d.strip_prefix(&prefix)).collect();
    let want: Vec<Option<&str>> = file_text.lines().map(Some).collect();
    assert_eq!(got, want);
}

/// `sleep` started through a symlink of a listed name: a real process with that name.
fn fake_vdi_client(dir: &Path, name: &str) -> Child {
    let sleep = ["/bin/sleep", "/usr/bin/sleep"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("sleep");
    let link = dir.join(name);
    std::os::unix::fs::symlink(sleep, &link).unwrap();
    Command::new(&link).arg("60").spawn().unwrap()
}

#[test]
fn a_listed_process_holds_the_screen_until_it_exits() {
    let dir = test_dir("process");
    let control = dir.join("control.sock");
    let file = dir.join("audit.log");
    let name = format!("tsvdi{}", std::process::id() % 1_000_000);
    let agent = start(Options {
        access: settings(),
        modes: Modes {
            management: Mode::AllowByRequest,
            remote_screen: Mode::Deny,
        },
        control: Some(control.clone()),
        audit: AuditConfig {
            stderr: false,
            file: Some(file.clone()),
            ..AuditConfig::default()
        },
        remote_processes: vec!["xfreerdp-not-here".into(), name.clone()],
        ..Options::default()
    });
    // Not scanned while nobody is connected: the agent does not know yet.
    let mut vdi = fake_vdi_client(&dir, &name);
    assert_eq!(
        json::get(&call(&control, "status"), "remote_session"),
        Some(&Value::Bool(false))
    );
    let mut client = connect(&agent, &agent.password).expect("login");
    wait_status(&control, Some(&mut client), |s| {
        text(s, "pending") == Some("consent")
    });
    // Scanned at the login: the user is in a remote session.
    assert_eq!(
        json::get(&call(&control, "status"), "remote_session"),
        Some(&Value::Bool(true))
    );
    call(&control, "accept");
    wait_status(&control, Some(&mut client), |s| {
        text(s, "waiting_for") == Some("remote-session-end")
    });
    // The shell saying "ended" does not hide a client that still runs.
    call(&control, "remote-session ended");
    client.pump_for(Duration::from_millis(300)).unwrap();
    assert_eq!(
        text(&call(&control, "status"), "waiting_for"),
        Some("remote-session-end")
    );
    client.send_mouse_move(5, 5).unwrap();
    client.pump_for(Duration::from_millis(200)).unwrap();
    assert!(agent.input.events.lock().unwrap().is_empty());

    vdi.kill().unwrap();
    vdi.wait().unwrap();
    client
        .run_until(WAIT, |image| shows_phase(image, 0))
        .expect("the real screen once the client exits");
    let lines = audit_lines(&file, "screen-access-granted", 1);
    let granted = lines
        .iter()
        .find(|o| text_of(o, "event") == "screen-access-granted")
        .unwrap();
    assert_eq!(text_of(granted, "how"), "remote-session-ended");
}
