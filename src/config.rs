//! The serve settings file: TOML, one flat table with the same settings as the flags.
//!
//! ```toml
//! listen = "0.0.0.0:3389"
//! rotation_period_hours = 24
//! allow = ["10.0.0.0/8", "fd00::/8"]
//! ```
//! Every key has one entry in `KEYS`, shared with the command line, so a file and a
//! flag are checked alike and their errors read alike. Unknown keys are an error: a
//! misspelt setting must not be silently ignored on a board nobody watches.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::policy::{Allowlist, Mode, TimeoutAction};

/// Read when `--config` is not given, if it exists.
pub const DEFAULT_PATH: &str = "/etc/thinshadow.toml";
/// Far more than any real config; a bigger file is a mistake.
const MAX_FILE: u64 = 64 * 1024;

/// One checked setting, from a file or a flag.
#[derive(Clone, Debug, PartialEq)]
pub enum Setting {
    Listen(SocketAddr),
    Screen(String),
    StateDir(PathBuf),
    User(String),
    HandshakeTimeout(Duration),
    FrameInterval(Duration),
    MaxHandshakes(usize),
    RotationPeriod(Duration),
    RotateAfterSession(bool),
    PublishHook(PathBuf),
    HookTimeout(Duration),
    LockoutAfter(u32),
    LockoutWindow(Duration),
    Allow(Allowlist),
    /// The consent timeout of both management modes; the per-mode keys win over it.
    ConsentTimeout(Duration),
    ConsentTimeoutAuto(Duration),
    ConsentTimeoutRequest(Duration),
    ConsentTimeoutActionAuto(TimeoutAction),
    ConsentTimeoutActionRequest(TimeoutAction),
    /// Audit lines to syslog (/dev/log, authpriv) instead of stderr.
    AuditSyslog(bool),
    AuditFile(PathBuf),
    AuditFileMax(u64),
    /// Process names that mean "the local user is in a remote session".
    RemoteProcesses(Vec<String>),
    /// Who asks the local user when no UI registered on the control socket.
    LocalPrompt(PromptChoice),
    /// The control socket (the local UI and the CLI).
    Control(PathBuf),
    /// The local user who may answer on the control socket (besides root).
    LocalUid(u32),
    /// A group whose members may answer too: a gid, or a name looked up at start.
    LocalGroup(String),
    /// Handshakes one source address may have in progress at once.
    HandshakesPerAddress(usize),
    /// Old generations of the audit file kept (PATH.1 … PATH.N).
    AuditFileKeep(u32),
    /// The thin client's keyboard layout (for characters clients type as Unicode).
    KeyboardLayout(String),
    /// Scrolled rows sent as copies the client does (ScrBlt), when it supports them.
    ScrollCopies(bool),
    /// The modes when there is no readable saved state (first start, both copies bad).
    DefaultManagementMode(Mode),
    DefaultRemoteScreenMode(Mode),
    /// The key type of a certificate made for a new state directory.
    TlsKeyType(crate::net::KeyType),
    /// A provisioned certificate chain (PEM) and its key; both or neither.
    TlsCert(PathBuf),
    TlsKey(PathBuf),
}

/// `--local-prompt`: the built-in framebuffer prompt always, never, or unless the image's own
/// UI registered on the control socket as the one that shows consent requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PromptChoice {
    Auto,
    Fb,
    Off,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Text,
    Integer,
    Bool,
    /// An array of strings in the file; comma-separated on the command line.
    List,
}

/// Why a value was refused: not the expected form, or a named part of it was wrong.
type Reject = Option<String>;
/// A list key's parser, entry by entry.
type ParseEntries = fn(&[&str]) -> Result<Setting, Reject>;

pub struct Key {
    /// In the file.
    pub name: &'static str,
    /// On the command line.
    pub flag: &'static str,
    pub kind: Kind,
    /// What is expected, for error messages.
    pub form: &'static str,
    parse: fn(&str) -> Result<Setting, Reject>,
    /// For `Kind::List`: the entries as given (a file's array items are not re-joined and
    /// split, so an entry may hold a comma); the flag's text is split on commas into them.
    entries: Option<ParseEntries>,
}

