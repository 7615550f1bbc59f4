//! Flag parsing by hand: a handful of flags does not warrant a parser crate in firmware.
//!
//! `serve` settings come from three places, later ones winning: defaults that work on a
//! bare board, the config file (`--config PATH`, else `/etc/thinshadow.toml` if present),
//! then the flags. Files and flags share one table of keys (`config::KEYS`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{self, Kind, PromptChoice, Setting};
use crate::policy::{
    AccessSettings, Allowlist, Ask, DEFAULT_CONSENT_TIMEOUT, LockoutPolicy, Modes, TimeoutAction,
};
use crate::state::publish::DEFAULT_TIMEOUT;
use crate::state::rotation::DEFAULT_PERIOD;

pub const HELP_SHOWN: &str = "\0help";
pub const DEFAULT_STATE_DIR: &str = "/var/lib/thinshadow";

#[derive(Clone, Debug, PartialEq)]
pub struct ServeArgs {
    pub listen: SocketAddr,
    pub screen: String,
    pub state_dir: PathBuf,
    pub user: String,
    pub handshake_timeout: Duration,
    pub frame_interval: Duration,
    pub max_handshakes: usize,
    /// The config file that was read, if any.
    pub config: Option<PathBuf>,
    pub rotation_period: Duration,
    pub rotate_after_session: bool,
    pub publish_hook: Option<PathBuf>,
    pub hook_timeout: Duration,
    pub lockout_after: u32,
    pub lockout_window: Duration,
    pub allow: Allowlist,
    /// The control socket: the local UI and the CLI answer the policy through it.
    pub control: PathBuf,
    /// The local user who may answer on the control socket (besides root).
    pub local_uid: Option<u32>,
    /// A group whose members may answer too: a gid, or a name looked up at start.
    pub local_group: Option<String>,
    pub consent_timeout: Duration,
    pub consent_timeout_auto: Option<Duration>,
    pub consent_timeout_request: Option<Duration>,
    pub consent_timeout_action_auto: TimeoutAction,
    pub consent_timeout_action_request: TimeoutAction,
    pub audit_syslog: bool,
    pub audit_file: Option<PathBuf>,
    pub audit_file_max: u64,
    pub remote_processes: Vec<String>,
    /// Who asks on the thin client when no UI registered: the framebuffer prompt or nobody.
    pub local_prompt: PromptChoice,
    pub handshakes_per_address: usize,
    pub audit_file_keep: u32,
    pub keyboard_layout: String,
    pub scroll_copies: bool,
    /// The modes when no saved state can be read (first start, or both copies bad).
    pub default_modes: Modes,
    pub tls_key_type: crate::net::KeyType,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
}

/// Each audit file generation's size (PATH, PATH.1 … PATH.N).
pub const DEFAULT_AUDIT_FILE_MAX: u64 = 1024 * 1024;
pub const DEFAULT_AUDIT_FILE_KEEP: u32 = 4;
/// Where the control socket lives unless told otherwise.
pub const DEFAULT_CONTROL_PATH: &str = "/run/thinshadow/control.sock";

#[derive(Clone, Debug, PartialEq)]
pub struct CredsArgs {
    pub state_dir: PathBuf,
    pub json: bool,
}

fn value<'a>(flag: &str, it: &mut impl Iterator<Item = &'a String>) -> Result<&'a str, String> {
    it.next()
        .map(String::as_str)
        .ok_or_else(|| format!("{flag} needs a value"))
}

fn split_flag(arg: &str) -> (&str, Option<&str>) {
    match arg.split_once('=') {
        Some((flag, value)) if flag.starts_with("--") => (flag, Some(value)),
        _ => (arg, None),
    }
}

/// What the command line said, before the file is merged in.
#[derive(Debug, Default)]
struct Flags {
    config: Option<PathBuf>,
    settings: Vec<Setting>,
}

