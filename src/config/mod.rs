//! The serve settings: one `Settings` struct with one `Default`, read from a TOML file
//! (one flat table), with the flags laid over it.
//!
//! ```toml
//! listen = "0.0.0.0:3389"
//! rotation_period_hours = 24
//! allow = ["10.0.0.0/8", "fd00::/8"]
//! ```
//! A key and its flag are checked by the same field type (`values.rs`) through one
//! deserializer (`given.rs`), so their errors read alike. Unknown keys are an error: a
//! misspelt setting must not be silently ignored on a board nobody watches.
//! Owns: parsing and checking settings. Must not: open devices, files other than the
//! settings file, or sockets.

mod given;
pub mod keys;
pub mod values;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use given::{Entry, Given};
pub use keys::{KEYS, Key};
use values::{
    Count, FilePath, GroupName, Hours, LayoutName, Millis, Minutes, OnOff, ProcessNames,
    ScreenSpec, Seconds, UserName,
};

use crate::policy::{
    AccessSettings, Allowlist, Ask, LockoutPolicy, Mode, Modes, SlotLimits, TimeoutAction,
};

/// Read when `--config` is not given, if it exists.
pub const DEFAULT_PATH: &str = "/etc/thinshadow.toml";
pub const DEFAULT_STATE_DIR: &str = "/var/lib/thinshadow";
/// Where the control socket lives unless told otherwise.
pub const DEFAULT_CONTROL_PATH: &str = "/run/thinshadow/control.sock";
/// Far more than any real config; a bigger file is a mistake.
const MAX_FILE: u64 = 64 * 1024;

/// `--local-prompt`: the built-in framebuffer prompt always, never, or unless the image's own
/// UI registered on the control socket as the one that shows consent requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PromptChoice {
    Auto,
    Fb,
    Off,
}

impl std::str::FromStr for PromptChoice {
    type Err = ();
    fn from_str(text: &str) -> Result<Self, ()> {
        match text {
            "auto" => Ok(PromptChoice::Auto),
            "fb" => Ok(PromptChoice::Fb),
            "off" | "none" => Ok(PromptChoice::Off),
            _ => Err(()),
        }
    }
}

/// Every serve setting; a field's name is its key in the file (`keys::KEYS` has its flag).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    #[serde(deserialize_with = "values::parsed")]
    pub listen: SocketAddr,
    pub screen: ScreenSpec,
    pub state_dir: FilePath,
    pub user: UserName,
    /// A connection that has not reached the active session by then is dropped.
    pub handshake_timeout: Seconds<1, 600>,
    /// The fastest screen scan rate.
    pub frame_interval: Millis<5, 10_000>,
    pub max_handshakes: Count<1, 256>,
    pub rotation_period_hours: Hours<1, 720>,
    pub rotate_after_session: bool,
    /// Run after each rotation with the creds JSON on stdin.
    pub publish_hook: Option<FilePath>,
    pub hook_timeout: Seconds<1, 300>,
    pub lockout_after: Count<1, 100>,
    pub lockout_minutes: Minutes<1, 1440>,
    #[serde(deserialize_with = "values::allowlist")]
    pub allow: Allowlist,
    /// The consent timeout of both management modes; the per-mode keys win over it.
    pub consent_timeout: Seconds<1, 3600>,
    /// 0: allow-auto sessions start at once (unattended images).
    pub consent_timeout_auto: Option<Seconds<0, 3600>>,
    pub consent_timeout_request: Option<Seconds<1, 3600>>,
    #[serde(deserialize_with = "values::parsed")]
    pub consent_timeout_action_auto: TimeoutAction,
    #[serde(deserialize_with = "values::parsed")]
    pub consent_timeout_action_request: TimeoutAction,
    /// Audit lines to syslog (/dev/log, authpriv) instead of stderr.
    pub audit_syslog: bool,
    pub audit_file: Option<FilePath>,
    /// Each audit file generation's size (PATH, PATH.1 … PATH.N).
    pub audit_file_max: Count<4096, 1_073_741_824>,
    /// Old generations of the audit file kept.
    pub audit_file_keep: Count<1, 100>,
    /// Process names that mean "the local user is in a remote session".
    pub remote_processes: ProcessNames,
    /// Who asks the local user when no UI registered on the control socket.
    #[serde(deserialize_with = "values::parsed")]
    pub local_prompt: PromptChoice,
    /// The control socket (the local UI and the CLI).
    pub control: FilePath,
    /// The local user who may answer on the control socket (besides root).
    pub local_uid: Option<u32>,
    /// A group whose members may answer too.
    pub local_group: Option<GroupName>,
    pub handshakes_per_address: Count<1, 256>,
    /// The thin client's keyboard layout (for characters clients type as Unicode).
    pub keyboard_layout: LayoutName,
    /// Scrolled rows sent as copies the client does (ScrBlt), when it supports them.
    pub scroll_copies: OnOff,
    /// Whole tiles through the client's bitmap cache (Cache Bitmap Rev2 + MemBlt).
    pub bitmap_cache: OnOff,
    /// The modes when there is no readable saved state (first start, both copies bad).
    #[serde(deserialize_with = "values::parsed")]
    pub default_management_mode: Mode,
    #[serde(deserialize_with = "values::parsed")]
    pub default_remote_screen_mode: Mode,
    /// The key type of a certificate made for a new state directory.
    #[serde(deserialize_with = "values::parsed")]
    pub tls_key_type: crate::net::KeyType,
    /// A provisioned certificate chain (PEM) and its key; both or neither.
    pub tls_cert: Option<FilePath>,
    pub tls_key: Option<FilePath>,
}

