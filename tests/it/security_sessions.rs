//! Attacks by connections on a running agent (issue 13): a second admin held after its
//! login, idle sockets hoarding handshake slots, a client that sends but never reads, and a
//! flood of empty connections against the audit record.

use crate::common;

use std::net::{Ipv4Addr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use common::agent::{self, Options, RunningAgent, USER};
use common::client::{ClientConfig, Image, RunError, Security, TestClient, connect_from};
use thinshadow::audit::{AuditConfig, generation_path};
use thinshadow::control::Request;
use thinshadow::control::client::Client;
use thinshadow::policy::{AccessSettings, AuditLimits, Mode, Modes};
use thinshadow::screen::synthetic_pixel;

const WAIT: Duration = Duration::from_secs(20);
const W: u16 = 160;
const H: u16 = 120;
const DENIED: u32 = 0x7;

fn temp_dir(name: &str) -> PathBuf {
    common::temp_dir(module_path!(), name)
}

/// An agent on a frozen synthetic screen; the test's uid is the local user.
fn start(options: Options) -> RunningAgent {
    agent::start_frozen(options, W, H)
}

fn by_request(control: &Path) -> Options {
    Options {
        access: AccessSettings::default(),
        modes: Modes {
            management: Mode::AllowByRequest,
            remote_screen: Mode::AllowByRequest,
        },
        control: Some(control.to_owned()),
        ..Options::default()
    }
}

fn config(agent: &RunningAgent) -> ClientConfig {
    ClientConfig::new(agent.addr, USER, &agent.password, Security::Nla)
}

fn call(path: &Path, words: &str) -> String {
    let request = Request::from_args(&words.split(' ').collect::<Vec<_>>()).unwrap();
    let mut client = Client::connect(path, Some(Duration::from_secs(5))).unwrap();
    match client.call(&request) {
        Ok((line, _)) => line,
        Err(e) => e.to_string(),
    }
}

fn shows_real_screen(image: &Image) -> bool {
    (0..image.height()).all(|y| {
        (0..image.width())
            .all(|x| image.pixel(x, y) == synthetic_pixel(image.width(), image.height(), 0, x, y))
    })
}

/// Finding 2: admin B logs in while admin A waits for consent, and stalls before the
/// connection finalization; the local user rejects A; B then finishes. B must be refused
/// (its fate was decided at its login), never see the screen, never type.
#[test]
fn a_second_admin_held_after_login_never_gets_the_session() {
    let dir = temp_dir("second");
    let control = dir.join("control.sock");
    let agent = start(by_request(&control));

    let mut a = TestClient::connect(&config(&agent)).expect("admin A logs in");
    a.pump_for(Duration::from_millis(200)).unwrap();
    assert!(
        !shows_real_screen(&a.image()),
        "A sees the screen before consent"
    );

    let barrier = Arc::new(Barrier::new(2));
    let mut b_config = config(&agent);
    b_config.pause_after_login = Some(Arc::clone(&barrier));
    let b = std::thread::spawn(move || TestClient::connect(&b_config));
    // B has logged in (NLA done) and holds still.
    barrier.wait();

    let reply = call(&control, "reject");
    assert!(reply.contains("\"ok\""), "reject: {reply}");
    match a.run_until(WAIT, |_| false) {
        Err(RunError::Terminated { error_info, .. }) => assert_eq!(error_info, Some(DENIED)),
        other => panic!("A should be refused, got {other:?}"),
    }
    drop(a);
    // A is gone: nothing is left to terminate.
    let deadline = Instant::now() + WAIT;
    while !call(&control, "terminate").contains("no admin session") {
        assert!(Instant::now() < deadline, "A's session never ended");
        std::thread::sleep(Duration::from_millis(50));
    }

    barrier.wait();
    match b.join().unwrap() {
        Err(e) => assert_eq!(e.error_info(), Some(DENIED), "{e:?}"),
        Ok(mut b) => {
            let _ = b.send_key(0x1E, false, true);
            match b.run_until(WAIT, shows_real_screen) {
                Err(RunError::Terminated { error_info, .. }) => {
                    assert_eq!(error_info, Some(DENIED));
                }
                other => panic!("B must be refused, got {other:?}"),
            }
        }
    }
    assert!(
        agent.input.events.lock().unwrap().is_empty(),
        "admin input reached the thin client"
    );
    // The agent still serves: a new admin is asked as usual.
    let mut c = TestClient::connect(&config(&agent)).expect("admin C logs in");
    c.pump_for(Duration::from_millis(200)).unwrap();
    let status = call(&control, "status");
    assert!(status.contains("consent"), "C is not being asked: {status}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Finding 4: idle sockets from one address (and then from many) do not lock an admin out.
#[test]
fn an_admin_gets_in_past_idle_sockets() {
    let agent = start(Options {
        max_handshakes: 8,
        handshakes_per_address: 3,
        handshake_idle: Duration::from_millis(300),
        ..Options::default()
    });
    // Nine idle sockets from one address: it keeps only its share of the slots.
    let idle: Vec<TcpStream> = (0..9)
        .map(|_| connect_from(Ipv4Addr::new(127, 0, 0, 1), agent.addr).unwrap())
        .collect();
    let mut cfg = config(&agent);
    cfg.source = Some(Ipv4Addr::new(127, 0, 0, 2));
    let admin = TestClient::connect(&cfg).expect("an admin from another address gets in");
    drop(admin);
    // Now every slot is taken by idle sockets from many addresses.
    let more: Vec<TcpStream> = (10..20)
        .map(|n| connect_from(Ipv4Addr::new(127, 0, 0, n), agent.addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(400));
    cfg.source = Some(Ipv4Addr::new(127, 0, 0, 3));
    TestClient::connect(&cfg).expect("the oldest idle handshake gives its slot");
    drop((idle, more));
}

/// Finding 7: a client waiting for consent that sends Shutdown Requests but never reads
/// the answers is disconnected, and what waited for it stayed bounded.
#[test]
fn a_client_that_never_reads_is_disconnected_with_bounded_output() {
    let dir = temp_dir("flood");
    let agent = start(by_request(&dir.join("control.sock")));
    let mut client = TestClient::connect(&config(&agent)).expect("login");
    client.pump_for(Duration::from_millis(200)).unwrap();
    let requests = 400_000;
    let sent = client.flood_shutdown_requests(requests);
    assert!(sent < requests, "the agent never disconnected the flooder");
    let queued = agent.watermarks.output_queued();
    assert!(
        queued <= thinshadow::net::MAX_PENDING_OUTPUT,
        "{queued} bytes waited for a client that does not read"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Finding 5: 10,000 empty connections from one address do not push a real session's
/// record out of the kept audit files, and what was left out is summarised.
#[test]
fn an_empty_connection_flood_keeps_the_session_record() {
    let dir = temp_dir("audit");
    let file = dir.join("audit.log");
    let agent = start(Options {
        audit: AuditConfig {
            stderr: false,
            syslog: None,
            file: Some(file.clone()),
            file_max: 8192,
            file_keep: 3,
        },
        audit_limits: AuditLimits {
            window: Duration::from_secs(2),
            ..AuditLimits::default()
        },
        ..Options::default()
    });
    let mut admin = TestClient::connect(&config(&agent)).expect("login");
    admin.pump_for(Duration::from_millis(200)).unwrap();
    drop(admin);
    for _ in 0..10_000 {
        if let Ok(socket) = connect_from(Ipv4Addr::new(127, 0, 0, 9), agent.addr) {
            drop(socket);
        }
    }
    // The window ends: the summary of the flood is written.
    std::thread::sleep(Duration::from_millis(2500));
    let mut kept = String::new();
    for path in [
        file.clone(),
        generation_path(&file, 1),
        generation_path(&file, 2),
    ]
    .into_iter()
    .chain([generation_path(&file, 3)])
    {
        kept += &std::fs::read_to_string(path).unwrap_or_default();
    }
    assert!(
        kept.contains("\"session-started\""),
        "the session's record is gone"
    );
    assert!(kept.contains("\"left-out\""), "no summary of the flood");
    let _ = std::fs::remove_dir_all(&dir);
}
