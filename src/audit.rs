//! Where audit lines go: stderr or syslog, and optionally a size-bounded file.
//!
//! The lines themselves (one JSON object each) come from `control::reply::event_line`;
//! this is only the I/O. Nothing here may stop the loop or the agent: the syslog socket is
//! non-blocking (a full receive queue drops the line and says so once), a missing
//! `/dev/log` or an unwritable file is logged once per outage and retried at the next line.
//! File writes are single small appends to a local file (`O_APPEND`).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

use crate::{info, warn};

/// The system logger's socket.
pub const SYSLOG_PATH: &str = "/dev/log";
/// authpriv (10) * 8 + info (6): security messages, kept out of world-readable logs.
const PRIORITY: u8 = 10 * 8 + 6;
const TAG: &str = "thinshadow";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditConfig {
    /// Lines to stderr (on unless syslog takes them).
    pub stderr: bool,
    /// Lines to this syslog socket (`/dev/log`; tests use their own).
    pub syslog: Option<PathBuf>,
    /// Lines appended to this file too, rotated to `PATH.1` past `file_max` bytes.
    pub file: Option<PathBuf>,
    pub file_max: u64,
    /// Old generations kept: PATH.1 (newest) … PATH.N.
    pub file_keep: u32,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            stderr: true,
            syslog: None,
            file: None,
            file_max: 1024 * 1024,
            file_keep: 4,
        }
    }
}

pub struct AuditLog {
    stderr: bool,
    syslog: Option<Syslog>,
    file: Option<AuditFile>,
}

impl AuditLog {
    /// Never fails: a destination that does not work now is reported and retried later.
    pub fn open(config: &AuditConfig) -> AuditLog {
        let mut log = AuditLog {
            stderr: config.stderr,
            syslog: config.syslog.as_ref().map(|path| Syslog {
                path: path.clone(),
                socket: None,
                failing: false,
            }),
            file: config.file.as_ref().map(|path| AuditFile {
                path: path.clone(),
                max: config.file_max,
                keep: config.file_keep.max(1),
                file: None,
                size: 0,
                failing: false,
            }),
        };
        if let Some(syslog) = log.syslog.as_mut() {
            syslog.connect();
        }
        if let Some(file) = log.file.as_mut() {
            file.reopen();
        }
        log
    }

    /// Writes one line (ending in a newline) everywhere it should go.
    pub fn write(&mut self, line: &str) {
        if self.stderr {
            // One write per line; a gone console is no reason to panic.
            let _ = io::stderr().write_all(line.as_bytes());
        }
        if let Some(syslog) = self.syslog.as_mut() {
            syslog.send(line.trim_end_matches('\n'));
        }
        if let Some(file) = self.file.as_mut() {
            file.append(line);
        }
    }
}

/// The datagram to the system logger: `<PRI>TAG[PID]: MSG`, as syslog(3) sends it but
/// without the timestamp, so the logger stamps it in its own time zone (busybox syslogd,
/// rsyslog and journald all do).
pub fn syslog_datagram(line: &str) -> String {
    format!("<{PRIORITY}>{TAG}[{}]: {line}", std::process::id())
}

struct Syslog {
    path: PathBuf,
    socket: Option<UnixDatagram>,
    /// An outage was reported; the next success says it is over.
    failing: bool,
}

impl Syslog {
    fn connect(&mut self) {
        let socket = UnixDatagram::unbound()
            .and_then(|s| s.connect(&self.path).map(|()| s))
            .and_then(|s| s.set_nonblocking(true).map(|()| s));
        match socket {
            Ok(socket) => self.socket = Some(socket),
            Err(e) => self.fail(&format!("cannot reach {}: {e}", self.path.display())),
        }
    }

    fn send(&mut self, line: &str) {
        let datagram = syslog_datagram(line);
        // A second try after connecting afresh: the logger may have restarted.
        for _ in 0..2 {
            if self.socket.is_none() {
                self.connect();
            }
            let Some(socket) = self.socket.as_ref() else {
                return;
            };
            match socket.send(datagram.as_bytes()) {
                Ok(_) => {
                    if self.failing {
                        info!("audit: syslog at {} works again", self.path.display());
                    }
                    self.failing = false;
                    return;
                }
                // The logger is behind: drop this line rather than wait.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.fail("the system logger is not keeping up; audit lines dropped");
                    return;
                }
                Err(e) => {
                    self.socket = None;
                    self.fail(&format!("cannot send to {}: {e}", self.path.display()));
                }
            }
        }
    }

    fn fail(&mut self, what: &str) {
        if !self.failing {
            warn!("audit: {what} (said once until it works again)");
        }
        self.failing = true;
    }
}

struct AuditFile {
    path: PathBuf,
    max: u64,
    keep: u32,
    file: Option<File>,
    /// Bytes in the current file, as far as we wrote or found them.
    size: u64,
    failing: bool,
}

impl AuditFile {
    fn reopen(&mut self) {
        match open_append(&self.path) {
            Ok(file) => {
                self.size = file.metadata().map_or(0, |m| m.len());
                self.file = Some(file);
            }
            Err(e) => {
                self.file = None;
                self.fail(&e);
            }
        }
    }

    fn append(&mut self, line: &str) {
        let len = line.len() as u64;
        if self.file.is_some() && self.size > 0 && self.size + len > self.max {
            self.rotate();
        }
        if self.file.is_none() {
            self.reopen();
        }
        let Some(file) = self.file.as_mut() else {
            return;
        };
        match file.write_all(line.as_bytes()) {
            Ok(()) => {
                self.size += len;
                if self.failing {
                    info!("audit: {} is written again", self.path.display());
                }
                self.failing = false;
            }
            Err(e) => {
                self.file = None;
                self.fail(&e);
            }
        }
    }

