//! The control socket over real Unix sockets: a mio loop in a thread plays the agent.

use std::io::{Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use mio::{Events, Poll, Token};
use thinshadow::control::client::{Client, ClientError};
use thinshadow::control::json::{Value, get};
use thinshadow::control::reply::{self, Status};
use thinshadow::control::socket::{MAX_CLIENTS, MAX_OUTPUT};
use thinshadow::control::{LocalUser, Request, Server};
use thinshadow::policy::{Mode, Modes};

const TIMEOUT: Option<Duration> = Some(Duration::from_secs(5));

/// Unlike `common::temp_dir`, one that other uids can reach: these tests run clients as
/// nobody (65534), who cannot enter the build directory.
fn temp_dir(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("thinshadow-control-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

enum Command {
    Broadcast(String, usize),
    Clients(mpsc::Sender<usize>),
    Stop,
}

/// Runs a server whose "agent" answers status with the default modes and everything else
/// with ok (mode changes are applied).
fn serve(path: &Path, local: LocalUser) -> mpsc::Sender<Command> {
    let (tx, rx) = mpsc::channel();
    let (ready_tx, ready_rx) = mpsc::channel();
    let path = path.to_owned();
    thread::spawn(move || {
        let mut poll = Poll::new().unwrap();
        let mut server = Server::bind(&path, poll.registry(), Token(3), local).unwrap();
        ready_tx.send(()).unwrap();
        let mut events = Events::with_capacity(16);
        let mut modes = Modes::default();
        loop {
            poll.poll(&mut events, Some(Duration::from_millis(20)))
                .unwrap();
            let mut incoming = Vec::new();
            for event in events.iter() {
                assert!(server.owns(event.token()));
                server.ready(poll.registry(), event.token(), &mut incoming);
            }
            for inc in incoming {
                let line = match inc.request {
                    Request::Status | Request::Watch => Status {
                        modes,
                        remote_session: false,
                        session: None,
                    }
                    .line(Instant::now()),
                    Request::Mode { mode, .. } => {
                        modes.management = mode;
                        reply::ok()
                    }
                    _ => reply::ok(),
                };
                server.reply(poll.registry(), inc.client, &line);
            }
            match rx.try_recv() {
                Ok(Command::Broadcast(line, times)) => {
                    for _ in 0..times {
                        server.broadcast(poll.registry(), &line);
                    }
                }
                Ok(Command::Clients(answer)) => answer.send(server.clients()).unwrap(),
                Ok(Command::Stop) => {
                    server.shut_down(poll.registry());
                    return;
                }
                Err(_) => {}
            }
        }
    });
    ready_rx.recv().unwrap();
    tx
}

fn clients(server: &mpsc::Sender<Command>) -> usize {
    let (tx, rx) = mpsc::channel();
    server.send(Command::Clients(tx)).unwrap();
    rx.recv().unwrap()
}

fn read_all(stream: &mut UnixStream) -> String {
    stream.set_read_timeout(TIMEOUT).unwrap();
    let mut text = String::new();
    let _ = stream.read_to_string(&mut text);
    text
}

#[test]
fn requests_get_replies() {
    let dir = temp_dir("replies");
    let path = dir.join("control.sock");
    let server = serve(&path, LocalUser::default());
    let mut client = Client::connect(&path, TIMEOUT).unwrap();
    let (_, status) = client.call(&Request::Status).unwrap();
    assert_eq!(
        get(&status, "management"),
        Some(&Value::Str("allow-auto".into()))
    );
    let mode = Request::from_args(&["mode", "management", "deny"]).unwrap();
    client.call(&mode).unwrap();
    let (_, status) = client.call(&Request::Status).unwrap();
    assert_eq!(get(&status, "management"), Some(&Value::Str("deny".into())));
    server.send(Command::Stop).unwrap();
}

#[test]
fn garbage_gets_an_error_and_the_connection_closes() {
    let dir = temp_dir("garbage");
    let path = dir.join("control.sock");
    let server = serve(&path, LocalUser::default());
    for (input, expected) in [
        (&b"hello\n"[..], "malformed json: expected '{' at byte 0"),
        (b"{\"cmd\":\"reboot\"}\n", "unknown command \\\"reboot\\\""),
        (b"\xff\xfe\n", "request line is not utf-8"),
        (
            b"{\"cmd\":\"mode\",\"which\":\"management\"}\n",
            "missing field \\\"mode\\\"",
        ),
    ] {
        let mut stream = UnixStream::connect(&path).unwrap();
        stream.write_all(input).unwrap();
        let reply = read_all(&mut stream);
        assert!(reply.starts_with("{\"ok\":false,\"error\":\""), "{reply}");
        assert!(reply.contains(expected), "{reply}");
        assert_eq!(reply.lines().count(), 1, "closed after the error: {reply}");
    }
    // Oversized: the error comes before the line ends.
    let mut stream = UnixStream::connect(&path).unwrap();
    stream.write_all(&[b'x'; 5000]).unwrap();
    let reply = read_all(&mut stream);
    assert_eq!(
        reply,
        "{\"ok\":false,\"error\":\"request line longer than 4096 bytes\"}\n"
    );
    // The server goes on.
    let mut client = Client::connect(&path, TIMEOUT).unwrap();
    client.call(&Request::Status).unwrap();
    server.send(Command::Stop).unwrap();
}

#[test]
fn a_half_closed_peer_still_gets_its_reply() {
    let dir = temp_dir("halfclose");
    let path = dir.join("control.sock");
    let server = serve(&path, LocalUser::default());
    let mut stream = UnixStream::connect(&path).unwrap();
    stream.write_all(b"{\"cmd\":\"terminate\"}\n").unwrap();
    stream.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_all(&mut stream), "{\"ok\":true}\n");
    server.send(Command::Stop).unwrap();
}

#[test]
fn clients_are_bounded() {
    let dir = temp_dir("bounded");
    let path = dir.join("control.sock");
    let server = serve(&path, LocalUser::default());
    let held: Vec<Client> = (0..MAX_CLIENTS)
        .map(|_| {
            let mut c = Client::connect(&path, TIMEOUT).unwrap();
            c.call(&Request::Status).unwrap();
            c
        })
        .collect();
    let mut extra = UnixStream::connect(&path).unwrap();
    assert_eq!(
        read_all(&mut extra),
        "{\"ok\":false,\"error\":\"too many control connections\"}\n"
    );
    drop(held);
    let start = Instant::now();
    while clients(&server) > 0 {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "closed peers are freed"
        );
        thread::sleep(Duration::from_millis(10));
    }
    Client::connect(&path, TIMEOUT)
        .unwrap()
        .call(&Request::Status)
        .unwrap();
    server.send(Command::Stop).unwrap();
}

#[test]
fn watchers_get_events_and_a_stalled_one_is_dropped() {
    let dir = temp_dir("watch");
    let path = dir.join("control.sock");
    let server = serve(&path, LocalUser::default());
    let mut watcher = Client::connect(&path, TIMEOUT).unwrap();
    let (_, first) = watcher.call(&Request::Watch).unwrap();
    assert_eq!(get(&first, "session"), Some(&Value::Str("none".into())));
    let mut stalled = Client::connect(&path, TIMEOUT).unwrap();
    stalled.call(&Request::Watch).unwrap();
    let mut plain = Client::connect(&path, TIMEOUT).unwrap();
    plain.call(&Request::Status).unwrap();
    let modes = Modes {
        management: Mode::Deny,
        remote_screen: Mode::Deny,
    };
    server
        .send(Command::Broadcast(reply::modes_event(modes), 1))
        .unwrap();
    watcher.wait_forever().unwrap();
    let (line, _) = watcher.next_line().unwrap().unwrap();
    assert_eq!(
        line,
        "{\"event\":\"modes\",\"management\":\"deny\",\"remote_screen\":\"deny\"}\n"
    );
    // Enough to fill the kernel's buffer and our cap for the one that never reads, in
    // batches a reading watcher keeps up with (a burst over the cap would drop it too).
    let event = reply::remote_session_event(true);
    let batch = 400;
    let batches = (1024 * 1024 + MAX_OUTPUT) / event.len() / batch + 1;
    let times = batch * batches;
    let reader = thread::spawn(move || {
        let mut n = 0;
        while let Ok(Some(_)) = watcher.next_line() {
            n += 1;
            if n == times {
                break;
            }
        }
        (n, watcher)
    });
    for _ in 0..batches {
        server
            .send(Command::Broadcast(event.clone(), batch))
            .unwrap();
    }
    let (seen, _watcher) = reader.join().unwrap();
    assert_eq!(seen, times, "a reading watcher misses nothing");
    assert_eq!(clients(&server), 2, "the stalled watcher was dropped");
    // The plain client got no events.
    plain.call(&Request::Status).unwrap();
    server.send(Command::Stop).unwrap();
}

/// Runs in a child process under another uid (see `other_uids_are_held_to_their_rights`).
#[test]
fn control_child() {
    let Ok(path) = std::env::var("THINSHADOW_CONTROL_CHILD") else {
        return;
    };
    let path = Path::new(&path);
    let result = |r: Result<_, ClientError>| match r {
        Ok(_) => "ok".to_owned(),
        Err(e) => e.to_string(),
    };
    let mut client = Client::connect(path, TIMEOUT).unwrap();
    let mode = Request::from_args(&["mode", "remote-screen", "allow-auto"]).unwrap();
    println!("mode: {}", result(client.call(&mode)));
    println!("status: {}", result(client.call(&Request::Status)));
    println!("accept: {}", result(client.call(&Request::Accept(None))));
}

#[test]
fn other_uids_are_held_to_their_rights() {
    use std::os::unix::process::CommandExt;
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root to run a peer under another uid");
        return;
    }
    let dir = temp_dir("uids");
    let path = dir.join("control.sock");
    let local = LocalUser {
        uid: Some(65534),
        gid: None,
    };
    let server = serve(&path, local);
    let run = |uid: u32| {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "policy_control::control_child",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("THINSHADOW_CONTROL_CHILD", &path)
            .uid(uid)
            .gid(uid)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    };
    let local_user = run(65534);
    assert!(
        local_user.contains("mode: permission denied: only root changes modes"),
        "{local_user}"
    );
    assert!(local_user.contains("status: ok"), "{local_user}");
    assert!(local_user.contains("accept: ok"), "{local_user}");
    let stranger = run(65533);
    assert!(
        stranger.contains("permission denied: only root and the local user may use this socket"),
        "{stranger}"
    );
    assert!(!stranger.contains("status: ok"), "{stranger}");
    server.send(Command::Stop).unwrap();
}