impl Flags {
    fn parse(args: &[String]) -> Result<Flags, String> {
        let mut flags = Flags::default();
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let (flag, inline) = split_flag(arg);
            match flag {
                "--config" => {
                    let path = inline.map_or_else(|| value(flag, &mut it), Ok)?;
                    if path.is_empty() {
                        return Err("--config: expected a file path, got ''".into());
                    }
                    flags.config = Some(path.into());
                }
                "--help" | "-h" => {
                    print!("{}", super::USAGE);
                    return Err(HELP_SHOWN.into());
                }
                _ => {
                    let Some(key) = config::key_by_flag(flag) else {
                        return Err(format!(
                            "serve: unknown option '{flag}' (see thinshadow --help)"
                        ));
                    };
                    // A switch: present means true; `--flag=false` is allowed too.
                    let text = match (key.kind, inline) {
                        (Kind::Bool, None) => "true",
                        (_, Some(text)) => text,
                        (_, None) => value(flag, &mut it)?,
                    };
                    let setting = key.parse_flag(text).map_err(|e| e.to_string())?;
                    flags.settings.push(setting);
                }
            }
        }
        Ok(flags)
    }
}

impl Default for ServeArgs {
    fn default() -> Self {
        let lockout = LockoutPolicy::default();
        let slots = crate::policy::SlotLimits::default();
        ServeArgs {
            listen: SocketAddr::from(([0, 0, 0, 0], 3389)),
            screen: "auto".into(),
            state_dir: DEFAULT_STATE_DIR.into(),
            user: "admin".into(),
            handshake_timeout: crate::agent::DEFAULT_HANDSHAKE_TIMEOUT,
            frame_interval: crate::agent::DEFAULT_FRAME_INTERVAL,
            max_handshakes: slots.global,
            config: None,
            rotation_period: DEFAULT_PERIOD,
            rotate_after_session: false,
            publish_hook: None,
            hook_timeout: DEFAULT_TIMEOUT,
            lockout_after: lockout.after,
            lockout_window: lockout.window,
            allow: Allowlist::all(),
            control: DEFAULT_CONTROL_PATH.into(),
            local_uid: None,
            local_group: None,
            consent_timeout: DEFAULT_CONSENT_TIMEOUT,
            consent_timeout_auto: None,
            consent_timeout_request: None,
            consent_timeout_action_auto: TimeoutAction::Start,
            consent_timeout_action_request: TimeoutAction::Refuse,
            audit_syslog: false,
            audit_file: None,
            audit_file_max: DEFAULT_AUDIT_FILE_MAX,
            remote_processes: Vec::new(),
            local_prompt: PromptChoice::Auto,
            handshakes_per_address: slots.per_address,
            audit_file_keep: DEFAULT_AUDIT_FILE_KEEP,
            keyboard_layout: "us".into(),
            scroll_copies: true,
            default_modes: Modes::default(),
            tls_key_type: crate::net::KeyType::Rsa,
            tls_cert: None,
            tls_key: None,
        }
    }
}

impl ServeArgs {
    /// Defaults, then the config file, then the flags.
    pub fn parse(args: &[String]) -> Result<Self, String> {
        Self::parse_with_default_config(args, Path::new(config::DEFAULT_PATH))
    }

    /// `parse` with another default config path (tests).
    pub fn parse_with_default_config(args: &[String], default: &Path) -> Result<Self, String> {
        let flags = Flags::parse(args)?;
        // A named file must exist; the default one only if it does.
        let file = match flags.config {
            Some(path) => Some(path),
            None => default.exists().then(|| default.to_owned()),
        };
        let mut parsed = ServeArgs::default();
        if let Some(path) = &file {
            for setting in config::read_file(path).map_err(|e| e.to_string())? {
                parsed.apply(setting);
            }
        }
        for setting in flags.settings {
            parsed.apply(setting);
        }
        parsed.config = file;
        Ok(parsed)
    }

