//! The local user's remote session inside the loop: the shell's word (control socket) and
//! the /proc process detector, combined by `policy::RemoteEnv`, applied to every policy.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::time::Instant;

use super::core::Core;
use crate::control;
use crate::policy::{Outcome, POLL_INTERVAL, ProcessNames, ProcessPoll, RemoteEnv, Scan};
use crate::{debug, info, warn};

const ESRCH: i32 = nix::libc::ESRCH;

/// Processes looked at per scan, at most: a thin client runs a few hundred. About 20 µs
/// each (open, read, close of /proc/PID/comm; 2 ms for 109 on the dev host, debug build),
/// so this bounds a scan's stall of the loop whatever runs.
pub const MAX_SCAN: usize = 1024;

pub(super) struct RemoteWatch {
    names: ProcessNames,
    pub(super) env: RemoteEnv,
    poll: ProcessPoll,
    /// The last scan was incomplete (logged once when that changes).
    incomplete: bool,
}

impl RemoteWatch {
    pub(super) fn new(names: &[String]) -> RemoteWatch {
        RemoteWatch {
            names: ProcessNames::new(names),
            env: RemoteEnv::default(),
            poll: ProcessPoll::new(POLL_INTERVAL),
            incomplete: false,
        }
    }
}

/// Looks for a listed name among the running processes under `proc_root` (`/proc`),
/// looking at no more than `cap` processes. A process that exits mid-scan is skipped; one
/// that cannot be read, or the cap, makes the scan `Incomplete`.
pub fn scan_proc(proc_root: &Path, names: &ProcessNames, cap: usize) -> io::Result<Scan> {
    let (mut looked_at, mut missed) = (0, 0);
    for entry in std::fs::read_dir(proc_root)? {
        let Ok(entry) = entry else {
            missed += 1;
            continue;
        };
        let is_pid = entry
            .file_name()
            .to_str()
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        if !is_pid {
            continue;
        }
        if looked_at == cap {
            missed += 1;
            continue;
        }
        looked_at += 1;
        let mut comm = [0u8; 64];
        let n = match File::open(entry.path().join("comm")).and_then(|mut f| f.read(&mut comm)) {
            Ok(n) => n,
            // Gone since the directory was listed: it runs nothing any more.
            Err(e) if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(ESRCH) => {
                continue;
            }
            Err(_) => {
                missed += 1;
                continue;
            }
        };
        if let Some(name) = names.matches(&String::from_utf8_lossy(&comm[..n])) {
            return Ok(Scan::Found(name.to_owned()));
        }
    }
    Ok(if missed == 0 {
        Scan::NoneRunning
    } else {
        Scan::Incomplete { looked_at, missed }
    })
}

impl Core {
    /// An admin session exists or waits: only then does the process detector run.
    pub(super) fn remote_scan_wanted(&self) -> bool {
        !self.remote.names.is_empty()
            && self
                .session
                .as_ref()
                .is_some_and(|s| !matches!(s.policy.outcome(), Outcome::Ended(_)))
    }

    /// When the loop must wake for the next scan; None while idle.
    pub(super) fn remote_scan_deadline(&self) -> Option<Instant> {
        if self.remote_scan_wanted() {
            self.remote.poll.next_deadline()
        } else {
            None
        }
    }

    /// Scans if one is due.
    pub(super) fn poll_remote_processes(&mut self, now: Instant) {
        let wanted = self.remote_scan_wanted();
        if self.remote.poll.due(now, wanted) {
            self.scan_remote_processes(now);
        }
    }

    /// Scans now: on its schedule, and right before a new admin is asked, so the policy
    /// starts from what runs at that moment.
    pub(super) fn scan_remote_processes(&mut self, now: Instant) {
        if self.remote.names.is_empty() {
            return;
        }
        self.remote.poll.scanned(now);
        let scan = match scan_proc(Path::new("/proc"), &self.remote.names, MAX_SCAN) {
            Ok(scan) => scan,
            Err(e) => {
                debug!("remote session: cannot read /proc: {e}");
                return;
            }
        };
        let incomplete = matches!(scan, Scan::Incomplete { .. });
        if incomplete != self.remote.incomplete {
            self.remote.incomplete = incomplete;
            match &scan {
                Scan::Incomplete { looked_at, missed } => warn!(
                    "remote session: /proc scan incomplete ({looked_at} processes seen, \
                     {missed} not); keeping the last answer ({})",
                    if self.remote.env.active() {
                        "in a remote session"
                    } else {
                        "none"
                    }
                ),
                _ => info!("remote session: /proc scans are complete again"),
            }
        }
        if let Some(active) = self.remote.env.set_scan(&scan) {
            match &scan {
                Scan::Found(name) => info!("the local user runs {name}: in a remote session"),
                _ => info!("no listed remote-session client runs any more"),
            }
            self.apply_remote(active, now);
        }
    }

