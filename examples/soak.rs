//! The soak driver for scripts/soak.sh: runs N mixed connection cycles against a running
//! agent on loopback, then a client that stops reading, and samples the agent's memory and
//! file descriptors from /proc. Exits non-zero when either grew past its bound.
//!
//! soak --addr 127.0.0.1:PORT --password P --pid PID --control SOCK [--cycles N] [--slow-secs S]

#[allow(dead_code)]
#[path = "../tests/it/common/client.rs"]
mod client;
#[allow(dead_code)]
#[path = "../tests/it/common/faults.rs"]
mod faults;

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use client::{ClientConfig, Security, TestClient};
use thinshadow::control::Request;
use thinshadow::control::client::Client as ControlClient;

/// Growth allowed after warm-up (the bound).
const RSS_BOUND_KIB: u64 = 1024;
const WARM_UP: usize = 50;
/// Longer than the agent's linger (2 s): every closed connection is gone by then.
const SETTLE: Duration = Duration::from_millis(2500);

struct Args {
    addr: SocketAddr,
    password: String,
    pid: u32,
    control: PathBuf,
    cycles: usize,
    slow: Duration,
}

fn args() -> Args {
    let mut a = Args {
        addr: "127.0.0.1:3389".parse().unwrap(),
        password: String::new(),
        pid: 0,
        control: PathBuf::new(),
        cycles: 1000,
        slow: Duration::from_secs(60),
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    for pair in argv.chunks(2) {
        let value = pair.get(1).cloned().unwrap_or_default();
        match pair[0].as_str() {
            "--addr" => a.addr = value.parse().expect("--addr"),
            "--password" => a.password = value,
            "--pid" => a.pid = value.parse().expect("--pid"),
            "--control" => a.control = value.into(),
            "--cycles" => a.cycles = value.parse().expect("--cycles"),
            "--slow-secs" => a.slow = Duration::from_secs(value.parse().expect("--slow-secs")),
            other => panic!("unknown argument {other}"),
        }
    }
    assert!(
        a.pid != 0 && !a.password.is_empty(),
        "--pid and --password are needed"
    );
    a
}

#[derive(Clone, Copy, Debug)]
struct Sample {
    rss_kib: u64,
    anon_kib: u64,
    fds: usize,
}

fn sample(pid: u32) -> Sample {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("agent alive");
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count());
    Sample {
        rss_kib: field("VmRSS:"),
        anon_kib: field("RssAnon:"),
        fds,
    }
}

fn config(a: &Args, password: &str, security: Security) -> ClientConfig {
    let mut c = ClientConfig::new(a.addr, "admin", password, security);
    (c.width, c.height) = (320, 240);
    c
}