/// The test binary again, as `control_child`, under `uid` with `groups` as supplementary
/// groups (set before the uid drops, which std's `.uid()` would not allow).
fn run_child_with_groups(path: &Path, uid: u32, groups: &[u32]) -> String {
    use nix::unistd::{Gid, Uid, setgid, setgroups, setuid};
    use std::os::unix::process::CommandExt;
    let groups: Vec<Gid> = groups.iter().map(|g| Gid::from_raw(*g)).collect();
    let mut command = std::process::Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "policy_control::control_child",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("THINSHADOW_CONTROL_CHILD", path);
    // SAFETY: only async-signal-safe syscalls between fork and exec, no allocation.
    unsafe {
        command.pre_exec(move || {
            setgroups(&groups)?;
            setgid(Gid::from_raw(uid))?;
            setuid(Uid::from_raw(uid))?;
            Ok(())
        });
    }
    let out = command.output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

#[test]
fn members_of_the_local_group_may_answer_by_a_supplementary_group() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root to run a peer under another uid");
        return;
    }
    let dir = temp_dir("group");
    let path = dir.join("control.sock");
    let local = LocalUser {
        uid: None,
        gid: Some(4242),
    };
    let server = serve(&path, local);
    let member = run_child_with_groups(&path, 65533, &[100, 4242]);
    assert!(member.contains("status: ok"), "{member}");
    assert!(member.contains("accept: ok"), "{member}");
    assert!(
        member.contains("mode: permission denied: only root changes modes"),
        "{member}"
    );
    let outsider = run_child_with_groups(&path, 65533, &[100]);
    assert!(
        outsider.contains("permission denied: only root and the local user may use this socket"),
        "{outsider}"
    );
    assert!(!outsider.contains("status: ok"), "{outsider}");
    server.send(Command::Stop).unwrap();
}