/// The defaults are the modules' own; a default its field's range refuses is a build defect
/// that the settings tests catch.
fn in_range<T>(value: Option<T>, key: &str) -> T {
    value.unwrap_or_else(|| panic!("the default {key} is outside its range"))
}

impl Default for Settings {
    fn default() -> Self {
        let lockout = LockoutPolicy::default();
        let slots = SlotLimits::default();
        let access = AccessSettings::default();
        let modes = Modes::default();
        Settings {
            listen: SocketAddr::from(([0, 0, 0, 0], 3389)),
            screen: in_range(ScreenSpec::new("auto"), "screen"),
            state_dir: in_range(FilePath::new(DEFAULT_STATE_DIR), "state_dir"),
            user: in_range(UserName::new("admin"), "user"),
            handshake_timeout: in_range(
                Seconds::from_duration(crate::agent::DEFAULT_HANDSHAKE_TIMEOUT),
                "handshake_timeout",
            ),
            frame_interval: in_range(
                Millis::from_duration(crate::agent::DEFAULT_FRAME_INTERVAL),
                "frame_interval",
            ),
            max_handshakes: in_range(Count::new(slots.global as u64), "max_handshakes"),
            rotation_period_hours: in_range(
                Hours::from_duration(crate::state::rotation::DEFAULT_PERIOD),
                "rotation_period_hours",
            ),
            rotate_after_session: false,
            publish_hook: None,
            hook_timeout: in_range(
                Seconds::from_duration(crate::state::publish::DEFAULT_TIMEOUT),
                "hook_timeout",
            ),
            lockout_after: in_range(Count::new(lockout.after.into()), "lockout_after"),
            lockout_minutes: in_range(Minutes::from_duration(lockout.window), "lockout_minutes"),
            allow: Allowlist::all(),
            consent_timeout: in_range(
                Seconds::from_duration(crate::policy::DEFAULT_CONSENT_TIMEOUT),
                "consent_timeout",
            ),
            consent_timeout_auto: None,
            consent_timeout_request: None,
            consent_timeout_action_auto: access.allow_auto.on_timeout,
            consent_timeout_action_request: access.allow_by_request.on_timeout,
            audit_syslog: false,
            audit_file: None,
            audit_file_max: in_range(Count::new(1024 * 1024), "audit_file_max"),
            audit_file_keep: in_range(Count::new(4), "audit_file_keep"),
            remote_processes: ProcessNames::default(),
            local_prompt: PromptChoice::Auto,
            control: in_range(FilePath::new(DEFAULT_CONTROL_PATH), "control"),
            local_uid: None,
            local_group: None,
            handshakes_per_address: in_range(
                Count::new(slots.per_address as u64),
                "handshakes_per_address",
            ),
            keyboard_layout: in_range(LayoutName::new("us"), "keyboard_layout"),
            scroll_copies: OnOff(true),
            bitmap_cache: OnOff(true),
            default_management_mode: modes.management,
            default_remote_screen_mode: modes.remote_screen,
            tls_key_type: crate::net::KeyType::Rsa,
            tls_cert: None,
            tls_key: None,
        }
    }
}