pub const KEYS: &[Key] = &[
    Key {
        name: "listen",
        flag: "--listen",
        kind: Kind::Text,
        entries: None,
        form: "ADDR:PORT, e.g. 0.0.0.0:3389",
        parse: |t| t.parse().map(Setting::Listen).map_err(|_| None),
    },
    Key {
        name: "screen",
        flag: "--screen",
        kind: Kind::Text,
        entries: None,
        form: "auto, kms[:CARD[:CONNECTOR]], fbdev:PATH, xwd:PATH or synthetic:WxH",
        parse: |t| non_empty(t).map(|t| Setting::Screen(t.to_owned())),
    },
    Key {
        name: "state_dir",
        flag: "--state-dir",
        kind: Kind::Text,
        entries: None,
        form: "a directory",
        parse: |t| non_empty(t).map(|t| Setting::StateDir(t.into())),
    },
    Key {
        name: "user",
        flag: "--user",
        kind: Kind::Text,
        entries: None,
        form: "a plain user name (1 to 64 characters, no \\, @ or space)",
        parse: |t| {
            let plain = !t.is_empty() && t.len() <= 64 && !t.contains(['\\', '@', ' ']);
            plain.then(|| Setting::User(t.to_owned())).ok_or(None)
        },
    },
    Key {
        name: "handshake_timeout",
        flag: "--handshake-timeout",
        kind: Kind::Integer,
        entries: None,
        form: "seconds (1 to 600)",
        parse: |t| in_range(t, 1, 600).map(|n| Setting::HandshakeTimeout(secs(n))),
    },
    Key {
        name: "frame_interval",
        flag: "--frame-interval",
        kind: Kind::Integer,
        entries: None,
        form: "milliseconds (5 to 10000)",
        parse: |t| in_range(t, 5, 10_000).map(|n| Setting::FrameInterval(Duration::from_millis(n))),
    },
    Key {
        name: "max_handshakes",
        flag: "--max-handshakes",
        kind: Kind::Integer,
        entries: None,
        form: "a count (1 to 256)",
        parse: |t| in_range(t, 1, 256).map(|n| Setting::MaxHandshakes(n as usize)),
    },
    Key {
        name: "rotation_period_hours",
        flag: "--rotation-period",
        kind: Kind::Integer,
        entries: None,
        form: "hours (1 to 720)",
        parse: |t| in_range(t, 1, 720).map(|n| Setting::RotationPeriod(secs(n * 3600))),
    },
    Key {
        name: "rotate_after_session",
        flag: "--rotate-after-session",
        kind: Kind::Bool,
        entries: None,
        form: "true or false",
        parse: |t| boolean(t).map(Setting::RotateAfterSession),
    },
    Key {
        name: "publish_hook",
        flag: "--publish-hook",
        kind: Kind::Text,
        entries: None,
        form: "a program to run after each rotation, e.g. /usr/libexec/publish-creds",
        parse: |t| non_empty(t).map(|t| Setting::PublishHook(t.into())),
    },
    Key {
        name: "hook_timeout",
        flag: "--hook-timeout",
        kind: Kind::Integer,
        entries: None,
        form: "seconds (1 to 300)",
        parse: |t| in_range(t, 1, 300).map(|n| Setting::HookTimeout(secs(n))),
    },
    Key {
        name: "lockout_after",
        flag: "--lockout-after",
        kind: Kind::Integer,
        entries: None,
        form: "a count of failed logins (1 to 100)",
        parse: |t| in_range(t, 1, 100).map(|n| Setting::LockoutAfter(n as u32)),
    },
    Key {
        name: "lockout_minutes",
        flag: "--lockout-minutes",
        kind: Kind::Integer,
        entries: None,
        form: "minutes (1 to 1440)",
        parse: |t| in_range(t, 1, 1440).map(|n| Setting::LockoutWindow(secs(n * 60))),
    },
    Key {
        name: "allow",
        flag: "--allow",
        kind: Kind::List,
        entries: Some(allow_entries),
        form: "ADDR/PREFIX ranges, e.g. 10.0.0.0/8 or fd00::/8",
        parse: |t| allow_entries(&split_list(t)),
    },
    Key {
        name: "consent_timeout",
        flag: "--consent-timeout",
        kind: Kind::Integer,
        entries: None,
        form: "seconds (1 to 3600)",
        parse: |t| in_range(t, 1, 3600).map(|n| Setting::ConsentTimeout(secs(n))),
    },
    Key {
        name: "consent_timeout_auto",
        flag: "--consent-timeout-auto",
        kind: Kind::Integer,
        entries: None,
        form: "seconds (0 to 3600; 0: allow-auto sessions start at once, for unattended images)",
        parse: |t| in_range(t, 0, 3600).map(|n| Setting::ConsentTimeoutAuto(secs(n))),
    },
    Key {
        name: "consent_timeout_request",
        flag: "--consent-timeout-request",
        kind: Kind::Integer,
        entries: None,
        form: "seconds (1 to 3600)",
        parse: |t| in_range(t, 1, 3600).map(|n| Setting::ConsentTimeoutRequest(secs(n))),
    },
    Key {
        name: "consent_timeout_action_auto",
        flag: "--consent-timeout-action-auto",
        kind: Kind::Text,
        entries: None,
        form: "start or refuse",
        parse: |t| {
            TimeoutAction::parse(t)
                .map(Setting::ConsentTimeoutActionAuto)
                .ok_or(None)
        },
    },
    Key {
        name: "consent_timeout_action_request",
        flag: "--consent-timeout-action-request",
        kind: Kind::Text,
        entries: None,
        form: "start or refuse",
        parse: |t| {
            TimeoutAction::parse(t)
                .map(Setting::ConsentTimeoutActionRequest)
                .ok_or(None)
        },
    },
    Key {
        name: "audit_syslog",
        flag: "--audit-syslog",
        kind: Kind::Bool,
        entries: None,
        form: "true or false",
        parse: |t| boolean(t).map(Setting::AuditSyslog),
    },
    Key {
        name: "audit_file",
        flag: "--audit-file",
        kind: Kind::Text,
        entries: None,
        form: "a file path, e.g. /var/log/thinshadow-audit.log",
        parse: |t| non_empty(t).map(|t| Setting::AuditFile(t.into())),
    },
    Key {
        name: "audit_file_max",
        flag: "--audit-file-max",
        kind: Kind::Integer,
        entries: None,
        form: "bytes (4096 to 1073741824)",
        parse: |t| in_range(t, 4096, 1 << 30).map(Setting::AuditFileMax),
    },
    Key {
        name: "remote_processes",
        flag: "--remote-processes",
        kind: Kind::List,
        entries: Some(process_entries),
        form: "process names, e.g. xfreerdp,wfica,vmware-view",
        parse: |t| process_entries(&split_list(t)),
    },
    Key {
        name: "local_prompt",
        flag: "--local-prompt",
        kind: Kind::Text,
        entries: None,
        form: "auto (the framebuffer prompt unless a UI registered on the control socket), fb or off",
        parse: |t| match t {
            "auto" => Ok(Setting::LocalPrompt(PromptChoice::Auto)),
            "fb" => Ok(Setting::LocalPrompt(PromptChoice::Fb)),
            "off" | "none" => Ok(Setting::LocalPrompt(PromptChoice::Off)),
            _ => Err(None),
        },
    },
    Key {
        name: "control",
        flag: "--control",
        kind: Kind::Text,
        entries: None,
        form: "a socket path, e.g. /run/thinshadow/control.sock",
        parse: |t| non_empty(t).map(|t| Setting::Control(t.into())),
    },
    Key {
        name: "local_uid",
        flag: "--local-uid",
        kind: Kind::Integer,
        entries: None,
        form: "a user id",
        parse: |t| t.parse::<u32>().map(Setting::LocalUid).map_err(|_| None),
    },
    Key {
        name: "local_group",
        flag: "--local-group",
        kind: Kind::Text,
        entries: None,
        form: "a group id or name",
        parse: |t| {
            let plain = !t.is_empty() && !t.contains([':', '/', ' ']);
            plain.then(|| Setting::LocalGroup(t.to_owned())).ok_or(None)
        },
    },
    Key {
        name: "handshakes_per_address",
        flag: "--handshakes-per-address",
        kind: Kind::Integer,
        entries: None,
        form: "a count (1 to 256)",
        parse: |t| in_range(t, 1, 256).map(|n| Setting::HandshakesPerAddress(n as usize)),
    },
    Key {
        name: "audit_file_keep",
        flag: "--audit-file-keep",
        kind: Kind::Integer,
        entries: None,
        form: "old audit files to keep (1 to 100)",
        parse: |t| in_range(t, 1, 100).map(|n| Setting::AuditFileKeep(n as u32)),
    },
    Key {
        name: "keyboard_layout",
        flag: "--keyboard-layout",
        kind: Kind::Text,
        entries: None,
        form: "a layout in src/input/layouts: us, gb, de, fr, es, it or ru",
        parse: |t| {
            crate::input::layout::names()
                .any(|name| name == t)
                .then(|| Setting::KeyboardLayout(t.to_owned()))
                .ok_or(None)
        },
    },
    Key {
        name: "scroll_copies",
        flag: "--scroll-copies",
        kind: Kind::Text,
        entries: None,
        form: "on (scrolled rows become copies the client does, if it supports them) or off",
        parse: |t| match t {
            "on" => Ok(Setting::ScrollCopies(true)),
            "off" => Ok(Setting::ScrollCopies(false)),
            _ => Err(None),
        },
    },
    Key {
        name: "default_management_mode",
        flag: "--default-management-mode",
        kind: Kind::Text,
        entries: None,
        form: "allow-auto, allow-by-request or deny (when no saved state can be read)",
        parse: |t| {
            t.parse()
                .map(Setting::DefaultManagementMode)
                .map_err(|()| None)
        },
    },
    Key {
        name: "default_remote_screen_mode",
        flag: "--default-remote-screen-mode",
        kind: Kind::Text,
        entries: None,
        form: "allow-auto, allow-by-request or deny (when no saved state can be read)",
        parse: |t| {
            t.parse()
                .map(Setting::DefaultRemoteScreenMode)
                .map_err(|()| None)
        },
    },
    Key {
        name: "tls_key_type",
        flag: "--tls-key-type",
        kind: Kind::Text,
        entries: None,
        form: "rsa (RSA-2048, as Windows; every client) or ecdsa (P-256), for a new certificate",
        parse: |t| t.parse().map(Setting::TlsKeyType).map_err(|()| None),
    },
    Key {
        name: "tls_cert",
        flag: "--tls-cert",
        kind: Kind::Text,
        entries: None,
        form: "a PEM file: the certificate, then any intermediates",
        parse: |t| non_empty(t).map(|t| Setting::TlsCert(t.into())),
    },
    Key {
        name: "tls_key",
        flag: "--tls-key",
        kind: Kind::Text,
        entries: None,
        form: "a PEM file: the certificate's private key (PKCS#8, PKCS#1 or SEC1)",
        parse: |t| non_empty(t).map(|t| Setting::TlsKey(t.into())),
    },
];