    pub fn apply(&mut self, setting: Setting) {
        match setting {
            Setting::Listen(v) => self.listen = v,
            Setting::Screen(v) => self.screen = v,
            Setting::StateDir(v) => self.state_dir = v,
            Setting::User(v) => self.user = v,
            Setting::HandshakeTimeout(v) => self.handshake_timeout = v,
            Setting::FrameInterval(v) => self.frame_interval = v,
            Setting::MaxHandshakes(v) => self.max_handshakes = v,
            Setting::RotationPeriod(v) => self.rotation_period = v,
            Setting::RotateAfterSession(v) => self.rotate_after_session = v,
            Setting::PublishHook(v) => self.publish_hook = Some(v),
            Setting::HookTimeout(v) => self.hook_timeout = v,
            Setting::LockoutAfter(v) => self.lockout_after = v,
            Setting::LockoutWindow(v) => self.lockout_window = v,
            Setting::Allow(v) => self.allow = v,
            Setting::ConsentTimeout(v) => self.consent_timeout = v,
            Setting::ConsentTimeoutAuto(v) => self.consent_timeout_auto = Some(v),
            Setting::ConsentTimeoutRequest(v) => self.consent_timeout_request = Some(v),
            Setting::ConsentTimeoutActionAuto(v) => self.consent_timeout_action_auto = v,
            Setting::ConsentTimeoutActionRequest(v) => self.consent_timeout_action_request = v,
            Setting::AuditSyslog(v) => self.audit_syslog = v,
            Setting::AuditFile(v) => self.audit_file = Some(v),
            Setting::AuditFileMax(v) => self.audit_file_max = v,
            Setting::RemoteProcesses(v) => self.remote_processes = v,
            Setting::LocalPrompt(v) => self.local_prompt = v,
            Setting::Control(v) => self.control = v,
            Setting::LocalUid(v) => self.local_uid = Some(v),
            Setting::LocalGroup(v) => self.local_group = Some(v),
            Setting::HandshakesPerAddress(v) => self.handshakes_per_address = v,
            Setting::AuditFileKeep(v) => self.audit_file_keep = v,
            Setting::KeyboardLayout(v) => self.keyboard_layout = v,
            Setting::ScrollCopies(v) => self.scroll_copies = v,
            Setting::DefaultManagementMode(v) => self.default_modes.management = v,
            Setting::DefaultRemoteScreenMode(v) => self.default_modes.remote_screen = v,
            Setting::TlsKeyType(v) => self.tls_key_type = v,
            Setting::TlsCert(v) => self.tls_cert = Some(v),
            Setting::TlsKey(v) => self.tls_key = Some(v),
        }
    }

    /// How each management mode asks: a per-mode timeout wins over `consent_timeout`,
    /// wherever each was set.
    pub fn access_settings(&self) -> AccessSettings {
        AccessSettings {
            allow_auto: Ask {
                timeout: self.consent_timeout_auto.unwrap_or(self.consent_timeout),
                on_timeout: self.consent_timeout_action_auto,
            },
            allow_by_request: Ask {
                timeout: self.consent_timeout_request.unwrap_or(self.consent_timeout),
                on_timeout: self.consent_timeout_action_request,
            },
        }
    }

    /// Where the TLS identity comes from: provisioned files (both named) or made here.
    pub fn tls_source(&self) -> Result<crate::net::tls_store::Source, String> {
        use crate::net::tls_store::Source;
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Ok(Source::Provisioned {
                cert: cert.clone(),
                key: key.clone(),
            }),
            (None, None) => Ok(Source::Made(self.tls_key_type)),
            _ => Err("--tls-cert and --tls-key go together: name both files or neither".into()),
        }
    }

    /// The lockout policy these settings describe.
    pub fn lockout_policy(&self) -> LockoutPolicy {
        LockoutPolicy {
            after: self.lockout_after,
            window: self.lockout_window,
            ..LockoutPolicy::default()
        }
    }
}