impl Settings {
    /// The defaults, then each entry in order (a later one for the same key wins). Every
    /// entry is checked, even one a later entry replaces: a bad line in a file is an error
    /// though a flag overrides it.
    pub fn from_entries(entries: Vec<Entry>) -> Result<Settings, ConfigError> {
        for entry in &entries {
            read(vec![entry.clone()])?;
        }
        let mut last: Vec<Entry> = Vec::with_capacity(entries.len());
        for entry in entries {
            last.retain(|earlier| earlier.key.name != entry.key.name);
            last.push(entry);
        }
        read(last)
    }

    /// How each management mode asks: a per-mode timeout wins over `consent_timeout`,
    /// wherever each was set.
    pub fn access_settings(&self) -> AccessSettings {
        let common = self.consent_timeout.get();
        AccessSettings {
            allow_auto: Ask {
                timeout: self.consent_timeout_auto.map_or(common, Seconds::get),
                on_timeout: self.consent_timeout_action_auto,
            },
            allow_by_request: Ask {
                timeout: self.consent_timeout_request.map_or(common, Seconds::get),
                on_timeout: self.consent_timeout_action_request,
            },
        }
    }

    /// Where the TLS identity comes from: provisioned files (both named) or made here.
    pub fn tls_source(&self) -> Result<crate::net::tls_store::Source, String> {
        use crate::net::tls_store::Source;
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Ok(Source::Provisioned {
                cert: cert.as_path().to_owned(),
                key: key.as_path().to_owned(),
            }),
            (None, None) => Ok(Source::Made(self.tls_key_type)),
            _ => Err("--tls-cert and --tls-key go together: name both files or neither".into()),
        }
    }

    pub fn lockout_policy(&self) -> LockoutPolicy {
        LockoutPolicy {
            after: self.lockout_after.as_u32(),
            window: self.lockout_minutes.get(),
            ..LockoutPolicy::default()
        }
    }

    pub fn slot_limits(&self) -> SlotLimits {
        SlotLimits {
            global: self.max_handshakes.as_usize(),
            per_address: self.handshakes_per_address.as_usize(),
            ..SlotLimits::default()
        }
    }

    pub fn default_modes(&self) -> Modes {
        Modes {
            management: self.default_management_mode,
            remote_screen: self.default_remote_screen_mode,
        }
    }
}

fn read(entries: Vec<Entry>) -> Result<Settings, ConfigError> {
    Settings::deserialize(given::Overlay(entries)).map_err(|refusal| match refusal {
        given::Refusal::Done(error) => error,
        other => ConfigError::Syntax {
            path: PathBuf::from("settings"),
            line: None,
            message: other.to_string(),
        },
    })
}

/// A flag's value, to lay over the file.
pub fn flag_entry(key: &'static Key, text: &str) -> Entry {
    Entry {
        key,
        origin: key.flag.to_owned(),
        value: Given::Flag(text.to_owned()),
    }
}

/// A settings file's entries; `path` only names it in errors.
pub fn parse_file(path: &Path, text: &str) -> Result<Vec<Entry>, ConfigError> {
    let table: toml::Table = toml::from_str(text).map_err(|e| ConfigError::Syntax {
        path: path.to_owned(),
        line: e.span().map(|span| line_of(text, span.start)),
        message: e.message().trim_end().to_owned(),
    })?;
    table
        .into_iter()
        .map(|(name, value)| {
            let key = keys::by_name(&name).ok_or_else(|| ConfigError::UnknownKey {
                path: path.to_owned(),
                key: name.clone(),
            })?;
            Ok(Entry {
                key,
                origin: format!("{}: {name}", path.display()),
                value: Given::File(value),
            })
        })
        .collect()
}

/// Reads a settings file's entries.
pub fn read_file(path: &Path) -> Result<Vec<Entry>, ConfigError> {
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
                let known: Vec<&str> = keys::KEYS.iter().map(|k| k.name).collect();
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

fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests;