/// A flag's comma-separated list, trimmed, empty entries dropped.
fn split_list(text: &str) -> Vec<&str> {
    text.split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .collect()
}

fn allow_entries(entries: &[&str]) -> Result<Setting, Reject> {
    if entries.iter().all(|e| e.trim().is_empty()) {
        return Ok(Setting::Allow(Allowlist::all()));
    }
    let entries: Vec<&str> = entries.iter().map(|e| e.trim()).collect();
    Allowlist::parse(&entries)
        .map(Setting::Allow)
        .map_err(|e| Some(e.to_string()))
}

fn process_entries(entries: &[&str]) -> Result<Setting, Reject> {
    let names: Vec<String> = entries
        .iter()
        .map(|n| n.trim())
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .collect();
    match names.iter().find(|n| n.contains('/') || n.len() > 255) {
        Some(bad) => Err(Some(format!("{bad:?}: a process name, not a path"))),
        None => Ok(Setting::RemoteProcesses(names)),
    }
}

fn boolean(text: &str) -> Result<bool, Reject> {
    match text {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(None),
    }
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn non_empty(text: &str) -> Result<&str, Reject> {
    if text.is_empty() { Err(None) } else { Ok(text) }
}

fn in_range(text: &str, min: u64, max: u64) -> Result<u64, Reject> {
    text.parse::<u64>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or(None)
}

pub fn key_by_name(name: &str) -> Option<&'static Key> {
    KEYS.iter().find(|key| key.name == name)
}