/// X.224 Connection Request asking for TLS, then the first bytes of a ClientHello.
fn partial_tls(source: Ipv4Addr, addr: SocketAddr) -> Option<TcpStream> {
    let mut s = client::connect_from(source, addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(&[3, 0, 0, 19, 14, 0xe0, 0, 0, 0, 0, 0, 1, 0, 8, 0, 1, 0, 0, 0])
        .ok()?;
    let mut confirm = [0u8; 19];
    s.read_exact(&mut confirm).ok()?;
    s.write_all(&[
        0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
    ])
    .ok()?;
    Some(s)
}

fn control(a: &Args, words: &str) -> bool {
    let request = Request::from_args(&words.split(' ').collect::<Vec<_>>()).unwrap();
    ControlClient::connect(&a.control, Some(Duration::from_secs(5)))
        .and_then(|mut c| c.call(&request))
        .is_ok()
}

fn main() {
    let a = args();
    let mut stalled: VecDeque<(Instant, TcpStream)> = VecDeque::new();
    let mut failures = Vec::new();
    let mut baseline = None;
    let mut peak = sample(a.pid);
    let started = Instant::now();
    let (mut ok_sessions, mut refused_logins) = (0usize, 0usize);
    // Time per kind of cycle: wrong password, session, stalled, session.
    let mut spent = [Duration::ZERO; 4];
    for cycle in 0..a.cycles {
        if cycle == WARM_UP.min(a.cycles / 2) {
            stalled.clear();
            std::thread::sleep(SETTLE);
            let s = sample(a.pid);
            println!("after warm-up ({cycle} cycles): {s:?}");
            baseline = Some(s);
        }
        let cycle_started = Instant::now();
        match cycle % 4 {
            0 => {
                // Wrong password from one of 200 loopback sources: the lockout holds a
                // source ~1 s after a failure, so each comes back long after that.
                let mut c = config(&a, "wrong-password", Security::Tls);
                c.source = Some(Ipv4Addr::new(127, 0, 1, 1 + (cycle / 4 % 200) as u8));
                match TestClient::connect(&c) {
                    Err(e) if e.is_auth_failure() => refused_logins += 1,
                    Err(e) => failures.push(format!("cycle {cycle}: wrong password: {e}")),
                    // TLS security: refused with Set Error Info right after the handshake.
                    Ok(mut c) => match c.pump_for(Duration::from_secs(5)) {
                        Err(_) if c.last_error_info().is_some() => refused_logins += 1,
                        other => {
                            failures.push(format!("cycle {cycle}: a wrong password: {other:?}"))
                        }
                    },
                }
            }
            1 | 3 => {
                let security = if cycle % 8 == 1 {
                    Security::Nla
                } else {
                    Security::Tls
                };
                match TestClient::connect(&config(&a, &a.password, security)) {
                    Ok(mut c) => {
                        // The local user says yes (the policy is on with --control).
                        let _ = c.pump_for(Duration::from_millis(50));
                        if !control(&a, "accept") {
                            failures.push(format!("cycle {cycle}: accept failed"));
                        }
                        let mut frames = 0;
                        let run = c.run_until(Duration::from_secs(10), |_| {
                            frames += 1;
                            frames >= 3
                        });
                        if let Err(e) = run {
                            failures.push(format!("cycle {cycle}: no frames: {e:?}"));
                        }
                        c.disconnect();
                        ok_sessions += 1;
                    }
                    Err(e) => failures.push(format!("cycle {cycle}: login: {e}")),
                }
            }
            _ => {
                // Half-open (connect, nothing) or a TLS handshake that stops midway; a few
                // stay open across cycles, the agent's handshake timeout ends the oldest.
                // Each comes from its own loopback source: one address may hold only a few
                // handshake slots, and the admin's logins come from 127.0.0.1.
                let source = Ipv4Addr::new(127, 0, 2, 1 + (cycle / 4 % 200) as u8);
                let stream = if cycle % 8 == 2 {
                    client::connect_from(source, a.addr).ok()
                } else {
                    partial_tls(source, a.addr)
                };
                if let Some(stream) = stream {
                    stalled.push_back((Instant::now(), stream));
                }
                while stalled.len() > 3
                    || stalled
                        .front()
                        .is_some_and(|(at, _)| at.elapsed() > Duration::from_secs(4))
                {
                    stalled.pop_front();
                }
            }
        }
        spent[cycle % 4] += cycle_started.elapsed();
        if cycle % 50 == 0 {
            let s = sample(a.pid);
            peak.rss_kib = peak.rss_kib.max(s.rss_kib);
            peak.fds = peak.fds.max(s.fds);
        }
    }
    stalled.clear();
    let elapsed = started.elapsed();
    println!(
        "{} cycles in {:.1} s: {:.1} cycles/s ({ok_sessions} sessions, {refused_logins} wrong passwords refused)",
        a.cycles,
        elapsed.as_secs_f64(),
        a.cycles as f64 / elapsed.as_secs_f64()
    );

    println!(
        "time spent: wrong password {:.1} s, sessions {:.1} s, stalled handshakes {:.1} s",
        spent[0].as_secs_f64(),
        (spent[1] + spent[3]).as_secs_f64(),
        spent[2].as_secs_f64()
    );

    // A client that stops reading while the screen changes.
    slow_reader(&a, &mut failures);

    std::thread::sleep(SETTLE);
    let after = sample(a.pid);
    let baseline = baseline.unwrap_or(after);
    println!(
        "peak during the cycles: rss {} KiB, fds {}",
        peak.rss_kib, peak.fds
    );
    println!("after: {after:?}");
    let growth = after.rss_kib.saturating_sub(baseline.rss_kib);
    println!(
        "rss growth after warm-up: {growth} KiB (anon {} KiB); fds {} -> {}",
        after.anon_kib as i64 - baseline.anon_kib as i64,
        baseline.fds,
        after.fds
    );
    if growth > RSS_BOUND_KIB {
        failures.push(format!(
            "rss grew by {growth} KiB (bound {RSS_BOUND_KIB} KiB)"
        ));
    }
    if after.fds > baseline.fds {
        failures.push(format!("fds grew from {} to {}", baseline.fds, after.fds));
    }
    for f in &failures {
        eprintln!("FAIL {f}");
    }
    if !failures.is_empty() {
        std::process::exit(1);
    }
    println!("soak passed");
}

fn slow_reader(a: &Args, failures: &mut Vec<String>) {
    let mut slow = match TestClient::connect(&config(a, &a.password, Security::Tls)) {
        Ok(c) => c,
        Err(e) => {
            failures.push(format!("slow reader: login: {e}"));
            return;
        }
    };
    // The local user lets the session start (the policy is on with --control).
    let _ = slow.pump_for(Duration::from_millis(300));
    if !control(a, "accept") {
        failures.push("slow reader: accept over the control socket failed".into());
    }
    let _ = slow.pump_for(Duration::from_secs(1));
    let before = sample(a.pid);
    println!(
        "slow reader stops reading for {} s: {before:?}",
        a.slow.as_secs()
    );
    let until = Instant::now() + a.slow;
    let mut max_rss = before.rss_kib;
    let mut served = (0, 0);
    while Instant::now() < until {
        std::thread::sleep(Duration::from_secs(1).min(until - Instant::now()));
        max_rss = max_rss.max(sample(a.pid).rss_kib);
        // Other work goes on: the control socket answers, a second admin gets a clear no.
        if control(a, "status") {
            served.0 += 1;
        }
        if served.1 < 2 {
            match TestClient::connect(&config(a, &a.password, Security::Tls)) {
                Err(e) if e.error_info() == Some(0x7) => served.1 += 1,
                Ok(mut c) => match c.pump_for(Duration::from_secs(3)) {
                    Err(_) if c.last_error_info() == Some(0x7) => served.1 += 1,
                    other => failures.push(format!("second client: {other:?}")),
                },
                Err(e) => failures.push(format!("second client: {e}")),
            }
        }
    }
    let growth = max_rss.saturating_sub(before.rss_kib);
    println!(
        "slow reader: rss {} -> max {} KiB (+{growth} KiB), {} status replies, {} second admins refused",
        before.rss_kib, max_rss, served.0, served.1
    );
    if growth > RSS_BOUND_KIB {
        failures.push(format!("slow reader: rss grew by {growth} KiB"));
    }
    if served.0 == 0 || served.1 == 0 {
        failures.push("slow reader: other work was not served".into());
    }
    // It reads again: the session is still there.
    if let Err(e) = slow.pump_for(Duration::from_secs(2)) {
        failures.push(format!(
            "slow reader: session lost after reading again: {e:?}"
        ));
    }
    slow.disconnect();
}
