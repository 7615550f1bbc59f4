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
                "control_child",
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