impl CredsArgs {
    pub fn parse(args: &[String]) -> Result<Self, String> {
        let mut parsed = CredsArgs {
            state_dir: DEFAULT_STATE_DIR.into(),
            json: false,
        };
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let (flag, inline) = split_flag(arg);
            match flag {
                "--state-dir" => {
                    parsed.state_dir = inline.map_or_else(|| value(flag, &mut it), Ok)?.into()
                }
                "--json" => parsed.json = true,
                "--help" | "-h" => {
                    print!("{}", super::USAGE);
                    return Err(HELP_SHOWN.into());
                }
                other => {
                    return Err(format!(
                        "creds: unknown option '{other}' (see thinshadow --help)"
                    ));
                }
            }
        }
        Ok(parsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    /// Parses with no default config file, whatever this machine has in /etc.
    fn parse(list: &[&str]) -> Result<ServeArgs, String> {
        ServeArgs::parse_with_default_config(&args(list), Path::new("/nonexistent/x.toml"))
    }

    struct TempFile(PathBuf);

    impl TempFile {
        fn new(name: &str, text: &str) -> TempFile {
            let path = std::env::temp_dir().join(format!(
                "thinshadow-args-{name}-{}.toml",
                std::process::id()
            ));
            std::fs::write(&path, text).unwrap();
            TempFile(path)
        }

        fn arg(&self) -> &str {
            self.0.to_str().unwrap()
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    #[test]
    fn defaults_work_on_a_bare_board() {
        let parsed = parse(&[]).unwrap();
        assert_eq!(parsed.listen.port(), 3389);
        assert_eq!(parsed.screen, "auto");
        assert_eq!(parsed.user, "admin");
        assert_eq!(parsed.rotation_period, Duration::from_secs(86_400));
        assert!(!parsed.rotate_after_session);
        assert_eq!(parsed.publish_hook, None);
        assert_eq!(parsed.hook_timeout, Duration::from_secs(10));
        assert_eq!(parsed.lockout_after, 5);
        assert_eq!(parsed.lockout_window, Duration::from_secs(300));
        assert!(parsed.allow.is_all());
        assert_eq!(parsed.config, None);
    }

    #[test]
    fn the_control_socket_is_on_by_default() {
        let parsed = parse(&[]).unwrap();
        assert_eq!(parsed.control, PathBuf::from(DEFAULT_CONTROL_PATH));
        assert_eq!(parsed.local_uid, None);
        let parsed = parse(&["--control", "/run/t.sock", "--local-uid=1000"]).unwrap();
        assert_eq!(parsed.control, PathBuf::from("/run/t.sock"));
        assert_eq!(parsed.local_uid, Some(1000));
        assert!(parse(&["--control="]).is_err());
        assert!(
            parse(&["--local-uid", "bob"])
                .unwrap_err()
                .contains("--local-uid")
        );
    }

    #[test]
    fn consent_timeouts_per_mode() {
        let parsed = parse(&[]).unwrap();
        assert_eq!(parsed.access_settings(), AccessSettings::default());
        let parsed = parse(&[
            "--consent-timeout-request=90",
            "--consent-timeout",
            "10",
            "--consent-timeout-action-auto",
            "refuse",
            "--consent-timeout-action-request=start",
        ])
        .unwrap();
        let settings = parsed.access_settings();
        assert_eq!(
            settings.allow_auto,
            Ask {
                timeout: Duration::from_secs(10),
                on_timeout: TimeoutAction::Refuse
            }
        );
        assert_eq!(
            settings.allow_by_request,
            Ask {
                timeout: Duration::from_secs(90),
                on_timeout: TimeoutAction::Start
            },
            "the per-mode timeout wins though it came first"
        );
        let err = parse(&["--consent-timeout-action-request", "maybe"]).unwrap_err();
        assert_eq!(
            err,
            "--consent-timeout-action-request: expected start or refuse, got 'maybe'"
        );
        assert!(parse(&["--consent-timeout", "0"]).is_err());
    }

    #[test]
    fn audit_and_remote_process_flags() {
        let parsed = parse(&[]).unwrap();
        assert!(!parsed.audit_syslog);
        assert_eq!(parsed.audit_file, None);
        assert_eq!(parsed.audit_file_max, 1024 * 1024);
        assert!(parsed.remote_processes.is_empty());
        let parsed = parse(&[
            "--audit-syslog",
            "--audit-file",
            "/var/log/ts.log",
            "--audit-file-max=8192",
            "--remote-processes",
            "xfreerdp, wfica,vmware-view",
            "--local-group",
            "video",
        ])
        .unwrap();
        assert!(parsed.audit_syslog);
        assert_eq!(parsed.audit_file, Some(PathBuf::from("/var/log/ts.log")));
        assert_eq!(parsed.audit_file_max, 8192);
        assert_eq!(
            parsed.remote_processes,
            ["xfreerdp", "wfica", "vmware-view"]
        );
        assert_eq!(parsed.local_group.as_deref(), Some("video"));
        assert!(parse(&["--local-group="]).is_err());
        assert!(parse(&["--audit-file-max", "10"]).is_err());
    }

    #[test]
    fn the_local_prompt_is_automatic_by_default() {
        let prompt = |args: &[&str]| parse(args).unwrap().local_prompt;
        assert_eq!(prompt(&[]), PromptChoice::Auto);
        assert_eq!(prompt(&["--local-prompt", "fb"]), PromptChoice::Fb);
        assert_eq!(prompt(&["--local-prompt=off"]), PromptChoice::Off);
        assert_eq!(prompt(&["--local-prompt=none"]), PromptChoice::Off);
        let err = parse(&["--local-prompt", "tty"]).unwrap_err();
        assert!(err.starts_with("--local-prompt: expected auto "), "{err}");
    }

    #[test]
    fn unattended_images_may_start_allow_auto_sessions_at_once() {
        let parsed = parse(&["--consent-timeout-auto", "0"]).unwrap();
        assert_eq!(parsed.access_settings().allow_auto.timeout, Duration::ZERO);
        // Only allow-auto: a by-request session with no time to answer would never start.
        assert!(parse(&["--consent-timeout-request", "0"]).is_err());
        assert!(parse(&["--consent-timeout", "0"]).is_err());
    }

    #[test]
    fn flags_in_both_forms() {
        let parsed = parse(&["--listen", "127.0.0.1:4000", "--screen=synthetic:640x480"]).unwrap();
        assert_eq!(parsed.listen, "127.0.0.1:4000".parse().unwrap());
        assert_eq!(parsed.screen, "synthetic:640x480");
    }

    #[test]
    fn the_new_flags() {
        let parsed = parse(&[
            "--publish-hook",
            "/usr/bin/publish",
            "--rotation-period=6",
            "--rotate-after-session",
            "--allow",
            "10.0.0.0/8,fd00::/8",
            "--lockout-after",
            "3",
            "--lockout-minutes",
            "15",
            "--hook-timeout",
            "30",
        ])
        .unwrap();
        assert_eq!(parsed.publish_hook, Some(PathBuf::from("/usr/bin/publish")));
        assert_eq!(parsed.rotation_period, Duration::from_secs(6 * 3600));
        assert!(parsed.rotate_after_session);
        assert_eq!(parsed.allow.ranges().len(), 2);
        assert_eq!(parsed.lockout_after, 3);
        assert_eq!(parsed.lockout_window, Duration::from_secs(900));
        assert_eq!(parsed.hook_timeout, Duration::from_secs(30));
        let policy = parsed.lockout_policy();
        assert_eq!((policy.after, policy.window), (3, Duration::from_secs(900)));
        assert!(
            !parse(&["--rotate-after-session=false"])
                .unwrap()
                .rotate_after_session
        );
    }

    #[test]
    fn bad_values_name_the_flag_and_the_form() {
        let err = parse(&["--listen", "nowhere"]).unwrap_err();
        assert!(
            err.contains("--listen") && err.contains("ADDR:PORT"),
            "{err}"
        );
        let err = parse(&["--frame-interval", "0"]).unwrap_err();
        assert!(err.contains("--frame-interval"), "{err}");
        assert_eq!(
            parse(&["--rotation-period", "0"]).unwrap_err(),
            "--rotation-period: expected hours (1 to 720), got '0'"
        );
        let err = parse(&["--allow", "10.0.0.0/8,10.0.0.1/8"]).unwrap_err();
        assert!(err.starts_with(r#"--allow: "10.0.0.1/8": "#), "{err}");
        let err = parse(&["--rotate-after-session=maybe"]).unwrap_err();
        assert!(err.contains("true or false"), "{err}");
        assert!(parse(&["--bogus"]).is_err());
        assert!(parse(&["--listen"]).is_err());
        assert!(parse(&["--config"]).is_err());
    }

    #[test]
    fn flags_override_the_file_which_overrides_defaults() {
        let file = TempFile::new(
            "precedence",
            "listen = \"127.0.0.1:5000\"\nuser = \"support\"\nlockout_after = 7\nallow = [\"10.0.0.0/8\"]\n",
        );
        let parsed = parse(&["--config", file.arg(), "--user", "helpdesk"]).unwrap();
        assert_eq!(
            parsed.listen,
            "127.0.0.1:5000".parse().unwrap(),
            "from the file"
        );
        assert_eq!(parsed.user, "helpdesk", "the flag wins");
        assert_eq!(parsed.lockout_after, 7);
        assert_eq!(parsed.frame_interval, Duration::from_millis(33), "default");
        assert_eq!(parsed.config.as_deref(), Some(file.0.as_path()));
        // Order on the command line does not matter: the flag still wins.
        let parsed = parse(&["--allow", "192.0.2.0/24", "--config", file.arg()]).unwrap();
        assert_eq!(parsed.allow.to_string(), "192.0.2.0/24");
    }

    #[test]
    fn the_default_file_is_read_only_if_present() {
        let file = TempFile::new("default", "max_handshakes = 3\n");
        let parsed = ServeArgs::parse_with_default_config(&[], &file.0).unwrap();
        assert_eq!(parsed.max_handshakes, 3);
        assert_eq!(parsed.config.as_deref(), Some(file.0.as_path()));
        // A named file that is missing is an error; a missing default is not.
        let err = parse(&["--config", "/nonexistent/thinshadow.toml"]).unwrap_err();
        assert!(err.starts_with("/nonexistent/thinshadow.toml: "), "{err}");
    }

    #[test]
    fn a_bad_file_stops_the_start_with_the_key_named() {
        let file = TempFile::new("bad", "listen = \"x\"\n");
        let err = parse(&["--config", file.arg(), "--listen", "127.0.0.1:1"]).unwrap_err();
        assert_eq!(
            err,
            format!(
                "{}: listen: expected ADDR:PORT, e.g. 0.0.0.0:3389, got \"x\"",
                file.arg()
            )
        );
        let file = TempFile::new("unknown", "colour = \"blue\"\n");
        let err = parse(&["--config", file.arg()]).unwrap_err();
        assert!(err.contains("unknown key \"colour\""), "{err}");
    }

    #[test]
    fn help_lists_every_flag() {
        for key in config::KEYS {
            assert!(
                super::super::USAGE.contains(key.flag),
                "{} missing",
                key.flag
            );
        }
        assert!(super::super::USAGE.contains("--config"));
        assert!(!super::super::USAGE.contains("__state-writer"));
    }

    #[test]
    fn creds_json_flag() {
        let parsed = CredsArgs::parse(&args(&["--state-dir", "/tmp/x", "--json"])).unwrap();
        assert!(parsed.json);
        assert_eq!(parsed.state_dir, PathBuf::from("/tmp/x"));
    }
}
