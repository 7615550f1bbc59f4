//! Is the local user inside a remote desktop/VDI session? Two sources, combined:
//!
//! - the thin client's shell says so over the control socket (`remote-session
//!   started|ended`): the primary source;
//! - a fallback detector: a running process whose name is on a configured list
//!   (`--remote-processes xfreerdp,wfica,vmware-view`).
//!
//! The user is in a remote session when the shell said started **or** a listed process
//! runs: either source alone is enough, so a shell that never reports and a client the
//! list does not know are both covered, and when the two disagree the admin waits (the
//! remote session's screen belongs to someone else). A shell's `ended` does not hide a
//! listed client that still runs.
//!
//! The detector is polled every [`POLL_INTERVAL`], and only while an admin session exists
//! or waits for consent: an idle agent never wakes up for it. A scan that could not look
//! at every process ([`Scan::Incomplete`]) keeps the last answer. Sans-IO: names, scans
//! and `now` in.

use std::time::{Duration, Instant};

/// How often /proc is scanned while it matters.
pub const POLL_INTERVAL: Duration = Duration::from_secs(2);
/// The kernel keeps this many bytes of a process name (`TASK_COMM_LEN` - 1).
pub const COMM_LEN: usize = 15;

/// The configured process names, compared as the kernel stores them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcessNames {
    names: Vec<String>,
}

impl ProcessNames {
    pub fn new(names: &[String]) -> ProcessNames {
        ProcessNames {
            names: names
                .iter()
                .map(|n| truncate_comm(n.trim()).to_owned())
                .filter(|n| !n.is_empty())
                .collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The listed name `comm` (the content of /proc/PID/comm) is, if any.
    pub fn matches(&self, comm: &str) -> Option<&str> {
        let comm = comm.trim_end_matches('\n');
        self.names.iter().map(String::as_str).find(|n| *n == comm)
    }

    /// The first listed name among `comms`, if any runs.
    pub fn first_running<'a>(&self, comms: impl IntoIterator<Item = &'a str>) -> Option<String> {
        comms
            .into_iter()
            .find_map(|comm| self.matches(comm).map(str::to_owned))
    }
}

/// `name` cut to what /proc/PID/comm would show (at a character boundary).
fn truncate_comm(name: &str) -> &str {
    let mut end = name.len().min(COMM_LEN);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

/// What one scan of the running processes saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scan {
    /// A listed process runs (found even by a scan that could not look at everything).
    Found(String),
    /// Every process was looked at and none is listed.
    NoneRunning,
    /// Some processes could not be looked at (the scan's cap, read errors): absence
    /// proves nothing, so the last answer stands.
    Incomplete { looked_at: usize, missed: usize },
}

/// The two sources and their combination.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RemoteEnv {
    shell: bool,
    /// The listed process last seen running, if any.
    process: Option<String>,
}

impl RemoteEnv {
    pub fn active(&self) -> bool {
        self.shell || self.process.is_some()
    }

    /// The listed process that was running at the last poll.
    pub fn process(&self) -> Option<&str> {
        self.process.as_deref()
    }

    /// The shell's word; Some(new state) when the combined state changed.
    pub fn set_shell(&mut self, started: bool) -> Option<bool> {
        self.update(|env| env.shell = started)
    }

    /// A poll's result; Some(new state) when the combined state changed.
    pub fn set_process(&mut self, running: Option<String>) -> Option<bool> {
        self.update(|env| env.process = running)
    }

    /// A scan's result: an incomplete scan that found nothing changes nothing, so a
    /// detector that cannot see everything never reports "no remote session".
    pub fn set_scan(&mut self, scan: &Scan) -> Option<bool> {
        match scan {
            Scan::Found(name) => self.set_process(Some(name.clone())),
            Scan::NoneRunning => self.set_process(None),
            Scan::Incomplete { .. } => None,
        }
    }

    fn update(&mut self, change: impl FnOnce(&mut RemoteEnv)) -> Option<bool> {
        let before = self.active();
        change(self);
        (self.active() != before).then_some(self.active())
    }
}

/// When to scan: at once when it starts to matter, then every `interval`, never while
/// it does not.
#[derive(Clone, Copy, Debug)]
pub struct ProcessPoll {
    interval: Duration,
    next: Option<Instant>,
}