pub fn key_by_flag(flag: &str) -> Option<&'static Key> {
    KEYS.iter().find(|key| key.flag == flag)
}

impl Key {
    /// A command-line value.
    pub fn parse_flag(&self, text: &str) -> Result<Setting, ConfigError> {
        (self.parse)(text).map_err(|detail| ConfigError::BadValue {
            origin: self.flag.to_owned(),
            form: self.form,
            got: format!("'{text}'"),
            detail,
        })
    }

    /// A value from the file at `path`.
    fn parse_value(&self, path: &Path, value: &toml::Value) -> Result<Setting, ConfigError> {
        let bad = |detail| ConfigError::BadValue {
            origin: format!("{}: {}", path.display(), self.name),
            form: self.form,
            got: shown(value),
            detail,
        };
        let text = match (self.kind, value) {
            (Kind::Text, toml::Value::String(s)) => s.clone(),
            (Kind::Integer, toml::Value::Integer(n)) => n.to_string(),
            (Kind::Bool, toml::Value::Boolean(b)) => b.to_string(),
            (Kind::List, toml::Value::Array(items)) => {
                let mut entries = Vec::with_capacity(items.len());
                for item in items {
                    match item {
                        toml::Value::String(s) => entries.push(s.as_str()),
                        _ => return Err(bad(None)),
                    }
                }
                let parse = self.entries.ok_or_else(|| bad(None))?;
                return parse(&entries).map_err(bad);
            }
            _ => return Err(bad(None)),
        };
        (self.parse)(&text).map_err(bad)
    }
}