    /// The shell said the local user entered (true) or left (false) a remote session.
    pub(super) fn remote_session_said(&mut self, started: bool, now: Instant) {
        let Some(active) = self.remote.env.set_shell(started) else {
            if let (false, Some(name)) = (started, self.remote.env.process()) {
                info!("the shell says the remote session ended, but {name} still runs");
            }
            return;
        };
        info!(
            "the local user {} a remote session",
            if active { "entered" } else { "left" }
        );
        self.apply_remote(active, now);
    }

    fn apply_remote(&mut self, active: bool, now: Instant) {
        self.broadcast(control::reply::remote_session_event(active));
        if let Some(session) = self.session.as_mut() {
            if active {
                session.policy.remote_session_started(now);
            } else {
                session.policy.remote_session_ended(now);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// A /proc look-alike: one directory per pid with its `comm`.
    fn fake_proc(name: &str, comms: &[(&str, &str)]) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("thinshadow-proc-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("self")).unwrap();
        for (pid, comm) in comms {
            std::fs::create_dir_all(dir.join(pid)).unwrap();
            std::fs::write(dir.join(pid).join("comm"), format!("{comm}\n")).unwrap();
        }
        dir
    }

    #[test]
    fn a_scan_that_misses_processes_says_so_instead_of_none() {
        let names = ProcessNames::new(&["wfica".to_owned()]);
        let dir = fake_proc(
            "incomplete",
            &[("1", "init"), ("20", "sh"), ("300", "Xorg")],
        );
        assert_eq!(scan_proc(&dir, &names, 8).unwrap(), Scan::NoneRunning);
        // The cap reached before the end: not "none running".
        assert_eq!(
            scan_proc(&dir, &names, 2).unwrap(),
            Scan::Incomplete {
                looked_at: 2,
                missed: 1
            }
        );
        // A process that exited mid-scan (no comm any more) is no gap; an unreadable one is.
        std::fs::create_dir_all(dir.join("400")).unwrap();
        assert_eq!(scan_proc(&dir, &names, 8).unwrap(), Scan::NoneRunning);
        std::fs::create_dir_all(dir.join("500").join("comm")).unwrap();
        assert_eq!(
            scan_proc(&dir, &names, 8).unwrap(),
            Scan::Incomplete {
                looked_at: 5,
                missed: 1
            }
        );
        // What an incomplete scan finds still counts.
        std::fs::create_dir_all(dir.join("600")).unwrap();
        std::fs::write(dir.join("600").join("comm"), b"wfica\n").unwrap();
        assert_eq!(
            scan_proc(&dir, &names, 8).unwrap(),
            Scan::Found("wfica".into())
        );
        // And the detector keeps its answer through an incomplete scan.
        let mut env = RemoteEnv::default();
        env.set_scan(&scan_proc(&dir, &names, 8).unwrap());
        std::fs::remove_dir_all(dir.join("600")).unwrap();
        assert_eq!(env.set_scan(&scan_proc(&dir, &names, 8).unwrap()), None);
        assert!(env.active(), "an unreadable process may be the client");
        std::fs::remove_dir_all(dir.join("500")).unwrap();
        assert_eq!(
            env.set_scan(&scan_proc(&dir, &names, 8).unwrap()),
            Some(false)
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A real process with a listed name: `sleep` started through a symlink, whose name
    /// the kernel records as the process name.
    #[test]
    fn a_running_listed_process_is_found_in_proc() {
        let dir = std::env::temp_dir().join(format!("thinshadow-remote-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let name = format!("tsvdi{}", std::process::id() % 1_000_000);
        let link = dir.join(&name);
        let sleep = ["/bin/sleep", "/usr/bin/sleep"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("sleep");
        std::os::unix::fs::symlink(sleep, &link).unwrap();
        let names = ProcessNames::new(&["not-running-here".to_owned(), name.clone()]);
        assert_ne!(
            scan_proc(Path::new("/proc"), &names, MAX_SCAN).unwrap(),
            Scan::Found(name.clone())
        );
        let mut child = Command::new(&link).arg("30").spawn().unwrap();
        // `spawn` may return before the kernel names the new program: exec lets the parent
        // go (the vfork release, or the close-on-exec pipe std waits on) before it sets the
        // name. Seen on a loaded machine; look again for a while.
        let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let found = loop {
            let scan = scan_proc(Path::new("/proc"), &names, MAX_SCAN);
            let done = matches!(&scan, Ok(Scan::Found(_)));
            if done || std::time::Instant::now() >= until {
                break scan;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        let capped = scan_proc(Path::new("/proc"), &names, 0);
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(found.unwrap(), Scan::Found(name.clone()));
        assert!(
            matches!(capped.unwrap(), Scan::Incomplete { looked_at: 0, missed } if missed > 0),
            "the cap bounds the scan, and says it was cut"
        );
        assert_ne!(
            scan_proc(Path::new("/proc"), &names, MAX_SCAN).unwrap(),
            Scan::Found(name)
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