    /// PATH.N-1 becomes PATH.N (the oldest goes), …, PATH becomes PATH.1, a new PATH starts.
    fn rotate(&mut self) {
        self.file = None;
        for n in (1..self.keep).rev() {
            let _ = std::fs::rename(
                generation_path(&self.path, n),
                generation_path(&self.path, n + 1),
            );
        }
        if let Err(e) = std::fs::rename(&self.path, rotated_path(&self.path)) {
            self.fail(&e);
        }
        self.reopen();
    }

    fn fail(&mut self, e: &io::Error) {
        if !self.failing {
            warn!(
                "audit: {}: {e} (said once until it works again)",
                self.path.display()
            );
        }
        self.failing = true;
    }
}

/// Root-readable only: the lines name who administered the thin client and from where.
fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)
}

/// The newest older generation kept beside `path`.
pub fn rotated_path(path: &Path) -> PathBuf {
    generation_path(path, 1)
}

/// `PATH.n`.
pub fn generation_path(path: &Path, n: u32) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("thinshadow-audit-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn config(file: Option<PathBuf>, syslog: Option<PathBuf>, max: u64) -> AuditConfig {
        AuditConfig {
            stderr: false,
            syslog,
            file,
            file_max: max,
            file_keep: 1,
        }
    }

    #[test]
    fn the_file_rotates_to_one_old_generation() {
        let dir = temp_dir("rotate");
        let path = dir.join("audit.log");
        let mut log = AuditLog::open(&config(Some(path.clone()), None, 100));
        let line = |n: usize| format!("{{\"n\":{n},\"pad\":\"{}\"}}\n", "x".repeat(13));
        // 30 bytes a line: three fit in 100, the fourth starts a new file.
        for n in 0..4 {
            log.write(&line(n));
        }
        assert_eq!(std::fs::read_to_string(&path).unwrap(), line(3));
        let old = std::fs::read_to_string(rotated_path(&path)).unwrap();
        assert_eq!(old, line(0) + &line(1) + &line(2));
        for n in 4..7 {
            log.write(&line(n));
        }
        // The oldest generation is gone; never more than two files.
        assert_eq!(
            std::fs::read_to_string(rotated_path(&path)).unwrap(),
            line(3) + &line(4) + &line(5)
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), line(6));
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 2);
        let mode = std::fs::metadata(&path).unwrap().permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn it_keeps_as_many_generations_as_configured() {
        let dir = temp_dir("keep");
        let path = dir.join("audit.log");
        let mut config = config(Some(path.clone()), None, 100);
        config.file_keep = 3;
        let mut log = AuditLog::open(&config);
        let line = |n: usize| format!("{{\"n\":{n:02},\"pad\":\"{}\"}}\n", "x".repeat(12));
        // Three 30-byte lines a file: 15 lines make PATH and PATH.1 … PATH.3, the first
        // three lines rotated out.
        for n in 0..15 {
            log.write(&line(n));
        }
        let generation = |n| std::fs::read_to_string(generation_path(&path, n)).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            line(12) + &line(13) + &line(14)
        );
        assert_eq!(generation(1), line(9) + &line(10) + &line(11));
        assert_eq!(generation(3), line(3) + &line(4) + &line(5));
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 4);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_existing_file_counts_towards_the_bound() {
        let dir = temp_dir("existing");
        let path = dir.join("audit.log");
        std::fs::write(&path, "a".repeat(90) + "\n").unwrap();
        let mut log = AuditLog::open(&config(Some(path.clone()), None, 100));
        log.write("{\"event\":\"connected\"}\n");
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"event\":\"connected\"}\n"
        );
        assert!(rotated_path(&path).exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_unwritable_file_is_retried_and_never_stops_the_caller() {
        let dir = temp_dir("unwritable");
        let path = dir.join("missing-dir").join("audit.log");
        let mut log = AuditLog::open(&config(Some(path.clone()), None, 4096));
        log.write("{\"n\":1}\n");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        log.write("{\"n\":2}\n");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"n\":2}\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn syslog_gets_authpriv_datagrams_and_survives_a_missing_logger() {
        let dir = temp_dir("syslog");
        let path = dir.join("log.sock");
        // No logger yet: the line is lost, the caller goes on.
        let mut log = AuditLog::open(&config(None, Some(path.clone()), 0));
        log.write("{\"event\":\"connected\"}\n");
        let logger = UnixDatagram::bind(&path).unwrap();
        logger
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        log.write("{\"event\":\"authenticated\"}\n");
        let mut buf = [0u8; 512];
        let n = logger.recv(&mut buf).unwrap();
        let got = std::str::from_utf8(&buf[..n]).unwrap();
        assert_eq!(
            got,
            format!(
                "<86>thinshadow[{}]: {{\"event\":\"authenticated\"}}",
                std::process::id()
            )
        );
        // A logger that does not read: the queue fills, lines are dropped, no blocking.
        for _ in 0..10_000 {
            log.write("{\"event\":\"view-only\"}\n");
        }
        // A restarted logger (new socket at the same path) is found again.
        drop(logger);
        std::fs::remove_file(&path).unwrap();
        let logger = UnixDatagram::bind(&path).unwrap();
        logger
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        log.write("{\"event\":\"ended\"}\n");
        let n = logger.recv(&mut buf).unwrap();
        assert!(
            std::str::from_utf8(&buf[..n])
                .unwrap()
                .ends_with(": {\"event\":\"ended\"}"),
            "the first line after the restart arrives"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