/// A TOML value as the file spelt it, near enough for an error message.
fn shown(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => format!("{s:?}"),
        toml::Value::Integer(n) => n.to_string(),
        toml::Value::Float(x) => x.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        toml::Value::Datetime(d) => d.to_string(),
        toml::Value::Array(items) => {
            let inner: Vec<String> = items.iter().take(8).map(shown).collect();
            let more = if items.len() > 8 { ", …" } else { "" };
            format!("[{}{more}]", inner.join(", "))
        }
        toml::Value::Table(_) => "a table".to_owned(),
    }
}

#[derive(Debug)]
pub enum ConfigError {
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    TooLarge {
        path: PathBuf,
    },
    Syntax {
        path: PathBuf,
        line: Option<usize>,
        message: String,
    },
    UnknownKey {
        path: PathBuf,
        key: String,
    },
    BadValue {
        /// `--flag` or `FILE: key`.
        origin: String,
        form: &'static str,
        got: String,
        /// What exactly was wrong, when more than the form can say.
        detail: Option<String>,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Read { path, error } => write!(f, "{}: {error}", path.display()),
            ConfigError::TooLarge { path } => {
                write!(f, "{}: larger than {MAX_FILE} bytes", path.display())
            }
            ConfigError::Syntax {
                path,
                line: Some(line),
                message,
            } => write!(f, "{}: line {line}: {message}", path.display()),
            ConfigError::Syntax {
                path,
                line: None,
                message,
            } => write!(f, "{}: {message}", path.display()),
            ConfigError::UnknownKey { path, key } => {
                let known: Vec<&str> = KEYS.iter().map(|k| k.name).collect();
                write!(
                    f,
                    "{}: unknown key {key:?} (known: {})",
                    path.display(),
                    known.join(", ")
                )
            }
            ConfigError::BadValue {
                origin,
                form,
                got,
                detail: None,
            } => write!(f, "{origin}: expected {form}, got {got}"),
            ConfigError::BadValue {
                origin,
                form,
                detail: Some(detail),
                ..
            } => write!(f, "{origin}: {detail} (expected {form})"),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Parses a settings file's text; `path` only names it in errors.
pub fn parse_file(path: &Path, text: &str) -> Result<Vec<Setting>, ConfigError> {
    let table: toml::Table = toml::from_str(text).map_err(|e| ConfigError::Syntax {
        path: path.to_owned(),
        line: e.span().map(|span| line_of(text, span.start)),
        message: e.message().trim_end().to_owned(),
    })?;
    let mut settings = Vec::with_capacity(table.len());
    for (name, value) in &table {
        let key = key_by_name(name).ok_or_else(|| ConfigError::UnknownKey {
            path: path.to_owned(),
            key: name.clone(),
        })?;
        settings.push(key.parse_value(path, value)?);
    }
    Ok(settings)
}

/// Reads and parses a settings file.
pub fn read_file(path: &Path) -> Result<Vec<Setting>, ConfigError> {
    use std::io::Read;
    let read_error = |error| ConfigError::Read {
        path: path.to_owned(),
        error,
    };
    let file = std::fs::File::open(path).map_err(read_error)?;
    let mut text = String::new();
    file.take(MAX_FILE + 1)
        .read_to_string(&mut text)
        .map_err(read_error)?;
    if text.len() as u64 > MAX_FILE {
        return Err(ConfigError::TooLarge {
            path: path.to_owned(),
        });
    }
    parse_file(path, &text)
}

fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<Setting>, String> {
        parse_file(Path::new("thinshadow.toml"), text).map_err(|e| e.to_string())
    }

    #[test]
    fn every_key_from_a_file() {
        let settings = parse(
            r#"
listen = "127.0.0.1:4000"
screen = "synthetic:640x480"
state_dir = "/tmp/ts"
user = "support"
handshake_timeout = 20
frame_interval = 50
max_handshakes = 4
rotation_period_hours = 12
rotate_after_session = true
publish_hook = "/usr/libexec/publish"
hook_timeout = 5
lockout_after = 3
lockout_minutes = 10
allow = ["10.0.0.0/8", "fd00::/8"]
consent_timeout = 45
consent_timeout_auto = 20
consent_timeout_request = 60
consent_timeout_action_auto = "refuse"
consent_timeout_action_request = "start"
audit_syslog = true
audit_file = "/var/log/thinshadow-audit.log"
audit_file_max = 65536
remote_processes = ["xfreerdp", "wfica"]
local_prompt = "fb"
scroll_copies = "off"
control = "/run/ts/control.sock"
local_uid = 1000
local_group = "video"
handshakes_per_address = 2
audit_file_keep = 7
keyboard_layout = "de"
default_management_mode = "deny"
default_remote_screen_mode = "allow-auto"
tls_key_type = "ecdsa"
tls_cert = "/etc/thinshadow/cert.pem"
tls_key = "/etc/thinshadow/key.pem"
"#,
        )
        .unwrap();
        assert_eq!(settings.len(), KEYS.len());
        assert!(settings.contains(&Setting::Listen("127.0.0.1:4000".parse().unwrap())));
        assert!(settings.contains(&Setting::RotationPeriod(secs(12 * 3600))));
        assert!(settings.contains(&Setting::RotateAfterSession(true)));
        assert!(settings.contains(&Setting::LocalPrompt(PromptChoice::Fb)));
        assert!(settings.contains(&Setting::ScrollCopies(false)));
        assert!(settings.contains(&Setting::DefaultManagementMode(Mode::Deny)));
        assert!(settings.contains(&Setting::DefaultRemoteScreenMode(Mode::AllowAuto)));
        assert!(settings.contains(&Setting::TlsKeyType(crate::net::KeyType::Ecdsa)));
        assert!(settings.contains(&Setting::TlsKey("/etc/thinshadow/key.pem".into())));
        assert!(settings.contains(&Setting::LockoutWindow(secs(600))));
        assert!(settings.contains(&Setting::Allow(
            Allowlist::parse(&["10.0.0.0/8", "fd00::/8"]).unwrap()
        )));
        assert!(settings.contains(&Setting::ConsentTimeoutAuto(secs(20))));
        assert!(settings.contains(&Setting::ConsentTimeoutActionAuto(TimeoutAction::Refuse)));
        assert!(settings.contains(&Setting::ConsentTimeoutActionRequest(TimeoutAction::Start)));
        assert!(settings.contains(&Setting::AuditFileMax(65536)));
        assert!(settings.contains(&Setting::RemoteProcesses(vec![
            "xfreerdp".into(),
            "wfica".into()
        ])));
    }

    #[test]
    fn policy_and_audit_values_are_checked() {
        assert_eq!(
            parse(r#"consent_timeout_action_auto = "later""#).unwrap_err(),
            r#"thinshadow.toml: consent_timeout_action_auto: expected start or refuse, got "later""#
        );
        assert_eq!(
            parse("consent_timeout = 0").unwrap_err(),
            "thinshadow.toml: consent_timeout: expected seconds (1 to 3600), got 0"
        );
        assert!(parse("audit_file_max = 100").is_err());
        assert_eq!(
            parse(r#"default_management_mode = "allow""#).unwrap_err(),
            r#"thinshadow.toml: default_management_mode: expected allow-auto, allow-by-request or deny (when no saved state can be read), got "allow""#
        );
        let err = parse(r#"remote_processes = ["/usr/bin/xfreerdp"]"#).unwrap_err();
        assert!(err.contains("a process name, not a path"), "{err}");
        assert_eq!(
            parse("remote_processes = []").unwrap(),
            vec![Setting::RemoteProcesses(vec![])]
        );
    }

    #[test]
    fn bad_values_name_the_key_and_the_form() {
        assert_eq!(
            parse(r#"listen = "x""#).unwrap_err(),
            r#"thinshadow.toml: listen: expected ADDR:PORT, e.g. 0.0.0.0:3389, got "x""#
        );
        assert_eq!(
            parse("handshake_timeout = 0").unwrap_err(),
            "thinshadow.toml: handshake_timeout: expected seconds (1 to 600), got 0"
        );
        assert_eq!(
            parse(r#"max_handshakes = "8""#).unwrap_err(),
            r#"thinshadow.toml: max_handshakes: expected a count (1 to 256), got "8""#
        );
        assert_eq!(
            parse("lockout_after = -1").unwrap_err(),
            "thinshadow.toml: lockout_after: expected a count of failed logins (1 to 100), got -1"
        );
        assert_eq!(
            parse(r#"rotate_after_session = "yes""#).unwrap_err(),
            r#"thinshadow.toml: rotate_after_session: expected true or false, got "yes""#
        );
        let err = parse(r#"allow = ["10.0.0.0/8", "10.0.0.0/33"]"#).unwrap_err();
        assert_eq!(
            err,
            r#"thinshadow.toml: allow: "10.0.0.0/33": prefix length must be 0 to 32 (expected ADDR/PREFIX ranges, e.g. 10.0.0.0/8 or fd00::/8)"#
        );
        let err = parse(r#"allow = "10.0.0.0/8""#).unwrap_err();
        assert!(err.contains("allow: expected ADDR/PREFIX"), "{err}");
        // A file's entry is one entry: a comma in it is not a separator (it is on the
        // command line), so this is one bad range, named as written.
        let err = parse(r#"allow = ["10.0.0.0/8,fd00::/8"]"#).unwrap_err();
        assert!(err.contains(r#"allow: "10.0.0.0/8,fd00::/8""#), "{err}");
        // A process name may hold a comma (the kernel's comm is any 15 bytes).
        assert_eq!(
            parse(r#"remote_processes = ["vdi,client", "wfica"]"#).unwrap(),
            vec![Setting::RemoteProcesses(vec![
                "vdi,client".into(),
                "wfica".into()
            ])]
        );
        let err = parse(r#"user = "a b""#).unwrap_err();
        assert!(
            err.starts_with("thinshadow.toml: user: expected a plain user name"),
            "{err}"
        );
    }

    #[test]
    fn unknown_keys_and_tables_are_errors() {
        let err = parse("listen = \"0.0.0.0:3389\"\nlistn = \"x\"").unwrap_err();
        assert!(
            err.starts_with(r#"thinshadow.toml: unknown key "listn" (known: listen, "#),
            "{err}"
        );
        let err = parse("[serve]\nlisten = \"0.0.0.0:3389\"").unwrap_err();
        assert!(err.contains(r#"unknown key "serve""#), "{err}");
    }

    #[test]
    fn syntax_errors_give_the_line() {
        let err = parse("listen = \"0.0.0.0:3389\"\nuser = \n").unwrap_err();
        assert!(err.starts_with("thinshadow.toml: line 2: "), "{err}");
        let err = parse("user = \"a\"\nuser = \"b\"\n").unwrap_err();
        assert!(err.starts_with("thinshadow.toml: line 2: "), "{err}");
    }

    #[test]
    fn an_empty_file_and_an_empty_allow_list_change_nothing() {
        assert_eq!(parse("").unwrap(), vec![]);
        assert_eq!(parse("# nothing\n").unwrap(), vec![]);
        assert_eq!(
            parse("allow = []").unwrap(),
            vec![Setting::Allow(Allowlist::all())]
        );
    }

    #[test]
    fn flag_errors_read_like_file_errors() {
        let key = key_by_flag("--listen").unwrap();
        let err = key.parse_flag("nowhere").unwrap_err().to_string();
        assert_eq!(
            err,
            "--listen: expected ADDR:PORT, e.g. 0.0.0.0:3389, got 'nowhere'"
        );
        let key = key_by_flag("--allow").unwrap();
        let err = key.parse_flag("10.0.0.0/8,bogus").unwrap_err().to_string();
        assert!(err.starts_with(r#"--allow: "bogus": not an IPv4"#), "{err}");
    }

    #[test]
    fn every_key_has_a_flag_and_a_name_once() {
        for (i, key) in KEYS.iter().enumerate() {
            assert!(key.flag.starts_with("--"));
            assert!(
                KEYS[i + 1..]
                    .iter()
                    .all(|k| k.name != key.name && k.flag != key.flag)
            );
        }
    }

    #[test]
    fn a_missing_or_huge_file_is_an_error() {
        let err = read_file(Path::new("/nonexistent/thinshadow.toml")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("/nonexistent/thinshadow.toml: "),
            "{err}"
        );
        let path = std::env::temp_dir().join(format!("thinshadow-big-{}.toml", std::process::id()));
        std::fs::write(&path, "#".repeat(MAX_FILE as usize + 10)).unwrap();
        assert!(matches!(
            read_file(&path),
            Err(ConfigError::TooLarge { .. })
        ));
        std::fs::remove_file(&path).unwrap();
    }
}