fn thinshadow(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_thinshadow"))
        .args(args)
        .output()
        .expect("thinshadow runs")
}

fn wait_for_socket(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Client::connect(path, TIMEOUT).is_err() {
        assert!(Instant::now() < deadline, "no agent at {}", path.display());
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn mode_without_an_agent_edits_the_state_for_the_next_start() {
    use std::os::unix::process::CommandExt;
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: mode is root's, and the refusal needs another uid");
        return;
    }
    let dir = temp_dir("offline");
    let state = dir.join("state");
    let socket = dir.join("control.sock");
    let (state_arg, socket_arg) = (state.to_str().unwrap(), socket.to_str().unwrap());
    let out = thinshadow(&[
        "mode",
        "management",
        "deny",
        "--control",
        socket_arg,
        "--state-dir",
        state_arg,
    ]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "{\"ok\":true,\"management\":\"deny\",\"remote_screen\":\"allow-by-request\"}\n"
    );
    // A stale socket file from a stopped agent is no agent either.
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    let out = thinshadow(&[
        "mode",
        "remote-screen",
        "allow-auto",
        "--control",
        socket_arg,
        "--state-dir",
        state_arg,
    ]);
    assert!(out.status.success(), "{out:?}");
    let saved = thinshadow::state::read(&state).unwrap().modes;
    assert_eq!(
        saved,
        Modes {
            management: Mode::Deny,
            remote_screen: Mode::AllowAuto
        }
    );
    // Not root: refused, nothing changes.
    std::fs::remove_file(&socket).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_thinshadow"))
        .args(["mode", "management", "allow-auto", "--control", socket_arg])
        .args(["--state-dir", state_arg])
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("only root changes modes"), "{err}");
    assert_eq!(thinshadow::state::read(&state).unwrap().modes, saved);

    // The next agent starts with them.
    let config = dir.join("empty.toml");
    std::fs::write(&config, "").unwrap();
    let mut agent = std::process::Command::new(env!("CARGO_BIN_EXE_thinshadow"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--screen",
            "synthetic:64x64",
        ])
        .args([
            "--config",
            config.to_str().unwrap(),
            "--state-dir",
            state_arg,
        ])
        .args(["--control", socket_arg])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for_socket(&socket);
    let (_, status) = Client::connect(&socket, TIMEOUT)
        .unwrap()
        .call(&Request::Status)
        .unwrap();
    assert_eq!(get(&status, "management"), Some(&Value::Str("deny".into())));
    assert_eq!(
        get(&status, "remote_screen"),
        Some(&Value::Str("allow-auto".into()))
    );
    // While it runs, mode goes through it; an edit behind its back is refused.
    let out = thinshadow(&[
        "mode",
        "management",
        "allow-by-request",
        "--control",
        socket_arg,
    ]);
    assert!(out.status.success(), "{out:?}");
    let elsewhere = dir.join("elsewhere.sock");
    let out = thinshadow(&[
        "mode",
        "management",
        "allow-auto",
        "--control",
        elsewhere.to_str().unwrap(),
        "--state-dir",
        state_arg,
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("an agent is running"), "{err}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(agent.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert!(agent.wait().unwrap().success());
    // The agent saved the change it was given on its way out.
    assert_eq!(
        thinshadow::state::read(&state).unwrap().modes.management,
        Mode::AllowByRequest
    );
}