impl ProcessPoll {
    pub fn new(interval: Duration) -> ProcessPoll {
        ProcessPoll {
            interval,
            next: None,
        }
    }

    /// Whether to scan now; `wanted` is "an admin session exists or waits".
    pub fn due(&mut self, now: Instant, wanted: bool) -> bool {
        if !wanted {
            self.next = None;
            return false;
        }
        self.next.is_none_or(|at| now >= at)
    }

    pub fn scanned(&mut self, now: Instant) {
        self.next = Some(now + self.interval);
    }

    /// The next scan, for the loop's timeout; None while not wanted.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> ProcessNames {
        ProcessNames::new(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn names_match_as_the_kernel_shows_them() {
        let list = names(&[
            "xfreerdp",
            "wfica",
            " vmware-view ",
            "",
            "a-very-long-client-name",
        ]);
        assert_eq!(list.matches("xfreerdp\n"), Some("xfreerdp"));
        assert_eq!(list.matches("vmware-view"), Some("vmware-view"));
        assert_eq!(list.matches("xfreerdp3"), None, "whole names only");
        assert_eq!(list.matches("wfic"), None);
        assert_eq!(list.matches(""), None, "an empty entry matches nothing");
        // The kernel keeps 15 bytes: the long name is found by its stored prefix.
        assert_eq!(list.matches("a-very-long-cli"), Some("a-very-long-cli"));
        assert_eq!(
            list.first_running(["sh", "Xorg", "wfica", "xfreerdp"]),
            Some("wfica".to_owned())
        );
        assert_eq!(list.first_running(["sh", "Xorg"]), None);
        assert!(names(&[]).is_empty());
        assert_eq!(truncate_comm("ééééééééé"), "ééééééé", "cut at a character");
    }

    #[test]
    fn either_source_makes_a_remote_session() {
        let mut env = RemoteEnv::default();
        assert!(!env.active());
        assert_eq!(env.set_process(Some("wfica".into())), Some(true));
        assert_eq!(env.set_shell(true), None, "already active");
        assert_eq!(env.set_process(None), None, "the shell still says so");
        assert_eq!(env.set_process(Some("wfica".into())), None);
        assert_eq!(env.set_shell(false), None, "the process still runs");
        assert_eq!(env.process(), Some("wfica"));
        assert_eq!(env.set_process(None), Some(false));
        assert_eq!(env.set_shell(true), Some(true));
        assert_eq!(env.set_shell(false), Some(false));
        assert_eq!(env.set_shell(false), None);
    }

    #[test]
    fn an_incomplete_scan_keeps_the_last_answer() {
        let mut env = RemoteEnv::default();
        let incomplete = Scan::Incomplete {
            looked_at: 1024,
            missed: 30,
        };
        assert_eq!(env.set_scan(&Scan::Found("wfica".into())), Some(true));
        assert_eq!(env.set_scan(&incomplete), None, "not: no remote session");
        assert!(env.active());
        assert_eq!(env.process(), Some("wfica"));
        // A found name counts even from an incomplete scan; a complete empty one ends it.
        assert_eq!(env.set_scan(&Scan::Found("vmware-view".into())), None);
        assert_eq!(env.process(), Some("vmware-view"));
        assert_eq!(env.set_scan(&Scan::NoneRunning), Some(false));
        assert_eq!(env.set_scan(&incomplete), None);
        assert!(!env.active(), "and nothing running stays so");
    }

    #[test]
    fn polls_only_while_wanted() {
        let t0 = Instant::now();
        let mut poll = ProcessPoll::new(POLL_INTERVAL);
        assert!(!poll.due(t0, false));
        assert_eq!(poll.next_deadline(), None, "idle: no wake-up");
        assert!(poll.due(t0, true), "at once when a session appears");
        poll.scanned(t0);
        assert_eq!(poll.next_deadline(), Some(t0 + POLL_INTERVAL));
        assert!(!poll.due(t0 + Duration::from_millis(1999), true));
        assert!(poll.due(t0 + POLL_INTERVAL, true));
        poll.scanned(t0 + POLL_INTERVAL);
        assert!(!poll.due(t0 + POLL_INTERVAL * 3, false));
        assert_eq!(
            poll.next_deadline(),
            None,
            "the session ended: no more wake-ups"
        );
        assert!(
            poll.due(t0 + POLL_INTERVAL * 4, true),
            "the next one scans at once"
        );
    }
}
